"""The seven collision rules of ``conf/rules.yaml`` as pure Spark transforms (DESIGN.md section 4).

:func:`prepare` turns silver tables and ``gold.house_resolution`` into the as-of-D views
the rules share (everything delivered up to D; current declarations; active rentals;
enforcement records in the window), and :func:`detect` evaluates R1..R7 on them, one row
per discrepancy raised on night D with its stable id, evidence and reason codes
(:data:`DETECTION_COLUMNS`). The lifecycle lives in :mod:`jobs.gold.discrepancies`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from gridlake.privacy import discrepancy_id, mask_id, mask_name, mask_phone, pseudonym
from gridlake.rules_config import RulesConfig
from schemas.vocab import ENFORCEMENT_SOURCES

#: source table -> record id column
RECORD_KEYS = {
    "rentals": "rental_id",
    "declarations": "declaration_id",
    "police_incidents": "incident_id",
    "mediation_cases": "case_id",
    "safety_inspections": "inspection_id",
    "family_planning": "record_id",
}
#: enforcement source -> (date column, person-id expression producing array<string>)
ENFORCEMENT_DATES = {
    "police_incidents": "reported_at",
    "mediation_cases": "opened_at",
    "safety_inspections": "inspected_at",
    "family_planning": "record_date",
}
CATEGORIES = {**ENFORCEMENT_SOURCES, "rentals": "租赁登记", "declarations": "自主申报", "housing": "房屋登记"}
REASON_ENF = {
    "police_incidents": "ENF_POLICE",
    "mediation_cases": "ENF_MEDIATION",
    "safety_inspections": "ENF_SAFETY",
    "family_planning": "ENF_FAMILY_PLANNING",
}

DETECTION_COLUMNS = [
    "discrepancy_id", "rule", "rule_code", "severity", "house_code", "source", "record_id",
    "street", "community", "grid_id", "person_key", "masked_id", "masked_name", "masked_phone",
    "evidence", "reason_codes", "corroborating_sources", "match_confidence", "last_evidence_date",
]


@dataclass
class Prepared:
    """The shared as-of-D views every rule reads."""

    houses: DataFrame         # registry as of D: house_code, street, community, grid_id, address, status, area_m2, ...
    rentals: DataFrame        # latest version of each rental: rental_id, house_code (resolved), delivered_code, active, ...
    declarations: DataFrame   # current declaration per person: id_number, house_code (resolved), relation, ...
    all_declarations: DataFrame  # every declaration delivered up to D with its resolution (for R6)
    enforcement: DataFrame    # enforcement records in the window: source, record_id, ev_date, house_code, score, person_ids
    community_grid: DataFrame  # community -> first grid (street, community, grid_id)


# --- helpers ---------------------------------------------------------------------------------
def _as_date(c: str) -> Column:
    return F.to_date(F.col(c))


def _latest(df: DataFrame, key: str, order: list[Column]) -> DataFrame:
    w = Window.partitionBy(key).orderBy(*order)
    return df.withColumn("__rn", F.row_number().over(w)).where("__rn = 1").drop("__rn")


def _delivered(df: DataFrame, run_date: dt.date) -> DataFrame:
    return df.where(F.col("_delivery_date") <= F.lit(run_date))


def houses_as_of(housing: DataFrame, run_date: dt.date) -> DataFrame:
    """The housing registry (SCD2) as it stood on ``run_date``: one row per house_code."""
    d = F.lit(run_date)
    h = _delivered(housing, run_date).where((F.col("valid_from") <= d) & (F.col("valid_to").isNull() | (F.col("valid_to") > d)))
    h = _latest(h, "house_code", [F.col("valid_from").desc(), F.col("_delivery_date").desc(), F.col("_row_number").desc()])
    return h.select(
        "house_code", "street", "community", "grid_id",
        F.coalesce("address_norm", "address_raw").alias("address"),
        "usage", "legal_status", "area_m2", F.col("status").alias("house_status"),
    )


def _resolution(house_resolution: DataFrame, source: str) -> DataFrame:
    return (house_resolution.where(F.col("source") == source)
            .select(F.col("record_id").alias("__rid"), F.col("house_code").alias("res_house"),
                    F.col("score").cast("double").alias("res_score"),
                    F.col("grid_id").alias("res_grid"), F.col("community").alias("res_community"))
            .dropDuplicates(["__rid"]))


def _resolve(df: DataFrame, house_resolution: DataFrame | None, source: str, houses: DataFrame) -> DataFrame:
    """Attach house_code (resolved, in the registry), score, res_grid, res_community to records of ``source``."""
    key = RECORD_KEYS[source]
    known = houses.select(F.col("house_code").alias("__known"))
    if house_resolution is not None:
        r = _resolution(house_resolution, source)
        out = df.join(r, df[key] == r["__rid"], "left").drop("__rid")
    else:
        out = (df.withColumn("res_house", F.lit(None).cast("string")).withColumn("res_score", F.lit(None).cast("double"))
               .withColumn("res_grid", F.lit(None).cast("string")).withColumn("res_community", F.lit(None).cast("string")))
    out = out.join(known, out["res_house"] == known["__known"], "left")
    return (out.withColumn("res_house", F.when(F.col("__known").isNotNull(), F.col("res_house"))).drop("__known")
            .withColumn("res_score", F.least(F.greatest(F.coalesce("res_score", F.lit(1.0)), F.lit(0.0)), F.lit(1.0))))


def _id_array(c: str) -> Column:
    arr = F.split(F.coalesce(F.col(c), F.lit("")), ";")
    return F.array_distinct(F.filter(F.transform(arr, lambda x: F.upper(F.trim(x))), lambda x: F.length(x) > 0))


def prepare(silver: dict[str, DataFrame], house_resolution: DataFrame | None, rules: RulesConfig,
            run_date: dt.date) -> Prepared:
    """Build the as-of-``run_date`` views from silver tables and ``gold.house_resolution``."""
    d = F.lit(run_date)
    houses = houses_as_of(silver["housing"], run_date)
    rentals = _delivered(silver["rentals"], run_date)
    rentals = _latest(rentals, "rental_id", [F.col("_delivery_date").desc(), F.col("registered_at").desc_nulls_last(),
                                               F.col("_row_number").desc()])
    rentals = _resolve(rentals, house_resolution, "rentals", houses)
    delivered_known = houses.select(F.col("house_code").alias("__k"))
    rentals = (rentals.join(delivered_known, F.upper(F.trim(rentals["house_code"])) == delivered_known["__k"], "left")
               .withColumn("house", F.coalesce("res_house", "__k")).drop("__k"))
    rentals = rentals.select(
        "rental_id", F.col("house").alias("house_code"), F.col("house_code").alias("delivered_code"),
        "tenants_declared", "lease_start", "lease_end", "status", "res_score", "res_grid", "res_community",
        F.coalesce(_as_date("registered_at"), F.col("lease_start")).alias("ev_date"),
        ((F.col("status") == "active") & (F.col("lease_start") <= d)
         & (F.col("lease_end").isNull() | (F.col("lease_end") >= d))).alias("active"),
    )

    decl = _delivered(silver["declarations"], run_date).where(_as_date("declared_at") <= d)
    decl = _latest(decl, "declaration_id", [F.col("_delivery_date").desc(), F.col("_row_number").desc()])
    decl = _resolve(decl, house_resolution, "declarations", houses)
    # a scanned code of a registered house is the declared house (matching never proposes demolished houses)
    reg = houses.select(F.col("house_code").alias("__k"), F.col("house_status").alias("__ks"))
    decl = decl.join(reg, F.upper(F.trim(decl["house_code"])) == reg["__k"], "left")
    decl = decl.withColumn("res_house", F.when(F.col("__ks") == "demolished", F.col("__k"))
                           .otherwise(F.coalesce("res_house", "__k"))).drop("__k", "__ks")
    all_decl = decl.select(
        "declaration_id", "id_number", "name", "phone", F.col("res_house").alias("house_code"),
        F.col("house_code").alias("delivered_code"), "relation", "declared_at", "res_score", "res_grid", "res_community",
        F.col("addr.community").alias("addr_community"), _as_date("declared_at").alias("ev_date"),
    )
    current = _latest(all_decl, "id_number", [F.col("declared_at").desc(), F.col("declaration_id").desc()])

    start = F.date_sub(d, rules.max_window_days)
    parts = []
    for source, date_col in ENFORCEMENT_DATES.items():
        df = _delivered(silver[source], run_date)
        key = RECORD_KEYS[source]
        df = df.withColumn("ev_date", _as_date(date_col)).where((F.col("ev_date") <= d) & (F.col("ev_date") > start))
        df = _latest(df, key, [F.col("_delivery_date").desc(), F.col("_row_number").desc()])
        persons = {"police_incidents": _id_array("person_ids"), "mediation_cases": _id_array("party_ids"),
                   "family_planning": _id_array("person_id")}.get(source, F.array().cast("array<string>"))
        severity = F.col("severity") if source == "safety_inspections" else F.lit(None).cast("string")
        df = _resolve(df, house_resolution, source, houses)
        parts.append(df.select(
            F.lit(source).alias("source"), F.col(key).alias("record_id"), "ev_date",
            F.col("res_house").alias("house_code"), "res_score", "res_grid", "res_community",
            F.col("addr.community").alias("addr_community"), persons.alias("person_ids"), severity.alias("finding_severity"),
        ))
    enforcement = reduce(DataFrame.unionByName, parts)
    community_grid = (houses.where(F.col("community").isNotNull())
                      .groupBy("community").agg(F.min(F.struct("grid_id", "street")).alias("g"))
                      .select("community", F.col("g.street").alias("street"), F.col("g.grid_id").alias("grid_id")))
    return Prepared(houses, rentals, current, all_decl, enforcement, community_grid)


# --- rule outputs ----------------------------------------------------------------------------
def _evidence(source: Column | str, record_id: Column | str) -> Column:
    src = F.col(source) if isinstance(source, str) else source
    rid = F.col(record_id) if isinstance(record_id, str) else record_id
    cat = F.coalesce(*[F.when(src == s, F.lit(c)) for s, c in CATEGORIES.items()], F.lit("其他"))
    return F.struct(src.alias("source"), rid.alias("record_id"), cat.alias("category"))


def _finish(df: DataFrame, rules: RulesConfig, rule_id: str, key: bytes, houses: DataFrame | None = None) -> DataFrame:
    """Common tail: stable id, geography from the house, corroboration, typed columns in order."""
    rc = rules[rule_id]
    for c, t in (("source", "string"), ("record_id", "string"), ("person_key", "string"), ("masked_id", "string"),
                 ("masked_name", "string"), ("masked_phone", "string"), ("street", "string"), ("community", "string"),
                 ("grid_id", "string"), ("severity", "string")):
        if c not in df.columns:
            df = df.withColumn(c, F.lit(None).cast(t))
    if houses is not None:
        h = houses.select(F.col("house_code").alias("__hc"), F.col("street").alias("__st"),
                          F.col("community").alias("__cm"), F.col("grid_id").alias("__gr"))
        df = (df.join(h, df["house_code"] == h["__hc"], "left")
              .withColumn("street", F.coalesce("__st", "street")).withColumn("community", F.coalesce("__cm", "community"))
              .withColumn("grid_id", F.coalesce("__gr", "grid_id")).drop("__hc", "__st", "__cm", "__gr"))
    subject = F.coalesce(F.col("house_code"), F.concat_ws(":", "source", "record_id")) if "subject" not in df.columns \
        else F.col("subject")
    evidence = F.array_sort(F.array_distinct(F.col("evidence")))
    return (df.withColumn("evidence", evidence)
            .withColumn("discrepancy_id", discrepancy_id(F.lit(rc.code), subject, F.col("person_key"), key))
            .withColumn("rule", F.lit(rule_id)).withColumn("rule_code", F.lit(rc.code))
            .withColumn("severity", F.coalesce("severity", F.lit(rc.severity)))
            .withColumn("reason_codes", F.array_sort(F.array_distinct(F.col("reason_codes"))))
            .withColumn("corroborating_sources", F.size(F.array_distinct(F.transform("evidence", lambda e: e["source"]))))
            .withColumn("match_confidence", F.round(F.coalesce(F.col("match_confidence"), F.lit(1.0)).cast("double"), 6))
            .select(*DETECTION_COLUMNS))


def _declared_houses(p: Prepared) -> DataFrame:
    return p.declarations.where(F.col("house_code").isNotNull())


def rule_r1(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R1: active rental + enforcement in the window + no current declaration at the house."""
    rc = rules["R1"]
    start = F.date_sub(F.lit(run_date), rc.window_days)
    active = p.rentals.where("active AND house_code IS NOT NULL")
    enf = p.enforcement.where(F.col("house_code").isNotNull() & (F.col("ev_date") > start))
    declared = _declared_houses(p).select("house_code").distinct()
    houses = active.select("house_code").distinct().join(enf.select("house_code").distinct(), "house_code") \
        .join(declared, "house_code", "left_anti")
    ev = (enf.select("house_code", "source", "record_id", "ev_date", "res_score")
          .unionByName(active.select("house_code", F.lit("rentals").alias("source"), F.col("rental_id").alias("record_id"),
                                     "ev_date", F.lit(None).cast("double").alias("res_score"))))
    ev = ev.join(houses, "house_code")
    enf_sources = F.filter(F.collect_set("source"), lambda s: s != "rentals")
    agg = ev.groupBy("house_code").agg(
        F.collect_list(_evidence("source", "record_id")).alias("evidence"),
        enf_sources.alias("__srcs"),
        F.max(F.when(F.col("source") != "rentals", F.col("ev_date"))).alias("last_evidence_date"),
        F.avg("res_score").alias("match_confidence"),
    )
    reason_map = F.create_map(*[F.lit(x) for kv in REASON_ENF.items() for x in kv])
    reasons = F.array_union(F.array(F.lit("ACTIVE_RENTAL"), F.lit("NO_DECLARATION")),
                            F.transform("__srcs", lambda s: reason_map[s]))
    sev = F.when(F.array_contains("__srcs", "safety_inspections"), F.lit(rc.safety_severity or rc.severity)).otherwise(F.lit(rc.severity))
    out = agg.withColumn("reason_codes", reasons).withColumn("severity", sev).drop("__srcs")
    return _finish(out, rules, "R1", key, p.houses)


def rule_r2(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R2: active rental, lease_start + grace_days < D, no current tenant declaration at the house."""
    rc = rules["R2"]
    rentals = p.rentals.where(F.col("active") & F.col("house_code").isNotNull()
                              & (F.date_add("lease_start", rc.grace_days) < F.lit(run_date)))
    tenants = _declared_houses(p).where(F.col("relation") == "tenant").select("house_code").distinct()
    rentals = rentals.join(tenants, "house_code", "left_anti")
    agg = rentals.groupBy("house_code").agg(
        F.collect_list(_evidence(F.lit("rentals"), "rental_id")).alias("evidence"),
        F.max("ev_date").alias("last_evidence_date"), F.avg("res_score").alias("match_confidence"),
    ).withColumn("reason_codes", F.array(F.lit("ACTIVE_RENTAL"), F.lit("NO_TENANT_DECLARATION"), F.lit("GRACE_EXPIRED")))
    return _finish(agg, rules, "R2", key, p.houses)


def rule_r3(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R3: current tenant declarations at a house with no active rental."""
    active = p.rentals.where("active AND house_code IS NOT NULL").select("house_code").distinct()
    tenants = _declared_houses(p).where(F.col("relation") == "tenant").join(active, "house_code", "left_anti")
    agg = tenants.groupBy("house_code").agg(
        F.collect_list(_evidence(F.lit("declarations"), "declaration_id")).alias("evidence"),
        F.max("ev_date").alias("last_evidence_date"), F.avg("res_score").alias("match_confidence"),
    ).withColumn("reason_codes", F.array(F.lit("TENANT_DECLARED"), F.lit("NO_ACTIVE_RENTAL")))
    return _finish(agg, rules, "R3", key, p.houses)


def rule_r4(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R4: declared persons above floor(area / area_per_person) (>= 1), or tenants above the rental's + tolerance."""
    rc = rules["R4"]
    decl = _declared_houses(p)
    per_house = decl.groupBy("house_code").agg(
        F.count(F.lit(1)).alias("persons"),
        F.sum(F.when(F.col("relation") == "tenant", 1).otherwise(0)).alias("tenants"),
        F.collect_list(_evidence(F.lit("declarations"), "declaration_id")).alias("ev_decl"),
        F.max("ev_date").alias("last_evidence_date"), F.avg("res_score").alias("match_confidence"),
    )
    cap = p.houses.select("house_code", F.greatest(F.floor(F.col("area_m2") / F.lit(rc.area_per_person_m2)),
                                                   F.lit(1)).cast("int").alias("capacity"))
    rent = (p.rentals.where("active AND house_code IS NOT NULL").groupBy("house_code")
            .agg(F.sum("tenants_declared").alias("rental_tenants"),
                 F.collect_list(_evidence(F.lit("rentals"), "rental_id")).alias("ev_rent")))
    j = per_house.join(cap, "house_code", "left").join(rent, "house_code", "left")
    over_area = F.col("capacity").isNotNull() & (F.col("persons") > F.col("capacity"))
    over_rent = F.col("rental_tenants").isNotNull() & (F.col("tenants") > F.col("rental_tenants") + rc.tenant_tolerance)
    j = j.where(over_area | over_rent)
    reasons = F.filter(F.array(F.when(over_area, F.lit("OVER_AREA_CAPACITY")), F.when(over_rent, F.lit("OVER_RENTAL_TENANTS"))),
                       lambda x: x.isNotNull())
    evidence = F.when(over_rent, F.concat("ev_decl", F.coalesce("ev_rent", F.array()))).otherwise(F.col("ev_decl"))
    out = j.withColumn("reason_codes", reasons).withColumn("evidence", evidence)
    return _finish(out.select("house_code", "evidence", "reason_codes", "last_evidence_date", "match_confidence"),
                   rules, "R4", key, p.houses)


def rule_r5(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R5: a person named in an enforcement record at house H whose current declaration is not at H."""
    rc = rules["R5"]
    start = F.date_sub(F.lit(run_date), rc.window_days)
    enf = (p.enforcement.where(F.col("house_code").isNotNull() & (F.col("ev_date") > start))
           .select("house_code", "source", "record_id", "ev_date", "res_score", F.explode("person_ids").alias("id_number")))
    cur = p.declarations.select("id_number", F.col("house_code").alias("decl_house"), "name", "phone")
    j = enf.join(cur, "id_number", "left").where(F.col("decl_house").isNull() | (F.col("decl_house") != F.col("house_code")))
    agg = j.groupBy("house_code", "id_number").agg(
        F.collect_list(_evidence("source", "record_id")).alias("evidence"),
        F.max("ev_date").alias("last_evidence_date"), F.avg("res_score").alias("match_confidence"),
        F.first("name", ignorenulls=True).alias("name"), F.first("phone", ignorenulls=True).alias("phone"),
        F.max(F.col("decl_house").isNotNull()).alias("declared_elsewhere"),
    )
    out = (agg.withColumn("person_key", pseudonym("id_number", key))
           .withColumn("masked_id", mask_id("id_number")).withColumn("masked_name", mask_name("name"))
           .withColumn("masked_phone", mask_phone("phone"))
           .withColumn("reason_codes", F.array(F.lit("PERSON_IN_ENFORCEMENT"),
                                               F.when(F.col("declared_elsewhere"), F.lit("DECLARED_ELSEWHERE"))
                                               .otherwise(F.lit("NOT_DECLARED"))))
           .drop("id_number", "name", "phone", "declared_elsewhere"))
    return _finish(out, rules, "R5", key, p.houses)


def _route(df: DataFrame, p: Prepared) -> DataFrame:
    """Grid of an unresolved record: the resolution's grid, else the first grid of the parsed community."""
    cg = p.community_grid.select(F.col("community").alias("__c"), F.col("street").alias("__s"), F.col("grid_id").alias("__g"))
    comm = F.coalesce("res_community", "addr_community")
    df = df.withColumn("__comm", comm)
    df = df.join(cg, df["__comm"] == cg["__c"], "left")
    return (df.withColumn("grid_id", F.coalesce("res_grid", "__g")).withColumn("community", F.col("__comm"))
            .withColumn("street", F.col("__s")).drop("__c", "__s", "__g", "__comm"))


def rule_r6(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R6: an enforcement record in the window or a declaration whose address did not resolve to a house."""
    rc = rules["R6"]
    start = F.date_sub(F.lit(run_date), rc.window_days)
    enf = p.enforcement.where(F.col("house_code").isNull() & (F.col("ev_date") > start)).select(
        "source", "record_id", "ev_date", "res_grid", "res_community", "addr_community")
    decl = p.all_declarations.where(F.col("house_code").isNull() & F.col("delivered_code").isNull()).select(
        F.lit("declarations").alias("source"), F.col("declaration_id").alias("record_id"), "ev_date",
        "res_grid", "res_community", "addr_community")
    rec = _route(enf.unionByName(decl), p)
    out = (rec.withColumn("evidence", F.array(_evidence("source", "record_id")))
           .withColumn("reason_codes", F.array(F.lit("ADDRESS_UNRESOLVED")))
           .withColumn("house_code", F.lit(None).cast("string"))
           .withColumn("last_evidence_date", F.col("ev_date")).withColumn("match_confidence", F.lit(1.0)))
    return _finish(out, rules, "R6", key)


def rule_r7(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R7: a current declaration or active rental whose delivered house_code is unknown or demolished."""
    reg = p.houses.select(F.col("house_code").alias("__hc"), F.col("house_status").alias("__hs"),
                          F.col("street").alias("__st"), F.col("community").alias("__cm"), F.col("grid_id").alias("__gr"))
    decl = p.declarations.where(F.col("delivered_code").isNotNull()).select(
        F.lit("declarations").alias("source"), F.col("declaration_id").alias("record_id"), "delivered_code", "ev_date",
        "res_grid", "res_community", "addr_community")
    rent = p.rentals.where(F.col("active") & F.col("delivered_code").isNotNull()).select(
        F.lit("rentals").alias("source"), F.col("rental_id").alias("record_id"), "delivered_code", "ev_date",
        "res_grid", "res_community", F.lit(None).cast("string").alias("addr_community"))
    rec = decl.unionByName(rent)
    rec = rec.join(reg, rec["delivered_code"] == reg["__hc"], "left")
    rec = rec.where(F.col("__hc").isNull() | (F.col("__hs") == "demolished"))
    rec = _route(rec, p)
    out = (rec.withColumn("street", F.coalesce("__st", "street")).withColumn("community", F.coalesce("__cm", "community"))
           .withColumn("grid_id", F.coalesce("__gr", "grid_id"))
           .withColumn("house_code", F.col("delivered_code"))
           .withColumn("subject", F.concat_ws(":", "source", "record_id"))
           .withColumn("evidence", F.array(_evidence("source", "record_id")))
           .withColumn("reason_codes", F.array(F.when(F.col("__hc").isNull(), F.lit("HOUSE_CODE_UNKNOWN"))
                                               .otherwise(F.lit("HOUSE_DEMOLISHED"))))
           .withColumn("last_evidence_date", F.col("ev_date")).withColumn("match_confidence", F.lit(1.0)))
    return _finish(out, rules, "R7", key)


RULES = {"R1": rule_r1, "R2": rule_r2, "R3": rule_r3, "R4": rule_r4, "R5": rule_r5, "R6": rule_r6, "R7": rule_r7}


def detect(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes, only: list[str] | None = None) -> DataFrame:
    """All discrepancies whose condition holds on ``run_date`` (one row per discrepancy_id)."""
    frames = [RULES[r](p, rules, run_date, key) for r in (only or list(RULES))]
    return reduce(DataFrame.unionByName, frames).dropDuplicates(["discrepancy_id"])
