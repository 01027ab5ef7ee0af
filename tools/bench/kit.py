"""What every benchmark uses: run a command as its own process tree and measure it.

Shared by ``tools.bench.pipeline`` (pipeline), ``tools.bench.nights`` and ``tools.bench.matching``, which
otherwise import nothing from each other.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Measured:
    seconds: float
    peak_python_rss_mb: float
    peak_jvm_rss_mb: float
    returncode: int
    stderr_log: str | None = None   # a failed command's whole stderr (the log shows only its end)


def measure(cmd: list[str], env: dict[str, str] | None = None, interval: float = 0.5) -> Measured:
    """Run ``cmd``; sample RSS of its Python processes and JVMs until it exits."""
    import psutil

    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks = {"py": 0.0, "jvm": 0.0}
    stop = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            py = jvm = 0.0
            try:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        rss = p.memory_info().rss / 2**20
                        if "java" in p.name():
                            jvm += rss
                        else:
                            py += rss
                    except psutil.Error:
                        continue
            except psutil.Error:
                break
            peaks["py"], peaks["jvm"] = max(peaks["py"], py), max(peaks["jvm"], jvm)
            stop.wait(interval)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    stop.set()
    t.join()
    kept = None
    if proc.returncode != 0:
        kept = keep_stderr(err or "")
        log.error("command failed (%s): %s", proc.returncode, (err or "")[-2000:])
        log.error("its whole stderr: %s", kept)
    return Measured(round(time.monotonic() - started, 2), round(peaks["py"], 1), round(peaks["jvm"], 1),
                    proc.returncode, kept)


def keep_stderr(text: str) -> str:
    """Write a failed command's whole stderr to a new file readable by this user only; return its path. The cause
    of a failure is often far from the end (a Spark context stopped minutes before the error that ends the run)."""
    import tempfile

    fd, path = tempfile.mkstemp(prefix="gridlake-bench-", suffix=".stderr.log")   # mode 0600
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def gridlake_cmd(*args: str) -> list[str]:
    """``python -m gridlake.cli <args>`` with this interpreter."""
    return [sys.executable, "-m", "gridlake.cli", *args]


def run_info() -> dict[str, Any]:
    """The commit (and whether the tree had uncommitted changes) and the machine a bench ran on."""
    import platform
    import subprocess

    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    try:
        import psutil

        mem_gib: float | None = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        mem_gib = None
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None,
            "machine": {"cpus": os.cpu_count(), "memory_gib": mem_gib, "platform": platform.platform(),
                        "python": platform.python_version()}}
