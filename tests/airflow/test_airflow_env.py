"""The embedded Airflow's environment and the task-time helpers (no Airflow import, no Spark session)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from gridlake import airflow_runtime as ar
from gridlake.errors import GridlakeError, QualityGateError
from jobs.bronze import completeness as bc
from tools import airflow_local as al


def test_environment_points_at_the_deployment(settings):
    env = al.airflow_environment(settings, base={"PATH": "/usr/bin", "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                                                 "AIRFLOW_HOME": "/elsewhere"})
    home = settings.data / "airflow"
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ar.REPO_ROOT / "dags")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home / 'airflow.db'}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"  # the caller's executor does not leak in
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(settings.airflow.parallelism)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["GRIDLAKE_DATA"] == str(settings.data) and env["GRIDLAKE_PROFILE"] == "local"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["PYSPARK_PYTHON"] == sys.executable and env["JAVA_HOME"]
    # secrets are stable across calls (every component must share them) and not world-readable
    again = al.airflow_environment(settings, base={"PATH": "/usr/bin"})
    assert again["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert (home / ".jwt_secret").stat().st_mode & 0o077 == 0


def test_admin_password_generated_once(settings):
    path = al.ensure_admin_password(settings)
    first = json.loads(path.read_text())["admin"]
    assert len(first) >= 12 and path.stat().st_mode & 0o077 == 0
    assert json.loads(al.ensure_admin_password(settings).read_text())["admin"] == first


def test_spark_submit_command_carries_the_profile(settings):
    cmd = ar.spark_submit_command(settings, dt.date(2026, 11, 2), ["bronze"], "r1", sources=["housing", "rentals"])
    assert cmd[0].endswith("spark-submit")
    assert cmd[cmd.index("--master") + 1] == settings.spark.master
    assert cmd[cmd.index("--driver-memory") + 1] == settings.spark.driver_memory
    confs = [cmd[i + 1] for i, c in enumerate(cmd) if c == "--conf"]
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in confs
    assert any(c.startswith("spark.jars=") for c in confs)
    tail = cmd[cmd.index(str(ar.SUBMIT_APP)):]
    assert tail[1:] == ["--date", "2026-11-02", "--stages", "bronze", "--run-id", "r1", "--sources", "housing,rentals"]


def test_night_is_the_logical_date_in_shanghai_or_the_param():
    late_utc = dt.datetime(2026, 11, 1, 18, 0, tzinfo=dt.UTC)  # 02:00 on 11-02 in Shanghai
    assert ar.night_of({"logical_date": late_utc, "params": {}}) == dt.date(2026, 11, 2)
    assert ar.night_of({"logical_date": late_utc, "params": {"date": "2026-11-05"}}) == dt.date(2026, 11, 5)
    with pytest.raises(GridlakeError):
        ar.night_of({"logical_date": None, "params": {}, "dag_run": SimpleNamespace(run_after=None)})


def test_night_is_the_partition_key_of_a_partitioned_run():
    run = SimpleNamespace(partition_key="2026-11-03", logical_date=None, run_after=dt.datetime(2026, 11, 3, 17, 0, tzinfo=dt.UTC))
    assert ar.night_of({"dag_run": run, "logical_date": None, "params": {}}) == dt.date(2026, 11, 3)
    assert ar.night_of({"partition_key": "2026-11-03", "params": {"date": "2026-11-01"}}) == dt.date(2026, 11, 1)
    assert ar.night_of({"dag_run": {"partition_key": "2026-11-04"}}) == dt.date(2026, 11, 4)  # a deadline's JSON run
    with pytest.raises(GridlakeError, match="not a night"):
        ar.night_of({"partition_key": "us|2026", "params": {}})


def test_last_error_line_prefers_the_job_marker():
    lines = ["INFO x", "Traceback ...", "ValueError: deep", "GRIDLAKE-ERROR: IngestionError: bad header", "INFO bye"]
    assert ar.last_error_line(lines) == "IngestionError: bad header"
    assert ar.last_error_line(["a", "java.lang.OutOfMemoryError: heap", "\tat x.y"]) == "java.lang.OutOfMemoryError: heap"


def test_run_streaming_raises_with_the_jobs_own_message(caplog):
    code = "import sys; print('working'); print('GRIDLAKE-ERROR: ConservationError: 3 rows lost', file=sys.stderr); sys.exit(1)"
    with caplog.at_level("INFO"), pytest.raises(RuntimeError, match="ConservationError: 3 rows lost"):
        ar.run_streaming([sys.executable, "-c", code], env={"PATH": "/usr/bin"})
    assert "working" in caplog.text  # the output went to the (task) log as it came


def _write_manifest(settings, run_id, doc):
    from gridlake.manifest import runs_dir

    runs_dir(settings).mkdir(parents=True, exist_ok=True)
    (runs_dir(settings) / f"{run_id}.json").write_text(json.dumps(doc))


def test_quality_gate(settings):
    _write_manifest(settings, "n1", {"stages": {"silver": {"status": "success"}},
                                     "quality": {"silver.housing": {"success": True}, "gold.x": {"success": False}}})
    assert ar.check_quality_gate(settings, "n1") == {"suites": 1, "failed": 0}
    _write_manifest(settings, "n2", {"stages": {"silver": {"status": "success"}},
                                     "quality": {"silver.rentals": {"success": False, "level": "error"}}})
    with pytest.raises(QualityGateError, match="silver.rentals"):
        ar.check_quality_gate(settings, "n2")
    _write_manifest(settings, "n3", {"stages": {"silver": {"status": "failed"}}})
    with pytest.raises(QualityGateError, match="failed"):
        ar.check_quality_gate(settings, "n3")


def test_not_yet_ingested_compares_content_hashes_with_the_ingestion_log(tmp_path):
    import hashlib

    import pyarrow as pa
    from deltalake import write_deltalake

    from gridlake.airflow_runtime import not_yet_ingested
    from gridlake.config import load_settings

    settings = load_settings("local", data_root=tmp_path / "data")
    old, new = tmp_path / "a.csv", tmp_path / "b.csv"
    old.write_bytes("编号\n1\n".encode("gb18030"))
    new.write_bytes("编号\n2\n".encode("gb18030"))
    assert not_yet_ingested(settings, [old, new]) == [old, new]  # no ingestion log yet: all new
    sha = hashlib.sha256(old.read_bytes()).hexdigest()
    write_deltalake(settings.table_path("bronze", "_ingestion_log"), pa.table({"file_sha256": [sha]}))
    assert not_yet_ingested(settings, [old, new]) == [new]
    renamed = tmp_path / "c.csv"
    renamed.write_bytes(old.read_bytes())  # same content under another name: already ingested
    assert not_yet_ingested(settings, [renamed]) == []


def test_bronze_check_names_late_sources_and_accepts_absent_ones(tmp_path):
    import hashlib

    import pyarrow as pa
    from deltalake import write_deltalake

    from gridlake.config import load_settings

    settings = load_settings("local", data_root=tmp_path / "data")
    night = dt.date(2026, 11, 2)
    folder = settings.landing / "rentals" / night.isoformat()
    folder.mkdir(parents=True)
    delivered = folder / "rentals.csv"
    delivered.write_bytes("编号\n1\n".encode("gb18030"))
    (settings.landing / "housing" / "2026-11-01").mkdir(parents=True)  # another night only: absent tonight
    with pytest.raises(GridlakeError, match=r"rentals \(1 file\(s\) not ingested\)") as info:
        bc.check_bronze_complete(settings, night, ["housing", "rentals"])
    assert "housing" not in str(info.value)
    sha = hashlib.sha256(delivered.read_bytes()).hexdigest()
    write_deltalake(settings.table_path("bronze", "_ingestion_log"), pa.table({"file_sha256": [sha]}))
    assert bc.check_bronze_complete(settings, night, ["housing", "rentals"]) == {
        "night": "2026-11-02", "sources": {"housing": "absent", "rentals": "in_bronze"}}


def test_the_demo_process_migrates_the_metadata_db_itself(settings):
    """``migrate_metadata`` (what the demo's Airflow process runs first) leaves the DB that ``airflow db migrate``
    and ``airflow pools set`` would: migrated (stamped at a revision) and the Spark pool set; a second run adds no pool."""
    import sqlite3
    import subprocess

    env = al.prepare_airflow(settings, migrate=False)
    db = settings.airflow_home / "airflow.db"
    assert not db.exists()  # nothing migrated without the commands
    code = "from tools.airflow_local import migrate_metadata; migrate_metadata(1); migrate_metadata(1)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(ar.REPO_ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    with sqlite3.connect(db) as con:
        pools = con.execute("SELECT pool, slots, description FROM slot_pool").fetchall()
        (version,) = con.execute("SELECT version_num FROM alembic_version").fetchone()
    assert (ar.SPARK_POOL, 1, al.SPARK_POOL_DESCRIPTION) in pools
    assert sum(p == ar.SPARK_POOL for p, _, _ in pools) == 1
    assert version  # stamped at a revision: the ORM's tables were created, not only some
