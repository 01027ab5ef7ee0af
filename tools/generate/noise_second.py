"""The second address noise model: how residents, landlords and clerks write a Futian address.

Designed independently of the default model (``text.py``) and of any parser, from the structure of a
standard address (admin area, street, community, road + door number or village + 坊/巷 + number,
building, unit, floor, room) and the ways people write each part:

* numbers: Arabic, full-width (５坊, ５０１), digit by digit (五零一), positional (二十三, 一百零五), mixed in
  one address, in every numbered component (door, lane, lane number, building, unit, floor, room);
* markers and their variants: 栋/幢/座/号楼/#, 单元/梯, 层/楼/F, 室/房/户/号 after the room, 号/號/栋;
* notes that are not the address: bracketed or not; transport (近XX地铁站), landmark + direction (村委会旁),
  letting terms and unit types (出租, 单间, 一房一厅), access notes; station names that are also place names;
* order and completeness: admin levels missing or repeated, the community after the road, the room before
  the building, short forms (12-3-501, 12-501, 坊内13-401), separators (spaces, commas, slashes);
* characters: homophone typos chosen by sound (pypinyin over the common character set), traditional forms.

Unresolvable kinds (the truth records no house): ``typo_building`` / ``typo_room`` (a number mistyped into
one no house has at that place: a neighbour is the wrong answer), ``missing_room`` (no room: the building
has many houses) and ``too_little_info``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from tools.generate import lexicon as lx
from tools.generate import noise_words as nw
from tools.generate.config import SECOND_UNRESOLVABLE
from tools.generate.geography import Geo, bld_label

_FW = str.maketrans("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-#", "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ－＃")
_CN = "零一二三四五六七八九"
_LANE_RE = re.compile(r"^(.*?)([零一二三四五六七八九十百]+)([坊巷])$")
_NUM_STYLES = ("arabic", "fullwidth", "cn_digits", "cn_positional")


def cn_positional(n: int) -> str:
    """Positional Chinese numeral: 3 -> 三, 10 -> 十, 23 -> 二十三, 105 -> 一百零五, 1203 -> 一千二百零三."""
    import cn2an

    return str(cn2an.an2cn(int(n)))


def write_number(n: int | str, style: str, zero: str = "零") -> str:
    """``n`` written in ``style``: arabic, fullwidth, cn_digits (五零一) or cn_positional (五百零一); a
    letter (building A) stays a letter (full-width in the fullwidth style)."""
    s = str(n)
    if style == "fullwidth":
        return s.translate(_FW)
    if not s.isdigit():
        return s
    if style == "cn_digits":
        return "".join(zero if ch == "0" else _CN[int(ch)] for ch in s)
    if style == "cn_positional":
        return cn_positional(int(s))
    return s


# --- what exists: used to make typos that hit no house ---------------------------------------------------

@dataclass
class SiteIndex:
    """Per site (complex or lane, keyed as ``Geo.site_key``): its buildings, units per building and the
    rooms per (building, unit)."""

    blds: dict[int, set[str]] = field(default_factory=dict)
    units: dict[tuple[int, str], set[int]] = field(default_factory=dict)
    rooms: dict[tuple[int, str], set[int]] = field(default_factory=dict)   # (site, bld) -> rooms of any unit


_INDEX: dict[int, tuple[Geo, SiteIndex]] = {}


def site_index(geo: Geo) -> SiteIndex:
    """The :class:`SiteIndex` of ``geo`` (built once per district)."""
    hit = _INDEX.get(id(geo))
    if hit is not None and hit[0] is geo:
        return hit[1]
    idx = SiteIndex()
    for h in range(geo.n):
        key = geo.site_key(h)
        b = _bld_text(geo, h)
        idx.blds.setdefault(key, set()).add(b)
        idx.units.setdefault((key, b), set()).add(int(geo.unit[h]))
        idx.rooms.setdefault((key, b), set()).add(int(geo.room[h]))
    _INDEX.clear()
    _INDEX[id(geo)] = (geo, idx)
    return idx


def _bld_text(geo: Geo, h: int) -> str:
    if geo.kind[h] == 1:
        return str(int(geo.bld[h]))
    return bld_label(int(geo.bld[h]), bool(geo.cx_tower[int(geo.site[h])]))


def digit_typos(s: str, r: random.Random) -> list[str]:
    """Ways a clerk mistypes a number: a digit doubled, dropped, two swapped, a neighbour key, one added."""
    out = set()
    for i in range(len(s)):
        out.add(s[:i] + s[i] + s[i:])
        if len(s) > 1:
            out.add(s[:i] + s[i + 1:])
        if i + 1 < len(s) and s[i] != s[i + 1]:
            out.add(s[:i] + s[i + 1] + s[i] + s[i + 2:])
        if s[i].isdigit():
            for d in (int(s[i]) - 1, int(s[i]) + 1):
                if 0 <= d <= 9:
                    out.add(s[:i] + str(d) + s[i + 1:])
    out.update({s + str(r.randint(0, 9)), str(r.randint(1, 9)) + s})
    return sorted(x for x in out if x and x[0] != "0" and x != s)


# --- the parts of one house ------------------------------------------------------------------------------

@dataclass
class Parts:
    """The components of a house's standard address, and the written form decided so far."""

    village: bool
    admin: list[tuple[str, str]]          # (level, text): prov, city, dist, street, comm
    road: str = ""
    door: str = ""
    complex: str = ""
    vname: str = ""
    lane_head: str = ""                   # 东村 / "" ; lane numeral and its type (坊/巷)
    lane_no: str = ""
    lane_type: str = ""
    bld: str = ""                         # building (complex) or number in the lane (village)
    unit: int = 0
    floor: int = 0
    room: int | None = 0
    units: int = 1                        # units of the house's building (a short form may omit a sole unit)
    styles: dict[str, str] = field(default_factory=dict)   # component -> number style
    zero: str = "零"


def parts_of(geo: Geo, h: int) -> Parts:
    """The standard components of house ``h``."""
    c = int(geo.comm[h])
    admin = [("prov", lx.PROVINCE), ("city", lx.CITY), ("dist", lx.DISTRICT),
             ("street", geo.streets[int(geo.comm_street[c])]), ("comm", geo.communities[c])]
    s = int(geo.site[h])
    p = Parts(village=bool(geo.kind[h] == 1), admin=admin, bld=_bld_text(geo, h), unit=int(geo.unit[h]),
              floor=int(geo.floor[h]), room=int(geo.room[h]))
    if p.village:
        p.vname = geo.villages[geo.lane_village[s]]
        m = _LANE_RE.match(geo.lane_name[s])
        p.lane_head, p.lane_no, p.lane_type = (m.group(1), m.group(2), m.group(3)) if m else (geo.lane_name[s], "", "")
    else:
        p.road, p.door, p.complex = geo.roads[geo.cx_road[s]], str(geo.cx_door[s]), geo.cx_name[s]
    return p


def _cn_value(s: str) -> int:
    import cn2an

    return int(cn2an.cn2an(s, "smart"))


class _Writer:
    """Renders :class:`Parts` with the chosen kinds into tokens ``[slot, text]``."""

    def __init__(self, p: Parts, kinds: set[str], r: random.Random) -> None:
        self.p, self.k, self.r = p, kinds, r

    def num(self, comp: str, n: int | str) -> str:
        return write_number(n, self.p.styles.get(comp, "arabic"), self.p.zero)

    def marker(self, comp: str) -> str:
        r, variant = self.r, "marker_variant" in self.k
        if comp == "bld":
            if self.p.bld.isalpha():
                return r.choice(["座", "栋", "幢", "座", "楼"]) if variant else "座"
            return r.choice(["幢", "座", "号楼", "#", "#楼", "栋"]) if variant else "栋"
        if comp == "unit":
            return r.choice(["梯", "单元", "梯"]) if variant else "单元"
        if comp == "laneno":
            return r.choice(["號", "栋", "号楼", "号"]) if variant else "号"
        if comp == "floor":
            return r.choice(["F", "层", "楼", "f"]) if variant else r.choice(["楼", "层"])
        if comp == "door":
            return r.choice(["號", "号"]) if variant else "号"
        raise ValueError(comp)

    def room_text(self) -> str:
        assert self.p.room is not None
        suffix = ""
        if "room_before_building" in self.k:     # a room written first carries its marker
            suffix = self.r.choice(["室", "房", "户"])
        elif "room_suffix" in self.k:
            suffix = self.r.choice(["号", "号", "室", "房", "户"])
        return self.num("room", self.p.room) + suffix

    def tokens(self) -> list[list[str]]:
        p, r = self.p, self.r
        toks = [[lv, t] for lv, t in p.admin]
        if p.village:
            lane_no = self.num("lane", _cn_value(p.lane_no)) if p.lane_no and p.styles.get("lane") else p.lane_no
            toks += [["village", p.vname], ["lane", p.lane_head + lane_no + p.lane_type]]
            head = [["laneno", self.num("laneno", p.bld) + self.marker("laneno")]]
        else:
            toks += [["road", p.road], ["door", self.num("door", p.door) + self.marker("door")], ["complex", p.complex]]
            head = [["bld", self.num("bld", p.bld) + self.marker("bld")]]
            if p.unit:
                head.append(["unit", self.num("unit", p.unit) + self.marker("unit")])
        if p.room is None:
            return toks + head
        if "short_dash" in self.k:
            dash = r.choice(["-", "-", "-", "－", "—"])
            nums = [self.num("bld" if not p.village else "laneno", p.bld)]
            if p.unit and p.units > 1:
                nums.append(self.num("unit", p.unit))
            nums.append(self.num("room", p.room))
            inside = "内" if p.village and r.random() < 0.4 else ""
            return toks + [["short", inside + dash.join(nums) + ("号" if "room_suffix" in self.k else "")]]
        rest = []
        if "floor_written" in self.k:
            rest.append(["floor", self.num("floor", p.floor) + self.marker("floor")])
        rest.append(["room", self.room_text()])
        if "room_before_building" in self.k:
            return toks + rest + [["sep", r.choice(["，", " ", ","])]] + head
        return toks + head + rest


# --- kinds applied to the tokens -------------------------------------------------------------------------

def _choose_styles(p: Parts, kinds: set[str], r: random.Random) -> None:
    styles = _NUM_STYLES[:2] if "short_dash" in kinds else _NUM_STYLES   # nobody writes 四-二百零一
    comps = ["door", "bld", "unit", "floor", "room", "laneno", "lane"]
    if "num_fullwidth" in kinds:
        for c in comps:
            if c != "lane" or r.random() < 0.5:
                p.styles[c] = "fullwidth"
    if "num_cn_digits" in kinds:
        p.styles["room"] = "cn_digits"
        for c in ("door", "laneno", "bld"):
            if r.random() < 0.3:
                p.styles[c] = "cn_digits"
    if "num_cn_positional" in kinds:
        for c in ("bld", "unit", "floor", "laneno", "door"):
            p.styles[c] = "cn_positional"
        if r.random() < 0.4:
            p.styles["room"] = "cn_positional"
    if "num_mixed" in kinds:
        present = ["laneno", "room"] + (["lane"] if p.lane_no else []) if p.village else \
            ["door", "bld", "room"] + (["unit"] if p.unit else [])
        if "floor_written" in kinds:
            present.append("floor")
        want = min(3, len(styles), len(present))
        while len({p.styles.get(c, "arabic") for c in present}) < want:
            p.styles[r.choice(present)] = r.choice(styles)
    if "lane" in p.styles and p.styles["lane"] == "cn_digits":
        p.styles["lane"] = "cn_positional"
    if r.random() < 0.3:
        p.zero = "〇"


def _homophone(toks: list[list[str]], geo: Geo, r: random.Random) -> bool:
    taken = set(geo.roads) | set(geo.cx_name) | set(geo.villages) | set(geo.lane_name) | set(geo.communities)
    cands = [t for t in toks if t[0] in ("road", "complex", "village", "lane", "comm")]
    r.shuffle(cands)
    for t in cands:
        name = t[1]
        tail = next((x for x in lx.COMPLEX_TAILS if t[0] == "complex" and name.endswith(x)), name[-1])
        pos = [i for i in range(len(name) - len(tail)) if "\u4e00" <= name[i] <= "\u9fff" and name[i] not in _CN]
        r.shuffle(pos)
        for i in pos:
            alts = nw.same_sound(name[i])
            if not alts:
                continue
            new = name[:i] + r.choice(alts) + name[i + 1:]
            if new not in taken:
                t[1] = new
                return True
    return False


def _note(r: random.Random) -> str:
    cls = r.choice(["transport", "landmark", "letting", "unit_type", "access"])
    if cls == "transport":
        st = r.choice(nw.STATIONS)
        return r.choice([f"近{st}地铁站", f"{st}地铁站{r.choice('ABCD')}出口附近", f"地铁{st}站旁",
                         f"{st}公交站对面", f"近地铁{r.randint(1, 11)}号线{st}站"])
    if cls == "landmark":
        return r.choice(nw.LANDMARKS) + r.choice(nw.DIRECTIONS)
    if cls == "letting":
        return r.choice(nw.LETTING) + (r.choice(nw.UNIT_TYPES) if r.random() < 0.5 else "")
    if cls == "unit_type":
        return r.choice(nw.UNIT_TYPES)
    return r.choice(nw.ACCESS)


def _apply(kind: str, toks: list[list[str]], geo: Geo, r: random.Random) -> bool:
    """Apply one token-level kind in place; False when it does not apply."""
    slots = [t[0] for t in toks]
    admin = [t for t in toks if t[0] in ("prov", "city", "dist", "street", "comm")]
    if kind == "admin_missing":
        drop = {lv for lv in ("prov", "city", "dist", "street", "comm") if r.random() < 0.55}
        if not drop or not admin:
            drop = {r.choice(["prov", "city", "street", "comm"])}
        toks[:] = [t for t in toks if t[0] not in drop]
        return True
    if kind == "admin_repeated":
        if not admin:
            return False
        twice = r.choice([["city", "dist"], ["dist"], ["street"], ["city"], ["prov", "city"]])
        rep = [[f"{t[0]}_again", t[1] if r.random() < 0.6 else re.sub(r"(省|市|区|街道)$", "", t[1])]
               for t in admin if t[0] in twice]
        if not rep:
            return False
        last = max(i for i, t in enumerate(toks) if t[0] in ("prov", "city", "dist", "street", "comm"))
        at = r.choice([last + 1, max(i for i, t in enumerate(toks) if t[0] in twice) + 1])
        toks[at:at] = rep
        return True
    if kind == "community_after_road":
        if "comm" not in slots or not ({"door", "lane", "complex"} & set(slots)):
            return False
        comm = next(t for t in toks if t[0] == "comm")
        toks.remove(comm)
        anchor = [i for i, t in enumerate(toks) if t[0] in ("door", "complex", "village", "lane")]
        i = r.choice(anchor[:2]) + 1
        if r.random() < 0.4:
            comm = ["comm", f"（{comm[1]}）"]
        toks.insert(i, comm)
        return True
    if kind == "bracketed_note":
        a, b = r.choice(nw.BRACKETS)
        note = ["note", f"{a}{_note(r)}{b}"]
        named = [i for i, t in enumerate(toks) if t[0] in ("complex", "village", "lane", "door")]
        toks.insert(r.choice(named) + 1 if named and r.random() < 0.35 else len(toks), note)
        return True
    if kind == "filler":
        if "village" in slots and r.random() < 0.5:
            i = slots.index("village") + 1
            word = r.choice(["村委会", "居委会", "股份公司"]) + r.choice(["旁", "附近", "对面", "后面", ""])
            toks.insert(i, ["note", word])
        else:
            toks.append(["note", r.choice([" ", "", "，"]) + _note(r)])
        return True
    if kind == "homophone_sound":
        return _homophone(toks, geo, r)
    if kind == "separators":
        for t in toks[:-1]:
            if t[0] != "note" and r.random() < 0.45:
                t[1] += r.choice(nw.SEPARATORS)
        return True
    if kind == "traditional":
        share = 1.0 if r.random() < 0.7 else 0.5
        u = [r.random() for _ in range(16)]
        changed = False
        for t in toks:
            new = nw.to_traditional(t[1], share, u)
            changed |= new != t[1]
            t[1] = new
        return changed
    raise ValueError(kind)


_TOKEN_KINDS = ("admin_missing", "admin_repeated", "community_after_road", "homophone_sound", "bracketed_note",
                "filler", "traditional", "separators")   # applied in this order, after the tokens are written


# --- unresolvable variants -------------------------------------------------------------------------------

def typo_building(p: Parts, key: int, idx: SiteIndex, r: random.Random) -> bool:
    """Mistype ``p``'s building (or number in the lane) into one the site ``key`` does not have; False if
    no such typo exists."""
    if p.bld.isalpha():
        free = [chr(c) for c in range(ord("A"), ord("H")) if chr(c) not in idx.blds[key]]
        if not free:
            return False
        p.bld = r.choice(free)
        return True
    opts = [x for x in digit_typos(p.bld, r) if x not in idx.blds[key]]
    if not opts:
        return False
    p.bld = r.choice(opts)
    return True


def typo_room(p: Parts, key: int, idx: SiteIndex, r: random.Random) -> bool:
    """Mistype ``p``'s room into one no unit of its building has; False if no such typo exists."""
    rooms = idx.rooms[(key, p.bld)]
    opts = [int(x) for x in digit_typos(str(p.room), r) if int(x) not in rooms]
    if not opts:
        return False
    p.room = r.choice(opts)    # the floor, if written, stays the true one: the typo is in the room
    return True


def render_second(geo: Geo, h: int, r: random.Random, messy: bool, unresolvable: int,
                  weights: dict[str, float], extra_p: float) -> tuple[str, list[str]]:
    """Free-text address of house ``h`` under the second noise model; returns (text, noise kinds).

    ``unresolvable``: 0 none, else 1-based index into :data:`SECOND_UNRESOLVABLE` (the truth then records
    no house for the record)."""
    p = parts_of(geo, h)
    key = geo.site_key(h)
    idx = site_index(geo)
    p.units = len(idx.units.get((key, p.bld), {0}))
    kinds: set[str] = set()
    if messy or unresolvable:
        names, w = list(weights), [weights[k] for k in weights]
        if messy:
            kinds.add(r.choices(names, w)[0])
        while r.random() < extra_p and len(kinds) < 5:
            kinds.add(r.choices(names, w)[0])
    applied_unres: list[str] = []
    if unresolvable:
        ukind = SECOND_UNRESOLVABLE[int(unresolvable) - 1]
        ok = True
        if ukind == "typo_building":
            ok = typo_building(p, key, idx, r)
        elif ukind == "typo_room":
            ok = typo_room(p, key, idx, r)
        elif ukind == "missing_room":
            p.room = None
            kinds -= {"short_dash", "floor_written", "room_suffix", "room_before_building"}
        if not ok:   # no such typo possible at this place: the room is left out instead
            ukind, p.room = "missing_room", None
            kinds -= {"short_dash", "floor_written", "room_suffix", "room_before_building"}
        applied_unres = [ukind]
    if "short_dash" in kinds:
        kinds -= {"floor_written", "room_before_building", "num_cn_digits", "num_cn_positional"}
    if "room_before_building" in kinds:   # 6楼601室，8号: 6楼 would read as building 6
        kinds.discard("floor_written")
    _choose_styles(p, kinds, r)
    toks = _Writer(p, kinds, r).tokens()
    if applied_unres == ["too_little_info"]:
        keep = r.choice([("street", "comm"), ("comm", "complex", "village"), ("road",), ("complex", "village", "lane")])
        toks = [t for t in toks if t[0] in keep] or toks[3:5]
    written = ("num_fullwidth", "num_cn_digits", "num_cn_positional", "num_mixed", "room_suffix", "marker_variant",
               "floor_written", "short_dash", "room_before_building")
    applied = [] if applied_unres == ["too_little_info"] else [k for k in written if k in kinds]
    for k in _TOKEN_KINDS:
        if k in kinds and _apply(k, toks, geo, r):
            applied.append(k)
    text = "".join(t for _, t in toks).strip() or "".join(t for _, t in toks)
    return text, applied_unres + applied
