"""Hostile files at the reader (no Spark): encodings, binary content, truncation, quotes, huge fields, sheets.

The same cases run end to end through bronze and silver in tests/integration/test_hostile_deliveries.py.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import openpyxl
import pytest

from gridlake.sources import get_source, load_sources
from jobs.bronze.landing import discover
from jobs.bronze.readers import MAX_FIELD_CHARS, MAX_LINE_CHARS, MAX_RAW_CHARS, open_delivery, reason_code
from jobs.bronze.sniff import binary_reason, sniff

POLICE = "警情编号,报警时间,发生地址,警情类别,涉事人员身份证号\n"
VERIF = "核查编号,问题编号,核查时间,核查结果,网格员编号,备注\n"


def _file(tmp_path: Path, data: bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(path: Path, source: str):
    d = open_delivery(path, get_source(source))
    return d, list(d.rows())


def _codes(rows) -> list[str | None]:
    return [reason_code(r.malformed_reason) for r in rows]


# ------------------------------------------------------------------ encodings
def test_utf8_file_declared_gb18030_is_read_as_utf8_with_a_note(tmp_path):
    d, rows = _read(_file(tmp_path, (POLICE + "P1,2026-11-01,福田区上沙村,盗窃,\n").encode("utf-8")), "police_incidents")
    assert d.status == "ok" and d.encoding == "utf-8"
    assert reason_code(d.note) == "ENCODING_MISMATCH" and "declared gb18030, read as utf-8" in d.note
    assert rows[0].values["address"] == "福田区上沙村" and rows[0].malformed_reason is None


def test_gb18030_file_declared_utf8_is_read_as_gb18030_with_a_note(tmp_path):
    d, rows = _read(_file(tmp_path, (VERIF + "V1,Q1,2026-11-01,空置,O1,无人\n").encode("gb18030")), "verifications")
    assert d.encoding == "gb18030" and "declared utf-8, read as gb18030" in d.note
    assert rows[0].values["note"] == "无人"


def test_matching_encodings_and_ascii_files_keep_the_declaration(tmp_path):
    d, _ = _read(_file(tmp_path, (POLICE + "P1,2026-11-01,福田,盗窃,\n").encode("gb18030")), "police_incidents")
    assert d.encoding == "gb18030" and d.notes == []
    ascii_header = "incident_id,reported_at,address\nP1,2026-11-01,x\n".encode("ascii")
    assert sniff(_file(tmp_path, ascii_header, "a.csv"), "gb18030").encoding == "gb18030"
    d, _ = _read(_file(tmp_path, VERIF.encode("utf-8") + b"\xef\xbb\xbfV1,Q1,2026-11-01,x,O1,\n", "b.csv"),
                 "verifications")
    assert d.encoding == "utf-8" and not any("ENCODING" in n for n in d.notes)


def test_a_few_bad_bytes_in_a_utf8_file_stay_row_errors(tmp_path):
    data = (VERIF + "V1,Q1,2026-11-01,属实,O1,好\n").encode("utf-8") + b"V2,Q2,2026-11-01,\xff\xfe,O1,\n"
    d, rows = _read(_file(tmp_path, data), "verifications")
    assert d.encoding == "utf-8" and _codes(rows) == [None, "UNDECODABLE_BYTES"]


# ------------------------------------------------------------------ binary content
def _noise(seed: int, alphabet, n: int = 2048) -> bytes:
    rnd = random.Random(seed)
    choices = list(alphabet)
    return bytes(rnd.choice(choices) for _ in range(n))


@pytest.mark.parametrize("data,why", [
    (b"PK\x03\x04" + b"\x00" * 40, "ZIP"),
    (b"%PDF-1.7\n", "PDF"),
    (_noise(1, range(256)), "NUL"),
    (_noise(2, range(1, 32)), "control characters"),
    (_noise(3, [0x80, 0xFF, *range(0x41, 0x5B)]), "neither UTF-8 nor gb18030"),  # 0x80/0xFF never lead a character
])
def test_binary_content_is_rejected(tmp_path, data, why):
    d, rows = _read(_file(tmp_path, data), "police_incidents")
    assert d.status == "rejected" and reason_code(d.error) == "BINARY_CONTENT" and why in d.error
    assert rows == []


def test_text_is_not_binary():
    assert binary_reason((POLICE + "P1,2026-11-01\t福田\r\n").encode("gb18030")) is None
    assert binary_reason((VERIF * 50).encode("utf-8")) is None


# ------------------------------------------------------------------ truncation, line ends, quotes
def test_truncated_mid_row_and_mid_character(tmp_path):
    d, rows = _read(_file(tmp_path, (POLICE + "P1,2026-11-01,a,盗窃,\nP2,2026-11-01,福田").encode("gb18030")),
                    "police_incidents")
    assert _codes(rows) == [None, "TRUNCATED_ROW"] and "FIELD_COUNT" in rows[1].malformed_reason
    assert rows[1].raw_line == "P2,2026-11-01,福田"
    cut = (POLICE + "P1,2026-11-01,a,盗窃,\nP2,2026-11-01,福田,盗窃,").encode("gb18030")[:-2]  # half of 窃
    _, rows = _read(_file(tmp_path, cut, "b.csv"), "police_incidents")
    assert _codes(rows) == [None, "TRUNCATED_ROW"] and "UNDECODABLE_BYTES" in rows[1].malformed_reason
    # a last row without a line break that is complete is not truncated
    _, rows = _read(_file(tmp_path, (POLICE + "P1,2026-11-01,a,盗窃,").encode("gb18030"), "c.csv"),
                    "police_incidents")
    assert _codes(rows) == [None]


def test_mixed_line_endings_including_a_lone_cr(tmp_path):
    text = (POLICE.replace("\n", "\r\n") + "P1,2026-11-01,a,x,\nP2,2026-11-01,b,y,\rP3,2026-11-01,\"c\r\nd\",z,\r\n"
            "P4,2026-11-01,e,w,\n")
    _, rows = _read(_file(tmp_path, text.encode("gb18030")), "police_incidents")
    assert [r.values["incident_id"] for r in rows] == ["P1", "P2", "P3", "P4"]
    assert [r.values["address"] for r in rows] == ["a", "b", "c\r\nd", "e"] and _codes(rows) == [None] * 4


def test_an_unbalanced_quote_does_not_swallow_the_rows_after_it(tmp_path):
    text = POLICE + 'P1,2026-11-01,"福田, ""A"" 座\n2楼",x,\nP2,2026-11-01,"no end,x,\nP3,2026-11-01,c,y,\nP4,2026-11-01,d,z,\n'
    _, rows = _read(_file(tmp_path, text.encode("gb18030")), "police_incidents")
    assert _codes(rows) == [None, "UNBALANCED_QUOTE", None, None]
    assert rows[0].values["address"] == '福田, "A" 座\n2楼'
    assert rows[1].raw_line == 'P2,2026-11-01,"no end,x,'
    assert [r.values["incident_id"] for r in rows[2:]] == ["P3", "P4"]
    assert [r.row_number for r in rows] == [1, 2, 3, 4]


def test_a_quote_running_to_the_end_of_the_file(tmp_path):
    text = POLICE + 'P1,2026-11-01,"a,x,\nP2,2026-11-01,b,y,\nP3,2026-11-01,"c,z,'
    _, rows = _read(_file(tmp_path, text.encode("gb18030")), "police_incidents")
    assert _codes(rows) == ["UNBALANCED_QUOTE", None, "TRUNCATED_ROW"]


# ------------------------------------------------------------------ huge fields
@pytest.mark.parametrize("size,detail", [
    (MAX_FIELD_CHARS + 10, "a field of"),  # parsed, then too large
    (200_000, "field larger than field limit"),  # over the csv module's limit
    (MAX_LINE_CHARS + 10, "a line of"),  # not parsed at all, memory stays bounded
])
def test_huge_fields_make_one_malformed_row_and_the_others_load(tmp_path, size, detail):
    text = POLICE + "P1,2026-11-01,a,x,\nP2,2026-11-01," + "长" * size + ",y,\nP3,2026-11-01,c,z,\n"
    _, rows = _read(_file(tmp_path, text.encode("gb18030")), "police_incidents")
    assert _codes(rows) == [None, "FIELD_TOO_LARGE", None] and detail in rows[1].malformed_reason
    assert len(rows[1].raw_line) <= MAX_RAW_CHARS + 60 and rows[1].raw_line.startswith("P2,2026-11-01,长")
    assert rows[2].values["incident_id"] == "P3"


# ------------------------------------------------------------------ headers
def test_header_problems_are_named(tmp_path):
    d, _ = _read(_file(tmp_path, ('"unclosed' + "\n" + POLICE).encode("gb18030")), "police_incidents")
    assert d.status == "rejected" and reason_code(d.error) in ("BAD_HEADER", "MISSING_COLUMNS")
    d, _ = _read(_file(tmp_path, (POLICE + "P1,2026-11-01,a,x,\n").encode("gb18030"), "p.csv"), "family_planning")
    assert reason_code(d.error) == "WRONG_SOURCE" and "police_incidents" in d.error
    d, rows = _read(_file(tmp_path, "警情编号,报警时间,发生地址\nP1,2026-11-01,a\n".encode("gb18030"), "o.csv"),
                    "police_incidents")
    assert d.status == "ok" and reason_code(d.note) == "MISSING_OPTIONAL_COLUMNS" and "person_ids" in d.note
    assert rows[0].values["person_ids"] is None
    d, _ = _read(_file(tmp_path, b"\n\r\n\n", "e.csv"), "police_incidents")
    assert d.status == "empty" and reason_code(d.error) == "EMPTY_FILE"
    d, _ = _read(_file(tmp_path, POLICE.encode("gb18030"), "h.csv"), "police_incidents")
    assert d.status == "header_only" and reason_code(d.error) == "HEADER_ONLY"


# ------------------------------------------------------------------ XLSX
HEAD = ["检查编号", "检查日期", "检查地址", "检查发现", "隐患等级"]


def test_xlsx_reads_the_one_data_sheet_and_names_the_others(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["填表说明"])
    ws = wb.create_sheet("数据")
    ws.append(HEAD)
    ws.append(["S1", "2026-11-01", "福华路18号", "消防隐患", "一般"])
    ws.append(["S2", "2026-11-01", "福华路19号", "消防隐患", "=A3"])  # never calculated
    wb.create_sheet("空")
    path = tmp_path / "s.xlsx"
    wb.save(path)
    d, rows = _read(path, "safety_inspections")
    assert d.status == "ok" and d.note == ("OTHER_SHEETS: read sheet '数据'; not read: '说明' (no header of this "
                                           "source), '空' (empty)")
    assert _codes(rows) == [None, "FORMULA_NOT_CACHED"] and "column E" in rows[1].malformed_reason


def test_xlsx_with_two_data_sheets_is_rejected(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(HEAD)
    wb.create_sheet("副本").append(HEAD)
    path = tmp_path / "s.xlsx"
    wb.save(path)
    d, _ = _read(path, "safety_inspections")
    assert reason_code(d.error) == "MULTIPLE_DATA_SHEETS" and "'Sheet', '副本'" in d.error


def test_truncated_and_empty_workbooks(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(HEAD)
    wb.active.append(["S1", "2026-11-01", "x", "y", "一般"])
    path = tmp_path / "s.xlsx"
    wb.save(path)
    path.write_bytes(path.read_bytes()[:-100])
    d, _ = _read(path, "safety_inspections")
    assert d.status == "rejected" and reason_code(d.error) == "NOT_XLSX"
    openpyxl.Workbook().save(path)
    d, _ = _read(path, "safety_inspections")
    assert d.status == "empty" and reason_code(d.error) == "EMPTY_FILE"


# ------------------------------------------------------------------ landing
def test_misplaced_files_and_folders_are_named(tmp_path):
    landing = tmp_path / "landing"
    (landing / "police_incidents" / "2026-11-01").mkdir(parents=True)
    (landing / "police_incidents" / "stray.csv").write_text("x", encoding="utf-8")
    (landing / "police_incidents" / "20261101").mkdir()
    (landing / "police_incidents" / "20261101" / "a.csv").write_text("x", encoding="utf-8")
    _, anomalies = discover(landing, load_sources(), dt.date(2026, 11, 1))
    got = {(a.kind, Path(a.path).name): a.detail for a in anomalies}
    assert set(got) == {("file_outside_date_folder", "stray.csv"), ("not_a_date_folder", "20261101")}
    assert "1 file(s) in it not loaded" in got[("not_a_date_folder", "20261101")]
