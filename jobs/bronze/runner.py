"""Stage ``bronze``: land tonight's deliveries of every declared source into ``bronze.<source>``.

For each file found in ``landing/<source>/<run date>/`` (sub-folders too, links never followed),
inside its own error handling (one bad file never stops the night):

* a file not ready is ``waiting`` (picked up next run): modified less than
  ``ingest.stable_seconds`` ago, changed while being copied, or - for a source with
  ``done_marker`` - without its ``.done`` marker;
* it is copied once into the run's staging folder (no link followed); the copy is hashed
  and parsed, so what is hashed is what is loaded;
* its SHA-256 is looked up in ``bronze._ingestion_log``; a known hash is a re-delivery and a
  no-op (status ``duplicate`` in the manifest, nothing written);
* the format is decided by content, the header found (below title rows) and mapped through
  the source's aliases; a missing required column rejects the file (status ``rejected`` with
  the columns named), unknown columns are kept in ``_extra`` and reported; empty and
  header-only files are recorded as such; a file that cannot be read, vanishes or is over a
  limit is ``rejected`` with its reason; a file that is not a delivery is ``ignored``;
* rows (malformed ones too, with raw line and reason) are streamed to a Parquet staging file
  and appended to the source's Delta table, one commit per source.

Then one commit appends the night's rows to the ingestion log (with the detected format,
header row, header mapping and form notes the delivery report reads). A crash between the
two commits is healed on the next run: a file whose rows are already in bronze is logged,
not loaded twice. Texts recorded or logged never quote a delivered value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from gridlake import io
from gridlake.context import RunContext
from gridlake.faults import fault_point, fault_window
from gridlake.sources import IngestConfig, Source, SourceFile, load_ingest_config, load_sources
from jobs.bronze.delivery import Delivery, safe_error
from jobs.bronze.landing import discover, marker_present
from jobs.bronze.reading import Read, ReadJob, read_all, side_by_side
from jobs.bronze.staging import NotReady, now_utc, private_copy
from schemas.silver import BRONZE_METADATA, INGESTION_LOG

log = logging.getLogger(__name__)

LOG_TABLE = "_ingestion_log"
NO_CONTENT = "nocontent:"  # log key of a file whose content was not read (ignored, waiting, vanished...)


def bronze_schema(source: Source) -> StructType:
    """Schema of ``bronze.<source>``: canonical columns as strings, then :data:`BRONZE_METADATA`."""
    return StructType([StructField(c, StringType(), True) for c in source.canonical_columns] + list(BRONZE_METADATA))


@dataclass
class _Staged:
    file: SourceFile
    sha: str
    path: Path
    rows: int
    extra: list[str] = field(default_factory=list)
    malformed: int = 0
    note: str | None = None  # the reader's notes (ENCODING_MISMATCH, ...), logged in the error column
    form: dict[str, Any] = field(default_factory=dict)  # detected_format, header_row, header_map, note


def _known_keys(ctx: RunContext) -> dict[str, str]:
    """Every key of the ingestion log (content hashes and no-content keys) -> status."""
    log_rows = io.read_columns(ctx.spark, ctx.settings, "bronze", LOG_TABLE, ["file_sha256", "status"])
    if log_rows is None:
        return {}
    return dict(zip(log_rows.column("file_sha256").to_pylist(), log_rows.column("status").to_pylist(), strict=True))


def _no_content_key(f: SourceFile, status: str, error: str | None) -> str:
    """The log key of a file recorded without its content: the same file, status and reason code give the
    same key, so a rerun does not log it again."""
    code = (error or "").split(":", 1)[0]
    text = f"{f.source}|{f.delivery_date}|{f.shown}|{status}|{code}"
    return NO_CONTENT + hashlib.sha256(text.encode()).hexdigest()[:40]


def _form(d: Delivery | Read | None, f: SourceFile) -> dict[str, Any]:
    notes = ([f.note] if f.note else []) + (d.form_notes if d else [])
    return {"detected_format": d.detected_format if d else None, "header_row": d.header_row if d else None,
            "header_map": d.header_map_json if d else None, "note": "; ".join(notes)[:1000] if notes else None}


def _log_row(ctx: RunContext, f: SourceFile, sha: str, status: str, rows: int, error: str | None,
             extra: list[str], form: dict[str, Any]) -> tuple:
    return (sha, f.source, f.shown, dt.date.fromisoformat(f.delivery_date), status, error, int(rows),
            ",".join(extra) if extra else None, ctx.run_id, now_utc(),
            form.get("detected_format"), form.get("header_row"), form.get("header_map"), form.get("note"))


def _not_ready(f: SourceFile, src: Source, config: IngestConfig, night: Path) -> str | None:
    """Why a file is not read tonight (still being delivered), or None."""
    if src.done_marker and not marker_present(f, night):
        return f"NOT_READY: no .done marker ({f.path.name}.done or the night's .done) yet"
    st = f.path.lstat()
    age = time.time() - st.st_mtime
    if age < config.stable_seconds:
        return (f"NOT_READY: modified {max(age, 0):.0f}s ago (ingest.stable_seconds = {config.stable_seconds:g}); "
                "still being uploaded?")
    return None


class _Night:
    """The state of one bronze run: what to record per file and what to append per source."""

    def __init__(self, ctx: RunContext, sources: dict[str, Source], config: IngestConfig, staging_root: Path) -> None:
        self.ctx, self.sources, self.config, self.staging_root = ctx, sources, config, staging_root
        keys = _known_keys(ctx)
        self.known = {k: v for k, v in keys.items() if not k.startswith(NO_CONTENT)}
        self.known_no_content = {k for k in keys if k.startswith(NO_CONTENT)}
        self.records: list[dict[str, Any]] = []
        self.log_rows: list[tuple] = []
        self.staged: dict[str, list[_Staged]] = {}
        self.seen: dict[str, str] = {}  # sha -> first path tonight
        self.drift: dict[str, dict[str, list[str]]] = {}
        self.copies = 0

    def record(self, f: SourceFile, rec: dict[str, Any], status: str, error: str | None, form: dict[str, Any],
               sha: str | None = None, extra: list[str] | None = None) -> None:
        """Record a file that loads no row (manifest and ingestion log)."""
        content = sha is not None
        sha = sha or _no_content_key(f, status, error)
        rec.update(status=status, error=error, sha256=sha if content else None,
                   **{k: v for k, v in form.items() if v is not None})
        self.records.append(rec)
        if content or sha not in self.known_no_content:  # the same ignored file on a rerun: logged once
            self.known_no_content.add(sha)
            self.log_rows.append(_log_row(self.ctx, f, sha, status, 0, error, extra or [], form))

    def _drift(self, f: SourceFile, rec: dict[str, Any], delivery: Delivery | Read) -> None:
        if delivery.extra_columns:
            self.drift.setdefault(f.source, {})[f.shown] = list(delivery.extra_columns)
            rec["extra_columns"] = list(delivery.extra_columns)
            log.warning("bronze %s: %s has %d extra column(s) (kept in _extra)", f.source, Path(f.shown).name,
                        len(delivery.extra_columns))

    def land(self, f: SourceFile) -> tuple[ReadJob, dict[str, Any]] | None:
        """Everything for one file before its content is read: skipped, waiting, vanished, unreadable or a
        re-delivery is recorded here (None); else the file's private copy to read and its manifest record.
        Any exception is the caller's (the file is then rejected)."""
        ctx, src = self.ctx, self.sources[f.source]
        rec: dict[str, Any] = {"source": f.source, "path": f.shown, "sha256": None, "delivery_date": f.delivery_date,
                               "status": None, "bronze_rows": 0, "error": None}
        if f.skip:
            self.record(f, rec, "ignored", f.skip, _form(None, f))
            log.info("bronze %s: %s ignored (%s)", f.source, Path(f.shown).name, f.skip.split(":")[0])
            return None
        night = self.ctx.settings.landing / f.source / f.delivery_date
        try:
            why = _not_ready(f, src, self.config, night)
            if why is None:
                self.copies += 1
                copy = self.staging_root / "_copies" / f"{self.copies:05d}.bin"
                sha, size = private_copy(f.path, copy)
        except NotReady as exc:
            why = f"NOT_READY: {exc}; read on a later run"
        except FileNotFoundError:
            self.record(f, rec, "rejected", "VANISHED: the file disappeared before it could be read", _form(None, f))
            log.warning("bronze %s: %s vanished before it was read", f.source, Path(f.shown).name)
            return None
        except OSError as exc:
            code = "SYMLINK" if getattr(exc, "errno", None) == 40 else "UNREADABLE"
            self.record(f, rec, "rejected", f"{code}: the file could not be opened ({safe_error(exc, 120)})",
                        _form(None, f))
            log.warning("bronze %s: %s could not be read (%s)", f.source, Path(f.shown).name, code)
            return None
        if why is not None:
            self.record(f, rec, "waiting", why, _form(None, f))
            log.info("bronze %s: %s not ready, waiting", f.source, Path(f.shown).name)
            return None
        rec["sha256"] = sha
        if sha in self.known or sha in self.seen:
            rec["status"] = "duplicate"
            first = f"{self.seen[sha]} tonight" if sha in self.seen else \
                f"an already ingested file (status {self.known[sha]})"
            rec["error"] = f"DUPLICATE_CONTENT: same content as {first}; not loaded again"
            self.records.append(rec)
            copy.unlink(missing_ok=True)
            log.info("bronze %s: %s is a re-delivery, skipped", f.source, Path(f.shown).name)
            return None
        self.seen[sha] = f.shown
        meta = {"_source_file": f.shown, "_file_sha256": sha, "_run_id": ctx.run_id,
                "_delivery_date": dt.date.fromisoformat(f.delivery_date)}
        return ReadJob(copy, src, self.config, f.path.name, self.staging_root / f.source / f"{sha}.parquet", meta,
                       size), rec

    def finish(self, f: SourceFile, job: ReadJob, rec: dict[str, Any], read: Read) -> None:
        """Record a file read by :func:`jobs.bronze.reading.read_one` (staged when it loads)."""
        sha = job.meta["_file_sha256"]
        if read.failed is not None:
            self.record(f, rec, "rejected", read.failed, _form(None, f), sha)
            return
        if read.unexpected is not None:
            raise StagingError(read.unexpected, read.unexpected_type)
        form = _form(read, f)
        self._drift(f, rec, read)
        if read.status != "ok":
            if read.status == "rejected":
                log.error("bronze %s: %s rejected: %s", f.source, Path(f.shown).name, (read.error or "").split(":")[0])
            self.record(f, rec, read.status, read.error, form, sha, read.extra_columns)
            return
        self.staged.setdefault(f.source, []).append(
            _Staged(f, sha, job.target, read.rows, read.extra_columns, sum(read.malformed.values()), read.note, form))
        rec.update(status="loaded", bronze_rows=read.rows, malformed_rows=dict(read.malformed), error=read.note,
                   **{k: v for k, v in form.items() if v is not None})
        self.records.append(rec)


class StagingError(Exception):
    """Staging a file's rows failed (in whichever process read it): the file is rejected, the others go on."""

    def __init__(self, text: str, kind: str | None) -> None:
        super().__init__(text)
        self.kind = kind or "Exception"


def _rejected(night: _Night, f: SourceFile, exc: Exception) -> None:
    """Record ``f`` as rejected after an unexpected error, undoing whatever was recorded of it."""
    kind = exc.kind if isinstance(exc, StagingError) else type(exc).__name__
    log.error("bronze %s: %s rejected after an unexpected error (%s)", f.source, Path(f.shown).name, kind)
    rec = {"source": f.source, "path": f.shown, "sha256": None, "delivery_date": f.delivery_date,
           "status": None, "bronze_rows": 0, "error": None}
    night.staged.get(f.source, [])[:] = [i for i in night.staged.get(f.source, []) if i.file is not f]
    night.records[:] = [r for r in night.records if r.get("path") != f.shown or r.get("source") != f.source]
    text = str(exc) if isinstance(exc, StagingError) else safe_error(exc)
    night.record(f, rec, "rejected", f"READ_ERROR: {text}", _form(None, f))


def _append_log(ctx: RunContext, rows: list[tuple]) -> None:
    """One commit of the night's ingestion log rows (a log written before its new columns is widened)."""
    spark, settings = ctx.spark, ctx.settings
    df = spark.createDataFrame(rows, INGESTION_LOG)
    widen = False
    if io.table_exists(spark, settings, "bronze", LOG_TABLE):
        have = set(io.read_table(spark, settings, "bronze", LOG_TABLE).columns)
        widen = not set(INGESTION_LOG.fieldNames()) <= have
    key = "spark.databricks.delta.schema.autoMerge.enabled"
    if widen:
        spark.conf.set(key, "true")
    try:
        io.write_table(df, settings, "bronze", LOG_TABLE, mode="append")
    finally:
        if widen:
            spark.conf.unset(key)


def run(ctx: RunContext) -> dict[str, Any]:
    """Load tonight's landing files into bronze; return counts for the manifest."""
    started = time.monotonic()
    settings, spark = ctx.settings, ctx.spark
    sources = load_sources()
    config = load_ingest_config()
    declared = list(sources)
    only = ctx.extras.get("sources") if getattr(ctx, "extras", None) else None
    if only:  # e.g. one Airflow task per source
        sources = {k: v for k, v in sources.items() if k in only}
    files, anomalies = discover(settings.landing, sources, ctx.run_date, declared)
    for a in anomalies:
        log.warning("landing: %s %s (not loaded)", a.kind, Path(a.path).name)
    staging_root = settings.data / "_staging" / ctx.run_id.replace("/", "_").replace(":", "_")
    night = _Night(ctx, sources, config, staging_root)
    to_read: list[tuple[SourceFile, ReadJob, dict[str, Any]]] = []
    for f in files:
        try:
            job = night.land(f)
        except Exception as exc:  # whatever one file does, the others go on
            _rejected(night, f, exc)
            continue
        if job is not None:
            to_read.append((f, *job))
    # the files' content, read side by side on a large night (jobs.bronze.reading), recorded in their order
    jobs = [j for _, j, _ in to_read]
    processes = side_by_side(jobs, config) if jobs else 0
    for (f, job, rec), read in zip(to_read, read_all(jobs, config), strict=True):
        try:
            night.finish(f, job, rec, read)
        except Exception as exc:
            _rejected(night, f, exc)

    loaded_rows = 0
    for name, items in night.staged.items():
        already: set[str] = set()
        # rows of an interrupted run (appended, not logged) can only be in the partitions of these files' dates
        present = io.partition_values(spark, settings, "bronze", name, "_delivery_date")
        if present is None and not io.table_exists(spark, settings, "bronze", name):
            present = set()  # no table: nothing appended yet
        if present is None or present & {i.file.delivery_date for i in items}:
            already = {r[0] for r in io.read_table(spark, settings, "bronze", name)
                       .where(F.col("_file_sha256").isin([i.sha for i in items]))
                       .select("_file_sha256").distinct().collect()}
        todo = [i for i in items if i.sha not in already]
        if already:
            log.warning("bronze %s: %d file(s) already in bronze from an interrupted run; only logging them",
                        name, len(already))
        if todo:
            fault_point("bronze.append")  # earlier sources appended, this one not yet, nothing logged
            # GRIDLAKE_FAULT=bronze.append~file: killed while the append is written, before its commit
            with fault_window("bronze.append", settings.table_path("bronze", name)):
                io.append_parquet(spark, settings, "bronze", name, [str(i.path) for i in todo],
                                  bronze_schema(sources[name]), partition_by=["_delivery_date"])
        for i in items:
            night.log_rows.append(_log_row(ctx, i.file, i.sha, "loaded", i.rows, i.note, i.extra, i.form))
            loaded_rows += i.rows
    fault_point("bronze.before_log")  # every append committed, the ingestion log not written
    if night.log_rows:
        _append_log(ctx, night.log_rows)
    shutil.rmtree(staging_root, ignore_errors=True)

    records = night.records
    ctx.manifest.record_files(records)
    ctx.manifest.set("landing_anomalies", [a.as_dict() for a in anomalies])
    ctx.manifest.set("schema_drift", night.drift)
    seconds = time.monotonic() - started
    statuses = Counter(r["status"] for r in records)
    return {
        "files": len(records),
        "files_by_status": dict(statuses),
        "bronze_rows": loaded_rows,
        "malformed_rows": sum(i.malformed for items in night.staged.values() for i in items),
        "anomalies": len(anomalies),
        "rejected": [{"path": r["path"], "error": r["error"]} for r in records if r["status"] == "rejected"],
        "rows_per_second": round(loaded_rows / seconds, 1) if seconds > 0 else None,
        "read_processes": processes,
    }
