"""Bronze -> silver: each quarantine reason from a tiny inline delivery; dedup; enforcement IDs; conservation."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from gridlake import io
from tests.integration.test_bronze_helpers import VALID_ID, run, write_csv

pytestmark = pytest.mark.spark

DAY = "2026-11-01"
OLD15 = "110105491231002"  # legacy 15-digit form of VALID_ID
BAD_SUM = "110105194912310025"


def _decl(i: str, **kw) -> dict[str, str]:
    row = {"declaration_id": i, "id_number": VALID_ID, "name": "张三", "phone": "138 0013 8000",
           "address": "上沙村东村二坊12号602", "relation": "租户", "declared_at": "2026-11-01 08:00:00", "channel": "微信"}
    row.update(kw)
    return row


def test_every_reason_code_and_conservation(spark, settings):
    path = write_csv(settings, "declarations", DAY, [
        _decl("D1"),                                             # valid
        _decl("D2", id_number=BAD_SUM),                          # ID_CHECKSUM
        _decl("D3", id_number="4403ABC"),                        # ID_FORMAT
        _decl("D4", declared_at="2026-13-45"),                   # BAD_DATE_IMPOSSIBLE
        _decl("D5", relation="房东的朋友"),                      # UNKNOWN_VOCAB
        _decl("D6", household_size="13800138000"),               # OUT_OF_RANGE (an 11-digit number, no cast error)
        _decl("D7", address=""),                                 # MISSING_REQUIRED
        _decl("D8", id_number=OLD15, declared_at="2026年11月1日"),  # valid, 15 -> 18
        _decl("D8", id_number=OLD15, declared_at="2026年11月1日"),  # DUPLICATE_EXACT
        _decl("D9", declared_at="2026-11-01 07:00:00", name="旧"),  # DUPLICATE_SUPERSEDED
        _decl("D9", declared_at="2026-11-01 09:00:00", name="新"),  # kept
        _decl("D10", name="甲"),                                 # the same timestamp ...
        _decl("D10", name="乙"),                                 # ... different content: the later row kept,
                                                                 # the other DUPLICATE_KEY_CONFLICT
    ])
    path.write_bytes(path.read_bytes() + b"D11,too,few\n")     # MALFORMED_ROW
    write_csv(settings, "police_incidents", DAY, [
        {"incident_id": "P1", "reported_at": "20261101 221000", "address": "上沙村东村二坊12号",
         "person_ids": f"{VALID_ID}；{BAD_SUM} 12345"},
    ])

    manifest = run(spark, settings, DAY)

    def local_ts(df, col):  # session time zone (Asia/Shanghai), not the Python process's
        return df.withColumn(col, F.date_format(col, "yyyy-MM-dd HH:mm:ss"))

    silver = {r.declaration_id: r for r in
              local_ts(io.read_table(spark, settings, "silver", "declarations"), "declared_at").collect()}
    assert sorted(silver) == ["D1", "D10", "D8", "D9"]
    assert silver["D8"].id_number == VALID_ID and silver["D8"].id_legacy15 is True
    assert str(silver["D8"].declared_at) == "2026-11-01 00:00:00"
    assert silver["D9"].name == "新"
    assert silver["D1"].phone == "13800138000" and silver["D1"].relation == "tenant" and silver["D1"].channel == "wechat"
    assert silver["D1"].addr is not None and silver["D1"].address_norm

    q = {r.business_key: r.reason_code for r in io.read_table(spark, settings, "silver", "_quarantine").collect()}
    assert q == {"D2": "ID_CHECKSUM", "D3": "ID_FORMAT", "D4": "BAD_DATE_IMPOSSIBLE", "D5": "UNKNOWN_VOCAB",
                 "D6": "OUT_OF_RANGE",
                 "D7": "MISSING_REQUIRED", "D10": "DUPLICATE_KEY_CONFLICT", None: "MALFORMED_ROW"}
    malformed = io.read_table(spark, settings, "silver", "_quarantine").where("reason_code = 'MALFORMED_ROW'").first()
    assert malformed._raw_line == "D11,too,few" and malformed._row_number == 14
    dups = sorted((r.business_key, r.reason_code) for r in io.read_table(spark, settings, "silver", "_duplicates").collect())
    assert dups == [("D8", "DUPLICATE_EXACT"), ("D9", "DUPLICATE_SUPERSEDED")]
    # every row set aside carries its own delivered values: typing writes those of the rows it quarantines,
    # the rows deduplication sets aside get theirs from their bronze rows
    quarantined = {r.business_key: json.loads(r._raw_line) for r in
                   io.read_table(spark, settings, "silver", "_quarantine").where("reason_code != 'MALFORMED_ROW'").collect()}
    assert quarantined["D2"]["id_number"] == BAD_SUM and quarantined["D7"].get("address") in ("", None)
    assert quarantined["D10"]["name"] == "甲"                   # the conflict is the earlier row, not the kept one
    aside = {r.business_key: (r._row_number, json.loads(r._raw_line)) for r in
             io.read_table(spark, settings, "silver", "_duplicates").collect()}
    assert aside["D9"][0] == 10 and aside["D9"][1]["name"] == "旧"
    assert aside["D9"][1]["declared_at"] == "2026-11-01 07:00:00"
    assert aside["D8"][0] == 8
    assert all(aside["D8"][1][k] == v for k, v in _decl("D8", id_number=OLD15, declared_at="2026年11月1日").items())

    police = local_ts(io.read_table(spark, settings, "silver", "police_incidents"), "reported_at").first()
    assert police.person_ids == VALID_ID and police.invalid_person_ids == 2
    assert str(police.reported_at) == "2026-11-01 22:10:00"

    cons = {r.source: r for r in io.read_table(spark, settings, "silver", "_conservation").collect()}
    d = cons["declarations"]
    assert (d.bronze_rows, d.silver_rows, d.quarantine_rows, d.duplicate_rows) == (14, 4, 8, 2) and d.balanced
    assert manifest.doc["conservation"]["run"]["balanced"] is True
    assert manifest.doc["stages"]["silver"]["reasons"]["ID_CHECKSUM"] == 1

    # A rerun of the night changes nothing in any silver table.
    tables = ["declarations", "police_incidents", "_quarantine", "_duplicates", "_checksum_failed", "_conservation"]
    before = {t: io.table_version(spark, settings, "silver", t) for t in tables}
    run(spark, settings, DAY)
    assert {t: io.table_version(spark, settings, "silver", t) for t in tables} == before


def _typed(df) -> list[dict]:
    return sorted((r.asDict(recursive=True) for r in df.collect()), key=lambda r: (r["declaration_id"], r["_row_number"]))


def test_declarations_failing_only_their_checksum_are_kept_typed_as_the_quarantine_would_type_them(spark, settings):
    """silver._checksum_failed holds, typed, exactly the rows checksum_failed() types again from the quarantine:
    appended night by night, unchanged by a rerun, and built from the quarantine on a lake that lacks it."""
    import shutil

    from jobs.silver.declarations import checksum_failed, checksum_failed_rows

    def retyped():
        return checksum_failed(io.read_table(spark, settings, "silver", "_quarantine"))

    write_csv(settings, "declarations", DAY, [_decl("D1"), _decl("D2", id_number=BAD_SUM),
                                               _decl("D3", id_number="4403ABC"),
                                               _decl("D4", id_number=BAD_SUM, declared_at="2026-13-45")])
    run(spark, settings, DAY)
    kept = io.read_table(spark, settings, "silver", "_checksum_failed")
    rows = _typed(kept)
    # D3 (format) and D4 (checksum and a bad date) are quarantined for more than the checksum
    assert [(r["declaration_id"], r["id_number"], r["id_text"]) for r in rows] == [("D2", None, BAD_SUM)]
    assert rows[0]["address_norm"] and rows[0]["addr"]["room"] and rows[0]["relation"] == "tenant"
    assert rows == _typed(retyped())
    version = io.table_version(spark, settings, "silver", "_checksum_failed")
    run(spark, settings, DAY)
    assert io.table_version(spark, settings, "silver", "_checksum_failed") == version

    day2 = "2026-11-02"
    write_csv(settings, "declarations", day2, [_decl("D5", id_number=BAD_SUM, name="李四", declared_at="2026-11-02 08:00:00")])
    run(spark, settings, day2)
    rows = _typed(io.read_table(spark, settings, "silver", "_checksum_failed"))
    assert [r["declaration_id"] for r in rows] == ["D2", "D5"] and rows == _typed(retyped())

    # a lake from before the table: the next silver run builds it from the quarantine, with no checksum failure
    # delivered that night; until then the readers type the quarantine's rows again
    shutil.rmtree(settings.table_path("silver", "_checksum_failed"))
    assert _typed(checksum_failed_rows(spark, settings)) == rows
    day3 = "2026-11-03"
    write_csv(settings, "declarations", day3, [_decl("D6", declared_at="2026-11-03 08:00:00")])
    run(spark, settings, day3)
    assert _typed(io.read_table(spark, settings, "silver", "_checksum_failed")) == rows == _typed(retyped())


def test_unbalanced_counts_fail_loudly(spark, settings, monkeypatch):
    from gridlake.errors import ConservationError
    from jobs.silver import verifications

    write_csv(settings, "verifications", DAY, [
        {"verification_id": "V1", "discrepancy_id": "Q1", "checked_at": "2026-11-01", "outcome": "属实"}])
    run(spark, settings, DAY, ["bronze"])
    original = verifications.transform
    monkeypatch.setattr(verifications, "transform", lambda df, src=None, **kw: original(df, src, **kw).where(F.lit(False)))
    with pytest.raises(ConservationError, match="verifications.*bronze 1 != silver 0"):
        run(spark, settings, DAY, ["silver"])
    assert not io.table_exists(spark, settings, "silver", "_conservation")
