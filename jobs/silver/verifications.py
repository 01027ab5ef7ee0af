"""silver.verifications: officers' field checks, from the returned list (XLSX or CSV) or a plain feed.

A returned list holds every row of the night's list; the officer filled in the input columns
(核查结果, 核查时间, 核查后房屋编码, 备注) of the places they visited. Each delivered row ends in
silver or in quarantine with one of these reasons (besides the common ones):

- ``NOT_CHECKED``           no input column filled in (a place not visited yet)
- ``EDITED_OUTSIDE_INPUT``  the row's read-only columns do not match its hidden 校验码
                            (:func:`jobs.gold.exports.row_checksum`)
- ``UNKNOWN_DISCREPANCY``   the 问题编号 is not a discrepancy gridlake raised
- ``WRONG_GRID``            the row belongs to another grid than the file says (a file for another grid)
- ``OUTCOME_NOT_IN_LIST``   核查结果 is empty or not one of ``conf/rules.yaml`` verification_outcomes
- ``MISSING_CHECKED_AT`` / ``BAD_DATE``  核查时间 missing or not a date/time

A row without 核查编号 gets a stable id from 问题编号, 核查时间 and the outcome, so a file
delivered twice loads once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from gridlake.loop_config import load_loop
from gridlake.sources import Source, get_source
from jobs.silver.columns import blank_to_null, halfwidth, parse_timestamp
from jobs.silver.common import build, date_check, raw
from schemas.silver import VERIFICATIONS

if TYPE_CHECKING:
    from gridlake.pipeline import RunContext

log = logging.getLogger(__name__)

INPUT_FIELDS = ("outcome", "checked_at", "new_house_code", "note")
# jobs.gold.exports.CHECKSUM_FIELDS, as canonical column names of the verifications source
CHECKSUM_FIELDS = ("discrepancy_id", "grid_id", "rule", "rule_title", "house_code", "address",
                   "masked_name", "masked_id", "masked_phone")


def checksum_column(fields: Sequence[str] = CHECKSUM_FIELDS) -> Column:
    """The Spark twin of :func:`jobs.gold.exports.row_checksum` over the bronze columns ``fields``."""
    parts = [F.coalesce(F.regexp_replace(raw(f), r"^ +| +$", ""), F.lit("")) for f in fields]
    return F.substring(F.sha2(F.concat_ws("\u001f", *parts), 256), 1, 16)


def outcome_code(col: Column, outcomes: dict[str, str]) -> Column:
    """The outcome code of a configured label (or of a configured code itself), else null."""
    s = blank_to_null(col)
    expr = F.when(F.lit(False), F.lit(None).cast("string"))
    for label, code in outcomes.items():
        expr = expr.when((s == label) | (F.lower(s) == code.lower()), F.lit(code))
    return expr


def context(ctx: RunContext) -> dict[str, Any]:
    """Extra inputs for :func:`transform`: the discrepancies raised so far (id, grid)."""
    from gridlake import io

    if not io.table_exists(ctx.spark, ctx.settings, "gold", "discrepancies"):
        return {"known": None}
    known = io.read_table(ctx.spark, ctx.settings, "gold", "discrepancies").select("discrepancy_id", "grid_id")
    return {"known": known}


def transform(bronze_df: DataFrame, source: Source | None = None, known: DataFrame | None = None,
              outcomes: dict[str, str] | None = None) -> DataFrame:
    """Flagged silver rows of a verification delivery.

    ``known`` (discrepancy_id, grid_id) is gold.discrepancies as of the previous night; without it
    UNKNOWN_DISCREPANCY and WRONG_GRID are not checked (the first night has no discrepancies).
    """
    source = source or get_source("verifications")
    outcomes = outcomes if outcomes is not None else load_loop().outcomes
    df = bronze_df
    for c in source.columns:
        if c not in df.columns:
            df = df.withColumn(c, F.lit(None).cast("string"))
    did = blank_to_null(raw("discrepancy_id"))
    checked = parse_timestamp(raw("checked_at"))
    code = outcome_code(raw("outcome"), outcomes)
    new_code = blank_to_null(F.upper(halfwidth(F.regexp_replace(raw("new_house_code"), "^'", ""))))
    derived_id = F.concat(F.lit("RF"), F.substring(F.sha2(F.concat_ws(
        "|", did, F.date_format(checked, "yyyy-MM-dd HH:mm:ss"), code), 256), 1, 14))
    if known is not None:
        k = known.select(F.col("discrepancy_id").alias("__k_id"), F.col("grid_id").alias("__k_grid")).distinct()
        df = df.join(k, did == F.col("__k_id"), "left")
        unknown = did.isNotNull() & F.col("__k_id").isNull()
        wrong_grid = (blank_to_null(raw("grid_id")).isNotNull() & F.col("__k_grid").isNotNull()
                      & (blank_to_null(raw("grid_id")) != F.col("__k_grid")))
    else:
        unknown = wrong_grid = F.lit(False)
    typed = {
        "verification_id": F.coalesce(blank_to_null(raw("verification_id")), derived_id),
        "discrepancy_id": did,
        "checked_at": checked,
        "outcome": code,
        "officer_id": blank_to_null(raw("officer_id")),
        "note": blank_to_null(raw("note")),
        "new_house_code": new_code,
        "grid_id": blank_to_null(raw("grid_id")),
    }
    nothing = F.lit(True)
    for f in INPUT_FIELDS:
        nothing = nothing & blank_to_null(raw(f)).isNull()
    delivered_sum = blank_to_null(raw("row_checksum"))
    edited = delivered_sum.isNotNull() & (F.lower(delivered_sum) != checksum_column())
    checks = [
        ("NOT_CHECKED", nothing, "no input column filled in"),
        ("EDITED_OUTSIDE_INPUT", edited, "read-only columns differ from the row's 校验码"),
        ("UNKNOWN_DISCREPANCY", unknown, "discrepancy_id"),
        ("WRONG_GRID", wrong_grid, "grid_id"),
        ("OUTCOME_NOT_IN_LIST", code.isNull(), "outcome"),
        ("MISSING_CHECKED_AT", blank_to_null(raw("checked_at")).isNull(), "checked_at"),
        date_check("checked_at", checked),
    ]
    return build(bronze_df, source, VERIFICATIONS, typed, checks, prepared=df)
