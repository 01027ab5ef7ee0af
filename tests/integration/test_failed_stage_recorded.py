"""A stage that fails in a way that also breaks the flush of its quality results (a stopped Spark context does
both) is still recorded as failed in the night's manifest, and its own error is the one raised."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from gridlake import pipeline

pytestmark = pytest.mark.spark

D = dt.date(2024, 5, 1)


class StageBroke(RuntimeError):
    pass


def broken_stage(ctx: pipeline.RunContext) -> dict:
    ctx.extras["quality_results_buffer"] = [{"pending": True}]  # something to flush
    raise StageBroke("the stage broke")


def test_a_stage_whose_quality_flush_also_fails_is_recorded_as_failed(spark, settings, monkeypatch):
    monkeypatch.setitem(pipeline.STAGES, "broken_probe", f"{__name__}:broken_stage")

    def flush(ctx):
        raise RuntimeError("Cannot call methods on a stopped SparkContext")

    monkeypatch.setattr(pipeline, "_flush_quality", flush)
    with pytest.raises(StageBroke):
        pipeline.run_night(settings, D, ["broken_probe"], run_id="test__broken", spark=spark)
    doc = json.loads((Path(settings.runs_dir) / "test__broken.json").read_text(encoding="utf-8"))
    assert doc["status"] == "failed"
    assert doc["stages"]["broken_probe"]["status"] == "failed"
    assert [f["stage"] for f in doc["failures"]] == ["broken_probe"]
