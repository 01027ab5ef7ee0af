"""tools.bench.fair / splink_setup: the fair set-up's capped keys, threshold tuning and Splink settings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from matching.spec import load_spec
from tools.bench.fair import GAP_GRID, NAME_COLUMNS, capped_keys, decide, rule_columns, split_ids, tune


def test_rule_columns_name_slices_sql_safely() -> None:
    assert rule_columns(["complex[:2]", "building", "room"]) == ["complex___2", "building", "room"]
    assert rule_columns(["complex[-2:]"]) == ["complex__m2_"]


def test_capped_keys_follow_max_block_size_and_fallback() -> None:
    spec = load_spec("address_to_house")
    cap = spec.max_block_size
    cols = sorted({c for r in (*spec.blocking, *spec.blocking_fallback) for c in rule_columns(r)})
    # registry: cap+1 houses share building 1 room 101 in different complexes (too vague for [building, room]),
    # one house in complex A building 2 (no room: reachable by the fallback [complex, building] only)
    reg = pd.DataFrame({c: [None] * (cap + 2) for c in cols}, dtype=object)
    reg["complex"] = [f"C{i}" for i in range(cap + 1)] + ["A"]
    reg["building"] = ["1"] * (cap + 1) + ["2"]
    reg["room"] = ["101"] * (cap + 1) + [None]
    qry = pd.DataFrame({c: [None, None, None] for c in cols}, dtype=object)
    qry["complex"] = ["C3", "ZZ", "A"]
    qry["building"] = ["1", "1", "2"]
    qry["room"] = ["101", "101", None]
    names, stats = capped_keys(reg, qry, spec)
    i_cbr = spec.blocking.index(("complex", "building", "room"))
    i_br = spec.blocking.index(("building", "room"))
    i_fb = spec.blocking_fallback.index(("complex", "building"))
    assert qry[f"blk_{i_cbr}"].notna().tolist() == [True, False, False]
    assert qry[f"blk_{i_br}"].isna().all() and reg[f"blk_{i_br}"].isna().all()      # cap+1 > max_block_size
    assert stats[f"blk_{i_br}"]["queries_too_vague"] == 2 and stats[f"blk_{i_br}"]["registry_keys_over_cap"] == 1
    # the fallback key is set only on the query the main rules found nothing for
    assert qry[f"fbk_{i_fb}"].notna().tolist() == [False, False, True]
    assert qry.loc[2, f"fbk_{i_fb}"] == reg.loc[cap + 1, f"fbk_{i_fb}"]
    assert len(names) == len(spec.blocking) + len(spec.blocking_fallback)


def test_tune_picks_best_f1_and_decide_applies_it() -> None:
    raw = pd.DataFrame({"id": ["a", "b", "c", "d"], "house_code": ["H1", "H2", "HX", "H4"],
                        "weight": [20.0, 15.0, 8.0, 12.0], "gap": [math.inf, 10.0, 9.0, 0.2]})
    truth = pd.DataFrame({"id": ["a", "b", "c", "d"], "true_code": ["H1", "H2", "H3", "H4"]})
    best = tune(raw, truth)
    # c (weight 8) is wrong: a threshold above 8 keeps a, b and d is lost only to a gap >= 0.25
    assert 8.0 < best["min_weight"] <= 12.0 and best["min_gap"] in GAP_GRID and best["min_gap"] <= 0.2
    assert best["f1"] == pytest.approx(2 * 0.75 / 1.75, abs=1e-5)      # c stays a miss (its house is H3)
    assert best["precision"] == 1.0 and best["recall"] == pytest.approx(0.75)
    d = decide(raw, best["min_weight"], best["min_gap"]).set_index("id")["house_code"]
    assert d["c"] is None and d["d"] == "H4"
    assert decide(raw, 0.0, 1.0).set_index("id")["house_code"]["d"] is None


def test_split_ids_is_stable_and_about_half() -> None:
    ids = pd.Series([f"q{i}" for i in range(2000)])
    a, b = split_ids(ids, 7), split_ids(ids, 7)
    assert (a == b).all() and 0.45 < a.mean() < 0.55
    assert not np.array_equal(a, split_ids(ids, 8))


def test_splink_address_settings_documented_rules() -> None:
    pytest.importorskip("splink")
    from tools.bench.splink_setup import (
        ADDRESS_COMPARED,
        ADDRESS_EM_SESSIONS,
        address_settings,
        em_session_columns,
    )

    d = address_settings(50_000, ["blk_0", "blk_1", "fbk_0"]).create_settings_dict("duckdb")
    assert d["link_type"] == "link_only"
    assert d["probability_two_random_records_match"] == pytest.approx(1 / 50_000)
    assert [r["blocking_rule"] for r in d["blocking_rules_to_generate_predictions"]] == [
        'l."blk_0" = r."blk_0"', 'l."blk_1" = r."blk_1"', 'l."fbk_0" = r."fbk_0"']
    comps = {c["output_column_name"]: c for c in d["comparisons"]}
    assert tuple(comps) == ADDRESS_COMPARED
    for name in (*NAME_COLUMNS, "street"):     # term-frequency adjustments on the exact level of every name
        exact = [lv for lv in comps[name]["comparison_levels"] if lv.get("tf_adjustment_column") == name]
        assert len(exact) == 1, name
    for name in ("road", "complex", "village", "lane"):   # the same-sound level on the derived column
        assert any(f'"{name}_py_l" = "{name}_py_r"' in lv["sql_condition"] for lv in comps[name]["comparison_levels"])
    for num in ("building", "room", "unit", "floor", "lane_no", "door_no"):
        assert len(comps[num]["comparison_levels"]) == 3      # null, exact, else
    # every compared column is estimated by at least one EM session
    cover = em_session_columns(ADDRESS_EM_SESSIONS, ADDRESS_COMPARED)
    assert all(cover[c] for c in ADDRESS_COMPARED) and len(ADDRESS_EM_SESSIONS) >= 3


def test_splink_person_settings_follow_the_tutorial_shape() -> None:
    pytest.importorskip("splink")
    from tools.bench.splink_setup import PERSON_BLOCKING, person_settings

    spec = load_spec("person")
    d = person_settings().create_settings_dict("duckdb")
    assert d["link_type"] == "dedupe_only" and d["unique_id_column_name"] == "record_key"
    assert len(d["blocking_rules_to_generate_predictions"]) == len(PERSON_BLOCKING) == len(spec.blocking)
    names = [c["output_column_name"] for c in d["comparisons"]]
    assert names == ["name", "id_text", "birth", "sex", "phone", "house_code"]
    tf = {c["output_column_name"] for c in d["comparisons"]
          for lv in c["comparison_levels"] if lv.get("tf_adjustment_column")}
    assert {"name", "phone", "house_code"} <= tf


def test_pairwise_fast_equals_the_evaluators_pair_sets() -> None:
    from tools.bench.fair_run import pairwise_fast
    from tools.persons_eval import pairwise_counts

    rng = np.random.default_rng(3)
    pred, true = rng.integers(0, 40, 300), rng.integers(0, 50, 300)
    involve = rng.random(300) < 0.3
    assert pairwise_fast(pred, true) == pairwise_counts(pd.Series(pred), pd.Series(true))
    assert pairwise_fast(pred, true, involve) == pairwise_counts(pd.Series(pred), pd.Series(true), involve)
    assert pairwise_fast(np.arange(5), np.arange(5))["predicted"] == 0


def test_fair_engines_score_the_same_pairs_on_a_tiny_district(tmp_path) -> None:
    """Real engines on a generated tiny district: Splink's capped blocking makes exactly gridlake's candidate
    pairs, both return one raw decision per query, and the tuned decisions score well on the test half."""
    pytest.importorskip("splink")
    import subprocess
    import sys

    from tools.bench.fair import score_split
    from tools.bench.fair_run import run_gridlake_raw
    from tools.bench.matching import build_task
    from tools.bench.splink_setup import run_splink_addresses

    subprocess.run([sys.executable, "-m", "gridlake.cli", "generate", "--scale", "tiny", "--days", "1",
                    "--data", str(tmp_path)], check=True, capture_output=True)
    registry, queries, truth = build_task(tmp_path)
    g, s = run_gridlake_raw(registry, queries), run_splink_addresses(registry, queries)
    assert s.attrs["comparisons_total"] == g.attrs["candidate_pairs"] > 0
    assert all(x["ok"] for x in s.attrs["em_sessions"]) and s.attrs["duckdb_peak_spill_mb"] == 0.0
    for raw in (g, s):
        assert sorted(raw["id"]) == sorted(queries["id"])
        sc = score_split(raw, truth, split_ids(truth["id"], 1), None)
        assert sc["test"]["overall"]["f1"] >= 0.95
