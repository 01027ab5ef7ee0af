"""gridlake.faults: GRIDLAKE_FAULT parsing, points and windows, checked in small Python subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gridlake.faults import EXIT_CODE, Fault, parse_spec

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, fault: str | None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRIDLAKE_FAULT"}
    if fault is not None:
        env["GRIDLAKE_FAULT"] = fault
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


POINTS = """
    from gridlake.faults import fault_point
    for i in range(1, 4):
        fault_point("stage.a")
        print("a", i, flush=True)
        fault_point("stage.b")
        print("b", i, flush=True)
    print("survived", flush=True)
"""


def test_parse_spec_forms():
    assert parse_spec("x") == (Fault("x"),)
    assert parse_spec("x@3") == (Fault("x", 3),)
    assert parse_spec("x~0.5") == (Fault("x", 1, 0.5),)
    assert parse_spec(" x~2@4 , y ") == (Fault("x", 4, 2.0), Fault("y"))
    assert parse_spec("x~file@2") == (Fault("x", 2, None, True),)
    assert parse_spec("") == ()
    assert parse_spec("x~file")[0].is_window and parse_spec("x~file@3")[0].label == "x~file@3"
    assert parse_spec("x~0.5")[0].is_window and not parse_spec("x@2")[0].is_window


@pytest.mark.parametrize("bad", ["x@0", "x@two", "x~soon", "@2", "x~-1", "~1", "x~nan", "x~files"])
def test_parse_spec_rejects_malformed(bad):
    with pytest.raises(ValueError):
        parse_spec(bad)


def test_unset_changes_nothing():
    out = _run(POINTS, None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "survived"
    assert "gridlake-fault" not in out.stderr


def test_other_names_do_not_fire():
    for spec in ("stage.c", "stage", "stage.a.x", "stage.a~0.1"):  # a window spec never fires a point
        out = _run(POINTS, spec)
        assert out.returncode == 0, (spec, out.stderr)
        assert out.stdout.splitlines()[-1] == "survived"


def test_point_kills_with_137_at_first_arrival():
    out = _run(POINTS, "stage.b")
    assert out.returncode == EXIT_CODE
    assert out.stdout.split() == ["a", "1"]
    assert "gridlake-fault: point stage.b@1" in out.stderr


def test_point_kills_at_nth_arrival():
    out = _run(POINTS, "stage.a@3")
    assert out.returncode == EXIT_CODE
    assert out.stdout.splitlines() == ["a 1", "b 1", "a 2", "b 2"]


def test_kill_skips_finally_blocks():
    out = _run("""
        from gridlake.faults import fault_point
        try:
            fault_point("p")
        finally:
            print("cleanup ran", flush=True)
    """, "p")
    assert out.returncode == EXIT_CODE
    assert "cleanup ran" not in out.stdout


WINDOW = """
    import time
    from gridlake.faults import fault_point, fault_window
    for i in range(1, 3):
        with fault_window("w"):
            print("enter", i, flush=True)
            time.sleep({sleep})
            print("leave", i, flush=True)
        fault_point("w")
    print("survived", flush=True)
"""


def test_window_kills_inside_a_long_block():
    started = time.monotonic()
    out = _run(WINDOW.format(sleep=30), "w~0.2")
    assert out.returncode == EXIT_CODE
    assert time.monotonic() - started < 25, "the timer killed the process, not the end of the block"
    assert out.stdout.split() == ["enter", "1"]
    assert "window w~0.2@1 fired inside the block" in out.stderr


def test_window_kills_after_a_block_shorter_than_the_delay():
    out = _run(WINDOW.format(sleep=0), "w~20@2")
    assert out.returncode == EXIT_CODE
    assert out.stdout.split() == ["enter", "1", "leave", "1", "enter", "2", "leave", "2"]
    assert "block ended first" in out.stderr


def test_window_spec_does_not_fire_points_and_point_spec_not_windows():
    out = _run(WINDOW.format(sleep=0), "w@3")  # the point is reached only twice
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "survived"
    out = _run(WINDOW.format(sleep=0), "w@2")
    assert out.returncode == EXIT_CODE
    assert out.stdout.split() == ["enter", "1", "leave", "1", "enter", "2", "leave", "2"]
    assert "point w@2" in out.stderr


FILE_WINDOW = """
    import os, sys, time
    from gridlake.faults import fault_window
    table = sys.argv[1]
    os.makedirs(os.path.join(table, "_delta_log"), exist_ok=True)
    open(os.path.join(table, "old.parquet"), "w").close()  # there before the write: not new
    with fault_window("t.write", table):
        time.sleep(0.3)
        open(os.path.join(table, "_delta_log", "00000000000000000000.checkpoint.parquet"), "w").close()
        print("log written", flush=True)
        time.sleep(0.3)
        if {data}:
            # Said before the file exists: the watcher may kill the process the moment it appears.
            print("writing a data file", flush=True)
            os.makedirs(os.path.join(table, "d=1"), exist_ok=True)
            open(os.path.join(table, "d=1", "part-0.parquet"), "w").close()
            time.sleep(30)
        print("leave", flush=True)
"""


def _run_file_window(tmp_path: Path, data: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRIDLAKE_FAULT"}
    env.update(GRIDLAKE_FAULT="t.write~file", PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    script = textwrap.dedent(FILE_WINDOW.format(data=data))
    return subprocess.run([sys.executable, "-c", script, str(tmp_path / "table")], env=env, capture_output=True,
                          text=True, timeout=60, cwd=REPO)


def test_file_window_fires_when_a_data_file_appears(tmp_path):
    started = time.monotonic()
    out = _run_file_window(tmp_path, data=True)
    assert out.returncode == EXIT_CODE
    assert time.monotonic() - started < 25
    assert out.stdout.split("\n")[:2] == ["log written", "writing a data file"]
    assert "leave" not in out.stdout
    assert "window t.write~file@1 fired inside the block: 1 uncommitted data file(s) written" in out.stderr


def test_file_window_ignores_the_log_and_old_files_then_kills_after_the_block(tmp_path):
    out = _run_file_window(tmp_path, data=False)
    assert out.returncode == EXIT_CODE
    assert out.stdout.split() == ["log", "written", "leave"]
    assert "block ended first" in out.stderr


FAST_WRITER = """
    import os, sys
    from gridlake.faults import before_commit, fault_window
    table, other = sys.argv[1], sys.argv[2]
    for folder in (table, other):
        os.makedirs(os.path.join(folder, "_delta_log"), exist_ok=True)
    with fault_window("t.write", table):
        before_commit(other)  # another table: not the one watched, nothing new there
        before_commit(table)  # nothing written yet
        print("nothing written", flush=True)
        open(os.path.join(table, "part-0.parquet"), "w").close()
        before_commit(table + os.sep)  # the same directory written another way
        open(os.path.join(table, "_delta_log", "00000000000000000001.json"), "w").close()
        print("committed", flush=True)
"""


def test_before_commit_kills_a_writer_faster_than_the_watcher_between_its_files_and_its_commit(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GRIDLAKE_FAULT"}
    env.update(GRIDLAKE_FAULT="t.write~file", PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    table = tmp_path / "table"
    for _ in range(5):  # the watcher looks every 5 ms; the writer must never reach its commit
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(FAST_WRITER), str(table), str(tmp_path / "other")],
                             env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
        assert out.returncode == EXIT_CODE
        assert out.stdout.split("\n")[0] == "nothing written" and "committed" not in out.stdout
        assert "fired inside the block: 1 uncommitted data file(s) written" in out.stderr
        assert not (table / "_delta_log" / "00000000000000000001.json").exists()
        (table / "part-0.parquet").unlink()


def test_before_commit_without_a_window_does_nothing(tmp_path):
    out = _run("""
        from gridlake.faults import before_commit
        before_commit("/nonexistent/table")
        print("ok", flush=True)
    """, fault="t.write~file")
    assert out.returncode == 0 and out.stdout.strip() == "ok"


def test_die_kills_the_spark_jvm_child():
    # A stand-in for pyspark's gateway: SparkContext._gateway.proc is the JVM process.
    out = _run("""
        import subprocess, sys, types
        child = subprocess.Popen(["sleep", "60"])
        mod = types.ModuleType("pyspark.core.context")
        class SparkContext:
            _gateway = types.SimpleNamespace(proc=child)
        mod.SparkContext = SparkContext
        sys.modules["pyspark.core.context"] = mod
        print(child.pid, flush=True)
        from gridlake.faults import fault_point
        fault_point("p")
    """, "p")
    assert out.returncode == EXIT_CODE
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except FileNotFoundError:
            break
        if state in ("Z", "X"):  # killed; a zombie until something reaps it
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        pytest.fail("the JVM stand-in survived the fault")
