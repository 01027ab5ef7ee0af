"""silver.family_planning: person IDs (one or a list) validated; invalid ones dropped and counted; the record stays."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, normalize_id_list, optional_raw, person_list
from jobs.silver.common import build, raw, typed_check, with_address
from jobs.silver.values import date_value, invalid_ids_profile, with_stages
from schemas.silver import FAMILY_PLANNING


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a family-planning delivery (``person_id``: valid IDs joined by ';', as police)."""
    source = source or get_source("family_planning")
    # the persons list is computed below the address parsing (a Python UDF): computed in the same projection
    # above it, Spark 4.2 gave the IDs the wrong positions (a leading empty ID dropped: IDs shifted by one)
    persons = person_list(optional_raw(bronze_df, "person_name"), optional_raw(bronze_df, "person_phone"), raw("person_id"))
    df = with_address(bronze_df.withColumn("__persons", persons)).withColumn("__ids", normalize_id_list(raw("person_id")))
    recorded = date_value(raw("record_date"), "record_date", "date", not_future=True)
    typed = {
        "record_id": blank_to_null(raw("record_id")),
        "record_date": recorded.value,
        "address_raw": F.col("address_raw"), "address_norm": F.col("address_norm"), "addr": F.col("addr"),
        "person_id": F.col("__ids.ids"),
        "invalid_person_ids": F.col("__ids.invalid"),
        "persons": F.col("__persons"),
        "matter": blank_to_null(raw("matter")),
    }
    profile = [recorded.profile, invalid_ids_profile(F.col("__ids.invalid"), "person_id")]
    df = with_stages(df, recorded)  # the dates' helper columns (jobs.silver.values.date_value)
    return build(bronze_df, source, FAMILY_PLANNING, typed, [typed_check("record_date", recorded)], prepared=df,
                 profile=profile)
