"""Which suites GX may validate on pandas (gridlake/quality/engines.py), without Spark running."""

from __future__ import annotations

import pandas as pd
import pytest
from pyspark.sql.types import BooleanType, DateType, LongType, StringType, StructField, StructType

from gridlake.quality.engines import pandas_condition, pandas_plan, portable_regex
from gridlake.quality.suites import ExpectationSpec

SCHEMA = StructType([StructField("code", StringType()), StructField("is_current", BooleanType()),
                     StructField("level", StringType()), StructField("n", LongType()),
                     StructField("valid_from", DateType()), StructField("_row_number", LongType())])


@pytest.mark.parametrize(("spark_sql", "rows"), [
    ("is_current = true", [0]),
    ("level = 'grid'", [0, 1]),
    ("level = 'grid' AND n != 2", [0]),
    ("level <> 'grid' or is_current = false", [2]),
    ("n == -1", []),
])
def test_a_simple_spark_condition_selects_the_same_rows_in_pandas_with_sql_nulls(spark_sql, rows):
    df = pd.DataFrame({"is_current": [True, None, False, None], "level": ["grid", "grid", "street", None],
                       "n": [1.0, 2.0, float("nan"), 4.0]})
    query, columns = pandas_condition(spark_sql)
    assert columns <= set(df.columns)
    assert list(df.query(query).index) == rows


@pytest.mark.parametrize("spark_sql", ["is_current IS NOT NULL", "(level = 'grid')", "upper(level) = 'GRID'",
                                       "n > 3", "level = grid", "level = 'it''s'", "level in ('a', 'b')"])
def test_anything_else_is_not_translated(spark_sql):
    assert pandas_condition(spark_sql) is None


def test_only_regex_syntax_java_and_python_read_alike_is_portable():
    assert portable_regex("^[0-9a-f]{64}$") and portable_regex("^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$")
    assert portable_regex(r"^[0-9]{4}\*+[0-9X]{4}$")  # an escaped star, then one or more of it
    for regex in (r"^\d{6}$", r"\w+", r"(?i)abc", r"\p{IsHan}+", "a++", "[a-z&&[^e]]", "^[0-9]{3}号$", r"\bx",
                  r"a\\*+", "x{2}+"):
        assert not portable_regex(regex), regex


def test_the_plan_collects_only_what_the_suite_reads_and_rewrites_its_conditions():
    exps = [ExpectationSpec("expect_column_values_to_be_unique",
                            {"column": "code", "row_condition": "is_current = true", "condition_parser": "spark"},
                            "error", "uniqueness"),
            ExpectationSpec("expect_column_values_to_be_between",
                            {"column": "valid_from", "max_value": {"$PARAMETER": "run_date"}}, "error", "timeliness")]
    plan, why = pandas_plan(exps, SCHEMA, ["_row_number", "_source_file"])
    assert why == "" and plan.columns == ("code", "is_current", "valid_from", "_row_number")
    rewritten = plan.kwargs[exps[0].key]
    assert rewritten["condition_parser"] == "pandas" and rewritten["row_condition"] == "(`is_current` == True)"
    assert exps[0].kwargs["condition_parser"] == "spark"  # the spec itself is not changed


def test_a_missing_column_or_an_unchecked_kind_keeps_the_suite_on_spark():
    missing = ExpectationSpec("expect_column_values_to_not_be_null", {"column": "nope"}, "error", "completeness")
    other = ExpectationSpec("expect_column_mean_to_be_between", {"column": "n", "min_value": 1}, "warning", "accuracy")
    for exp in (missing, other):
        plan, why = pandas_plan([exp], SCHEMA, [])
        assert plan is None and why.startswith(exp.key)
