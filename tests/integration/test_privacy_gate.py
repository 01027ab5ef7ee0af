"""The privacy scan as a gate (issue 17): a planted ID number stops publication of gold and of exports.

The ID number is made up here (checksum-valid, test-only). The alert names table/column or file,
kind and count, never the value.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gridlake import io, pipeline
from gridlake.context import RunContext
from gridlake.errors import PrivacyError
from gridlake.ids import check_digit
from gridlake.manifest import Manifest
from gridlake.privacy_gate import check_gold_frame
from jobs.exports.runner import run as run_exports
from jobs.exports.runner import staging_dir
from schemas.gold import FOLLOWUPS

pytestmark = pytest.mark.spark

FIRST17 = "32010619850704" + "351"
FAKE_ID = FIRST17 + check_digit(FIRST17)
D = dt.date(2026, 11, 2)


def ctx_of(spark, settings, run_id="test__privacy_gate") -> RunContext:
    return RunContext(settings, spark, D, run_id, Manifest.open(settings, run_id, D))


def followup(grid, rank, did, address="福田区沙头街道上沙村东村二坊12号602"):
    row = {"run_date": D, "street": "沙头街道", "community": "上沙社区", "grid_id": grid, "officer_id": f"O{grid}",
           "rank": rank, "discrepancy_id": did, "rule": "R7", "rule_title": "房屋编码无法识别",
           "house_code": "440304001002000002", "address": address, "priority": 1.0, "reason_codes": ["recent"],
           "evidence_categories": ["公安"], "masked_id": None, "masked_name": None, "masked_phone": None,
           "is_new": True, "due_date": D + dt.timedelta(7), "status": "open"}
    return tuple(row.get(f.name) for f in FOLLOWUPS.fields)


def alert_text(settings, run_id="test__privacy_gate") -> str:
    return (settings.data / "alerts" / f"{run_id}.json").read_text(encoding="utf-8")


def test_exports_stage_is_gated():
    # the stage the pipeline runs is the write-audit-publish runner exercised below, not the bare writer
    assert pipeline.STAGES["exports"] == "jobs.exports.runner:run"
    assert run_exports.__module__ == "jobs.exports.runner"


def test_planted_id_in_a_gold_frame_stops_publication(spark, settings):
    ctx = ctx_of(spark, settings)
    clean = spark.createDataFrame([("a1", "R7", "440304001002000002")], "discrepancy_id string, rule string, house_code string")
    assert check_gold_frame(ctx, "discrepancies", clean)["passed"]
    leaky = spark.createDataFrame([("a1", "R7", "440304001002000002"), ("a2", "R7", FAKE_ID.lower())],
                                  "discrepancy_id string, rule string, house_code string")
    with pytest.raises(PrivacyError, match=r"1 id_number in gold\.discrepancies\.house_code") as info:
        check_gold_frame(ctx, "discrepancies", leaky)
    assert FAKE_ID not in str(info.value).upper()
    alert = json.loads(alert_text(settings))
    found = alert["failures"][-1]["findings"]
    assert found == [{"where": "gold.discrepancies.house_code", "kind": "id_number", "count": 1}]
    assert FAKE_ID not in alert_text(settings).upper()
    assert ctx.manifest.doc["privacy_gate"]["gold.discrepancies"]["passed"] is False


def test_planted_id_in_an_export_stops_publication_and_clean_exports_publish(spark, settings):
    rows = [followup("G001", 1, "a0b1c2d3e4f50617"), followup("G002", 1, "1e10000000000001")]
    io.write_table(spark.createDataFrame(rows, FOLLOWUPS), settings, "gold", "followups", "overwrite")
    ctx = ctx_of(spark, settings)
    stats = run_exports(ctx)
    final = settings.exports / D.isoformat()
    assert stats["grids"] == 2 and stats["index"] == str(final / "index.json")
    assert sorted(p.name for p in final.rglob("*.xlsx")) == ["G001.xlsx", "G002.xlsx"]
    published = {p: p.read_bytes() for p in final.rglob("*") if p.is_file()}
    assert run_exports(ctx_of(spark, settings))["files_written"] == 0  # a rerun rewrites nothing

    # an ID number typed into a delivered address reaches tonight's list: nothing is published
    rows[1] = followup("G002", 1, "1e10000000000001", address=f"沙头街道 {FAKE_ID} 号")
    io.write_table(spark.createDataFrame(rows, FOLLOWUPS), settings, "gold", "followups", "overwrite")
    with pytest.raises(PrivacyError, match=r"id_number in .*G002\.(csv|xlsx)"):
        run_exports(ctx_of(spark, settings))
    assert {p: p.read_bytes() for p in final.rglob("*") if p.is_file()} == published  # last good files stay
    assert not staging_dir(settings, "test__privacy_gate").exists()  # the staged hit is gone
    alert = json.loads(alert_text(settings))
    kinds = {(f["kind"], f["where"].rsplit("/", 1)[-1]) for f in alert["failures"][-1]["findings"]}
    assert kinds == {("id_number", "G002.csv"), ("id_number", "G002.xlsx")}
    everything = "".join(p.read_text(encoding="utf-8", errors="replace")
                         for p in settings.data.rglob("*") if p.is_file() and "lake" not in p.parts)
    assert FAKE_ID not in everything.upper()


def test_the_frame_scan_finds_a_value_in_any_column_type_and_counts_it_per_column(spark, monkeypatch):
    """The first pass reads chunks of joined rows; a hit in a string, an array, a struct or a map column
    is found however the rows fall into chunks, and the counts come per column; a clean frame passes."""
    from gridlake import privacy_gate
    from gridlake.privacy_scan import KnownPII

    monkeypatch.setattr(privacy_gate, "CHUNK_ROWS", 3)   # several chunks per partition
    monkeypatch.setattr(privacy_gate, "CHUNK_VALUES", 4)
    known = KnownPII(phones={"13912345678"}, names={"王小明", "李四"})
    schema = "id string, note string, tags array<string>, person struct<role: string, code: string>, m map<string,string>, n int"
    rows = [(f"r{i}", "上门核查", ["空置"], ("tenant", f"C{i}"), {"k": "v"}, i) for i in range(20)]
    clean = spark.createDataFrame(rows, schema).repartition(4)
    assert privacy_gate.scan_frame(clean, known, "gold.t") == []
    rows[4] = ("r4", "电话13912345678", ["空置"], ("tenant", "C4"), {"k": "v"}, 4)
    rows[11] = ("r11", "上门核查", ["王小明", "李四"], ("tenant", "C11"), {"k": "v"}, 11)
    rows[17] = ("r17", "上门核查", ["空置"], ("tenant", FAKE_ID), {"k": "v"}, 17)
    rows[19] = ("r19", "上门核查", ["空置"], ("tenant", "C19"), {"who": "李四"}, 19)
    found = privacy_gate.scan_frame(spark.createDataFrame(rows, schema).repartition(4), known, "gold.t")
    assert [(f.path, f.kind, f.count) for f in found] == [
        ("gold.t.m", "name", 1), ("gold.t.note", "phone", 1), ("gold.t.person", "id_number", 1),
        ("gold.t.tags", "name", 2)]


def test_the_first_pass_reads_each_distinct_value_once_and_a_repeated_hit_is_counted_everywhere(spark, monkeypatch):
    """The first pass scans the frame's distinct text values (a value repeated by many rows, once); a hit in
    a repeated value is still found, and the count per column is of every row holding it."""
    from gridlake import privacy_gate
    from gridlake.privacy_scan import KnownPII

    scanned: list[str] = []
    real = privacy_gate.scan_text

    def spy(text, *args):
        scanned.append(text)
        return real(text, *args)

    monkeypatch.setattr(privacy_gate, "scan_text", spy)
    known = KnownPII(phones={"13912345678"}, names={"王小明"})
    schema = "id string, note string, community string, n int"
    rows = [(f"r{i}", "上门核查：无异常", "上沙社区", i) for i in range(400)]
    assert privacy_gate.scan_frame(spark.createDataFrame(rows, schema).repartition(4), known, "gold.t") == []
    values = "\n".join(scanned).split("\n")
    assert sorted(values) == sorted([f"r{i}" for i in range(400)] + ["上门核查：无异常", "上沙社区"])

    scanned.clear()
    rows = [(f"r{i}", "联系王小明" if i % 2 else "上门核查：无异常", "上沙社区", i) for i in range(400)]
    found = privacy_gate.scan_frame(spark.createDataFrame(rows, schema).repartition(4), known, "gold.t")
    assert [(f.path, f.kind, f.count) for f in found] == [("gold.t.note", "name", 200)]
