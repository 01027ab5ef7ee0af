"""The stage server (issue 22): Airflow's stage tasks share one warm Spark application.

A real server process (``gridlake stage-server start``) on a tiny generated district; the requests go through
:func:`gridlake.airflow_runtime.run_spark_job`, the body of every Spark task of the DAGs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from gridlake.airflow_runtime import run_spark_job
from gridlake.config import load_settings
from gridlake.stage_client import FOLDER, SOCKET, run_stages, status, usable
from tools.demo import start_stage_server, stop_stage_server

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

NIGHT = dt.date(2026, 11, 1)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_stage_tasks_share_one_spark_application_and_fail_like_spark_submit(tmp_path):
    root = tmp_path / "data"
    out = subprocess.run([sys.executable, "-m", "gridlake.cli", "generate", "--scale", "tiny", "--days", "1",
                          "--start", NIGHT.isoformat(), "--data", str(root)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    settings = load_settings("local", data_root=root)
    assert run_stages(settings, NIGHT, ["bronze"], "t__x") is None  # no server: the task spark-submits

    logger, lines = logging.getLogger("test.stage_server"), _Lines()
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    proc = start_stage_server(settings, {})
    try:
        info = status(settings)
        assert info and info["app_id"] and info["pid"] == proc.pid
        sock = root / FOLDER / SOCKET
        assert sock.stat().st_mode & 0o077 == 0 and (root / FOLDER).stat().st_mode & 0o077 == 0

        run_id = f"scheduled__{NIGHT.isoformat()}"
        assert run_spark_job(NIGHT, ["bronze"], run_id, sources=["housing"], settings=settings, logger=logger) == run_id
        assert run_spark_job(NIGHT, ["silver"], run_id, sources=["housing"], settings=settings, logger=logger) == run_id
        served = [ln for ln in lines.lines if "in the stage server (Spark application" in ln]
        assert len(served) == 2 and all(info["app_id"] in ln for ln in served)  # one application, two tasks
        assert any("bronze done" in ln for ln in lines.lines) and any("silver done" in ln for ln in lines.lines)
        manifest = json.loads((Path(settings.runs_dir) / f"{run_id}.json").read_text(encoding="utf-8"))
        assert manifest["stages"]["bronze"]["status"] == manifest["stages"]["silver"]["status"] == "success"
        assert (Path(settings.lake) / "silver" / "housing" / "_delta_log").is_dir()

        # a failing request fails the task with the stage's one-line error; the server keeps serving
        with pytest.raises(RuntimeError, match="stage server: .*unknown stage"):
            run_spark_job(NIGHT, ["nosuch"], run_id, settings=settings, logger=logger)
        assert status(settings)["app_id"] == info["app_id"]
        # a task of another profile (or code version) does not use it
        assert usable(load_settings("cluster", data_root=root)) is None
    finally:
        stop_stage_server(settings, proc)
    assert proc.returncode == 0
    assert status(settings) is None and not (root / FOLDER / SOCKET).exists()
