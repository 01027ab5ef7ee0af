"""DAG integrity: dags/ imports cleanly in Airflow 3, every DAG follows the house rules, parsing is cheap.

The DagBag is filled in a child process (Airflow configures logging and an ORM on import; the
test process stays clean), which reports what it found as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent("""
    import json, sys, time
    t0 = time.monotonic()
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    out = {"errors": {k: v[-500:] for k, v in bag.import_errors.items()}, "dags": {},
           "heavy": sorted(m for m in ("pyspark", "great_expectations", "py4j", "delta") if m in sys.modules),
           "seconds": time.monotonic() - t0}
    for dag_id, dag in bag.dags.items():
        tasks = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
        out["dags"][dag_id] = {
            "tags": sorted(dag.tags), "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
            "doc_md": bool(dag.doc_md and dag.doc_md.strip()), "timetable": type(dag.timetable).__name__,
            "retries": {t.task_id: t.retries for t in dag.tasks},
            "retry_delay": {t.task_id: t.retry_delay.total_seconds() for t in dag.tasks},
            "callback": {t.task_id: bool(t.on_failure_callback) for t in dag.tasks},
            "pools": {t.task_id: t.pool for t in dag.tasks},
            "outlets": {t.task_id: sorted(a.name for a in t.outlets) for t in dag.tasks},
            "downstream": tasks,
            "params": sorted(dag.params.keys()),
            "dag_callback": bool(dag.on_failure_callback),
            "deadlines": [(d.reference.reference_name, d.interval.total_seconds(), d.callback.path)
                          for d in (dag.deadline or [])],
            "inlets": {t.task_id: sorted(getattr(a, "name", "") for a in t.inlets) for t in dag.tasks},
        }
        tt = dag.timetable
        if type(tt).__name__ == "PartitionedAssetTimetable":
            out["dags"][dag_id]["schedule_assets"] = sorted(a.name for a in tt.asset_condition.objects)
        if type(tt).__name__ == "CronPartitionTimetable":
            out["dags"][dag_id]["partition"] = [tt.run_offset, tt.key_format]
    print("JSON" + json.dumps(out))
""")


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "GRIDLAKE_DATA": str(home / "data"),
    })
    proc = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "dags")], env=env, capture_output=True,
                          text=True, timeout=300, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))
    return json.loads(line[4:])


def test_no_import_errors(bag):
    assert bag["errors"] == {}


def test_one_ingestion_dag_per_source_and_the_nightly(bag):
    from gridlake.sources import load_sources

    expected = {f"gridlake_ingest_{s}" for s in load_sources()} | {"gridlake_nightly", "gridlake_maintenance"}
    assert set(bag["dags"]) == expected


@pytest.mark.parametrize("rule", ["tags", "retries", "catchup", "max_active_runs", "doc_md", "callback"])
def test_every_dag_follows_the_house_rules(bag, rule):
    for dag_id, d in bag["dags"].items():
        if rule == "tags":
            assert "gridlake" in d["tags"] and len(d["tags"]) >= 2, dag_id
        elif rule == "retries":
            assert all(r >= 2 for r in d["retries"].values()), (dag_id, d["retries"])
            assert all(s > 0 for s in d["retry_delay"].values()), dag_id
        elif rule == "catchup":
            assert d["catchup"] is False, dag_id
        elif rule == "max_active_runs":
            assert d["max_active_runs"] == 1, dag_id
        elif rule == "doc_md":
            assert d["doc_md"], dag_id
        elif rule == "callback":
            assert all(d["callback"].values()) and d["dag_callback"], dag_id
        assert "date" in d["params"], dag_id
        expected = {"gridlake_nightly": "PartitionedAssetTimetable", "gridlake_maintenance": "CronDataIntervalTimetable"}
        assert d["timetable"] == expected.get(dag_id, "CronPartitionTimetable"), dag_id


def _topo(downstream: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm; raises on a cycle."""
    indeg = {t: 0 for t in downstream}
    for outs in downstream.values():
        for t in outs:
            indeg[t] += 1
    ready = sorted(t for t, n in indeg.items() if n == 0)
    order = []
    while ready:
        t = ready.pop(0)
        order.append(t)
        for u in downstream[t]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    assert len(order) == len(downstream), f"cycle among {set(downstream) - set(order)}"
    return order


def test_no_cycles_and_the_nightly_runs_the_stages_in_order(bag):
    from gridlake.pipeline import STAGES

    for d in bag["dags"].values():
        _topo(d["downstream"])
    nightly = bag["dags"]["gridlake_nightly"]
    order = _topo(nightly["downstream"])
    expected = list(STAGES)
    expected.insert(expected.index("silver") + 1, "quality_gate")
    assert order == expected
    # a straight chain: each step depends on the one before
    for a, b in zip(expected, expected[1:], strict=False):
        assert nightly["downstream"][a] == [b]


def test_spark_tasks_share_the_spark_pool_and_emit_assets(bag):
    nightly = bag["dags"]["gridlake_nightly"]
    spark_tasks = [t for t in nightly["pools"] if t not in ("quality_gate", "bronze")]
    assert all(nightly["pools"][t] == "gridlake_spark" for t in spark_tasks)
    assert "silver.housing" in nightly["outlets"]["silver"]
    assert nightly["outlets"]["matching"] == ["gold.house_resolution", "gold.person_resolution"]
    ingest = bag["dags"]["gridlake_ingest_housing"]
    assert ingest["outlets"]["ingest"] == ["bronze.housing"]
    assert ingest["pools"]["ingest"] == "gridlake_spark"


def test_parsing_imports_neither_spark_nor_great_expectations(bag):
    assert bag["heavy"] == []


def test_ingestion_dags_emit_the_night_and_the_nightly_waits_for_every_source(bag):
    from gridlake.sources import load_sources

    sources = sorted(load_sources())
    nightly = bag["dags"]["gridlake_nightly"]
    assert nightly["schedule_assets"] == sorted(f"bronze.{s}" for s in sources)
    assert nightly["pools"]["bronze"] != "gridlake_spark"  # a check, no Spark
    assert nightly["inlets"]["bronze"] == sorted(f"bronze.{s}" for s in sources)
    for s in sources:
        ingest = bag["dags"][f"gridlake_ingest_{s}"]
        assert ingest["partition"] == [-1, "%Y-%m-%d"]  # run at 01:00 on D+1, key D
        assert ingest["deadlines"] and all(r == "DagRunQueuedAtDeadline" and secs > 0
                                           for r, secs, _ in ingest["deadlines"])
        assert ingest["deadlines"][0][2] == "gridlake.alerts.AlertFileNotifier"
