"""The nightly DAG for real: Airflow 3 (SQLite, ``dag.test()``), spark-submit, a tiny generated district.

Runs once every pipeline stage exists (skipped, naming the missing module, until then).
Every source's ingestion DAG loads its delivery and emits ``bronze.<source>`` with the night as
partition key; the nightly DAG starts once all of them have it (its bronze task only checks).
A rerun of the same night must commit nothing: every Delta table keeps its version.
A failing Spark job fails its task with the job's own message and writes the alert record.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gridlake.pipeline import STAGES

pytestmark = [pytest.mark.airflow, pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NIGHT = "2026-11-01"


def _missing_stages() -> list[str]:
    missing = []
    for target in STAGES.values():
        module = target.split(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(module)
    if importlib.util.find_spec("tools.generate.cli") is None:
        missing.append("tools.generate.cli")
    return missing


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A tiny district (one night) and a migrated embedded Airflow."""
    missing = _missing_stages()
    if missing:
        pytest.skip(f"pipeline not complete yet: {', '.join(missing)}")
    from gridlake.config import load_settings
    from tools.airflow_local import prepare_airflow

    data = tmp_path_factory.mktemp("af-run") / "data"
    gen = subprocess.run([str(Path(sys.executable).parent / "gridlake"), "generate", "--scale", "tiny", "--days", "1",
                          "--start", NIGHT, "--data", str(data)], capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stderr[-2000:]
    settings = load_settings("local", data)
    env = prepare_airflow(settings)
    env["GRIDLAKE_AIRFLOW_RETRY_DELAY"] = "1"
    return settings, env


def _airflow_night(env: dict[str, str], dags: list[str], log: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "tools.demo", "--airflow-night", NIGHT, "--dags", ",".join(dags)],
                          env=env, capture_output=True, text=True, timeout=int(os.environ.get("GRIDLAKE_AIRFLOW_TEST_TIMEOUT", "7200")), cwd=str(REPO))
    out = proc.stdout + proc.stderr
    log.write_text(out)
    return proc.returncode, out


def _manifest(settings, dag_id: str) -> dict:
    from gridlake.manifest import runs_dir

    return json.loads((runs_dir(settings) / f"{dag_id}__{NIGHT}.json").read_text())


def _night_events(env: dict[str, str]) -> dict[str, dict]:
    """``bronze.*`` asset events of NIGHT in the deployment's metadata DB: asset name -> extra."""
    code = ("import json; from sqlalchemy import select; from airflow.utils.session import create_session; "
            "from airflow.models.asset import AssetEvent, AssetModel\n"
            "with create_session() as s:\n"
            "    rows = s.execute(select(AssetModel.name, AssetEvent.extra).join(AssetEvent, AssetEvent.asset_id == "
            f"AssetModel.id).where(AssetEvent.partition_key == '{NIGHT}')).all()\n"
            "print('EVENTS' + json.dumps({n: e for n, e in rows if n.startswith('bronze.')}))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("EVENTS"))[6:])


def test_nightly_dag_runs_and_a_rerun_changes_no_table(deployment, tmp_path):
    from gridlake.sources import load_sources
    from tools.demo import ingest_dag_ids, landed_nights
    from tools.demo_airflow import AirflowNights

    settings, env = deployment
    # the demo's way: one Airflow process for the nights, handed one night at a time (here the same one twice)
    airflow = AirflowNights(env, [*ingest_dag_ids(), "gridlake_nightly"], tmp_path / "logs")
    events_seen: list[tuple[str, str, str]] = []
    seconds = airflow.run(dt.date.fromisoformat(NIGHT), lambda d, what, state, _s: events_seen.append((d, what, state)))
    out = (tmp_path / "logs" / f"{NIGHT}.log").read_text(encoding="utf-8")
    assert set(seconds) == {*ingest_dag_ids(), "gridlake_nightly"}
    assert ("gridlake_nightly", "end", "success") in events_seen
    assert "GRIDLAKE-DEMO: ready" in out  # the child's start-up (DAG folder parsed, task API built) is in it
    # the task API answered its warm-up read before the first task (the first DAG's task instances so far)
    assert re.search(rf"task API built and warmed in [\d.]+ s \({ingest_dag_ids()[0]}: \d+ task instance", out), \
        "the child did not warm the task API"
    assert f"GRIDLAKE-DEMO: assets {NIGHT} ready" in out
    assert "GRIDLAKE-DEMO: end gridlake_nightly success" in out
    events = _night_events(env)
    assert set(events) == {f"bronze.{s}" for s in load_sources()}  # every source, delivered or not
    assert all(e["night"] == NIGHT for e in events.values())
    assert events["bronze.housing"]["delivered"] >= 1 and events["bronze.housing"]["ingested"] >= 1
    assert landed_nights(settings) == [dt.date.fromisoformat(NIGHT)]
    first = _manifest(settings, "gridlake_nightly")
    assert first["status"] == "success"
    spark_stages = [s for s in STAGES if s != "bronze"]  # the nightly's bronze task is a check, no Spark
    assert set(spark_stages) <= set(first["stages"]) and first["failures"] == []
    assert first["table_versions"], "no Delta table recorded"
    assert any(k.startswith("gold.") for k in first["table_versions"])
    ingest = _manifest(settings, "gridlake_ingest_housing")
    assert ingest["stages"]["bronze"]["status"] == "success"
    assert (settings.reports / "district" / f"{NIGHT}.html").exists()
    assert (settings.quality / "data_docs" / "index.html").exists()

    seconds = airflow.run(dt.date.fromisoformat(NIGHT), lambda *_: None)  # the same process, the night again
    assert airflow.close() == 0
    assert "GRIDLAKE-DEMO: ready" not in (tmp_path / "logs" / f"{NIGHT}.log").read_text(encoding="utf-8")
    second = _manifest(settings, "gridlake_nightly")
    assert second["attempts"] >= first["attempts"] + len(spark_stages)  # each Spark task opens the manifest once
    assert second["table_versions"] == first["table_versions"]


def test_a_failing_spark_job_fails_its_task_with_its_own_message(deployment, tmp_path):
    settings, env = deployment
    folder = settings.landing / "rentals" / NIGHT
    redelivered = folder / "zz_redelivery.csv"  # new content, so the ingestion DAG starts Spark
    redelivered.write_bytes(next(p for p in sorted(folder.iterdir()) if p.is_file()).read_bytes() + b"\n")
    # the job cannot write its table: a file where bronze.rentals should be (same Asset URI, same lake)
    table = Path(settings.table_path("bronze", "rentals"))
    aside = table.with_name("rentals.aside")
    if table.exists():
        table.rename(aside)
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("x")
    try:
        rc, out = _airflow_night(env, ["gridlake_ingest_rentals"], tmp_path / "fail.log")
    finally:
        table.unlink()
        if aside.exists():
            aside.rename(table)
        redelivered.unlink()
    assert rc != 0
    assert "GRIDLAKE-DEMO: end gridlake_ingest_rentals failed" in out
    assert "spark-submit exited with" in out
    alerts = json.loads((settings.data / "alerts" / f"gridlake_ingest_rentals__{NIGHT}.json").read_text())
    record = alerts["failures"][0]  # the task's own callback; the DAG-level one follows with its reason
    assert record["task_id"] == "ingest" and record["night"] == NIGHT and record["kind"] == "failure"
    assert alerts["failures"][-1]["error"] == "task_failure"
    assert "spark-submit exited with" in record["error"] and "GRIDLAKE-ERROR" not in record["error"]


def test_the_nightly_stops_at_bronze_when_a_delivery_is_not_ingested(deployment, tmp_path):
    settings, env = deployment
    folder = settings.landing / "rentals" / NIGHT
    late = folder / "zz_late_delivery.csv"
    late.write_bytes(next(p for p in sorted(folder.iterdir()) if p.is_file()).read_bytes() + b"\n\n")
    try:
        rc, out = _airflow_night(env, ["gridlake_nightly"], tmp_path / "late.log")
    finally:
        late.unlink()
    assert rc != 0
    assert "GRIDLAKE-DEMO: end gridlake_nightly failed" in out
    assert "spark-submit" not in out.split("GRIDLAKE-DEMO: start gridlake_nightly", 1)[1].split("bronze incomplete")[0]
    alerts = json.loads((settings.data / "alerts" / f"gridlake_nightly__{NIGHT}.json").read_text())
    record = next(r for r in alerts["failures"] if r["task_id"] == "bronze")
    assert "bronze incomplete for the night" in record["error"] and "rentals (" in record["error"]
