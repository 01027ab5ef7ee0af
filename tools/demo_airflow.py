"""The demo's Airflow side: one child process runs every night's DAGs with ``dag.test()``.

The child (``python -m tools.demo --airflow-nights --dags a,b``) parses the DAG folder once, builds
Airflow's in-process task API while the stage server starts, then reads night dates on its stdin and
runs each night's DAGs in order, printing a marker line per DAG and one when the night is over. One
child for all nights instead of one per night: the second night no longer pays a Python start,
the DAG folder's parse and the task API's start-up again (8.7 s before, 0.5 s after, on a community
district: docs/speed.md).
``python -m tools.demo --airflow-night D --dags a,b`` runs one night and exits (the tests use it).

:class:`AirflowNights` is the parent's side: it starts the child, hands it a night, streams its
output into that night's log file and reports each DAG's start and end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridlake.errors import GridlakeError

log = logging.getLogger(__name__)

MARKER = "GRIDLAKE-DEMO:"
NIGHTLY = "gridlake_nightly"
REPO = Path(__file__).resolve().parent.parent


# --- the child -------------------------------------------------------------------------------------
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


def _say(*words: Any) -> None:
    print(MARKER, *words, flush=True)  # noqa: T201 - the parent reads these lines


def load_bag() -> Any:
    """The DAG folder, parsed once; None (after a marker line) when a file does not import."""
    from airflow.dag_processing.dagbag import DagBag

    from tools.airflow_local import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        _say("import-errors", sorted(bag.import_errors))
        return None
    return bag


def warm_task_api(dag_id: str) -> int | None:
    """Build the in-process task API ``dag.test()`` starts on its first task, and answer one request.

    Building the app is 4-5 s of imports and set-up; its first request cost the night's first task
    3-4 s more (FastAPI and pydantic finish the routes' dependencies and models when first called). The
    child pays both while the stage server's JVM starts: the request is a read, how many task instances
    ``dag_id`` has (returned; None when the API could not be built or did not answer).
    """
    started = time.monotonic()
    try:
        from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor, in_process_api_server

        in_process_api_server().app  # noqa: B018 - a cached property: built once, reused by dag.test()
        client = InProcessTestSupervisor._api_client(None)  # noqa: SLF001 - the client dag.test() itself uses
        count = int(client.task_instances.get_count(dag_id=dag_id).count)
    except Exception as exc:  # noqa: BLE001 - only an earlier start: dag.test() does all this otherwise
        log.info("task API not warmed ahead (%s)", type(exc).__name__)
        return None
    log.info("task API built and warmed in %.1f s (%s: %d task instance(s) so far)",
             time.monotonic() - started, dag_id, count)
    return count


def airflow_night(night: dt.date, dag_ids: list[str], bag: Any = None) -> int:
    """``dag.test()`` each DAG for ``night``; print a progress marker per DAG; 1 on the first failure.

    ``gridlake_nightly`` after ingestion DAGs starts only when every ``bronze.<source>`` has an event
    with the night's partition key (its Asset schedule's condition; ``dag.test`` has no scheduler).
    """
    import pendulum

    bag = bag or load_bag()
    if bag is None:
        return 1
    logical = pendulum.datetime(night.year, night.month, night.day, tz="Asia/Shanghai")
    for dag_id in dag_ids:
        if dag_id == NIGHTLY and any(d.startswith("gridlake_ingest_") for d in dag_ids):
            missing = missing_night_assets(night, bag.dags[dag_id])
            _say("assets", night.isoformat(), "ready" if not missing else "missing", ",".join(missing))
            if missing:
                return 1
        _say("start", dag_id)
        started = time.monotonic()
        dag = bag.dags[dag_id]
        if dag.deadline:
            # Airflow 3.3.2's dag.test() fails on a DAG with deadline= (DagRun.update_state looks the
            # alerts up by the serialized dict instead of their id), and it has no triggerer to run
            # them anyway: the demo runs without the ingestion DAGs' lateness deadline.
            dag.deadline = None
        dag_run = dag.test(logical_date=logical)
        state = str(getattr(dag_run, "state", "unknown"))
        _say("end", dag_id, state, f"{time.monotonic() - started:.1f}")
        if state != "success":
            return 1
    return 0


def serve_nights(dag_ids: list[str], pool_slots: int | None = None) -> int:
    """Parse once, then run the nights named on stdin (one ISO date a line) until EOF or a failure.

    With ``pool_slots``, first migrate the metadata database and set the Spark pool
    (:func:`tools.airflow_local.migrate_metadata`)."""
    if pool_slots is not None:
        from tools.airflow_local import migrate_metadata

        started = time.monotonic()
        migrate_metadata(pool_slots)
        log.info("metadata database migrated, Spark pool set (%d slot(s)) in %.1f s", pool_slots,
                 time.monotonic() - started)
    bag = load_bag()
    if bag is None:
        return 1
    warm_task_api(dag_ids[0])
    _say("ready")
    for line in sys.stdin:
        night = dt.date.fromisoformat(line.strip())
        rc = airflow_night(night, dag_ids, bag)
        _say("night-done", night.isoformat(), rc)
        if rc:
            return rc
    return 0


def main(argv: list[str] | None = None) -> int:
    """Child-process entry: ``--airflow-night D --dags a,b`` (one night) or ``--airflow-nights --dags a,b``."""
    p = argparse.ArgumentParser(prog="tools.demo")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--airflow-night")
    which.add_argument("--airflow-nights", action="store_true", help="read the nights on stdin")
    p.add_argument("--dags", required=True)
    p.add_argument("--migrate", type=int, metavar="POOL_SLOTS",
                   help="with --airflow-nights: migrate the metadata database and set the Spark pool first")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dags = [d for d in a.dags.split(",") if d]
    if a.airflow_nights:
        return serve_nights(dags, a.migrate)
    return airflow_night(dt.date.fromisoformat(a.airflow_night), dags)


# --- the parent ------------------------------------------------------------------------------------
class AirflowNights:
    """The child that runs the demo's nights, started once; :meth:`run` one night, :meth:`close` at the end."""

    def __init__(self, env: dict[str, str], dag_ids: list[str], log_dir: Path, migrate: int | None = None) -> None:
        """``migrate``: the Spark pool's slots, when the child is to migrate the metadata database first."""
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        extra = [] if migrate is None else ["--migrate", str(migrate)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.demo", "--airflow-nights", "--dags", ",".join(dag_ids), *extra], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            errors="replace", cwd=str(REPO))
        # every line, also those written before the first night (the DAG folder's parse: in its log)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, name="airflow-child-output", daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # read all the time, so a full pipe never stalls the child
            self.lines.put(line)
        self.lines.put(None)

    def run(self, night: dt.date, on_event: Callable[[str, str, str, float], None]) -> dict[str, float]:
        """Run the DAGs for ``night``; its log is ``<log_dir>/<night>.log``; DAG id -> seconds. Raises on failure."""
        log_file = self.log_dir / f"{night.isoformat()}.log"
        seconds: dict[str, float] = {}
        failed: str | None = None
        done = False
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(night.isoformat() + "\n")
            self.proc.stdin.flush()
        except OSError:
            failed = "the Airflow process"
        with open(log_file, "w", encoding="utf-8") as out:
            while not done and failed is None:
                line = self.lines.get()
                if line is None:
                    failed = "the Airflow process"
                    break
                out.write(line)
                if MARKER not in line:
                    continue
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
                elif parts[0] == "night-done":
                    done = parts[2] == "0"
                    if not done:
                        failed = failed or "the night"
                elif parts[0] != "ready":
                    failed = " ".join(parts)
            out.flush()
        if failed:
            self.close()
            tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
            raise GridlakeError(f"night {night}: {failed} failed (exit {self.proc.returncode}); log {log_file}\n"
                                + "\n".join(tail))
        return seconds

    def close(self, timeout: float = 120.0) -> int:
        """End the child (no more nights) and return its exit code; killed after ``timeout`` seconds."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
