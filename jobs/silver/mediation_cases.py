"""silver.mediation_cases: invalid party IDs are dropped from the list and counted; the case stays."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, normalize_id_list, optional_raw, person_list
from jobs.silver.common import build, raw, typed_check, with_address
from jobs.silver.values import date_value, invalid_ids_profile, with_stages
from schemas.silver import MEDIATION_CASES


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a mediation-case delivery."""
    source = source or get_source("mediation_cases")
    # the persons list is computed below the address parsing (a Python UDF): computed in the same projection
    # above it, Spark 4.2 gave the IDs the wrong positions (a leading empty ID dropped: IDs shifted by one)
    persons = person_list(optional_raw(bronze_df, "parties"), optional_raw(bronze_df, "party_phones"), raw("party_ids"))
    df = with_address(bronze_df.withColumn("__persons", persons)).withColumn("__ids", normalize_id_list(raw("party_ids")))
    opened = date_value(raw("opened_at"), "opened_at", "date", not_future=True)
    typed = {
        "case_id": blank_to_null(raw("case_id")),
        "opened_at": opened.value,
        "address_raw": F.col("address_raw"), "address_norm": F.col("address_norm"), "addr": F.col("addr"),
        "dispute_type": blank_to_null(raw("dispute_type")),
        "parties": blank_to_null(raw("parties")),
        "party_ids": F.col("__ids.ids"),
        "invalid_person_ids": F.col("__ids.invalid"),
        "persons": F.col("__persons"),
    }
    profile = [opened.profile, invalid_ids_profile(F.col("__ids.invalid"), "party_ids")]
    df = with_stages(df, opened)  # the dates' helper columns (jobs.silver.values.date_value)
    return build(bronze_df, source, MEDIATION_CASES, typed, [typed_check("opened_at", opened)], prepared=df,
                 profile=profile)
