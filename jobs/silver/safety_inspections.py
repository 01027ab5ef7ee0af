"""silver.safety_inspections: work-safety findings with severity codes."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, map_vocab, parse_date
from jobs.silver.common import build, date_check, raw, vocab_check, with_address
from schemas.silver import SAFETY_INSPECTIONS
from schemas.vocab import SAFETY_SEVERITY


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a safety-inspection delivery."""
    source = source or get_source("safety_inspections")
    df = with_address(bronze_df)
    typed = {
        "inspection_id": blank_to_null(raw("inspection_id")),
        "inspected_at": parse_date(raw("inspected_at")),
        "address_raw": F.col("address_raw"), "address_norm": F.col("address_norm"), "addr": F.col("addr"),
        "finding": blank_to_null(raw("finding")),
        "severity": map_vocab(raw("severity"), SAFETY_SEVERITY),
    }
    checks = [date_check("inspected_at", typed["inspected_at"]), vocab_check("severity", typed["severity"])]
    return build(bronze_df, source, SAFETY_INSPECTIONS, typed, checks, prepared=df)
