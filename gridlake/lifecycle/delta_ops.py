"""The Delta operations of the lifecycle: DELETE, UPDATE, OPTIMIZE, VACUUM, table properties, log purge.

:mod:`gridlake.io` reads, writes and merges for the nightly stages; these are the maintenance
operations on top, each one Delta commit (VACUUM deletes files and commits nothing of the table's
content). Delta's retention safety check stays on (:mod:`gridlake.spark`; Delta 4.4 refuses a zero-hour
VACUUM with it, but lets an hour through whatever the table's property says, so the retention of every
VACUUM is computed by the caller): :func:`vacuum` first sets the table's ``delta.deletedFileRetentionDuration``
to the retention it uses, and only :func:`vacuum_now` (erasure) lifts the check, for its own call, and
puts it back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gridlake.config import Settings
from gridlake.lifecycle import lake
from gridlake.storage import is_local, require_local

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"


def _table(spark: SparkSession, settings: Settings, layer: str, name: str):
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, settings.table_path(layer, name))


def delete_where(spark: SparkSession, settings: Settings, layer: str, name: str, condition) -> int:
    """DELETE the rows matching ``condition`` (SQL text or Column); return how many were deleted."""
    before = spark.read.format("delta").load(settings.table_path(layer, name)).where(condition).count()
    if before:
        _table(spark, settings, layer, name).delete(condition)
        log.info("deleted %d rows from %s.%s", before, layer, name)
    return before


def update_where(spark: SparkSession, settings: Settings, layer: str, name: str, condition: str,
                 assignments: Mapping[str, str]) -> int:
    """UPDATE the rows matching ``condition`` with SQL ``assignments``; return how many were updated."""
    n = spark.read.format("delta").load(settings.table_path(layer, name)).where(condition).count()
    if n:
        _table(spark, settings, layer, name).update(condition, dict(assignments))
        log.info("updated %d rows of %s.%s", n, layer, name)
    return n


def set_properties(spark: SparkSession, settings: Settings, layer: str, name: str, props: Mapping[str, str]) -> None:
    """ALTER TABLE ... SET TBLPROPERTIES (one commit), skipped when every value is already set."""
    path = settings.table_path(layer, name)
    current = table_properties(spark, settings, layer, name)
    todo = {k: v for k, v in props.items() if current.get(k) != v}
    if not todo:
        return
    body = ", ".join(f"'{k}' = '{v}'" for k, v in todo.items())
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({body})")


def table_properties(spark: SparkSession, settings: Settings, layer: str, name: str,
                     version: int | None = None) -> dict[str, str]:
    """The table's properties (at ``version`` when given)."""
    path = settings.table_path(layer, name)
    if version is None:
        row = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("properties").first()
        return dict(row["properties"] or {}) if row else {}
    jvm = spark._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    none = jvm.scala.Option.empty()
    conf = delta_log.getSnapshotAt(version, none, none, False).metadata().configuration()
    return {k: conf.apply(k) for k in _scala_keys(conf)}


def _scala_keys(scala_map) -> list[str]:
    it = scala_map.keys().iterator()
    out = []
    while it.hasNext():
        out.append(it.next())
    return out


def optimize(spark: SparkSession, settings: Settings, layer: str, name: str) -> None:
    """OPTIMIZE (bin-packing compaction of small files; one commit, old files become vacuumable)."""
    _table(spark, settings, layer, name).optimize().executeCompaction()


def vacuum(spark: SparkSession, settings: Settings, layer: str, name: str, hours: int, log_days: int) -> None:
    """VACUUM with ``hours`` of retention, Delta's safety check on.

    The table's ``delta.deletedFileRetentionDuration`` is set to ``hours`` first (the check compares
    against it) and ``delta.logRetentionDuration`` to ``log_days``, so the log keeps the same history
    the files do.
    """
    set_properties(spark, settings, layer, name, {
        "delta.deletedFileRetentionDuration": f"interval {hours} hours",
        "delta.logRetentionDuration": f"interval {log_days} days",
    })
    _table(spark, settings, layer, name).vacuum(float(hours))
    remove_orphan_checksums(settings, layer, name)


@contextlib.contextmanager
def retention_check_lifted(spark: SparkSession) -> Iterator[None]:
    """Delta's retention safety check off for the enclosed calls only (erasure), then back as it was."""
    previous = spark.conf.get(CHECK_CONF, "true")
    spark.conf.set(CHECK_CONF, "false")
    try:
        yield
    finally:
        spark.conf.set(CHECK_CONF, previous)


def vacuum_now(spark: SparkSession, settings: Settings, layer: str, name: str) -> None:
    """VACUUM with zero retention (erasure only): every file the current version does not use is deleted."""
    with retention_check_lifted(spark):
        _table(spark, settings, layer, name).vacuum(0.0)
    remove_orphan_checksums(settings, layer, name)


def remove_orphan_checksums(settings: Settings, layer: str, name: str) -> int:
    """Delete Hadoop checksum files (``.<file>.crc``) whose file is gone; return how many. Local lakes only.

    Hadoop's checksummed local file system deletes a file's checksum with it. Since the raw one writes the
    lake (``spark.local_checksum_files`` off), a VACUUM deletes a data file alone, so the checksum of a file
    written before stays behind; this removes it (an erased file leaves no trace of its bytes, not even their
    CRCs). Delta's own commit checksums (``_delta_log/<version>.crc``) are not hidden files: untouched.
    """
    root = Path(settings.table_path(layer, name))
    if not is_local(settings) or not root.is_dir():
        return 0
    removed = 0
    for crc in root.rglob(".*.crc"):
        if crc.is_file() and not (crc.parent / crc.name[1:-len(".crc")]).exists():
            crc.unlink()
            removed += 1
    if removed:
        log.info("%s.%s: %d checksum file(s) of deleted files removed", layer, name, removed)
    return removed


def checkpoint(spark: SparkSession, settings: Settings, layer: str, name: str) -> int:
    """Write a checkpoint at the table's current version; return that version."""
    jvm = spark._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, settings.table_path(layer, name))
    none = jvm.scala.Option.empty()
    snapshot = delta_log.update(False, none, none)
    delta_log.checkpoint(snapshot, none)
    return int(snapshot.version())


def purge_log_before(settings: Settings, layer: str, name: str, version: int) -> int:
    """Delete every log file (commits, checksums, checkpoints) of versions before ``version``.

    Called after :func:`checkpoint` at ``version``: the table is reconstructed from that checkpoint,
    and the older commit files (whose file statistics may hold min/max values of erased rows) are gone.
    Returns the number of files deleted. Local lakes only.
    """
    require_local(settings, f"purging old log files of {layer}.{name} (erasure)")
    log_dir = Path(settings.table_path(layer, name)) / lake.LOG_DIR
    removed = 0
    for f in list(log_dir.iterdir()):
        head = f.name.lstrip(".").split(".")[0]
        if head.isdigit() and int(head) < version and f.is_file():
            f.unlink()
            removed += 1
    return removed


def clear_delta_cache(spark: SparkSession) -> None:
    """Forget cached Delta logs after files were removed behind Delta's back."""
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
