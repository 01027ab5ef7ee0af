"""The officers' field checks: tonight's exports in, tomorrow's verification delivery out.

Each officer visits the top of their grid's list (about ``visits_per_officer_day`` places) and
reports 属实 (confirmed) when the planted truth of that night has the discrepancy (rule + house
code), else one of 未出租 / 空置 / 地址错误.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import random
from pathlib import Path

import pandas as pd

from gridlake.config import Settings
from gridlake.generate.config import load_gen_config
from gridlake.generate.files import write_csv
from gridlake.sources import get_source

log = logging.getLogger(__name__)

REFUTED = ("未出租", "空置", "地址错误")


def _truth_keys(settings: Settings, day: dt.date) -> tuple[set[tuple[str, str]], set[str]]:
    path = settings.truth / f"discrepancies_{day.isoformat()}.parquet"
    if not path.exists():
        log.warning("no truth for %s (%s); every visit is refuted", day, path)
        return set(), set()
    df = pd.read_parquet(path, columns=["rule", "house_code", "evidence"])
    keys = set(zip(df["rule"], df["house_code"].fillna(""), strict=True))
    evidence = {e for ev in df["evidence"].fillna("") for e in ev.split(";") if e}
    return keys, evidence


def _grid_officers(settings: Settings) -> dict[str, str]:
    path = settings.truth / "grids.csv"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        return {r["grid_id"]: r["officer_id"] for r in csv.DictReader(f)}


def simulate_verifications(settings: Settings, date: str | dt.date, seed: int) -> Path | None:
    """Read exports/<date>/**/*.csv, write landing/verifications/<date+1>/verifications_<yyyymmdd>.csv.

    Returns the written path, or None when there are no exports for ``date``.
    """
    day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
    files = sorted((settings.exports / day.isoformat()).glob("**/*.csv"))
    if not files:
        return None
    officers_cfg = load_gen_config().officers
    per_officer = int(officers_cfg.get("visits_per_officer_day", 10))
    share = float(officers_cfg.get("visit_share", 0.8))
    keys, evidence = _truth_keys(settings, day)
    grid_officer = _grid_officers(settings)
    r = random.Random(f"{seed}|verifications|{day}")
    nxt = day + dt.timedelta(days=1)
    out: list[list[str]] = []
    for path in files:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
        grid = path.stem
        visited = 0
        for row in rows:
            if visited >= per_officer:
                break
            did = (row.get("问题编号") or "").strip()
            if not did or r.random() >= share:
                continue
            visited += 1
            rule = (row.get("规则") or "").strip().upper()[:2]
            house = (row.get("房屋编码") or "").strip()
            ev = {e.strip() for k in ("证据", "证据记录", "evidence") for e in (row.get(k) or "").split(";") if e}
            true = (rule, house) in keys if house else bool(ev & evidence)
            outcome = "属实" if true else REFUTED[r.randrange(len(REFUTED))]
            checked = dt.datetime.combine(nxt, dt.time(9)) + dt.timedelta(minutes=r.randrange(0, 9 * 60))
            officer = (row.get("网格员编号") or "").strip() or grid_officer.get(grid, "")
            out.append([f"HC{nxt:%Y%m%d}{len(out) + 1:05d}", did, checked.strftime("%Y-%m-%d %H:%M:%S"), outcome,
                        officer, "" if true else "现场核查不符"])
    src = get_source("verifications")
    target = settings.landing / "verifications" / nxt.isoformat() / f"verifications_{nxt:%Y%m%d}.csv"
    write_csv(target, src.encoding, list(src.columns.values()), out)
    log.info("verifications for %s: %d visits from %d export files", nxt, len(out), len(files))
    return target
