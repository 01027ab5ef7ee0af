"""Accuracy under test: address resolution on a district written with the SECOND noise model.

A community-scale district (2,000 houses, one night) is generated with the second noise model
(gridlake/generate/noise_second.py: numerals of every kind in every numbered component, marker variants,
notes and fillers, components out of order, missing and repeated admin levels, short forms, homophones by
sound, traditional characters, typo'd building/room numbers and missing rooms whose right answer is no house)
and resolved in-process with the pandas engine and the address spec, as ``gridlake resolve-addresses`` does.

SEED 50329 is used nowhere else in the repository: it is not a seed to tune on. Do not look at the
failing texts of this seed to fix the parser; generate another seed for that. Thresholds are the issue's
targets and are not to be lowered: precision >= 0.995, recall >= 0.97, and never an answer whose building,
unit, floor or room differs from a number written in the text. No Spark.
"""

from __future__ import annotations

import pandas as pd
import pytest

from gridlake.generate.config import generator_info, load_gen_config
from gridlake.generate.run import generate
from matching.bench import build_task, number_conflicts, run_gridlake, score_answers

SEED = 50329          # used only here (see the module docstring)
MIN_PRECISION = 0.995
MIN_RECALL = 0.97


def _by_kind(answers: pd.DataFrame, truth: pd.DataFrame, data) -> str:
    """Per noise kind: records, wrong answers and misses (kind names and counts only, no texts)."""
    rec = pd.read_parquet(data / "truth" / "records.parquet", columns=["source", "record_id", "noise"])
    rec["id"] = rec["source"] + "|" + rec["record_id"]
    df = truth.merge(answers[["id", "house_code"]], on="id", how="left")
    df["pred"] = df["house_code"].fillna("").astype(str)
    df["wrong"] = (df["pred"] != "") & (df["pred"] != df["true_code"])
    df["missed"] = (df["true_code"] != "") & (df["pred"] == "")
    df = df.merge(rec.drop_duplicates("id")[["id", "noise"]], on="id", how="left")
    df["kind"] = df["noise"].fillna("").str.split(";")
    ex = df.explode("kind")
    ex = ex[ex["kind"].fillna("") != ""]
    g = ex.groupby("kind").agg(records=("id", "size"), wrong=("wrong", "sum"), missed=("missed", "sum"))
    g = g[(g["wrong"] > 0) | (g["missed"] > 0)].sort_values(["wrong", "missed"], ascending=False)
    return g.to_string()


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    data = tmp_path_factory.mktemp("accuracy-second")
    generate(load_gen_config(scale="community", days=1, seed=SEED, noise_model="second"), data)
    return data


def test_second_noise_model_accuracy(district, tmp_path) -> None:
    info = generator_info(district / "truth")
    assert info["noise_model"] == "second" and info["seed"] == SEED
    registry, queries, truth = build_task(district)
    assert len(queries) > 3000 and (truth["true_code"] == "").sum() > 50   # unresolvable records are planted
    answers = run_gridlake(registry, queries)
    scores = score_answers(answers, truth)["overall"]
    task = tmp_path / "task"
    task.mkdir()
    queries.to_parquet(task / "queries.parquet", index=False)
    registry.to_parquet(task / "registry.parquet", index=False)
    conflicts = number_conflicts(answers, task)
    detail = (f"seed {SEED}, noise model second, community scale: {scores}; number conflicts {conflicts}\n"
              f"failing noise kinds:\n{_by_kind(answers, truth, district)}")
    print(detail.splitlines()[0])   # the figure, in CI's log
    assert conflicts["any"] == 0, detail
    assert scores["precision"] >= MIN_PRECISION, detail
    assert scores["recall"] >= MIN_RECALL, detail
