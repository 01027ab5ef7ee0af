"""Gold table schemas written by ``jobs.gold.runner`` (DESIGN.md sections 3, 4 and 6).

Gold holds no raw ID number, name or phone: persons appear only as the keyed
pseudonym ``person_key`` (HMAC-SHA256, :mod:`gridlake.privacy`) and, for rule R5,
masked display values (``4403**********1234``, ``张*明``, ``138****5678``).

Tables and keys:

- ``gold.discrepancies``  key ``discrepancy_id``; one row per discrepancy ever raised, with its lifecycle.
- ``gold.house_profile``  key ``house_code``; the registry's houses as of the last night (``as_of``).
- ``gold.followups``      key ``(run_date, discrepancy_id)``; tonight's list per officer, one slice per night.
- ``gold.person_resolution`` key ``(source, record_id, mention_no)``; every person mention -> person_key.
- ``gold.grid_metrics``   key ``(run_date, level, street, community, grid_id)``; one slice per night;
                          ``level`` is ``grid`` | ``community`` | ``street`` | ``district`` (coarser levels
                          leave the finer key columns null).
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

S, D, I, L, B, F = StringType(), DateType(), IntegerType(), LongType(), BooleanType(), DoubleType()  # noqa: E741


def _s(*fields: tuple[str, object, bool]) -> StructType:
    return StructType([StructField(n, t, nullable) for n, t, nullable in fields])  # type: ignore[arg-type]


#: One record that raised a discrepancy. ``category`` is the department label shown to officers:
#: 公安 / 调解 / 安全生产 / 计生 (schemas.vocab.ENFORCEMENT_SOURCES), 租赁登记 (rentals),
#: 自主申报 (declarations) or 房屋登记 (housing).
EVIDENCE = _s(("source", S, True), ("record_id", S, True), ("category", S, True))

#: One lifecycle step; ``by`` is ``system`` (raised, escalated, lapsed, reopened) or the verifying officer id.
STATUS_CHANGE = _s(("date", D, True), ("status", S, True), ("by", S, True))

#: One candidate house of an R6 address case: why it was not chosen (``conflict:<components>``,
#: ``low_weight``, ``ambiguous``, ``outranked``: matching.engine.top_candidates), how many of the case's
#: records and departments have it among their best candidates; ``address`` is the registry's standard address.
CANDIDATE_HOUSE = _s(("house_code", S, True), ("address", S, True), ("grid_id", S, True), ("records", I, True),
                     ("departments", I, True), ("weight", F, True), ("why", S, True))

#: Discrepancy status values.
STATUSES = ("open", "escalated", "confirmed", "resolved", "refuted")
ACTIVE_STATUSES = ("open", "escalated")

DISCREPANCIES = _s(
    ("discrepancy_id", S, False),        # first 16 hex of HMAC-SHA256(key, "<rule_code>|<house or source:record>|<person_key>")
    ("rule", S, False),                  # R1 .. R7
    ("rule_code", S, False),             # e.g. enforcement_undeclared_rental
    ("severity", S, False),              # critical | high | medium | low
    ("house_code", S, True),             # null for R6 (and R7 with an unknown code it is the delivered code)
    ("source", S, True),                 # R6/R7: the source table of the record the discrepancy is about
    ("record_id", S, True),              # R6/R7: its record id
    ("street", S, True),
    ("community", S, True),
    ("grid_id", S, True),                # the grid whose officer gets it
    ("person_key", S, True),             # R5: pseudonym of the person's validated ID number
    ("masked_id", S, True),              # R5 only: 4403**********1234
    ("masked_name", S, True),            # R5 only: 张*明
    ("masked_phone", S, True),           # R5 only: 138****5678
    ("evidence", ArrayType(EVIDENCE, True), False),
    ("reason_codes", ArrayType(S, True), False),
    ("corroborating_sources", I, False),  # distinct sources among the evidence
    ("match_confidence", F, False),      # in [0, 1]
    ("priority", F, False),              # severity x corroboration x recency x confidence (x 1.5 escalated)
    ("detected", B, False),              # the rule's condition held on last_evaluated
    ("first_seen", D, False),            # first night raised
    ("last_seen", D, False),             # last night the condition held
    ("last_evaluated", D, False),        # last night the rules ran (same for every row of one night)
    ("last_evidence_date", D, True),     # date of the newest evidence record
    ("due_date", D, False),              # (re)opened + due_days
    ("status", S, False),                # open | escalated | confirmed | resolved | refuted
    ("status_since", D, False),
    ("status_history", ArrayType(STATUS_CHANGE, True), False),
    ("verified_at", D, True),            # date of the latest verification applied
    ("verification_outcome", S, True),   # its outcome code (schemas.vocab.VERIFICATION_OUTCOME)
    ("address", S, True),                # R6: the unresolved address rebuilt from its parsed components only
    ("record_count", I, True),           # R6: records pointing at the address (the evidence)
    ("candidates", ArrayType(CANDIDATE_HOUSE, True), True),  # R6: best candidate houses, best first
)

HOUSE_PROFILE = _s(
    ("house_code", S, False),
    ("street", S, True),
    ("community", S, True),
    ("grid_id", S, True),
    ("address", S, True),                # the registry's standard address (not personal)
    ("usage", S, True),
    ("legal_status", S, True),
    ("house_status", S, True),           # in_use | demolished
    ("area_m2", F, True),
    ("capacity", I, True),               # floor(area / area_per_person_m2), at least 1
    ("rental_status", S, False),         # active | ended | none
    ("active_rentals", I, False),
    ("rental_tenants_declared", I, True),  # tenants_declared of the active rental(s)
    ("declared_occupants", I, False),    # persons currently declared at the house
    ("declared_tenants", I, False),      # of whom relation tenant
    ("enforcement_police", I, False),    # enforcement records resolved to the house, dated in the window before as_of
    ("enforcement_mediation", I, False),
    ("enforcement_safety", I, False),
    ("enforcement_family_planning", I, False),
    ("enforcement_total", I, False),     # the four together
    ("open_discrepancies", I, False),
    ("last_activity", D, True),          # newest declaration, rental or enforcement date at the house
    ("as_of", D, False),
)

FOLLOWUPS = _s(
    ("run_date", D, False),
    ("street", S, True),
    ("community", S, True),
    ("grid_id", S, False),
    ("officer_id", S, True),             # null when the grid has no current officer
    ("rank", I, False),                  # 1 = visit first, per officer (per grid when no officer)
    ("discrepancy_id", S, False),
    ("rule", S, False),
    ("rule_title", S, False),            # Chinese title from conf/rules.yaml
    ("house_code", S, True),
    ("address", S, True),                # standard address of the house (never a person's)
    ("priority", F, False),
    ("reason_codes", ArrayType(S, True), False),
    ("evidence_categories", ArrayType(S, True), False),  # 公安/调解/安全生产/计生/租赁登记/自主申报 only
    ("masked_id", S, True),
    ("masked_name", S, True),
    ("masked_phone", S, True),
    ("is_new", B, False),                # not on any earlier night's list
    ("due_date", D, False),
    ("status", S, False),                # open | escalated
    ("record_count", I, True),           # R6: records pointing at the address
    ("candidates", ArrayType(CANDIDATE_HOUSE, True), True),  # R6: best candidate houses, best first
)

RULE_CODES = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")

GRID_METRICS = _s(
    ("run_date", D, False),
    ("level", S, False),                 # grid | community | street | district
    ("street", S, True),
    ("community", S, True),
    ("grid_id", S, True),
    ("houses", L, False),                # in-use houses in the registry
    ("rented_houses", L, False),
    ("rented_houses_declared", L, False),  # rented houses with at least one current declaration
    ("declaration_coverage", F, True),   # rented_houses_declared / rented_houses (null when none rented)
    *[(f"open_{r.lower()}", L, False) for r in RULE_CODES],  # open or escalated, per rule
    ("open_total", L, False),
    ("escalated", L, False),
    ("confirmed", L, False),
    ("resolved", L, False),
    ("refuted", L, False),
    ("resolution_rate", F, True),        # (confirmed + resolved + refuted) / all discrepancies raised
    ("confirmation_rate", F, True),      # confirmed / verified by officers
    ("records", L, False),               # source records routed to the area by gold.house_resolution
    ("records_resolved", L, False),
    ("match_rate", F, True),             # records_resolved / records
    ("mean_match_score", F, True),       # of resolved records
)

#: gold.person_resolution (written by the matching stage, like gold.house_resolution; key ``(source, record_id,
#: mention_no)``): one row per person mention -> ``person_key`` (HMAC pseudonym: of the smallest valid ID of
#: the person, else of its smallest mention key), ``method`` (id_exact | corroborated | sole_bearer | anchor | singleton),
#: ``score`` (the weight in bits of the link that joined it; null for anchor and singleton), ``explanation``
#: (the other mention's key, the comparison levels, the weight: no personal value), ``id_status`` of the
#: mention's ID (valid | checksum_failed | invalid | missing), ``identified`` (the person has a valid ID in
#: some mention) and ``cluster_size`` (mentions of the person).
PERSON_RESOLUTION = _s(
    ("source", S, False), ("record_id", S, False), ("mention_no", I, False), ("role", S, True),
    ("person_key", S, False), ("method", S, False), ("score", F, True), ("explanation", S, True),
    ("id_status", S, False), ("identified", B, False), ("cluster_size", I, False),
)

GOLD_SCHEMAS: dict[str, StructType] = {
    "discrepancies": DISCREPANCIES,
    "house_profile": HOUSE_PROFILE,
    "followups": FOLLOWUPS,
    "grid_metrics": GRID_METRICS,
}

#: gold._person_link_model (matching stage; internal, like gold._house_resolution_state): the person linkage's
#: saved model for a spec and the code that decides it (``fingerprint``), and the versions of
#: gold.person_resolution and gold._person_link_state it was saved with (an incremental night trusts the state
#: only while both are still at those versions).
PERSON_LINK_MODEL = _s(
    ("spec", S, False), ("fingerprint", S, False), ("model", S, False),
    ("resolution_version", L, False), ("state_version", L, False),
)


def person_link_state(blocks: int) -> StructType:
    """gold._person_link_state (internal): one row per person mention of the last linkage (``record_key``), a
    keyed hash of its prepared values (``input_hash``) and of its key under each blocking rule (``block_<i>``,
    0 when a part is missing), and the smallest record key of its link-graph component and of its person
    after the scored links (:mod:`matching.person_incremental`). No name, phone or ID."""
    return _s(("record_key", S, False), ("input_hash", L, False), *[(f"block_{i}", L, False) for i in range(blocks)],
              ("component", S, False), ("cluster", S, False))
