"""Person mentions across sources, named the way departments name persons, with the truth of who is who.

Declarations carry an ID number; police, mediation and family-planning records often carry only a
name and a phone. People write IDs with one digit mistyped (it then fails the GB 11643 checksum) or in
the legacy 15-digit form, names in traditional characters or with a same-sounding character, a family
member's phone instead of their own; and a community has namesakes: two different persons with the same
common name. This module derives one mention per (record, person) from the simulated world after the
run, with its own random stream (the delivered files and the other truth files are unchanged), and
writes ``truth/person_mentions.parquet``: the mention as delivered (name, phone, id_number, house_code)
and its truth (person_id = the true 18-digit ID, noise kinds). Rates: ``noise.persons`` in
``conf/generator.yaml`` (:class:`PersonNoise`).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gridlake.ids import check_digit
from tools.generate import lexicon as lx
from tools.generate.config import PersonNoise, person_noise
from tools.generate.deliver import record_id
from tools.generate.people import phone_form
from tools.generate.world import ENF_SOURCES, World

log = logging.getLogger(__name__)

__all__ = ["person_mentions", "write_person_mentions", "MENTION_SCHEMA",
           "NOISE_KINDS", "to_traditional", "homophone"]

#: every noise kind a mention can carry (``noise`` column, ';'-joined)
NOISE_KINDS = ("id_missing", "id_typo", "id15", "name_traditional", "name_homophone", "phone_missing",
               "phone_format", "family_phone", "namesake")

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


def person_mentions(world: World, nights: int | None = None) -> pd.DataFrame:
    """Every person mention of declarations and enforcement records delivered up to ``nights`` (all when
    None), as written, with its truth (:data:`MENTION_SCHEMA`). Deterministic given the world and the seed."""
    cfg, geo, pool = world.cfg, world.geo, world.pool
    pn = person_noise(cfg.noise)
    rng = np.random.default_rng([cfg.seed, 21])
    last = cfg.days if nights is None else nights
    rows: list[tuple] = []    # (source, rid, role, person, house or -1)
    d = world.decl
    m = (d.col("night") <= last) & (d.col("malformed") == 0)
    for num, p, h in zip(d.col("num")[m], d.col("person")[m], d.col("house")[m], strict=True):
        rows.append(("declarations", record_id("declarations", int(num)), "declarant", int(p), int(h)))
    e, ep = world.enf, world.enf_person
    erow = ep.col("erow")
    ok = (e.col("night")[erow] <= last) & (e.col("malformed")[erow] == 0)
    for r, p in zip(erow[ok], ep.col("person")[ok], strict=True):
        src = ENF_SOURCES[int(e.col("src")[r])]
        h = -1 if e.col("unres")[r] else int(e.col("house")[r])
        rows.append((src, record_id(src, int(e.col("num")[r])), "party", int(p), h))
    # household members (for family phones): persons who declared at the same house
    members: dict[int, list[int]] = {}
    for p, h in zip(d.col("person"), d.col("house"), strict=True):
        members.setdefault(int(h), []).append(int(p))
    comm_of = geo.grid_comm[geo.grid]
    houses_of_comm: dict[int, np.ndarray] = {}
    out = []
    n = len(rows)
    u = rng.random((n, 10))
    for k, (src, rid, role, p, h) in enumerate(rows):
        ident = {"name": pool.name(p), "id": pool.id18(p), "phone": str(int(pool.phone[p])), "year": int(pool.birth_year[p])}
        src_out, h_out = src, h
        noise: list[str] = []
        if u[k, 0] < pn.namesake_rate and h >= 0:
            # a different person with the same name, named in another record in the same community
            c = int(comm_of[h])
            hs = houses_of_comm.get(c)
            if hs is None:
                hs = houses_of_comm[c] = np.flatnonzero(comm_of == c)
            ident = {"name": ident["name"], "id": _new_id(rng, ident["id"]),
                     "phone": str(int(rng.integers(130, 200)) * 10**8 + int(rng.integers(0, 10**8))), "year": 0}
            ident["year"] = int(ident["id"][6:10])
            h_out = int(hs[int(u[k, 9] * len(hs)) % len(hs)])
            rid = f"{rid}-n"
            noise.append("namesake")
        out.append(_render(src_out, rid, role, ident, h_out, u[k], pn, members, pool, geo, noise))
    df = pd.DataFrame(out, columns=[f.name for f in MENTION_SCHEMA])
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


def write_person_mentions(df: pd.DataFrame, path: Path) -> None:
    """Write the mentions and their truth as Parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, schema=MENTION_SCHEMA, preserve_index=False), path, compression="zstd")
