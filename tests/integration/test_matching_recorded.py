"""Matching's incremental night compares only the records silver's commits recorded (jobs.matching.recorded), and
resolves exactly as when it compares every record."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from gridlake import io
from tests.integration.test_bronze_helpers import VALID_ID, run, write_csv

pytestmark = pytest.mark.spark

BAD_SUM = "110105194912310025"   # VALID_ID with a wrong check digit: kept in the quarantine, still resolved
ROAD = "福华路18号福华花园"


def _house(code: str, room: str) -> dict[str, str]:
    return {"house_code": code, "grid_id": "G1", "address": f"{ROAD}{room}", "status": "在用", "usage": "住宅",
            "area_m2": "50"}


def _decl(i: str, room: str, day: str, id_number: str = VALID_ID) -> dict[str, str]:
    return {"declaration_id": i, "id_number": id_number, "name": "张三", "phone": "138 0013 8000",
            "address": f"{ROAD}{room}", "relation": "租户", "declared_at": f"{day} 08:00:00", "channel": "微信"}


def _rental(i: str, code: str, room: str, day: str) -> dict[str, str]:
    return {"rental_id": i, "house_code": code, "address": f"{ROAD}{room}", "lease_start": "2026-10-01",
            "status": "有效", "registered_at": f"{day} 09:00:00", "tenants_declared": "2"}


def _matching(manifest) -> dict:
    return json.loads(manifest.path.read_text(encoding="utf-8"))["stages"]["matching"]


def _resolutions(spark, settings) -> list[tuple]:
    df = io.read_table(spark, settings, "gold", "house_resolution")
    return sorted(tuple(r) for r in df.select("source", "record_id", "house_code", "method", "input_hash").collect())


def test_changes_from_the_recorded_keys_resolve_as_every_record_compared(spark, settings, tmp_path):
    from gridlake.config import load_settings

    houses = [_house(f"H{i}", room) for i, room in enumerate(["3栋101", "3栋201", "3栋301", "5栋101", "5栋201"], 1)]
    day1 = "2026-11-01"
    write_csv(settings, "housing", day1, houses)
    write_csv(settings, "declarations", day1, [_decl("D1", "3栋101", day1), _decl("D2", "3栋201", day1),
                                                _decl("D3", "5栋101", day1), _decl("D4", "3栋301", day1, BAD_SUM)])
    write_csv(settings, "rentals", day1, [_rental("R1", "H1", "3栋101", day1), _rental("R2", "H2", "3栋201", day1)])
    first = _matching(run(spark, settings, day1, ["bronze", "silver", "matching"]))
    assert first["mode"] == "full"

    # night 2: D2 corrected to another room, D5 new, D6 new and failing its checksum; D1, D3, D4 not delivered
    day2 = "2026-11-02"
    write_csv(settings, "housing", day2, houses)
    write_csv(settings, "declarations", day2, [_decl("D2", "5栋201", day2), _decl("D5", "3栋301", day2),
                                                _decl("D6", "5栋101", day2, BAD_SUM)])
    write_csv(settings, "rentals", day2, [_rental("R2", "H5", "5栋201", day2)])   # R2 registered again elsewhere
    run(spark, settings, day2, ["bronze", "silver"])
    # the same lake with silver's records of its commits gone: every record is compared there
    shutil.copytree(settings.data_root, tmp_path / "unrecorded")
    unrecorded = load_settings("local", data_root=tmp_path / "unrecorded")
    shutil.rmtree(tmp_path / "unrecorded" / "lake" / "_changes" / "silver.declarations")

    got = _matching(run(spark, settings, day2, ["matching"]))
    whole = _matching(run(spark, unrecorded, day2, ["matching"]))
    assert got["mode"] == whole["mode"] == "incremental"
    assert got["record_changes_from"] == "recorded keys" and got["record_changes_seconds"] >= 0
    assert whole["record_changes_from"] == "every record compared"
    # the recorded D2, D5 and R2, and the checksum-failed D4 and D6: not D1, D3 or R1
    assert got["record_change_candidates"] == 5
    assert got["relinked"] == whole["relinked"] >= 3
    assert _resolutions(spark, settings) == _resolutions(spark, unrecorded)
    resolved = {r[1]: r[2] for r in _resolutions(spark, settings)}
    assert resolved["R1"] == "H1" and resolved["R2"] == "H5"   # their delivered codes, verified by the address


def test_candidates_fail_closed_when_the_records_and_resolutions_outside_them_differ(spark):
    from jobs.matching import recorded

    ctx = SimpleNamespace(spark=spark, settings=None)
    keys = "source string, record_id string"
    records = spark.createDataFrame([("rentals", "R1"), ("rentals", "R2"), ("rentals", "R3")], keys)
    previous = (spark.createDataFrame([("rentals", "R1"), ("rentals", "R2"), ("rentals", "R3"), ("rentals", "R9")],
                                      keys).withColumn("method", F.lit("exact_address")))
    none = spark.createDataFrame([], keys)
    # R9 resolved the last night, named by no recorded commit and no longer a record: the counts say so
    assert recorded.candidates(ctx, records, previous, 4, none, None, "alias") is None
    # recorded as deleted, it is a candidate, and the rest balance
    r9 = spark.createDataFrame([("rentals", "R9")], keys)
    got = recorded.candidates(ctx, records, previous, 4, r9, None, "alias")
    assert [tuple(r) for r in got.collect()] == [("rentals", "R9")]
    # a resolution made by an alias is always a candidate
    aliased = previous.withColumn("method", F.when(F.col("record_id") == "R1", "alias").otherwise(F.col("method")))
    got = recorded.candidates(ctx, records, aliased, 4, r9, None, "alias")
    assert sorted(tuple(r) for r in got.collect()) == [("rentals", "R1"), ("rentals", "R9")]
    # no records of the commits: nothing to narrow by
    assert recorded.candidates(ctx, records, previous, 4, None, None, "alias") is None


def test_versions_round_trip_and_an_unreadable_state_reads_as_none():
    from jobs.matching.recorded import decode_versions, encode_versions

    assert decode_versions(encode_versions({"rentals": 3, "declarations": 7})) == {"declarations": 7, "rentals": 3}
    assert decode_versions(None) is None
    assert decode_versions("{not json") is None
    assert decode_versions('{"rentals": "3"}') is None
