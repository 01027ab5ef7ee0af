"""Suites in expectations/ are valid data; sanitising and the volume band, without Spark."""

from __future__ import annotations

import pytest

from gridlake.quality import DIMENSIONS
from gridlake.quality.history import volume_band
from gridlake.quality.sanitise import MAX_ROW_IDS, assert_clean, sanitise_suite_result
from gridlake.quality.suites import SuiteError, _parse, all_suites, build_suite, load_suite

BRONZE = {"housing", "rentals", "declarations", "police_incidents", "mediation_cases", "safety_inspections",
          "family_planning", "grid_officers", "verifications"}
GOLD = {"house_resolution", "discrepancies", "followups", "house_profile", "grid_metrics", "person_resolution"}


def test_one_suite_per_bronze_silver_and_gold_table():
    names = {s.name for s in all_suites()}
    expected = {f"bronze.{t}" for t in BRONZE} | {f"silver.{t}" for t in BRONZE} | {f"gold.{t}" for t in GOLD}
    assert expected <= names


def test_every_suite_builds_and_the_six_dimensions_are_covered():
    seen = set()
    for spec in all_suites():
        suite = build_suite(spec)
        assert len(suite.expectations) == len(spec.expectations)
        seen |= {e.dimension for e in spec.expectations}
        assert {e.severity for e in spec.expectations} <= {"error", "warning"}
    assert seen == set(DIMENSIONS)


def test_housing_suite_declares_the_current_row_uniqueness_and_future_date_checks():
    spec = load_suite("silver", "housing")
    keys = {e.key: e for e in spec.expectations}
    uniq = keys["expect_column_values_to_be_unique(house_code | is_current = true)"]
    assert uniq.severity == "error" and uniq.dimension == "uniqueness"
    assert any(e.parameters() == {"run_date"} and e.dimension == "timeliness" for e in spec.expectations)
    assert any(e.parameters() == {"volume_min", "volume_max"} for e in spec.expectations)


@pytest.mark.parametrize("bad, message", [
    ({"type": "expect_nothing_at_all", "kwargs": {}, "severity": "error", "dimension": "validity"}, "unknown expectation"),
    ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "severity": "fatal",
      "dimension": "validity"}, "severity"),
    ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "severity": "error",
      "dimension": "beauty"}, "dimension"),
    ({"type": "expect_column_max_to_be_between", "kwargs": {"column": "a", "max_value": {"$PARAMETER": "today"}},
      "severity": "error", "dimension": "timeliness"}, "unknown suite parameter"),
])
def test_malformed_suites_are_refused_with_a_message(bad, message):
    with pytest.raises(SuiteError, match=message):
        _parse({"suite": "silver.x", "expectations": [bad]}, "x.yaml")


def _raw_result():
    return {
        "success": False,
        "suite_name": "silver.declarations",
        "statistics": {"evaluated_expectations": 2},
        "meta": {},
        "results": [
            {"success": False,
             "expectation_config": {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "phone"}},
             "result": {"element_count": 3, "unexpected_count": 30, "unexpected_percent": 10.0,
                        "partial_unexpected_list": ["13912345678"], "unexpected_list": ["13912345678"],
                        "partial_unexpected_counts": [{"value": "13912345678", "count": 1}],
                        "partial_unexpected_index_list": [
                            {"_row_number": list(range(30)), "_source_file": ["f.csv"] * 30, "phone": ["13912345678"] * 30}],
                        "unexpected_index_query": "df.filter(phone == '13912345678')"},
             "exception_info": {"raised_exception": True, "exception_message": "ValueError: bad 13912345678"}},
            {"success": False,
             "expectation_config": {"type": "expect_column_max_to_be_between", "kwargs": {"column": "name"}},
             "result": {"observed_value": "张三"}},
        ],
    }


def test_sanitise_keeps_counts_and_row_ids_only():
    clean = sanitise_suite_result(_raw_result(), ["_source_file", "_row_number"])
    assert "13912345678" not in str(clean) and "张三" not in str(clean)
    first = clean["results"][0]["result"]
    assert first["unexpected_count"] == 30
    assert len(first["failing_row_ids"]) == MAX_ROW_IDS
    assert first["failing_row_ids"][0] == {"_source_file": "f.csv", "_row_number": 0}
    assert clean["results"][0]["exception_info"]["exception_message"] == "ValueError"
    assert "observed_value" not in clean["results"][1]["result"]


def test_assert_clean_refuses_raw_value_keys():
    with pytest.raises(ValueError, match="partial_unexpected_list"):
        assert_clean({"results": [{"result": {"partial_unexpected_list": []}}]})


def test_volume_band_needs_history_then_brackets_the_median():
    assert volume_band([100, 120], 0.5, 2.0, 3) == (0, None)
    assert volume_band([100, 120, 80, 1000], 0.5, 2.0, 3) == (55, 220)
