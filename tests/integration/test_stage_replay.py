"""A rerun skips a stage whose tables, code, settings and key are those of its last success on the night (gridlake.stage_replay).

The pipeline runs two small stand-in stages under the names of the replayable stages, on the shared
session: "matching" reads silver.src and writes gold.out through gridlake.io, "gold" reads gold.out.
Every way its inputs can change must make the stage run again; nothing else may.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gridlake import io, pipeline, stage_replay

pytestmark = pytest.mark.spark

NIGHT = dt.date(2026, 11, 1)
CALLS: list[str] = []
BEHAVIOUR: dict[str, str] = {}


def stand_in_matching(ctx):
    CALLS.append("matching")
    ctx.extras["stand_in_state"] = True  # stages keep state in extras (the quality buffer): not a run option
    src = io.read_table(ctx.spark, ctx.settings, "silver", "src")
    if BEHAVIOUR.get("matching") == "commit-around-io":  # a commit gridlake.io does not see
        ctx.spark.createDataFrame([(99,)], "n int").write.format("delta").mode("append").save(
            ctx.settings.table_path("silver", "src"))
    if BEHAVIOUR.get("matching") == "fail":
        raise RuntimeError("stand-in failure")
    version = io.overwrite_if_changed(src.selectExpr("n * 2 AS n"), ctx.settings, "gold", "out")
    ctx.manifest.record_quality("gold.out", {"success": True, "rows": src.count()})
    return {"version": version}


def stand_in_gold(ctx):
    CALLS.append("gold")
    return {"rows": io.read_table(ctx.spark, ctx.settings, "gold", "out").count()}


@pytest.fixture
def night(spark, settings, monkeypatch):
    # a last stage never run, so no run publishes its manifest row (a Delta append each: time, not under test)
    monkeypatch.setattr(pipeline, "STAGES", {"matching": f"{__name__}:stand_in_matching",
                                             "gold": f"{__name__}:stand_in_gold", "reports": "never:run"})
    CALLS.clear()
    BEHAVIOUR.clear()
    io.write_table(spark.createDataFrame([(1,), (2,)], "n int"), settings, "silver", "src", "overwrite")

    def run(run_id: str = "manual__2026-11-01", **extras):
        return pipeline.run_night(settings, NIGHT, ["matching", "gold"], run_id=run_id, spark=spark, extras=extras)

    return spark, settings, run


def _ran(run) -> list[str]:
    CALLS.clear()
    try:
        run()
    except RuntimeError:
        pass
    return list(CALLS)


def test_a_rerun_replays_and_any_change_runs_again(night, monkeypatch):
    spark, settings, run = night
    first = run()
    assert CALLS == ["matching", "gold"] and "replayed" not in first.doc["stages"]["matching"]
    record = json.loads(stage_replay.record_path(settings, NIGHT, "matching").read_text(encoding="utf-8"))
    assert set(record["tables"]) == {"silver.src", "gold.out"} and record["written"] == ["gold.out"]

    # the same night again, under another run id (a manual rerun of a scheduled night): nothing runs
    CALLS.clear()
    again = run("manual__again")
    assert CALLS == []
    assert again.doc["stages"]["matching"]["replayed"]["from_run"] == "manual__2026-11-01"
    assert again.doc["stages"]["matching"]["version"] == first.doc["stages"]["matching"]["version"]
    # what the stage had recorded, marked as checked by the run that computed it
    assert again.doc["quality"]["gold.out"] == {"success": True, "rows": 2, "replayed_from_run": "manual__2026-11-01"}
    assert again.doc["status"] == "success"

    # a new row upstream: matching runs and moves gold.out, so gold runs too
    io.write_table(spark.createDataFrame([(3,)], "n int"), settings, "silver", "src", "append")
    assert _ran(run) == ["matching", "gold"]
    assert _ran(run) == []
    # a commit that changes no row (a table property) still counts: fail closed
    spark.sql(f"ALTER TABLE delta.`{settings.table_path('gold', 'out')}` SET TBLPROPERTIES ('gridlake.test'='1')")
    assert _ran(run) == ["matching", "gold"]  # overwrite_if_changed commits nothing; gold's record names the new commit
    assert _ran(run) == []
    # run options, another key, a lost record
    CALLS.clear()
    run(recompute=True)
    assert CALLS == ["matching", "gold"]
    assert _ran(run) == []  # a recomputed success is recorded like any other
    monkeypatch.setenv("GRIDLAKE_PSEUDONYM_KEY", "another-test-key-not-secret-0123456789abcdef")
    assert _ran(run) == ["matching", "gold"]
    assert _ran(run) == []
    stage_replay.record_path(settings, NIGHT, "gold").unlink()
    assert _ran(run) == ["gold"]


def test_no_record_after_a_failure_or_a_commit_around_io(night):
    spark, settings, run = night
    run()
    BEHAVIOUR["matching"] = "fail"
    with pytest.raises(RuntimeError):
        run(recompute=True)
    assert not stage_replay.record_path(settings, NIGHT, "matching").exists()  # dropped before it ran
    assert _ran(run) == ["matching"]  # gold is not reached: the failure raised again
    BEHAVIOUR["matching"] = "commit-around-io"
    assert not stage_replay.record_path(settings, NIGHT, "matching").exists()  # silver.src moved under it
    BEHAVIOUR.clear()
    assert _ran(run)[0] == "matching"  # no record: it runs (gold only if gold.out moved)
    assert _ran(run) == []
