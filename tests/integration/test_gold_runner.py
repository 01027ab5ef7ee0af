"""The gold stage end to end on a tiny inline lake: tables written, rerun commits nothing, no raw personal data."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from gridlake import io
from gridlake.context import RunContext
from gridlake.manifest import Manifest
from schemas.gold import GOLD_SCHEMAS
from tests.integration.test_frames import stored_rdds
from tests.integration.test_gold_rules import PID1, PID2, PID3, decl, house, police, rental, safety, silver_df

D = dt.date(2026, 3, 31)
NAMES = ["张三明", "李四", "王五六"]
PHONE = "13812345678"


def _lake(spark, settings):
    tables = {
        "housing": [house("H1"), house("H2"), house("H3", area=10.0), house("H9", status="demolished")],
        "grid_officers": [{"grid_id": "G1", "street": "沙头街道", "community": "上沙社区", "officer_id": "OFF1",
                           "officer_name": "赵六", "work_phone": "13900000000"}],
        "rentals": [rental("RT1", "H1"), rental("RT2", "H9")],
        "declarations": [decl("D1", PID1, "H3", name=NAMES[0], relation="tenant"),
                         decl("D2", PID2, "H3", name=NAMES[1], relation="owner"),
                         decl("D3", PID3, None, name=NAMES[2], community="上沙社区")],
        "police_incidents": [police("P1", persons=f"{PID1};{PID3}")],
        "mediation_cases": [], "safety_inspections": [safety("S1")], "family_planning": [], "verifications": [],
    }
    for name, rows in tables.items():
        io.write_table(silver_df(spark, name, rows), settings, "silver", name, "overwrite")
    hr = spark.createDataFrame(
        [("police_incidents", "P1", "H1", 0.9, "exact", "e", "G1", "上沙社区"),
         ("safety_inspections", "S1", "H1", 1.0, "exact", "e", "G1", "上沙社区"),
         ("declarations", "D1", "H3", 1.0, "exact", "e", "G1", "上沙社区"),
         ("declarations", "D2", "H3", 1.0, "exact", "e", "G1", "上沙社区"),
         ("declarations", "D3", None, 0.0, "unresolved", "e", None, "上沙社区"),
         ("rentals", "RT1", "H1", 1.0, "scanned_code_verified", "e", "G1", "上沙社区")],
        "source string, record_id string, house_code string, score double, method string, explanation string, "
        "grid_id string, community string")
    io.write_table(hr, settings, "gold", "house_resolution", "overwrite")


@pytest.mark.slow  # the end-to-end test runs the same stage on a generated district in the default suite
def test_gold_stage_tiny_run(spark, settings, monkeypatch):
    from jobs.gold import runner

    _lake(spark, settings)
    audited: list[str] = []
    monkeypatch.setattr(runner, "_audit", lambda ctx, table, df: audited.append(table))
    ctx = RunContext(settings, spark, D, "test", Manifest.open(settings, "test", D))
    stats = runner.run(ctx)
    assert audited == ["discrepancies", "house_profile", "followups", "grid_metrics"]
    assert stats["detected_by_rule"] == {"R1": 1, "R2": 2, "R3": 1, "R4": 1, "R5": 2, "R6": 1, "R7": 1}
    assert stats["followups"] == 9 and stats["followup_officers"] == 1

    versions = {t: io.table_version(spark, settings, "gold", t) for t in GOLD_SCHEMAS}
    runner.run(ctx)  # the same night again: nothing new committed
    assert {t: io.table_version(spark, settings, "gold", t) for t in GOLD_SCHEMAS} == versions

    raw = {PID1, PID2, PID3, PHONE, *NAMES, "赵六", "13900000000"}
    for table, schema in GOLD_SCHEMAS.items():
        df = io.read_table(spark, settings, "gold", table)
        assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == \
               [(f.name, f.dataType.simpleString()) for f in schema.fields]
        flat = [r[0] for r in df.select(F.to_json(F.struct(*df.columns))).collect()]  # every string, nested too
        assert flat, table
        for row in flat:
            for value in raw:
                assert value not in row, f"raw personal data in gold.{table}"

    r5 = io.read_table(spark, settings, "gold", "discrepancies").where("rule = 'R5'").collect()
    assert {r.masked_id for r in r5} == {"4403**********1237", "1101**********1234"}
    assert all(len(r.person_key) == 64 for r in r5)
    prof = {r.house_code: r for r in io.read_table(spark, settings, "gold", "house_profile").collect()}
    assert prof["H1"].rental_status == "active" and prof["H1"].enforcement_police == 1 and prof["H1"].enforcement_safety == 1
    assert prof["H3"].declared_occupants == 2 and prof["H3"].declared_tenants == 1
    m = {r.level: r for r in io.read_table(spark, settings, "gold", "grid_metrics").collect()}
    assert m["district"].rented_houses == 2 and m["district"].rented_houses_declared == 1  # H1, H3 (H9 demolished)
    assert m["grid"].open_r1 == 1 and m["grid"].open_r2 == 2 and m["grid"].declaration_coverage == 0.5


def _gold_tables(spark, settings) -> dict[str, list[str]]:
    out = {}
    for table in ("discrepancies", "house_profile", "followups", "grid_metrics"):
        df = io.read_table(spark, settings, "gold", table)
        out[table] = sorted(r[0] for r in df.select(F.to_json(F.struct(*sorted(df.columns)))).collect())
    return out


def test_a_large_nights_kept_frames_give_the_same_tables_and_are_all_released(spark, tmp_path, monkeypatch):
    """A district night keeps gold's frames as checkpoints on disk (gridlake.frames.Keeper, cut_lineage false):
    the same four tables as a small night's, and no kept frame's blocks left once the stage is done."""
    from gridlake.config import load_settings
    from gridlake.frames import Keeper, checkpoint_rdd_id
    from jobs.gold import runner

    monkeypatch.setattr(runner, "_audit", lambda ctx, table, df: None)
    kept_rdds: list[int] = []
    modes: list[bool] = []

    class Recording(Keeper):
        def keep(self, df):
            frame = super().keep(df)
            kept_rdds.append(checkpoint_rdd_id(frame))
            modes.append(self.cut_lineage)
            return frame

    monkeypatch.setattr(runner, "Keeper", Recording)
    tables = {}
    for large in (False, True):
        settings = load_settings("local", data_root=tmp_path / ("large" if large else "small"))
        monkeypatch.setattr(runner, "LINEAGE_CUT_MAX_ROWS", -1 if large else 10**9)
        _lake(spark, settings)
        runner.run(RunContext(settings, spark, D, "test", Manifest.open(settings, "test", D)))
        tables[large] = _gold_tables(spark, settings)
    assert set(modes) == {True, False} and None not in kept_rdds and len(kept_rdds) > 10
    assert not set(stored_rdds(spark)) & set(kept_rdds), "a kept frame's blocks outlived the stage"
    assert tables[True] == tables[False]
    assert tables[True]["discrepancies"]
