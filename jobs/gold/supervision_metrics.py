"""gold.supervision_metrics: the rates supervisors are judged by, per grid, officer, community, street, district.

One row per (run_date, level, street, community, grid_id, officer_id) — coarser levels leave the finer
keys null; ``officer`` rows carry only ``officer_id``. From gold.discrepancies and the night's
escalations (:mod:`jobs.gold.escalations`):

- ``verified`` / ``verified_on_time``: cases with an officer's verification, and of them those
  verified within the severity's time limit from the night they were (re)opened; ``on_time_rate``
- ``reminders``: active cases overdue tonight (each got a 催办); ``escalated_street`` of them at the street
- ``reopened``: cases ever reopened (重办); ``reopen_rate`` = reopened / raised
- ``backlog_*``: active cases by age since (re)opened, buckets from ``deadlines.backlog_age_buckets``
- ``verified_rN`` / ``confirmed_rN`` / ``precision_rN``: each rule's field-confirmed precision
  (confirmed / verified)

Reminders over time are the sum over nights of this table.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType

from gridlake.loop_config import LoopConfig

RULES = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")
LEVELS = {"grid": ["street", "community", "grid_id"], "officer": ["officer_id"], "community": ["street", "community"],
          "street": ["street"], "district": []}
KEYS = ("street", "community", "grid_id", "officer_id")


def backlog_columns(buckets: list[int]) -> list[str]:
    """Backlog column names for the configured age buckets (``backlog_le_7`` ... ``backlog_gt_30``)."""
    return [f"backlog_le_{b}" for b in buckets] + [f"backlog_gt_{buckets[-1]}"]


def count_columns(buckets: list[int]) -> list[str]:
    """Every summed count column, in schema order."""
    return ["raised", "active", "verified", "verified_on_time", "reminders", "escalated_street", "reopened",
            *backlog_columns(buckets), *[f"verified_{r.lower()}" for r in RULES],
            *[f"confirmed_{r.lower()}" for r in RULES]]


def schema(buckets: list[int]) -> StructType:
    """The table's schema for the configured backlog buckets."""
    fields = [StructField("run_date", DateType(), False), StructField("level", StringType(), False),
              *[StructField(k, StringType(), True) for k in KEYS]]
    fields += [StructField(c, LongType(), False) for c in count_columns(buckets)]
    fields += [StructField(c, DoubleType(), True) for c in
               ("on_time_rate", "reopen_rate", *[f"precision_{r.lower()}" for r in RULES])]
    return StructType(fields)


def _flag(cond: Column) -> Column:
    return F.when(cond, F.lit(1)).otherwise(F.lit(0))


def _ratio(num: str, den: str) -> Column:
    return F.when(F.col(den) > 0, F.round(F.col(num) / F.col(den), 6))


def transform(discrepancies: DataFrame, escalations: DataFrame, officers: DataFrame, loop: LoopConfig,
              run_date: dt.date) -> DataFrame:
    """The night's supervision metrics; ``officers`` maps grid_id -> officer_id (one per grid)."""
    buckets = loop.deadlines.backlog_age_buckets
    days = F.create_map(*[F.lit(x) for kv in loop.deadlines.days.items() for x in kv])
    d = F.lit(run_date)
    opens = F.filter("status_history", lambda e: e["status"] == F.lit("open"))
    opens_before_v = F.filter("status_history", lambda e: (e["status"] == F.lit("open"))
                              & (e["date"] <= F.col("verified_at")))
    esc = escalations.select("discrepancy_id", F.col("level").alias("__level"))
    off = officers.select("grid_id", "officer_id").dropDuplicates(["grid_id"])
    base = (discrepancies.where(F.col("grid_id").isNotNull()).join(esc, "discrepancy_id", "left").join(off, "grid_id", "left")
            .withColumn("__active", F.col("status").isin("open", "escalated"))
            .withColumn("__opened", F.coalesce(F.try_element_at(opens, F.lit(-1))["date"], F.col("first_seen")))
            .withColumn("__age", F.datediff(d, F.col("__opened")))
            .withColumn("__v_opened", F.try_element_at(opens_before_v, F.lit(-1))["date"])
            .withColumn("__verified", F.col("verified_at").isNotNull()))
    flags: dict[str, Column] = {
        "raised": F.lit(1),
        "active": _flag(F.col("__active")),
        "verified": _flag(F.col("__verified")),
        "verified_on_time": _flag(F.col("__verified") & (F.col("verified_at")
                                                         <= F.date_add(F.col("__v_opened"), days[F.col("severity")]))),
        "reminders": _flag(F.col("__active") & F.col("__level").isNotNull()),
        "escalated_street": _flag(F.col("__active") & (F.col("__level") == "street")),
        "reopened": _flag(F.size(opens) > 1),
    }
    names = backlog_columns(buckets)
    prev: int | None = None
    for b, name in zip(buckets, names[:-1], strict=True):
        cond = F.col("__active") & (F.col("__age") <= b)
        flags[name] = _flag(cond if prev is None else cond & (F.col("__age") > prev))
        prev = b
    flags[names[-1]] = _flag(F.col("__active") & (F.col("__age") > buckets[-1]))
    for r in RULES:
        flags[f"verified_{r.lower()}"] = _flag(F.col("__verified") & (F.col("rule") == r))
        flags[f"confirmed_{r.lower()}"] = _flag(F.col("__verified") & (F.col("rule") == r)
                                                & (F.col("verification_outcome") == "confirmed"))
    rows = base.select(*KEYS, *[v.alias(k) for k, v in flags.items()], F.lit(True).alias("__real"))
    counts = count_columns(buckets)
    # Every level in one aggregation over the rows (GROUPING SETS): a key outside a level's set is null there,
    # and grouping_id() tells the levels apart (bit i set when column i of KEYS + __real is not grouped, the
    # first highest). A night without cases still has its district row of zeros, as a global aggregate gives:
    # one row of zeros (__real false) joins the rows; every level but the district's groups it apart, dropped.
    cols = [*KEYS, "__real"]
    sets = [[*keys, "__real"] if keys else [] for keys in LEVELS.values()]
    gid = {level: sum(1 << (len(cols) - 1 - i) for i, k in enumerate(cols) if k not in grouped)
           for level, grouped in zip(LEVELS, sets, strict=True)}
    zero = rows.sparkSession.range(1).select(*[F.lit(None).cast("string").alias(k) for k in KEYS],
                                             *[F.lit(0).alias(c) for c in counts], F.lit(False).alias("__real"))
    out = (rows.unionByName(zero).groupingSets(sets, *cols)
           .agg(*[F.sum(c).alias(c) for c in counts], F.grouping_id().alias("__gid")))
    level = F.lit(None).cast("string")
    for name, g in gid.items():
        level = F.when(F.col("__gid") == g, F.lit(name)).otherwise(level)
    out = (out.withColumn("level", level)
           .where(F.col("level").isNotNull() & ((F.col("level") == "district") | F.col("__real"))
                  & ((F.col("level") != "officer") | F.col("officer_id").isNotNull())))
    out = (out.withColumn("run_date", d).withColumn("on_time_rate", _ratio("verified_on_time", "verified"))
           .withColumn("reopen_rate", _ratio("reopened", "raised")))
    for r in RULES:
        out = out.withColumn(f"precision_{r.lower()}", _ratio(f"confirmed_{r.lower()}", f"verified_{r.lower()}"))
    out = out.fillna(0, subset=counts)
    return out.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in schema(buckets).fields])
