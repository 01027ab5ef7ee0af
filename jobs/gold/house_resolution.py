"""gold.house_resolution: every declaration, rental and enforcement record -> house code or unresolved.

``transform`` is pure (DataFrames in, DataFrame out); ``run`` is the pipeline stage
"matching": it reads the silver tables through :mod:`gridlake.io`, resolves, and
writes with :func:`gridlake.io.overwrite_if_changed`, so a rerun commits nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from schemas.address import ADDRESS_COMPONENTS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from gridlake.pipeline import RunContext
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

HOUSE_RESOLUTION = StructType([
    StructField("source", StringType(), False),
    StructField("record_id", StringType(), False),
    StructField("house_code", StringType(), True),
    StructField("score", DoubleType(), True),
    StructField("method", StringType(), False),
    StructField("explanation", StringType(), True),
    StructField("grid_id", StringType(), True),
    StructField("community", StringType(), True),
])

RECORDS_SCHEMA = StructType([
    StructField("source", StringType(), False),
    StructField("record_id", StringType(), False),
    StructField("house_code", StringType(), True),
    StructField("address_norm", StringType(), True),
])


def records_from_silver(tables: dict[str, DataFrame]) -> DataFrame:
    """Union of the record sources: source, record_id, house_code (delivered or null), address_norm, addr."""
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
    return out


def _side(df: DataFrame, id_col) -> DataFrame:
    return df.select(id_col.alias("_id"), "address_norm", *[F.col(f"addr.{c}").alias(c) for c in ADDRESS_COMPONENTS])


def transform(records_df: DataFrame, housing_df: DataFrame, spec: LinkageSpec | None = None) -> DataFrame:
    """Resolve every record (source, record_id, house_code?, address_norm, addr) against current housing.

    Candidates are current (``is_current``) houses that are not demolished. A delivered
    house code is kept (``scanned_code_verified``) when it is a candidate and its address
    agrees with the text (no must-agree component differs); otherwise the text decides.
    """
    from matching.spark import link_spark
    from matching.spec import load_spec

    spec = spec or load_spec("address_to_house")
    houses = housing_df.where(F.col("is_current") & (F.coalesce(F.col("status"), F.lit("")) != "demolished"))
    houses = houses.dropDuplicates(["house_code"])
    rec = records_df.withColumn("_id", F.concat_ws("|", "source", "record_id"))
    left = _side(rec, F.col("_id"))
    right = _side(houses, F.col("house_code"))
    forced = (rec.where(F.col("house_code").isNotNull()).select("_id", "house_code")
              .join(houses.select(F.col("house_code")), "house_code")
              .select(F.col("_id").alias("_id_l"), F.col("house_code").alias("_id_r")))
    decisions, model = link_spark(left, right, spec, forced=forced)
    log.info("house resolution: EM iterations=%d converged=%s lambda=%.4g", model.iterations, model.converged,
             model.lam)
    info = houses.select(F.col("house_code").alias("right_id"), F.col("grid_id").alias("_grid"),
                         F.col("community").alias("_comm"))
    out = (rec.select("_id", "source", "record_id", F.col("addr.community").alias("_text_comm"))
           .join(decisions.withColumnRenamed("_id_l", "_id"), "_id", "left")
           .join(info, "right_id", "left"))
    method = F.when(F.col("method") == "exact", F.lit("exact_address")).otherwise(
        F.coalesce(F.col("method"), F.lit("unresolved")))
    return out.select(
        "source", "record_id",
        F.col("right_id").alias("house_code"),
        F.col("score").cast("double").alias("score"),
        method.alias("method"),
        F.coalesce("explanation", F.lit("unresolved=no_candidate")).alias("explanation"),
        F.col("_grid").alias("grid_id"),
        F.coalesce("_comm", "_text_comm").alias("community"),
    )


def run(ctx: RunContext) -> dict:
    """Stage "matching": silver records + housing -> gold.house_resolution (rerun commits nothing)."""
    from gridlake import io
    from gridlake.faults import fault_window
    from matching.spec import load_spec

    spark, settings = ctx.spark, ctx.settings
    tables = {s: io.read_table(spark, settings, "silver", s) for s in RECORD_SOURCES
              if io.table_exists(spark, settings, "silver", s)}
    if not tables or not io.table_exists(spark, settings, "silver", "housing"):
        log.warning("matching: silver tables missing, nothing to resolve")
        return {"records": 0}
    spec = load_spec("address_to_house")
    result = transform(records_from_silver(tables), io.read_table(spark, settings, "silver", "housing"), spec)
    result = result.persist()
    try:
        # GRIDLAKE_FAULT=matching.write~file: killed while Spark writes the overwrite, before its commit
        with fault_window("matching.write", settings.table_path("gold", "house_resolution")):
            version = io.overwrite_if_changed(result, settings, "gold", "house_resolution")
        counts = {r["method"]: int(r["count"]) for r in result.groupBy("method").count().collect()}
    finally:
        result.unpersist()
    total = sum(counts.values())
    return {"records": total, "methods": counts, "version": version,
            "resolved_share": round(1 - counts.get("unresolved", 0) / total, 4) if total else None}
