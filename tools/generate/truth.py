"""Planted truth: the discrepancies the 7 rules of conf/rules.yaml must raise as of each night.

Computed from the true state of everything delivered up to night D, with the shared definitions
of rules.yaml: quarantined rows never count (malformed; a declaration with a mistyped ID counts for
R1, R2 and R5 only: the resident did declare, and gridlake links it to its person), duplicates count
once, R5 is about persons named with a valid ID in some delivered record, a record's resolved house is its true house unless its address was made unresolvable
(rentals: always the true house). Enforcement window: record date in (D - window_days, D].
R6 covers enforcement records in the window and every valid declaration delivered so far.
Evidence lists ``source:record_id`` joined by ";".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from gridlake.config import CONF_DIR
from tools.generate import lexicon as lx
from tools.generate.deliver import record_id
from tools.generate.world import ENF_SOURCES, TENANT, World, day_of

SCHEMA = pa.schema([
    ("rule", pa.string()), ("house_code", pa.string()), ("source", pa.string()), ("record_id", pa.string()),
    ("person_id", pa.string()), ("grid_id", pa.string()), ("evidence", pa.string()), ("evidence_count", pa.int32()),
])


def load_rules() -> dict:
    """conf/rules.yaml as a dict."""
    return yaml.safe_load((CONF_DIR / "rules.yaml").read_text(encoding="utf-8"))


def _code(c: int) -> str:
    return f"{lx.DISTRICT_CODE}{int(c):012d}"


def discrepancies(world: World, night: int, rules: dict) -> pd.DataFrame:
    """Every discrepancy the rules should raise as of ``night`` (1-based)."""
    geo, cfg = world.geo, world.cfg
    d = day_of(cfg.start) + night - 1
    R = rules["rules"]
    out: list[tuple] = []
    codes = np.array([_code(c) for c in geo.code], dtype=object)
    grids = np.array(geo.grid_ids, dtype=object)

    def add(rule: str, house: int | None, ev: list[str], source: str = "", rid: str = "", person: str = "",
            code: str | None = None) -> None:
        hc = code if code is not None else (codes[house] if house is not None and house >= 0 else "")
        gid = grids[geo.grid[house]] if house is not None and house >= 0 else ""
        out.append((rule, hc, source, rid, person, gid, ";".join(sorted(set(ev))), len(set(ev))))

    # --- current declarations ------------------------------------------------------------------
    st = world.decl
    # A declaration whose ID has one digit mistyped is quarantined, but the resident did declare: for R1, R2
    # and R5 it counts (gridlake links it to its person by name, phone and house); R3, R4, R6 and R7 are
    # about the declarations that load (valid IDs).
    m_all = (st.col("night") <= night) & (st.col("malformed") == 0)
    m = m_all & (st.col("id_u") >= cfg.noise["ids"]["bad_checksum_rate"])
    cols = ("num", "person", "house", "relation", "ts", "unres", "qr")
    dec = pd.DataFrame({k: st.col(k)[m] for k in cols})
    dec["rhouse"] = np.where(dec["unres"] > 0, -1, dec["house"])
    cur = dec.sort_values(["person", "ts", "num"]).drop_duplicates("person", keep="last")
    cur_res = cur[cur["rhouse"] >= 0]
    persons_at = cur_res.groupby("rhouse").size()
    tenants = cur_res[cur_res["relation"] == TENANT]
    tenants_at = tenants.groupby("rhouse").size()
    decl_ids_at = cur_res.groupby("rhouse")["num"].apply(list)
    ten_ids_at = tenants.groupby("rhouse")["num"].apply(list)
    dec_all = pd.DataFrame({k: st.col(k)[m_all] for k in cols})
    dec_all["rhouse"] = np.where(dec_all["unres"] > 0, -1, dec_all["house"])
    cur_all = dec_all.sort_values(["person", "ts", "num"]).drop_duplicates("person", keep="last")
    cur_all_res = cur_all[cur_all["rhouse"] >= 0]
    declared_at = set(cur_all_res["rhouse"].tolist())
    tenant_declared_at = set(cur_all_res[cur_all_res["relation"] == TENANT]["rhouse"].tolist())
    cur_house_of = dict(zip(cur_all["person"].to_numpy(), cur_all["rhouse"].to_numpy(), strict=True))

    def decl_ev(nums) -> list[str]:
        return [f"declarations:{record_id('declarations', x)}" for x in nums]

    # --- active rentals ------------------------------------------------------------------------
    rs = world.rent
    m = (rs.col("night") <= night) & (rs.col("malformed") == 0)
    rv = pd.DataFrame({k: rs.col(k)[m] for k in ("ridx", "house", "status", "ts", "tenants", "start", "end",
                                                 "code_kind", "code")})
    rv = rv.sort_values(["ridx", "ts"], kind="stable").drop_duplicates("ridx", keep="last")
    act = rv[(rv["status"] == 0) & (rv["start"] <= d) & ((rv["end"] < 0) | (rv["end"] >= d))]
    active_at = act.groupby("house")["ridx"].apply(list)
    rented = set(act["house"].tolist())

    # --- enforcement in the window -------------------------------------------------------------
    es = world.enf
    m = (es.col("night") <= night) & (es.col("malformed") == 0)
    erows = np.flatnonzero(m)
    enf = pd.DataFrame({"row": erows, "src": es.col("src")[erows], "num": es.col("num")[erows],
                        "house": es.col("house")[erows], "unres": es.col("unres")[erows],
                        "day": es.col("ts")[erows] // 86400})

    def in_window(days: int) -> pd.DataFrame:
        return enf[(enf["day"] <= d) & (enf["day"] > d - days)]

    def ev_of(df: pd.DataFrame) -> list[str]:
        return [f"{ENF_SOURCES[s]}:{record_id(ENF_SOURCES[s], n)}" for s, n in zip(df["src"], df["num"], strict=True)]

    w1 = in_window(int(R["R1"]["window_days"]))
    w1 = w1[w1["unres"] == 0]
    for h, grp in w1.groupby("house"):
        if h in rented and h not in declared_at:
            add("R1", int(h), ev_of(grp) + [f"rentals:{record_id('rentals', x)}" for x in active_at[h]])
    # R2: active rental, lease_start + grace < D, no current tenant declaration at the house
    grace = int(R["R2"]["grace_days"])
    for ridx, h, start in zip(act["ridx"], act["house"], act["start"], strict=True):
        if start + grace < d and h not in tenant_declared_at:
            add("R2", int(h), [f"rentals:{record_id('rentals', ridx)}"])
    # R3: current tenant declarations, no active rental
    for h, nums in ten_ids_at.items():
        if h not in rented:
            add("R3", int(h), decl_ev(nums))
    # R4: over-occupancy
    app = float(R["R4"]["area_per_person_m2"])
    tol = int(R["R4"]["tenant_tolerance"])
    act_ten = act.groupby("house")["tenants"].sum()
    for h, cnt in persons_at.items():
        cap = max(1, int(np.floor(float(geo.area[h]) / app)))
        over_area = cnt > cap
        t = int(tenants_at.get(h, 0))
        over_rent = h in act_ten.index and t > int(act_ten[h]) + tol
        if over_area or over_rent:
            ev = decl_ev(decl_ids_at[h])
            if over_rent:
                ev += [f"rentals:{record_id('rentals', x)}" for x in active_at[h]]
            add("R4", int(h), ev)
    # R5: person seen in an enforcement record at H, not currently declared at H
    w5 = in_window(int(R["R5"]["window_days"]))
    w5 = w5[w5["unres"] == 0]
    ep = world.enf_person
    pm = np.isin(ep.col("erow"), w5["row"].to_numpy())
    if world.valid_id_persons is None:   # the world without deliveries: the ID's own draw decides
        pm &= ep.col("id_u") >= cfg.noise["ids"]["bad_checksum_rate"]
    else:   # a person named with a valid ID in some delivered record so far (linkage finds their other mentions)
        pm &= np.isin(ep.col("person"), np.fromiter(world.valid_id_persons, np.int64))
    pe = pd.DataFrame({"row": ep.col("erow")[pm], "person": ep.col("person")[pm]})
    pe = pe.merge(w5, on="row")
    pe["cur"] = pe["person"].map(cur_house_of).fillna(-1).astype(np.int64)
    pe = pe[pe["cur"] != pe["house"]]
    for (h, p), grp in pe.groupby(["house", "person"]):
        add("R5", int(h), ev_of(grp), person=world.pool.id18(int(p)))
    # R6: unresolvable enforcement records in the window, and declarations
    w6 = in_window(int(R["R6"]["window_days"]))
    for s, n in zip(w6[w6["unres"] > 0]["src"], w6[w6["unres"] > 0]["num"], strict=True):
        src = ENF_SOURCES[s]
        add("R6", None, [f"{src}:{record_id(src, n)}"], source=src, rid=record_id(src, n))
    for n in dec[dec["unres"] > 0]["num"]:
        rid = record_id("declarations", n)
        add("R6", None, [f"declarations:{rid}"], source="declarations", rid=rid)
    # R7: current declarations / active rentals whose delivered house code is unknown or demolished
    demolished = (world.demolished >= 0) & (world.demolished <= d)
    for n, h in zip(cur[cur["qr"]]["num"], cur[cur["qr"]]["house"], strict=True):
        if demolished[h]:
            rid = record_id("declarations", n)
            add("R7", int(h), [f"declarations:{rid}"], source="declarations", rid=rid)
    code_to_house = {int(c): i for i, c in enumerate(geo.code)}
    for ridx, kind, code in zip(act["ridx"], act["code_kind"], act["code"], strict=True):
        if kind == 0:
            continue
        h = code_to_house.get(int(code))
        if h is None or demolished[h]:
            rid = record_id("rentals", ridx)
            add("R7", h, [f"rentals:{rid}"], source="rentals", rid=rid, code=_code(code))
    df = pd.DataFrame(out, columns=[f.name for f in SCHEMA])
    return df.sort_values(["rule", "house_code", "record_id", "person_id"], kind="stable").reset_index(drop=True)


def write_discrepancies(df: pd.DataFrame, path: Path) -> None:
    """Write one night's truth as Parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, schema=SCHEMA, preserve_index=False), path, compression="zstd")
