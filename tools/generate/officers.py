"""The officers' field checks: tonight's return forms in, tomorrow's filled-in forms out.

Each officer opens their grid's XLSX (``exports/<date>/<street>/<grid>.xlsx``), visits the top of
the list (about ``visits_per_officer_day`` places, each with probability ``visit_share``) and fills
in the input columns of the visited rows in the workbook itself: 核查结果 属实 (confirmed) when the
planted truth of that night has the discrepancy (rule + house code),
else one of 未出租 / 空置 / 地址错误; 核查时间 the next day; 备注. The file goes back as it is
(same sheet, same hidden checksum, same dropdown) to ``landing/verifications/<date+1>/``.

An unresolved-address row (规则 R6, no 房屋编码) is a real finding either way (属实): the officer
finds on site which house the address is (:mod:`tools.generate.site_truth`: the case's evidence
in the lake, then the generator's truth) and, with probability ``officers.correction_share``, writes
its code in 核查后房屋编码 - the correction that closes the case as ``address_corrected`` and becomes
an address alias. An address that truly is no house gets no code.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridlake.cells import short_hash, workbook_bytes
from gridlake.config import Settings
from gridlake.config_models import config_error
from tools.generate.config import load_gen_config
from tools.generate.site_truth import ADDRESS_RULE, address_findings

log = logging.getLogger(__name__)

REFUTED = ("未出租", "空置", "地址错误")
CONFIRMED = "属实"
SUPERVISORS_DIR = "supervisors"
NOTE_REFUTED = "现场核查不符"
NOTE_CORRECTED = "现场核实房屋编码"
NOTE_NO_HOUSE = "现场无对应房屋"


class OfficersConfig(BaseModel):
    """conf/generator.yaml ``officers:``: how the simulated officers work their lists."""

    model_config = ConfigDict(extra="forbid")

    visits_per_officer_day: int = Field(10, ge=0)
    visit_share: float = Field(0.8, ge=0.0, le=1.0)       # share of the top-ranked rows an officer reaches
    correction_share: float = Field(0.9, ge=0.0, le=1.0)  # of visited address cases with a house: code written


def officers_config(raw: Mapping[str, Any] | None) -> OfficersConfig:
    """Validate the ``officers:`` section; a wrong value names the file, the key and what was expected."""
    try:
        return OfficersConfig.model_validate(dict(raw or {}))
    except ValidationError as e:
        raise config_error(e, "generator.yaml", "officers") from None


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


def form_address_cases(path: Path) -> list[str]:
    """The 问题编号 of the address-case rows (规则 R6) of one return form."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    try:
        rows = wb.active.iter_rows(values_only=True)
        header = [str(v) if v is not None else "" for v in next(rows, ())]
        if "问题编号" not in header or "规则" not in header:
            return []
        i_id, i_rule = header.index("问题编号"), header.index("规则")
        return [str(r[i_id]).strip() for r in rows
                if r and r[i_id] and str(r[i_rule] or "").strip().upper()[:2] == ADDRESS_RULE]
    finally:
        wb.close()


def fill_form(path: Path, out: Path, day: dt.date, keys: set[tuple[str, str]],
              rng: random.Random, per_officer: int, share: float, officer: str | None = None, *,
              addresses: Mapping[str, str | None] | None = None, correction_share: float = 0.9) -> int:
    """Fill in one grid's list as its officer would; write it to ``out``; return the rows filled in.

    ``addresses``: R6 discrepancy id -> the house found on site (:func:`site_truth.address_findings`);
    a visited R6 row is 属实, with that house's code in 核查后房屋编码 with probability ``correction_share``."""
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
        code = None
        if rule == ADDRESS_RULE and not house:
            # an address that no house could be found for is a real finding; on site the officer sees the house
            found = (addresses or {}).get(did)
            give = found is not None and rng.random() < correction_share
            code = found if give else None
            outcome, note = CONFIRMED, NOTE_CORRECTED if give else (NOTE_NO_HOUSE if found is None else "")
        else:
            true = (rule, house) in keys if house else False
            outcome = CONFIRMED if true else REFUTED[rng.randrange(len(REFUTED))]
            note = "" if true else NOTE_REFUTED
        checked = dt.datetime.combine(nxt, dt.time(9)) + dt.timedelta(minutes=rng.randrange(0, 9 * 60))
        ws.cell(row=r, column=col["核查结果"]).value = outcome
        ws.cell(row=r, column=col["核查时间"]).value = checked.strftime("%Y-%m-%d %H:%M")
        ws.cell(row=r, column=col["备注"]).value = note
        if code and "核查后房屋编码" in col:
            ws.cell(row=r, column=col["核查后房屋编码"]).value = code
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
    cfg = officers_config(load_gen_config().officers)
    keys = _truth_keys(settings, day)
    addresses = address_findings(settings, [d for p in files for d in form_address_cases(p)])
    grid_officer = _grid_officers(settings)
    rng = random.Random(f"{seed}|verifications|{day}")
    nxt = day + dt.timedelta(days=1)
    target = settings.landing / "verifications" / nxt.isoformat()
    night = settings.exports / day.isoformat()
    total = 0
    for path in files:
        rel = path.relative_to(night).as_posix()
        out = target / f"核查_{nxt:%Y%m%d}_{short_hash(rel)}.xlsx"
        total += fill_form(path, out, day, keys, rng, cfg.visits_per_officer_day, cfg.visit_share,
                           grid_officer.get(path.stem), addresses=addresses, correction_share=cfg.correction_share)
    log.info("verifications for %s: %d visits in %d returned lists", nxt, total, len(files))
    return target
