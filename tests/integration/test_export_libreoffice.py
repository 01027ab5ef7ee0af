"""Issue 6, in a real office suite: an officer's XLSX opened in LibreOffice shows masked IDs intact as text.

An export is written by ``jobs.gold.exports.write_exports`` from tiny inline follow-ups (as in
``tests/unit/test_exports.py``) holding the values spreadsheets like to mangle: 18-digit house codes
(Excel/Calc keep 15 significant digits, so ``...999`` would come back as ``4.40304001001002E+17`` or
``...000``), codes with leading zeros, a 23-digit code, hex ids that read as exponents
(``1e10000000000001``, ``00000000000000e5``), masked ID numbers and phones, an ISO date.

LibreOffice (``soffice --headless``, throwaway profile) converts the workbook twice:

* to CSV, every sheet, cell contents *as shown*: each of those cells must come back byte for byte;
* to flat ODS: LibreOffice must have loaded each of them as a *string* cell whose format is Text (``@``),
  so a cell an officer retypes stays text too.

A control workbook with the same values written naively (digit strings as numbers) goes through the
same conversion and must fail the same comparison, so the check is known to catch the bug.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from jobs.gold import exports
from tests.support.browser import find_binary


def find_soffice() -> str | None:
    """LibreOffice's ``soffice`` (``$GRIDLAKE_SOFFICE``, ``/usr/bin/soffice`` or on PATH)."""
    return find_binary("GRIDLAKE_SOFFICE", "/usr/bin/soffice", ("soffice", "libreoffice"))


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_soffice() is None, reason="LibreOffice not installed (no soffice; set GRIDLAKE_SOFFICE)"),
]

NIGHT = dt.date(2026, 11, 3)
# CSV export: comma, double quote, UTF-8, (import-only tokens), language, quote all text=false,
# detect special numbers (import-only), save cell contents AS SHOWN=true, formulas=false,
# remove spaces=false, sheet=-1 (every sheet, one <name>-<sheet>.csv each; LibreOffice >= 7.2).
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"
SCIENTIFIC = re.compile(rb"\d\.\d+E[+-]\d")  # how Calc shows a number too long for "General"

# (rank, header) -> the exact text the officer must see
ID_COL, HOUSE_COL, MASK_COL, PHONE_COL, DATE_COL = "问题编号", "房屋编码", "身份证号(脱敏)", "电话(脱敏)", "截止日期"
EXPECTED: dict[tuple[int, str], str] = {
    (1, ID_COL): "0123456789012345",
    (1, HOUSE_COL): "440304001001001999",
    (1, MASK_COL): "110105********1234",
    (1, PHONE_COL): "138****5678",
    (1, DATE_COL): "2026-11-10",
    (2, ID_COL): "1e10000000000001",
    (2, HOUSE_COL): "000304001001001003",
    (2, MASK_COL): "0000**********0012",
    (2, PHONE_COL): "0755****0000",
    (3, ID_COL): "00000000000000e5",
    (3, HOUSE_COL): "44030400100100100100120",
    (3, MASK_COL): "4403**********123X",
    (3, PHONE_COL): "138****0000",
    (4, ID_COL): "9007199254740993",
    (4, HOUSE_COL): "440304001001001000",
    (4, MASK_COL): "110105********0000",
    (4, PHONE_COL): "'+86 138****5678",  # a leading + is a formula trigger (OWASP): quoted
}
FIELD = {ID_COL: "discrepancy_id", HOUSE_COL: "house_code", MASK_COL: "masked_id", PHONE_COL: "masked_phone"}


def _followup(rank: int) -> dict:
    rec = {
        "run_date": NIGHT, "street": "沙头街道", "community": "上沙社区", "grid_id": "G001", "officer_id": "O-G001",
        "rank": rank, "rule": "R1", "rule_title": "出租屋有执法记录但无人申报",
        "address": "广东省深圳市福田区沙头街道上沙社区东村二坊12号602", "priority": 5.0 / rank,
        "reason_codes": ["ACTIVE_RENTAL"], "evidence_categories": ["公安"], "masked_name": "张*明",
        "is_new": rank == 1, "due_date": NIGHT + dt.timedelta(days=7), "status": "open",
    }
    rec.update({FIELD[h]: v for (r, h), v in EXPECTED.items() if r == rank and h in FIELD})
    return rec


def soffice(args: list[str], profile: Path) -> None:
    """One headless LibreOffice run with its own throwaway user profile."""
    cmd = [find_soffice() or "soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
           *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr.decode('utf-8', 'replace')[-2000:]}"


@pytest.fixture(scope="module")
def workbooks(tmp_path_factory) -> dict[str, Path]:
    """The real export (``export``) and the naive control (``naive``), each a one-sheet ``G001`` workbook."""
    root = tmp_path_factory.mktemp("lo-export")
    exports.write_exports([_followup(r) for r in (1, 2, 3, 4)], root / "exports", NIGHT)
    xlsx = root / "exports" / NIGHT.isoformat() / "沙头街道" / "G001.xlsx"
    work = root / "in"
    work.mkdir()
    export = shutil.copy2(xlsx, work / "export.xlsx")  # ASCII names for soffice's output files

    wb = Workbook()
    ws = wb.active
    ws.title = "G001"
    ws.append(list(exports.HEADERS))
    for rank in (1, 2, 3, 4):
        row = ["" for _ in exports.HEADERS]
        row[exports.HEADERS.index("排名")] = rank
        for (r, header), text in EXPECTED.items():
            if r == rank:
                row[exports.HEADERS.index(header)] = int(text) if text.isdigit() else text  # the bug
        ws.append(row)
    naive = work / "naive.xlsx"
    wb.save(naive)
    return {"export": Path(export), "naive": naive}


@pytest.fixture(scope="module")
def converted(workbooks, tmp_path_factory) -> dict[str, Path]:
    """LibreOffice's CSV (as shown) and flat-ODS renderings of both workbooks."""
    root = tmp_path_factory.mktemp("lo-out")
    profile = root / f"lo-profile-{os.getpid()}"
    files = [str(p) for p in workbooks.values()]
    soffice(["--convert-to", CSV_FILTER, "--outdir", str(root / "csv"), *files], profile)
    soffice(["--convert-to", "fods", "--outdir", str(root / "fods"), *files], profile)
    out = {}
    for name in workbooks:
        out[f"{name}.csv"] = root / "csv" / f"{name}-G001.csv"  # sheet=-1: <file>-<sheet>.csv
        out[f"{name}.fods"] = root / "fods" / f"{name}.fods"
    for path in out.values():
        assert path.is_file(), f"LibreOffice wrote no {path.name}: {sorted(p.name for p in root.rglob('*.*'))}"
    return out


def csv_cells(path: Path) -> dict[tuple[int, str], bytes]:
    """(row number from 1 below the header, header) -> the cell's bytes in LibreOffice's CSV."""
    raw = path.read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    header = rows[0]
    return {(i, h): cell.encode("utf-8") for i, row in enumerate(rows[1:], start=1) for h, cell in zip(header, row, strict=False)}


def mismatches(cells: dict[tuple[int, str], bytes]) -> dict[tuple[int, str], tuple[bytes | None, bytes]]:
    """Cells that do not read back as exactly the expected text."""
    return {key: (cells.get(key), text.encode("utf-8")) for key, text in EXPECTED.items()
            if cells.get(key) != text.encode("utf-8")}


def test_xlsx_stores_id_cells_as_text(workbooks):
    ws = load_workbook(workbooks["export"]).active
    headers = [c.value for c in ws[1]]
    for (rank, header), text in EXPECTED.items():
        cell = ws.cell(row=rank + 1, column=headers.index(header) + 1)
        assert cell.value == text, (rank, header)
        assert cell.data_type == "s", (rank, header, cell.data_type)
        assert cell.number_format == "@", (rank, header, cell.number_format)


def test_libreoffice_shows_ids_byte_identical(converted):
    raw = converted["export.csv"].read_bytes()
    cells = csv_cells(converted["export.csv"])
    assert mismatches(cells) == {}
    for text in EXPECTED.values():
        assert text.encode("utf-8") in raw
    assert not SCIENTIFIC.search(raw)  # no number shown in scientific notation anywhere in the sheet
    assert cells[(1, "排名")] == b"1" and cells[(1, "人员(脱敏)")] == "张*明".encode()


def test_libreoffice_loads_id_cells_as_text_format(converted):
    cells = fods_cells(converted["export.fods"])
    for key, text in EXPECTED.items():
        value_type, shown, text_format = cells[key]
        assert (value_type, shown, text_format) == ("string", text, True), key
    assert cells[(1, "排名")][0] == "float"  # numbers stay numbers: the check does tell them apart


def test_naive_numeric_ids_are_caught(converted):
    bad = mismatches(csv_cells(converted["naive.csv"]))
    digits_only = {key for key, text in EXPECTED.items() if text.isdigit()}
    assert set(bad) == digits_only
    shown = {key: got.decode() for key, (got, _) in bad.items()}
    assert shown[(1, HOUSE_COL)] == "4.40304001001002E+017"  # what an officer would have seen
    assert shown[(2, HOUSE_COL)] == "304001001001003"  # leading zeros gone
    assert SCIENTIFIC.search(converted["naive.csv"].read_bytes())
    types = fods_cells(converted["naive.fods"])
    assert {types[key][0] for key in digits_only} == {"float"}


def test_libreoffice_keeps_the_outcome_dropdown(converted):
    """The return form's 核查结果 column opens in LibreOffice with its list validation (the dropdown)."""
    from gridlake.loop_config import load_loop

    root = ET.parse(converted["export.fods"]).getroot()
    validations = {v.get(_q("table:name")): v for v in root.iter(_q("table:content-validation"))}
    lists = {name: v.get(_q("table:condition"), "") for name, v in validations.items()
             if "cell-content-is-in-list" in v.get(_q("table:condition"), "")}
    assert lists, f"no list validation in LibreOffice's rendering: {list(validations)}"
    labels = load_loop().labels
    name, condition = next(iter(lists.items()))
    for label in labels:
        assert label in condition, (label, condition)
    table = next(root.iter(_q("table:table")))
    rows = list(table.iter(_q("table:table-row")))
    header = []
    for cell in rows[0].iter(_q("table:table-cell")):
        repeat = min(int(cell.get(_q("table:number-columns-repeated"), "1")), 64)
        header += ["".join(cell.itertext()).strip()] * repeat  # some versions indent the flat ODS
    outcome_col = header.index("核查结果")
    for row in rows[1:5]:
        cells = []
        for cell in row.iter(_q("table:table-cell")):
            repeat = min(int(cell.get(_q("table:number-columns-repeated"), "1")), 64)
            cells += [cell.get(_q("table:content-validation-name"))] * repeat
        assert cells[outcome_col] == name, cells
        assert cells[header.index("问题编号")] is None  # only the input column has the list


def test_libreoffice_saves_no_formula(converted):
    raw = converted["export.fods"].read_bytes()
    assert b"table:formula=" not in raw


# --- flat ODS ------------------------------------------------------------------------------
NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "number": "urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
}


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


def fods_cells(path: Path) -> dict[tuple[int, str], tuple[str, str, bool]]:
    """(row below the header, header) -> (LibreOffice value type, displayed text, cell format is Text)."""
    root = ET.parse(path).getroot()
    text_styles = {e.get(_q("style:name")) for e in root.iter(_q("number:text-style"))}
    cell_text_format = {e.get(_q("style:name")): e.get(_q("style:data-style-name")) in text_styles
                        for e in root.iter(_q("style:style")) if e.get(_q("style:family")) == "table-cell"}
    table = next(root.iter(_q("table:table")))
    grid: list[list[tuple[str, str, bool]]] = []
    for row in table.iter(_q("table:table-row")):
        cells: list[tuple[str, str, bool]] = []
        for cell in row.iter(_q("table:table-cell")):
            repeat = min(int(cell.get(_q("table:number-columns-repeated"), "1")), 64)
            shown = "\n".join("".join(p.itertext()) for p in cell.findall(_q("text:p")))
            entry = (cell.get(_q("office:value-type"), ""), shown,
                     cell_text_format.get(cell.get(_q("table:style-name"), ""), False))
            cells += [entry] * repeat
        grid.append(cells)
    header = [c[1] for c in grid[0]]
    return {(i, h): cell for i, row in enumerate(grid[1:], start=1) for h, cell in zip(header, row, strict=False) if h}
