"""Reading delivered files row by row, in plain Python (no Spark), without losing a row.

A :class:`Delivery` is opened from a file and its :class:`gridlake.sources.Source`:
the header is read and mapped to canonical names (unknown extra columns kept,
missing required columns named), then :meth:`Delivery.rows` streams
:class:`BronzeRow` records. Malformed rows (wrong field count, undecodable bytes,
CSV syntax errors) are yielded too, with their raw line and a reason, so that
bronze holds every delivered row.

CSV files are decoded with the source's declared encoding (``gb18030`` for the old
systems) using ``surrogateescape`` so that undecodable bytes stay visible per row;
a UTF-8 byte-order mark is stripped. XLSX files are read with openpyxl in
read-only mode from the first sheet, using cached values of formula cells; merged
ranges are filled with their top-left value.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridlake.sources import Source

_SURROGATE = re.compile("[\udc80-\udcff]")
_BOMS = ("\ufeff",)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class BronzeRow:
    """One delivered row: canonical values (strings), extras and provenance of the row."""

    row_number: int
    values: dict[str, str | None]
    extra: dict[str, str | None] | None = None
    raw_line: str | None = None
    malformed_reason: str | None = None


@dataclass
class Delivery:
    """An opened delivery file: header mapping, drift report and a row stream."""

    path: Path
    source: Source
    header: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | empty | header_only | rejected
    error: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    missing_required: list[str] = field(default_factory=list)
    encoding: str | None = None
    _rows: Iterator[BronzeRow] | None = None
    _first: BronzeRow | None = None

    def rows(self) -> Iterator[BronzeRow]:
        """Stream the data rows (nothing for empty, header-only or rejected files)."""
        if self.status != "ok" or self._rows is None:
            return
        if self._first is not None:
            yield self._first
        yield from self._rows


def canonical_header(name: str) -> str:
    """Header cell as compared with sources.yaml: NFKC, BOM and surrounding spaces removed."""
    s = unicodedata.normalize("NFKC", name or "")
    for bom in _BOMS:
        s = s.replace(bom, "")
    return s.strip()


def _map_header(delivery: Delivery, header: list[str]) -> list[str | None]:
    """Canonical column per header position (None for extras); fills drift fields of ``delivery``."""
    src = delivery.source
    by_header = {canonical_header(h): c for h, c in src.header_to_canonical.items()}
    by_header.update({c: c for c in src.columns})
    mapped: list[str | None] = []
    seen: set[str] = set()
    for h in header:
        canon = by_header.get(canonical_header(h))
        if canon is None or canon in seen:
            mapped.append(None)
            if canonical_header(h):
                delivery.extra_columns.append(canonical_header(h))
        else:
            mapped.append(canon)
            seen.add(canon)
    delivery.missing_required = [c for c in src.required if c not in seen]
    if delivery.missing_required:
        delivery.status = "rejected"
        names = ", ".join(f"{c} ({src.columns[c]})" for c in delivery.missing_required)
        delivery.error = f"missing required column(s): {names}"
    return mapped


def _row_from_cells(
    delivery: Delivery, mapped: list[str | None], header: list[str], cells: list[str | None], number: int,
    raw: str | None,
) -> BronzeRow:
    values: dict[str, str | None] = dict.fromkeys(delivery.source.columns)
    n = len(header)
    trimmed = list(cells)
    while len(trimmed) > n and (trimmed[-1] is None or trimmed[-1] == ""):
        trimmed.pop()  # trailing empty cells beyond the header are not a wrong field count
    if any(isinstance(c, str) and _SURROGATE.search(c) for c in trimmed):
        return BronzeRow(number, values, None, _clean(raw), "UNDECODABLE_BYTES: bytes not valid in "
                         f"{delivery.encoding}")
    if len(trimmed) != n:
        return BronzeRow(number, values, None, _clean(raw), f"FIELD_COUNT: expected {n} fields, got {len(trimmed)}")
    extra: dict[str, str | None] = {}
    for canon, head, cell in zip(mapped, header, trimmed, strict=True):
        if canon is not None:
            values[canon] = cell
        elif canonical_header(head):
            extra[canonical_header(head)] = cell
    return BronzeRow(number, values, extra or None, None, None)


def _clean(text: str | None) -> str | None:
    """Raw text safe to store (undecodable bytes shown as U+FFFD), without the line break."""
    if text is None:
        return None
    return _SURROGATE.sub("\ufffd", text).rstrip("\r\n")


# ---------------------------------------------------------------------------- CSV
def _csv_encoding(source: Source) -> str:
    return "utf-8" if source.encoding == "utf-8-sig" else source.encoding


class _LineTracker:
    """Iterator over text lines that remembers the lines making up the current CSV record."""

    def __init__(self, fh) -> None:
        self._fh = fh
        self.buffer: list[str] = []
        self.first = True

    def __iter__(self) -> _LineTracker:
        return self

    def __next__(self) -> str:
        line = next(self._fh)
        if self.first:
            self.first = False
            line = line.lstrip("\ufeff")
        self.buffer.append(line)
        return line

    def take(self) -> str:
        raw = "".join(self.buffer)
        self.buffer = []
        return raw


def open_csv(path: Path, source: Source) -> Delivery:
    """Open a CSV delivery: read the header now, stream rows later."""
    enc = _csv_encoding(source)
    d = Delivery(path=path, source=source, encoding=source.encoding)
    fh = open(path, encoding=enc, errors="surrogateescape", newline="")
    lines = _LineTracker(fh)
    reader = csv.reader(lines, strict=False)

    def next_record() -> tuple[list[str] | None, str | None, str]:
        try:
            rec = next(reader)
        except csv.Error as exc:
            return None, f"CSV_SYNTAX: {exc}", lines.take()
        return rec, None, lines.take()

    header: list[str] | None = None
    try:
        while header is None:
            rec, err, _raw = next_record()
            if err is None and rec is not None and any(c.strip() for c in rec):
                header = rec
    except StopIteration:
        fh.close()
        d.status = "empty"
        return d
    if any(_SURROGATE.search(h) for h in header):
        fh.close()
        d.status, d.error = "rejected", f"header not decodable as {source.encoding}"
        return d
    d.header = [canonical_header(h) for h in header]
    mapped = _map_header(d, header)
    if d.status == "rejected":
        fh.close()
        return d

    def stream() -> Iterator[BronzeRow]:
        number = 0
        try:
            while True:
                try:
                    rec, err, raw = next_record()
                except StopIteration:
                    return
                if err is None and rec is not None and not any(c.strip() for c in rec):
                    continue  # a blank line is not a row
                number += 1
                if err is not None:
                    yield BronzeRow(number, dict.fromkeys(source.columns), None, _clean(raw), err)
                else:
                    yield _row_from_cells(d, mapped, d.header, rec, number, raw)
        finally:
            fh.close()

    rows = stream()
    first = next(rows, None)
    if first is None:
        d.status = "header_only"
        return d
    d._first, d._rows = first, rows
    return d


# ---------------------------------------------------------------------------- XLSX
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters.decode():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def _merged_ranges(ws) -> list[tuple[int, int, int, int]]:
    """(min_row, min_col, max_row, max_col), 1-based rows / 0-based columns, streamed from the sheet XML."""
    out: list[tuple[int, int, int, int]] = []
    try:
        src = ws._get_source()
    except Exception:  # not a read-only sheet or no source: nothing to fill
        return out
    tail = b""
    with src:
        while block := src.read(1 << 20):
            data = tail + block
            for m in _MERGE.finditer(data):
                out.append((int(m.group(2)), _col_index(m.group(1)), int(m.group(4)), _col_index(m.group(3))))
            tail = data[-200:]  # a match across the boundary is found next time; repeats dedup below
    return sorted(set(out))


def cell_text(value: Any) -> str | None:
    """A cell's cached value as delivered text (dates ISO, whole floats without .0)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def open_xlsx(path: Path, source: Source) -> Delivery:
    """Open an XLSX delivery (first sheet, cached values, merged ranges filled)."""
    import openpyxl

    d = Delivery(path=path, source=source, encoding=None)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # not a workbook at all: the file is rejected, not skipped
        d.status, d.error = "rejected", f"not a readable XLSX file: {type(exc).__name__}: {exc}"[:500]
        return d
    ws = wb.worksheets[0]
    merges = _merged_ranges(ws)
    fills: dict[tuple[int, int], tuple[int, int]] = {}
    for r0, c0, r1, c1 in merges:
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                if (r, c) != (r0, c0):
                    fills[(r, c)] = (r0, c0)
    anchors: dict[tuple[int, int], str | None] = {}
    anchor_keys = set(fills.values())

    def texts(excel_row: int, cells: tuple) -> list[str | None]:
        vals = [cell_text(v) for v in cells]
        for c, v in enumerate(vals):
            if (excel_row, c) in anchor_keys:
                anchors[(excel_row, c)] = v
        if fills:
            for c in range(len(vals)):
                src = fills.get((excel_row, c))
                if src is not None and vals[c] is None:
                    vals[c] = anchors.get(src)
        return vals

    it = enumerate(ws.iter_rows(values_only=True), start=1)
    header: list[str | None] | None = None
    for excel_row, cells in it:
        vals = texts(excel_row, cells)
        if any(v is not None and str(v).strip() for v in vals):
            header = vals
            break
    if header is None:
        wb.close()
        d.status = "empty"
        return d
    while header and (header[-1] is None or not str(header[-1]).strip()):
        header.pop()
    d.header = [canonical_header(h or "") for h in header]
    mapped = _map_header(d, [h or "" for h in header])
    if d.status == "rejected":
        wb.close()
        return d

    def stream() -> Iterator[BronzeRow]:
        number = 0
        try:
            for excel_row, cells in it:
                vals = texts(excel_row, cells)
                if not any(v is not None and str(v).strip() for v in vals):
                    continue
                number += 1
                if len(vals) < len(d.header):  # short rows in a sheet are empty cells, not lost fields
                    vals = vals + [None] * (len(d.header) - len(vals))
                raw = json.dumps(vals, ensure_ascii=False)
                yield _row_from_cells(d, mapped, d.header, vals, number, raw)
        finally:
            wb.close()

    rows = stream()
    first = next(rows, None)
    if first is None:
        d.status = "header_only"
        return d
    d._first, d._rows = first, rows
    return d


def open_delivery(path: str | Path, source: Source) -> Delivery:
    """Open a delivery of ``source`` by its declared format; an empty (0-byte) file is status ``empty``."""
    path = Path(path)
    if path.stat().st_size == 0:
        return Delivery(path=path, source=source, status="empty", encoding=source.encoding)
    if source.format == "xlsx":
        return open_xlsx(path, source)
    return open_csv(path, source)
