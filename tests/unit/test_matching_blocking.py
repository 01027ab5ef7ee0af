"""Number-based blocking with a per-rule cap, fallback rules, decisive lanes (pandas engine, no Spark)."""

from __future__ import annotations

import pandas as pd
import pytest

from matching.address import parse
from matching.compare import lane_key
from matching.engine import block_info, link, prepare
from matching.resolve import resolve_addresses
from matching.spec import SpecError, load_spec, spec_from_dict


def test_lane_parse_and_key():
    p = parse("东村二坊5号101")       # the village omitted: 东村二坊 is the lane, not village 东村
    assert (p["village"], p["lane"], p["lane_no"], p["room"]) == (None, "东村2坊", "5", "101")   # lane numeral as digits (issue 15)
    assert parse("上沙村东村二坊5号101")["village"] == "上沙村"
    assert [lane_key(x) for x in ("东邨二坊", "东村2坊", "东村二坊", "一巷")] == ["东村2坊"] * 3 + ["1巷"]


def _village_registry() -> pd.DataFrame:
    rows = []
    for lane in ("东村一坊", "东村二坊", "东村三坊", "一巷", "二巷"):
        for no in range(1, 4):
            for room in ("101", "102", "201"):
                rows.append((f"H{len(rows):03d}", f"沙头街道上沙社区上沙村{lane}{no}号{room}"))
    return pd.DataFrame(rows, columns=["house_code", "address"])


def test_lane_decides_between_lanes_with_same_numbers():
    reg = _village_registry()
    code = dict(zip(reg["address"], reg["house_code"], strict=True))
    q = pd.DataFrame({"id": ["a", "b", "c", "d"],
                      "address": ["上沙村东村二坊2号101", "上沙村东邨二坊2号101", "上沙村一巷2号102", "上沙村四巷2号102"]})
    out = resolve_addresses(reg, q).set_index("id")
    assert out.loc["a", "house_code"] == code["沙头街道上沙社区上沙村东村二坊2号101"]
    assert out.loc["b", "house_code"] == code["沙头街道上沙社区上沙村东村二坊2号101"]   # 邨 typo
    assert out.loc["c", "house_code"] == code["沙头街道上沙社区上沙村一巷2号102"]
    assert pd.isna(out.loc["d", "house_code"]) and "lane" in out.loc["d", "explanation"]   # no 四巷


def test_cap_skips_vague_rules_and_fallback_runs_only_without_candidates():
    spec = spec_from_dict({"name": "t", "left_id": "id", "right_id": "house_code",
                           "parse_address": {"left": "address", "right": "address"},
                           "blocking": [["lane", "lane_no", "room"]], "blocking_fallback": [["lane"]],
                           "max_block_size": 5,
                           "comparisons": [{"name": "room", "levels": ["null", "exact", "else"]}]})
    reg = _village_registry()
    q = pd.DataFrame({"id": ["x", "y"], "address": ["东村二坊2号101", "东村二坊"]})
    left, right = prepare(q, spec, "left"), prepare(reg, spec, "right")
    ids, vague = block_info(left, right, spec)
    assert set(ids["_id_l"]) == {"x"} and len(ids) == 1           # 9 houses in the lane > cap 5: skipped
    assert vague == {"y": ["lane"]}
    dec, _ = link(q, reg, spec)
    expl = dict(zip(dec["left_id"], dec["explanation"], strict=True))
    assert expl["y"].startswith("unresolved=too_vague") and "too_vague=lane" in expl["y"]


def test_chunked_linkage_gives_the_same_answers():
    spec = load_spec("address_to_house")
    reg = _village_registry()
    q = pd.DataFrame({"id": [f"q{i}" for i in range(len(reg))], "address": reg["address"].str[4:]})
    a, _ = link(q, reg.rename(columns={}), spec)
    b, _ = link(q, reg, spec.model_copy(update={"block_chunk": 7}))
    assert a["right_id"].tolist() == b["right_id"].tolist() == reg["house_code"].tolist()


def test_spec_rejects_bad_cap_and_unfixed_m():
    base = {"name": "x", "blocking": [["a"]], "comparisons": [{"name": "a", "levels": ["exact", "else"]}]}
    with pytest.raises(SpecError, match="max_block_size"):
        spec_from_dict({**base, "max_block_size": 0})
    with pytest.raises(SpecError, match="estimate_m"):
        spec_from_dict({**base, "comparisons": [{"name": "a", "estimate_m": False, "levels": ["exact", "else"]}]})
    assert spec_from_dict({**base, "blocking_fallback": [["a"]]}).blocking_fallback == (("a",),)
