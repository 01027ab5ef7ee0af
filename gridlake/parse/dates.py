"""One date-time parser for every delivered date and timestamp column.

Accepts the forms Chinese systems, clerks and spreadsheets write:

* ``2026-11-03``, ``2026/11/3``, ``2026.11.03``, ``20261103``, ``2026年11月3日`` (also ``号``);
* with a time: ``14:05``, ``14:05:06``, ``14:05:06.123``, ``14时05分(06秒)``, ``14点05分``, ``20261103 140506``,
  ``20261103140506``; ``T`` between date and time; AM/PM words (``上午``/``早上``/``凌晨``, ``中午``,
  ``下午``/``傍晚``/``晚上``/``夜里``, ``AM``/``PM``) before or after the time;
* a time-zone offset (``+08:00``, ``+0800``, ``Z``) -> converted to the local zone (Asia/Shanghai);
* Chinese-digit dates ``二〇二六年十一月三日``;
* Excel serial numbers (``45964``, ``45964.5``; 1900 date system) inside a plausible range;
* day/month/year with four-digit year (``03/11/2026``) only when one reading is impossible
  (``13/11/2026`` is 13 November), and two-digit years (``26-11-03``) only when exactly one
  reading falls inside the configured two-digit-year window.

Rejects with a reason code: ``BAD_DATE`` (not a date at all), ``BAD_DATE_AMBIGUOUS``
(``03/11/2026``: 3 November or 11 March), ``BAD_DATE_IMPOSSIBLE`` (``2026-02-30``,
month 13, hour 25), ``DATE_OUT_OF_RANGE`` (year 0001 or 9999, a serial outside the
plausible range). ``DATE_IN_FUTURE`` is decided against the delivery date by the caller
(:func:`future_cutoff`). Every result carries the *form* (``YYYY年M月D日 H时mm分``), never the value.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from gridlake.parse.cnnum import CN_CHARS, replace_cn_numbers

BAD_DATE = "BAD_DATE"
AMBIGUOUS = "BAD_DATE_AMBIGUOUS"
IMPOSSIBLE = "BAD_DATE_IMPOSSIBLE"
OUT_OF_RANGE = "DATE_OUT_OF_RANGE"
IN_FUTURE = "DATE_IN_FUTURE"
REASONS = (BAD_DATE, AMBIGUOUS, IMPOSSIBLE, OUT_OF_RANGE, IN_FUTURE)

EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # 1900 system, with Lotus' phantom 29 Feb 1900 (serials >= 61)
MAX_TEXT = 64


@dataclass(frozen=True)
class DateRules:
    """Plausibility bounds (configurable in ``conf/values.yaml``)."""

    min_year: int = 1900
    max_year: int = 2100
    serial_min_year: int = 1950      # an Excel serial is read as a date only from this year ...
    serial_max_year: int = 2100      # ... to this one (45964 is 2025-11-03)
    two_digit_min_year: int = 2015   # 26-11-03 is read as 2026-11-03 because 2003-11-26 is outside this window
    two_digit_max_year: int = 2035
    timezone: str = "Asia/Shanghai"


class ParsedDate(NamedTuple):
    """A parse result: the local naive datetime (or None), the form seen, the reason when rejected."""

    value: dt.datetime | None
    form: str | None
    reason: str | None


_AM = ("上午", "早上", "早晨", "凌晨", "清晨", "AM", "A.M.")
_NOON = ("中午",)
_PM = ("下午", "傍晚", "晚上", "夜里", "夜间", "晚间", "PM", "P.M.")
_MERIDIEM = "|".join(re.escape(w) for w in sorted(_AM + _NOON + _PM, key=len, reverse=True))

_TIME = (
    rf"(?:(?P<mer1>{_MERIDIEM})\s*)?"
    r"(?P<H>\d{1,2})\s*(?P<hsep>[:时點点])\s*"
    r"(?:(?P<Mi>\d{1,2})\s*(?P<msep>[:分])?\s*"
    r"(?:(?P<S>\d{1,2})(?:[.,](?P<f>\d{1,9}))?\s*秒?)?)?"
    r"(?:半)?"
    rf"(?:\s*(?P<mer2>{_MERIDIEM}))?"
    r"(?:\s*(?P<tz>Z|(?:UTC|GMT)?[+-]\d{2}(?::?\d{2})?))?"
)
_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ymd_sep", re.compile(r"(?P<y>\d{4})\s*(?P<s>[-/.])\s*(?P<m>\d{1,2})\s*(?P=s)\s*(?P<d>\d{1,2})")),
    ("ymd_cn", re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*(?P<dm>[日号])?")),
    ("ymd_compact", re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?=\D|$|\d{4}(?:\d{2})?(?:[.,]\d+)?$)")),
    ("xy4", re.compile(r"(?P<a>\d{1,2})\s*(?P<s>[-/.])\s*(?P<b>\d{1,2})\s*(?P=s)\s*(?P<y>\d{4})")),
    ("yy2", re.compile(r"(?P<a>\d{2})(?P<s>[-/.])(?P<b>\d{1,2})(?P=s)(?P<c>\d{1,2})(?=\D|$)")),
)
_COMPACT_TIME = re.compile(r"(?P<H>\d{2})(?P<Mi>\d{2})(?P<S>\d{2})?(?:[.,](?P<f>\d{1,9}))?")
_TIME_RE = re.compile(_TIME, re.IGNORECASE)
_SERIAL = re.compile(r"(?P<n>\d{5})(?:\.(?P<f>\d{1,12}))?")
_SPACES = re.compile(r"\s+")
_CN_IN_DATE = re.compile(f"[{CN_CHARS}]+(?=[年月日号时点分秒])")
_WEEKDAY = re.compile(r"[(（]?(?:星期|周|礼拜)[一二三四五六日天][)）]?")


def _normalise(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).strip()
    s = s.replace("\u3000", " ")
    s = _WEEKDAY.sub(" ", s)  # 2026年11月3日(星期二): the weekday adds nothing
    return _SPACES.sub(" ", s).strip()


_TOKENS = {"y": ("YY", "YYYY"), "m": ("M", "MM"), "d": ("D", "DD"), "H": ("H", "HH"), "Mi": ("m", "mm"),
           "S": ("s", "ss"), "n": ("N", "NN")}


def _tok(kind: str, digits: str | None) -> str:
    if digits is None:
        return ""
    n = len(digits)
    if kind == "f":
        return "f" * n
    if kind == "y":
        return "YYYY" if n == 4 else "YY"
    return _TOKENS[kind][1 if n == 2 else 0]


def _form_of(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each value span replaced by its token (the form, never the value)."""
    out, last = [], 0
    for start, end, token in sorted(spans):
        out.append(text[last:start])
        out.append(token)
        last = end
    out.append(text[last:])
    form = "".join(out)
    form = re.sub(r"\d", "9", form)  # anything numeric left (should be nothing) is not shown
    return form[:MAX_TEXT]


def _hour(h: int, mer: str | None) -> int | None:
    if mer is None:
        return h
    if mer in _AM:
        return 0 if h == 12 else (h if h < 12 else None)
    if mer in _NOON:
        return h + 12 if h < 3 else (h if h <= 14 else None)
    return h + 12 if h < 12 else (h if h <= 23 else None)  # 下午14:05 happens; keep it


def _time_part(rest: str, offset: int) -> tuple[tuple[int, int, int, int, str | None] | None, list, str | None]:
    """Parse the text after the date: ``((H, M, S, micro, tz), spans, reason)``; reason when it is not a time."""
    rest_stripped = rest.lstrip(" T")
    lead = len(rest) - len(rest_stripped)
    if not rest_stripped:
        return (0, 0, 0, 0, None), [], None
    m = _COMPACT_TIME.fullmatch(rest_stripped)
    if m is None:
        m = _TIME_RE.fullmatch(rest_stripped)
    if m is None:
        tz_only = re.fullmatch(r"(?P<tz>Z|[+-]\d{2}:?\d{2})", rest_stripped)
        if tz_only:
            return (0, 0, 0, 0, tz_only["tz"]), [], None
        return None, [], BAD_DATE
    g = m.groupdict()
    base = offset + lead
    spans = [(base + m.start(k), base + m.end(k), _tok(k, g[k])) for k in ("H", "Mi", "S", "f") if g.get(k)]
    if g.get("tz"):
        spans.append((base + m.start("tz"), base + m.end("tz"), "Z" if g["tz"].upper() == "Z" else "+hh:mm"))
    mer = g.get("mer1") or g.get("mer2")
    if g.get("mer1") and g.get("mer2"):
        return None, [], BAD_DATE
    if mer:
        mer = mer.upper()
    h = _hour(int(g["H"]), mer)
    minute = int(g["Mi"]) if g.get("Mi") else (30 if "半" in rest_stripped else 0)
    sec = int(g["S"]) if g.get("S") else 0
    frac = g.get("f") or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    if h is None or h > 23 or minute > 59 or sec > 59:
        return None, spans, IMPOSSIBLE
    return (h, minute, sec, micro, g.get("tz")), spans, None


def _valid(y: int, m: int, d: int) -> bool:
    try:
        dt.date(y if y >= 1 else 2000, m, d)
    except ValueError:
        return False
    return True


def _to_local(value: dt.datetime, tz: str | None, rules: DateRules) -> dt.datetime:
    if not tz:
        return value
    t = tz.upper().replace("UTC", "").replace("GMT", "")
    if t == "Z":
        off = dt.timedelta(0)
    else:
        sign = -1 if t[0] == "-" else 1
        digits = t[1:].replace(":", "")
        off = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    aware = value.replace(tzinfo=dt.timezone(off))
    return aware.astimezone(ZoneInfo(rules.timezone)).replace(tzinfo=None)


def _serial(s: str, rules: DateRules) -> ParsedDate | None:
    m = _SERIAL.fullmatch(s)
    if not m:
        return None
    days = int(m["n"]) + (float("0." + m["f"]) if m["f"] else 0.0)
    value = EXCEL_EPOCH + dt.timedelta(days=days)
    value = value.replace(microsecond=0) + dt.timedelta(seconds=round(value.microsecond / 1e6))
    form = "EXCEL_SERIAL" + (".f" if m["f"] else "")
    if not rules.serial_min_year <= value.year <= rules.serial_max_year:
        return ParsedDate(None, form, OUT_OF_RANGE)
    return ParsedDate(value, form, None)


def _reading(kind: str, g: dict[str, str], rules: DateRules) -> tuple[tuple[int, int, int] | None, str | None, str]:
    """``((y, m, d), reason, date_form)`` for the matched date part."""
    if kind in ("ymd_sep", "ymd_cn", "ymd_compact"):
        return (int(g["y"]), int(g["m"]), int(g["d"])), None, ""
    if kind == "xy4":
        a, b, y = int(g["a"]), int(g["b"]), int(g["y"])
        dmy, mdy = _valid(y, b, a), _valid(y, a, b)
        if dmy and mdy and a != b:
            return None, AMBIGUOUS, ""
        if dmy:
            return (y, b, a), None, "D/M"
        if mdy:
            return (y, a, b), None, "M/D"
        return None, IMPOSSIBLE, ""
    a, b, c = int(g["a"]), int(g["b"]), int(g["c"])
    readings = {(2000 + a, b, c): "YY-M-D", (2000 + c, b, a): "D-M-YY", (2000 + c, a, b): "M-D-YY"}
    ok = {r: f for r, f in readings.items()
          if _valid(*r) and rules.two_digit_min_year <= r[0] <= rules.two_digit_max_year}
    if len(ok) == 1:
        (ymd, f), = ok.items()
        return ymd, None, f
    if not ok:
        return None, (IMPOSSIBLE if not any(_valid(*r) for r in readings) else OUT_OF_RANGE), ""
    return None, AMBIGUOUS, ""


def _date_spans(kind: str, m: re.Match[str], form_hint: str) -> list[tuple[int, int, str]]:
    g = m.groupdict()
    if kind in ("ymd_sep", "ymd_cn", "ymd_compact"):
        return [(m.start(k), m.end(k), _tok(k, g[k])) for k in ("y", "m", "d")]
    if kind == "xy4":
        first, second = {"D/M": ("d", "m"), "M/D": ("m", "d")}.get(form_hint, ("n", "n"))
        return [(m.start("a"), m.end("a"), _tok(first, g["a"])), (m.start("b"), m.end("b"), _tok(second, g["b"])),
                (m.start("y"), m.end("y"), "YYYY")]
    order = {"YY-M-D": ("y", "m", "d"), "D-M-YY": ("d", "m", "y"), "M-D-YY": ("m", "d", "y")}.get(form_hint, "nnn")
    return [(m.start(k), m.end(k), _tok(t, g[k])) for k, t in zip(("a", "b", "c"), order, strict=True)]


def parse_datetime(text: str | None, rules: DateRules = DateRules()) -> ParsedDate:  # noqa: B008
    """Parse one delivered date or date-time. Blank -> ``(None, None, None)`` (missing, not bad)."""
    if text is None:
        return ParsedDate(None, None, None)
    s = _normalise(text)
    if not s:
        return ParsedDate(None, None, None)
    if len(s) > MAX_TEXT:
        return ParsedDate(None, "TEXT_TOO_LONG", BAD_DATE)
    cn = False
    if _CN_IN_DATE.search(s):
        s, cn = replace_cn_numbers(s)
    serial = _serial(s, rules)
    if serial is not None:
        return serial
    for kind, pattern in _DATE_PATTERNS:
        m = pattern.match(s)
        if not m:
            continue
        ymd, reason, hint = _reading(kind, m.groupdict(), rules)
        time_, tspans, treason = _time_part(s[m.end():], m.end())
        if treason == BAD_DATE:
            continue  # another pattern may read it (20261103140506 is not ymd_compact + junk)
        form = ("中文数字:" if cn else "") + _form_of(s, _date_spans(kind, m, hint) + tspans)
        if reason:
            return ParsedDate(None, form, reason)
        if treason:
            return ParsedDate(None, form, treason)
        y, mo, d = ymd  # type: ignore[misc]
        if not _valid(y, mo, d):
            return ParsedDate(None, form, IMPOSSIBLE)
        if y < 1 or not rules.min_year <= y <= rules.max_year:
            return ParsedDate(None, form, OUT_OF_RANGE)
        h, mi, sec, micro, tz = time_  # type: ignore[misc]
        value = _to_local(dt.datetime(y, mo, d, h, mi, sec, micro), tz, rules)
        if not rules.min_year <= value.year <= rules.max_year:
            return ParsedDate(None, form, OUT_OF_RANGE)
        return ParsedDate(value, form, None)
    return ParsedDate(None, None, BAD_DATE)


@lru_cache(maxsize=200_000)
def parse_cached(text: str | None, rules: DateRules = DateRules()) -> ParsedDate:  # noqa: B008
    """:func:`parse_datetime` with each distinct (text, rules) parsed once per process."""
    return parse_datetime(text, rules)


def future_cutoff(delivery: dt.date, tolerance_days: int) -> dt.datetime:
    """The first instant that is *in the future* for a record delivered on ``delivery``.

    A record may be dated up to the end of its delivery day plus ``tolerance_days``
    (clocks, time zones and night-time exports); anything later is ``DATE_IN_FUTURE``.
    """
    return dt.datetime.combine(delivery + dt.timedelta(days=1 + tolerance_days), dt.time(0))
