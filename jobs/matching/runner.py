"""gold.house_resolution: every declaration, rental and enforcement record -> house code or unresolved.

``transform`` is pure (DataFrames in, DataFrame out); ``run`` is the pipeline stage
"matching": it reads the silver tables through :mod:`gridlake.io` and resolves.

Incremental nights. The first night (or after the spec or the matching code changed) links
every record and trains the model (u from random pairs, m by EM). Its parameters are saved in
``gold._house_resolution_state`` with the ``silver.housing`` version they were linked against.
Later nights reuse that model and re-link only the records it could change
(:func:`records_to_relink`): new records, records whose address or delivered code changed, and
records that share a blocking key with a house added, removed or altered since (or that point
at one). The houses altered since are found from the registry's change data feed where it covers
the commits in between (:func:`houses_changed_since`), else by comparing both versions whole. With the model fixed, a record's decision depends only on its own text and the houses
sharing its blocking keys, so the merged result equals a full re-link with the same model
(``tests/integration/test_incremental_matching.py`` proves it). A rerun commits nothing.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType

from gridlake.concurrency import threads_for
from gridlake.faults import ENV as FAULT_ENV
from gridlake.frames import keep_batch
from jobs.matching.house_publish import STATE_TABLE, ResolvedNight, beside
from schemas.address import ADDRESS_COMPONENTS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from gridlake.context import RunContext
    from matching.scoring import FSModel
    from matching.spec import LinkageSpec

log = logging.getLogger(__name__)

# silver table -> its record id column
RECORD_SOURCES: dict[str, str] = {
    "declarations": "declaration_id",
    "rentals": "rental_id",
    "police_incidents": "incident_id",
    "mediation_cases": "case_id",
    "safety_inspections": "inspection_id",
    "family_planning": "record_id",
}
KEYS = ["source", "record_id"]
# a night that changes more than this share of the houses is re-linked in full
FULL_RELINK_SHARE = 0.2
# up to this many records to re-link, the registry's blocking keys are filtered by a broadcast of theirs
FEW_RECORDS = 50_000
# the matching modules whose code decides a resolution (normaliser/parser, comparisons, scoring, Spark adapter and
# the pandas engine it runs in each partition)
DECIDING_MODULES = ("address.py", "compare.py", "scoring.py", "spark.py", "partitioned.py", "engine.py",
                    "blocking.py", "codes.py")
# up to this many registry codes a night's commits touched, they meet the houses as a broadcast
BROADCAST_CODES = 100_000
# best candidate houses kept for every unresolved record (rule R6 shows them; R1-R5 wait on them)
CANDIDATES_KEPT = 5

#: one candidate house of an unresolved record and why it was not chosen (matching.engine.top_candidates)
CANDIDATE = StructType([
    StructField("house_code", StringType(), True),
    StructField("weight", DoubleType(), True),
    StructField("why", StringType(), True),
])

HOUSE_RESOLUTION = StructType([
    StructField("source", StringType(), False),
    StructField("record_id", StringType(), False),
    StructField("house_code", StringType(), True),
    StructField("score", DoubleType(), True),
    StructField("method", StringType(), False),
    StructField("explanation", StringType(), True),
    StructField("grid_id", StringType(), True),
    StructField("community", StringType(), True),
    StructField("input_hash", LongType(), True),   # fingerprint of the record's address and delivered code
    StructField("candidates", ArrayType(CANDIDATE, True), True),  # unresolved only: best candidates, best first
])

RECORDS_SCHEMA = StructType([
    StructField("source", StringType(), False),
    StructField("record_id", StringType(), False),
    StructField("house_code", StringType(), True),
    StructField("address_norm", StringType(), True),
])


def records_from_silver(tables: dict[str, DataFrame]) -> DataFrame:
    """Union of the record sources: source, record_id, house_code (delivered or null), address_norm, addr,
    input_hash (what the resolution of the record depends on)."""
    frames = []
    for source, id_col in RECORD_SOURCES.items():
        df = tables.get(source)
        if df is None:
            continue
        code = F.upper(F.trim(F.col("house_code"))) if "house_code" in df.columns else F.lit(None).cast("string")
        frames.append(df.select(F.lit(source).alias("source"), F.col(id_col).cast("string").alias("record_id"),
                                code.alias("house_code"), "address_norm", "addr"))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.withColumn("input_hash", input_hash())


def input_hash() -> Column:
    """Fingerprint of what a record's resolution depends on: delivered code, normalised address, components."""
    return F.xxhash64("house_code", "address_norm", "addr")


def candidate_houses(housing_df: DataFrame) -> DataFrame:
    """The houses a record may resolve to: current (``is_current``), not demolished, one row per code."""
    houses = housing_df.where(F.col("is_current") & (F.coalesce(F.col("status"), F.lit("")) != "demolished"))
    return houses.dropDuplicates(["house_code"])


def _side(df: DataFrame, id_col) -> DataFrame:
    return df.select(id_col.alias("_id"), "address_norm", *[F.col(f"addr.{c}").alias(c) for c in ADDRESS_COMPONENTS])


def _house_fingerprint(houses: DataFrame) -> DataFrame:
    return houses.select("house_code", F.xxhash64("address_norm", "addr", "grid_id", "community").alias("_fp"))


def changed_house_codes(before: DataFrame, after: DataFrame) -> DataFrame:
    """House codes added, removed or altered (address, components, grid, community) between two candidate sets."""
    b = _house_fingerprint(before).withColumnRenamed("_fp", "_b")
    a = _house_fingerprint(after).withColumnRenamed("_fp", "_a")
    return (b.join(a, "house_code", "full_outer")
            .where(F.col("_a").isNull() | F.col("_b").isNull() | (F.col("_a") != F.col("_b")))
            .select("house_code"))


def houses_changed_since(ctx: RunContext, since: int, until: int, houses: DataFrame
                         ) -> tuple[DataFrame, DataFrame, str]:
    """``(before, changed, how)``: the candidate houses of ``silver.housing`` at version ``since``, the codes
    :func:`changed_house_codes` finds between them and ``houses`` (its candidates at ``until``), kept, and how
    the codes to compare were found.

    Where the registry's change data feed covers the commits in between (``how`` = ``change feed``), only the
    codes whose rows they touched are compared (:func:`gridlake.io.changed_keys`: a few on a night that changed
    a few, among 500,000 in a district) and ``before`` holds only those: every code whose candidate differs is
    among them, since :func:`candidate_houses` decides each code from its own rows. Otherwise (``versions
    compared``) both versions are compared whole, as before the feed was recorded.
    """
    from gridlake import io

    spark, settings = ctx.spark, ctx.settings
    old = io.read_table(spark, settings, "silver", "housing", version=since)
    now, how = houses, "versions compared"
    touched = io.changed_keys(spark, settings, "silver", "housing", since, until, ["house_code"])
    if touched is not None:
        keys = F.broadcast(touched) if touched.count() <= BROADCAST_CODES else touched
        old, now, how = old.join(keys, "house_code", "left_semi"), houses.join(keys, "house_code", "left_semi"), \
            "change feed"
    before = candidate_houses(old)
    return before, changed_house_codes(before, now).localCheckpoint(eager=True), how


#: :func:`record_changes`' kinds; a record to re-link for its own sake is ``new`` or ``changed`` (fresh)
FRESH = ("new", "changed")


def record_changes(records: DataFrame, previous: DataFrame) -> DataFrame:
    """``source, record_id, change``: ``new`` for a record ``previous`` has no resolution of, ``changed`` for
    one whose ``input_hash`` differs from (or is missing in) its resolution there, ``gone`` for a resolution
    whose record is no longer delivered. One full outer join by key (each side holds a key once) instead of an
    anti join each way."""
    now = records.select(*KEYS, F.col("input_hash").alias("_now"), F.lit(True).alias("_in_now"))
    then = previous.select(*KEYS, F.col("input_hash").alias("_then"), F.lit(True).alias("_in_then"))
    same = F.coalesce(F.col("_now") == F.col("_then"), F.lit(False))
    change = (F.when(F.col("_in_now").isNull(), F.lit("gone")).when(F.col("_in_then").isNull(), F.lit("new"))
              .when(~same, F.lit("changed")))
    return now.join(then, KEYS, "full_outer").select(*KEYS, change.alias("change")).where(F.col("change").isNotNull())


def records_to_relink(records: DataFrame, previous: DataFrame, before: DataFrame, after: DataFrame,
                      changed: DataFrame, spec: LinkageSpec, fresh: DataFrame | None = None) -> DataFrame:
    """``source, record_id`` of the records whose resolution may differ from ``previous`` (see module doc).

    ``before``/``after`` are the candidate houses the previous night and now; ``changed`` their
    :func:`changed_house_codes`; ``fresh`` the keys :func:`record_changes` calls new or changed (computed
    here when not given). Pure: DataFrames in, DataFrame out (the changed houses, a few, are collected once:
    :func:`matching.narrowing.narrow`).
    """
    from matching.narrowing import narrow
    from matching.spark import affected_left

    if fresh is None:
        fresh = record_changes(records, previous).where(F.col("change").isin(*FRESH))
    fresh = fresh.select(*KEYS)
    versions = before.join(changed, "house_code", "left_semi").unionByName(
        after.join(changed, "house_code", "left_semi"), allowMissingColumns=True)
    rec = records.withColumn("_id", F.concat_ws("|", "source", "record_id"))
    # the few changed houses to the driver, the records narrowed by their values before their blocking keys
    left, right = narrow(_side(rec, F.col("_id")), _side(versions, F.col("house_code")), spec)
    near = affected_left(left, F.broadcast(right), spec)
    # back to the keys from the id itself (a source's name holds no "|"), not by a join with every record
    near = near.select(F.substring_index("_id", "|", 1).alias("source"),
                       F.expr("substring(_id, length(substring_index(_id, '|', 1)) + 2)").alias("record_id"))
    codes = F.broadcast(changed.select(F.col("house_code").alias("_code")))
    pointed = records.join(codes, records["house_code"] == F.col("_code"), "left_semi").select(*KEYS)
    linked = previous.join(codes, previous["house_code"] == F.col("_code"), "left_semi").select(*KEYS)
    return fresh.unionByName(near).unionByName(pointed).unionByName(linked).distinct()


def resolve(records_df: DataFrame, houses: DataFrame, spec: LinkageSpec,
            model: FSModel | None = None, few_records: bool = False) -> tuple[DataFrame, FSModel]:
    """Resolve ``records_df`` against the candidate ``houses``; returns (resolutions, model).

    Without ``model`` the parameters are estimated from these records (u from random pairs, m by EM).
    A delivered house code is kept (``scanned_code_verified``) when it is a candidate and its address
    agrees with the text (no must-agree component differs); otherwise the text decides.
    ``few_records``: the registry's blocking keys are filtered by a broadcast of the records' keys.
    """
    from matching.spark import link_spark

    rec = records_df.withColumn("_id", F.concat_ws("|", "source", "record_id"))
    by_alias = None
    if "alias_code" in rec.columns:  # an officer's correction (jobs.gold.aliases): exact, before the engine
        by_alias = rec.where(F.col("alias_code").isNotNull())
        rec = rec.where(F.col("alias_code").isNull())
    left = _side(rec, F.col("_id"))
    right = _side(houses, F.col("house_code"))
    forced = (rec.where(F.col("house_code").isNotNull()).select("_id", "house_code")
              .join(houses.select(F.col("house_code")), "house_code")
              .select(F.col("_id").alias("_id_l"), F.col("house_code").alias("_id_r")))
    decisions, model = link_spark(left, right, spec, model=model, forced=forced, small_left=few_records,
                                  top_k=CANDIDATES_KEPT)
    log.info("house resolution: EM iterations=%d converged=%s lambda=%.4g", model.iterations, model.converged,
             model.lam)
    info = houses.select(F.col("house_code").alias("right_id"), F.col("grid_id").alias("_grid"),
                         F.col("community").alias("_comm"))
    hashed = "input_hash" in rec.columns
    out = (rec.select("_id", "source", "record_id", F.col("addr.community").alias("_text_comm"),
                      (F.col("input_hash") if hashed else input_hash()).alias("input_hash"))
           .join(decisions.withColumnRenamed("_id_l", "_id"), "_id", "left")
           .join(info, "right_id", "left"))
    method = F.when(F.col("method") == "exact", F.lit("exact_address")).otherwise(
        F.coalesce(F.col("method"), F.lit("unresolved")))
    out = out.select(
        "source", "record_id",
        F.col("right_id").alias("house_code"),
        F.col("score").cast("double").alias("score"),
        method.alias("method"),
        F.coalesce("explanation", F.lit("unresolved=no_candidate")).alias("explanation"),
        F.col("_grid").alias("grid_id"),
        F.coalesce("_comm", "_text_comm").alias("community"),
        "input_hash",
        F.col("candidates").cast(ArrayType(CANDIDATE, True)).alias("candidates"),
    )
    if by_alias is not None:
        from jobs.gold.aliases import resolved_by_alias

        out = out.unionByName(resolved_by_alias(by_alias, info), allowMissingColumns=True)
    return out, model


def transform(records_df: DataFrame, housing_df: DataFrame, spec: LinkageSpec | None = None,
              model: FSModel | None = None) -> DataFrame:
    """Resolve every record (source, record_id, house_code?, address_norm, addr) against current housing
    (:func:`candidate_houses`); see :func:`resolve`."""
    from matching.spec import load_spec

    return resolve(records_df, candidate_houses(housing_df), spec or load_spec("address_to_house"), model)[0]


def matching_fingerprint(spec: LinkageSpec) -> str:
    """The spec's fingerprint combined with the code of :data:`DECIDING_MODULES`."""
    from matching.spec import code_fingerprint

    return code_fingerprint(spec, DECIDING_MODULES)


def _saved_state(ctx: RunContext, spec: LinkageSpec, fingerprint: str) -> tuple[FSModel | None, dict[str, Any]]:
    """The saved model when it fits this spec and code (else None), and the saved state row."""
    from gridlake import io
    from matching.scoring import FSModel

    if ctx.extras.get("retrain_matching"):
        log.info("matching: retraining on request (--retrain-matching)")
        return None, {}
    if not io.table_exists(ctx.spark, ctx.settings, "gold", STATE_TABLE):
        return None, {}
    rows = io.read_table(ctx.spark, ctx.settings, "gold", STATE_TABLE).where(F.col("spec") == spec.name).collect()
    if not rows:
        return None, {}
    state = rows[0].asDict()
    if state["fingerprint"] != fingerprint:
        log.info("matching: spec or matching code changed since the saved model; full re-link and retraining")
        return None, {}
    try:
        return FSModel.from_state(state["model"], spec), state
    except (ValueError, KeyError) as exc:
        log.warning("matching: saved model unusable (%s); retraining", exc)
        return None, {}


def run(ctx: RunContext) -> dict:
    """Stage "matching": silver records + housing -> gold.house_resolution (incremental; rerun commits nothing)."""
    from gridlake import io
    from matching.spec import load_spec

    spark, settings = ctx.spark, ctx.settings
    tables = {s: io.read_table(spark, settings, "silver", s) for s in RECORD_SOURCES
              if io.table_exists(spark, settings, "silver", s)}
    if not tables or not io.table_exists(spark, settings, "silver", "housing"):
        log.warning("matching: silver tables missing, nothing to resolve")
        return {"records": 0}
    spec = load_spec("address_to_house")
    housing_version = io.table_version(spark, settings, "silver", "housing")
    # both read several times (change detection, re-link planning, linkage, house info): computed once, and on
    # a small night cut from their lineage (gridlake.frames.keep_batch), sized from Delta's statistics
    n_houses = io.row_count(spark, settings, "silver", "housing")
    n_records = sum(io.row_count(spark, settings, "silver", s) for s in tables)
    houses = keep_batch(candidate_houses(io.read_table(spark, settings, "silver", "housing",
                                                       version=housing_version)), n_houses)
    failed = checksum_failed_declarations(ctx, tables.get("declarations"))
    records = records_from_silver(tables)
    if failed is not None:   # resolved like any declaration: person linkage compares the house (issue 21)
        records = records.unionByName(records_from_silver({"declarations": failed}))
    from jobs.gold import aliases  # officers' corrections, applied before the engine

    records = keep_batch(aliases.mark(records, aliases.run(ctx, records, houses)), n_records)
    started = time.monotonic()
    from jobs.matching import persons  # after house resolution: the house is a person feature

    try:
        night = resolve_night(ctx, spec, records, houses, housing_version, n_records)
        resolved = time.monotonic()
        # person linkage (pandas, in this thread) runs while the houses are published from a second thread
        # (jobs.matching.house_publish), given the houses the table will hold (collected by that thread while
        # this one reads the mentions); it publishes its own table only once they are published. One thread
        # (a fault plan, or spark.stage_threads: 1): one after the other
        threads = threads_for(settings.spark.stage_threads, bool(os.environ.get(FAULT_ENV)))
        publish, codes = night.publish_after_codes() if threads > 1 else (night.publish, None)
        stats, person_stats = beside(
            publish, lambda ready: persons.run(ctx, tables, failed, house_codes=codes, ready=ready,
                                                   beside=threads > 1), threads)
        stats["persons"] = person_stats
    finally:
        records.unpersist()
        houses.unpersist()
    # where the stage's time went (the manifest keeps it: a profile of a night needs no extra run); with two
    # threads the houses' publication (publish_seconds) overlaps person resolution
    stats["seconds_by_part"] = {"house_resolution": round(resolved - started + stats["publish_seconds"], 1),
                                "person_resolution": round(stats["persons"].get("seconds", 0.0), 1)}
    stats["houses_published_beside_persons"] = threads > 1
    return stats


def checksum_failed_declarations(ctx: RunContext, declarations: DataFrame | None) -> DataFrame | None:
    """Declarations quarantined only for their ID's checksum (:func:`jobs.silver.declarations.checksum_failed_rows`)
    whose id silver does not hold, persisted; None when there is no quarantine table or none such."""
    from jobs.silver.declarations import checksum_failed_rows

    failed = checksum_failed_rows(ctx.spark, ctx.settings)  # silver._checksum_failed, typed the night they came
    if failed is None:
        return None
    from pyspark.sql import Window

    latest = Window.partitionBy("declaration_id").orderBy(F.desc("_delivery_date"), F.desc("_row_number"))
    failed = failed.withColumn("__rn", F.row_number().over(latest)).where("__rn = 1").drop("__rn")
    if declarations is not None:
        failed = failed.join(declarations.select("declaration_id"), "declaration_id", "left_anti")
    failed = failed.localCheckpoint(eager=True)
    return failed if failed.count() else None


def resolve_night(ctx: RunContext, spec: LinkageSpec, records: DataFrame, houses: DataFrame,
                  housing_version: int, n_records: int) -> ResolvedNight:
    """The night's resolution, not yet published (:class:`jobs.matching.house_publish.ResolvedNight`): the
    records to re-link (incremental, with the saved model) or all of them (full, training a model first)."""
    from gridlake import io

    spark, settings = ctx.spark, ctx.settings
    fingerprint = matching_fingerprint(spec)
    model, state = _saved_state(ctx, spec, fingerprint)
    hr_version = io.table_version(spark, settings, "gold", "house_resolution")
    previous = io.read_table(spark, settings, "gold", "house_resolution") if hr_version >= 0 else None
    mode, why = "full", "first linkage"
    if model is None:
        why = "no saved model for this spec and code"
    elif previous is None or "input_hash" not in previous.columns:
        why = "no previous resolution with input fingerprints"
    elif "candidates" not in previous.columns:
        why = "previous resolution without candidate houses"
    elif state.get("resolution_version") != hr_version:
        why = "gold.house_resolution changed since the saved state"
    else:
        mode = "incremental"
    stats: dict[str, Any] = {}
    if mode == "incremental":
        before, changed, stats["houses_changed_from"] = houses_changed_since(
            ctx, int(state["housing_version"]), housing_version, houses)
        n_changed, n_houses = changed.count(), houses.count()
        stats["houses_changed"] = n_changed
        if n_changed > FULL_RELINK_SHARE * max(n_houses, 1):
            mode, why = "full", f"{n_changed} of {n_houses} houses changed"
    if mode == "incremental":
        changes = record_changes(records, previous).localCheckpoint(eager=True)
        gone = changes.where(F.col("change") == "gone").select(*KEYS)
        todo = records.join(records_to_relink(records, previous, before, houses, changed, spec,
                                              fresh=changes.where(F.col("change").isin(*FRESH))), KEYS, "left_semi")
        todo = todo.localCheckpoint(eager=True)
        n_todo = todo.count()
        log.info("matching: incremental night, %d records to re-link (%d houses changed)", n_todo, n_changed)
        if n_todo:
            result, model = resolve(todo, houses, spec, model, few_records=n_todo <= FEW_RECORDS)
        else:
            result = spark.createDataFrame([], HOUSE_RESOLUTION)
        result = keep_batch(result, n_todo)
        gone = gone.localCheckpoint(eager=True)
        return ResolvedNight(ctx, spec, fingerprint, model, housing_version, hr_version, mode, result, stats,
                             gone=gone, changes=changes, previous=previous, n_todo=n_todo, n_gone=gone.count())
    log.info("matching: full linkage (%s)", why)
    result, model = resolve(records, houses, spec, model)
    result = keep_batch(result, n_records)
    stats.update(relinked=None, full_reason=why)
    return ResolvedNight(ctx, spec, fingerprint, model, housing_version, hr_version, mode, result, stats)
