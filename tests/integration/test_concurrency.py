"""A second run of a night while one is running: refused with a clear message, before Spark, changing nothing.

Real processes: the CLI (``.venv/bin/gridlake run``) started while this test holds the
night's lock, and the other way round, a child process holding the lock while this
process tries ``run_night``. "Changes nothing" is checked on every file under the data
root (path, size, mtime, SHA-256) and on the Delta versions of the tables in it; "before
Spark" by giving the child a ``JAVA_HOME`` whose ``java`` records each start (then runs the
real Java 17), so a JVM launch would be seen.

Reproduce: ``.venv/bin/python -m pytest -q tests/integration/test_concurrency.py``
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from gridlake.config import REPO_ROOT
from gridlake.errors import RunLockedError
from gridlake.manifest import night_lock
from gridlake.pipeline import run_night

DAY = "2026-11-01"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
JAVA_17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")


def _recording_java_home(tmp_path: Path) -> tuple[Path, Path]:
    """A JAVA_HOME whose bin/java appends to a marker file, then runs the real Java 17."""
    home, marker = tmp_path / "java-home", tmp_path / "jvm-started"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f'#!/bin/sh\necho "$$ $*" >> "{marker}"\nexec "{JAVA_17}/bin/java" "$@"\n', encoding="utf-8")
    java.chmod(0o700)
    return home, marker


def _child_env(java_home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(JAVA_HOME=str(java_home), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=str(VENV_BIN / "python"),
               COLUMNS="400", **extra)  # COLUMNS: rich does not wrap the one-line message
    return env


def _tree(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root``: (kind, size, mtime_ns, sha256)."""
    out: dict[str, tuple] = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        if p.is_dir():
            out[str(p.relative_to(root))] = ("dir", st.st_mtime_ns)
        else:
            out[str(p.relative_to(root))] = ("file", st.st_size, st.st_mtime_ns,
                                              hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def _lake_with_history(settings) -> dict[str, int]:
    """A night already in the data root: a landing file, two Delta tables with versions 0..1 (no JVM: delta-rs)."""
    folder = settings.landing / "verifications" / DAY
    folder.mkdir(parents=True)
    (folder / "part1.csv").write_text("核查编号,问题编号,核查时间,核查结果,网格员编号,备注\nV1,Q1,2026-11-01,属实,O1,\n",
                                      encoding="utf-8")
    tables = {"bronze/verifications": pa.table({"verification_id": ["V1"], "_row_number": [1]}),
              "bronze/_ingestion_log": pa.table({"file_sha256": ["0" * 64], "status": ["loaded"]})}
    for name, data in tables.items():
        write_deltalake(f"{settings.lake}/{name}", data, mode="append")
        write_deltalake(f"{settings.lake}/{name}", data, mode="append")
    return _delta_versions(settings)


def _delta_versions(settings) -> dict[str, int]:
    lake = Path(settings.lake)
    return {str(p.parent.relative_to(lake)): DeltaTable(str(p.parent)).version() for p in lake.rglob("_delta_log")}


def test_cli_second_run_is_refused_before_spark_and_changes_nothing(settings, tmp_path):
    versions = _lake_with_history(settings)
    assert versions == {"bronze/verifications": 1, "bronze/_ingestion_log": 1}
    java_home, marker = _recording_java_home(tmp_path)
    holder = "scheduled__2026-11-01T16:00:00+00:00"
    with night_lock(settings, dt.date.fromisoformat(DAY), holder) as lock:
        before = _tree(settings.data)
        started = time.monotonic()
        proc = subprocess.run([str(VENV_BIN / "gridlake"), "run", "--data", str(settings.data), "--date", DAY],
                              env=_child_env(java_home), capture_output=True, text=True, timeout=300)
        seconds = time.monotonic() - started
        after = _tree(settings.data)
        assert lock.exists()  # the holder's lock is untouched
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1, output
    assert f"night {DAY} is already running (run {holder}, pid {os.getpid()}" in output
    assert "refusing to start a second run (run manual__2026-11-01), nothing was changed" in output
    assert "Traceback" not in output  # a message, not a stack
    assert after == before  # no file or folder under the data root created, changed or removed
    assert _delta_versions(settings) == versions
    assert not marker.exists(), "the refused run started a JVM"
    assert seconds < 60, f"refusal took {seconds:.1f}s"
    print(f"refused in {seconds:.2f}s")  # noqa: T201 - shown with -s


_HOLD = """
import datetime, sys
from gridlake.config import load_settings
from gridlake.manifest import night_lock
settings = load_settings("local", data_root=sys.argv[1])
with night_lock(settings, datetime.date.fromisoformat(sys.argv[2]), "held-by-child"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_run_night_is_refused_while_a_child_holds_the_night_and_free_after_it_is_killed(settings, monkeypatch):
    import gridlake.spark

    _lake_with_history(settings)
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(settings.data), DAY], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=str(REPO_ROOT))
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"

        def no_spark(*_a, **_k):
            raise AssertionError("Spark must not start for a refused run")

        monkeypatch.setattr(gridlake.spark, "get_spark", no_spark)
        before = _tree(settings.data)
        with pytest.raises(RunLockedError, match=rf"night {DAY} is already running \(run held-by-child, "
                                                 rf"pid {child.pid}, started "):
            run_night(settings, dt.date.fromisoformat(DAY), ["bronze", "silver"])
        with pytest.raises(RunLockedError):  # another run id for the same night: the lock is per night
            run_night(settings, dt.date.fromisoformat(DAY), ["bronze"], run_id="scheduled__x")
        assert _tree(settings.data) == before
        # another night is not blocked
        with night_lock(settings, dt.date(2026, 11, 2), "other-night"):
            pass
    finally:
        child.kill()  # SIGKILL: no cleanup, the lock file stays behind
        child.wait(timeout=30)
    lock = settings.data / "locks" / f"{DAY}.lock"
    assert lock.exists()
    with night_lock(settings, dt.date.fromisoformat(DAY), "after-the-crash") as path:  # the kernel freed it
        assert '"run_id": "after-the-crash"' in path.read_text(encoding="utf-8")
    assert not lock.exists()


def test_a_lock_file_left_by_a_crash_does_not_block(settings):
    lock = settings.data / "locks" / f"{DAY}.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text('{"pid": 1, "run_id": "crashed-long-ago"}', encoding="utf-8")  # pid 1 is alive, but holds nothing
    with night_lock(settings, dt.date.fromisoformat(DAY), "next") as path:
        assert '"run_id": "next"' in path.read_text(encoding="utf-8")
