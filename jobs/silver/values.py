"""Spark adapters of the value parsers in :mod:`gridlake.parse`: dates, numbers, vocabularies.

Each adapter is a pandas UDF over the raw string column that parses every *distinct*
string of a batch once (``pd.factorize``) with a per-process cache, and returns a
:class:`Typed`: the typed value, the reason code when the value is unusable (a Column,
null when fine or blank) and a profile entry for the delivery report (the *form* of a
date, a capped unknown vocabulary value). No value ever reaches a reason text, and no
Spark cast can fail on delivered text (the UDFs return typed values; casts are of
values already in range), so no ANSI error quoting a value can escape silver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType

from gridlake.parse.config import limits
from gridlake.parse.dates import IN_FUTURE, DateRules, parse_cached
from gridlake.parse.numbers import NumberRules, parse_number_cached
from gridlake.parse.vocab import UNKNOWN_VOCAB, reportable, vocabularies

PROFILE_ENTRY = StructType([StructField("kind", StringType()), StructField("column", StringType()),
                            StructField("value", StringType())])
PROFILE_TYPE = ArrayType(PROFILE_ENTRY)
DATE_FORM, UNKNOWN_VALUE, NUMBER_FORM, INVALID_IDS = "date_form", "unknown_vocab", "number_form", "invalid_ids"

_DATE_OUT = StructType([StructField("iso", StringType()), StructField("form", StringType()),
                        StructField("reason", StringType())])
_NUM_OUT = StructType([StructField("value", DoubleType()), StructField("form", StringType()),
                       StructField("reason", StringType())])
_VOCAB_OUT = StructType([StructField("code", StringType()), StructField("shown", StringType())])


@dataclass
class Typed:
    """A typed column: value, reason code (null when fine or blank), profile entry (null when none).

    ``stages``: helper columns the three refer to, one dict per level (a level may refer to the ones
    before it); :func:`with_stages` adds them to the frame before the transform's select.
    """

    value: Column
    reason: Column
    profile: Column | None = None
    stages: tuple[dict[str, Column], ...] = field(default_factory=tuple)


def with_stages(df: DataFrame, *typed: Typed) -> DataFrame:
    """``df`` with the helper columns of ``typed`` (:attr:`Typed.stages`), level by level.

    Each level of every value is added in one projection, so the Python parsers of all of a source's
    dates run in one pass. The select that follows drops the helpers (it picks the schema's columns).
    """
    for level in range(max((len(t.stages) for t in typed), default=0)):
        cols = {k: v for t in typed if level < len(t.stages) for k, v in t.stages[level].items()}
        if cols:
            df = df.withColumns(cols)
    return df


def _factorized(s: pd.Series, parse, fields: tuple[str, ...]) -> pd.DataFrame:
    """Apply ``parse`` once per distinct value of ``s``; a frame of ``fields`` aligned with ``s``."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    results = [parse(u) for u in uniques]
    blank = parse(None)
    out = {}
    for i, name in enumerate(fields):
        arr = np.array([r[i] for r in results] + [blank[i]], dtype=object)
        out[name] = arr[np.where(codes < 0, len(results), codes)]
    return pd.DataFrame(out)


def _session_timezone() -> str:
    spark = SparkSession.getActiveSession()
    tz = spark.conf.get("spark.sql.session.timeZone") if spark is not None else None
    return tz or "Asia/Shanghai"


def _date_udf(rules: DateRules):
    def iso(text: str | None) -> tuple[str | None, str | None, str | None]:
        p = parse_cached(text, rules)
        return (p.value.strftime("%Y-%m-%d %H:%M:%S.%f") if p.value else None, p.form, p.reason)

    @F.pandas_udf(_DATE_OUT)  # type: ignore[call-overload]
    def parse_dates(s: pd.Series) -> pd.DataFrame:
        return _factorized(s, iso, ("iso", "form", "reason"))

    return parse_dates


# The forms most systems export, parsed natively by Spark (same value and form as the Python parser);
# anything else - and any of these Spark cannot read (2026-02-30) - goes to the parser.
_FAST = (
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$", "yyyy-MM-dd HH:mm:ss", "YYYY-MM-DD HH:mm:ss"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$", "yyyy-MM-dd HH:mm", "YYYY-MM-DD HH:mm"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "yyyy-MM-dd", "YYYY-MM-DD"),
    (r"^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}$", "yyyy/MM/dd HH:mm", "YYYY/MM/DD HH:mm"),
    (r"^[0-9]{4}/[0-9]{2}/[0-9]{2}$", "yyyy/MM/dd", "YYYY/MM/DD"),
    (r"^[0-9]{8}$", "yyyyMMdd", "YYYYMMDD"),
)


def _fast_forms(s: Column) -> tuple[Column, Column]:
    """``(timestamp, form)`` of the trimmed text ``s`` in one of the common forms (null otherwise)."""
    ts = F.lit(None).cast("timestamp")
    form = F.lit(None).cast("string")
    for pattern, fmt, shown in reversed(_FAST):
        ts = F.when(s.rlike(pattern), F.try_to_timestamp(s, F.lit(fmt))).otherwise(ts)
        form = F.when(s.rlike(pattern), F.lit(shown)).otherwise(form)
    return ts, form


def _in_years(ts: Column, min_year: int, max_year: int) -> Column:
    return ts.isNotNull() & F.year(ts).between(min_year, max_year)


class _Stager:
    """Expressions as helper columns (``staged``: each level one dict) or inline (``staged`` false)."""

    def __init__(self, prefix: str, staged: bool) -> None:
        self.prefix, self.staged = prefix, staged
        self.levels: list[dict[str, Column]] = []

    def level(self, **exprs: Column) -> list[Column]:
        if not self.staged:
            return list(exprs.values())
        self.levels.append({f"{self.prefix}{k}": v for k, v in exprs.items()})
        return [F.col(f"`{self.prefix}{k}`") for k in exprs]


def date_value(raw: Column, column: str, kind: str = "timestamp", not_future: bool = False,
               delivery: Column | None = None) -> Typed:
    """A date (``kind="date"``) or local timestamp from any accepted form, with its reason and form.

    The common forms are read by Spark itself; only the others reach the Python parser (a null is
    sent in their place, so a night of ISO timestamps costs no parsing in Python).
    ``not_future``: a value later than the delivery day plus ``future_tolerance_days`` is
    ``DATE_IN_FUTURE`` (``delivery`` defaults to ``_delivery_date``). With a ``column`` name the result
    refers to helper columns the transform adds with :func:`with_stages`; without, it is one expression.
    """
    lim = limits()
    # Named (``column`` given), the steps are helper columns (Typed.stages, added by with_stages): every step
    # refers to the one before it several times, and inline that made one not-in-future timestamp an
    # expression of about 180,000 characters, re-analysed and re-planned by every query over the batch.
    st = _Stager(f"__date_{column}_", staged=bool(column))
    (s,) = st.level(s=F.trim(raw))
    ts, ts_form = _fast_forms(s)
    ts, ts_form = st.level(ts=ts, form=ts_form)
    ok = _in_years(ts, lim.dates.min_year, lim.dates.max_year)
    fast_ts, fast_form = st.level(fast=F.when(ok, ts), fast_form=F.when(ok, ts_form))
    (parsed,) = st.level(parsed=_date_udf(lim.date_rules(_session_timezone()))(F.when(fast_ts.isNull(), raw)))
    iso = parsed["iso"]
    if kind == "date":
        value = F.coalesce(F.to_date(fast_ts), F.try_to_date(F.substring(iso, 1, 10), "yyyy-MM-dd"))
    else:
        value = F.coalesce(fast_ts, F.try_to_timestamp(iso, F.lit("yyyy-MM-dd HH:mm:ss.SSSSSS")))
    value, form, reason = st.level(value=value, form=F.coalesce(fast_form, parsed["form"]),
                                   reason=F.when(fast_ts.isNull(), parsed["reason"]))
    if not_future:
        cutoff = F.date_add(delivery if delivery is not None else F.col("_delivery_date"),
                            1 + lim.dates.future_tolerance_days)
        late = (value >= cutoff) if kind == "date" else (value >= F.to_timestamp(cutoff))
        (reason,) = st.level(checked=F.when(reason.isNull() & F.coalesce(late, F.lit(False)), F.lit(IN_FUTURE))
                             .otherwise(reason))
        value = F.when(reason.isNull(), value)
    profile = F.when(form.isNotNull(),
                     F.struct(F.lit(DATE_FORM).alias("kind"), F.lit(column).alias("column"), form.alias("value")))
    return Typed(value, reason, profile, tuple(st.levels))


def _number_udf(rules: NumberRules):
    @F.pandas_udf(_NUM_OUT)  # type: ignore[call-overload]
    def parse_numbers(s: pd.Series) -> pd.DataFrame:
        out = _factorized(s, lambda t: parse_number_cached(t, rules), ("value", "form", "reason"))
        out["value"] = pd.to_numeric(out["value"], errors="coerce").astype("float64")
        return out

    return parse_numbers


def number_value(raw: Column, column: str, rules: NumberRules) -> Typed:
    """A number (int when ``rules.integer``) from text with units, separators, full-width or Chinese digits."""
    parsed = _number_udf(rules)(raw)
    value = parsed["value"]
    if rules.integer:
        value = F.when(parsed["reason"].isNull(), value.cast("long")).cast("int")  # bounded by rules: no overflow
    profile = F.when(parsed["form"].isNotNull(),
                     F.struct(F.lit(NUMBER_FORM).alias("kind"), F.lit(column).alias("column"),
                              parsed["form"].alias("value")))
    return Typed(value, parsed["reason"], profile)


def area_value(raw: Column, column: str = "area_m2") -> Typed:
    """An area in m² (``85.5㎡``, ``85.5平``, ``1,234.5``), OUT_OF_RANGE when <= 0 or above the limit."""
    return number_value(raw, column, limits().area())


def count_value(raw: Column, column: str, maximum: int | None = None) -> Typed:
    """A count of people (``3``, ``3人``, ``三人``), OUT_OF_RANGE below 0 or above ``maximum`` (tenants_max)."""
    lim = limits()
    return number_value(raw, column, lim.count(maximum if maximum is not None else lim.numbers.tenants_max))


def _vocab_udf(name: str):
    table = vocabularies()[name]  # shipped with the UDF: executors need no conf/ of their own

    def lookup(text: str | None) -> tuple[str | None, str | None]:
        if text is None or not text.strip():
            return None, None
        code = table.code(text)
        return code, (None if code else reportable(text))

    @F.pandas_udf(_VOCAB_OUT)  # type: ignore[call-overload]
    def lookup_vocab(s: pd.Series) -> pd.DataFrame:
        return _factorized(s, lookup, ("code", "shown"))

    return lookup_vocab


def vocab_value(raw: Column, column: str, vocabulary: str) -> Typed:
    """The canonical code of a vocabulary value (synonyms, suffixes, case, width); UNKNOWN_VOCAB otherwise."""
    parsed = _vocab_udf(vocabulary)(raw)
    reason = F.when(parsed["shown"].isNotNull(), F.lit(UNKNOWN_VOCAB))
    profile = F.when(parsed["shown"].isNotNull(),
                     F.struct(F.lit(UNKNOWN_VALUE).alias("kind"), F.lit(column).alias("column"),
                              parsed["shown"].alias("value")))
    return Typed(parsed["code"], reason, profile)


def invalid_ids_profile(invalid: Column, column: str) -> Column:
    """A profile entry counting a row whose ID list held invalid IDs (the row stays; the IDs are dropped)."""
    return F.when(invalid > 0, F.struct(F.lit(INVALID_IDS).alias("kind"), F.lit(column).alias("column"),
                                        F.lit("ID_LIST_INVALID").alias("value")))


def profile_array(entries: list[Column | None]) -> Column:
    """The ``_profile`` column: non-null entries as ``array<struct<kind, column, value>>``."""
    present = [e for e in entries if e is not None]
    if not present:
        return F.array().cast(PROFILE_TYPE)
    return F.filter(F.array(*present), lambda x: x.isNotNull()).cast(PROFILE_TYPE)
