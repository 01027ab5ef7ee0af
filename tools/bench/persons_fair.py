"""Persons only, gridlake vs Splink, repeated (issue 21 item 4): the fair bench's persons runners on existing
task directories, one engine after the other, ``--runs`` times per noise model, medians reported.

``python -m tools.bench.persons_fair --task default=DIR --task second=DIR --runs 3 --seed 20141 --scale street
--out docs/bench-persons-fair-street.json`` (run with a Python that has Splink: the ``bench`` extra). Each DIR
holds ``person_mentions.parquet`` (e.g. the ``bench-task-fair`` directory :mod:`tools.bench.fair_run` writes);
the runners (``python -m tools.bench.fair_run persons-gridlake|persons-splink --task DIR``) write their raw
output there. Scores (pairwise P/R/F1, without a valid ID, links across two valid IDs) come from the last
run's outputs by :func:`tools.bench.fair_run.person_task_scores`; the load average is read before and after
every run, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

ENGINES = ("persons-gridlake", "persons-splink")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_engine(engine: str, task: Path, env: dict[str, str]) -> dict[str, Any]:
    """One runner process: process wall seconds, peak RSS, in-engine seconds, load average before/after."""
    from tools.bench.kit import measure

    before = _load()
    m = measure([sys.executable, "-m", "tools.bench.fair_run", engine, "--task", str(task)], env)
    out: dict[str, Any] = {"process_s": m.seconds, "returncode": m.returncode, "peak_rss_mb": m.peak_python_rss_mb,
                           "load_before": before, "load_after": _load()}
    if m.returncode == 0:
        inner = json.loads((task / f"raw_{engine}.json").read_text(encoding="utf-8"))
        out["engine_s"] = inner["engine_s"]
        out["inner"] = inner
    return out


def _summary(s: dict[str, Any]) -> dict[str, Any]:
    return {"precision": s["pairwise"]["precision"], "recall": s["pairwise"]["recall"], "f1": s["pairwise"]["f1"],
            "without_valid_id_precision": s["pairwise_without_valid_id"]["precision"],
            "without_valid_id_recall": s["pairwise_without_valid_id"]["recall"],
            "links_across_two_valid_ids": s["different_valid_id_links"]}


def bench(tasks: dict[str, Path], runs: int, seed: int, scale: str) -> dict[str, Any]:
    """The report (see the module docstring)."""
    from tools.bench.fair_run import person_task_scores
    from tools.bench.kit import run_info

    repo = Path(__file__).resolve().parent.parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    report: dict[str, Any] = {"kind": "persons-fair", **run_info(), "seed": seed, "scale": scale, "runs": runs,
                              "load_before": _load(), "results": []}
    for noise, task in tasks.items():
        truth = pd.read_parquet(task / "person_mentions.parquet")
        n = int(truth["record_key"].nunique())
        per: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
        for i in range(runs):
            for eng in ENGINES:
                r = run_engine(eng, task, env)
                per[eng].append(r)
                log.info("%s run %d %s: engine %s s, process %.1f s, load %s -> %s", noise, i + 1, eng,
                         r.get("engine_s"), r["process_s"], r["load_before"], r["load_after"])
        entry: dict[str, Any] = {"noise_model": noise, "mentions": n, "engines": {}}
        for eng, rs in per.items():
            ok = [r for r in rs if r["returncode"] == 0]
            if not ok:
                entry["engines"][eng] = {"error": "runner failed", "runs": rs}
                continue
            eng_s = statistics.median(r["engine_s"] for r in ok)
            proc_s = statistics.median(r["process_s"] for r in ok)
            entry["engines"][eng] = {"engine_s_median": eng_s, "process_s_median": proc_s,
                                     "mentions_per_s_engine": round(n / eng_s, 1),
                                     "mentions_per_s_process": round(n / proc_s, 1),
                                     "runs": [{k: v for k, v in r.items() if k != "inner"} for r in rs],
                                     "inner_last": ok[-1]["inner"]}
        if all("engine_s_median" in entry["engines"][e] for e in ENGINES):
            sc = person_task_scores(truth, pd.read_parquet(task / "raw_persons-gridlake.parquet"),
                                    pd.read_parquet(task / "raw_persons-splink.parquet"), seed)
            entry["scores"] = {"gridlake": _summary(sc["gridlake"]),
                               "splink_tutorial_threshold": _summary(sc["splink_tutorial_threshold"]),
                               "split": sc["split"]}
            g, s = entry["engines"]["persons-gridlake"], entry["engines"]["persons-splink"]
            entry["ratio_engine"] = round(s["engine_s_median"] / g["engine_s_median"], 3)
            entry["ratio_process"] = round(s["process_s_median"] / g["process_s_median"], 3)
            entry["targets"] = {
                "throughput_at_least_splinks_in_engine": entry["ratio_engine"] >= 1.0,
                "throughput_at_least_splinks_process": entry["ratio_process"] >= 1.0,
                "f1_at_least_splinks": entry["scores"]["gridlake"]["f1"]
                >= entry["scores"]["splink_tutorial_threshold"]["f1"]}
        report["results"].append(entry)
    report["load_after"] = _load()
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", required=True, help="NOISE=DIR (repeatable)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20141)
    ap.add_argument("--scale", default="street")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    tasks = {t.split("=", 1)[0]: Path(t.split("=", 1)[1]) for t in args.task}
    report = bench(tasks, args.runs, args.seed, args.scale)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
