"""silver.housing: the house registry snapshot, typed and standardised (SCD2 applied by the runner)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null
from jobs.silver.common import build, overlay_components, raw, typed_check, with_address
from jobs.silver.values import area_value, date_value, vocab_value, with_stages
from schemas.silver import HOUSING

_DELIVERED = ("street", "community", "road", "door_no", "complex", "village", "lane", "building", "unit", "floor",
              "room")


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a housing delivery (see :func:`jobs.silver.common.build`)."""
    source = source or get_source("housing")
    df = with_address(bronze_df)
    usage = vocab_value(raw("usage"), "usage", "house_usage")
    legal = vocab_value(raw("legal_status"), "legal_status", "house_legal")
    status = vocab_value(raw("status"), "status", "house_status")
    area = area_value(raw("area_m2"), "area_m2")
    updated = date_value(raw("updated_at"), "updated_at", "date", not_future=True)
    typed = {
        "house_code": F.upper(blank_to_null(raw("house_code"))),
        "street": blank_to_null(raw("street")),
        "community": blank_to_null(raw("community")),
        "grid_id": blank_to_null(raw("grid_id")),
        "address_raw": F.col("address_raw"),
        "address_norm": F.col("address_norm"),
        "addr": overlay_components(F.col("addr"), {c: raw(c) for c in _DELIVERED}),
        "usage": usage.value,
        "legal_status": legal.value,
        "area_m2": area.value,
        "status": status.value,
        "updated_at": updated.value,
    }
    checks = [typed_check(c, t) for c, t in (("usage", usage), ("legal_status", legal), ("status", status),
                                             ("area_m2", area), ("updated_at", updated))]
    profile = [t.profile for t in (usage, legal, status, area, updated)]
    df = with_stages(df, updated)  # the dates' helper columns (jobs.silver.values.date_value)
    return build(bronze_df, source, HOUSING, typed, checks, prepared=df, profile=profile)
