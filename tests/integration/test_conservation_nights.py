"""Three generated nights (tiny scale): per-file conservation balances, and a rerun of each night writes nothing."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from gridlake import io
from gridlake.config import load_settings
from gridlake.pipeline import run_night

pytestmark = [pytest.mark.spark, pytest.mark.slow]

NIGHTS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def _all_versions(spark, settings) -> dict[str, int]:
    out = {}
    for layer in ("bronze", "silver"):
        base = settings.data / "lake" / layer
        for p in sorted(base.iterdir()) if base.exists() else []:
            out[f"{layer}.{p.name}"] = io.table_version(spark, settings, layer, p.name)
    return out


def test_three_generated_nights_balance_and_reruns_change_nothing(spark, tmp_path):
    data = tmp_path / "gen"
    subprocess.run([sys.executable, "-m", "gridlake.cli", "generate", "--scale", "tiny", "--days", "3",
                    "--start", NIGHTS[0], "--data", str(data)], check=True, capture_output=True, timeout=600)
    settings = load_settings("local", data_root=data)
    for night in NIGHTS:
        day = dt.date.fromisoformat(night)
        m = run_night(settings, day, ["bronze", "silver"], spark=spark)
        assert m.doc["conservation"]["run"]["balanced"] is True
        before = _all_versions(spark, settings)
        run_night(settings, day, ["bronze", "silver"], spark=spark)
        assert _all_versions(spark, settings) == before, f"rerun of {night} committed something"

    cons = io.read_table(spark, settings, "silver", "_conservation").collect()
    loaded = io.read_table(spark, settings, "bronze", "_ingestion_log").where("status = 'loaded'").collect()
    assert {r.file_sha256 for r in cons} == {r.file_sha256 for r in loaded}  # every loaded file accounted for
    for r in cons:
        assert r.balanced and r.bronze_rows == r.silver_rows + r.quarantine_rows + r.duplicate_rows, r.path
    assert sum(r.silver_rows for r in cons) > 0
    bronze_total = sum(io.read_table(spark, settings, "bronze", s).count() for s in {r.source for r in cons})
    assert bronze_total == sum(r.bronze_rows for r in cons)
