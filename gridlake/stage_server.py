"""One Spark application for the stage tasks of many nights: the local stage server.

Airflow shows one task per stage, and by default each task is a ``spark-submit`` of
:mod:`gridlake.submit`: a cold JVM per task (start-up, Delta's classes, the JIT warming up again),
which on a small night costs more than the stage's work. ``gridlake stage-server start`` keeps one
SparkSession for one data root and profile and runs the stage requests the tasks send it, one at a
time, with exactly the code a spark-submit would run (:func:`gridlake.pipeline.run_night`).

* The server listens on a Unix socket in ``<data>/.stage-server/`` (a private folder, mode 0700); a
  client proves itself with the key in that folder (mode 0600, new at every start), so only the
  service user reaches it.
* A task (:func:`gridlake.airflow_runtime.run_spark_job`) asks :func:`run_stages` first. With no
  server for its data root, profile and code version it gets ``None`` and spark-submits as before;
  so a stopped or stale server never blocks a night. A server that dies during a request fails
  that task (its retry spark-submits); the night is idempotent, so the rerun is safe.
* The stage's log lines come back to the task line by line, sanitised as a spark-submit's are;
  a failure ends with the same one-line error (``GRIDLAKE-ERROR`` text) and the task raises it.
* Between requests the session's cached frames are dropped; a stopped SparkContext makes the
  server exit, so the next task spark-submits.

``gridlake stage-server start`` runs in the foreground (a service manager or the demo starts it);
``stop`` and ``status`` talk to it. The demo starts one for its nights (``make demo``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import sys
from multiprocessing.connection import Connection, Listener
from typing import Any

from gridlake.config import Settings
from gridlake.stage_client import KEY, SOCKET, folder, identity, status, stop

log = logging.getLogger(__name__)


# --- the server ------------------------------------------------------------------------------------
class _Forward(logging.Handler):
    """Send each (sanitised) log line of a request to the waiting task."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(logging.INFO)
        self.conn = conn
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        from gridlake.sanitise import sanitise_text

        with contextlib.suppress(Exception):  # a task that stopped listening must not fail the stage
            self.conn.send(("log", sanitise_text(self.format(record), 20_000)))


def _handle_run(settings: Settings, spark: Any, conn: Connection, req: dict[str, Any]) -> None:
    from gridlake import pipeline
    from gridlake.sanitise import describe_exception, install_log_filter

    handler = _Forward(conn)
    root = logging.getLogger()
    root.addHandler(handler)
    install_log_filter()
    night = pipeline.parse_date(req["night"])
    result: dict[str, Any] = {"rc": 0, "error": None}
    try:
        extras = {"sources": req["sources"]} if req.get("sources") else {}

        def progress(stage: str, state: str) -> None:
            log.info("%s %s %s", night, stage, pipeline.PROGRESS_WORDS.get(state, state))

        manifest = pipeline.run_night(settings, night, req["stages"], req["run_id"], spark=spark,
                                      progress=progress, extras=extras)
        log.info("manifest %s (%s)", manifest.path, manifest.doc.get("status"))
    except Exception as exc:  # noqa: BLE001 - the one line the Airflow task shows, as from spark-submit
        from gridlake.config import ConfigError

        log.exception("stage failed")
        result = {"rc": 2 if isinstance(exc, ConfigError) else 1,
                  "error": " ".join(describe_exception(exc).split())[:1000]}
    finally:
        root.removeHandler(handler)
        with contextlib.suppress(Exception):
            spark.catalog.clearCache()
    with contextlib.suppress(EOFError, OSError):
        conn.send(("done", result))


def serve(settings: Settings) -> int:
    """Start the session, listen, answer requests one at a time until stopped."""
    from gridlake.permissions import private_dir
    from gridlake.sanitise import install_log_filter
    from gridlake.spark import get_spark

    install_log_filter()
    spark = get_spark(settings, app_name="gridlake-stage-server")
    base = private_dir(folder(settings))
    sock, keyfile = base / SOCKET, base / KEY
    if status(settings) is not None:
        log.error("a stage server already serves %s", settings.data)
        return 1
    sock.unlink(missing_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    listener = Listener(str(sock), family="AF_UNIX", authkey=key)
    os.chmod(sock, 0o600)
    me = {**identity(settings), "app_id": spark.sparkContext.applicationId, "pid": os.getpid()}
    log.info("stage server for %s (profile %s, Spark application %s) on %s", settings.data, settings.profile,
             me["app_id"], sock)
    try:
        while True:
            try:
                conn = listener.accept()
            except (OSError, EOFError) as exc:  # a client with the wrong key, or one that hung up
                log.warning("refused a connection (%s)", type(exc).__name__)
                continue
            with conn:
                try:
                    req = conn.recv()
                except (EOFError, OSError):
                    continue
                op = req.get("op") if isinstance(req, dict) else None
                if op == "ping":
                    conn.send(me)
                elif op == "stop":
                    conn.send({"stopping": True})
                    return 0
                elif op == "run":
                    _handle_run(settings, spark, conn, req)
                    if spark.sparkContext._jsc.sc().isStopped():  # noqa: SLF001 - py4j, the only way to ask
                        log.error("the Spark context stopped; the stage server exits (tasks spark-submit)")
                        return 1
                else:
                    conn.send({"error": "unknown request"})
    finally:
        listener.close()
        sock.unlink(missing_ok=True)
        keyfile.unlink(missing_ok=True)
        spark.stop()


def cmd_stage_server(args: argparse.Namespace) -> int:
    """``gridlake stage-server start|stop|status``."""
    from gridlake.config import load_settings

    settings = load_settings(args.profile, args.data)
    if args.action == "start":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            stream=sys.stdout, force=True)
        for noisy in ("py4j", "great_expectations", "urllib3", "matplotlib"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        from gridlake.permissions import apply_umask

        apply_umask()
        return serve(settings)
    if args.action == "stop":
        stopped = stop(settings)
        log.info("stage server %s", "stopped" if stopped else "not running")
        return 0
    info = status(settings)
    if info is None:
        log.info("no stage server for %s", settings.data)
        return 3
    log.info("stage server: application %s, pid %s, profile %s, code %s", info["app_id"], info["pid"],
             info["profile"], info["code_version"])
    return 0
