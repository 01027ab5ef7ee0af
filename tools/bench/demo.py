"""``gridlake bench demo``: ``make demo`` from a fresh clone, and its first night through Airflow vs ``gridlake run``.

Issue 22's targets: ``make demo`` from a fresh clone, set-up included, within 5 minutes; a community night
through Airflow within 1.3x the same night through ``gridlake run``. This bench

1. clones the repository at its HEAD into ``ROOT/clone`` (``git clone``: only what is committed) and times
   ``make demo`` there as a new user runs it (set-up, generation, Airflow, every night; the package caches of
   the machine are used, as they would be on a second try);
2. reads each DAG run's wall time from the demo's Airflow metadata DB (``dag_run``: queued at, ended at; a
   night is the ingestion DAG runs up to and including its nightly run) and each stage's seconds inside the
   nightly from the run manifests;
3. generates the same district (same seed, scale, nights) into ``ROOT/run`` and times ``gridlake run`` on
   the first night (every stage in one process: the reference the Airflow night is compared with).

The report carries the commit, the machine (and its load average before and after) and every figure.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tools.bench.kit import gridlake_cmd, measure, run_info

log = logging.getLogger(__name__)

__all__ = ["bench_demo", "demo_manifests"]

REPO = Path(__file__).resolve().parents[2]


def _dag_runs(airflow_db: Path) -> list[tuple[str, float, float]]:
    """``(dag_id, queued, ended)`` (epoch seconds) of every finished DAG run, in the order they were queued
    (``queued_at``; a run made by ``dag.test()`` has none, its run id ``manual__<time>`` names it)."""
    import sqlite3

    con = sqlite3.connect(f"file:{airflow_db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT dag_id, COALESCE(queued_at, substr(run_id, instr(run_id, '__') + 2)), end_date "
                           "FROM dag_run WHERE end_date IS NOT NULL").fetchall()
    finally:
        con.close()

    def ts(v: str) -> float:
        t = dt.datetime.fromisoformat(str(v))
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()

    return sorted(((d, ts(q), ts(e)) for d, q, e in rows if q), key=lambda r: r[1])


def demo_manifests(runs: Path, airflow_db: Path | None = None) -> dict[str, Any]:
    """Per night (the nightly's run manifests name them): the nightly's stage seconds and, from the Airflow DB,
    each DAG run's wall seconds, the ingestion total and the whole night (first DAG queued .. nightly ended)."""
    nights: dict[str, Any] = {}
    for f in sorted(runs.glob("gridlake_nightly__*.json")):
        m = json.loads(f.read_text(encoding="utf-8"))
        stages = m.get("stages") or {}
        items = stages.items() if isinstance(stages, dict) else ((s.get("stage"), s) for s in stages)
        nights[f.stem.rpartition("__")[2]] = {"nightly_stages": {k: s.get("seconds") for k, s in items}}
    if airflow_db is None or not airflow_db.exists():
        return nights
    batch: list[tuple[str, float, float]] = []
    order = iter(sorted(nights))
    for run in _dag_runs(airflow_db):
        batch.append(run)
        if run[0] != "gridlake_nightly":
            continue
        night = next(order, None)
        if night is None:
            break
        nights[night]["dags"] = {d: round(e - q, 1) for d, q, e in batch}
        nights[night]["ingest_seconds"] = round(sum(e - q for d, q, e in batch if d != "gridlake_nightly"), 1)
        nights[night]["airflow_night_seconds"] = round(batch[-1][2] - batch[0][1], 1)
        batch = []
    return nights


def bench_demo(root: Path, scale: str = "community", days: int = 2, seed: int = 20141) -> dict[str, Any]:
    """Run the bench (module doc) under ``root`` (emptied first) and return the report."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    report: dict[str, Any] = {"bench": "demo", **run_info(), "scale": scale, "days": days, "seed": seed,
                              "load_average_before": os.getloadavg()}
    clone = root / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GRIDLAKE_DATA")}
    started = time.monotonic()
    demo = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True)
    report["make_demo_seconds"] = round(time.monotonic() - started, 1)
    report["make_demo_returncode"] = demo.returncode
    if demo.returncode != 0:
        log.error("make demo failed: %s", (demo.stderr or demo.stdout)[-2000:])
        return report
    report["nights"] = demo_manifests(clone / "data" / "lake" / "_runs", clone / "data" / "airflow" / "airflow.db")
    first = min(report["nights"])
    run_root = root / "run"
    gen = measure(gridlake_cmd("generate", "--data", str(run_root), "--scale", scale, "--days", str(days),
                               "--seed", str(seed)))
    if gen.returncode != 0:
        raise RuntimeError("gridlake generate failed")
    # the same Spark settings as the demo's nights: it turns code generation off on a small landing
    from tools.demo import SMALL_LANDING_MB, SMALL_NIGHT_SETTINGS, landing_mb

    small = landing_mb(run_root / "landing") <= SMALL_LANDING_MB
    env = dict(os.environ, **({k: v for k, v in SMALL_NIGHT_SETTINGS.items() if k not in os.environ}
                              if small else {}))
    report["gridlake_run_codegen"] = env.get("GRIDLAKE_SPARK__CODEGEN", "true") != "false"
    report["gridlake_run_driver_gc"] = env.get("GRIDLAKE_SPARK__DRIVER_GC", "conf/gridlake.yaml")
    ref = measure(gridlake_cmd("run", "--data", str(run_root), "--date", first), env)
    manifest = json.loads((run_root / "lake" / "_runs" / f"manual__{first}.json").read_text(encoding="utf-8"))
    stages = manifest.get("stages") or {}
    report["gridlake_run_first_night"] = {
        "seconds": ref.seconds, "returncode": ref.returncode, "peak_jvm_rss_mb": ref.peak_jvm_rss_mb,
        "stages": {k: s.get("seconds") for k, s in (stages.items() if isinstance(stages, dict) else
                                                      ((s.get("stage"), s) for s in stages))}}
    airflow = report["nights"][first].get("airflow_night_seconds")
    report["airflow_over_gridlake_run"] = round(airflow / ref.seconds, 3) if airflow and ref.seconds else None
    report["targets"] = {"make_demo_seconds_max": 300, "airflow_over_run_max": 1.3,
                         "make_demo_met": report["make_demo_seconds"] <= 300,
                         "airflow_over_run_met": (report["airflow_over_gridlake_run"] or 99) <= 1.3}
    report["load_average_after"] = os.getloadavg()
    return report
