"""What person linkage changes in the collision rules: R1/R2/R5 with and without ``gold.person_resolution``.

``python -m tools.persons_rules_eval --data D --date YYYY-MM-DD --output R.json`` reads a lake on which the
night ``date`` has run through matching (``gold.person_resolution`` written) and evaluates the rules twice on
the same silver and house resolution (:func:`jobs.gold.rules.prepare` / :func:`jobs.gold.rules.detect`):

* **without persons**: no ``gold.person_resolution`` (a declaration quarantined for its ID checksum never
  counts; R5 on the raw validated ID number) — the rule path before person linkage;
* **with persons**: as the nightly gold stage runs it.

Both are scored against the generator's planted truth (:func:`tools.rule_evaluation.score`: the truth counts a
mistyped-ID declaration as a declaration, since the resident did declare). The report holds counts and
ratios per rule only (no names, ID numbers, phones or keys) and the commit, seed, scale and machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["compare_rules", "main"]

#: the rules person linkage can change
PERSON_RULES = ("R1", "R2", "R5")


def compare_rules(spark: Any, settings: Any, date: dt.date) -> dict[str, Any]:
    """``{"without_persons": per-rule metrics, "with_persons": ..., "false_cases": {rule: [before, after]}}``
    for night ``date`` of the lake of ``settings``."""
    from gridlake.context import RunContext
    from gridlake.manifest import Manifest
    from gridlake.privacy import load_key
    from gridlake.rules_config import load_rules
    from jobs.gold.rules import detect, prepare
    from jobs.gold.runner import read_inputs, read_persons
    from tools.rule_evaluation import raised_keys, score, truth_keys

    ctx = RunContext(settings, spark, date, f"persons_rules__{date.isoformat()}",
                     Manifest.open(settings, f"persons_rules__{date.isoformat()}", date), extras={})
    key, rules = load_key(settings), load_rules()
    silver, hr = read_inputs(ctx)
    persons, failed = read_persons(ctx)
    if persons is None:
        raise SystemExit(f"no gold.person_resolution in {settings.data_root}: run the night through matching first")
    truth = truth_keys(spark, settings, date).persist()
    out: dict[str, Any] = {}
    for label, kwargs in (("without_persons", {}),
                          ("with_persons", {"person_resolution": persons, "failed_declarations": failed})):
        p = prepare(silver, hr, rules, date, key=key, **kwargs)
        det = detect(p, rules, date, key).localCheckpoint()
        out[label] = {r: m for r, m in score(raised_keys(det), truth).items() if r in PERSON_RULES}
    truth.unpersist()
    out["false_cases"] = {r: [out["without_persons"][r]["fp"], out["with_persons"][r]["fp"]] for r in PERSON_RULES}
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m tools.persons_rules_eval")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--output", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from gridlake.config import load_settings
    from gridlake.spark import get_spark

    settings = load_settings(data_root=args.data)
    date = dt.date.fromisoformat(args.date)
    report = compare_rules(get_spark(settings), settings, date)
    truth_manifest = settings.truth / "manifest.json"
    generator = json.loads(truth_manifest.read_text(encoding="utf-8")) if truth_manifest.exists() else {}
    from tools.bench.kit import run_info

    report = {"issue": 21, "what": __doc__.splitlines()[0], "night": args.date, "made_with": run_info(),
              "generator": {"seed": generator.get("seed"), "scale": generator.get("scale"),
                            "noise_model": generator.get("noise_model"),
                            "houses": generator.get("summary", {}).get("houses"),
                            "nights_generated": generator.get("summary", {}).get("nights")},
              **report}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    log.info("false R1/R2/R5 cases without -> with persons: %s; report %s", report["false_cases"], args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
