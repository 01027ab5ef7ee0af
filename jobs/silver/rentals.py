"""silver.rentals: rental registrations (increment, upsert by rental_id, latest by registered_at)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import (
    blank_to_null,
    map_vocab,
    normalize_id,
    normalize_phone,
    parse_date,
    parse_timestamp,
    to_int,
)
from jobs.silver.common import build, date_check, number_check, raw, vocab_check, with_address
from schemas.silver import RENTALS
from schemas.vocab import RENTAL_STATUS


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a rentals delivery; an invalid landlord ID becomes null (the rental stays)."""
    source = source or get_source("rentals")
    df = with_address(bronze_df)
    typed = {
        "rental_id": blank_to_null(raw("rental_id")),
        "house_code": F.upper(blank_to_null(raw("house_code"))),
        "address_raw": F.col("address_raw"),
        "address_norm": F.col("address_norm"),
        "addr": F.col("addr"),
        "landlord_name": blank_to_null(raw("landlord_name")),
        "landlord_id": normalize_id(raw("landlord_id")),
        "landlord_phone": normalize_phone(raw("landlord_phone")),
        "lease_start": parse_date(raw("lease_start")),
        "lease_end": parse_date(raw("lease_end")),
        "tenants_declared": to_int(raw("tenants_declared")),
        "status": map_vocab(raw("status"), RENTAL_STATUS),
        "registered_at": parse_timestamp(raw("registered_at")),
    }
    checks = [
        date_check("lease_start", typed["lease_start"]),
        date_check("lease_end", typed["lease_end"]),
        date_check("registered_at", typed["registered_at"]),
        number_check("tenants_declared", typed["tenants_declared"]),
        vocab_check("status", typed["status"]),
    ]
    return build(bronze_df, source, RENTALS, typed, checks, prepared=df)
