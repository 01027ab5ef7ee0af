"""Spark Column helpers agree with gridlake.ids and parse the mixed date formats departments send."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from pyspark.sql import functions as F

from gridlake.ids import normalize_id as py_id
from gridlake.ids import normalize_phone as py_phone
from jobs.silver.columns import (
    id_reason,
    id_value,
    is_legacy15,
    map_vocab,
    normalize_id,
    normalize_id_list,
    normalize_phone,
    parse_date,
    parse_timestamp,
    to_int,
)
from schemas.vocab import RELATION

pytestmark = pytest.mark.spark

IDS = ["11010519491231002X", "11010519491231002x", "110105491231002", "110105194912310025", "4403",
       "１１０１０５１９４９１２３１００２Ｘ", " 11010519491231002X ", "", None, "010105194912310025",
       "110105194913310020", "440304200001011234"]
PHONES = ["+86 138-0013-8000", "008613800138000", "13800138000", "0755-8888 6666", "12345", None, "86 13800138000",
          "+86 755 8888 6666", "(0755)88886666", "0755-88886666转123", "+86-10-12345678", "861380013800",
          "138 0013 8000 ext 12"]


def test_id_and_phone_match_the_python_rules(spark):
    df = spark.createDataFrame([(i,) for i in IDS], "v string")
    got = {r.v: (r.id, r.reason) for r in df.select("v", normalize_id(F.col("v")).alias("id"),
                                                       id_reason(F.col("v")).alias("reason")).collect()}
    for raw in IDS:
        assert got[raw] == py_id(raw), raw
    df = spark.createDataFrame([(p,) for p in PHONES], "v string")
    got = {r.v: r.p for r in df.select("v", normalize_phone(F.col("v")).alias("p")).collect()}
    for raw in PHONES:
        assert got[raw] == py_phone(raw), raw


def test_an_id_typed_once_through_helper_columns_equals_the_inline_rules(spark):
    """``id_value`` (the ID cleaned and checked once, in helper columns) gives what ``normalize_id``,
    ``id_reason`` and ``is_legacy15`` give inline, and what gridlake.ids gives."""
    from jobs.silver.values import with_stages

    ident, legacy = id_value(F.col("v"), "v")
    df = with_stages(spark.createDataFrame([(i,) for i in IDS], "v string"), ident)
    assert len(ident.stages) == 2 and all(c in df.columns for st in ident.stages for c in st)
    rows = df.select("v", ident.value.alias("id"), ident.reason.alias("reason"), legacy.alias("legacy"),
                     normalize_id(F.col("v")).alias("id0"), id_reason(F.col("v")).alias("reason0"),
                     is_legacy15(F.col("v")).alias("legacy0")).collect()
    assert len(rows) == len(IDS)
    for r in rows:
        assert (r.id, r.reason) == (r.id0, r.reason0) == py_id(r.v), r.v
        assert r.legacy == r.legacy0, r.v
    assert {r.reason for r in rows} >= {None, "ID_MISSING", "ID_FORMAT", "ID_CHECKSUM"}
    assert any(r.legacy for r in rows) and any(r.id and r.legacy for r in rows)


def test_id_lists_match_the_python_rules(spark):
    """A list cell's valid IDs (normalised, distinct, in order) and its count of invalid tokens agree with
    gridlake.ids token by token, whatever separates the tokens."""
    tokens = [t.strip() for t in IDS if t and t.strip()]
    cells = ["；".join(tokens), "、".join(reversed(tokens)), f"{tokens[0]}, {tokens[1]} / {tokens[2]}|{tokens[0]}",
             f"{tokens[3]}\n{tokens[4]}", "", None, tokens[4]]
    df = spark.createDataFrame([(c,) for c in cells], "v string")
    got = [(r.l.ids, r.l.invalid) for r in df.select(normalize_id_list(F.col("v")).alias("l")).collect()]
    for cell, (ids, invalid) in zip(cells, got, strict=True):
        parts = [p for p in re.split(r"[;,、，；/／|｜\s]+", cell or "") if p]
        norm = [py_id(p)[0] for p in parts]
        valid = list(dict.fromkeys(n for n in norm if n is not None))
        assert ids == (";".join(valid) or None), cell
        assert invalid == sum(n is None for n in norm), cell
    assert got[0][0] and got[0][1] > 0  # the cells hold both kinds


def test_dates_times_numbers_and_vocab(spark):
    texts = ["2026-11-01", "2026/11/01", "20261101", "2026年11月1日", "2026-11-01 08:30:00", "2026.11.1",
             "２０２６－１１－０１", "2026-02-30", "not a date", "", None]
    df = spark.createDataFrame([(t,) for t in texts], "v string")
    got = {r.v: r.d for r in df.select("v", parse_date(F.col("v")).alias("d")).collect()}
    nov1 = dt.date(2026, 11, 1)
    assert [got[t] for t in texts] == [nov1] * 7 + [None] * 4
    ts = spark.createDataFrame([("2026-11-01 08:30",), ("2026/11/01 08:30:15",), ("20261101",)], "v string")
    shown = ts.select(F.date_format(parse_timestamp(F.col("v")), "yyyy-MM-dd HH:mm:ss").alias("t")).collect()
    assert [r.t for r in shown] == ["2026-11-01 08:30:00", "2026-11-01 08:30:15", "2026-11-01 00:00:00"]
    misc = spark.createDataFrame([("3", "租户"), ("3.0", "tenant"), ("三", "房东"), ("13800138000", None)],
                                 "n string, r string")
    out = misc.select(to_int(F.col("n")).alias("n"), map_vocab(F.col("r"), RELATION).alias("r")).collect()
    assert [(r.n, r.r) for r in out] == [(3, "tenant"), (3, "tenant"), (None, None), (None, None)]  # no cast error
    more = spark.createDataFrame([("2026/11/1 下午2:05",), ("2026-11-01T06:00:00Z",), ("46327.5",), ("03/11/2026",)],
                                 "v string")
    shown = more.select(F.date_format(parse_timestamp(F.col("v")), "yyyy-MM-dd HH:mm:ss").alias("t")).collect()
    assert [r.t for r in shown] == ["2026-11-01 14:05:00", "2026-11-01 14:00:00", "2026-11-01 12:00:00", None]


@pytest.mark.parametrize("column", ["c", ""], ids=["staged", "inline"])
def test_spark_dates_agree_with_the_python_parser(spark, column):
    """Spark's native fast path and the UDF give exactly what gridlake.parse.dates gives, form and reason too,
    as helper columns (a named column, what the transforms use) and as one expression."""
    from gridlake.parse.dates import parse_datetime
    from jobs.silver.values import date_value, with_stages

    texts = ["2026-11-03", "2026-11-03 14:05:06", "2026-11-03 14:05", "2026/11/03", "2026/11/03 14:05", "20261103",
             "2026/11/3", "2026年11月3日 14时05分", "2026-11-03T14:05:06+08:00", "2026-11-03T06:05:06Z",
             "2026/11/3 下午2:05", "二〇二六年十一月三日", "45964.5", "26-11-03", "13/11/2026", "03/11/2026",
             "2026-02-30", "2026-02-30 10:00:00", "0001-01-01", "9999-12-31 00:00:00", "00000000", "待补录",
             "2026-11-03 24:00", " 2026-11-03 ", "２０２６－１１－０１", "", None]
    df = spark.createDataFrame([(t,) for t in texts], "v string")
    t = date_value(F.col("v"), column, kind="timestamp")
    assert bool(t.stages) == bool(column)
    if column:
        assert len(str(t.value)) < 500, "a staged value refers to its helper columns"
    df = with_stages(df, t)
    rows = df.select("v", F.date_format(t.value, "yyyy-MM-dd HH:mm:ss.SSSSSS").alias("ts"),
                     t.reason.alias("reason"), t.profile.alias("p")).collect()
    got = {r.v: (r.ts, r.p.value if r.p else None, r.reason) for r in rows}
    for text in texts:
        p = parse_datetime(text)
        want = (p.value.strftime("%Y-%m-%d %H:%M:%S.%f") if p.value else None, p.form, p.reason)
        assert got[text] == want, text
