"""The session factory gives a Delta-enabled Spark: write, MERGE, history and time travel."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from gridlake import io

pytestmark = pytest.mark.spark


def test_write_merge_history_time_travel(spark, settings):
    base = spark.createDataFrame([("H1", "a"), ("H2", "b")], "house_code string, v string")
    v0 = io.write_table(base, settings, "silver", "t", mode="overwrite")
    assert v0 == 0
    change = spark.createDataFrame([("H2", "B"), ("H3", "c")], "house_code string, v string")
    v1 = io.merge_table(change, settings, "silver", "t", keys=["house_code"])
    assert v1 == 1
    assertDataFrameEqual(
        io.read_table(spark, settings, "silver", "t"),
        spark.createDataFrame([("H1", "a"), ("H2", "B"), ("H3", "c")], "house_code string, v string"),
    )
    assertDataFrameEqual(io.read_table(spark, settings, "silver", "t", version=0), base)
    from delta.tables import DeltaTable

    ops = [r.operation for r in DeltaTable.forPath(spark, settings.table_path("silver", "t")).history().collect()]
    assert ops == ["MERGE", "CREATE OR REPLACE TABLE AS SELECT"] or ops[0] == "MERGE"


def test_unchanged_merge_with_condition_changes_nothing(spark, settings):
    df = spark.createDataFrame([("H1", "a")], "house_code string, v string")
    io.write_table(df, settings, "silver", "u", mode="overwrite")
    before = io.table_version(spark, settings, "silver", "u")
    io.merge_table(df, settings, "silver", "u", keys=["house_code"], update_when="t.v <> s.v")
    # A MERGE that matches nothing to change still commits; the row content is unchanged.
    assertDataFrameEqual(io.read_table(spark, settings, "silver", "u"), df)
    assert io.table_version(spark, settings, "silver", "u") >= before


def test_missing_table_version_is_minus_one(spark, settings):
    assert io.table_version(spark, settings, "gold", "nothing_here") == -1
    assert not io.table_exists(spark, settings, "gold", "nothing_here")


def test_upsert_changed_commits_only_on_change(spark, settings):
    df = spark.createDataFrame([("H1", "a"), ("H2", "b")], "house_code string, v string")
    v0 = io.upsert_changed(df, settings, "silver", "w", keys=["house_code"])
    assert io.upsert_changed(df, settings, "silver", "w", keys=["house_code"]) == v0
    changed = spark.createDataFrame([("H1", "a"), ("H2", "B")], "house_code string, v string")
    assert io.upsert_changed(changed, settings, "silver", "w", keys=["house_code"]) == v0 + 1
    assertDataFrameEqual(io.read_table(spark, settings, "silver", "w"), changed)


def test_overwrite_if_changed_slice(spark, settings):
    df = spark.createDataFrame([("2026-11-01", 1), ("2026-11-02", 2)], "d string, n int")
    v0 = io.overwrite_if_changed(df, settings, "gold", "m")
    assert io.overwrite_if_changed(df, settings, "gold", "m") == v0
    same_slice = spark.createDataFrame([("2026-11-02", 2)], "d string, n int")
    assert io.overwrite_if_changed(same_slice, settings, "gold", "m", replace_where="d = '2026-11-02'") == v0
    new_slice = spark.createDataFrame([("2026-11-02", 3)], "d string, n int")
    assert io.overwrite_if_changed(new_slice, settings, "gold", "m", replace_where="d = '2026-11-02'") == v0 + 1
    assert sorted(r.n for r in io.read_table(spark, settings, "gold", "m").collect()) == [1, 3]


def test_row_count_from_log_statistics_follows_merges_and_deletes(spark, settings):
    df = spark.createDataFrame([(f"H{i}", "a") for i in range(7)], "house_code string, v string")
    io.write_table(df, settings, "silver", "rc", mode="overwrite")
    assert io.row_count(spark, settings, "silver", "rc") == 7
    change = spark.createDataFrame([("H1", "b"), ("H9", "c")], "house_code string, v string")
    io.merge_table(change, settings, "silver", "rc", keys=["house_code"])
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, settings.table_path("silver", "rc")).delete("house_code in ('H2', 'H3')")
    assert io.row_count(spark, settings, "silver", "rc") == io.read_table(spark, settings, "silver", "rc").count() == 6
    # the version is read from the log listing: one commit per write, MERGE and DELETE
    assert io.table_version(spark, settings, "silver", "rc") == 2


def test_read_columns_without_spark_equals_spark_after_merges_deletes_and_deletion_vectors(spark, settings):
    from delta.tables import DeltaTable

    assert io.read_columns(spark, settings, "bronze", "no_such_log", ["k"]) is None
    for name, dv in (("log_plain", "false"), ("log_dv", "true")):
        df = spark.createDataFrame([(f"k{i}", "loaded", i) for i in range(6)], "k string, status string, n int")
        io.write_table(df, settings, "bronze", name, mode="overwrite")
        spark.sql(f"ALTER TABLE delta.`{settings.table_path('bronze', name)}` "
                  f"SET TBLPROPERTIES ('delta.enableDeletionVectors' = '{dv}')")
        change = spark.createDataFrame([("k1", "rejected", 1), ("k9", "loaded", 9)], "k string, status string, n int")
        io.merge_table(change, settings, "bronze", name, keys=["k"])
        DeltaTable.forPath(spark, settings.table_path("bronze", name)).delete("k in ('k2', 'k3')")
        got = io.read_columns(spark, settings, "bronze", name, ["k", "status"])
        assert got.column_names == ["k", "status"]
        want = io.read_table(spark, settings, "bronze", name).select("k", "status").collect()
        assert sorted(zip(*(got.column(c).to_pylist() for c in ("k", "status")), strict=True)) == sorted(map(tuple, want))
        assert ("k1", "rejected") in set(map(tuple, want)) and len(want) == 5
        assert io.row_count(spark, settings, "bronze", name) == 5  # not the deleted rows' files' counts


def test_partition_values_from_the_log(spark, settings):
    assert io.partition_values(spark, settings, "bronze", "no_such_table", "d") is None
    df = spark.createDataFrame([("2026-11-01", "a"), ("2026-11-02", "b")], "d string, v string").selectExpr(
        "cast(d as date) d", "v")
    io.write_table(df.limit(0), settings, "bronze", "parts", mode="append", partition_by=["d"])
    assert io.partition_values(spark, settings, "bronze", "parts", "d") == set()
    io.write_table(df, settings, "bronze", "parts", mode="append", partition_by=["d"])
    assert io.partition_values(spark, settings, "bronze", "parts", "d") == {"2026-11-01", "2026-11-02"}
    io.write_table(df.where("v = 'b'"), settings, "bronze", "parts", mode="overwrite", partition_by=["d"])
    assert io.partition_values(spark, settings, "bronze", "parts", "d") == {"2026-11-02"}
    assert io.partition_values(spark, settings, "bronze", "parts", "v") is None  # not a partition column


def test_upsert_changed_deletes_named_keys_in_the_same_commit(spark, settings):
    from gridlake import io

    first = spark.createDataFrame([("a", 1), ("b", 2), ("c", 3)], "k string, v int")
    io.write_table(first, settings, "gold", "t", "overwrite")
    v0 = io.table_version(spark, settings, "gold", "t")
    gone = spark.createDataFrame([("c",), ("zz",)], "k string")  # zz is not in the table
    changed = spark.createDataFrame([("a", 1), ("b", 20), ("d", 4)], "k string, v int")
    v1 = io.upsert_changed(changed, settings, "gold", "t", ["k"], delete_keys=gone)
    assert v1 == v0 + 1
    assert sorted(map(tuple, io.read_table(spark, settings, "gold", "t").collect())) == [("a", 1), ("b", 20), ("d", 4)]
    # nothing changed and nothing left to delete: no commit
    assert io.upsert_changed(changed, settings, "gold", "t", ["k"], delete_keys=gone) == v1


def test_create_with_rows_is_the_empty_table_and_its_append_in_one_commit(spark, settings):
    from schemas.silver import SILVER_SCHEMAS

    schema = SILVER_SCHEMAS["rentals"]
    rows = spark.range(2).select(*[(F.concat(F.lit("R"), F.col("id").cast("string")) if f.name == "rental_id"
                                    else F.lit(None)).cast(f.dataType).alias(f.name) for f in schema.fields])
    io.create_if_missing(spark, settings, "silver", "two_commits", schema)
    io.write_table(rows, settings, "silver", "two_commits", "append")
    assert io.create_with_rows(rows, settings, "silver", "one_commit", schema) == 0
    two = io.read_table(spark, settings, "silver", "two_commits")
    assert io.table_version(spark, settings, "silver", "two_commits") == 1
    assert io.read_table(spark, settings, "silver", "one_commit").schema == two.schema  # nullability too
    assertDataFrameEqual(io.read_table(spark, settings, "silver", "one_commit"), two)


def test_create_with_rows_refuses_columns_that_are_not_the_schema(spark, settings):
    from schemas.silver import SILVER_SCHEMAS

    schema = SILVER_SCHEMAS["rentals"]
    wrong = spark.createDataFrame([], schema).withColumnRenamed(schema.fields[0].name, "other")
    with pytest.raises(ValueError, match="differ from the table schema"):
        io.create_with_rows(wrong, settings, "silver", "wrong", schema)
    assert not io.table_exists(spark, settings, "silver", "wrong")


def _jobs_of_append(spark, settings, name: str, group: str) -> int:
    """Spark jobs one small append to ``name`` runs (its table exists already)."""
    df = spark.createDataFrame([("2026-11-01", "a")], "d string, v string").selectExpr("cast(d as date) d", "v")
    sc = spark.sparkContext
    sc.setJobGroup(group, group)
    try:
        io.write_table(df, settings, "bronze", name, "append", partition_by=["d"])
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    return len(sc.statusTracker().getJobIdsForGroup(group))


def test_a_commit_in_the_districts_time_zone_rebuilds_no_table_state(spark, settings):
    # Delta checks a small table's incrementally computed file list after every commit by rebuilding the
    # table's state when the session's time zone is not UTC (ours); gridlake turns that check off
    # (gridlake.spark). Measured by the jobs an append runs: the write alone, against the write and the rebuild.
    from pathlib import Path

    key = "spark.databricks.delta.allFilesInCrc.verificationMode.forceOnNonUTC.enabled"
    assert spark.conf.get("spark.sql.session.timeZone") != "UTC"
    assert spark.conf.get(key) == "false"
    df = spark.createDataFrame([("2026-11-01", "a")], "d string, v string").selectExpr("cast(d as date) d", "v")
    io.write_table(df, settings, "bronze", "tz", "append", partition_by=["d"])
    shipped = _jobs_of_append(spark, settings, "tz", "tz-shipped")
    spark.conf.set(key, "true")
    try:
        forced = _jobs_of_append(spark, settings, "tz", "tz-forced")
    finally:
        spark.conf.set(key, "false")
    assert shipped < forced, (shipped, forced)
    # the checksum is still written with each commit, and the table holds every appended row
    log_dir = Path(settings.table_path("bronze", "tz")) / "_delta_log"
    assert sorted(p.name for p in log_dir.glob("[0-9]*.crc")) == [f"{v:020d}.crc" for v in range(3)]
    assert io.read_table(spark, settings, "bronze", "tz").count() == 3


def test_the_lake_is_written_without_hadoop_checksum_files(spark, settings):
    # spark.local_checksum_files is off: Hadoop's raw local file system writes each data and log file alone
    # (no hidden .<name>.crc beside it); Delta's own checksum of each commit stays, and both readers agree
    from pathlib import Path

    from deltalake import DeltaTable

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    fs = spark._jvm.org.apache.hadoop.fs.FileSystem.get(spark._jvm.java.net.URI("file:///"), hadoop)
    assert fs.getClass().getName() == "org.apache.hadoop.fs.RawLocalFileSystem"
    df = spark.createDataFrame([("2026-11-01", "a", 1), ("2026-11-02", "b", 2)], "d string, k string, v int")
    df = df.selectExpr("cast(d as date) d", "k", "v")
    io.write_table(df, settings, "bronze", "raw_fs", "append", partition_by=["d"])
    io.merge_table(spark.createDataFrame([("2026-11-02", "b", 3)], "d string, k string, v int")
                   .selectExpr("cast(d as date) d", "k", "v"), settings, "bronze", "raw_fs", ["k"])
    root = Path(settings.table_path("bronze", "raw_fs"))
    files = [p for p in root.rglob("*") if p.is_file()]
    assert [p for p in files if p.name.startswith(".") and p.name.endswith(".crc")] == []
    assert len([p for p in files if p.suffix == ".parquet"]) >= 2
    assert sorted(p.name for p in (root / "_delta_log").glob("[0-9]*.crc")) == [f"{v:020d}.crc" for v in range(2)]
    rows = sorted((r["k"], r["v"]) for r in io.read_table(spark, settings, "bronze", "raw_fs").collect())
    assert rows == [("a", 1), ("b", 3)]
    delta_rs = DeltaTable(str(root)).to_pyarrow_table(columns=["k", "v"]).to_pydict()
    assert sorted(zip(delta_rs["k"], delta_rs["v"], strict=True)) == rows


def test_a_timestamp_partition_column_is_refused(spark, settings):
    df = spark.createDataFrame([("x",)], "v string").selectExpr("v", "current_timestamp() as at")
    with pytest.raises(ValueError, match=r"bronze\.ts: partition column\(s\) at are timestamps"):
        io.write_table(df, settings, "bronze", "ts", "append", partition_by=["at"])
    assert not io.table_exists(spark, settings, "bronze", "ts")
    io.write_table(df, settings, "bronze", "ts", "append")   # the same rows unpartitioned are written
    assert io.table_exists(spark, settings, "bronze", "ts")


def _staged(tmp_path, source, day: str, rows: list[tuple[int, dict, dict | None, str | None]], name: str):
    import datetime as dt

    from jobs.bronze.delivery import BronzeRow
    from jobs.bronze.staging import write_staging

    target = tmp_path / f"{name}.parquet"
    meta = {"_source_file": f"landing/{source.name}/{day}/{name}.csv", "_file_sha256": name * 8,
            "_ingested_at": dt.datetime(2026, 11, 2, 1, 2, 3, 456789, tzinfo=dt.UTC), "_run_id": "manual__x",
            "_encoding": "gb18030", "_delivery_date": dt.date.fromisoformat(day)}
    write_staging([BronzeRow(n, v, extra, raw, reason) for n, v, extra, raw, reason in rows], target,
                  source.canonical_columns, meta)
    return str(target)


def test_append_parquet_streams_staged_files_into_an_existing_table_as_spark_appends_them(spark, settings, tmp_path):
    """Bronze's staged files appended with ``deltalake`` (an existing local table of the same columns) are the
    rows Spark appends from them; a new table, or one whose columns differ, is appended by Spark."""
    import json

    from gridlake.sources import load_sources
    from jobs.bronze.runner import bronze_schema

    source = load_sources()["police_incidents"]
    schema = bronze_schema(source)
    cols = source.canonical_columns
    first = _staged(tmp_path, source, "2026-11-01", [(1, {c: f"{c}-1" for c in cols}, None, None, None)], "a")
    night = [_staged(tmp_path, source, "2026-11-02", [
        (1, {c: f"{c}-2" for c in cols}, {"备注": "=cmd|x"}, None, None),
        (2, dict.fromkeys(cols), None, '"broken,line', "FIELD_COUNT: 3 fields, 9 expected")], "b"),
        _staged(tmp_path, source, "2026-11-02", [(1, {c: "三" for c in cols}, None, None, None)], "c")]

    def log_of(name, version):
        path = settings.table_path("bronze", name) + f"/_delta_log/{version:020d}.json"
        return [json.loads(line) for line in open(path, encoding="utf-8")]

    # a new table: Spark creates it empty (version 0), its first rows are appended by deltalake (version 1)
    assert io.append_parquet(spark, settings, "bronze", "by_deltalake", [first], schema, ["_delivery_date"]) == 1
    assert io.append_parquet(spark, settings, "bronze", "by_deltalake", night, schema, ["_delivery_date"]) == 2
    io.write_table(spark.read.schema(schema).parquet(first), settings, "bronze", "by_spark", "append",
                   ["_delivery_date"])
    io.write_table(spark.read.schema(schema).parquet(*night), settings, "bronze", "by_spark", "append",
                   ["_delivery_date"])
    assert "Apache-Spark" in next(a["commitInfo"] for a in log_of("by_deltalake", 0) if "commitInfo" in a)["engineInfo"]
    info = next(a["commitInfo"] for a in log_of("by_deltalake", 2) if "commitInfo" in a)
    assert "Apache-Spark" not in info.get("engineInfo", "") and "delta-rs" in json.dumps(info)
    assert "Apache-Spark" in next(a["commitInfo"] for a in log_of("by_spark", 1) if "commitInfo" in a)["engineInfo"]
    adds = [a["add"] for a in log_of("by_deltalake", 2) if "add" in a]
    assert adds and all(a["partitionValues"] == {"_delivery_date": "2026-11-02"} for a in adds)
    assert json.loads(adds[0]["stats"])["numRecords"] >= 1
    got, want = io.read_table(spark, settings, "bronze", "by_deltalake"), io.read_table(spark, settings, "bronze", "by_spark")
    assert got.schema == want.schema
    assertDataFrameEqual(got, want)
    assert io.row_count(spark, settings, "bronze", "by_deltalake") == 4
    assert io.partition_values(spark, settings, "bronze", "by_deltalake", "_delivery_date") == {"2026-11-01",
                                                                                              "2026-11-02"}
    # a table needing a writer feature deltalake is not trusted with here: Spark appends
    spark.sql(f"ALTER TABLE delta.`{settings.table_path('bronze', 'by_deltalake')}` "
              "SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')")
    assert io.append_parquet(spark, settings, "bronze", "by_deltalake", [first], schema, ["_delivery_date"]) == 4
    assert "Apache-Spark" in next(a["commitInfo"] for a in log_of("by_deltalake", 4) if "commitInfo" in a)["engineInfo"]
    assert io.row_count(spark, settings, "bronze", "by_deltalake") == 5


def test_upsert_in_process_leaves_the_rows_the_merge_leaves_and_refuses_a_concurrent_delete(spark, settings,
                                                                                           monkeypatch):
    """A local table is upserted in the driver (gridlake.arrow_upsert, committed by deltalake): the same rows as
    Spark's MERGE of the same night on a twin table, nested columns and a timestamp included; a concurrent
    commit that deleted rows the upsert read stops it."""
    from delta.tables import DeltaTable
    from deltalake.exceptions import CommitFailedError

    schema = ("k string, n int, at timestamp, "
              "cands array<struct<house_code:string,weight:double,why:string>>, addr struct<room:string,unit:string>")
    first = spark.createDataFrame(
        [("a", 1, None, None, None), ("b", 2, None, [("H1", 0.5, "room")], ("101", None)), ("c", 3, None, [], None)],
        schema).withColumn("at", F.to_timestamp(F.lit("2026-11-02 08:30:00")))
    night = spark.createDataFrame(
        [("a", 1, None, None, None), ("b", 2, None, [("H1", 0.75, "room")], ("101", None)),
         ("d", 4, None, [("H9", 0.1, "unit")], ("9", "2"))], schema).withColumn(
        "at", F.to_timestamp(F.lit("2026-11-02 08:30:00")))
    gone = spark.createDataFrame([("c",)], "k string")
    for name in ("in_driver", "by_merge"):
        io.write_table(first, settings, "gold", name, "overwrite")
    v = io.upsert_changed(night, settings, "gold", "in_driver", ["k"], delete_keys=gone)
    monkeypatch.setattr(io, "IN_PROCESS_UPSERT_MAX_ROWS", 0)    # the twin through Spark's MERGE
    io.upsert_changed(night, settings, "gold", "by_merge", ["k"], delete_keys=gone)
    monkeypatch.undo()
    ops = {n: DeltaTable.forPath(spark, settings.table_path("gold", n)).history(1).first().operation
           for n in ("in_driver", "by_merge")}
    assert ops["by_merge"] == "MERGE" and ops["in_driver"] != "MERGE"
    assertDataFrameEqual(io.read_table(spark, settings, "gold", "in_driver"),
                         io.read_table(spark, settings, "gold", "by_merge"))
    assert sorted(r.k for r in io.read_table(spark, settings, "gold", "in_driver").collect()) == ["a", "b", "d"]
    assert io.upsert_changed(night, settings, "gold", "in_driver", ["k"], delete_keys=gone) == v   # rerun: no commit
    # the keys the in-process commit wrote or deleted are recorded for it (b changed, d new, c deleted; a kept);
    # Spark's MERGE records nothing, so a reader of its range compares whole
    from gridlake import changes

    recorded = changes.keys_changed(settings, "gold", "in_driver", v - 1, v, ["k"])
    assert sorted(recorded.column("k").to_pylist()) == ["b", "c", "d"]
    merged = io.table_version(spark, settings, "gold", "by_merge")
    assert changes.keys_changed(settings, "gold", "by_merge", merged - 1, merged, ["k"]) is None

    # a commit between the upsert's read and its write that deleted rows it read: deltalake refuses the write
    real = io._log_reader

    def read_then_delete(*args):
        version, table = real(*args)
        DeltaTable.forPath(spark, settings.table_path("gold", "in_driver")).delete("k = 'a'")
        return version, table

    monkeypatch.setattr(io, "_log_reader", read_then_delete)
    later = night.withColumn("n", F.col("n") + 1)
    with pytest.raises(CommitFailedError):
        io.upsert_changed(later, settings, "gold", "in_driver", ["k"])
    assert "a" not in {r.k for r in io.read_table(spark, settings, "gold", "in_driver").collect()}


def test_upsert_in_process_keeps_a_tables_partitions(spark, settings, monkeypatch):
    """A partitioned table upserted in the driver keeps its partition column and holds the rows Spark's MERGE
    leaves in its twin (a row moved to another partition, a new partition, a row deleted)."""
    from delta.tables import DeltaTable

    schema = "k string, v int, d date"
    first = spark.createDataFrame([("a", 1, None), ("b", 2, None), ("c", 3, None)], schema).withColumn(
        "d", F.when(F.col("k") == "c", F.to_date(F.lit("2026-11-02"))).otherwise(F.to_date(F.lit("2026-11-01"))))
    night = spark.createDataFrame([("a", 1, None), ("b", 20, None), ("e", 5, None)], schema).withColumn(
        "d", F.when(F.col("k") == "a", F.to_date(F.lit("2026-11-01"))).otherwise(F.to_date(F.lit("2026-11-03"))))
    gone = spark.createDataFrame([("c",)], "k string")
    for name in ("parts_driver", "parts_merge"):
        io.write_table(first, settings, "silver", name, "overwrite", partition_by=["d"])
    io.upsert_changed(night, settings, "silver", "parts_driver", ["k"], delete_keys=gone)
    monkeypatch.setattr(io, "IN_PROCESS_UPSERT_MAX_ROWS", 0)
    io.upsert_changed(night, settings, "silver", "parts_merge", ["k"], delete_keys=gone)
    driver = DeltaTable.forPath(spark, settings.table_path("silver", "parts_driver"))
    assert driver.history(1).first().operation != "MERGE"
    assert driver.detail().first().partitionColumns == ["d"]
    assertDataFrameEqual(io.read_table(spark, settings, "silver", "parts_driver"),
                         io.read_table(spark, settings, "silver", "parts_merge"))
    assert io.partition_values(spark, settings, "silver", "parts_driver", "d") == {"2026-11-01", "2026-11-03"}
