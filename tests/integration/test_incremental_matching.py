"""Incremental address resolution equals a full re-link with the same model (tiny inline frames)."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

pytestmark = pytest.mark.spark

FUHUA = "沙头街道新华社区福华路18号福华花园"
JINXIU = "沙头街道新华社区金秀路7号金秀大厦"


def _houses(spark, rows):
    from matching.spark import address_columns

    return (spark.createDataFrame(rows, "house_code string, address_raw string, status string, grid_id string")
            .withColumn("is_current", F.lit(True)).withColumn("community", F.lit("新华社区"))
            .withColumn("_a", address_columns(F.col("address_raw"))).select("*", "_a.address_norm", "_a.addr")
            .drop("_a"))


def _records(spark, rows):
    from jobs.matching.runner import records_from_silver
    from matching.spark import address_columns

    df = (spark.createDataFrame(rows, "declaration_id string, house_code string, address_raw string")
          .withColumn("_a", address_columns(F.col("address_raw"))).select("*", "_a.address_norm", "_a.addr"))
    return records_from_silver({"declarations": df})


BEFORE = [("H1", f"{FUHUA}3栋501", "in_use", "G1"), ("H2", f"{FUHUA}3栋502", "in_use", "G1"),
          ("H3", f"{FUHUA}5栋301", "in_use", "G1"), ("H4", f"{FUHUA}5栋302", "in_use", "G1"),
          ("J1", f"{JINXIU}2栋1101", "in_use", "G2"), ("J2", f"{JINXIU}2栋1102", "in_use", "G2"),
          ("J3", f"{JINXIU}6栋201", "in_use", "G2")]
# night 2: H4 demolished, J2 moved to another grid, H5 (3栋503) built
AFTER = [r if r[0] not in ("H4", "J2") else (r[0], r[1], "demolished" if r[0] == "H4" else r[2],
                                             "G3" if r[0] == "J2" else r[3]) for r in BEFORE]
AFTER.append(("H5", f"{FUHUA}3栋503", "in_use", "G1"))

NIGHT1 = [("D1", None, "福华花园3栋501"), ("D2", None, "福华花园3栋503"),   # 503: not yet in the registry
          ("D3", None, "福华花园5栋302"), ("D4", "J2", "金秀大厦2栋1102"),
          ("D5", None, "金秀大厦6栋201"), ("D6", None, "金秀大厦2栋1101")]
NIGHT2 = [*[r for r in NIGHT1 if r[0] != "D6"], ("D6", None, "金秀大厦6栋201"),  # D6 corrected by its office
          ("D7", None, "福华花园5栋301")]                                         # a new declaration


def test_incremental_night_equals_full_relink_with_the_same_model(spark):
    from jobs.matching.runner import (
        KEYS,
        candidate_houses,
        changed_house_codes,
        records_to_relink,
        resolve,
    )
    from matching.scoring import initial_model
    from matching.spec import load_spec

    spec = load_spec("address_to_house")
    spec = spec.model_copy(update={"decision": spec.decision.model_copy(update={"min_weight": 2.0, "min_gap": 1.0})})
    model = initial_model(spec)
    before, after = candidate_houses(_houses(spark, BEFORE)), candidate_houses(_houses(spark, AFTER))
    night1, _ = resolve(_records(spark, NIGHT1), before, spec, model)
    night1 = night1.localCheckpoint()
    records2 = _records(spark, NIGHT2)

    changed = changed_house_codes(before, after)
    assert sorted(r.house_code for r in changed.collect()) == ["H4", "H5", "J2"]
    todo = records_to_relink(records2, night1, before, after, changed, spec)
    relinked = sorted(r.record_id for r in todo.collect())
    # D2 (its room now exists), D3 (its house demolished), D4 (points at J2), D6 (corrected), D7 (new);
    # D5 shares no blocking key with a changed house, so it keeps its first-night resolution
    assert {"D2", "D3", "D4", "D6", "D7"} <= set(relinked)
    assert "D5" not in relinked

    fresh, _ = resolve(records2.join(todo, KEYS, "left_semi"), after, spec, model, few_records=True)
    incremental = night1.join(todo, KEYS, "left_anti").unionByName(fresh)
    full, _ = resolve(records2, after, spec, model)
    assertDataFrameEqual(incremental, full)

    by_id = {r.record_id: r for r in full.collect()}
    assert by_id["D2"].house_code == "H5"          # linked once the house is registered
    assert by_id["D3"].house_code is None          # demolished: no longer a candidate
    assert by_id["D4"].grid_id == "G3"             # follows its house to the new grid
    assert by_id["D6"].house_code == "J3"


def test_saved_model_round_trips_exactly():
    from matching.scoring import FSModel, initial_model
    from matching.spec import load_spec

    spec = load_spec("address_to_house")
    model = initial_model(spec)
    model.m["street"] = [1.0, 0.123456789012345678, 0.876543210987654321]
    again = FSModel.from_state(model.to_state(), spec)
    assert again.m == model.m and again.u == model.u and again.lam == model.lam
    assert again.to_state() == model.to_state()
    other = spec.model_copy(update={"comparisons": spec.comparisons[1:]})
    with pytest.raises(ValueError, match="does not fit"):
        FSModel.from_state(model.to_state(), other.model_copy(update={"comparisons": (
            spec.comparisons[0].model_copy(update={"levels": spec.comparisons[0].levels[:2]}), *other.comparisons)}))


# records around a lane (城中村 坊巷) and a complex, some sharing a plain component with a changed house only
VILLAGE = "沙头街道新华社区上沙村"
LANES_BEFORE = [("V1", f"{VILLAGE}东一坊12号301", "in_use", "G4"), ("V2", f"{VILLAGE}东二坊5号201", "in_use", "G4")]
LANES_AFTER = [("V1", f"{VILLAGE}东一坊12号301", "in_use", "G5"), ("V2", f"{VILLAGE}东二坊5号201", "in_use", "G4"),
               ("V3", f"{VILLAGE}东一坊14号301", "in_use", "G4")]
MANY = [*NIGHT2, ("E1", None, "上沙村东一坊12号301"), ("E2", None, "上沙东一坊12号301房"), ("E3", None, "东1坊12号301"),
        ("E4", None, "上沙村东一坊12号302"), ("E5", None, "上沙村东二坊12号301"), ("E6", None, "福华花园12栋301"),
        ("E7", None, "金秀大厦3栋503"), ("E8", None, "福华花园3栋502"), ("E9", None, "上沙村东一坊14号301")]


def test_narrowing_the_records_by_the_changed_houses_values_changes_no_answer(spark):
    """records_to_relink narrows the records by the plain components of the changed houses before
    affected_left computes their keys: the same records as over every record, and it does narrow."""
    from jobs.matching.runner import _side, candidate_houses, changed_house_codes
    from matching.narrowing import narrow, narrowing_condition
    from matching.spark import affected_left
    from matching.spec import load_spec

    spec = load_spec("address_to_house")
    before = candidate_houses(_houses(spark, BEFORE + LANES_BEFORE))
    after = candidate_houses(_houses(spark, AFTER + LANES_AFTER))
    changed = changed_house_codes(before, after)
    versions = before.join(changed, "house_code", "left_semi").unionByName(after.join(changed, "house_code", "left_semi"))
    records = _records(spark, MANY).withColumn("_id", F.concat_ws("|", "source", "record_id"))
    left, right = _side(records, F.col("_id")), _side(versions, F.col("house_code"))

    whole = sorted(r._id for r in affected_left(left, right, spec).collect())
    narrowed = sorted(r._id for r in affected_left(*narrow(left, right, spec), spec).collect())
    assert narrowed == whole
    assert {"declarations|E1", "declarations|E9", "declarations|D2"} <= set(whole)
    assert "declarations|D5" not in whole

    rules = list(spec.blocking) + list(spec.blocking_fallback or ())
    condition = narrowing_condition(right.collect(), rules, spec)
    assert condition is not None
    kept = {r._id for r in left.where(condition).collect()}
    assert set(whole) <= kept < {r._id for r in left.collect()}
    assert "declarations|D5" not in kept and "declarations|E6" not in kept


def test_record_changes_names_new_changed_and_gone_records_in_one_pass(spark):
    """What the two anti joins named (fresh: no resolution with the same key and input hash; gone: a
    resolution without its record), from one join: a missing hash never counts as the same."""
    from jobs.matching.runner import FRESH, record_changes

    schema = "source string, record_id string, input_hash long"
    records = spark.createDataFrame([("declarations", "A", 1), ("declarations", "B", 2), ("rentals", "A", 3),
                                     ("declarations", "C", 4), ("declarations", "E", 5)], schema)
    previous = spark.createDataFrame([("declarations", "A", 1), ("declarations", "B", 20), ("rentals", "A", None),
                                      ("declarations", "D", 7), ("rentals", "E", 5)], schema)
    got = {(r.source, r.record_id): r.change for r in record_changes(records, previous).collect()}
    assert got == {("declarations", "B"): "changed", ("rentals", "A"): "changed", ("declarations", "C"): "new",
                   ("declarations", "E"): "new", ("declarations", "D"): "gone", ("rentals", "E"): "gone"}
    fresh = records.join(previous, ["source", "record_id", "input_hash"], "left_anti").select("source", "record_id")
    assert sorted(k for k, v in got.items() if v in FRESH) == sorted((r.source, r.record_id) for r in fresh.collect())
    gone = previous.join(records, ["source", "record_id"], "left_anti")
    assert sorted(k for k, v in got.items() if v == "gone") == sorted((r.source, r.record_id) for r in gone.collect())


def _registry_house(code: str, building: str, status: str = "在用", area: str = "50") -> dict[str, str]:
    return {"house_code": code, "grid_id": "G1", "address": f"福华路18号福华花园{building}", "status": status,
            "usage": "住宅", "area_m2": area}


def test_houses_changed_read_from_the_registry_change_feed_are_those_of_the_versions_compared(spark, settings):
    """The houses a night changed, from silver.housing's change data feed, are the codes found by comparing the
    two versions whole; where the feed does not cover the commits (recorded later) both versions are compared."""
    from types import SimpleNamespace

    from gridlake import io
    from gridlake.lifecycle.delta_ops import table_properties
    from jobs.matching.runner import candidate_houses, changed_house_codes, houses_changed_since
    from tests.integration.test_bronze_helpers import run, write_csv

    def houses_at(version):
        return candidate_houses(io.read_table(spark, settings, "silver", "housing", version=version))

    def whole(since, until):
        return sorted(r.house_code for r in changed_house_codes(houses_at(since), houses_at(until)).collect())

    ctx = SimpleNamespace(spark=spark, settings=settings)
    night1 = [_registry_house("H1", "3栋101"), _registry_house("H2", "3栋201"), _registry_house("H3", "3栋301"),
              _registry_house("H4", "5栋101"), _registry_house("H6", "5栋201")]
    write_csv(settings, "housing", "2026-11-01", night1)
    run(spark, settings, "2026-11-01")
    assert table_properties(spark, settings, "silver", "housing").get("delta.enableChangeDataFeed") == "true"
    v1 = io.table_version(spark, settings, "silver", "housing")

    # H1's area changed (not a candidate's matching value: in the feed, not changed), H2 demolished, H3's
    # address altered, H4 no longer delivered, H5 new; H6 untouched
    write_csv(settings, "housing", "2026-11-02", [
        _registry_house("H1", "3栋101", area="55"), _registry_house("H2", "3栋201", status="已拆除"),
        _registry_house("H3", "3栋302"), _registry_house("H5", "5栋301"), _registry_house("H6", "5栋201")])
    run(spark, settings, "2026-11-02")
    v2 = io.table_version(spark, settings, "silver", "housing")
    assert v2 == v1 + 1
    touched = io.changed_keys(spark, settings, "silver", "housing", v1, v2, ["house_code"])
    assert sorted(r.house_code for r in touched.collect()) == ["H1", "H2", "H3", "H4", "H5"]
    before, changed, how = houses_changed_since(ctx, v1, v2, houses_at(v2))
    assert how == "change feed"
    assert sorted(r.house_code for r in changed.collect()) == whole(v1, v2) == ["H2", "H3", "H4", "H5"]
    assert sorted(r.house_code for r in before.collect()) == ["H1", "H2", "H3", "H4"]  # H6 not read
    assert io.changed_keys(spark, settings, "silver", "housing", v2, v2, ["house_code"]).count() == 0

    # a lake whose registry did not record the feed: the next MERGE records it from then on; a range
    # reaching back before it is compared whole
    spark.sql(f"ALTER TABLE delta.`{settings.table_path('silver', 'housing')}` "
              "SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'false')")
    write_csv(settings, "housing", "2026-11-03", [
        _registry_house("H1", "3栋101", area="55"), _registry_house("H3", "3栋302"),
        _registry_house("H5", "5栋302"), _registry_house("H6", "5栋201")])
    run(spark, settings, "2026-11-03")
    v3 = io.table_version(spark, settings, "silver", "housing")
    assert v3 == v2 + 3  # feed off, feed on again, the MERGE
    assert table_properties(spark, settings, "silver", "housing").get("delta.enableChangeDataFeed") == "true"
    assert io.changed_keys(spark, settings, "silver", "housing", v2, v3, ["house_code"]) is None
    _, changed, how = houses_changed_since(ctx, v2, v3, houses_at(v3))
    assert how == "versions compared"
    # H5 altered; H2, demolished, is no longer delivered: closed, but a candidate in neither version
    assert sorted(r.house_code for r in changed.collect()) == whole(v2, v3) == ["H5"]
    _, changed, how = houses_changed_since(ctx, v2 + 1, v3, houses_at(v3))  # from the feed's new start
    assert how == "change feed"
    assert sorted(r.house_code for r in changed.collect()) == whole(v2 + 1, v3) == ["H5"]
