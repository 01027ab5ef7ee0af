"""Item 8 of issue 17: ``gridlake sql`` parses the statement and runs only a SELECT over gold views."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridlake.sql_guard import QueryRefused, allowed_relations, check_query

GOLD = ["discrepancies", "followups", "grid_metrics", "house_profile", "house_resolution", "_internal"]
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("query", [
    "SELECT * FROM delta.`/data/lake/silver/declarations`",
    "select * from DELTA.`/data/lake/bronze/rentals`",
    "SELECT * FROM parquet.`/data/lake/silver/declarations/part-0.parquet`",
    "SELECT value FROM text.`/data/.gridlake-key`",
    "SELECT * FROM csv.`/data/landing/police/x.csv`",
    "SELECT * FROM json.`/data/_runs/x.json`",
    "SELECT * FROM `/data/lake/silver/declarations`",
    "SELECT * FROM (SELECT * FROM delta.`/data/lake/silver/x`) t",
    "SELECT * FROM discrepancies WHERE discrepancy_id IN (SELECT id_number FROM delta.`/s`)",
    "WITH x AS (SELECT * FROM text.`/data/.gridlake-key`) SELECT * FROM x",
    "SELECT * FROM read_files('/data/lake/silver')",
    "SELECT * FROM IDENTIFIER('delta.`/data/lake/silver/x`')",
    "SELECT * FROM range(10)",
    "SELECT reflect('java.lang.System', 'getenv', 'HOME')",
    "SELECT java_method('java.lang.System', 'getenv', 'HOME')",
    "SELECT input_file_name() FROM discrepancies",
    "WITH x AS (SELECT 1) DELETE FROM discrepancies",
    "INSERT OVERWRITE DIRECTORY '/tmp/out' SELECT * FROM discrepancies",
    "INSERT OVERWRITE DIRECTORY '/tmp/out' USING parquet SELECT * FROM discrepancies",
    "INSERT INTO discrepancies SELECT * FROM discrepancies",
    "DELETE FROM discrepancies", "UPDATE discrepancies SET status = 'resolved'",
    "MERGE INTO discrepancies t USING followups s ON t.discrepancy_id = s.discrepancy_id WHEN MATCHED THEN DELETE",
    "DROP VIEW discrepancies", "CREATE TEMPORARY VIEW v AS SELECT * FROM delta.`/s`",
    "CREATE TABLE t USING delta LOCATION '/data/lake/silver/declarations'",
    "SET spark.sql.ansi.enabled=false", "ADD JAR /tmp/evil.jar", "CACHE TABLE discrepancies", "USE silver",
    "SELECT 1; SELECT 2", "SELECT * FROM discrepancies; DROP VIEW discrepancies",
    "SELECT * FROM declarations", "SELECT * FROM silver_declarations", "SELECT * FROM silver.declarations",
    "SELECT * FROM spark_catalog.default.discrepancies", "SELECT * FROM _internal", "SELECT * FROM gold__internal",
    "SELECT * FROM (WITH h AS (SELECT 1) SELECT * FROM h) x, h",
    "SHOW TABLES", "DESCRIBE discrepancies", "EXPLAIN SELECT * FROM delta.`/s`", "TABLE discrepancies",
    "SELECT * FROM", "",
])
def test_bypasses_are_refused(query):
    with pytest.raises(QueryRefused):
        check_query(query, GOLD)


def doc_queries() -> list[str]:
    """Every Spark SQL statement shown in docs/analysts.md and the README (DuckDB-only ones excluded)."""
    out: list[str] = []
    for doc in (REPO / "docs" / "analysts.md", REPO / "README.md"):
        text = doc.read_text(encoding="utf-8")
        for block in re.findall(r"```sql\n(.*?)```", text, re.S):
            block = block.split("-- DuckDB")[0]
            out += [s.strip() for s in block.split(";") if re.search(r"\bSELECT\b", s, re.I)]
        out += [m.replace("\\\n", " ") for m in re.findall(r'gridlake sql "((?:[^"\\]|\\.|\\\n)*)"', text)]
    return out


def test_documented_queries_are_allowed():
    queries = doc_queries()
    assert len(queries) >= 8
    for q in queries:
        sql = check_query(q, GOLD)
        assert check_query(sql, GOLD) == sql  # what runs is itself accepted, unchanged


def test_ctes_unions_and_both_view_names_are_allowed():
    for q in ("WITH a AS (SELECT * FROM discrepancies) SELECT * FROM a JOIN gold_followups f USING (discrepancy_id)",
              "SELECT rule FROM discrepancies UNION ALL SELECT rule FROM gold_discrepancies",
              "SELECT * FROM discrepancies WHERE run_date = DATE '2026-11-03' LIMIT 5"):
        check_query(q, GOLD)
    assert "_internal" not in allowed_relations(GOLD) and "gold_house_profile" in allowed_relations(GOLD)
