"""tools.bench.gold_scope: the rules over only the records that decide a set of houses give, on those houses,
what the whole evaluation gives (persons declared elsewhere, enforcement naming them, address cases waiting)."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs.gold.rules import detect, prepare
from tests.integration.test_gold_rules import (
    KEY,
    PID1,
    PID2,
    PID3,
    RULES,
    D,
    decl,
    house,
    hr_cands_df,
    police,
    rental,
    silver_df,
)
from tools.bench.gold_scope import delivered_codes, differences, replaced_units, restrict, scope_records

pytestmark = pytest.mark.spark

PID4 = "440304198801011235"


def _silver(spark):
    return {
        "housing": silver_df(spark, "housing", [house(f"H{i}") for i in range(1, 7)]),
        "rentals": silver_df(spark, "rentals", [rental("L1", "H1"), rental("L2", "H4")]),
        "declarations": silver_df(spark, "declarations", [
            decl("D1", PID1, "H1", at=dt.datetime(2026, 1, 10, 9)),        # A's older declaration
            decl("D2", PID1, "H2", at=dt.datetime(2026, 2, 1, 9)),         # A's current one, elsewhere
            decl("D3", PID2, None, community="上沙社区"),                   # no house: an address case
            decl("D4", PID3, "440304000000009999"),                        # an unknown code (R7)
            decl("D5", PID4, "H6"),                                        # a tenant without a rental (R3)
        ]),
        "police_incidents": silver_df(spark, "police_incidents", [police("P1", persons=PID1)]),
        **{t: silver_df(spark, t, []) for t in ("mediation_cases", "safety_inspections", "family_planning")},
    }


def _hr(spark):
    cand = [("H4", 0.8, "room differs"), ("H5", 0.7, "room differs")]
    return hr_cands_df(spark, [
        ("rentals", "L1", "H1", 1.0, "G1", "c", None), ("rentals", "L2", "H4", 1.0, "G1", "c", None),
        ("declarations", "D1", "H1", 1.0, "G1", "c", None), ("declarations", "D2", "H2", 1.0, "G1", "c", None),
        ("declarations", "D3", None, 0.0, None, None, cand), ("declarations", "D4", None, 0.0, None, None, None),
        ("declarations", "D5", "H6", 1.0, "G1", "c", None), ("police_incidents", "P1", "H3", 1.0, "G1", "c", None)])


def _detect(silver, hr):
    """Computed once: the comparisons read it several times (its plan is hundreds of stages)."""
    return detect(prepare(silver, hr, RULES, D), RULES, D, KEY).localCheckpoint()


@pytest.fixture(scope="module")
def lake(spark):
    silver, hr = _silver(spark), _hr(spark)
    return silver, hr, _detect(silver, hr)


# A's older declaration and rental (H1), A's current one (H2), the police record naming A (H3), the candidates of
# the address case (H4 with a rental waiting for it, H5), a tenant without a rental (H6)
@pytest.mark.parametrize("dirty", [["H1"], ["H3"], ["H4", "H6"]])
def test_the_scoped_rules_decide_the_dirty_houses_as_the_whole_evaluation(spark, lake, dirty):
    silver, hr, whole = lake
    houses = spark.createDataFrame([(h,) for h in dirty], "house_code string")
    none = spark.createDataFrame([], "source string, record_id string")
    records = scope_records(houses, hr, delivered_codes(silver, None), silver, None, None, none).localCheckpoint()
    s_r, hr_r, _, _ = restrict(silver, hr, None, None, records, records.count())
    scoped = _detect(s_r, hr_r)
    expected = replaced_units(whole, houses, records)
    assert differences(expected, replaced_units(scoped, houses, records)) == (0, 0)
    # the scope is smaller than everything, and it decides something at the dirty houses
    assert records.count() < 10
    assert expected.where(F.col("house_code").isin(dirty)).count() > 0


def test_without_the_persons_other_declarations_a_house_is_decided_wrongly(spark, lake):
    """The control: cut to the records resolved to H1 only, A's older declaration there looks current, and
    H1's R2 (an active rental, no tenant declared) is lost; the scope adds A's declaration at H2."""
    silver, hr, whole = lake
    houses = spark.createDataFrame([("H1",)], "house_code string")
    naive = hr.where(F.col("house_code") == "H1").select("source", "record_id")
    s_r, hr_r, _, _ = restrict(silver, hr, None, None, naive, 2)
    at_h1 = F.col("rule").isin("R1", "R2", "R3", "R4", "R5")
    expected = replaced_units(whole, houses, naive).where(at_h1)
    assert [r.rule for r in expected.collect()] == ["R2"]
    assert differences(expected, replaced_units(_detect(s_r, hr_r), houses, naive).where(at_h1)) == (1, 0)
    none = spark.createDataFrame([], "source string, record_id string")
    records = scope_records(houses, hr, delivered_codes(silver, None), silver, None, None, none)
    assert {(r.source, r.record_id) for r in records.collect()} >= {("declarations", "D2"), ("police_incidents", "P1")}


def test_the_report_names_the_generated_districts_seed(tmp_path):
    from tools.bench.gold_scope import generated

    assert generated(tmp_path) is None
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "manifest.json").write_text(
        '{"generator": "tools.generate", "seed": 20141, "noise_model": "default", "scale": "district", "files": []}',
        encoding="utf-8")
    assert generated(tmp_path) == {"generator": "tools.generate", "seed": 20141, "noise_model": "default",
                                   "scale": "district"}


def test_the_records_the_writers_recorded_replace_the_comparison_only_when_every_commit_has_one(spark, settings):
    """tools.bench.gold_scope.recorded_keys: the keys the in-process upserts recorded (gridlake.changes) between
    two nights' versions, per part; silver's only when every record source has them for every commit."""
    from gridlake import io
    from tools.bench.gold_scope import SOURCES, recorded_keys

    silver = _silver(spark)
    before, now = {}, {}
    for name in SOURCES:
        io.write_table(silver[name], settings, "silver", name, "overwrite")        # the first night: no record
        before[f"silver.{name}"] = io.table_version(spark, settings, "silver", name)
    night = silver_df(spark, "rentals", [rental("L2", "H4"), rental("L3", "H5")])   # L3 new, L2 as it was
    io.upsert_changed(night, settings, "silver", "rentals", ["rental_id"])
    for name in SOURCES:
        now[f"silver.{name}"] = io.table_version(spark, settings, "silver", name)
    got = recorded_keys(spark, settings, before, now)
    assert {(r.source, r.record_id) for r in got["silver"].collect()} == {("rentals", "L3")}
    assert got["house_resolution"] is None and got["person_resolution"] is None      # not in the versions given

    # a commit without a record (here a whole overwrite) in one source: silver's part is compared instead
    io.write_table(silver["police_incidents"], settings, "silver", "police_incidents", "overwrite")
    now["silver.police_incidents"] = io.table_version(spark, settings, "silver", "police_incidents")
    assert recorded_keys(spark, settings, before, now)["silver"] is None
