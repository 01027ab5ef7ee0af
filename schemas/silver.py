"""Silver table schemas (typed, standardised) plus bronze metadata and quarantine.

Bronze tables are all strings: the source's canonical columns from
``conf/sources.yaml`` followed by :data:`BRONZE_METADATA`. Silver tables carry
typed columns, the raw address text, its normalised form and parsed components
(:data:`schemas.address.ADDRESS_STRUCT`), and lineage back to bronze
(``_source_file``, ``_file_sha256``, ``_row_number``, ``_run_id``).
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from schemas.address import ADDRESS_STRUCT


def _s(*fields: tuple[str, object, bool]) -> StructType:
    return StructType([StructField(n, t, nullable) for n, t, nullable in fields])  # type: ignore[arg-type]


S, D, TS, I, L, B, F = StringType(), DateType(), TimestampType(), IntegerType(), LongType(), BooleanType(), DoubleType()  # noqa: E741

BRONZE_METADATA = _s(
    ("_extra", MapType(StringType(), StringType()), True),  # unknown extra columns (schema drift)
    ("_raw_line", S, True),          # the raw line, kept for malformed rows
    ("_malformed_reason", S, True),  # null when the row parsed
    ("_source_file", S, False),
    ("_file_sha256", S, False),
    ("_row_number", L, False),
    ("_ingested_at", TS, False),
    ("_run_id", S, False),
    ("_encoding", S, True),
    ("_delivery_date", D, False),
)

LINEAGE = [("_source_file", S, False), ("_file_sha256", S, False), ("_row_number", L, False), ("_run_id", S, False),
           ("_delivery_date", D, False)]

ADDRESS_COLUMNS = [("address_raw", S, True), ("address_norm", S, True), ("addr", ADDRESS_STRUCT, True)]

SCD2 = [("valid_from", D, False), ("valid_to", D, True), ("is_current", B, False), ("row_hash", S, False)]

#: source -> the business key of one record (what evidence, erasure and the rules name a record by)
RECORD_KEYS = {
    "rentals": "rental_id",
    "declarations": "declaration_id",
    "police_incidents": "incident_id",
    "mediation_cases": "case_id",
    "safety_inspections": "inspection_id",
    "family_planning": "record_id",
}


HOUSING = _s(
    ("house_code", S, False), ("street", S, True), ("community", S, True), ("grid_id", S, False),
    *ADDRESS_COLUMNS,
    ("usage", S, True), ("legal_status", S, True), ("area_m2", F, True), ("status", S, False),
    ("updated_at", D, True), *SCD2, *LINEAGE,
)

GRID_OFFICERS = _s(
    ("grid_id", S, False), ("street", S, True), ("community", S, True), ("officer_id", S, False),
    ("officer_name", S, True), ("work_phone", S, True), *SCD2, *LINEAGE,
)

RENTALS = _s(
    ("rental_id", S, False), ("house_code", S, True), *ADDRESS_COLUMNS,
    ("landlord_name", S, True), ("landlord_id", S, True), ("landlord_phone", S, True),
    ("lease_start", D, False), ("lease_end", D, True), ("tenants_declared", I, True),
    ("status", S, False), ("registered_at", TS, True), *LINEAGE,
)

DECLARATIONS = _s(
    ("declaration_id", S, False), ("id_number", S, False), ("id_legacy15", B, False), ("name", S, True),
    ("phone", S, True), ("house_code", S, True), *ADDRESS_COLUMNS, ("relation", S, True),
    ("move_in_date", D, True), ("household_size", I, True), ("channel", S, True),
    ("declared_at", TS, False), *LINEAGE,
)

#: the persons a record names, by position (silver only: person linkage reads it, gold never does)
PERSON = StructType([StructField("name", StringType(), True), StructField("phone", StringType(), True),
                     StructField("id_text", StringType(), True)])
PERSONS = ArrayType(PERSON, True)

POLICE_INCIDENTS = _s(
    ("incident_id", S, False), ("reported_at", TS, False), *ADDRESS_COLUMNS, ("incident_type", S, True),
    ("person_ids", S, True),  # validated 18-digit IDs joined by ';' (invalid ones dropped and counted)
    ("invalid_person_ids", I, False), ("persons", PERSONS, True), *LINEAGE,
)

MEDIATION_CASES = _s(
    ("case_id", S, False), ("opened_at", D, False), *ADDRESS_COLUMNS, ("dispute_type", S, True),
    ("parties", S, True), ("party_ids", S, True), ("invalid_person_ids", I, False), ("persons", PERSONS, True),
    *LINEAGE,
)

SAFETY_INSPECTIONS = _s(
    ("inspection_id", S, False), ("inspected_at", D, False), *ADDRESS_COLUMNS, ("finding", S, True),
    ("severity", S, True), *LINEAGE,
)

FAMILY_PLANNING = _s(
    ("record_id", S, False), ("record_date", D, False), *ADDRESS_COLUMNS, ("person_id", S, True),
    ("invalid_person_ids", I, False), ("matter", S, True), ("persons", PERSONS, True), *LINEAGE,
)

VERIFICATIONS = _s(
    ("verification_id", S, False), ("discrepancy_id", S, False), ("checked_at", TS, False),
    ("outcome", S, False), ("officer_id", S, True), ("note", S, True),
    ("new_house_code", S, True), ("grid_id", S, True),  # the return form's 核查后房屋编码 and 网格编号
    *LINEAGE,
)

SILVER_SCHEMAS: dict[str, StructType] = {
    "housing": HOUSING,
    "grid_officers": GRID_OFFICERS,
    "rentals": RENTALS,
    "declarations": DECLARATIONS,
    "police_incidents": POLICE_INCIDENTS,
    "mediation_cases": MEDIATION_CASES,
    "safety_inspections": SAFETY_INSPECTIONS,
    "family_planning": FAMILY_PLANNING,
    "verifications": VERIFICATIONS,
}

#: Silver tables that record Delta's change data feed: a later stage reads which keys a night's commits touched
#: instead of comparing two versions whole (matching: the houses the registry changed since its last linkage;
#: :func:`gridlake.io.changed_keys`). Housing holds no person, so its change files hold none either.
CHANGE_FEED_TABLES = frozenset({"housing"})

#: ``silver._checksum_failed``: the declarations quarantined only for their ID's checksum, typed as silver types a
#: declaration (``id_number`` null, the ID as delivered in ``id_text``; jobs.silver.declarations). Silver writes
#: it beside the quarantine so that person linkage and the rules read typed rows instead of parsing each one's
#: raw line and address again every night; retention deletes a row when it strips its quarantine row's raw line.
CHECKSUM_FAILED_TABLE = "_checksum_failed"
CHECKSUM_FAILED = StructType([StructField(f.name, f.dataType, f.nullable or f.name == "id_number")
                              for f in DECLARATIONS.fields] + [StructField("id_text", S, True)])

QUARANTINE = _s(
    ("source", S, False), ("reason_code", S, False), ("reason_detail", S, True),
    ("business_key", S, True), ("_raw_line", S, True), *LINEAGE, ("_quarantined_at", TS, False),
)

INGESTION_LOG = _s(
    ("file_sha256", S, False), ("source", S, False), ("path", S, False), ("delivery_date", D, False),
    ("status", S, False),  # loaded | rejected | empty | header_only | ignored | waiting (duplicates are not logged)
    ("error", S, True), ("bronze_rows", L, False), ("extra_columns", S, True),
    ("run_id", S, False), ("ingested_at", TS, False),
    ("detected_format", S, True),  # csv | xlsx, from the content (not the name)
    ("header_row", I, True),  # 1-based row of the header (title rows above it skipped)
    ("header_map", S, True),  # JSON {"<header as seen>": "<canonical column or null>"}
    ("note", S, True),  # how the file differs in form: "xlsx delivered with a .csv name", "found in sub-folder x"
)

# What silver saw of a file's values, for the delivery report: per file, column and kind, the form
# of each date (``YYYY年M月D日``), unknown vocabulary values (capped, digit runs masked), number forms,
# rows with invalid IDs in a list - with counts. Never a personal value.
VALUE_PROFILE = _s(
    ("run_id", S, False), ("delivery_date", D, False), ("source", S, False), ("file_sha256", S, False),
    ("column", S, False), ("kind", S, False), ("value", S, True), ("rows", L, False),
)

CONSERVATION = _s(
    ("run_id", S, False), ("run_date", D, False), ("source", S, False), ("file_sha256", S, False),
    ("path", S, False), ("bronze_rows", L, False), ("silver_rows", L, False), ("quarantine_rows", L, False),
    ("duplicate_rows", L, False), ("balanced", B, False),
)
