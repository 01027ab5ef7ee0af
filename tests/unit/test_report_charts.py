"""The report charts (matplotlib -> inline SVG) and the templated report pages: valid SVG, labels as text,
deterministic bytes, hostile labels escaped, matplotlib imported only when a chart is drawn."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from jobs.reports import charts
from jobs.reports.district import ReportData, render_html
from jobs.reports.quality import render_html as quality_html

HOSTILE = "<script>alert(1)</script>"


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)  # well-formed XML: no undeclared prefix, every tag closed
    assert root.tag == "svg" and root.get("viewBox") and root.get("class") == "chart"
    return root


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("text")]


def _coverage() -> str:
    return charts.bar_chart(["上沙社区", "下沙社区"], [("申报覆盖率", [0.9, None])], "申报覆盖率（已申报 / 出租屋）",
                            horizontal=True, value_format=charts.fmt_pct, max_value=1.0)


def test_bar_chart_is_valid_svg_with_chinese_labels_as_text():
    text = _coverage()
    root = _svg(text)
    labels = _texts(root)
    assert "上沙社区" in labels and "下沙社区" in labels and "申报覆盖率（已申报 / 出租屋）" in labels
    assert "90.0%" in labels and "100.0%" in labels  # the bar's total and the end of the rate axis
    assert root.find("title").text == "申报覆盖率（已申报 / 出租屋）"
    assert "font-family: 'Noto Sans CJK SC'" in text  # the reader's CJK fonts draw the text
    assert "svg.chart *{" in text and ">*{" not in text  # matplotlib's style rule kept to the chart, not the page
    assert not re.search(r"https?://|<\?xml|<!DOCTYPE|<metadata|<script|xlink:|@font-face", text)


def test_stacked_and_grouped_bars_and_legend():
    stacked = _svg(charts.bar_chart(["R1", "R2"], [("高", [2, 0]), ("低", [1, 3])], "按优先级", stacked=True))
    labels = _texts(stacked)
    assert {"R1", "R2", "高", "低"} <= set(labels)
    assert labels.count("3") >= 2  # both stacks total 3: the totals are labelled
    grouped = _svg(charts.bar_chart(["沙头街道"], [("按时核查率", [0.5]), ("重办率", [0.25])], "督办",
                                    value_format=charts.fmt_pct, max_value=1.0))
    assert {"按时核查率", "重办率", "沙头街道", "25.0%", "50.0%"} <= set(_texts(grouped))


def test_line_chart_leaves_gaps():
    root = _svg(charts.line_chart(["d1", "d2", "d3"], [("s", [1, None, 2])], "gap"))
    line = next(g for g in root.iter("g") if (g.get("id") or "").endswith("-series-0"))
    path = line.find("path").get("d")
    assert " L " not in f" {path} "  # a single point each side of the gap: nothing drawn across it
    full = next(g for g in _svg(charts.line_chart(["d1", "d2"], [("s", [1, 2])], "t")).iter("g")
                if (g.get("id") or "").endswith("-series-0"))
    assert "L" in full.find("path").get("d")


def _python(tmp_path, code: str) -> str:
    """stdout of ``code`` run as a script in a fresh interpreter (a script: pyspark exits under ``python -c``)."""
    script = tmp_path / "probe.py"
    script.write_text(code, encoding="utf-8")
    # the repo root on the path: ``tests`` is not an installed package (make test runs without PYTHONPATH)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, str(script)], capture_output=True, check=True, env=env).stdout.decode("utf-8")


def test_charts_are_deterministic_bytes_across_processes(tmp_path):
    here = _coverage()
    assert here == _coverage()
    other = _python(tmp_path, "import sys\nfrom tests.unit.test_report_charts import _coverage\n"
                              "sys.stdout.buffer.write(_coverage().encode('utf-8'))\n")
    assert other == here


def test_ids_are_unique_per_chart_on_one_page():
    page = render_html(ReportData(run_date="2026-11-20", communities=[
        {"street": "沙头街道", "community": "上沙社区", "declaration_coverage": 0.5}]))
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert ids and len(ids) == len(set(ids))
    for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', page):
        assert ref in ids


def test_empty_chart_says_no_data():
    root = _svg(charts.bar_chart([], [], "空"))
    assert "暂无数据" in _texts(root)


def test_hostile_labels_come_out_escaped():
    data = ReportData(run_date="2026-11-20", communities=[
        {"street": HOSTILE, "community": HOSTILE, "declaration_coverage": 0.5},
        {"street": "沙头街道", "community": "$x^2$ & co", "declaration_coverage": 0.7}])
    page = render_html(data)
    assert "<script" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # the chart label and two table cells
    assert "$x^2$ &amp; co" in page  # a "$" is a character, not math text
    quality = quality_html({
        "run_id": HOSTILE, "run_date": "2026-11-20", "code_version": None, "row_counts": {"silver": {HOSTILE: 1}},
        "conservation": {"run": {}, "per_source": []}, "results_by_dimension": {}, "trend": [],
        "results": [{"layer": "silver", "table": "t", "expectation": HOSTILE, "dimension": "validity",
                     "severity": "error", "success": False, "skipped": False, "element_count": 1,
                     "unexpected_count": 1, "unexpected_percent": 100.0}],
        "input_files": [{"source": "s", "path": HOSTILE, "sha256": HOSTILE}], "table_versions": {}})
    assert "<script" not in quality and quality.count("&lt;script&gt;") == 5
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in quality and "<span class=bad>fail 失败</span>" in quality


def test_matplotlib_is_imported_lazily(tmp_path):
    out = _python(tmp_path, "import sys\nimport gridlake.cli, jobs.reports.district, jobs.reports.delivery\n"
                            "import jobs.reports.quality, jobs.reports.templating\n"
                            "print('matplotlib' in sys.modules)\n")
    assert out.strip() == "False"
