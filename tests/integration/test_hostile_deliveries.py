"""Hostile deliveries (issue 8): one landing folder holding every hostile case, one bronze+silver night.

The night is run once (module fixture); each case is then checked against what was
recorded - the manifest's file list, ``bronze._ingestion_log``, the bronze table,
``silver._conservation`` and ``silver._quarantine`` - with its reason code, and its
rows accounted for: bronze rows = silver + quarantine + duplicates per loaded file, a
rejected/empty/header-only file has zero bronze rows and a recorded error, a duplicate
file loads nothing of its own. The two good files of other sources load normally.

Reproduce: ``.venv/bin/python -m pytest -q tests/integration/test_hostile_deliveries.py``
(the reason codes are listed in docs/reliability.md, "Hostile deliveries").
"""

from __future__ import annotations

import csv
import datetime as dt
import io as _io
import json
import logging
import os
import random
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
from pyspark.sql import functions as F

from gridlake import io
from gridlake.config import load_settings
from gridlake.pipeline import run_night
from gridlake.sources import get_source, shown_path
from jobs.bronze.readers import MAX_RAW_CHARS, reason_code

pytestmark = pytest.mark.spark

DAY = "2026-11-01"
SOURCES = ("police_incidents", "verifications", "safety_inspections", "mediation_cases", "family_planning")
ID18 = "440304199001011234"  # test-only values with the shape of an ID number and a mobile number
PHONE = "13812345678"
PERSONAL = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15}|1[3-9]\d{9})(?![0-9A-Za-z])")
NON_UTF8_NAME = os.fsdecode("警情二".encode("gb18030") + b".csv")  # a name written by a Windows tool
VANISHING = "vanishing.csv"


# ----------------------------------------------------------------------------- building the landing folder
# the columns of a verifications CSV as an office types it (the return form's other columns are optional)
VERIFICATION_COLUMNS = ["verification_id", "discrepancy_id", "checked_at", "outcome", "officer_id", "note"]


def _header(source: str, columns: list[str] | None = None) -> list[str]:
    src = get_source(source)  # the fixtures' rows carry the columns a department's extract usually has
    return [src.columns[c] for c in (columns or [c for c in src.canonical_columns if c not in src.often_absent])]


def _csv_text(header: list[str], rows: list[list[str]], end: str = "\n") -> str:
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator=end)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _police(pid: str, address: str = "福田区福华路18号", kind: str = "盗窃") -> list[str]:
    return [pid, "2026-11-01 08:00", address, kind, ""]


def _put(landing: Path, source: str, name: str, data: bytes, day: str = DAY) -> Path:
    folder = landing / source / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _patch_sheet(path: Path, sheet_xml: str, cell: str, value: str, kind: str = "str") -> None:
    """Give formula cell ``cell`` a cached value of type ``kind`` (str, e), as Excel saves it."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == sheet_xml:
                xml = data.decode()
                xml, n = re.subn(rf'<c r="{cell}"([^>]*)><f>([^<]*)</f>(<v\s*/>|<v></v>)?</c>',
                                 rf'<c r="{cell}" t="{kind}"><f>\2</f><v>{value}</v></c>', xml)
                assert n == 1, f"formula cell {cell} not found in {sheet_xml}"
                data = xml.encode()
            zout.writestr(item, data)
    tmp.replace(path)


def _several_sheets_xlsx(path: Path) -> None:
    """A cover sheet, the data sheet (merged cells, formula cells), a summary sheet and an empty sheet."""
    wb = openpyxl.Workbook()
    cover = wb.active
    cover.title = "说明"
    cover.append(["福田区安全生产检查记录,请勿修改表头"])
    ws = wb.create_sheet("检查记录")
    ws.append(_header("safety_inspections"))
    ws.append(["S-X1", dt.datetime(2026, 11, 1), "福田区福华路18号", "消防隐患", "重大"])
    ws.append(["S-X2", dt.datetime(2026, 11, 1), None, "私拉电线", "一般"])  # address from the merged C2:C3
    ws.append([None, dt.datetime(2026, 11, 1), "福田区上沙村东村二坊12号", "通道堵塞", "一般"])
    ws.append(["S-X4", dt.datetime(2026, 11, 1), "福田区上沙村东村二坊13号", "通道堵塞", None])
    ws.append(["S-X5", dt.datetime(2026, 11, 1), "福田区上沙村东村二坊14号", "燃气隐患", None])
    ws["A4"] = '="S-X"&"3"'  # formula with a cached value (patched below)
    ws["E5"] = '=IF(1,"一般","重大")'  # formula never calculated: no cached value
    ws["E6"] = "=1/0"  # formula whose cached value is an Excel error
    ws.merge_cells("C2:C3")
    summary = wb.create_sheet("汇总")
    summary.append(["合计"])
    summary.append(["=COUNTA(检查记录!A:A)-1"])
    wb.create_sheet("空表")
    wb.save(path)
    _patch_sheet(path, "xl/worksheets/sheet2.xml", "A4", "S-X3")
    _patch_sheet(path, "xl/worksheets/sheet2.xml", "E6", "#DIV/0!", kind="e")


def _two_data_sheets_xlsx(path: Path) -> None:
    wb = openpyxl.Workbook()
    for i, ws in enumerate([wb.active, wb.create_sheet("11月1日(2)")]):
        ws.append(_header("safety_inspections"))
        ws.append([f"S-M{i}", "2026-11-01", "福田区福华路20号", "消防隐患", "一般"])
    wb.save(path)


def build_landing(landing: Path) -> None:
    """Write every hostile case (and two good files of other sources) for night DAY."""
    ph = _header("police_incidents")
    gb = "gb18030"
    # --- police_incidents (declared gb18030 CSV) ---
    _put(landing, "police_incidents", "truncated_row.csv", (_csv_text(ph, [_police("P-TR1"), _police("P-TR2")])
                                                            + "P-TR3,2026-11-01 08:00,福田区上沙村,噪").encode(gb))
    cut = _csv_text(ph, [_police("P-TM1"), _police("P-TM2", "福田区上沙村")]).encode(gb)
    _put(landing, "police_incidents", "truncated_multibyte.csv", cut[: cut.rindex("村".encode(gb)) + 1])
    _put(landing, "police_incidents", "declared_gb18030_is_utf8.csv",
         _csv_text(ph, [_police("P-EN1"), _police("P-EN2", "福田区上沙村东村二坊12号")]).encode("utf-8"))
    rnd = random.Random(8)
    _put(landing, "police_incidents", "binary_garbage.csv", bytes(rnd.randrange(256) for _ in range(4096)))
    zipped = _io.BytesIO()
    wb = openpyxl.Workbook()
    wb.active.append(ph)
    wb.active.append(_police("P-XC1"))
    wb.save(zipped)
    _put(landing, "police_incidents", "xlsx_named_csv.csv", zipped.getvalue())
    mixed = (",".join(ph) + "\r\n" + ",".join(_police("P-NL1")) + "\n" + ",".join(_police("P-NL2")) + "\r\n"
             + 'P-NL3,2026-11-01 08:00,"福田区福华路\r\n18号",盗窃,\n' + ",".join(_police("P-NL4")) + "\r\n")
    _put(landing, "police_incidents", "mixed_line_endings.csv", mixed.encode(gb))
    quotes = _csv_text(ph, [_police("P-Q1", '福田区福华路"18号", 2楼\n近地铁')]) + \
        'P-Q2,2026-11-01 08:00,"福田区福华路19号,盗窃,\n' + \
        ",".join(_police("P-Q3")) + "\n" + ",".join(_police("P-Q4")) + "\n"
    _put(landing, "police_incidents", "quotes_and_newlines.csv", quotes.encode(gb))
    huge = "福" * (5 * 1024 * 1024)  # 10 MiB in gb18030
    _put(landing, "police_incidents", "huge_field.csv",
         _csv_text(ph, [_police("P-HF1"), _police("P-HF2", huge), _police("P-HF3")]).encode(gb))
    order = ["address", "incident_id", "person_ids", "reported_at", "incident_type"]
    _put(landing, "police_incidents", "reordered_columns.csv",
         _csv_text(_header("police_incidents", order), [["福田区福华路21号", "P-RO1", "", "2026-11-01 09:00", "盗窃"]])
         .encode(gb))
    _put(landing, "police_incidents", "missing_required_column.csv",
         _csv_text(_header("police_incidents", ["incident_id", "reported_at", "incident_type"]),
                   [["P-MR1", "2026-11-01", "盗窃"]]).encode(gb))
    _put(landing, "police_incidents", "missing_optional_columns.csv",
         _csv_text(_header("police_incidents", ["incident_id", "reported_at", "address"]),
                   [["P-MO1", "2026-11-01 10:00", "福田区福华路22号"]]).encode(gb))
    _put(landing, "police_incidents", "extra_columns.csv",
         _csv_text(ph + ["天气", "录入人"], [_police("P-EX1") + ["晴", "张三"]]).encode(gb))
    same = _csv_text(ph, [_police("P-DUP1")]).encode(gb)
    _put(landing, "police_incidents", "copy_a.csv", same)
    _put(landing, "police_incidents", "copy_b.csv", same)
    _put(landing, "police_incidents", "empty.csv", b"")
    _put(landing, "police_incidents", "header_only.csv", _csv_text(ph, []).encode(gb))
    # --- verifications (declared utf-8 CSV) ---
    vh = _header("verifications", VERIFICATION_COLUMNS)
    _put(landing, "verifications", "bom.csv",
         b"\xef\xbb\xbf" + _csv_text(vh, [["V-BOM1", "Q1", "2026-11-01", "属实", "O1", "备注"]]).encode("utf-8"))
    _put(landing, "verifications", "declared_utf8_is_gb18030.csv",
         _csv_text(vh, [["V-GB1", "Q2", "2026-11-01", "空置", "O1", "无人居住"]]).encode(gb))
    _put(landing, "verifications", "police_file_in_wrong_folder.csv", _csv_text(ph, [_police("P-WF1")]).encode(gb))
    # --- safety_inspections (XLSX) ---
    folder = landing / "safety_inspections" / DAY
    folder.mkdir(parents=True)
    _several_sheets_xlsx(folder / "several_sheets.xlsx")
    _several_sheets_xlsx(folder / "truncated.xlsx")
    data = (folder / "truncated.xlsx").read_bytes()
    (folder / "truncated.xlsx").write_bytes(data[: len(data) // 2])
    _two_data_sheets_xlsx(folder / "two_data_sheets.xlsx")
    # --- misplaced files and folders ---
    (landing / "police_incidents" / "stray.csv").write_bytes(_csv_text(ph, [_police("P-ST1")]).encode(gb))
    _put(landing, "police_incidents", "part1.csv", _csv_text(ph, [_police("P-ND1")]).encode(gb), day="2026-13-01")
    _put(landing, "mediation_cases", "part1.csv", b"x", day="20261101")
    # --- two good files of other sources ---
    _put(landing, "mediation_cases", "part1.csv", _csv_text(_header("mediation_cases"), [
        ["M-1", "2026-11-01", "福田区福华路18号", "邻里纠纷", "", ""],
        ["M-2", "2026-11-01", "福田区上沙村东村二坊12号", "租赁纠纷", "", ""]]).encode(gb))
    _put(landing, "family_planning", "part1.csv", _csv_text(_header("family_planning"), [
        ["F-1", "2026-11-01", "福田区福华路18号", "", "计生服务"],
        ["F-2", "2026-11-01", "福田区上沙村东村二坊12号", "", "流动人口婚育证明"]]).encode(gb))


def _sheet_patched(path: Path, rows: list[list[object]], fn) -> None:
    wb = openpyxl.Workbook()
    for r in rows:
        wb.active.append(r)
    wb.save(path)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = fn(data.decode()).encode()
            zout.writestr(item.filename, data)
    tmp.replace(path)


def build_forms(landing: Path) -> None:
    """The kinds of issues 16/17 at file level: forms departments send, and landing hazards."""
    ph = _header("police_incidents")
    gb = "gb18030"
    sh = _header("safety_inspections")
    put = _put
    put(landing, "police_incidents", "utf16.csv",
        _csv_text(ph, [_police("P-U1"), _police("P-U2", "福田区上沙村东村二坊12号")], end="\r\n").encode("utf-16"))
    put(landing, "police_incidents", "title_row.csv",
        ("福田区沙头街道2026年11月警情登记表,,,,\n\n" + _csv_text(ph, [_police("P-T1")])).encode(gb))
    put(landing, "police_incidents", "duplicated_headers.csv",
        _csv_text(ph + ["发生地址"], [_police("P-DH1") + ["福田区福华路99号"]]).encode(gb))
    put(landing, "police_incidents", "data_under_empty_header.csv",
        _csv_text(ph + [""], [_police("P-EH1") + ["录入人备注"]]).encode(gb))
    put(landing, "police_incidents", "nul_tail.csv",
        _csv_text(ph, [_police("P-NT1"), _police("P-NT2")]).encode(gb) + "P-NT3,2026-11-01 08:00,福田".encode(gb)
        + b"\x00" * 512 + b"\x8f\x01\xfe\x00\x00")
    renamed = ["接警编号", "接警时间", "案发地址", "警情类型", "涉事人员公民身份号码"]
    put(landing, "police_incidents", "renamed_headers.csv",
        _csv_text(renamed, [["P-RH1", "2026-11-01 08:00", "福田区福华路18号", "盗窃", ID18]]).encode(gb))
    put(landing, "police_incidents", "UPPER.CSV", _csv_text(ph, [_police("P-UC1")]).encode(gb))
    put(landing, "police_incidents", "沙头街道/sub_part.csv", _csv_text(ph, [_police("P-SF1")]).encode(gb))
    put(landing, "police_incidents", NON_UTF8_NAME, _csv_text(ph, [_police("P-NU1")]).encode(gb))
    put(landing, "police_incidents", "legacy.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2048))
    put(landing, "police_incidents", "growing.csv", _csv_text(ph, [_police("P-GR1")]).encode(gb))
    put(landing, "police_incidents", VANISHING, _csv_text(ph, [_police("P-VA1")]).encode(gb))
    (landing / "police_incidents" / DAY / "passwd.csv").symlink_to("/etc/passwd")
    put(landing, "police_incidents", "no_header.csv", _csv_text(["P-NH0", "2026-11-01 08:00", "福田区福华路18号", "盗窃", ID18],
                                                                 [_police("P-NH1")]).encode(gb))
    vh = _header("verifications", VERIFICATION_COLUMNS)
    put(landing, "verifications", "second_bom.csv", b"\xef\xbb\xbf" + _csv_text(vh, [["V-SB1", "Q1", "2026-11-01", "属实", "O1", ""]]).encode()
        + b"\xef\xbb\xbf" + _csv_text(vh, [["V-SB2", "Q2", "2026-11-01", "空置", "O1", ""]]).encode())
    folder = landing / "safety_inspections" / DAY
    row = ["S-F1", "2026-11-01", "福田区福华路18号", "消防隐患", "一般"]
    _sheet_patched(folder / "whole_sheet_merge.xlsx", [sh, row], lambda x: x.replace(
        "</sheetData>", '</sheetData><mergeCells count="1"><mergeCell ref="A1:XFD1048576"/></mergeCells>'))
    empty = "".join(f'<row r="{n}" spans="1:5" customFormat="1"><c r="A{n}"/></row>' for n in range(4, 1_048_577))
    _sheet_patched(folder / "million_empty_rows.xlsx", [sh, ["S-E1", *row[1:]], ["S-E2", *row[1:]]],
                   lambda x: re.sub(r'<dimension ref="[^"]*"\s*/>', '<dimension ref="A1:XFD1048576"/>', x)
                   .replace("</sheetData>", empty + "</sheetData>"))
    _sheet_patched(folder / "title_rows.xlsx", [["福田区安全生产检查记录(2026年11月)"], [None], sh, ["S-T1", *row[1:]]],
                   lambda x: x.replace("</sheetData>",
                                       '</sheetData><mergeCells count="1"><mergeCell ref="A1:E1"/></mergeCells>'))
    bomb = folder / "zip_bomb.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(sh)
    wb.active.append(["S-B1", *row[1:]])
    wb.save(bomb)
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as z, z.open("xl/media/pad.bin", "w") as fh:
        for _ in range(48):
            fh.write(b"\0" * (1 << 20))
    # everything was delivered an hour ago, except the file still being uploaded
    old = time.time() - 3600
    for path in landing.rglob("*"):
        if path.name != "growing.csv":
            os.utime(path, (old, old), follow_symlinks=False)


# ----------------------------------------------------------------------------- expectations per case
@dataclass(frozen=True)
class Case:
    """One delivered file and what must be recorded for it."""

    source: str
    name: str
    status: str  # loaded | rejected | empty | header_only | duplicate | ignored | waiting
    code: str | None  # file-level reason code (error or note), None for a clean load
    bronze: int = 0
    silver: int = 0
    quarantine: int = 0
    row_codes: tuple[str, ...] = ()  # codes of the malformed rows (inside quarantine MALFORMED_ROW details)


CASES = [
    Case("police_incidents", "truncated_row.csv", "loaded", None, 3, 2, 1, ("TRUNCATED_ROW",)),
    Case("police_incidents", "truncated_multibyte.csv", "loaded", None, 2, 1, 1, ("TRUNCATED_ROW",)),
    Case("police_incidents", "declared_gb18030_is_utf8.csv", "loaded", "ENCODING_MISMATCH", 2, 2, 0),
    Case("police_incidents", "binary_garbage.csv", "rejected", "BINARY_CONTENT"),
    Case("police_incidents", "xlsx_named_csv.csv", "loaded", None, 1, 1, 0),
    Case("police_incidents", "mixed_line_endings.csv", "loaded", None, 4, 4, 0),
    Case("police_incidents", "quotes_and_newlines.csv", "loaded", None, 4, 3, 1, ("UNBALANCED_QUOTE",)),
    Case("police_incidents", "huge_field.csv", "loaded", None, 3, 2, 1, ("FIELD_TOO_LARGE",)),
    Case("police_incidents", "reordered_columns.csv", "loaded", None, 1, 1, 0),
    Case("police_incidents", "missing_required_column.csv", "rejected", "MISSING_COLUMNS"),
    Case("police_incidents", "missing_optional_columns.csv", "loaded", "MISSING_OPTIONAL_COLUMNS", 1, 1, 0),
    Case("police_incidents", "extra_columns.csv", "loaded", "EXTRA_COLUMNS", 1, 1, 0),
    Case("police_incidents", "copy_a.csv", "loaded", None, 1, 1, 0),
    Case("police_incidents", "copy_b.csv", "duplicate", "DUPLICATE_CONTENT"),
    Case("police_incidents", "empty.csv", "empty", "EMPTY_FILE"),
    Case("police_incidents", "header_only.csv", "header_only", "HEADER_ONLY"),
    Case("verifications", "bom.csv", "loaded", "MISSING_OPTIONAL_COLUMNS", 1, 1, 0),  # the return form's other columns
    Case("verifications", "declared_utf8_is_gb18030.csv", "loaded", "ENCODING_MISMATCH", 1, 1, 0),
    Case("verifications", "police_file_in_wrong_folder.csv", "rejected", "WRONG_SOURCE"),
    Case("safety_inspections", "several_sheets.xlsx", "loaded", "OTHER_SHEETS", 5, 3, 2,
         ("FORMULA_NOT_CACHED", "FORMULA_ERROR")),
    Case("safety_inspections", "truncated.xlsx", "rejected", "NOT_XLSX"),
    Case("safety_inspections", "two_data_sheets.xlsx", "rejected", "MULTIPLE_DATA_SHEETS"),
    Case("police_incidents", "utf16.csv", "loaded", "ENCODING_MISMATCH", 2, 2, 0),
    Case("police_incidents", "title_row.csv", "loaded", None, 1, 1, 0),
    Case("police_incidents", "duplicated_headers.csv", "loaded", "EXTRA_COLUMNS", 1, 1, 0),
    Case("police_incidents", "data_under_empty_header.csv", "loaded", "EXTRA_COLUMNS", 1, 1, 0),
    Case("police_incidents", "nul_tail.csv", "loaded", None, 3, 2, 1, ("DAMAGED_TAIL",)),
    Case("police_incidents", "renamed_headers.csv", "loaded", None, 1, 1, 0),
    Case("police_incidents", "UPPER.CSV", "loaded", None, 1, 1, 0),
    Case("police_incidents", "sub_part.csv", "loaded", None, 1, 1, 0),
    Case("police_incidents", shown_path(NON_UTF8_NAME), "loaded", None, 1, 1, 0),
    Case("police_incidents", "legacy.xls", "rejected", "LEGACY_XLS"),
    Case("police_incidents", "growing.csv", "waiting", "NOT_READY"),
    Case("police_incidents", VANISHING, "rejected", "VANISHED"),
    Case("police_incidents", "passwd.csv", "ignored", "SYMLINK"),
    Case("police_incidents", "no_header.csv", "rejected", "MISSING_COLUMNS"),
    Case("verifications", "second_bom.csv", "loaded", "MISSING_OPTIONAL_COLUMNS", 2, 2, 0),
    Case("safety_inspections", "whole_sheet_merge.xlsx", "rejected", "XLSX_LIMIT"),
    Case("safety_inspections", "million_empty_rows.xlsx", "loaded", None, 2, 2, 0),
    Case("safety_inspections", "title_rows.xlsx", "loaded", None, 1, 1, 0),
    Case("safety_inspections", "zip_bomb.xlsx", "rejected", "XLSX_LIMIT"),
    Case("mediation_cases", "part1.csv", "loaded", None, 2, 2, 0),
    Case("family_planning", "part1.csv", "loaded", None, 2, 2, 0),
]
ANOMALIES = {  # misplaced things: recorded in the manifest's landing_anomalies, never loaded
    ("police_incidents", "stray.csv"): "file_outside_date_folder",
    ("police_incidents", "2026-13-01"): "not_a_date_folder",
    ("mediation_cases", "20261101"): "not_a_date_folder",
}


@dataclass
class Night:
    """Everything recorded by the one run, collected once (no Spark action per case)."""

    landing: Path
    manifest: dict
    files: dict[tuple[str, str], dict]  # manifest file records by (source, file name)
    logged: dict[tuple[str, str], object]  # ingestion log rows
    bronze: dict[tuple[str, str], list]  # bronze rows per file
    conservation: dict[str, object]  # by sha
    quarantine: dict[str, list]  # by sha
    silver: dict[str, dict[str, object]]  # source -> business key -> silver row
    seconds: float
    logs: list[str]  # every log record of the run, formatted


class _Recorder(logging.Handler):
    """Keeps every log text of the run; removes the vanishing file once landing has been listed."""

    def __init__(self, landing: Path) -> None:
        super().__init__(logging.DEBUG)
        self.landing, self.texts = landing, []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        if record.getMessage().startswith("landing:"):  # discovery is over, no file read yet
            (self.landing / "police_incidents" / DAY / VANISHING).unlink(missing_ok=True)


def _key(source: str, path: str) -> tuple[str, str]:
    return source, Path(path).name


@pytest.fixture(scope="module")
def night(spark, tmp_path_factory) -> Night:
    import time

    settings = load_settings("local", data_root=tmp_path_factory.mktemp("hostile") / "data")
    build_landing(settings.landing)
    build_forms(settings.landing)
    recorder = _Recorder(settings.landing)
    recorder.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("jobs", "gridlake")]  # the project's own log texts
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(recorder)
        lg.setLevel(logging.DEBUG)
    os.environ["GRIDLAKE_INGEST__STABLE_SECONDS"] = "60"
    started = time.monotonic()
    try:
        manifest = run_night(settings, dt.date.fromisoformat(DAY), ["bronze", "silver"], spark=spark)
    finally:
        os.environ.pop("GRIDLAKE_INGEST__STABLE_SECONDS", None)
        for lg, lvl in zip(loggers, levels, strict=True):
            lg.removeHandler(recorder)
            lg.setLevel(lvl)
    seconds = time.monotonic() - started
    files = {_key(f["source"], f["path"]): f for f in manifest.doc["files"]}
    logged = {_key(r.source, r.path): r for r in io.read_table(spark, settings, "bronze", "_ingestion_log").collect()}
    bronze: dict[tuple[str, str], list] = {}
    silver: dict[str, dict[str, object]] = {}
    keys = {"police_incidents": "incident_id", "verifications": "verification_id",
            "safety_inspections": "inspection_id", "mediation_cases": "case_id", "family_planning": "record_id"}
    for source in SOURCES:
        rows = io.read_table(spark, settings, "bronze", source).select(
            "_source_file", "_row_number", "_malformed_reason", "_raw_line", "_encoding", "_extra",
            F.col(keys[source]).alias("key")).collect()
        for r in rows:
            bronze.setdefault(_key(source, r._source_file), []).append(r)
        silver[source] = {r[keys[source]]: r for r in io.read_table(spark, settings, "silver", source).collect()}
    conservation = {r.file_sha256: r for r in io.read_table(spark, settings, "silver", "_conservation").collect()}
    quarantine: dict[str, list] = {}
    for r in io.read_table(spark, settings, "silver", "_quarantine").select(
            "_file_sha256", "reason_code", "reason_detail").collect():
        quarantine.setdefault(r._file_sha256, []).append(r)
    return Night(settings.landing, manifest.doc, files, logged, bronze, conservation, quarantine, silver, seconds,
                 recorder.texts)


# ----------------------------------------------------------------------------- per case
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.source}/{c.name}")
def test_each_case_is_recorded_with_its_status_and_reason(night, case):
    rec = night.files[(case.source, case.name)]
    assert rec["status"] == case.status
    assert reason_code(rec["error"]) == case.code, rec["error"]
    if case.status in ("rejected", "empty", "header_only", "ignored", "waiting"):
        assert rec["error"] and len(rec["error"]) > len(case.code) + 5  # a reason with words, not just a code
    if case.status == "duplicate":
        assert (case.source, case.name) not in night.logged  # the content is logged once, under its first name
        assert "copy_a.csv" in rec["error"]
        return
    log = night.logged[(case.source, case.name)]
    assert log.status == case.status
    assert reason_code(log.error) == case.code, log.error


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.source}/{c.name}")
def test_each_case_accounts_for_every_row(night, case):
    rec = night.files[(case.source, case.name)]
    bronze = night.bronze.get((case.source, case.name), [])
    assert len(bronze) == case.bronze
    if case.status != "loaded":
        assert rec["bronze_rows"] == 0
        return
    assert night.logged[(case.source, case.name)].bronze_rows == case.bronze
    c = night.conservation[rec["sha256"]]
    assert (c.bronze_rows, c.silver_rows, c.quarantine_rows, c.duplicate_rows) == (case.bronze, case.silver,
                                                                                   case.quarantine, 0)
    assert c.balanced and c.bronze_rows == c.silver_rows + c.quarantine_rows + c.duplicate_rows
    quarantined = night.quarantine.get(rec["sha256"], [])
    assert len(quarantined) == case.quarantine
    assert all(q.reason_code == "MALFORMED_ROW" for q in quarantined)
    assert sorted(reason_code(q.reason_detail) for q in quarantined) == sorted(case.row_codes)
    assert sorted(reason_code(r._malformed_reason) for r in bronze if r._malformed_reason) == sorted(case.row_codes)
    assert all(r._raw_line for r in bronze if r._malformed_reason)  # the raw line is kept with the reason
    keys = [r.key for r in bronze if not r._malformed_reason]
    assert all(k in night.silver[case.source] for k in keys)  # the rows that parsed are in silver


@pytest.mark.parametrize("where,kind", sorted(ANOMALIES.items()), ids=lambda v: "/".join(v) if isinstance(v, tuple) else v)
def test_misplaced_files_and_folders_are_reported_not_loaded(night, where, kind):
    found = [a for a in night.manifest["landing_anomalies"] if (a["source"], Path(a["path"]).name) == where]
    assert [a["kind"] for a in found] == [kind]
    assert found[0]["detail"]
    assert not any(r.key in ("P-ST1", "P-ND1") for rows in night.bronze.values() for r in rows)


# ----------------------------------------------------------------------------- what was loaded is right
def test_loaded_values_survive_the_hostile_shapes(night):
    police = night.silver["police_incidents"]
    assert police["P-EN2"].address_raw == "福田区上沙村东村二坊12号"  # UTF-8 read as UTF-8, not as gb18030 mojibake
    assert police["P-NL3"].address_raw == "福田区福华路\r\n18号"  # line break inside quotes kept; no stray \r elsewhere
    assert police["P-NL2"].address_raw == "福田区福华路18号" and police["P-NL4"].incident_type == "盗窃"
    assert police["P-Q1"].address_raw == '福田区福华路"18号", 2楼\n近地铁'
    assert police["P-RO1"].address_raw == "福田区福华路21号" and police["P-RO1"].incident_type == "盗窃"
    assert police["P-MO1"].incident_type is None
    assert police["P-HF1"] and police["P-HF3"]  # the rows around the 10 MB field load
    assert night.silver["verifications"]["V-GB1"].note == "无人居住"
    assert night.silver["verifications"]["V-BOM1"].outcome == "confirmed"
    safety = night.silver["safety_inspections"]
    assert sorted(k for k in safety if k.startswith("S-X")) == ["S-X1", "S-X2", "S-X3"]  # S-X3: cached formula value
    assert safety["S-X2"].address_raw == "福田区福华路18号"  # merged cell filled from its top-left value

    encodings = {name: {r._encoding for r in rows} for (_, name), rows in night.bronze.items()}
    assert encodings["declared_gb18030_is_utf8.csv"] == {"utf-8"}
    assert encodings["declared_utf8_is_gb18030.csv"] == {"gb18030"}
    assert encodings["truncated_row.csv"] == {"gb18030"}
    extra = [r._extra for r in night.bronze[("police_incidents", "extra_columns.csv")]]
    assert extra == [{"天气": "晴", "录入人": "张三"}]
    huge = [r for r in night.bronze[("police_incidents", "huge_field.csv")] if r._malformed_reason][0]
    assert len(huge._raw_line) <= MAX_RAW_CHARS + 100  # the 10 MB line is not copied into bronze
    note = night.logged[("safety_inspections", "several_sheets.xlsx")].error  # bronze's own log keeps the names
    assert "'检查记录'" in note and "'说明'" in note and "'汇总'" in note and "'空表'" in note
    shown = night.files[("safety_inspections", "several_sheets.xlsx")]["error"]  # the manifest: sanitised
    assert shown.startswith("OTHER_SHEETS") and "检查记录" not in shown


def test_the_night_as_a_whole(night):
    """Every file in landing is recorded or covered by an anomaly; conservation balances; the good files load."""
    recorded = {Path(f["path"]) for f in night.manifest["files"]}
    covered = [Path(a["path"]) for a in night.manifest["landing_anomalies"]]
    for path in night.landing.rglob("*"):
        if path.is_file() or path.is_symlink():
            path = Path(shown_path(path))
            assert path in recorded or any(path == c or c in path.parents for c in covered), path
    assert {(c.source, c.name) for c in CASES} == set(night.files)
    assert night.manifest["conservation"]["run"]["balanced"] is True
    assert night.manifest["status"] == "success"
    loaded = [c for c in CASES if c.status == "loaded"]
    assert night.manifest["conservation"]["run"]["bronze_rows"] == sum(c.bronze for c in loaded)
    assert night.manifest["stages"]["bronze"]["files_by_status"] == {
        s: sum(1 for c in CASES if c.status == s) for s in {c.status for c in CASES}}
    assert sorted(night.silver["mediation_cases"]) == ["M-1", "M-2"]
    assert sorted(night.silver["family_planning"]) == ["F-1", "F-2"]
    print(f"hostile night: bronze+silver in {night.seconds:.1f}s")  # noqa: T201 - shown with -s


# ----------------------------------------------------------------------------- forms and landing (issues 16, 17)
def test_forms_are_recorded_for_the_delivery_report(night):
    def logged(name, source="police_incidents"):
        return night.logged[(source, name)]

    assert logged("xlsx_named_csv.csv").detected_format == "xlsx"
    assert logged("xlsx_named_csv.csv").note.startswith("xlsx delivered (declared csv), file name .csv")
    assert logged("title_row.csv").header_row == 3 and "title/blank row(s)" in logged("title_row.csv").note
    assert logged("title_rows.xlsx", "safety_inspections").header_row == 3
    assert logged("sub_part.csv").note == "found in sub-folder 沙头街道"
    assert logged("UPPER.CSV").note == "csv delivered with a .CSV name"
    assert json.loads(logged("renamed_headers.csv").header_map) == {
        "接警编号": "incident_id", "接警时间": "reported_at", "案发地址": "address", "警情类型": "incident_type",
        "涉事人员公民身份号码": "person_ids"}
    assert json.loads(logged("duplicated_headers.csv").header_map)["发生地址 #2"] is None
    assert logged("utf16.csv").detected_format == "csv" and logged("utf16.csv").header_row == 1
    assert "repeated header" in logged("second_bom.csv", "verifications").note
    assert logged("passwd.csv").file_sha256.startswith("nocontent:")
    police = night.silver["police_incidents"]
    assert police["P-U2"].address_raw == "福田区上沙村东村二坊12号"  # UTF-16 decoded
    assert police["P-RH1"].address_raw == "福田区福华路18号" and police["P-XC1"]
    assert "P-GR1" not in police and "P-VA1" not in police
    extra = {r.key: r._extra for rows in night.bronze.values() for r in rows if r._extra}
    assert extra["P-DH1"] == {"发生地址": "福田区福华路99号"} and extra["P-EH1"] == {"(column 6)": "录入人备注"}
    tail = [r for r in night.bronze[("police_incidents", "nul_tail.csv")] if r._malformed_reason][0]
    assert tail._raw_line.startswith("P-NT3") and "\x00" not in tail._raw_line


def test_nothing_personal_and_nothing_from_a_linked_file_in_logs_manifest_or_ingestion_log(night):
    texts = list(night.logs)
    for f in night.manifest["files"]:
        texts += [str(f.get(k)) for k in ("path", "error", "note", "header_map", "extra_columns")]
    texts += [json.dumps(night.manifest.get(k), ensure_ascii=False) for k in ("landing_anomalies", "schema_drift")]
    texts.append(json.dumps(night.manifest["stages"]["bronze"]["rejected"], ensure_ascii=False))
    for r in night.logged.values():
        texts += [str(v) for v in (r.path, r.error, r.extra_columns, r.header_map, r.note)]
    blob = "\n".join(texts)
    assert ID18 not in blob and PHONE not in blob
    assert not PERSONAL.findall(blob), PERSONAL.findall(blob)[:3]
    assert "root:" not in blob and "/bin/" not in blob  # the linked /etc/passwd was never read
    assert any("landing:" in t for t in night.logs)  # the recorder saw the run

