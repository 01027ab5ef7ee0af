"""Landing -> bronze: every row kept, drift and bad files recorded, re-delivery a no-op, corrections load."""

from __future__ import annotations

import shutil

import pytest
from pyspark.sql import functions as F

from gridlake import io
from tests.integration.test_bronze_helpers import run, write_csv, write_xlsx

pytestmark = pytest.mark.spark

DAY, NEXT = "2026-11-01", "2026-11-02"


def _versions(spark, settings, tables):
    return {t: io.table_version(spark, settings, "bronze", t) for t in tables}


@pytest.mark.parametrize("processes", [1, 2])
def test_bronze_night_keeps_every_row_and_records_every_file(spark, settings, monkeypatch, processes):
    """Read in this process (a small night) or, with the size threshold at 0, by two processes side by side
    (jobs.bronze.reading): the same rows, records and log either way."""
    if processes > 1:
        monkeypatch.setenv("GRIDLAKE_INGEST__PARALLEL_MIN_BYTES", "0")
    write_csv(settings, "police_incidents", DAY, [
        {"incident_id": "P1", "reported_at": "2026-11-01 08:00", "address": "上沙村东村二坊12号", "incident_type": "盗窃"},
        {"incident_id": "P2", "reported_at": "2026/11/01", "address": "福华路18号"},
    ])
    # a malformed row (wrong field count) appended by hand to the gb18030 file
    p = settings.landing / "police_incidents" / DAY / "part1.csv"
    p.write_bytes(p.read_bytes() + "P3,只有两列\n".encode("gb18030"))
    write_csv(settings, "declarations", DAY, [{"declaration_id": "D1", "id_number": "x", "address": "a",
                                               "declared_at": "2026-11-01", "天气": "晴"}], extra=["天气"])
    write_csv(settings, "family_planning", DAY, [{"record_id": "F1", "address": "a", "matter": "计生服务"}],
              name="bad.csv", columns=["record_id", "address", "matter"])
    write_csv(settings, "family_planning", DAY, [{"record_id": "F2", "record_date": "2026-11-01", "address": "b"}],
              name="good.csv")
    (settings.landing / "mediation_cases" / DAY).mkdir(parents=True)
    (settings.landing / "mediation_cases" / DAY / "empty.csv").write_bytes(b"")
    write_csv(settings, "mediation_cases", DAY, [], name="header.csv")
    write_xlsx(settings, "safety_inspections", DAY, [
        {"inspection_id": "S1", "inspected_at": "2026-11-01", "address": "福华路18号", "severity": "重大"},
        {"inspection_id": "S2", "inspected_at": "2026-11-01", "address": None, "severity": "一般"},
    ], merge="C2:C3")
    (settings.landing / "housing" / "not-a-date").mkdir(parents=True)
    (settings.landing / "police_incidents" / DAY / "notes.txt").write_text("x", encoding="utf-8")

    manifest = run(spark, settings, DAY, ["bronze"])
    assert manifest.doc["stages"]["bronze"]["read_processes"] == processes

    police = io.read_table(spark, settings, "bronze", "police_incidents").orderBy("_row_number").collect()
    assert [r.incident_id for r in police] == ["P1", "P2", None]
    assert police[0].address == "上沙村东村二坊12号" and police[0]._encoding == "gb18030"
    assert police[2]._malformed_reason.startswith("FIELD_COUNT") and police[2]._raw_line == "P3,只有两列"
    decl = io.read_table(spark, settings, "bronze", "declarations").first()
    assert decl._extra == {"天气": "晴"}
    fp = io.read_table(spark, settings, "bronze", "family_planning").collect()
    assert [r.record_id for r in fp] == ["F2"]  # the rejected file loads nothing, the other file loads
    safety = io.read_table(spark, settings, "bronze", "safety_inspections").orderBy("_row_number").collect()
    assert [r.address for r in safety] == ["福华路18号", "福华路18号"]

    logged = {(r.source, r.path.rsplit("/", 1)[-1]): r
              for r in io.read_table(spark, settings, "bronze", "_ingestion_log").collect()}
    assert logged["family_planning", "bad.csv"].status == "rejected"
    assert "record_date" in logged["family_planning", "bad.csv"].error
    assert logged["mediation_cases", "empty.csv"].status == "empty"
    assert logged["mediation_cases", "header.csv"].status == "header_only"
    assert logged["police_incidents", "part1.csv"].bronze_rows == 3
    assert logged["declarations", "part1.csv"].extra_columns == "天气"
    statuses = {f["path"].rsplit("/", 1)[-1] + ":" + f["source"]: f["status"] for f in manifest.doc["files"]}
    assert statuses["bad.csv:family_planning"] == "rejected"
    assert statuses["empty.csv:mediation_cases"] == "empty"
    kinds = {a["kind"] for a in manifest.doc["landing_anomalies"]}
    assert kinds == {"not_a_date_folder", "not_matching_glob"}
    assert manifest.doc["schema_drift"]["declarations"]

    # The same night again: nothing new, every bronze table at the same version.
    tables = ["police_incidents", "declarations", "family_planning", "safety_inspections", "_ingestion_log"]
    before = _versions(spark, settings, tables)
    again = run(spark, settings, DAY, ["bronze"])
    assert _versions(spark, settings, tables) == before
    assert again.doc["stages"]["bronze"]["files_by_status"] == {"duplicate": 7, "ignored": 1}


def test_redelivery_is_a_noop_and_a_corrected_file_loads(spark, settings):
    path = write_csv(settings, "verifications", DAY, [
        {"verification_id": "V1", "discrepancy_id": "Q1", "checked_at": "2026-11-01", "outcome": "属实"}])
    run(spark, settings, DAY, ["bronze"])
    before = _versions(spark, settings, ["verifications", "_ingestion_log"])
    # the same file delivered again the next day: same hash, nothing loads
    (settings.landing / "verifications" / NEXT).mkdir(parents=True)
    shutil.copy(path, settings.landing / "verifications" / NEXT / path.name)
    m = run(spark, settings, NEXT, ["bronze"])
    assert [f["status"] for f in m.doc["files"]] == ["duplicate"]
    assert _versions(spark, settings, ["verifications", "_ingestion_log"]) == before
    # a corrected file with the same name in the same folder: new content, it loads
    write_csv(settings, "verifications", DAY, [
        {"verification_id": "V1", "discrepancy_id": "Q1", "checked_at": "2026-11-01", "outcome": "空置"}])
    m = run(spark, settings, DAY, ["bronze"])
    assert m.doc["stages"]["bronze"]["files_by_status"] == {"loaded": 1}
    rows = io.read_table(spark, settings, "bronze", "verifications")
    assert sorted(r.outcome for r in rows.collect()) == ["属实", "空置"]
    assert rows.select(F.countDistinct("_file_sha256")).first()[0] == 2


def test_files_appended_but_not_logged_are_logged_without_a_second_append(spark, settings):
    # An interrupted run (killed after the appends, before the ingestion log's commit): its files' rows are in
    # bronze, the log does not know them. The rerun must log them and append nothing.
    write_csv(settings, "verifications", DAY, [
        {"verification_id": "V1", "discrepancy_id": "Q1", "checked_at": "2026-11-01", "outcome": "属实"}])
    write_csv(settings, "police_incidents", DAY, [{"incident_id": "P1", "reported_at": "2026-11-01 08:00",
                                                   "address": "福华路18号"}])
    run(spark, settings, DAY, ["bronze"])
    shutil.rmtree(settings.table_path("bronze", "_ingestion_log"))  # as if its commit never happened
    before = _versions(spark, settings, ["verifications", "police_incidents"])
    m = run(spark, settings, DAY, ["bronze"])
    assert m.doc["stages"]["bronze"]["files_by_status"] == {"loaded": 2}
    assert _versions(spark, settings, ["verifications", "police_incidents"]) == before
    # a file of the next night, whose date no bronze partition holds yet: appended as usual
    write_csv(settings, "verifications", NEXT, [
        {"verification_id": "V2", "discrepancy_id": "Q2", "checked_at": "2026-11-02", "outcome": "空置"}])
    m = run(spark, settings, NEXT, ["bronze"])
    assert m.doc["stages"]["bronze"]["files_by_status"] == {"loaded": 1}
    after = _versions(spark, settings, ["verifications", "police_incidents"])
    assert after == {"verifications": before["verifications"] + 1, "police_incidents": before["police_incidents"]}
    rows = io.read_table(spark, settings, "bronze", "verifications").collect()
    assert sorted(r.verification_id for r in rows) == ["V1", "V2"]  # V1 not appended twice
    logged = io.read_table(spark, settings, "bronze", "_ingestion_log").collect()
    assert sorted(str(r.delivery_date) for r in logged) == [DAY, DAY, NEXT]
