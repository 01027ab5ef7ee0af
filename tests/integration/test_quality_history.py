"""quality.results as the memory of earlier nights' row counts (the volume band's input)."""

from __future__ import annotations

import datetime as dt

import pytest

from gridlake.quality import history

pytestmark = pytest.mark.spark

UTC = dt.UTC


def _row(run_id: str, night: str, table: str, expectation: str, n: int | None, at: str) -> dict:
    return {"run_id": run_id, "run_date": dt.date.fromisoformat(night), "layer": "silver", "table": table,
            "suite": f"silver.{table}", "expectation": expectation, "expectation_type": expectation,
            "dimension": "volume", "severity": "warning", "success": True, "skipped": False, "element_count": n,
            "unexpected_count": 0, "unexpected_percent": 0.0,
            "validated_at": dt.datetime.fromisoformat(at).replace(tzinfo=UTC)}


def test_previous_counts_take_each_nights_latest_validation_newest_first(spark, settings):
    assert history.previous_counts(spark, settings, "silver", "housing", dt.date(2026, 11, 5), 3) == []
    count = history.ROW_COUNT
    history.append_results(spark, settings, [
        _row("a__2026-11-01", "2026-11-01", "housing", count, 100, "2026-11-01 17:00:00"),
        _row("a__2026-11-02", "2026-11-02", "housing", count, 90, "2026-11-02 17:00:00"),
        # the night rerun later: its count is the night's
        _row("b__2026-11-02", "2026-11-02", "housing", count, 95, "2026-11-02 18:30:00"),
        _row("a__2026-11-03", "2026-11-03", "housing", count, 120, "2026-11-03 17:00:00"),
        _row("a__2026-11-03", "2026-11-03", "housing", "expect_column_values_to_not_be_null(house_code)", 7,
             "2026-11-03 17:00:00"),  # another expectation's element count
        _row("a__2026-11-03", "2026-11-03", "rentals", count, 40, "2026-11-03 17:00:00"),
        _row("c__2026-11-04", "2026-11-04", "housing", count, None, "2026-11-04 17:00:00"),  # skipped: no count
        _row("a__2026-11-05", "2026-11-05", "housing", count, 5, "2026-11-05 17:00:00"),  # tonight: not history
    ])
    night = dt.date(2026, 11, 5)
    assert history.previous_counts(spark, settings, "silver", "housing", night, 5) == [120, 95, 100]
    assert history.previous_counts(spark, settings, "silver", "housing", night, 2) == [120, 95]
    assert history.previous_counts(spark, settings, "silver", "rentals", night, 5) == [40]
    assert history.previous_counts(spark, settings, "silver", "housing", dt.date(2026, 11, 2), 5) == [100]
