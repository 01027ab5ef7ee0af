"""Which Great Expectations engine validates a frame: Spark, or pandas in the driver for a small frame.

GX validates a Spark frame by asking Spark one or more queries per expectation; on a community night
(a few thousand rows per table) that is about 3 s per suite, nearly all of it planning and job start-up,
against about 0.2 s for the same suite over the same rows in pandas. So a frame of at most
``validation.pandas_max_rows`` rows is collected (only the columns the suite reads) and validated by GX's
pandas engine, when the suite means the same there; otherwise, and above that size, on Spark.

A suite is validated on pandas only when every expectation is of a kind whose pandas and Spark
implementations agree on the values gridlake writes (:data:`PORTABLE_TYPES`) and:

* its ``row_condition`` (Spark SQL) is a conjunction/disjunction of ``column = literal`` comparisons, which
  :func:`pandas_condition` rewrites for ``DataFrame.query`` (a null never satisfies one, as in SQL);
* its regex uses only syntax that Java and Python read alike (no ``\\d``/``\\w``/``\\s``/``\\b``, whose
  Python meaning includes non-ASCII digits and letters, no ``(?`` groups, no ``\\p{..}`` classes);
* a date or timestamp column is compared only with the night's date parameters (given to pandas as
  timestamps, as Spark compares them) and never put to a set; a date parameter is never compared with a
  column of another type.

Anything else is validated on Spark, as before: the choice never changes a verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from gridlake.quality.suites import ExpectationSpec

#: Expectation kinds whose pandas and Spark implementations were checked to agree
#: (``tests/integration/test_quality_engines.py`` validates one frame both ways).
PORTABLE_TYPES = frozenset({
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_table_row_count_to_be_between",
})
DATE_PARAMETERS = frozenset({"run_date", "run_date_next"})
_DATE_TYPES = ("DateType", "TimestampType", "TimestampNTZType")

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_LITERAL = r"(?:true|false|-?[0-9]+(?:\.[0-9]+)?|'[^'\\]*')"
_COMPARISON = re.compile(rf"^\s*({_IDENT})\s*(=|==|!=|<>)\s*({_LITERAL})\s*$", re.IGNORECASE)
_JUNCTION = re.compile(r"\s+(and|or)\s+", re.IGNORECASE)
# \d \w \s \b \p{..} etc., (? groups, possessive quantifiers (an unescaped * + ? } then +), nested classes
_REGEX_UNPORTABLE = re.compile(r"\\[dDwWsSbBpPhHvVRXzZAGQEk0-9]|\(\?|(?<!\\)(?:\\\\)*[*+?}]\+|\[\[|&&|\[:")


@dataclass(frozen=True)
class PandasPlan:
    """How to validate a suite on pandas: the columns to collect and each expectation's pandas kwargs."""

    columns: tuple[str, ...]
    kwargs: dict[str, dict[str, Any]]   # by ExpectationSpec.key


def pandas_condition(condition: str) -> tuple[str, set[str]] | None:
    """``condition`` (Spark SQL) as a ``DataFrame.query`` expression and the columns it reads; None
    when it is not ``column = literal`` comparisons joined by AND/OR (no parentheses, functions or NULL tests)."""
    parts = _JUNCTION.split(condition.strip())
    out: list[str] = []
    columns: set[str] = set()
    for i, part in enumerate(parts):
        if i % 2:   # a junction
            out.append(part.lower())
            continue
        m = _COMPARISON.match(part)
        if not m:
            return None
        column, op, literal = m.groups()
        if column.lower() in ("and", "or", "not", "null", "true", "false", "is", "in", "like"):
            return None
        low = literal.lower()
        value = {"true": "True", "false": "False"}.get(low, literal)
        # ``==`` on a null (None/NaN) is false in pandas as in SQL; ``!=`` on a null is true in pandas but
        # null (not kept) in SQL: keep only the rows where the column is present, as Spark does
        cmp = f"(`{column}` == {value})" if op in ("=", "==") else f"(`{column}` != {value} and `{column}` == `{column}`)"
        out.append(cmp)
        columns.add(column)
    return " ".join(out), columns


def portable_regex(regex: str) -> bool:
    """True when Java's and Python's regex engines read ``regex`` alike (a conservative syntax subset)."""
    return isinstance(regex, str) and not _REGEX_UNPORTABLE.search(regex) and regex.isascii()


def _is_date(schema: StructType, column: str) -> bool:
    return type(schema[column].dataType).__name__ in _DATE_TYPES


def _date_parameter(value: Any) -> bool:
    return isinstance(value, dict) and value.get("$PARAMETER") in DATE_PARAMETERS


def pandas_plan(expectations: list[ExpectationSpec], schema: StructType,
                id_columns: list[str]) -> tuple[PandasPlan | None, str]:
    """A :class:`PandasPlan` when every expectation means the same on pandas, else ``(None, why)``."""
    names = set(schema.fieldNames())
    columns: set[str] = {c for c in id_columns if c in names}
    kwargs_by_key: dict[str, dict[str, Any]] = {}
    for exp in expectations:
        why = _unportable(exp, schema)
        if why:
            return None, f"{exp.key}: {why}"
        kwargs = dict(exp.kwargs)
        if kwargs.get("row_condition"):
            translated = pandas_condition(str(kwargs["row_condition"]))
            if translated is None or not translated[1] <= names:
                return None, f"{exp.key}: row_condition not of the form column = literal"
            kwargs["row_condition"], read = translated
            kwargs["condition_parser"] = "pandas"
            columns |= read
        columns |= set(exp.columns)
        kwargs_by_key[exp.key] = kwargs
    ordered = tuple(c for c in schema.fieldNames() if c in columns)
    return PandasPlan(ordered, kwargs_by_key), ""


def _unportable(exp: ExpectationSpec, schema: StructType) -> str:
    if exp.type not in PORTABLE_TYPES:
        return "expectation kind not checked on pandas"
    if exp.kwargs.get("row_condition") and str(exp.kwargs.get("condition_parser", "spark")) != "spark":
        return "row_condition not written for Spark"
    if any(c not in schema.fieldNames() for c in exp.columns):
        return "column missing"
    dates = [c for c in exp.columns if _is_date(schema, c)]
    if exp.type == "expect_column_values_to_match_regex" and not portable_regex(exp.kwargs.get("regex")):
        return "regex syntax that Java and Python may read differently"
    if exp.type == "expect_column_values_to_be_in_set" and dates:
        return "a date column put to a set"
    bounds = [exp.kwargs.get(k) for k in ("min_value", "max_value", "value") if exp.kwargs.get(k) is not None]
    if exp.type == "expect_column_values_to_be_between":
        if dates and not all(_date_parameter(b) for b in bounds):
            return "a date column compared with a literal"
        if not dates and any(_date_parameter(b) for b in bounds):
            return "a date parameter compared with a column that is not a date"
    if exp.type == "expect_column_pair_values_a_to_be_greater_than_b" and len(dates) == 1:
        return "a date column compared with one that is not"
    return ""


def to_pandas_frame(df: DataFrame, plan: PandasPlan) -> pd.DataFrame:
    """The plan's columns of ``df`` in the driver; dates and timestamps as ``datetime64[us]`` (the range of
    Spark's dates, compared by value as Spark compares them)."""
    import numpy as np
    import pandas as pd

    pdf = df.select(*plan.columns).toPandas()
    for field in df.schema.fields:
        if field.name in plan.columns and type(field.dataType).__name__ in _DATE_TYPES:
            values = pdf[field.name]
            if not pd.api.types.is_datetime64_any_dtype(values):
                values = pd.Series(np.array([None if v is None or v is pd.NaT else v for v in values],
                                            dtype="datetime64[us]"), index=pdf.index)
            pdf[field.name] = values
    return pdf


def pandas_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """The suite parameters for pandas: the night's dates as timestamps (midnight), the rest unchanged."""
    import pandas as pd

    return {k: (pd.Timestamp(v) if k in DATE_PARAMETERS and v is not None else v) for k, v in params.items()}
