"""The true life of the district, night by night, as columnar record stores.

Night 1 carries the backlog (current declarations, active and some past rentals, ~100 days of
enforcement history); later nights carry moves, new and ended leases, demolitions and new cases.
Every record decision that changes the truth (quarantine, unresolvable address, invalid ID,
delivered house code) is made here; text rendering happens in ``deliver.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from tools.generate.config import GenConfig
from tools.generate.geography import Geo
from tools.generate.people import PersonPool

OWNER, TENANT, MEMBER = 0, 1, 2
ENF_SOURCES = ("police_incidents", "mediation_cases", "safety_inspections", "family_planning")
EPOCH = dt.date(1970, 1, 1)


def day_of(d: dt.date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def date_of(day: int) -> dt.date:
    """Inverse of :func:`day_of`."""
    return EPOCH + dt.timedelta(days=int(day))


@dataclass
class Store:
    """Append-only columnar store; ``night`` says on which night a row was delivered."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def append(self, **cols: np.ndarray) -> None:
        n = {len(v) for v in cols.values()}
        assert len(n) == 1, n
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(np.asarray(v))
        self._cache.clear()

    def col(self, name: str) -> np.ndarray:
        if name not in self._cache:
            parts = self.parts.get(name, [])
            self._cache[name] = np.concatenate(parts) if parts else np.empty(0)
        return self._cache[name]

    def __len__(self) -> int:
        return len(self.col("night")) if "night" in self.parts else 0


class World:
    """The true state and every delivered record, in numpy columns."""

    def __init__(self, cfg: GenConfig, geo: Geo, rng: np.random.Generator) -> None:
        self.cfg, self.geo, self.rng = cfg, geo, rng
        self.w, self.nz = cfg.world, cfg.noise
        self.addr = cfg.address_noise   # the active address noise model's rates
        self.pool = PersonPool(np.random.default_rng(rng.integers(2**63)), cfg.start)
        n = geo.n
        self.demolished = np.full(n, -1, np.int32)  # day of demolition
        self.updated = day_of(cfg.start) - rng.integers(30, 2000, n).astype(np.int32)
        self.house_rental = np.full(n, -1, np.int64)  # index of the active rental (simulation state)
        self.person_house = np.empty(0, np.int64)
        self.person_role = np.empty(0, np.int8)
        # persons named with a valid ID number in a delivered record so far (set by the deliverer; truth R5)
        self.valid_id_persons: set[int] | None = None
        self.decl = Store()
        self.rent = Store()  # rental versions
        self.enf = Store()
        self.enf_person = Store()
        self.rental_house: list[int] = []
        self.rental_end: list[int] = []
        self.n_decl = self.n_rent = 0
        self.n_enf = {s: 0 for s in ENF_SOURCES}
        self.pending: list[tuple[int, np.ndarray, np.ndarray]] = []  # (day, persons, houses)
        self._codes = set(geo.code.tolist())
        self.officer_changes: list[tuple[int, int]] = []

    # --- persons -------------------------------------------------------------------------------
    def _new_persons(self, k: int, house: np.ndarray | int = -1, role: int = TENANT, local: float = 0.25):
        p = self.pool.new(k, local)
        self.person_house = np.concatenate([self.person_house, np.broadcast_to(house, k).astype(np.int64)])
        self.person_role = np.concatenate([self.person_role, np.full(k, role, np.int8)])
        return p

    def _unres_kinds(self, k: int) -> np.ndarray:
        """Kind (1-based) of each of ``k`` unresolvable addresses: the default model's three kinds drawn
        uniformly, or the second model's ``unresolvable_kinds`` by weight (noise_second.SECOND_UNRESOLVABLE)."""
        if self.cfg.noise_model != "second":
            return self.rng.integers(1, 4, k)
        from tools.generate.config import SECOND_UNRESOLVABLE

        weights = self.addr["unresolvable_kinds"]
        w = np.array([float(weights.get(name, 0.0)) for name in SECOND_UNRESOLVABLE])
        return self.rng.choice(len(SECOND_UNRESOLVABLE), k, p=w / w.sum()) + 1

    def _unknown_codes(self, k: int) -> np.ndarray:
        out = []
        while len(out) < k:
            c = int(self.rng.integers(10**11, 10**12))
            if c not in self._codes:
                out.append(c)
        return np.array(out, np.int64)

    # --- declarations --------------------------------------------------------------------------
    def _declare(self, night: int, persons, houses, relation, day, move_in, hh_size) -> None:
        k = len(persons)
        if k == 0:
            return
        rng, nz = self.rng, self.nz
        ts = day.astype(np.int64) * 86400 + rng.integers(7 * 3600, 23 * 3600, k)
        order = np.argsort(ts, kind="stable")
        persons, houses, relation, ts, move_in, hh_size = (
            np.asarray(a)[order] for a in (persons, houses, relation, ts, move_in, hh_size))
        qr = rng.random(k) < nz["declaration_qr_rate"]
        channel = np.where(qr, 2, rng.choice([0, 1, 3], k, p=[0.45, 0.45, 0.10]))
        unres = np.where(~qr & (rng.random(k) < self.addr["unresolvable_rate"]), self._unres_kinds(k), 0)
        self.decl.append(
            num=np.arange(self.n_decl, self.n_decl + k), person=persons.astype(np.int64),
            house=houses.astype(np.int64), relation=relation.astype(np.int8), ts=ts, move_in=move_in.astype(np.int32),
            hh=hh_size.astype(np.int16), channel=channel.astype(np.int8), qr=qr, unres=unres.astype(np.int8),
            id_u=rng.random(k).astype(np.float32), malformed=self._malformed(k), night=np.full(k, night, np.int16),
            messy=rng.random(k) < self.addr["messy_rate"],
        )
        self.n_decl += k

    def _malformed(self, k: int, date_only: bool = False) -> np.ndarray:
        m = self.rng.random(k) < self.nz["malformed_rate"]
        kind = np.full(k, 2, np.int8) if date_only else self.rng.integers(1, 3, k).astype(np.int8)
        return np.where(m, kind, 0).astype(np.int8)

    # --- rentals -------------------------------------------------------------------------------
    def _rental_versions(self, night: int, ridx, status, reg_ts, tenants, start, end, landlord, code_kind, code):
        k = len(ridx)
        if k == 0:
            return
        self.rent.append(
            ridx=np.asarray(ridx, np.int64), house=np.array([self.rental_house[i] for i in ridx], np.int64),
            status=np.asarray(status, np.int8), ts=np.asarray(reg_ts, np.int64), tenants=np.asarray(tenants, np.int16),
            start=np.asarray(start, np.int32), end=np.asarray(end, np.int32), landlord=np.asarray(landlord, np.int64),
            code_kind=np.asarray(code_kind, np.int8), code=np.asarray(code, np.int64),
            malformed=self._malformed(k), night=np.full(k, night, np.int16),
            messy=self.rng.random(k) < self.addr["messy_rate_rentals"],
        )

    def _new_rentals(self, houses, start, end, reg_day, tenants) -> np.ndarray:
        """Register rentals (simulation state); returns their indexes."""
        k = len(houses)
        base = len(self.rental_house)
        self.rental_house.extend(int(h) for h in houses)
        self.rental_end.extend(int(e) for e in end)
        return np.arange(base, base + k)

    def _code_choice(self, houses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng, nz, geo = self.rng, self.nz, self.geo
        k = len(houses)
        u = rng.random(k)
        kind = np.where(u < nz["rental_code_missing_rate"], 0, 1)
        wrong = (kind == 1) & (rng.random(k) < nz["rental_code_wrong_rate"])
        kind = np.where(wrong, np.where(rng.random(k) < 0.5, 2, 3), kind)
        code = np.where(kind == 0, 0, geo.code[houses])
        nb = np.where(houses + 1 < geo.n, houses + 1, houses - 1)
        code = np.where(kind == 3, geo.code[nb], code)
        if (kind == 2).any():
            code[kind == 2] = self._unknown_codes(int((kind == 2).sum()))
        return kind.astype(np.int8), code

    # --- enforcement ---------------------------------------------------------------------------
    def _occupants(self) -> tuple[np.ndarray, np.ndarray]:
        ph = self.person_house
        order = np.argsort(ph, kind="stable")
        starts = np.searchsorted(ph[order], np.arange(self.geo.n + 1))
        return order, starts

    def _enforcement(self, night: int, day_lo: int, day_hi: int, days: float) -> None:
        rng, geo, w = self.rng, self.geo, self.w
        n = geo.n
        rented = self.house_rental >= 0
        occ_order, occ_start = self._occupants()
        has_occ = occ_start[1:] > occ_start[:-1]
        weight = (1.0 + rented * (w["enforcement_at_rented_weight"] - 1.0)) * np.where(has_occ, 1.0, 0.3)
        declared = np.zeros(n, bool)
        if len(self.decl):
            declared[self.decl.col("house")] = True
        weight *= np.where(geo.kind == 1, 1.5, 1.0) * (self.demolished < 0) * np.where(declared, 1.0, 3.0)
        weight /= weight.sum()
        for si, src in enumerate(ENF_SOURCES):
            k = int(rng.poisson(w["enforcement_per_house_year"] * n * days / 365 * w["enforcement_mix"][src]))
            if k == 0:
                continue
            houses = rng.choice(n, k, p=weight)
            dayv = rng.integers(day_lo, day_hi + 1, k)
            ts = np.sort(dayv.astype(np.int64) * 86400 + rng.integers(0, 86400, k))
            num = np.arange(self.n_enf[src], self.n_enf[src] + k)
            self.n_enf[src] += k
            unres = np.where(rng.random(k) < self.addr["unresolvable_rate"], self._unres_kinds(k), 0)
            self.enf.append(
                src=np.full(k, si, np.int8), num=num, house=houses.astype(np.int64), ts=ts, unres=unres.astype(np.int8),
                kind=rng.integers(0, 6, k).astype(np.int8), severity=rng.choice(3, k, p=[0.1, 0.3, 0.6]).astype(np.int8),
                malformed=self._malformed(k, date_only=src == "safety_inspections"), night=np.full(k, night, np.int16),
                messy=rng.random(k) < self.addr["messy_rate"],
            )
            base = len(self.enf) - k
            npers = {"police_incidents": rng.choice(4, k, p=[0.3, 0.4, 0.2, 0.1]),
                     "mediation_cases": rng.choice([1, 2, 3], k, p=[0.2, 0.6, 0.2]),
                     "safety_inspections": np.zeros(k, int),
                     "family_planning": np.ones(k, int)}[src]
            rows = np.repeat(np.arange(k), npers)
            m = len(rows)
            if m == 0:
                continue
            hs = houses[rows]
            cnt = occ_start[hs + 1] - occ_start[hs]
            outsider = (cnt == 0) | (rng.random(m) < w["enforcement_outsider_share"])
            pick = occ_order[np.minimum(occ_start[hs] + (rng.random(m) * np.maximum(cnt, 1)).astype(np.int64),
                                        len(occ_order) - 1)] if len(occ_order) else np.zeros(m, np.int64)
            persons = np.where(outsider, -1, pick)
            n_out = int(outsider.sum())
            known = rng.random(n_out) < 0.5
            out = np.where(known, rng.integers(0, max(1, self.pool.n), n_out), -1)
            if (~known).any():
                out[~known] = self._new_persons(int((~known).sum()), -1, TENANT)
            persons[outsider] = out
            # one person at most once per record
            key = (base + rows) * (1 << 32) + persons
            _, first = np.unique(key, return_index=True)
            first = np.sort(first)
            self.enf_person.append(erow=(base + rows)[first], person=persons[first],
                                   id_u=rng.random(len(first)).astype(np.float32),
                                   night=np.full(len(first), night, np.int16))

    # --- nights --------------------------------------------------------------------------------
    def backlog(self) -> None:
        """Night 1: everyone who lives here, current declarations, rentals, enforcement history."""
        rng, geo, w = self.rng, self.geo, self.w
        n, d1 = geo.n, day_of(self.cfg.start)
        village = geo.kind == 1
        occupied = rng.random(n) >= w["vacant_share"]
        rented = occupied & (rng.random(n) < np.where(village, w["rented_share_village"], w["rented_share_complex"]))
        owner = occupied & ~rented
        k = np.zeros(n, np.int64)
        k[owner] = 1 + np.minimum(rng.poisson(2.1, int(owner.sum())), 6)
        k[rented] = 1 + np.minimum(rng.poisson(np.where(village[rented], 2.8, 1.8)), 9)
        ph = np.repeat(np.arange(n), k)
        pos = np.arange(len(ph)) - np.repeat(np.cumsum(k) - k, k)
        role = np.where(rented[ph], TENANT, np.where(pos == 0, OWNER, MEMBER)).astype(np.int8)
        persons = self.pool.new(len(ph), 0.3)
        self.person_house, self.person_role = ph.astype(np.int64), role
        # rentals
        reg = rented & (rng.random(n) < np.where(village, w["rental_registered_village"], w["rental_registered_complex"]))
        rh = np.flatnonzero(reg)
        m = len(rh)
        length = rng.choice([365, 730, 1095], m, p=[0.6, 0.3, 0.1])
        start = d1 - rng.integers(0, 700, m)
        end = start + length - 1
        periods = np.where(end < d1 - 20, (d1 - 20 - end + length - 1) // length, 0)
        start, end = start + periods * length, end + periods * length
        end_open = rng.random(m) < 0.05
        tenants = k[rh].copy()
        under = rng.random(m) < w["tenants_understated"]
        tenants[under] = np.maximum(1, tenants[under] - rng.integers(1, 3, int(under.sum())))
        landlords = self._new_persons(m, -1, OWNER, 0.6)
        # some houses also have an earlier, ended or cancelled registration
        prev = rng.random(m) < w["previous_rental"]
        ph_prev = rh[prev]
        p_end = start[prev] - 1
        p_start = p_end - 364
        ridx_prev = self._new_rentals(ph_prev, p_start, p_end, p_start, k[ph_prev])
        ck, cv = self._code_choice(ph_prev)
        self._rental_versions(1, ridx_prev, np.where(rng.random(len(ph_prev)) < 0.8, 1, 2),
                              p_start.astype(np.int64) * 86400 + rng.integers(9 * 3600, 18 * 3600, len(ph_prev)),
                              k[ph_prev], p_start, p_end, landlords[prev], ck, cv)
        ridx = self._new_rentals(rh, start, end, start, tenants)
        self.house_rental[rh] = ridx
        reg_day = np.minimum(start + rng.integers(0, 11, m), d1)
        ck, cv = self._code_choice(rh)
        self._rental_versions(1, ridx, np.zeros(m), reg_day.astype(np.int64) * 86400 + rng.integers(9 * 3600, 18 * 3600, m),
                              tenants, start, np.where(end_open, -1, end), landlords, ck, cv)
        # declarations
        p_decl = np.select([role == OWNER, role == MEMBER, reg[ph]],
                           [w["declare_owner"], w["declare_member"], w["declare_tenant_registered"]],
                           w["declare_tenant_hidden"])
        dec = rng.random(len(ph)) < p_decl
        lease_start = np.full(n, d1 - 400, np.int64)
        lease_start[rh] = start
        move_in = np.where(reg[ph], np.minimum(lease_start[ph] + rng.integers(0, 21, len(ph)), d1 - 1),
                           d1 - rng.integers(10, 1500, len(ph)))
        dday = np.minimum(move_in + rng.integers(0, 61, len(ph)), d1)
        sel = np.flatnonzero(dec)
        prev_sel = sel[rng.random(len(sel)) < w["previous_declaration"]]
        pd_day = dday[prev_sel] - rng.integers(30, 700, len(prev_sel))
        pd_house = rng.integers(0, n, len(prev_sel))
        allp = np.concatenate([persons[prev_sel], persons[sel]])
        self._declare(1, allp, np.concatenate([pd_house, ph[sel]]),
                      np.concatenate([np.full(len(prev_sel), TENANT), role[sel]]),
                      np.concatenate([pd_day, dday[sel]]), np.concatenate([pd_day - rng.integers(0, 20, len(prev_sel)),
                                                                         move_in[sel]]),
                      np.concatenate([np.ones(len(prev_sel), int), k[ph[sel]]]))
        hist = int(w["enforcement_history_days"])
        self._enforcement(1, d1 - hist + 1, d1, hist)

    def night(self, night: int) -> None:
        """A later night: life goes on."""
        rng, geo, w = self.rng, self.geo, self.w
        n = geo.n
        d = day_of(self.cfg.start) + night - 1
        alive = self.demolished < 0
        # scheduled late declarations of new tenants
        due = [p for p in self.pending if p[0] == d]
        self.pending = [p for p in self.pending if p[0] != d]
        for _, persons, houses in due:
            still = self.person_house[persons] == houses
            pp, hh = persons[still], houses[still]
            self._declare(night, pp, hh, np.full(len(pp), TENANT), np.full(len(pp), d),
                          d - rng.integers(1, 20, len(pp)), np.ones(len(pp), int))
        # ended leases
        active = np.flatnonzero(self.house_rental >= 0)
        k_end = min(len(active), int(rng.poisson(max(1.0, w["lease_ends_per_rental_day"] * len(active)))))
        ended_houses = rng.choice(active, k_end, replace=False) if k_end else np.empty(0, np.int64)
        # demolitions (village houses first)
        cand = np.flatnonzero(alive & (geo.kind == 1)) if (alive & (geo.kind == 1)).any() else np.flatnonzero(alive)
        k_dem = min(len(cand), max(1, int(rng.poisson(w["demolitions_per_house_day"] * n))))
        dem = rng.choice(cand, k_dem, replace=False)
        self.demolished[dem] = d
        self.updated[dem] = d
        dem_rent = dem[(self.house_rental[dem] >= 0) & (rng.random(k_dem) < 0.5)]
        ended_houses = np.unique(np.concatenate([ended_houses, dem_rent]))
        if len(ended_houses):
            ridx = self.house_rental[ended_houses]
            last = self._last_versions(ridx)
            endd = d - rng.integers(0, 4, len(ridx))
            self._rental_versions(night, ridx, np.ones(len(ridx)), d * 86400 + rng.integers(9 * 3600, 18 * 3600, len(ridx)),
                                  last["tenants"], last["start"], np.maximum(endd, last["start"]), last["landlord"],
                                  last["code_kind"], last["code"])
            self.house_rental[ended_houses] = -1
            leaving = np.flatnonzero(np.isin(self.person_house, ended_houses) & (self.person_role == TENANT))
            self.person_house[leaving[rng.random(len(leaving)) < 0.5]] = -1
        # moves: residents declare at a new house
        residents = np.flatnonzero(self.person_house >= 0)
        k_mv = min(len(residents), int(rng.poisson(max(3.0, w["moves_per_resident_day"] * len(residents)))))
        movers = rng.choice(residents, k_mv, replace=False) if k_mv else np.empty(0, np.int64)
        alive_idx = np.flatnonzero(self.demolished < 0)
        new_h = alive_idx[rng.integers(0, len(alive_idx), k_mv)]
        self.person_house[movers] = new_h
        self.person_role[movers] = TENANT
        decl = movers[rng.random(k_mv) < w["move_declares"]]
        self._declare(night, decl, self.person_house[decl], np.where(rng.random(len(decl)) < 0.8, TENANT, MEMBER),
                      np.full(len(decl), d), d - rng.integers(0, 10, len(decl)), 1 + rng.poisson(1.0, len(decl)))
        # occupants of demolished houses leave
        out = np.flatnonzero(np.isin(self.person_house, dem))
        self.person_house[out[rng.random(len(out)) < 0.6]] = -1
        # new leases at houses without an active rental
        free = np.flatnonzero((self.house_rental < 0) & (self.demolished < 0))
        k_new = min(len(free), int(rng.poisson(max(2.0, w["new_leases_per_house_day"] * n))))
        if k_new:
            hs = rng.choice(free, k_new, replace=False)
            start = d - rng.integers(0, 16, k_new)
            end = start + rng.choice([365, 730], k_new, p=[0.7, 0.3]) - 1
            ten = 1 + np.minimum(rng.poisson(np.where(geo.kind[hs] == 1, 2.0, 1.0)), 8)
            ridx = self._new_rentals(hs, start, end, np.full(k_new, d), ten)
            self.house_rental[hs] = ridx
            ck, cv = self._code_choice(hs)
            landlords = self._new_persons(k_new, -1, OWNER, 0.6)
            declared_ten = np.where(rng.random(k_new) < w["tenants_understated"], np.maximum(1, ten - 1), ten)
            self._rental_versions(night, ridx, np.zeros(k_new), d * 86400 + rng.integers(9 * 3600, 18 * 3600, k_new),
                                  declared_ten, start, end, landlords, ck, cv)
            hh = np.repeat(hs, ten)
            tp = self._new_persons(len(hh), hh, TENANT)
            will = rng.random(len(tp)) < w["new_tenant_declares"]
            delay = rng.integers(0, int(w["declare_delay_max_days"]) + 1, len(tp))
            for dl in np.unique(delay[will]):
                sel = will & (delay == dl)
                if dl == 0:
                    self._declare(night, tp[sel], hh[sel], np.full(int(sel.sum()), TENANT), np.full(int(sel.sum()), d),
                                  np.full(int(sel.sum()), d), np.ones(int(sel.sum()), int))
                else:
                    self.pending.append((d + int(dl), tp[sel], hh[sel]))
        self._enforcement(night, d - 2, d, 1.0)
        if rng.random() < 0.3 and self.geo.grid_ids:
            self.officer_changes.append((night, int(rng.integers(0, len(self.geo.grid_ids)))))

    def _last_versions(self, ridx: np.ndarray) -> dict[str, np.ndarray]:
        """The latest delivered version of each rental in ``ridx``."""
        r = self.rent.col("ridx")
        order = np.lexsort((self.rent.col("ts"), r))
        rs = r[order]
        last = order[np.searchsorted(rs, ridx, side="right") - 1]
        return {k: self.rent.col(k)[last] for k in ("tenants", "start", "landlord", "code_kind", "code")}
