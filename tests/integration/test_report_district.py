"""The district report: self-contained HTML with inline SVG charts, counts only, linked in the manifest."""

from __future__ import annotations

import datetime as dt
import re
import stat

import pytest

from gridlake import io
from gridlake.manifest import Manifest
from gridlake.pipeline import RunContext
from gridlake.report import district, svg
from schemas.gold import DISCREPANCIES, GRID_METRICS

pytestmark = pytest.mark.spark

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _metrics_row(run_date, level, street=None, community=None, **kw):
    row = {f.name: 0 for f in GRID_METRICS.fields}
    row.update(run_date=run_date, level=level, street=street, community=community, grid_id=None,
               declaration_coverage=None, resolution_rate=None, confirmation_rate=None, match_rate=None,
               mean_match_score=None)
    row.update(kw)
    return tuple(row[f.name] for f in GRID_METRICS.fields)


def _discrepancy(did, rule, severity, priority, status="open"):
    row = {
        "discrepancy_id": did, "rule": rule, "rule_code": "x", "severity": severity, "house_code": "440304001001001001",
        "source": None, "record_id": None, "street": "沙头街道", "community": "上沙社区", "grid_id": "G001",
        "person_key": None, "masked_id": "4403**********1234", "masked_name": "张*明", "masked_phone": "138****5678",
        "evidence": [("police_incidents", "P1", "公安")], "reason_codes": ["multi_source"],
        "corroborating_sources": 1, "match_confidence": 1.0, "priority": priority, "detected": True,
        "first_seen": D1, "last_seen": D2, "last_evaluated": D2, "last_evidence_date": D1, "due_date": D2,
        "status": status, "status_since": D1, "status_history": [(D1, "open", "system")], "verified_at": None,
        "verification_outcome": None,
    }
    return tuple(row.get(f.name) for f in DISCREPANCIES.fields)


@pytest.fixture
def gold_lake(spark, settings):
    metrics = [
        _metrics_row(D1, "district", houses=100, rented_houses=40, rented_houses_declared=20,
                     declaration_coverage=0.5, open_total=12, escalated=0, match_rate=0.8, resolution_rate=0.0),
        _metrics_row(D2, "district", houses=100, rented_houses=40, rented_houses_declared=30,
                     declaration_coverage=0.75, open_total=9, escalated=2, resolved=3, match_rate=0.9,
                     resolution_rate=0.25),
        _metrics_row(D2, "street", street="沙头街道", houses=100, rented_houses=40, declaration_coverage=0.75,
                     open_total=9, mean_match_score=0.93),
        _metrics_row(D2, "community", street="沙头街道", community="上沙社区", houses=60, rented_houses=30,
                     rented_houses_declared=27, declaration_coverage=0.9, open_total=4),
        _metrics_row(D2, "community", street="沙头街道", community="下沙社区", houses=40, rented_houses=10,
                     rented_houses_declared=3, declaration_coverage=0.3, open_total=5),
    ]
    io.write_table(spark.createDataFrame(metrics, GRID_METRICS), settings, "gold", "grid_metrics", "overwrite")
    disc = [
        _discrepancy("d1", "R1", "critical", 6.0), _discrepancy("d2", "R1", "high", 3.0),
        _discrepancy("d3", "R5", "medium", 1.0, status="escalated"), _discrepancy("d4", "R2", "medium", 1.5),
        _discrepancy("d5", "R2", "medium", 1.5, status="resolved"),
    ]
    io.write_table(spark.createDataFrame(disc, DISCREPANCIES), settings, "gold", "discrepancies", "overwrite")
    hr = spark.createDataFrame(
        [("declarations", "a1", "440304001001001001", "scanned_code", 1.0),
         ("declarations", "a2", "440304001001001002", "exact", 1.0),
         ("police_incidents", "p1", "440304001001001001", "fuzzy", 0.86),
         ("police_incidents", "p2", None, "unresolved", 0.97)],
        "source string, record_id string, house_code string, method string, score double")
    io.write_table(hr, settings, "gold", "house_resolution", "overwrite")
    return settings


def test_report_is_self_contained_with_charts(spark, gold_lake):
    settings = gold_lake
    manifest = Manifest.open(settings, "test__report", D2)
    ctx = RunContext(settings, spark, D2, "test__report", manifest)
    stats = district.run(ctx)
    path = settings.reports / "district" / "2026-11-02.html"
    assert stats["path"] == str(path) and stats["written"] is True
    page = path.read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page
    assert not re.search(r"https?://", page)  # no CDN, no external URL
    assert "<script" not in page and "<link" not in page
    assert page.count("<svg") == 6
    for label in ("各社区出租屋申报覆盖率", "上沙社区", "下沙社区", "R1", "R5", "逐日趋势", "公安", "模糊匹配"):
        assert label in page
    # counts only: the masked person values of the discrepancies never reach the page
    for value in ("4403", "张*明", "138****", "440304001001001001"):
        assert value not in page
    assert stats["open_discrepancies"] == 4 and stats["nights"] == 2 and stats["communities"] == 2
    assert manifest.doc["links"]["district_report"] == str(path)
    match = {(m["source"], m["method"]): m for m in district.gather(spark, settings, D2).match}
    assert match[("police_incidents", "unresolved")]["mean_score"] is None  # an abstention's score is not a match
    assert match[("police_incidents", "fuzzy")]["mean_score"] == pytest.approx(0.86)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # rerun: identical page, not rewritten
    assert district.run(ctx)["written"] is False
    assert not list(path.parent.glob("*.tmp"))


def test_report_renders_with_no_gold_tables(spark, settings):
    data = district.gather(spark, settings, D1)
    page = district.render_html(data)
    assert "暂无数据" in page and "<svg" in page
    assert not re.search(r"https?://", page)


def test_svg_helper_scales_and_escapes():
    chart = svg.bar_chart(["<a>", "b"], [("x", [1, 3])], "t&t")
    assert "&lt;a&gt;" in chart and "t&amp;t" in chart and "<a>" not in chart
    assert svg.nice_max(3) == 4 and svg.nice_max(0) == 4 and svg.nice_max(120) == 120 and svg.nice_max(42) == 60 and svg.nice_max(9) == 12
    line = svg.line_chart(["d1", "d2", "d3"], [("s", [1, None, 2])], "gap")
    assert "<polyline" not in line  # a single point each side of the gap: no line drawn across it
