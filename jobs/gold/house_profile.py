"""gold.house_profile: one row per registered house as of night D (schema :data:`schemas.gold.HOUSE_PROFILE`)."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.rules_config import RulesConfig
from jobs.gold.rules import Prepared
from schemas.gold import HOUSE_PROFILE

_ENF_COLUMNS = {
    "police_incidents": "enforcement_police",
    "mediation_cases": "enforcement_mediation",
    "safety_inspections": "enforcement_safety",
    "family_planning": "enforcement_family_planning",
}


def transform(p: Prepared, discrepancies: DataFrame, rules: RulesConfig, run_date: dt.date) -> DataFrame:
    """Rental status, declared occupants, enforcement counts by department (in the window) and last activity."""
    start = F.date_sub(F.lit(run_date), rules.defaults.window_days)
    rent = p.rentals.where(F.col("house_code").isNotNull()).groupBy("house_code").agg(
        F.sum(F.when(F.col("active"), 1).otherwise(0)).cast("int").alias("active_rentals"),
        F.sum(F.when(F.col("active"), F.col("tenants_declared"))).cast("int").alias("rental_tenants_declared"),
        F.max("ev_date").alias("rent_last"),
    )
    decl = p.declarations.where(F.col("house_code").isNotNull()).groupBy("house_code").agg(
        F.count(F.lit(1)).cast("int").alias("declared_occupants"),
        F.sum(F.when(F.col("relation") == "tenant", 1).otherwise(0)).cast("int").alias("declared_tenants"),
        F.max("ev_date").alias("decl_last"),
    )
    enf = p.enforcement.where(F.col("house_code").isNotNull() & (F.col("ev_date") > start)).groupBy("house_code").agg(
        *[F.sum(F.when(F.col("source") == s, 1).otherwise(0)).cast("int").alias(c) for s, c in _ENF_COLUMNS.items()],
        F.max("ev_date").alias("enf_last"),
    )
    open_d = (discrepancies.where(F.col("status").isin("open", "escalated") & F.col("house_code").isNotNull())
              .groupBy("house_code").agg(F.count(F.lit(1)).cast("int").alias("open_discrepancies")))
    h = p.houses.join(rent, "house_code", "left").join(decl, "house_code", "left").join(enf, "house_code", "left") \
        .join(open_d, "house_code", "left")
    zero = F.lit(0)
    out = (h.withColumn("capacity", F.when(F.col("area_m2").isNotNull(), F.greatest(
                F.floor(F.col("area_m2") / F.lit(rules["R4"].area_per_person_m2)), F.lit(1)).cast("int")))
           .withColumn("active_rentals", F.coalesce("active_rentals", zero))
           .withColumn("rental_status", F.when(F.col("active_rentals") > 0, F.lit("active"))
                       .when(F.col("rent_last").isNotNull(), F.lit("ended")).otherwise(F.lit("none")))
           .withColumn("declared_occupants", F.coalesce("declared_occupants", zero))
           .withColumn("declared_tenants", F.coalesce("declared_tenants", zero))
           .withColumn("open_discrepancies", F.coalesce("open_discrepancies", zero)))
    for c in _ENF_COLUMNS.values():
        out = out.withColumn(c, F.coalesce(c, zero))
    out = (out.withColumn("enforcement_total", sum((F.col(c) for c in _ENF_COLUMNS.values()), zero))
           .withColumn("last_activity", F.greatest("rent_last", "decl_last", "enf_last"))
           .withColumn("as_of", F.lit(run_date)))
    return out.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in HOUSE_PROFILE.fields])
