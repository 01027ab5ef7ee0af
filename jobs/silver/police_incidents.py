"""silver.police_incidents: invalid person IDs are dropped from the list and counted; the incident stays."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, normalize_id_list, optional_raw, person_list
from jobs.silver.common import build, raw, typed_check, with_address
from jobs.silver.values import date_value, invalid_ids_profile, with_stages
from schemas.silver import POLICE_INCIDENTS


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a police-incident delivery (a report dated after the delivery is DATE_IN_FUTURE)."""
    source = source or get_source("police_incidents")
    # the persons list is computed below the address parsing (a Python UDF): computed in the same projection
    # above it, Spark 4.2 gave the IDs the wrong positions (a leading empty ID dropped: IDs shifted by one)
    persons = person_list(optional_raw(bronze_df, "person_names"), optional_raw(bronze_df, "person_phones"), raw("person_ids"))
    df = with_address(bronze_df.withColumn("__persons", persons)).withColumn("__ids", normalize_id_list(raw("person_ids")))
    reported = date_value(raw("reported_at"), "reported_at", "timestamp", not_future=True)
    typed = {
        "incident_id": blank_to_null(raw("incident_id")),
        "reported_at": reported.value,
        "address_raw": F.col("address_raw"), "address_norm": F.col("address_norm"), "addr": F.col("addr"),
        "incident_type": blank_to_null(raw("incident_type")),
        "person_ids": F.col("__ids.ids"),
        "invalid_person_ids": F.col("__ids.invalid"),
        "persons": F.col("__persons"),
    }
    profile = [reported.profile, invalid_ids_profile(F.col("__ids.invalid"), "person_ids")]
    df = with_stages(df, reported)  # the dates' helper columns (jobs.silver.values.date_value)
    return build(bronze_df, source, POLICE_INCIDENTS, typed, [typed_check("reported_at", reported)], prepared=df,
                 profile=profile)
