"""Item 3 of issue 17 with a real Spark ANSI cast error raised inside a stage of ``run_night``.

The stage casts a string column holding a (made-up, checksum-valid, test-only) ID number to INT:
Spark quotes the value in its error. The manifest, the log and the alert file must not.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from pathlib import Path

import pytest

from gridlake import pipeline
from gridlake.ids import check_digit

FIRST17 = "32010619850704" + "351"
FAKE_ID = FIRST17 + check_digit(FIRST17)
D = dt.date(2024, 5, 1)


def cast_stage(ctx: pipeline.RunContext) -> dict:
    """A stage that trips Spark's ANSI cast on a delivered value."""
    df = ctx.spark.createDataFrame([("1",), (FAKE_ID,)], "tenants string")
    df.selectExpr("CAST(tenants AS INT) AS tenants").collect()
    return {}


def test_spark_cast_error_leaves_no_value(spark, settings, monkeypatch, caplog):
    from pyspark.errors import PySparkException
    from pyspark.logger import PySparkLogger

    from gridlake.airflow_runtime import failure_record, write_alert_file

    monkeypatch.setitem(pipeline.STAGES, "cast_probe", f"{__name__}:cast_stage")
    caplog.set_level(logging.INFO)
    # PySpark's JSON logger writes to the stderr object that existed when it was first made (maybe
    # another test's capture), so listen on the logger itself, with its own formatter.
    spark_logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    stream = io.StringIO()
    listener = logging.StreamHandler(stream)
    listener.setFormatter(spark_logger.handlers[0].formatter if spark_logger.handlers else None)
    spark_logger.addHandler(listener)
    with pytest.raises(PySparkException) as info:
        pipeline.run_night(settings, D, ["cast_probe"], run_id="test__sanitise", spark=spark)
    assert FAKE_ID in str(info.value)  # Spark does quote it
    logging.getLogger("gridlake.stage").error("stage failed", exc_info=info.value)  # what gridlake/submit.py logs
    alert = write_alert_file({**failure_record({"exception": info.value}), "run_id": "test__sanitise"}, settings)

    spark_logger.removeHandler(listener)
    python_lines = [ln for ln in stream.getvalue().splitlines() if "CAST_INVALID_INPUT" in ln]
    assert python_lines and all(FAKE_ID not in ln for ln in python_lines)
    manifest = (Path(settings.runs_dir) / "test__sanitise.json").read_text(encoding="utf-8")
    for text in (manifest, caplog.text, alert.read_text(encoding="utf-8")):
        assert FAKE_ID not in text and FAKE_ID[:12] not in text and FAKE_ID[-6:] not in text
        assert "CAST_INVALID_INPUT" in text  # the error class stays: the officer on call knows what happened
