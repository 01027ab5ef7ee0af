"""``quality.results``: one row per expectation per validation, appended across nights.

Rerunning a night replaces that run's rows (MERGE on run, table and expectation) instead of
duplicating them, and commits nothing when the outcomes are the same. The volume band of a
table (``$volume_min``/``$volume_max``) is derived from earlier nights' row counts kept here.
"""

from __future__ import annotations

import datetime as dt
import statistics
import threading
from typing import TYPE_CHECKING, Any

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
_BUFFER_KEY = "quality_results_buffer"
_HISTORY_KEY = "quality_count_history"
_LOCK = threading.Lock()  # a stage may audit from several threads (spark.stage_threads)

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
    # only results that differ from what the run recorded before: a rerun that validates the same
    # tables with the same outcome commits nothing (and keeps the first ``validated_at``)
    compared = [f.name for f in RESULTS.fields if f.name not in KEYS and f.name != "validated_at"]
    return io.upsert_changed(df, settings, LAYER, TABLE, list(KEYS), columns=compared)


def flush_buffered(ctx: Any) -> int | None:
    """Write the rows :func:`record` buffered in ``ctx.extras`` in one MERGE; None when there were none."""
    with _LOCK:
        rows = ctx.extras.pop(_BUFFER_KEY, None)
    if not rows:
        return None
    return append_results(ctx.spark, ctx.settings, rows)


def record(ctx: Any, rows: list[dict[str, Any]]) -> None:
    """Store one validation's rows: buffered until the stage ends when the night defers quality
    writes (``ctx.extras["defer_quality_writes"]``, set by the pipeline), else merged at once."""
    if ctx.extras.get("defer_quality_writes"):
        with _LOCK:
            ctx.extras.setdefault(_BUFFER_KEY, []).extend(rows)
    else:
        append_results(ctx.spark, ctx.settings, rows)


def read_results(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """The whole quality.results table, or None before the first validation."""
    if not io.table_exists(spark, settings, LAYER, TABLE):
        return None
    return io.read_table(spark, settings, LAYER, TABLE)


def previous_counts(
    spark: SparkSession, settings: Settings, layer: str, table: str, run_date: dt.date, nights: int
) -> list[int]:
    """Row counts of ``layer.table`` on the last ``nights`` nights before ``run_date`` (latest run per night)."""
    return _all_previous_counts(spark, settings, run_date).get((layer, table), [])[:nights]


def previous_counts_cached(ctx: Any, layer: str, table: str, nights: int) -> list[int]:
    """:func:`previous_counts` for ``ctx.run_date``, answered from one read of quality.results per stage
    (kept in ``ctx.extras``; a night's own rows never count, so earlier audits of the stage do not change it)."""
    with _LOCK:
        cache = ctx.extras.get(_HISTORY_KEY)
        if cache is None or cache[0] != ctx.run_date:
            cache = (ctx.run_date, _all_previous_counts(ctx.spark, ctx.settings, ctx.run_date))
            ctx.extras[_HISTORY_KEY] = cache
    return cache[1].get((layer, table), [])[:nights]


def _all_previous_counts(spark: SparkSession, settings: Settings, run_date: dt.date) -> dict[tuple[str, str], list[int]]:
    """Each table's row count on each night before ``run_date`` (the latest validation of the night), newest
    night first; quality.results read into this process (:func:`gridlake.io.read_columns`: no Spark job)."""
    columns = ["layer", "table", "run_date", "expectation", "element_count", "validated_at"]
    results = io.read_columns(spark, settings, LAYER, TABLE, columns)
    if results is None:
        return {}
    latest: dict[tuple[str, str, dt.date], tuple[Any, int]] = {}
    for layer, table, night, expectation, n, at in zip(*(results.column(c).to_pylist() for c in columns), strict=True):
        if expectation != ROW_COUNT or n is None or night >= run_date:
            continue
        key = (layer, table, night)
        if key not in latest or (at, n) > latest[key]:
            latest[key] = (at, int(n))
    out: dict[tuple[str, str], list[tuple[dt.date, int]]] = {}
    for (layer, table, night), (_, n) in latest.items():
        out.setdefault((layer, table), []).append((night, n))
    return {k: [n for _, n in sorted(v, reverse=True)] for k, v in out.items()}


def volume_band(counts: list[int], low: float, high: float, min_history: int) -> tuple[int, int | None]:
    """``(min, max)`` rows expected tonight: ``[low, high] x`` the median of earlier nights.

    With fewer than ``min_history`` earlier nights there is nothing to compare: ``(0, None)``.
    """
    if len(counts) < max(1, min_history):
        return 0, None
    med = statistics.median(counts)
    return int(med * low), int(med * high + 0.5)
