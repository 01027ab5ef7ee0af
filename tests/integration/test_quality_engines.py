"""GX's pandas and Spark engines give the same verdicts on what gridlake validates (gridlake/quality/engines.py).

One frame with planted failures of every expectation kind in ``PORTABLE_TYPES`` (nulls, duplicates, values
out of set and band, future dates against the night's date parameter, a regex miss, a pair out of order, a
row condition) is validated on Spark and, through the pandas plan, on pandas: every expectation must have
the same outcome, unexpected count and failing row ids.
"""

from __future__ import annotations

import datetime as dt

import pytest

from gridlake.quality import gx
from gridlake.quality.engines import PORTABLE_TYPES, pandas_parameters, pandas_plan, to_pandas_frame
from gridlake.quality.sanitise import row_ids
from gridlake.quality.suites import ExpectationSpec, SuiteSpec, build_suite

pytestmark = pytest.mark.spark

DDL = ("code string, grid string, status string, area double, n long, is_current boolean, level string, "
       "valid_from date, valid_to date, seen_at timestamp, sha string, _source_file string, _row_number long")
D = dt.date
RUN = {"run_date": "2024-05-01", "run_date_next": "2024-05-02", "volume_min": 2, "volume_max": 100}


def _rows() -> list[tuple]:
    t = dt.datetime
    base = [
        ("H1", "G1", "in_use", 60.0, 1, True, "grid", D(2024, 1, 1), None, t(2024, 4, 30, 23, 59), "ab" * 32),
        ("H1", "G1", "in_use", 61.0, 2, True, "grid", D(2023, 1, 1), D(2024, 1, 1), t(2024, 5, 1, 0, 0), "ab" * 32),
        ("H2", None, "gone", 5.0, 3, False, "grid", D(2024, 5, 2), D(2024, 4, 1), t(2024, 5, 1, 8, 0), "AB" * 32),
        ("H3", "G2", None, None, None, None, "street", D(2024, 5, 1), None, None, "zz"),
        ("H4", "G2", "demolished", 20001.0, 5, True, "grid", D(2024, 2, 1), D(9999, 12, 31), t(2024, 5, 2), None),
        (None, "G3", "in_use", 3.0, 6, False, None, D(1900, 1, 1), D(1900, 1, 2), t(2024, 1, 1), "ab" * 32),
        ("H5", "G3", "in_use", 70.0, 6, True, "grid", D(2024, 3, 1), None, t(2024, 3, 1), "c" * 64),
    ]
    return [(*r, "f.csv", i + 1) for i, r in enumerate(base)]


def _spec(etype: str, **kwargs) -> ExpectationSpec:
    return ExpectationSpec(etype, kwargs, "error", "validity")


EXPECTATIONS = [
    _spec("expect_column_values_to_not_be_null", column="grid"),
    _spec("expect_column_values_to_not_be_null", column="area", mostly=0.9),
    _spec("expect_column_values_to_be_null", column="valid_to"),
    _spec("expect_column_values_to_be_unique", column="code"),
    _spec("expect_column_values_to_be_unique", column="code", row_condition="is_current = true",
          condition_parser="spark"),
    _spec("expect_column_values_to_not_be_null", column="grid", row_condition="level = 'grid' and n != 1",
          condition_parser="spark"),
    _spec("expect_compound_columns_to_be_unique", column_list=["code", "grid"]),
    _spec("expect_compound_columns_to_be_unique", column_list=["sha", "_row_number"]),
    _spec("expect_column_values_to_be_in_set", column="status", value_set=["in_use", "demolished"]),
    _spec("expect_column_values_to_be_in_set", column="is_current", value_set=[True]),
    _spec("expect_column_values_to_be_between", column="area", min_value=3, max_value=20000),
    _spec("expect_column_values_to_be_between", column="n", min_value=2, max_value=5, mostly=0.5),
    _spec("expect_column_values_to_be_between", column="valid_from", max_value={"$PARAMETER": "run_date"}),
    _spec("expect_column_values_to_be_between", column="valid_to", max_value={"$PARAMETER": "run_date_next"}),
    _spec("expect_column_values_to_be_between", column="seen_at", max_value={"$PARAMETER": "run_date"}),
    _spec("expect_column_values_to_match_regex", column="sha", regex="^[0-9a-f]{64}$"),
    _spec("expect_column_values_to_match_regex", column="code", regex="^(H[0-9]|X)$"),
    _spec("expect_column_values_to_match_regex", column="grid", regex=r"^G[12]\*?$"),
    _spec("expect_column_pair_values_a_to_be_greater_than_b", column_A="valid_to", column_B="valid_from",
          or_equal=True, ignore_row_if="either_value_is_missing"),
    _spec("expect_column_pair_values_a_to_be_greater_than_b", column_A="area", column_B="n"),
    _spec("expect_table_row_count_to_be_between", min_value={"$PARAMETER": "volume_min"},
          max_value={"$PARAMETER": "volume_max"}),
]
SUITE = SuiteSpec(name="silver.engines", layer="silver", table="engines", expectations=tuple(EXPECTATIONS))
ID_COLUMNS = ["_source_file", "_row_number"]


def _validate(context, source: str, frame, params, kwargs_by_key=None) -> dict[str, tuple]:
    asset = context.data_sources.get(source).add_dataframe_asset(source)
    batch = asset.add_batch_definition_whole_dataframe(source)
    suite = context.suites.add(build_suite(SUITE, list(EXPECTATIONS), kwargs_by_key))
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=source, data=batch, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=source, validation_definitions=[vd], actions=[],
        result_format={"result_format": "COMPLETE", "exclude_unexpected_values": True,
                       "unexpected_index_column_names": ID_COLUMNS, "return_unexpected_index_query": False}))
    result = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=params)
    context.suites.delete(SUITE.name)
    out = {}
    for r in next(iter(result.run_results.values())).to_json_dict()["results"]:
        res = r["result"]
        ids = sorted(int(e["_row_number"]) for e in row_ids(res, ID_COLUMNS))
        out[r["expectation_config"]["meta"]["gridlake_key"]] = (
            r["success"], res.get("unexpected_count"), res.get("observed_value"), ids,
            bool(r["exception_info"].get("raised_exception")))
    return out


def test_every_portable_kind_gives_the_same_verdict_on_pandas_and_spark(spark):
    assert {e.type for e in EXPECTATIONS} == PORTABLE_TYPES
    df = spark.createDataFrame(_rows(), DDL)
    plan, why = pandas_plan(list(EXPECTATIONS), df.schema, ID_COLUMNS)
    assert plan is not None, why
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_spark("spark_engine")
    context.data_sources.add_pandas("pandas_engine")
    on_spark = _validate(context, "spark_engine", df, RUN)
    on_pandas = _validate(context, "pandas_engine", to_pandas_frame(df, plan), pandas_parameters(RUN), plan.kwargs)
    assert not any(v[4] for v in on_spark.values()), on_spark   # nothing raised: every check really ran
    assert on_pandas == on_spark
    # the planted failures are found (the comparison above is not of two empty answers)
    failed = {k for k, v in on_spark.items() if not v[0]}
    assert len(failed) >= 14
    assert on_spark["expect_column_values_to_be_unique(code | is_current = true)"][3] == [1, 2]
    assert on_spark["expect_column_values_to_be_between(valid_from)"][3] == [3]
    # a timestamp is compared with the night's date as with its midnight, in the session's time zone on both
    assert 5 in on_spark["expect_column_values_to_be_between(seen_at)"][3]
    assert on_spark["expect_column_values_to_be_between(valid_to)"][3] == [5]


def test_a_suite_that_may_mean_otherwise_on_pandas_stays_on_spark(spark):
    df = spark.createDataFrame(_rows(), DDL)
    for exp in (_spec("expect_column_values_to_match_regex", column="code", regex=r"^H\d$"),
                _spec("expect_column_values_to_be_unique", column="code", row_condition="is_current IS NOT NULL",
                      condition_parser="spark"),
                _spec("expect_column_values_to_be_between", column="valid_from", min_value="2020-01-01"),
                _spec("expect_column_values_to_be_in_set", column="valid_from", value_set=["2024-01-01"]),
                _spec("expect_column_values_to_be_between", column="code", max_value={"$PARAMETER": "run_date"}),
                _spec("expect_column_value_lengths_to_be_between", column="code", min_value=2)):
        plan, why = pandas_plan([*EXPECTATIONS, exp], df.schema, ID_COLUMNS)
        assert plan is None and why.startswith(exp.key), exp.key
