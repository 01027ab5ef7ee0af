"""Reading deliveries without Spark: encodings, malformed rows, drift, empty files, XLSX, landing discovery."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl

from gridlake.sources import get_source, load_sources
from jobs.bronze.landing import discover
from jobs.bronze.readers import open_delivery, sha256_file


def _csv(path: Path, text: str, encoding: str, prefix: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(prefix + text.encode(encoding))
    return path


def test_gb18030_csv_is_decoded_and_mapped_to_canonical_names(tmp_path):
    src = get_source("police_incidents")
    text = "警情编号,报警时间,发生地址,警情类别,涉事人员身份证号\nP1,2026-11-01 08:00,福田区上沙村东村二坊12号,噪音扰民,\n"
    d = open_delivery(_csv(tmp_path / "p.csv", text, "gb18030"), src)
    rows = list(d.rows())
    assert d.status == "ok" and d.encoding == "gb18030"
    assert rows[0].values["address"] == "福田区上沙村东村二坊12号"
    assert rows[0].values["incident_type"] == "噪音扰民"
    assert rows[0].malformed_reason is None and rows[0].row_number == 1


def test_utf8_bom_is_stripped_from_the_header(tmp_path):
    src = get_source("verifications")
    text = "核查编号,问题编号,核查时间,核查结果,网格员编号,备注\nV1,Q1,2026-11-01,属实,O1,\n"
    d = open_delivery(_csv(tmp_path / "v.csv", text, "utf-8", b"\xef\xbb\xbf"), src)
    assert d.status == "ok" and not d.extra_columns
    assert [r.values["verification_id"] for r in d.rows()] == ["V1"]


def test_malformed_rows_are_kept_with_raw_line_and_reason(tmp_path):
    src = get_source("police_incidents")
    good = "P1,2026-11-01,地址一,盗窃,\n".encode("gb18030")
    short = "P2,2026-11-01\n".encode("gb18030")
    bad_bytes = b"P3,2026-11-01,\xff\xff\xff,x,\n"
    header = "警情编号,报警时间,发生地址,警情类别,涉事人员身份证号\n".encode("gb18030")
    path = tmp_path / "p.csv"
    path.write_bytes(header + good + short + bad_bytes + b"\n")
    rows = list(open_delivery(path, src).rows())
    assert len(rows) == 3  # the blank last line is not a row
    assert rows[0].malformed_reason is None
    assert rows[1].malformed_reason.startswith("FIELD_COUNT") and rows[1].raw_line == "P2,2026-11-01"
    assert rows[2].malformed_reason.startswith("UNDECODABLE_BYTES") and rows[2].raw_line.startswith("P3,")
    assert all(v is None for v in rows[1].values.values())


def test_quoted_newline_is_one_row(tmp_path):
    src = get_source("verifications")
    text = '核查编号,问题编号,核查时间,核查结果,网格员编号,备注\nV1,Q1,2026-11-01,属实,O1,"两行\n备注"\nV2,Q2,2026-11-01,空置,O1,\n'
    rows = list(open_delivery(_csv(tmp_path / "v.csv", text, "utf-8"), src).rows())
    assert [r.values["note"] for r in rows] == ["两行\n备注", None] or [r.values["note"] for r in rows] == ["两行\n备注", ""]
    assert [r.row_number for r in rows] == [1, 2]


def test_missing_required_column_rejects_with_the_names(tmp_path):
    src = get_source("family_planning")
    text = "记录编号,地址,事项\nF1,x,计生服务\n"
    d = open_delivery(_csv(tmp_path / "f.csv", text, "gb18030"), src)
    assert d.status == "rejected"
    assert "record_date" in d.error and "登记日期" in d.error
    assert list(d.rows()) == []


def test_extra_column_is_kept_and_reported(tmp_path):
    src = get_source("verifications")
    text = "核查编号,问题编号,核查时间,核查结果,网格员编号,备注,天气\nV1,Q1,2026-11-01,属实,O1,,晴\n"
    d = open_delivery(_csv(tmp_path / "v.csv", text, "utf-8"), src)
    rows = list(d.rows())
    assert d.extra_columns == ["天气"]
    assert rows[0].extra == {"天气": "晴"}


def test_empty_and_header_only_files_have_their_status(tmp_path):
    src = get_source("verifications")
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    assert open_delivery(empty, src).status == "empty"
    blank = _csv(tmp_path / "b.csv", "\n\n", "utf-8")
    assert open_delivery(blank, src).status == "empty"
    header = _csv(tmp_path / "h.csv", "核查编号,问题编号,核查时间,核查结果,网格员编号,备注\n", "utf-8")
    assert open_delivery(header, src).status == "header_only"


def _patch_cached_value(path: Path, cell: str, value: str) -> None:
    """Give a formula cell a cached value, as Excel would have saved it."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                xml = data.decode()
                xml = re.sub(rf'<c r="{cell}"([^>]*)><f>([^<]*)</f><v\s*/?>(</v>)?</c>',
                             rf'<c r="{cell}" t="str"><f>\2</f><v>{value}</v></c>', xml)
                xml = re.sub(rf'<c r="{cell}"([^>]*)><f>([^<]*)</f></c>',
                             rf'<c r="{cell}" t="str"><f>\2</f><v>{value}</v></c>', xml)
                data = xml.encode()
            zout.writestr(item, data)
    tmp.replace(path)


def test_xlsx_first_sheet_merged_and_formula_cells(tmp_path):
    src = get_source("safety_inspections")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["检查编号", "检查日期", "检查地址", "检查发现", "隐患等级"])
    ws.append(["S1", dt.datetime(2026, 11, 1), "福华路18号", "消防隐患", "重大"])
    ws.append(["S2", dt.datetime(2026, 11, 1, 9, 30), None, "私拉电线", 3.0])
    ws.append([None, "2026/11/02", "上沙村", "通道堵塞", "一般"])
    ws["A4"] = '="S"&"3"'
    ws.merge_cells("C2:C3")  # one address for two inspections
    wb.create_sheet("ignored").append(["x"])
    path = tmp_path / "s.xlsx"
    wb.save(path)
    _patch_cached_value(path, "A4", "S3")
    rows = list(open_delivery(path, src).rows())
    assert [r.values["inspection_id"] for r in rows] == ["S1", "S2", "S3"]
    assert rows[1].values["address"] == "福华路18号"  # merged range filled from its top-left cell
    assert rows[0].values["inspected_at"] == "2026-11-01"
    assert rows[1].values["inspected_at"] == "2026-11-01 09:30:00"
    assert rows[1].values["severity"] == "3"


def test_sha256_changes_with_content(tmp_path):
    a = _csv(tmp_path / "a.csv", "x\n", "utf-8")
    h1 = sha256_file(a)
    a.write_text("y\n", encoding="utf-8")
    assert sha256_file(a) != h1


def test_discover_reports_bad_folders_and_files(tmp_path):
    landing = tmp_path / "landing"
    (landing / "housing" / "2026-11-01").mkdir(parents=True)
    (landing / "housing" / "2026-11-01" / "housing.csv").write_text("x", encoding="utf-8")
    (landing / "housing" / "2026-11-01" / "readme.txt").write_text("x", encoding="utf-8")
    (landing / "housing" / "2026-13-01").mkdir()
    (landing / "housing" / "latest").mkdir()
    (landing / "nonsense").mkdir()
    files, anomalies = discover(landing, load_sources(), dt.date(2026, 11, 1))
    assert [f.path.name for f in files if not f.skip] == ["housing.csv"]
    assert [(f.path.name, f.skip.split(":")[0]) for f in files if f.skip] == [("readme.txt", "NOT_MATCHING")]
    kinds = sorted((a.kind, Path(a.path).name) for a in anomalies)
    assert kinds == [("not_a_date_folder", "2026-13-01"), ("not_a_date_folder", "latest"),
                     ("not_matching_glob", "readme.txt"), ("unknown_source", "nonsense")]


def test_discover_for_one_source_names_only_undeclared_folders_unknown(tmp_path):
    """A run of one source (its Airflow ingestion) sees the other declared sources' folders: not unknown."""
    landing = tmp_path / "landing"
    for name in ("housing", "rentals", "nonsense"):
        (landing / name / "2026-11-01").mkdir(parents=True)
    (landing / "rentals" / "2026-11-01" / "rentals.csv").write_text("x", encoding="utf-8")
    declared = load_sources()
    only = {"rentals": declared["rentals"]}
    files, anomalies = discover(landing, only, dt.date(2026, 11, 1), declared)
    assert [f.path.name for f in files] == ["rentals.csv"]
    assert [(a.kind, Path(a.path).name) for a in anomalies] == [("unknown_source", "nonsense")]
    _, without = discover(landing, only, dt.date(2026, 11, 1))  # no declared list: the given sources only
    assert sorted(Path(a.path).name for a in without) == ["housing", "nonsense"]
