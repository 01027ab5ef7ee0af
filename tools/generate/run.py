"""Orchestrates one generator run: geography, backlog, nights, files, truth."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tools.generate.config import GenConfig
from tools.generate.deliver import Deliverer
from tools.generate.geography import build_geography
from tools.generate.person_mentions import person_noise, write_person_mentions
from tools.generate.truth import discrepancies, load_rules, write_discrepancies
from tools.generate.world import World

log = logging.getLogger(__name__)


def generate(cfg: GenConfig, data: str | Path, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Write ``cfg.days`` nights of deliveries under ``data/landing`` and the truth under ``data/truth``.

    ``progress(step, done, total)`` is called after each step (the CLI draws a bar). Returns a summary.
    """
    data = Path(data)
    t0 = time.monotonic()
    ss = np.random.SeedSequence(cfg.seed)
    geo_seed, world_seed = ss.spawn(2)
    geo = build_geography(cfg.scale, cfg.world, np.random.default_rng(geo_seed))
    log.info("district: %d houses, %d communities, %d grids", geo.n, len(geo.communities), len(geo.grid_ids))
    world = World(cfg, geo, np.random.default_rng(world_seed))
    deliverer = Deliverer(cfg, world, data)
    rules = load_rules()
    total = cfg.days * 2
    summary: dict = {"nights": {}}
    try:
        for night in range(1, cfg.days + 1):
            day = cfg.start + dt.timedelta(days=night - 1)
            if night == 1:
                world.backlog()
            else:
                world.night(night)
            counts = deliverer.deliver(night)
            if progress:
                progress(f"{day} files", 2 * night - 1, total)
            truth = discrepancies(world, night, rules)
            write_discrepancies(truth, data / "truth" / f"discrepancies_{day.isoformat()}.parquet")
            summary["nights"][day.isoformat()] = {"rows": counts, "discrepancies": truth["rule"].value_counts().to_dict()}
            log.info("night %s: %s rows, %d planted discrepancies", day, sum(counts.values()), len(truth))
            if progress:
                progress(f"{day} truth", 2 * night, total)
    finally:
        deliverer.close()
    _write_grids(geo, world, data / "truth" / "grids.csv")
    if person_noise(cfg.noise).enabled:
        mentions = deliverer.mentions.frame()
        write_person_mentions(mentions, data / "truth" / "person_mentions.parquet")
        summary["person_mentions"] = len(mentions)
    summary.update(houses=geo.n, grids=len(geo.grid_ids), persons=world.pool.n,
                   records=deliverer.records.count, seconds=round(time.monotonic() - t0, 1))
    manifest = {"generator": "tools.generate", "seed": cfg.seed, "noise_model": cfg.noise_model,
                "scale": cfg.scale.name, "config": cfg.to_dict(), "files": sorted(deliverer.files),
                "summary": summary, "truth_files": {
                    "records.parquet": "one row per delivered row: source, delivery_date, file, row_number, record_id, "
                                       "house_code (true, empty if unresolvable or not a house record), noise (';'-joined "
                                       "kinds; an unresolvable kind first: nonexistent_building|nonexistent_room|"
                                       "too_little_info, second model typo_building|typo_room|missing_room|"
                                       "too_little_info), quarantine, quarantine_reason (bad_checksum|"
                                       "malformed_fields|bad_date|duplicate), site_house_code (the house an officer on "
                                       "site finds: the true house also when a mistyped or nonexistent number made "
                                       "the text unresolvable; empty when the text names no single house)",
                    "persons.parquet": "source, record_id, role (declarant|landlord|party), person_id (true 18-digit), "
                                       "id_form (id18|id15_legacy|id_lower_x|id_bad_checksum), valid",
                    "discrepancies_<date>.parquet": "rule, house_code, source, record_id, person_id, grid_id, evidence, "
                                                    "evidence_count",
                    "person_mentions.parquet": "one row per person named in a declaration or an enforcement "
                                               "record: record_key, source, record_id, role, name, phone, id_number, "
                                               "house_code (as written; house_code empty when the address is "
                                               "unresolvable), person_id (true 18-digit), noise (';'-joined: "
                                               "id_missing|id_typo|id15|name_traditional|name_homophone|"
                                               "phone_missing|phone_format|family_phone|namesake)",
                    "grids.csv": "grid_id, street, community, officer_id (as of the last night)"}}
    (data / "truth").mkdir(parents=True, exist_ok=True)
    (data / "truth" / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str),
                                                 encoding="utf-8")
    return summary


def _write_grids(geo, world: World, path: Path) -> None:
    changed = {g for _, g in world.officer_changes}
    from tools.generate import lexicon as lx

    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["grid_id", "street", "community", "officer_id"])
        for g, gid in enumerate(geo.grid_ids):
            c = int(geo.grid_comm[g])
            oid = f"{lx.OFFICER_PREFIX}{90000 + g:05d}" if g in changed else geo.officer_ids[g]
            w.writerow([gid, geo.streets[int(geo.comm_street[c])], geo.communities[c], oid])
