"""The officers' field-check simulator reads exports and writes tomorrow's verification file."""

from __future__ import annotations

import csv

import pandas as pd

from gridlake.generate.officers import simulate_verifications
from gridlake.sources import get_source


def _truth(settings) -> None:
    settings.truth.mkdir(parents=True)
    pd.DataFrame({
        "rule": ["R1", "R3"], "house_code": ["440304000000000001", "440304000000000002"], "source": ["", ""],
        "record_id": ["", ""], "person_id": ["", ""], "grid_id": ["G1", "G1"],
        "evidence": ["police_incidents:JQ000000001", "declarations:SB000000001"], "evidence_count": [1, 1],
    }).to_parquet(settings.truth / "discrepancies_2026-11-03.parquet")


def test_no_exports_returns_none(settings):
    assert simulate_verifications(settings, "2026-11-03", seed=1) is None


def test_confirms_true_refutes_false(settings):
    _truth(settings)
    out = settings.exports / "2026-11-03" / "沙头街道"
    out.mkdir(parents=True)
    with open(out / "G1.csv", "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["排名", "问题编号", "规则", "房屋编码", "网格员编号"])
        w.writerow([1, "d1", "R1", "440304000000000001", "WGY00001"])
        w.writerow([2, "d2", "R2", "440304000000000001", "WGY00001"])  # rule differs: not in the truth
        w.writerow([3, "d3", "R3", "440304000000000002", "WGY00001"])
        w.writerow([4, "d4", "R3", "440304000000000009", "WGY00001"])
    path = simulate_verifications(settings, "2026-11-03", seed=1)
    assert path == settings.landing / "verifications" / "2026-11-04" / "verifications_20261104.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(get_source("verifications").columns.values())
    by_id = {r["问题编号"]: r["核查结果"] for r in rows}
    assert by_id  # visit_share 0.8: some rows visited
    for did, outcome in by_id.items():
        if did in ("d1", "d3"):
            assert outcome == "属实"
        else:
            assert outcome in ("未出租", "空置", "地址错误")
    assert all(r["核查时间"].startswith("2026-11-04") for r in rows)
    assert simulate_verifications(settings, "2026-11-03", seed=1).read_bytes() == path.read_bytes()
