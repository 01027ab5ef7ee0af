"""The shared shape of every silver transform: type, check, flag.

A table's ``transform`` gives :func:`build` its typed column expressions and its
checks; :func:`build` adds the checks every source has (malformed row, missing
required columns), selects the silver schema exactly, and flags each row with the
first failing reason (``_reason_code``) and all of them (``_reason_detail``).
:func:`split` turns the flagged frame into ``(silver_rows, quarantine_rows)``.
Nothing here reads or writes tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from gridlake.sources import Source
from jobs.silver.columns import bad_parse, blank_to_null, row_hash
from jobs.silver.values import Typed, profile_array
from schemas.address import ADDRESS_COMPONENTS
from schemas.silver import QUARANTINE

LINEAGE_COLUMNS = ("_source_file", "_file_sha256", "_row_number", "_run_id", "_delivery_date")
SCD2_COLUMNS = ("valid_from", "valid_to", "is_current", "row_hash")
FLAG_COLUMNS = ("_reason_code", "_reason_detail", "_raw_line", "_business_key", "_profile")
#: a bronze row's id: its file and its row number in that file
ROW_ID = ("_file_sha256", "_row_number")

# (reason code - a constant or a Column giving it per row -, condition that FAILS the row, detail text).
# The detail names the column, never the value.
Check = tuple["str | Column", Column, str]


def raw(name: str) -> Column:
    """A bronze column (string) by canonical name."""
    return F.col(f"`{name}`")


def business_columns(schema: StructType) -> list[str]:
    """Columns whose values define a row's content (no lineage, no SCD2 bookkeeping)."""
    return [f.name for f in schema.fields if f.name not in LINEAGE_COLUMNS and f.name not in SCD2_COLUMNS]


def address_struct(address: Column) -> Column:
    """``struct<address_norm, addr>`` from the matching library.

    Fails closed: if the matching library cannot be imported the stage fails (an ImportError), it
    never goes on with unparsed addresses.
    """
    from matching.spark import address_columns

    return address_columns(address)


def with_address(df: DataFrame, column: str = "address") -> DataFrame:
    """Add ``address_raw``, ``address_norm`` and ``addr`` from the raw address column."""
    df = df.withColumn("address_raw", blank_to_null(raw(column)))
    return df.withColumn("__a", address_struct(F.col("address_raw"))).withColumn(
        "address_norm", F.col("__a.address_norm")).withColumn("addr", F.col("__a.addr")).drop("__a")


def overlay_components(parsed: Column, delivered: Mapping[str, Column]) -> Column:
    """An address struct taking each parsed component, else the delivered one."""
    return F.struct(*[
        F.coalesce(parsed.getField(c), blank_to_null(delivered[c]) if c in delivered else F.lit(None).cast("string"))
        .alias(c) for c in ADDRESS_COMPONENTS
    ])


def vocab_check(raw_col: str, typed: Column) -> Check:
    """BAD_VOCAB when a delivered label is not in the vocabulary."""
    return ("BAD_VOCAB", bad_parse(raw(raw_col), typed), raw_col)


def date_check(raw_col: str, typed: Column) -> Check:
    """BAD_DATE when a delivered date/time does not parse."""
    return ("BAD_DATE", bad_parse(raw(raw_col), typed), raw_col)


def number_check(raw_col: str, typed: Column) -> Check:
    """BAD_NUMBER when a delivered number does not parse."""
    return ("BAD_NUMBER", bad_parse(raw(raw_col), typed), raw_col)


def typed_check(raw_col: str, typed: Typed) -> Check:
    """The reason :class:`~jobs.silver.values.Typed` gives (BAD_DATE_IMPOSSIBLE, UNKNOWN_VOCAB, OUT_OF_RANGE...)."""
    return (typed.reason, typed.reason.isNotNull(), raw_col)


def raw_line(source: Source) -> Column:
    """A bronze row as delivered: the line bronze kept (a malformed row's), else its canonical columns as JSON."""
    return F.coalesce(F.col("_raw_line"), F.to_json(F.struct(*[raw(c) for c in source.canonical_columns])))


def with_raw_lines(rows: DataFrame, bronze: DataFrame, source: Source, small: bool) -> DataFrame:
    """``rows`` (a flagged frame's) with each one's :func:`raw_line` read from its bronze row in ``bronze``, by
    ``_file_sha256`` and ``_row_number``: :func:`build` writes the raw line of the rows it quarantines only, so
    the rows deduplication sets aside get theirs here. ``small``: few enough rows to broadcast their ids, so
    ``bronze`` is scanned, not shuffled. A row keeps the line it had when its bronze row is not found."""
    ids = rows.select(*ROW_ID)
    lines = (bronze.join(F.broadcast(ids) if small else ids, list(ROW_ID), "left_semi")
             .select(*ROW_ID, raw_line(source).alias("__line")).dropDuplicates(list(ROW_ID)))
    return (rows.join(lines, list(ROW_ID), "left")
            .withColumn("_raw_line", F.coalesce(F.col("__line"), F.col("_raw_line"))).drop("__line")
            .select(*rows.columns))


def build(
    bronze: DataFrame,
    source: Source,
    schema: StructType,
    typed: Mapping[str, Column],
    checks: Sequence[Check] = (),
    prepared: DataFrame | None = None,
    profile: Sequence[Column | None] = (),
) -> DataFrame:
    """The flagged silver frame: ``schema`` columns plus ``_reason_code``, ``_reason_detail``, ``_raw_line``,
    ``_business_key`` and ``_profile`` (date forms, unknown vocabulary values... for the delivery report).

    ``_raw_line`` (:func:`raw_line`) is written for the rows a check fails only, the ones quarantined here: a
    JSON of every delivered column on each of a night's rows, carried through deduplication's shuffle and
    the kept batches, was silver's work for the few rows set aside (``docs/speed.md``). The rows
    deduplication sets aside get theirs from bronze (:func:`with_raw_lines`).

    ``typed`` maps silver columns to expressions over the bronze row (lineage and
    SCD2 columns are filled here when absent); ``checks`` fail a row with a reason.
    ``prepared`` is ``bronze`` with extra helper columns (e.g. the parsed address).
    """
    df = prepared if prepared is not None else bronze
    missing = [F.when(blank_to_null(raw(c)).isNull(), F.lit(c)) for c in source.required]
    missing_arr = F.filter(F.array(*missing), lambda x: x.isNotNull())
    all_checks: list[tuple[str | Column, Column, Column]] = [
        ("MALFORMED_ROW", F.col("_malformed_reason").isNotNull(), F.col("_malformed_reason")),
        ("MISSING_REQUIRED", F.size(missing_arr) > 0, F.concat(F.lit("missing: "), F.array_join(missing_arr, ","))),
    ]
    for code, cond, detail in checks:
        code_col = code if isinstance(code, Column) else F.lit(code)
        all_checks.append((code_col, cond, F.concat(code_col, F.lit(f": {detail}"))))
    flags = F.filter(
        F.array(*[F.when(F.coalesce(cond, F.lit(False)),
                         F.struct((F.lit(code) if isinstance(code, str) else code).alias("code"), det.alias("detail")))
                  for code, cond, det in all_checks]),
        lambda x: x.isNotNull(),
    )
    exprs: dict[str, Column] = {c: F.col(c) for c in LINEAGE_COLUMNS}
    exprs.update(typed)
    names = [f.name for f in schema.fields]
    if "valid_from" in names:
        exprs.setdefault("valid_from", F.col("_delivery_date"))
        exprs.setdefault("valid_to", F.lit(None).cast("date"))
        exprs.setdefault("is_current", F.lit(True))
    out = df.withColumn("__flags", flags).select(
        *[exprs[f.name].cast(f.dataType).alias(f.name) for f in schema.fields if f.name != "row_hash"],
        F.get(F.col("__flags"), 0)["code"].alias("_reason_code"),
        F.when(F.size("__flags") > 0, F.array_join(F.transform("__flags", lambda x: x["detail"]), "; "))
        .alias("_reason_detail"),
        F.when(F.size("__flags") > 0, raw_line(source)).alias("_raw_line"),
        F.when(F.coalesce(*[blank_to_null(raw(k)) for k in source.key]).isNotNull(),
               F.concat_ws("|", *[raw(k) for k in source.key])).alias("_business_key"),
        profile_array(list(profile)).alias("_profile"),
    )
    if "row_hash" in names:
        out = out.withColumn("row_hash", row_hash(business_columns(schema)))
        out = out.select(*names, *FLAG_COLUMNS)
    return out


def split(flagged: DataFrame, schema: StructType, source_name: str) -> tuple[DataFrame, DataFrame]:
    """``(silver_rows in schema, quarantine_rows in QUARANTINE)`` of a flagged frame."""
    good = flagged.where(F.col("_reason_code").isNull()).select(*[f.name for f in schema.fields])
    bad = to_quarantine(flagged.where(F.col("_reason_code").isNotNull()), source_name)
    return good, bad


def to_quarantine(flagged: DataFrame, source_name: str, code: Column | None = None,
                  detail: Column | None = None) -> DataFrame:
    """Rows as :data:`schemas.silver.QUARANTINE` (``_reason_code``/``_reason_detail`` unless given)."""
    cols = {
        "source": F.lit(source_name),
        "reason_code": code if code is not None else F.col("_reason_code"),
        "reason_detail": detail if detail is not None else F.col("_reason_detail"),
        "business_key": F.col("_business_key"),
        "_raw_line": F.col("_raw_line"),
        "_quarantined_at": F.current_timestamp(),
    }
    return flagged.select(*[
        (cols[f.name] if f.name in cols else F.col(f.name)).cast(f.dataType).alias(f.name) for f in QUARANTINE.fields
    ])
