"""Analysts' access: Spark SQL over the gold views, and the no-JVM path (deltalake + DuckDB) on a Spark-written table."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest

from gridlake import analyst, io
from gridlake.errors import GridlakeError

pytestmark = pytest.mark.spark

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
METRICS = "run_date date, level string, street string, community string, grid_id string, declaration_coverage double, open_total long"


@pytest.fixture
def lake(spark, settings):
    rows = [
        (D1, "community", "沙头街道", "上沙社区", None, 0.5, 7),
        (D2, "community", "沙头街道", "上沙社区", None, 0.75, 5),
        (D2, "community", "沙头街道", "下沙社区", None, 0.25, 9),
        (D2, "district", None, None, None, 0.6, 14),
    ]
    io.write_table(spark.createDataFrame(rows, METRICS), settings, "gold", "grid_metrics", "overwrite")
    disc = spark.createDataFrame(
        [("0001", "R1", "open", 5.5), ("0002", "R1", "escalated", 3.0), ("0003", "R6", "open", 1.0),
         ("0004", "R2", "resolved", 2.0)],
        "discrepancy_id string, rule string, status string, priority double")
    io.write_table(disc, settings, "gold", "discrepancies", "overwrite")
    # a silver table in the same lake must never become visible to analysts
    io.write_table(spark.createDataFrame([("440304199001011234",)], "id_number string"), settings, "silver", "declarations",
                   "overwrite")
    return settings


def test_no_jvm_path_reads_spark_written_delta(lake):
    table = analyst.read_gold("grid_metrics", lake.data_root)
    assert table.num_rows == 4
    assert table.schema.field("run_date").type.__str__() == "date32[day]"
    con = analyst.duckdb_connection(lake.data_root)
    got = con.execute(
        "SELECT community, declaration_coverage FROM grid_metrics "
        "WHERE level = 'community' AND run_date = DATE '2026-11-02' ORDER BY declaration_coverage").fetchall()
    assert got == [("下沙社区", 0.25), ("上沙社区", 0.75)]
    by_rule = con.execute(
        "SELECT rule, count(*) FROM gold_discrepancies WHERE status IN ('open', 'escalated') GROUP BY rule ORDER BY rule"
    ).fetchall()
    assert by_rule == [("R1", 2), ("R6", 1)]
    views = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert "declarations" not in views and "silver_declarations" not in views
    with pytest.raises(GridlakeError, match="not found"):
        analyst.read_gold("declarations", lake.data_root)


def test_spark_sql_over_gold_views(spark, lake):
    cols, rows = analyst.spark_sql(
        spark, lake,
        "SELECT run_date, open_total FROM gold_grid_metrics WHERE level = 'community' AND community = '上沙社区' "
        "ORDER BY run_date")
    assert cols == ["run_date", "open_total"]
    assert rows == [(D1, 7), (D2, 5)]
    _, limited = analyst.spark_sql(spark, lake, "SELECT * FROM discrepancies ORDER BY discrepancy_id", limit=2)
    assert [r[0] for r in limited] == ["0001", "0002"]
    with pytest.raises(GridlakeError, match="SELECT queries only"):
        analyst.spark_sql(spark, lake, "DROP VIEW discrepancies")


def test_spark_sql_cannot_reach_silver_or_the_key(spark, lake):
    """The bypasses of issue 17 item 8, against a lake where the silver table and a key file exist."""
    silver = lake.table_path("silver", "declarations")
    key = lake.data / ".gridlake-key"
    key.write_text("not-a-real-key", encoding="utf-8")
    assert spark.read.format("delta").load(silver).count() == 1  # it is there to be read
    for query in (f"SELECT * FROM delta.`{silver}`", f"SELECT * FROM parquet.`{silver}`", f"SELECT * FROM text.`{key}`",
                  f"WITH x AS (SELECT 1) SELECT * FROM text.`{key}`", "SELECT * FROM silver_declarations",
                  f"SELECT * FROM read_files('{key}')", f"INSERT OVERWRITE DIRECTORY '{lake.data}/x' SELECT 1",
                  "WITH d AS (SELECT 1) DELETE FROM discrepancies", "SET spark.sql.ansi.enabled=false"):
        with pytest.raises(GridlakeError):
            analyst.spark_sql(spark, lake, query)
    assert spark.read.format("delta").load(lake.table_path("gold", "discrepancies")).count() == 4
    assert not (lake.data / "x").exists()


def test_cmd_sql_prints_a_table(spark, lake, capsys):
    args = argparse.Namespace(query="SELECT rule, count(*) AS n FROM discrepancies GROUP BY rule ORDER BY rule",
                              limit=50, data=lake.data_root, profile="local")
    assert analyst.cmd_sql(args) == 0
    out = capsys.readouterr().out
    assert "R1" in out and "R6" in out and "3 row(s)" in out
