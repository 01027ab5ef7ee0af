"""silver.rentals: rental registrations (increment, upsert by rental_id, latest by registered_at)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, normalize_id, normalize_phone
from jobs.silver.common import build, raw, typed_check, with_address
from jobs.silver.values import count_value, date_value, vocab_value, with_stages
from schemas.silver import RENTALS


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a rentals delivery; an invalid landlord ID becomes null (the rental stays).

    ``registered_at`` after the delivery day (plus tolerance) is DATE_IN_FUTURE; lease dates may lie ahead.
    """
    source = source or get_source("rentals")
    df = with_address(bronze_df)
    start = date_value(raw("lease_start"), "lease_start", "date")
    end = date_value(raw("lease_end"), "lease_end", "date")
    registered = date_value(raw("registered_at"), "registered_at", "timestamp", not_future=True)
    tenants = count_value(raw("tenants_declared"), "tenants_declared")
    status = vocab_value(raw("status"), "status", "rental_status")
    typed = {
        "rental_id": blank_to_null(raw("rental_id")),
        "house_code": F.upper(blank_to_null(raw("house_code"))),
        "address_raw": F.col("address_raw"),
        "address_norm": F.col("address_norm"),
        "addr": F.col("addr"),
        "landlord_name": blank_to_null(raw("landlord_name")),
        "landlord_id": normalize_id(raw("landlord_id")),
        "landlord_phone": normalize_phone(raw("landlord_phone")),
        "lease_start": start.value,
        "lease_end": end.value,
        "tenants_declared": tenants.value,
        "status": status.value,
        "registered_at": registered.value,
    }
    checks = [typed_check(c, t) for c, t in (("lease_start", start), ("lease_end", end),
                                             ("registered_at", registered), ("tenants_declared", tenants),
                                             ("status", status))]
    profile = [t.profile for t in (start, end, registered, tenants, status)]
    df = with_stages(df, start, end, registered)  # the dates' helper columns (jobs.silver.values.date_value)
    return build(bronze_df, source, RENTALS, typed, checks, prepared=df, profile=profile)
