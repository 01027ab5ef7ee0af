"""Shared fixtures: one SparkSession for the whole test session (local[2], few partitions, no UI)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# An execnet worker (pytest-xdist) runs with a __main__ that has neither __spec__ nor __file__, which
# pyspark.sql.connect.utils.check_dependencies takes for a doctest run and answers with sys.exit(0) on import.
_main = sys.modules.get("__main__")
if _main is not None and getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"

os.environ.setdefault("GRIDLAKE_SPARK__SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("GRIDLAKE_SPARK__DEFAULT_PARALLELISM", "2")
os.environ.setdefault("GRIDLAKE_SPARK__DRIVER_MEMORY", "6g")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# A test-only pseudonym key: tests never depend on a developer's real key.
os.environ.setdefault("GRIDLAKE_PSEUDONYM_KEY", "test-only-key-not-secret-0123456789abcdef")


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pytest-xdist is a dev dependency; without it the suite runs in one process
    LoadScopeScheduling = None

if LoadScopeScheduling is not None:
    class _FileScheduling(LoadScopeScheduling):
        """A test file is one unit of work, so a module's fixtures are built once; tests/e2e is one unit, so
        the generated district those tests share (tests/e2e/conftest.py, several minutes) is built once."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/e2e" if path.startswith("tests/e2e/") else path

    def pytest_xdist_make_scheduler(config, log):
        """``make test`` runs two workers (``-n 2``); they take whole files (:class:`_FileScheduling`)."""
        return _FileScheduling(config, log)


@pytest.fixture(scope="session")
def session_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gridlake-session")


@pytest.fixture(scope="session")
def spark(session_root):
    """The one SparkSession of the test run, with Delta enabled."""
    from gridlake.config import load_settings
    from gridlake.spark import get_spark

    settings = load_settings("local", data_root=session_root)
    session = get_spark(settings, app_name="gridlake-tests")
    yield session
    session.stop()


@pytest.fixture
def settings(tmp_path):
    """Settings of the local profile with a fresh data root per test."""
    from gridlake.config import load_settings

    return load_settings("local", data_root=tmp_path / "data")
