"""The discrepancy lifecycle: tonight's detections + yesterday's table + verifications -> gold.discrepancies.

State machine, applied once per night D (idempotent: applying it twice for the same D
gives the same rows, so a rerun commits nothing):

1. new detection                     -> ``open`` (due D + due_days)
2. a verification newer than the last one applied (checked on or before D):
   confirmed -> ``confirmed``; resolved / declared_on_site -> ``resolved``;
   not_rented / vacant / wrong_address -> ``refuted``; a verification carrying a house code (an address
   correction) -> ``resolved`` with outcome ``address_corrected``
3. closed but detected again: reopens (``open``, new due date) only when evidence dated after
   the verification exists, or when it was closed by the system (lapsed); never after an address correction
4. open/escalated but no longer detected -> ``resolved`` by ``system`` (the condition lapsed)
5. open for more than escalate_after_days -> ``escalated`` (dated the day it became overdue)

Priority = severity weight x (1 + 0.5 x (corroborating sources - 1)) x recency x match confidence,
x 1.5 when escalated; recency = 0.5 ** (days since the latest evidence / recency_half_life_days).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from gridlake.rules_config import RulesConfig
from schemas.gold import DISCREPANCIES

#: outcome recorded when an officer's verification of an address case carries the house code (a correction)
CORRECTED = "address_corrected"


OUTCOME_STATUS = {
    "confirmed": "confirmed",
    "resolved": "resolved",
    "declared_on_site": "resolved",
    "not_rented": "refuted",
    "vacant": "refuted",
    "wrong_address": "refuted",
    CORRECTED: "resolved",
}
CLOSED = ("confirmed", "resolved", "refuted")
ACTIVE = ("open", "escalated")
SYSTEM = "system"


def _map(values: dict) -> Column:
    return F.create_map(*[F.lit(x) for kv in values.items() for x in kv])


def _entry(date: Column, status: Column | str, by: Column | str) -> Column:
    st = F.lit(status) if isinstance(status, str) else status
    b = F.lit(by) if isinstance(by, str) else by
    return F.struct(date.cast("date").alias("date"), st.alias("status"), b.cast("string").alias("by"))


def latest_verifications(verifications: DataFrame, run_date: dt.date) -> DataFrame:
    """The latest verification per discrepancy checked on or before ``run_date`` (delivered by then).

    ``v_code`` is the house code the officer wrote (the return form's 核查后房屋编码, ``new_house_code``;
    ``house_code`` where a source delivers it so): on an address case (R6) it is the correction that
    closes the case as ``address_corrected`` (see :func:`transform`)."""
    v = verifications.where((F.col("_delivery_date") <= F.lit(run_date)) & (F.to_date("checked_at") <= F.lit(run_date)))
    w = Window.partitionBy("discrepancy_id").orderBy(F.col("checked_at").desc(), F.col("verification_id").desc())
    cols = [F.nullif(F.trim(F.col(c)), F.lit("")) for c in ("new_house_code", "house_code") if c in verifications.columns]
    code = F.coalesce(*cols, F.lit(None).cast("string"))
    return (v.withColumn("__rn", F.row_number().over(w)).where("__rn = 1")
            .select("discrepancy_id", F.to_date("checked_at").alias("v_date"), F.col("outcome").alias("v_outcome"),
                    F.col("officer_id").alias("v_by"), code.alias("v_code")))


def priority(rules: RulesConfig, run_date: dt.date) -> Column:
    """The priority expression over a discrepancies frame (see module doc)."""
    weight = _map(rules.severity_weights)[F.col("severity")]
    corr = F.lit(1.0) + F.lit(0.5) * (F.greatest(F.col("corroborating_sources"), F.lit(1)) - 1)
    age = F.greatest(F.datediff(F.lit(run_date), F.col("last_evidence_date")), F.lit(0))
    recency = F.coalesce(F.pow(F.lit(0.5), age / F.lit(float(rules.defaults.recency_half_life_days))), F.lit(1.0))
    esc = F.when(F.col("status") == "escalated", F.lit(1.5)).otherwise(F.lit(1.0))
    return F.round(weight * corr * recency * F.col("match_confidence") * esc * volume(), 6)


def volume() -> Column:
    """R6 address cases rank by how many records point at the address: 1 + 0.25 x log2(records); 1 otherwise."""
    n = F.greatest(F.coalesce(F.col("record_count"), F.lit(1)), F.lit(1)).cast("double")
    return F.when(F.col("rule") == "R6", F.lit(1.0) + F.lit(0.25) * F.log2(n)).otherwise(F.lit(1.0))


def transform(previous: DataFrame, detections: DataFrame, verifications: DataFrame, rules: RulesConfig,
              run_date: dt.date) -> DataFrame:
    """The whole gold.discrepancies table after night ``run_date`` (schema :data:`schemas.gold.DISCREPANCIES`).

    ``previous`` is the table before (or after, on a rerun) the night, ``detections`` the output of
    :func:`jobs.gold.rules.detect`, ``verifications`` silver.verifications.
    """
    d = F.lit(run_date)
    due_days = _map({r: c.due_days for r, c in rules.rules.items()})
    esc_days = _map({r: c.escalate_after_days for r, c in rules.rules.items()})
    p = previous.select([F.col(c).alias(f"p_{c}") for c in previous.columns])
    t = detections.select([F.col(c).alias(f"t_{c}") for c in detections.columns])
    j = p.join(t, p["p_discrepancy_id"] == t["t_discrepancy_id"], "full_outer")
    j = j.withColumn("discrepancy_id", F.coalesce("t_discrepancy_id", "p_discrepancy_id"))
    v = latest_verifications(verifications, run_date)
    j = j.join(v, "discrepancy_id", "left")

    # Each step is one withColumns: its expressions read the columns as the step before left them (none reads
    # a column the same step sets), so the plan is analysed once per step, not once per column.
    detected = F.col("t_discrepancy_id").isNotNull()
    carried = ("rule", "rule_code", "severity", "house_code", "source", "record_id", "street", "community", "grid_id",
               "person_key", "masked_id", "masked_name", "masked_phone", "evidence", "reason_codes",
               "corroborating_sources", "match_confidence", "last_evidence_date", "address", "record_count",
               "candidates")
    j = j.withColumns({"detected": detected,
                       **{c: F.when(detected, F.col(f"t_{c}")).otherwise(F.col(f"p_{c}")) for c in carried},
                       "first_seen": F.coalesce("p_first_seen", d),
                       "last_seen": F.when(detected, d).otherwise(F.col("p_last_seen")),
                       "last_evaluated": d})

    # 1. new
    is_new = F.col("p_discrepancy_id").isNull()
    j = j.withColumns({
        "status": F.when(is_new, F.lit("open")).otherwise(F.col("p_status")),
        "status_since": F.when(is_new, d).otherwise(F.col("p_status_since")),
        "due_date": F.when(is_new, F.date_add(d, due_days[F.col("rule")])).otherwise(F.col("p_due_date")),
        "status_history": F.when(is_new, F.array(_entry(d, "open", SYSTEM))).otherwise(F.col("p_status_history")),
        "verified_at": F.col("p_verified_at"),
        "verification_outcome": F.col("p_verification_outcome"),
        # 2. (its input) on an address case, a written house code is the correction that closes it
        "v_outcome": F.when((F.col("rule") == "R6") & F.col("v_code").isNotNull(), F.lit(CORRECTED))
                     .otherwise(F.col("v_outcome")),
    })

    # 2. a new verification
    mapped = _map(OUTCOME_STATUS)[F.col("v_outcome")]
    fresh = F.col("v_date").isNotNull() & mapped.isNotNull() & (F.col("verified_at").isNull() | (F.col("v_date") > F.col("verified_at")))
    j = j.withColumn("__fresh", fresh).withColumns({
        "status": F.when(F.col("__fresh"), mapped).otherwise(F.col("status")),
        "status_since": F.when(F.col("__fresh"), F.col("v_date")).otherwise(F.col("status_since")),
        "status_history": F.when(F.col("__fresh"), F.concat("status_history", F.array(
            _entry(F.col("v_date"), mapped, F.coalesce(F.col("v_by"), F.lit("officer")))))).otherwise(F.col("status_history")),
        "verification_outcome": F.when(F.col("__fresh"), F.col("v_outcome")).otherwise(F.col("verification_outcome")),
        "verified_at": F.when(F.col("__fresh"), F.col("v_date")).otherwise(F.col("verified_at")),
    })

    # 3. reopen on new evidence (or after a system lapse)
    by_system = F.element_at("status_history", -1)["by"] == F.lit(SYSTEM)
    newer = F.col("verified_at").isNull() | (F.col("last_evidence_date") > F.col("verified_at"))
    # an address case closed by the officer's correction stays closed for good
    corrected = F.coalesce(F.col("verification_outcome") == CORRECTED, F.lit(False))
    reopen = detected & F.col("status").isin(*CLOSED) & (by_system | newer) & ~corrected
    j = j.withColumn("__reopen", reopen).withColumns({
        "status": F.when(F.col("__reopen"), F.lit("open")).otherwise(F.col("status")),
        "status_since": F.when(F.col("__reopen"), d).otherwise(F.col("status_since")),
        "due_date": F.when(F.col("__reopen"), F.date_add(d, due_days[F.col("rule")])).otherwise(F.col("due_date")),
        "status_history": F.when(F.col("__reopen"), F.concat("status_history", F.array(
            _entry(d, "open", SYSTEM)))).otherwise(F.col("status_history")),
    })

    # 4. lapse: the condition no longer holds
    lapse = ~detected & F.col("status").isin(*ACTIVE)
    j = j.withColumn("__lapse", lapse).withColumns({
        "status": F.when(F.col("__lapse"), F.lit("resolved")).otherwise(F.col("status")),
        "status_since": F.when(F.col("__lapse"), d).otherwise(F.col("status_since")),
        "status_history": F.when(F.col("__lapse"), F.concat("status_history", F.array(
            _entry(d, "resolved", SYSTEM)))).otherwise(F.col("status_history")),
    })

    # 5. escalate when overdue (dated the day it became overdue, so skipped nights change nothing)
    esc_date = F.date_add(F.col("status_since"), esc_days[F.col("rule")] + 1)
    esc = (F.col("status") == "open") & (esc_date <= d)
    j = j.withColumns({"__esc": esc, "__esc_date": esc_date}).withColumns({
        "status": F.when(F.col("__esc"), F.lit("escalated")).otherwise(F.col("status")),
        "status_since": F.when(F.col("__esc"), F.col("__esc_date")).otherwise(F.col("status_since")),
        "status_history": F.when(F.col("__esc"), F.concat("status_history", F.array(
            _entry(F.col("__esc_date"), "escalated", SYSTEM)))).otherwise(F.col("status_history")),
    })

    j = j.withColumn("priority", priority(rules, run_date))
    return j.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in DISCREPANCIES.fields])
