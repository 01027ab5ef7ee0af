"""Warm a fresh stage server's JVM while it waits for its first request.

A new JVM pays, on its first Delta write, for loading Delta's and Parquet's classes, starting
Hadoop's local file system and for the JIT compiling what runs: on a community district the first
source's ingestion took 13.1 s in a fresh session and 3.6 s after :func:`warm_up` (docs/speed.md).
:func:`warm_up` runs the kinds of operation a night runs - Parquet staged by pyarrow read into a
partitioned Delta append, an unpartitioned append, a MERGE, a filtered read and a grouped count, a
join kept by a local checkpoint and collected to pandas, a pandas function (Spark's Python
workers) - on a few made-up rows in a scratch folder of the server's private folder, then deletes
the folder. No lake table and no delivered row is touched.

It uses only idle time: :func:`start` runs it in a daemon thread next to the listener, and the
server sets ``busy`` when a request arrives; the warm-up stops after the step it is in. A failure
is logged and ignored: warming is an optimisation, the night runs the same without it.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: the Spark job label of the warm-up's jobs (``gridlake.spark.STAGE_PROPERTY``)
LABEL = "warm-up"
ROWS = 64
DAY = dt.date(2000, 1, 1)


def _steps(spark: Any, scratch: Path) -> Iterator[tuple[str, Callable[[], Any]]]:
    """The warm-up's steps, most useful first (the first night's first write pays the most)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    staged, table, log_table = scratch / "staged.parquet", str(scratch / "table"), str(scratch / "log")
    pq.write_table(pa.table({"code": [f"W{i:04d}" for i in range(ROWS)], "text": [f"warm {i % 7}" for i in range(ROWS)],
                             "number": [str(i) for i in range(ROWS)], "_delivery_date": [DAY] * ROWS}), staged)
    frame = spark.read.parquet(str(staged))
    yield "partitioned append", lambda: frame.write.format("delta").mode("append").partitionBy("_delivery_date").save(table)
    yield "append", lambda: (frame.groupBy("_delivery_date").agg(F.count(F.lit(1)).alias("rows"))
                             .write.format("delta").mode("append").save(log_table))

    def merge() -> None:
        changes = spark.createDataFrame([(f"W{i:04d}", "changed", str(i), DAY) for i in range(0, ROWS * 2, 3)],
                                        frame.schema)
        (DeltaTable.forPath(spark, table).alias("t").merge(changes.alias("s"), "t.code <=> s.code")
         .whenMatchedUpdateAll(condition="t.text <> s.text").whenNotMatchedInsertAll().execute())

    yield "merge", merge
    read = spark.read.format("delta").load(table).where(F.col("_delivery_date") == F.lit(DAY))
    yield "grouped count", lambda: read.groupBy("text").count().collect()
    yield "checkpoint to pandas", lambda: (read.join(spark.read.format("delta").load(log_table), "_delivery_date",
                                                     "left_semi").localCheckpoint(eager=True).toPandas())

    def lengths(batches: Iterator[Any]) -> Iterator[Any]:
        for b in batches:
            yield b.assign(number=b["code"].str.len().astype(str))

    yield "pandas function", lambda: read.mapInPandas(lengths, read.schema).count()


def warm_up(spark: Any, scratch: Path, busy: threading.Event | None = None) -> list[str]:
    """Run the warm-up steps under ``scratch`` (deleted afterwards) until ``busy`` is set; the steps run."""
    from gridlake.spark import label_jobs

    done: list[str] = []
    label_jobs(spark, LABEL)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        for name, step in _steps(spark, scratch):
            if busy is not None and busy.is_set():
                break
            step()
            done.append(name)
    finally:
        label_jobs(spark, None)
        shutil.rmtree(scratch, ignore_errors=True)
    return done


def start(spark: Any, scratch: Path, busy: threading.Event) -> threading.Thread:
    """Run :func:`warm_up` in a daemon thread until ``busy`` is set; return the (started) thread."""

    def body() -> None:
        started = time.monotonic()
        try:
            done = warm_up(spark, scratch, busy)
            log.info("warm-up: %s in %.1f s (made-up rows, deleted)", ", ".join(done) or "nothing",
                     time.monotonic() - started)
        except Exception as exc:  # noqa: BLE001 - an optimisation: the night runs all the same
            log.warning("warm-up stopped: %s", type(exc).__name__)
            shutil.rmtree(scratch, ignore_errors=True)

    thread = threading.Thread(target=body, name="gridlake-warm-up", daemon=True)
    thread.start()
    return thread
