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
filled with their top-left value. Dates become ISO text, whole floats lose ``.0``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gridlake.sources import Source
from jobs.bronze.readers import BronzeRow, Delivery, _clean, _map_header, _row_from_cells, canonical_header

_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+)(\d+):([A-Z]+)(\d+)"')
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


def _blank(vals: list[Any]) -> bool:
    return not any(v is not None and str(v).strip() for v in vals)


def _first_row(ws) -> tuple[int, list[str | None]] | None:
    """(excel row, texts) of the first non-empty row of a sheet, or None for an empty sheet."""
    for excel_row, cells in enumerate(ws.iter_rows(values_only=True), start=1):
        vals = [cell_text(v) for v in cells]
        if not _blank(vals):
            while vals and (vals[-1] is None or not str(vals[-1]).strip()):
                vals.pop()
            return excel_row, vals
    return None


def _probe(path: Path, source: Source, header: list[str | None]) -> Delivery:
    d = Delivery(path=path, source=source, encoding=None)
    _map_header(d, [h or "" for h in header])
    return d


def _choose_sheet(path: Path, source: Source, sheets: list) -> tuple[int | None, Delivery | None, list[str], str | None]:
    """(index of the data sheet, probe of the first non-empty sheet, descriptions of the others, rejection)."""
    found: list[int] = []
    first_probe: Delivery | None = None
    why: dict[int, str] = {}
    for i, ws in enumerate(sheets):
        head = _first_row(ws)
        if head is None:
            why[i] = "empty"
            continue
        probe = _probe(path, source, head[1])
        first_probe = first_probe or probe
        if probe.status == "rejected":
            why[i] = "no header of this source"
        else:
            found.append(i)
    if len(found) > 1:
        names = ", ".join(repr(sheets[i].title) for i in found)
        return None, first_probe, [], (f"MULTIPLE_DATA_SHEETS: sheets {names} all have the header of {source.name}; "
                                       "send one data sheet per file")
    others = [f"{sheets[i].title!r} ({why[i]})" for i in range(len(sheets)) if i not in found]
    return (found[0] if found else None), first_probe, others, None


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


def open_xlsx(path: Path, source: Source) -> Delivery:
    """Open an XLSX delivery (the one data sheet, cached values, merged ranges filled)."""
    import openpyxl

    d = Delivery(path=path, source=source, encoding=None)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        wbf = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # not a workbook at all (or truncated): the file is rejected, not skipped
        return d.reject(f"NOT_XLSX: not a readable XLSX file: {type(exc).__name__}: {exc}")

    def close() -> None:
        wb.close()
        wbf.close()

    try:
        index, probe, others, rejection = _choose_sheet(path, source, wb.worksheets)
    except Exception as exc:  # a sheet's XML is broken
        close()
        return d.reject(f"NOT_XLSX: a sheet could not be read: {type(exc).__name__}: {exc}")
    if rejection:
        close()
        return d.reject(rejection)
    if index is None:
        close()
        if probe is None:
            return d.reject("EMPTY_FILE: no sheet has a non-empty row", "empty")
        return probe  # rejected: the reason of the first non-empty sheet
    ws, wsf = wb.worksheets[index], wbf.worksheets[index]
    if others:
        d.notes.append(f"OTHER_SHEETS: read sheet {ws.title!r}; not read: {', '.join(others)}")

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

    it = zip(enumerate(ws.iter_rows(values_only=True), start=1), wsf.iter_rows(values_only=True), strict=False)
    header: list[str | None] | None = None
    for (excel_row, cells), _formulas in it:
        vals = texts(excel_row, cells)
        if not _blank(vals):
            header = vals
            break
    assert header is not None  # the sheet was chosen for its header
    while header and (header[-1] is None or not str(header[-1]).strip()):
        header.pop()
    d.header = [canonical_header(h or "") for h in header]
    mapped = _map_header(d, [h or "" for h in header])

    def stream() -> Iterator[BronzeRow]:
        number = 0
        try:
            for (excel_row, cells), formulas in it:
                vals = texts(excel_row, cells)
                if _blank(vals) and not any(isinstance(f, str) and f.startswith("=") for f in formulas):
                    continue
                number += 1
                if len(vals) < len(d.header):  # short rows in a sheet are empty cells, not lost fields
                    vals = vals + [None] * (len(d.header) - len(vals))
                raw = json.dumps(vals, ensure_ascii=False)
                problem = _formula_problem(cells, formulas)
                if problem:
                    yield BronzeRow(number, dict.fromkeys(source.columns), None, _clean(raw), f"{problem} (row {excel_row})")
                else:
                    yield _row_from_cells(d, mapped, d.header, vals, number, raw)
        except Exception as exc:  # a sheet broken half-way: the rows read so far stay, the break is a row too
            yield BronzeRow(number + 1, dict.fromkeys(source.columns), None, None,
                            f"READ_ERROR: the sheet could not be read after row {number}: {type(exc).__name__}: {exc}"[:500])
        finally:
            close()

    return d.start(stream())
