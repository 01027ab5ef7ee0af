"""The district report and the demo show the address-corrections figure (issue 19: corrections that do not come back)."""

from __future__ import annotations

import datetime as dt
import json

from gridlake.manifest import runs_dir
from jobs.reports.district import ReportData, render_html
from tools.demo import night_corrections


def test_corrections_section_rendered():
    page = render_html(ReportData(run_date="2026-11-20",
                                  corrections={"cases_corrected": 8, "came_back": 1, "held_share": 0.875}))
    assert "地址更正（核查后房屋编码）" in page
    assert "<b>8</b><span>地址更正结案</span>" in page and "<b>1</b><span>更正后复现</span>" in page
    assert "87.5%" in page or "88%" in page


def test_no_correction_yet_shows_a_dash():
    page = render_html(ReportData(run_date="2026-11-20",
                                  corrections={"cases_corrected": 0, "came_back": 0, "held_share": None}))
    assert "<b>—</b><span>更正保持率</span>" in page
    assert "地址更正" not in render_html(ReportData(run_date="2026-11-20"))


def test_demo_reads_the_figure_from_the_night_manifest(settings):
    folder = runs_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    fig = {"cases_corrected": 3, "came_back": 0, "held_share": 1.0}
    (folder / "demo__2026-11-04.json").write_text(json.dumps(
        {"run_date": "2026-11-04", "stages": {"exports": {"supervisors": {"corrections": fig}}}}), encoding="utf-8")
    (folder / "demo__2026-11-03.json").write_text(json.dumps(
        {"run_date": "2026-11-03", "stages": {"exports": {"supervisors": {"corrections": {"cases_corrected": 1}}}}}),
        encoding="utf-8")
    assert night_corrections(settings, dt.date(2026, 11, 4)) == fig
    assert night_corrections(settings, dt.date(2026, 11, 5)) is None
