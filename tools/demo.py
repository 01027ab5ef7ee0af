"""``gridlake demo``: generate the sample district, then run every night through real Airflow.

Per night: every per-source ``gridlake_ingest_<source>`` DAG (each ingests its delivery, or declares
it absent, and emits ``bronze.<source>`` with the night as partition key), then ``gridlake_nightly``
once the metadata database holds that partition for every source (what its
``PartitionedAssetTimetable`` waits for) — each with ``dag.test()`` against the embedded SQLite
metadata database (``airflow db migrate`` once), in one Airflow process for all nights
(:mod:`tools.demo_airflow`); each Spark stage runs in the demo's stage server (one Spark application,
:mod:`gridlake.stage_server`), or as a ``spark-submit`` without it. Between nights the simulated grid
officers verify the previous night's follow-ups (when the generator provides
``tools.generate.officers.simulate_verifications``).
``--no-airflow`` runs the same nights with :func:`gridlake.pipeline.run_night` instead.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gridlake.config import Settings, load_settings
from gridlake.errors import GridlakeError
from tools.demo_airflow import NIGHTLY, REPO, AirflowNights
from tools.demo_airflow import main as airflow_main

log = logging.getLogger(__name__)

_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def landed_nights(settings: Settings) -> list[dt.date]:
    """Delivery nights present in ``landing/<source>/<YYYY-MM-DD>/``, in order."""
    if not settings.landing.is_dir():
        return []
    nights = {p.name for src in settings.landing.iterdir() if src.is_dir()
              for p in src.iterdir() if p.is_dir() and _DATE_DIR.match(p.name)}
    return sorted(dt.date.fromisoformat(n) for n in nights)


def generate(settings: Settings, args: argparse.Namespace) -> None:
    """Write the synthetic district with the generator's own command handler."""
    handler = importlib.import_module("tools.generate.cli").cmd_generate
    gen_args = argparse.Namespace(
        scale=args.scale, days=args.days, start=getattr(args, "start", "2026-11-01"),
        seed=getattr(args, "seed", 20141), noise=None, data=str(settings.data), profile=settings.profile,
        verbose=getattr(args, "verbose", False),
    )
    code = handler(gen_args)
    if code:
        raise GridlakeError(f"generation failed (exit {code})")


def simulate_verifications(settings: Settings, night: dt.date, seed: int) -> bool:
    """Let the simulated officers check ``night``'s follow-ups, if the generator can; True when it ran."""
    try:
        officers = importlib.import_module("tools.generate.officers")
    except ImportError:
        return False
    func = getattr(officers, "simulate_verifications", None)
    if func is None:
        return False
    func(settings, night, seed)
    return True


def ingest_dag_ids() -> list[str]:
    """Every source's ingestion DAG, in conf/sources.yaml order."""
    from gridlake.sources import load_sources

    return [f"gridlake_ingest_{name}" for name in load_sources()]


def stage_server_log(settings: Settings) -> Path:
    """Where the demo's stage server writes its output."""
    return settings.airflow_home / "demo-logs" / "stage-server.log"


def launch_stage_server(settings: Settings, env: dict[str, str]) -> subprocess.Popen:
    """Start ``gridlake stage-server start`` for the demo's data root and return at once (see :func:`wait_for_stage_server`)."""
    from gridlake.airflow_runtime import spark_environment

    log_file = stage_server_log(settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "gridlake.cli", "stage-server", "start", "--data", str(settings.data),
           "--profile", settings.profile]
    with open(log_file, "w", encoding="utf-8") as out:
        return subprocess.Popen(cmd, env=spark_environment(settings, env or None), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=str(REPO))


def wait_for_stage_server(settings: Settings, proc: subprocess.Popen, timeout: float = 300.0) -> subprocess.Popen:
    """Return ``proc`` once the server it started answers; stop it and raise when it exits or times out."""
    from gridlake.stage_client import status

    deadline = time.monotonic() + timeout
    while status(settings) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_stage_server(settings, proc)
            raise GridlakeError(f"the stage server did not start; log {stage_server_log(settings)}")
        time.sleep(0.5)
    return proc


def start_stage_server(settings: Settings, env: dict[str, str], timeout: float = 300.0) -> subprocess.Popen:
    """``gridlake stage-server start`` for the demo's data root; returns once it answers."""
    return wait_for_stage_server(settings, launch_stage_server(settings, env), timeout)


def ask_stage_server_to_stop(settings: Settings, proc: subprocess.Popen) -> bool:
    """Ask the server to stop and return at once; True when it answered (it is stopping)."""
    from gridlake.stage_client import stop

    return proc.poll() is None and stop(settings)


def stop_stage_server(settings: Settings, proc: subprocess.Popen, asked: bool = False) -> None:
    """Ask the server to stop (unless ``asked`` already); kill it if it does not within a minute."""
    from gridlake.stage_client import stop

    if proc.poll() is None and not asked and not stop(settings):
        # not answering yet (still starting): nothing would tell it to stop
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


#: deliveries of at most this many MB in all (a community district's two nights: 2.1 MB) run with these settings
#: (each unless the environment sets it already): interpreted queries, the parallel collector
SMALL_NIGHT_SETTINGS = {"GRIDLAKE_SPARK__CODEGEN": "false", "GRIDLAKE_SPARK__DRIVER_GC": "parallel"}
SMALL_LANDING_MB = 16.0


def landing_mb(landing: Path) -> float:
    """MB of every delivered file under a landing folder."""
    return sum(f.stat().st_size for f in landing.rglob("*") if f.is_file()) / 2**20


# --- the command -------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """Generate (unless landed already) and run every night; print where the results are."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console(stderr=True)
    settings = load_settings(args.profile, args.data)
    nights = landed_nights(settings)
    if nights:
        console.print(f"landing already holds {len(nights)} night(s) ({nights[0]} … {nights[-1]}): not generating")
    else:
        console.print(f"generating a [bold]{args.scale}[/] district, {args.days} night(s) into {settings.landing}")
        generate(settings, args)
        nights = landed_nights(settings)
    if not nights:
        raise GridlakeError(f"no deliveries under {settings.landing}")
    small = {k: v for k, v in SMALL_NIGHT_SETTINGS.items() if k not in os.environ}
    if small and landing_mb(settings.landing) <= SMALL_LANDING_MB:
        # a few thousand rows a night: interpreted queries beat compiled ones, and the parallel garbage
        # collector beats G1 (spark.codegen, spark.driver_gc; docs/speed.md); set here, so Airflow, the stage
        # server and every task inherit them
        os.environ.update(small)
        settings = load_settings(args.profile, args.data)
        said = {"GRIDLAKE_SPARK__CODEGEN": "Spark interprets its queries instead of compiling them (spark.codegen)",
                "GRIDLAKE_SPARK__DRIVER_GC": "its driver runs the parallel garbage collector (spark.driver_gc)"}
        console.print("a small district: " + "; ".join(said[k] for k in small))
    seed = int(getattr(args, "seed", 20141) or 20141)
    use_airflow = not args.no_airflow
    timings: list[tuple[str, str, float]] = []

    env: dict[str, str] = {}
    launched = None
    if use_airflow:
        from tools.airflow_local import airflow_environment, prepare_airflow, spark_pool_slots

        env = airflow_environment(settings)
        env["GRIDLAKE_AIRFLOW_RETRY_DELAY"] = os.environ.get("GRIDLAKE_AIRFLOW_RETRY_DELAY", "20")
        # the stage server's JVM starts while the Airflow process below migrates its metadata DB
        launched = None if getattr(args, "no_stage_server", False) else launch_stage_server(settings, env)
        console.print(f"Airflow metadata DB: {settings.airflow_home / 'airflow.db'} (migrated by the Airflow process)")
        try:
            # the Airflow process below migrates the DB itself (two `airflow` commands took 7 s before it)
            env = prepare_airflow(settings, env, migrate=False)
        except BaseException:
            if launched is not None:
                stop_stage_server(settings, launched)
            raise
    # every source's ingestion DAG (a source without delivery declares itself absent), then the nightly
    # DAG from their bronze.* partitions of the night
    dag_ids = [*ingest_dag_ids(), NIGHTLY]
    with contextlib.ExitStack() as cleanup:
        if use_airflow:
            asked = {"stop": False}
            if launched is not None:
                cleanup.callback(lambda: stop_stage_server(settings, launched, asked["stop"]))
            # one Airflow process for every night; it parses the DAGs while the stage server starts
            airflow = AirflowNights(env, dag_ids, settings.airflow_home / "demo-logs", migrate=spark_pool_slots(settings))
            cleanup.callback(airflow.close)
            if launched is not None:
                # at the end (callbacks run last first) the server stops its Spark application while the Airflow
                # process exits, instead of after it (3-4 s one after the other)
                cleanup.callback(lambda: asked.update(stop=ask_stage_server_to_stop(settings, launched)))
                wait_for_stage_server(settings, launched)
                console.print("stage server up: the Airflow tasks share one Spark application (gridlake stage-server)")
        bar = cleanup.enter_context(Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                             console=console))
        for i, night in enumerate(nights):
            if i > 0 and simulate_verifications(settings, nights[i - 1], seed):
                console.print(f"officers verified the follow-ups of {nights[i - 1]}")
            started = time.monotonic()
            if use_airflow:
                tasks: dict[str, Any] = {}

                def on_event(dag_id: str, what: str, state: str, secs: float, night: dt.date = night,
                             tasks: dict[str, Any] = tasks) -> None:
                    if what == "start":
                        tasks[dag_id] = bar.add_task(f"{night} {dag_id}", total=1)
                    else:
                        mark = "✓" if state == "success" else f"✗ {state}"
                        bar.update(tasks[dag_id], completed=1, description=f"{night} {dag_id} {mark} ({secs:.0f}s)")

                for dag_id, secs in airflow.run(night, on_event).items():
                    timings.append((night.isoformat(), dag_id, secs))
            else:
                from gridlake.pipeline import run_night

                stage_tasks: dict[str, Any] = {}

                def progress(stage: str, state: str, night: dt.date = night,
                             stage_tasks: dict[str, Any] = stage_tasks) -> None:
                    if state == "start":
                        stage_tasks[stage] = bar.add_task(f"{night} {stage}", total=1)
                    else:
                        mark = "✓" if state == "done" else "✓ unchanged, skipped"
                        bar.update(stage_tasks[stage], completed=1, description=f"{night} {stage} {mark}")

                run_night(settings, night, run_id=f"demo__{night.isoformat()}", progress=progress)
            timings.append((night.isoformat(), "night total", time.monotonic() - started))

    table = Table(title="timings (seconds)")
    for col in ("night", "run", "seconds"):
        table.add_column(col)
    for night_s, what, secs in timings:
        table.add_row(night_s, what, f"{secs:.0f}")
    console.print(table)
    _print_results(console, settings, nights[-1])
    return 0


def _print_results(console: Any, settings: Settings, last: dt.date) -> None:
    from gridlake.manifest import runs_dir

    exports = settings.exports / last.isoformat()
    rows = [
        ("exports", exports if exports.exists() else settings.exports),
        ("Data Docs", settings.quality / "data_docs" / "index.html"),
        ("district report", settings.reports / "district" / f"{last.isoformat()}.html"),
        ("delivery report", settings.reports / "delivery" / f"{last.isoformat()}.html"),
        ("run manifests", runs_dir(settings)),
        ("Airflow (gridlake airflow-ui)", settings.airflow_home),
    ]
    for label, path in rows:
        state = "" if Path(path).exists() else "  [yellow](missing)[/]"
        console.print(f"[bold]{label}[/]: {path}{state}")
    c = night_corrections(settings, last)
    if c is not None:
        held = "—" if c.get("held_share") is None else f"{float(c['held_share']):.1%}"
        console.print(f"[bold]address corrections[/]: {c.get('cases_corrected', 0)} R6 case(s) closed by an officer's "
                      f"house code, {c.get('came_back', 0)} came back, held {held}")


def night_corrections(settings: Settings, night: dt.date) -> dict[str, Any] | None:
    """The supervisors' ``corrections`` figure of ``night`` from its latest run manifest (None when not recorded)."""
    from gridlake.lifecycle.lake import read_manifests

    found = None
    for doc in read_manifests(settings):  # oldest first; the night's last run wins
        if str(doc.get("run_date")) != night.isoformat():
            continue
        c = ((doc.get("stages") or {}).get("exports") or {}).get("supervisors", {}).get("corrections")
        if isinstance(c, dict):
            found = c
    return found


def main(argv: list[str] | None = None) -> int:
    """Child-process entry of the demo's Airflow nights (:mod:`tools.demo_airflow`)."""
    return airflow_main(argv)


if __name__ == "__main__":
    sys.exit(main())
