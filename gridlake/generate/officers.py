"""The officers' field checks: tonight's return forms in, tomorrow's filled-in forms out.

Each officer opens their grid's XLSX (``exports/<date>/<street>/<grid>.xlsx``), visits the top of
the list (about ``visits_per_officer_day`` places, each with probability ``visit_share``) and fills
in the input columns of the visited rows in the workbook itself: 核查结果 属实 (confirmed) when the
planted truth of that night has the discrepancy (rule + house code),
else one of 未出租 / 空置 / 地址错误; 核查时间 the next day; 备注. The file goes back as it is
(same sheet, same hidden checksum, same dropdown) to ``landing/verifications/<date+1>/``.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import random
from pathlib import Path

import pandas as pd

from gridlake.cells import short_hash, workbook_bytes
from gridlake.config import Settings
from gridlake.generate.config import load_gen_config

log = logging.getLogger(__name__)

REFUTED = ("未出租", "空置", "地址错误")
SUPERVISORS_DIR = "supervisors"


def _truth_keys(settings: Settings, day: dt.date) -> set[tuple[str, str]]:
    path = settings.truth / f"discrepancies_{day.isoformat()}.parquet"
    if not path.exists():
        log.warning("no truth for %s (%s); every visit is refuted", day, path)
        return set()
    df = pd.read_parquet(path, columns=["rule", "house_code"])
    return set(zip(df["rule"], df["house_code"].fillna(""), strict=True))


def _grid_officers(settings: Settings) -> dict[str, str]:
    path = settings.truth / "grids.csv"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        return {r["grid_id"]: r["officer_id"] for r in csv.DictReader(f)}


def export_forms(settings: Settings, day: dt.date) -> list[Path]:
    """The officers' XLSX lists of ``day`` (supervisors' lists excluded), in a stable order."""
    night = settings.exports / day.isoformat()
    return sorted(p for p in night.glob("**/*.xlsx")
                  if SUPERVISORS_DIR not in p.relative_to(night).parts and not p.name.startswith("."))


def fill_form(path: Path, out: Path, day: dt.date, keys: set[tuple[str, str]],
              rng: random.Random, per_officer: int, share: float, officer: str | None = None) -> int:
    """Fill in one grid's list as its officer would; write it to ``out``; return the rows filled in."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb.active
    col = {str(c.value): c.column for c in ws[1] if c.value}
    for needed in ("问题编号", "核查结果", "核查时间", "备注"):
        if needed not in col:
            raise ValueError(f"{path.name}: not a return form (no column {needed})")
    nxt = day + dt.timedelta(days=1)
    visited = 0
    for r in range(2, ws.max_row + 1):
        if visited >= per_officer:
            break
        did = str(ws.cell(row=r, column=col["问题编号"]).value or "").strip()
        if not did or rng.random() >= share:
            continue
        visited += 1
        rule = str(ws.cell(row=r, column=col["规则"]).value or "").strip().upper()[:2] if "规则" in col else ""
        house = str(ws.cell(row=r, column=col["房屋编码"]).value or "").strip() if "房屋编码" in col else ""
        true = (rule, house) in keys if house else False
        outcome = "属实" if true else REFUTED[rng.randrange(len(REFUTED))]
        checked = dt.datetime.combine(nxt, dt.time(9)) + dt.timedelta(minutes=rng.randrange(0, 9 * 60))
        ws.cell(row=r, column=col["核查结果"]).value = outcome
        ws.cell(row=r, column=col["核查时间"]).value = checked.strftime("%Y-%m-%d %H:%M")
        ws.cell(row=r, column=col["备注"]).value = "" if true else "现场核查不符"
        if officer and "网格员编号" in col and not ws.cell(row=r, column=col["网格员编号"]).value:
            ws.cell(row=r, column=col["网格员编号"]).value = officer
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(workbook_bytes(wb, dt.datetime.combine(nxt, dt.time(18))))
    return visited


def simulate_verifications(settings: Settings, date: str | dt.date, seed: int) -> Path | None:
    """Fill in the XLSX lists of ``date`` into ``landing/verifications/<date+1>/``; return that folder.

    Returns None when there are no exports for ``date``. Only files with a visit are returned.
    """
    day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
    files = export_forms(settings, day)
    if not files:
        return None
    officers_cfg = load_gen_config().officers
    per_officer = int(officers_cfg.get("visits_per_officer_day", 10))
    share = float(officers_cfg.get("visit_share", 0.8))
    keys = _truth_keys(settings, day)
    grid_officer = _grid_officers(settings)
    rng = random.Random(f"{seed}|verifications|{day}")
    nxt = day + dt.timedelta(days=1)
    target = settings.landing / "verifications" / nxt.isoformat()
    night = settings.exports / day.isoformat()
    total = 0
    for path in files:
        rel = path.relative_to(night).as_posix()
        out = target / f"核查_{nxt:%Y%m%d}_{short_hash(rel)}.xlsx"
        total += fill_form(path, out, day, keys, rng, per_officer, share, grid_officer.get(path.stem))
    log.info("verifications for %s: %d visits in %d returned lists", nxt, total, len(files))
    return target
