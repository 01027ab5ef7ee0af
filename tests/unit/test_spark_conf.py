"""The Spark properties a session is built with, from the typed profile (no JVM)."""

from __future__ import annotations

import pytest

from gridlake import spark as gspark
from gridlake.config import ConfigError, load_settings

LISTING = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


@pytest.fixture(autouse=True)
def _no_jars(monkeypatch):
    monkeypatch.setattr(gspark, "cached_jars", lambda settings, cache=None: [])


def test_file_listing_parallelism_is_sized_by_the_profile(tmp_path):
    # Spark's default (10,000) would make every VACUUM of a small table run thousands of empty tasks
    local = gspark.spark_conf(load_settings("local", tmp_path, env={}))
    assert local[LISTING] == "8"
    assert gspark.spark_conf(load_settings("cluster", tmp_path, env={}))[LISTING] == "64"
    env = {"GRIDLAKE_SPARK__LISTING_PARALLELISM": "3"}
    assert gspark.spark_conf(load_settings("local", tmp_path, env=env))[LISTING] == "3"


def test_a_listing_parallelism_below_one_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="listing_parallelism"):
        load_settings("local", tmp_path, env={"GRIDLAKE_SPARK__LISTING_PARALLELISM": "0"})


def test_plan_strings_are_bounded_and_few_are_kept(tmp_path):
    # a district night's gold died building one plan string (driver heap); Spark's limit truncates them
    conf = gspark.spark_conf(load_settings("local", tmp_path, env={}))
    assert int(conf["spark.sql.maxPlanStringLength"]) == gspark.MAX_PLAN_STRING_LENGTH <= 1_000_000
    assert int(conf["spark.sql.ui.retainedExecutions"]) == gspark.RETAINED_EXECUTIONS < 1000
    # an operator who needs whole plans (debugging one query) sets it back through spark.extra
    env = {"GRIDLAKE_SPARK__EXTRA__spark.sql.maxPlanStringLength": "2147483632"}
    assert gspark.spark_conf(load_settings("local", tmp_path, env=env))["spark.sql.maxPlanStringLength"] == "2147483632"
