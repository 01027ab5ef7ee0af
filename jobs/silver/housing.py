"""silver.housing: the house registry snapshot, typed and standardised (SCD2 applied by the runner)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, map_vocab, parse_date, to_double
from jobs.silver.common import (
    build,
    date_check,
    number_check,
    overlay_components,
    raw,
    vocab_check,
    with_address,
)
from schemas.silver import HOUSING
from schemas.vocab import HOUSE_LEGAL, HOUSE_STATUS, HOUSE_USAGE

_DELIVERED = ("street", "community", "road", "door_no", "complex", "village", "lane", "building", "unit", "floor",
              "room")


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a housing delivery (see :func:`jobs.silver.common.build`)."""
    source = source or get_source("housing")
    df = with_address(bronze_df)
    typed = {
        "house_code": F.upper(blank_to_null(raw("house_code"))),
        "street": blank_to_null(raw("street")),
        "community": blank_to_null(raw("community")),
        "grid_id": blank_to_null(raw("grid_id")),
        "address_raw": F.col("address_raw"),
        "address_norm": F.col("address_norm"),
        "addr": overlay_components(F.col("addr"), {c: raw(c) for c in _DELIVERED}),
        "usage": map_vocab(raw("usage"), HOUSE_USAGE),
        "legal_status": map_vocab(raw("legal_status"), HOUSE_LEGAL),
        "area_m2": to_double(raw("area_m2")),
        "status": map_vocab(raw("status"), HOUSE_STATUS),
        "updated_at": parse_date(raw("updated_at")),
    }
    checks = [
        vocab_check("usage", typed["usage"]),
        vocab_check("legal_status", typed["legal_status"]),
        vocab_check("status", typed["status"]),
        number_check("area_m2", typed["area_m2"]),
        date_check("updated_at", typed["updated_at"]),
    ]
    return build(bronze_df, source, HOUSING, typed, checks, prepared=df)
