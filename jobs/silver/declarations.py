"""silver.declarations: residents' self-declarations; an invalid ID number quarantines the declaration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake import io
from gridlake.parse.config import limits
from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, id_value, normalize_phone
from jobs.silver.common import build, raw, typed_check, with_address
from jobs.silver.values import count_value, date_value, vocab_value, with_stages
from schemas.silver import CHECKSUM_FAILED, CHECKSUM_FAILED_TABLE, DECLARATIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from gridlake.config import Settings


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a declarations delivery (ID_FORMAT / ID_CHECKSUM quarantined).

    ``declared_at`` after the delivery day (plus the configured tolerance) is DATE_IN_FUTURE.
    """
    source = source or get_source("declarations")
    df = with_address(bronze_df)
    ident, legacy15 = id_value(raw("id_number"), "id_number")
    reason = ident.reason
    declared = date_value(raw("declared_at"), "declared_at", "timestamp", not_future=True)
    move_in = date_value(raw("move_in_date"), "move_in_date", "date")
    household = count_value(raw("household_size"), "household_size", limits().numbers.household_max)
    relation = vocab_value(raw("relation"), "relation", "relation")
    channel = vocab_value(raw("channel"), "channel", "channel")
    typed = {
        "declaration_id": blank_to_null(raw("declaration_id")),
        "id_number": ident.value,
        "id_legacy15": legacy15,
        "name": blank_to_null(raw("name")),
        "phone": normalize_phone(raw("phone")),
        "house_code": F.upper(blank_to_null(raw("house_code"))),
        "address_raw": F.col("address_raw"),
        "address_norm": F.col("address_norm"),
        "addr": F.col("addr"),
        "relation": relation.value,
        "move_in_date": move_in.value,
        "household_size": household.value,
        "channel": channel.value,
        "declared_at": declared.value,
    }
    checks = [
        ("ID_FORMAT", reason == "ID_FORMAT", "id_number"),
        ("ID_CHECKSUM", reason == "ID_CHECKSUM", "id_number"),
        typed_check("declared_at", declared),
        typed_check("move_in_date", move_in),
        typed_check("relation", relation),
        typed_check("channel", channel),
        typed_check("household_size", household),
    ]
    profile = [t.profile for t in (declared, move_in, household, relation, channel)]
    df = with_stages(df, declared, move_in, ident)  # the dates' and the ID's helper columns
    return build(bronze_df, source, DECLARATIONS, typed, checks, prepared=df, profile=profile)


#: the detail of a declaration quarantined for its ID's checksum and nothing else
CHECKSUM_ONLY = "ID_CHECKSUM: id_number"


def checksum_only(flagged: DataFrame) -> DataFrame:
    """The rows of :func:`transform`'s output quarantined for their ID's checksum and nothing else, as
    :data:`schemas.silver.CHECKSUM_FAILED` rows: the DECLARATIONS columns (``id_number`` null) and ``id_text``,
    the ID as delivered (for person linkage). Silver writes them to ``silver._checksum_failed`` the night
    they come. Pure."""
    id_text = F.upper(F.trim(F.from_json(F.col("_raw_line"), "map<string,string>")["id_number"]))
    out = flagged.where(F.col("_reason_detail") == CHECKSUM_ONLY).withColumn("id_text", id_text)
    return out.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in CHECKSUM_FAILED.fields])


def side_tables(flagged: DataFrame) -> dict[str, DataFrame]:
    """Silver's side tables of a declarations batch besides quarantine and duplicates (jobs.silver.runner)."""
    return {CHECKSUM_FAILED_TABLE: checksum_only(flagged)}


def checksum_failed(quarantine_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Declarations in ``silver._quarantine`` whose ONLY reason is the ID's checksum, typed again from the
    quarantine row's delivered values (its ``_raw_line``) as :func:`checksum_only` types them. They stay in
    quarantine; person linkage may tie them to a person (``gold.person_resolution``), and then they count
    for the rules (R1, R2, R5). Silver keeps them typed (:func:`checksum_failed_rows`); this builds that table
    on a lake that has none yet. Pure; restricted values (silver) in, restricted values out."""
    source = source or get_source("declarations")
    q = quarantine_df.where((F.col("source") == "declarations") & (F.col("reason_code") == "ID_CHECKSUM")
                            & (F.col("reason_detail") == CHECKSUM_ONLY))
    values = F.from_json(F.col("_raw_line"), "map<string,string>")
    bronze = q.select(*[values[c].alias(c) for c in source.canonical_columns],
                      F.lit(None).cast("string").alias("_malformed_reason"), "_raw_line",
                      "_source_file", "_file_sha256", "_row_number", "_run_id", "_delivery_date")
    return checksum_only(transform(bronze, source))


def checksum_failed_rows(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """The typed declarations quarantined only for their ID's checksum: ``silver._checksum_failed``; on a lake
    whose silver stage has not run since that table came, typed again from ``silver._quarantine``
    (:func:`checksum_failed`); None with neither table."""
    if io.table_exists(spark, settings, "silver", CHECKSUM_FAILED_TABLE):
        return io.read_table(spark, settings, "silver", CHECKSUM_FAILED_TABLE)
    if io.table_exists(spark, settings, "silver", "_quarantine"):
        return checksum_failed(io.read_table(spark, settings, "silver", "_quarantine"))
    return None
