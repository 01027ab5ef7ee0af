"""Homophones by sound (``pinyin`` level kind) and weights that never rise along a comparison's levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching.codes import joint_codes
from matching.compare import compare_pairs, levels_from_codes, pinyin_similarity
from matching.scoring import FSModel, initial_model, monotone_weights
from matching.spec import SpecError, load_spec, spec_from_dict


def _spec(levels: list) -> object:
    return spec_from_dict({"name": "t", "blocking": [["road"]],
                           "comparisons": [{"name": "road", "levels": levels}]})


@pytest.mark.parametrize(("a", "b", "same"), [
    ("沙咀路", "沙嘴路", True),       # 咀 also reads zui
    ("沙嘴村", "沙咀村", True),
    ("福华花园", "富华花园", True),   # homophone typo
    ("福华花园", "福華花園", True),   # traditional characters
    ("景田路", "境田路", True),
    ("沙尾路", "沙嘴路", False),      # another name
    ("上沙村", "下沙村", False),
    ("福华花园", "福华苑", False),
])
def test_pinyin_same_sound(a: str, b: str, same: bool) -> None:
    assert (pinyin_similarity(a, b) == 1.0) is same


def test_pinyin_level_both_engines_paths() -> None:
    spec = _spec([None, "exact", "pinyin", {"kind": "pinyin", "threshold": 0.75}, "else"])
    left = ["沙咀路", "沙尾路", "沙嘴路", None, "红荔路"]
    right = ["沙嘴路", "沙嘴路", "沙嘴路", "沙嘴路", "沙嘴路"]
    # the Spark path: compare_pairs on materialised pairs
    pairs = pd.DataFrame({"l_road": left, "r_road": right})
    got = compare_pairs(pairs, spec)["road"].tolist()
    assert got == [2, 3, 1, 0, 4]     # same sound; close sound (shaweilu ~ shazuilu); exact; null; else
    # the pandas engine: codes, each distinct value pair once
    a, b, values = joint_codes(pd.Series(left, dtype=object), pd.Series(right, dtype=object))
    cache: dict[int, bool] = {}
    assert levels_from_codes(spec.comparisons[0], a, b, values, cache).tolist() == got
    # keyed by pair code * 256 + level: the pinyin levels ran on 沙咀路, 沙尾路, 红荔路 against 沙嘴路 only
    assert len({k // 256 for k in cache}) == 3


def test_pinyin_spec_validation() -> None:
    assert _spec([None, "exact", "pinyin", "else"]).comparisons[0].levels[2].label == "pinyin"
    assert _spec([None, {"kind": "pinyin", "threshold": 0.9}, "else"]).comparisons[0].levels[1].label == "pinyin>=0.9"
    with pytest.raises(SpecError, match="similarity in"):
        _spec([None, {"kind": "pinyin", "threshold": 2}, "else"])


def test_address_spec_compares_names_by_sound() -> None:
    spec = load_spec("address_to_house")
    for name in ("road", "complex", "village"):
        comp = next(c for c in spec.comparisons if c.name == name)
        assert "pinyin" in [lv.kind for lv in comp.levels], name


def test_monotone_weights_pool_adjacent_violators() -> None:
    assert monotone_weights(np.array([5.0, 7.0, -3.0])).tolist() == [6.0, 6.0, -3.0]
    assert monotone_weights(np.array([4.0, 2.0, 3.0, -1.0])).tolist() == [4.0, 2.5, 2.5, -1.0]
    ok = np.array([9.0, 3.0, 1.0, -4.0])
    assert monotone_weights(ok).tolist() == ok.tolist()
    # weighted by the levels' m: a rare fuzzy level is pooled down to (nearly) the exact level's weight
    pooled = monotone_weights(np.array([3.5, 11.0, -2.0]), np.array([0.9, 0.05, 0.05]))
    assert pooled[0] == pooled[1] and 3.5 < pooled[0] < 4.0 and pooled[2] == -2.0


def test_model_weights_never_rise_after_estimation() -> None:
    spec = _spec([None, "exact", {"kind": "jaro_winkler", "threshold": 0.9}, {"kind": "ratio", "threshold": 0.6},
                  "else"])
    model = initial_model(spec)
    # what u from random pairs gives: exact common among random pairs, fuzzy levels almost never seen
    model = FSModel({"road": [1.0, 0.9, 0.06, 0.03, 0.01]}, {"road": [1.0, 0.08, 0.0001, 0.002, 0.9]}, model.lam)
    raw = np.log2(np.array(model.m["road"]) / np.array(model.u["road"]))
    assert raw[2] > raw[1]                      # the estimates alone would make jaro_winkler beat exact
    w = model.weights(spec)["road"]
    assert w[0] == 0.0                          # null: no evidence
    assert np.all(np.diff(w[1:]) <= 1e-12)      # exact >= jaro_winkler >= ratio >= else
    assert w[4] == pytest.approx(raw[4])        # levels in order keep their weight


def test_must_agree_accepts_a_level_between_exact_and_else() -> None:
    spec = spec_from_dict({"name": "t", "blocking": [["lane"]], "comparisons": [
        {"name": "lane", "transform": "lane", "must_agree": "when_both", "levels": [None, "exact", "pinyin", "else"]},
        {"name": "room", "must_agree": "strict", "levels": [None, "exact", "else"]}]})
    pairs = pd.DataFrame({"l_lane": ["东寸二坊", "西村二坊", "东村三坊", "东邨2坊", None],
                          "r_lane": ["东村二坊"] * 5, "l_room": ["101"] * 5, "r_room": ["101"] * 5})
    out = compare_pairs(pairs, spec)
    assert out["lane"].tolist() == [2, 3, 3, 1, 0]
    assert out["_compatible"].tolist() == [True, False, False, True, True]
    assert out["_violations"].tolist() == ["", "lane", "lane", "", ""]
