"""silver.declarations: residents' self-declarations; an invalid ID number quarantines the declaration."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gridlake.sources import Source, get_source
from jobs.silver.columns import (
    blank_to_null,
    id_reason,
    is_legacy15,
    map_vocab,
    normalize_id,
    normalize_phone,
    parse_date,
    parse_timestamp,
    to_int,
)
from jobs.silver.common import build, date_check, number_check, raw, vocab_check, with_address
from schemas.silver import DECLARATIONS
from schemas.vocab import CHANNEL, RELATION


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a declarations delivery (ID_FORMAT / ID_CHECKSUM quarantined)."""
    source = source or get_source("declarations")
    df = with_address(bronze_df)
    reason = id_reason(raw("id_number"))
    typed = {
        "declaration_id": blank_to_null(raw("declaration_id")),
        "id_number": normalize_id(raw("id_number")),
        "id_legacy15": is_legacy15(raw("id_number")),
        "name": blank_to_null(raw("name")),
        "phone": normalize_phone(raw("phone")),
        "house_code": F.upper(blank_to_null(raw("house_code"))),
        "address_raw": F.col("address_raw"),
        "address_norm": F.col("address_norm"),
        "addr": F.col("addr"),
        "relation": map_vocab(raw("relation"), RELATION),
        "move_in_date": parse_date(raw("move_in_date")),
        "household_size": to_int(raw("household_size")),
        "channel": map_vocab(raw("channel"), CHANNEL),
        "declared_at": parse_timestamp(raw("declared_at")),
    }
    checks = [
        ("ID_FORMAT", reason == "ID_FORMAT", "id_number"),
        ("ID_CHECKSUM", reason == "ID_CHECKSUM", "id_number"),
        date_check("declared_at", typed["declared_at"]),
        date_check("move_in_date", typed["move_in_date"]),
        vocab_check("relation", typed["relation"]),
        vocab_check("channel", typed["channel"]),
        number_check("household_size", typed["household_size"]),
    ]
    return build(bronze_df, source, DECLARATIONS, typed, checks, prepared=df)
