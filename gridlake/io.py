"""The one place where tables are read, written and merged.

Transforms never touch storage; runners call these functions. Tables are
addressed as ``(layer, name)`` and live at ``Settings.table_path``.
Every write is a single Delta commit, so a crash never leaves half a table.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from gridlake import changes
from gridlake.access import commit_stamp, note_commit, note_read
from gridlake.config import Settings
from gridlake.faults import before_commit

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: The table property that makes Delta record a table's change data feed (:func:`changed_keys`)
CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}


def table_exists(spark: SparkSession, settings: Settings, layer: str, name: str) -> bool:
    """True when a Delta table (a ``_delta_log`` with at least one commit) exists at the table's path."""
    return table_version(spark, settings, layer, name) >= 0


def read_table(
    spark: SparkSession, settings: Settings, layer: str, name: str, version: int | None = None
) -> DataFrame:
    """Read a Delta table (optionally at a version: time travel)."""
    table_version(spark, settings, layer, name)  # noted for the stage's record of what it read
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(settings.table_path(layer, name))


def read_table_or_empty(spark: SparkSession, settings: Settings, layer: str, name: str, schema) -> DataFrame:
    """Read a table, or an empty frame of ``schema`` when it does not exist yet."""
    if table_exists(spark, settings, layer, name):
        return read_table(spark, settings, layer, name)
    return spark.createDataFrame([], schema)


def write_table(
    df: DataFrame,
    settings: Settings,
    layer: str,
    name: str,
    mode: str = "append",
    partition_by: Sequence[str] = (),
    replace_where: str | None = None,
    properties: Mapping[str, str] | None = None,
    max_rows_per_file: int | None = None,
) -> int:
    """Append to or overwrite a Delta table in one commit; return the new version.

    A partition column must not be a timestamp: its partition values would be written as text in the
    session's time zone, and the session turns off Delta's check of them (gridlake.spark, allFilesInCrc).
    ``properties`` (``delta.*`` table properties, e.g. :data:`CHANGE_FEED`) are set by the commit that
    creates the table. ``max_rows_per_file`` caps the rows of each data file this write adds.
    """
    timestamps = [f.name for f in df.schema.fields if f.name in partition_by
                  and f.dataType.typeName() in ("timestamp", "timestamp_ntz")]
    if timestamps:
        raise ValueError(f"{layer}.{name}: partition column(s) {', '.join(timestamps)} are timestamps; "
                         "partition by a date column instead")
    writer = df.write.format("delta").mode(mode)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if replace_where:
        writer = writer.option("replaceWhere", replace_where)
    for key, value in (properties or {}).items():
        writer = writer.option(key, value)
    if max_rows_per_file:
        writer = writer.option("maxRecordsPerFile", str(int(max_rows_per_file)))
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true") if not replace_where else writer
    with recorded_commit(df.sparkSession, settings, layer, name):
        writer.save(settings.table_path(layer, name))
    version = table_version(df.sparkSession, settings, layer, name)
    log.info("wrote %s.%s (%s) -> version %s", layer, name, mode, version)
    return version


def overwrite_arrow(spark: SparkSession, settings: Settings, layer: str, name: str, table, schema) -> int:
    """Overwrite ``layer.name`` with ``table`` (a ``pyarrow.Table`` this process holds, columns as ``schema``)
    in one commit; return the new version.

    On a local lake written with ``deltalake`` from this process (no Spark job, no transfer to the JVM: a
    district's 1.3 M-row state of person linkage in about 1 s against 6-7 s through Spark), unless the table
    needs a reader or writer feature ``deltalake`` is not trusted with here (protocol above 1/2), which Spark
    then writes. Any other lake: through Spark (:func:`write_table`)."""
    from gridlake.storage import is_local, open_delta

    path = settings.table_path(layer, name)
    if is_local(settings):
        existing = open_delta(settings, path)
        if existing is None or (existing.protocol().min_reader_version <= 1
                                and existing.protocol().min_writer_version <= 2):
            from deltalake import write_deltalake

            with recorded_commit(spark, settings, layer, name):
                write_deltalake(path, table.select([f.name for f in schema.fields]), mode="overwrite",
                                schema_mode="overwrite")
            version = table_version(spark, settings, layer, name)
            log.info("wrote %s.%s (overwrite, deltalake) -> version %s", layer, name, version)
            return version
    frame = table.to_pandas() if table.num_rows else []
    return write_table(spark.createDataFrame(frame, schema).coalesce(settings.spark.default_parallelism),
                       settings, layer, name, "overwrite")


def append_parquet(spark: SparkSession, settings: Settings, layer: str, name: str, paths: Sequence[str],
                   schema, partition_by: Sequence[str] = ()) -> int:
    """Append the rows of Parquet files this process wrote (columns as ``schema``, a Spark ``StructType``) to a
    table, in one commit; return the new version.

    On a local lake, to a table with the same columns and types, partitioned by date columns only, that needs no
    reader or writer feature ``deltalake`` is not trusted with here (protocol at most 1/2, as
    :func:`overwrite_arrow`): the rows are copied into the table's data files by ``pyarrow`` (one per file and
    partition, written in place under its final name, as Spark writes) and committed with ``deltalake``, their
    row counts as statistics. No Spark job, and the rows are not sent through the JVM to be encoded again (a
    district's 500,000 registry rows in about 1 s against 3.5-4.4 s warm). A table that does not exist yet is
    first created empty by Spark (:func:`create_if_missing`: its schema and protocol are Spark's), so its first
    rows are its second commit. Otherwise Spark reads and appends them (:func:`write_table`).
    """
    from gridlake.storage import is_local, open_delta

    path = settings.table_path(layer, name)
    table = None
    if is_local(settings):
        create_if_missing(spark, settings, layer, name, schema, partition_by)
        table = open_delta(settings, path)
    if table is not None and _arrow_appendable(table, schema, partition_by):
        actions = [a for p in paths for a in _copy_into(path, p, schema, list(partition_by))]
        if not actions:  # no rows: nothing to commit
            return table_version(spark, settings, layer, name)
        before_commit(path)  # GRIDLAKE_FAULT=<window>~file: killed here, the files written, not committed
        with recorded_commit(spark, settings, layer, name):
            table.create_write_transaction(actions, mode="append", schema=table.schema(),
                                           partition_by=list(partition_by) or None)
        version = table_version(spark, settings, layer, name)
        log.info("wrote %s.%s (append, %d file(s) committed by deltalake) -> version %s", layer, name,
                 len(actions), version)
        return version
    df = spark.read.schema(schema).parquet(*paths)
    return write_table(df, settings, layer, name, mode="append", partition_by=partition_by)


def _arrow_appendable(table, schema, partition_by: Sequence[str]) -> bool:
    """Whether :func:`append_parquet` may add files to ``table`` itself (see there)."""
    protocol = table.protocol()
    if protocol.min_reader_version > 1 or protocol.min_writer_version > 2:
        return False
    if list(table.metadata().partition_columns) != list(partition_by):
        return False
    if any(schema[c].dataType.typeName() != "date" for c in partition_by):
        return False
    have = [(f.name, str(f.type)) for f in table.schema().fields]
    want = [(f.name, str(_delta_type(f.dataType))) for f in schema.fields]
    return have == want


def _delta_type(spark_type):
    """The ``deltalake`` type of a Spark type (by its JSON form: the Delta log's own)."""
    import json

    from deltalake import Schema

    doc = {"type": "struct", "fields": [{"name": "c", "type": json.loads(spark_type.json()), "nullable": True,
                                         "metadata": {}}]}
    return Schema.from_json(json.dumps(doc)).fields[0].type


def _copy_into(table_path: str, staged: str, schema, partition_by: list[str]) -> list:
    """The rows of the Parquet file ``staged`` written as data files of the table at ``table_path`` (one per
    partition value, Hive-style folders as Spark names them, the partition columns left out of the file);
    their ``deltalake`` add actions, not yet committed."""
    import datetime as dt
    import json
    import time
    import uuid
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    data = pads.dataset(staged, format="parquet")
    columns = [f.name for f in schema.fields if f.name not in partition_by]
    keys = data.to_table(columns=partition_by).group_by(partition_by).aggregate([]) if partition_by else None
    groups = keys.to_pylist() if keys is not None else [{}]
    actions = []
    for group in groups:
        where = None
        for c, v in group.items():
            term = pc.field(c).is_null() if v is None else pc.field(c) == v
            where = term if where is None else where & term
        values = {c: (v.isoformat() if isinstance(v, dt.date) else None) for c, v in group.items()}
        folder = "/".join(f"{c}={'__HIVE_DEFAULT_PARTITION__' if v is None else v}" for c, v in values.items())
        rel = (f"{folder}/" if folder else "") + f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        target = Path(table_path, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = 0
        with pq.ParquetWriter(target, pa.schema([data.schema.field(c) for c in columns]), compression="snappy") as out:
            for batch in data.to_batches(columns=columns, filter=where):
                out.write_batch(batch)
                rows += batch.num_rows
        actions.append(AddAction(rel, target.stat().st_size, values, int(time.time() * 1000), True,
                                 json.dumps({"numRecords": rows})))
    return actions


def create_if_missing(spark: SparkSession, settings: Settings, layer: str, name: str, schema, partition_by=(),
                      properties: Mapping[str, str] | None = None) -> None:
    """Create an empty Delta table with ``schema`` (and table ``properties``) unless it exists."""
    if not table_exists(spark, settings, layer, name):
        write_table(spark.createDataFrame([], schema), settings, layer, name, "overwrite", partition_by,
                    properties=properties)


def create_with_rows(df: DataFrame, settings: Settings, layer: str, name: str, schema,
                     properties: Mapping[str, str] | None = None, max_rows_per_file: int | None = None) -> int:
    """Create a table that does not exist yet with its first rows, in one commit; return its version.

    The same table as :func:`create_if_missing` followed by an append (Delta stores every column as
    nullable either way), one commit fewer. ``df``'s columns must be ``schema``'s, by name, order and
    type, else nothing is written. ``max_rows_per_file``: as :func:`write_table`.
    """
    have = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
    want = [(f.name, f.dataType.simpleString()) for f in schema.fields]
    if have != want:
        raise ValueError(f"{layer}.{name}: the first rows' columns differ from the table schema: "
                         f"{sorted(set(have) ^ set(want))}")
    return write_table(df, settings, layer, name, "append", properties=properties,
                       max_rows_per_file=max_rows_per_file)


def merge_table(
    source: DataFrame,
    settings: Settings,
    layer: str,
    name: str,
    keys: Sequence[str],
    update_when: str | None = None,
    update_set: dict[str, str] | None = None,
    insert: bool = True,
    delete_not_matched_by_source: str | None = None,
    delete_flag: str | None = None,
) -> int:
    """Delta MERGE ``source`` into the table on ``keys``; create the table if missing.

    ``update_when`` restricts updates to changed rows (so an unchanged rerun writes
    nothing new); ``update_set`` maps target columns to source expressions (default:
    all columns). ``delete_flag`` names a boolean source column: matched rows where it is true are
    deleted, the others updated or inserted (the flag itself is not written). Returns the table
    version afterwards.
    """
    from delta.tables import DeltaTable

    spark = source.sparkSession
    path = settings.table_path(layer, name)
    if not DeltaTable.isDeltaTable(spark, path):
        return write_table(source, settings, layer, name, "overwrite")
    target = DeltaTable.forPath(spark, path)
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    builder = target.alias("t").merge(source.alias("s"), cond)
    if delete_flag is not None:
        values = {c: f"s.`{c}`" for c in source.columns if c != delete_flag}
        builder = (builder.whenMatchedDelete(condition=f"s.`{delete_flag}`")
                   .whenMatchedUpdate(condition=update_when, set=update_set or values))
        if insert:
            builder = builder.whenNotMatchedInsert(condition=f"NOT s.`{delete_flag}`", values=values)
    elif update_set is not None:
        builder = builder.whenMatchedUpdate(condition=update_when, set=update_set)
    elif update_when is not None or update_set is None:
        builder = builder.whenMatchedUpdateAll(condition=update_when)
    if insert and delete_flag is None:
        builder = builder.whenNotMatchedInsertAll()
    if delete_not_matched_by_source is not None:
        builder = builder.whenNotMatchedBySourceDelete(condition=delete_not_matched_by_source or None)
    with recorded_commit(spark, settings, layer, name):
        builder.execute()
    version = table_version(spark, settings, layer, name)
    log.info("merged into %s.%s -> version %s", layer, name, version)
    return version


def table_version(spark: SparkSession, settings: Settings, layer: str, name: str) -> int:
    """Current Delta version of a table, or -1 when it does not exist.

    Read from the names of the commit files in ``_delta_log`` through Hadoop's FileSystem
    (any scheme the session can write to): the newest commit is the table's version, as Delta's
    own listing decides. No Spark job and no log replay, so recording every table's version in
    each run manifest costs milliseconds, not a job per table. The version is noted as read by the
    running stage (:mod:`gridlake.access`).
    """
    version, stamp = _newest_commit(spark, settings, layer, name)
    note_read(f"{layer}.{name}", version, stamp)
    return version


def _newest_commit(spark: SparkSession, settings: Settings, layer: str, name: str) -> tuple[int, str]:
    """``(version, stamp)`` of the table's newest commit file; ``(-1, "absent")`` without one."""
    jvm = spark._jvm
    log_dir = jvm.org.apache.hadoop.fs.Path(settings.table_path(layer, name).rstrip("/") + "/_delta_log")
    fs = log_dir.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(log_dir):
        return -1, commit_stamp(-1)
    newest = None
    for st in fs.listStatus(log_dir):
        n = st.getPath().getName()
        if n.endswith(".json") and n[:-5].isdigit() and (newest is None or int(n[:-5]) > newest[0]):
            newest = (int(n[:-5]), st)
    if newest is None:
        return -1, commit_stamp(-1)
    return newest[0], commit_stamp(newest[0], int(newest[1].getLen()), int(newest[1].getModificationTime()))


def commit_of(spark: SparkSession, settings: Settings, table: str) -> str:
    """The stamp of table ``layer.name``'s newest commit (version, size, time), not noted as a read."""
    layer, name = table.split(".", 1)
    return _newest_commit(spark, settings, layer, name)[1]


@contextlib.contextmanager
def recorded_commit(spark: SparkSession, settings: Settings, layer: str, name: str) -> Iterator[None]:
    """Around one commit to a table that does not go through :func:`write_table` or :func:`merge_table`
    (a MERGE built by hand): notes the commit for the running stage's record (:mod:`gridlake.access`)."""
    before = _newest_commit(spark, settings, layer, name)
    yield
    after = _newest_commit(spark, settings, layer, name)
    note_commit(f"{layer}.{name}", before, after)


def _log_reader(spark: SparkSession, settings: Settings, layer: str, name: str, version: int | None = None):
    """``(version, table)``: the table's current version, noted as read (-1 when absent), or ``version`` when
    given (an earlier one the stage noted as read), and a ``deltalake`` table at that version when its log
    can be trusted without Spark: a local or ``s3a://`` lake and a table
    needing no reader feature (protocol reader version 1); else None. A table with deletion vectors, say,
    lists whole files whose rows are partly deleted (this ``deltalake`` shows neither the vectors in its
    add actions nor can it read them)."""
    from gridlake.storage import is_local, is_s3a, open_delta

    if version is None:
        version = table_version(spark, settings, layer, name)
    if version < 0 or not (is_local(settings) or is_s3a(settings)):
        return version, None
    try:
        table = open_delta(settings, settings.table_path(layer, name), version=version)
    except Exception as exc:  # noqa: BLE001 - a log deltalake cannot read: Spark reads it
        log.info("%s.%s read with Spark (deltalake: %s)", layer, name, type(exc).__name__)
        return version, None
    if table is None or table.protocol().min_reader_version > 1:
        return version, None
    return version, table


def row_count(spark: SparkSession, settings: Settings, layer: str, name: str) -> int:
    """Rows of a table's current version.

    On a local or ``s3a://`` lake the count is the sum of the ``numRecords`` statistics Delta keeps
    per data file, read from the log with ``deltalake`` (no Spark job, no data read); a file without
    statistics, a table needing a reader feature (deletion vectors: its files' counts include deleted
    rows), or a lake on another file system falls back to a Spark ``count()``.
    """
    version, table = _log_reader(spark, settings, layer, name)
    if table is not None:
        adds = table.get_add_actions(flatten=True)
        if "num_records" in adds.schema.names:
            counts = adds.column("num_records").to_pylist()
            if all(c is not None for c in counts):
                return int(sum(counts))
    return read_table(spark, settings, layer, name, version=version if version >= 0 else None).count()


def read_columns(spark: SparkSession, settings: Settings, layer: str, name: str, columns: Sequence[str],
                 version: int | None = None):
    """``columns`` of a small table's current version (or of ``version``, one the stage read before) as a
    ``pyarrow.Table`` in this process (a log the driver looks keys up in), or None when the table does not
    exist.

    Read with ``deltalake`` at the version noted as read, without a Spark job, where :func:`row_count`
    trusts the log (a bronze request per source paid 0.4-0.9 s for a Spark read of its ingestion log);
    otherwise with Spark at that version.
    """
    version, table = _log_reader(spark, settings, layer, name, version)
    if version < 0:
        return None
    if table is not None:
        try:
            return table.to_pyarrow_table(columns=list(columns))
        except Exception as exc:  # noqa: BLE001 - e.g. a file deltalake cannot read: Spark reads it
            log.info("%s.%s read with Spark (deltalake: %s)", layer, name, type(exc).__name__)
    return read_table(spark, settings, layer, name, version=version).select(*columns).toArrow()


def changed_keys(spark: SparkSession, settings: Settings, layer: str, name: str, since: int, until: int,
                 keys: Sequence[str]) -> DataFrame | None:
    """The distinct ``keys`` of the rows that the table's commits ``since`` + 1 to ``until`` inserted, updated or
    deleted, from Delta's change data feed (:data:`CHANGE_FEED`), computed and kept: a few rows on a night
    that changed a few. Empty when ``until`` is ``since``.

    A commit without change files (an overwrite, a restore) gives its added rows as inserts and its removed rows
    as deletes, and one that changes no data (OPTIMIZE) gives none, so every key whose rows differ between the
    two versions is among them; a key may be given whose rows ended as they were. None when the feed cannot
    tell: not recorded for one of those commits (enabled later), its change files cleaned by a VACUUM, or
    ``until`` before ``since``; the caller then compares the two versions whole.
    """
    from pyspark.sql import functions as F

    if since < 0 or until < since:
        return None
    table_version(spark, settings, layer, name)  # noted for the stage's record of what it read
    path = settings.table_path(layer, name)
    try:
        feed = (spark.read.format("delta").option("readChangeFeed", "true")
                .option("startingVersion", since + 1).option("endingVersion", until).load(path)
                if until > since else read_table(spark, settings, layer, name, version=until).where(F.lit(False)))
        return feed.select(*keys).distinct().localCheckpoint(eager=True)
    except Exception as exc:  # noqa: BLE001 - no feed for that range: the versions are compared whole
        log.info("%s.%s: no change feed for versions %d-%d (%s); compared whole", layer, name, since + 1, until,
                 type(exc).__name__)
        return None


def partition_values(spark: SparkSession, settings: Settings, layer: str, name: str, column: str) -> set[str] | None:
    """The values of partition ``column`` that the current version's files hold (dates as ``YYYY-MM-DD``),
    read from the log without a Spark job; None when the log is not trusted without Spark (see
    :func:`row_count`), the table does not exist or is not partitioned by ``column``."""
    _, table = _log_reader(spark, settings, layer, name)
    if table is None or column not in table.metadata().partition_columns:
        return None
    adds = table.get_add_actions(flatten=True)
    field = f"partition.{column}"
    if field not in adds.schema.names:
        return set() if not adds.num_rows else None
    return {v.isoformat() if hasattr(v, "isoformat") else str(v) for v in adds.column(field).to_pylist()
            if v is not None}


def table_versions(spark: SparkSession, settings: Settings, tables: Sequence[tuple[str, str]]) -> dict[str, int]:
    """``{"layer.name": version}`` for each table."""
    return {f"{layer}.{name}": table_version(spark, settings, layer, name) for layer, name in tables}


def register_tables(spark: SparkSession, settings: Settings, layer: str, names: Sequence[str]) -> None:
    """Expose tables as temporary views ``<layer>_<name>`` and ``<name>`` for Spark SQL."""
    for name in names:
        if table_exists(spark, settings, layer, name):
            df = read_table(spark, settings, layer, name)
            df.createOrReplaceTempView(name)
            df.createOrReplaceTempView(f"{layer}_{name}")


def _row_hash(df: DataFrame, columns: Sequence[str]):
    from pyspark.sql import functions as F

    return F.xxhash64(*[F.col(f"`{c}`") for c in columns])


def changed_rows(source: DataFrame, target: DataFrame, keys: Sequence[str], columns: Sequence[str]) -> DataFrame:
    """Rows of ``source`` that are new, or whose ``columns`` differ from ``target`` (by key)."""
    src = source.withColumn("__h", _row_hash(source, columns))
    # Only the target rows whose key the source has: a semi join adaptive execution broadcasts when the
    # source is small (a night's increment), so the target is filtered as it is scanned, not shuffled.
    tgt = target.join(source.select(*keys), list(keys), "left_semi")
    tgt = tgt.select(*keys, _row_hash(tgt, columns).alias("__h"))
    return src.join(tgt, on=[*keys, "__h"], how="left_anti").drop("__h")


def upsert_changed(
    source: DataFrame,
    settings: Settings,
    layer: str,
    name: str,
    keys: Sequence[str],
    columns: Sequence[str] | None = None,
    delete_keys: DataFrame | None = None,
) -> int:
    """MERGE only the new or changed rows of ``source``; commit nothing when there are none.

    ``delete_keys`` (optional, the ``keys`` columns only) names rows to delete in the same
    commit. This is what makes a rerun of a night leave the table at the same Delta version.
    A local table the driver can hold is upserted in this process instead (:func:`_upsert_in_process`: the
    same rows, one commit), other tables by Spark's MERGE.
    """
    from pyspark.sql import functions as F

    spark = source.sparkSession
    if not table_exists(spark, settings, layer, name):
        return write_table(source, settings, layer, name, "overwrite")
    columns = list(columns or [c for c in source.columns if c not in keys])
    version = _upsert_in_process(source, settings, layer, name, keys, columns, delete_keys)
    if version is not None:
        return version
    target = read_table(spark, settings, layer, name)
    delta = changed_rows(source, target, keys, columns)
    if delete_keys is not None:
        gone = delete_keys.select(*keys).join(target.select(*keys), list(keys), "left_semi")
        delta = delta.withColumn("__delete", F.lit(False)).unionByName(
            gone.withColumn("__delete", F.lit(True)), allowMissingColumns=True)
    delta = delta.persist()
    try:
        if delta.isEmpty():
            return table_version(spark, settings, layer, name)
        return merge_table(delta, settings, layer, name, keys,
                           delete_flag="__delete" if delete_keys is not None else None)
    finally:
        delta.unpersist()


#: up to this many rows, a local table's upsert is computed in this process (:func:`_upsert_in_process`)
IN_PROCESS_UPSERT_MAX_ROWS = 5_000_000
#: row groups of the files it writes: a file Spark reads is split between tasks at row groups
IN_PROCESS_ROW_GROUP = 262_144


def _upsert_in_process(source: DataFrame, settings: Settings, layer: str, name: str, keys: Sequence[str],
                       columns: Sequence[str], delete_keys: DataFrame | None) -> int | None:
    """:func:`upsert_changed` computed in this process and committed by ``deltalake``; None when Spark's MERGE
    must do it. A MERGE rewrites every file holding a changed row, and a night's changed rows are spread over
    every file of the table, so it joined and rewrote the whole table through Spark (a district's
    gold.house_resolution: 1.56 M rows rewritten for 69 changed and 1,836 new, 8.5 s in Delta's MERGE alone).
    Here the table as read (``deltalake``, at the version noted as read), the source rows and the keys to
    delete are brought into Arrow, the table afterwards is computed (:func:`gridlake.arrow_upsert.upserted`:
    the same rows the MERGE leaves) and written over the version read in one commit, which ``deltalake``
    refuses if a concurrent commit removed rows it read (an erasure, say).

    Only on a local lake, for a table of at most :data:`IN_PROCESS_UPSERT_MAX_ROWS` rows whose protocol
    ``deltalake`` is trusted with here (at most 1/2) and that records no change data feed (this writer would
    not record it); and only where the outcome is one row per key (:class:`gridlake.arrow_upsert.NotApplicable`)."""
    from gridlake import arrow_upsert
    from gridlake.storage import is_local

    spark = source.sparkSession
    if not is_local(settings):
        return None
    version, table = _log_reader(spark, settings, layer, name)
    if table is None or version < 0:
        return None
    protocol = table.protocol()
    if (protocol.min_writer_version > 2 or protocol.min_reader_version > 1
            or any(str(table.metadata().configuration.get(k, "")).lower() == v for k, v in CHANGE_FEED.items())
            or row_count(spark, settings, layer, name) > IN_PROCESS_UPSERT_MAX_ROWS):
        return None
    previous = table.to_pyarrow_table()
    gone = delete_keys.select(*keys).toArrow() if delete_keys is not None else None
    try:
        result = arrow_upsert.upserted(previous, source.toArrow(), keys, columns, gone)
    except arrow_upsert.NotApplicable as exc:
        log.info("%s.%s: upsert left to Spark's MERGE (%s)", layer, name, exc)
        return None
    if result.table is None:
        log.info("%s.%s: no row changed; nothing written", layer, name)
        return version
    from deltalake import WriterProperties, write_deltalake

    with recorded_commit(spark, settings, layer, name):
        write_deltalake(table, result.table, mode="overwrite",
                        partition_by=list(table.metadata().partition_columns) or None,
                        writer_properties=WriterProperties(max_row_group_size=IN_PROCESS_ROW_GROUP))
    after = table_version(spark, settings, layer, name)
    # the keys this commit wrote or deleted, for the nights after it (gridlake.changes)
    changes.record(settings, layer, name, version, after, keys, result.written, result.removed)
    log.info("upserted into %s.%s in this process: %d row(s) written, %d deleted -> version %s", layer, name,
             result.changed, result.deleted, after)
    return after


def overwrite_if_changed(
    df: DataFrame, settings: Settings, layer: str, name: str, replace_where: str | None = None,
    partition_by: Sequence[str] = (),
) -> int:
    """Overwrite a table (or the ``replace_where`` slice) unless its content is already identical."""
    from pyspark.sql import functions as F

    spark = df.sparkSession
    if table_exists(spark, settings, layer, name):
        current = read_table(spark, settings, layer, name)
        if replace_where:
            current = current.where(replace_where)
        cols = sorted(df.columns)
        if sorted(current.columns) == cols:
            def fingerprint(frame: DataFrame):
                return frame.select(F.count(F.lit(1)).alias("n"),
                                    F.sum(F.xxhash64(*[F.col(f"`{c}`") for c in cols]).cast("decimal(38,0)")).alias("h")).first()

            if tuple(fingerprint(current)) == tuple(fingerprint(df)):
                return table_version(spark, settings, layer, name)
    return write_table(df, settings, layer, name, "overwrite", partition_by=partition_by, replace_where=replace_where)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
