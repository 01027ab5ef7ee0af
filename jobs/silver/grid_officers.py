"""silver.grid_officers: one officer per grid, snapshot (SCD2 applied by the runner)."""

from __future__ import annotations

from pyspark.sql import DataFrame

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, normalize_phone
from jobs.silver.common import build, raw
from schemas.silver import GRID_OFFICERS


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a grid-officer delivery; an unusable work phone becomes null."""
    source = source or get_source("grid_officers")
    typed = {
        "grid_id": blank_to_null(raw("grid_id")),
        "street": blank_to_null(raw("street")),
        "community": blank_to_null(raw("community")),
        "officer_id": blank_to_null(raw("officer_id")),
        "officer_name": blank_to_null(raw("officer_name")),
        "work_phone": normalize_phone(raw("work_phone")),
    }
    return build(bronze_df, source, GRID_OFFICERS, typed)
