"""silver.family_planning: an invalid person ID is dropped (null) and counted; the record stays."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, normalize_id, parse_date
from jobs.silver.common import build, date_check, raw, with_address
from schemas.silver import FAMILY_PLANNING


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a family-planning delivery."""
    source = source or get_source("family_planning")
    df = with_address(bronze_df)
    pid = normalize_id(raw("person_id"))
    typed = {
        "record_id": blank_to_null(raw("record_id")),
        "record_date": parse_date(raw("record_date")),
        "address_raw": F.col("address_raw"), "address_norm": F.col("address_norm"), "addr": F.col("addr"),
        "person_id": pid,
        "invalid_person_ids": F.when(blank_to_null(raw("person_id")).isNotNull() & pid.isNull(), 1).otherwise(0),
        "matter": blank_to_null(raw("matter")),
    }
    return build(bronze_df, source, FAMILY_PLANNING, typed, [date_check("record_date", typed["record_date"])],
                 prepared=df)
