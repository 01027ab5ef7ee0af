"""tools.bench.replay: a data root copied and rolled back to just before a night (deltalake, no Spark)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from tools.bench.replay import replay_copy


def _run_record(lake, night: str, started: dt.datetime) -> None:
    (lake / "_runs").mkdir(parents=True, exist_ok=True)
    (lake / "_runs" / f"manual__{night}.json").write_text(
        json.dumps({"run_date": night, "started_at": started.isoformat()}), encoding="utf-8")


def test_the_copy_holds_the_lake_as_it_was_before_the_night_and_the_original_is_untouched(tmp_path, monkeypatch):
    data = tmp_path / "data"
    lake = data / "lake"
    kept, grown = str(lake / "silver" / "kept"), str(lake / "silver" / "grown")
    write_deltalake(grown, pa.table({"k": ["a"]}))
    write_deltalake(kept, pa.table({"k": ["x"]}))
    _run_record(lake, "2026-11-01", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    time.sleep(0.05)
    started = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    write_deltalake(grown, pa.table({"k": ["b"]}), mode="append")            # night 2's commits
    write_deltalake(grown, pa.table({"k": ["c"]}), mode="append")
    write_deltalake(str(lake / "gold" / "born"), pa.table({"k": ["n"]}))    # a table night 2 created
    # the run manifest keeps the night's first start; its JSON record says when it was last rerun
    write_deltalake(str(lake / "_runs" / "manifest"), pa.table({"manifest_json": [
        json.dumps({"run_date": "2026-11-02", "started_at": started.isoformat()})]}))
    time.sleep(0.05)
    _run_record(lake, "2026-11-02", dt.datetime.now(dt.UTC))
    for day in ("2026-11-01", "2026-11-02"):
        (data / "state" / "stage_runs" / day).mkdir(parents=True)
        (data / "exports" / day).mkdir(parents=True)
        (data / "reports" / "delivery").mkdir(parents=True, exist_ok=True)
        (data / "reports" / "delivery" / f"{day}.html").write_text("r", encoding="utf-8")
    (data / "landing" / "housing" / "2026-11-02").mkdir(parents=True)

    removed = replay_copy(data, dt.date(2026, 11, 2), tmp_path / "copy")

    copy = tmp_path / "copy"
    assert removed == {"commits": 2, "tables": 2}   # grown's two; born and the manifest, both newer
    assert DeltaTable(str(copy / "lake" / "silver" / "grown")).version() == 0
    assert DeltaTable(str(copy / "lake" / "silver" / "grown")).to_pyarrow_table().column("k").to_pylist() == ["a"]
    assert DeltaTable(str(copy / "lake" / "silver" / "kept")).version() == 0
    assert not (copy / "lake" / "gold" / "born").exists()
    assert sorted(p.name for p in (copy / "lake" / "_runs").glob("*.json")) == ["manual__2026-11-01.json"]
    assert sorted(p.name for p in (copy / "state" / "stage_runs").iterdir()) == ["2026-11-01"]
    assert sorted(p.name for p in (copy / "exports").iterdir()) == ["2026-11-01"]
    assert sorted(p.name for p in (copy / "reports" / "delivery").iterdir()) == ["2026-11-01.html"]
    assert (copy / "landing" / "housing" / "2026-11-02").is_dir()       # the deliveries stay
    assert DeltaTable(grown).version() == 2 and (lake / "gold" / "born").exists()   # the original untouched

    with pytest.raises(SystemExit, match="exists"):
        replay_copy(data, dt.date(2026, 11, 2), copy)
    with pytest.raises(SystemExit, match="no run record of night 2026-11-09"):
        replay_copy(data, dt.date(2026, 11, 9), tmp_path / "other")
    # a lake placed elsewhere by the environment is never rolled back in place of the copy's
    monkeypatch.setenv("GRIDLAKE_LAKE_ROOT", str(lake))
    with pytest.raises(SystemExit, match="outside"):
        replay_copy(data, dt.date(2026, 11, 2), tmp_path / "third")
    assert DeltaTable(grown).version() == 2
