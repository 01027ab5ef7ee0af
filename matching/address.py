"""Chinese address normaliser and parser (pure Python, no Spark), written from the structure of a
standard address (GB/T 23705 and the local standard-address conventions): administrative area, street
(街道), community (社区), road (道路/街巷) + door number (门牌号) or urban village (村) + lane
(坊/巷/排/弄/里) + lane number, complex, building (楼栋), unit, floor and room (户室).

``normalize`` turns free text into a canonical string; ``parse`` splits it into the components of
:data:`schemas.address.ADDRESS_COMPONENTS`. Normalisation, in order:

1. NFKC (full-width digits, letters, brackets become ASCII), upper case, traditional address characters
   simplified (號 -> 号, 樓 -> 楼, 邨 -> 村); English/pinyin markers as Chinese ones (``Block 3`` -> 3栋,
   ``Unit 2`` -> 2单元, ``12/F`` -> 12层, ``Flat 501``/``#501`` -> 501室, ``Futian District`` dropped); ``12/802``
   -> ``12-802``; note segments (contact, phone, ``近…``, a landmark with a direction before the address) dropped;
2. bracketed notes removed (all bracket kinds; an unclosed bracket ends the address), unless the bracket
   holds only numbers and markers (``(A座)``); ``3#`` -> ``3栋``; whitespace and punctuation removed;
3. administrative prefixes (country, province, city, district, in full or short, repeated) removed;
4. word classes that are not address removed (:mod:`matching.address_lexicon`): contact notes and
   phone numbers, transport notes, letting and sale terms, unit types, landmarks with a direction,
   path notes; administrative bodies reduced to what they name (上沙村委会 -> 上沙村, 上沙居委会 -> 上沙社区);
5. a numeral is a number by *position*: a run of Chinese or mixed numerals is converted to digits only
   when a component marker follows it (号 栋 幢 座 单元 梯 门 层 楼 室 房 户 坊 巷 排 弄 期 区 # F - 之, 里
   when a number follows) or it stands after one; ``三元里``, ``八卦岭``, ``六约``, ``十八号仓`` stay;
6. marker variants to one canonical marker each: building ``N栋`` (栋/幢/座/号楼/栋楼/#; ``N楼`` only
   when a floor or room follows and no building was written), unit ``N单元`` (单元/梯/门), floor ``N层``
   (层/F/楼, 负N/地下N -> -N), room ``N室`` (室/房/户/号房, and ``N号`` after a building, unit, floor
   or door), door suffix ``13号之一`` / ``13之1号`` -> ``13-1号``, floor + two-digit door ``21楼02`` -> ``21层2102室``;
7. short forms: ``12-3-501`` -> ``12栋3单元501室``, ``12-501`` -> ``12栋501室``, ``12栋3-501`` ->
   ``12栋3单元501室``, after a lane or 坊内/内 ``13-401`` -> ``13号401室`` (after an estate …村 the building-room
   form: ``景田村27-603`` -> ``景田村27栋603室``), after a road ``18-501`` -> ``18号501室``.

Parsing (:func:`parse_normalized`): street and community wherever written (a name never spans a component end or
a complex word); the place — numbered lane (village + 东村/西村/新村… prefix + N坊/巷/排/弄/里, lane number marked
号/栋), named lane, village + number, or road + door number; building, unit, floor and room wherever written; the
complex (first name left, with phase/block); a trailing whole 3–5 digit number as the room. Room 501 implies floor
5 unless a floor is written. A number whose role is ambiguous is left empty: numbers are hard constraints.
"""

from __future__ import annotations

import re
import unicodedata

from matching.address_lexicon import (
    NOTE_HINT,
    Gate,
    is_note_segment,
    simplified,
    strip_noise,
    strip_tail_notes,
    strip_unit_types,
)
from matching.numerals import NUMERAL_CHARS, cn_to_int
from schemas.address import ADDRESS_COMPONENTS

__all__ = ["normalize", "parse", "parse_normalized", "cn_to_int", "SHENZHEN_DISTRICTS"]

SHENZHEN_DISTRICTS = ("福田区", "罗湖区", "南山区", "盐田区", "宝安区", "龙岗区", "龙华区", "坪山区", "光明区", "大鹏新区")

_CJK = "\u4e00-\u9fff"
_NUMC = NUMERAL_CHARS

# --- step 2: brackets, separators ---------------------------------------------------------------------
_OPEN, _CLOSE = "([【〔<《{「『〖", ")]】〕>》}」』〗"
_INNER_BRACKET = re.compile("|".join(rf"\{o}[^{re.escape(_OPEN + _CLOSE)}]*\{c}" if o in "([<{" else
                                     rf"{o}[^{re.escape(_OPEN + _CLOSE)}]*{c}" for o, c in zip(_OPEN, _CLOSE, strict=True)))
_NUMBERS_ONLY = re.compile(rf"^(?:[\dA-Z{_NUMC}\-]+(?:栋|座|幢|号楼|单元|梯|层|楼|室|房|号|#|期|区)?)+$")
_POSTCODE = re.compile(r"(?<!\d)51[89]\d{3}(?!\d)")              # Shenzhen postcodes 518xxx/519xxx
_SPACED_NUMBERS = re.compile(rf"(?<=\d)\s+(?=\d)|(?<=\d)\s+(?=[{NUMERAL_CHARS}])|(?<=[{NUMERAL_CHARS}])\s+(?=\d)")
_STRAY_DASH = re.compile(rf"-+(?=$|[^\dA-Z{NUMERAL_CHARS}])|(?<![\dA-Z{NUMERAL_CHARS}])-+")
_SEGMENTS = re.compile(r"[\s,，。、;；]+")
_NO_ADDRESS = re.compile(rf"^[^\d{_NUMC}号栋幢座楼层室房户元坊巷村路街道期区A-Z]+$")
_RANGE_NOTE = re.compile(rf"^[\d{_NUMC}]*[楼层]?以[上下]$")          # 二楼以上: which floors, not where
_ENDS_NUMBER = re.compile(rf"[\d{_NUMC}室房户A-Z]$")
_BRACKET_CHARS = Gate(_OPEN + _CLOSE)
_ADMIN_UNIT = re.compile(rf"^[{_CJK}]{{1,8}}(?:社区|街道)(?:居委会|居民委员会|工作站|办事处|办)?$")   # (上沙社区)
_DASHES = re.compile(r"[‐‑‒–—―−~～_]+")
_HASH = re.compile(rf"([\dA-Z{NUMERAL_CHARS}]+)#(?:楼|栋)?")
# a separator between a number and its marker (五 #, 4，梯, 12 号) belongs to neither
_SEP_BEFORE_MARKER = re.compile(rf"(?<=[\dA-Z{NUMERAL_CHARS}])[\s,，、]+(?=[栋幢座单梯门层楼室房户号坊巷#F])")
_DROP = re.compile(r"[\s,，。.、;；:：'\"“”‘’/\\|#!！?？*·]+")

# --- step 3: administrative prefixes ---------------------------------------------------------------
# an administrative name, at the start or after a component end (社区/区, 街道, 号), unless it begins a
# place name (福田村, 福田路, 深圳湾, 福田口岸…)
_ADMIN = re.compile(
    r"(?:^|(?<=[区道号]))(?:中华人民共和国|中国|广东省|广东|深圳市|深圳|" + "|".join(SHENZHEN_DISTRICTS) + "|"
    + "|".join(d[:-1] for d in SHENZHEN_DISTRICTS[:-1]) + "|大鹏"
    + r")(?![东西南北中]?(?:路|村|街|大道|道)|社区|花园|口岸|中心|保税|新村|体育|医院|站|公园|小学|中学|大厦|广场|湾"
    + r"|大学|市场|$)")
_ADMIN_ANYWHERE = re.compile(r"广东省|深圳市")
_ADMIN_START = re.compile(_ADMIN.pattern.replace("(?:^|(?<=[区道号]))", "", 1))
_ADMIN_HINT = re.compile("中国|广东|深圳|" + "|".join(d[:2] for d in SHENZHEN_DISTRICTS))
_HAS_SEPARATOR = re.compile(r"[\s,，、。;；]")
_HAS_ADDRESS = re.compile(rf"[{_CJK}]{{2}}.*[\d{_NUMC}]|[\d{_NUMC}].*[{_CJK}]{{2}}")

# --- step 5: numerals by position ------------------------------------------------------------------
_NUMERAL_SET = Gate(_NUMC)
_RUN = re.compile(rf"[0-9{_NUMC}]+")
_AFTER_MARKERS = "栋幢座层楼室户房坊巷排弄期区#F-之梯门"
_BEFORE_MARKERS = "栋幢座元层楼号室坊巷排弄之-内梯门F"
_NAME_AFTER_HAO = "仓馆院场厂库线路街"

# --- step 6: markers -------------------------------------------------------------------------------
_DATE = re.compile(r"(?<!\d)(?:19|20)\d{2}(?:[-/.]\d{1,2}[-/.]\d{1,2}(?![\d号-])|\s*年(?:\s*\d{1,2}\s*月"
                   r"(?:\s*\d{1,2}\s*[日号])?)?)"
                   r"|(?<!\d)\d{1,2}月(?:\d{1,2}[日号])?")
_LETTER_ROOM = re.compile(r"(?<![A-Z\d])([A-Z])(\d{3,4}[A-Z]?)室")
_GROUND = re.compile(r"(?:首|底)(?:层|楼)")
_DOOR_SUFFIX = re.compile(r"(\d+)号之(\d{1,2}?)(?:号|(?=\d{3,4}(?!\d))|(?!\d))|(\d+)之(\d{1,2})号")
_BUILDING_SYN = re.compile(r"(\d+[A-Z]?|[A-Z]\d*)(?:号楼|栋楼|号栋|号座|号幢|幢|座)")   # (N栋 is canonical)
_BASEMENT = re.compile(r"(?:负|地下)(\d+)(?:层|楼|F)")                 # basement floors: 负N层 (never -N)
_FLOOR_SYN = re.compile(r"(\d+)F(?![A-Z\d]*栋)")
_LOU = re.compile(r"(\d+|[A-Z])楼")
_LOU_FOLLOW = re.compile(r"-?(?:(\d+)层|(\d+)单元|(\d{3,4})(?:室|$|[^\d]))")
_UNIT_SYN = re.compile(r"(\d+|[A-Z])(?:号单元|梯|门)(?!牌)")
_ROOM_SYN = re.compile(r"(\d+[A-Z]?)(?:号房|号室|房间|房|户)")
_G_BUILDING, _G_UNIT, _G_ROOM = Gate("楼幢座"), Gate("梯门"), Gate("房户")
_ROOM_HAO = re.compile(r"(?<=[栋元层])(\d{3,4}[A-Z]?)号(?!\d)|(?<=\d号)(\d{3,4}[A-Z]?)号(?!\d)")

# --- step 7: short forms ---------------------------------------------------------------------------
_SHORT_LANE = re.compile(r"(?<=[坊巷排弄里内])(\d+(?:-\d{1,2})?)-(\d{3,4}[A-Z]?)(?:室|号)?(?![\d-])")
_SHORT_ROAD = re.compile(r"(?<=[路街道])(\d+)-(\d{3,4}[A-Z]?)(?:室|号)?(?![\d-])")
_SHORT_BUR = re.compile(r"(?<![\d\-A-Z])(\d+[A-Z]?|[A-Z]\d*)-(\d+|[A-Z])-(\d{3,4}[A-Z]?)(?:室|号)?(?![\d-])")
_SHORT_UR = re.compile(r"栋(\d+|[A-Z])-(\d{3,4}[A-Z]?)(?:室|号)?(?![\d-])")
_SHORT_BR = re.compile(r"(?<![\d\-A-Z])(\d+[A-Z]?|[A-Z]\d*)-(\d{3,4}[A-Z]?)(?:室|号)?(?![\d-])")
_PART_DASH = re.compile(r"(栋|单元|层|号|室)-")


# --- English and pinyin fragments (Block 3, Flat 1203, 11/F, Futian District) -----------------------------
_LATIN_WORD = re.compile(r"[A-Z]{2,}|/\s*F(?![A-Z])|#\s*\d")
_PINYIN_DISTRICTS = "FUTIAN|LUOHU|NANSHAN|YANTIAN|BAO'?AN|LONGGANG|LONGHUA|PINGSHAN|GUANGMING|DAPENG"
_EN_ADMIN = re.compile(
    rf"(?<![A-Z])(?:(?:{_PINYIN_DISTRICTS})(?:\s*(?:NEW\s*)?(?:DISTRICT|QU))?(?!\s*(?:ROAD|RD|STREET|ST|AVENUE|AVE|"
    r"VILLAGE|GARDEN|CUN|LU|JIE)(?![A-Z]))|SHENZHEN(?:\s*CITY|\s*SHI)?|GUANGDONG(?:\s*PROVINCE|\s*SHENG)?"
    r"|P\.?\s*R\.?\s*CHINA|CHINA|PRC)(?![A-Z])")
_EN_ROOM = re.compile(r"(?<![A-Z])(?:ROOM|RM|FLAT|APARTMENT|APT|SUITE|STE)\.?\s*#?\s*(\d+[A-Z]?|[A-Z]\d{3,4})(?![\dA-Z])"
                      r"|(?<![\dA-Z一-龥])#\s*(\d{3,4}[A-Z]?)(?!\d)")
_EN_NO = re.compile(r"(?<![A-Z])(?:NO|NUM|NUMBER)\.?\s*(?=\d)(\d+[A-Z]?)(?!\d)")
_EN_BUILDING = re.compile(r"(?<![A-Z])(?:BLOCK|BLK|BLDG|BUILDING|TOWER|TWR)\.?\s*#?\s*([A-Z]?\d+[A-Z]?|[A-Z])(?![\dA-Z])")
_EN_UNIT = re.compile(r"(?<![A-Z])UNIT\.?\s*#?\s*(?:(\d{1,2}|[A-Z])|(\d{3,4}[A-Z]?))(?![\dA-Z])")
_EN_FLOOR = re.compile(r"(?<![A-Z])(?:FLOOR|FLR|FL|F)\.?\s*(\d{1,2})(?!\d)(?![A-Z]*栋)"
                       r"|(?<![\dA-Z])(\d{1,2})\s*(?:ST|ND|RD|TH)?\s*(?:/\s*F|FLOOR|FLR|FL)(?![A-Z])")


def _latin(s: str) -> str:
    """English and pinyin address words residents and agents write, in any case and order, as the Chinese
    markers: building (BLOCK/BLK/BLDG/BUILDING/TOWER/TWR N), unit (UNIT N; a 3–4 digit UNIT N is a flat),
    floor (FLOOR/FL/F N, N/F, NTH FLOOR), room (ROOM/RM/FLAT/APT/SUITE N, #N, NO. N -> N号); country,
    province, city and district names are dropped like their Chinese forms."""
    s = _EN_ADMIN.sub(" ", s)
    s = _EN_ROOM.sub(lambda m: f" {m.group(1) or m.group(2)}室 ", s)
    s = _EN_BUILDING.sub(r" \1栋 ", s)
    s = _EN_UNIT.sub(lambda m: f" {m.group(1)}单元 " if m.group(1) else f" {m.group(2)}室 ", s)
    s = _EN_FLOOR.sub(lambda m: f" {m.group(1) or m.group(2)}层 ", s)
    s = _EN_NO.sub(r" \1号 ", s)
    return _LATIN_NAME.sub(" ", s)


# a word of three or more letters standing apart (a pinyin or English name written beside the Chinese one:
# 福华花园 Fuhua Garden 3栋) is not read: its letters would stick to the next number (N3栋); TCL大厦 stays
_LATIN_NAME = re.compile(r"(?:(?<=^)|(?<=[\s,，]))(?:[A-Z]{3,}[\s,，]*)+(?=$|[\s,，])")
_SLASH_NUMBERS = re.compile(r"(?<=[\dA-Z])\s*/\s*(?=\d)")             # 12/802: building/room, as 12-802


def _drop_note_segments(s: str) -> str:
    """Segments (between spaces or commas) that are notes — a contact note or phone number, a landmark with a
    direction (``7栋对面``), a "near" note — are dropped wherever they stand, when another segment holds the
    address (a name and a number): ``电话138… 福田区景田花园7栋201``, ``7栋对面 福田区景田花园2栋301``."""
    if not NOTE_HINT.search(s):
        return s
    parts = [p for p in _SEGMENTS.split(s) if p]
    if len(parts) < 2:
        return s
    keep = [p for i, p in enumerate(parts) if not is_note_segment(p, last=i == len(parts) - 1)]
    if len(keep) == len(parts) or not keep or not _HAS_ADDRESS.search("".join(keep)):
        return s
    return " ".join(keep)


def _strip_brackets(s: str) -> str:
    def inner(m: re.Match[str]) -> str:
        body = _DROP.sub("", m.group(0)[1:-1])
        return body if _NUMBERS_ONLY.match(body) or _ADMIN_UNIT.match(body) else ""

    if _BRACKET_CHARS.isdisjoint(s):
        return s
    prev = None
    while prev != s:
        prev, s = s, _INNER_BRACKET.sub(inner, s)
    for i, ch in enumerate(s):            # an unclosed bracket: the rest is a note (if an address precedes)
        if ch in _OPEN:
            s = s[:i] if any(c.isdigit() for c in s[:i]) else s[:i] + s[i + 1:]
            break
    return "".join(ch for ch in s if ch not in _OPEN and ch not in _CLOSE)


def _drop_last_segment_note(s: str) -> str:
    """A last segment (after a space or comma) with no number and no marker, written after a bare
    number, is a note: ``…2单元四零四 居委会隔壁`` -> ``…2单元四零四``; ``福华路18号 福华花园`` stays."""
    parts = _SEGMENTS.split(s.strip(" \t,，。、;；"))
    if len(parts) > 1 and (_NO_ADDRESS.match(parts[-1]) and _ENDS_NUMBER.search(parts[-2])
                           or _RANGE_NOTE.match(parts[-1])):
        return " ".join(parts[:-1])
    return s


def _strip_admin(s: str) -> str:
    m = _ADMIN_START.match(s)
    while m and m.end():
        s = s[m.end():]
        m = _ADMIN_START.match(s)
    if _ADMIN_HINT.search(s):                     # written again later: 沙头街道上沙社区深圳市福田滨河大道
        s = _ADMIN_ANYWHERE.sub("", s)
        prev = None
        while prev != s:
            prev, s = s, _ADMIN.sub("", s)
    return s


def _is_slot(s: str, a: int, b: int) -> bool:
    """Whether the numeral run ``s[a:b]`` stands where a number stands: a marker follows it, or it
    follows a marker and is followed by the end, a non-CJK character or another marker."""
    nxt = s[b:b + 1]
    if s[a:b] == "两" and nxt in "房室户厅":
        return False                                        # 两房: a count of rooms, never room 2
    if nxt == "号":
        return s[b + 1:b + 2] not in _NAME_AFTER_HAO or b + 1 >= len(s)
    if nxt and nxt in _AFTER_MARKERS or s.startswith("单元", b):
        return True
    if nxt and nxt in "里方":                        # 里 lane, 方 (a homophone of 坊) only before a number
        return b + 1 < len(s) and (s[b + 1].isdigit() or s[b + 1] in _NUMC)
    prev = s[a - 1:a]
    if prev and prev in _BEFORE_MARKERS:
        # after a marker: a number when nothing CJK follows, or when it cannot be a word (三零三, 五百零四)
        return (not nxt or not ("\u4e00" <= nxt <= "\u9fff") or b - a >= 3
                or "百" in s[a:b] or "千" in s[a:b])
    return False


def _convert_numerals(s: str) -> str:
    if _NUMERAL_SET.isdisjoint(s):
        return s
    out, last = [], 0
    for m in _RUN.finditer(s):
        run, start, end = m.group(0), m.start(), m.end()
        if run.isdigit() and run.isascii():
            continue
        if s[start - 1:start] == "之":          # 13号之一502: the suffix is the Chinese part only
            k = next((i for i, ch in enumerate(run) if ch.isascii()), len(run))
            run, end = run[:k], start + k
            if not run:
                continue
        elif not _is_slot(s, start, end):
            continue
        n = cn_to_int(run)
        if n is None:
            continue
        text = str(n)
        if run[0] in "零〇○0" and len(run) > 1 and not any(u in run for u in "十百千"):
            text = text.rjust(len(run), "0")            # 零二 is the door 02 (二十一楼零二 = 21楼02), not 2
        out.append(s[last:start])
        out.append(text)
        last = end
    out.append(s[last:])
    return "".join(out)


def _lou(s: str) -> str:
    """``N楼``: a building when no building was written before it and a floor, unit or room follows
    (``3楼501`` -> building 3), otherwise a floor (``3栋5楼``, ``福华花园3楼``). ``5楼501`` (room 501 is
    on floor 5) is read as the floor: the building is not known."""
    def repl(m: re.Match[str]) -> str:
        n, before, after = m.group(1), s[:m.start()], s[m.end():]
        if not n.isdigit():
            return n + "栋"                                  # A楼: a letter names a building, never a floor
        f = _LOU_FOLLOW.match(after)
        if "栋" not in before and f:
            room = f.group(3)
            if not (room and room[:-2].lstrip("0") == n.lstrip("0")):
                return n + "栋"
        return n + "层"

    return _LOU.sub(repl, s)


_FLOOR_DOOR = re.compile(r"(?<![\d\-])(\d{1,2})(?:楼|层|F)(\d{2})(?:室|房|号|户)?(?![\d\-A-Z]|单元|栋)")


def _floor_door(m: re.Match[str]) -> str:
    floor = m.group(1).lstrip("0") or "0"
    return f"{floor}层{floor}{m.group(2)}室"


def _markers(s: str) -> str:
    if "之" in s:
        s = _DOOR_SUFFIX.sub(lambda m: f"{m.group(1) or m.group(3)}-{m.group(2) or m.group(4)}号", s)
    if not _G_BUILDING.isdisjoint(s):
        s = _BUILDING_SYN.sub(r"\1栋", s)
    if "楼" in s or "层" in s or "F" in s:
        s = _FLOOR_DOOR.sub(_floor_door, s)             # 21楼02: floor 21, door 02 -> room 2102
    if "负" in s or "下" in s:
        s = _BASEMENT.sub(r"负\1层", s)
    if "F" in s:
        s = _FLOOR_SYN.sub(r"\1层", s)
    if "楼" in s:
        s = _lou(s)
    if not _G_UNIT.isdisjoint(s) or "号单元" in s:
        s = _UNIT_SYN.sub(r"\1单元", s)
    if not _G_ROOM.isdisjoint(s) or "号室" in s:
        s = _ROOM_SYN.sub(r"\1室", s)
    if "室" in s and "栋" not in s:
        s = _LETTER_ROOM.sub(r"\1栋\2室", s)                 # B1201室: building B, room 1201
    if "号" in s:
        s = _ROOM_HAO.sub(lambda m: (m.group(1) or m.group(2)) + "室", s)
    return s


def _short_forms(s: str) -> str:
    s = _SHORT_LANE.sub(r"\1号\2室", s)
    s = _SHORT_ROAD.sub(r"\1号\2室", s)
    s = _SHORT_BUR.sub(r"\1栋\2单元\3室", s)
    s = _SHORT_UR.sub(r"栋\1单元\2室", s)
    s = _SHORT_BR.sub(r"\1栋\2室", s)
    return _PART_DASH.sub(r"\1", s)


def normalize(text: str | None) -> str | None:
    """Canonical form of a free-text address (steps in the module docstring); None for None or blank."""
    if text is None:
        return None
    s = simplified(unicodedata.normalize("NFKC", str(text)).upper())
    s = _strip_brackets(s)
    if "年" in s or "月" in s or (("-" in s or "/" in s or "." in s) and _DATE.search(s)):
        s = _DATE.sub(" ", s)                # dates are notes (2023-05-01, 2023年5月)
    s = strip_unit_types(s)                 # before spaces go: "501 2房1厅" is room 501 and a unit type
    if _LATIN_WORD.search(s):
        s = _latin(s)
    if "/" in s:
        s = _SLASH_NUMBERS.sub("-", s)
    if _HAS_SEPARATOR.search(s):
        s = _drop_note_segments(s)
        s = _SEP_BEFORE_MARKER.sub("", s)
        s = _drop_last_segment_note(s)
        s = _SPACED_NUMBERS.sub("-", s)      # 12 3 501: a space between numbers separates them
    if "51" in s:
        s = _POSTCODE.sub("", s)
    s = _DASHES.sub("-", s)
    if "#" in s:
        s = _HASH.sub(r"\1栋", s)
    s = _DROP.sub("", s)
    s = _strip_admin(s)
    t = strip_noise(s)
    if t != s:
        s = _strip_admin(t)
    s = strip_tail_notes(s)
    if "-" in s:
        s = _STRAY_DASH.sub("", s)
    s = _convert_numerals(s)
    if "首" in s or "底" in s:
        s = _GROUND.sub("1层", s)               # 首层/底层: the ground floor is floor 1
    s = _markers(s)
    if "-" in s:
        s = _short_forms(s)
    return s or None


# --- parsing -----------------------------------------------------------------------------------------
_B = r"\d号路道街村坊巷区栋室层元"                                 # characters that end a component
_NAME = rf"(?:(?![\d号路街道村坊巷区栋室层])[{_CJK}])"              # a character of a place name
_AT = rf"(?:^|(?<=[{_B}]))"
_MARKER_CHARS = "号栋幢座单元梯门层楼室房户坊巷排弄期区之F"
_NAME_DIGITS = rf"\d+(?=(?![{_MARKER_CHARS}])[{_CJK}])"           # 梅林1村, 第5大道: a numeral inside a name
_STREET = re.compile(rf"{_AT}({_NAME}{{2,6}}?街道)")
_COMMUNITY = re.compile(rf"{_AT}({_NAME}{{1,8}}?村?社区)")
_AREA = re.compile(rf"{_AT}{_NAME}{{1,6}}?(?:片区|辖区|一带)")
_COMPLEX_SUFFIX = frozenset("苑园厦场寓城府阁轩庭居墅馆")
_BLOCK_IN_PLACE = re.compile(r"[\dA-Z]+[区期片]")
_LANE_MARKERS = Gate("坊巷排弄里方")
_LANE_NUM = re.compile(r"([东西南北新老旧]村)?(\d+)([坊巷排弄里]|方(?=\d))")
_LANE_NO = re.compile(r"^(?:内)?(\d+(?:-\d+)?)(?:号|栋|(?=$|\|))")   # 602室5号: 602 is the room, 5 the number
_NAMED_LANE = re.compile(rf"^((?:{_NAME}|村){{0,6}}?村)?({_NAME}{{1,4}}?[巷坊])(\d+(?:-\d+)?)号?")
_VILLAGE_NO = re.compile(rf"^((?:{_NAME}|村){{1,6}}?(?<![新一二三四五六七八九十])村)(?:坊内|内)?(\d+(?:-\d+)?)(?:号|(?=\d+室|室|$))")
_ROAD = re.compile(rf"^((?:[{_CJK}A-Z]|(?<=[{_CJK}]){_NAME_DIGITS}){{1,12}}?(?:大道|路|街|道(?=\d+(?:-\d+)?号)))"
                   rf"(\d+(?:-\d+)?(?![\d\-A-Z]|栋|单元|层|室))?(?:号)?")
# a name that is only the kind of a complex: written after a road name without a door number, the road
# name is the complex's own name (第五大道花园, 深南大道公寓)
_GENERIC_COMPLEX = frozenset(("花园", "小区", "大厦", "公寓", "广场", "家园", "新村", "苑", "园", "楼", "大楼", "中心",
                              "名苑", "雅苑", "华庭", "山庄", "公馆", "府", "阁", "居"))
_BUILDING_NEXT = re.compile(r"^(?:\d+[A-Z]?|[A-Z]\d*)栋")
_BUILDING = re.compile(r"(\d+[A-Z]?|[A-Z]\d*)栋")
_UNIT = re.compile(r"(\d+|[A-Z])单元")
_FLOOR = re.compile(r"(负?\d+)层")
_ROOM = re.compile(r"(\d+[A-Z]?)室")
_COMPLEX = re.compile(rf"(?:[A-Z]+(?=[{_CJK}]))?(?:第{_NAME_DIGITS})?[{_CJK}](?:[{_CJK}]|{_NAME_DIGITS})+"
                      rf"(?:(?:\d+|[A-Z]+)[期区][{_CJK}]*)*")
_COMPLEX_BUILDING = re.compile(r"^(\d{1,3}[A-Z]?)号(?=\d{3,4}[A-Z]?$|#|\|)")
_COMPLEX_DOOR = re.compile(r"^(\d{1,3}(?:-\d+)?)号(?!\d*$)|^(\d{1,2})号$")
_TAIL_ROOM = re.compile(r"(?<![\dA-Z])([A-Z]?)(\d{3,5}|\d{1,2}(?=[A-Z]))([A-Z]?)号?[^\dA-Z]*$")
_AFTER_ROOM = re.compile(r"(?:#|(?<!\d)\d{3,5}[A-Z]?)\|*$")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_NOT_COMPLEX = re.compile(r"^[号室层栋]|坊内$")


_ZEROS = re.compile(r"^(-?)0*(\d+)(.*)$")
_LANE_DOOR = re.compile(r"(\d+(?:-\d+)?)号")
_LEADING_DIGITS = re.compile(r"^(\d+)")


def _strip_zeros(v: str | None) -> str | None:
    if v is None:
        return None
    if v.isdigit():
        return v.lstrip("0") or "0"
    m = _ZEROS.match(v)
    return f"{m.group(1)}{m.group(2)}{m.group(3)}" if m else v


def parse(text: str | None) -> dict[str, str | None]:
    """Parse an address (raw or normalised) into :data:`ADDRESS_COMPONENTS`; missing parts are None.

    A room like ``501`` implies floor ``5`` when no floor is written; a floor written otherwise stays."""
    return parse_normalized(normalize(text))


def _split_complex_prefix(value: str, suffix_len: int) -> tuple[str, str]:
    """``宏绿湖名苑上沙社区`` (community written after the complex) -> (``上沙社区``, ``宏绿湖名苑``): a name
    never runs over a complex-type word (苑, 园, 大厦, 广场…) when at least two characters follow it."""
    name = value[:-suffix_len]
    for k in range(len(name) - 3, -1, -1):
        if name[k] in _COMPLEX_SUFFIX:
            return name[k + 1:] + value[-suffix_len:], name[: k + 1]
    return value, ""


def _place(s: str, out: dict[str, str | None]) -> str:
    """Road + door number, or village + lane + lane number, at the start of ``s``; returns the rest."""
    m = _LANE_NUM.search(s) if not _LANE_MARKERS.isdisjoint(s) else None
    if m and not any(ch.isdigit() for ch in _BLOCK_IN_PLACE.sub("", s[:m.start()])):   # 皇岗村2区2坊
        before, prefix = s[:m.start()], m.group(1) or ""
        if not prefix and len(before) >= 4 and before.endswith("村") and "村" in before[:-2]:
            before, prefix = before[:-2], before[-2:]       # 上沙村冬村2坊: the second 村 names the lane
        cut = before.rfind("村") + 1
        if not prefix and 0 < cut < len(before):           # 下沙村下沙一坊: the lane repeats the village name
            name = before[cut:]
            before = before[:cut]
            if not before.startswith(name):
                prefix = name                               # 上沙村椰树一坊: a named part of the village
        if not prefix and before and before[-1] in "东西南北新老旧" and len(before) != 2:
            before, prefix = before[:-1], before[-1]        # 上沙东二坊, 东二坊: the direction names the lane
        if len(prefix) == 1 and prefix in "东西南北新老旧":
            prefix += "村"                                  # 上沙村东二坊 = 上沙村东村二坊
        out["village"] = before or None
        out["lane"] = f"{prefix}{m.group(2).lstrip('0') or '0'}{m.group(3).replace('方', '坊')}"
        rest = s[m.end():]
        n = _LANE_NO.match(rest)
        if n and n.group(1):
            out["lane_no"], rest = _strip_zeros(n.group(1)), rest[n.end():]
        return rest
    # each of the next three patterns holds its own characters (巷/坊, 村, 路/街/道): searched only when present
    m = _NAMED_LANE.match(s) if "巷" in s or "坊" in s else None
    if m:
        out["village"], out["lane"], out["lane_no"] = m.group(1), m.group(2), _strip_zeros(m.group(3))
        return s[m.end():]
    m = _VILLAGE_NO.match(s) if "村" in s else None
    if m:
        out["village"], out["lane_no"] = m.group(1), _strip_zeros(m.group(2))
        return s[m.end():]
    m = _ROAD.match(s) if "路" in s or "街" in s or "道" in s else None
    if m:
        rest = s[m.end():]
        if m.group(2) is None and _BUILDING_NEXT.match(rest):
            return s                                        # 第五大道3栋501: a complex named like a road
        out["road"], out["door_no"] = m.group(1), _strip_zeros(m.group(2))
        return rest
    return s


def parse_normalized(s: str | None) -> dict[str, str | None]:
    """:func:`parse` of a text already passed through :func:`normalize` (``parse(t) ==
    parse_normalized(normalize(t))``): lets a caller that keeps the normalised text normalise once."""
    out: dict[str, str | None] = dict.fromkeys(ADDRESS_COMPONENTS)
    if not s:
        return out
    for key, rx, word in (("street", _STREET, "街道"), ("community", _COMMUNITY, "社区")):
        m = rx.search(s) if word in s else None
        if m:
            value, keep = _split_complex_prefix(m.group(1), len(word))
            out[key], s = value, s[:m.start()] + keep + s[m.end():]
            if value in s:                                  # written twice: 沙头街道上沙社区沙头街道…
                s = s.replace(value, "")
    if "片区" in s or "辖区" in s or "一带" in s:
        s = _AREA.sub("", s)
    s = _place(s, out)
    # building / unit / floor / room: marked numbers, anywhere (room before building is still a room)
    for key, rx, marker in (("building", _BUILDING, "栋"), ("unit", _UNIT, "单元"), ("floor", _FLOOR, "层"),
                            ("room", _ROOM, "室")):
        m = rx.search(s) if marker in s else None      # each pattern ends with its marker
        if m:
            out[key] = _strip_zeros(m.group(1).replace("负", "-"))
            s = s[: m.start()] + ("#" if key == "room" else "|") + s[m.end():]
    # the complex: the first run of name text (with its phase/block: 二期, B区) left over
    m = _COMPLEX.search(s)
    if (m and (out["village"] or out["lane"] or out["road"]) and _AFTER_ROOM.search(s[: m.start()])
            and not _CJK_CHAR.search(s[m.end():])):
        m = None                                           # …303无门牌, …303室铁门: a note after the room
    if m and not _NOT_COMPLEX.search(m.group(0)):
        out["complex"], s = m.group(0), s[: m.start()] + "|" + s[m.end():]
        if out["road"] and out["door_no"] is None and out["complex"] in _GENERIC_COMPLEX:
            out["complex"], out["road"] = out["road"] + out["complex"], None     # 第五大道花园
        b = _COMPLEX_BUILDING.match(s[m.start() + 1:]) if out["building"] is None else None
        if b:                                          # 福华花园3号501: N号 between a complex and a room is 3号楼
            out["building"] = _strip_zeros(b.group(1))
            s = s[: m.start() + 1] + s[m.start() + 1 + b.end():]
        elif out["road"] is None and out["lane"] is None and out["village"] is None:
            d = _COMPLEX_DOOR.match(s[m.start() + 1:])
            if d:
                out["door_no"] = _strip_zeros(d.group(1) or d.group(2))
                s = s[: m.start() + 1] + s[m.start() + 1 + d.end():]
    if out["village"] is not None and out["lane_no"] is None:
        m = _LANE_DOOR.search(s)
        if m:
            out["lane_no"], s = _strip_zeros(m.group(1)), s[: m.start()] + "|" + s[m.end():]
    if out["room"] is None:
        m = _TAIL_ROOM.search(s)
        if m and (len(m.group(2)) >= 3 or (m.group(3) and out["building"] is not None)):
            letter, digits, suffix = m.group(1), m.group(2), m.group(3)
            if letter and out["building"] is None:
                out["building"] = letter
                letter = ""
            out["room"] = _strip_zeros(f"{letter}{digits}{suffix}") if not letter else f"{letter}{digits}{suffix}"
            if out["floor"] is None and len(digits) <= 2:
                out["floor"] = _strip_zeros(digits)
    if (out["lane"] or out["village"]) and out["lane_no"] is None and out["building"] and out["unit"] is None:
        out["lane_no"], out["building"] = out["building"], None    # in a village lane the 栋 is the number
    room = out["room"]
    if out["floor"] is None and room:
        digits = _LEADING_DIGITS.match(room)
        if digits and len(digits.group(1)) in (3, 4):
            out["floor"] = _strip_zeros(digits.group(1)[:-2])
    return out
