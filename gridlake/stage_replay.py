"""A rerun of a night skips a stage whose inputs are exactly those of its last success on that night.

Stages are idempotent: rerun on unchanged inputs, matching and gold recompute everything only to
commit nothing (on a tiny district about two minutes of a three-minute rerun). So after each
success of a stage in :data:`REPLAYABLE`, :func:`save` writes ``<data>/state/stage_runs/<night>/<stage>.json``:

* the stamp of the newest commit of every Delta table the stage read or wrote (its version, the
  commit file's size and time: :mod:`gridlake.access` notes them as :mod:`gridlake.io` works);
* a digest of everything else its result depends on (:func:`inputs_digest`): the night, the code
  (every module of ``gridlake``, ``jobs``, ``matching`` and ``schemas``, the configuration folder,
  the quality suites in ``expectations/``, the pinned library versions), the settings and the
  pseudonym key's fingerprint;
* what the stage returned and what it added to the run manifest (its quality results).

The next run of that stage on that night is skipped (:func:`replayable`) only when the digest is
the same and every one of those tables is still at the same commit; the manifest then gets the
recorded statistics and quality results, marked ``replayed``. It fails closed: a missing or
unreadable record, a table moved by anyone (a later night, an erasure, an OPTIMIZE, a restore),
a record made while something else moved its tables (:class:`gridlake.access.Accesses` doubts),
other code or configuration, another key, or any run option (``--sources``, ``--retrain-matching``,
``--recompute``) means the stage runs. Only stages whose every input and output is a Delta table
read and written through :mod:`gridlake.io` are in :data:`REPLAYABLE`: exports and reports
write files outside the lake, bronze reads the landing folder, silver already does nothing on a
rerun (its files are recorded as done).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.config import CONF_DIR, REPO_ROOT, Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from gridlake.access import Accesses

log = logging.getLogger(__name__)

#: stages a rerun may skip (see the module's text for why only these)
REPLAYABLE = frozenset({"matching", "gold"})
#: run options that do not change what a stage computes
NEUTRAL_EXTRAS = frozenset({"defer_quality_writes", "recompute"})
#: sections of the run manifest a stage adds to, replayed when it is skipped
MANIFEST_SECTIONS = ("quality", "conservation", "row_counts", "links")
_CODE_DIRS = ("gridlake", "jobs", "matching", "schemas")
_LIBRARIES = ("pyspark", "delta-spark", "great-expectations", "rapidfuzz", "pyarrow", "pandas", "numpy")
_FORMAT = 1


def digest_files() -> list[tuple[str, Path]]:
    """``(name, path)`` of every file the code digest covers: the modules, the configuration folders and
    the quality suites (``expectations/``: a changed suite can stop what it once let through)."""
    from gridlake.quality.suites import SUITES_DIR  # imports Great Expectations: only when a stage runs

    files = [(f"{d}/{p.relative_to(REPO_ROOT / d)}", p) for d in _CODE_DIRS for p in (REPO_ROOT / d).rglob("*.py")]
    for name, base in (("conf", REPO_ROOT / "conf"), ("GRIDLAKE_CONF_DIR", Path(CONF_DIR)),
                       ("expectations", SUITES_DIR)):
        files += [(f"{name}/{p.relative_to(base)}", p) for p in base.rglob("*") if p.is_file()]
    return sorted(set(files))


@functools.cache
def code_digest() -> str:
    """SHA-256 over the code, configuration and quality suites a stage runs with, and the library versions."""
    h = hashlib.sha256()
    for name, path in digest_files():
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for lib in _LIBRARIES:
        try:
            h.update(f"{lib}={metadata.version(lib)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib}=none\0".encode())
    return h.hexdigest()


def inputs_digest(settings: Settings, stage: str, night: dt.date, extras: dict[str, Any], key_fp: str) -> str | None:
    """The digest of what a stage's result depends on besides its tables; None when a run option that
    changes what it computes is set (``--recompute`` does not: a recomputed success is recorded too)."""
    if set(extras) - NEUTRAL_EXTRAS:
        return None
    doc = {"format": _FORMAT, "stage": stage, "night": night.isoformat(), "code": code_digest(),
           "settings": settings.model_dump(mode="json"), "key": key_fp}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def record_path(settings: Settings, night: dt.date, stage: str) -> Path:
    return settings.data / "state" / "stage_runs" / night.isoformat() / f"{stage}.json"


def forget(settings: Settings, night: dt.date, stage: str) -> None:
    """Drop the stage's record before it runs: a run that fails or is killed leaves none."""
    record_path(settings, night, stage).unlink(missing_ok=True)


def manifest_sections(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of the manifest sections a stage adds to (taken before it runs, for :func:`added`)."""
    return json.loads(json.dumps({k: doc.get(k) or {} for k in MANIFEST_SECTIONS}, default=str))


def added(before: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The entries of the manifest sections that are new or changed since ``before``."""
    now = manifest_sections(doc)
    return {k: {e: v for e, v in now[k].items() if before[k].get(e) != v} for k in MANIFEST_SECTIONS}


def save(settings: Settings, night: dt.date, stage: str, digest: str | None, acc: Accesses,
         stats: dict[str, Any], manifest_added: dict[str, Any], run_id: str,
         spark: SparkSession) -> bool:
    """Write the record of a success; none when the digest is unknown or the accesses are in doubt."""
    from gridlake import io

    path = record_path(settings, night, stage)
    if digest is None or acc.doubts:
        if acc.doubts:
            log.info("%s: not recorded for a rerun to skip (%s)", stage, "; ".join(sorted(set(acc.doubts))))
        return False
    moved = [t for t, stamp in acc.tables.items() if io.commit_of(spark, settings, t) != stamp]
    if moved:
        log.info("%s: not recorded for a rerun to skip (moved while it ran: %s)", stage, ", ".join(sorted(moved)))
        return False
    doc = {"format": _FORMAT, "stage": stage, "night": night.isoformat(), "digest": digest, "run_id": run_id,
           "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "tables": dict(sorted(acc.tables.items())),
           "written": sorted(acc.written), "stats": stats, "manifest": manifest_added}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return True


def replayable(settings: Settings, night: dt.date, stage: str, digest: str | None,
               spark: SparkSession, recompute: bool = False) -> tuple[dict[str, Any] | None, str]:
    """The record to replay instead of running ``stage``, or None and why the stage must run."""
    from gridlake import io

    if stage not in REPLAYABLE:
        return None, "not a stage a rerun skips"
    if recompute:
        return None, "--recompute asked for"
    if digest is None:
        return None, "a run option is set"
    path = record_path(settings, night, stage)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no earlier success on this night"
    except (OSError, ValueError):
        return None, "its record is unreadable"
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or not isinstance(doc.get("tables"), dict):
        return None, "its record is of another format"
    if doc.get("digest") != digest:
        return None, "code, configuration, settings or key differ from its last success"
    if not doc["tables"]:
        return None, "its record names no table"
    for table, stamp in doc["tables"].items():
        if io.commit_of(spark, settings, table) != stamp:
            return None, f"{table} moved since its last success"
    return doc, "inputs unchanged since its last success"
