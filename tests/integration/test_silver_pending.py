"""Which bronze files silver takes up: read from the ingestion and conservation logs in the driver."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from gridlake import io
from jobs.silver.runner import CONSERVATION_TABLE, ingestion_log_rows, pending_files, rejected_files
from schemas.silver import CONSERVATION, INGESTION_LOG

pytestmark = pytest.mark.spark

NIGHT = dt.date(2026, 11, 2)
AT = dt.datetime(2026, 11, 2, 1, 0)


def _log(sha, source, path, day, status, rows=3):
    return (sha, source, path, day, status, None, rows, None, "r", AT, "csv", 1, None, None)


def _spark_reference(spark, settings, run_date):
    """The query silver ran before (two Spark reads), for comparison."""
    loaded = io.read_table(spark, settings, "bronze", "_ingestion_log").where(
        (F.col("status") == "loaded") & (F.col("delivery_date") <= F.lit(run_date))
    ).select("file_sha256", "source", "path", "delivery_date", "bronze_rows").dropDuplicates(["file_sha256"])
    done = io.read_table(spark, settings, "silver", CONSERVATION_TABLE).select("file_sha256")
    loaded = loaded.join(done, "file_sha256", "left_anti")
    return [r.asDict() for r in loaded.orderBy("delivery_date", "source", "path").collect()]


def test_pending_files_and_rejected_snapshots_from_the_logs(spark, settings):
    ctx = SimpleNamespace(spark=spark, settings=settings, run_date=NIGHT)
    assert pending_files(ctx) == [] and ingestion_log_rows(ctx) == []  # no log yet
    rows = [
        _log("s1", "rentals", "landing/2026-11-02/rentals.csv", NIGHT, "loaded", 5),
        _log("s2", "housing", "landing/2026-11-01/housing.csv", dt.date(2026, 11, 1), "loaded", 7),
        _log("s2", "housing", "landing/2026-11-01/housing.csv", dt.date(2026, 11, 1), "loaded", 7),  # logged twice
        _log("s3", "housing", "landing/2026-11-02/housing_b.csv", NIGHT, "rejected", 0),
        _log("s4", "declarations", "landing/2026-11-03/declarations.csv", dt.date(2026, 11, 3), "loaded"),  # later
        _log("s5", "declarations", "landing/2026-11-02/declarations.csv", NIGHT, "loaded"),  # conserved already
        _log("s6", "housing", "landing/2026-11-02/housing_a.csv", NIGHT, "loaded", 9),
        _log("s7", "mediation_cases", "landing/2026-11-02/m.csv", NIGHT, "header_only", 0),
    ]
    io.write_table(spark.createDataFrame(rows, INGESTION_LOG), settings, "bronze", "_ingestion_log")
    done = [("r0", dt.date(2026, 11, 1), "declarations", "s5", "p", 3, 3, 0, 0, True)]
    io.write_table(spark.createDataFrame(done, CONSERVATION), settings, "silver", CONSERVATION_TABLE)

    pending = pending_files(ctx)
    assert [(f["file_sha256"], f["delivery_date"]) for f in pending] == [
        ("s2", dt.date(2026, 11, 1)), ("s6", NIGHT), ("s1", NIGHT)]  # by date, then source, then path
    assert pending[0] == {"file_sha256": "s2", "source": "housing", "path": "landing/2026-11-01/housing.csv",
                          "delivery_date": dt.date(2026, 11, 1), "bronze_rows": 7}
    assert pending == _spark_reference(spark, settings, NIGHT)
    later = SimpleNamespace(spark=spark, settings=settings, run_date=dt.date(2026, 11, 3))
    assert [f["file_sha256"] for f in pending_files(later)] == ["s2", "s6", "s1", "s4"]
    assert pending_files(later) == _spark_reference(spark, settings, dt.date(2026, 11, 3))
    log_rows = ingestion_log_rows(ctx)
    assert len(log_rows) == len(rows) and pending_files(ctx, log_rows) == pending  # the log read once, passed on
    assert rejected_files(log_rows, "housing", NIGHT) == 1
    assert rejected_files(log_rows, "housing", dt.date(2026, 11, 1)) == 0 and rejected_files(log_rows, "rentals", NIGHT) == 0
