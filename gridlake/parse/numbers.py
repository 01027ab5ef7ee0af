"""Numbers as departments write them: units, thousands separators, full-width and Chinese digits.

``85.5㎡``, ``85.5平方米``, ``85.5平``, ``1,234.5``, ``８５``, ``3人``, ``三人``, ``十二``. A number that
is not one is ``BAD_NUMBER``; a number outside the plausible range of its column (area <= 0 or
above the configured maximum, a count below 0 or above its maximum, an 11-digit phone number in a
count) is ``OUT_OF_RANGE``. Reason texts never carry the value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from gridlake.parse.cnnum import cn_to_int

BAD_NUMBER = "BAD_NUMBER"
OUT_OF_RANGE = "OUT_OF_RANGE"
MAX_TEXT = 32

AREA_UNITS = ("平方米", "平方公尺", "平方", "平米", "平", "㎡", "m²", "m^2", "m2", "sqm", "米²", "米2")
COUNT_UNITS = ("人", "名", "位", "口", "个")
_PREFIX = ("约", "共", "计")

_NUMBER = re.compile(r"(?P<sign>[-+−])?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?")


@dataclass(frozen=True)
class NumberRules:
    """What a column's numbers may be: integer or not, its unit words, its plausible range (inclusive max)."""

    integer: bool = False
    units: tuple[str, ...] = ()
    min_exclusive: float | None = None  # area: > 0
    min_inclusive: float | None = 0     # counts: >= 0
    max_inclusive: float | None = None


class ParsedNumber(NamedTuple):
    """Value (None when unusable), form (``N.N平方米``, never the value), reason."""

    value: float | int | None
    form: str | None
    reason: str | None


def _strip_unit(s: str, units: tuple[str, ...]) -> tuple[str, str]:
    low = s.lower()
    for u in sorted(units, key=len, reverse=True):
        if low.endswith(u.lower()):
            return s[: len(s) - len(u)].strip(), u
    return s, ""


def parse_number(text: str | None, rules: NumberRules = NumberRules()) -> ParsedNumber:  # noqa: B008
    """Parse one delivered number by ``rules``; blank -> ``(None, None, None)`` (missing, not bad)."""
    if text is None:
        return ParsedNumber(None, None, None)
    s = unicodedata.normalize("NFKC", text).replace("\u3000", " ").strip()
    s = re.sub(r"\s+", "", s)
    if not s:
        return ParsedNumber(None, None, None)
    if len(s) > MAX_TEXT:
        return ParsedNumber(None, "TEXT_TOO_LONG", BAD_NUMBER)
    for p in _PREFIX:
        if s.startswith(p):
            s = s[len(p):]
    s, unit = _strip_unit(s, rules.units)
    s = s.replace("，", ",").replace("．", ".")
    m = _NUMBER.fullmatch(s)
    if m:
        digits = m["int"].replace(",", "")
        form = ("-" if m["sign"] in ("-", "−") else "") + ("N,NNN" if "," in m["int"] else "N") + (
            ".N" if m["frac"] is not None else "") + unit
        value: float | int = float(f"{digits}.{m['frac'] or '0'}")
        if m["sign"] in ("-", "−"):
            value = -value
    else:
        cn = cn_to_int(s)
        if cn is None:
            return ParsedNumber(None, None, BAD_NUMBER)
        value, form = cn, "中文数字" + unit
    if rules.integer:
        if value != int(value):
            return ParsedNumber(None, form, BAD_NUMBER)
        value = int(value)
    if rules.min_exclusive is not None and value <= rules.min_exclusive:
        return ParsedNumber(None, form, OUT_OF_RANGE)
    if rules.min_inclusive is not None and value < rules.min_inclusive:
        return ParsedNumber(None, form, OUT_OF_RANGE)
    if rules.max_inclusive is not None and value > rules.max_inclusive:
        return ParsedNumber(None, form, OUT_OF_RANGE)
    return ParsedNumber(value, form, None)


@lru_cache(maxsize=100_000)
def parse_number_cached(text: str | None, rules: NumberRules = NumberRules()) -> ParsedNumber:  # noqa: B008
    """:func:`parse_number`, each distinct (text, rules) parsed once per process."""
    return parse_number(text, rules)
