"""The lake's storage configuration (``storage:``), without Spark: where S3 is, how credentials are found,
which jars a session needs, and which file-level operations refuse a lake on object storage."""

from __future__ import annotations

import pytest

from gridlake.config import ConfigError, load_settings
from gridlake.spark import AWS_SDK_VERSION, HADOOP_VERSION, needed_jars, s3a_jars
from gridlake.storage import (
    StorageError,
    credentials,
    deltalake_location,
    is_local,
    is_s3a,
    require_local,
    s3a_spark_conf,
)

S3 = {"GRIDLAKE_LAKE_ROOT": "s3a://gl-bucket/lake", "GRIDLAKE_STORAGE__ENDPOINT": "http://127.0.0.1:9000",
      "GRIDLAKE_STORAGE__PATH_STYLE_ACCESS": "true", "GRIDLAKE_STORAGE__REGION": "cn-north-1"}


def _settings(tmp_path, **env):
    return load_settings("cluster", tmp_path, env={**S3, **env})


def test_lake_scheme(tmp_path):
    assert is_local(load_settings("local", tmp_path, env={}))
    s3 = _settings(tmp_path)
    assert is_s3a(s3) and not is_local(s3)
    hdfs = load_settings("cluster", tmp_path, env={"GRIDLAKE_LAKE_ROOT": "hdfs://nn/gridlake"})
    assert not is_local(hdfs) and not is_s3a(hdfs)


def test_spark_conf_carries_endpoint_and_path_style_never_credentials(tmp_path):
    s3 = _settings(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLEKEY", AWS_SECRET_ACCESS_KEY="example-secret")
    conf = s3a_spark_conf(s3)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "cn-north-1"
    assert not any("key" in k or "secret" in k or "token" in k for k in conf)
    assert s3a_spark_conf(load_settings("local", tmp_path, env={})) == {}


def test_endpoint_with_user_info_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(ConfigError, match="storage.endpoint") as err:
        _settings(tmp_path, GRIDLAKE_STORAGE__ENDPOINT="http://user:pa55word@host:9000")
    assert "pa55word" not in str(err.value)


def test_credentials_come_from_the_named_variables(tmp_path):
    s3 = _settings(tmp_path, GRIDLAKE_STORAGE__ACCESS_KEY_ENV="S3_KEY", GRIDLAKE_STORAGE__SECRET_KEY_ENV="S3_SECRET")
    assert credentials(s3, {"S3_KEY": "k", "S3_SECRET": "s", "AWS_ACCESS_KEY_ID": "other"}) == {
        "access_key": "k", "secret_key": "s"}
    assert credentials(s3, {}) == {}  # S3A's own provider chain (instance profile) then
    with pytest.raises(StorageError, match="S3_SECRET is not set") as err:
        credentials(s3, {"S3_KEY": "the-access-key-value"})
    assert "the-access-key-value" not in str(err.value)


def test_deltalake_location_for_s3a(tmp_path):
    s3 = _settings(tmp_path)
    uri, opts = deltalake_location(s3, s3.table_path("silver", "housing"),
                                   env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"})
    assert uri == "s3://gl-bucket/lake/silver/housing"
    assert opts == {"AWS_REGION": "cn-north-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true",
                    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false", "AWS_ACCESS_KEY_ID": "k",
                    "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    local = load_settings("local", tmp_path, env={})
    assert deltalake_location(local, local.table_path("gold", "x")) == (local.table_path("gold", "x"), {})
    hdfs = load_settings("cluster", tmp_path, env={"GRIDLAKE_LAKE_ROOT": "hdfs://nn/gridlake"})
    with pytest.raises(StorageError, match="hdfs://"):
        deltalake_location(hdfs, hdfs.table_path("silver", "housing"))


def test_file_level_operations_name_themselves_on_object_storage(tmp_path):
    from gridlake.lifecycle import lake
    from gridlake.privacy_scan import iter_scan_targets

    s3 = _settings(tmp_path)
    with pytest.raises(StorageError, match="gridlake scan-privacy.*s3a://gl-bucket"):
        list(iter_scan_targets(s3))
    with pytest.raises(StorageError, match="lifecycle command"):
        lake.list_tables(s3)
    with pytest.raises(StorageError, match="erasure"):
        lake.table_dir(s3, "silver", "housing")
    require_local(load_settings("local", tmp_path, env={}), "anything")  # a local lake passes


def test_jars_a_session_needs(tmp_path):
    names = {j.artifact for j in s3a_jars()}
    assert {"hadoop-aws", "s3", "sts", "s3-transfer-manager", "netty-nio-client", "analyticsaccelerator-s3"} <= names
    assert "bundle" not in names
    assert next(j for j in s3a_jars() if j.artifact == "hadoop-aws").version == HADOOP_VERSION
    assert all(j.version == AWS_SDK_VERSION for j in s3a_jars() if j.group == "software.amazon.awssdk")
    local = needed_jars(load_settings("local", tmp_path, env={}))
    assert not any(j.artifact == "hadoop-aws" for j in local)
    assert any(j.artifact == "hadoop-aws" for j in needed_jars(_settings(tmp_path)))
    assert any(j.artifact == "hadoop-aws" for j in needed_jars(load_settings("local", tmp_path, env={}), s3=True))


def test_hadoop_aws_matches_pyspark_hadoop():
    from pathlib import Path

    import pyspark

    jars = [p.name for p in (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")]
    assert jars == [f"hadoop-client-api-{HADOOP_VERSION}.jar"]
