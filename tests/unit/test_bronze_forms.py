"""Deliveries as departments send them, at the reader and in landing (no Spark): header aliases and
normalisation, title rows, format by content, UTF-16, a second BOM, repeated and empty headers, a
NUL-damaged tail, XLSX limits (zip bomb, whole-sheet merge, 1,048,576 empty rows), legacy .xls,
sub-folders, extension case, symbolic links, files still being written, non-UTF-8 names.

Files are real: gb18030/UTF-8/UTF-16 CSVs and openpyxl workbooks written by the test.
The same kinds run through a whole night in tests/integration/test_hostile_deliveries.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from gridlake.config import ConfigError
from gridlake.sources import get_source, load_ingest_config, load_sources, normalise_header, shown_path
from jobs.bronze.delivery import pick_header, safe_error, shown_header
from jobs.bronze.landing import discover, marker_present
from jobs.bronze.readers import detect_format, open_delivery, reason_code
from jobs.bronze.staging import NotReady, private_copy

GB = "gb18030"
ID18 = "440304199001011234"  # test-only value with the shape of an ID number
PHONE = "13812345678"
DAY = dt.date(2026, 11, 1)
SAFETY = ["检查编号", "检查日期", "检查地址", "检查发现", "隐患等级"]


def _file(tmp_path: Path, data: bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(path: Path, source: str, name: str | None = None):
    d = open_delivery(path, get_source(source), name=name)
    return d, list(d.rows())


def _patch_sheet(path: Path, fn) -> None:
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = fn(data.decode()).encode()
            zout.writestr(item.filename, data)
    tmp.replace(path)


def _workbook(path: Path, rows: list[list[object]]) -> Path:
    wb = openpyxl.Workbook()
    for r in rows:
        wb.active.append(r)
    wb.save(path)
    return path


# ------------------------------------------------------------------ headers
@pytest.mark.parametrize("written,canonical", [
    ("建筑面积(㎡)", "建筑面积"), (" 建筑面积（平方米） ", "建筑面积"), ("身份证号码", "身份证号码"),
    ("*身份证号", "身份证号"), ("联系 电话", "联系电话"), ("ＩＤ", "id"), ("Phone No.", "phoneno"),
    ("\ufeff姓名\u200b", "姓名"), ("(备注)", "备注"),
])
def test_headers_are_compared_after_normalising(written, canonical):
    assert normalise_header(written) == canonical


def test_renamed_headers_between_template_versions_map_through_the_aliases(tmp_path):
    head = "公民身份号码,申报人姓名,手机号码,申报单号,现住址,申报日期,房屋编号\n"
    row = f"{ID18},张三,{PHONE},D1,福田区福华路18号,2026-11-01,H1\n"
    d, rows = _read(_file(tmp_path, (head + row).encode("utf-8")), "declarations")
    assert d.status == "ok", d.error
    v = rows[0].values
    assert (v["id_number"], v["name"], v["phone"], v["declaration_id"], v["house_code"]) == (ID18, "张三", PHONE,
                                                                                             "D1", "H1")
    assert json.loads(d.header_map_json)["现住址"] == "address"
    assert any(n.startswith("headers renamed:") and "现住址->address" in n for n in d.form_notes)


def test_every_source_has_aliases_and_no_alias_is_ambiguous():
    for name, src in load_sources().items():
        assert any(len(a) > 1 for a in src.aliases.values()), name
        assert src.header_to_canonical[normalise_header(src.columns["address" if "address" in src.columns
                                                                   else src.key[0]])]
    cases = [("身份证号", "id_number"), ("身份证号码", "id_number"), ("证件号码", "id_number"), ("手机", "phone"),
             ("电话", "phone"), ("住址", "address"), ("详细地址", "address")]
    decl = get_source("declarations").header_to_canonical
    assert all(decl[normalise_header(h)] == c for h, c in cases)


def test_an_alias_shared_by_two_columns_is_a_config_error(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("sources:\n  x:\n    format: csv\n    delivery: snapshot\n    key: [a]\n"
                   "    columns: {a: [编号, 号码], b: [号码（新）]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sources.x.columns.b"):
        load_sources(bad)
    bad.write_text("sources:\n  x:\n    format: csv\n    delivery: snapshot\n    key: [a]\n    columns: {a: []}\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sources.x.columns.a"):
        load_sources(bad)


def test_ingest_limits_are_typed_and_overridable(tmp_path, monkeypatch):
    assert load_ingest_config().xlsx_max_merged_cells == 100_000
    monkeypatch.setenv("GRIDLAKE_INGEST__STABLE_SECONDS", "7.5")
    assert load_ingest_config().stable_seconds == 7.5
    monkeypatch.setenv("GRIDLAKE_INGEST__XLSX_MAX_ROWS", "many")
    with pytest.raises(ConfigError, match=r"ingest.xlsx_max_rows"):
        load_ingest_config()


def test_title_rows_above_the_header_are_skipped_csv(tmp_path):
    text = ("福田区沙头街道2026年11月警情登记表,,,,\n\n制表单位:XX派出所,,,,\n"
            "警情编号,报警时间,发生地址,警情类别,涉事人员身份证号\nP1,2026-11-01,福华路18号,盗窃,\n")
    d, rows = _read(_file(tmp_path, text.encode(GB)), "police_incidents")
    assert d.status == "ok" and d.header_row == 4
    assert [r.values["incident_id"] for r in rows] == ["P1"]
    assert any("header on row 4, 3 title/blank row(s) above it skipped" in n for n in d.form_notes)
    assert pick_header([["标题"], [], ["警情编号", "报警时间", "发生地址"]], get_source("police_incidents")) == 2


def test_title_rows_and_a_merged_title_cell_in_xlsx(tmp_path):
    path = _workbook(tmp_path / "s.xlsx", [["福田区安全生产检查记录(2026年11月)"], [None], SAFETY,
                                           ["S1", "2026-11-01", "福华路18号", "消防隐患", "一般"]])
    _patch_sheet(path, lambda x: x.replace("</sheetData>",
                                           '</sheetData><mergeCells count="1"><mergeCell ref="A1:E1"/></mergeCells>'))
    d, rows = _read(path, "safety_inspections")
    assert d.status == "ok" and d.header_row == 3 and d.detected_format == "xlsx"
    assert [r.values["inspection_id"] for r in rows] == ["S1"]


# ------------------------------------------------------------------ format by content
def test_xlsx_sent_with_a_csv_name_is_read_as_xlsx_with_a_note(tmp_path):
    path = _workbook(tmp_path / "x.xlsx", [["警情编号", "报警时间", "发生地址", "警情类别"],
                                           ["P1", "2026-11-01", "福华路18号", "盗窃"]])
    d, rows = _read(path.rename(tmp_path / "x.csv"), "police_incidents")
    assert d.status == "ok" and d.detected_format == "xlsx" and rows[0].values["incident_id"] == "P1"
    assert d.form_notes[0] == "xlsx delivered (declared csv), file name .csv; read as xlsx"


def test_upper_case_extension_and_legacy_xls(tmp_path):
    d, _ = _read(_file(tmp_path, "警情编号,报警时间,发生地址\nP1,2026-11-01,a\n".encode(GB), "A.CSV"),
                 "police_incidents")
    assert d.status == "ok" and d.form_notes == ["csv delivered with a .CSV name"]
    xls = _file(tmp_path, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "old.xls")
    assert detect_format(xls)[0] == "xls"
    d, rows = _read(xls, "safety_inspections")
    assert d.status == "rejected" and reason_code(d.error) == "LEGACY_XLS" and ".xlsx" in d.error and rows == []


# ------------------------------------------------------------------ CSV text
def test_utf16_with_bom_is_decoded(tmp_path):
    text = "警情编号,报警时间,发生地址,警情类别,涉事人员身份证号\r\nP1,2026-11-01,福华路18号,盗窃,\r\n"
    for enc in ("utf-16", "utf-16-be"):
        data = text.encode(enc) if enc == "utf-16" else b"\xfe\xff" + text.encode(enc)
        d, rows = _read(_file(tmp_path, data, f"{enc}.csv"), "police_incidents")
        assert d.status == "ok" and d.encoding == "utf-16", d.error
        assert rows[0].values["address"] == "福华路18号" and rows[0].malformed_reason is None
        assert reason_code(d.note) == "ENCODING_MISMATCH"


def test_a_second_bom_and_header_mid_file_are_not_rows(tmp_path):
    head = "核查编号,问题编号,核查时间,核查结果,网格员编号,备注\n"
    data = ("\ufeff" + head + "V1,Q1,2026-11-01,属实,O1,\n" + "\ufeff" + head + "V2,Q2,2026-11-01,空置,O1,\n"
            + "\ufeffV3,Q3,2026-11-01,空置,O1,\n").encode("utf-8")
    d, rows = _read(_file(tmp_path, data), "verifications")
    assert [r.values["verification_id"] for r in rows] == ["V1", "V2", "V3"]
    assert all(r.malformed_reason is None for r in rows)
    assert "repeated header line(s) skipped (files concatenated?)" in d.form_notes


def test_duplicated_headers_and_data_under_an_empty_header(tmp_path):
    text = ("警情编号,报警时间,发生地址,发生地址,警情类别,,备注,备注\n"
            "P1,2026-11-01,福华路18号,福华路19号,盗窃,多出的值,a,b\n")
    d, rows = _read(_file(tmp_path, text.encode(GB)), "police_incidents")
    assert d.status == "ok"
    assert rows[0].values["address"] == "福华路18号"  # the first of a repeated header is the column
    assert rows[0].extra == {"发生地址": "福华路19号", "(column 6)": "多出的值", "备注": "a", "备注 #2": "b"}
    assert "发生地址 (repeated)" in d.extra_columns
    assert json.loads(d.header_map_json) == {"警情编号": "incident_id", "报警时间": "reported_at",
                                             "发生地址": "address", "发生地址 #2": None, "警情类别": "incident_type",
                                             "备注": None, "备注 #2": None}


def test_a_csv_cut_off_with_a_nul_tail_loads_the_rows_before_the_damage(tmp_path):
    good = "警情编号,报警时间,发生地址,警情类别,涉事人员身份证号\nP1,2026-11-01,福华路18号,盗窃,\nP2,2026-11-01,福华路19号,盗窃,\n"
    data = good.encode(GB) + "P3,2026-11-01,福华".encode(GB) + b"\x00" * 300 + b"\x8f\x01\xfe" + b"\x00" * 50
    d, rows = _read(_file(tmp_path, data), "police_incidents")
    assert d.status == "ok", d.error
    assert [r.values["incident_id"] for r in rows[:2]] == ["P1", "P2"]
    assert [reason_code(r.malformed_reason) for r in rows] == [None, None, "DAMAGED_TAIL"]
    assert rows[2].raw_line.startswith("P3,2026-11-01,福华") and "\x00" not in rows[2].raw_line
    nul_first = _file(tmp_path, b"\x00" * 40 + good.encode(GB), "g.csv")
    assert reason_code(_read(nul_first, "police_incidents")[0].error) == "BINARY_CONTENT"


def test_a_data_row_taken_for_a_header_puts_no_personal_value_in_the_records(tmp_path):
    d, _ = _read(_file(tmp_path, f"P1,2026-11-01,福华路18号,盗窃,{ID18}\n".encode(GB)), "police_incidents")
    assert reason_code(d.error) == "MISSING_COLUMNS"
    assert ID18 not in (d.header_map_json or "") and ID18 not in d.error and shown_header(PHONE) == "#"


def test_safe_error_drops_values_quoted_by_a_library():
    text = safe_error(ValueError(f"invalid literal for int() with base 10: '{ID18}' in 张三 {PHONE}"))
    assert ID18 not in text and PHONE not in text and "张三" not in text and text.startswith("ValueError: ")


# ------------------------------------------------------------------ XLSX limits
def test_zip_bomb_is_rejected_before_openpyxl(tmp_path):
    path = _workbook(tmp_path / "b.xlsx", [SAFETY, ["S1", "2026-11-01", "a", "b", "一般"]])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open("xl/media/pad.bin", "w") as fh:
        for _ in range(48):
            fh.write(b"\0" * (1 << 20))
    assert path.stat().st_size < 200_000
    started = time.monotonic()
    d, rows = _read(path, "safety_inspections")
    assert d.status == "rejected" and reason_code(d.error) == "XLSX_LIMIT" and "zip bomb" in d.error and rows == []
    assert time.monotonic() - started < 5


def test_a_merge_over_the_whole_sheet_is_rejected_without_expanding_it(tmp_path):
    path = _workbook(tmp_path / "m.xlsx", [SAFETY, ["S1", "2026-11-01", "a", "b", "一般"]])
    _patch_sheet(path, lambda x: x.replace(
        "</sheetData>", '</sheetData><mergeCells count="1"><mergeCell ref="A1:XFD1048576"/></mergeCells>'))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    d, _ = _read(path, "safety_inspections")
    assert reason_code(d.error) == "XLSX_LIMIT" and "17,179,869,184 cells" in d.error
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 100 * 1024  # KiB: no cell-by-cell expansion


def test_a_sheet_with_1048576_rows_of_nothing_reads_its_rows_quickly(tmp_path):
    path = _workbook(tmp_path / "e.xlsx", [SAFETY, ["S1", "2026-11-01", "a", "b", "一般"],
                                           ["S2", "2026-11-01", "a", "b", "一般"]])
    empty = "".join(f'<row r="{n}" spans="1:5" s="0" customFormat="1"><c r="A{n}" s="0"/></row>'
                    for n in range(4, 1_048_577))
    _patch_sheet(path, lambda x: re.sub(r'<dimension ref="[^"]*"\s*/>', '<dimension ref="A1:XFD1048576"/>', x)
                 .replace("</sheetData>", empty + "</sheetData>"))
    started = time.monotonic()
    d, rows = _read(path, "safety_inspections")
    assert d.status == "ok" and [r.values["inspection_id"] for r in rows] == ["S1", "S2"]
    assert time.monotonic() - started < 30


def test_rows_and_columns_over_the_limits(tmp_path, monkeypatch):
    path = _workbook(tmp_path / "w.xlsx", [SAFETY + [f"c{i}" for i in range(300)],
                                           ["S1", "2026-11-01", "a", "b", "一般"]])
    d, _ = _read(path, "safety_inspections")
    assert reason_code(d.error) == "XLSX_LIMIT" and "ingest.xlsx_max_columns" in d.error
    monkeypatch.setenv("GRIDLAKE_INGEST__XLSX_MAX_ROWS", "2")
    path = _workbook(tmp_path / "r.xlsx", [SAFETY] + [["S1", "2026-11-01", "a", "b", "一般"]] * 3)
    d, _ = _read(path, "safety_inspections")
    assert reason_code(d.error) == "XLSX_LIMIT" and "row 4" in d.error


# ------------------------------------------------------------------ landing
def test_sub_folders_extension_case_links_and_markers(tmp_path):
    landing = tmp_path / "landing"
    night = landing / "police_incidents" / DAY.isoformat()
    (night / "沙头街道").mkdir(parents=True)
    (night / "沙头街道" / "a.csv").write_text("x", encoding="utf-8")
    (night / "B.CSV").write_text("x", encoding="utf-8")
    (night / "c.xlsx").write_text("x", encoding="utf-8")  # a CSV source that switched to XLSX
    (night / "c.xlsx.done").write_text("", encoding="utf-8")
    (night / "passwd.csv").symlink_to("/etc/passwd")
    (night / "linked").symlink_to("/etc", target_is_directory=True)
    (night / "readme.pdf").write_bytes(b"%PDF-1.7")
    files, anomalies = discover(landing, load_sources(), DAY)
    got = {f.path.name: (f.skip.split(":")[0] if f.skip else None, f.note) for f in files}
    assert got == {"a.csv": (None, "found in sub-folder 沙头街道"), "B.CSV": (None, None), "c.xlsx": (None, None),
                   "passwd.csv": ("SYMLINK", None), "linked": ("SYMLINK", None), "readme.pdf": ("NOT_MATCHING", None)}
    assert {a.kind for a in anomalies} == {"symlink", "not_matching_glob"}
    c = next(f for f in files if f.path.name == "c.xlsx")
    b = next(f for f in files if f.path.name == "B.CSV")
    assert marker_present(c, night) and not marker_present(b, night)


def test_a_file_name_that_is_not_utf8_is_shown_safely(tmp_path):
    landing = tmp_path / "landing"
    night = landing / "police_incidents" / DAY.isoformat()
    night.mkdir(parents=True)
    for raw in ("警情".encode(GB) + b".csv", b"\xff\xfe.csv"):
        fd = os.open(os.fsencode(night) + b"/" + raw, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, "警情编号,报警时间,发生地址\nP1,2026-11-01,a\n".encode(GB))
        os.close(fd)
    files, _ = discover(landing, load_sources(), DAY)
    shown = {Path(f.shown).name for f in files}
    assert shown == {"\ufffd\ufffd.csv", "警情.csv"}
    for f in files:
        f.shown.encode("utf-8")  # storable
        d = open_delivery(f.path, get_source("police_incidents"))
        assert d.status == "ok"
    assert shown_path("/a/b.csv") == "/a/b.csv"


def test_private_copy_hashes_what_it_copied_and_refuses_links_and_growing_files(tmp_path):
    src = _file(tmp_path, b"a,b\n1,2\n", "s.csv")
    sha, n = private_copy(src, tmp_path / "copy" / "1.bin")
    assert n == 8 and (tmp_path / "copy" / "1.bin").read_bytes() == b"a,b\n1,2\n" and len(sha) == 64
    link = tmp_path / "l.csv"
    link.symlink_to(src)
    with pytest.raises(OSError):
        private_copy(link, tmp_path / "copy" / "2.bin")
    with pytest.raises(FileNotFoundError):
        private_copy(tmp_path / "gone.csv", tmp_path / "copy" / "3.bin")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(IsADirectoryError):
        private_copy(fifo, tmp_path / "copy" / "4.bin")


def test_a_file_growing_while_copied_is_not_ready(tmp_path, monkeypatch):
    """An upload still in progress: bytes are appended after the copy has begun.

    The append happens at a fixed point inside the copy (when the first block is hashed), not on a
    timer in another thread: a loaded CI machine once let the whole copy finish before a writer thread
    ran, so the timed version could pass or fail by chance.
    """
    import hashlib

    from jobs.bronze import staging

    src = _file(tmp_path, b"x" * (1 << 16), "g.csv")
    grown = []

    class GrowsTheSource:  # hashes like sha256; the first block read makes the uploader append a row
        def __init__(self):
            self._h = hashlib.sha256()

        def update(self, block: bytes) -> None:
            if not grown:
                with open(src, "ab") as fh:
                    fh.write(b"row\n")
                grown.append(len(block))
            self._h.update(block)

        def hexdigest(self) -> str:
            return self._h.hexdigest()

    monkeypatch.setattr(staging, "hashlib", type("H", (), {"sha256": GrowsTheSource}))
    with pytest.raises(NotReady, match="changed while it was copied"):
        private_copy(src, tmp_path / "c.bin", chunk=16)
    assert grown == [16]
    assert not (tmp_path / "c.bin").exists()
    # the same file once the upload has finished copies whole
    monkeypatch.setattr(staging, "hashlib", hashlib)
    sha, n = private_copy(src, tmp_path / "c.bin", chunk=16)
    assert n == (1 << 16) + 4 and sha == hashlib.sha256(src.read_bytes()).hexdigest()
