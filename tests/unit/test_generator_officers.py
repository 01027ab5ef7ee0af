"""The simulated officers fill in tonight's returned XLSX itself (the return form), not a side CSV."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from openpyxl import load_workbook

from gridlake.generate.officers import simulate_verifications
from jobs.gold import exports

NIGHT = dt.date(2026, 11, 3)


def _truth(settings) -> None:
    settings.truth.mkdir(parents=True)
    pd.DataFrame({
        "rule": ["R1", "R3"], "house_code": ["440304000000000001", "440304000000000002"], "source": ["", ""],
        "record_id": ["", ""], "person_id": ["", ""], "grid_id": ["G1", "G1"],
        "evidence": ["police_incidents:JQ000000001", "declarations:SB000000001"], "evidence_count": [1, 1],
    }).to_parquet(settings.truth / "discrepancies_2026-11-03.parquet")


def _rec(rank: int, rule: str, house: str) -> dict:
    return {"run_date": NIGHT, "street": "沙头街道", "community": "上沙社区", "grid_id": "G1", "officer_id": "WGY00001",
            "rank": rank, "discrepancy_id": f"d{rank}", "rule": rule, "rule_title": "t", "house_code": house,
            "address": "上沙村东村二坊12号602", "priority": 1.0, "reason_codes": [], "evidence_categories": [],
            "masked_id": None, "masked_name": None, "masked_phone": None, "is_new": True,
            "due_date": NIGHT + dt.timedelta(days=7), "status": "open"}


def test_no_exports_returns_none(settings):
    assert simulate_verifications(settings, "2026-11-03", seed=1) is None


def test_fills_in_the_returned_workbook(settings):
    _truth(settings)
    exports.write_exports([_rec(1, "R1", "440304000000000001"), _rec(2, "R2", "440304000000000001"),
                           _rec(3, "R3", "440304000000000002"), _rec(4, "R3", "440304000000000009")],
                          settings.exports, NIGHT)
    folder = simulate_verifications(settings, "2026-11-03", seed=1)
    assert folder == settings.landing / "verifications" / "2026-11-04"
    files = sorted(folder.iterdir())
    assert [p.suffix for p in files] == [".xlsx"]  # the workbook itself, no CSV
    ws = load_workbook(files[0]).active
    headers = [c.value for c in ws[1]]
    assert headers == list(exports.HEADERS)  # same columns, checksum kept
    assert ws.data_validations.dataValidation, "the dropdown survives the officer's save"
    rows = [dict(zip(headers, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    filled = {r["问题编号"]: r for r in rows if r["核查结果"]}
    assert filled  # visit_share 0.8: some rows visited
    for did, r in filled.items():
        assert r["核查结果"] == "属实" if did in ("d1", "d3") else r["核查结果"] in ("未出租", "空置", "地址错误")
        assert r["核查时间"].startswith("2026-11-04")
    for r in rows:  # read-only columns untouched: their checksum still holds
        shown = [r[exports.COLUMNS[[c.field for c in exports.COLUMNS].index(f)].header] for f in exports.CHECKSUM_FIELDS]
        assert exports.row_checksum(shown) == r["校验码"]
    again = simulate_verifications(settings, "2026-11-03", seed=1)
    assert sorted(again.iterdir())[0].read_bytes() == files[0].read_bytes()  # deterministic
