"""Deduplication by business key, with a reason for every row that is not kept.

Within one batch, rows sharing a business key are ranked: latest ``order_by``
value first (when the source declares one), then latest delivery date, then the
later file and the later row. The first row survives; each other row is

* ``DUPLICATE_EXACT``       - same content as the survivor (a re-sent row),
* ``DUPLICATE_SUPERSEDED``  - an older version (earlier ``order_by`` or delivery date),
* ``DUPLICATE_KEY_CONFLICT``- different content with nothing saying which is newer
  (same ``order_by`` value, same delivery): quarantined, the survivor kept.

Against what silver already holds, :func:`stale_against` marks incoming rows whose
``order_by`` is older than the stored row (``DUPLICATE_STALE``): a late re-send
never overwrites a newer version.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.silver.columns import row_hash

DUP_COLUMN = "_dup_reason"
CONFLICT = "DUPLICATE_KEY_CONFLICT"


def dedup(df: DataFrame, keys: Sequence[str], order_by: str | None, content: Sequence[str]) -> DataFrame:
    """``df`` plus ``_dup_reason``: null for the survivor of each key, else the reason it is not kept."""
    order = [F.col(order_by).desc_nulls_last()] if order_by else []
    order += [F.col("_delivery_date").desc(), F.col("_source_file").desc(), F.col("_row_number").desc()]
    w = Window.partitionBy(*[F.col(k) for k in keys]).orderBy(*order)
    first = Window.partitionBy(*[F.col(k) for k in keys]).orderBy(*order).rowsBetween(
        Window.unboundedPreceding, Window.currentRow)
    h = df.withColumn("__h", row_hash(content)).withColumn("__rn", F.row_number().over(w))
    h = h.withColumn("__h1", F.first("__h").over(first)).withColumn("__d1", F.first("_delivery_date").over(first))
    if order_by:
        h = h.withColumn("__o1", F.first(order_by).over(first))
        older = (F.col(order_by) < F.col("__o1")) | (F.col(order_by).isNull() & F.col("__o1").isNotNull()) | (
            F.col(order_by).eqNullSafe(F.col("__o1")) & (F.col("_delivery_date") < F.col("__d1")))
    else:
        older = F.col("_delivery_date") < F.col("__d1")
    reason = (
        F.when(F.col("__rn") == 1, F.lit(None))
        .when(F.col("__h") == F.col("__h1"), F.lit("DUPLICATE_EXACT"))
        .when(older, F.lit("DUPLICATE_SUPERSEDED"))
        .otherwise(F.lit(CONFLICT))
    )
    return h.withColumn(DUP_COLUMN, reason).drop("__h", "__rn", "__h1", "__d1", "__o1")


def stale_against(batch: DataFrame, current: DataFrame, keys: Sequence[str], order_by: str) -> DataFrame:
    """``batch`` plus ``_dup_reason`` = ``DUPLICATE_STALE`` where silver already holds a newer ``order_by``."""
    cur = current.select(*keys, F.col(order_by).alias("__stored"))
    joined = batch.join(cur, on=list(keys), how="left")
    return joined.withColumn(
        DUP_COLUMN, F.when(F.col("__stored") > F.col(order_by), F.lit("DUPLICATE_STALE"))
    ).drop("__stored")
