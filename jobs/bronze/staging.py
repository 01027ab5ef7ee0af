"""Streaming delivered rows into a local Parquet staging file in bounded chunks (pyarrow).

The driver never holds a whole file: rows are turned into Arrow record batches of
``chunk_rows`` and appended to one Parquet file per delivery, which Spark then
reads with the explicit bronze schema and appends to Delta in a single commit.

Before that, every delivered file is copied once into the run's staging folder
(:func:`private_copy`): the copy is hashed and parsed, never the landing file again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.bronze.delivery import BronzeRow


def arrow_schema(columns: list[str]) -> pa.Schema:
    """Arrow schema of a bronze table: canonical string columns, then the metadata of BRONZE_METADATA."""
    return pa.schema(
        [pa.field(c, pa.string()) for c in columns]
        + [
            pa.field("_extra", pa.map_(pa.string(), pa.string())),
            pa.field("_raw_line", pa.string()),
            pa.field("_malformed_reason", pa.string()),
            pa.field("_source_file", pa.string()),
            pa.field("_file_sha256", pa.string()),
            pa.field("_row_number", pa.int64()),
            pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
            pa.field("_run_id", pa.string()),
            pa.field("_encoding", pa.string()),
            pa.field("_delivery_date", pa.date32()),
        ]
    )


def write_staging(
    rows: Iterable[BronzeRow],
    target: Path,
    columns: list[str],
    meta: dict[str, object],
    chunk_rows: int = 50_000,
) -> int:
    """Write ``rows`` with the constant metadata ``meta`` to ``target`` (Parquet); return the row count."""
    schema = arrow_schema(columns)
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    writer = pq.ParquetWriter(str(target), schema, compression="snappy")
    try:
        buf: list[BronzeRow] = []

        def flush() -> None:
            if not buf:
                return
            k = len(buf)
            arrays = [pa.array([r.values.get(c) for r in buf], pa.string()) for c in columns]
            arrays += [
                pa.array([list(r.extra.items()) if r.extra else None for r in buf], pa.map_(pa.string(), pa.string())),
                pa.array([r.raw_line for r in buf], pa.string()),
                pa.array([r.malformed_reason for r in buf], pa.string()),
                pa.array([meta["_source_file"]] * k, pa.string()),
                pa.array([meta["_file_sha256"]] * k, pa.string()),
                pa.array([r.row_number for r in buf], pa.int64()),
                pa.array([meta["_ingested_at"]] * k, pa.timestamp("us", tz="UTC")),
                pa.array([meta["_run_id"]] * k, pa.string()),
                pa.array([meta["_encoding"]] * k, pa.string()),
                pa.array([meta["_delivery_date"]] * k, pa.date32()),
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            buf.clear()

        for row in rows:
            buf.append(row)
            n += 1
            if len(buf) >= chunk_rows:
                flush()
        flush()
    finally:
        writer.close()
    return n


def now_utc() -> dt.datetime:
    """The ingestion timestamp (UTC, microseconds)."""
    return dt.datetime.now(dt.UTC)


class NotReady(Exception):
    """The file is still being written (changed while it was copied): read it on a later run."""


def private_copy(source: Path, target: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """Copy ``source`` to ``target`` once, hashing what was copied; return (SHA-256, bytes).

    The file is opened without following a symbolic link (``O_NOFOLLOW``) and must be a
    regular file; when its size or mtime differ before and after the copy, or the bytes
    copied differ from its size, it is still being written (:class:`NotReady`). Everything
    after this reads the copy, so the hash is the hash of what is loaded.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(source, flags)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise IsADirectoryError("not a regular file")
        target.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        n = 0
        with os.fdopen(os.dup(fd), "rb") as src, open(target, "wb") as out:
            while block := src.read(chunk):
                h.update(block)
                out.write(block)
                n += len(block)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or n != after.st_size:
        target.unlink(missing_ok=True)
        raise NotReady(f"the file changed while it was copied ({before.st_size} -> {after.st_size} bytes)")
    return h.hexdigest(), n
