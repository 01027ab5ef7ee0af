"""Issue 19 item 1: the officer's filled-in list comes back through bronze and silver like any delivery.

Tonight's XLSX for grid G1 is filled in (openpyxl, as an officer's spreadsheet would save it) and a
CSV with the same headers is dropped next to it; the next night's bronze + silver stages (real Spark
and Delta, the pipeline's own runner) load every row into silver or quarantine with its reason.
"""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from openpyxl import load_workbook
from pyspark.sql import functions as F

from gridlake import io
from jobs.gold import exports
from tests.integration.test_bronze_helpers import run

pytestmark = pytest.mark.spark

NIGHT = dt.date(2026, 11, 3)
NEXT = "2026-11-04"


def _rec(grid: str, rank: int, did: str) -> dict:
    return {"run_date": NIGHT, "street": "沙头街道", "community": "上沙社区", "grid_id": grid, "officer_id": f"O-{grid}",
            "rank": rank, "discrepancy_id": did, "rule": "R1", "rule_title": "出租屋有执法记录但无人申报",
            "house_code": f"44030400100100100{rank}", "address": "=HYPERLINK(\"http://x\")上沙村东村二坊12号602",
            "priority": 2.5, "reason_codes": ["ACTIVE_RENTAL"], "evidence_categories": ["公安"],
            "masked_id": None, "masked_name": "张*明", "masked_phone": None, "is_new": True,
            "due_date": NIGHT + dt.timedelta(days=3), "status": "open"}


def test_filled_xlsx_and_csv_through_bronze_and_silver(spark, settings):
    # gold.discrepancies as the previous night left it: ids and grids only matter here
    known = spark.createDataFrame([(f"D{i}", "G1") for i in range(1, 7)] + [("D9", "G2")],
                                  "discrepancy_id string, grid_id string")
    io.write_table(known, settings, "gold", "discrepancies", "overwrite")
    exports.write_exports([_rec("G1", i, f"D{i}") for i in range(1, 7)], settings.exports, NIGHT,
                          outcomes=["属实", "现场已申报", "已整改", "未出租", "空置", "地址错误"])
    form = settings.exports / NIGHT.isoformat() / "沙头街道" / "G1.xlsx"

    wb = load_workbook(form)
    ws = wb.active
    col = {c.value: c.column for c in ws[1]}
    fill = {2: ("属实", "2026-11-04 10:30", "", ""),            # D1 confirmed
            3: ("未出租", "2026/11/4 11:00", "", "空置多月"),      # D2 refuted, another date form
            4: ("随便写", "2026-11-04 12:00", "", ""),            # D3 OUTCOME_NOT_IN_LIST
            5: ("属实", "2026-11-04 13:00", "", ""),              # D4 ... but its address retyped
            6: ("地址错误", "", "440304001001001099", "")}        # D5 MISSING_CHECKED_AT
    for r, (outcome, when, code, note) in fill.items():
        for header, value in (("核查结果", outcome), ("核查时间", when), ("核查后房屋编码", code), ("备注", note)):
            ws.cell(row=r, column=col[header]).value = value or None
    ws.cell(row=5, column=col["地址"]).value = "上沙村东村二坊12号603"  # EDITED_OUTSIDE_INPUT
    # row 7 (D6) left empty: NOT_CHECKED
    landing = settings.landing / "verifications" / NEXT
    landing.mkdir(parents=True)
    wb.save(landing / "G1_returned.xlsx")

    with open(landing / "extra.csv", "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["问题编号", "网格编号", "核查结果", "核查时间", "核查后房屋编码", "备注"])
        w.writerow(["DX404", "G1", "属实", "2026-11-04 09:00", "", ""])    # UNKNOWN_DISCREPANCY
        w.writerow(["D9", "G1", "属实", "2026-11-04 09:00", "", ""])       # WRONG_GRID (D9 is G2's)
        w.writerow(["D6", "G1", "现场已申报", "2026-11-04 09:30", "", ""])  # valid, no checksum column

    manifest = run(spark, settings, NEXT)
    silver = {r.discrepancy_id: r for r in io.read_table(spark, settings, "silver", "verifications").collect()}
    assert sorted(silver) == ["D1", "D2", "D6"]
    assert silver["D1"].outcome == "confirmed" and silver["D2"].outcome == "not_rented"
    assert silver["D6"].outcome == "declared_on_site" and silver["D2"].note == "空置多月"
    assert silver["D1"].grid_id == "G1" and silver["D1"].verification_id.startswith("RF")
    q = (io.read_table(spark, settings, "silver", "_quarantine").where(F.col("source") == "verifications")
         .select("reason_code", "business_key", "_raw_line").collect())
    reasons = sorted(r.reason_code for r in q)
    assert reasons == sorted(["OUTCOME_NOT_IN_LIST", "EDITED_OUTSIDE_INPUT", "MISSING_CHECKED_AT", "NOT_CHECKED",
                              "UNKNOWN_DISCREPANCY", "WRONG_GRID"])
    run_cons = manifest.doc["conservation"]["run"]
    assert run_cons["balanced"] and run_cons["bronze_rows"] == 9 == run_cons["silver_rows"] + run_cons["quarantine_rows"]

    # delivered again (the same file copied): nothing new
    (landing / "G1_returned_copy.xlsx").write_bytes((landing / "G1_returned.xlsx").read_bytes())
    run(spark, settings, NEXT)
    assert io.read_table(spark, settings, "silver", "verifications").count() == 3
