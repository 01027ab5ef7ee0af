"""Officers' exports without Spark: one grid per file, text IDs, frozen header, BOM, atomic, deterministic."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import stat
import time

import pytest
from openpyxl import load_workbook

from gridlake.errors import PrivacyError
from jobs.exports import writer as exports

NIGHT = dt.date(2026, 11, 3)


def _rec(grid: str, rank: int, *, street: str = "沙头街道", house: str = "440304001001001001", **kw) -> dict:
    rec = {
        "run_date": NIGHT, "street": street, "community": "上沙社区", "grid_id": grid, "officer_id": f"O-{grid}",
        "rank": rank, "discrepancy_id": f"00ab{rank:012d}", "rule": "R1", "rule_title": "出租屋有执法记录但无人申报",
        "house_code": house, "address": "广东省深圳市福田区沙头街道上沙社区东村二坊12号602",
        "priority": 5.0 / rank, "reason_codes": ["ACTIVE_RENTAL", "ENF_SAFETY", "X_UNKNOWN"],
        "evidence_categories": ["安全生产", "公安"], "masked_id": "4403**********1234", "masked_name": "张*明",
        "masked_phone": "138****5678", "is_new": rank == 1, "due_date": dt.date(2026, 11, 10), "status": "open",
    }
    rec.update(kw)
    return rec


def _records() -> list[dict]:
    # sorted by (street, grid_id) as the Spark reader delivers them
    return [
        _rec("G001", 2, house="440304001001001002"), _rec("G001", 1),
        _rec("G002", 1, house="000304001001001003", masked_id="0000**********0012"),
        _rec("G101", 1, street="香蜜湖街道", house="440304009009009009"),
    ]


def test_one_file_per_grid_with_only_its_rows(tmp_path):
    stats = exports.write_exports(_records(), tmp_path / "exports", NIGHT)
    night = tmp_path / "exports" / "2026-11-03"
    assert stats["grids"] == 3 and stats["rows"] == 4 and stats["files"] == 6
    assert sorted(p.relative_to(night).as_posix() for p in night.rglob("*.xlsx")) == [
        "沙头街道/G001.xlsx", "沙头街道/G002.xlsx", "香蜜湖街道/G101.xlsx"]
    ws = load_workbook(night / "沙头街道" / "G001.xlsx").active
    headers = [c.value for c in ws[1]]
    assert headers == list(exports.HEADERS)
    for name in ("问题编号", "规则", "房屋编码", "排名", "身份证号(脱敏)"):
        assert name in headers
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 2
    col = {h: i for i, h in enumerate(headers)}
    assert [r[col["排名"]] for r in rows] == [1, 2]  # ranked
    assert {r[col["房屋编码"]] for r in rows} == {"440304001001001001", "440304001001001002"}
    assert [r[col["新增"]] for r in rows] == ["新", None]
    assert rows[0][col["证据来源"]] == "公安、安全生产"
    assert rows[0][col["原因"]] == "有效租赁登记、安全生产记录、X_UNKNOWN"
    index = json.loads((night / "index.json").read_text(encoding="utf-8"))
    assert index["grids"] == 3 and index["rows"] == 4
    assert {f["grid_id"]: f["rows"] for f in index["files"]} == {"G001": 2, "G002": 1, "G101": 1}


def test_ids_are_text_header_frozen_filter_set(tmp_path):
    exports.write_exports(_records(), tmp_path, NIGHT)
    ws = load_workbook(tmp_path / "2026-11-03" / "沙头街道" / "G002.xlsx").active
    headers = [c.value for c in ws[1]]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:V2"  # 15 list columns, 网格编号, 网格员编号, 4 input columns, checksum
    for name, expected in (("房屋编码", "000304001001001003"), ("身份证号(脱敏)", "0000**********0012"),
                           ("问题编号", "00ab000000000001")):
        cell = ws.cell(row=2, column=headers.index(name) + 1)
        assert cell.value == expected
        assert cell.data_type == "s"
        assert cell.number_format == "@"
    assert ws.column_dimensions["F"].width >= 30  # the address column is wide


def test_csv_has_bom_and_decodes_as_utf8(tmp_path):
    exports.write_exports(_records(), tmp_path, NIGHT)
    raw = (tmp_path / "2026-11-03" / "沙头街道" / "G001.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["问题编号"] for r in rows] == ["00ab000000000001", "00ab000000000002"]
    assert rows[0]["房屋编码"] == "440304001001001001" and rows[0]["规则"] == "R1"
    assert rows[0]["身份证号(脱敏)"] == "4403**********1234"


def test_atomic_permissions_and_identical_rerun(tmp_path):
    exports.write_exports(_records(), tmp_path, NIGHT)
    night = tmp_path / "2026-11-03"
    files = sorted(p for p in night.rglob("*") if p.is_file())
    assert not [p for p in files if p.name.endswith(".tmp")]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    for d in [night, *(p for p in night.iterdir() if p.is_dir())]:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    time.sleep(1.1)  # zip entry times would differ if they came from the clock
    stats = exports.write_exports(_records(), tmp_path, NIGHT)
    assert stats["files_written"] == 0
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(p for p in night.rglob("*") if p.is_file())}
    assert after == before  # same bytes, files left untouched


def test_bytes_deterministic_across_writes():
    rows = [exports.display_row(r) for r in _records()]
    first = exports.xlsx_bytes(rows, "G001", NIGHT)
    time.sleep(1.1)
    assert exports.xlsx_bytes(rows, "G001", NIGHT) == first
    assert exports.xlsx_bytes(rows, "G001", NIGHT + dt.timedelta(days=1)) != first


def test_rerun_with_fewer_grids_removes_stale_files(tmp_path):
    exports.write_exports(_records(), tmp_path, NIGHT)
    stats = exports.write_exports(_records()[:2], tmp_path, NIGHT)
    night = tmp_path / "2026-11-03"
    assert stats["stale_removed"] == 4
    assert sorted(p.name for p in night.rglob("*.xlsx")) == ["G001.xlsx"]
    assert not (night / "香蜜湖街道").exists()


@pytest.mark.parametrize("field,value", [
    ("masked_id", "440304199001011234"), ("masked_phone", "13812345678"), ("masked_name", "张三明"),
])
def test_unmasked_personal_data_is_refused(tmp_path, field, value, caplog):
    with pytest.raises(PrivacyError):
        exports.display_row(_rec("G001", 1, **{field: value}))
    # the night goes on: that grid gets no file (fail closed), the next grid does; nothing raw recorded
    stats = exports.write_exports([_rec("G001", 1, **{field: value}), _rec("G002", 1)], tmp_path, NIGHT)
    assert [p.name for p in tmp_path.rglob("*.xlsx")] == ["G002.xlsx"]
    index = json.loads((tmp_path / "2026-11-03" / "index.json").read_text(encoding="utf-8"))
    assert stats["failed_grids"] == 1 and index["failed"] == [
        {"street": "沙头街道", "grid_id": "G001", "error": "PrivacyError"}]
    assert value not in json.dumps(index, ensure_ascii=False) and value not in caplog.text


def test_evidence_categories_only():
    assert exports.evidence_display(["police_incidents", "计生", "盗窃 incident 123", "安全生产"]) == "公安、安全生产、计生"
    assert exports.evidence_display(None) == ""


def test_unsorted_input_is_rejected(tmp_path):
    recs = _records()
    with pytest.raises(ValueError, match="not sorted"):
        exports.write_exports([recs[0], recs[2], recs[1]], tmp_path, NIGHT)


def _many_grids() -> list[dict]:
    recs = [_rec(f"G{g:03d}", r, street=street, house=f"440304{g:03d}001001{r:03d}")
            for street in ("沙头街道", "香蜜湖街道") for g in range(12) for r in (1, 2, 3)]
    recs[7] = {**recs[7], "masked_phone": "13812345678"}   # refused: that grid fails, in its turn
    return recs


def test_workbooks_from_worker_processes_are_the_same_files(tmp_path, caplog, monkeypatch):
    import logging
    import sys

    # a spawned worker imports the parent's main module again from its __file__: under pytest-xdist that is
    # "<pytest-xdist worker>", no file, and the workers would fail to start (gridlake, gridlake/submit.py and
    # `python -m gridlake.cli` name a real one); without it the workers import nothing of the parent's
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    inline = exports.write_exports(_many_grids(), tmp_path / "one", NIGHT)
    with caplog.at_level(logging.INFO, logger="jobs.exports.workbooks"):
        pooled = exports.write_exports(_many_grids(), tmp_path / "two", NIGHT, processes=2, processes_min_grids=3)
    assert "built by up to 2 worker processes" in caplog.text      # the pool did build them
    assert "stopped" not in caplog.text                             # ... and never fell back
    assert inline == {**pooled, "index": inline["index"]} and inline["grids"] == 23 and inline["failed_grids"] == 1

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    assert one == two and len(one) == 2 * 23 + 1


def test_workbooks_pool_returns_each_jobs_bytes_or_its_error():
    from jobs.exports.workbooks import Workbooks

    with Workbooks(bytes.fromhex, processes=2, min_grids=2) as books:
        first = books.submit("00ff")
        assert books.pool is None and books.window == 0      # below min_grids: built in this process
        jobs = [books.submit(h) for h in ("0a", "zz", "41")]
        assert books.pool is not None and books.window == 4
        assert books.result(first) == b"\x00\xff"
        assert books.result(jobs[0]) == b"\n" and books.result(jobs[2]) == b"A"
        with pytest.raises(ValueError):
            books.result(jobs[1])
    assert books.pool is None
    with Workbooks(bytes.fromhex, processes=1) as books:
        assert books.result(books.submit("41")) == b"A" and books.pool is None


def _workbooks_in_a_daemon(queue) -> None:
    from jobs.exports.workbooks import Workbooks

    with Workbooks(bytes.fromhex, processes=2) as books:
        got = books.result(books.submit("41"))
        queue.put((got, books.disabled, books.pool is None))


def test_workbooks_built_in_the_process_where_no_worker_may_start():
    import multiprocessing

    ctx = multiprocessing.get_context("fork")   # a daemonic process may not start children (some executors' tasks)
    queue = ctx.Queue()
    proc = ctx.Process(target=_workbooks_in_a_daemon, args=(queue,), daemon=True)
    proc.start()
    assert queue.get(timeout=60) == (b"A", True, True)
    proc.join(60)
    assert proc.exitcode == 0
