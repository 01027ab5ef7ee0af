"""``gridlake maintain`` (and the weekly ``gridlake_maintenance`` DAG): keep the lake lean and within retention.

One pass, in this order:

1. **retention** (:mod:`gridlake.lifecycle.retention`): raw bronze rows older than ``bronze_days`` deleted,
   closed SCD2 versions older than ``silver_history_days`` deleted, quarantined rows older than
   ``quarantine_raw_days`` stripped of their raw line, business key and detail (reason codes stay);
2. **OPTIMIZE** the tables with at least ``optimize_min_files`` small files;
3. **VACUUM** every table with its layer's ``vacuum_hours`` (Delta's safety check on), never less than
   the age of the oldest version a night still needs (:func:`retention.needed_versions`): the last
   manifest, every night started within ``time_travel_days``, any night running now. VACUUM also
   deletes Parquet files no version refers to (killed writes) once they are older than the retention;
4. **staging**: bronze's per-run staging folders left by killed runs (``<data>/_staging``), unless a night runs;
5. **proof**: every needed version's files are checked to exist after the VACUUM;
6. **report**: files and bytes before and after per table, as JSON (``<data>/reports/maintenance/``) and
   as rows of the Delta log table ``_runs.maintenance``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.config import Settings, load_settings
from gridlake.lifecycle import delta_ops, lake, retention
from gridlake.storage import require_local

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

LOG_TABLE = ("_runs", "maintenance")


def apply_retention(spark: SparkSession, settings: Settings, today: dt.date) -> dict[str, dict[str, int]]:
    """Delete or strip the rows the retention windows end; ``{"layer.table": {"deleted"|"stripped": n}}``."""
    cfg = settings.retention
    out: dict[str, dict[str, int]] = {}
    for layer, name in lake.list_tables(settings, ("bronze", "silver")):
        cols = spark.read.format("delta").load(settings.table_path(layer, name)).columns
        key = f"{layer}.{name}"
        if layer == "bronze" and name not in retention.BRONZE_LOGS and "_delivery_date" in cols:
            out[key] = {"deleted": delta_ops.delete_where(spark, settings, layer, name,
                                                          retention.bronze_expired(today, cfg))}
        elif layer == "silver" and name in retention.SILVER_SIDE and "_delivery_date" in cols:
            cond, sets = retention.quarantine_expired(today, cfg, cols)
            out[key] = {"stripped": delta_ops.update_where(spark, settings, layer, name, cond, sets)}
        elif layer == "silver" and name in retention.SILVER_TYPED_SIDE and "_delivery_date" in cols:
            out[key] = {"deleted": delta_ops.delete_where(spark, settings, layer, name,
                                                          retention.typed_quarantine_expired(today, cfg))}
        elif layer == "silver" and retention.is_scd2(cols):
            out[key] = {"deleted": delta_ops.delete_where(spark, settings, layer, name,
                                                          retention.scd2_expired(today, cfg))}
    return out


def needs_optimize(spark: SparkSession, settings: Settings, layer: str, name: str) -> bool:
    """The current version has at least ``optimize_min_files`` files of average size below ``small_file_mb``."""
    cfg = settings.retention
    d = spark.sql(f"DESCRIBE DETAIL delta.`{settings.table_path(layer, name)}`").select("numFiles", "sizeInBytes").first()
    files, size = int(d["numFiles"] or 0), int(d["sizeInBytes"] or 0)
    return files >= cfg.optimize_min_files and size / max(files, 1) < cfg.small_file_mb * 1024 * 1024


def needed_files_exist(spark: SparkSession, settings: Settings, layer: str, name: str, version: int) -> bool:
    """True when ``version`` can still be read: its log is there and every data file of it exists."""
    from urllib.parse import unquote, urlparse

    path = lake.table_dir(settings, layer, name)
    if version < lake.earliest_readable_version(path):
        return False
    try:
        files = spark.read.format("delta").option("versionAsOf", version).load(str(path)).inputFiles()
    except Exception:  # noqa: BLE001 - Delta says the version cannot be reconstructed
        return False
    return all(Path(unquote(urlparse(f).path)).exists() for f in files)


def clean_staging(settings: Settings, running: list[str]) -> dict[str, int]:
    """Remove bronze staging folders of runs that are not running (killed runs leave them)."""
    root = settings.data / "_staging"
    if running or not root.is_dir():
        return {"dirs": 0, "bytes": 0, "skipped": int(bool(running))}
    dirs, size = 0, 0
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        size += sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
        shutil.rmtree(d, ignore_errors=True)
        dirs += 1
    return {"dirs": dirs, "bytes": size, "skipped": 0}


def run_maintenance(spark: SparkSession, settings: Settings, today: dt.date | None = None,
                    now: dt.datetime | None = None, optimize: bool = True) -> dict[str, Any]:
    """One maintenance pass (module doc); returns the report (also written as JSON and to ``_runs.maintenance``)."""
    require_local(settings, "gridlake maintain (a file inventory; on object storage run Delta's OPTIMIZE and "
                  "VACUUM with the configured retention instead)")
    now = now or dt.datetime.now(dt.UTC)
    today = today or now.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    cfg = settings.retention
    running = lake.running_nights(settings)
    needed = retention.needed_versions(lake.read_manifests(settings), now, cfg.time_travel_days, running)
    tables = [t for t in lake.list_tables(settings) if t != LOG_TABLE]
    before = {f"{la}.{n}": lake.inventory(settings, la, n) for la, n in tables}

    expired = apply_retention(spark, settings, today)

    rows: list[dict[str, Any]] = []
    for layer, name in tables:
        key = f"{layer}.{name}"
        path = lake.table_dir(settings, layer, name)
        optimized = False
        if optimize and needs_optimize(spark, settings, layer, name):
            delta_ops.optimize(spark, settings, layer, name)
            optimized = True
        need = needed.get(key)
        stamps = lake.commit_timestamps(path)
        hours = retention.vacuum_hours(cfg.vacuum_hours_for(layer), stamps.get(need) if need is not None else None, now)
        log_days = max(cfg.time_travel_days, math.ceil(hours / 24) + 1)
        delta_ops.vacuum(spark, settings, layer, name, hours, log_days)
        after = lake.inventory(settings, layer, name)
        intact = needed_files_exist(spark, settings, layer, name, need) if need is not None else None
        b = before[key]
        rows.append({"layer": layer, "table": name, "needed_version": need, "vacuum_hours": hours,
                     "log_retention_days": log_days, "optimized": optimized, **expired.get(key, {}),
                     **{f"{k}_before": v for k, v in b.to_dict().items()},
                     **{f"{k}_after": v for k, v in after.to_dict().items()},
                     "needed_version_intact": intact})
        log.info("%s: %d files / %d bytes -> %d files / %d bytes (vacuum %dh%s)", key, b.data_files, b.data_bytes,
                 after.data_files, after.data_bytes, hours, ", optimized" if optimized else "")

    staging = clean_staging(settings, running)
    report = {
        "run_at": now.isoformat(timespec="seconds"), "today": today.isoformat(), "running_nights": running,
        "retention": {"bronze_days": cfg.bronze_days, "silver_history_days": cfg.silver_history_days,
                      "quarantine_raw_days": cfg.quarantine_raw_days, "time_travel_days": cfg.time_travel_days},
        "tables": rows, "staging": staging,
        "totals": {k: sum(int(r[k] or 0) for r in rows) for k in (
            "data_files_before", "data_files_after", "data_bytes_before", "data_bytes_after", "log_files_before",
            "log_files_after", "log_bytes_before", "log_bytes_after", "untracked_files_before", "untracked_files_after")},
        "all_needed_versions_intact": all(r["needed_version_intact"] is not False for r in rows),
    }
    write_report(spark, settings, report)
    if not report["all_needed_versions_intact"]:
        bad = [f"{r['layer']}.{r['table']}@{r['needed_version']}" for r in rows if r["needed_version_intact"] is False]
        log.error("needed versions no longer readable: %s", ", ".join(bad))
    return report


def write_report(spark: SparkSession, settings: Settings, report: dict[str, Any]) -> Path:
    """The JSON report and one row per table in ``_runs.maintenance``."""
    from gridlake import io

    out = settings.reports / "maintenance" / f"{report['run_at'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    cols = ["layer", "table", "needed_version", "vacuum_hours", "optimized", "data_files_before", "data_files_after",
            "data_bytes_before", "data_bytes_after", "log_files_before", "log_files_after", "untracked_files_before",
            "untracked_files_after", "needed_version_intact"]
    schema = ("run_at string, layer string, table string, needed_version long, vacuum_hours long, optimized boolean, "
              "data_files_before long, data_files_after long, data_bytes_before long, data_bytes_after long, "
              "log_files_before long, log_files_after long, untracked_files_before long, untracked_files_after long, "
              "needed_version_intact boolean")
    data = [(report["run_at"], *[r.get(c) for c in cols]) for r in report["tables"]]
    if data:
        io.write_table(spark.createDataFrame(data, schema), settings, *LOG_TABLE, mode="append")
    return out


def cmd_maintain(args: argparse.Namespace) -> int:
    """``gridlake maintain``: one maintenance pass; exit 1 when a needed version is no longer readable."""
    from gridlake.spark import get_spark

    settings = load_settings(args.profile, args.data)
    today = dt.date.fromisoformat(args.today) if getattr(args, "today", None) else None
    spark = get_spark(settings, app_name="gridlake-maintain")
    report = run_maintenance(spark, settings, today=today, optimize=not getattr(args, "no_optimize", False))
    t = report["totals"]
    log.info("maintenance: data %d files / %d bytes -> %d files / %d bytes; log %d -> %d files; untracked %d -> %d",
             t["data_files_before"], t["data_bytes_before"], t["data_files_after"], t["data_bytes_after"],
             t["log_files_before"], t["log_files_after"], t["untracked_files_before"], t["untracked_files_after"])
    return 0 if report["all_needed_versions_intact"] else 1


def run_maintenance_job(settings: Settings, today: dt.date | None = None,
                        logger: logging.Logger | None = None) -> None:
    """Run ``gridlake/lifecycle/submit.py`` through spark-submit (the body of the DAG's task)."""
    from gridlake.airflow_runtime import run_streaming, spark_environment, venv_bin
    from gridlake.config import REPO_ROOT
    from gridlake.spark import spark_conf

    conf = spark_conf(settings, app_name="gridlake-maintenance")
    cmd = [str(venv_bin() / "spark-submit"), "--master", conf.pop("spark.master"),
           "--driver-memory", conf.pop("spark.driver.memory"), "--name", conf.pop("spark.app.name")]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd.append(str(REPO_ROOT / "gridlake" / "lifecycle" / "submit.py"))
    if today is not None:
        cmd += ["--today", today.isoformat()]
    run_streaming(cmd, spark_environment(settings), logger or log)
