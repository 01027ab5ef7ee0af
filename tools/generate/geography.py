"""The district's places: streets, communities, grids, roads, complexes, urban villages and houses.

Houses are numpy columns (one row per house, index = house number); names live in small lists.
Complex houses: road + door number + complex + building (栋, or lettered 座 for towers) + unit +
room (floor * 100 + n). Village houses: village + lane (坊/巷) + number in the lane (号) + room.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tools.generate import lexicon as lx
from tools.generate.config import Scale

USAGE = ["住宅", "城中村自建房", "宿舍", "商业"]
LEGAL = ["合法", "历史遗留", "违法建筑"]


def cn_number(n: int) -> str:
    """Chinese numeral for 0..99: 3 -> 三, 12 -> 十二, 25 -> 二十五."""
    d = lx.CN_DIGITS
    if n < 10:
        return d[n]
    tens, ones = divmod(n, 10)
    return (d[tens] if tens > 1 else "") + "十" + (d[ones] if ones else "")


def bld_label(b: int, tower: bool) -> str:
    """Building label without suffix: 3, or A/B/C for towers."""
    return chr(ord("A") + b - 1) if tower else str(b)


@dataclass
class Geo:
    """All places of one synthetic district."""

    streets: list[str]
    communities: list[str]
    comm_street: np.ndarray
    grid_ids: list[str]
    grid_comm: np.ndarray
    officer_ids: list[str]
    officer_names: list[str]
    officer_phones: list[str]
    roads: list[str]
    # complexes: name, road index, door number, tower (lettered 座, no units)
    cx_name: list[str] = field(default_factory=list)
    cx_road: list[int] = field(default_factory=list)
    cx_door: list[int] = field(default_factory=list)
    cx_tower: list[bool] = field(default_factory=list)
    villages: list[str] = field(default_factory=list)
    lane_name: list[str] = field(default_factory=list)
    lane_village: list[int] = field(default_factory=list)
    # houses
    comm: np.ndarray = None  # type: ignore[assignment]
    grid: np.ndarray = None  # type: ignore[assignment]
    kind: np.ndarray = None  # type: ignore[assignment]  # 0 complex, 1 village
    site: np.ndarray = None  # type: ignore[assignment]  # complex index or lane index
    bld: np.ndarray = None  # type: ignore[assignment]   # building number, or number in the lane
    unit: np.ndarray = None  # type: ignore[assignment]  # 0 = no unit
    floor: np.ndarray = None  # type: ignore[assignment]
    room: np.ndarray = None  # type: ignore[assignment]
    usage: np.ndarray = None  # type: ignore[assignment]
    legal: np.ndarray = None  # type: ignore[assignment]
    area: np.ndarray = None  # type: ignore[assignment]
    code: np.ndarray = None  # type: ignore[assignment]  # 12-digit suffix of the house code
    site_max_bld: np.ndarray = None  # type: ignore[assignment]  # per (kind, site) key
    site_max_floor: np.ndarray = None  # type: ignore[assignment]

    @property
    def n(self) -> int:
        return len(self.comm)

    def house_code(self, h: int) -> str:
        """The house code of house ``h``: 440304 + 12 digits."""
        return f"{lx.DISTRICT_CODE}{int(self.code[h]):012d}"

    def site_key(self, h: int) -> int:
        """Index into site_max_* arrays (complexes first, then lanes)."""
        return int(self.site[h]) + (len(self.cx_name) if self.kind[h] else 0)


def _complex_names(rng: np.random.Generator, k: int) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < k:
        h = lx.COMPLEX_HEADS[rng.integers(len(lx.COMPLEX_HEADS))]
        m = lx.COMPLEX_MIDS[rng.integers(len(lx.COMPLEX_MIDS))]
        t = lx.COMPLEX_TAILS[rng.integers(len(lx.COMPLEX_TAILS))]
        name = h + m + t if rng.random() < 0.8 else h + lx.COMPLEX_HEADS[rng.integers(len(lx.COMPLEX_HEADS))] + m + t
        if name not in seen and h != m:
            seen.add(name)
            names.append(name)
    return names


def build_geography(scale: Scale, world: dict, rng: np.random.Generator) -> Geo:
    """Lay out streets, communities, sites, houses and grids for ``scale``."""
    streets_short = lx.STREETS[: scale.streets] if scale.streets < 10 else lx.STREETS
    if scale.streets < 10 and scale.streets <= 2:
        streets_short = ["沙头", "福田"][: scale.streets]  # small scales: streets with urban villages
    streets = [s + "街道" for s in streets_short]
    communities: list[str] = []
    comm_street: list[int] = []
    comm_village: list[str | None] = []
    for si, s in enumerate(streets_short):
        names = list(lx.COMMUNITIES[s])
        vill = list(lx.VILLAGES.get(s, []))
        for ci in range(scale.communities_per_street):
            nm = names[ci] if ci < len(names) else f"{s}{cn_number(ci + 1)}"
            communities.append(nm + "社区")
            comm_street.append(si)
            few = scale.houses < 5000
            comm_village.append(vill[ci] if ci < len(vill) and (not few or ci % 2 == 0) else None)
    n_comm = len(communities)
    per_comm = np.full(n_comm, scale.houses // n_comm)
    per_comm[: scale.houses - per_comm.sum()] += 1

    roads = list(lx.ROADS)
    road_door = [int(rng.integers(1, 30)) for _ in roads]
    street_roads = [
        [(si * 7 + j) % len(roads) for j in range(8)] for si in range(len(streets_short))
    ]
    n_complex_est = max(4, scale.houses // 150)
    cx_names_pool = _complex_names(rng, n_complex_est * 3 + 20)
    geo = Geo(
        streets=streets, communities=communities, comm_street=np.array(comm_street, dtype=np.int16),
        grid_ids=[], grid_comm=np.empty(0, np.int32), officer_ids=[], officer_names=[], officer_phones=[],
        roads=roads,
    )
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("comm", "kind", "site", "bld", "unit", "floor", "room")}
    small = scale.houses / n_comm < 600
    lane_counter: dict[int, int] = {}
    for c in range(n_comm):
        remaining = int(per_comm[c])
        vname = comm_village[c]
        village_target = int(remaining * min(0.95, world["village_share"] * 2.2)) if vname else 0
        if vname:
            geo.villages.append(vname)
            vi = len(geo.villages) - 1
        while remaining > 0:
            if vname and village_target > 0:
                k = lane_counter.get(vi, 0)
                lane_counter[vi] = k + 1
                side = lx.LANE_SIDES[(k // 9) % len(lx.LANE_SIDES)]
                lane = f"{side}村{cn_number(k % 9 + 1)}坊" if k % 3 else f"{cn_number(k // 3 + 1)}巷"
                geo.lane_name.append(lane)
                geo.lane_village.append(vi)
                site = len(geo.lane_name) - 1
                nb = int(rng.integers(3, 8) if small else rng.integers(5, 21))
                nf = int(rng.integers(3, 6) if small else rng.integers(4, 9))
                rpf = int(rng.integers(1, 3) if small else rng.integers(2, 5))
                b, u, f, r = np.meshgrid(np.arange(1, nb + 1), [0], np.arange(1, nf + 1), np.arange(1, rpf + 1),
                                         indexing="ij")
                kind = 1
                village_target -= b.size
            else:
                if not cx_names_pool:
                    cx_names_pool = [nm for nm in _complex_names(rng, 200) if nm not in set(geo.cx_name)]
                name = cx_names_pool.pop()
                tower = name.endswith(("大厦", "广场"))
                ri = street_roads[comm_street[c]][int(rng.integers(0, 8))]
                road_door[ri] += int(rng.integers(2, 12)) * 2
                geo.cx_name.append(name)
                geo.cx_road.append(ri)
                geo.cx_door.append(road_door[ri])
                geo.cx_tower.append(tower)
                site = len(geo.cx_name) - 1
                if tower:
                    nb = int(rng.integers(1, 3) if small else rng.integers(1, 5))
                    nf = int(rng.integers(4, 8) if small else rng.integers(10, 34))
                    rpf = int(rng.integers(2, 4) if small else rng.integers(4, 9))
                    units = [0]
                else:
                    nb = int(rng.integers(1, 4) if small else rng.integers(2, 21))
                    nf = int(rng.integers(3, 7) if small else rng.integers(6, 34))
                    rpf = int(rng.integers(1, 3) if small else rng.integers(2, 5))
                    units = list(range(1, (int(rng.integers(1, 3)) if small else int(rng.integers(1, 4))) + 1))
                b, u, f, r = np.meshgrid(np.arange(1, nb + 1), units, np.arange(1, nf + 1), np.arange(1, rpf + 1),
                                         indexing="ij")
                kind = 0
            take = min(remaining, b.size)
            cols["comm"].append(np.full(take, c, np.int32))
            cols["kind"].append(np.full(take, kind, np.int8))
            cols["site"].append(np.full(take, site, np.int32))
            cols["bld"].append(b.ravel()[:take].astype(np.int16))
            cols["unit"].append(u.ravel()[:take].astype(np.int8))
            cols["floor"].append(f.ravel()[:take].astype(np.int16))
            cols["room"].append((f * 100 + r).ravel()[:take].astype(np.int16))
            remaining -= take
    for k, v in cols.items():
        setattr(geo, k, np.concatenate(v))
    n = geo.n
    _attributes(geo, rng)
    _grids(geo, scale, rng)
    n_sites = len(geo.cx_name) + len(geo.lane_name)
    key = geo.site + np.where(geo.kind == 1, len(geo.cx_name), 0)
    geo.site_max_bld = np.zeros(n_sites, np.int16)
    geo.site_max_floor = np.zeros(n_sites, np.int16)
    np.maximum.at(geo.site_max_bld, key, geo.bld)
    np.maximum.at(geo.site_max_floor, key, geo.floor)
    codes = np.empty(0, np.int64)
    while len(codes) < n:
        codes = np.concatenate([codes, rng.integers(10**11, 10**12, n - len(codes) + 8)])
        codes = codes[np.sort(np.unique(codes, return_index=True)[1])]
    geo.code = codes[:n]
    return geo


def _attributes(geo: Geo, rng: np.random.Generator) -> None:
    n = geo.n
    tower = np.array(geo.cx_tower, dtype=bool)
    is_tower = (geo.kind == 0) & tower[np.where(geo.kind == 0, geo.site, 0)]
    usage = np.zeros(n, np.int8)
    usage[geo.kind == 1] = 1
    u = rng.random(n)
    usage[(geo.kind == 0) & (u < 0.03)] = 2
    usage[is_tower & (u > 0.6)] = 3
    legal = np.zeros(n, np.int8)
    v = rng.random(n)
    legal[(geo.kind == 1) & (v < 0.7)] = 1
    legal[(geo.kind == 1) & (v >= 0.7) & (v < 0.9)] = 2
    area = np.where(geo.kind == 1, rng.uniform(12, 45, n), rng.lognormal(np.log(80), 0.35, n))
    area = np.where(usage == 3, rng.uniform(50, 300, n), area)
    geo.usage, geo.legal, geo.area = usage, legal, np.round(area, 1).astype(np.float32)


def _grids(geo: Geo, scale: Scale, rng: np.random.Generator) -> None:
    grid = np.zeros(geo.n, np.int32)
    gid = 0
    grid_comm: list[int] = []
    for c in range(len(geo.communities)):
        idx = np.flatnonzero(geo.comm == c)
        k = max(1, int(round(len(idx) / scale.grid_size)))
        for gi, part in enumerate(np.array_split(idx, k)):
            grid[part] = gid
            si = int(geo.comm_street[c])
            ci = c - int(np.flatnonzero(geo.comm_street == si)[0])
            geo.grid_ids.append(f"{lx.DISTRICT_CODE}{si + 1:02d}{ci + 1:02d}{gi + 1:03d}")
            grid_comm.append(c)
            gid += 1
    geo.grid = grid
    geo.grid_comm = np.array(grid_comm, np.int32)
    for g in range(gid):
        geo.officer_ids.append(f"{lx.OFFICER_PREFIX}{g + 1:05d}")
        sur = lx.SURNAMES[int(rng.integers(len(lx.SURNAMES)))]
        giv = "".join(lx.GIVEN[int(i)] for i in rng.integers(0, len(lx.GIVEN), int(rng.integers(1, 3))))
        geo.officer_names.append(sur + giv)
        geo.officer_phones.append(
            f"0755-8{int(rng.integers(0, 10**7)):07d}" if rng.random() < 0.5
            else f"1{int(rng.integers(3, 10))}{int(rng.integers(0, 10**9)):09d}"
        )
