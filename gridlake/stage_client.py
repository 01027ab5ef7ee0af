"""The client side of the stage server (:mod:`gridlake.stage_server`): what an Airflow task asks.

:func:`run_stages` sends a task's stages to the server serving its data root, profile and code
version, streams the stage's log lines into the task log and raises the stage's one-line error;
it returns None when no such server answers, and the task spark-submits. Kept apart from the
server so that the task runtime (:mod:`gridlake.airflow_runtime`) never imports the pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from gridlake.config import Settings

log = logging.getLogger(__name__)

FOLDER = ".stage-server"
SOCKET = "server.sock"
KEY = "server.key"
PROTOCOL = 1


def folder(settings: Settings) -> Path:
    """The server's private folder under the data root."""
    return settings.data / FOLDER


def identity(settings: Settings) -> dict[str, Any]:
    """What a task and the server must share: protocol, data root, profile, code version."""
    from gridlake.manifest import code_version

    return {"protocol": PROTOCOL, "data": str(settings.data.resolve()), "profile": settings.profile,
            "code_version": code_version()}


# --- the client ----------------------------------------------------------------------------------
@contextlib.contextmanager
def connect(settings: Settings, timeout: float = 5.0) -> Iterator[Connection | None]:
    base = folder(settings)
    sock, keyfile = base / SOCKET, base / KEY
    if not sock.exists() or not keyfile.exists():
        yield None
        return
    conn = None
    deadline = time.monotonic() + timeout
    while conn is None:
        try:
            conn = Client(str(sock), family="AF_UNIX", authkey=keyfile.read_bytes())
        except (ConnectionRefusedError, FileNotFoundError, EOFError, OSError):
            if time.monotonic() > deadline:
                yield None
                return
            time.sleep(0.2)
    try:
        yield conn
    finally:
        conn.close()


def status(settings: Settings) -> dict[str, Any] | None:
    """The server's identity and Spark application id, or None when none answers for this data root."""
    with connect(settings) as conn:
        if conn is None:
            return None
        try:
            conn.send({"op": "ping"})
            return conn.recv()
        except (EOFError, OSError):
            return None


def usable(settings: Settings, logger: logging.Logger | None = None) -> dict[str, Any] | None:
    """The server's status when it serves this data root, profile and code version; else None (and why)."""
    info = status(settings)
    if info is None:
        return None
    want = identity(settings)
    differs = [k for k in want if info.get(k) != want[k]]
    if differs:
        (logger or log).warning("stage server at %s ignored: its %s differ(s) from this task's; spark-submit",
                                folder(settings), ", ".join(differs))
        return None
    return info


def run_stages(settings: Settings, night: Any, stages: Iterable[str], run_id: str,
               sources: Iterable[str] | None = None, logger: logging.Logger | None = None) -> str | None:
    """Run ``stages`` of ``night`` in the stage server; None when no usable server is up.

    Returns the server's Spark application id. Raises RuntimeError with the stage's one-line error when
    the stages failed, or when the server went away in the middle of the request.
    """
    logger = logger or log
    info = usable(settings, logger)
    if info is None:
        return None
    request = {"op": "run", "night": night.isoformat(), "stages": list(stages), "run_id": run_id,
               "sources": list(sources) if sources else None}
    with connect(settings) as conn:
        if conn is None:
            return None
        logger.info("stages %s of %s in the stage server (Spark application %s, pid %s)",
                    ",".join(request["stages"]), request["night"], info["app_id"], info["pid"])
        conn.send(request)
        while True:
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError) as exc:
                raise RuntimeError(f"the stage server went away during {','.join(request['stages'])} "
                                   f"({type(exc).__name__}); a retry runs the stages with spark-submit") from None
            if kind == "log":
                logger.info("%s", payload)
            elif kind == "done":
                if payload["rc"] != 0:
                    raise RuntimeError(f"stage server: {payload['error']}")
                return str(info["app_id"])


def stop(settings: Settings) -> bool:
    """Ask the server to stop; True when one answered."""
    with connect(settings) as conn:
        if conn is None:
            return False
        try:
            conn.send({"op": "stop"})
            conn.recv()
        except (EOFError, OSError):
            pass
        return True
