"""Shared fixtures: one SparkSession for the whole test session (local[2], few partitions, no UI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRIDLAKE_SPARK__SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("GRIDLAKE_SPARK__DEFAULT_PARALLELISM", "2")
os.environ.setdefault("GRIDLAKE_SPARK__DRIVER_MEMORY", "6g")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# A test-only pseudonym key: tests never depend on a developer's real key.
os.environ.setdefault("GRIDLAKE_PSEUDONYM_KEY", "test-only-key-not-secret-0123456789abcdef")


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
