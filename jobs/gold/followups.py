"""gold.followups: tonight's ranked list per officer (schema :data:`schemas.gold.FOLLOWUPS`).

Open and escalated discrepancies, routed to the officer of their grid, ranked by priority
(then due date, then id) and capped at ``capacity_per_officer`` (and a rule's ``max_per_officer``);
the rest stays open and ages. Discrepancies waiting for an address case (``WAITING_ADDRESS_CASE``)
are not listed. R6 address cases carry their address, record count and candidate houses.
Only evidence categories (公安/调解/安全生产/计生/...) and masked person values are listed.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from gridlake.rules_config import RulesConfig
from jobs.gold.rules import WAITING
from schemas.gold import FOLLOWUPS


def officers_as_of(grid_officers: DataFrame, run_date: dt.date) -> DataFrame:
    """One officer per grid as of ``run_date`` (SCD2 view; the lowest officer id when several)."""
    d = F.lit(run_date)
    o = grid_officers.where((F.col("_delivery_date") <= d) & (F.col("valid_from") <= d)
                            & (F.col("valid_to").isNull() | (F.col("valid_to") > d)))
    return o.groupBy("grid_id").agg(F.min("officer_id").alias("officer_id"))


def transform(discrepancies: DataFrame, houses: DataFrame, officers: DataFrame, previous: DataFrame,
              rules: RulesConfig, run_date: dt.date) -> DataFrame:
    """Tonight's followups; ``previous`` is gold.followups (for ``is_new``), ``houses`` the registry view."""
    titles = F.create_map(*[F.lit(x) for r, c in rules.rules.items() for x in (r, c.title)])
    waiting = F.coalesce(F.array_contains("reason_codes", WAITING), F.lit(False))
    active = discrepancies.where(F.col("status").isin("open", "escalated") & F.col("detected") & F.col("grid_id").isNotNull()
                                 & ~waiting)
    if "address" in active.columns:  # R6: the address case's own address
        active = active.withColumnRenamed("address", "__case_addr")
    else:
        active = active.withColumn("__case_addr", F.lit(None).cast("string"))
    addr = houses.select(F.col("house_code").alias("__hc"), F.col("address").alias("__house_addr"))
    j = active.join(officers, "grid_id", "left").join(addr, active["house_code"] == addr["__hc"], "left").drop("__hc")
    j = j.withColumn("address", F.coalesce("__house_addr", "__case_addr"))
    owner = F.coalesce(F.col("officer_id"), F.concat(F.lit("grid:"), F.col("grid_id")))
    order = [F.col("priority").desc(), F.col("due_date").asc(), F.col("discrepancy_id").asc()]
    # a rule's own cap per officer (max_per_officer) first, then the officer's capacity
    caps = {r: c.max_per_officer for r, c in rules.rules.items() if c.max_per_officer}
    if caps:
        cap = F.create_map(*[F.lit(x) for kv in caps.items() for x in kv])[F.col("rule")]
        j = (j.withColumn("__rule_rank", F.row_number().over(Window.partitionBy(owner, "rule").orderBy(*order)))
             .where(cap.isNull() | (F.col("__rule_rank") <= cap)))
    w = Window.partitionBy(owner).orderBy(*order)
    j = j.withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= rules.defaults.capacity_per_officer)
    seen = previous.where(F.col("run_date") < F.lit(run_date)).select(F.col("discrepancy_id").alias("__seen")).distinct()
    j = j.join(seen, j["discrepancy_id"] == seen["__seen"], "left")
    out = (j.withColumn("run_date", F.lit(run_date))
           .withColumn("rule_title", titles[F.col("rule")])
           .withColumn("evidence_categories", F.array_sort(F.array_distinct(F.transform("evidence", lambda e: e["category"]))))
           .withColumn("is_new", F.col("__seen").isNull()))
    return out.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in FOLLOWUPS.fields])
