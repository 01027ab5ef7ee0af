"""Precision and recall of the collision rules, and of tonight's lists, against the generator's planted truth.

``evaluate_rules(spark, settings, date)`` compares the discrepancies raised on night ``date``
(``gold.discrepancies`` as it stood after that night: ``detected`` and ``last_seen = date``; an
older table version is read by time travel when later nights have run since) with
``DATA/truth/discrepancies_<date>.parquet``, and adds ``lists``: the same comparison for what
officers actually received that night (``gold.followups`` of ``run_date = date``, after capping).

Matching keys:

- R1-R4: the house code
- R5:    house code + pseudonym of the person's ID (the truth's IDs are pseudonymised with the same key)
- R7:    ``source:record_id``
- R6:    the truth plants one case per unresolvable *record*; gridlake raises one case per address and
         grid with all its records as evidence. A case is a true positive when one of its records is
         planted; recall is over planted records (a record is found when a case carries it).

A discrepancy that waits for an address case (reason ``WAITING_ADDRESS_CASE``) is not asserted: it
counts in neither precision nor false negatives when planted (``waiting_tp``), and is reported apart
(``waiting``, ``waiting_fp``). A rule with no planted case reports ``"no cases"`` instead of a recall
(and its precision is over what it raised, or ``"no cases"`` when it raised nothing).

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
LIST_TARGET = 0.90
NO_CASES = "no cases"
WAITING = "WAITING_ADDRESS_CASE"


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


def truth_keys(spark: SparkSession, settings: Settings, date: dt.date) -> DataFrame:
    """``rule, k`` of every planted discrepancy of night ``date`` (R6: one row per planted record)."""
    from pyspark.sql import functions as F

    truth_path = settings.truth / f"discrepancies_{date.isoformat()}.parquet"
    if not truth_path.exists():
        raise GridlakeError(f"no planted truth for {date}: {truth_path} (run `gridlake generate` first)")
    key = load_key(settings)
    truth = spark.read.parquet(str(truth_path))
    return truth.select("rule", _key_expr(F.col("rule"), F.col("house_code"), F.col("source"), F.col("record_id"),
                                          pseudonym(F.col("person_id"), key)).alias("k")).distinct()


def raised_keys(gold: DataFrame) -> DataFrame:
    """``discrepancy_id, rule, k, waiting`` of discrepancies (R6: one row per evidence record of a case)."""
    from pyspark.sql import functions as F

    waiting = F.coalesce(F.array_contains("reason_codes", WAITING), F.lit(False))
    others = gold.where(F.col("rule") != "R6").select(
        "discrepancy_id", "rule", _key_expr(F.col("rule"), F.col("house_code"), F.col("source"), F.col("record_id"),
                                            F.col("person_key")).alias("k"), waiting.alias("waiting"))
    r6 = (gold.where(F.col("rule") == "R6").select("discrepancy_id", "rule", F.explode("evidence").alias("e"))
          .select("discrepancy_id", "rule", F.concat_ws(":", "e.source", "e.record_id").alias("k"),
                  F.lit(False).alias("waiting")))
    return others.unionByName(r6)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def score(raised: DataFrame, truth: DataFrame) -> dict[str, dict[str, Any]]:
    """Per-rule counts and precision/recall of ``raised`` (:func:`raised_keys`) against ``truth`` (:func:`truth_keys`)."""
    from pyspark.sql import functions as F

    t = truth.withColumn("in_truth", F.lit(True))
    j = raised.join(t, ["rule", "k"], "left").withColumn("in_truth", F.coalesce("in_truth", F.lit(False)))
    # one verdict per discrepancy (an R6 case is right when one of its records is planted)
    per_case = j.groupBy("rule", "discrepancy_id").agg(F.max("in_truth").alias("hit"), F.max("waiting").alias("waiting"))
    cases = {(r["rule"], bool(r["waiting"]), bool(r["hit"])): int(r["n"])
             for r in per_case.groupBy("rule", "waiting", "hit").agg(F.count(F.lit(1)).alias("n")).collect()}
    found = raised.groupBy("rule", "k").agg(F.min(F.col("waiting").cast("int")).alias("only_waiting"))
    tk = t.join(found, ["rule", "k"], "left")
    recalled = {(r["rule"], r["state"]): int(r["n"]) for r in tk.withColumn(
        "state", F.when(F.col("only_waiting").isNull(), F.lit("missed")).when(F.col("only_waiting") == 1, F.lit("waiting"))
        .otherwise(F.lit("found"))).groupBy("rule", "state").agg(F.count(F.lit(1)).alias("n")).collect()}
    return {rule: rule_metrics(cases.get((rule, False, True), 0), cases.get((rule, False, False), 0),
                               cases.get((rule, True, True), 0), cases.get((rule, True, False), 0),
                               *(recalled.get((rule, s), 0) for s in ("found", "waiting", "missed")))
            for rule in RULES}


def rule_metrics(tp: int, fp: int, waiting_tp: int, waiting_fp: int, found: int, waiting_found: int,
                 missed: int) -> dict[str, Any]:
    """One rule's figures: ``tp``/``fp`` asserted cases (right/wrong), ``waiting_*`` cases waiting for an
    address case, ``found``/``waiting_found``/``missed`` planted cases. Precision is over asserted cases,
    recall over planted ones; ``"no cases"`` where there is nothing to divide by (never 1.0)."""
    truth_n = found + waiting_found + missed
    raised_n = tp + fp
    return {"truth": truth_n, "raised": raised_n, "tp": tp, "fp": fp, "fn": missed,
            "waiting": waiting_tp + waiting_fp, "waiting_tp": waiting_tp, "waiting_fp": waiting_fp,
            "truth_found": found, "truth_waiting": waiting_found,
            "precision": _ratio(tp, raised_n) if raised_n else NO_CASES,
            "recall": _ratio(found + waiting_found, truth_n) if truth_n else NO_CASES}


def overall(per_rule: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """All rules together (an R6 case counts once, its planted records each)."""
    tp = sum(m["tp"] for m in per_rule.values())
    raised = sum(m["raised"] for m in per_rule.values())
    truth = sum(m["truth"] for m in per_rule.values())
    found = sum(m["truth_found"] + m["truth_waiting"] for m in per_rule.values())
    return {"raised": raised, "tp": tp, "truth": truth,
            "precision": _ratio(tp, raised) if raised else NO_CASES,
            "recall": _ratio(found, truth) if truth else NO_CASES}


def meets_target(per_rule: dict[str, dict[str, Any]], target: float) -> bool:
    """Every figure that exists reaches ``target`` (a rule with no cases neither passes nor fails it)."""
    vals = [v for m in per_rule.values() for v in (m["precision"], m["recall"]) if v != NO_CASES]
    return all(v >= target for v in vals)


def houses_as_of(spark: SparkSession, settings: Settings, date: dt.date) -> int:
    """Houses in use in the registry on night ``date`` (for R6 cases per 1,000 houses)."""
    from pyspark.sql import functions as F

    if not io.table_exists(spark, settings, "silver", "housing"):
        return 0
    h = io.read_table(spark, settings, "silver", "housing")
    d = F.lit(date)
    h = h.where((F.col("_delivery_date") <= d) & (F.col("valid_from") <= d) & (F.col("valid_to").isNull() | (F.col("valid_to") > d))
                & (F.coalesce(F.col("status"), F.lit("")) != "demolished"))
    return int(h.select("house_code").distinct().count())


def evaluate_lists(spark: SparkSession, settings: Settings, date: dt.date, gold: DataFrame,
                   truth: DataFrame) -> dict[str, Any]:
    """Precision/recall of night ``date``'s lists (gold.followups, after capping), overall and per rule.

    ``recall`` is over every planted case; ``recall_due`` only over those still due tonight: not already
    closed by an officer's verification and not waiting for an address case (``gold`` is tonight's detections)."""
    from pyspark.sql import functions as F

    if not io.table_exists(spark, settings, "gold", "followups"):
        return {"listed": 0, "overall": overall({}), "rules": {}, "note": "no gold.followups"}
    listed = io.read_table(spark, settings, "gold", "followups").where(F.col("run_date") == F.lit(date)).select("discrepancy_id")
    on_list = raised_keys(gold.join(listed, "discrepancy_id", "left_semi"))
    per_rule = score(on_list, truth)
    not_due = raised_keys(gold.where(~F.col("status").isin("open", "escalated")))
    not_due = not_due.unionByName(raised_keys(gold).where("waiting")).select("rule", "k")
    due = score(on_list, truth.join(not_due, ["rule", "k"], "left_anti"))
    for rule, m in per_rule.items():
        m["truth_due"], m["recall_due"] = due[rule]["truth"], due[rule]["recall"]
    n = sum(m["raised"] for m in per_rule.values())
    total = overall(per_rule)
    due_total = overall(due)
    total["truth_due"], total["recall_due"] = due_total["truth"], due_total["recall"]
    return {"listed": n, "overall": total, "rules": per_rule, "target": LIST_TARGET,
            "meets_target": total["precision"] != NO_CASES and total["precision"] >= LIST_TARGET}


def evaluate_rules(spark: SparkSession, settings: Settings, date: dt.date | str) -> dict[str, Any]:
    """Per-rule precision/recall of night ``date``: ``{"date", "rules": {R1: {...}}, "overall", "lists",
    "r6_cases_per_1000_houses", "meets_target", ...}``."""
    from pyspark.sql import functions as F

    date = dt.date.fromisoformat(date) if isinstance(date, str) else date
    truth = truth_keys(spark, settings, date).persist()
    try:
        gold = gold_as_of(spark, settings, date)
        if gold is None:
            raise GridlakeError(f"gold.discrepancies has no evaluation of night {date}: run `gridlake run --date {date}` first")
        tonight = gold.where(F.col("detected") & (F.col("last_seen") == F.lit(date))).persist()
        try:
            per_rule = score(raised_keys(tonight), truth)
            lists = evaluate_lists(spark, settings, date, tonight, truth)
        finally:
            tonight.unpersist()
    finally:
        truth.unpersist()
    houses = houses_as_of(spark, settings, date)
    r6 = per_rule["R6"]["raised"] + per_rule["R6"]["waiting"]
    out = {"date": date.isoformat(), "rules": per_rule, "overall": overall(per_rule), "lists": lists,
           "houses": houses, "r6_cases": r6,
           "r6_cases_per_1000_houses": round(1000 * r6 / houses, 2) if houses else None,
           "target": TARGET, "meets_target": meets_target(per_rule, TARGET)}
    log.info("rule evaluation %s: %s; lists precision %s", date,
             {r: (v["precision"], v["recall"]) for r, v in per_rule.items()}, lists["overall"]["precision"])
    return out


def mismatches(spark: SparkSession, settings: Settings, date: dt.date, rule: str, limit: int = 20) -> dict[str, list]:
    """Keys (house codes, record ids or house|pseudonym) of false positives and negatives, for debugging.

    R6: false positives are the evidence records of cases none of whose records is planted."""
    from pyspark.sql import functions as F

    t = truth_keys(spark, settings, date).where(F.col("rule") == rule).select("k")
    gold = gold_as_of(spark, settings, date)
    g = raised_keys(gold.where(F.col("detected") & (F.col("last_seen") == F.lit(date)) & (F.col("rule") == rule)))
    asserted = g.where(~F.col("waiting"))
    hits = asserted.join(t, "k", "left_semi").select("discrepancy_id").distinct()
    fp = asserted.join(hits, "discrepancy_id", "left_anti").select("k").distinct()
    return {"false_positives": [r["k"] for r in fp.limit(limit).collect()],
            "false_negatives": [r["k"] for r in t.join(g.select("k"), "k", "left_anti").limit(limit).collect()]}
