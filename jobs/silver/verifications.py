"""silver.verifications: officers' field checks with outcome codes."""

from __future__ import annotations

from pyspark.sql import DataFrame

from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, map_vocab, parse_timestamp
from jobs.silver.common import build, date_check, raw, vocab_check
from schemas.silver import VERIFICATIONS
from schemas.vocab import VERIFICATION_OUTCOME


def transform(bronze_df: DataFrame, source: Source | None = None) -> DataFrame:
    """Flagged silver rows of a verification delivery."""
    source = source or get_source("verifications")
    typed = {
        "verification_id": blank_to_null(raw("verification_id")),
        "discrepancy_id": blank_to_null(raw("discrepancy_id")),
        "checked_at": parse_timestamp(raw("checked_at")),
        "outcome": map_vocab(raw("outcome"), VERIFICATION_OUTCOME),
        "officer_id": blank_to_null(raw("officer_id")),
        "note": blank_to_null(raw("note")),
    }
    checks = [date_check("checked_at", typed["checked_at"]), vocab_check("outcome", typed["outcome"])]
    return build(bronze_df, source, VERIFICATIONS, typed, checks)
