"""Stage ``bronze``: land tonight's deliveries of every declared source into ``bronze.<source>``.

For each file in ``landing/<source>/<run date>/`` matching the source's glob:

* its SHA-256 is looked up in ``bronze._ingestion_log``; a known hash is a
  re-delivery and a no-op (status ``duplicate`` in the manifest, nothing written);
* the header is mapped to canonical names; a missing required column rejects the
  file (status ``rejected`` with the columns named), unknown columns are kept in
  ``_extra`` and reported; empty and header-only files are recorded as such;
* rows (malformed ones too, with raw line and reason) are streamed to a Parquet
  staging file and appended to the source's Delta table, one commit per source.

Then one commit appends the night's rows to the ingestion log. A crash between the
two commits is healed on the next run: a file whose rows are already in bronze is
logged, not loaded twice.
"""

from __future__ import annotations

import datetime as dt
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
from gridlake.faults import fault_point, fault_window
from gridlake.pipeline import RunContext
from gridlake.sources import Source, SourceFile, load_sources
from jobs.bronze.landing import discover
from jobs.bronze.readers import open_delivery, sha256_file
from jobs.bronze.staging import now_utc, write_staging
from schemas.silver import BRONZE_METADATA, INGESTION_LOG

log = logging.getLogger(__name__)

LOG_TABLE = "_ingestion_log"


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


def _known_hashes(ctx: RunContext) -> dict[str, str]:
    df = io.read_table_or_empty(ctx.spark, ctx.settings, "bronze", LOG_TABLE, INGESTION_LOG)
    return {r.file_sha256: r.status for r in df.select("file_sha256", "status").collect()}


def _log_row(ctx: RunContext, f: SourceFile, sha: str, status: str, rows: int, error: str | None,
             extra: list[str]) -> tuple:
    return (sha, f.source, str(f.path), dt.date.fromisoformat(f.delivery_date), status, error, int(rows),
            ",".join(extra) if extra else None, ctx.run_id, now_utc(),
            None, None, None, None)  # detected_format, header_row, header_map, note: filled by the bronze branch


def _counted(rows, counter: Counter):
    """Pass rows through, counting malformed ones by reason."""
    for r in rows:
        if r.malformed_reason:
            counter[r.malformed_reason.split(":")[0]] += 1
        yield r


def run(ctx: RunContext) -> dict[str, Any]:
    """Load tonight's landing files into bronze; return counts for the manifest."""
    started = time.monotonic()
    settings, spark = ctx.settings, ctx.spark
    sources = load_sources()
    only = ctx.extras.get("sources") if getattr(ctx, "extras", None) else None
    if only:  # e.g. one Airflow task per source
        sources = {k: v for k, v in sources.items() if k in only}
    files, anomalies = discover(settings.landing, sources, ctx.run_date)
    for a in anomalies:
        log.warning("landing: %s %s (not loaded)", a.kind, a.path)
    known = _known_hashes(ctx)
    staging_root = settings.data / "_staging" / ctx.run_id.replace("/", "_").replace(":", "_")
    records: list[dict[str, Any]] = []
    log_rows: list[tuple] = []
    staged: dict[str, list[_Staged]] = {}
    seen: dict[str, str] = {}  # sha -> first path tonight
    drift: dict[str, dict[str, list[str]]] = {}

    for f in files:
        src = sources[f.source]
        sha = sha256_file(f.path)
        rec: dict[str, Any] = {"source": f.source, "path": str(f.path), "sha256": sha, "delivery_date": f.delivery_date,
                               "status": None, "bronze_rows": 0, "error": None}
        if sha in known or sha in seen:
            rec["status"] = "duplicate"
            first = f"{seen[sha]} tonight" if sha in seen else f"an already ingested file (status {known[sha]})"
            rec["error"] = f"DUPLICATE_CONTENT: same content as {first}; not loaded again"
            records.append(rec)
            log.info("bronze %s: %s is a re-delivery, skipped", f.source, f.path.name)
            continue
        seen[sha] = str(f.path)
        try:
            delivery = open_delivery(f.path, src)
        except Exception as exc:  # an unreadable file is recorded as rejected, the others go on
            rec.update(status="rejected", error=f"READ_ERROR: {type(exc).__name__}: {exc}"[:500])
            log_rows.append(_log_row(ctx, f, sha, "rejected", 0, rec["error"], []))
            records.append(rec)
            continue
        if delivery.extra_columns:
            drift.setdefault(f.source, {})[str(f.path)] = delivery.extra_columns
            rec["extra_columns"] = delivery.extra_columns
            log.warning("bronze %s: %s has extra column(s) %s (kept in _extra)", f.source, f.path.name,
                        ", ".join(delivery.extra_columns))
        if delivery.status != "ok":
            rec.update(status=delivery.status, error=delivery.error)
            if delivery.status == "rejected":
                log.error("bronze %s: %s rejected: %s", f.source, f.path.name, delivery.error)
            log_rows.append(_log_row(ctx, f, sha, delivery.status, 0, delivery.error, delivery.extra_columns))
            records.append(rec)
            continue
        meta = {"_source_file": str(f.path), "_file_sha256": sha, "_ingested_at": now_utc(), "_run_id": ctx.run_id,
                "_encoding": delivery.encoding, "_delivery_date": dt.date.fromisoformat(f.delivery_date)}
        target = staging_root / f.source / f"{sha}.parquet"
        malformed = Counter()

        n = write_staging(_counted(delivery.rows(), malformed), target, src.canonical_columns, meta)
        staged.setdefault(f.source, []).append(_Staged(f, sha, target, n, delivery.extra_columns, sum(malformed.values()),
                                                       delivery.note))
        rec.update(status="loaded", bronze_rows=n, malformed_rows=dict(malformed), error=delivery.note)
        records.append(rec)

    loaded_rows = 0
    for name, items in staged.items():
        already: set[str] = set()
        if io.table_exists(spark, settings, "bronze", name):
            already = {r[0] for r in io.read_table(spark, settings, "bronze", name)
                       .where(F.col("_file_sha256").isin([i.sha for i in items]))
                       .select("_file_sha256").distinct().collect()}
        todo = [i for i in items if i.sha not in already]
        if already:
            log.warning("bronze %s: %d file(s) already in bronze from an interrupted run; only logging them",
                        name, len(already))
        if todo:
            df = spark.read.schema(bronze_schema(sources[name])).parquet(*[str(i.path) for i in todo])
            fault_point("bronze.append")  # earlier sources appended, this one not yet, nothing logged
            # GRIDLAKE_FAULT=bronze.append~file: killed while Spark writes the append, before its commit
            with fault_window("bronze.append", settings.table_path("bronze", name)):
                io.write_table(df, settings, "bronze", name, mode="append", partition_by=["_delivery_date"])
        for i in items:
            log_rows.append(_log_row(ctx, i.file, i.sha, "loaded", i.rows, i.note, i.extra))
            loaded_rows += i.rows
    fault_point("bronze.before_log")  # every append committed, the ingestion log not written
    if log_rows:
        io.write_table(spark.createDataFrame(log_rows, INGESTION_LOG), settings, "bronze", LOG_TABLE, mode="append")
    shutil.rmtree(staging_root, ignore_errors=True)

    ctx.manifest.record_files(records)
    ctx.manifest.set("landing_anomalies", [a.as_dict() for a in anomalies])
    ctx.manifest.set("schema_drift", drift)
    seconds = time.monotonic() - started
    statuses = Counter(r["status"] for r in records)
    return {
        "files": len(records),
        "files_by_status": dict(statuses),
        "bronze_rows": loaded_rows,
        "malformed_rows": sum(i.malformed for items in staged.values() for i in items),
        "anomalies": len(anomalies),
        "rejected": [{"path": r["path"], "error": r["error"]} for r in records if r["status"] == "rejected"],
        "rows_per_second": round(loaded_rows / seconds, 1) if seconds > 0 else None,
    }
