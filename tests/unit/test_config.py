"""Typed configuration: profiles, overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from gridlake.config import ConfigError, load_settings
from gridlake.sources import load_sources


def test_local_profile_defaults(tmp_path):
    s = load_settings("local", data_root=tmp_path, env={})
    assert s.profile == "local"
    assert s.spark.master == "local[2]"
    assert s.lake == str(tmp_path / "lake")
    assert s.table_path("silver", "housing") == f"{tmp_path}/lake/silver/housing"
    assert s.landing == tmp_path / "landing" and s.truth == tmp_path / "truth"
    assert s.privacy.allow_local_key is True


def test_cluster_profile_and_env_override(tmp_path):
    env = {"GRIDLAKE_SPARK__MASTER": "spark://10.0.0.1:7077", "GRIDLAKE_LAKE_ROOT": "s3a://bucket/lake"}
    s = load_settings("cluster", data_root=tmp_path, env=env)
    assert s.spark.master == "spark://10.0.0.1:7077"
    assert s.table_path("gold", "followups") == "s3a://bucket/lake/gold/followups"
    assert s.privacy.allow_local_key is False


def test_a_spark_property_from_env_keeps_its_case(tmp_path):
    """Spark property names are case-sensitive: below spark.extra the key is taken as written."""
    from gridlake.spark import spark_conf

    env = {"GRIDLAKE_SPARK__EXTRA__spark.eventLog.enabled": "true", "GRIDLAKE_SPARK__LOG_LEVEL": "WARN"}
    s = load_settings("local", data_root=tmp_path, env=env)
    assert s.spark.extra == {"spark.eventLog.enabled": "true"}
    assert s.spark.log_level == "WARN"
    assert spark_conf(s)["spark.eventLog.enabled"] == "true"


def test_codegen_off_interprets_every_query(tmp_path):
    from gridlake.spark import spark_conf

    on = spark_conf(load_settings("local", data_root=tmp_path, env={}))
    assert "spark.sql.codegen.factoryMode" not in on and "spark.sql.codegen.wholeStage" not in on
    off = spark_conf(load_settings("local", data_root=tmp_path, env={"GRIDLAKE_SPARK__CODEGEN": "false"}))
    assert (off["spark.sql.codegen.wholeStage"], off["spark.sql.codegen.factoryMode"]) == ("false", "NO_CODEGEN")


def test_the_lake_on_a_local_disk_is_written_without_hadoop_checksum_files_unless_asked(tmp_path):
    from gridlake.spark import RAW_LOCAL_FS, spark_conf

    raw = spark_conf(load_settings("local", data_root=tmp_path, env={}))
    assert raw["spark.hadoop.fs.file.impl"] == "org.apache.hadoop.fs.RawLocalFileSystem"
    assert raw["spark.hadoop.fs.AbstractFileSystem.file.impl"] == "org.apache.hadoop.fs.local.RawLocalFs"
    kept = spark_conf(load_settings("local", data_root=tmp_path, env={"GRIDLAKE_SPARK__LOCAL_CHECKSUM_FILES": "true"}))
    assert not set(RAW_LOCAL_FS) & set(kept)  # Hadoop's default: its checksummed local file system
    with pytest.raises(ConfigError, match="local_checksum_files"):
        load_settings("local", data_root=tmp_path, env={"GRIDLAKE_SPARK__LOCAL_CHECKSUM_FILES": "sometimes"})


def test_the_cache_of_persisted_frames_is_uncompressed_unless_asked(tmp_path):
    from gridlake.spark import spark_conf

    key = "spark.sql.inMemoryColumnarStorage.compressed"
    assert spark_conf(load_settings("local", data_root=tmp_path, env={}))[key] == "false"
    on = spark_conf(load_settings("local", data_root=tmp_path, env={"GRIDLAKE_SPARK__CACHE_COMPRESSED": "true"}))
    assert on[key] == "true"
    with pytest.raises(ConfigError, match="cache_compressed"):
        load_settings("local", data_root=tmp_path, env={"GRIDLAKE_SPARK__CACHE_COMPRESSED": "zstd"})


def test_driver_gc_reaches_the_driver_options_and_a_bad_name_is_refused(tmp_path):
    from gridlake.spark import spark_conf
    from tools.demo import SMALL_NIGHT_SETTINGS

    assert SMALL_NIGHT_SETTINGS["GRIDLAKE_SPARK__DRIVER_GC"] == "parallel"  # what gridlake demo takes on a small district
    shipped = spark_conf(load_settings("local", data_root=tmp_path, env={}))["spark.driver.extraJavaOptions"]
    assert shipped.split() == [f"-Dderby.system.home={tmp_path / 'derby'}"]  # the JVM's own choice
    par = spark_conf(load_settings("local", data_root=tmp_path, env={"GRIDLAKE_SPARK__DRIVER_GC": "parallel"}))
    assert par["spark.driver.extraJavaOptions"].split()[1:] == ["-XX:+UseParallelGC"]
    with pytest.raises(ConfigError, match="driver_gc"):
        load_settings("local", data_root=tmp_path, env={"GRIDLAKE_SPARK__DRIVER_GC": "zgc"})


def test_the_optimising_compiler_starts_late_only_when_asked_and_a_bad_choice_is_refused(tmp_path):
    from gridlake.spark import spark_conf

    def options(env):
        return spark_conf(load_settings("local", data_root=tmp_path, env=env))["spark.driver.extraJavaOptions"].split()

    assert not [o for o in options({}) if o.startswith("-XX:")]  # shipped: the JVM's own thresholds
    late = {"GRIDLAKE_SPARK__DRIVER_JIT": "late_c2"}
    tier4 = {o.split("=")[0]: int(o.split("=")[1]) for o in options(late) if o.startswith("-XX:Tier4")}
    # HotSpot's defaults x10: invocations 5000, minimum 600, compile 15000, back edges 40000
    assert tier4 == {"-XX:Tier4InvocationThreshold": 50_000, "-XX:Tier4MinInvocationThreshold": 6_000,
                     "-XX:Tier4CompileThreshold": 150_000, "-XX:Tier4BackEdgeThreshold": 400_000}
    # with the collector's option too, in one string
    both = options({**late, "GRIDLAKE_SPARK__DRIVER_GC": "parallel"})
    assert "-XX:+UseParallelGC" in both and len([o for o in both if o.startswith("-XX:Tier4")]) == 4
    with pytest.raises(ConfigError, match="driver_jit"):
        load_settings("local", data_root=tmp_path, env={"GRIDLAKE_SPARK__DRIVER_JIT": "c1"})


def test_data_root_from_env(tmp_path):
    s = load_settings("local", env={"GRIDLAKE_DATA": str(tmp_path / "x")})
    assert s.data_root == str(tmp_path / "x")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GRIDLAKE_SPARK__MASTR": "x"}, "mastr"),
        ({"GRIDLAKE_SPARK__SHUFFLE_PARTITIONS": "many"}, "shuffle_partitions"),
        ({"GRIDLAKE_SPARK__DRIVER_MEMORY": "lots"}, "driver_memory"),
        ({"GRIDLAKE_SPARK__UI_ENABLED": "maybe"}, "ui_enabled"),
        ({"GRIDLAKE_WORKBOOKS__PROCESSES": "0"}, "workbooks.processes"),
    ],
)
def test_bad_values_name_the_key(tmp_path, env, needle):
    with pytest.raises(ConfigError, match=needle):
        load_settings("local", data_root=tmp_path, env=env)


def test_unknown_profile(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'prod'"):
        load_settings("prod", data_root=tmp_path, env={})


def test_bad_file_key(tmp_path):
    f = tmp_path / "g.yaml"
    f.write_text("profiles:\n  local:\n    data_root: x\n    sparkk: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sparkk"):
        load_settings("local", conf_file=f, env={})


def test_sources_load_and_validate(tmp_path):
    sources = load_sources()
    assert {"housing", "rentals", "declarations", "police_incidents", "grid_officers"} <= set(sources)
    assert sources["police_incidents"].encoding == "gb18030"
    assert sources["safety_inspections"].format == "xlsx"
    bad = tmp_path / "s.yaml"
    bad.write_text(
        "sources:\n  x:\n    format: csv\n    delivery: nightly\n    key: [a]\n    columns: {a: A}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"sources.x.delivery"):
        load_sources(bad)


def test_workbook_processes_from_the_profile_and_env(tmp_path):
    s = load_settings("local", data_root=tmp_path, env={})
    assert (s.workbooks.processes, s.workbooks.processes_min_grids) == (2, 100)
    s = load_settings("local", data_root=tmp_path, env={"GRIDLAKE_WORKBOOKS__PROCESSES": "1"})
    assert s.workbooks.processes == 1
