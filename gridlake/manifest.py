"""The run manifest (``<lake>/_runs/<run_id>.json`` and the Delta table ``_runs.manifest``) and the night lock.

A manifest records, per run: code version, input files and their hashes,
per-file conservation counts, stage timings and statistics, quality results,
Delta table versions and any failure. Stages add to it through the methods here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake import __version__
from gridlake.config import REPO_ROOT, Settings
from gridlake.errors import RunLockedError
from gridlake.runid import safe_run_id
from gridlake.sanitise import describe_exception, sanitise_text, sanitised_traceback

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def runs_dir(settings: Settings) -> Path:
    """Local folder of the JSON manifests (the lake's ``_runs`` when the lake is local)."""
    return Path(settings.runs_dir) if "://" not in settings.lake else settings.data / "_runs"


@dataclass
class Manifest:
    """Everything one run did; written as JSON after each stage and appended to a Delta table at the end."""

    settings: Settings
    run_id: str
    run_date: dt.date
    doc: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        safe_run_id(self.run_id)  # a run id becomes a file name: refuse anything but a plain name

    @property
    def path(self) -> Path:
        return runs_dir(self.settings) / f"{safe_run_id(self.run_id)}.json"

    @classmethod
    def open(cls, settings: Settings, run_id: str, run_date: dt.date) -> Manifest:
        """Start a manifest, keeping what an earlier attempt of the same run recorded."""
        m = cls(settings, run_id, run_date)
        previous: dict[str, Any] = {}
        if m.path.exists():
            try:
                previous = json.loads(m.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                previous = {}
        attempts = int(previous.get("attempts", 0)) + 1
        m.doc = {
            "run_id": run_id,
            "run_date": run_date.isoformat(),
            "profile": settings.profile,
            "code_version": code_version(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "attempts": attempts,
            "status": "running",
            "stages": previous.get("stages", {}),
            "files": previous.get("files", []),
            "conservation": previous.get("conservation", {}),
            "quality": previous.get("quality", {}),
            "table_versions": previous.get("table_versions", {}),
            "row_counts": previous.get("row_counts", {}),
            "links": previous.get("links", {}),
            "failures": previous.get("failures", []),
        }
        return m

    # --- recording ---------------------------------------------------------------
    def record_stage(self, name: str, stats: dict[str, Any], seconds: float) -> None:
        self.doc["stages"][name] = {**_sanitised(_jsonable(stats)), "status": "success", "seconds": round(seconds, 2)}
        self._write_json()

    def record_replayed(self, name: str, record: dict[str, Any], seconds: float) -> None:
        """Record a stage skipped on a rerun (:mod:`gridlake.stage_replay`): its last success's statistics
        and manifest entries, marked with the run that computed them."""
        run = record.get("run_id")
        for section, entries in (record.get("manifest") or {}).items():
            if section == "quality":  # checks made by the run that computed the stage, not by this one
                entries = {k: {**v, "replayed_from_run": run} if isinstance(v, dict) else v for k, v in entries.items()}
            self.doc.setdefault(section, {}).update(entries)
        stats = {k: v for k, v in (record.get("stats") or {}).items() if k not in ("status", "seconds")}
        self.doc["stages"][name] = {**stats, "status": "success", "seconds": round(seconds, 2),
                                    "replayed": {"from_run": run, "computed_at": record.get("at"),
                                                 "tables": len(record.get("tables") or {})}}
        self._write_json()

    def record_failure(self, stage: str, exc: BaseException, status: str = "failed") -> None:
        """Record that ``stage`` failed (or was ``skipped``): the error's type and template, never its values."""
        error = describe_exception(exc)
        self.doc["status"] = "failed"
        self.doc["stages"][stage] = {"status": status, "error": error}
        self.doc["failures"].append({
            "stage": stage,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "error": error,
            "where": sanitised_traceback(exc),
        })
        self._write_json()

    def record_quality(self, key: str, result: dict[str, Any]) -> None:
        self.doc["quality"][key] = _jsonable(result)

    def record_files(self, files: list[dict[str, Any]]) -> None:
        known = {(f["source"], f["sha256"]) for f in self.doc["files"]}
        self.doc["files"].extend(f for f in _sanitised(_jsonable(files)) if (f["source"], f["sha256"]) not in known)

    def set(self, key: str, value: Any) -> None:
        self.doc[key] = _jsonable(value)

    def record_tables(self, spark: SparkSession) -> None:
        """Delta version and row count of every table in the lake."""
        from gridlake import io
        from gridlake.storage import list_tables

        for layer in ("bronze", "silver", "gold", "quality"):
            for table in list_tables(spark, self.settings, layer):  # a local folder or object storage
                self.doc["table_versions"][f"{layer}.{table}"] = io.table_version(spark, self.settings, layer, table)

    # --- writing -----------------------------------------------------------------
    def _write_json(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.doc, ensure_ascii=False, indent=2, sort_keys=False), encoding="utf-8")
        os.replace(tmp, self.path)

    def write(self, spark: SparkSession | None = None) -> None:
        self._write_json()

    def finish(self, spark: SparkSession, publish: bool = True) -> None:
        """Mark success, record table versions, write JSON and (``publish``) one row in ``_runs.manifest``.

        The pipeline publishes the Delta row when a night's last stage ends (a whole night, or the
        last task of the Airflow DAG); the JSON file is rewritten after every stage.
        """
        self.record_tables(spark)
        self.doc["status"] = "success" if self.doc["status"] != "failed" else "failed"
        self.doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._write_json()
        if not publish:
            return
        from gridlake import io

        row = spark.createDataFrame(
            [(self.run_id, self.run_date, self.doc["status"], self.doc["code_version"], self.doc["attempts"],
              json.dumps(self.doc, ensure_ascii=False))],
            "run_id string, run_date date, status string, code_version string, attempt int, manifest_json string",
        )
        io.write_table(row, self.settings, "_runs", "manifest", mode="append")


#: Keys whose string values are error texts: sanitised wherever they appear in what a stage records.
_ERROR_KEYS = {"error", "errors", "message", "reason", "exception", "detail"}


def _sanitised(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _sanitised(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitised(v, key) for v in value]
    if isinstance(value, str) and key in _ERROR_KEYS:
        return sanitise_text(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@contextlib.contextmanager
def night_lock(settings: Settings, run_date: dt.date, run_id: str) -> Iterator[Path]:
    """Exclusive lock on one night: a second run of the same night is refused, changing nothing.

    The lock is an ``flock`` on ``<data>/locks/<date>.lock`` held for the whole run, so the
    kernel releases it when the holder exits, however it dies: a SIGKILLed run leaves the file
    behind unlocked and the next run takes it (no pid guessing, no race between two starters).
    The file names the holder (pid, run id, start) for the refusal message; a refused run
    writes nothing. The holder removes the file while still holding the lock; a starter that
    opened the old file before it was removed notices (another inode) and tries again.
    """
    lock_dir = settings.data / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{run_date.isoformat()}.lock"
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _read_lock(path) or {}
            who = (f"run {holder.get('run_id')}, pid {holder.get('pid')}, started {holder.get('started_at')}"
                   if holder.get("run_id") else "a run that is just starting")
            raise RunLockedError(
                f"night {run_date} is already running ({who}); refusing to start a second run "
                f"(run {run_id}), nothing was changed. Lock: {path}"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file between our open and flock: try again
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "run_id": run_id,
                                 "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}).encode())
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


@contextlib.contextmanager
def commit_lock(settings: Settings, name: str) -> Iterator[None]:
    """Exclusive, blocking lock around one table's check-then-commit (``<data>/locks/commit-<name>.lock``).

    Short-lived (held for a version check and one MERGE, never for a whole stage), so two nights
    running at once serialise only their commits; released by the kernel however the holder dies.
    """
    lock_dir = settings.data / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"commit-{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
