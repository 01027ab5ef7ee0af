"""Person mentions across sources, named the way departments name persons, with the truth of who is who.

Declarations carry an ID number; police, mediation and family-planning records often carry only a
name and a phone. People write IDs with one digit mistyped (it then fails the GB 11643 checksum) or in
the legacy 15-digit form, names in traditional characters or with a same-sounding character, a family
member's phone instead of their own; and a community has namesakes: two different persons with the same
common name. :class:`MentionRenderer` renders every person an enforcement record names (the deliverer
writes these names, phones and IDs into the police, mediation and family-planning files) and records
each declarant as delivered; ``truth/person_mentions.parquet`` holds the same mentions (name, phone,
id_number, house_code as delivered) with their truth (person_id = the true 18-digit ID, noise kinds).
Namesakes are truth-only mentions (a different person with the same name in another record of the
community): what linkage must keep apart. Rates: ``noise.persons`` in ``conf/generator.yaml``
(:class:`PersonNoise`; ``enabled: false`` delivers every party with their own name, phone and ID).
"""

from __future__ import annotations

import logging
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gridlake.ids import check_digit
from tools.generate import lexicon as lx
from tools.generate.config import PERSON_SOURCES, PersonNoise, person_noise
from tools.generate.people import phone_form
from tools.generate.world import World

log = logging.getLogger(__name__)

__all__ = ["MentionRenderer", "write_person_mentions", "MENTION_SCHEMA",
           "NOISE_KINDS", "to_traditional", "homophone"]

#: every noise kind a mention can carry (``noise`` column, ';'-joined)
NOISE_KINDS = ("id_missing", "id_typo", "id15", "name_traditional", "name_homophone", "phone_missing",
               "phone_format", "family_phone", "namesake",
               # second model only (noise.persons_second)
               "name_separator", "id_fullwidth", "id_spaced", "phone_landline", "phone_transposed", "phone_old")

MENTION_SCHEMA = pa.schema([
    ("record_key", pa.string()), ("source", pa.string()), ("record_id", pa.string()), ("role", pa.string()),
    ("name", pa.string()), ("phone", pa.string()), ("id_number", pa.string()), ("house_code", pa.string()),
    ("person_id", pa.string()), ("noise", pa.string()),
])


# simplified -> traditional for characters of names (the standard pairs; a character without a
# traditional form is written the same)
_TRAD = str.maketrans(
    "伟静丽强军艳杰涛兰刚华红鹏辉轩泽诺瑶晓东国凤胜张刘陈杨赵吴郑谢许韩冯邓蒋苏吕钟谭陆卢顾龚贺孙马罗叶钱汤龙韦邹闫万严欧阳诸马",
    "偉靜麗強軍艷傑濤蘭剛華紅鵬輝軒澤諾瑤曉東國鳳勝張劉陳楊趙吳鄭謝許韓馮鄧蔣蘇呂鍾譚陸盧顧龔賀孫馬羅葉錢湯龍韋鄒閆萬嚴歐陽諸馬")

# common name characters among which a same-sounding replacement is looked for
_NAME_CHARS = ("伟玮炜维芳方放静晶婧敬丽莉俐立力强蔷军君钧艳燕彦杰洁婕捷娟鹃涛韬滔明鸣铭超霞侠华桦骅平萍屏"
               "玲铃翎凌刚钢纲红虹宏鸿辉晖慧惠浩昊皓宇语雨玉欣馨新心怡宜仪晨辰琪琦祺佳嘉家悦越月泽则瑶遥婷亭"
               "雪琳林霖晓小东冬海波博文雯俊峻豪毫思斯涵寒然冉子梓诺睿瑞建健剑国志智春梅美凤峰锋永勇德胜盛金")


@lru_cache(maxsize=1)
def _homophones() -> dict[str, list[str]]:
    from pypinyin import Style, pinyin

    by_sound: dict[str, list[str]] = {}
    for ch in dict.fromkeys(_NAME_CHARS + "".join(lx.GIVEN)):
        by_sound.setdefault(pinyin(ch, style=Style.NORMAL)[0][0], []).append(ch)
    return {ch: [c for c in group if c != ch] for group in by_sound.values() for ch in group if len(group) > 1}


def to_traditional(name: str) -> str:
    """The name in traditional characters (characters without a traditional form unchanged)."""
    return name.translate(_TRAD)


def homophone(name: str, u: float) -> str | None:
    """The name with one given-name character replaced by a same-sounding one (None when none has one);
    ``u`` in [0, 1) picks the character and the replacement."""
    table = _homophones()
    start = 2 if len(name) == 4 else 1
    spots = [i for i in range(start, len(name)) if name[i] in table]
    if not spots:
        return None
    i = spots[int(u * len(spots)) % len(spots)]
    alts = table[name[i]]
    return name[:i] + alts[int(u * 7919) % len(alts)] + name[i + 1:]


def _typo(id18: str, u: float) -> str:
    """One digit replaced by another where the ID keeps its format (region digits after the first, the
    year's last two, the sequence), so it fails only the GB 11643 checksum (every single-digit change does:
    the weights are non-zero mod 11). The check character is left as written."""
    spots = (14, 15, 16, 1, 2, 3, 4, 5, 8, 9)
    pos = spots[int(u * 3) % 3] if u < 0.5 else spots[int(u * 1000) % len(spots)]   # sequence digits most
    d = int(id18[pos])
    nd = (d + 1 + int(u * 977) % 9) % 10
    return id18[:pos] + str(nd) + id18[pos + 1:]


def _new_id(rng: np.random.Generator, like: str) -> str:
    """A fresh valid 18-digit ID (another person: same region, another birth date and sequence)."""
    year = int(like[6:10]) + int(rng.integers(-6, 7))
    first17 = f"{like[:6]}{year:04d}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}{int(rng.integers(0, 1000)):03d}"
    return first17 + check_digit(first17)


class MentionRenderer:
    """Renders the persons a delivered record names, the way its department writes them, and keeps the truth.

    The deliverer calls :meth:`declarant` and :meth:`party` while it writes each night's files, so the
    delivered cells and ``truth/person_mentions.parquet`` come from the same mentions. Each mention draws
    from its own stream (seed, source, record id, position among the record's persons): the rendering of a
    record does not depend on the order or the night in which the others are rendered. Household members
    (for family phones) are the persons who declared at the house up to the record's night.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        pn = person_noise(world.cfg.noise)
        if not pn.enabled:
            pn = PersonNoise(enabled=False, id_present={s: 1.0 for s in PERSON_SOURCES}, id_typo_rate=0.0,
                             id15_rate=0.0, phone_present=1.0, family_phone_rate=0.0, traditional_rate=0.0,
                             homophone_rate=0.0, namesake_rate=0.0, phone_format_rate=0.0)
        self.pn = pn
        self.rows: list[tuple] = []
        self.valid_persons: set[int] = set()   # persons named with a valid ID number so far (truth.py, R5)
        self._members: dict[int, list[int]] = {}
        self._home: dict[int, int] = {}
        self._members_night = 0
        self._houses_of_comm: dict[int, np.ndarray] = {}

    def _u(self, source: str, rid: str, pos: int) -> np.ndarray:
        h = zlib.crc32(f"{source}|{rid}|{pos}".encode())
        return np.random.default_rng([self.world.cfg.seed, 21, h]).random(10)

    def _u2(self, source: str, rid: str, pos: int) -> np.ndarray:
        """The second model's own stream (the default model never draws from it: its seeds reproduce)."""
        h = zlib.crc32(f"{source}|{rid}|{pos}".encode())
        return np.random.default_rng([self.world.cfg.seed, 23, h]).random(8)

    def members(self, night: int) -> dict[int, list[int]]:
        """house -> persons who declared there on nights up to ``night``."""
        if night != self._members_night:
            d = self.world.decl
            m = d.col("night") <= night
            out: dict[int, list[int]] = {}
            for p, h in zip(d.col("person")[m], d.col("house")[m], strict=True):
                out.setdefault(int(h), []).append(int(p))
            self._members, self._members_night = out, night
            self._home = {p: h for h, ps in out.items() for p in ps}
        return self._members

    def declarant(self, rid: str, p: int, h: int, id_text: str, id_form: str, phone: str, phone_kind: str) -> None:
        """Record the declarant of a declaration as delivered (its ID form and phone are the deliverer's)."""
        pool = self.world.pool
        noise = {"id_bad_checksum": ["id_typo"], "id15_legacy": ["id15"]}.get(id_form, [])
        if phone_kind != "phone_plain":
            noise.append("phone_format")
        if id_form != "id_bad_checksum":
            self.valid_persons.add(int(p))
        self.rows.append(("", "declarations", rid, "declarant", pool.name(p), phone, id_text,
                          self.world.geo.house_code(h) if h >= 0 else "", pool.id18(p), ";".join(noise)))

    def party(self, source: str, rid: str, p: int, h: int, pos: int, night: int) -> tuple[str, str, str, str]:
        """``(name, phone, id_text, id_form)`` of person ``p`` named at position ``pos`` of enforcement record
        ``rid`` (at house ``h``, -1 when its address names no house); the mention (and, with probability
        ``namesake_rate``, a namesake's mention in another record of the community) goes to the truth."""
        world, pool, pn = self.world, self.world.pool, self.pn
        u = self._u(source, rid, pos)
        ident = {"name": pool.name(p), "id": pool.id18(p), "phone": str(int(pool.phone[p])),
                 "year": int(pool.birth_year[p])}
        row = _render(source, rid, "party", ident, h, u, pn, self.members(night), pool, world.geo, [])
        if _has_second(pn):
            row = _second(row, ident, self._home.get(int(p), h), self._u2(source, rid, pos), pn, world.geo)
        self.rows.append(row)
        kinds = row[-1].split(";")
        form = ("id_missing" if "id_missing" in kinds else "id_bad_checksum" if "id_typo" in kinds
                else "id15_legacy" if "id15" in kinds else "id18")
        if form in ("id18", "id15_legacy"):
            self.valid_persons.add(int(p))
        if u[0] < pn.namesake_rate and h >= 0:
            self._namesake(source, rid, ident, h, u, night)
        return row[4], row[5], row[6], form

    def _namesake(self, source: str, rid: str, ident: dict, h: int, u: np.ndarray, night: int) -> None:
        """A different person with the same name, named in another record of the same community (truth only:
        what linkage must keep apart)."""
        geo = self.world.geo
        comm_of = geo.grid_comm[geo.grid]
        c = int(comm_of[h])
        hs = self._houses_of_comm.get(c)
        if hs is None:
            hs = self._houses_of_comm[c] = np.flatnonzero(comm_of == c)
        rng = np.random.default_rng([self.world.cfg.seed, 22, zlib.crc32(f"{source}|{rid}".encode())])
        other = {"name": ident["name"], "id": _new_id(rng, ident["id"]),
                 "phone": str(int(rng.integers(130, 200)) * 10**8 + int(rng.integers(0, 10**8))), "year": 0}
        other["year"] = int(other["id"][6:10])
        h2 = int(hs[int(u[9] * len(hs)) % len(hs)])
        row = _render(source, f"{rid}-n", "party", other, h2, u, self.pn, self.members(night),
                      self.world.pool, geo, ["namesake"])
        if _has_second(self.pn):
            row = _second(row, other, h2, self._u2(source, f"{rid}-n", 0), self.pn, geo)
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        """Every mention recorded so far (:data:`MENTION_SCHEMA`), with its ``record_key``."""
        df = pd.DataFrame(self.rows, columns=[f.name for f in MENTION_SCHEMA])
        # a mention's key: source, record id and its place among the record's persons (no personal data)
        df["record_key"] = (df["source"] + ":" + df["record_id"] + "#"
                            + df.groupby(["source", "record_id"]).cumcount().astype(str))
        log.info("person mentions: %d (%d namesakes)", len(df), int(df["noise"].str.contains("namesake").sum()))
        return df


def _render(src: str, rid: str, role: str, ident: dict, h: int, u: np.ndarray, pn: PersonNoise,
            members: dict[int, list[int]], pool, geo, noise: list[str]) -> tuple:
    name, id18 = ident["name"], ident["id"]
    if u[1] < pn.traditional_rate:
        t = to_traditional(name)
        if t != name:
            name, noise = t, [*noise, "name_traditional"]
    elif u[1] < pn.traditional_rate + pn.homophone_rate:
        t = homophone(name, float(u[8]))
        if t is not None:
            name, noise = t, [*noise, "name_homophone"]
    id_text = ""
    present = 1.0 if src == "declarations" else pn.id_present.get(src, 0.0)
    if u[2] >= present:
        noise.append("id_missing")
    elif u[3] < pn.id_typo_rate:
        id_text = _typo(id18, float(u[8]))
        noise.append("id_typo")
    elif u[3] < pn.id_typo_rate + pn.id15_rate and 1900 <= ident["year"] <= 1999:
        id_text = id18[:6] + id18[8:17]
        noise.append("id15")
    else:
        id_text = id18
    phone = ident["phone"]
    if src != "declarations" and u[4] >= pn.phone_present:
        phone = ""
        noise.append("phone_missing")
    else:
        fam = [q for q in members.get(h, []) if pool.id18(q) != id18] if h >= 0 else []
        if fam and u[5] < pn.family_phone_rate:
            phone = str(int(pool.phone[fam[int(u[8] * len(fam)) % len(fam)]]))
            noise.append("family_phone")
        phone, kind = phone_form(int(phone), float(u[6]), pn.phone_format_rate)
        if kind != "phone_plain":
            noise.append("phone_format")
    house = geo.house_code(h) if h >= 0 else ""
    return ("", src, rid, role, name, phone, id_text, house, id18, ";".join(noise))


def _has_second(pn: PersonNoise) -> bool:
    return any((pn.name_separator_rate, pn.id_fullwidth_rate, pn.id_spaced_rate, pn.landline_rate,
                pn.phone_transposed_rate, pn.old_phone_rate))


_FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９ｘ")


def landline(house_code: str) -> str:
    """The 8 local digits of a household's fixed line (Shenzhen: area code 0755, numbers 2xxxxxxx-8xxxxxxx)."""
    return f"{2 + zlib.crc32(house_code.encode()) % 7}{zlib.crc32(house_code[::-1].encode()) % 10**7:07d}"


def old_phone(id18: str) -> str:
    """A mobile the person used before (the number changed since)."""
    return f"1{(3, 5, 8)[zlib.crc32(id18.encode()) % 3]}{zlib.crc32(('old' + id18).encode()) % 10**9:09d}"


def _second(row: tuple, ident: dict, home: int, u: np.ndarray, pn: PersonNoise, geo) -> tuple:
    """The second model's kinds on a rendered enforcement mention: how a clerk, a dictated form or the person
    writes a name, an ID and a phone (``noise.persons_second``). ``home``: the house the person declared at
    (its landline), else the record's house."""
    src, rid, role, name, phone, id_text, house, id18, kinds = row[1:]
    noise = [k for k in kinds.split(";") if k]
    if u[0] < pn.name_separator_rate and len(name) >= 2:
        cut = 2 if len(name) == 4 else 1            # a four-character name: a compound surname (欧阳, 司马)
        name = name[:cut] + (" " if u[1] < 0.6 else "·") + name[cut:]
        noise.append("name_separator")
    if id_text and "id15" not in noise:
        if u[2] < pn.id_fullwidth_rate:
            id_text = id_text.translate(_FULLWIDTH)
            noise.append("id_fullwidth")
        elif u[2] < pn.id_fullwidth_rate + pn.id_spaced_rate:
            id_text = f"{id_text[:6]} {id_text[6:14]} {id_text[14:]}"
            noise.append("id_spaced")
    if phone and "family_phone" not in noise:
        digits = "".join(ch for ch in phone if ch.isdigit())[-11:]
        if u[3] < pn.landline_rate and home >= 0:
            local = landline(geo.house_code(home))
            phone = (f"0755-{local}", f"(0755){local}", local)[int(u[4] * 3) % 3]   # a local writes 8 digits
            noise = [k for k in noise if k != "phone_format"] + ["phone_landline"]
        elif u[3] < pn.landline_rate + pn.phone_transposed_rate and len(digits) == 11:
            i = 3 + int(u[4] * 7) % 7                 # never the 1x prefix
            if digits[i] != digits[i + 1]:
                phone = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2:]
                noise = [k for k in noise if k != "phone_format"] + ["phone_transposed"]
        elif u[3] < pn.landline_rate + pn.phone_transposed_rate + pn.old_phone_rate:
            phone = old_phone(id18)
            noise = [k for k in noise if k != "phone_format"] + ["phone_old"]
    return ("", src, rid, role, name, phone, id_text, house, id18, ";".join(noise))


def write_person_mentions(df: pd.DataFrame, path: Path) -> None:
    """Write the mentions and their truth as Parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, schema=MENTION_SCHEMA, preserve_index=False), path, compression="zstd")
