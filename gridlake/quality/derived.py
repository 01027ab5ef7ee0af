"""Helper columns a suite declares under ``derived:`` and validates like any column.

- ``{check: id_checksum, column: c}``: true when ``c`` is a valid 18-digit GB 11643 ID
  (format and check digit), null when ``c`` is null. Validity "above a floor" is then
  ``expect_column_values_to_be_in_set(value_set: [true], mostly: 0.95)``.
- ``{lookup: layer.table, column: c, key: k, where: sql}``: consistency across tables; true when
  ``c`` is found among ``layer.table``'s ``k`` (optionally filtered), null when ``c`` is null.
  When the lookup table does not exist yet the column is null (nothing to check against),
  and the gate reports the expectation as skipped.
- ``{expr: "spark sql"}``: any boolean Spark SQL expression; ``${run_date}`` is substituted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from gridlake import io

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from gridlake.context import RunContext

log = logging.getLogger(__name__)

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID18 = r"^[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9X]$"


def id_checksum_ok(col: Column) -> Column:
    """True when ``col`` is a well-formed 18-digit ID with the right check digit (null stays null)."""
    s = F.upper(F.trim(col))
    total = sum((F.substring(s, i + 1, 1).cast("int") * w for i, w in enumerate(_WEIGHTS)), F.lit(0))
    expected = F.substring(F.lit(_CHECK), (total % 11).cast("int") + 1, 1)
    well_formed = s.rlike(_ID18)
    return F.when(col.isNull(), F.lit(None).cast("boolean")).otherwise(
        F.coalesce(well_formed & (F.substring(s, 18, 1) == expected), F.lit(False))
    )


def add_derived(ctx: RunContext, df: DataFrame, derived: dict[str, dict[str, Any]]) -> tuple[DataFrame, set[str]]:
    """``df`` with the suite's helper columns; also the names that could not be computed (lookup missing)."""
    unavailable: set[str] = set()
    for name, d in derived.items():
        if d.get("column") and d["column"] not in df.columns:
            log.info("derived.%s: column %s missing from the frame; its checks are skipped", name, d["column"])
            unavailable.add(name)
            df = df.withColumn(name, F.lit(None).cast("boolean"))
            continue
        if "check" in d:
            if d["check"] != "id_checksum":
                raise ValueError(f"derived.{name}: unknown check {d['check']!r}")
            df = df.withColumn(name, id_checksum_ok(F.col(d["column"])))
        elif "expr" in d:
            df = df.withColumn(name, F.expr(str(d["expr"]).replace("${run_date}", ctx.date_str)))
        else:
            layer, _, table = str(d["lookup"]).partition(".")
            key, column = d.get("key", d["column"]), d["column"]
            other = ctx.extras.get("quality_lookups", {}).get(f"{layer}.{table}")
            if other is None and io.table_exists(ctx.spark, ctx.settings, layer, table):
                other = io.read_table(ctx.spark, ctx.settings, layer, table)
            if other is None:
                log.info("derived.%s: %s.%s does not exist yet; consistency check skipped", name, layer, table)
                unavailable.add(name)
                df = df.withColumn(name, F.lit(None).cast("boolean"))
                continue
            if d.get("where"):
                other = other.where(F.expr(str(d["where"])))
            keys = other.select(F.col(key).alias("__lookup_key")).where(F.col("__lookup_key").isNotNull()).distinct()
            df = (df.join(keys, F.col(column) == F.col("__lookup_key"), "left")
                    .withColumn(name, F.when(F.col(column).isNull(), F.lit(None).cast("boolean"))
                                .otherwise(F.col("__lookup_key").isNotNull()))
                    .drop("__lookup_key"))
    return df, unavailable
