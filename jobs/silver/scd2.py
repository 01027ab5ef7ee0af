"""Slowly changing dimension type 2 for snapshot sources (housing, grid_officers) via one Delta MERGE.

A snapshot delivered on day D is compared with the current rows by business key
and ``row_hash``:

* new key            -> insert (valid_from = D, valid_to = null, is_current = true)
* changed row_hash   -> close the current row (valid_to = D, is_current = false) and insert the new version
* unchanged          -> nothing at all
* key missing from D -> close the current row (only when the snapshot is complete)

When nothing changed, no MERGE runs and the table keeps its Delta version.
:func:`scd2_changes` is pure; :func:`apply_scd2` writes.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from gridlake import io
from gridlake.config import Settings
from gridlake.faults import fault_window
from gridlake.lifecycle.delta_ops import set_properties
from schemas.silver import CHANGE_FEED_TABLES

log = logging.getLogger(__name__)

ACTION = "__action"  # insert | close
#: rows per data file of a snapshot table, at most: a MERGE rewrites every file holding a row it closes, and a
#: night closes a few (a district's registry in four files of 125,000 rows rewrote two of them to close five houses)
FILE_ROWS = 25_000
#: Spark's cap on the rows of each file a write adds (a session setting: a Delta MERGE takes no write options)
_FILE_ROWS_CONF = "spark.sql.files.maxRecordsPerFile"
_FILE_ROWS_LOCK = threading.Lock()
#: up to this many new and changed rows, :func:`every_key_delivered` counts instead of joining
SMALL_SNAPSHOT_ROWS = 200_000


@contextmanager
def files_of_at_most(spark, rows: int) -> Iterator[None]:
    """Spark's files written inside hold at most ``rows`` rows each, so a MERGE's rewritten files stay as small as
    the table's first ones (else it writes the rows of the files it rewrites together, and they grow night by
    night). The setting is the session's: a write another thread makes meanwhile gets the same cap, which changes
    only its files' sizes. Held under a lock, so two snapshot sources' MERGEs restore it in turn."""
    with _FILE_ROWS_LOCK:
        before = spark.conf.get(_FILE_ROWS_CONF)
        spark.conf.set(_FILE_ROWS_CONF, str(int(rows)))
        try:
            yield
        finally:
            spark.conf.set(_FILE_ROWS_CONF, before)


def scd2_changes(snapshot: DataFrame, current: DataFrame, keys: Sequence[str], day: dt.date,
                 close_missing: bool = True, also_delivered: DataFrame | None = None,
                 every_key_delivered: bool = False) -> DataFrame:
    """Rows to MERGE: ``snapshot`` versions to insert and ``current`` rows to close, tagged by ``__action``.

    ``snapshot`` and ``current`` have the table schema; ``current`` holds only ``is_current`` rows.
    ``also_delivered`` (keys only) are keys the snapshot delivered unchanged and left out: not missing.
    ``every_key_delivered``: the caller has proved that no current key is missing (:func:`every_key_delivered`),
    so the current rows are not compared with every delivered key.
    """
    cols = snapshot.columns
    cur = current.select(*keys, F.col("row_hash").alias("__cur_hash"))
    s = snapshot.join(cur, on=list(keys), how="left")
    inserts = s.where(F.col("__cur_hash").isNull() | (F.col("__cur_hash") != F.col("row_hash")))
    changed_keys = s.where(F.col("__cur_hash").isNotNull() & (F.col("__cur_hash") != F.col("row_hash"))).select(*keys)
    closes = current.join(changed_keys, on=list(keys), how="left_semi")
    if close_missing and not every_key_delivered:
        delivered = snapshot.select(*keys)
        if also_delivered is not None:
            delivered = delivered.unionByName(also_delivered.select(*keys))
        missing = current.join(delivered, on=list(keys), how="left_anti")
        closes = closes.unionByName(missing)
    return inserts.select(*cols, F.lit("insert").alias(ACTION)).unionByName(
        closes.select(*cols, F.lit("close").alias(ACTION)))


def every_key_delivered(snapshot: DataFrame, current: DataFrame, keys: Sequence[str],
                        also_delivered: DataFrame) -> bool:
    """Whether every current key was delivered, from counts instead of a join of every current key with every
    delivered one (a district's registry: 500,000 keys each side, every night).

    ``also_delivered`` holds current keys, each once (the keys of rows delivered exactly as their current version:
    :func:`jobs.silver.runner.unchanged_snapshot_rows`), and ``snapshot`` one row per key. When no key is in both
    (checked), the delivered current keys number ``|also_delivered|`` plus the keys of ``snapshot`` that are
    current, and no current key is missing exactly when that is every current row. False (the join decides) when
    ``snapshot`` is large or the check fails."""
    n_current = current.count()
    n_also = also_delivered.count()
    delivered = snapshot.select(*keys)
    if n_also > n_current or delivered.count() > SMALL_SNAPSHOT_ROWS:
        return False
    if not also_delivered.select(*keys).join(F.broadcast(delivered), list(keys), "left_semi").isEmpty():
        return False   # a key in both would be counted twice
    n_matched = delivered.join(current.select(*keys), list(keys), "left_semi").count()
    return n_current == n_also + n_matched


def apply_scd2(
    snapshot: DataFrame, settings: Settings, table: str, keys: Sequence[str], day: dt.date, schema: StructType,
    close_missing: bool = True, also_delivered: DataFrame | None = None,
) -> dict[str, int]:
    """Apply one snapshot to ``silver.<table>``; return counts and the table version (unchanged when no change)."""
    from delta.tables import DeltaTable

    spark = snapshot.sparkSession
    created = not io.table_exists(spark, settings, "silver", table)
    target_path = settings.table_path("silver", table)
    # a table whose changes a later stage reads from Delta's change data feed records it from its first commit
    properties = io.CHANGE_FEED if table in CHANGE_FEED_TABLES else None
    if created:   # a new table: every snapshot row is an insert (what the MERGE would do), in its first commit
        rows = snapshot.select(*[f.name for f in schema.fields])
        n = rows.count()
        if not n:
            io.create_if_missing(spark, settings, "silver", table, schema, properties=properties)
            return {"inserted": 0, "closed": 0, "version": io.table_version(spark, settings, "silver", table)}
        with fault_window("silver.merge", target_path):
            version = io.create_with_rows(rows, settings, "silver", table, schema, properties=properties,
                                          max_rows_per_file=FILE_ROWS)
        log.info("silver.%s: SCD2 %s -> version %s ({'insert': %s})", table, day, version, n)
        return {"inserted": n, "closed": 0, "version": version}
    current = io.read_table(spark, settings, "silver", table).where("is_current")
    latest = current.agg(F.max("valid_from")).first()[0]
    if latest is not None and latest > day:
        log.warning("silver.%s: snapshot of %s is older than the current one (%s); not applied", table, day, latest)
        return {"inserted": 0, "closed": 0, "version": io.table_version(spark, settings, "silver", table),
                "skipped_old_snapshot": 1}
    complete = (close_missing and also_delivered is not None
                and every_key_delivered(snapshot, current, keys, also_delivered))
    changes = scd2_changes(snapshot, current, keys, day, close_missing, also_delivered,
                           every_key_delivered=complete).persist()
    try:
        counts = {r[ACTION]: r["n"] for r in changes.groupBy(ACTION).agg(F.count(F.lit(1)).alias("n")).collect()}
        if not counts:
            return {"inserted": 0, "closed": 0, "version": io.table_version(spark, settings, "silver", table)}
        # Source rows of action 'close' match their current row by key; 'insert' rows carry a null merge key.
        src = changes
        for k in keys:
            src = src.withColumn(f"__mk_{k}", F.when(F.col(ACTION) == "close", F.col(k)))
        cond = " AND ".join(f"t.`{k}` = s.`__mk_{k}`" for k in keys) + " AND t.is_current = true"
        if properties:  # a table written before it recorded the feed: from this MERGE on (one commit, once)
            with io.recorded_commit(spark, settings, "silver", table):
                set_properties(spark, settings, "silver", table, properties)
        # GRIDLAKE_FAULT=silver.merge~file: killed while Spark writes the MERGE, before its commit
        with (fault_window("silver.merge", target_path), io.recorded_commit(spark, settings, "silver", table),
              files_of_at_most(spark, FILE_ROWS)):
            (
                DeltaTable.forPath(spark, target_path).alias("t")
                .merge(src.alias("s"), cond)
                .whenMatchedUpdate(set={"valid_to": F.lit(day), "is_current": F.lit(False)})
                .whenNotMatchedInsert(
                    condition=f"s.{ACTION} = 'insert'",
                    values={f.name: F.col(f"s.`{f.name}`") for f in schema.fields},
                )
                .execute()
            )
        version = io.table_version(spark, settings, "silver", table)
        log.info("silver.%s: SCD2 %s -> version %s (%s)", table, day, version, counts)
        return {"inserted": counts.get("insert", 0), "closed": counts.get("close", 0), "version": version}
    finally:
        changes.unpersist()
