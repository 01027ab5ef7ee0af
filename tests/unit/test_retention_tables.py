"""The retention rules name the silver side tables the silver stage writes (no Spark)."""

from __future__ import annotations

import datetime as dt

from gridlake.config import RetentionConfig
from gridlake.lifecycle import retention
from jobs.silver.runner import DERIVED_SIDE_TABLES, DUPLICATES_TABLE, QUARANTINE_TABLE


def test_every_side_table_of_silver_has_a_retention_rule():
    assert set(retention.SILVER_SIDE) == {QUARANTINE_TABLE, DUPLICATES_TABLE}
    assert set(retention.SILVER_TYPED_SIDE) == set(DERIVED_SIDE_TABLES)


def test_typed_quarantine_rows_expire_with_the_raw_lines_they_were_typed_from():
    cfg = RetentionConfig()
    today = dt.date(2026, 6, 1)
    stripped, _ = retention.quarantine_expired(today, cfg, ["_raw_line"])
    day = retention.cutoff(today, cfg.quarantine_raw_days).isoformat()
    assert retention.typed_quarantine_expired(today, cfg) == f"_delivery_date < DATE'{day}'"
    assert stripped.startswith(f"_delivery_date < DATE'{day}'")
