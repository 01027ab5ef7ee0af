"""Issue 21 in the pipeline: a declaration quarantined only for a mistyped ID digit counts for R1/R2/R5 once
person linkage ties it to its person (name + phone + house); a namesake without corroboration does not.

Real Spark: the silver declarations transform quarantines the mistyped ID, ``checksum_failed`` reads it
back from the quarantine row, ``jobs.matching.persons`` builds the mentions and links them (pandas engine,
EM on a small community of background declarants), and the rules run on the result.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from pyspark.sql import functions as F

from gridlake.ids import check_digit
from gridlake.privacy import pseudonym_py
from jobs.gold.rules import BASIS_LINKED, detect, prepare
from jobs.matching.person_publish import spark_frame, to_spark_frame
from jobs.matching.persons import mentions, resolution_frame
from jobs.silver.columns import person_list
from jobs.silver.common import split
from jobs.silver.declarations import checksum_failed
from jobs.silver.declarations import transform as declarations_transform
from schemas.gold import PERSON_RESOLUTION
from schemas.silver import DECLARATIONS
from tests.integration.test_gold_rules import (
    KEY,
    RULES,
    addr,
    house,
    hr_df,
    police,
    rental,
    silver_df,
)

pytestmark = pytest.mark.spark

D = dt.date(2026, 3, 31)


def _id(first17: str) -> str:
    return first17 + check_digit(first17)


TENANT_ID = _id("44030419900101123")                   # the tenant at H1 (fictitious)
TENANT_TYPO = TENANT_ID[:15] + str((int(TENANT_ID[15]) + 4) % 10) + TENANT_ID[16:]   # one digit mistyped
WANG_ID = _id("44030419850202124")                     # 王芳 declared at H3
WANG2_TYPO = _id("44030419920303125")[:-1] + ("0" if _id("44030419920303125")[-1] != "0" else "1")


def _bronze_declarations(spark, rows: list[dict]):
    """Delivered declaration rows as bronze holds them (strings + lineage), for the real silver transform."""
    cols = ["declaration_id", "id_number", "name", "phone", "house_code", "address", "relation", "move_in_date",
            "household_size", "channel", "declared_at"]
    data = [tuple([r.get(c, "") for c in cols] + [None, None, "f.csv", "0" * 64, i + 1, "t", dt.date(2026, 3, 1)])
            for i, r in enumerate(rows)]
    schema = ", ".join(f"{c} string" for c in cols) + (", _malformed_reason string, _raw_line string, "
                                                       "_source_file string, _file_sha256 string, _row_number long, "
                                                       "_run_id string, _delivery_date date")
    return spark.createDataFrame(data, schema)


def _background(n: int = 400) -> list[dict]:
    """Other declarants of the community (own name, phone, house, ID): what EM learns u from."""
    sur, giv = "赵钱孙周吴郑冯褚卫蒋沈韩", "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉"
    out = []
    for i in range(n):
        name = sur[i % len(sur)] + giv[(i // len(sur)) % len(giv)] + giv[(i // (len(sur) * len(giv))) % len(giv)]
        out.append({"declaration_id": f"BG{i}", "id_number": _id(f"4403061980{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"),
                    "name": name, "phone": f"1590000{i:04d}", "house_code": f"B{i}", "relation": "owner",
                    "declared_at": dt.datetime(2026, 2, 1, 9), "addr": addr()})
    return out


@pytest.fixture(scope="module")
def world(spark):
    """Silver tables, house resolution, the quarantined declarations and the person resolution."""
    delivered = _bronze_declarations(spark, [
        {"declaration_id": "DT", "id_number": TENANT_TYPO, "name": "刘晓东", "phone": "13900001111",
         "house_code": "H1", "address": "上沙村东村二坊12号602", "relation": "租户", "declared_at": "2026-02-10 09:00:00",
         "channel": "微信"},
        # 王芳 at H2 with a mistyped ID and her own phone: only a namesake (王芳 at H3, another phone) shares
        # her name: nothing corroborates a person
        {"declaration_id": "DW", "id_number": WANG2_TYPO, "name": "王芳", "phone": "13700002222",
         "house_code": "H2", "address": "上沙村东村二坊14号301", "relation": "租户", "declared_at": "2026-02-11 09:00:00",
         "channel": "微信"},
    ])
    good, quarantine = split(declarations_transform(delivered), DECLARATIONS, "declarations")
    assert good.count() == 0 and {r.reason_code for r in quarantine.collect()} == {"ID_CHECKSUM"}
    failed = checksum_failed(quarantine)
    declarations = silver_df(spark, "declarations", [
        *_background(),
        {"declaration_id": "DW3", "id_number": WANG_ID, "name": "王芳", "phone": "13600003333", "house_code": "H3",
         "relation": "owner", "declared_at": dt.datetime(2026, 2, 1, 9), "addr": addr()},
    ])
    people = spark.createDataFrame(
        [("P1", "刘晓东", "139 0000 1111", TENANT_ID), ("P2", "陈某某", "", "")],
        "incident_id string, names string, phones string, ids string")
    police_df = silver_df(spark, "police_incidents", [police("P1"), police("P2")])
    people = people.select("incident_id", person_list(F.col("names"), F.col("phones"), F.col("ids")).alias("persons"))
    police_df = police_df.drop("persons").join(people, "incident_id").select(*police_df.columns)
    silver = {
        "housing": silver_df(spark, "housing", [house("H1"), house("H2"), house("H3")]),
        "rentals": silver_df(spark, "rentals", [rental("RT1", "H1"), rental("RT2", "H2")]),
        "declarations": declarations,
        "police_incidents": police_df,
        "mediation_cases": silver_df(spark, "mediation_cases", []),
        "safety_inspections": silver_df(spark, "safety_inspections", []),
        "family_planning": silver_df(spark, "family_planning", []),
    }
    hr = hr_df(spark, [("declarations", "DT", "H1", 1.0, "G1", "c"), ("declarations", "DW", "H2", 1.0, "G1", "c"),
                       ("declarations", "DW3", "H3", 1.0, "G1", "c"), ("police_incidents", "P1", "H1", 1.0, "G1", "c"),
                       ("police_incidents", "P2", "H2", 1.0, "G1", "c")])
    pdf = mentions(declarations, failed, {"police_incidents": police_df}, hr).toPandas()
    frame, stats = resolution_frame(pdf, KEY)
    persons = spark.createDataFrame(frame.astype(object).where(frame.notna(), None).to_dict("records"),
                                    PERSON_RESOLUTION).localCheckpoint()
    return silver, hr, failed, persons, frame, stats


def test_mistyped_id_declaration_counts_once_linked_and_a_namesake_does_not(world):
    silver, hr, failed, persons, frame, stats = world
    by_key = frame.set_index(frame["source"] + ":" + frame["record_id"] + "#" + frame["mention_no"].astype(str))
    # the mistyped declaration joined the tenant named (with a valid ID) by the police: one identified person
    tenant = by_key.loc["declarations:DT#0"]
    assert tenant.id_status == "checksum_failed" and tenant.identified
    assert tenant.person_key == by_key.loc["police_incidents:P1#0"].person_key == pseudonym_py(KEY, TENANT_ID)
    linked = by_key.loc[[k for k in ("declarations:DT#0", "police_incidents:P1#0")]]
    explained = linked[linked["method"] == "corroborated"]
    assert len(explained) == 1 and "name=exact" in explained.iloc[0].explanation
    assert "phone=exact" in explained.iloc[0].explanation and "house=exact" in explained.iloc[0].explanation
    for text in frame["explanation"].dropna():     # no personal value in an explanation
        assert "刘晓东" not in text and "13900001111" not in text and TENANT_ID not in text
    # 王芳 with a mistyped ID: a namesake of the declarant at H3 but nothing else agrees: alone
    wang = by_key.loc["declarations:DW#0"]
    assert wang.method == "singleton" and wang.person_key != by_key.loc["declarations:DW3#0"].person_key
    assert stats["checksum_failed_declarations"] == 2 and stats["checksum_failed_linked"] == 1

    before = prepare(silver, hr, RULES, D)
    after = prepare(silver, hr, RULES, D, person_resolution=persons, failed_declarations=failed, key=KEY)
    raised_before = {(r.rule, r.house_code) for r in detect(before, RULES, D, KEY, only=["R1", "R2"]).collect()}
    raised_after = {(r.rule, r.house_code) for r in detect(after, RULES, D, KEY, only=["R1", "R2"]).collect()}
    # without linkage the quarantined declaration never counted: H1 looked undeclared
    assert {("R1", "H1"), ("R2", "H1")} <= raised_before
    # linked, it counts: no R1/R2 at H1; the namesake at H2 did not suppress its cases
    assert ("R1", "H1") not in raised_after and ("R2", "H1") not in raised_after
    assert {("R1", "H2"), ("R2", "H2")} <= raised_after
    basis = {r.declaration_id: r.declaration_basis for r in after.person_declarations.collect()}
    assert basis["DT"] == BASIS_LINKED and "DW" not in basis and basis["DW3"] == "valid_id"


@pytest.mark.parametrize("declared_at, current", [(dt.datetime(2026, 2, 1, 9), "DT"), (dt.datetime(2026, 3, 1, 9), "DV")])
def test_a_persons_current_declaration_is_the_latest_of_theirs_loaded_or_linked(world, spark, declared_at, current):
    """person_declarations starts from each ID's current declaration and orders again only the persons a linked
    declaration names: the same rows as every declaration ordered per person (what it computed before)."""
    silver, hr, failed, persons, _, _ = world
    # the tenant also declared with the valid ID, at H3: before (the linked DT of 2026-02-10 is current) or after
    valid = silver_df(spark, "declarations", [
        {"declaration_id": "DV", "id_number": TENANT_ID, "name": "刘晓东", "phone": "13900001111", "house_code": "H3",
         "relation": "tenant", "declared_at": declared_at, "addr": addr()},
        {"declaration_id": "DV0", "id_number": TENANT_ID, "name": "刘晓东", "phone": "13900001111", "house_code": "H2",
         "relation": "tenant", "declared_at": dt.datetime(2026, 1, 5, 9), "addr": addr()}])
    silver = {**silver, "declarations": silver["declarations"].unionByName(valid)}
    p = prepare(silver, hr, RULES, D, person_resolution=persons, failed_declarations=failed, key=KEY)
    got = {r.person_key: (r.declaration_id, r.declaration_basis) for r in p.person_declarations.collect()}
    assert got[pseudonym_py(KEY, TENANT_ID)] == (current, BASIS_LINKED if current == "DT" else "valid_id")
    # the reference: every loaded declaration and the linked one, the latest (declared_at, id) per person
    best: dict[str, tuple] = {}
    for r in p.all_declarations.collect():
        k = pseudonym_py(KEY, r.id_number)
        best[k] = max(best.get(k, (r.declared_at, "")), (r.declared_at, r.declaration_id, "valid_id"))
    dt_at = next(r.declared_at for r in failed.collect() if r.declaration_id == "DT")
    k = pseudonym_py(KEY, TENANT_ID)
    best[k] = max(best[k], (dt_at, "DT", BASIS_LINKED))
    assert got == {k: v[1:] for k, v in best.items()}


@pytest.mark.slow  # `make test-all`: CI's 35 minutes (R5 itself is in test_gold_rules.py's CI tests)
def test_r5_compares_person_keys(world):
    silver, hr, failed, persons, _, _ = world
    after = prepare(silver, hr, RULES, D, person_resolution=persons, failed_declarations=failed, key=KEY)
    r5 = detect(after, RULES, D, KEY, only=["R5"]).collect()
    # the tenant named by P1 at H1 declared there (the linked, quarantined declaration): no R5; the party of
    # P2 has no ID and links to nobody: not an identified person, no R5
    assert r5 == []
    # move the tenant's police record to H2: R5 there, declared elsewhere by the linked declaration
    hr2 = hr.withColumn("house_code", F.when(F.col("record_id") == "P1", F.lit("H2")).otherwise(F.col("house_code")))
    moved = prepare(silver, hr2, RULES, D, person_resolution=persons, failed_declarations=failed, key=KEY)
    rows = detect(moved, RULES, D, KEY, only=["R5"]).collect()
    assert [(r.house_code, r.person_key) for r in rows] == [("H2", pseudonym_py(KEY, TENANT_ID))]
    r = rows[0]
    assert "DECLARED_ELSEWHERE" in r.reason_codes and "DECLARATION_LINKED_CHECKSUM_FAILED" in r.reason_codes
    assert r.masked_id == TENANT_ID[:4] + "*" * 10 + TENANT_ID[-4:]
    assert json.dumps([str(x) for x in r]).find(TENANT_ID) < 0


def test_person_list_keeps_positions(spark):
    df = spark.createDataFrame([("张三、李四、王五", "13800001111、、+86 139 0000 2222", f"、{TENANT_ID}")],
                               "n string, p string, i string")
    got = df.select(person_list(F.col("n"), F.col("p"), F.col("i")).alias("x")).collect()[0].x
    assert [(e.name, e.phone, e.id_text) for e in got] == [
        ("张三", "13800001111", None), ("李四", None, TENANT_ID), ("王五", "13900002222", None)]
    empty = spark.createDataFrame([("", None, None)], "n string, p string, i string")
    assert empty.select(person_list(F.col("n"), F.col("p"), F.col("i")).alias("x")).collect()[0].x == []


def test_police_transform_keeps_id_positions_next_to_the_address_parser(spark):
    """Regression: computed in the projection above the address parser (a Python UDF), the list lost a
    leading empty ID and the next person's ID moved to the first person."""
    from jobs.silver.police_incidents import transform as police_transform

    cols = ["incident_id", "reported_at", "address", "incident_type", "person_ids", "person_names", "person_phones"]
    row = ["P9", "2026-03-10 20:00:00", "上沙村东村二坊12号602", "其他", f"、{TENANT_ID}", "石泽、袁梅娜",
           "16677939859、+86 159 8008 5585"]
    schema = ", ".join(f"{c} string" for c in cols) + (", _malformed_reason string, _raw_line string, "
                                                       "_source_file string, _file_sha256 string, _row_number long, "
                                                       "_run_id string, _delivery_date date")
    bronze = spark.createDataFrame([(*row, None, None, "f.csv", "0" * 64, 1, "t", dt.date(2026, 3, 11))], schema)
    got = police_transform(bronze).select("persons", "address_norm").collect()[0]
    assert got.address_norm
    assert [(e.name, e.phone, e.id_text) for e in got.persons] == [
        ("石泽", "16677939859", None), ("袁梅娜", "15980085585", TENANT_ID)]


def test_person_resolution_goes_to_spark_in_few_partitions(spark):
    """Arrow makes a partition of every 10,000 rows it sends; the frame is coalesced to the configured
    parallelism (the audit's and the write's jobs then run that many tasks, and the table gets that many files)."""
    import pandas as pd

    n = 25_000
    frame = pd.DataFrame({
        "source": "declarations", "record_id": [f"D{i}" for i in range(n)], "mention_no": 0, "role": "declarant",
        "person_key": [f"{i:064x}" for i in range(n)], "method": "singleton", "score": 0.0, "explanation": None,
        "id_status": "valid", "identified": True, "cluster_size": 1})
    as_sent = spark.createDataFrame(to_spark_frame(frame), PERSON_RESOLUTION)
    assert as_sent.rdd.getNumPartitions() >= 2  # the premise: several partitions as sent
    df = spark_frame(spark, frame, 1)
    assert df.rdd.getNumPartitions() == 1
    assert df.schema == PERSON_RESOLUTION
    assert df.count() == n and df.agg(F.countDistinct("record_id")).first()[0] == n
    assert spark_frame(spark, frame.iloc[:0], 1).count() == 0


def test_lake_mentions_read_without_spark_are_the_spark_mentions(world, spark, settings):
    """The mentions the stage reads (silver and gold.house_resolution through ``io.read_columns``, joined in
    pandas) are :func:`mentions`' rows, value for value and type for type: declarations, the quarantined ones,
    the parties of police records (a valid ID, none) and an empty mediation table."""
    from gridlake import io
    from jobs.matching.persons import MENTION_COLUMNS, lake_mention_frame

    silver, hr, failed, *_ = world
    names = ("declarations", "police_incidents", "mediation_cases")
    for name in names:
        io.write_table(silver[name], settings, "silver", name, "overwrite")
    io.write_table(hr, settings, "gold", "house_resolution", "overwrite")
    tables = {n: io.read_table(spark, settings, "silver", n) for n in names}
    got = lake_mention_frame(spark, settings, tables, failed)
    want = mentions(tables["declarations"], failed, {n: tables[n] for n in names[1:]},
                    io.read_table(spark, settings, "gold", "house_resolution")).toPandas()
    assert list(got.columns) == MENTION_COLUMNS and len(got) == len(want) == 405
    assert set(got["id_status"]) == {"valid", "checksum_failed", "missing"}
    assert got["house_code"].notna().sum() == 5
    got, want = (f.sort_values("record_key").reset_index(drop=True) for f in (got, want))
    assert got["mention_no"].dtype == want["mention_no"].dtype
    pd.testing.assert_frame_equal(got, want)


def test_the_stage_links_incrementally_and_equals_a_full_linkage(world, spark, settings):
    """``persons.run`` on a lake: the first night links in full and saves the model and the state; a rerun
    links nothing again and commits nothing; a night that removes a police record and changes a phone links
    incrementally, and the table equals a full linkage of the same mentions with the saved model."""
    from gridlake import io
    from gridlake.context import RunContext
    from gridlake.manifest import Manifest
    from gridlake.privacy import load_key
    from jobs.matching import person_state, persons
    from matching.person_incremental import link_persons, state_hash_key
    from matching.scoring import FSModel
    from matching.spec import load_spec

    silver, hr, failed, *_ = world
    names = ("declarations", "police_incidents", "mediation_cases")
    for name in names:
        io.write_table(silver[name], settings, "silver", name, "overwrite")
    io.write_table(hr, settings, "gold", "house_resolution", "overwrite")

    def night(run_id: str, beside: bool = False) -> dict:
        ctx = RunContext(settings, spark, dt.date(2026, 11, 2), run_id, Manifest.open(settings, run_id, dt.date(2026, 11, 2)))
        tables = {n: io.read_table(spark, settings, "silver", n) for n in names}
        return persons.run(ctx, tables, failed, beside=beside)

    tables_of = [("gold", "person_resolution"), ("gold", person_state.STATE_TABLE), ("gold", person_state.MODEL_TABLE)]
    # the first night's state hashed in a forked child: the next nights, hashing here, find exactly what changed
    first = night("test__persons_1", beside=True)
    assert first["linkage"]["state_hashed_beside"] is True
    assert first["linkage"]["mode"] == "full" and first["linkage"]["reason"] == "no saved model"
    assert first["published"]["published"] == "whole"                    # no table yet: audited whole, written
    written_by_spark = io.read_table(spark, settings, "gold", "person_resolution").schema
    versions = io.table_versions(spark, settings, tables_of)
    assert min(versions.values()) >= 0
    again = night("test__persons_2")
    assert again["linkage"]["mode"] == "incremental" and again["linkage"]["relinked"] == 0
    assert again["published"] == {"published": "unchanged", "changed_rows": 0, "deleted_rows": 0}
    assert io.table_versions(spark, settings, tables_of) == versions       # a rerun commits nothing

    police = io.read_table(spark, settings, "silver", "police_incidents")
    first_id = sorted(r[0] for r in police.select("incident_id").collect())[0]
    police = police.where(F.col("incident_id") != first_id).localCheckpoint()
    io.write_table(police, settings, "silver", "police_incidents", "overwrite")
    third = night("test__persons_3")
    assert third["linkage"]["mode"] == "incremental" and third["linkage"]["gone"] >= 1
    assert 0 < third["linkage"]["relinked"] < third["linkage"]["mentions"]
    # only the changes audited and merged, the removed record's mentions deleted; the audit counted the table
    published = third["published"]
    assert published["published"] == "changes" and published["deleted_rows"] == third["linkage"]["gone"]
    assert 0 < published["changed_rows"] < third["mentions"] // 5
    quality = json.loads((settings.quality / "2026-11-02" / "gold.person_resolution.json").read_text("utf-8"))
    assert quality["meta"]["gridlake"]["rows"] == third["mentions"]
    assert quality["meta"]["gridlake"]["changed_rows"] == published["changed_rows"]
    assert io.row_count(spark, settings, "gold", "person_resolution") == third["mentions"]
    # rewritten from the driver: the same schema as Spark wrote, for analysts and for the next whole night
    assert io.read_table(spark, settings, "gold", "person_resolution").schema == written_by_spark
    # the commit's keys recorded (gridlake.changes): exactly the mentions whose row differs between the two
    # versions compared whole, the deleted ones included
    from gridlake import changes

    v = io.table_version(spark, settings, "gold", "person_resolution")
    mention = ["source", "record_id", "mention_no"]
    after, before = (io.read_table(spark, settings, "gold", "person_resolution", version=x)
                     .withColumn("mention_no", F.col("mention_no").cast("string")) for x in (v, v - 1))
    differ = {tuple(r) for r in after.exceptAll(before).unionByName(before.exceptAll(after)).select(*mention)
              .distinct().collect()}
    recorded = changes.keys_changed(settings, "gold", "person_resolution", v - 1, v, mention)
    assert {tuple(r.values()) for r in recorded.to_pylist()} == differ and len(differ) >= published["changed_rows"]

    key, spec = load_key(settings), load_spec("person")
    model = FSModel.from_state(io.read_columns(spark, settings, "gold", person_state.MODEL_TABLE, ["model"])
                               .to_pylist()[0]["model"], spec)
    tables = {n: io.read_table(spark, settings, "silver", n) for n in names}
    pdf = persons.lake_mention_frame(spark, settings, tables, failed)
    full, _ = persons.resolution_frame(pdf, key, lambda raw: link_persons(raw, key, spec, model, None,
                                                                            state_hash_key(key)))
    k = ["source", "record_id", "mention_no"]
    lake = io.read_table(spark, settings, "gold", "person_resolution").toPandas()
    want = to_spark_frame(full).sort_values(k).reset_index(drop=True)
    got = lake[list(want.columns)].sort_values(k).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
