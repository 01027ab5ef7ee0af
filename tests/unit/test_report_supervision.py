"""The district report shows the supervision rates (issue 19 item 4) from gold.supervision_metrics rows."""

from __future__ import annotations

from gridlake.report.district import ReportData, render_html


def _row(level: str, street: str | None, **kw) -> dict:
    row = {"run_date": "2026-11-20", "level": level, "street": street, "verified": 10, "verified_on_time": 7,
           "on_time_rate": 0.7, "reminders": 4, "escalated_street": 1, "reopened": 2, "reopen_rate": 0.1,
           "backlog_le_7": 3, "backlog_le_14": 2, "backlog_le_30": 1, "backlog_gt_30": 0,
           **{f"verified_r{i}": 0 for i in range(1, 8)}, **{f"confirmed_r{i}": 0 for i in range(1, 8)},
           **{f"precision_r{i}": None for i in range(1, 8)}}
    row.update(kw)
    return row


def test_supervision_section_rendered():
    data = ReportData(run_date="2026-11-20", supervision=[
        _row("district", None, verified_r1=8, confirmed_r1=6, precision_r1=0.75),
        _row("street", "沙头街道", on_time_rate=0.625)])
    data.supervision_trend = [data.supervision[0]]
    page = render_html(data)
    assert "核查时效与督办" in page and "按时核查率" in page
    assert "62.5%" in page or "62%" in page or "63%" in page
    assert "规则现场核实准确率" in page and "75" in page
    assert "积压≤7天" in page and "积压&gt;30天" in page
    assert page.count("<svg") >= 2


def test_no_supervision_no_section():
    assert "核查时效与督办" not in render_html(ReportData(run_date="2026-11-20"))
