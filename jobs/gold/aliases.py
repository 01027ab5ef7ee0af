"""gold.address_aliases: officers' corrections become data (issue 19 item 5).

A verification that gives 核查后房屋编码 (the right house) for an unresolved-address case (R6) adds
an alias for every normalised address among that case's evidence records: ``address_norm ->
house_code``, with the verification, the officer and the date. The next night's matching resolves
such an address exactly through the alias (method ``alias``, the verification as its explanation)
before the engine sees it (:func:`mark`, applied in :func:`jobs.matching.runner.resolve`).

An alias is withdrawn when a later verification refutes it: a case whose evidence includes a
record of that address is verified ``wrong_address``, or the same address is corrected to another
house (the newer correction wins). A code that is not a current house in the registry never
becomes an alias.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, StructField, StructType

if TYPE_CHECKING:
    from gridlake.context import RunContext

log = logging.getLogger(__name__)

TABLE = "address_aliases"
METHOD = "alias"
ALIASES = StructType([
    StructField("address_norm", StringType(), False),
    StructField("house_code", StringType(), False),
    StructField("verification_id", StringType(), False),
    StructField("discrepancy_id", StringType(), False),
    StructField("officer_id", StringType(), True),       # work id of the verifying officer (not personal)
    StructField("created_on", DateType(), False),        # the verification's date
    StructField("status", StringType(), False),          # active | withdrawn
    StructField("withdrawn_on", DateType(), True),
    StructField("withdrawn_by", StringType(), True),     # the refuting verification's id
])


def corrections(verifications: DataFrame, discrepancies: DataFrame, records: DataFrame, houses: DataFrame,
                run_date: dt.date) -> DataFrame:
    """Alias candidates: (address_norm, house_code, verification_id, discrepancy_id, officer_id, created_on).

    From verifications checked by ``run_date`` with a ``new_house_code`` that is a current house, on
    R6 cases; one per address, the latest verification winning.
    """
    v = verifications.where(F.col("new_house_code").isNotNull() & (F.to_date("checked_at") <= F.lit(run_date)))
    r6 = discrepancies.where(F.col("rule") == "R6").select("discrepancy_id", F.explode("evidence").alias("e"))
    ev = r6.select("discrepancy_id", F.col("e.source").alias("source"), F.col("e.record_id").alias("record_id"))
    addr = records.where(F.col("address_norm").isNotNull()).select("source", "record_id", "address_norm")
    codes = houses.select(F.col("house_code").alias("new_house_code")).distinct()
    c = (v.join(codes, "new_house_code", "left_semi").join(ev, "discrepancy_id")
         .join(addr, ["source", "record_id"]).select(
             "address_norm", F.col("new_house_code").alias("house_code"), "verification_id", "discrepancy_id",
             "officer_id", F.to_date("checked_at").alias("created_on"), F.col("checked_at").alias("__at")))
    w = Window.partitionBy("address_norm").orderBy(F.col("__at").desc(), F.col("verification_id").desc())
    return c.withColumn("__rn", F.row_number().over(w)).where("__rn = 1").drop("__rn", "__at")


def refutations(verifications: DataFrame, discrepancies: DataFrame, records: DataFrame,
                run_date: dt.date) -> DataFrame:
    """(address_norm, refuted_on, refuted_by): addresses whose records a ``wrong_address`` verification disputes."""
    v = verifications.where((F.col("outcome") == "wrong_address") & (F.to_date("checked_at") <= F.lit(run_date)))
    ev = discrepancies.select("discrepancy_id", F.explode("evidence").alias("e")).select(
        "discrepancy_id", F.col("e.source").alias("source"), F.col("e.record_id").alias("record_id"))
    addr = records.where(F.col("address_norm").isNotNull()).select("source", "record_id", "address_norm")
    return (v.join(ev, "discrepancy_id").join(addr, ["source", "record_id"])
            .groupBy("address_norm").agg(F.max(F.to_date("checked_at")).alias("refuted_on"),
                                         F.max("verification_id").alias("refuted_by")))


def refresh(previous: DataFrame, verifications: DataFrame, discrepancies: DataFrame, records: DataFrame,
            houses: DataFrame, run_date: dt.date) -> DataFrame:
    """The whole alias table after night ``run_date`` (schema :data:`ALIASES`); pure and idempotent."""
    cand = corrections(verifications, discrepancies, records, houses, run_date)
    refuted = refutations(verifications, discrepancies, records, run_date)
    p = previous.alias("p")
    # a new correction replaces the address's alias unless it is the same verification
    new = cand.join(previous.select("address_norm", "verification_id"), ["address_norm", "verification_id"], "left_anti")
    superseded = (previous.where(F.col("status") == "active").join(new.select("address_norm", F.col("verification_id")
                  .alias("__by"), F.col("created_on").alias("__on")), "address_norm")
                  .withColumn("status", F.lit("withdrawn")).withColumn("withdrawn_on", F.col("__on"))
                  .withColumn("withdrawn_by", F.col("__by")).drop("__by", "__on"))
    kept = p.join(superseded.select("address_norm", "verification_id"), ["address_norm", "verification_id"], "left_anti")
    fresh = new.select(*[F.col(c) for c in ("address_norm", "house_code", "verification_id", "discrepancy_id",
                                            "officer_id", "created_on")],
                       F.lit("active").alias("status"), F.lit(None).cast("date").alias("withdrawn_on"),
                       F.lit(None).cast("string").alias("withdrawn_by"))
    table = kept.unionByName(superseded).unionByName(fresh)
    # refuted after it was created: withdrawn
    t = table.join(refuted, "address_norm", "left")
    hit = (F.col("status") == "active") & F.col("refuted_on").isNotNull() & (F.col("refuted_on") > F.col("created_on"))
    t = (t.withColumn("withdrawn_by", F.when(hit, F.col("refuted_by")).otherwise(F.col("withdrawn_by")))
         .withColumn("withdrawn_on", F.when(hit, F.col("refuted_on")).otherwise(F.col("withdrawn_on")))
         .withColumn("status", F.when(hit, F.lit("withdrawn")).otherwise(F.col("status"))))
    return t.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in ALIASES.fields])


def mark(records: DataFrame, aliases: DataFrame) -> DataFrame:
    """``records`` with ``alias_code`` and ``alias_explanation`` for addresses with an active alias.

    The record's ``input_hash`` includes the alias, so an incremental night re-links a record whose
    alias was added or withdrawn.
    """
    a = (aliases.where(F.col("status") == "active")
         .select("address_norm", F.col("house_code").alias("alias_code"),
                 F.concat(F.lit("alias=verification:"), F.col("verification_id"), F.lit(";case="),
                          F.col("discrepancy_id"), F.lit(";on="), F.col("created_on").cast("string"))
                 .alias("alias_explanation")))
    out = records.join(F.broadcast(a), "address_norm", "left")
    if "input_hash" in out.columns:
        out = out.withColumn("input_hash", F.when(F.col("alias_code").isNull(), F.col("input_hash"))
                             .otherwise(F.xxhash64("input_hash", "alias_code", "alias_explanation")))
    return out


def resolved_by_alias(marked: DataFrame, info: DataFrame) -> DataFrame:
    """House resolutions of records with an alias (``mark``-ed rows; ``info`` = right_id, _grid, _comm)."""
    return (marked.join(info, marked["alias_code"] == info["right_id"], "left")
            .select("source", "record_id", F.col("alias_code").alias("house_code"), F.lit(1.0).alias("score"),
                    F.lit(METHOD).alias("method"), F.col("alias_explanation").alias("explanation"),
                    F.col("_grid").alias("grid_id"), F.coalesce("_comm", F.col("addr.community")).alias("community"),
                    "input_hash"))


def changes_possible(verifications: DataFrame, run_date: dt.date) -> bool:
    """Whether a verification checked by ``run_date`` gives a house code or refutes an address: without one,
    :func:`refresh` returns the previous table unchanged (no correction to add, none to supersede or withdraw),
    and the joins over every record need not run."""
    checked = F.to_date("checked_at") <= F.lit(run_date)
    relevant = checked & (F.col("new_house_code").isNotNull() | (F.col("outcome") == "wrong_address"))
    return not verifications.where(relevant).isEmpty()


def run(ctx: RunContext, records: DataFrame, houses: DataFrame) -> DataFrame:
    """Refresh gold.address_aliases for the night; return the table (for :func:`mark`)."""
    from gridlake import io
    from schemas.gold import DISCREPANCIES
    from schemas.silver import VERIFICATIONS

    spark, settings = ctx.spark, ctx.settings
    previous = io.read_table_or_empty(spark, settings, "gold", TABLE, ALIASES)
    verifications = io.read_table_or_empty(spark, settings, "silver", "verifications", VERIFICATIONS)
    if "new_house_code" not in verifications.columns:
        return previous
    if not changes_possible(verifications, ctx.run_date):
        # no correction and no refutation checked by tonight: refresh would give the previous table
        io.create_if_missing(spark, settings, "gold", TABLE, ALIASES)
        return previous
    discrepancies = io.read_table_or_empty(spark, settings, "gold", "discrepancies", DISCREPANCIES)
    table = refresh(previous, verifications, discrepancies, records, houses, ctx.run_date).localCheckpoint()
    io.overwrite_if_changed(table, settings, "gold", TABLE)
    return table


def stats(aliases: DataFrame) -> dict[str, Any]:
    """Counts of active and withdrawn aliases."""
    return {r["status"]: int(r["count"]) for r in aliases.groupBy("status").count().collect()}
