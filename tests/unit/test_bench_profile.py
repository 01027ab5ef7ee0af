"""The night profiler's reading of Spark event logs and JVM thread names (no Spark: events written here)."""

from __future__ import annotations

import json

from tools.bench.profile import (
    job_kind,
    jobs_from_events,
    place_untagged,
    read_events,
    spark_overrides,
    summarise_jobs,
    thread_class,
)


def _sql(eid: int, description: str) -> dict:
    return {"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart", "executionId": eid,
            "description": description}


def _job(jid: int, start: int, end: int, stage: str | None = None, sql: int | None = None,
         call: str = "", tasks: int = 2) -> list[dict]:
    props = {"callSite.short": call}
    if stage:
        props["gridlake.stage"] = stage
    if sql is not None:
        props["spark.sql.execution.id"] = str(sql)
    return [{"Event": "SparkListenerJobStart", "Job ID": jid, "Submission Time": start, "Properties": props,
             "Stage Infos": [{"Number of Tasks": tasks}]},
            {"Event": "SparkListenerJobEnd", "Job ID": jid, "Completion Time": end}]


def test_job_kinds():
    assert job_kind("collect at great_expectations/execution_engine/sparkdf_execution_engine.py:1020", "", "") \
        == "quality"
    assert job_kind("", "Delta: Filtering files for query", "") == "delta_log"
    assert job_kind("", "", "$anonfun$recordDeltaOperationInternal$1 at DatabricksLogging.scala:128") == "delta_log"
    assert job_kind("", "", "save at NativeMethodAccessorImpl.java:0") == "write"
    assert job_kind("", "MERGE operation - scanning files for matches", "") == "write"
    assert job_kind("", "", "localCheckpoint at <unknown>:0") == "checkpoint"
    assert job_kind("collect at jobs/silver/runner.py:171", "", "collectToPython at <unknown>:0") == "action"


def test_jobs_are_read_tagged_placed_by_time_and_summed(tmp_path):
    events = [_sql(1, "save at NativeMethodAccessorImpl.java:0"), _sql(2, "localCheckpoint at <unknown>:0"),
              *_job(0, 1_000, 2_000, stage="bronze", sql=1),
              *_job(1, 5_000, 6_500, stage="silver", sql=2),
              *_job(2, 6_000, 6_200, call="collect at jobs/silver/runner.py:171"),  # a worker thread's job
              *_job(3, 9_000, 9_500, stage="silver", sql=1, tasks=4),
              *_job(4, 20_000, 20_100)]  # after every stage: the manifest's own write
    log_dir = tmp_path / "eventlog_v2_local-1"
    log_dir.mkdir()
    (log_dir / "events_1_local-1").write_text("\n".join(json.dumps(e) for e in events[:5]) + "\n")
    (log_dir / "events_2_local-1").write_text("\n".join(json.dumps(e) for e in events[5:]) + "\n")
    jobs = jobs_from_events(read_events(tmp_path))
    assert [j["id"] for j in jobs] == [0, 1, 2, 3, 4]
    place_untagged(jobs)
    assert [j["stage"] for j in jobs] == ["bronze", "silver", "silver", "silver", None]
    summary = summarise_jobs(jobs)
    silver = summary["silver"]
    assert (silver["jobs"], silver["tasks"], silver["job_seconds"]) == (3, 8, 2.2)
    assert silver["by_kind"]["checkpoint"] == {"jobs": 1, "job_seconds": 1.5}
    assert silver["by_kind"]["write"] == {"jobs": 1, "job_seconds": 0.5}
    assert silver["by_kind"]["action"] == {"jobs": 1, "job_seconds": 0.2}
    assert summary["bronze"]["by_kind"]["write"]["jobs"] == 1
    assert summary["(outside stages)"]["jobs"] == 1


def test_thread_classes():
    assert thread_class("C2 CompilerThre") == "jit"
    assert thread_class("C1 CompilerThre") == "jit"
    assert thread_class("G1 Conc#0") == "gc"
    assert thread_class("GC Thread#1") == "gc"
    assert thread_class("Executor task i") == "tasks"
    assert thread_class("Thread-4") == "driver_and_other"


def test_the_report_names_spark_settings_but_never_a_credential():
    env = {"GRIDLAKE_SPARK__CODEGEN": "false", "GRIDLAKE_SPARK__EXTRA__spark.hadoop.fs.s3a.secret.key": "s3cr3t",
           "GRIDLAKE_SPARK__EXTRA__spark.hadoop.fs.s3a.access.key": "AKIA0000", "AWS_SECRET_ACCESS_KEY": "x",
           "GRIDLAKE_PSEUDONYM_KEY": "k"}
    out = spark_overrides(env)
    assert out == {"GRIDLAKE_SPARK__CODEGEN": "false",
                   "GRIDLAKE_SPARK__EXTRA__spark.hadoop.fs.s3a.access.key": "<redacted>",
                   "GRIDLAKE_SPARK__EXTRA__spark.hadoop.fs.s3a.secret.key": "<redacted>"}
