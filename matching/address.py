"""Chinese address normaliser and parser (pure Python, no Spark).

``normalize`` turns free text into a canonical string; ``parse`` splits it into the
components of :data:`schemas.address.ADDRESS_COMPONENTS`.

Normalisation, in order:

1. NFKC (full-width digits, letters and brackets become ASCII), upper-case letters;
2. bracketed notes removed: ``(...)``, ``[...]``, ``【...】``, ``〔...〕``, ``<...>``;
3. whitespace and separators other than ``-`` removed, dash variants unified to ``-``;
4. administrative prefixes (province, city, district) removed — the district is implied;
5. Chinese numerals converted to digits **only next to** 号/栋/幢/座/单元/层/楼/室
   (``三栋五零一`` -> ``3栋501``, ``五楼`` -> ``5楼``; ``三元里`` and ``东村二坊`` stay);
6. synonyms: 号楼/座/幢/栋 after a number -> ``栋`` (building); ``N楼`` -> ``N层`` (floor);
   ``N房``/``N号房`` -> ``N室``; short forms ``12-3-501`` -> ``12栋3单元501室`` and
   ``12-501`` -> ``12栋501室`` at the end of the text.
"""

from __future__ import annotations

import re
import unicodedata

from schemas.address import ADDRESS_COMPONENTS

__all__ = ["normalize", "parse", "parse_normalized", "cn_to_int", "SHENZHEN_DISTRICTS"]

SHENZHEN_DISTRICTS = ("福田区", "罗湖区", "南山区", "盐田区", "宝安区", "龙岗区", "龙华区", "坪山区", "光明区", "大鹏新区")

_CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_CHARS = "".join(_CN_DIGITS) + "".join(_CN_UNITS)
_MARKERS = ("号楼", "单元", "号", "栋", "幢", "座", "层", "楼", "室")
_MARKER_RE = "|".join(_MARKERS)

_BRACKETS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|〔[^〔〕]*〕|<[^<>]*>|《[^《》]*》|\{[^{}]*\}")
_HAS_BRACKET = re.compile(r"[\[【〔<《{(]")
_DASHES = re.compile(r"[‐‑‒–—―−~～_]+")
_DROP = re.compile(r"[\s,，。.、;；:：'\"“”‘’/\\|#]+")
_PROVINCE = re.compile(r"^(广东省|广东)")
_CITY = re.compile(r"^(深圳市|深圳)")
_DISTRICT = re.compile(r"^(" + "|".join(SHENZHEN_DISTRICTS) + "|" + "|".join(d[:-1] for d in SHENZHEN_DISTRICTS[:-1])
                       + r")(?!路|村|街|大道|社区|花园)")
# a run of Chinese numerals before a marker, or after a marker when not followed by more CJK text
_NUM_BEFORE = re.compile(rf"([{_CN_CHARS}]+)(?=({_MARKER_RE}))")
_NUM_AFTER = re.compile(rf"(?<=栋|幢|座|元|层|楼|号|室)([{_CN_CHARS}]+)(?=$|[-\dA-Z]|房|{_MARKER_RE})")


_SYN_BUILDING = re.compile(r"(\d+|[A-Z])(?:号楼|号栋|栋|幢|座|号座)")
_SYN_FLOOR = re.compile(r"(\d+)(?:楼|层)")
_SYN_ROOM = re.compile(r"(\d+)(?:号房|号室|房间|房)")
_SHORT_BUR = re.compile(r"(?<![\d-])(\d+|[A-Z])-(\d+)-(\d+)(?:室|号)?$")
_LANE_SHORT = re.compile(r"[坊巷]\d+-\d{3,4}$")
_LANE_SHORT_NO = re.compile(r"(\d+)-(\d{3,4})$")
_SHORT_BR = re.compile(r"(?<![\d-])(\d+|[A-Z])-(\d{3,4})(?:室)?$")
_PART_DASH = re.compile(r"(栋|单元|层)-")


def cn_to_int(text: str) -> int | None:
    """Convert a Chinese numeral (``五零一``, ``十二``, ``二十一``, ``一百零五``) to an int; None if not one."""
    if not text or any(ch not in _CN_DIGITS and ch not in _CN_UNITS for ch in text):
        return None
    if not any(ch in _CN_UNITS for ch in text):  # digit by digit: 五零一 -> 501
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        else:
            unit = _CN_UNITS[ch]
            total += (current or 1) * unit
            current = 0
    return total + current


def _convert_numerals(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        value = cn_to_int(m.group(1))
        return m.group(1) if value is None else str(value)

    text = _NUM_BEFORE.sub(repl, text)
    return _NUM_AFTER.sub(repl, text)


def normalize(text: str | None) -> str | None:
    """Canonical form of a free-text address; None for None or blank text."""
    if text is None:
        return None
    s = unicodedata.normalize("NFKC", str(text)).upper()
    prev = None
    while prev != s and _HAS_BRACKET.search(s):  # nested brackets
        prev, s = s, _BRACKETS.sub("", s)
    s = s.replace("(", "").replace(")", "")
    s = _DASHES.sub("-", s)
    s = _DROP.sub("", s)
    s = _PROVINCE.sub("", s)
    s = _CITY.sub("", s)
    s = _DISTRICT.sub("", s)
    s = _convert_numerals(s)
    s = _SYN_BUILDING.sub(r"\1栋", s)       # synonyms: building
    s = _SYN_FLOOR.sub(r"\1层", s)          # floor: N楼 / N层 (never 号楼, handled above)
    s = _SYN_ROOM.sub(r"\1室", s)           # room: N号房 / N房 / N号室
    if "-" in s:
        # short forms at the end: 12-3-501 (building-unit-room), 12-501 (building-room)
        s = _SHORT_BUR.sub(r"\1栋\2单元\3室", s)
        if _LANE_SHORT.search(s):           # urban village: lane number - room
            s = _LANE_SHORT_NO.sub(r"\1号\2", s)
        s = _SHORT_BR.sub(r"\1栋\2室", s)
        s = _PART_DASH.sub(r"\1", s)       # a dash between a building/unit and the next part: 3栋-501 -> 3栋501
    return s or None


_STREET = re.compile(r"^([\u4e00-\u9fff]{2,6}?街道)(?:办事处|办)?")
_COMMUNITY = re.compile(r"^([\u4e00-\u9fff]{1,8}?社区)(?:居委会|工作站)?")
_VILLAGE = re.compile(r"^([\u4e00-\u9fff]{1,6}?村)(?=[\u4e00-\u9fff]{0,8}?[坊巷])")
_LANE_ONLY = re.compile(r"^[东西南北中前后上下新老旧]?[村邨][零〇一二两三四五六七八九十\d]+[坊巷方]")
_LANE = re.compile(r"^([\u4e00-\u9fff\d]{1,10}?[坊巷])(\d+)?号?")
_ROAD = re.compile(r"^([\u4e00-\u9fff]{1,12}?(?:大道|路|街(?!道)|道))(\d+(?:-\d+)?)?号?")
_BUILDING = re.compile(r"(\d+|[A-Z])栋")
_UNIT = re.compile(r"(\d+|[A-Z])单元")
_FLOOR = re.compile(r"(-?\d+)层")
_ROOM = re.compile(r"(\d+)室")
_TAIL_NUM = re.compile(r"(\d{3,4})$")
_COMPLEX = re.compile(r"^(\D*?)(?=\d|[A-Z]栋|[A-Z]单元|$)")      # CJK text before the first number-bearing part
_CJK = re.compile(r"[\u4e00-\u9fff]")
_COMPLEX_DOOR = re.compile(r"^(\d{1,3})号(?!\d*$)|^(\d{1,2})号$")
_LANE_TAIL_NO = re.compile(r"(\d+)号?$")


def _strip_zeros(v: str | None) -> str | None:
    if v is None:
        return None
    return v.lstrip("0") or "0" if v.isdigit() else v


def parse(text: str | None) -> dict[str, str | None]:
    """Parse an address (raw or normalised) into :data:`ADDRESS_COMPONENTS`; missing parts are None.

    A room like ``501`` implies floor ``5`` when no floor is given.
    """
    return parse_normalized(normalize(text))


def parse_normalized(s: str | None) -> dict[str, str | None]:
    """:func:`parse` of a text already passed through :func:`normalize` (``parse(t) ==
    parse_normalized(normalize(t))``): lets a caller that keeps the normalised text normalise once."""
    out: dict[str, str | None] = dict.fromkeys(ADDRESS_COMPONENTS)
    if not s:
        return out
    m = _STREET.match(s)
    if m:
        out["street"], s = m.group(1), s[m.end():]
    m = _COMMUNITY.match(s)
    if m:
        out["community"], s = m.group(1), s[m.end():]
    m = _VILLAGE.match(s)
    if m and _LANE_ONLY.match(s):   # 东村二坊5号 without its village: 东村二坊 is the lane, not village 东村
        m = None
    if m:
        out["village"], s = m.group(1), s[m.end():]
        m = _LANE.match(s)
        if m:
            out["lane"], out["lane_no"], s = m.group(1), _strip_zeros(m.group(2)), s[m.end():]
    else:
        m = _LANE.match(s)
        if m and not _ROAD.match(s[: m.end()]):
            out["lane"], out["lane_no"], s = m.group(1), _strip_zeros(m.group(2)), s[m.end():]
        else:
            m = _ROAD.match(s)
            if m:
                out["road"], out["door_no"], s = m.group(1), _strip_zeros(m.group(2)), s[m.end():]
    # the complex: CJK text before the first number-bearing part
    m = _COMPLEX.match(s)
    if m and _CJK.search(m.group(1)):
        out["complex"], s = m.group(1), s[m.end():]
        if out["road"] is None and out["lane"] is None:
            m = _COMPLEX_DOOR.match(s)
            if m:
                out["door_no"], s = _strip_zeros(m.group(1) or m.group(2)), s[m.end():]
    # building / unit / floor / room
    for key, rx in (("building", _BUILDING), ("unit", _UNIT), ("floor", _FLOOR), ("room", _ROOM)):
        m = rx.search(s)
        if m:
            out[key] = _strip_zeros(m.group(1))
            s = s[: m.start()] + "|" + s[m.end():]
    if out["room"] is None:
        m = _TAIL_NUM.search(s)
        if m:
            out["room"], s = _strip_zeros(m.group(1)), s[: m.start()]
        elif out["village"] and out["lane_no"] is None:
            pass
    if out["lane"] is not None and out["lane_no"] is None and out["room"] is None:
        m = _LANE_TAIL_NO.search(s)
        if m:
            out["lane_no"] = _strip_zeros(m.group(1))
    if out["floor"] is None and out["room"] and out["room"].isdigit() and len(out["room"]) in (3, 4):
        out["floor"] = out["room"][:-2]
    return out
