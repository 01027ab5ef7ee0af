"""tools.bench.matching: scoring against truth, the task builder on a tiny district, the Splink decision rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tools.bench.matching import QUERY_SOURCES, build_task, number_conflicts, score_answers, splink_decide


def test_score_answers_precision_recall_by_source() -> None:
    truth = pd.DataFrame({
        "id": ["a|1", "a|2", "a|3", "a|4", "b|1", "b|2"],
        "source": ["a", "a", "a", "a", "b", "b"],
        "true_code": ["H1", "H2", "H3", "", "H5", "H6"],   # a|4 deliberately unresolvable
    })
    answers = pd.DataFrame({
        "id": ["a|1", "a|2", "a|3", "a|4", "b|1"],            # b|2 missing = abstained
        "house_code": ["H1", "H9", None, "H4", "H5"],         # a|2 wrong, a|3 abstained, a|4 answered wrongly
    })
    s = score_answers(answers, truth)
    o = s["overall"]
    assert (o["tp"], o["fp"], o["fn"], o["records"]) == (2, 2, 3, 6)
    assert o["precision"] == pytest.approx(0.5)
    assert o["recall"] == pytest.approx(2 / 5)
    assert o["f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9, abs=1e-5)
    a, b = s["by_source"]["a"], s["by_source"]["b"]
    assert (a["tp"], a["fp"], a["fn"]) == (1, 2, 2)
    assert (b["tp"], b["fp"], b["fn"]) == (1, 0, 1)
    assert b["precision"] == 1.0 and b["recall"] == pytest.approx(0.5)


def test_number_conflicts_counts_answers_with_other_numbers(tmp_path: Path) -> None:
    pd.DataFrame({"house_code": ["H1", "H2", "H3"],
                  "address": ["福华花园3栋501", "福华花园3栋502", "福华花园3栋2单元501"]}).to_parquet(tmp_path / "registry.parquet")
    pd.DataFrame({"id": ["q1", "q2", "q3", "q4"],
                  "address": ["福华花园3栋501", "福华花园3栋501", "福华花园三栋", "福华花园3栋1单元501"]}
                 ).to_parquet(tmp_path / "queries.parquet")
    answers = pd.DataFrame({"id": ["q1", "q2", "q3", "q4"], "house_code": ["H1", "H2", "H1", "H3"]})
    got = number_conflicts(answers, tmp_path)
    # q2: room 501 answered with 502; q3 names no room (no conflict); q4: unit 1 answered with unit 2
    assert got == {"building": 0, "unit": 1, "floor": 0, "room": 1, "answers_checked": 4, "any": 2}


def test_score_answers_empty_string_is_abstention() -> None:
    truth = pd.DataFrame({"id": ["x|1"], "source": ["x"], "true_code": [""]})
    s = score_answers(pd.DataFrame({"id": ["x|1"], "house_code": [""]}), truth)
    assert s["overall"]["fp"] == 0 and s["overall"]["precision"] == 1.0 and s["overall"]["recall"] == 1.0


def test_splink_decide_threshold_and_margin() -> None:
    pairs = pd.DataFrame({
        "query_id": ["q1", "q1", "q2", "q2", "q3", "q4"],
        "house_code": ["H1", "H2", "H3", "H4", "H5", "H6"],
        "match_weight": [12.0, 4.0, 10.0, 9.5, 1.0, 8.0],
        "match_probability": [0.9998, 0.94, 0.999, 0.998, 0.66, 0.996],
    })
    d = splink_decide(pairs, threshold=0.9, margin_bits=1.0).set_index("id")["house_code"]
    assert d["q1"] == "H1"          # clear winner
    assert d["q2"] is None          # runner-up within 1 bit: ambiguous
    assert d["q3"] is None          # below the probability threshold
    assert d["q4"] == "H6"          # single candidate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, "-m", "gridlake.cli", "generate", "--scale", "tiny", "--days", "1",
                    "--data", str(data)], check=True, capture_output=True)
    return data


def test_build_task_on_tiny_district(tiny: Path) -> None:
    registry, queries, truth = build_task(tiny)
    raw = pd.read_parquet(tiny / "truth" / "records.parquet")
    assert len(registry) == int((raw["source"] == "housing").sum())
    assert registry["house_code"].is_unique and registry["address"].notna().all()
    expected = raw[raw["source"].isin(list(QUERY_SOURCES)) & ~raw["quarantine"]]
    assert len(queries) == expected[["source", "record_id"]].drop_duplicates().shape[0]
    assert set(queries["source"]) <= set(QUERY_SOURCES) and "declarations" in set(queries["source"])
    assert queries["id"].is_unique and list(truth["id"]) == list(queries["id"])
    assert set(queries["id"]) == set(expected["source"] + "|" + expected["record_id"])
    # every resolvable truth code is a registry house; the task's truth agrees with the generator's
    resolvable = truth[truth["true_code"] != ""]
    assert resolvable["true_code"].isin(registry["house_code"]).all()
    merged = truth.merge(expected.assign(id=expected["source"] + "|" + expected["record_id"])[["id", "house_code"]],
                         on="id").drop_duplicates("id")
    assert (merged["true_code"] == merged["house_code"].fillna("")).all()


def test_gridlake_perfect_on_its_own_registry(tiny: Path) -> None:
    registry, _, _ = build_task(tiny)
    sample = registry.head(30)
    from tools.bench.matching import run_gridlake

    out = run_gridlake(registry, pd.DataFrame({"id": sample["house_code"], "address": sample["address"]}))
    truth = pd.DataFrame({"id": sample["house_code"], "source": "housing", "true_code": sample["house_code"]})
    assert score_answers(out, truth)["overall"]["fp"] == 0


def test_splink_runs_on_tiny_task(tiny: Path) -> None:
    pytest.importorskip("splink")
    from tools.bench.matching import run_splink

    registry, queries, truth = build_task(tiny)
    out = run_splink(registry, queries)
    assert set(out["id"]) == set(queries["id"])
    s = score_answers(out, truth)["overall"]
    assert s["tp"] > 0 and s["precision"] >= 0.9
