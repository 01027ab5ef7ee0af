"""Stage ``gold``: the collision rules and the gold tables of one night (DESIGN.md sections 3, 4, 6).

Reads silver tables and gold.house_resolution through :mod:`gridlake.io`, evaluates as of
``ctx.run_date`` on everything delivered up to that night, audits each table and publishes:

- gold.discrepancies  MERGE of the changed rows only (``io.upsert_changed``)
- gold.house_profile  overwrite unless unchanged
- gold.followups      the night's slice (``run_date = D``) unless unchanged
- gold.grid_metrics   the night's slice (``run_date = D``) unless unchanged

A rerun of the same night commits nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake import io
from gridlake.errors import ConcurrentCommitError, StaleNightError
from gridlake.faults import fault_point
from gridlake.frames import LINEAGE_CUT_MAX_ROWS, Keeper
from gridlake.lifecycle.identity import ALIAS_TABLE, ALIASES, carry_discrepancy_ids
from gridlake.manifest import commit_lock
from gridlake.privacy import load_key
from gridlake.rules_config import load_rules
from jobs.gold import discrepancies as disc_job
from jobs.gold import followups as followups_job
from jobs.gold import grid_metrics as metrics_job
from jobs.gold import house_profile as profile_job
from jobs.gold.rules import detect, prepare
from schemas.gold import DISCREPANCIES, FOLLOWUPS
from schemas.silver import SILVER_SCHEMAS

if TYPE_CHECKING:
    from gridlake.context import RunContext

log = logging.getLogger(__name__)

SILVER_INPUTS = ("housing", "grid_officers", "rentals", "declarations", "police_incidents", "mediation_cases",
                 "safety_inspections", "family_planning", "verifications")
HOUSE_RESOLUTION_COLUMNS = ("source", "record_id", "house_code", "score", "grid_id", "community")
#: How often a night recomputes its lifecycle when another night committed in between.
COMMIT_ATTEMPTS = 3


def _audit(ctx: RunContext, table: str, df: DataFrame) -> None:
    """Write-audit-publish: run the table's suite (an error stops publication).

    Fails closed: if the gate cannot be imported or run, the error propagates and nothing is published.
    """
    ctx.audit("gold", table, df)


def read_inputs(ctx: RunContext) -> tuple[dict[str, DataFrame], DataFrame | None]:
    """Silver tables (empty frames when missing) and gold.house_resolution (None when missing)."""
    spark, settings = ctx.spark, ctx.settings
    silver = {n: io.read_table_or_empty(spark, settings, "silver", n, SILVER_SCHEMAS[n]) for n in SILVER_INPUTS}
    hr = None
    if io.table_exists(spark, settings, "gold", "house_resolution"):
        hr = io.read_table(spark, settings, "gold", "house_resolution")
        missing = [c for c in HOUSE_RESOLUTION_COLUMNS if c not in hr.columns]
        if missing:
            log.warning("gold.house_resolution lacks %s; ignoring it", ", ".join(missing))
            hr = None
        else:
            # the best candidate houses of unresolved records, when the matching stage kept them (R6, waiting)
            hr = hr.select(*HOUSE_RESOLUTION_COLUMNS, *[c for c in ("candidates",) if c in hr.columns])
    else:
        log.warning("gold.house_resolution missing: only delivered house codes resolve")
    return silver, hr


def read_persons(ctx: RunContext) -> tuple[DataFrame | None, DataFrame | None]:
    """gold.person_resolution (None when the matching stage has not written it) and the declarations that
    failed only their ID checksum (silver._checksum_failed; None without person resolution or quarantine)."""
    spark, settings = ctx.spark, ctx.settings
    if not io.table_exists(spark, settings, "gold", "person_resolution"):
        return None, None
    persons = io.read_table(spark, settings, "gold", "person_resolution")
    from jobs.silver.declarations import checksum_failed_rows

    return persons, checksum_failed_rows(spark, settings)


def run(ctx: RunContext) -> dict[str, Any]:
    """Evaluate the rules for ``ctx.run_date`` and publish the four gold tables."""
    spark, settings, d = ctx.spark, ctx.settings, ctx.run_date
    key = load_key(settings)
    rules = load_rules()
    silver, hr = read_inputs(ctx)
    # the shared views, the rules' intermediate frames and each rule's output are computed once, by a query of
    # their own, so that the queries after them start from their rows instead of carrying their plans
    # (local checkpoints, in memory then on disk on a small night, on disk only on a large one: gridlake.frames)
    small = (not io.table_exists(spark, settings, "silver", "housing")
             or io.row_count(spark, settings, "silver", "housing") <= LINEAGE_CUT_MAX_ROWS)
    kept = Keeper(cut_lineage=small)
    keep = kept.keep
    try:
        if hr is not None:
            hr = keep(hr)
        persons, failed = read_persons(ctx)
        p = prepare(silver, hr, rules, d, person_resolution=persons, failed_declarations=failed, key=key,
                    materialise=keep)
        # ids carried across key rotations (gridlake.lifecycle.identity); unchanged when never rotated
        detections = keep(carry_discrepancy_ids(detect(p, rules, d, key, materialise=keep), io.read_table_or_empty(
            spark, settings, "gold", ALIAS_TABLE, ALIASES)))

        def lifecycle(previous: DataFrame) -> DataFrame:
            # materialise before writing to the table we read from
            disc = disc_job.transform(previous, detections, silver["verifications"], rules, d).localCheckpoint()
            _audit(ctx, "discrepancies", disc)
            return disc

        disc, disc_version = publish_discrepancies(ctx, lifecycle)
        versions = {"discrepancies": disc_version}
        fault_point("gold.published")  # @1: discrepancies published, the other gold tables not

        profile = profile_job.transform(p, disc, rules, d).localCheckpoint()
        _audit(ctx, "house_profile", profile)
        with commit_lock(settings, "gold.house_profile"):  # the whole table: never an older night's over a newer
            ensure_newest_night(ctx)
            versions["house_profile"] = io.overwrite_if_changed(profile, settings, "gold", "house_profile")
        fault_point("gold.published")  # @2: house_profile published

        prev_f = io.read_table_or_empty(spark, settings, "gold", "followups", FOLLOWUPS)
        officers = followups_job.officers_as_of(silver["grid_officers"], d)
        follow = followups_job.transform(disc, p.houses, officers, prev_f, rules, d).localCheckpoint()
        _audit(ctx, "followups", follow)
        where = f"run_date = DATE'{d.isoformat()}'"
        versions["followups"] = io.overwrite_if_changed(follow, settings, "gold", "followups", replace_where=where
                                                        if io.table_exists(spark, settings, "gold", "followups") else None,
                                                        partition_by=("run_date",))
        fault_point("gold.published")  # @3: followups published, grid_metrics not

        metrics = metrics_job.transform(profile, disc, hr, d).localCheckpoint()
        _audit(ctx, "grid_metrics", metrics)
        versions["grid_metrics"] = io.overwrite_if_changed(metrics, settings, "gold", "grid_metrics", replace_where=where
                                                           if io.table_exists(spark, settings, "gold", "grid_metrics")
                                                           else None, partition_by=("run_date",))
        stats = _stats(disc, follow)
        stats["table_versions"] = {f"gold.{k}": v for k, v in versions.items()}
        stats["house_resolution"] = hr is not None
        stats["person_resolution"] = persons is not None
        return stats
    finally:
        kept.release()


def newest_night(spark, settings, version: int) -> dt.date | None:
    """The newest night committed to gold.discrepancies at ``version`` (``max(last_evaluated)``)."""
    if version < 0:
        return None
    return io.read_table(spark, settings, "gold", "discrepancies", version=version).agg(
        F.max("last_evaluated")).first()[0]


def ensure_newest_night(ctx: RunContext, version: int | None = None) -> None:
    """Raise :class:`StaleNightError` when a newer night than ``ctx.run_date`` is committed to the lifecycle."""
    if version is None:
        version = io.table_version(ctx.spark, ctx.settings, "gold", "discrepancies")
    newest = newest_night(ctx.spark, ctx.settings, version)
    if newest is not None and newest > ctx.run_date:
        raise StaleNightError(
            f"gold: night {ctx.run_date} is older than night {newest}, already committed to gold.discrepancies "
            f"(version {version}); refusing to overwrite the newer lifecycle. Nothing of night {ctx.run_date} "
            "was published to gold; the newer night's tables are untouched")


def publish_discrepancies(ctx: RunContext, lifecycle: Callable[[DataFrame], DataFrame]) -> tuple[DataFrame, int]:
    """Read gold.discrepancies at a pinned version V, compute, and commit only if the table is still at V.

    ``lifecycle(previous) -> disc`` computes (and audits) the night's whole table from the one read at V.
    The commit happens under :func:`gridlake.manifest.commit_lock` after checking the version is
    still V; when another night committed in between, the lifecycle is recomputed from the new
    version (up to :data:`COMMIT_ATTEMPTS` times). A night older than the newest committed night is
    refused (:class:`StaleNightError`) before computing and again before committing.
    Returns the committed frame and the table version after the commit.
    """
    spark, settings = ctx.spark, ctx.settings
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        pinned = io.table_version(spark, settings, "gold", "discrepancies")
        ensure_newest_night(ctx, pinned)
        previous = (io.read_table(spark, settings, "gold", "discrepancies", version=pinned) if pinned >= 0
                    else spark.createDataFrame([], DISCREPANCIES))
        disc = lifecycle(previous)
        with commit_lock(settings, "gold.discrepancies"):
            now = io.table_version(spark, settings, "gold", "discrepancies")
            if now == pinned:
                return disc, io.upsert_changed(disc, settings, "gold", "discrepancies", ["discrepancy_id"])
        log.warning("gold.discrepancies moved from version %d to %d while night %s computed (attempt %d of %d); "
                    "recomputing from the new version", pinned, now, ctx.run_date, attempt, COMMIT_ATTEMPTS)
    raise ConcurrentCommitError(f"gold.discrepancies kept changing while night {ctx.run_date} computed "
                                f"({COMMIT_ATTEMPTS} attempts); nothing of this night was published to gold")


def _stats(disc: DataFrame, follow: DataFrame) -> dict[str, Any]:
    rows = disc.groupBy("rule", "status", "detected").count().collect()
    by_rule: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for r in rows:
        if r["detected"]:
            by_rule[r["rule"]] = by_rule.get(r["rule"], 0) + r["count"]
        by_status[r["status"]] = by_status.get(r["status"], 0) + r["count"]
    f = follow.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("officer_id").alias("officers"),
                   F.sum(F.col("is_new").cast("int")).alias("new")).first()
    return {"detected_by_rule": dict(sorted(by_rule.items())), "by_status": dict(sorted(by_status.items())),
            "followups": int(f["n"] or 0), "followup_officers": int(f["officers"] or 0), "followups_new": int(f["new"] or 0)}
