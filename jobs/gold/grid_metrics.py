"""gold.grid_metrics: coverage, open discrepancies, resolution and match quality per area and night.

One row per (run_date, level, street, community, grid_id) for the levels grid, community,
street and district (schema :data:`schemas.gold.GRID_METRICS`).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schemas.gold import GRID_METRICS, RULE_CODES

_COUNTS = ["houses", "rented_houses", "rented_houses_declared", *[f"open_{r.lower()}" for r in RULE_CODES],
           "open_total", "escalated", "confirmed", "resolved", "refuted", "raised", "verified",
           "records", "records_resolved", "score_sum"]
LEVELS = {"grid": ["street", "community", "grid_id"], "community": ["street", "community"], "street": ["street"],
          "district": []}


def _ratio(num: str, den: str):
    return F.when(F.col(den) > 0, F.round(F.col(num) / F.col(den), 6))


def transform(house_profile: DataFrame, discrepancies: DataFrame, house_resolution: DataFrame | None,
              run_date: dt.date) -> DataFrame:
    """Metrics of night ``run_date`` from gold.house_profile, gold.discrepancies and gold.house_resolution."""
    hp = house_profile.where(F.col("house_status") != "demolished")
    rented = (F.col("rental_status") == "active") | (F.col("declared_tenants") > 0)
    houses = hp.groupBy("grid_id").agg(
        F.count(F.lit(1)).alias("houses"),
        F.sum(F.when(rented, 1).otherwise(0)).alias("rented_houses"),
        F.sum(F.when(rented & (F.col("declared_occupants") > 0), 1).otherwise(0)).alias("rented_houses_declared"),
    )
    st = F.col("status")
    active = st.isin("open", "escalated")
    disc = discrepancies.where(F.col("grid_id").isNotNull()).groupBy("grid_id").agg(
        *[F.sum(F.when(active & (F.col("rule") == r), 1).otherwise(0)).alias(f"open_{r.lower()}") for r in RULE_CODES],
        F.sum(F.when(active, 1).otherwise(0)).alias("open_total"),
        F.sum(F.when(st == "escalated", 1).otherwise(0)).alias("escalated"),
        F.sum(F.when(st == "confirmed", 1).otherwise(0)).alias("confirmed"),
        F.sum(F.when(st == "resolved", 1).otherwise(0)).alias("resolved"),
        F.sum(F.when(st == "refuted", 1).otherwise(0)).alias("refuted"),
        F.count(F.lit(1)).alias("raised"),
        F.sum(F.when(F.col("verified_at").isNotNull(), 1).otherwise(0)).alias("verified"),
    )
    frames = [houses, disc]
    if house_resolution is not None:
        frames.append(house_resolution.where(F.col("grid_id").isNotNull()).groupBy("grid_id").agg(
            F.count(F.lit(1)).alias("records"),
            F.sum(F.when(F.col("house_code").isNotNull(), 1).otherwise(0)).alias("records_resolved"),
            F.sum(F.when(F.col("house_code").isNotNull(), F.col("score").cast("double")).otherwise(0.0)).alias("score_sum"),
        ))
    geo = (house_profile.where(F.col("grid_id").isNotNull()).groupBy("grid_id")
           .agg(F.first("street", ignorenulls=True).alias("street"), F.first("community", ignorenulls=True).alias("community")))
    base = geo
    for f in frames:
        base = base.join(f, "grid_id", "left")
    for c in _COUNTS:
        base = base.withColumn(c, F.coalesce(F.col(c).cast("double" if c == "score_sum" else "long"),
                                             F.lit(0.0 if c == "score_sum" else 0)))
    parts = []
    for level, keys in LEVELS.items():
        g = base.groupBy(*keys).agg(*[F.sum(c).alias(c) for c in _COUNTS]) if keys else \
            base.agg(*[F.sum(c).alias(c) for c in _COUNTS])
        for k in ("street", "community", "grid_id"):
            if k not in keys:
                g = g.withColumn(k, F.lit(None).cast("string"))
        parts.append(g.withColumn("level", F.lit(level)))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    out = (out.withColumn("run_date", F.lit(run_date))
           .withColumn("declaration_coverage", _ratio("rented_houses_declared", "rented_houses"))
           .withColumn("resolution_rate", F.when(F.col("raised") > 0, F.round(
               (F.col("confirmed") + F.col("resolved") + F.col("refuted")) / F.col("raised"), 6)))
           .withColumn("confirmation_rate", _ratio("confirmed", "verified"))
           .withColumn("match_rate", _ratio("records_resolved", "records"))
           .withColumn("mean_match_score", F.when(F.col("records_resolved") > 0,
                                                  F.round(F.col("score_sum") / F.col("records_resolved"), 6))))
    return out.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in GRID_METRICS.fields])
