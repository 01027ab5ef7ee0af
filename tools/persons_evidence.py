"""Evidence of person linkage on one generated district: ``python -m tools.persons_evidence DATA OUT.json LABEL``.

Resolves ``DATA/truth/person_mentions.parquet`` (delivered columns only) with ``tools.persons_eval`` and writes
the report with the commit, the generator run (seed, scale, days, noise model, person noise model) and a label
(e.g. ``held-out``, ``seen before``). Counts and ratios only: no names, phones, ID numbers or person keys.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from tools.bench.kit import run_info
from tools.persons_eval import evaluate_persons

log = logging.getLogger(__name__)


def main(data: str, out: str, label: str) -> None:
    """Write the evidence JSON of ``data`` to ``out``."""
    manifest = json.loads((Path(data) / "truth" / "manifest.json").read_text(encoding="utf-8"))
    model = manifest.get("noise_model", "default")
    report = evaluate_persons(data, b"evidence-key-not-a-secret-0123456789abcd")
    doc = {
        "issue": 21, "label": label,
        "what": "person linkage on the generator's person mentions (in process, tools.persons_eval)",
        "made_with": run_info(),
        "generator": {"seed": manifest["seed"], "scale": manifest["scale"],
                      "houses": manifest["config"]["scale"]["houses"], "days": manifest["config"]["days"],
                      "noise_model": model,
                      "person_noise": "conf/generator.yaml noise.persons_second" if model == "second"
                      else "conf/generator.yaml noise.persons"},
        "report": report,
    }
    Path(out).write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    w = report["pairwise_without_valid_id"]
    log.info("%s: without valid ID P %s R %s; different valid ID links %s", out, w["precision"], w["recall"],
             report["different_valid_id_links"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(*sys.argv[1:4])
