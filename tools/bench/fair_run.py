"""The fair gridlake-vs-Splink benchmark (issue 22 item 3, issue 21 item 4): addresses and persons.

``python -m tools.bench.fair_run bench --scale street --noise default,second --data ROOT --output R.json``
generates (or reuses) each district like ``gridlake bench matching`` (``ROOT/bench-matching/<scale>[-<noise>]-s<seed>``),
builds the address task (``tools.bench.matching.build_task``), and runs each engine as its own process
(``python -m tools.bench.fair_run run-gridlake|run-splink|persons-gridlake|persons-splink --task DIR``),
measured by :func:`tools.bench.kit.measure`: **process wall time** (interpreter start, imports, reading the
task, everything) and, from the engine's own timings, **in-engine time** (``engine_s``: features, blocking,
training, scoring, deciding; Splink's blocking analysis is reported separately as ``analysis_s``).

Addresses: both engines return raw decisions (best compatible candidate, its weight, its gap to the runner-up;
numbers hard in both); each engine's (min_weight, min_gap) is chosen by best F1 on the tuning half of the
queries (:func:`tools.bench.fair.split_ids`) and scored on the other half (``test``). gridlake's own spec
thresholds are also scored on the test half. Persons: the generated person mentions
(``truth/person_mentions.parquet``), gridlake's ``person`` spec vs Splink's person-dedup tutorial set-up;
pairwise P/R/F1 (``tools.persons_eval``) on all mentions, Splink both at the tutorial's threshold and at the
threshold with the best pairwise F1 on the tuning half of the mentions, scored on the other half.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["run_gridlake_raw", "bench_fair", "person_task_scores", "main"]

ENGINES = ("gridlake", "splink")
TIMEOUT_S = int(os.environ.get("GRIDLAKE_BENCH_TIMEOUT_S", "3600"))


def _gap(expl: object) -> float:
    if not isinstance(expl, str) or "gap=" not in expl:
        return math.inf
    v = expl.split("gap=", 1)[1].split(";", 1)[0]
    return math.inf if v == "inf" else float(v)


def run_gridlake_raw(registry: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    """gridlake's engine with the ``address_to_house`` spec, its decision opened (min_weight -inf, min_gap 0):
    per query the best compatible candidate (must-agree rules applied), its weight and its gap to the
    runner-up as the engine computes it (``gap=`` of the explanation). ``attrs``: engine_s, candidate pairs."""
    from matching.engine import link
    from matching.spec import load_spec

    spec = load_spec("address_to_house")
    defaults = (spec.decision.min_weight, spec.decision.min_gap)
    open_spec = spec.model_copy(update={"decision": spec.decision.model_copy(
        update={"min_weight": -1e9, "min_gap": 0.0})})
    seen: dict[str, Any] = {}

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "candidate pairs" in str(record.msg) and record.args:
                seen["candidate_pairs"], seen["too_vague_records"] = int(record.args[3]), int(record.args[4])

    eng = logging.getLogger("matching.engine")
    h, level = Grab(), eng.level
    eng.addHandler(h)
    eng.setLevel(logging.INFO)
    t0 = time.monotonic()
    try:
        dec, model = link(queries[["id", "address"]].rename(columns={"id": spec.left_id}),
                          registry[["house_code", "address"]].drop_duplicates("house_code"), open_spec)
    finally:
        eng.removeHandler(h)
        eng.setLevel(level)
    t1 = time.monotonic()
    out = pd.DataFrame({"id": dec["left_id"].astype(str), "house_code": dec["right_id"],
                        "weight": dec["weight"].astype(float), "gap": [_gap(e) for e in dec["explanation"]]})
    out["house_code"] = out["house_code"].astype(object).where(out["house_code"].notna(), None)
    out.attrs.update({"engine_s": round(t1 - t0, 2), "default_thresholds": list(defaults), **seen,
                      "em_iterations": int(getattr(model, "iterations", 0) or 0)})
    return out


# --- persons ---------------------------------------------------------------------------------------------

def _person_truth(task: Path) -> pd.DataFrame:
    return pd.read_parquet(task / "person_mentions.parquet")


def run_gridlake_persons(truth: pd.DataFrame) -> pd.DataFrame:
    """gridlake's ``person`` spec on the delivered columns: record_key, person_key; ``attrs`` engine_s."""
    from matching.person_link import resolve_persons

    t0 = time.monotonic()
    res, model = resolve_persons(truth[["record_key", "name", "phone", "id_number", "house_code"]],
                                 b"bench-key-not-secret")
    out = res[["record_key", "person_key"]].copy()
    out.attrs.update({"engine_s": round(time.monotonic() - t0, 2), "em_iterations": int(model.iterations)})
    return out


def run_splink_persons_task(truth: pd.DataFrame) -> pd.DataFrame:
    """Splink's tutorial set-up on the same mentions, prepared by gridlake's ``prepare_mentions`` (the same
    derived features: validated ID, ID text, birth and sex from the ID, name sound, normalised phone).
    Returns the pairs (record_key_l, record_key_r, match_probability) with the clusters in ``attrs``."""
    from matching.person_link import prepare_mentions
    from tools.bench.splink_setup import run_splink_persons

    t0 = time.monotonic()
    prepared = prepare_mentions(truth[["record_key", "name", "phone", "id_number", "house_code"]]
                                ).drop_duplicates("record_key").reset_index(drop=True)
    t_prep = time.monotonic() - t0
    pairs, clusters = run_splink_persons(prepared)
    pairs.attrs.update({**clusters.attrs, "engine_s": round(t_prep + clusters.attrs["engine_s"], 2),
                        "prepare_s": round(t_prep, 2)})
    pairs.attrs["clusters_at_tutorial_threshold"] = int(clusters["cluster_id"].nunique())
    return pairs


def _components(keys: np.ndarray, pairs: pd.DataFrame, threshold: float) -> pd.Series:
    """Connected components (Splink's clustering) of ``keys`` under pairs with probability >= threshold."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    idx = pd.Index(keys)
    p = pairs[pairs["match_probability"] >= threshold]
    a, b = idx.get_indexer(p["record_key_l"]), idx.get_indexer(p["record_key_r"])
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(keys), len(keys)))
    _, lab = connected_components(g, directed=False)
    return pd.Series(lab, index=keys)


def _c2(n: np.ndarray | pd.Series) -> int:
    n = np.asarray(n, dtype=np.int64)
    return int((n * (n - 1) // 2).sum())


def pairwise_fast(pred: np.ndarray, true: np.ndarray, involve: np.ndarray | None = None) -> dict[str, Any]:
    """Pairwise tp / predicted / true / P / R / F1 by counting (``n choose 2`` per cluster and per cell of
    predicted x true cluster), so a large predicted cluster costs nothing; with ``involve`` only pairs with
    at least one involved record count (all pairs minus the pairs among non-involved records).
    Same definition as ``tools.persons_eval.pairwise_counts``."""
    df = pd.DataFrame({"p": pred, "t": true})

    def counts(d: pd.DataFrame) -> tuple[int, int, int]:
        return (_c2(d.groupby(["p", "t"]).size()), _c2(d.groupby("p").size()), _c2(d.groupby("t").size()))

    tp, pp, tt = counts(df)
    if involve is not None:
        tp_o, pp_o, tt_o = counts(df[~np.asarray(involve, dtype=bool)])
        tp, pp, tt = tp - tp_o, pp - pp_o, tt - tt_o
    p = round(tp / pp, 6) if pp else None
    r = round(tp / tt, 6) if tt else None
    f1 = round(2 * p * r / (p + r), 6) if p and r else None
    return {"tp": tp, "predicted": pp, "true": tt, "precision": p, "recall": r, "f1": f1}


def _person_report(pred: np.ndarray, truth: pd.DataFrame, valid: np.ndarray) -> dict[str, Any]:
    from tools.persons_eval import bcubed

    true = truth["person_id"].to_numpy(dtype=object)
    no_valid = np.array([v is None for v in valid])
    vv = pd.DataFrame({"p": pred, "v": valid}).dropna(subset=["v"])
    different = _c2(vv.groupby("p").size()) - _c2(vv.groupby(["p", "v"]).size())
    return {"records": len(truth), "records_without_valid_id": int(no_valid.sum()),
            "pairwise": pairwise_fast(pred, true), "pairwise_without_valid_id": pairwise_fast(pred, true, no_valid),
            "bcubed": bcubed(pd.Series(pred), pd.Series(true)), "different_valid_id_links": different}


def person_task_scores(truth: pd.DataFrame, gl: pd.DataFrame, sp_pairs: pd.DataFrame, seed: int
                       ) -> dict[str, Any]:
    """Pairwise (and B-cubed) scores of both engines on all mentions; Splink also at the threshold with the
    best pairwise F1 on the tuning half (by record), scored on the test half, next to gridlake on that half."""
    from matching.person_link import id_parts
    from tools.bench.fair import split_ids

    truth = truth.drop_duplicates("record_key").reset_index(drop=True)
    keys = truth["record_key"].astype(str).to_numpy(dtype=object)
    true = truth["person_id"].to_numpy(dtype=object)
    valid = np.array([id_parts(v)[0] if isinstance(v, str) and v.strip() else None for v in truth["id_number"]],
                     dtype=object)
    tuning = split_ids(pd.Series(keys), seed)
    glk = gl.drop_duplicates("record_key").set_index("record_key")["person_key"].reindex(keys).to_numpy(dtype=object)
    out: dict[str, Any] = {"gridlake": _person_report(glk, truth, valid),
                           "splink_tutorial_threshold": _person_report(
                               _components(keys, sp_pairs, 0.95).to_numpy(), truth, valid)}
    best: dict[str, Any] = {"f1": -1.0}
    for t in (0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999, 0.99999):
        lab = _components(keys, sp_pairs, t).to_numpy()
        pc = pairwise_fast(lab[tuning], true[tuning])
        if (pc["f1"] or 0) > best["f1"]:
            best = {"threshold": t, "f1": pc["f1"] or 0, "precision": pc["precision"], "recall": pc["recall"]}
    lab = _components(keys, sp_pairs, best["threshold"]).to_numpy()
    test = ~tuning
    out["split"] = {"tuning_records": int(tuning.sum()), "test_records": int(test.sum()),
                    "splink_chosen_on_tuning": best,
                    "splink_test": pairwise_fast(lab[test], true[test]),
                    "gridlake_test": pairwise_fast(glk[test], true[test])}
    return out


# --- processes -------------------------------------------------------------------------------------------

def _runner(engine: str, task: Path) -> int:
    t0 = time.monotonic()
    if engine in ("run-gridlake", "run-splink"):
        registry = pd.read_parquet(task / "registry.parquet")
        queries = pd.read_parquet(task / "queries.parquet")
        load_s = time.monotonic() - t0
        if engine == "run-gridlake":
            out = run_gridlake_raw(registry, queries)
        else:
            from tools.bench.splink_setup import run_splink_addresses

            out = run_splink_addresses(registry, queries)
        name = engine.split("-", 1)[1]
    else:
        truth = _person_truth(task)
        load_s = time.monotonic() - t0
        out = run_gridlake_persons(truth) if engine == "persons-gridlake" else run_splink_persons_task(truth)
        name = engine
    attrs = dict(out.attrs)
    attrs["load_s"] = round(load_s, 2)
    out = out.copy()
    out.attrs = {}
    out.to_parquet(task / f"raw_{name}.parquet", index=False)
    (task / f"raw_{name}.json").write_text(json.dumps(attrs, ensure_ascii=False, default=str), encoding="utf-8")
    return 0


def _measure(engine: str, task: Path, env: dict[str, str]) -> dict[str, Any]:
    from tools.bench.kit import measure

    m = measure(["timeout", "-s", "KILL", str(TIMEOUT_S), sys.executable, "-m", "tools.bench.fair_run", engine,
                 "--task", str(task)], env)
    out = {"process_wall_s": m.seconds, "returncode": m.returncode, "peak_rss_mb": m.peak_python_rss_mb}
    (task / f"measure_{engine}.json").write_text(json.dumps(out), encoding="utf-8")
    return out


def _splink_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("splink") is not None


def _splink_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("splink")
    except PackageNotFoundError:
        return None


def _attrs(task: Path, name: str) -> dict[str, Any]:
    return json.loads((task / f"raw_{name}.json").read_text(encoding="utf-8"))


def bench_fair(scales: list[str], root: Path, noise_models: tuple[str, ...], seed: int,
               persons: bool = True) -> dict[str, Any]:
    """The report: per scale and noise model, both engines on the address task (tuned on one half, scored on
    the other) and, with ``persons``, on the person mentions."""
    from tools.bench.fair import score_split, split_ids
    from tools.bench.kit import run_info
    from tools.bench.matching import number_conflicts, write_task
    from tools.generate.config import generator_info

    repo = Path(__file__).resolve().parent.parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    results = []
    for scale, noise in [(s, n) for s in scales for n in noise_models]:
        data = root / f"{scale}{'' if noise == 'default' else '-' + noise}-s{seed}"
        if not (data / ".bench-generated").exists():
            from tools.bench.kit import measure

            gen = measure([sys.executable, "-m", "gridlake.cli", "generate", "--scale", scale, "--days", "1",
                           "--noise", noise, "--seed", str(seed), "--data", str(data)], dict(env, GRIDLAKE_DATA=str(data)))
            if gen.returncode != 0:
                results.append({"scale": scale, "noise_model": noise, "error": "generate failed"})
                continue
            (data / ".bench-generated").write_text("ok\n", encoding="utf-8")
        task = data / "bench-task-fair"
        entry: dict[str, Any] = {"scale": scale, "noise_model": noise, "seed": seed,
                                 "generator": generator_info(data / "truth"), "task": write_task(data, task)}
        truth = pd.read_parquet(task / "truth.parquet")
        tuning = split_ids(truth["id"], seed)
        entry["engines"] = {}
        for eng in ENGINES:
            if eng == "splink" and not _splink_available():
                entry["engines"][eng] = {"skipped": "splink not installed (pip extra 'bench')"}
                continue
            m = _measure(f"run-{eng}", task, env)
            if m["returncode"] != 0:
                entry["engines"][eng] = {**m, "error": "engine failed"}
                continue
            raw = pd.read_parquet(task / f"raw_{eng}.parquet")
            a = _attrs(task, eng)
            defaults = tuple(a["default_thresholds"]) if eng == "gridlake" else None
            sc = score_split(raw, truth, tuning, defaults)
            from tools.bench.fair import decide

            chosen = sc["chosen_on_tuning"]
            answers = decide(raw, chosen["min_weight"], chosen["min_gap"])
            entry["engines"][eng] = {**m, "engine_s": a["engine_s"],
                                     "records_per_s_engine": round(len(truth) / a["engine_s"], 1),
                                     "records_per_s_process": round(len(truth) / m["process_wall_s"], 1),
                                     "inner": a, **sc, "number_conflicts": number_conflicts(answers, task)}
            log.info("%s %s %s: engine %.1fs, process %.1fs, test F1 %s", scale, noise, eng, a["engine_s"],
                     m["process_wall_s"], sc["test"]["overall"]["f1"])
        g, s = entry["engines"].get("gridlake", {}), entry["engines"].get("splink", {})
        if "engine_s" in g and "engine_s" in s:
            entry["ratio_engine"] = round(s["engine_s"] / g["engine_s"], 3)
            entry["ratio_process"] = round(s["process_wall_s"] / g["process_wall_s"], 3)
            entry["f1_test"] = {"gridlake": g["test"]["overall"]["f1"], "splink": s["test"]["overall"]["f1"]}
            entry["targets"] = {"throughput_2x_in_engine": entry["ratio_engine"] >= 2.0,
                                "f1_higher": g["test"]["overall"]["f1"] > s["test"]["overall"]["f1"]}
        if persons and _splink_available() and (data / "truth" / "person_mentions.parquet").exists():
            entry["persons"] = _bench_persons(data, task, env, seed)
        results.append(entry)
    return {"kind": "matching-fair", **run_info(), "seed": seed, "scales": scales, "noise_models": list(noise_models),
            "splink": {"version": _splink_version()}, "results": results}


def _bench_persons(data: Path, task: Path, env: dict[str, str], seed: int) -> dict[str, Any]:
    truth = pd.read_parquet(data / "truth" / "person_mentions.parquet")
    truth.to_parquet(task / "person_mentions.parquet", index=False)
    out: dict[str, Any] = {"mentions": len(truth)}
    for eng in ("persons-gridlake", "persons-splink"):
        out[eng] = _measure(eng, task, env)
        if out[eng]["returncode"] == 0:
            a = _attrs(task, eng)
            out[eng].update({"engine_s": a["engine_s"], "records_per_s_engine": round(len(truth) / a["engine_s"], 1),
                             "records_per_s_process": round(len(truth) / out[eng]["process_wall_s"], 1),
                             "inner": a})
    if all(out[e]["returncode"] == 0 for e in ("persons-gridlake", "persons-splink")):
        gl = pd.read_parquet(task / "raw_persons-gridlake.parquet")
        sp = pd.read_parquet(task / "raw_persons-splink.parquet")
        out["scores"] = person_task_scores(truth, gl, sp, seed)
    return out


def main(argv: list[str] | None = None) -> int:
    """Runner and bench entry (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m tools.bench.fair_run")
    ap.add_argument("what", choices=["bench", "run-gridlake", "run-splink", "persons-gridlake", "persons-splink"])
    ap.add_argument("--task", type=Path)
    ap.add_argument("--scale", default="street")
    ap.add_argument("--noise", default="default,second")
    ap.add_argument("--seed", type=int, default=20141)
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--output", type=Path)
    ap.add_argument("--no-persons", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.what == "bench" else logging.WARNING)
    if args.what != "bench":
        return _runner(args.what, args.task)
    import datetime as dt

    report = bench_fair([s for s in args.scale.split(",") if s], args.data / "bench-matching",
                        tuple(n for n in args.noise.split(",") if n), args.seed, persons=not args.no_persons)
    report["written_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out = args.output or args.data / "reports" / "bench" / "matching-fair.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    log.info("report: %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
