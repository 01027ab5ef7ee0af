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

import logging
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake import io
from gridlake.faults import fault_point
from gridlake.lifecycle.identity import ALIAS_TABLE, ALIASES, carry_discrepancy_ids
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
    from gridlake.pipeline import RunContext

log = logging.getLogger(__name__)

SILVER_INPUTS = ("housing", "grid_officers", "rentals", "declarations", "police_incidents", "mediation_cases",
                 "safety_inspections", "family_planning", "verifications")
HOUSE_RESOLUTION_COLUMNS = ("source", "record_id", "house_code", "score", "grid_id", "community")


def _audit(ctx: RunContext, table: str, df: DataFrame) -> None:
    """Write-audit-publish: run the table's suite when the quality gate exists (an error stops publication)."""
    try:
        import gridlake.quality.gate  # noqa: F401
    except ImportError:
        log.info("quality gate not available; gold.%s published without audit", table)
        return
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
            hr = hr.select(*HOUSE_RESOLUTION_COLUMNS)
    else:
        log.warning("gold.house_resolution missing: only delivered house codes resolve")
    return silver, hr


def run(ctx: RunContext) -> dict[str, Any]:
    """Evaluate the rules for ``ctx.run_date`` and publish the four gold tables."""
    spark, settings, d = ctx.spark, ctx.settings, ctx.run_date
    key = load_key(settings)
    rules = load_rules()
    silver, hr = read_inputs(ctx)
    if hr is not None:
        hr = hr.persist()
    p = prepare(silver, hr, rules, d)
    for name in ("houses", "rentals", "declarations", "all_declarations", "enforcement", "community_grid"):
        setattr(p, name, getattr(p, name).persist())
    cached: list[DataFrame] = []
    try:
        # ids carried across key rotations (gridlake.lifecycle.identity); unchanged when never rotated
        detections = carry_discrepancy_ids(detect(p, rules, d, key), io.read_table_or_empty(
            spark, settings, "gold", ALIAS_TABLE, ALIASES)).persist()
        cached.append(detections)
        previous = io.read_table_or_empty(spark, settings, "gold", "discrepancies", DISCREPANCIES)
        # materialise before writing to the table we read from
        disc = disc_job.transform(previous, detections, silver["verifications"], rules, d).localCheckpoint()
        _audit(ctx, "discrepancies", disc)
        versions = {"discrepancies": io.upsert_changed(disc, settings, "gold", "discrepancies", ["discrepancy_id"])}
        fault_point("gold.published")  # @1: discrepancies published, the other gold tables not

        profile = profile_job.transform(p, disc, rules, d).localCheckpoint()
        _audit(ctx, "house_profile", profile)
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
        return stats
    finally:
        for df in cached:
            df.unpersist()
        for name in ("houses", "rentals", "declarations", "all_declarations", "enforcement", "community_grid"):
            getattr(p, name).unpersist()
        if hr is not None:
            hr.unpersist()


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
