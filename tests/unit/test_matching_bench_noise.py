"""Bench and evaluation reports name the noise model and seed that produced their data (no Spark)."""

from __future__ import annotations

import pandas as pd
import pytest

from tools.bench.matching import bench_matching, run_info
from tools.evaluate import score_resolution
from tools.generate.config import generator_info, load_gen_config
from tools.generate.run import generate


def test_generator_info_reads_the_manifest(tmp_path) -> None:
    assert generator_info(tmp_path / "nothing") == {}
    generate(load_gen_config(scale="tiny", days=1, seed=4242, noise_file="second"), tmp_path)
    info = generator_info(tmp_path / "truth")
    assert info["seed"] == 4242 and info["noise_model"] == "second" and info["scale"] == "tiny"
    assert info["houses"] == 300 and info["days"] == 1


def test_unresolvable_answers_are_wrong_and_abstentions_right() -> None:
    truth = pd.DataFrame({"source": ["police_incidents"] * 3, "record_id": ["a", "b", "c"],
                          "house_code": ["H1", "", ""], "noise": ["", "typo_room", "missing_room"]})
    res = pd.DataFrame({"source": ["police_incidents"] * 3, "record_id": ["a", "b", "c"],
                        "house_code": ["H1", "H2", None], "method": ["fuzzy", "fuzzy", "unresolved"],
                        "explanation": ["", "", ""]})
    out = score_resolution(res, truth)
    assert out["unresolvable"] == {"records": 2, "abstained": 1, "answered_wrong": 1}
    assert out["overall"]["fp"] == 1 and out["overall"]["tp"] == 1 and out["overall"]["fn"] == 0
    assert out["by_noise"]["typo_room"]["fp"] == 1 and out["by_noise"]["missing_room"]["fp"] == 0


def test_bench_runs_each_noise_model_with_its_seed(tmp_path) -> None:
    report = bench_matching(["tiny"], tmp_path, engines=(), noise_models=("default", "second"), seed=4243)
    assert report["seed"] == 4243 and report["noise_models"] == ["default", "second"]
    assert report["machine"]["cpus"] and "commit" in report
    got = {(r["scale"], r["noise_model"], r["seed"]): r["generator"] for r in report["results"]}
    assert set(got) == {("tiny", "default", 4243), ("tiny", "second", 4243)}
    for (_, noise, seed), gen in got.items():
        assert gen["noise_model"] == noise and gen["seed"] == seed
    with pytest.raises(ValueError, match="third"):
        bench_matching(["tiny"], tmp_path, engines=(), noise_models=("third",))


def test_run_info_names_the_commit() -> None:
    info = run_info()
    assert info["commit"] is None or len(info["commit"]) == 40
    assert info["machine"]["python"]
