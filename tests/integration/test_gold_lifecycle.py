"""Discrepancy lifecycle (raise, verify, not re-raised without new evidence, reopen, age, escalate) and followups."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql.types import StructType

from gridlake.rules_config import load_rules
from jobs.gold import discrepancies as lifecycle
from jobs.gold import followups
from jobs.gold.rules import DETECTION_COLUMNS
from schemas.gold import DISCREPANCIES, FOLLOWUPS
from schemas.silver import VERIFICATIONS

RULES = load_rules()
DET = StructType([DISCREPANCIES[c] for c in DETECTION_COLUMNS])
D1 = dt.date(2026, 3, 1)


def det(spark, rows: list[dict]):
    base = {"rule": "R2", "rule_code": "rental_without_declaration", "severity": "medium", "street": "沙头街道",
            "community": "上沙社区", "grid_id": "G1", "reason_codes": ["ACTIVE_RENTAL"], "corroborating_sources": 1,
            "match_confidence": 1.0, "last_evidence_date": dt.date(2026, 2, 20)}
    data = []
    for r in rows:
        r = {**base, "house_code": r["discrepancy_id"], "evidence": [("rentals", "RT" + r["discrepancy_id"], "租赁登记")], **r}
        data.append(tuple(r.get(c) for c in DETECTION_COLUMNS))
    return spark.createDataFrame(data, DET)


def ver(spark, rows: list[tuple]):
    return spark.createDataFrame(
        [(f"V{i}", did, dt.datetime.combine(day, dt.time(10)), outcome, "OFF1", None, None, None, "f", "0", 1, "r", day)
         for i, (did, day, outcome) in enumerate(rows)], VERIFICATIONS)


def night(spark, prev, detections, verifications, day):
    return lifecycle.transform(prev, detections, verifications, RULES, day).localCheckpoint()


def by_id(df):
    return {r.discrepancy_id: r for r in df.collect()}


def test_lifecycle(spark):
    empty = spark.createDataFrame([], DISCREPANCIES)
    no_ver = ver(spark, [])
    # night 1: A and B raised
    t1 = night(spark, empty, det(spark, [{"discrepancy_id": "A"}, {"discrepancy_id": "B"}]), no_ver, D1)
    r = by_id(t1)
    assert r["A"].status == "open" and r["A"].first_seen == D1 and r["A"].due_date == D1 + dt.timedelta(days=7)
    assert [tuple(h) for h in r["A"].status_history] == [(D1, "open", "system")]
    # rerun of night 1 on its own output: identical rows (a rerun commits nothing)
    again = night(spark, t1, det(spark, [{"discrepancy_id": "A"}, {"discrepancy_id": "B"}]), no_ver, D1)
    assert sorted(map(tuple, again.collect())) == sorted(map(tuple, t1.collect()))

    # night 2: A confirmed by an officer, still detected with the same evidence -> stays confirmed
    d2 = D1 + dt.timedelta(days=1)
    vers = ver(spark, [("A", d2, "confirmed")])
    t2 = night(spark, t1, det(spark, [{"discrepancy_id": "A"}, {"discrepancy_id": "B"}]), vers, d2)
    r = by_id(t2)
    assert r["A"].status == "confirmed" and r["A"].verified_at == d2 and r["A"].detected
    assert tuple(r["A"].status_history[-1]) == (d2, "confirmed", "OFF1")
    d3 = d2 + dt.timedelta(days=1)
    t3 = night(spark, t2, det(spark, [{"discrepancy_id": "A"}, {"discrepancy_id": "B"}]), vers, d3)
    assert by_id(t3)["A"].status == "confirmed"  # not raised again without new evidence

    # night 4: new evidence dated after the verification reopens A with a new due date
    d4 = d3 + dt.timedelta(days=1)
    t4 = night(spark, t3, det(spark, [{"discrepancy_id": "A", "last_evidence_date": d4}, {"discrepancy_id": "B"}]), vers, d4)
    a = by_id(t4)["A"]
    assert a.status == "open" and a.due_date == d4 + dt.timedelta(days=7) and a.first_seen == D1
    assert [h.status for h in a.status_history] == ["open", "confirmed", "open"]

    # B stays open and escalates once older than escalate_after_days (dated the day it became overdue)
    d20 = D1 + dt.timedelta(days=20)
    t5 = night(spark, t4, det(spark, [{"discrepancy_id": "A", "last_evidence_date": d4}, {"discrepancy_id": "B"}]), vers, d20)
    b = by_id(t5)["B"]
    assert b.status == "escalated"
    assert tuple(b.status_history[-1]) == (D1 + dt.timedelta(days=15), "escalated", "system")
    age = (d20 - dt.date(2026, 2, 20)).days  # severity medium 3 x recency x confidence 1 x escalated 1.5
    assert b.priority == pytest.approx(3 * 0.5 ** (age / 30) * 1.5, abs=1e-5)

    # refuted then lapsed: B refuted, no longer detected -> stays refuted; A lapses -> resolved by system
    d21 = d20 + dt.timedelta(days=1)
    vers2 = ver(spark, [("A", d2, "confirmed"), ("B", d21, "vacant")])
    t6 = by_id(night(spark, t5, det(spark, []), vers2, d21))
    assert t6["B"].status == "refuted" and t6["B"].verification_outcome == "vacant"
    assert t6["A"].status == "resolved" and tuple(t6["A"].status_history[-1]) == (d21, "resolved", "system")
    assert not t6["A"].detected and t6["A"].last_seen == d20


def test_followups_capped_per_officer_and_ranked(spark, monkeypatch):
    empty = spark.createDataFrame([], DISCREPANCIES)
    rows = [{"discrepancy_id": f"A{i:02d}", "grid_id": "G1", "match_confidence": 0.5 + i / 100} for i in range(20)]
    rows += [{"discrepancy_id": "B01", "grid_id": "G2"}, {"discrepancy_id": "C01", "grid_id": "G3"}]
    disc = night(spark, empty, det(spark, rows), ver(spark, []), D1)
    houses = spark.createDataFrame([(f"A{i:02d}", f"标准地址{i}") for i in range(20)], "house_code string, address string")
    officers = spark.createDataFrame([("G1", "OFF1"), ("G2", "OFF2")], "grid_id string, officer_id string")
    prev = spark.createDataFrame([(D1 - dt.timedelta(days=1), "G1", "A19")], "run_date date, grid_id string, discrepancy_id string")
    prev = spark.createDataFrame([], FOLLOWUPS).unionByName(prev, allowMissingColumns=True)
    out = followups.transform(disc, houses, officers, prev, RULES, D1).collect()
    off1 = sorted((r for r in out if r.officer_id == "OFF1"), key=lambda r: r.rank)
    assert len(off1) == RULES.defaults.capacity_per_officer == 15
    assert [r.discrepancy_id for r in off1[:3]] == ["A19", "A18", "A17"]  # highest priority first
    assert all(a.priority >= b.priority for a, b in zip(off1, off1[1:], strict=False))
    assert off1[0].address == "标准地址19" and off1[0].rule_title == RULES["R2"].title
    assert list(off1[0].evidence_categories) == ["租赁登记"]
    assert not off1[0].is_new and off1[1].is_new
    others = {r.grid_id: r for r in out if r.officer_id != "OFF1"}
    assert others["G2"].officer_id == "OFF2" and others["G2"].rank == 1
    assert others["G3"].officer_id is None  # a grid without an officer still gets its list
