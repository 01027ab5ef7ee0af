"""The synthetic district generator: determinism, realism, truth consistency, speed (no Spark)."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from gridlake.ids import normalize_id
from gridlake.sources import load_sources
from tools.generate.config import load_gen_config
from tools.generate.run import generate

ENFORCEMENT = ("police_incidents", "mediation_cases", "safety_inspections", "family_planning")


def _run(root: Path, seed: int = 7, days: int = 2, scale: str = "tiny") -> Path:
    generate(load_gen_config(scale=scale, days=days, start="2026-11-01", seed=seed), root)
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("gen-a"))


def _digest(root: Path, pattern: str) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "landing").rglob(pattern))}


def test_tiny_scale_is_fast(tmp_path):
    t0 = time.monotonic()
    _run(tmp_path, seed=3, days=2)
    assert time.monotonic() - t0 < 10


def test_same_seed_same_bytes_different_seed_differs(tiny, tmp_path):
    again = _run(tmp_path / "b")
    a_csv, b_csv = _digest(tiny, "*.csv"), _digest(again, "*.csv")
    assert a_csv and a_csv == b_csv
    assert _digest(tiny, "*.xlsx") == _digest(again, "*.xlsx")  # fixed zip timestamps and core properties
    other = _run(tmp_path / "c", seed=8)
    c_csv = _digest(other, "*.csv")
    differs = [k for k in a_csv if k in c_csv and a_csv[k] != c_csv[k] and "verifications" not in k]
    assert len(differs) >= 8


def test_every_source_and_night_is_delivered_with_the_contract_headers(tiny):
    sources = load_sources()
    for day in ("2026-11-01", "2026-11-02"):
        for name, src in sources.items():
            path = tiny / "landing" / name / day / f"{name}_{day.replace('-', '')}.{src.format}"
            assert path.exists(), path
            if src.format == "xlsx":
                ws = load_workbook(path, read_only=True).worksheets[0]
                header = [c.value for c in next(ws.iter_rows(max_row=1))]
            else:
                with open(path, encoding=src.encoding, newline="") as f:
                    header = next(csv.reader(f))
            assert header == list(src.columns.values()), name


def test_gb18030_sources_are_not_utf8(tiny):
    raw = (tiny / "landing/police_incidents/2026-11-01/police_incidents_20261101.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gb18030")
    assert "警情编号" in text and "福田区" in text


def test_rare_characters_survive_gb18030():
    assert "𠮷䶮".encode("gb18030").decode("gb18030") == "𠮷䶮"
    with pytest.raises(UnicodeEncodeError):
        "𠮷".encode("gbk")


def test_noise_rates_within_tolerance(tmp_path):
    root = _run(tmp_path, seed=11, days=1, scale="3000")
    cfg = load_gen_config(scale="3000")
    rec = pd.read_parquet(root / "truth/records.parquet")
    rec = rec[rec["source"].isin(("declarations", *ENFORCEMENT)) & (rec["quarantine_reason"] != "duplicate")]
    messy_kinds = set(cfg.noise["address"]["kinds"])
    unres_kinds = {"nonexistent_building", "nonexistent_room", "too_little_info"}
    kinds = rec["noise"].str.split(";")
    messy = kinds.map(lambda ks: bool(messy_kinds & set(ks)) and not (unres_kinds & set(ks)))
    unres = kinds.map(lambda ks: bool(unres_kinds & set(ks)))
    assert abs(messy.mean() - cfg.noise["address"]["messy_rate"]) < 0.04
    assert abs(unres.mean() - cfg.noise["address"]["unresolvable_rate"]) < 0.01
    assert (rec.loc[unres, "house_code"] == "").all()
    persons = pd.read_parquet(root / "truth/persons.parquet")
    decl = persons[persons["source"] == "declarations"]
    bad = (decl["id_form"] == "id_bad_checksum").mean()
    assert abs(bad - cfg.noise["ids"]["bad_checksum_rate"]) < 0.006
    assert (decl["id_form"] == "id15_legacy").mean() > 0.01


def test_delivered_ids_validate_as_the_truth_says(tiny):
    with open(tiny / "landing/declarations/2026-11-01/declarations_20261101.csv", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f)][1:]
    persons = pd.read_parquet(tiny / "truth/persons.parquet").query("source == 'declarations'")
    truth = dict(zip(persons["record_id"], zip(persons["person_id"], persons["valid"], strict=True), strict=True))
    checked = 0
    for row in rows:
        if len(row) != 11 or row[0] not in truth:
            continue
        person, valid = truth[row[0]]
        id18, reason = normalize_id(row[1])
        assert (id18 == person) if valid else (reason == "ID_CHECKSUM"), row[1]
        checked += 1
    assert checked > 100


def test_truth_agrees_with_deliveries(tiny):
    rec = pd.read_parquet(tiny / "truth/records.parquet")
    sources = load_sources()
    delivered: set[tuple[str, str]] = set()
    for name, src in sources.items():
        if name == "verifications":
            continue
        for path in (tiny / "landing" / name).rglob(f"*.{src.format}"):
            if src.format == "xlsx":
                ws = load_workbook(path, read_only=True).worksheets[0]
                ids = [r[0] for r in ws.iter_rows(min_row=2, values_only=True)]
            else:
                ids = [r[0] for r in list(csv.reader(io.StringIO(path.read_text(encoding=src.encoding))))[1:]]
            delivered |= {(name, str(i)) for i in ids}
    truth = set(zip(rec["source"], rec["record_id"], strict=True))
    assert delivered == truth
    dup = rec[rec["quarantine_reason"] == "duplicate"]
    assert set(zip(dup["source"], dup["record_id"], strict=True)) <= truth
    houses = set(rec.loc[rec["source"] == "housing", "house_code"])
    records = set(rec["source"] + ":" + rec["record_id"])
    for day in ("2026-11-01", "2026-11-02"):
        disc = pd.read_parquet(tiny / f"truth/discrepancies_{day}.parquet")
        assert set(disc["rule"]) <= {f"R{i}" for i in range(1, 8)}
        assert {"R2", "R3", "R4", "R5", "R6"} <= set(disc["rule"])
        for row in disc.itertuples():
            if row.rule in ("R1", "R2", "R3", "R4", "R5"):
                assert row.house_code in houses
            else:
                assert f"{row.source}:{row.record_id}" in records
            for ev in row.evidence.split(";"):
                assert ev in records, ev
        assert (disc["person_id"] != "").sum() == (disc["rule"] == "R5").sum()


def test_nothing_dated_after_the_night(tiny):
    for day in ("2026-11-01", "2026-11-02"):
        path = tiny / f"landing/declarations/{day}/declarations_{day.replace('-', '')}.csv"
        df = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")
        dates = pd.to_datetime(df["申报时间"], errors="coerce", format="mixed")
        assert dates.notna().mean() > 0.8
        assert (dates.dropna() < pd.Timestamp(day) + pd.Timedelta(days=1)).all()


def test_later_nights_carry_life(tiny):
    rec = pd.read_parquet(tiny / "truth/records.parquet")
    night2 = rec[rec["delivery_date"] == "2026-11-02"]
    assert (night2["source"] == "housing").sum() == (rec[rec["delivery_date"] == "2026-11-01"]["source"] == "housing").sum()
    h2 = pd.read_csv(tiny / "landing/housing/2026-11-02/housing_20261102.csv", dtype=str)
    assert (h2["房屋状态"] == "已拆除").sum() >= 1
    assert len(night2[night2["source"] == "declarations"]) > 0
