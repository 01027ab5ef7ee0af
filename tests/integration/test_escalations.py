"""Issue 19 item 2: deadlines per severity, escalation to the community then the street, 重办, supervisors' lists."""

from __future__ import annotations

import datetime as dt

import pytest
from openpyxl import load_workbook

from gridlake.loop_config import load_loop
from jobs.gold import escalations
from schemas.gold import DISCREPANCIES

pytestmark = pytest.mark.spark

D = dt.date(2026, 11, 20)


def _disc(did: str, severity: str, opened: dt.date, status: str = "open", reopened_on: dt.date | None = None,
          community: str = "上沙社区", street: str = "沙头街道") -> dict:
    hist = [(opened, "open", "system")]
    if reopened_on:
        hist = [(opened - dt.timedelta(days=30), "open", "system"), (opened - dt.timedelta(days=20), "refuted", "O1"),
                (reopened_on, "open", "system")]
    if status == "escalated":
        hist.append((opened + dt.timedelta(days=15), "escalated", "system"))
    return {"discrepancy_id": did, "rule": "R1", "rule_code": "x", "severity": severity, "house_code": "=1+1",
            "source": None, "record_id": None, "street": street, "community": community, "grid_id": "G1",
            "person_key": None, "masked_id": None, "masked_name": None, "masked_phone": None, "evidence": [],
            "reason_codes": [], "corroborating_sources": 1, "match_confidence": 1.0, "priority": 1.0,
            "detected": True, "first_seen": hist[0][0], "last_seen": D, "last_evaluated": D,
            "last_evidence_date": D, "due_date": D, "status": status, "status_since": opened,
            "status_history": hist, "verified_at": None, "verification_outcome": None}


def test_levels_reopen_and_supervisor_lists(spark, tmp_path):
    rows = [
        _disc("A", "critical", D - dt.timedelta(days=2)),    # deadline today: not overdue
        _disc("B", "critical", D - dt.timedelta(days=3)),    # 1 day overdue: community
        _disc("C", "high", D - dt.timedelta(days=7)),        # 4 days overdue (> 3): street
        _disc("E", "low", D - dt.timedelta(days=5), reopened_on=D - dt.timedelta(days=5)),  # 重办, not overdue
        _disc("F", "medium", D - dt.timedelta(days=30), status="escalated", community="香梅社区", street="香蜜湖街道"),
        _disc("G", "medium", D - dt.timedelta(days=30), status="confirmed"),  # closed: not listed
        # overdue, but waiting for an address case: on no officer's list, so not escalated
        {**_disc("W", "high", D - dt.timedelta(days=9)), "reason_codes": ["WAITING_ADDRESS_CASE"]},
    ]
    df = spark.createDataFrame([tuple(r.get(f.name) for f in DISCREPANCIES.fields) for r in rows], DISCREPANCIES)
    out = {r.discrepancy_id: r for r in escalations.transform(df, load_loop(), D).collect()}
    assert sorted(out) == ["B", "C", "E", "F"]
    assert (out["B"].level, out["B"].overdue_days) == ("community", 1)
    assert (out["C"].level, out["C"].overdue_days) == ("street", 4)
    assert out["E"].level is None and out["E"].reopened and out["E"].reopen_count == 1
    assert out["E"].opened == D - dt.timedelta(days=5)
    assert out["F"].level == "street" and out["F"].deadline == D - dt.timedelta(days=23)

    night = tmp_path / D.isoformat()
    res = escalations.write_supervisor_lists([r.asDict() for r in out.values()], night, D)
    assert res["files"] == ["supervisors/community/沙头街道/上沙社区.xlsx", "supervisors/community/香蜜湖街道/香梅社区.xlsx",
                            "supervisors/street/沙头街道.xlsx", "supervisors/street/香蜜湖街道.xlsx"]
    assert res["streets"]["沙头街道"] == {"overdue": 2, "community": 1, "street": 1, "reopened": 1}
    ws = load_workbook(night / "supervisors/community/沙头街道/上沙社区.xlsx").active
    rows = [dict(zip(escalations.SUPERVISOR_HEADERS, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert [r["问题编号"] for r in rows] == ["C", "B"]  # most overdue first
    assert rows[0]["升级层级"] == "街道" and rows[0]["房屋编码"] == "'=1+1"
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    street = load_workbook(night / "supervisors/street/沙头街道.xlsx").active
    assert [r[0] for r in street.iter_rows(min_row=2, values_only=True)] == ["C"]


def test_supervision_metrics_rates(spark):
    from jobs.gold import supervision_metrics

    verified = _disc("V", "high", D - dt.timedelta(days=10), status="confirmed")
    verified.update(verified_at=D - dt.timedelta(days=8), verification_outcome="confirmed")  # within 3 days
    late = _disc("L", "high", D - dt.timedelta(days=10), status="refuted")
    late.update(verified_at=D - dt.timedelta(days=2), verification_outcome="not_rented")     # 8 days: late
    rows = [_disc("B", "critical", D - dt.timedelta(days=3)), _disc("C", "high", D - dt.timedelta(days=7)),
            _disc("E", "low", D - dt.timedelta(days=40), reopened_on=D - dt.timedelta(days=40)), verified, late]
    df = spark.createDataFrame([tuple(r.get(f.name) for f in DISCREPANCIES.fields) for r in rows], DISCREPANCIES)
    loop = load_loop()
    esc = escalations.transform(df, loop, D)
    officers = spark.createDataFrame([("G1", "WGY1")], "grid_id string, officer_id string")
    out = supervision_metrics.transform(df, esc, officers, loop, D).collect()
    by_level = {r.level: r for r in out}
    assert set(by_level) == {"grid", "officer", "community", "street", "district"}
    g = by_level["district"]
    assert (g.raised, g.active, g.verified, g.verified_on_time) == (5, 3, 2, 1)
    assert g.on_time_rate == 0.5
    assert (g.reminders, g.escalated_street) == (3, 2)  # B community, C and E (40 days, low 14) street
    assert g.reopened == 1 and g.reopen_rate == 0.2
    assert (g.backlog_le_7, g.backlog_le_14, g.backlog_le_30, g.backlog_gt_30) == (2, 0, 0, 1)
    assert (g.verified_r1, g.confirmed_r1, g.precision_r1) == (2, 1, 0.5)
    assert g.precision_r2 is None
    assert by_level["officer"].officer_id == "WGY1" and by_level["officer"].raised == 5


def test_supervision_metrics_levels_in_one_aggregation(spark):
    """Every level from one grouping-sets aggregation: each level's keys set and the others null, a grid with no
    officer counted at every level but the officers', each level's counts summing to the district's."""
    from jobs.gold import supervision_metrics

    rows = [_disc("A", "high", D - dt.timedelta(days=2)),
            {**_disc("B", "critical", D - dt.timedelta(days=3)), "grid_id": "G2"},
            {**_disc("C", "low", D - dt.timedelta(days=40), community="香梅社区", street="香蜜湖街道"), "grid_id": "G3"},
            {**_disc("N", "low", D - dt.timedelta(days=4)), "grid_id": None}]   # no grid: not counted
    df = spark.createDataFrame([tuple(r.get(f.name) for f in DISCREPANCIES.fields) for r in rows], DISCREPANCIES)
    loop = load_loop()
    officers = spark.createDataFrame([("G1", "WGY1"), ("G3", "WGY3")], "grid_id string, officer_id string")
    out = supervision_metrics.transform(df, escalations.transform(df, loop, D), officers, loop, D).collect()
    keys = {level: sorted((r.street, r.community, r.grid_id, r.officer_id) for r in out if r.level == level)
            for level in supervision_metrics.LEVELS}
    assert keys["grid"] == [("沙头街道", "上沙社区", "G1", None), ("沙头街道", "上沙社区", "G2", None),
                            ("香蜜湖街道", "香梅社区", "G3", None)]
    assert keys["officer"] == [(None, None, None, "WGY1"), (None, None, None, "WGY3")]   # G2 has no officer
    assert keys["community"] == [("沙头街道", "上沙社区", None, None), ("香蜜湖街道", "香梅社区", None, None)]
    assert keys["street"] == [("沙头街道", None, None, None), ("香蜜湖街道", None, None, None)]
    assert keys["district"] == [(None, None, None, None)]
    raised = {level: sum(r.raised for r in out if r.level == level) for level in supervision_metrics.LEVELS}
    assert raised == {"grid": 3, "officer": 2, "community": 3, "street": 3, "district": 3}
    assert {r.grid_id: r.backlog_gt_30 for r in out if r.level == "grid"} == {"G1": 0, "G2": 0, "G3": 1}
    assert all(r.run_date == D for r in out)


def test_supervision_metrics_night_without_cases(spark):
    """No discrepancy: the district's row of zeros, as every night has one, and no other level."""
    from jobs.gold import supervision_metrics

    df = spark.createDataFrame([], DISCREPANCIES)
    loop = load_loop()
    officers = spark.createDataFrame([("G1", "WGY1")], "grid_id string, officer_id string")
    out = supervision_metrics.transform(df, escalations.transform(df, loop, D), officers, loop, D).collect()
    assert [(r.level, r.street, r.officer_id, r.raised, r.active, r.on_time_rate) for r in out] == [
        ("district", None, None, 0, 0, None)]
