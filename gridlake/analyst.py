"""Analysts' access to the gold tables (pseudonymous data only; never bronze or silver).

Two paths:

- ``gridlake sql "SELECT ..."`` (:func:`cmd_sql`): one Spark SQL query over every gold table,
  registered as temporary views ``<name>`` and ``gold_<name>``; the result is printed
  as a table. The statement is parsed and only a SELECT reading gold views runs
  (:mod:`gridlake.sql_guard`).
- Without a JVM: :func:`read_gold` returns a gold table as a ``pyarrow.Table`` and
  :func:`duckdb_connection` gives a DuckDB connection with every gold table as a view,
  both read through the ``deltalake`` package (delta-rs).

See ``docs/analysts.md`` for example queries.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.config import Settings, load_settings
from gridlake.errors import GridlakeError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

log = logging.getLogger(__name__)

LAYER = "gold"
_VIEW_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _settings(data_root: str | Path | None = None, profile: str | None = None) -> Settings:
    return load_settings(profile, data_root)


def gold_tables(settings: Settings) -> list[str]:
    """Names of the gold tables present in the lake (local lake: listed; remote: the known ones)."""
    if "://" in settings.lake:
        from schemas.gold import GOLD_SCHEMAS

        return sorted({*GOLD_SCHEMAS, "house_resolution"})
    base = Path(settings.lake) / LAYER
    if not base.exists():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "_delta_log").is_dir() and _VIEW_NAME.match(p.name))


# --- without a JVM: deltalake + DuckDB ---------------------------------------------------
def _delta_table(settings: Settings, table: str):
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if not _VIEW_NAME.match(table):
        raise GridlakeError(f"not a table name: {table!r}")
    path = settings.table_path(LAYER, table)
    try:
        return DeltaTable(path)
    except TableNotFoundError:
        raise GridlakeError(f"gold.{table} not found at {path}; known: {', '.join(gold_tables(settings))}") from None


def read_gold(table: str, data_root: str | Path | None = None, profile: str | None = None) -> pa.Table:
    """A gold table as a ``pyarrow.Table`` (latest Delta version), read with ``deltalake``, no JVM."""
    return _delta_table(_settings(data_root, profile), table).to_pyarrow_table()


def duckdb_connection(data_root: str | Path | None = None, profile: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every gold table as a view ``<name>`` and ``gold_<name>``.

    Views are backed by the tables' Arrow datasets (read lazily, filters pushed down);
    the data files stay where they are.
    """
    import duckdb

    settings = _settings(data_root, profile)
    con = duckdb.connect(database=":memory:")
    for name in gold_tables(settings):
        try:
            dataset = _delta_table(settings, name).to_pyarrow_dataset()
        except GridlakeError:
            continue
        con.register(name, dataset)
        con.register(f"{LAYER}_{name}", dataset)
        log.debug("duckdb view %s", name)
    return con


# --- Spark SQL ------------------------------------------------------------------------------
def spark_sql(spark, settings: Settings, query: str, limit: int | None = 50) -> tuple[list[str], list[tuple]]:
    """Run one SELECT over the gold views; return (column names, rows).

    The statement is parsed and checked by :func:`gridlake.sql_guard.check_query` (a single query
    reading only gold views: no path-based relation, no DML/DDL/commands) and Spark runs the
    checked statement as regenerated, never the raw text.
    """
    from gridlake import io
    from gridlake.sql_guard import check_query

    tables = gold_tables(settings)
    checked = check_query(query, tables)
    io.register_tables(spark, settings, LAYER, tables)
    df = spark.sql(checked)
    if limit is not None and limit > 0:
        df = df.limit(limit)
    rows = df.collect()
    return list(df.columns), [tuple(r) for r in rows]


def _cell(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cmd_sql(args: argparse.Namespace) -> int:
    """``gridlake sql "SELECT ..."``: the query over the gold tables, printed as a table."""
    from rich.console import Console
    from rich.table import Table

    from gridlake.spark import get_spark

    settings = load_settings(args.profile, args.data)
    tables = gold_tables(settings)
    if not tables:
        raise GridlakeError(f"no gold tables under {settings.table_path(LAYER, '')}: run a night first")
    spark = get_spark(settings, app_name="gridlake-sql")
    columns, rows = spark_sql(spark, settings, args.query, args.limit)
    table = Table(title=f"{len(rows)} row(s)" + (f" (limit {args.limit})" if args.limit and len(rows) >= args.limit else ""),
                  caption=f"gold views: {', '.join(tables)}")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    Console().print(table)
    return 0
