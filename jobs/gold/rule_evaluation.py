"""Precision and recall of the collision rules against the generator's planted truth.

``evaluate_rules(spark, settings, date)`` compares the discrepancies raised on night ``date``
(``gold.discrepancies`` as it stood after that night: ``detected`` and ``last_seen = date``; an
older table version is read by time travel when later nights have run since) with
``DATA/truth/discrepancies_<date>.parquet``. Matching keys:

- R1-R4: the house code
- R5:    house code + pseudonym of the person's ID (the truth's IDs are pseudonymised with the same key)
- R6/R7: ``source:record_id``

Only pseudonyms and record ids leave this module, never an ID number.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from gridlake import io
from gridlake.errors import GridlakeError
from gridlake.privacy import load_key, pseudonym

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from gridlake.config import Settings

log = logging.getLogger(__name__)

RULES = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")
TARGET = 0.95


def _key_expr(rule: Column, house: Column, source: Column, record: Column, person_key: Column) -> Column:
    from pyspark.sql import functions as F

    return (F.when(rule.isin("R6", "R7"), F.concat_ws(":", source, record))
            .when(rule == "R5", F.concat_ws("|", house, person_key))
            .otherwise(house))


def gold_as_of(spark: SparkSession, settings: Settings, date: dt.date) -> DataFrame | None:
    """gold.discrepancies as it stood after night ``date`` (time travel when needed), or None."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    if not io.table_exists(spark, settings, "gold", "discrepancies"):
        return None
    current = io.read_table(spark, settings, "gold", "discrepancies")
    last = current.agg(F.max("last_evaluated")).first()[0]
    if last == date:
        return current
    versions = [r["version"] for r in DeltaTable.forPath(spark, settings.table_path("gold", "discrepancies"))
                .history().select("version").collect()]
    for v in sorted(versions, reverse=True):
        df = io.read_table(spark, settings, "gold", "discrepancies", version=v)
        if df.agg(F.max("last_evaluated")).first()[0] == date:
            return df
    return None


def evaluate_rules(spark: SparkSession, settings: Settings, date: dt.date | str) -> dict[str, Any]:
    """Per-rule precision/recall of night ``date``: ``{"date", "rules": {R1: {...}}, "meets_target", ...}``."""
    from pyspark.sql import functions as F

    date = dt.date.fromisoformat(date) if isinstance(date, str) else date
    truth_path = settings.truth / f"discrepancies_{date.isoformat()}.parquet"
    if not truth_path.exists():
        raise GridlakeError(f"no planted truth for {date}: {truth_path} (run `gridlake generate` first)")
    gold = gold_as_of(spark, settings, date)
    if gold is None:
        raise GridlakeError(f"gold.discrepancies has no evaluation of night {date}: run `gridlake run --date {date}` first")
    key = load_key(settings)
    truth = spark.read.parquet(str(truth_path))
    t = truth.select(F.col("rule"), _key_expr(F.col("rule"), F.col("house_code"), F.col("source"), F.col("record_id"),
                                              pseudonym(F.col("person_id"), key)).alias("k")).distinct()
    g = (gold.where(F.col("detected") & (F.col("last_seen") == F.lit(date)))
         .select("rule", _key_expr(F.col("rule"), F.col("house_code"), F.col("source"), F.col("record_id"),
                                   F.col("person_key")).alias("k")).distinct())
    both = (t.withColumn("in_truth", F.lit(True))
            .join(g.withColumn("in_gold", F.lit(True)), ["rule", "k"], "full_outer")
            .groupBy("rule").agg(
                F.sum(F.when(F.col("in_truth") & F.col("in_gold"), 1).otherwise(0)).alias("tp"),
                F.sum(F.when(F.col("in_gold") & F.col("in_truth").isNull(), 1).otherwise(0)).alias("fp"),
                F.sum(F.when(F.col("in_truth") & F.col("in_gold").isNull(), 1).otherwise(0)).alias("fn"),
            ).collect())
    counts = {r["rule"]: (int(r["tp"]), int(r["fp"]), int(r["fn"])) for r in both}
    out: dict[str, Any] = {}
    for rule in RULES:
        tp, fp, fn = counts.get(rule, (0, 0, 0))
        precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
        recall = tp / (tp + fn) if tp + fn else 1.0
        out[rule] = {"tp": tp, "fp": fp, "fn": fn, "truth": tp + fn, "raised": tp + fp,
                     "precision": round(precision, 4), "recall": round(recall, 4)}
    meets = all(v["precision"] >= TARGET and v["recall"] >= TARGET for v in out.values())
    log.info("rule evaluation %s: %s", date, {r: (v["precision"], v["recall"]) for r, v in out.items()})
    return {"date": date.isoformat(), "rules": out, "target": TARGET, "meets_target": meets}


def mismatches(spark: SparkSession, settings: Settings, date: dt.date, rule: str, limit: int = 20) -> dict[str, list]:
    """Keys (house codes, record ids or house|pseudonym) of false positives and negatives, for debugging."""
    from pyspark.sql import functions as F

    key = load_key(settings)
    truth = spark.read.parquet(str(settings.truth / f"discrepancies_{date.isoformat()}.parquet")).where(F.col("rule") == rule)
    t = truth.select(_key_expr(F.col("rule"), F.col("house_code"), F.col("source"), F.col("record_id"),
                               pseudonym(F.col("person_id"), key)).alias("k")).distinct()
    gold = gold_as_of(spark, settings, date)
    g = (gold.where(F.col("detected") & (F.col("last_seen") == F.lit(date)) & (F.col("rule") == rule))
         .select(_key_expr(F.col("rule"), F.col("house_code"), F.col("source"), F.col("record_id"),
                           F.col("person_key")).alias("k")).distinct())
    return {"false_positives": [r["k"] for r in g.join(t, "k", "left_anti").limit(limit).collect()],
            "false_negatives": [r["k"] for r in t.join(g, "k", "left_anti").limit(limit).collect()]}
