"""The quality gate keeps only the columns a suite reads before it caches a frame for GX (no Spark)."""

from __future__ import annotations

from gridlake.quality.gate import read_columns
from gridlake.quality.suites import ExpectationSpec, SuiteSpec, load_suite


def exp(type_: str, **kwargs) -> ExpectationSpec:
    return ExpectationSpec(type_, kwargs, "error", "validity")


def test_the_columns_read_are_the_expectations_the_row_ids_and_the_conditions_in_the_frames_order():
    spec = SuiteSpec("silver.t", "silver", "t", (
        exp("expect_column_values_to_not_be_null", column="b"),
        exp("expect_column_pair_values_a_to_be_greater_than_b", column_A="d", column_B="c"),
        exp("expect_compound_columns_to_be_unique", column_list=["e", "f"]),
        exp("expect_column_values_to_be_unique", column="g", row_condition="is_current = true AND `kind`='x'",
            condition_parser="spark"),
        exp("expect_table_row_count_to_be_between", min_value=1),
    ), row_id_columns=("_row_number",))
    columns = ["a", "b", "c", "d", "e", "f", "g", "is_current", "kind", "_row_number", "addr", "_raw_line"]
    assert read_columns(spec, columns) == ["b", "c", "d", "e", "f", "g", "is_current", "kind", "_row_number"]


def test_a_suite_of_table_level_expectations_keeps_one_column_to_count_rows():
    spec = SuiteSpec("gold.t", "gold", "t", (exp("expect_table_row_count_to_be_between", min_value=1),),
                     row_id_columns=())
    assert read_columns(spec, ["x", "y"]) == ["x"]


def test_every_column_of_a_real_suite_that_the_frame_has_is_kept():
    spec = load_suite("silver", "declarations")
    assert spec is not None
    wanted = {c for e in spec.expectations for c in e.columns}
    columns = sorted(wanted | set(spec.derived) | {"address_raw", "addr", "_raw_line"})
    kept = read_columns(spec, columns)
    assert wanted <= set(kept) and not {"address_raw", "addr", "_raw_line"} & set(kept)
