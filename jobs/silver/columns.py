"""Column helpers for silver standardisation: pure functions returning Spark Columns.

They mirror the plain-Python rules of :mod:`gridlake.ids` (ID numbers, phones)
so that Spark and the unit tests agree. Nothing here reads or writes tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.silver.values import Typed, date_value

_FULLWIDTH = "０１２３４５６７８９ｘＸ－／：．　"
_HALFWIDTH = "0123456789xX-/:. "
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID18 = r"^[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9X]$"
_ID15 = r"^[1-9][0-9]{5}[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}$"

def blank_to_null(col: Column) -> Column:
    """Trimmed string, null when empty or whitespace only."""
    t = F.trim(F.translate(col, "\u3000", " "))
    return F.when(t == "", F.lit(None)).otherwise(t)


def halfwidth(col: Column) -> Column:
    """Full-width digits, X, dash, slash, colon, dot and space to their ASCII forms."""
    return F.translate(col, _FULLWIDTH, _HALFWIDTH)


def parse_date(col: Column) -> Column:
    """A date from any form :mod:`gridlake.parse.dates` accepts, else null (see :func:`jobs.silver.values.date_value`)."""
    return date_value(col, "", kind="date").value


def parse_timestamp(col: Column) -> Column:
    """A local timestamp from any accepted form (a date alone gives midnight), else null."""
    return date_value(col, "", kind="timestamp").value


def bad_parse(raw: Column, parsed: Column) -> Column:
    """True when ``raw`` holds a value that did not parse (blank values are not bad, they are missing)."""
    return blank_to_null(raw).isNotNull() & parsed.isNull()


def to_int(col: Column) -> Column:
    """An integer from text such as ``3``, ``3.0`` or ``３``, else null."""
    s = halfwidth(blank_to_null(col))
    # at most 9 digits: a cast of a longer number (an 11-digit phone) would fail quoting the value
    return F.when(s.rlike(r"^[0-9]{1,9}(\.0+)?$"), F.regexp_extract(s, r"^([0-9]+)", 1).cast("int"))


def to_double(col: Column) -> Column:
    """A double from text such as ``85.5`` or ``85.5㎡``, else null."""
    s = F.regexp_replace(halfwidth(blank_to_null(col)), "(㎡|平方米|平米|m2|,)", "")
    return F.when(s.rlike(r"^[0-9]{1,15}(\.[0-9]{1,15})?$"), s.cast("double"))


def _id_clean(col: Column) -> Column:
    return F.upper(F.regexp_replace(halfwidth(blank_to_null(col)), "\\s", ""))


def _let(value: Column, body) -> Column:
    """``body(v)`` with ``v`` bound to ``value``: computed once, however often ``body`` uses it.

    Spark copies a Python-built expression wherever it is used: the check digit alone reads the cleaned
    ID 17 times, and a normalised ID held about 60 copies of the cleaning (each a regular expression),
    evaluated one by one inside an ID list's lambda and in interpreted queries. A one-element array's
    ``transform`` binds the value to a lambda variable instead."""
    return F.element_at(F.transform(F.array(value), body), 1)


def id_check_digit(first17: Column) -> Column:
    """GB 11643 check character of 17 digits."""
    total = sum(F.substring(first17, i + 1, 1).cast("int") * w for i, w in enumerate(_ID_WEIGHTS))
    return F.substring(F.lit(_ID_CHECK), (total % 11 + 1).cast("int"), 1)


def _clean_reason(s: Column) -> Column:
    """:func:`id_reason` of an ID already cleaned (:func:`_id_clean`)."""
    return (
        F.when(s.isNull(), F.lit("ID_MISSING"))
        .when(s.rlike(_ID15), F.lit(None))
        .when(~s.rlike(_ID18), F.lit("ID_FORMAT"))
        .when(id_check_digit(F.substring(s, 1, 17)) != F.substring(s, 18, 1), F.lit("ID_CHECKSUM"))
        .otherwise(F.lit(None))
    )


def _clean_normalized(s: Column) -> Column:
    """:func:`normalize_id` of an ID already cleaned (:func:`_id_clean`)."""
    return _normalized_from(s, _clean_reason(s))


def id_reason(col: Column) -> Column:
    """Reason code of an invalid ID (ID_MISSING, ID_FORMAT, ID_CHECKSUM), null when valid (as ids.normalize_id)."""
    return _let(_id_clean(col), _clean_reason)


def normalize_id(col: Column) -> Column:
    """The valid 18-digit ID (15 digits upgraded with 19 + check digit), else null (as ids.normalize_id)."""
    return _let(_id_clean(col), _clean_normalized)


def id_value(raw: Column, column: str) -> tuple[Typed, Column]:
    """``(Typed, legacy15)`` of the ID number ``raw``: the valid 18-digit ID (:func:`normalize_id`), its reason
    (:func:`id_reason`) and whether it was written in 15 digits (:func:`is_legacy15`), from helper columns
    (``Typed.stages``, added by :func:`jobs.silver.values.with_stages`): the ID cleaned once, checked once.

    Inline, each of the four uses cleaned and checked the ID again (a declaration's two ID checks sit in
    conditional branches, where Spark shares no common expression): a quarter of the typing of a district's
    1.27 M declarations (docs/speed.md)."""
    prefix = f"__id_{column}_"
    clean, reason = F.col(f"`{prefix}clean`"), F.col(f"`{prefix}reason`")
    stages = ({f"{prefix}clean": _id_clean(raw)}, {f"{prefix}reason": _clean_reason(clean)})
    return Typed(_normalized_from(clean, reason), reason, None, stages), F.coalesce(clean.rlike(_ID15), F.lit(False))


def _normalized_from(s: Column, reason: Column) -> Column:
    """:func:`normalize_id` of an ID already cleaned (:func:`_id_clean`) whose reason is ``reason``."""
    upgraded = _let(F.concat(F.substring(s, 1, 6), F.lit("19"), F.substring(s, 7, 9)),
                    lambda first17: F.concat(first17, id_check_digit(first17)))
    return F.when(reason.isNull(), F.when(s.rlike(_ID15), upgraded).otherwise(s))


def is_legacy15(col: Column) -> Column:
    """True when the delivered ID was a legacy 15-digit number."""
    return F.coalesce(_id_clean(col).rlike(_ID15), F.lit(False))


def split_ids(col: Column) -> Column:
    """ID-number tokens of a free list separated by ; , 、 ， ； / | or whitespace/newlines (empty tokens dropped)."""
    parts = F.split(F.coalesce(halfwidth(col), F.lit("")), "[;,、，；/／|｜\\s]+")
    return F.filter(parts, lambda p: p != "")


def normalize_id_list(col: Column) -> Column:
    """``struct<ids: string, invalid: int>``: valid IDs (normalised, distinct, ';'-joined) and the invalid count."""
    tokens = split_ids(col)
    ids = F.transform(F.transform(tokens, _id_clean), _clean_normalized)
    valid = F.array_distinct(F.filter(ids, lambda x: x.isNotNull()))
    invalid = F.size(F.filter(ids, lambda x: x.isNull()))
    joined = F.when(F.size(valid) > 0, F.array_join(valid, ";"))
    return F.struct(joined.alias("ids"), invalid.cast("int").alias("invalid"))


#: what separates the persons of a list cell (no whitespace: a name or phone may hold spaces)
_LIST_SEP = "[;,、，；/／|｜]"


def _positions(col: Column | None) -> Column:
    """The entries of a list cell by position (trimmed, empty entries kept as null: they hold a place)."""
    if col is None:
        return F.array().cast("array<string>")
    parts = F.split(F.coalesce(halfwidth(col), F.lit("")), _LIST_SEP)
    return F.transform(parts, lambda p: F.when(F.trim(p) != "", F.trim(p)))


def optional_raw(df, name: str) -> Column | None:
    """A bronze column by canonical name, or None when this delivery's bronze table lacks it."""
    return F.col(f"`{name}`") if name in df.columns else None


def person_list(names: Column | None, phones: Column | None, ids: Column | None) -> Column:
    """``array<struct<name, phone, id_text>>``: the persons a record names, from list cells aligned by
    position (``张三、李四`` with ``138...、`` and ``4403...、``). Phones normalised (:func:`normalize_phone`),
    the ID as written (trimmed; validated by person linkage), empty positions null; an entry with nothing in
    it is dropped. Restricted (silver): person linkage reads it, gold never does."""
    n, p, i = _positions(names), _positions(phones), _positions(ids)
    size = F.greatest(F.size(n), F.size(p), F.size(i))
    entries = F.transform(F.sequence(F.lit(0), size - 1), lambda k: F.struct(
        F.get(n, k).alias("name"), normalize_phone(F.get(p, k)).alias("phone"), F.get(i, k).alias("id_text")))
    entries = F.when(size > 0, entries)
    return F.filter(entries, lambda e: e["name"].isNotNull() | e["phone"].isNotNull() | e["id_text"].isNotNull())


def normalize_phone(col: Column) -> Column:
    """Digits of a Chinese mobile or landline (+86/0086, spaces, dashes, parentheses, an extension), else null.

    As :func:`gridlake.ids.normalize_phone`: ``+86 755 8888 6666`` -> ``075588886666``.
    """
    s = F.regexp_replace(halfwidth(col), "(?i)(转|分机|ext\\.?|#)\\s*[0-9]+\\s*$", "")
    d = F.regexp_replace(s, "[^0-9]", "")
    rest = F.when(d.startswith("0086"), F.substring(d, 5, 100)).when(
        d.startswith("86") & F.length(d).between(11, 13), F.substring(d, 3, 100))
    d = F.when(rest.isNull(), d).when(rest.rlike("^([2-9][0-9]{8,10}|10[0-9]{8})$"), F.concat(F.lit("0"), rest)
                                      ).otherwise(rest)
    return F.when(d.rlike(r"^1[3-9][0-9]{9}$") | d.rlike(r"^0[0-9]{9,11}$"), d)


def map_vocab(col: Column, mapping: Mapping[str, str]) -> Column:
    """The code of a Chinese label (a code itself is accepted too), else null."""
    s = blank_to_null(col)
    expr = F.when(F.lit(False), F.lit(None))
    for label, code in mapping.items():
        expr = expr.when((s == label) | (F.lower(s) == code.lower()), F.lit(code))
    return expr


def in_list(col: Column, values: Sequence[str]) -> Column:
    """The trimmed value if it is one of ``values``, else null."""
    s = blank_to_null(col)
    return F.when(s.isin(list(values)), s)


def row_hash(columns: Sequence[str]) -> Column:
    """A stable SHA-256 over the given columns (null-safe, type-aware via string casts)."""
    parts = [F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("\u0000")) for c in columns]
    return F.sha2(F.concat_ws("\u0001", *parts), 256)
