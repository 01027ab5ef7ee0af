"""Privacy of what gridlake writes: service user only (dirs 0700, files 0600); no key, no run outside the demo.

Reproduce: ``.venv/bin/python -m pytest -q tests/integration/test_permissions.py tests/unit/test_repo_secrets.py``
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
from pathlib import Path

import pytest

from gridlake import io
from gridlake.config import REPO_ROOT, load_settings
from gridlake.manifest import Manifest
from gridlake.permissions import SERVICE_UMASK, current_umask, exposed, private_dir, secure_process
from gridlake.spark import spark_conf

NIGHT = dt.date(2026, 11, 3)
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def _records() -> list[dict]:
    from tests.unit.test_exports import _records as export_records

    return export_records()


@pytest.mark.spark
def test_lake_exports_quality_reports_and_runs_are_private(spark, settings):
    from gridlake.quality.docs import make_offline
    from jobs.bronze.readers import BronzeRow
    from jobs.bronze.staging import now_utc, write_staging
    from jobs.exports.writer import write_exports
    from jobs.reports.district import report_path, write_report

    assert current_umask() == SERVICE_UMASK  # get_spark (the session fixture) set it before the JVM started
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    assert hadoop.get("fs.permissions.umask-mode") == "077"
    # the lake: a partitioned Delta table (partition folder, Parquet, _delta_log JSON, .crc files)
    df = spark.createDataFrame([("S1", "2026-11-03"), ("S2", "2026-11-03")], "id string, d string")
    io.write_table(df, settings, "bronze", "perm_check", mode="append", partition_by=["d"])
    # bronze staging (pyarrow), a run manifest, an export night, a report page, offline Data Docs assets
    write_staging([BronzeRow(1, {"id": "S1"})], settings.data / "_staging" / "r" / "x.parquet", ["id"],
                  {"_source_file": "f", "_file_sha256": "0" * 64, "_ingested_at": now_utc(), "_run_id": "r",
                   "_encoding": "utf-8", "_delivery_date": NIGHT})
    Manifest.open(settings, "perm-check", NIGHT).write()
    stats = write_exports(_records(), settings.exports, NIGHT)
    assert stats["files"] > 0
    write_report("<html></html>\n", report_path(settings, NIGHT))
    site = settings.quality / "docs"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html></html>\n", encoding="utf-8")
    make_offline(site)

    written = [p for p in settings.data.rglob("*") if p.is_file()]
    kinds = {p.relative_to(settings.data).parts[0] for p in written}
    assert {"lake", "exports", "reports", "quality", "_staging"} <= kinds
    assert any(p.suffix == ".parquet" for p in written) and any(p.suffix == ".crc" for p in written)
    assert any("_delta_log" in p.parts for p in written) and any(p.suffix == ".xlsx" for p in written)
    assert exposed(settings.data) == []  # no file or folder group/other readable, writable or enterable
    modes = {stat.S_IMODE(p.stat().st_mode) for p in written}
    assert modes == {0o600}, sorted(oct(m) for m in modes)


@pytest.mark.spark
def test_hadoop_would_write_group_readable_files_without_its_own_umask(spark, settings):
    """Why spark_conf sets fs.permissions.umask-mode: the process umask alone does not reach Hadoop's files."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop.set("fs.permissions.umask-mode", "022")
    try:
        io.write_table(spark.createDataFrame([("S1",)], "id string"), settings, "bronze", "loose", mode="append")
    finally:
        hadoop.set("fs.permissions.umask-mode", "077")
    assert current_umask() == SERVICE_UMASK
    loose = exposed(Path(settings.table_path("bronze", "loose")))
    assert loose and all(mode in ("0o644", "0o755") for _, mode in loose)


def test_spark_conf_carries_the_hadoop_umask(tmp_path):
    conf = spark_conf(load_settings("local", data_root=tmp_path))
    assert conf["spark.hadoop.fs.permissions.umask-mode"] == "077"


def test_entry_points_set_the_umask(monkeypatch, tmp_path):
    import logging

    import gridlake.cli as cli
    import gridlake.submit as submit

    monkeypatch.setenv("GRIDLAKE_DATA", str(tmp_path))  # cli.main sets it from --data: restored afterwards
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # both mains reconfigure logging (force=True)
    monkeypatch.setattr(root, "level", root.level)
    seen: list[int] = []
    previous = os.umask(0o022)
    try:
        monkeypatch.setattr(cli, "_resolve", lambda handler: lambda args: seen.append(current_umask()) or 0)
        assert cli.main(["scan-privacy", "--data", str(tmp_path)]) == 0
        os.umask(0o022)
        monkeypatch.setattr(submit, "_run", lambda args: seen.append(current_umask()))
        assert submit.main(["--date", "2026-11-03", "--data", str(tmp_path)]) == 0
    finally:
        os.umask(previous)
    assert seen == [SERVICE_UMASK, SERVICE_UMASK]


def test_a_wide_data_root_is_tightened(tmp_path):
    root = tmp_path / "data"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    previous = os.umask(0o022)
    try:
        secure_process(load_settings("local", data_root=root))
        assert current_umask() == SERVICE_UMASK
    finally:
        os.umask(previous)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "lake").stat().st_mode) == 0o700
    assert private_dir(root) == root


def test_cluster_profile_refuses_to_run_without_the_key_before_spark(tmp_path):
    """Only the demo (local) profile may make its own key; any other refuses at the start of the run."""
    from tests.integration.test_concurrency import _child_env, _recording_java_home

    java_home, marker = _recording_java_home(tmp_path)
    env = {k: v for k, v in _child_env(java_home).items() if k != "GRIDLAKE_PSEUDONYM_KEY"}
    data = tmp_path / "data"
    proc = subprocess.run([str(VENV_BIN / "gridlake"), "run", "--profile", "cluster", "--data", str(data),
                           "--date", "2026-11-03", "--stages", "bronze"], env=env, capture_output=True, text=True,
                          timeout=120)
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1, output
    assert "no pseudonym key: set the environment variable GRIDLAKE_PSEUDONYM_KEY" in output
    assert "Refusing to run" in output and "Traceback" not in output
    assert not (data / "lake").exists() and not (data / ".gridlake-key").exists()
    assert not marker.exists(), "Spark was started before the key was checked"
