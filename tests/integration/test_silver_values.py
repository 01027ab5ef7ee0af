"""Silver typing of values written another way, the hostile silver cases of issue 17, and the delivery report.

One tiny night (bronze + silver) with declarations, housing, rentals and police rows: right values
written another way load; wrong ones are quarantined with the reason that says which; every file
balances; no reason text carries a value; the delivery report shows forms and unknown values, never
a personal value.
"""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from gridlake import io
from gridlake.report import delivery
from tests.integration.test_bronze_helpers import VALID_ID, run, write_csv

pytestmark = pytest.mark.spark

DAY = "2026-11-01"
PHONE = "13800138000"
OLD15 = "110105491231002"


def _decl(i: str, **kw) -> dict[str, str]:
    row = {"declaration_id": i, "id_number": VALID_ID, "name": "张三", "phone": f"+86 {PHONE}",
           "address": "上沙村东村二坊12号602", "relation": "租户", "declared_at": "2026-11-01 08:00:00", "channel": "微信",
           "household_size": "2"}
    row.update(kw)
    return row


def _house(code: str, **kw) -> dict[str, str]:
    row = {"house_code": code, "grid_id": "G1", "address": "上沙村东村二坊12号602", "status": "在用",
           "usage": "住宅", "area_m2": "85.5", "updated_at": "2026-10-30"}
    row.update(kw)
    return row


def test_values_written_another_way_and_hostile_values(spark, settings):
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"  # a failed cast would raise quoting the value
    write_csv(settings, "declarations", DAY, [
        _decl("V1", declared_at="2026/11/1 下午2:05", relation="承租人", channel="小程序", household_size="3人"),
        _decl("V2", declared_at="2026-11-02 09:00"),                  # dated tomorrow: DATE_IN_FUTURE
        _decl("V3", declared_at="0001-01-01"),                        # DATE_OUT_OF_RANGE
        _decl("V4", declared_at="9999-12-31 00:00:00"),               # DATE_OUT_OF_RANGE
        _decl("V5", household_size=PHONE),                            # 11 digits in an integer column
        _decl("V6", household_size="-2"),                             # OUT_OF_RANGE
        _decl("V7", relation="房东的朋友"),                            # UNKNOWN_VOCAB
        _decl("V8", declared_at="03/11/2026"),                        # BAD_DATE_AMBIGUOUS
        _decl("V9", name="甲"), _decl("V9", name="乙"),               # one key, conflicting content
        _decl("V10", declared_at="2026-11-01T06:00:00Z", relation="家属", channel="ＡＰＰ"),
        _decl("V11", declared_at="46327.25", household_size="两人", move_in_date="二〇二六年十月三日"),
        _decl("V12", declared_at="2026年11月1日 9时05分", id_number=OLD15, relation="本人", channel="扫二维码"),
        _decl("V13", relation="张三"),                                # a person's name in a vocabulary column
    ])
    write_csv(settings, "housing", DAY, [
        _house("H1", usage="农民房", area_m2="85.5平"),
        _house("H2", usage="商业用房", area_m2="1,234.5㎡"),
        _house("H3", area_m2="-5"),                                   # negative area
        _house("H4", area_m2="99999平方米"),                          # absurd area
        _house("H5", updated_at="20261101"),
    ])
    write_csv(settings, "rentals", DAY, [
        {"rental_id": "R1", "address": "福田区福华路18号", "lease_start": "2026.10.1", "status": "在租",
         "tenants_declared": "三人", "registered_at": "2026-10-01 10:00"},
        {"rental_id": "R2", "address": "福田区福华路18号", "lease_start": "2026-10-01", "status": "有效",
         "tenants_declared": "500", "registered_at": "2026-10-01 10:00"},  # absurd tenant count
    ])
    write_csv(settings, "police_incidents", DAY, [
        {"incident_id": "P1", "reported_at": "2026/11/1 上午9:30", "address": "福田区福华路18号",
         "person_ids": f"{VALID_ID}/{OLD15}\n4403"},
    ])

    manifest = run(spark, settings, DAY)

    cons = {r.source: r for r in io.read_table(spark, settings, "silver", "_conservation").collect()}
    assert all(r.balanced and r.bronze_rows == r.silver_rows + r.quarantine_rows + r.duplicate_rows
               for r in cons.values())
    assert (cons["declarations"].bronze_rows, cons["declarations"].silver_rows) == (14, 5)

    quarantine = io.read_table(spark, settings, "silver", "_quarantine").collect()
    q = {(r.source, r.business_key): r.reason_code for r in quarantine}
    assert q == {
        ("declarations", "V2"): "DATE_IN_FUTURE", ("declarations", "V3"): "DATE_OUT_OF_RANGE",
        ("declarations", "V4"): "DATE_OUT_OF_RANGE", ("declarations", "V5"): "OUT_OF_RANGE",
        ("declarations", "V6"): "OUT_OF_RANGE", ("declarations", "V7"): "UNKNOWN_VOCAB",
        ("declarations", "V13"): "UNKNOWN_VOCAB",
        ("declarations", "V8"): "BAD_DATE_AMBIGUOUS", ("declarations", "V9"): "DUPLICATE_KEY_CONFLICT",
        ("housing", "H3"): "OUT_OF_RANGE", ("housing", "H4"): "OUT_OF_RANGE", ("rentals", "R2"): "OUT_OF_RANGE",
    }
    details = {(r.source, r.business_key): r.reason_detail for r in quarantine}
    assert details[("declarations", "V7")] == "UNKNOWN_VOCAB: relation"
    assert details[("declarations", "V5")] == "OUT_OF_RANGE: household_size"
    for text in details.values():  # no delivered value in any reason text
        for value in (VALID_ID, PHONE, "房东的朋友", "0001", "9999", "03/11/2026", "99999", "-5", "500", "张三"):
            assert value not in text

    def local(df, col):
        return df.withColumn(col, F.date_format(col, "yyyy-MM-dd HH:mm:ss"))

    d = {r.declaration_id: r for r in local(io.read_table(spark, settings, "silver", "declarations"),
                                            "declared_at").collect()}
    assert sorted(d) == ["V1", "V10", "V11", "V12", "V9"]
    assert (d["V1"].declared_at, d["V1"].relation, d["V1"].channel, d["V1"].household_size) == (
        "2026-11-01 14:05:00", "tenant", "wechat", 3)
    assert (d["V10"].declared_at, d["V10"].relation, d["V10"].channel) == ("2026-11-01 14:00:00", "member", "app")
    assert (d["V11"].declared_at, d["V11"].household_size, str(d["V11"].move_in_date)) == (
        "2026-11-01 06:00:00", 2, "2026-10-03")
    assert (d["V12"].declared_at, d["V12"].relation, d["V12"].channel) == ("2026-11-01 09:05:00", "owner", "qr_code")
    assert d["V1"].phone == PHONE

    h = {r.house_code: r for r in io.read_table(spark, settings, "silver", "housing").collect()}
    assert (h["H1"].usage, h["H1"].area_m2, h["H2"].usage, h["H2"].area_m2) == (
        "village_self_built", 85.5, "commercial", 1234.5)
    assert str(h["H5"].updated_at) == "2026-11-01"
    r1 = io.read_table(spark, settings, "silver", "rentals").where("rental_id = 'R1'").first()
    assert (r1.tenants_declared, r1.status, str(r1.lease_start)) == (3, "active", "2026-10-01")
    p1 = io.read_table(spark, settings, "silver", "police_incidents").first()
    assert p1.person_ids == VALID_ID and p1.invalid_person_ids == 1  # the 15-digit form is the same person

    profile = {(r.source, r.column, r.kind, r.value): r.rows
               for r in io.read_table(spark, settings, "silver", "_value_profile").collect()}
    assert profile[("declarations", "declared_at", "date_form", "YYYY/MM/D 下午H:mm")] == 1
    assert profile[("declarations", "declared_at", "date_form", "EXCEL_SERIAL.f")] == 1
    assert profile[("declarations", "relation", "unknown_vocab", "房东的朋友")] == 1
    assert profile[("police_incidents", "person_ids", "invalid_ids", "ID_LIST_INVALID")] == 1
    assert not any(v and any(ch.isdigit() for ch in v) for (_, _, kind, v) in profile if kind == "date_form")

    # The delivery report of the night: forms, unknown values, reasons; no personal value.
    data = delivery.collect(spark, settings, manifest.run_date, manifest.doc)
    paths = delivery.write(settings, data)
    decl = data["sources"]["declarations"]
    assert decl["quarantine_reasons"]["OUT_OF_RANGE"] == 2 and decl["quarantine_reasons"]["DATE_OUT_OF_RANGE"] == 2
    assert {"column": "relation", "value": "房东的朋友", "rows": 1} in decl["unknown_vocab"]
    assert {"column": "relation", "value": delivery.WITHHELD, "rows": 1} in decl["unknown_vocab"]  # a known name
    assert decl["rows"] == {"bronze": 14, "silver": 5, "quarantine": 9, "duplicates": 0}
    assert decl["files"][0]["status"] == "loaded" and decl["files"][0]["balanced"] is True
    html = open(paths["html"], encoding="utf-8").read()
    js = open(paths["json"], encoding="utf-8").read()
    assert json.loads(js)["date"] == DAY
    assert "YYYY/MM/D 下午H:mm" in html and "房东的朋友" in html and "DATE_IN_FUTURE" in html
    for text in (html, js):
        for value in (VALID_ID, PHONE, "张三", "上沙村东村二坊12号602", OLD15):
            assert value not in text
