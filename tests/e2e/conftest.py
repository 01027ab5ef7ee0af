"""The small generated district every end-to-end test shares (generated and run once per session)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from gridlake.config import load_settings
from gridlake.pipeline import run_night

START = dt.date(2026, 11, 1)
# Nights run in the default suite; `make test-all` style runs may raise it (GRIDLAKE_E2E_NIGHTS=3).
DAYS = int(os.environ.get("GRIDLAKE_E2E_NIGHTS", "2"))


@pytest.fixture(scope="session")
def district(tmp_path_factory, spark):
    """A tiny district generated and run night by night, with officers' field checks in between."""
    root = tmp_path_factory.mktemp("e2e") / "data"
    out = subprocess.run(
        [sys.executable, "-m", "gridlake.cli", "generate", "--scale", "tiny", "--days", str(DAYS),
         "--start", START.isoformat(), "--data", str(root)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    settings = load_settings("local", data_root=root)
    manifests = []
    for i in range(DAYS):
        night = START + dt.timedelta(days=i)
        manifests.append(run_night(settings, night, spark=spark))
        try:
            from gridlake.generate.officers import simulate_verifications
        except ImportError:
            continue
        simulate_verifications(settings, night, seed=7)
    return settings, manifests


