"""Matching library without Spark: normaliser, parser, comparisons, EM, spec loading, resolution, CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridlake.errors import GridlakeError
from matching.address import cn_to_int, normalize, parse
from matching.compare import compare_pairs
from matching.scoring import estimate_u, initial_model, match_weights, pattern_counts, run_em
from matching.spec import SpecError, load_spec, spec_from_dict

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "matching"


@pytest.mark.parametrize("text,expected", [
    ("福华花园三栋五零一", "福华花园3栋501"),
    ("五楼", "5层"),
    ("ＡＢ花园１２栋５０１（出租屋）", "AB花园12栋501"),
    ("广东省深圳市福田区三元里小区2栋402", "三元里小区2栋402"),
    ("上沙村东村二坊12-602", "上沙村东村2坊12号602室"),   # lane numeral is a number; room marked
    ("福华花园 12-3-501", "福华花园12栋3单元501室"),
    ("福华花园3号楼501房", "福华花园3栋501室"),
    ("荔园大厦Ａ座十二楼1203", "荔园大厦A栋12层1203"),
    (None, None), ("   ", None),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_cn_numerals():
    assert [cn_to_int(x) for x in ("五零一", "十二", "二十一", "一百零五", "两", "元")] == [501, 12, 21, 105, 2, None]


def _p(text):
    return {k: v for k, v in parse(text).items() if v is not None}


def test_parse_floor_vs_building():
    assert _p("福华花园3楼") == {"complex": "福华花园", "floor": "3"}
    assert _p("福华花园3号楼") == {"complex": "福华花园", "building": "3"}


def test_parse_components():
    assert _p("广东省深圳市福田区沙头街道上沙社区上沙村东村二坊12号602") == {
        "street": "沙头街道", "community": "上沙社区", "village": "上沙村", "lane": "东村2坊", "lane_no": "12",
        "floor": "6", "room": "602"}
    assert _p("上沙村三巷5号302") == {"village": "上沙村", "lane": "3巷", "lane_no": "5", "floor": "3", "room": "302"}
    assert _p("福华路18号福华花园12-3-501") == {"road": "福华路", "door_no": "18", "complex": "福华花园",
                                            "building": "12", "unit": "3", "floor": "5", "room": "501"}
    assert _p("三元里小区2栋402")["complex"] == "三元里小区"   # place names keep their numerals
    assert _p("荔园大厦A座1203")["building"] == "A" and _p("荔园大厦A座1203")["floor"] == "12"


def test_spec_loads_and_rejects_bad_input(tmp_path):
    spec = load_spec("address_to_house")
    assert spec.decision.min_gap > 0 and any(c.must_agree == "strict" for c in spec.comparisons)
    with pytest.raises(SpecError, match="threshold"):
        spec_from_dict({"name": "x", "blocking": [["a"]],
                        "comparisons": [{"name": "a", "levels": ["exact", {"kind": "ratio"}, "else"]}]})
    with pytest.raises(SpecError, match="last level"):
        spec_from_dict({"name": "x", "blocking": [["a"]], "comparisons": [{"name": "a", "levels": ["exact", "null"]}]})
    with pytest.raises(SpecError, match="bogus: unknown key"):
        spec_from_dict({"name": "x", "blocking": [["a"]], "bogus": 1,
                        "comparisons": [{"name": "a", "levels": ["exact", "else"]}]})
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_spec_fingerprint_ignores_where_the_spec_was_read_from(tmp_path):
    """A saved model is reused while the fingerprint is unchanged: the same spec read from another checkout
    keeps it; a changed threshold does not."""
    import yaml

    from jobs.matching.runner import matching_fingerprint
    from matching.spec import CONF_DIR, spec_fingerprint

    text = (CONF_DIR / "address_to_house.yaml").read_text(encoding="utf-8")
    moved = tmp_path / "release-2" / "address_to_house.yaml"
    moved.parent.mkdir()
    moved.write_text(text, encoding="utf-8")
    here, there = load_spec("address_to_house"), load_spec(moved)
    assert here.source != there.source
    assert spec_fingerprint(here) == spec_fingerprint(there)
    assert matching_fingerprint(here) == matching_fingerprint(there)
    raw = yaml.safe_load(text)
    raw["description"] = "reworded"
    assert spec_fingerprint(spec_from_dict(raw, "x.yaml")) == spec_fingerprint(here)
    raw["decision"]["min_gap"] = here.decision.min_gap + 0.5
    assert spec_fingerprint(spec_from_dict(raw, "x.yaml")) != spec_fingerprint(here)


def test_comparisons_exact_numbers_and_fuzzy_names():
    spec = load_spec("address_to_house")
    pairs = pd.DataFrame({"l_room": ["501", "501", None], "r_room": ["501", "502", "501"],
                          "l_road": ["富华路", "福华路", None], "r_road": ["福华路", "福华路", None]})
    lv = compare_pairs(pairs, spec)
    labels = {c.name: [lv_.label for lv_ in c.levels] for c in spec.comparisons}
    assert [labels["room"][i] for i in lv["room"]] == ["exact", "else", "null"]   # 501 != 502
    assert [labels["road"][i] for i in lv["road"]] == ["pinyin", "exact", "null"]   # 富华/福华: same sound
    assert lv["_compatible"].tolist() == [True, False, True]
    assert lv["_violations"].tolist()[1] == "room"


def test_place_rule_needs_one_named_place_to_agree():
    spec = load_spec("address_to_house")
    pairs = pd.DataFrame({
        "l_complex": ["福华花园", "福华花园", "福华花园", None, "福华花园", None],
        "r_complex": ["荔园大厦", "福化花园", "荔园大厦", "荔园大厦", None, None],
        "l_road": [None, None, "福华路", "福华路", "福华路", None],
        "r_road": ["红荔路", "红荔路", "福华路", "福华路", "福华路", "福华路"],
        "l_door_no": [None, None, "18", "18", "20", None],
        "r_door_no": ["66", "66", "18", "20", "18", "18"],
        "l_room": ["501"] * 6, "r_room": ["501"] * 6})
    lv = compare_pairs(pairs, spec)
    # 0: complexes differ, no road in the text -> another place; 1: fuzzy complex agrees; 2: road+door agree;
    # 3: only road+door named on both, door differs; 4: complex missing in registry, door differs; 5: nothing named
    assert lv["_compatible"].tolist() == [False, True, True, False, False, True]
    assert lv["_violations"].tolist() == ["place", "", "", "place", "place", ""]
    with pytest.raises(SpecError, match="not a comparison"):
        spec_from_dict({"name": "x", "blocking": [["a"]], "must_agree_one_of": {"where": [["a"], ["zz"]]},
                        "comparisons": [{"name": "a", "levels": ["exact", "else"]}]})


def test_em_recovers_separation():
    """Synthetic levels: matches agree on both fields, non-matches rarely; EM must weight agreement up."""
    spec = spec_from_dict({"name": "t", "blocking": [["a"]], "em": {"min_pairs": 10, "estimate_lambda": True,
                                                             "max_iterations": 500, "tolerance": 1e-10},
                           "comparisons": [{"name": n, "levels": ["null", "exact", "else"]} for n in "abc"]})
    rng = np.random.default_rng(0)
    n_m, n_u = 300, 3000
    a = np.r_[np.where(rng.random(n_m) < 0.95, 1, 2), np.where(rng.random(n_u) < 0.1, 1, 2)]
    b = np.r_[np.where(rng.random(n_m) < 0.9, 1, 2), np.where(rng.random(n_u) < 0.2, 1, 2)]
    c = np.r_[np.where(rng.random(n_m) < 0.9, 1, 2), np.where(rng.random(n_u) < 0.05, 1, 2)]
    levels = pd.DataFrame({"a": a, "b": b, "c": c})
    model = initial_model(spec)
    rnd = pd.DataFrame({"a": np.where(rng.random(5000) < 0.1, 1, 2), "b": np.where(rng.random(5000) < 0.2, 1, 2),
                        "c": np.where(rng.random(5000) < 0.05, 1, 2)})
    model = estimate_u(rnd, spec, model)
    model.lam = 0.3
    model = run_em(pattern_counts(levels, spec), spec, model)
    assert model.converged
    assert abs(model.m["a"][1] - 0.95) < 0.05 and abs(model.lam - n_m / (n_m + n_u)) < 0.03
    w = match_weights(pd.DataFrame({"a": [1, 2], "b": [1, 2], "c": [1, 2]}), spec, model)
    assert w[0] > 4 > 0 > w[1]


def test_hand_written_hard_cases():
    from matching.resolve import resolve_addresses

    reg = pd.read_csv(DATA / "registry.csv", dtype=str)
    q = pd.read_csv(DATA / "queries.csv", dtype=str, keep_default_na=False)
    out = resolve_addresses(reg, q[["id", "address"]]).merge(q, on="id")
    assert len(out) == len(q)
    for _, r in out.iterrows():
        allowed = r["expected"].split("|")
        got = r["house_code"] if isinstance(r["house_code"], str) else ""
        assert got in allowed, (r["id"], r["case"], r["explanation"])
        if got:
            assert r["method"] in ("exact_address", "fuzzy") and "score=" in r["explanation"]
        else:
            assert r["method"] == "unresolved" and r["explanation"].startswith("unresolved=")
    expl = out.set_index("id")["explanation"]
    for qid in ("Q09", "Q21"):   # the same building and room exist, but in another complex / on another road
        assert expl[qid].startswith("unresolved=not_in_registry:place"), expl[qid]
    reg_parsed = {row.house_code: parse(row.address) for row in reg.itertuples()}
    for _, r in out[out["house_code"].notna()].iterrows():   # never a different building or room than the text
        text = parse(r["address"])
        for comp in ("building", "room"):
            if text[comp]:
                assert text[comp] == reg_parsed[r["house_code"]][comp]


def test_cli_resolve_happy_path_and_missing_column(tmp_path):
    from matching.cli import cmd_resolve

    out = tmp_path / "o.csv"
    q = tmp_path / "q.csv"
    pd.read_csv(DATA / "queries.csv", dtype=str)[["id", "address"]].to_csv(q, index=False)
    rc = cmd_resolve(argparse.Namespace(registry=str(DATA / "registry.csv"), input=str(q), output=str(out)))
    assert rc == 0
    res = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8")
    assert list(res.columns) == ["id", "house_code", "score", "method", "explanation"]
    assert len(res) == len(pd.read_csv(q, dtype=str)) and res.set_index("id").loc["Q03", "house_code"] == "H001"
    assert res.set_index("id").loc["Q09", "house_code"] == ""
    bad = tmp_path / "bad.csv"
    bad.write_text("id,adresse\n1,福华花园3栋501\n", encoding="utf-8")
    with pytest.raises(GridlakeError, match="missing column"):
        cmd_resolve(argparse.Namespace(registry=str(DATA / "registry.csv"), input=str(bad), output=str(out)))
    with pytest.raises(GridlakeError, match="not found"):
        cmd_resolve(argparse.Namespace(registry=str(tmp_path / "nope.csv"), input=str(q), output=str(out)))


def test_cli_main_exit_code(tmp_path):
    from gridlake.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_text("id\n1\n", encoding="utf-8")
    assert main(["resolve-addresses", "--registry", str(DATA / "registry.csv"), "--input", str(bad),
                 "--output", str(tmp_path / "o.csv")]) == 1
