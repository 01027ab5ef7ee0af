"""Issue 19 item 5: an officer's correction (核查后房屋编码 on an R6 case) becomes an alias; refuted, it is withdrawn."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.gold import aliases
from schemas.silver import VERIFICATIONS

pytestmark = pytest.mark.spark

D1, D2, D3 = dt.date(2026, 11, 4), dt.date(2026, 11, 5), dt.date(2026, 11, 6)
ADDR = "上沙村东村二坊12号602"


def _v(spark, rows):
    return spark.createDataFrame(
        [(vid, did, dt.datetime.combine(day, dt.time(10)), outcome, "WGY1", None, code, "G1", "f", "0", 1, "r", day)
         for vid, did, day, outcome, code in rows], VERIFICATIONS)


@pytest.fixture
def frames(spark):
    disc = spark.createDataFrame(
        [("C6", "R6", [("police_incidents", "P1", "公安"), ("declarations", "S1", "自主申报")]),
         ("C1", "R1", [("police_incidents", "P2", "公安")])],
        "discrepancy_id string, rule string, evidence array<struct<source:string,record_id:string,category:string>>")
    records = spark.createDataFrame(
        [("police_incidents", "P1", ADDR, "上沙社区", 11), ("declarations", "S1", ADDR, "上沙社区", 12),
         ("police_incidents", "P2", ADDR, "上沙社区", 13), ("police_incidents", "P3", "别处1号", None, 14)],
        "source string, record_id string, address_norm string, community string, input_hash long")
    records = records.selectExpr("*", "named_struct('community', community) AS addr")
    houses = spark.createDataFrame([("H1", "G1", "上沙社区"), ("H2", "G1", "上沙社区")],
                                   "house_code string, grid_id string, community string")
    return disc, records, houses


def test_correction_alias_resolution_and_withdrawal(spark, frames):
    disc, records, houses = frames
    empty = spark.createDataFrame([], aliases.ALIASES)
    v1 = _v(spark, [("V1", "C6", D1, "confirmed", "H1"), ("V9", "C6", D1, "confirmed", "NOPE")])
    t1 = aliases.refresh(empty, v1, disc, records, houses, D1).collect()
    assert [(r.address_norm, r.house_code, r.verification_id, r.status, r.officer_id) for r in t1] == [
        (ADDR, "H1", "V1", "active", "WGY1")]  # one alias per address; an unknown code never becomes one
    t1df = spark.createDataFrame(t1, aliases.ALIASES)
    again = aliases.refresh(t1df, v1, disc, records, houses, D1).collect()
    assert [tuple(r) for r in again] == [tuple(r) for r in t1]  # idempotent

    marked = aliases.mark(records, t1df)
    by_alias = marked.where("alias_code IS NOT NULL")
    info = houses.selectExpr("house_code AS right_id", "grid_id AS _grid", "community AS _comm")
    res = {r.record_id: r for r in aliases.resolved_by_alias(by_alias, info).collect()}
    assert sorted(res) == ["P1", "P2", "S1"]
    assert res["P1"].method == "alias" and res["P1"].house_code == "H1" and res["P1"].grid_id == "G1"
    assert res["P1"].explanation.startswith("alias=verification:V1;case=C6")
    hashes = {r.record_id: r.input_hash for r in marked.collect()}
    assert hashes["P1"] != 11 and hashes["P3"] == 14  # an alias changes the fingerprint: re-linked next night

    # the case the alias produced is refuted on site as a wrong address: withdrawn
    v2 = v1.unionByName(_v(spark, [("V2", "C1", D2, "wrong_address", None)]))
    t2 = aliases.refresh(t1df, v2, disc, records, houses, D2).collect()
    assert [(r.status, r.withdrawn_on, r.withdrawn_by) for r in t2] == [("withdrawn", D2, "V2")]
    assert aliases.mark(records, spark.createDataFrame(t2, aliases.ALIASES)).where("alias_code IS NOT NULL").count() == 0

    # a newer correction to another house replaces the alias
    v3 = v1.unionByName(_v(spark, [("V3", "C6", D3, "confirmed", "H2")]))
    t3 = sorted(aliases.refresh(t1df, v3, disc, records, houses, D3).collect(), key=lambda r: r.verification_id)
    assert [(r.verification_id, r.house_code, r.status) for r in t3] == [("V1", "H1", "withdrawn"), ("V3", "H2", "active")]


def testcorrection_stats(spark, settings):
    from types import SimpleNamespace

    from gridlake import io
    from jobs.exports.writer import correction_stats

    ctx = SimpleNamespace(spark=spark, settings=settings)
    disc = spark.createDataFrame([("C6", "resolved"), ("C7", "open"), ("C8", "open")],
                                 "discrepancy_id string, status string")
    assert correction_stats(ctx, disc)["cases_corrected"] == 0
    rows = [(f"addr{i}", "H1", f"V{i}", did, "WGY1", D1, "active", None, None) for i, did in enumerate(("C6", "C7"))]
    io.write_table(spark.createDataFrame(rows, aliases.ALIASES), settings, "gold", "address_aliases", "overwrite")
    assert correction_stats(ctx, disc) == {"cases_corrected": 2, "came_back": 1, "held_share": 0.5}
    # closed for good, but detected again on a night after the correction: it came back too
    seen = spark.createDataFrame(
        [("C6", "resolved", True, D1 + dt.timedelta(days=2), dt.datetime.combine(D1, dt.time(9))),
         ("C7", "resolved", True, D1, dt.datetime.combine(D1, dt.time(9)))],
        "discrepancy_id string, status string, detected boolean, last_seen date, verified_at timestamp")
    assert correction_stats(ctx, seen) == {"cases_corrected": 2, "came_back": 1, "held_share": 0.5}


def test_no_change_possible_means_refresh_returns_the_previous_table(spark, frames):
    """``changes_possible`` is False exactly when no verification checked by the night gives a code or refutes an
    address; then refresh leaves the table as it was (so the stage may skip its joins)."""
    disc, records, houses = frames
    empty = spark.createDataFrame([], aliases.ALIASES)
    table = spark.createDataFrame(aliases.refresh(empty, _v(spark, [("V1", "C6", D1, "confirmed", "H1")]), disc,
                                                  records, houses, D1).collect(), aliases.ALIASES)
    quiet = _v(spark, [("V2", "C1", D2, "confirmed", None), ("V3", "C6", D3, "wrong_address", None),
                       ("V4", "C6", D3, "confirmed", "H2")])   # no code, or checked after night D2
    assert not aliases.changes_possible(quiet, D2)
    assert sorted(aliases.refresh(table, quiet, disc, records, houses, D2).collect()) == sorted(table.collect())
    assert aliases.changes_possible(quiet, D3)   # both V3 (refutes) and V4 (a code) count from D3
    assert not aliases.changes_possible(quiet.where("verification_id <> 'V4'"), D2)
    assert aliases.changes_possible(quiet.where("verification_id = 'V3'"), D3)
    assert aliases.changes_possible(quiet.where("verification_id = 'V4'"), D3)
    refreshed = aliases.refresh(table, quiet, disc, records, houses, D3).collect()
    assert sorted(refreshed) != sorted(table.collect())   # and then refresh does change it
