"""Each record's change since the last night, from the keys silver's commits recorded (:mod:`gridlake.changes`).

:func:`jobs.matching.runner.record_changes` compares every record with its resolution: one full outer join of
1.55 M rows a side on a district, about 12 s of an incremental night that delivered a few thousand. Most records
cannot have changed: a record's ``input_hash`` depends only on its silver row and on the officers' alias of its
address (:func:`jobs.gold.aliases.mark`). So the comparison needs only the *candidates*:

- the keys that silver's commits since the last night's versions inserted, replaced or deleted
  (:func:`gridlake.changes.keys_changed` per record source, from the versions the night's state saved);
- every record with an alias now, and every resolution made by an alias the last night (an alias added,
  withdrawn or replaced changes the hash without touching silver);
- every declaration kept only in the quarantine for its checksum (a few thousand, typed by the runner's
  ``checksum_failed_declarations``; silver's recorded commits do not write them).

A record outside them has the silver row, and so the hash, it had when it was last resolved: it is unchanged,
and it was resolved then, so the resolutions outside the candidates are exactly those records. That last step is
checked, not assumed: the records and the resolutions outside the candidates must be as many (a quarantined
declaration purged, a resolution no record explains, would make them differ). Where a source's commits are not
all recorded (a first night, Spark's MERGE, an erasure, OPTIMIZE, a table made again), where the state saved no
versions, or where the counts differ, :func:`candidates` returns None and the caller compares every record, as
before. So the records can make the comparison cheaper, never different
(``tests/integration/test_incremental_matching.py`` compares both ways).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from gridlake.context import RunContext

log = logging.getLogger(__name__)

__all__ = ["candidates", "decode_versions", "encode_versions", "narrowed", "recorded_keys"]

KEYS = ["source", "record_id"]
KEYS_SCHEMA = StructType([StructField("source", StringType(), False), StructField("record_id", StringType(), True)])
#: up to this many candidate keys, they meet the records and resolutions as a broadcast
BROADCAST_KEYS = 200_000


def encode_versions(versions: dict[str, int]) -> str:
    """The record sources' silver versions a night read, as the state keeps them (JSON, sorted)."""
    return json.dumps({k: int(v) for k, v in sorted(versions.items())}, separators=(",", ":"))


def decode_versions(text: str | None) -> dict[str, int] | None:
    """:func:`encode_versions`' text back, or None for a state saved without it (or unreadable)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, int) for v in value.values()):
        return None
    return {str(k): int(v) for k, v in value.items()}


def recorded_keys(ctx: RunContext, id_columns: dict[str, str], since: dict[str, int] | None,
                  until: dict[str, int]) -> DataFrame | None:
    """``source, record_id`` that silver's commits of each record source wrote between the versions ``since``
    (the last night's) and ``until`` (tonight's); None when a source is new or gone, or a commit in between
    has no trusted record."""
    import pyarrow as pa

    from gridlake.changes import keys_changed

    if since is None or set(since) != set(until):
        return None
    parts = []
    for source, version in until.items():
        keys = keys_changed(ctx.settings, "silver", source, since[source], version, [id_columns[source]])
        if keys is None:
            return None
        ids = keys.column(0)
        parts.append(pa.table({"source": pa.array([source] * len(ids), pa.string()), "record_id": ids}))
    table = pa.concat_tables(parts) if parts else pa.table({"source": pa.array([], pa.string()),
                                                            "record_id": pa.array([], pa.string())})
    return ctx.spark.createDataFrame(table, KEYS_SCHEMA)


def candidates(ctx: RunContext, records: DataFrame, previous: DataFrame, previous_rows: int,
               recorded: DataFrame | None, failed: DataFrame | None, alias_method: str) -> DataFrame | None:
    """The keys whose change must be computed (see the module's text), kept; None when the records cannot
    say (``recorded`` None) or the records and resolutions outside them are not as many."""
    if recorded is None:
        return None
    parts = [recorded, previous.where(F.col("method") == alias_method).select(*KEYS)]
    if "alias_code" in records.columns:
        parts.append(records.where(F.col("alias_code").isNotNull()).select(*KEYS))
    if failed is not None:
        parts.append(failed.select(F.lit("declarations").alias("source"),
                                   F.col("declaration_id").cast("string").alias("record_id")))
    keys = parts[0]
    for part in parts[1:]:
        keys = keys.unionByName(part)
    keys = keys.distinct().localCheckpoint(eager=True)
    n_keys = keys.count()
    probe = F.broadcast(keys) if n_keys <= BROADCAST_KEYS else keys
    in_records = records.join(probe, KEYS, "left_semi").count()
    in_previous = previous.join(probe, KEYS, "left_semi").count()
    outside_records, outside_previous = records.count() - in_records, previous_rows - in_previous
    if outside_records != outside_previous:
        log.warning("matching: %d records and %d resolutions outside the night's recorded keys; every record "
                    "compared", outside_records, outside_previous)
        keys.unpersist()
        return None
    return keys


def narrowed(records: DataFrame, previous: DataFrame, keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The records and resolutions of only the ``keys`` (:func:`candidates`): compared, they give the same
    changes as every record and resolution compared (:func:`jobs.matching.runner.record_changes`), since every
    record outside them is unchanged."""
    probe = F.broadcast(keys) if keys.count() <= BROADCAST_KEYS else keys
    return records.join(probe, KEYS, "left_semi"), previous.join(probe, KEYS, "left_semi")
