"""``quality.results``: one row per expectation per validation, appended across nights.

Rerunning a night replaces that run's rows (MERGE on run, table and expectation) instead of
duplicating them. The volume band of a table (``$volume_min``/``$volume_max``) is derived from
earlier nights' row counts kept here.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from gridlake import io

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from gridlake.config import Settings

LAYER, TABLE = "quality", "results"
KEYS = ("run_id", "layer", "table", "expectation")
ROW_COUNT = "table_row_count"

RESULTS = StructType([
    StructField("run_id", StringType(), False),
    StructField("run_date", DateType(), False),
    StructField("layer", StringType(), False),
    StructField("table", StringType(), False),
    StructField("suite", StringType(), False),
    StructField("expectation", StringType(), False),   # e.g. expect_column_values_to_be_unique(house_code | is_current = true)
    StructField("expectation_type", StringType(), False),
    StructField("dimension", StringType(), False),
    StructField("severity", StringType(), False),      # error | warning
    StructField("success", BooleanType(), True),       # null when skipped
    StructField("skipped", BooleanType(), False),
    StructField("element_count", LongType(), True),
    StructField("unexpected_count", LongType(), True),
    StructField("unexpected_percent", DoubleType(), True),
    StructField("validated_at", TimestampType(), False),
])


def append_results(spark: SparkSession, settings: Settings, rows: list[dict[str, Any]]) -> int:
    """Write ``rows`` (dicts with the RESULTS fields) into quality.results; return the table version."""
    if not rows:
        return io.table_version(spark, settings, LAYER, TABLE)
    tuples = [tuple(r.get(f.name) for f in RESULTS.fields) for r in rows]
    df = spark.createDataFrame(tuples, RESULTS)
    return io.merge_table(df, settings, LAYER, TABLE, list(KEYS))


def read_results(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """The whole quality.results table, or None before the first validation."""
    if not io.table_exists(spark, settings, LAYER, TABLE):
        return None
    return io.read_table(spark, settings, LAYER, TABLE)


def previous_counts(
    spark: SparkSession, settings: Settings, layer: str, table: str, run_date: dt.date, nights: int
) -> list[int]:
    """Row counts of ``layer.table`` on the last ``nights`` nights before ``run_date`` (latest run per night)."""
    df = read_results(spark, settings)
    if df is None:
        return []
    rows = (df.where((F.col("layer") == layer) & (F.col("table") == table) & (F.col("expectation") == ROW_COUNT)
                     & (F.col("run_date") < F.lit(run_date)) & F.col("element_count").isNotNull())
              .groupBy("run_date").agg(F.max_by("element_count", "validated_at").alias("n"))
              .orderBy(F.col("run_date").desc()).limit(nights).collect())
    return [int(r["n"]) for r in rows]


def volume_band(counts: list[int], low: float, high: float, min_history: int) -> tuple[int, int | None]:
    """``(min, max)`` rows expected tonight: ``[low, high] x`` the median of earlier nights.

    With fewer than ``min_history`` earlier nights there is nothing to compare: ``(0, None)``.
    """
    if len(counts) < max(1, min_history):
        return 0, None
    med = statistics.median(counts)
    return int(med * low), int(med * high + 0.5)
