"""Stage ``silver``: bronze rows of files not yet processed -> typed silver, quarantine, duplicates.

Per source, for the files the ingestion log says were loaded and that
``silver._conservation`` has not seen yet (delivered on or before the run date):

1. ``jobs.silver.<source>.transform`` types, standardises and flags every row;
2. valid rows are deduplicated by business key (:mod:`jobs.silver.dedup`);
3. every bronze row gets exactly one disposition - silver, quarantine or
   duplicate - and the counts per file must add up to the file's bronze rows, else
   :class:`~gridlake.errors.ConservationError` stops the run before anything is published;
4. write-audit-publish: the batch is kept (computed once: :func:`gridlake.frames.keep_batch`),
   audited (``ctx.audit``), then merged: snapshots (housing, grid_officers) as SCD2, increments
   upserted by key; quarantined rows go to ``silver._quarantine``, duplicates to
   ``silver._duplicates`` (same schema);
5. one commit appends the per-file counts to ``silver._conservation`` - which also
   marks the files as processed, so a rerun of the night finds nothing new and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import time
from collections import Counter, defaultdict
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake import io
from gridlake.concurrency import large_units, run_units, threads_for
from gridlake.context import RunContext
from gridlake.errors import ConservationError
from gridlake.faults import ENV as FAULT_ENV
from gridlake.faults import fault_point, fault_window
from gridlake.frames import keep_batch
from gridlake.sources import Source, load_sources
from jobs.silver.common import ROW_ID, business_columns, to_quarantine, with_raw_lines
from jobs.silver.declarations import checksum_failed
from jobs.silver.dedup import CONFLICT, DUP_COLUMN, dedup, stale_against
from jobs.silver.order import lookup_dependencies
from jobs.silver.scd2 import apply_scd2
from schemas.silver import (
    BRONZE_METADATA,
    CHECKSUM_FAILED,
    CHECKSUM_FAILED_TABLE,
    CONSERVATION,
    SILVER_SCHEMAS,
    VALUE_PROFILE,
)

log = logging.getLogger(__name__)

QUARANTINE_TABLE = "_quarantine"
DUPLICATES_TABLE = "_duplicates"
CONSERVATION_TABLE = "_conservation"
PROFILE_TABLE = "_value_profile"
_ROW_ID = list(ROW_ID)
#: up to this many rows of a snapshot differ from silver's current versions, the batch's rows are filtered by a
#: broadcast of their ids (a scan), not joined with every unchanged row (a shuffle of the whole snapshot's rows)
RETYPE_BROADCAST_MAX_ROWS = 200_000


def audit(ctx: RunContext, table: str, df: DataFrame, table_rows: int | None = None,
          whole: DataFrame | None = None) -> dict[str, Any] | None:
    """``ctx.audit("silver", table, df)``; with ``table_rows`` and ``whole``, ``df`` is the night's changes
    (:meth:`gridlake.context.RunContext.audit`). Fails closed: if the gate cannot be imported, nothing is published."""
    return ctx.audit("silver", table, df, table_rows, whole)


#: the ingestion log's columns silver looks files up by
LOG_COLUMNS = ("file_sha256", "source", "path", "delivery_date", "bronze_rows", "status")


def ingestion_log_rows(ctx: RunContext) -> list[dict[str, Any]]:
    """The ingestion log's :data:`LOG_COLUMNS`, read into the driver without a Spark job (``io.read_columns``).

    Silver writes nothing to it, so a silver run reads it once (:func:`run`)."""
    table = io.read_columns(ctx.spark, ctx.settings, "bronze", "_ingestion_log", LOG_COLUMNS)
    return [] if table is None else table.to_pylist()


def pending_files(ctx: RunContext, log_rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Loaded files (delivered up to the run date) with no conservation record yet, oldest first.

    Both logs are small (a row per delivered file) and read in the driver (``io.read_columns``): before, two
    Spark queries a silver run. ``log_rows``: :func:`ingestion_log_rows`, read here when not given."""
    done = io.read_columns(ctx.spark, ctx.settings, "silver", CONSERVATION_TABLE, ["file_sha256"])
    seen = set() if done is None else set(done.column("file_sha256").to_pylist())
    pending = []
    for row in ingestion_log_rows(ctx) if log_rows is None else log_rows:
        day, sha = row["delivery_date"], row["file_sha256"]
        if row["status"] != "loaded" or day is None or day > ctx.run_date or sha in seen:
            continue
        seen.add(sha)  # a file logged twice is processed once
        pending.append({k: row[k] for k in LOG_COLUMNS if k != "status"})
    return sorted(pending, key=lambda f: (f["delivery_date"], f["source"] or "", f["path"] or ""))


def rejected_files(log_rows: list[dict[str, Any]], source: str, day: dt.date) -> int:
    """Files of ``source`` delivered on ``day`` that bronze rejected (:func:`ingestion_log_rows`)."""
    return sum(1 for r in log_rows if r["source"] == source and r["delivery_date"] == day
               and r["status"] == "rejected")


def unchanged_snapshot_rows(batch: DataFrame, current: DataFrame, bronze_all: DataFrame,
                            keys: list[str]) -> DataFrame:
    """Rows of a snapshot ``batch`` delivered exactly as the bronze row behind the key's current silver version.

    Silver keeps each row's lineage (``_file_sha256``, ``_row_number``), so the bronze row that produced
    the current version is known; a new row with the same raw values (two independent 64- and 32-bit
    hashes of every delivered column) would be typed into the same silver row and SCD2 would do nothing.
    Returns ``_file_sha256, _row_number`` plus the ``keys`` of such rows; rows repeated within the
    batch or malformed are never included (they go through the transform and deduplication).
    """
    meta = set(BRONZE_METADATA.fieldNames())
    raw_cols = [F.col(f"`{c}`") for c in batch.columns if c not in meta]
    hashes = [F.xxhash64(*raw_cols).alias("_h1"), F.hash(*raw_cols).alias("_h2")]
    new = (batch.where(F.col("_malformed_reason").isNull()).select(*_ROW_ID, *hashes)
           .groupBy("_h1", "_h2").agg(F.count(F.lit(1)).alias("_n"), F.first("_file_sha256").alias("_file_sha256"),
                                      F.first("_row_number").alias("_row_number"))
           .where("_n = 1").drop("_n"))
    dates = [r[0] for r in current.select("_delivery_date").distinct().collect()]
    old = (bronze_all.where(F.col("_delivery_date").isin(dates))
           .join(current.select(*[F.col(k).alias(f"__key_{k}") for k in keys], *_ROW_ID), _ROW_ID)
           .select(*[F.col(f"__key_{k}").alias(k) for k in keys], *hashes))
    return new.join(old, ["_h1", "_h2"]).select(*_ROW_ID, *keys)


def _detail(reason: str) -> F.Column:
    return F.concat(F.lit(f"{reason}: kept "), F.col("_business_key"), F.lit(" from a later/preferred row"))


def process(ctx: RunContext, src: Source, files: list[dict[str, Any]],
            log_rows: list[dict[str, Any]] | None = None) -> tuple[list[tuple], dict[str, Any]]:
    """Bronze rows of ``files`` (one source; for snapshots one delivery date) into silver.

    ``log_rows``: the ingestion log (:func:`ingestion_log_rows`), read here when not given.

    Returns the conservation rows and statistics (``_side`` holds the quarantine and
    duplicate rows for :func:`write_side_tables`). Raises ConservationError before
    publishing anything when a file's counts do not balance.
    """
    spark, settings = ctx.spark, ctx.settings
    name, schema = src.name, SILVER_SCHEMAS[src.name]
    shas = [f["file_sha256"] for f in files]
    dates = sorted({f["delivery_date"] for f in files})
    bronze_all = io.read_table(spark, settings, "bronze", name)
    bronze = bronze_all.where(F.col("_delivery_date").isin(dates) & F.col("_file_sha256").isin(shas))
    bronze_counts = {r[0]: r[1] for r in bronze.groupBy("_file_sha256").count().collect()}
    unchanged = None
    if (src.delivery == "snapshot" and not ctx.extras.get("retype_snapshots")
            and io.table_exists(spark, settings, "silver", name)):
        current = io.read_table(spark, settings, "silver", name).where("is_current")
        unchanged = unchanged_snapshot_rows(bronze, current, bronze_all, list(src.key)).localCheckpoint(eager=True)
    batch = bronze
    if unchanged is not None:
        # the rows to type (new, changed, malformed or repeated ones): their ids first, from the ids alone
        retype = batch.select(*_ROW_ID).join(unchanged.select(*_ROW_ID), _ROW_ID, "left_anti").localCheckpoint(
            eager=True)
        if retype.count() <= RETYPE_BROADCAST_MAX_ROWS:
            retype = F.broadcast(retype)
        bronze = batch.join(retype, _ROW_ID, "left_semi")

    module = importlib.import_module(f"jobs.silver.{name}")
    extra = module.context(ctx) if hasattr(module, "context") else {}  # e.g. verifications: known discrepancies
    n_batch = sum(bronze_counts.values())
    flagged = keep_batch(module.transform(bronze, src, **extra), n_batch, disk_only=True)
    if unchanged is not None:
        # a key delivered again in another row of the batch must meet it in deduplication: type it too
        clash = unchanged.join(flagged.where(F.col("_reason_code").isNull()).select(*src.key), list(src.key),
                               "left_semi").select(*_ROW_ID).localCheckpoint(eager=True)
        if not clash.isEmpty():
            typed = flagged.unionByName(module.transform(batch.join(clash, _ROW_ID, "left_semi"), src, **extra))
            typed = typed.persist(StorageLevel.MEMORY_AND_DISK)
            typed.count()
            flagged.unpersist()
            flagged = typed
            unchanged = unchanged.join(clash, _ROW_ID, "left_anti").localCheckpoint(eager=True)
    # the profile (read from ``flagged``: value_profile) is not carried through deduplication's shuffle
    valid = flagged.where(F.col("_reason_code").isNull()).drop("_profile")
    content = business_columns(schema)
    if src.delivery == "snapshot":
        content = [c for c in content if c != "row_hash"]
    deduped = dedup(valid, src.key, src.order_by, content)
    if src.delivery == "increment" and src.order_by and io.table_exists(spark, settings, "silver", name):
        current = io.read_table(spark, settings, "silver", name)
        stale = stale_against(deduped.where(F.col(DUP_COLUMN).isNull()).drop(DUP_COLUMN), current, src.key,
                              src.order_by)
        deduped = deduped.where(F.col(DUP_COLUMN).isNotNull()).unionByName(stale)
    deduped = keep_batch(deduped, n_batch, disk_only=True)
    try:
        disposition = flagged.where(F.col("_reason_code").isNotNull()).select(
            "_file_sha256", F.lit("quarantine").alias("d"), F.col("_reason_code").alias("r")
        ).unionByName(deduped.select(
            "_file_sha256",
            F.when(F.col(DUP_COLUMN).isNull(), "silver").when(F.col(DUP_COLUMN) == CONFLICT, "quarantine")
            .otherwise("duplicate").alias("d"),
            F.col(DUP_COLUMN).alias("r"),
        ))
        counts: dict[str, Counter] = defaultdict(Counter)
        reasons: Counter = Counter()
        n_unchanged = 0
        if unchanged is not None:  # delivered exactly as the current version: silver, untouched
            for r in unchanged.groupBy("_file_sha256").count().collect():
                counts[r["_file_sha256"]]["silver"] += r["count"]
                n_unchanged += r["count"]
        for r in disposition.groupBy("_file_sha256", "d", "r").count().collect():
            counts[r["_file_sha256"]][r["d"]] += r["count"]
            if r["r"]:
                reasons[r["r"]] += r["count"]
        rows, unbalanced = [], []
        for f in files:
            sha = f["file_sha256"]
            b = bronze_counts.get(sha, 0)
            s, q, d = counts[sha]["silver"], counts[sha]["quarantine"], counts[sha]["duplicate"]
            ok = b == s + q + d and b == f["bronze_rows"]
            rows.append((ctx.run_id, ctx.run_date, name, sha, f["path"], b, s, q, d, ok))
            if not ok:
                unbalanced.append(f"{f['path']}: logged {f['bronze_rows']}, bronze {b} != silver {s} + "
                                  f"quarantine {q} + duplicates {d}")
        if unbalanced:
            raise ConservationError(f"silver.{name}: row counts do not balance: " + "; ".join(unbalanced))

        survivors = deduped.where(F.col(DUP_COLUMN).isNull()).select(*[f.name for f in schema.fields])
        kept = None
        if unchanged is not None:
            kept = unchanged.select(*src.key)
            # The snapshot is audited as the night's changes (ctx.audit with table_rows and whole): the survivors
            # (new and changed versions) row by row; the rows delivered exactly as silver holds them were audited,
            # typed as they are, the night they came, as an increment's rows are; the volume band on the whole
            # snapshot's count, and the expectations about a share of its rows on the whole snapshot (the
            # unchanged rows as silver holds them, and the survivors), as before. Their keys are distinct (a key
            # the batch delivers again in another row was typed with it: clash, above), so a key unique among
            # the survivors is unique in the snapshot. --retype-snapshots types and audits every row again.
            whole = survivors.unionByName(current.join(kept, list(src.key), "left_semi")
                                          .select(*[f.name for f in schema.fields]))
            audit(ctx, name, survivors, table_rows=sum(c["silver"] for c in counts.values()), whole=whole)
        else:
            audit(ctx, name, survivors)
        stats: dict[str, Any] = {"files": len(files), "bronze": sum(bronze_counts.values()),
                                 "silver": sum(c["silver"] for c in counts.values()),
                                 "quarantine": sum(c["quarantine"] for c in counts.values()),
                                 "duplicates": sum(c["duplicate"] for c in counts.values()),
                                 "reasons": dict(reasons)}
        if unchanged is not None:
            stats["unchanged_not_retyped"] = n_unchanged
        if src.delivery == "snapshot":
            day = dt.date.fromisoformat(str(dates[-1]))
            complete = rejected_files(ingestion_log_rows(ctx) if log_rows is None else log_rows, name, day) == 0
            if not complete:
                log.warning("silver.%s: a %s snapshot file was rejected; missing houses are not closed", name, day)
            stats.update(apply_scd2(survivors, settings, name, src.key, day, schema, close_missing=complete,
                                    also_delivered=kept))
        else:
            created = not io.table_exists(spark, settings, "silver", name)
            if stats["silver"]:
                # GRIDLAKE_FAULT=silver.merge~file: killed while Spark writes the MERGE, before its commit
                with fault_window("silver.merge", settings.table_path("silver", name)):
                    if created:   # a new table: the (key-unique) survivors are all new rows, in its first commit
                        io.create_with_rows(survivors, settings, "silver", name, schema)
                    else:
                        io.upsert_changed(survivors, settings, "silver", name, keys=list(src.key), columns=content)
            else:
                io.create_if_missing(spark, settings, "silver", name, schema)
            stats["version"] = io.table_version(spark, settings, "silver", name)
        fault_point("silver.merged")  # this source merged, its conservation record not yet written

        # the rows deduplication set aside (duplicates, conflicts), with their raw lines from bronze (build
        # writes only those of the rows it quarantines); counted above, so computed once and only when there are
        aside = deduped.where(F.col(DUP_COLUMN).isNotNull())
        n_aside = stats["duplicates"] + reasons.get(CONFLICT, 0)
        if n_aside:
            aside = with_raw_lines(aside, batch, src, small=n_aside <= RETYPE_BROADCAST_MAX_ROWS).localCheckpoint(
                eager=True)
        quarantined = to_quarantine(flagged.where(F.col("_reason_code").isNotNull()), name).unionByName(
            to_quarantine(aside.where(F.col(DUP_COLUMN) == CONFLICT), name, F.lit(CONFLICT), _detail(CONFLICT)))
        duplicates = to_quarantine(aside.where(F.col(DUP_COLUMN) != CONFLICT), name, F.col(DUP_COLUMN),
                                   _detail("duplicate"))
        # Materialised now (small: only failing rows), so the persisted batch can be released.
        side = {QUARANTINE_TABLE: (quarantined, stats["quarantine"]), DUPLICATES_TABLE: (duplicates, stats["duplicates"])}
        stats["_side"] = {t: (f.localCheckpoint(eager=True) if n else None) for t, (f, n) in side.items()}
        for t, f in (module.side_tables(flagged) if hasattr(module, "side_tables") else {}).items():
            kept = f.localCheckpoint(eager=True)  # a source's own side tables (declarations: typed checksum failures)
            stats["_side"][t] = None if kept.isEmpty() else kept
        stats["_profile"] = value_profile(ctx, name, flagged)
        return rows, stats
    finally:
        deduped.unpersist()
        flagged.unpersist()
        if unchanged is not None:
            unchanged.unpersist()


def value_profile(ctx: RunContext, source: str, flagged: DataFrame) -> list[tuple]:
    """Rows of :data:`schemas.silver.VALUE_PROFILE`: per file, column, kind and value (a form, a capped
    unknown vocabulary value), how many rows - aggregated from the transform's ``_profile`` column."""
    p = flagged.select("_file_sha256", "_delivery_date", F.explode("_profile").alias("p"))
    agg = p.groupBy("_file_sha256", "_delivery_date", "p.column", "p.kind", "p.value").count()
    return [(ctx.run_id, r["_delivery_date"], source, r["_file_sha256"], r["column"], r["kind"], r["value"],
             int(r["count"])) for r in agg.collect()]


def write_profile(ctx: RunContext, rows: list[tuple]) -> None:
    """Append the night's value profile in one commit, skipping files already profiled (interrupted earlier run)."""
    if not rows:
        return
    spark, settings = ctx.spark, ctx.settings
    df = spark.createDataFrame(rows, VALUE_PROFILE)
    if io.table_exists(spark, settings, "silver", PROFILE_TABLE):
        shas = sorted({r[3] for r in rows})
        have = io.read_table(spark, settings, "silver", PROFILE_TABLE).where(F.col("file_sha256").isin(shas))
        df = df.join(have.select("file_sha256").distinct(), "file_sha256", "left_anti").select(*VALUE_PROFILE.fieldNames())
        if df.isEmpty():
            return
    io.write_table(df, settings, "silver", PROFILE_TABLE, mode="append")


#: side tables derived from the quarantine (their rows are some quarantined rows, typed): table -> how to build it
#: from ``silver._quarantine`` on a lake that has none yet
DERIVED_SIDE_TABLES = {CHECKSUM_FAILED_TABLE: (checksum_failed, CHECKSUM_FAILED)}


def write_side_tables(ctx: RunContext, frames: dict[str, list[DataFrame]], shas: list[str]) -> None:
    """Append the night's quarantine and duplicate rows (and a source's own side tables) in one commit per
    table, skipping rows already there.

    Rows already present (same file and row number, from an interrupted earlier attempt) are not appended twice.
    A side table derived from the quarantine (:data:`DERIVED_SIDE_TABLES`) that the lake does not hold yet is
    created from every quarantined row, the night's included, once the quarantine is written.
    """
    spark, settings = ctx.spark, ctx.settings
    for table, parts in frames.items():
        if not parts or (table in DERIVED_SIDE_TABLES and not io.table_exists(spark, settings, "silver", table)):
            continue
        df = parts[0]
        for p in parts[1:]:
            df = df.unionByName(p)
        if io.table_exists(spark, settings, "silver", table):
            have = io.read_table(spark, settings, "silver", table).where(F.col("_file_sha256").isin(shas)).select(*_ROW_ID)
            df = df.join(have, on=_ROW_ID, how="left_anti")
            if df.isEmpty():
                continue
        io.write_table(df, settings, "silver", table, mode="append")
    create_derived_side_tables(ctx)


def create_derived_side_tables(ctx: RunContext) -> None:
    """Create each :data:`DERIVED_SIDE_TABLES` table the lake lacks from ``silver._quarantine`` (a lake whose
    quarantine predates it), in one commit; nothing without a quarantine."""
    spark, settings = ctx.spark, ctx.settings
    if not io.table_exists(spark, settings, "silver", QUARANTINE_TABLE):
        return
    for table, (build, schema) in DERIVED_SIDE_TABLES.items():
        if not io.table_exists(spark, settings, "silver", table):
            rows = build(io.read_table(spark, settings, "silver", QUARANTINE_TABLE)).localCheckpoint(eager=True)
            log.info("silver.%s: created from the quarantine (%d rows)", table, rows.count())
            io.create_with_rows(rows, settings, "silver", table, schema)


def run(ctx: RunContext) -> dict[str, Any]:
    """Process every new bronze file into silver; record conservation; return statistics."""
    started = time.monotonic()
    sources = load_sources()
    only = ctx.extras.get("sources") if getattr(ctx, "extras", None) else None
    if only:
        sources = {k: v for k, v in sources.items() if k in only}
    log_rows = ingestion_log_rows(ctx)
    pending = [f for f in pending_files(ctx, log_rows) if f["source"] in sources]
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in pending:
        by_source[f["source"]].append(f)
    names = [n for n in sources if by_source.get(n) and n in SILVER_SCHEMAS]

    def unit(name: str) -> tuple[list[tuple], list[dict[str, Any]]]:
        src, files = sources[name], by_source[name]
        if src.delivery != "snapshot":
            rows, stats = process(ctx, src, files, log_rows)
            return rows, [stats]
        out_rows: list[tuple] = []
        out_stats: list[dict[str, Any]] = []
        for day in sorted({f["delivery_date"] for f in files}):  # one snapshot at a time, in delivery order
            rows, stats = process(ctx, src, [f for f in files if f["delivery_date"] == day], log_rows)
            out_rows += rows
            out_stats.append(stats)
        return out_rows, out_stats

    # small sources run beside a large one (its jobs use the cores while they plan and commit); two large
    # sources cached side by side ran a 4 GB driver out of heap at district scale, so never two at once
    rows = {n: sum(int(f.get("bronze_rows") or 0) for f in by_source[n]) for n in names}
    large = large_units(rows, ctx.settings.spark.stage_threads_max_rows)
    results = run_units(names, lookup_dependencies(names), unit,
                        threads_for(ctx.settings.spark.stage_threads, bool(os.environ.get(FAULT_ENV))), large)
    conservation: list[tuple] = []
    tables: dict[str, Any] = {}
    for name in names:  # conf/sources.yaml order, whatever order the threads finished in
        rows, stats_list = results[name]
        conservation += rows
        tables[name] = stats_list
    side: dict[str, list[DataFrame]] = {QUARANTINE_TABLE: [], DUPLICATES_TABLE: []}
    profile: list[tuple] = []
    for stats_list in tables.values():
        for st in stats_list:
            profile += st.pop("_profile")
            for t, frame in st.pop("_side").items():
                if frame is not None:
                    side.setdefault(t, []).append(frame)
    write_side_tables(ctx, side, [f["file_sha256"] for f in pending])
    write_profile(ctx, profile)
    fault_point("silver.before_conservation")  # silver and side tables written, files not marked processed
    if conservation:
        io.write_table(ctx.spark.createDataFrame(conservation, CONSERVATION), ctx.settings, "silver",
                       CONSERVATION_TABLE, mode="append")
    per_file = {r[4]: {"source": r[2], "sha256": r[3], "bronze_rows": r[5], "silver_rows": r[6],
                       "quarantine_rows": r[7], "duplicate_rows": r[8], "balanced": r[9]} for r in conservation}
    totals = {k: sum(v[k] for v in per_file.values())
              for k in ("bronze_rows", "silver_rows", "quarantine_rows", "duplicate_rows")}
    totals["balanced"] = all(v["balanced"] for v in per_file.values())
    previous = dict(ctx.manifest.doc.get("conservation") or {})
    previous.update({"files": {**previous.get("files", {}), **per_file}, "run": totals})
    ctx.manifest.set("conservation", previous)
    seconds = time.monotonic() - started
    reasons: Counter = Counter()
    for stats_list in tables.values():
        for s in stats_list:
            reasons.update(s["reasons"])
    return {
        "files": len(pending),
        **totals,
        "reasons": dict(reasons),
        "tables": tables,
        "rows_per_second": round(totals["bronze_rows"] / seconds, 1) if seconds > 0 and pending else None,
    }
