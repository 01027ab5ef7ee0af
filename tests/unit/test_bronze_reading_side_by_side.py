"""A large night's files read by several processes give what one process gives, file for file, in the files'
order; a small night is read in this process; a file whose reading process dies is read again here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gridlake.sources import get_source, load_ingest_config
from jobs.bronze import reading
from jobs.bronze.reading import ReadJob, read_all, read_one, side_by_side

POLICE = "警情编号,报警时间,发生地址,警情类别,涉事人员身份证号\n"


def _files(tmp_path: Path) -> list[ReadJob]:
    src = get_source("police_incidents")
    config = load_ingest_config()
    bodies = {
        "big.csv": POLICE + "".join(f"P{i},2026-11-01 08:00,上沙村东村二坊{i}号,噪音扰民,\n" for i in range(3000)),
        "malformed.csv": POLICE + "P1,2026-11-01,地址一,盗窃,\nP2,2026-11-01\n",
        "missing.csv": "警情编号,报警时间\nP1,2026-11-01\n",       # a required column missing: rejected
        "header_only.csv": POLICE,
        "empty.csv": "",
        "repeated.csv": POLICE + "P9,2026-11-01,地址,盗窃,\n" + POLICE + "P10,2026-11-01,地址,盗窃,\n",
    }
    jobs = []
    for name, text in bodies.items():
        path = tmp_path / "copies" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("gb18030"))
        meta = {"_source_file": name, "_file_sha256": name, "_run_id": "r1", "_delivery_date": dt.date(2026, 11, 1)}
        jobs.append(ReadJob(path, src, config, name, tmp_path / "staged" / f"{name}.parquet", meta,
                            path.stat().st_size))
    return jobs


def _staged(job: ReadJob) -> list[dict] | None:
    if not job.target.exists():
        return None
    rows = pq.read_table(job.target).to_pylist()
    for r in rows:
        r.pop("_ingested_at")
    return rows


def _comparable(read) -> tuple:
    return (read.status, read.error, read.extra_columns, read.encoding, read.detected_format, read.header_row,
            read.header_map_json, read.form_notes, read.note, read.rows, dict(read.malformed), read.failed,
            read.unexpected)


def test_files_read_side_by_side_equal_one_process(tmp_path):
    config = load_ingest_config()
    one = _files(tmp_path / "one")
    serial = read_all(one, config)                       # a small night: this process
    assert side_by_side(one, config) == 1
    many = _files(tmp_path / "many")
    wide = config.model_copy(update={"parallel_min_bytes": 0, "read_processes": 2})
    assert side_by_side(many, wide) == 2
    parallel = read_all(many, wide)
    assert [_comparable(r) for r in parallel] == [_comparable(r) for r in serial]
    assert [_staged(j) for j in many] == [_staged(j) for j in one]
    by_name = {j.name: r for j, r in zip(one, serial, strict=True)}
    assert by_name["big.csv"].rows == 3000 and by_name["malformed.csv"].malformed == {"FIELD_COUNT": 1}
    assert by_name["missing.csv"].status == "rejected" and by_name["missing.csv"].rows == 0
    assert by_name["header_only.csv"].status == "header_only" and by_name["empty.csv"].status == "empty"
    assert by_name["repeated.csv"].rows == 2 and by_name["repeated.csv"].form_notes
    assert _staged(one[3]) is None and len(_staged(one[0])) == 3000


def test_a_file_whose_process_dies_is_read_again_here(tmp_path, monkeypatch):
    """The pool breaks (a process killed): the files it did not answer for are read in this process."""
    jobs = _files(tmp_path)
    wide = load_ingest_config().model_copy(update={"parallel_min_bytes": 0, "read_processes": 2})

    class Broken:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, job):
            from concurrent.futures import Future
            from concurrent.futures.process import BrokenProcessPool

            fut: Future = Future()
            if job.name == "big.csv":
                fut.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            else:
                fut.set_result(fn(job))
            return fut

    monkeypatch.setattr(reading, "ProcessPoolExecutor", Broken)
    got = read_all(jobs, wide)
    assert [r.rows for r in got] == [read_one(j).rows for j in jobs]
    assert got[0].rows == 3000 and _staged(jobs[0]) is not None


@pytest.mark.parametrize("size", [0, 10])
def test_a_small_night_or_one_core_is_read_here(tmp_path, monkeypatch, size):
    jobs = _files(tmp_path)
    config = load_ingest_config().model_copy(update={"parallel_min_bytes": 1 << 40 if size else 0})
    monkeypatch.setattr(reading.os, "cpu_count", lambda: 1 if not size else 8)
    assert side_by_side(jobs, config) == 1
