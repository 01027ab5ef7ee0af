"""One night of the pipeline: the same stage functions for ``gridlake run`` and the Airflow DAGs.

A stage is ``run(ctx: RunContext) -> dict`` in its own module (see :data:`STAGES`);
the dict it returns is recorded under ``stages.<name>`` in the run manifest.
Stages are idempotent: rerunning a night commits nothing new.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from gridlake import stage_replay
from gridlake.access import recording
from gridlake.config import Settings, load_settings
from gridlake.context import RunContext
from gridlake.errors import GridlakeError
from gridlake.manifest import Manifest, night_lock
from gridlake.privacy_scan import forget_known_pii
from gridlake.runid import validate_run_id
from gridlake.sanitise import install_log_filter

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# name -> "module:function"; order is execution order.
STAGES: dict[str, str] = {
    "bronze": "jobs.bronze.runner:run",
    "silver": "jobs.silver.runner:run",
    "matching": "jobs.matching.runner:run",
    "gold": "jobs.gold.runner:run",
    "exports": "jobs.exports.runner:run",
    "reports": "jobs.reports.runner:run",  # district, delivery and quality reports
}

#: what a progress state means, for logs
PROGRESS_WORDS = {"start": "started", "done": "done", "unchanged": "unchanged since its last success, skipped"}


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise GridlakeError(f"not a date: {value!r} (expected YYYY-MM-DD)") from None


def _stage_func(name: str) -> Callable[[RunContext], dict]:
    module, func = STAGES[name].split(":")
    return getattr(importlib.import_module(module), func)


def _flush_quality(ctx: RunContext) -> None:
    """One MERGE of the stage's buffered quality results (see :func:`gridlake.quality.history.record`)."""
    if ctx.extras.get("quality_results_buffer"):
        from gridlake.quality.history import flush_buffered

        flush_buffered(ctx)


def run_night(
    settings: Settings,
    run_date: dt.date,
    stages: Iterable[str] | None = None,
    run_id: str | None = None,
    spark: SparkSession | None = None,
    progress: Callable[[str, str], None] | None = None,
    extras: dict[str, Any] | None = None,
) -> Manifest:
    """Run the given stages (default all) of one night; return the written manifest."""
    from gridlake.spark import get_spark, label_jobs

    names = list(stages) if stages else list(STAGES)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise GridlakeError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
    run_id = validate_run_id(run_id or f"manual__{run_date.isoformat()}")
    install_log_filter()  # every log line of the night goes out sanitised (gridlake.sanitise)
    with night_lock(settings, run_date, run_id):
        from gridlake.privacy import key_fingerprint, load_key

        key = load_key(settings)  # fail closed before anything runs: only the demo profile may make its own key
        spark = spark or get_spark(settings)
        manifest = Manifest.open(settings, run_id, run_date)
        options = {"defer_quality_writes": True, **(extras or {})}  # the run's options (stages add state to extras)
        ctx = RunContext(settings, spark, run_date, run_id, manifest, extras=dict(options))
        key_fp = key_fingerprint(key)
        try:
            for name in names:
                if progress:
                    progress(name, "start")
                started = time.monotonic()
                digest = stage_replay.inputs_digest(settings, name, run_date, options, key_fp)
                record, why = stage_replay.replayable(settings, run_date, name, digest, spark,
                                                      recompute=bool(options.get("recompute")))
                if record is not None:
                    manifest.record_replayed(name, record, time.monotonic() - started)
                    log.info("%s: skipped, %s (run %s)", name, why, record.get("run_id"))
                    if progress:
                        progress(name, "unchanged")
                    continue
                if name in stage_replay.REPLAYABLE:
                    log.info("%s: runs (%s)", name, why)
                    stage_replay.forget(settings, run_date, name)
                before = stage_replay.manifest_sections(manifest.doc)
                label_jobs(spark, name)
                try:
                    with recording() as acc:
                        stats = _stage_func(name)(ctx) or {}
                except Exception as exc:
                    try:
                        _flush_quality(ctx)
                    except Exception as flush_exc:  # noqa: BLE001 - the stage's own failure is recorded and raised
                        # (a stopped Spark context fails both: the night's record must still say which stage failed)
                        log.error("%s: its quality results could not be written after it failed (%s)", name,
                                  type(flush_exc).__name__)
                    label_jobs(spark, None)
                    manifest.record_failure(name, exc)
                    manifest.write(spark)
                    raise
                _flush_quality(ctx)
                label_jobs(spark, None)
                manifest.record_stage(name, stats, time.monotonic() - started)
                if name in stage_replay.REPLAYABLE:
                    stage_replay.save(settings, run_date, name, digest, acc, manifest.doc["stages"][name],
                                      stage_replay.added(before, manifest.doc), run_id, spark)
                if progress:
                    progress(name, "done")
        finally:
            forget_known_pii()  # silver's names and phones, kept between the night's scans (gridlake.privacy_scan)
        manifest.finish(spark, publish=names[-1] == list(STAGES)[-1])
        return manifest


def cmd_run(args: argparse.Namespace) -> int:
    """``gridlake run --date D``: one night with stage progress."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    settings = load_settings(args.profile, args.data)
    run_date = parse_date(args.date)
    stages = None if args.stages == "all" else [s.strip() for s in args.stages.split(",") if s.strip()]
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=False) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, state: str) -> None:
            if state == "start":
                tasks[stage] = bar.add_task(f"{run_date} {stage}", total=1)
            else:
                mark = "✓" if state == "done" else f"✓ {PROGRESS_WORDS[state]}"
                bar.update(tasks[stage], completed=1, description=f"{run_date} {stage} {mark}")

        extras = {}
        if getattr(args, "sources", None):
            extras["sources"] = [s.strip() for s in args.sources.split(",") if s.strip()]
        for flag in ("retrain_matching", "retype_snapshots", "recompute"):
            if getattr(args, flag, False):
                extras[flag] = True
        manifest = run_night(settings, run_date, stages, args.run_id, progress=progress, extras=extras)
    log.info("manifest: %s", manifest.path)
    return 0
