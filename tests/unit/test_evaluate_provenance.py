"""The evaluate report names the code that made it and the code of every night it scores."""

from __future__ import annotations

import json
from pathlib import Path

from gridlake.config import load_settings
from tools.bench.kit import run_info
from tools.evaluate import pipeline_code_versions


def test_pipeline_code_versions_from_the_manifests(tmp_path):
    settings = load_settings("local", str(tmp_path / "data"))
    runs = Path(settings.runs_dir)
    runs.mkdir(parents=True)
    (runs / "manual__2026-11-01.json").write_text(json.dumps({"run_id": "manual__2026-11-01", "run_date": "2026-11-01",
                                                              "code_version": "0.1.0+abc"}), encoding="utf-8")
    (runs / "manual__2026-11-02.json").write_text(json.dumps({"run_id": "manual__2026-11-02", "run_date": "2026-11-02",
                                                              "code_version": "0.1.0+def"}), encoding="utf-8")
    (runs / "broken.json").write_text("{not json", encoding="utf-8")
    (runs / "no_version.json").write_text(json.dumps({"run_id": "x", "run_date": "2026-11-03"}), encoding="utf-8")
    assert pipeline_code_versions(settings) == {"manual__2026-11-01": "0.1.0+abc", "manual__2026-11-02": "0.1.0+def"}


def test_run_info_names_commit_and_machine():
    info = run_info()
    assert info["commit"] and len(info["commit"]) == 40
    assert info["machine"]["cpus"] >= 1 and info["machine"]["python"].startswith("3.11")
