"""Address cases (R6) in the lifecycle and on the lists: closed for good by a correction, capped per officer;
discrepancies waiting for an address case stay off the lists."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from gridlake.rules_config import load_rules
from jobs.gold import discrepancies as lifecycle
from jobs.gold import followups
from schemas.gold import DISCREPANCIES, FOLLOWUPS
from tests.integration.test_gold_lifecycle import det, ver

RULES = load_rules()
D1 = dt.date(2026, 3, 1)


def _r6(did: str, evidence_date=dt.date(2026, 2, 20), records: int = 1) -> dict:
    return {"discrepancy_id": did, "rule": "R6", "rule_code": "unresolved_address", "severity": "low", "house_code": None,
            "reason_codes": ["ADDRESS_UNRESOLVED"], "evidence": [("police_incidents", f"P{did}{i}", "公安") for i in range(records)],
            "record_count": records, "address": "上沙社区东村2坊12号", "last_evidence_date": evidence_date}


def test_correction_closes_an_address_case_for_good(spark):
    empty = spark.createDataFrame([], DISCREPANCIES)
    t1 = lifecycle.transform(empty, det(spark, [_r6("X"), _r6("Y")]), ver(spark, []), RULES, D1).localCheckpoint()
    d2 = D1 + dt.timedelta(days=1)
    # the officer codes X on site (the verification carries the house code); Y is only marked resolved
    v = ver(spark, [("X", d2, "resolved"), ("Y", d2, "resolved")])
    v = v.withColumn("house_code", F.when(F.col("discrepancy_id") == "X", F.lit("440304001002000001")))
    t2 = lifecycle.transform(t1, det(spark, [_r6("X"), _r6("Y")]), v, RULES, d2).localCheckpoint()
    r = {x.discrepancy_id: x for x in t2.collect()}
    assert (r["X"].status, r["X"].verification_outcome) == ("resolved", "address_corrected")
    # night 3: both detected again with newer records: Y reopens, X stays closed
    d3 = d2 + dt.timedelta(days=1)
    t3 = lifecycle.transform(t2, det(spark, [_r6("X", d3), _r6("Y", d3)]), v, RULES, d3).localCheckpoint()
    r = {x.discrepancy_id: x for x in t3.collect()}
    assert r["X"].status == "resolved" and r["Y"].status == "open"


def test_lists_cap_address_cases_and_leave_waiting_cases_off(spark):
    empty = spark.createDataFrame([], DISCREPANCIES)
    rows = [_r6(f"A{i}", records=i + 1) for i in range(7)]
    rows += [{"discrepancy_id": "W", "reason_codes": ["ACTIVE_RENTAL", "WAITING_ADDRESS_CASE"]}, {"discrepancy_id": "N"}]
    disc = lifecycle.transform(empty, det(spark, rows), ver(spark, []), RULES, D1).localCheckpoint()
    houses = spark.createDataFrame([("W", "地址W"), ("N", "地址N")], "house_code string, address string")
    officers = spark.createDataFrame([("G1", "OFF1")], "grid_id string, officer_id string")
    out = followups.transform(disc, houses, officers, spark.createDataFrame([], FOLLOWUPS), RULES, D1).collect()
    ids = [r.discrepancy_id for r in sorted(out, key=lambda r: r.rank)]
    assert "W" not in ids and "N" in ids
    r6 = [r for r in out if r.rule == "R6"]
    assert len(r6) == RULES["R6"].max_per_officer == 5
    # ranked by how many records point at the address: the two smallest cases wait for another night
    assert {r.discrepancy_id for r in r6} == {f"A{i}" for i in range(2, 7)}
    assert {r.address for r in r6} == {"上沙社区东村2坊12号"} and all(r.record_count >= 3 for r in r6)
