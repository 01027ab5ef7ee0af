"""silver.safety_inspections: work-safety findings with severity codes."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null
from jobs.silver.common import build, raw, typed_check, with_address
from jobs.silver.values import date_value, vocab_value, with_stages
from schemas.silver import SAFETY_INSPECTIONS


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a safety-inspection delivery."""
    source = source or get_source("safety_inspections")
    df = with_address(bronze_df)
    inspected = date_value(raw("inspected_at"), "inspected_at", "date", not_future=True)
    severity = vocab_value(raw("severity"), "severity", "safety_severity")
    typed = {
        "inspection_id": blank_to_null(raw("inspection_id")),
        "inspected_at": inspected.value,
        "address_raw": F.col("address_raw"), "address_norm": F.col("address_norm"), "addr": F.col("addr"),
        "finding": blank_to_null(raw("finding")),
        "severity": severity.value,
    }
    checks = [typed_check("inspected_at", inspected), typed_check("severity", severity)]
    df = with_stages(df, inspected)  # the dates' helper columns (jobs.silver.values.date_value)
    return build(bronze_df, source, SAFETY_INSPECTIONS, typed, checks, prepared=df,
                 profile=[inspected.profile, severity.profile])
