"""Render tonight's records as department files (headers from conf/sources.yaml) and record the truth.

Multiple persons in one cell (police person_ids, mediation parties/party_ids) are joined with "、".
Landing layout: landing/<source>/<YYYY-MM-DD>/<source>_<YYYYMMDD>.<csv|xlsx>.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from gridlake.sources import load_sources
from schemas import vocab
from tools.generate import lexicon as lx
from tools.generate.config import GenConfig
from tools.generate.files import ChunkedParquet, write_csv, write_xlsx
from tools.generate.geography import LEGAL, USAGE, bld_label
from tools.generate.noise_second import render_second
from tools.generate.people import id_forms, phone_form
from tools.generate.person_mentions import MentionRenderer
from tools.generate.text import BAD_DATES, messy_date, render_address, standard_address
from tools.generate.world import ENF_SOURCES, World, date_of

log = logging.getLogger(__name__)

RELATION = list(vocab.RELATION)
CHANNEL = list(vocab.CHANNEL)
RENTAL_STATUS = list(vocab.RENTAL_STATUS)
SEVERITY = list(vocab.SAFETY_SEVERITY)
HOUSE_STATUS = list(vocab.HOUSE_STATUS)
PREFIX = {"declarations": "SB", "rentals": "ZL", "police_incidents": "JQ", "mediation_cases": "TJ",
          "safety_inspections": "AJ", "family_planning": "JS"}

RECORDS_SCHEMA = pa.schema([
    ("source", pa.string()), ("delivery_date", pa.string()), ("file", pa.string()), ("row_number", pa.int64()),
    ("record_id", pa.string()), ("house_code", pa.string()), ("noise", pa.string()),
    ("quarantine", pa.bool_()), ("quarantine_reason", pa.string()),
    # the house an officer on site finds the record's place to be, also when its address text was made
    # unresolvable by a wrong or nonexistent number; empty when the text is too vague to be coded to one
    # house (too little information, no room) or the record is not at a house
    ("site_house_code", pa.string()),
])
#: unresolvable kinds whose text still names one place (a mistyped or nonexistent number): an officer can
#: code that text to the house; the others (too little information, a missing room) name no single house
CODABLE_UNRESOLVABLE = frozenset({"nonexistent_building", "nonexistent_room", "typo_building", "typo_room"})
PERSONS_SCHEMA = pa.schema([
    ("source", pa.string()), ("record_id", pa.string()), ("role", pa.string()), ("person_id", pa.string()),
    ("id_form", pa.string()), ("valid", pa.bool_()),
])


def site_code(code: str, kinds: list[str]) -> str:
    """The truth's ``site_house_code`` of a record made from house ``code`` with address noise ``kinds``."""
    unresolvable = [k for k in kinds if k in CODABLE_UNRESOLVABLE or k in ("too_little_info", "missing_room")]
    return code if not unresolvable or unresolvable[0] in CODABLE_UNRESOLVABLE else ""


def record_id(source: str, num: int) -> str:
    """Business id of a generated record, e.g. JQ000000123."""
    return f"{PREFIX[source]}{int(num):09d}"


def _ts(sec: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(sec))


class Deliverer:
    """Writes each night's files and the truth about every delivered row."""

    def __init__(self, cfg: GenConfig, world: World, data: Path) -> None:
        self.cfg, self.world, self.geo, self.data = cfg, world, world.geo, data
        self.sources = load_sources()
        self.records = ChunkedParquet(data / "truth" / "records.parquet", RECORDS_SCHEMA)
        self.persons = ChunkedParquet(data / "truth" / "persons.parquet", PERSONS_SCHEMA)
        nz = cfg.noise
        self.noise_model = cfg.noise_model
        self.weights = cfg.address_noise["kinds"]
        self.extra_p = cfg.address_noise["extra_kinds_p"]
        self.ids_noise = nz["ids"]
        self.ids_clean = dict(nz["ids"], bad_checksum_rate=0.0)
        self.files: list[str] = []
        self.mentions = MentionRenderer(world)
        world.valid_id_persons = self.mentions.valid_persons   # truth.py: R5 is about persons named with a valid ID

    def close(self) -> None:
        self.records.close()
        self.persons.close()

    # --- plumbing ------------------------------------------------------------------------------
    def _path(self, source: str, day: dt.date) -> Path:
        ext = self.sources[source].format
        return self.data / "landing" / source / day.isoformat() / f"{source}_{day:%Y%m%d}.{ext}"

    def _emit(self, source: str, day: dt.date, rows: Iterator[tuple], increment: bool = True) -> int:
        """Write rows of (cells, record_id, house_code, noise list, malformed kind, quarantine reason)."""
        src = self.sources[source]
        path = self._path(source, day)
        rel = path.relative_to(self.data).as_posix()
        r = random.Random(f"{self.cfg.seed}|dup|{source}|{day}")
        nz = self.cfg.noise

        def lines() -> Iterator[list[str]]:
            rn = 0
            for cells, rid, house, noise, malformed, reason, *site in rows:
                site_code = site[0] if site else house
                if malformed == 1:
                    cells = cells[:-1] if r.random() < 0.5 else [*cells, "备注"]
                    noise = [*noise, "malformed_fields"]
                    reason = "malformed_fields"
                elif malformed == 2:
                    noise = [*noise, "bad_date"]
                    reason = reason or "bad_date"
                rn += 1
                self.records.add((source, day.isoformat(), rel, rn, rid, house, ";".join(noise), bool(reason),
                                  reason or "", site_code))
                yield cells
                if increment and r.random() < nz["duplicate_rate"]:
                    rn += 1
                    self.records.add((source, day.isoformat(), rel, rn, rid, house, ";".join([*noise, "duplicate"]),
                                      True, "duplicate", site_code))
                    yield cells

        header = list(src.columns.values())
        if src.format == "xlsx":
            n = write_xlsx(path, header, lines())
        else:
            n = write_csv(path, src.encoding, header, lines())
        self.files.append(rel)
        return n

    def _addr(self, h: int, r: random.Random, messy: bool, unres: int) -> tuple[str, list[str]]:
        if self.noise_model == "second":
            return render_second(self.geo, h, r, bool(messy), int(unres), self.weights, self.extra_p)
        return render_address(self.geo, h, r, bool(messy), int(unres), self.weights, self.extra_p)

    def _person_id(self, source: str, rid: str, role: str, p: int, u: float, noise: dict) -> tuple[str, str, bool]:
        pool = self.world.pool
        true = pool.id18(p)
        text, form = id_forms(true, int(pool.birth_year[p]), float(u), noise)
        self.persons.add((source, rid, role, true, form, form != "id_bad_checksum"))
        return text, form, form != "id_bad_checksum"

    def _date(self, value, base: str, r: random.Random) -> tuple[str, str | None]:
        return messy_date(value, base, r, self.cfg.noise["date_format_rate"])

    # --- one night -----------------------------------------------------------------------------
    def deliver(self, night: int) -> dict[str, int]:
        """Write every source's file for ``night`` (1-based); returns rows per source."""
        day = self.cfg.start + dt.timedelta(days=night - 1)
        counts = {
            "housing": self._emit("housing", day, self._housing(day), increment=False),
            "grid_officers": self._emit("grid_officers", day, self._officers(night), increment=False),
            "declarations": self._emit("declarations", day, self._declarations(night, day)),
            "rentals": self._emit("rentals", day, self._rentals(night, day)),
        }
        for si, src in enumerate(ENF_SOURCES):
            counts[src] = self._emit(src, day, self._enforcement(night, day, si, src))
        counts["verifications"] = write_csv(self._path("verifications", day), "utf-8",
                                            list(self.sources["verifications"].columns.values()), [])
        return counts

    def _housing(self, day: dt.date) -> Iterator[tuple]:
        geo, w = self.geo, self.world
        d = (day - dt.date(1970, 1, 1)).days
        for h in range(geo.n):
            s = int(geo.site[h])
            c = int(geo.comm[h])
            dem = 0 <= w.demolished[h] <= d
            if geo.kind[h] == 0:
                tower = geo.cx_tower[s]
                road, door, cx, vil, lane = geo.roads[geo.cx_road[s]], str(geo.cx_door[s]), geo.cx_name[s], "", ""
                bld = bld_label(int(geo.bld[h]), tower)
            else:
                road, door, cx = "", str(int(geo.bld[h])), ""
                vil, lane, bld = geo.villages[geo.lane_village[s]], geo.lane_name[s], ""
            code = geo.house_code(h)
            cells = [code, geo.streets[int(geo.comm_street[c])], geo.communities[c], geo.grid_ids[int(geo.grid[h])],
                     standard_address(geo, h), road, door, cx, vil, lane, bld,
                     str(int(geo.unit[h])) if geo.unit[h] else "", str(int(geo.floor[h])), str(int(geo.room[h])),
                     USAGE[geo.usage[h]], LEGAL[geo.legal[h]], f"{float(geo.area[h]):.1f}",
                     HOUSE_STATUS[1 if dem else 0], date_of(min(int(w.updated[h]), d)).isoformat()]
            yield cells, code, code, [], 0, None

    def _officers(self, night: int) -> Iterator[tuple]:
        geo = self.geo
        changed = {g: n for n, g in self.world.officer_changes if n <= night}
        for g, gid in enumerate(geo.grid_ids):
            c = int(geo.grid_comm[g])
            oid, name = geo.officer_ids[g], geo.officer_names[g]
            if g in changed:
                oid = f"{lx.OFFICER_PREFIX}{90000 + g:05d}"
                name = name[0] + "新" + name[1:]
            cells = [gid, geo.streets[int(geo.comm_street[c])], geo.communities[c], oid, name, geo.officer_phones[g]]
            yield cells, gid, "", [], 0, None

    def _declarations(self, night: int, day: dt.date) -> Iterator[tuple]:
        w, geo, pool = self.world, self.geo, self.world.pool
        st = w.decl
        idx = np.flatnonzero(st.col("night") == night)
        r = random.Random(f"{self.cfg.seed}|declarations|{night}")
        cols = {k: st.col(k)[idx] for k in ("num", "person", "house", "relation", "ts", "move_in", "hh", "channel",
                                            "qr", "unres", "id_u", "malformed", "messy")}
        for i in range(len(idx)):
            p, h = int(cols["person"][i]), int(cols["house"][i])
            rid = record_id("declarations", cols["num"][i])
            idt, form, valid = self._person_id("declarations", rid, "declarant", p, cols["id_u"][i], self.ids_noise)
            noise = [] if form == "id18" else [form]
            phone, pk = phone_form(int(pool.phone[p]), r.random(), self.cfg.noise["phone_format_rate"])
            if pk != "phone_plain":
                noise.append(pk)
            addr, ak = self._addr(h, r, cols["messy"][i], cols["unres"][i])
            noise += ak
            move_in, k1 = self._date(date_of(cols["move_in"][i]), "%Y-%m-%d", r)
            declared, k2 = self._date(_ts(cols["ts"][i]), "%Y-%m-%d %H:%M:%S", r)
            noise += [k for k in (k1, k2) if k]
            mal = int(cols["malformed"][i])
            if mal == 2:
                declared = r.choice(BAD_DATES)
            name = pool.name(p)
            self.mentions.declarant(rid, p, -1 if cols["unres"][i] else h, idt, form, phone, pk)
            if pool.has_rare_char(p):
                noise.append("rare_char")
            cells = [rid, idt, name, phone, geo.house_code(h) if cols["qr"][i] else "", addr,
                     RELATION[cols["relation"][i]], move_in, str(int(cols["hh"][i])), CHANNEL[cols["channel"][i]],
                     declared]
            if cols["qr"][i]:
                noise.append("house_code_scanned")
            house = "" if cols["unres"][i] else geo.house_code(h)
            yield cells, rid, house, noise, mal, None, site_code(geo.house_code(h), noise) if valid else "bad_checksum", site_code(geo.house_code(h), ak)

    def _rentals(self, night: int, day: dt.date) -> Iterator[tuple]:
        w, geo, pool = self.world, self.geo, self.world.pool
        st = w.rent
        idx = np.flatnonzero(st.col("night") == night)
        r = random.Random(f"{self.cfg.seed}|rentals|{night}")
        cols = {k: st.col(k)[idx] for k in ("ridx", "house", "status", "ts", "tenants", "start", "end", "landlord",
                                            "code_kind", "code", "malformed", "messy")}
        kinds = ["house_code_missing", None, "house_code_unknown", "house_code_neighbour"]
        for i in range(len(idx)):
            h, p = int(cols["house"][i]), int(cols["landlord"][i])
            rid = record_id("rentals", cols["ridx"][i])
            idt, form, _ = self._person_id("rentals", rid, "landlord", p, r.random(), self.ids_clean)
            noise = [] if form == "id18" else [form]
            ck = int(cols["code_kind"][i])
            if kinds[ck]:
                noise.append(kinds[ck])
            phone, pk = phone_form(int(pool.phone[p]), r.random(), self.cfg.noise["phone_format_rate"])
            if pk != "phone_plain":
                noise.append(pk)
            addr, ak = self._addr(h, r, cols["messy"][i], 0)
            noise += ak
            start, k1 = self._date(date_of(cols["start"][i]), "%Y-%m-%d", r)
            end = self._date(date_of(cols["end"][i]), "%Y-%m-%d", r)[0] if cols["end"][i] >= 0 else ""
            reg, k2 = self._date(_ts(cols["ts"][i]), "%Y-%m-%d %H:%M:%S", r)
            noise += [k for k in (k1, k2) if k]
            mal = int(cols["malformed"][i])
            if mal == 2:
                reg = r.choice(BAD_DATES)
            code = f"{lx.DISTRICT_CODE}{int(cols['code'][i]):012d}" if ck else ""
            cells = [rid, code, addr, pool.name(p), idt, phone, start, end, str(int(cols["tenants"][i])),
                     RENTAL_STATUS[cols["status"][i]], reg]
            yield cells, rid, geo.house_code(h), noise, mal, None

    def _enforcement(self, night: int, day: dt.date, si: int, source: str) -> Iterator[tuple]:
        w, geo, pool = self.world, self.geo, self.world.pool
        st = w.enf
        idx = np.flatnonzero((st.col("night") == night) & (st.col("src") == si))
        r = random.Random(f"{self.cfg.seed}|{source}|{night}")
        ep = w.enf_person
        erow, eperson = ep.col("erow"), ep.col("person")
        order = np.argsort(erow, kind="stable")
        erow_s = erow[order]
        cols = {k: st.col(k)[idx] for k in ("num", "house", "ts", "unres", "kind", "severity", "malformed", "messy")}
        for i, row in enumerate(idx):
            h = int(cols["house"][i])
            rid = record_id(source, cols["num"][i])
            addr, noise = self._addr(h, r, cols["messy"][i], cols["unres"][i])
            lo, hi = np.searchsorted(erow_s, row), np.searchsorted(erow_s, row, side="right")
            ids, names, phones = [], [], []
            mal = int(cols["malformed"][i])
            for pos, j in enumerate(order[lo:hi]):
                p = int(eperson[j])
                name, phone, text, form = self.mentions.party(source, rid, p, -1 if cols["unres"][i] else h, pos, night)
                self.persons.add((source, rid, "party", pool.id18(p), form, form in ("id18", "id15_legacy")))
                if form != "id18":
                    noise.append(form)
                ids.append(text)
                names.append(name)
                phones.append(phone)
            when = _ts(cols["ts"][i])
            kind = int(cols["kind"][i])
            if source == "police_incidents":
                t, k = self._date(when, "%Y-%m-%d %H:%M:%S", r)
                cells = [rid, t, addr, vocab.INCIDENT_TYPES[kind % 6], "、".join(ids), "、".join(names), "、".join(phones)]
                dpos = 1
            elif source == "mediation_cases":
                t, k = self._date(when.date(), "%Y-%m-%d", r)
                cells = [rid, t, addr, vocab.DISPUTE_TYPES[kind % 4], "、".join(names), "、".join(ids), "、".join(phones)]
                dpos = 1
            elif source == "safety_inspections":
                t, k = self._date(when.date(), "%Y-%m-%d", r)
                cells = [rid, t, addr, vocab.SAFETY_FINDINGS[kind % 5], SEVERITY[cols["severity"][i]]]
                dpos = 1
            else:
                t, k = self._date(when.date(), "%Y/%m/%d", r)
                cells = [rid, t, addr, ids[0] if ids else "", vocab.FP_MATTERS[kind % 3], names[0] if names else "",
                         phones[0] if phones else ""]
                dpos = 1
            if k:
                noise.append(k)
            if mal == 2:
                cells[dpos] = r.choice(BAD_DATES)
            house = "" if cols["unres"][i] else geo.house_code(h)
            yield cells, rid, house, noise, mal, None, site_code(geo.house_code(h), noise)
