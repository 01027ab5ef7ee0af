"""SCD2 for snapshots through Delta MERGE; increments upserted by key, never overwritten by a stale re-send."""

from __future__ import annotations

import datetime as dt

import pytest

from gridlake import io
from tests.integration.test_bronze_helpers import run, write_csv

pytestmark = pytest.mark.spark


def _house(code: str, status: str = "在用", area: str = "50") -> dict[str, str]:
    return {"house_code": code, "grid_id": "G1", "address": f"福华路18号福华花园3栋{code[-1]}01", "status": status,
            "usage": "住宅", "area_m2": area}


def test_housing_scd2_and_rental_upsert(spark, settings):
    write_csv(settings, "housing", "2026-11-01", [_house("H1"), _house("H2"), _house("H3")])
    write_csv(settings, "rentals", "2026-11-01", [
        {"rental_id": "R1", "address": "x", "lease_start": "2026-10-01", "status": "有效",
         "registered_at": "2026-10-01 10:00:00", "tenants_declared": "2"}])
    run(spark, settings, "2026-11-01")
    v1 = io.table_version(spark, settings, "silver", "housing")

    write_csv(settings, "housing", "2026-11-02", [_house("H1"), _house("H2", status="已拆除"), _house("H4")])
    write_csv(settings, "rentals", "2026-11-02", [
        {"rental_id": "R1", "address": "x", "lease_start": "2026-10-01", "status": "已终止",
         "registered_at": "2026-09-01 10:00:00"},  # an older version re-sent late: stale
        {"rental_id": "R2", "address": "y", "lease_start": "2026-11-01", "status": "有效",
         "registered_at": "2026-11-02 09:00:00"}])
    run(spark, settings, "2026-11-02")

    rows = {(r.house_code, str(r.valid_from)): r for r in io.read_table(spark, settings, "silver", "housing").collect()}
    assert sorted(rows) == [("H1", "2026-11-01"), ("H2", "2026-11-01"), ("H2", "2026-11-02"), ("H3", "2026-11-01"),
                            ("H4", "2026-11-02")]
    h1 = rows["H1", "2026-11-01"]
    assert h1.is_current and h1.valid_to is None  # unchanged: untouched
    assert rows["H2", "2026-11-01"].valid_to == dt.date(2026, 11, 2) and not rows["H2", "2026-11-01"].is_current
    assert rows["H2", "2026-11-02"].status == "demolished" and rows["H2", "2026-11-02"].is_current
    assert rows["H3", "2026-11-01"].valid_to == dt.date(2026, 11, 2) and not rows["H3", "2026-11-01"].is_current
    assert rows["H4", "2026-11-02"].is_current
    assert io.table_version(spark, settings, "silver", "housing") == v1 + 1  # one MERGE

    rentals = {r.rental_id: r for r in io.read_table(spark, settings, "silver", "rentals").collect()}
    assert rentals["R1"].status == "active" and rentals["R2"].status == "active"
    stale = io.read_table(spark, settings, "silver", "_duplicates").where("business_key = 'R1'").first()
    assert stale.reason_code == "DUPLICATE_STALE"

    # The same snapshot again on a later night: nothing changes, no commit.
    write_csv(settings, "housing", "2026-11-03", [_house("H1", area="50.0"), _house("H2", status="已拆除"),
                                                  _house("H4")], name="again.csv")  # new bytes, same values
    before = io.table_version(spark, settings, "silver", "housing")
    run(spark, settings, "2026-11-03")
    assert io.table_version(spark, settings, "silver", "housing") == before
