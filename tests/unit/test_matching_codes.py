"""The pandas engine's integer codes: joint factorisation, array-join blocking, levels decided on codes."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from matching.blocking import Blocker
from matching.codes import combine_codes, joint_codes, map_unique
from matching.compare import _level_of, agreement_from_codes, levels_from_codes
from matching.engine import decide, prepare
from matching.scoring import initial_model, pattern_counts
from matching.spec import load_spec, spec_from_dict


def test_joint_codes_share_codes_across_sides_and_mark_missing():
    a, b, values = joint_codes(pd.Series(["x", None, np.nan, "y"]), np.array(["y", "z", None], dtype=object))
    assert a[1] == a[2] == b[2] == -1
    assert a[3] == b[0] and values[a[3]] == "y"
    assert values[b[1]] == "z" and len(set(values)) == 3


def test_combine_codes_is_one_code_per_distinct_tuple():
    x = np.array([0, 0, 1, 1, -1, 0])
    y = np.array([0, 1, 0, 1, 0, -1])
    c = combine_codes([x, y])
    assert c[4] == c[5] == -1
    assert len(set(c[:4].tolist())) == 4
    again = combine_codes([np.array([1, 0]), np.array([1, 0])])
    assert again[0] != again[1]


def test_map_unique_calls_once_per_value():
    calls = []

    def f(v):
        calls.append(v)
        return v.upper()

    out = map_unique(pd.Series(["a", "b", "a", None, "a"]), f)
    assert out.tolist() == ["A", "B", "A", None, "A"]
    assert sorted(calls) == ["a", "b"]


@pytest.mark.parametrize("name", ["community", "road", "room", "lane"])
def test_levels_from_codes_equal_the_level_of_every_pair(name):
    comp = next(c for c in load_spec("address_to_house").comparisons if c.name == name)
    vals = ["上沙社区", "上沙社区社区", "下沙社区", "福华路", "福华二路", "501", "502", "东村2坊", None]
    pairs = list(itertools.product(vals, vals))
    left = pd.Series([p[0] for p in pairs], dtype=object)
    right = pd.Series([p[1] for p in pairs], dtype=object)
    a, b, values = joint_codes(left, right)
    cache: dict[int, int] = {}
    got = levels_from_codes(comp, a, b, values, cache)
    want = [_level_of(comp, x, y) for x, y in pairs]
    assert got.tolist() == want
    assert levels_from_codes(comp, a, b, values, cache).tolist() == want     # from the cache
    ok = agreement_from_codes(comp, a, b)
    for (x, y), k in zip(pairs, ok, strict=True):
        expect = comp.must_agree == "none" or x is None or x == y or (comp.must_agree == "when_both" and y is None)
        assert bool(k) == expect


def _sides(rows_left, rows_right, spec):
    left = prepare(pd.DataFrame(rows_left, columns=["id", "address"]), spec, "left")
    right = prepare(pd.DataFrame(rows_right, columns=["house_code", "address"]), spec, "right")
    return left, right


def test_blocker_caps_vague_keys_and_falls_back_only_without_pairs():
    spec = load_spec("address_to_house").model_copy(update={"max_block_size": 2})
    right = [("H1", "福华路18号福华花园3栋501"), ("H2", "福华路18号福华花园4栋501"),
             ("H3", "福华路18号福华花园5栋501"), ("H4", "福华路18号福华花园3栋601")]
    left = [("q1", "福华花园3栋501"), ("q2", "福华花园3栋"), ("q3", "501室"), ("q4", "福华花园9栋701")]
    lside, rside = _sides(left, right, spec)
    lp, rp, vague = Blocker(lside, rside, spec).pairs()
    got = {(lside["_id"][i], rside["_id"][j]) for i, j in zip(lp, rp, strict=True)}
    assert ("q1", "H1") in got and not any(q == "q1" and h != "H1" for q, h in got)
    # q2 names no room: only the fallback [complex, building] finds it, and finds both houses of 3栋
    assert {h for q, h in got if q == "q2"} == {"H1", "H4"}
    assert "q4" not in {q for q, _ in got}                     # no house 9栋: no candidate at all
    assert len(got) == len(lp)                                 # no duplicate pairs
    assert not any(lside["_id"][p] == "q3" for p in lp)        # a bare room number blocks nothing
    assert all(isinstance(v, list) for v in vague.values())


def test_decide_breaks_weight_ties_by_smaller_right_id_and_abstains_on_close_runner_up():
    spec = spec_from_dict({"name": "t", "left_id": "id", "right_id": "id", "blocking": [["k"]],
                           "comparisons": [{"name": "k", "levels": ["null", "exact", "else"]}],
                           "decision": {"min_weight": 0.0, "min_gap": 0.0}})
    scored = pd.DataFrame({"_id_l": ["a", "a", "b", "b"], "_id_r": ["r2", "r1", "r3", "r4"], "k": [1, 1, 1, 1],
                           "_compatible": [True, True, True, False], "_violations": ["", "", "", "k"],
                           "_same_text": [False] * 4, "weight": [3.0, 3.0, 2.0, 9.0]})
    out = decide(scored, pd.Series(["a", "b", "c"]), spec, initial_model(spec)).set_index("left_id")
    assert out.loc["a", "right_id"] == "r1"                    # tie on weight: the smaller id
    assert out.loc["b", "right_id"] == "r3"                    # r4 weighs more but is incompatible
    assert out.loc["c", "explanation"] == "unresolved=no_candidate"
    strict = spec.model_copy(update={"decision": spec.decision.model_copy(update={"min_gap": 1.0})})
    out = decide(scored, pd.Series(["a"]), strict, initial_model(strict)).set_index("left_id")
    assert out.loc["a", "right_id"] is None and "unresolved=ambiguous" in out.loc["a", "explanation"]


def test_pattern_counts_match_a_groupby():
    spec = load_spec("address_to_house")
    rng = np.random.default_rng(1)
    levels = pd.DataFrame({c.name: rng.integers(0, len(c.levels), 500) for c in spec.comparisons})
    names = [c.name for c in spec.comparisons]
    got = pattern_counts(levels, spec).sort_values(names).reset_index(drop=True)
    want = levels.groupby(names).size().rename("n").reset_index().sort_values(names).reset_index(drop=True)
    assert got["n"].tolist() == want["n"].tolist()
    assert (got[names].to_numpy() == want[names].to_numpy()).all()


def _dominance_case():
    """景田花园 vs 景田东花园 with the same building and room: the exact-name candidate beats the fuzzy one by
    less than min_gap but is as good on every comparison and better on the complex (Pareto dominance)."""
    spec = spec_from_dict({"name": "t", "left_id": "id", "right_id": "id", "blocking": [["b"]],
                           "comparisons": [{"name": "complex", "levels": ["null", "exact",
                                                                          {"kind": "ratio", "threshold": 0.6}, "else"]},
                                           {"name": "b", "levels": ["null", "exact", "else"]},
                                           {"name": "u", "levels": ["null", "exact", "else"]}],
                           "decision": {"min_weight": 0.0, "min_gap": 3.0}})
    # q1: exact complex + building vs fuzzy complex + building: dominated runner-up -> accepted
    # q2: exact complex but unit null vs fuzzy complex with unit exact: neither dominates -> ambiguous
    # q3: the dominated one is second, a non-dominated third is close -> ambiguous against the third
    # q4: equal weights (pooled levels): the dominating candidate ranks first though its id is larger
    scored = pd.DataFrame({
        "_id_l": ["q1", "q1", "q2", "q2", "q3", "q3", "q3", "q4", "q4"],
        "_id_r": ["jt", "jtd", "jt", "jtd", "a", "b", "c", "a", "z"],
        "complex": [1, 2, 1, 2, 1, 2, 1, 2, 1], "b": [1, 1, 1, 1, 1, 1, 1, 1, 1], "u": [0, 0, 0, 1, 1, 1, 0, 0, 0],
        "_compatible": [True] * 9, "_violations": [""] * 9, "_same_text": [False] * 9,
        "weight": [12.0, 9.5, 12.0, 11.0, 12.0, 11.5, 11.0, 9.0, 9.0]})
    return spec, scored


def test_decide_gap_applies_only_among_non_dominated_candidates():
    spec, scored = _dominance_case()
    out = decide(scored, pd.Series(["q1", "q2", "q3", "q4"]), spec, initial_model(spec)).set_index("left_id")
    assert out.loc["q4", "right_id"] == "z" and "dominates=a" in out.loc["q4", "explanation"]
    assert out.loc["q1", "right_id"] == "jt"
    assert "dominates=jtd" in out.loc["q1", "explanation"] and "gap=inf" in out.loc["q1", "explanation"]
    assert out.loc["q2", "right_id"] is None                     # null unit is not worse than exact: no dominance
    assert "unresolved=ambiguous" in out.loc["q2", "explanation"]
    assert out.loc["q3", "right_id"] is None                     # b is dominated, c (null unit) is not
    assert "runner_up=c" in out.loc["q3", "explanation"] and "gap=1.00;dominates=b" in out.loc["q3", "explanation"]
