"""Rendering houses, dates and free text the way clerks and residents type them (with noise).

``render_address`` returns the text and the noise kinds it applied, so the truth can list them.
Messy kinds: missing_levels, fullwidth_digits, cn_numerals, building_synonym, short_form,
bracket_note, homophone, extra_spaces, floor_word. Unresolvable kinds: nonexistent_building,
nonexistent_room, too_little_info.
"""

from __future__ import annotations

import datetime as dt
import random
import re

from tools.generate import lexicon as lx
from tools.generate.geography import Geo, bld_label, cn_number

MESSY_KINDS = (
    "missing_levels", "fullwidth_digits", "cn_numerals", "building_synonym", "short_form",
    "bracket_note", "homophone", "extra_spaces", "floor_word",
)
UNRESOLVABLE_KINDS = ("nonexistent_building", "nonexistent_room", "too_little_info")
_FW = str.maketrans("0123456789ABCDEFGHIJ-", "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪ－")


def _tokens(geo: Geo, h: int, bld: int | None = None, floor: int | None = None) -> list[list[str]]:
    """[kind, text] tokens of the standard address of house ``h`` (optionally another building/floor)."""
    c = int(geo.comm[h])
    toks = [["prov", lx.PROVINCE], ["city", lx.CITY], ["dist", lx.DISTRICT],
            ["street", geo.streets[int(geo.comm_street[c])]], ["comm", geo.communities[c]]]
    b = int(geo.bld[h]) if bld is None else bld
    room = int(geo.room[h]) if floor is None else floor * 100 + int(geo.room[h]) % 100
    s = int(geo.site[h])
    if geo.kind[h] == 0:
        tower = geo.cx_tower[s]
        toks += [["road", geo.roads[geo.cx_road[s]]], ["door", f"{geo.cx_door[s]}号"], ["complex", geo.cx_name[s]],
                 ["bld", bld_label(b, tower) + ("座" if tower else "栋")]]
        if geo.unit[h]:
            toks.append(["unit", f"{int(geo.unit[h])}单元"])
    else:
        toks += [["village", geo.villages[geo.lane_village[s]]], ["lane", geo.lane_name[s]], ["laneno", f"{b}号"]]
    toks.append(["room", str(room)])
    return toks


def standard_address(geo: Geo, h: int) -> str:
    """The registry's standard address, e.g. 广东省深圳市福田区沙头街道上沙社区福华路18号福华花园3栋2单元501."""
    return "".join(t for _, t in _tokens(geo, h))


def _cn_digits(s: str) -> str:
    return "".join(lx.CN_DIGITS[int(ch)] if ch.isdigit() else ch for ch in s)


def _apply(kind: str, toks: list[list[str]], geo: Geo, h: int, r: random.Random) -> bool:
    """Apply one messy kind in place; False when it does not apply to this address."""
    kinds = [k for k, _ in toks]
    if kind == "missing_levels":
        cut = r.choice([1, 2, 3, 3, 4, 5, 5, 5])
        del toks[:cut]
        if "complex" in kinds and r.random() < 0.5:
            drop = ("road", "door") if r.random() < 0.7 else ("complex",)
            toks[:] = [t for t in toks if t[0] not in drop]
        return True
    if kind == "fullwidth_digits":
        if not any(ch.isdigit() for _, t in toks for ch in t):
            return False
        for t in toks:
            if t[0] not in ("road", "complex", "village", "lane", "street", "comm"):
                t[1] = t[1].translate(_FW)
        return True
    if kind == "cn_numerals":
        done = False
        for t in toks:
            if t[0] == "bld" and t[1][0].isdigit():
                m = re.match(r"(\d+)(.*)", t[1])
                t[1] = cn_number(int(m.group(1))) + m.group(2)
                done = True
            elif t[0] == "unit":
                t[1] = cn_number(int(t[1][:-2])) + "单元"
            elif t[0] == "room" and t[1].isdigit():
                t[1] = _cn_digits(t[1])
                done = True
        return done
    if kind == "building_synonym":
        for t in toks:
            if t[0] == "bld":
                if t[1].endswith("栋"):
                    t[1] = t[1][:-1] + r.choice(["座", "幢", "号楼"])
                else:
                    t[1] = t[1][:-1] + r.choice(["栋", "幢"])
                return True
        return False
    if kind == "short_form":
        if "unit" in kinds and "bld" in kinds:
            b = re.sub(r"\D+$", "", next(t[1] for t in toks if t[0] == "bld"))
            u = next(t[1] for t in toks if t[0] == "unit")[:-2]
            room = toks[-1][1]
            toks[:] = [t for t in toks if t[0] not in ("bld", "unit", "room")] + [["room", f"{b}-{u}-{room}"]]
            return b.isdigit() and u.isdigit() and room.isdigit()
        if "laneno" in kinds:
            no = next(t[1] for t in toks if t[0] == "laneno")[:-1]
            room = toks[-1][1]
            toks[:] = [t for t in toks if t[0] not in ("laneno", "room")] + [["room", f"{no}-{room}"]]
            return True
        return False
    if kind == "floor_word":
        if toks[-1][0] != "room" or not toks[-1][1].isdigit():
            return False
        fl = int(geo.floor[h])
        toks.insert(len(toks) - 1, ["floor", (cn_number(fl) if r.random() < 0.5 else str(fl)) + "楼"])
        return True
    if kind == "homophone":
        cands = [t for t in toks if t[0] in ("road", "complex", "village", "lane")]
        r.shuffle(cands)
        for t in cands:
            pos = [i for i, ch in enumerate(t[1][:-1]) if ch in lx.HOMOPHONES]
            if pos:
                i = r.choice(pos)
                t[1] = t[1][:i] + lx.HOMOPHONES[t[1][i]] + t[1][i + 1 :]
                return True
        return False
    if kind == "bracket_note":
        note = r.choice(lx.NOTES)
        toks.append(["note", f"（{note}）" if r.random() < 0.6 else f"({note})"])
        return True
    if kind == "extra_spaces":
        for t in toks[:-1]:
            if r.random() < 0.4:
                t[1] += " " * r.choice([1, 1, 2])
        if r.random() < 0.2:
            toks[0][1] = " " + toks[0][1]
        return True
    raise ValueError(kind)


_ORDER = {k: i for i, k in enumerate(
    ["homophone", "short_form", "floor_word", "building_synonym", "cn_numerals", "fullwidth_digits",
     "missing_levels", "bracket_note", "extra_spaces"])}


def render_address(geo: Geo, h: int, r: random.Random, messy: bool, unresolvable: int,
                   weights: dict[str, float], extra_p: float) -> tuple[str, list[str]]:
    """Free-text address of house ``h``; returns (text, noise kinds).

    ``unresolvable``: 0 none, 1 nonexistent building, 2 nonexistent room, 3 too little information.
    """
    if unresolvable:
        key = geo.site_key(h)
        if unresolvable == 1:
            toks = _tokens(geo, h, bld=int(geo.site_max_bld[key]) + r.randint(1, 6))
        elif unresolvable == 2:
            toks = _tokens(geo, h, floor=int(geo.site_max_floor[key]) + r.randint(1, 5))
        else:
            toks = _tokens(geo, h)
            keep = r.choice([("street", "comm"), ("comm", "complex", "village"), ("road",), ("complex", "village", "lane")])
            toks = [t for t in toks if t[0] in keep] or toks[3:5]
        if r.random() < 0.5:
            _apply("missing_levels", toks, geo, h, r) if unresolvable != 3 else None
        return "".join(t for _, t in toks), [UNRESOLVABLE_KINDS[unresolvable - 1]]
    toks = _tokens(geo, h)
    if not messy:
        return "".join(t for _, t in toks), []
    names = list(weights)
    w = [weights[k] for k in names]
    chosen = {r.choices(names, w)[0]}
    while r.random() < extra_p and len(chosen) < 4:
        chosen.add(r.choices(names, w)[0])
    if "short_form" in chosen:
        chosen -= {"floor_word", "cn_numerals"}
    applied = [k for k in sorted(chosen, key=_ORDER.__getitem__) if _apply(k, toks, geo, h, r)]
    if not applied:
        _apply("missing_levels", toks, geo, h, r)
        applied = ["missing_levels"]
    return "".join(t for _, t in toks), applied


# --- dates ------------------------------------------------------------------------------------
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "cn")
DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "cn_dt", "%Y-%m-%dT%H:%M:%S", "cn")
BAD_DATES = ("2026-02-30", "待补录", "2026-13-01", "32/11/2026", "0000-00-00", "不详")


def fmt_date(value: dt.date | dt.datetime, fmt: str) -> str:
    """Format with strftime or the Chinese forms ``cn`` (2026年11月1日) / ``cn_dt`` (with 时:分)."""
    if fmt == "cn":
        return f"{value.year}年{value.month}月{value.day}日"
    if fmt == "cn_dt":
        assert isinstance(value, dt.datetime)
        return f"{value.year}年{value.month}月{value.day}日 {value.hour:02d}:{value.minute:02d}"
    return value.strftime(fmt)


def messy_date(value: dt.date | dt.datetime, base: str, r: random.Random, rate: float) -> tuple[str, str | None]:
    """The department's usual format, or with probability ``rate`` another one; returns (text, kind)."""
    if r.random() >= rate:
        return fmt_date(value, base), None
    pool = DATETIME_FORMATS if isinstance(value, dt.datetime) else DATE_FORMATS
    fmt = r.choice([f for f in pool if f != base])
    return fmt_date(value, fmt), "date_format"
