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
# Nights run: one in the default suite (CI's 35 minutes; the incremental nights, the officers' returns and
# the lifecycle across nights are in the integration tests and tests/e2e/test_officers_loop.py);
# `make test-all` runs two (GRIDLAKE_E2E_NIGHTS=2), and any number may be asked for.
DAYS = int(os.environ.get("GRIDLAKE_E2E_NIGHTS", "1"))
# The generator's noise model (`gridlake generate --noise`); the default noise unless set
# (GRIDLAKE_E2E_NOISE=second once the generator has the second noise model).
NOISE = os.environ.get("GRIDLAKE_E2E_NOISE") or None
SEED = 20141  # the generator's default seed, stated so reports can name it


@pytest.fixture(scope="session")
def district(tmp_path_factory, spark):
    """A tiny district generated (seed :data:`SEED`, noise :data:`NOISE`) and run night by night, with
    officers' field checks in between."""
    root = tmp_path_factory.mktemp("e2e") / "data"
    noise = ["--noise", NOISE] if NOISE else []
    out = subprocess.run(
        [sys.executable, "-m", "gridlake.cli", "generate", "--scale", "tiny", "--days", str(DAYS),
         "--start", START.isoformat(), "--seed", str(SEED), *noise, "--data", str(root)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    settings = load_settings("local", data_root=root)
    manifests = []
    for i in range(DAYS):
        night = START + dt.timedelta(days=i)
        manifests.append(run_night(settings, night, spark=spark))
        try:
            from tools.generate.officers import simulate_verifications
        except ImportError:
            continue
        simulate_verifications(settings, night, seed=7)
    return settings, manifests


