"""Which keys each commit of a table changed, recorded by the writers that know them.

An incremental gold needs to know which records a night changed (``docs/speed.md``, "Gold over only what a
night touched", prerequisite 1). Delta cannot say it for the tables a night rewrites whole: the upserts computed
in this process (:func:`gridlake.io.upsert_changed` on a local lake) and the person resolution's publication
write every row again in one commit, so neither the table's files nor a change data feed give the changed rows.
The writer knows them, so it records them: after its commit at version ``v`` of ``layer.name``, one Parquet file
``<lake>/_changes/<layer>.<name>/<v>.parquet`` holds the key columns (as strings) of every row the commit
inserted, replaced or deleted, and ``_op`` (``upsert`` or ``delete``).

A record is trusted only for the commit it describes: it also holds the SHA-256 of that version's commit file in
the Delta log (``_delta_log/<v>.json``), and :func:`keys_changed` compares it. A table dropped and created again,
a lake rolled back and run again, or a commit by another writer in between (the record is then not written) all
leave a version without a trusted record, and :func:`keys_changed` returns None: the caller compares the table's
versions whole, as before. Commits by writers that do not record (Spark's MERGE on a remote lake or a large
table, an erasure, a first night's overwrite) likewise. So a record can make a comparison cheaper, never wrong.

Only on a local lake; elsewhere nothing is recorded. Each table keeps the records of its newest
:data:`KEEP_VERSIONS` commits; an erasure, which purges a table's history, deletes its records (:func:`forget`). The keys are record ids, house codes and mention numbers, never a name, phone or
ID number (the tables' keys: ``conf/sources.yaml``, ``schemas/gold.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from gridlake.config import Settings

__all__ = ["record", "keys_changed", "forget", "changes_dir", "KEEP_VERSIONS", "OP"]

log = logging.getLogger(__name__)

#: the column that says what the commit did to the key's row
OP = "_op"
_COMMIT = "_commit_sha256"
#: the records kept per table (the newest commits'); a caller asking for an older range compares whole
KEEP_VERSIONS = 200


def changes_dir(settings: Settings, layer: str, name: str) -> Path | None:
    """``<lake>/_changes/<layer>.<name>``; None when the lake is not a local folder."""
    from gridlake.storage import is_local

    if not is_local(settings):
        return None
    return Path(settings.lake) / "_changes" / f"{layer}.{name}"


def _commit_file(settings: Settings, layer: str, name: str, version: int) -> Path:
    from gridlake.storage import LOG_DIR

    return Path(settings.table_path(layer, name)) / LOG_DIR / f"{version:020d}.json"


def _commit_sha(settings: Settings, layer: str, name: str, version: int) -> str | None:
    try:
        return hashlib.sha256(_commit_file(settings, layer, name, version).read_bytes()).hexdigest()
    except OSError:
        return None


def _keys_as_strings(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    return pa.table({k: table.column(k).cast(pa.string()) for k in keys})


def record(settings: Settings, layer: str, name: str, read_version: int, version: int, keys: Sequence[str],
           upserted: pa.Table | None, deleted: pa.Table | None = None) -> bool:
    """Record that the commit ``version`` of ``layer.name``, made by this process over ``read_version``, wrote
    the rows of ``upserted`` and deleted those of ``deleted`` (each with the ``keys`` columns at least).

    Recorded only when ``version`` is ``read_version + 1`` (no other commit in between) on a local lake;
    returns whether it was. A failure to write is logged and leaves the commit unrecorded (callers compare
    whole), never fails the stage that committed."""
    folder = changes_dir(settings, layer, name)
    if folder is None or version != read_version + 1:
        return False
    parts = []
    for frame, op in ((upserted, "upsert"), (deleted, "delete")):
        if frame is not None and frame.num_rows:
            part = _keys_as_strings(frame, keys)
            parts.append(part.append_column(OP, pa.array([op] * part.num_rows, pa.string())))
    table = (pa.concat_tables(parts) if parts else
             pa.table({**{k: pa.array([], pa.string()) for k in keys}, OP: pa.array([], pa.string())}))
    sha = _commit_sha(settings, layer, name, version)
    if sha is None:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{version:020d}.parquet"
        tmp = folder / f".{version:020d}.{os.getpid()}.tmp"
        pq.write_table(table.replace_schema_metadata({_COMMIT: sha, "keys": ",".join(keys)}), tmp)
        os.replace(tmp, final)   # a reader sees the whole record or none
        _prune(folder, version)
    except OSError as exc:
        log.warning("%s.%s: the keys of version %d were not recorded (%s); later nights compare it whole",
                    layer, name, version, type(exc).__name__)
        return False
    return True


def _prune(folder: Path, version: int) -> None:
    for path in folder.glob("*.parquet"):
        try:
            if int(path.stem) <= version - KEEP_VERSIONS:
                path.unlink()
        except (ValueError, OSError):
            continue


def forget(settings: Settings, layer: str, name: str) -> int:
    """Delete every record of ``layer.name`` (an erasure purging the table's history: the versions they describe
    are gone); returns how many were deleted."""
    folder = changes_dir(settings, layer, name)
    if folder is None or not folder.is_dir():
        return 0
    n = 0
    for path in folder.iterdir():
        path.unlink()
        n += path.suffix == ".parquet"
    folder.rmdir()
    return n


def keys_changed(settings: Settings, layer: str, name: str, since: int, until: int,
                 keys: Sequence[str]) -> pa.Table | None:
    """The distinct ``keys`` (strings) of the rows that the commits ``since + 1`` to ``until`` of ``layer.name``
    inserted, replaced or deleted; an empty table when ``until`` is ``since``. None when a commit in that range
    has no record made for it (see the module's text): the caller then compares the two versions whole."""
    if since < 0 or until < since:
        return None
    folder = changes_dir(settings, layer, name)
    if folder is None:
        return None
    parts = []
    for version in range(since + 1, until + 1):
        path = folder / f"{version:020d}.parquet"
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid):
            return None
        meta = table.schema.metadata or {}
        if meta.get(_COMMIT.encode()) != (_commit_sha(settings, layer, name, version) or "").encode():
            return None   # recorded for another commit of that number (a table made again, a lake rolled back)
        if not set(keys) <= set(table.column_names):
            return None
        parts.append(table.select(list(keys)))
    if not parts:
        return pa.table({k: pa.array([], pa.string()) for k in keys})
    return pa.concat_tables(parts).group_by(list(keys)).aggregate([])
