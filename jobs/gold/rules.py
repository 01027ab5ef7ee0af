"""The seven collision rules of ``conf/rules.yaml`` as pure Spark transforms (DESIGN.md section 4).

:func:`prepare` turns silver tables and ``gold.house_resolution`` into the as-of-D views
the rules share (everything delivered up to D; current declarations; active rentals;
enforcement records in the window), and :func:`detect` evaluates R1..R7 on them, one row
per discrepancy raised on night D with its stable id, evidence and reason codes
(:data:`DETECTION_COLUMNS`). The lifecycle lives in :mod:`jobs.gold.discrepancies`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType

from gridlake.privacy import discrepancy_id, mask_id, mask_name, mask_phone, pseudonym
from gridlake.rules_config import HouseCodeFormat, RulesConfig
from schemas.gold import CANDIDATE_HOUSE
from schemas.silver import RECORD_KEYS
from schemas.vocab import ENFORCEMENT_SOURCES

#: source table -> record id column
#: enforcement source -> (date column, person-id expression producing array<string>)
ENFORCEMENT_DATES = {
    "police_incidents": "reported_at",
    "mediation_cases": "opened_at",
    "safety_inspections": "inspected_at",
    "family_planning": "record_date",
}
CATEGORIES = {**ENFORCEMENT_SOURCES, "rentals": "租赁登记", "declarations": "自主申报", "housing": "房屋登记",
              "address_case": "地址待核"}
#: reason code of a discrepancy that waits for an address case (kept off the officers' lists)
WAITING = "WAITING_ADDRESS_CASE"
#: evidence source naming the R6 address case a waiting discrepancy waits for (record_id = its discrepancy id)
ADDRESS_CASE = "address_case"
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
    "address", "record_count", "candidates",
]
CANDIDATES_TYPE = ArrayType(CANDIDATE_HOUSE, True).simpleString()


@dataclass
class Prepared:
    """The shared as-of-D views every rule reads."""

    houses: DataFrame         # registry as of D: house_code, street, community, grid_id, address, status, area_m2, ...
    rentals: DataFrame        # latest version of each rental: rental_id, house_code (resolved), delivered_code, active, ...
    declarations: DataFrame   # current declaration per person: id_number, house_code (resolved), relation, ...
    all_declarations: DataFrame  # every declaration delivered up to D with its resolution (for R6)
    enforcement: DataFrame    # enforcement records in the window: source, record_id, ev_date, house_code, score, person_ids
    community_grid: DataFrame  # community -> first grid (street, community, grid_id)
    places: DataFrame | None = None  # place names the registry knows: component, name (R6 address display)
    # with gold.person_resolution (issue 21): the current declaration of each person (person_key), counting a
    # declaration that failed only its ID checksum when linkage tied it to a person (declaration_basis
    # "linked_checksum_failed"); R1, R2 and R5 read it. And the persons of enforcement records in the window
    # (source, record_id, person_key, identified, id_number: the mention's valid ID or null). R5 reads them.
    person_declarations: DataFrame | None = None
    enforcement_persons: DataFrame | None = None
    # the parsed address (address_norm, addr) of the declarations left without a house, by silver row
    # (ROW_ID): R6 reads it (:func:`unresolved_records`); the declaration views do not carry it
    declaration_addresses: DataFrame | None = None


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


CAND_TYPE = "array<struct<house_code:string,weight:double,why:string>>"


def _resolution(house_resolution: DataFrame, source: str) -> DataFrame:
    cands = (F.col("candidates").cast(CAND_TYPE) if "candidates" in house_resolution.columns
             else F.lit(None).cast(CAND_TYPE))
    return (house_resolution.where(F.col("source") == source)
            .select(F.col("record_id").alias("__rid"), F.col("house_code").alias("res_house"),
                    F.col("score").cast("double").alias("res_score"),
                    F.col("grid_id").alias("res_grid"), F.col("community").alias("res_community"),
                    cands.alias("res_candidates"))
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
               .withColumn("res_grid", F.lit(None).cast("string")).withColumn("res_community", F.lit(None).cast("string"))
               .withColumn("res_candidates", F.lit(None).cast(CAND_TYPE)))
    out = out.join(known, out["res_house"] == known["__known"], "left")
    return (out.withColumn("res_house", F.when(F.col("__known").isNotNull(), F.col("res_house"))).drop("__known")
            .withColumn("res_score", F.least(F.greatest(F.coalesce("res_score", F.lit(1.0)), F.lit(0.0)), F.lit(1.0))))


def _id_array(c: str) -> Column:
    arr = F.split(F.coalesce(F.col(c), F.lit("")), ";")
    return F.array_distinct(F.filter(F.transform(arr, lambda x: F.upper(F.trim(x))), lambda x: F.length(x) > 0))


def prepare(silver: dict[str, DataFrame], house_resolution: DataFrame | None, rules: RulesConfig,
            run_date: dt.date, person_resolution: DataFrame | None = None,
            failed_declarations: DataFrame | None = None, key: bytes | None = None,
            materialise: Callable[[DataFrame], DataFrame] | None = None) -> Prepared:
    """Build the as-of-``run_date`` views from silver tables and ``gold.house_resolution``; with
    ``gold.person_resolution`` (and ``key``) also the persons' current declarations, counting the
    ``failed_declarations`` (:func:`jobs.silver.declarations.checksum_failed`) linkage tied to a person.

    ``materialise`` (the runner's :class:`gridlake.frames.Keeper`) is applied to each view as soon as it is
    built, and the views built from another (every one from ``houses``; the current declarations and the
    addresses of those without a house from every declaration; the persons' declarations from the current
    ones) start from the kept frame: kept afterwards, the current
    declarations computed every declaration again (29.7 s, then 19.3 s for every declaration, on a district's
    incremental night), and on a small night, where a kept frame is a checkpoint, each view computed the
    registry again."""
    done = materialise or (lambda df: df)
    d = F.lit(run_date)
    houses = done(houses_as_of(silver["housing"], run_date))
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
        "res_candidates", F.coalesce(_as_date("registered_at"), F.col("lease_start")).alias("ev_date"),
        ((F.col("status") == "active") & (F.col("lease_start") <= d)
         & (F.col("lease_end").isNull() | (F.col("lease_end") >= d))).alias("active"),
    )
    rentals = done(rentals)

    all_decl = done(_declaration_view(silver["declarations"], house_resolution, houses, run_date))
    current = done(_latest(all_decl, "id_number", [F.col("declared_at").desc(), F.col("declaration_id").desc()]))
    addresses = done(declaration_addresses(silver["declarations"], all_decl, run_date))

    start = F.date_sub(d, rules.max_window_days)
    parts = []
    for source, date_col in ENFORCEMENT_DATES.items():
        df = _delivered(silver[source], run_date)
        rkey = RECORD_KEYS[source]
        df = df.withColumn("ev_date", _as_date(date_col)).where((F.col("ev_date") <= d) & (F.col("ev_date") > start))
        df = _latest(df, rkey, [F.col("_delivery_date").desc(), F.col("_row_number").desc()])
        persons = {"police_incidents": _id_array("person_ids"), "mediation_cases": _id_array("party_ids"),
                   "family_planning": _id_array("person_id")}.get(source, F.array().cast("array<string>"))
        severity = F.col("severity") if source == "safety_inspections" else F.lit(None).cast("string")
        df = _resolve(df, house_resolution, source, houses)
        parts.append(df.select(
            F.lit(source).alias("source"), F.col(rkey).alias("record_id"), "ev_date",
            F.col("res_house").alias("house_code"), "res_score", "res_grid", "res_community",
            F.col("addr.community").alias("addr_community"), persons.alias("person_ids"), severity.alias("finding_severity"),
            "res_candidates", "address_norm", "addr",
        ))
    enforcement = done(reduce(DataFrame.unionByName, parts))
    community_grid = done(houses.where(F.col("community").isNotNull())
                          .groupBy("community").agg(F.min(F.struct("grid_id", "street")).alias("g"))
                          .select("community", F.col("g.street").alias("street"), F.col("g.grid_id").alias("grid_id")))
    places = known_places(_delivered(silver["housing"], run_date))
    prepared = Prepared(houses, rentals, current, all_decl, enforcement, community_grid, places,
                        declaration_addresses=addresses)
    if person_resolution is not None:
        if key is None:
            raise ValueError("prepare: person resolution needs the pseudonym key")
        prepared.person_declarations = done(person_declarations(current, failed_declarations, person_resolution,
                                                                house_resolution, houses, run_date, key, done))
        prepared.enforcement_persons = done(enforcement_persons(silver, person_resolution))
    return prepared


#: a declaration's version in every view: its id, delivery and silver row (bronze file and row number)
ROW_ID = ("declaration_id", "_delivery_date", "_file_sha256", "_row_number")
#: what R6 reads of a declaration without a house: its parsed address (never carried by the other rows)
ADDRESS_COLUMNS = ("address_norm", "addr")
#: up to this many declarations without a house, their addresses are looked up by a broadcast of their rows
ADDRESS_BROADCAST_MAX_ROWS = 200_000


def _declaration_view(declarations: DataFrame, house_resolution: DataFrame | None, houses: DataFrame,
                      run_date: dt.date) -> DataFrame:
    """Every declaration delivered and declared up to ``run_date`` (latest version of each id) with its
    resolved house (a scanned code of a registered house is the declared house; matching never proposes
    demolished houses) and its silver row (:data:`ROW_ID`).

    The parsed address (:data:`ADDRESS_COLUMNS`) is left out: only the declarations left without a house
    need it (R6: :func:`declaration_addresses`), and carried through the joins and windows of over a
    million rows it took a third of the view's time on a district (21.4 s against 13.4 s, warm)."""
    d = F.lit(run_date)
    decl = _delivered(declarations, run_date).where(_as_date("declared_at") <= d)
    decl = decl.select(*[c for c in decl.columns if c not in ADDRESS_COLUMNS],
                       F.col("addr.community").alias("addr_community"))
    decl = _latest(decl, "declaration_id", [F.col("_delivery_date").desc(), F.col("_row_number").desc()])
    decl = _resolve(decl, house_resolution, "declarations", houses)
    reg = houses.select(F.col("house_code").alias("__k"), F.col("house_status").alias("__ks"))
    decl = decl.join(reg, F.upper(F.trim(decl["house_code"])) == reg["__k"], "left")
    decl = decl.withColumn("res_house", F.when(F.col("__ks") == "demolished", F.col("__k"))
                           .otherwise(F.coalesce("res_house", "__k"))).drop("__k", "__ks")
    return decl.select(
        "declaration_id", "id_number", "name", "phone", F.col("res_house").alias("house_code"),
        F.col("house_code").alias("delivered_code"), "relation", "declared_at", "res_score", "res_grid", "res_community",
        "addr_community", _as_date("declared_at").alias("ev_date"), "res_candidates", *ROW_ID[1:],
    )


def declaration_addresses(declarations: DataFrame, view: DataFrame, run_date: dt.date) -> DataFrame:
    """``ROW_ID`` and the parsed address (:data:`ADDRESS_COLUMNS`) of the declarations of ``view``
    (:func:`_declaration_view`, best kept) left without a house, read from silver by their rows.

    Up to :data:`ADDRESS_BROADCAST_MAX_ROWS` such rows (one Spark job counts them) silver is filtered by a
    broadcast of their rows as it is scanned; more, by a join."""
    rows = view.where(F.col("house_code").isNull()).select(*ROW_ID)
    if rows.count() <= ADDRESS_BROADCAST_MAX_ROWS:
        rows = F.broadcast(rows)
    return (_delivered(declarations, run_date).select(*ROW_ID, *ADDRESS_COLUMNS).join(rows, list(ROW_ID), "left_semi")
            .dropDuplicates(list(ROW_ID)))  # one row each (silver's rows are unique; hand-made frames may not be)


#: ``declaration_basis`` of a person's current declaration
BASIS_VALID = "valid_id"
BASIS_LINKED = "linked_checksum_failed"


def person_declarations(current: DataFrame, failed: DataFrame | None, person_resolution: DataFrame,
                        house_resolution: DataFrame | None, houses: DataFrame, run_date: dt.date,
                        key: bytes, materialise: Callable[[DataFrame], DataFrame] | None = None) -> DataFrame:
    """The current declaration of each person (``person_key``): loaded declarations (``declaration_basis``
    ``valid_id``; key = pseudonym of the ID, the key linkage gives their person) and declarations that failed
    only their ID's checksum (still in quarantine) that person linkage joined to at least one other mention
    of a person (``linked_checksum_failed``): name, phone and house corroborated per the person spec.

    ``current`` is each ID's current declaration (:class:`Prepared` ``declarations``): an ID is one person
    key, so a person's latest loaded declaration is their ID's current one, and only the persons a linked
    declaration names choose again between it and theirs (a broadcast of those persons when there are up to
    :data:`ADDRESS_BROADCAST_MAX_ROWS`; before, every declaration was ordered again per person). The loaded
    and the linked declarations are each read more than once: ``materialise`` (the runner's Keeper) computes
    each once.
    Columns: person_key, declaration_id, house_code, relation, declaration_basis, id_number, name, phone, ev_date."""
    cols = ["person_key", "declaration_id", "house_code", "relation", "declaration_basis", "id_number", "name",
            "phone", "declared_at", "ev_date"]
    order = [F.col("declared_at").desc(), F.col("declaration_id").desc()]
    valid = (current.withColumn("person_key", pseudonym("id_number", key))
             .withColumn("declaration_basis", F.lit(BASIS_VALID)).select(*cols))
    if failed is None:
        return valid.drop("declared_at")
    keep = materialise or (lambda df: df)
    valid = keep(valid)  # read twice below: the pseudonyms computed once (10.0-12.6 s against 11.5-17.4 s, district)
    pr = (person_resolution.where((F.col("source") == "declarations") & (F.col("id_status") == "checksum_failed")
                                  & (F.col("cluster_size") > 1))
          .select(F.col("record_id").alias("declaration_id"), F.col("person_key").alias("__pk")))
    linked = keep(
        _declaration_view(failed, house_resolution, houses, run_date).join(pr, "declaration_id")
        .withColumn("person_key", F.col("__pk")).withColumn("declaration_basis", F.lit(BASIS_LINKED))
        .withColumn("id_number", F.lit(None).cast("string")).select(*cols))
    persons = linked.select("person_key").distinct()
    if persons.count() <= ADDRESS_BROADCAST_MAX_ROWS:
        persons = F.broadcast(persons)
    contested = valid.join(persons, "person_key", "left_semi").unionByName(linked)
    return (valid.join(persons, "person_key", "left_anti").unionByName(_latest(contested, "person_key", order))
            .drop("declared_at"))


def enforcement_persons(silver: dict[str, DataFrame], person_resolution: DataFrame) -> DataFrame:
    """The persons of enforcement records as linkage resolved them: source, record_id, person_key,
    identified (the person has a valid ID in some mention), id_number (this mention's valid ID, else null)."""
    from jobs.silver.columns import normalize_id

    ids = []
    for source, id_col in (("police_incidents", "incident_id"), ("mediation_cases", "case_id"),
                           ("family_planning", "record_id")):
        df = silver.get(source)
        if df is None or "persons" not in df.columns:
            continue
        ids.append(df.select(F.lit(source).alias("source"), F.col(id_col).alias("record_id"),
                             F.posexplode("persons").alias("mention_no", "__p"))
                   .select("source", "record_id", F.col("mention_no").cast("int").alias("mention_no"),
                           normalize_id(F.col("__p.id_text")).alias("id_number"))
                   .dropDuplicates(["source", "record_id", "mention_no"]))
    pr = person_resolution.where(F.col("source") != "declarations").select(
        "source", "record_id", F.col("mention_no").cast("int").alias("mention_no"), "person_key", "identified")
    if ids:
        pr = pr.join(reduce(DataFrame.unionByName, ids), ["source", "record_id", "mention_no"], "left")
    else:
        pr = pr.withColumn("id_number", F.lit(None).cast("string"))
    return pr.drop("mention_no")


#: text components of an address shown on an R6 case only when the registry knows the name
PLACE_COMPONENTS = ("street", "community", "road", "complex", "village", "lane")
#: numbered components, shown when they are short numbers (never free text), with their marker
NUMBER_COMPONENTS = (("door_no", "号"), ("lane_no", "号"), ("building", "栋"), ("unit", "单元"), ("room", "室"))


def known_places(housing: DataFrame) -> DataFrame:
    """``component, name``: every street, community, road, complex, village and lane name in the registry."""
    if "addr" not in housing.columns:
        return housing.sparkSession.createDataFrame([], "component string, name string")
    parts = [housing.select(F.lit(c).alias("component"), F.col(f"addr.{c}").alias("name")) for c in PLACE_COMPONENTS]
    parts += [housing.select(F.lit(c).alias("component"), F.col(c).alias("name")) for c in ("street", "community")]
    return reduce(DataFrame.unionByName, parts).where(F.col("name").isNotNull()).distinct()


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
                 ("grid_id", "string"), ("severity", "string"), ("address", "string"), ("record_count", "int"),
                 ("candidates", CANDIDATES_TYPE)):
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
            .withColumn("corroborating_sources", F.size(F.array_distinct(F.filter(
                F.transform("evidence", lambda e: e["source"]), lambda s: s != ADDRESS_CASE))))
            .withColumn("match_confidence", F.round(F.coalesce(F.col("match_confidence"), F.lit(1.0)).cast("double"), 6))
            .select(*DETECTION_COLUMNS))


def _declared_houses(p: Prepared) -> DataFrame:
    return p.declarations.where(F.col("house_code").isNotNull())


def _persons_declared_houses(p: Prepared) -> DataFrame:
    """Current declarations per person with a house (R1, R2): with person linkage a declaration that failed
    only its ID checksum but was linked to its person counts (:func:`person_declarations`)."""
    if p.person_declarations is None:
        return _declared_houses(p)
    return p.person_declarations.where(F.col("house_code").isNotNull())


def rule_r1(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R1: active rental + enforcement in the window + no current declaration at the house."""
    rc = rules["R1"]
    start = F.date_sub(F.lit(run_date), rc.window_days)
    active = p.rentals.where("active AND house_code IS NOT NULL")
    enf = p.enforcement.where(F.col("house_code").isNotNull() & (F.col("ev_date") > start))
    declared = _persons_declared_houses(p).select("house_code").distinct()
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
    tenants = _persons_declared_houses(p).where(F.col("relation") == "tenant").select("house_code").distinct()
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
    """R5: a person named in an enforcement record at house H whose current declaration is not at H.

    With person linkage (``p.enforcement_persons``) persons are compared by ``person_key``: a party named
    without an ID (or with a mistyped one) is the person linkage tied it to, and only identified persons
    (a valid ID in some mention) raise R5; a current declaration that failed only its ID checksum but was
    linked counts (reason ``DECLARATION_LINKED_CHECKSUM_FAILED`` when it is elsewhere)."""
    if p.enforcement_persons is not None and p.person_declarations is not None:
        return _rule_r5_persons(p, rules, run_date, key)
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


def _rule_r5_persons(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    rc = rules["R5"]
    start = F.date_sub(F.lit(run_date), rc.window_days)
    enf = (p.enforcement.where(F.col("house_code").isNotNull() & (F.col("ev_date") > start))
           .select("house_code", "source", "record_id", "ev_date", "res_score"))
    persons = p.enforcement_persons.where(F.col("identified")).select(
        "source", "record_id", "person_key", F.col("id_number").alias("mention_id"))
    enf = enf.join(persons, ["source", "record_id"])
    cur = p.person_declarations.select("person_key", F.col("house_code").alias("decl_house"), "name", "phone",
                                       F.col("id_number").alias("decl_id"), "declaration_basis")
    j = enf.join(cur, "person_key", "left").where(F.col("decl_house").isNull() | (F.col("decl_house") != F.col("house_code")))
    agg = j.groupBy("house_code", "person_key").agg(
        F.collect_list(_evidence("source", "record_id")).alias("evidence"),
        F.max("ev_date").alias("last_evidence_date"), F.avg("res_score").alias("match_confidence"),
        F.first(F.coalesce("mention_id", "decl_id"), ignorenulls=True).alias("id_number"),
        F.first("name", ignorenulls=True).alias("name"), F.first("phone", ignorenulls=True).alias("phone"),
        F.max(F.col("decl_house").isNotNull()).alias("declared_elsewhere"),
        F.max(F.col("declaration_basis") == BASIS_LINKED).alias("linked_basis"),
    )
    out = (agg.withColumn("masked_id", mask_id("id_number")).withColumn("masked_name", mask_name("name"))
           .withColumn("masked_phone", mask_phone("phone"))
           .withColumn("reason_codes", F.filter(F.array(
               F.lit("PERSON_IN_ENFORCEMENT"),
               F.when(F.col("declared_elsewhere"), F.lit("DECLARED_ELSEWHERE")).otherwise(F.lit("NOT_DECLARED")),
               F.when(F.col("declared_elsewhere") & F.coalesce("linked_basis", F.lit(False)),
                      F.lit("DECLARATION_LINKED_CHECKSUM_FAILED"))), lambda x: x.isNotNull()))
           .drop("id_number", "name", "phone", "declared_elsewhere", "linked_basis"))
    return _finish(out, rules, "R5", key, p.houses)


def _route(df: DataFrame, p: Prepared) -> DataFrame:
    """Grid of an unresolved record: the resolution's grid, else the grid most of its best candidates lie in
    (those in the text's community when it names one), else the first grid of the parsed community."""
    cg = p.community_grid.select(F.col("community").alias("__c"), F.col("street").alias("__s"), F.col("grid_id").alias("__g"))
    comm = F.coalesce("res_community", "addr_community")
    df = df.withColumn("__comm", comm).withColumn("__rk", F.concat_ws(":", "source", "record_id"))  # one row per record
    if "res_candidates" in df.columns:
        h = p.houses.select(F.col("house_code").alias("__hc"), F.col("grid_id").alias("__cg"),
                            F.col("community").alias("__cc"), F.col("street").alias("__cs"))
        c = (df.select("__rk", "__comm", F.posexplode("res_candidates").alias("__pos", "__cand"))
             .join(h, F.col("__cand.house_code") == h["__hc"])
             .where(F.col("__comm").isNull() | (F.col("__cc") == F.col("__comm")))
             .groupBy("__rk", "__cg", "__cs", "__cc").agg(F.count(F.lit(1)).alias("__n"), F.min("__pos").alias("__p")))
        w = Window.partitionBy("__rk").orderBy(F.desc("__n"), F.asc("__p"), F.asc("__cg"))
        best = (c.withColumn("__r", F.row_number().over(w)).where("__r = 1")
                .select("__rk", "__cg", "__cs", "__cc"))
        df = df.join(best, "__rk", "left")
    else:
        df = (df.withColumn("__cg", F.lit(None).cast("string")).withColumn("__cs", F.lit(None).cast("string"))
              .withColumn("__cc", F.lit(None).cast("string")))
    df = df.join(cg, df["__comm"] == cg["__c"], "left")
    from_cand = F.col("res_grid").isNull() & F.col("__cg").isNotNull()
    return (df.withColumn("grid_id", F.coalesce("res_grid", "__cg", "__g"))
            .withColumn("community", F.when(from_cand, F.col("__cc")).otherwise(F.col("__comm")))
            .withColumn("street", F.when(from_cand, F.col("__cs")).otherwise(F.col("__s")))
            .drop("__c", "__s", "__g", "__comm", "__rk", "__cg", "__cs", "__cc"))


def case_subject(address_norm: Column, grid_id: Column) -> Column:
    """The subject of an R6 address case: normalised address + grid (hashed into its discrepancy id)."""
    return F.concat(F.lit("address|"), F.coalesce(address_norm, F.lit("")), F.lit("|"), F.coalesce(grid_id, F.lit("")))


def unresolved_records(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """The records R6 is about, one row each: enforcement records in R6's window and declarations (without
    a delivered code) whose address did not resolve, routed to a grid (:func:`_route`), with ``subject`` and
    ``case_id`` (the discrepancy id of their address case)."""
    rc = rules["R6"]
    start = F.date_sub(F.lit(run_date), rc.window_days)
    cols = ["source", "record_id", "ev_date", "res_grid", "res_community", "addr_community", "res_candidates",
            "address_norm", "addr"]
    enf = p.enforcement.where(F.col("house_code").isNull() & (F.col("ev_date") > start)).select(*cols)
    if p.declaration_addresses is None:
        raise ValueError("unresolved_records: the declarations' addresses are missing (prepare() builds them)")
    decl = (p.all_declarations.where(F.col("house_code").isNull() & F.col("delivered_code").isNull())
            .join(p.declaration_addresses, list(ROW_ID), "left"))
    decl = (decl.withColumn("source", F.lit("declarations")).withColumn("record_id", F.col("declaration_id"))
            .select(*cols))
    rec = _route(enf.unionByName(decl), p)
    subject = case_subject(F.col("address_norm"), F.col("grid_id"))
    return (rec.withColumn("subject", subject)
            .withColumn("case_id", discrepancy_id(F.lit(rc.code), F.col("subject"), None, key)))


def _display_address(p: Prepared, cases: DataFrame) -> Column:
    """The case's address from its parsed components: registry-known place names and short numbers only."""
    parts = []
    for comp in PLACE_COMPONENTS:
        parts.append(F.when(F.col(f"__known_{comp}"), F.col(f"addr.{comp}")))
        if comp == "road":
            parts.append(F.when(F.col("addr.door_no").rlike("^[0-9]{1,5}$"), F.concat(F.col("addr.door_no"), F.lit("号"))))
        if comp == "lane":
            parts.append(F.when(F.col("addr.lane_no").rlike("^[0-9]{1,5}$"), F.concat(F.col("addr.lane_no"), F.lit("号"))))
    for comp, marker in NUMBER_COMPONENTS[2:]:
        parts.append(F.when(F.col(f"addr.{comp}").rlike("^[0-9A-Za-z]{1,6}$"), F.concat(F.col(f"addr.{comp}"), F.lit(marker))))
    return F.nullif(F.concat_ws("", *parts), F.lit(""))


def rule_r6(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes,
            records: DataFrame | None = None) -> DataFrame:
    """R6: one address case per distinct normalised unresolved address and grid (see conf/rules.yaml).

    Evidence: every record with that address; ``record_count``; ``candidates``: the best candidate houses
    of its records ranked by how many records and departments have them among their best, with why each
    was not chosen (``matching.engine.top_candidates``)."""
    rc = rules["R6"]
    rec = records if records is not None else unresolved_records(p, rules, run_date, key)
    cases = rec.groupBy("subject").agg(
        F.collect_list(_evidence("source", "record_id")).alias("evidence"),
        F.max("ev_date").alias("last_evidence_date"),
        F.count(F.lit(1)).cast("int").alias("record_count"),
        F.first("grid_id", ignorenulls=True).alias("grid_id"),
        F.first("street", ignorenulls=True).alias("street"),
        F.first("community", ignorenulls=True).alias("community"),
        F.first("addr", ignorenulls=True).alias("addr"),
    )
    # the display address: only place names the registry knows
    if p.places is not None:
        for comp in PLACE_COMPONENTS:
            known = p.places.where(F.col("component") == comp).select(F.col("name").alias(f"__n_{comp}")).distinct()
            cases = (cases.join(known, F.col(f"addr.{comp}") == F.col(f"__n_{comp}"), "left")
                     .withColumn(f"__known_{comp}", F.col(f"__n_{comp}").isNotNull()).drop(f"__n_{comp}"))
    else:
        for comp in PLACE_COMPONENTS:
            cases = cases.withColumn(f"__known_{comp}", F.lit(False))
    cases = cases.withColumn("address", _display_address(p, cases)).drop(*[f"__known_{c}" for c in PLACE_COMPONENTS], "addr")
    # candidates: by records, then departments, then weight
    cand = (rec.select("subject", "source", "record_id", F.posexplode("res_candidates").alias("pos", "c"))
            .groupBy("subject", F.col("c.house_code").alias("house_code"))
            .agg(F.countDistinct("source", "record_id").cast("int").alias("records"),
                 F.countDistinct("source").cast("int").alias("departments"),
                 F.max("c.weight").alias("weight"), F.min_by("c.why", "pos").alias("why")))
    w = Window.partitionBy("subject").orderBy(F.desc("records"), F.desc("departments"), F.desc("weight"), F.asc("house_code"))
    h = p.houses.select(F.col("house_code").alias("__hc"), F.col("address").alias("__addr"), F.col("grid_id").alias("__grid"))
    cand = (cand.withColumn("rk", F.row_number().over(w)).where(F.col("rk") <= rc.candidates_top_k)
            .join(h, F.col("house_code") == h["__hc"], "left"))
    cand = cand.groupBy("subject").agg(F.transform(F.array_sort(F.collect_list(F.struct(
        "rk", "house_code", F.col("__addr").alias("address"), F.col("__grid").alias("grid_id"), "records", "departments",
        F.round("weight", 4).alias("weight"), "why"))), lambda c: c.dropFields("rk")).alias("candidates"))
    out = (cases.join(cand, "subject", "left")
           .withColumn("candidates", F.col("candidates").cast(CANDIDATES_TYPE))
           .withColumn("reason_codes", F.array(F.lit("ADDRESS_UNRESOLVED")))
           .withColumn("house_code", F.lit(None).cast("string"))
           .withColumn("match_confidence", F.lit(1.0)))
    return _finish(out, rules, "R6", key)


_ID_DATE = r"^[0-9]{6}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9X]$"


def looks_like_id_number(col: Column) -> Column:
    """True when ``col`` has the shape of a resident ID number: 17 digits with a birth date (19xx/20xx) at
    positions 7-14, then a digit or X. The check digit is not required: a mistyped ID is still personal."""
    return F.coalesce(F.upper(F.trim(col)).rlike(_ID_DATE), F.lit(False))


def valid_house_code(col: Column, fmt: HouseCodeFormat) -> Column:
    """True when ``col`` has the registry's house-code format (and, if configured, does not look like an ID number)."""
    ok = F.coalesce(F.upper(F.trim(col)).rlike(fmt.pattern), F.lit(False))
    return ok & ~looks_like_id_number(col) if fmt.reject_id_numbers else ok


def shown_house_code(col: Column, fmt: HouseCodeFormat) -> Column:
    """A delivered code as it may be shown: verbatim when :func:`valid_house_code`, else masked (never verbatim)."""
    return F.when(col.isNull(), None).when(valid_house_code(col, fmt), col).otherwise(mask_id(col))


def rule_r7(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes) -> DataFrame:
    """R7: a current declaration or active rental whose delivered house_code is unknown or demolished.

    A registry code (demolished house) is shown as it is; an unknown code only when it has the house-code
    format (``house_code_format``), otherwise masked with ``HOUSE_CODE_INVALID_FORMAT``."""
    fmt = rules.house_code_format
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
    bad_format = F.col("__hc").isNull() & ~valid_house_code(F.col("delivered_code"), fmt)
    out = (rec.withColumn("street", F.coalesce("__st", "street")).withColumn("community", F.coalesce("__cm", "community"))
           .withColumn("grid_id", F.coalesce("__gr", "grid_id"))
           .withColumn("house_code", F.when(F.col("__hc").isNotNull(), F.col("__hc"))
                       .otherwise(shown_house_code(F.col("delivered_code"), fmt)))
           .withColumn("subject", F.concat_ws(":", "source", "record_id"))
           .withColumn("evidence", F.array(_evidence("source", "record_id")))
           .withColumn("reason_codes", F.filter(F.array(
               F.when(F.col("__hc").isNull(), F.lit("HOUSE_CODE_UNKNOWN")).otherwise(F.lit("HOUSE_DEMOLISHED")),
               F.when(bad_format, F.lit("HOUSE_CODE_INVALID_FORMAT"))), lambda x: x.isNotNull()))
           .withColumn("last_evidence_date", F.col("ev_date")).withColumn("match_confidence", F.lit(1.0))
           .drop("delivered_code"))
    return _finish(out, rules, "R7", key)


# --- waiting for an address case -------------------------------------------------------------
def waiting_records(p: Prepared, records: DataFrame) -> DataFrame:
    """Unresolved records that would clear a rule at one of their best candidate houses:
    ``rule, house_code, id_number (R5: the person's ID number, else null), source, record_id, case_id``.

    R1: any current declaration; R2: a current tenant declaration; R5: the person's own current declaration;
    R3: an active rental. ``records`` is :func:`unresolved_records` (for the address case's id)."""
    ids = records.select(F.col("source").alias("__s"), F.col("record_id").alias("__r"), "case_id")
    decl = (p.declarations.where(F.col("house_code").isNull() & F.col("res_candidates").isNotNull())
            .select(F.lit("declarations").alias("source"), F.col("declaration_id").alias("record_id"), "id_number",
                    "relation", F.explode("res_candidates.house_code").alias("house_code")))
    rent = (p.rentals.where(F.col("active") & F.col("house_code").isNull() & F.col("res_candidates").isNotNull())
            .select(F.lit("rentals").alias("source"), F.col("rental_id").alias("record_id"),
                    F.lit(None).cast("string").alias("id_number"), F.lit(None).cast("string").alias("relation"),
                    F.explode("res_candidates.house_code").alias("house_code")))
    parts = [
        decl.withColumn("rule", F.lit("R1")).withColumn("id_number", F.lit(None).cast("string")),
        decl.where(F.col("relation") == "tenant").withColumn("rule", F.lit("R2")).withColumn("id_number", F.lit(None).cast("string")),
        decl.withColumn("rule", F.lit("R5")),
        rent.withColumn("rule", F.lit("R3")),
    ]
    w = reduce(DataFrame.unionByName, parts).where(F.col("house_code").isNotNull()).drop("relation")
    w = w.join(ids, (w["source"] == ids["__s"]) & (w["record_id"] == ids["__r"]), "left").drop("__s", "__r")
    return w


def apply_waiting(df: DataFrame, waits: DataFrame, rule_id: str, key: bytes) -> DataFrame:
    """Mark the discrepancies of ``rule_id`` that wait for an address case: reason ``WAITING_ADDRESS_CASE``,
    the unresolved records and their address case (source ``address_case``) added to the evidence."""
    w = waits.where(F.col("rule") == rule_id)
    on = ["house_code"]
    if rule_id == "R5":
        w = w.withColumn("person_key", pseudonym("id_number", key))
        on = ["house_code", "person_key"]
    entries = F.array(_evidence("source", "record_id"),
                      F.when(F.col("case_id").isNotNull(), _evidence(F.lit(ADDRESS_CASE), "case_id")))
    w = (w.groupBy(*on).agg(F.flatten(F.collect_list(entries)).alias("__wait_ev"))
         .withColumn("__wait_ev", F.filter("__wait_ev", lambda e: e.isNotNull())))
    out = df.join(w, on, "left")
    waiting = F.col("__wait_ev").isNotNull()
    return (out.withColumn("reason_codes", F.when(waiting, F.array_sort(F.array_union("reason_codes", F.array(F.lit(WAITING)))))
                           .otherwise(F.col("reason_codes")))
            .withColumn("evidence", F.when(waiting, F.array_sort(F.array_distinct(F.concat("evidence", "__wait_ev"))))
                        .otherwise(F.col("evidence")))
            .select(*DETECTION_COLUMNS))


#: rules that wait for an address case when an unresolved record could clear them
WAITING_RULES = ("R1", "R2", "R3", "R5")
RULES = {"R1": rule_r1, "R2": rule_r2, "R3": rule_r3, "R4": rule_r4, "R5": rule_r5, "R6": rule_r6, "R7": rule_r7}


def detect(p: Prepared, rules: RulesConfig, run_date: dt.date, key: bytes, only: list[str] | None = None,
           materialise: Callable[[DataFrame], DataFrame] | None = None) -> DataFrame:
    """All discrepancies whose condition holds on ``run_date`` (one row per discrepancy_id); R1, R2, R3 and R5
    at a house an unresolved record may belong to carry ``WAITING_ADDRESS_CASE`` (:func:`apply_waiting`).

    ``materialise`` (the runner's :class:`gridlake.frames.Keeper`) is applied to the unresolved records, the
    waiting records and each rule's output, so that each is computed once by a query of its own: without it
    the records' plan is repeated in five rules' branches and the night is one plan of several hundred
    stages, which adaptive execution re-plans after each stage (fixed cost that does not scale with rows)."""
    done = materialise or (lambda df: df)
    records = done(unresolved_records(p, rules, run_date, key))
    waits = done(waiting_records(p, records))
    frames = []
    for r in only or list(RULES):
        if r == "R6":
            frames.append(done(rule_r6(p, rules, run_date, key, records)))
            continue
        df = RULES[r](p, rules, run_date, key)
        frames.append(done(apply_waiting(df, waits, r, key) if r in WAITING_RULES else df))
    return reduce(DataFrame.unionByName, frames).dropDuplicates(["discrepancy_id"])
