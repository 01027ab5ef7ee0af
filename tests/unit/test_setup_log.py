"""``gridlake setup`` names the jars it cached in a form the log filter prints as is."""

from __future__ import annotations

import argparse
import logging

import pytest

from gridlake.commands import cmd_setup
from gridlake.sanitise import REDACTED, sanitise_text
from gridlake.spark import delta_jars, find_java_home


def test_setup_names_the_jars_by_maven_coordinates_the_log_filter_keeps(tmp_path, monkeypatch, caplog):
    try:
        find_java_home()
    except Exception as exc:  # noqa: BLE001 - setup checks Java first; without one there is nothing to test
        pytest.skip(f"no Java here: {type(exc).__name__}")
    cache = tmp_path / "jars"
    cache.mkdir()
    jars = delta_jars()
    for j in jars:  # already cached: nothing is fetched
        (cache / j.filename).write_bytes(b"PK")
    monkeypatch.setenv("GRIDLAKE_JAR_CACHE", str(cache))
    with caplog.at_level(logging.INFO, logger="gridlake.commands"):
        assert cmd_setup(argparse.Namespace(profile="local", data=str(tmp_path / "data"), s3=False)) == 0
    line = next(r.getMessage() for r in caplog.records if "jars (" in r.getMessage())
    shown = sanitise_text(line)
    assert REDACTED not in shown, shown
    for j in jars:
        assert f"{j.group}:{j.artifact}:{j.version}" in shown
    # a file name of that form is what the filter hides (its digits read as one run of six)
    assert REDACTED in sanitise_text("delta-spark_4.2_2.13-4.4.0.jar")
