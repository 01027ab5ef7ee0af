"""Issue 19 end to end: three nights of the officers' loop on a tiny inline grid, with the real stages.

Night 1 raises A (medium), B (critical) and C (an unresolved address, R6) and writes G1's return form.
The demo's simulated officer fills it in (A 属实; C 属实 with the right house H9, found through C's
evidence in the lake's gold.discrepancies and the generator's truth; B not reached) and drops it into landing.
Night 2 reads it through the bronze and silver stages; the lifecycle moves (A confirmed; C, an address case, closed for good by the house code the officer wrote)
and the correction becomes an alias that resolves C's address exactly (method ``alias``).
Night 3 (four nights later) finds new evidence at A (reopened: 重办) and B past its two-day limit by
more than three days (escalated to the street); the supervisors' lists are written and the street
supervisor gets the mail, received by a local SMTP server, with counts and links only.
"""

from __future__ import annotations

import datetime as dt
import email
import random
from email import policy

import pandas as pd
import pytest
from openpyxl import load_workbook
from pyspark.sql.types import StructType

from gridlake import io
from gridlake.loop_config import load_loop
from gridlake.notifications import NotificationsConfig, notify_streets
from gridlake.rules_config import load_rules
from jobs.exports import writer as exports
from jobs.gold import aliases, escalations, followups, supervision_metrics
from jobs.gold import discrepancies as lifecycle
from jobs.gold.rules import DETECTION_COLUMNS
from schemas.gold import DISCREPANCIES, FOLLOWUPS
from schemas.silver import VERIFICATIONS
from tests.integration.test_bronze_helpers import run
from tests.support.smtp import local_smtp
from tools.generate import officers as simulated
from tools.generate.site_truth import address_findings

pytestmark = pytest.mark.spark

N1 = dt.date(2026, 3, 1)
N2 = N1 + dt.timedelta(days=1)
N3 = N1 + dt.timedelta(days=6)
ADDR = "上沙村东村二坊12号602"
DET = StructType([DISCREPANCIES[c] for c in DETECTION_COLUMNS])


def _det(spark, rows: list[dict]):
    base = {"rule_code": "x", "street": "沙头街道", "community": "上沙社区", "grid_id": "G1", "reason_codes": [],
            "corroborating_sources": 1, "match_confidence": 1.0}
    return spark.createDataFrame([tuple({**base, **r}.get(c) for c in DETECTION_COLUMNS) for r in rows], DET)


def _detections(spark, night: dt.date, c_again: bool = False):
    """The night's detections. C (an address case) is not detected by night 3: the alias the correction made
    on night 2 resolves its record (``c_again``: the alias did not hold and R6 saw the address again)."""
    a_evidence = N1 - dt.timedelta(days=3) if night < N3 else N3 - dt.timedelta(days=1)  # new evidence by night 3
    c_seen = night < N3 or c_again
    return _det(spark, [
        {"discrepancy_id": "A", "rule": "R2", "severity": "medium", "house_code": "H1",
         "evidence": [("rentals", "RT1", "租赁登记")], "last_evidence_date": a_evidence},
        {"discrepancy_id": "B", "rule": "R1", "severity": "critical", "house_code": "H2",
         "evidence": [("safety_inspections", "S1", "安全生产")], "last_evidence_date": N1},
    ] + ([{"discrepancy_id": "C", "rule": "R6", "severity": "low", "house_code": None, "source": "police_incidents",
           "record_id": "P1", "evidence": [("police_incidents", "P1", "公安")], "last_evidence_date": N1}]
         if c_seen else []))




def test_three_nights_of_the_loop(spark, settings, monkeypatch):
    rules, loop = load_rules(), load_loop()
    houses = spark.createDataFrame([("H1", "福田区上沙村1号"), ("H2", "福田区上沙村2号"), ("H9", "福田区上沙村东村二坊12号602")],
                                   "house_code string, address string")
    officers = spark.createDataFrame([("G1", "WGY1")], "grid_id string, officer_id string")
    no_follow = spark.createDataFrame([], FOLLOWUPS)

    # --- night 1: raise, list, return form -------------------------------------------------------------
    no_ver = spark.createDataFrame([], VERIFICATIONS)
    t1 = lifecycle.transform(spark.createDataFrame([], DISCREPANCIES), _detections(spark, N1), no_ver, rules,
                             N1).localCheckpoint()
    io.write_table(t1, settings, "gold", "discrepancies", "overwrite")
    f1 = followups.transform(t1, houses, officers, no_follow, rules, N1)
    recs = sorted((r.asDict(recursive=True) for r in f1.collect()), key=lambda r: (r["street"], r["grid_id"]))
    stats = exports.write_exports(recs, settings.exports, N1)
    assert stats["grids"] == 1 and stats["rows"] == 3
    form = settings.exports / N1.isoformat() / "沙头街道" / "G1.xlsx"

    # the demo's simulated officer fills in the workbook itself: A is planted truth; C's record P1 is truly H9
    settings.truth.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"source": ["police_incidents"], "record_id": ["P1"], "house_code": ["H9"]}).to_parquet(
        settings.truth / "records.parquet")
    found = address_findings(settings, simulated.form_address_cases(form))
    assert found == {"C": "H9"}
    back = settings.landing / "verifications" / N2.isoformat() / "G1.xlsx"
    assert simulated.fill_form(form, back, N1, {("R2", "H1")}, random.Random(1), per_officer=10, share=1.0,
                               addresses=found, correction_share=1.0) == 3
    wb = load_workbook(back)  # B is not reached this time: its input cells stay empty
    ws = wb.active
    col = {c.value: c.column for c in ws[1]}
    for r in range(2, ws.max_row + 1):
        if ws.cell(row=r, column=col["问题编号"]).value == "B":
            for name in ("核查结果", "核查时间", "备注"):
                ws.cell(row=r, column=col[name]).value = None
    wb.save(back)

    # --- night 2: bronze + silver stages read it; the lifecycle moves; the correction becomes an alias --
    run(spark, settings, N2.isoformat())
    ver = io.read_table(spark, settings, "silver", "verifications")
    got = {r.discrepancy_id: (r.outcome, r.new_house_code) for r in ver.collect()}
    assert got == {"A": ("confirmed", None), "C": ("confirmed", "H9")}  # the simulator's correction
    t2 = lifecycle.transform(t1, _detections(spark, N2), ver, rules, N2).localCheckpoint()
    s2 = {r.discrepancy_id: r.status for r in t2.collect()}
    # C, an address case, is closed for good by the officer's house code (outcome address_corrected)
    assert s2 == {"A": "confirmed", "B": "open", "C": "resolved"}
    assert {r.discrepancy_id: r.verification_outcome for r in t2.collect()}["C"] == "address_corrected"
    records = spark.createDataFrame([("police_incidents", "P1", ADDR, 7)],
                                    "source string, record_id string, address_norm string, input_hash long") \
        .selectExpr("*", "named_struct('community', '上沙社区') AS addr")
    table = aliases.refresh(spark.createDataFrame([], aliases.ALIASES), ver, t1, records,
                            houses.select("house_code"), N2)
    alias_rows = table.collect()
    assert [(a.address_norm, a.house_code, a.status) for a in alias_rows] == [(ADDR, "H9", "active")]
    io.write_table(table, settings, "gold", "address_aliases", "overwrite")
    info = spark.createDataFrame([("H9", "G1", "上沙社区")], "right_id string, _grid string, _comm string")
    resolved = aliases.resolved_by_alias(aliases.mark(records, table).where("alias_code IS NOT NULL"), info).collect()
    assert [(r.record_id, r.house_code, r.method) for r in resolved] == [("P1", "H9", "alias")]
    assert resolved[0].explanation.startswith("alias=verification:RF")

    # --- night 3: A reopened on new evidence (重办); B overdue and escalated; supervisors and mail -------
    t3 = lifecycle.transform(t2, _detections(spark, N3), ver, rules, N3).localCheckpoint()
    s3 = {r.discrepancy_id: r.status for r in t3.collect()}
    assert s3["A"] == "open" and s3["C"] == "resolved"
    esc = escalations.transform(t3, loop, N3).localCheckpoint()
    e = {r.discrepancy_id: r for r in esc.collect()}
    assert e["B"].level == "street" and e["B"].overdue_days == 4
    assert e["A"].reopened and e["A"].level is None
    night_dir = settings.exports / N3.isoformat()
    summary = escalations.write_supervisor_lists([r.asDict() for r in esc.collect()], night_dir, N3)
    assert summary["files"] == ["supervisors/community/沙头街道/上沙社区.xlsx", "supervisors/street/沙头街道.xlsx"]
    listed = load_workbook(night_dir / "supervisors/street/沙头街道.xlsx").active
    assert [r[0] for r in listed.iter_rows(min_row=2, values_only=True)] == ["B"]

    with local_smtp(monkeypatch, "gridlake_smtp_e2e") as inbox:
        cfg = NotificationsConfig(options={"smtp_conn_id": "gridlake_smtp_e2e", "from_email": "gridlake@localhost"},
                                  links_base="https://grid.example/exports",
                                  street_supervisors={"沙头街道": "shatou@example.org"})
        assert notify_streets(summary, N3, cfg)["sent"] == ["沙头街道"]
    recipients, raw = inbox.messages[0]
    assert recipients == ["shatou@example.org"]
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert "逾期 1 件" in mail["Subject"] and "升级街道 1 件" in mail["Subject"] and "重办 1 件" in mail["Subject"]
    body = mail.get_body(("html",)).get_content()
    assert "supervisors/street/沙头街道.xlsx" in body and "H2" not in body

    # the supervisors' corrections figure: C closed by the correction, not back
    fig = exports.correction_figure(spark, settings, t3)
    assert fig == {"cases_corrected": 1, "came_back": 0, "held_share": 1.0}
    assert isinstance(fig["held_share"], float)
    # had R6 seen the corrected address again on night 3, the case would count as back (it stays closed)
    t3_again = lifecycle.transform(t2, _detections(spark, N3, c_again=True), ver, rules, N3)
    assert {r.discrepancy_id: r.status for r in t3_again.collect()}["C"] == "resolved"
    assert exports.correction_figure(spark, settings, t3_again) == {"cases_corrected": 1, "came_back": 1,
                                                                    "held_share": 0.0}

    m = {r.level: r for r in supervision_metrics.transform(t3, esc, officers, loop, N3).collect()}["district"]
    assert (m.raised, m.verified, m.reopened, m.reminders, m.escalated_street) == (3, 2, 1, 1, 1)
    assert m.precision_r2 == 1.0 and m.precision_r6 == 0.0
