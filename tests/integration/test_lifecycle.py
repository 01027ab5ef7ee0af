"""The data lifecycle on tiny inline lakes: maintenance, erasure proven by a scan of every file, key rotation.

Real Spark and Delta throughout; the lakes are a handful of rows written as several Delta versions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from gridlake import io
from gridlake.config import load_settings
from gridlake.lifecycle.erase import compact, erase, id_forms
from gridlake.privacy import discrepancy_id_py, pseudonym_py
from schemas.silver import CHECKSUM_FAILED, QUARANTINE
from tests.integration.test_gold_rules import decl, house, silver_df

ERASED = "440304199001011233"    # test IDs with valid check digits (born 1990: a legacy 15-digit form exists)
ERASED_X = "44030419850202103X"
KEPT = "110101200003071001"
KEY = os.environ["GRIDLAKE_PSEUDONYM_KEY"].encode()
BRONZE = ("declaration_id string, id_number string, name string, phone string, _extra map<string,string>, "
          "_raw_line string, _malformed_reason string, _file_sha256 string, _row_number long, _delivery_date date")
DISC = ("discrepancy_id string, rule string, rule_code string, house_code string, source string, record_id string, "
        "person_key string, status string")


def lake_hits(root: Path, needles: set[str]) -> int:
    """Files under ``root`` (every file: data, Delta logs, checkpoints, checksums, records) that contain a needle:
    Parquet decoded (values and footer statistics) and every file's raw bytes as text."""
    hits = 0
    for f in sorted(root.rglob("*")):
        if not f.is_file():
            continue
        texts = [f.read_bytes().decode("utf-8", "ignore")]
        if f.suffix == ".parquet":
            texts.append(json.dumps(pq.read_table(f, partitioning=None).to_pylist(), ensure_ascii=False, default=str))
            md = pq.ParquetFile(f).metadata
            for rg in range(md.num_row_groups):
                for c in range(md.num_columns):
                    st = md.row_group(rg).column(c).statistics
                    if st is not None and st.has_min_max:
                        texts.append(f"{st.min!r} {st.max!r}")
        hits += int(any(n in compact(t) for t in texts for n in needles))
    return hits


def _figures(name: str, data: dict) -> None:
    """With $GRIDLAKE_LIFECYCLE_FIGURES set, keep the measured figures for docs/reliability.md."""
    out = os.environ.get("GRIDLAKE_LIFECYCLE_FIGURES")
    if out:
        path = Path(out)
        doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        doc[name] = data
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def _manifest(settings, night: str, versions: dict[str, int], started: dt.datetime) -> None:
    runs = Path(settings.runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"test__{night}.json").write_text(json.dumps({
        "run_id": f"test__{night}", "run_date": night, "status": "success", "started_at": started.isoformat(),
        "table_versions": versions}), encoding="utf-8")


# --- erasure -------------------------------------------------------------------------------------------
def _personal_lake(spark, settings) -> None:
    d1, d2 = dt.date(2026, 5, 1), dt.date(2026, 5, 2)
    night1 = [("DC1", ERASED, "张三明", "13812345678", None, None, None, "a" * 64, 1, d1),
              ("DC2", "44030419850202103x", "李四", "13900001111", None, None, None, "a" * 64, 2, d1),
              ("DC3", KEPT, "王五", "13700002222", None, None, None, "a" * 64, 3, d1)]
    night2 = [("DC4", "440304900101123", "张三明", None, None, None, None, "b" * 64, 1, d2),     # legacy 15 digits
              ("DC5", None, None, None, {"备注": "证件 4403 0419 9001 0112 33"}, None, None, "b" * 64, 2, d2),
              (None, None, None, None, None, "DC6,４４０３０４１９９００１０１１２３３,赵六", "FIELD_COUNT", "b" * 64, 3, d2),
              ("DC7", KEPT, "王五", None, None, None, None, "b" * 64, 4, d2)]
    for rows in (night1, night2):
        io.write_table(spark.createDataFrame(rows, BRONZE), settings, "bronze", "declarations", "append",
                       partition_by=["_delivery_date"])
    decls = [dict(decl("DC1", ERASED, "H1"), _file_sha256="a" * 64, _row_number=1),
             dict(decl("DC2", ERASED_X, "H1", name="李四"), _file_sha256="a" * 64, _row_number=2),
             dict(decl("DC3", KEPT, "H3", name="王五"), _file_sha256="a" * 64, _row_number=3)]
    io.write_table(silver_df(spark, "declarations", decls), settings, "silver", "declarations", "overwrite")
    io.write_table(silver_df(spark, "declarations", [dict(decl("DC4", ERASED, "H2"), _file_sha256="b" * 64,
                                                          _row_number=1)]), settings, "silver", "declarations")
    q = [("declarations", "ID_CHECKSUM", "bad check digit", "DC9", "DC9,4403-0419-8502-0210-3X,李四", "f.csv", "c" * 64,
          1, "r", d2, dt.datetime(2026, 5, 2, 3)),
         ("declarations", "DATE_FORMAT", None, "DC8", "DC8,110101200003071001,王五", "f.csv", "c" * 64, 2, "r", d2,
          dt.datetime(2026, 5, 2, 3))]
    io.write_table(spark.createDataFrame(q, QUARANTINE), settings, "silver", "_quarantine", "overwrite")
    pk, pk_kept = pseudonym_py(KEY, ERASED), pseudonym_py(KEY, KEPT)
    disc = [("d1", "R5", "person_not_declared", "H1", None, None, pk, "open"),
            ("d2", "R5", "person_not_declared", "H3", None, None, pk_kept, "confirmed"),
            ("d3", "R1", "enforcement_undeclared_rental", "H2", None, None, None, "open")]
    io.write_table(spark.createDataFrame(disc, DISC), settings, "gold", "discrepancies", "overwrite")
    io.write_table(spark.createDataFrame([(d2, "d1", "OFF1"), (d2, "d3", "OFF1")],
                                         "run_date date, discrepancy_id string, officer_id string"),
                   settings, "gold", "followups", "overwrite")
    io.write_table(spark.createDataFrame([("declarations", "DC1", "H1"), ("declarations", "DC3", "H3")],
                                         "source string, record_id string, house_code string"),
                   settings, "gold", "house_resolution", "overwrite")
    # person linkage's state, written from the driver with deltalake (io.overwrite_arrow): its rows hold record keys
    import pyarrow as pa

    from schemas.gold import person_link_state

    schema = person_link_state(1)
    state = pa.table({"record_key": ["declarations:DC1#0", "declarations:DC3#0"], "input_hash": [11, 13],
                      "block_0": [0, 5], "component": ["declarations:DC1#0", "declarations:DC3#0"],
                      "cluster": ["declarations:DC1#0", "declarations:DC3#0"]})
    io.overwrite_arrow(spark, settings, "gold", "_person_link_state", state, schema)


def test_erasure_leaves_no_trace_in_any_file_of_the_lake(spark, settings):
    from gridlake.lifecycle.asof import register_as_of

    _personal_lake(spark, settings)
    _manifest(settings, "2026-05-02", {"gold.discrepancies": 0, "silver.declarations": 1}, dt.datetime.now(dt.UTC))
    lake_root = Path(settings.lake)
    needles = id_forms(ERASED) | id_forms(ERASED_X)
    pks = {pseudonym_py(KEY, ERASED).upper(), pseudonym_py(KEY, ERASED_X).upper()}
    hits_before = {"id_files": lake_hits(lake_root, needles), "pseudonym_files": lake_hits(lake_root, pks),
                   "files_scanned": sum(1 for f in lake_root.rglob("*") if f.is_file())}
    assert hits_before["id_files"] >= 8  # bronze and silver data files, Delta commit statistics, quarantine
    assert lake_hits(lake_root / "gold", pks) >= 1
    # the keys a commit of silver.declarations wrote (gridlake.changes) name the erased person's records
    import pyarrow as pa

    from gridlake import changes

    assert changes.record(settings, "silver", "declarations", 0, 1, ["declaration_id"],
                          pa.table({"declaration_id": ["DC4"]}))

    record = erase(spark, settings, [ERASED, ERASED_X], reason="PIPL art. 47 request T-1", requested_by="dpo-test")

    hits_after = {"id_files": lake_hits(lake_root, needles), "pseudonym_files": lake_hits(lake_root, pks),
                  "files_scanned": sum(1 for f in lake_root.rglob("*") if f.is_file())}
    _figures("erasure", {"before": hits_before, "after": hits_after, "record": record})
    assert hits_after["id_files"] == 0
    assert hits_after["pseudonym_files"] == 0
    assert changes.changes_dir(settings, "silver", "declarations").exists() is False   # gone with the history
    assert lake_hits(lake_root, id_forms(KEPT)) >= 2  # the others' rows are untouched
    assert record["rows_deleted"] == {"bronze.declarations": 5, "silver.declarations": 3, "silver._quarantine": 1,
                                      "gold.discrepancies": 1, "gold.followups": 1, "gold.house_resolution": 1,
                                      "gold._person_link_state": 1}
    assert record["requested_by"] == "dpo-test" and record["persons"] == 2 and record["reason"].startswith("PIPL")
    saved = json.loads(next((lake_root / "_erasures").glob("*.json")).read_text(encoding="utf-8"))
    assert saved["rows_total"] == 13
    assert [r.record_key for r in io.read_table(spark, settings, "gold", "_person_link_state").collect()] == [
        "declarations:DC3#0"]
    assert io.read_table(spark, settings, "_runs", "erasures").count() == 1
    # what stays is intact and the tables take new writes
    assert sorted(r[0] for r in io.read_table(spark, settings, "bronze", "declarations")
                  .select("declaration_id").collect()) == ["DC3", "DC7"]
    assert [r.status for r in io.read_table(spark, settings, "gold", "discrepancies").orderBy("discrepancy_id")
            .collect()] == ["confirmed", "open"]
    io.write_table(silver_df(spark, "declarations", [dict(decl("DC10", KEPT, "H3"), _row_number=9)]), settings,
                   "silver", "declarations")
    assert io.read_table(spark, settings, "silver", "declarations").count() == 2
    # time travel says plainly that the pre-erasure versions are gone
    tables = {t.table: t for t in register_as_of(spark, settings, dt.date(2026, 5, 2))}
    assert not tables["gold.discrepancies"].available and "vacuumed or erased" in tables["gold.discrepancies"].why


def test_vacuum_removes_the_checksum_files_of_the_files_it_deletes(spark, settings):
    # a lake written by Hadoop's checksummed local file system has a .<file>.crc beside each data file; the raw
    # one (spark.local_checksum_files off) deletes a data file alone, so the lifecycle removes what is left
    from gridlake.lifecycle import delta_ops

    df = spark.createDataFrame([("a", 1)], "k string, v int")
    io.write_table(df, settings, "silver", "crc_check", mode="overwrite")
    root = Path(settings.table_path("silver", "crc_check"))
    io.write_table(spark.createDataFrame([("b", 2)], "k string, v int"), settings, "silver", "crc_check", "overwrite")
    new = {Path(f).name for f in io.read_table(spark, settings, "silver", "crc_check").inputFiles()}
    written = {p.name for p in root.glob("*.parquet")}
    assert new and written - new  # the first version's files, no longer in the table
    for name in written:
        (root / f".{name}.crc").write_bytes(b"crc")
    delta_ops.vacuum_now(spark, settings, "silver", "crc_check")
    assert {p.name for p in root.glob("*.parquet")} == new
    assert {p.name for p in root.glob(".*.crc")} == {f".{n}.crc" for n in new}
    assert sorted(p.name for p in (root / "_delta_log").glob("[0-9]*.crc"))  # Delta's own checksums stay
    assert [tuple(r) for r in io.read_table(spark, settings, "silver", "crc_check").collect()] == [("b", 2)]
    assert delta_ops.remove_orphan_checksums(settings, "silver", "crc_check") == 0


# --- maintenance -------------------------------------------------------------------------------------------
def test_maintenance_applies_retention_cleans_killed_writes_and_keeps_needed_nights(spark, tmp_path):
    from delta.tables import DeltaTable

    from gridlake.lifecycle.asof import register_as_of
    from gridlake.lifecycle.maintain import run_maintenance

    settings = load_settings("local", data_root=tmp_path / "data",
                             env={**os.environ, "GRIDLAKE_RETENTION__OPTIMIZE_MIN_FILES": "3"})
    today = dt.date(2026, 6, 1)
    for day, n in ((dt.date(2024, 12, 1), 2), (dt.date(2026, 5, 30), 1), (dt.date(2026, 5, 31), 1), (today, 1)):
        rows = [(f"R{day}{i}", KEPT, "王五", None, None, None, None, "a" * 64, i, day) for i in range(n)]
        io.write_table(spark.createDataFrame(rows, BRONZE), settings, "bronze", "declarations", "append",
                       partition_by=["_delivery_date"])
    old, recent = dict(valid_to=dt.date(2025, 1, 1), is_current=False), dict(valid_to=dt.date(2026, 5, 1), is_current=False)
    io.write_table(silver_df(spark, "housing", [dict(house("H1"), **old), house("H1"), dict(house("H2"), **recent),
                                                house("H2")]), settings, "silver", "housing", "overwrite")
    q = [("declarations", "ID_CHECKSUM", "detail", "K1", "raw line 1", "f.csv", "c" * 64, 1, "r", dt.date(2026, 1, 1),
          dt.datetime(2026, 1, 1, 3)),
         ("declarations", "ID_CHECKSUM", "detail", "K2", "raw line 2", "f.csv", "c" * 64, 2, "r", dt.date(2026, 5, 30),
          dt.datetime(2026, 5, 30, 3))]
    io.write_table(spark.createDataFrame(q, QUARANTINE), settings, "silver", "_quarantine", "overwrite")
    typed = [{**{f.name: None for f in CHECKSUM_FAILED.fields}, "declaration_id": k, "id_legacy15": False,
              "name": "王五", "id_text": "110101200003071002", "declared_at": at, "_source_file": "f.csv",
              "_file_sha256": "c" * 64, "_row_number": n, "_run_id": "r", "_delivery_date": at.date()}
             for k, n, at in (("K1", 1, dt.datetime(2026, 1, 1, 3)), ("K2", 2, dt.datetime(2026, 5, 30, 3)))]
    # one file holding both rows: the DELETE rewrites it (a file whose rows all go may leave an empty one behind)
    io.write_table(spark.createDataFrame(typed, CHECKSUM_FAILED).coalesce(1), settings, "silver", "_checksum_failed",
                   "overwrite")
    recorded = {}
    for ids in (["d1"], ["d1", "d2"], ["d1", "d2", "d3"]):
        rows = [(i, "R1", "c", "H1", None, None, None, "open") for i in ids]
        recorded[io.write_table(spark.createDataFrame(rows, DISC), settings, "gold", "discrepancies", "overwrite")] = ids
    now = dt.datetime.now(dt.UTC)
    _manifest(settings, "2026-01-01", {"gold.discrepancies": 0}, now - dt.timedelta(days=150))
    _manifest(settings, "2026-05-30", {"gold.discrepancies": 1, "bronze.declarations": 2}, now - dt.timedelta(days=2))
    _manifest(settings, "2026-05-31", {"gold.discrepancies": 2, "bronze.declarations": 3}, now - dt.timedelta(days=1))
    gold_dir = Path(settings.table_path("gold", "discrepancies"))
    data_file = next(gold_dir.glob("part-*.parquet"))
    killed_old = gold_dir / "part-00000-killed-old.snappy.parquet"
    killed_new = gold_dir / "part-00000-killed-new.snappy.parquet"
    shutil.copy(data_file, killed_old)
    shutil.copy(data_file, killed_new)
    forty_days = time.time() - 40 * 86400
    os.utime(killed_old, (forty_days, forty_days))
    staging = settings.data / "_staging" / "manual__2026-05-31" / "declarations"
    staging.mkdir(parents=True)
    (staging / "x.parquet").write_bytes(b"0" * 1000)

    report = run_maintenance(spark, settings, today=today)

    _figures("maintenance", report)
    by = {f"{r['layer']}.{r['table']}": r for r in report["tables"]}
    g = by["gold.discrepancies"]
    # the old killed write is gone; the fresh one (it may be a live write) and any empty file Spark wrote and
    # Delta never recorded stay until they are older than the retention
    assert g["untracked_files_before"] >= 2 and g["untracked_files_after"] == g["untracked_files_before"] - 1
    assert g["data_files_after"] == g["data_files_before"] - 1 and g["data_bytes_after"] < g["data_bytes_before"]
    assert not killed_old.exists() and killed_new.exists()
    assert g["needed_version"] == 1 and g["vacuum_hours"] == 720 and report["all_needed_versions_intact"]
    b = by["bronze.declarations"]
    assert b["deleted"] == 2 and b["optimized"] and b["data_files_before"] >= 4
    assert not g["optimized"]  # two current files: below optimize_min_files
    assert io.read_table(spark, settings, "bronze", "declarations").where("_delivery_date < '2025-01-01'").count() == 0
    assert DeltaTable.forPath(spark, settings.table_path("bronze", "declarations")).detail().first()["numFiles"] == 3
    assert by["silver.housing"]["deleted"] == 1 and by["silver._quarantine"]["stripped"] == 1
    qrows = {r.business_key or "stripped": r for r in io.read_table(spark, settings, "silver", "_quarantine").collect()}
    assert qrows["stripped"]._raw_line is None and qrows["stripped"].reason_code == "ID_CHECKSUM"
    assert qrows["K2"]._raw_line == "raw line 2"
    # the typed copies of quarantined rows go when their raw lines are stripped
    assert by["silver._checksum_failed"]["deleted"] == 1
    assert [r.declaration_id for r in io.read_table(spark, settings, "silver", "_checksum_failed").collect()] == ["K2"]
    assert report["staging"]["dirs"] == 1 and not staging.exists()
    t = report["totals"]
    assert t["untracked_files_after"] < t["untracked_files_before"] and t["data_bytes_before"] > 0
    assert io.read_table(spark, settings, "_runs", "maintenance").count() == len(report["tables"])
    assert Path(settings.reports / "maintenance").glob("*.json")
    # every night of the window is still reproducible, exactly as recorded
    for night, version in (("2026-05-30", 1), ("2026-05-31", 2)):
        tables = {x.table: x for x in register_as_of(spark, settings, dt.date.fromisoformat(night))}
        assert tables["gold.discrepancies"].available and tables["gold.discrepancies"].version == version
        assert sorted(r[0] for r in spark.sql("SELECT discrepancy_id FROM discrepancies").collect()) == recorded[version]
    # Delta's safety check is on: a zero-retention VACUUM (it could delete a write in progress) is refused
    with pytest.raises(Exception, match="RETENTION"):
        DeltaTable.forPath(spark, str(gold_dir)).vacuum(0.0)


# --- key rotation ----------------------------------------------------------------------------------------
def test_key_rotation_keeps_every_discrepancy_id_and_status(spark, settings, monkeypatch):
    from gridlake.errors import PrivacyError
    from gridlake.lifecycle.delta_ops import table_properties
    from gridlake.lifecycle.identity import ALIAS_TABLE, carry_discrepancy_ids
    from gridlake.lifecycle.rotate import rotate
    from gridlake.privacy import load_key

    io.write_table(silver_df(spark, "declarations", [decl("DC1", ERASED, "H1"), decl("DC3", KEPT, "H3")]),
                   settings, "silver", "declarations", "overwrite")
    c5, c1, c6 = "person_not_declared", "enforcement_undeclared_rental", "unresolved_address"
    orphan_pk = pseudonym_py(KEY, ERASED_X)  # a person silver no longer holds
    cases = [("R5", c5, "H1", None, None, ERASED, "confirmed"), ("R5", c5, "H3", None, None, KEPT, "escalated"),
             ("R1", c1, "H2", None, None, None, "open"), ("R6", c6, None, "declarations", "DC9", None, "refuted"),
             ("R5", c5, "H4", None, None, "orphan", "open")]

    def pk(key, pid):
        return orphan_pk if pid == "orphan" else (pseudonym_py(key, pid) if pid else None)

    def subject(h, s, r):
        return h or f"{s}:{r}"

    rows = [(discrepancy_id_py(KEY, code, subject(h, s, r), pk(KEY, pid)), rule, code, h, s, r, pk(KEY, pid), st)
            for rule, code, h, s, r, pid, st in cases]
    io.write_table(spark.createDataFrame(rows, DISC), settings, "gold", "discrepancies", "overwrite")
    io.write_table(spark.createDataFrame([(dt.date(2026, 5, 2), rows[0][0], rows[0][6])],
                                         "run_date date, discrepancy_id string, person_key string"),
                   settings, "gold", "followups", "overwrite")
    before = {r.discrepancy_id: r.status for r in io.read_table(spark, settings, "gold", "discrepancies").collect()}

    current = KEY
    for version, new in ((2, b"rotated-key-two-0123456789abcdef"), (3, b"rotated-key-three-0123456789abcdef")):
        monkeypatch.setenv("GRIDLAKE_PSEUDONYM_KEY_NEXT", new.decode())
        report = rotate(spark, settings)
        _figures(f"rotation_v{version}", report)
        assert report["to_version"] == version and report["tables"]["gold.discrepancies"]["mismatched_ids"] == 0
        with pytest.raises(PrivacyError):  # the retired key fails closed
            load_key(settings)
        monkeypatch.setenv("GRIDLAKE_PSEUDONYM_KEY", new.decode())
        assert load_key(settings) == new
        after = {r.discrepancy_id: r for r in io.read_table(spark, settings, "gold", "discrepancies").collect()}
        assert {i: r.status for i, r in after.items()} == before  # same ids, same statuses
        keys = {r.house_code: r.person_key for r in after.values() if r.rule == "R5"}
        assert keys == {"H1": pseudonym_py(new, ERASED), "H3": pseudonym_py(new, KEPT), "H4": None}
        assert report["tables"]["gold.discrepancies"]["orphaned_pseudonyms"] == (1 if version == 2 else 0)
        old_pks = {pseudonym_py(current, ERASED), pseudonym_py(current, KEPT), orphan_pk}
        for table in ("discrepancies", "followups"):
            assert not {r[0] for r in io.read_table(spark, settings, "gold", table).select("person_key").collect()} & old_pks
            assert table_properties(spark, settings, "gold", table)["gridlake.pseudonymKeyVersion"] == str(version)
        # tonight's rules under the new key produce new detection ids; the aliases carry the old ids
        det = [(discrepancy_id_py(new, code, subject(h, s, r), None if pid == "orphan" else pk(new, pid)), rule)
               for rule, code, h, s, r, pid, _st in cases] + [(discrepancy_id_py(new, c1, "H9"), "R1")]
        carried = carry_discrepancy_ids(spark.createDataFrame(det, "discrepancy_id string, rule string"),
                                        io.read_table(spark, settings, "gold", ALIAS_TABLE))
        got = {r.discrepancy_id for r in carried.collect()}
        assert got == set(before) | {discrepancy_id_py(new, c1, "H9")}  # a new case keeps its own id
        current = new
    assert json.loads((Path(settings.lake) / "_keys" / "registry.json").read_text())["current_version"] == 3
    assert F is not None
