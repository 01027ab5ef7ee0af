"""What ``gridlake sql`` accepts: one query, reading only the gold views.

The statement is parsed with sqlglot (Spark dialect), never matched on its first word, and
accepted only when

- it is exactly one statement, and that statement is a query (``SELECT``, ``WITH … SELECT``, a
  ``UNION``/``INTERSECT``/``EXCEPT`` of those);
- no node anywhere in it is DML, DDL, a command, ``SET``/``USE``/``CACHE``/``ADD JAR`` or an
  ``INSERT … DIRECTORY`` (sqlglot parses ``WITH … DELETE`` as a DELETE);
- every relation it reads is a gold view by its plain name (``discrepancies`` or
  ``gold_discrepancies``) or a CTE the query itself defines: no qualified or path-based relation
  (``delta.`/…```, ``parquet.`/…```, ``text.`/…```, a backticked path), no table function
  (``read_files(…)``, ``range(…)``, ``IDENTIFIER(…)``), no ``_``-prefixed internal table, nothing
  of bronze or silver;
- it calls no function that reaches outside the query (``reflect``, ``java_method``, ``read_files``…).

Spark then runs the statement *as sqlglot regenerated it*, so what runs is what was checked.
"""

from __future__ import annotations

from collections.abc import Iterable

from gridlake.errors import GridlakeError

#: Functions that call Java, read files or resolve names at run time.
DENIED_FUNCTIONS = frozenset({
    "reflect", "java_method", "try_reflect", "read_files", "identifier", "input_file_name",
    "input_file_block_start", "input_file_block_length", "from_avro", "to_avro", "from_protobuf", "to_protobuf",
    "url_decode", "parse_url", "schema_of_json", "schema_of_csv", "schema_of_xml", "http_request",
})
_QUERY_TYPES = ("Select", "Union", "Intersect", "Except", "Subquery")
_DENIED_NODES = ("DML", "DDL", "Command", "Set", "Use", "Cache", "Uncache", "Refresh", "Insert", "Update",
                 "Delete", "Merge", "Create", "Drop", "Alter", "LoadData", "Describe", "Transaction", "Commit",
                 "Rollback", "Pragma", "Into", "Copy", "Analyze", "Directory", "TruncateTable", "Show")


class QueryRefused(GridlakeError):
    """A statement ``gridlake sql`` does not run (the message says which rule it broke)."""


def _types(names: Iterable[str]) -> tuple[type, ...]:
    from sqlglot import exp

    return tuple(t for t in (getattr(exp, n, None) for n in names) if isinstance(t, type))


def allowed_relations(gold_tables: Iterable[str]) -> set[str]:
    """The names a query may read: every gold table as ``<name>`` and ``gold_<name>`` (never ``_x``)."""
    names = {t.lower() for t in gold_tables if t and not t.startswith("_")}
    return names | {f"gold_{t}" for t in names}


def check_query(query: str, gold_tables: Iterable[str]) -> str:
    """The Spark SQL to run for ``query`` when it is a single read of the gold views; else :class:`QueryRefused`."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    allowed = allowed_relations(gold_tables)
    try:
        statements = [s for s in sqlglot.parse(query, read="spark") if s is not None]
    except (ParseError, TokenError) as exc:
        raise QueryRefused(f"gridlake sql could not parse the statement ({type(exc).__name__}); "
                           "only a single SELECT over the gold views runs") from None
    if len(statements) != 1:
        raise QueryRefused(f"gridlake sql runs exactly one statement, got {len(statements)}")
    stmt = statements[0]
    if not isinstance(stmt, _types(_QUERY_TYPES)):
        raise QueryRefused(f"gridlake sql runs SELECT queries only, not {type(stmt).__name__.upper()}")
    denied = _types(_DENIED_NODES)
    for node in stmt.walk():
        if isinstance(node, denied):
            raise QueryRefused(f"gridlake sql runs SELECT queries only: {type(node).__name__.upper()} is not allowed")
    from sqlglot.optimizer.scope import traverse_scope

    in_cte_scope: set[int] = set()  # tables that name a CTE visible where they are read
    try:
        for scope in traverse_scope(stmt):
            in_cte_scope.update(id(t) for t in scope.tables if t.name in scope.cte_sources)
    except Exception as exc:  # noqa: BLE001 - a query sqlglot cannot scope is not run
        raise QueryRefused(f"gridlake sql could not analyse the statement ({type(exc).__name__})") from None
    for table in stmt.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise QueryRefused("gridlake sql reads the gold views only: table functions are not allowed")
        if table.args.get("db") or table.args.get("catalog"):
            raise QueryRefused("gridlake sql reads the gold views only: qualified or path-based relations "
                               "(delta.`…`, parquet.`…`, db.table) are not allowed")
        name = table.name.lower()
        if id(table) not in in_cte_scope and name not in allowed:
            raise QueryRefused(f"gridlake sql reads the gold views only; {table.name[:60]!r} is not one "
                               f"(known: {', '.join(sorted(allowed))})")
    for func in stmt.find_all(exp.Func):
        fname = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
        if fname in DENIED_FUNCTIONS:
            raise QueryRefused(f"gridlake sql does not allow the function {fname}()")
    return stmt.sql(dialect="spark")
