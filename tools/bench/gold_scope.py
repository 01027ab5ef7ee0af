"""Gold's rules over only the houses a night touched, measured against the whole evaluation.

The measurement behind ``docs/speed.md``, "Gold over only what a night touched": on a data root whose night
``--night`` ran after ``--previous`` (matching included), it finds the records the night touched (delivered,
re-resolved, re-linked to a person, or whose lease, grace period, declaration date or enforcement window
flips between the two nights), the houses they name (resolved, delivered, candidate, before and after, with
every house of the persons they name and every candidate beside a changed registry house), and the records
the rules must read to decide those houses exactly (:func:`scope_records`). It evaluates the rules on those
records only (:func:`restrict`) and on everything, in one process, ``--rounds`` times each, and compares the
two on the units a scoped night would replace (:func:`replaced_units`): R1-R5 at the dirty houses, every R6
address case (every unresolved record is read), R7 of the records read. It writes a JSON report (commit,
machine, lake, nights, sizes, seconds, equal or not).

The touched records are found two ways each round, in alternating order: by comparing the resolutions'
versions and reading silver's delivery dates, and from the keys the writers recorded they changed between the
two nights (:func:`recorded_keys`, :mod:`gridlake.changes`) where every commit in between has a record. The
scope is then built from the second, and the report says whether the first found anything it did not.

``python -m tools.bench.gold_scope --data DIR --night YYYY-MM-DD --previous YYYY-MM-DD --output F.json``

A measuring aid for a local data root (read only); the night itself still evaluates the whole district.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schemas.silver import RECORD_KEYS

log = logging.getLogger(__name__)

ENFORCEMENT = ("police_incidents", "mediation_cases", "safety_inspections", "family_planning")
SOURCES = ("rentals", "declarations", *ENFORCEMENT)
RESOLUTION = ["source", "record_id", "house_code", "score", "grid_id", "community", "candidates"]
#: enforcement columns naming persons by ID number (jobs.gold.rules.prepare)
PERSON_IDS = {"police_incidents": "person_ids", "mediation_cases": "party_ids", "family_planning": "person_id"}
#: up to this many records the scope is broadcast into the joins that read it
BROADCAST_MAX_ROWS = 200_000


def _records(df: DataFrame, source: str) -> DataFrame:
    return df.select(F.lit(source).alias("source"), F.col(RECORD_KEYS[source]).cast("string").alias("record_id"))


def _candidate_houses(df: DataFrame) -> DataFrame:
    return df.select(F.explode(F.col("candidates").getField("house_code")).alias("house_code"))


def _union(frames: list[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, frames)


def _changed(after: DataFrame, before: DataFrame, keys: list[str], values: list[str]) -> DataFrame:
    """``keys`` of the rows that differ between two versions of a table (added, removed or changed)."""
    h = F.xxhash64(*[F.to_json(F.col(c)) if c == "candidates" else F.col(c) for c in values])
    both = after.select(*keys, h.alias("__h")).unionByName(before.select(*keys, h.alias("__h")))
    return (both.groupBy(*keys).agg(F.countDistinct("__h").alias("__n"), F.count(F.lit(1)).alias("__rows"))
            .where("__n > 1 OR __rows = 1").select(*keys))


def touched_records(silver: dict[str, DataFrame], failed: DataFrame | None, hr: DataFrame, hr_before: DataFrame,
                    persons: DataFrame | None, persons_before: DataFrame | None, rules: Any, night: dt.date,
                    previous: dt.date, recorded: dict[str, DataFrame | None] | None = None) -> DataFrame:
    """``source, record_id`` of the records whose part in the rules may differ between ``previous`` and ``night``:
    delivered after ``previous``; resolved differently; linked to another person; or a date flip in between
    (a lease starting, ending or leaving R2's grace period, a declaration's date, an enforcement record
    entering or leaving a rule's window).

    ``recorded`` (:func:`recorded_keys`): the keys the writers recorded they changed between the two nights
    (:mod:`gridlake.changes`), per part (``silver``: every record source's; ``house_resolution``;
    ``person_resolution``), read instead of comparing the part's versions; a part that is None (not recorded
    for every commit in between) is found as without them. Without a record, delivered is read from
    ``_delivery_date``: a delivery dated on or before ``previous`` but loaded after it would be missed."""
    from jobs.gold.rules import ENFORCEMENT_DATES

    recorded = recorded or {}
    after, d = F.date_add(F.lit(previous), 1), F.lit(night)
    windows = sorted({rules["R1"].window_days, rules["R5"].window_days, rules["R6"].window_days,
                      rules.max_window_days, rules.defaults.window_days})
    parts = []
    delivered = recorded.get("silver")
    if delivered is not None:
        parts.append(delivered)
    for source in SOURCES:
        df = silver[source]
        flips = F.lit(False) if delivered is not None else F.col("_delivery_date") > F.lit(previous)
        if source == "rentals":
            grace = rules["R2"].grace_days
            flips = (flips | F.col("lease_start").between(after, d) | F.date_add("lease_end", 1).between(after, d)
                     | F.date_add("lease_start", grace + 1).between(after, d))
        elif source == "declarations":
            flips = flips | F.to_date("declared_at").between(after, d)
        else:
            ev = F.to_date(ENFORCEMENT_DATES[source])
            flips = flips | ev.between(after, d)
            for w in windows:
                flips = flips | F.date_add(ev, w).between(after, d)
        parts.append(_records(df.where(flips), source))
    if failed is not None:
        parts.append(_records(failed.where((F.col("_delivery_date") > F.lit(previous))
                                           | F.to_date("declared_at").between(after, d)), "declarations"))
    if recorded.get("house_resolution") is not None:
        parts.append(recorded["house_resolution"])
    else:
        parts.append(_changed(hr.select(*RESOLUTION), hr_before.select(*RESOLUTION), ["source", "record_id"],
                              RESOLUTION[2:]))
    if recorded.get("person_resolution") is not None:
        parts.append(recorded["person_resolution"])
    elif persons is not None and persons_before is not None:
        keys = ["source", "record_id", "mention_no"]
        parts.append(_changed(persons.select(*keys, "person_key", "identified"),
                              persons_before.select(*keys, "person_key", "identified"), keys,
                              ["person_key", "identified"]).select("source", "record_id"))
    return _union(parts).distinct()


def recorded_keys(spark: Any, settings: Any, before: dict[str, int], now: dict[str, int]
                  ) -> dict[str, DataFrame | None]:
    """``source, record_id`` of the records each part's writers recorded they changed from the versions ``before``
    to ``now`` (``{"layer.name": version}``; :func:`gridlake.changes.keys_changed`): ``silver`` (every record
    source, None unless each is recorded), ``house_resolution`` and ``person_resolution`` (None when not recorded)."""
    from gridlake import changes

    def part(layer: str, name: str, keys: list[str]) -> Any:
        key = f"{layer}.{name}"
        if key not in before or key not in now:
            return None
        return changes.keys_changed(settings, layer, name, before[key], now[key], keys)

    def frame(table: Any, source: str | None = None) -> DataFrame:
        rows = [(source or r["source"], r["record_id"]) for r in table.to_pylist()]
        return spark.createDataFrame(rows, "source string, record_id string")

    out: dict[str, DataFrame | None] = {"silver": None, "house_resolution": None, "person_resolution": None}
    silver = []
    for source in SOURCES:
        keys = part("silver", source, [RECORD_KEYS[source]])
        if keys is None:
            silver = None
            break
        silver.append(frame(keys.rename_columns(["record_id"]), source))
    if silver is not None:
        out["silver"] = _union(silver)
    hr = part("gold", "house_resolution", ["source", "record_id"])
    if hr is not None:
        out["house_resolution"] = frame(hr)
    persons = part("gold", "person_resolution", ["source", "record_id", "mention_no"])
    if persons is not None:
        out["person_resolution"] = frame(persons.select(["source", "record_id"]))
    return out


def delivered_codes(silver: dict[str, DataFrame], failed: DataFrame | None) -> DataFrame:
    """``source, record_id, house_code``: the house codes rentals and declarations were delivered with."""
    parts: list[DataFrame] = []
    for source, df in (("rentals", silver["rentals"]), ("declarations", silver["declarations"]),
                       ("declarations", failed)):
        if df is not None:
            parts.append(df.select(F.lit(source).alias("source"), F.col(RECORD_KEYS[source]).alias("record_id"),
                                   F.upper(F.trim("house_code")).alias("house_code")))
    return _union(parts).where(F.col("house_code").isNotNull())


def _person_records(records: DataFrame, silver: dict[str, DataFrame], failed: DataFrame | None,
                    persons: DataFrame | None) -> DataFrame:
    """Every declaration of the persons ``records`` are or name, and every enforcement record naming them: by
    the persons linkage gave them (when ``persons``), and by ID number (the declarant's, and those an
    enforcement record names)."""
    decls = silver["declarations"]
    ids = [decls.join(records.where("source = 'declarations'").select(F.col("record_id").alias("declaration_id")),
                      "declaration_id", "left_semi").select("id_number")]
    for source, col in PERSON_IDS.items():
        named = silver[source].join(records.where(F.col("source") == source)
                                    .select(F.col("record_id").alias(RECORD_KEYS[source])), RECORD_KEYS[source],
                                    "left_semi")
        ids.append(named.select(F.explode(F.split(F.coalesce(F.col(col), F.lit("")), ";")).alias("id_number"))
                   .select(F.upper(F.trim("id_number")).alias("id_number")).where("length(id_number) > 0"))
    id_numbers = _union(ids).distinct()
    out = [decls.join(id_numbers, "id_number", "left_semi").select(
        F.lit("declarations").alias("source"), F.col("declaration_id").alias("record_id"))]
    for source, col in PERSON_IDS.items():  # the enforcement records naming them (R5 where they were seen)
        named = silver[source].select(RECORD_KEYS[source], F.explode(F.split(F.coalesce(F.col(col), F.lit("")), ";"))
                                      .alias("id_number"))
        out.append(_records(named.withColumn("id_number", F.upper(F.trim("id_number")))
                            .join(id_numbers, "id_number", "left_semi"), source))
    if failed is not None:
        out.append(failed.join(id_numbers, "id_number", "left_semi").select(
            F.lit("declarations").alias("source"), F.col("declaration_id").alias("record_id")))
    if persons is not None:
        keys = persons.join(records, ["source", "record_id"], "left_semi").select("person_key").distinct()
        out.append(persons.join(keys, "person_key", "left_semi").select("source", "record_id"))
    return _union(out)


def dirty_houses(touched: DataFrame, registry_changed: DataFrame, hr: DataFrame, hr_before: DataFrame,
                 delivered: DataFrame, silver: dict[str, DataFrame], failed: DataFrame | None,
                 persons: DataFrame | None) -> DataFrame:
    """``house_code`` of the houses whose R1-R5 may differ: the registry's changed houses; every house a
    touched record names before or after (resolved, candidate, delivered); every house the persons of touched
    records are resolved to; every candidate of a record that has a changed registry house among its
    candidates (its address case's grid follows them)."""
    named = (hr.select(*RESOLUTION).unionByName(hr_before.select(*RESOLUTION))
             .join(touched, ["source", "record_id"], "left_semi"))
    changed = registry_changed.select("house_code").distinct()
    beside = (hr.select("source", "record_id", F.explode(F.col("candidates").getField("house_code")).alias("house_code"))
              .join(F.broadcast(changed), "house_code", "left_semi").select("source", "record_id"))
    more = _union([_person_records(touched, silver, failed, persons), beside, touched]).distinct()
    more_hr = hr.select(*RESOLUTION).join(more, ["source", "record_id"], "left_semi")
    return (_union([changed, named.select("house_code"), _candidate_houses(named), more_hr.select("house_code"),
                    _candidate_houses(more_hr), delivered.join(more, ["source", "record_id"], "left_semi")
                    .select("house_code")])
            .where(F.col("house_code").isNotNull()).distinct())


def scope_records(houses: DataFrame, hr: DataFrame, delivered: DataFrame, silver: dict[str, DataFrame],
                  failed: DataFrame | None, persons: DataFrame | None, touched: DataFrame) -> DataFrame:
    """``source, record_id`` of the records the rules read to decide ``houses`` exactly: every record resolved
    to one, delivered with one or having one among its candidates; every unresolved record (R6's cases are
    decided whole); the touched records; and every declaration and enforcement record of the persons these
    records are or name (a person's current declaration is their latest anywhere)."""
    h = F.broadcast(houses) if houses.count() <= BROADCAST_MAX_ROWS else houses
    res = hr.select(*RESOLUTION)
    base = _union([
        res.join(h, "house_code", "left_semi").select("source", "record_id"),
        res.select("source", "record_id", F.explode(F.col("candidates").getField("house_code")).alias("house_code"))
        .join(h, "house_code", "left_semi").select("source", "record_id"),
        res.where(F.col("house_code").isNull()).select("source", "record_id"),
        delivered.join(h, "house_code", "left_semi").select("source", "record_id"),
        touched]).distinct()
    return _union([base, _person_records(base, silver, failed, persons)]).distinct()


def restrict(silver: dict[str, DataFrame], hr: DataFrame, persons: DataFrame | None, failed: DataFrame | None,
             records: DataFrame, rows: int) -> tuple[dict[str, DataFrame], DataFrame, DataFrame | None,
                                                     DataFrame | None]:
    """The rules' inputs cut to ``records`` (``rows`` of them): each source by its record id (every version),
    the resolutions and persons by record; the registry whole."""
    r = F.broadcast(records) if rows <= BROADCAST_MAX_ROWS else records
    out = dict(silver)
    for source in SOURCES:
        key = RECORD_KEYS[source]
        out[source] = silver[source].join(r.where(F.col("source") == source).select(F.col("record_id").alias(key)),
                                          key, "left_semi")
    decl_ids = r.where("source = 'declarations'").select(F.col("record_id").alias("declaration_id"))
    failed_r = failed.join(decl_ids, "declaration_id", "left_semi") if failed is not None else None
    persons_r = persons.join(r, ["source", "record_id"], "left_semi") if persons is not None else None
    return out, hr.join(r, ["source", "record_id"], "left_semi"), persons_r, failed_r


def replaced_units(detections: DataFrame, houses: DataFrame, records: DataFrame) -> DataFrame:
    """The detections a scoped night would take from the scoped evaluation: R1-R5 at ``houses``, every R6 case,
    R7 of ``records``."""
    h = houses.select(F.col("house_code").alias("__h"))
    r = records.select(F.col("source").alias("__s"), F.col("record_id").alias("__r"))
    at_houses = (detections.where(F.col("rule").isin("R1", "R2", "R3", "R4", "R5"))
                 .join(h, F.col("house_code") == F.col("__h"), "left_semi"))
    r7 = detections.where("rule = 'R7'").join(r, (F.col("source") == F.col("__s")) & (F.col("record_id") == F.col("__r")),
                                              "left_semi")
    return _union([at_houses, detections.where("rule = 'R6'"), r7])


def differences(whole: DataFrame, scoped: DataFrame) -> tuple[int, int]:
    """Rows (every column) of ``whole`` missing from ``scoped``, and rows of ``scoped`` not in ``whole``."""
    cols = whole.columns
    a = whole.select(F.to_json(F.struct(*cols)).alias("j"))
    b = scoped.select(F.to_json(F.struct(*cols)).alias("j"))
    return a.exceptAll(b).count(), b.exceptAll(a).count()


def _versions(settings: Any, night: dt.date) -> dict[str, int]:
    from gridlake.manifest import runs_dir

    for path in sorted(runs_dir(settings).glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("run_date") == night.isoformat() and doc.get("table_versions"):
            return doc["table_versions"]
    raise SystemExit(f"no run record with table versions for night {night} under {runs_dir(settings)}")


def generated(data: Path) -> dict[str, Any] | None:
    """The generator's seed, noise model and scale of a generated data root (``truth/manifest.json``), or None."""
    path = data / "truth" / "manifest.json"
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {k: doc.get(k) for k in ("generator", "seed", "noise_model", "scale")}


def measure(data: Path, night: dt.date, previous: dt.date, rounds: int) -> dict[str, Any]:
    """Find the scope of ``night`` against ``previous``, evaluate both ways and compare (see the module doc)."""
    from types import SimpleNamespace

    from gridlake import io
    from gridlake.config import load_settings
    from gridlake.frames import Keeper
    from gridlake.privacy import load_key
    from gridlake.rules_config import load_rules
    from gridlake.spark import get_spark
    from jobs.gold.rules import detect, prepare
    from jobs.gold.runner import read_inputs, read_persons

    settings = load_settings(None, data)
    spark = get_spark(settings)
    key, rules = load_key(settings), load_rules()
    ctx = SimpleNamespace(spark=spark, settings=settings)
    before = _versions(settings, previous)
    silver, hr = read_inputs(ctx)
    persons, failed = read_persons(ctx)
    if hr is None or "candidates" not in hr.columns:
        raise SystemExit("gold.house_resolution with candidates is needed")
    hr_before = io.read_table(spark, settings, "gold", "house_resolution", version=before["gold.house_resolution"])
    persons_before = (io.read_table(spark, settings, "gold", "person_resolution",
                                    version=before["gold.person_resolution"])
                      if persons is not None and "gold.person_resolution" in before else None)
    registry = io.changed_keys(spark, settings, "silver", "housing", before["silver.housing"],
                               io.table_version(spark, settings, "silver", "housing"), ["house_code"])
    if registry is None:
        raise SystemExit("silver.housing has no change feed between the two nights")

    now = _versions(settings, night)

    def scope(recorded_first: bool) -> tuple[DataFrame, DataFrame, int, dict[str, float]]:
        """The night's scope; the touched records found both ways (comparing the versions, and from the keys the
        writers recorded, when they did), in the order given (rounds alternate it), the second way's scope kept."""
        took, t = {}, time.monotonic()
        delivered = delivered_codes(silver, failed).localCheckpoint()
        took["delivered_codes"] = round(time.monotonic() - t, 1)

        def compare() -> DataFrame:
            t = time.monotonic()
            out = touched_records(silver, failed, hr, hr_before, persons, persons_before, rules, night,
                                  previous).localCheckpoint()
            took["touched_records"] = round(time.monotonic() - t, 1)
            return out

        def from_records() -> DataFrame | None:
            t = time.monotonic()
            recorded = recorded_keys(spark, settings, before, now)
            if all(v is None for v in recorded.values()):
                return None
            out = touched_records(silver, failed, hr, hr_before, persons, persons_before, rules, night,
                                  previous, recorded).localCheckpoint()
            took["touched_records_from_recorded_keys"] = round(time.monotonic() - t, 1)
            sizes["recorded_parts"] = sorted(k for k, v in recorded.items() if v is not None)
            return out

        if recorded_first:
            touched = from_records()
            compared = compare()
        else:
            compared = compare()
            touched = from_records()
        if touched is None:
            touched = compared
        else:
            sizes["touched_records_compared"] = compared.count()
            # what the versions' comparison finds is among what the records give (they may give more: a key
            # written again with the same values the rules read)
            sizes["compared_not_in_recorded"] = compared.exceptAll(touched.select(*compared.columns)).count()
        t = time.monotonic()
        houses = dirty_houses(touched, registry, hr, hr_before, delivered, silver, failed, persons).localCheckpoint()
        took["dirty_houses"], t = round(time.monotonic() - t, 1), time.monotonic()
        records = scope_records(houses, hr, delivered, silver, failed, persons, touched).localCheckpoint()
        n = records.count()
        took["scope_records"] = round(time.monotonic() - t, 1)
        sizes.update({"touched_records": touched.count(), "dirty_houses": houses.count(), "scope_records": n})
        return houses, records, n, took

    def evaluate(inputs, hr_in, persons_in, failed_in) -> tuple[DataFrame, float, Keeper]:
        started = time.monotonic()
        kept = Keeper(cut_lineage=False)
        p = prepare(inputs, kept.keep(hr_in), rules, night, person_resolution=persons_in,
                    failed_declarations=failed_in, key=key, materialise=kept.keep)
        out = kept.keep(detect(p, rules, night, key, materialise=kept.keep))
        out.count()
        return out, round(time.monotonic() - started, 1), kept

    sizes: dict[str, Any] = {"registry_houses": hr.select("house_code").distinct().count(), "all_records": hr.count()}
    report: dict[str, Any] = {"seconds": {"scope": [], "whole_prepare_detect": [], "scoped_prepare_detect": []}}
    for i in range(rounds):
        houses, records, n, took = scope(recorded_first=i % 2 == 1)
        report["seconds"]["scope"].append(took)
        whole, s_whole, kw = evaluate(silver, hr, persons, failed)
        scoped, s_scoped, ks = evaluate(*restrict(silver, hr, persons, failed, records, n))
        report["seconds"]["whole_prepare_detect"].append(s_whole)
        report["seconds"]["scoped_prepare_detect"].append(s_scoped)
        log.info("round %d: scope %s, whole %.1f s, scoped %.1f s", i + 1, took, s_whole, s_scoped)
        if i == rounds - 1:
            sizes["scope_records_by_source"] = {r["source"]: r["count"] for r in records.groupBy("source").count().collect()}
            w_units, s_units = replaced_units(whole, houses, records), replaced_units(scoped, houses, records)
            missing, extra = differences(w_units, s_units)
            report["units"] = {"replaced": w_units.count(), "whole_detections": whole.count(),
                               "by_rule": {r["rule"]: r["count"] for r in w_units.groupBy("rule").count().collect()},
                               "missing_from_scoped": missing, "extra_in_scoped": extra,
                               "equal": missing == 0 and extra == 0}
        kw.release()
        ks.release()
    report["sizes"] = sizes
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.gold_scope", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a data root whose --night ran after --previous")
    ap.add_argument("--night", type=dt.date.fromisoformat, required=True)
    ap.add_argument("--previous", type=dt.date.fromisoformat, required=True)
    ap.add_argument("--rounds", type=int, default=2, help="evaluations each way, in one process")
    ap.add_argument("--output", type=Path, required=True, help="the JSON report")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from tools.bench.kit import run_info

    report = {"kind": "gold_scope", **run_info(), "data": str(args.data), "night": args.night.isoformat(),
              "previous": args.previous.isoformat(), "generated": generated(args.data), "rounds": args.rounds,
              **measure(args.data, args.night, args.previous, args.rounds),
              "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("%s: equal=%s", args.output, report["units"]["equal"])
    return 0 if report["units"]["equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
