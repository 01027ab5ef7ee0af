"""Silver's raw lines: typing writes the delivered values of the rows it quarantines only; the rows
deduplication sets aside get theirs from their bronze rows (the shared Spark, a few inline rows)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql.types import StringType, StructField, StructType

from gridlake.sources import load_sources
from jobs.silver import declarations
from jobs.silver.common import raw_line, with_raw_lines
from schemas.silver import BRONZE_METADATA

pytestmark = pytest.mark.spark

VALID_ID = "11010519491231002X"
DAY = dt.date(2026, 11, 1)


def bronze(spark, src, rows: list[dict[str, str]]):
    cols = src.canonical_columns
    schema = StructType([StructField(c, StringType()) for c in cols] + list(BRONZE_METADATA.fields))
    now = dt.datetime(2026, 11, 1, 22, 0)
    data = [tuple(r.get(c) for c in cols) + ({}, None, None, "d.csv", "sha-d", i + 1, now, "run", "utf-8", DAY)
            for i, r in enumerate(rows)]
    return spark.createDataFrame(data, schema)


def test_only_quarantined_rows_carry_a_raw_line_and_the_rows_set_aside_get_theirs_from_bronze(spark):
    src = load_sources()["declarations"]
    row = {"declaration_id": "D1", "id_number": VALID_ID, "name": "张三", "address": "上沙村东村二坊12号602",
           "relation": "租户", "declared_at": "2026-11-01 08:00:00", "channel": "微信"}
    df = bronze(spark, src, [row, {**row, "declaration_id": "D2", "declared_at": "2026-13-45"},
                             {**row, "declaration_id": "D3", "name": "李四"}])
    flagged = {r.declaration_id: r for r in declarations.transform(df, src).collect()}
    assert flagged["D1"]._reason_code is None and flagged["D1"]._raw_line is None
    assert flagged["D2"]._reason_code is not None
    assert json.loads(flagged["D2"]._raw_line)["declared_at"] == "2026-13-45"

    # rows set aside (here D1 and D3, as deduplication would mark them) get the line build would have written
    aside = declarations.transform(df, src).where("declaration_id != 'D2'")
    expected = {r._row_number: r.line for r in df.select("_row_number", raw_line(src).alias("line")).collect()}
    for small in (True, False):
        got = {r._row_number: r._raw_line for r in with_raw_lines(aside, df, src, small=small).collect()}
        assert got == {1: expected[1], 3: expected[3]}
        assert json.loads(got[3])["name"] == "李四" and json.loads(got[1])["declaration_id"] == "D1"
    assert with_raw_lines(aside, df, src, small=True).columns == aside.columns
