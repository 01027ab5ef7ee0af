"""Reading an XLSX delivery (openpyxl, read-only) into :class:`jobs.bronze.readers.BronzeRow` records.

Which sheet is read: **the one sheet whose first non-empty row maps to the source's
required columns** (in workbook order; usually the first sheet, but a cover sheet
such as 说明 in front of the data does not reject the delivery). The other sheets
are not read and are named in an ``OTHER_SHEETS`` note with why (empty, or no
header of this source). When more than one sheet has the source's header the file
is rejected (``MULTIPLE_DATA_SHEETS``): loading one would silently drop the other's
rows, loading both would guess what they mean (a copy? another day?).

Cells: cached values of formula cells are used (``data_only``); a formula cell
without a cached value (a workbook written by a tool that never calculated it)
makes its row ``FORMULA_NOT_CACHED`` and a cached Excel error (``#REF!``...)
``FORMULA_ERROR`` - instead of a silent empty or error text. Merged ranges are
filled with their top-left value (range by range, never cell by cell). Dates become
ISO text, whole floats lose ``.0``.

Limits (``ingest:`` in conf/sources.yaml, :class:`gridlake.sources.IngestConfig`), checked
before openpyxl parses a cell: the zip's members (``infolist``: total uncompressed size,
compression ratio of any large member), then each sheet's XML streamed as bytes (rows
and columns holding a value, cells covered by merged ranges). Over a limit the file is
rejected (``XLSX_LIMIT``). Rows are read up to the last row holding a value, so a sheet
whose dimension claims 1,048,576 empty rows costs one pass over its XML.

The header is the best-matching row among the first ``header_scan_rows`` rows of the
sheet (title rows and merged title cells above it are skipped).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridlake.sources import IngestConfig, Source
from jobs.bronze.delivery import (
    BronzeRow,
    Delivery,
    canonical_header,
    clean_raw,
    map_header,
    note_title_rows,
    pick_header,
    row_from_cells,
    safe_error,
)

_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
_CELL = re.compile(rb'<(?:\w+:)?c\s[^>]*?r="([A-Z]+)(\d+)"[^>]*?(/?)>')
_VALUE = re.compile(rb'\s*<(?:\w+:)?(?:v|f|is)[\s>/]')
EXCEL_ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA"})


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters.decode():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def _col_letters(index: int) -> str:
    out, n = "", index + 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def zip_problem(path: Path, config: IngestConfig) -> str | None:
    """Why the workbook's zip must not be opened (``XLSX_LIMIT: ...``), from its directory alone, or None."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    total = sum(i.file_size for i in infos)
    if total > config.xlsx_max_uncompressed_bytes:
        return (f"XLSX_LIMIT: {total:,} bytes uncompressed (limit {config.xlsx_max_uncompressed_bytes:,}, "
                "ingest.xlsx_max_uncompressed_bytes)")
    for i in infos:
        ratio = i.file_size / max(i.compress_size, 1)
        if i.file_size >= config.xlsx_ratio_min_bytes and ratio > config.xlsx_max_ratio:
            return (f"XLSX_LIMIT: a member compressed {ratio:,.0f}:1 ({i.file_size:,} bytes; limit "
                    f"{config.xlsx_max_ratio:g}, ingest.xlsx_max_ratio) - a zip bomb?")
    return None


@dataclass
class SheetScan:
    """What one pass over a sheet's XML bytes found: extent of the cells holding a value, merged ranges."""

    last_row: int = 0  # last row with a value (0: no value at all)
    max_col: int = 0  # columns up to the last one with a value
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)  # (row0, col0, row1, col1), cols 0-based
    merged_cells: int = 0


def scan_sheet(ws) -> SheetScan:
    """Stream a read-only sheet's XML: the extent of the cells holding a value and the merged ranges."""
    out = SheetScan()
    merges: set[tuple[int, int, int, int]] = set()
    tail = b""
    with ws._get_source() as src:  # openpyxl's read-only sheet source (a zip member stream)
        while block := src.read(1 << 20):
            data = tail + block
            keep = max(len(data) - 512, 0)  # a match starting in the last bytes is found next time
            for m in _CELL.finditer(data):
                if m.start() >= keep:
                    break
                if m.group(3) == b"/" or not _VALUE.match(data, m.end()):
                    continue
                row, col = int(m.group(2)), _col_index(m.group(1)) + 1
                out.last_row = max(out.last_row, row)
                out.max_col = max(out.max_col, col)
            for m in _MERGE.finditer(data):
                if m.start() >= keep:
                    break
                c0, r0 = _col_index(m.group(1)), int(m.group(2))
                c1, r1 = (_col_index(m.group(3)), int(m.group(4))) if m.group(3) else (c0, r0)
                merges.add((r0, c0, r1, c1))
            tail = data[keep:]
    for m in _CELL.finditer(tail):
        if m.group(3) != b"/" and _VALUE.match(tail, m.end()):
            out.last_row = max(out.last_row, int(m.group(2)))
            out.max_col = max(out.max_col, _col_index(m.group(1)) + 1)
    for m in _MERGE.finditer(tail):
        c0, r0 = _col_index(m.group(1)), int(m.group(2))
        c1, r1 = (_col_index(m.group(3)), int(m.group(4))) if m.group(3) else (c0, r0)
        merges.add((r0, c0, r1, c1))
    out.merges = sorted(merges)
    out.merged_cells = sum((r1 - r0 + 1) * (c1 - c0 + 1) for r0, c0, r1, c1 in out.merges)
    return out


def sheet_problem(scan: SheetScan, config: IngestConfig) -> str | None:
    """Why a sheet is over the limits (``XLSX_LIMIT: ...``), or None."""
    if scan.last_row > config.xlsx_max_rows:
        return f"XLSX_LIMIT: values down to row {scan.last_row} (limit {config.xlsx_max_rows}, ingest.xlsx_max_rows)"
    if scan.max_col > config.xlsx_max_columns:
        return (f"XLSX_LIMIT: values out to column {_col_letters(scan.max_col - 1)} (limit "
                f"{config.xlsx_max_columns}, ingest.xlsx_max_columns)")
    if scan.merged_cells > config.xlsx_max_merged_cells:
        return (f"XLSX_LIMIT: merged ranges cover {scan.merged_cells:,} cells (limit {config.xlsx_max_merged_cells:,}, "
                "ingest.xlsx_max_merged_cells)")
    return None


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


def _blank(vals: list[Any]) -> bool:
    return not any(v is not None and str(v).strip() for v in vals)


class _Filler:
    """Fills the cells of merged ranges with their top-left value, range by range (bounded by the limits)."""

    def __init__(self, merges: list[tuple[int, int, int, int]], last_row: int, width: int) -> None:
        self.by_row: dict[int, list[tuple[int, int, int, int]]] = {}
        for r0, c0, r1, c1 in merges:
            if c0 >= width or r0 > last_row:
                continue
            for r in range(r0, min(r1, last_row) + 1):
                self.by_row.setdefault(r, []).append((r0, c0, min(c1, width - 1), r1))
        self.anchors: dict[tuple[int, int], str | None] = {}

    def fill(self, excel_row: int, vals: list[str | None]) -> list[str | None]:
        ranges = self.by_row.get(excel_row)
        if not ranges:
            return vals
        for r0, c0, c1, _r1 in ranges:
            if r0 == excel_row and c0 < len(vals):
                self.anchors[(r0, c0)] = vals[c0]
            top = self.anchors.get((r0, c0))
            for c in range(c0, c1 + 1):
                if c < len(vals) and vals[c] is None and (excel_row, c) != (r0, c0):
                    vals[c] = top
        return vals


def _rows(ws, scan: SheetScan, max_row: int | None = None) -> Iterator[tuple[int, tuple]]:
    """(excel row, values) up to the last row with a value (never the sheet's claimed dimension)."""
    last = scan.last_row if max_row is None else min(scan.last_row, max_row)
    if last < 1 or scan.max_col < 1:
        return
    yield from enumerate(ws.iter_rows(min_row=1, max_row=last, max_col=scan.max_col, values_only=True), start=1)


def _header_candidates(ws, scan: SheetScan, rows: int) -> list[list[str | None]]:
    filler = _Filler(scan.merges, min(scan.last_row, rows), scan.max_col)
    return [filler.fill(r, [cell_text(v) for v in cells]) for r, cells in _rows(ws, scan, rows)]


def _probe(path: Path, source: Source, header: list[str | None]) -> Delivery:
    d = Delivery(path=path, source=source, encoding=None)
    map_header(d, [h or "" for h in header])
    return d


@dataclass
class _Choice:
    index: int | None = None
    header_at: int = 0  # 0-based index among the sheet's rows
    probe: Delivery | None = None  # of the first non-empty sheet
    others: list[str] = field(default_factory=list)
    rejection: str | None = None
    scans: dict[int, SheetScan] = field(default_factory=dict)


def _choose_sheet(path: Path, source: Source, sheets: list, config: IngestConfig) -> _Choice:
    """The data sheet: the one whose best header row maps the source's required columns."""
    out = _Choice()
    found: list[tuple[int, int]] = []
    why: dict[int, str] = {}
    for i, ws in enumerate(sheets):
        scan = scan_sheet(ws)
        out.scans[i] = scan
        if scan.last_row == 0:
            why[i] = "empty"
            continue
        problem = sheet_problem(scan, config)
        if problem:
            why[i] = "over the limits"
            if i == 0 or len(sheets) == 1:
                out.rejection = f"{problem} (sheet {ws.title!r})"
                return out
            continue
        cands = _header_candidates(ws, scan, config.header_scan_rows)
        at = pick_header(cands, source)
        if at is None:
            why[i] = "empty"
            continue
        probe = _probe(path, source, cands[at])
        out.probe = out.probe or probe
        if probe.status == "rejected":
            why[i] = "no header of this source"
        else:
            found.append((i, at))
    if len(found) > 1:
        names = ", ".join(repr(sheets[i].title) for i, _ in found)
        out.rejection = (f"MULTIPLE_DATA_SHEETS: sheets {names} all have the header of {source.name}; "
                         "send one data sheet per file")
        return out
    chosen = {i for i, _ in found}
    out.others = [f"{sheets[i].title!r} ({why[i]})" for i in range(len(sheets)) if i not in chosen]
    if found:
        out.index, out.header_at = found[0]
    return out


def _formula_problem(values: tuple, formulas: tuple) -> str | None:
    missing, errors = [], []
    for c, f in enumerate(formulas):
        if isinstance(f, str) and f.startswith("="):
            v = values[c] if c < len(values) else None
            if v is None:
                missing.append(_col_letters(c))
            elif isinstance(v, str) and v in EXCEL_ERRORS:
                errors.append(f"{_col_letters(c)} {v}")
    if missing:
        return (f"FORMULA_NOT_CACHED: formula cell(s) in column {', '.join(missing)} without a saved value "
                "(the workbook was never calculated; open and save it in Excel/WPS)")
    if errors:
        return f"FORMULA_ERROR: formula cell(s) with an error value: {', '.join(errors)}"
    return None


def open_xlsx(path: Path, source: Source, config: IngestConfig | None = None) -> Delivery:
    """Open an XLSX delivery (limits checked first; the one data sheet, cached values, merges filled)."""
    import openpyxl

    from gridlake.sources import load_ingest_config

    config = config or load_ingest_config()
    d = Delivery(path=path, source=source, encoding=None, detected_format="xlsx")
    try:
        problem = zip_problem(path, config)
    except Exception as exc:  # not a zip at all (or truncated)
        return d.reject(f"NOT_XLSX: not a readable XLSX file: {safe_error(exc)}")
    if problem:
        return d.reject(problem)
    handles = [open(path, "rb"), open(path, "rb")]  # file objects: any file name (a private copy) is read
    try:
        wb = openpyxl.load_workbook(handles[0], read_only=True, data_only=True)
        wbf = openpyxl.load_workbook(handles[1], read_only=True, data_only=False)
    except Exception as exc:  # not a workbook at all (or truncated): the file is rejected, not skipped
        for h in handles:
            h.close()
        return d.reject(f"NOT_XLSX: not a readable XLSX file: {safe_error(exc)}")

    def close() -> None:
        wb.close()
        wbf.close()
        for h in handles:
            h.close()

    try:
        choice = _choose_sheet(path, source, wb.worksheets, config)
    except Exception as exc:  # a sheet's XML is broken
        close()
        return d.reject(f"NOT_XLSX: a sheet could not be read: {safe_error(exc)}")
    if choice.rejection:
        close()
        return d.reject(choice.rejection)
    if choice.index is None:
        close()
        if choice.probe is None:
            return d.reject("EMPTY_FILE: no sheet has a non-empty row", "empty")
        d.status, d.error = choice.probe.status, choice.probe.error
        d.header_map = choice.probe.header_map
        return d  # rejected: the reason of the first non-empty sheet
    index, scan = choice.index, choice.scans[choice.index]
    ws, wsf = wb.worksheets[index], wbf.worksheets[index]
    if choice.others:
        d.notes.append(f"OTHER_SHEETS: read sheet {ws.title!r}; not read: {', '.join(choice.others)}")
    filler = _Filler(scan.merges, scan.last_row, scan.max_col)
    it = zip(_rows(ws, scan), (cells for _, cells in _rows(wsf, scan)), strict=False)
    header: list[str | None] = []
    for (excel_row, cells), _formulas in it:
        vals = filler.fill(excel_row, [cell_text(v) for v in cells])
        if excel_row == choice.header_at + 1:
            header = vals
            break
    while header and (header[-1] is None or not str(header[-1]).strip()):
        header.pop()
    d.header_row = choice.header_at + 1
    d.header = [canonical_header(h or "") for h in header]
    mapped = map_header(d, [h or "" for h in header])
    note_title_rows(d, choice.header_at)

    def stream() -> Iterator[BronzeRow]:
        number = 0
        try:
            for (excel_row, cells), formulas in it:
                vals = filler.fill(excel_row, [cell_text(v) for v in cells])
                if _blank(vals) and not any(isinstance(f, str) and f.startswith("=") for f in formulas):
                    continue
                number += 1
                if len(vals) < len(d.header):  # short rows in a sheet are empty cells, not lost fields
                    vals = vals + [None] * (len(d.header) - len(vals))
                raw = json.dumps(vals, ensure_ascii=False)
                problem = _formula_problem(cells, formulas)
                if problem:
                    yield BronzeRow(number, dict.fromkeys(source.columns), None, clean_raw(raw),
                                    f"{problem} (row {excel_row})")
                else:
                    yield row_from_cells(d, mapped, d.header, vals, number, raw, wide_ok=True)
        except Exception as exc:  # a sheet broken half-way: the rows read so far stay, the break is a row too
            yield BronzeRow(number + 1, dict.fromkeys(source.columns), None, None,
                            f"READ_ERROR: the sheet could not be read after row {number}: {safe_error(exc)}")
        finally:
            close()

    return d.start(stream())
