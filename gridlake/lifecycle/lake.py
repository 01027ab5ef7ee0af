"""What the lake holds on disk: tables, data and log files with their bytes, commits, manifests, night locks.

Read with the standard library and pyarrow only (no Spark job): the maintenance report, the
needed-version computation and the erasure proof all start here. Local lakes only; a lake on
object storage is maintained through Delta's own operations, without the file-level report.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gridlake.config import LIFECYCLE_LAYERS, Settings
from gridlake.storage import require_local

log = logging.getLogger(__name__)

LOG_DIR = "_delta_log"


@dataclass
class TableFiles:
    """Files and bytes of one Delta table directory."""

    data_files: int = 0
    data_bytes: int = 0
    small_files: int = 0
    log_files: int = 0
    log_bytes: int = 0
    untracked_files: int = 0  # Parquet files no version in the log refers to (killed writes, vacuumable)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def is_local(settings: Settings) -> bool:
    """True when the lake is a local directory (file-level inventory possible)."""
    return "://" not in settings.lake


def list_tables(settings: Settings, layers: tuple[str, ...] = LIFECYCLE_LAYERS) -> list[tuple[str, str]]:
    """``(layer, name)`` of every Delta table in the local lake (a lake on object storage: StorageError)."""
    require_local(settings, "listing the lake's tables for a lifecycle command (maintain, erase, rotate-key)")
    out: list[tuple[str, str]] = []
    for layer in layers:
        base = Path(settings.lake) / layer
        if base.is_dir():
            out.extend((layer, p.name) for p in sorted(base.iterdir()) if (p / LOG_DIR).is_dir())
    return out


def table_dir(settings: Settings, layer: str, name: str) -> Path:
    """The local folder of a table (a lake on object storage: StorageError naming the file-level operation)."""
    require_local(settings, f"file-level access to {layer}.{name} (lifecycle inventory, erasure, as-of)")
    return Path(settings.table_path(layer, name))


def commit_versions(path: Path) -> list[int]:
    """Versions whose JSON commit file is still in the log, ascending."""
    log_dir = path / LOG_DIR
    return sorted(int(p.name[:-5]) for p in log_dir.glob("*.json") if p.name[:-5].isdigit())


def checkpoint_versions(path: Path) -> list[int]:
    """Versions that have a (single-file or multi-part) checkpoint."""
    return sorted({int(p.name.split(".")[0]) for p in (path / LOG_DIR).glob("*.checkpoint*.parquet")})


def earliest_readable_version(path: Path) -> int:
    """The oldest version Delta can still reconstruct: the oldest checkpoint from which all later commits
    exist, or version 0 when the log still starts at 0; -1 for no table."""
    commits = commit_versions(path)
    if not commits:
        return -1
    present = set(commits)
    starts = ([0] if 0 in present else []) + checkpoint_versions(path)
    latest = commits[-1]
    for start in sorted(set(starts)):
        if all(v in present for v in range(start + 1, latest + 1)):
            return start
    return latest


def commit_timestamps(path: Path) -> dict[int, dt.datetime]:
    """Commit time of every version still in the log (commitInfo.timestamp, else the file's mtime)."""
    out: dict[int, dt.datetime] = {}
    for v in commit_versions(path):
        f = path / LOG_DIR / f"{v:020d}.json"
        ts = None
        try:
            with f.open(encoding="utf-8") as fh:
                for line in fh:
                    if '"commitInfo"' in line:
                        ts = json.loads(line)["commitInfo"].get("timestamp")
                        break
        except (OSError, json.JSONDecodeError):
            ts = None
        when = ts / 1000 if ts else f.stat().st_mtime
        out[v] = dt.datetime.fromtimestamp(when, dt.UTC)
    return out


def referenced_files(path: Path) -> set[str]:
    """Relative paths of every data file any commit or checkpoint still in the log adds or removes."""
    import pyarrow.parquet as pq

    refs: set[str] = set()
    log_dir = path / LOG_DIR
    for f in sorted(log_dir.glob("*.json")):
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                action = json.loads(line)
                for kind in ("add", "remove"):
                    if kind in action:
                        refs.add(_unquote(action[kind]["path"]))
    for cp in log_dir.glob("*.checkpoint*.parquet"):
        t = pq.read_table(cp, columns=[c for c in ("add", "remove") if c in pq.read_schema(cp).names])
        for col in t.column_names:
            for rec in t.column(col).to_pylist():
                if rec and rec.get("path"):
                    refs.add(_unquote(rec["path"]))
    return refs


def _unquote(p: str) -> str:
    from urllib.parse import unquote

    return unquote(p)


def data_files(path: Path) -> Iterator[Path]:
    """Parquet data files of a table (partition folders included, the log and hidden files excluded)."""
    for f in path.rglob("*.parquet"):
        rel = f.relative_to(path)
        if rel.parts[0] == LOG_DIR or any(part.startswith(".") or part.startswith("_") and "=" not in part
                                          for part in rel.parts):
            continue
        yield f


def inventory(settings: Settings, layer: str, name: str) -> TableFiles:
    """Files and bytes of one table, with its small and untracked data files."""
    path = table_dir(settings, layer, name)
    small = settings.retention.small_file_mb * 1024 * 1024
    refs = referenced_files(path)
    inv = TableFiles()
    for f in data_files(path):
        size = f.stat().st_size
        inv.data_files += 1
        inv.data_bytes += size
        inv.small_files += int(size < small)
        inv.untracked_files += int(str(f.relative_to(path)) not in refs)
    for f in (path / LOG_DIR).rglob("*"):
        if f.is_file():
            inv.log_files += 1
            inv.log_bytes += f.stat().st_size
    return inv


# --- manifests and the night lock ------------------------------------------------------------------
def read_manifests(settings: Settings) -> list[dict[str, Any]]:
    """Every JSON run manifest of the lake (``_runs/*.json``), oldest night first."""
    base = Path(settings.runs_dir) if is_local(settings) else settings.data / "_runs"
    docs = []
    for f in sorted(base.glob("*.json")) if base.is_dir() else []:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            log.warning("unreadable manifest %s skipped", f.name)
            continue
        if isinstance(doc, dict) and "run_date" in doc:
            doc["_file"] = f.name
            docs.append(doc)
    return sorted(docs, key=lambda d: (d.get("run_date", ""), d.get("started_at", "")))


def running_nights(settings: Settings) -> list[str]:
    """Nights whose lock (:func:`gridlake.manifest.night_lock`) is held right now."""
    out = []
    lock_dir = settings.data / "locks"
    for f in sorted(lock_dir.glob("*.lock")) if lock_dir.is_dir() else []:
        try:
            fd = os.open(f, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            out.append(f.stem)
        finally:
            os.close(fd)
    return out
