"""``gridlake demo``: generate the sample district, then run every night through real Airflow.

Per night: every per-source ``gridlake_ingest_<source>`` DAG (each ingests its delivery, or declares
it absent, and emits ``bronze.<source>`` with the night as partition key), then ``gridlake_nightly``
once the metadata database holds that partition for every source (what its
``PartitionedAssetTimetable`` waits for) — each with ``dag.test()`` against the embedded SQLite
metadata database (``airflow db migrate`` once), each Spark stage as a ``spark-submit``. Between
nights the simulated grid officers verify the previous night's follow-ups (when the
generator provides ``tools.generate.officers.simulate_verifications``).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridlake.config import Settings, load_settings
from gridlake.errors import GridlakeError

log = logging.getLogger(__name__)

MARKER = "GRIDLAKE-DEMO:"
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


NIGHTLY = "gridlake_nightly"


def ingest_dag_ids() -> list[str]:
    """Every source's ingestion DAG, in conf/sources.yaml order."""
    from gridlake.sources import load_sources

    return [f"gridlake_ingest_{name}" for name in load_sources()]


def missing_night_assets(night: dt.date, dag: Any) -> list[str]:
    """The Assets of ``dag``'s partitioned schedule without an event for ``night`` (empty: it would start)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    names = sorted(a.name for a in dag.timetable.asset_condition.objects)
    with create_session() as session:
        have = set(session.scalars(select(AssetModel.name).join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
                                   .where(AssetModel.name.in_(names),
                                          AssetEvent.partition_key == night.isoformat())))
    return [n for n in names if n not in have]


# --- one night through Airflow (runs in a child process with the Airflow environment) ----------
def airflow_night(night: dt.date, dag_ids: list[str]) -> int:
    """``dag.test()`` each DAG for ``night``; print a progress marker per DAG; 1 on the first failure.

    ``gridlake_nightly`` after ingestion DAGs starts only when every ``bronze.<source>`` has an event
    with the night's partition key (its Asset schedule's condition; ``dag.test`` has no scheduler).
    """
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    from tools.airflow_local import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        print(f"{MARKER} import-errors {sorted(bag.import_errors)}", flush=True)  # noqa: T201
        return 1
    logical = pendulum.datetime(night.year, night.month, night.day, tz="Asia/Shanghai")
    for dag_id in dag_ids:
        if dag_id == NIGHTLY and any(d.startswith("gridlake_ingest_") for d in dag_ids):
            missing = missing_night_assets(night, bag.dags[dag_id])
            print(f"{MARKER} assets {night.isoformat()} {'ready' if not missing else 'missing'} "  # noqa: T201
                  f"{','.join(missing)}", flush=True)
            if missing:
                return 1
        print(f"{MARKER} start {dag_id}", flush=True)  # noqa: T201
        started = time.monotonic()
        dag = bag.dags[dag_id]
        if dag.deadline:
            # Airflow 3.3.2's dag.test() fails on a DAG with deadline= (DagRun.update_state looks the
            # alerts up by the serialized dict instead of their id), and it has no triggerer to run
            # them anyway: the demo runs without the ingestion DAGs' lateness deadline.
            dag.deadline = None
        dag_run = dag.test(logical_date=logical)
        state = str(getattr(dag_run, "state", "unknown"))
        print(f"{MARKER} end {dag_id} {state} {time.monotonic() - started:.1f}", flush=True)  # noqa: T201
        if state != "success":
            return 1
    return 0


def run_night_in_airflow(settings: Settings, env: dict[str, str], night: dt.date, dag_ids: list[str],
                         log_file: Path, on_event: Callable[[str, str, str, float], None]) -> dict[str, float]:
    """Run ``dag_ids`` for ``night`` in one Airflow process; stream its log to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "tools.demo", "--airflow-night", night.isoformat(), "--dags", ",".join(dag_ids)]
    seconds: dict[str, float] = {}
    failed = None
    with open(log_file, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, errors="replace", cwd=str(Path(__file__).resolve().parent.parent))
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if MARKER in line:
                parts = line.split(MARKER, 1)[1].split()
                if parts[0] == "start":
                    on_event(parts[1], "start", "", 0.0)
                elif parts[0] == "end":
                    seconds[parts[1]] = float(parts[3])
                    on_event(parts[1], "end", parts[2], float(parts[3]))
                    if parts[2] != "success":
                        failed = parts[1]
                elif parts[0] == "assets":
                    if parts[2] != "ready":
                        failed = f"{NIGHTLY} not started: no event for the night on {' '.join(parts[3:])}"
                else:
                    failed = " ".join(parts)
        rc = proc.wait()
    if rc != 0 or failed:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
        raise GridlakeError(f"night {night}: {failed or 'airflow'} failed (exit {rc}); log {log_file}\n"
                            + "\n".join(tail))
    return seconds


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
                                cwd=str(Path(__file__).resolve().parent.parent))


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


def stop_stage_server(settings: Settings, proc: subprocess.Popen) -> None:
    """Ask the server to stop; kill it if it does not within a minute."""
    from gridlake.stage_client import stop

    if proc.poll() is None and not stop(settings):
        # not answering yet (still starting): nothing would tell it to stop
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


#: deliveries of at most this many MB in all (a community district's two nights: 2.1 MB) run with spark.codegen off
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
    if "GRIDLAKE_SPARK__CODEGEN" not in os.environ and landing_mb(settings.landing) <= SMALL_LANDING_MB:
        # a few thousand rows a night: interpreted queries beat compiled ones (spark.codegen, docs/speed.md);
        # set here, so Airflow, the stage server and every task inherit it
        os.environ["GRIDLAKE_SPARK__CODEGEN"] = "false"
        settings = load_settings(args.profile, args.data)
        console.print("a small district: Spark interprets its queries instead of compiling them (spark.codegen)")
    seed = int(getattr(args, "seed", 20141) or 20141)
    use_airflow = not args.no_airflow
    timings: list[tuple[str, str, float]] = []

    env: dict[str, str] = {}
    server = None
    if use_airflow:
        from tools.airflow_local import airflow_environment, prepare_airflow

        env = airflow_environment(settings)
        env["GRIDLAKE_AIRFLOW_RETRY_DELAY"] = os.environ.get("GRIDLAKE_AIRFLOW_RETRY_DELAY", "20")
        # the stage server's JVM starts while Airflow migrates its metadata DB (7 s and 6 s here, one after
        # the other before)
        launched = None if getattr(args, "no_stage_server", False) else launch_stage_server(settings, env)
        console.print(f"Airflow metadata DB: {settings.airflow_home / 'airflow.db'} (airflow db migrate)")
        try:
            env = prepare_airflow(settings, env)
        except BaseException:
            if launched is not None:
                stop_stage_server(settings, launched)
            raise
        if launched is not None:
            server = wait_for_stage_server(settings, launched)
            console.print("stage server up: the Airflow tasks share one Spark application (gridlake stage-server)")
    with contextlib.ExitStack() as cleanup, \
            Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        if server is not None:
            cleanup.callback(stop_stage_server, settings, server)
        for i, night in enumerate(nights):
            if i > 0 and simulate_verifications(settings, nights[i - 1], seed):
                console.print(f"officers verified the follow-ups of {nights[i - 1]}")
            started = time.monotonic()
            if use_airflow:
                # every source's ingestion DAG (a source without delivery declares itself absent),
                # then the nightly DAG from their bronze.* partitions of the night
                dag_ids = [*ingest_dag_ids(), NIGHTLY]
                tasks: dict[str, Any] = {}

                def on_event(dag_id: str, what: str, state: str, secs: float, night: dt.date = night,
                             tasks: dict[str, Any] = tasks) -> None:
                    if what == "start":
                        tasks[dag_id] = bar.add_task(f"{night} {dag_id}", total=1)
                    else:
                        mark = "✓" if state == "success" else f"✗ {state}"
                        bar.update(tasks[dag_id], completed=1, description=f"{night} {dag_id} {mark} ({secs:.0f}s)")

                log_file = settings.airflow_home / "demo-logs" / f"{night.isoformat()}.log"
                for dag_id, secs in run_night_in_airflow(settings, env, night, dag_ids, log_file, on_event).items():
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
    """Child-process entry: ``python -m tools.demo --airflow-night D --dags a,b``."""
    p = argparse.ArgumentParser(prog="tools.demo")
    p.add_argument("--airflow-night", required=True)
    p.add_argument("--dags", required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return airflow_night(dt.date.fromisoformat(a.airflow_night), [d for d in a.dags.split(",") if d])


if __name__ == "__main__":
    sys.exit(main())
