"""The simulated officers give the house code of an unresolved-address case (R6) they visit.

From the XLSX row (问题编号 only) through the lake's gold.discrepancies evidence (a tiny ``deltalake``
table) to the generator's truth (records.parquet): a resolvable address gets 属实 + 核查后房屋编码, an
address that truly is no house gets 属实 without a code, other rules are unchanged.
"""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from openpyxl import load_workbook

from gridlake.config import ConfigError
from jobs.exports import writer as exports
from tools.generate import officers
from tools.generate.site_truth import address_findings, site_house

NIGHT = dt.date(2026, 11, 3)
H9, H1 = "440304000000000009", "440304000000000001"
EVIDENCE = pa.list_(pa.struct([("source", pa.string()), ("record_id", pa.string()), ("category", pa.string())]))


def _lake_and_truth(settings) -> None:
    """Cases: dA (two records, truly H9), dB (truly no house), dC (records disagree), d1 (R1, not an address case)."""
    ev = {
        "dA": [("police_incidents", "JQ000000001", "公安"), ("declarations", "SB000000001", "自主申报")],
        "dB": [("mediation_cases", "TJ000000002", "调解")],
        "dC": [("police_incidents", "JQ000000003", "公安"), ("police_incidents", "JQ000000004", "公安")],
        "d1": [("police_incidents", "JQ000000005", "公安")],
    }
    table = pa.table({
        "discrepancy_id": list(ev), "rule": ["R6", "R6", "R6", "R1"],
        "evidence": pa.array([[{"source": s, "record_id": r, "category": c} for s, r, c in v] for v in ev.values()],
                             type=EVIDENCE),
    })
    write_deltalake(settings.table_path("gold", "discrepancies"), table)
    settings.truth.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "source": ["police_incidents", "declarations", "declarations", "mediation_cases", "police_incidents",
                   "police_incidents", "police_incidents"],
        "record_id": ["JQ000000001", "SB000000001", "SB000000001", "TJ000000002", "JQ000000003", "JQ000000004",
                      "JQ000000005"],
        "house_code": [H9, H9, H9, "", H9, H1, H1],  # SB000000001 delivered twice
    }).to_parquet(settings.truth / "records.parquet")


def _rec(rank: int, did: str, rule: str, house: str | None) -> dict:
    return {"run_date": NIGHT, "street": "沙头街道", "community": "上沙社区", "grid_id": "G1", "officer_id": "WGY00001",
            "rank": rank, "discrepancy_id": did, "rule": rule, "rule_title": "t", "house_code": house,
            "address": "上沙村东村二坊12号602", "priority": 1.0, "reason_codes": [], "evidence_categories": [],
            "masked_id": None, "masked_name": None, "masked_phone": None, "is_new": True,
            "due_date": NIGHT + dt.timedelta(days=7), "status": "open"}


def _form(settings):
    exports.write_exports([_rec(1, "dA", "R6", None), _rec(2, "dB", "R6", None), _rec(3, "dC", "R6", None),
                           _rec(4, "d1", "R1", H1)], settings.exports, NIGHT)
    return settings.exports / NIGHT.isoformat() / "沙头街道" / "G1.xlsx"


def _rows(path) -> dict[str, dict]:
    ws = load_workbook(path).active
    headers = [c.value for c in ws[1]]
    return {r[headers.index("问题编号")]: dict(zip(headers, r, strict=True))
            for r in ws.iter_rows(min_row=2, values_only=True)}


def test_site_house_needs_a_strict_majority():
    truth = {("a", "1"): "H9", ("a", "2"): "H9", ("a", "3"): None, ("a", "4"): "H1"}
    assert site_house([("a", "1"), ("a", "2"), ("a", "3")], truth) == "H9"
    assert site_house([("a", "1"), ("a", "4")], truth) is None  # records disagree
    assert site_house([("a", "1"), ("a", "3")], truth) is None  # half of it is no house
    assert site_house([("a", "9")], truth) is None and site_house([], truth) is None


def test_address_findings_from_the_lake_and_truth(settings):
    _lake_and_truth(settings)
    form = _form(settings)
    assert officers.form_address_cases(form) == ["dA", "dB", "dC"]
    assert address_findings(settings, ["dA", "dB", "dC"]) == {"dA": H9, "dB": None, "dC": None}
    assert address_findings(settings, ["dB"]) == {"dB": None}  # only the cases asked for
    assert address_findings(settings, []) == {}

    # the house of dA is demolished (its current version in silver.housing): nothing to code the address to
    write_deltalake(settings.table_path("silver", "housing"), pa.table({
        "house_code": [H9, H9, H1], "status": ["in_use", "demolished", "in_use"], "is_current": [False, True, True]}))
    assert address_findings(settings, ["dA", "dB"]) == {"dA": None, "dB": None}


def test_officer_fills_in_the_r6_row(settings, tmp_path):
    _lake_and_truth(settings)
    form = _form(settings)
    found = address_findings(settings, officers.form_address_cases(form))
    out = tmp_path / "back.xlsx"
    n = officers.fill_form(form, out, NIGHT, set(), random.Random(7), per_officer=10, share=1.0,
                           addresses=found, correction_share=1.0)
    assert n == 4
    rows = _rows(out)
    assert (rows["dA"]["核查结果"], rows["dA"]["核查后房屋编码"]) == ("属实", H9)  # the correction
    assert (rows["dB"]["核查结果"], rows["dB"]["核查后房屋编码"]) == ("属实", None)  # truly no house: a real finding
    assert rows["dC"]["核查后房屋编码"] is None and rows["dC"]["核查结果"] == "属实"
    assert rows["d1"]["核查结果"] in officers.REFUTED and rows["d1"]["核查后房屋编码"] is None
    assert all(r["核查时间"].startswith("2026-11-04") for r in rows.values())
    for r in rows.values():  # read-only columns untouched: the checksum still holds
        shown = [r[exports.COLUMNS[[c.field for c in exports.COLUMNS].index(f)].header] for f in exports.CHECKSUM_FIELDS]
        assert exports.row_checksum(shown) == r["校验码"]

    # an officer who does not give codes still confirms the address case, without a code
    none = tmp_path / "none.xlsx"
    officers.fill_form(form, none, NIGHT, set(), random.Random(7), per_officer=10, share=1.0,
                       addresses=found, correction_share=0.0)
    assert (_rows(none)["dA"]["核查结果"], _rows(none)["dA"]["核查后房屋编码"]) == ("属实", None)


def test_simulate_verifications_corrects_deterministically(settings):
    _lake_and_truth(settings)
    _form(settings)
    folder = officers.simulate_verifications(settings, NIGHT, seed=3)
    files = sorted(folder.iterdir())
    rows = _rows(files[0])
    # whatever the seed visits: an R6 row is 属实, and only dA can carry a code, H9
    for did in ("dA", "dB", "dC"):
        if rows[did]["核查结果"]:
            assert rows[did]["核查结果"] == "属实"
            assert rows[did]["核查后房屋编码"] in ((H9, None) if did == "dA" else (None,))
    # seed 3 visits dA (and gives its code) and dC
    assert (rows["dA"]["核查结果"], rows["dA"]["核查后房屋编码"]) == ("属实", H9)
    again = officers.simulate_verifications(settings, NIGHT, seed=3)
    assert sorted(again.iterdir())[0].read_bytes() == files[0].read_bytes()


def test_officers_config_is_validated():
    assert officers.officers_config({}).correction_share == 0.9
    assert officers.officers_config({"correction_share": 0.5}).correction_share == 0.5
    with pytest.raises(ConfigError, match="officers.correction_share"):
        officers.officers_config({"correction_share": 1.5})
    with pytest.raises(ConfigError, match="officers.visit_shares"):
        officers.officers_config({"visit_shares": 0.5})
