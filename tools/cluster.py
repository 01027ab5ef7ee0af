"""A Spark standalone cluster (master + worker as separate processes) from the installed pyspark.

Used by the cluster test and by anyone who wants to try the ``cluster`` profile on one
machine. A real deployment points ``GRIDLAKE_SPARK__MASTER`` at its own master instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from gridlake.errors import GridlakeError
from gridlake.spark import find_java_home

log = logging.getLogger(__name__)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise GridlakeError(f"Spark master did not open port {port} within {timeout:.0f}s")


@contextlib.contextmanager
def standalone_cluster(work_dir: Path, cores: int = 2, memory: str = "3g", timeout: float = 90) -> Iterator[str]:
    """Start a master and one worker on 127.0.0.1; yield the master URL; stop both on exit."""
    env = dict(os.environ, JAVA_HOME=find_java_home(), SPARK_HOME=str(spark_home()),
               SPARK_LOCAL_IP="127.0.0.1", SPARK_WORKER_DIR=str(work_dir / "worker"))
    spark_class = str(spark_home() / "bin" / "spark-class")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    work_dir.mkdir(parents=True, exist_ok=True)
    logs = [open(work_dir / "master.log", "w"), open(work_dir / "worker.log", "w")]  # noqa: SIM115
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(free_port())], env=env, stdout=logs[0], stderr=subprocess.STDOUT))
        _wait_port(port, timeout)
        procs.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", str(cores),
             "--memory", memory, "--webui-port", str(free_port()), "--work-dir", str(work_dir / "worker"), url],
            env=env, stdout=logs[1], stderr=subprocess.STDOUT))
        _wait_worker(work_dir / "master.log", timeout)
        log.info("standalone cluster at %s", url)
        yield url
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for fh in logs:
            fh.close()


def _wait_worker(master_log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Registering worker" in master_log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise GridlakeError(f"no worker registered with the master within {timeout:.0f}s (see {master_log})")
