"""The nightly district report: one self-contained HTML page per night.

``run(ctx)`` (stage "report") aggregates the gold tables on Spark into small counts,
renders ``reports/district/<date>.html`` with inline SVG charts (declaration coverage
by community, open discrepancies by rule and priority, the trend over nights, match
quality by source and method) and links it in the run manifest. The page needs no
network: no CDN, no scripts, no external URL. It shows counts and rates only, never
personal data. The content depends only on the lake (no wall-clock time), and an
unchanged page is not rewritten.
"""

from __future__ import annotations

import html
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.report import svg

if TYPE_CHECKING:
    import datetime as dt

    from pyspark.sql import SparkSession

    from gridlake.config import Settings
    from gridlake.pipeline import RunContext

log = logging.getLogger(__name__)

DIR_MODE = 0o700  # service user only (gridlake.permissions)

_NUMERIC = re.compile(r"[\d,.%—-]+")
RULE_CODES = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")
SEVERITY_LABELS = {"critical": "严重", "high": "高", "medium": "中", "low": "低"}
PRIORITY_BANDS = (("高 (≥4)", 4.0, None), ("中 (2–4)", 2.0, 4.0), ("低 (<2)", None, 2.0))
SOURCE_LABELS = {
    "housing": "房屋登记", "rentals": "租赁登记", "declarations": "自主申报", "police_incidents": "公安",
    "mediation_cases": "调解", "safety_inspections": "安全生产", "family_planning": "计生",
}
METHOD_LABELS = {
    "scanned_code_verified": "扫码核验", "exact_address": "精确匹配", "scanned_code": "扫码核验", "scanned": "扫码核验", "qr_code": "扫码核验", "code": "房屋编码",
    "exact": "精确匹配", "fuzzy": "模糊匹配", "ambiguous": "多义弃权", "abstain": "多义弃权",
    "unresolved": "未匹配",
}


@dataclass
class ReportData:
    """The small aggregates a report is drawn from (plain Python, no Spark)."""

    run_date: str
    district: dict[str, Any] = field(default_factory=dict)          # grid_metrics, level district, tonight
    streets: list[dict[str, Any]] = field(default_factory=list)     # level street, tonight
    communities: list[dict[str, Any]] = field(default_factory=list)  # level community, tonight
    trend: list[dict[str, Any]] = field(default_factory=list)       # level district, nights <= tonight
    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)      # rule -> severity -> open count
    by_rule_band: dict[str, dict[str, int]] = field(default_factory=dict)  # rule -> priority band -> open count
    rule_titles: dict[str, str] = field(default_factory=dict)
    match: list[dict[str, Any]] = field(default_factory=list)       # source, method, records, mean_score
    supervision: list[dict[str, Any]] = field(default_factory=list)  # gold.supervision_metrics, street + district
    supervision_trend: list[dict[str, Any]] = field(default_factory=list)  # district level, nights <= tonight


# --- gathering (Spark) -------------------------------------------------------------------
def _rows(df) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.collect()]


def gather(spark: SparkSession, settings: Settings, run_date: dt.date) -> ReportData:
    """Aggregate the gold tables for ``run_date``; only counts reach the driver."""
    from pyspark.sql import functions as F

    from gridlake import io

    data = ReportData(run_date=run_date.isoformat())
    day = F.lit(run_date)
    if io.table_exists(spark, settings, "gold", "grid_metrics"):
        gm = io.read_table(spark, settings, "gold", "grid_metrics")
        tonight = gm.where(F.col("run_date") == day)
        district = _rows(tonight.where(F.col("level") == "district"))
        data.district = district[0] if district else {}
        data.streets = _rows(tonight.where(F.col("level") == "street").orderBy("street"))
        data.communities = _rows(tonight.where(F.col("level") == "community").orderBy("street", "community"))
        data.trend = _rows(gm.where((F.col("level") == "district") & (F.col("run_date") <= day)).orderBy("run_date"))
    if io.table_exists(spark, settings, "gold", "discrepancies"):
        d = io.read_table(spark, settings, "gold", "discrepancies").where(
            F.col("status").isin("open", "escalated") & (F.col("first_seen") <= day))
        band = F.when(F.col("priority") >= 4.0, PRIORITY_BANDS[0][0]).when(
            F.col("priority") >= 2.0, PRIORITY_BANDS[1][0]).otherwise(PRIORITY_BANDS[2][0])
        counts = _rows(d.groupBy("rule", "severity", band.alias("band")).count())
        for r in counts:
            sev = data.by_rule.setdefault(r["rule"], {})
            sev[r["severity"]] = sev.get(r["severity"], 0) + int(r["count"])
            bands = data.by_rule_band.setdefault(r["rule"], {})
            bands[r["band"]] = bands.get(r["band"], 0) + int(r["count"])
    data.match = _match_quality(spark, settings, run_date)
    data.rule_titles = _rule_titles()
    if io.table_exists(spark, settings, "gold", "supervision_metrics"):
        sm = io.read_table(spark, settings, "gold", "supervision_metrics")
        data.supervision = _rows(sm.where((F.col("run_date") == day) & F.col("level").isin("street", "district"))
                                 .orderBy(F.col("level").desc(), "street"))
        data.supervision_trend = _rows(sm.where((F.col("level") == "district") & (F.col("run_date") <= day))
                                       .orderBy("run_date"))
    return data


def _match_quality(spark: SparkSession, settings: Settings, run_date: dt.date) -> list[dict[str, Any]]:
    """Records per source and resolution method (unresolved included) with their mean score."""
    from pyspark.sql import functions as F

    from gridlake import io

    if not io.table_exists(spark, settings, "gold", "house_resolution"):
        return []
    hr = io.read_table(spark, settings, "gold", "house_resolution")
    cols = set(hr.columns)
    if not {"source", "method"} <= cols:
        log.warning("gold.house_resolution has no source/method columns; match quality chart left empty")
        return []
    for date_col in ("run_date", "as_of", "resolved_on"):
        if date_col in cols:
            hr = hr.where(F.col(date_col) <= F.lit(run_date))
            break
    method = F.coalesce(F.col("method"), F.lit("unresolved"))
    if "house_code" in cols:
        method = F.when(F.col("house_code").isNull(), F.lit("unresolved")).otherwise(method)
    hr = hr.withColumn("__method", method)
    # the mean score of resolved records only (an abstention may carry its best candidate's score)
    score = (F.avg(F.when(F.col("__method") != "unresolved", F.col("score"))) if "score" in cols
             else F.lit(None).cast("double"))
    agg = hr.groupBy("source", F.col("__method").alias("method")).agg(
        F.count(F.lit(1)).alias("records"), score.alias("mean_score"))
    return _rows(agg.orderBy("source", "method"))


def _rule_titles() -> dict[str, str]:
    import yaml

    from gridlake.config import CONF_DIR

    try:
        doc = yaml.safe_load((CONF_DIR / "rules.yaml").read_text(encoding="utf-8")) or {}
    except OSError:
        return {}
    return {code: str(rule.get("title", "")) for code, rule in (doc.get("rules") or {}).items()}


# --- rendering (pure) ---------------------------------------------------------------------
def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _pct(v: Any) -> str:
    return "—" if v is None else svg.fmt_pct(float(v))


def _int(v: Any) -> str:
    return "—" if v is None else svg.fmt_int(float(v))


CSS = """
body{font-family:'Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.note{color:#666;font-size:13px} .kpis{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.kpi{border:1px solid #dde;border-radius:6px;padding:8px 14px;min-width:120px;background:#f7f9fc}
.kpi b{display:block;font-size:20px} .kpi span{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:13px;margin:8px 0} th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#eef3fa} td.t,th{text-align:left} td.n{text-align:right} svg.chart{display:block;margin:6px 0}
"""


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="{"n" if _NUMERIC.fullmatch(str(c)) else "t"}">{_e(c)}</td>'
                                     for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: ReportData) -> str:
    """The report page for ``data``: UTF-8, inline CSS and SVG only, counts and rates only."""
    d = data.district
    kpis = [
        ("在用房屋", _int(d.get("houses"))), ("出租房屋", _int(d.get("rented_houses"))),
        ("申报覆盖率", _pct(d.get("declaration_coverage"))), ("待核查问题", _int(d.get("open_total"))),
        ("已升级", _int(d.get("escalated"))), ("处置率", _pct(d.get("resolution_rate"))),
        ("地址匹配率", _pct(d.get("match_rate"))),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>福田区网格数据日报 {_e(data.run_date)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>网格数据日报 · {_e(data.run_date)}</h1>",
        '<p class="note">数据来源：gold 层汇总表。本页仅含统计数字，不含任何个人信息。</p>',
        '<div class="kpis">' + "".join(f'<div class="kpi"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in kpis)
        + "</div>",
    ]

    # 1. declaration coverage by community
    comms = [c for c in data.communities if c.get("community")]
    parts.append("<h2>各社区出租屋申报覆盖率</h2>")
    parts.append(svg.bar_chart(
        [str(c["community"]) for c in comms],
        [("申报覆盖率", [c.get("declaration_coverage") for c in comms])],
        "申报覆盖率（已申报出租屋 / 出租屋）", horizontal=True, value_format=svg.fmt_pct, max_value=1.0))
    parts.append(_table(
        ["街道", "社区", "在用房屋", "出租房屋", "已申报", "覆盖率", "待核查问题"],
        [[c.get("street") or "", c["community"], _int(c.get("houses")), _int(c.get("rented_houses")),
          _int(c.get("rented_houses_declared")), _pct(c.get("declaration_coverage")), _int(c.get("open_total"))]
         for c in comms]))

    # 2. open discrepancies by rule and priority
    rules = [r for r in RULE_CODES if r in data.by_rule] + sorted(set(data.by_rule) - set(RULE_CODES))
    parts.append("<h2>待核查问题：按规则与优先级</h2>")
    parts.append(svg.bar_chart(
        rules, [(label, [data.by_rule_band.get(r, {}).get(label, 0) for r in rules]) for label, _, _ in PRIORITY_BANDS],
        "待核查问题数（按优先级分段）", stacked=True, colors=("#c0392b", "#e07b39", "#3a9d5d")))
    parts.append(svg.bar_chart(
        rules, [(lab, [data.by_rule.get(r, {}).get(sev, 0) for r in rules]) for sev, lab in SEVERITY_LABELS.items()],
        "待核查问题数（按严重程度）", stacked=True,
        colors=("#8e1b10", "#c0392b", "#e07b39", "#7f8c8d")))
    parts.append(_table(
        ["规则", "问题类型", *[lab for lab, _, _ in PRIORITY_BANDS], "合计"],
        [[r, data.rule_titles.get(r, ""), *[_int(data.by_rule_band.get(r, {}).get(lab, 0)) for lab, _, _ in PRIORITY_BANDS],
          _int(sum(data.by_rule.get(r, {}).values()))] for r in rules]))

    # 3. trend over nights
    nights = [str(t["run_date"]) for t in data.trend]
    parts.append("<h2>逐日趋势</h2>")
    parts.append(svg.line_chart(nights, [
        ("待核查", [t.get("open_total") for t in data.trend]),
        ("已升级", [t.get("escalated") for t in data.trend]),
        ("已处置", [sum(int(t.get(k) or 0) for k in ("confirmed", "resolved", "refuted")) for t in data.trend]),
    ], "问题数量趋势"))
    parts.append(svg.line_chart(nights, [
        ("申报覆盖率", [t.get("declaration_coverage") for t in data.trend]),
        ("地址匹配率", [t.get("match_rate") for t in data.trend]),
        ("处置率", [t.get("resolution_rate") for t in data.trend]),
    ], "覆盖率与匹配率趋势", value_format=svg.fmt_pct, max_value=1.0))

    # 4. match quality by source and method
    sources = sorted({m["source"] for m in data.match})
    methods = sorted({m["method"] for m in data.match}, key=lambda m: (m == "unresolved", m))
    counts = {(m["source"], m["method"]): int(m["records"]) for m in data.match}
    parts.append("<h2>地址匹配质量：按来源与方法</h2>")
    parts.append(svg.bar_chart(
        [SOURCE_LABELS.get(s, s) for s in sources],
        [(METHOD_LABELS.get(m, m), [counts.get((s, m), 0) for s in sources]) for m in methods],
        "记录数（按匹配方法）", stacked=True, horizontal=True,
        colors=[svg.PALETTE[i % 6] if m != "unresolved" else "#bbbbbb" for i, m in enumerate(methods)]))
    parts.append(_table(
        ["来源", "方法", "记录数", "平均得分"],
        [[SOURCE_LABELS.get(m["source"], m["source"]), METHOD_LABELS.get(m["method"], m["method"]),
          _int(m["records"]), "—" if m.get("mean_score") is None else f"{float(m['mean_score']):.3f}"]
         for m in data.match]))

    # 5. supervision: on-time verification, reminders, reopening, backlog, field-confirmed precision
    if data.supervision:
        parts.extend(_supervision_section(data))

    # streets summary
    parts.append("<h2>街道汇总</h2>")
    parts.append(_table(
        ["街道", "在用房屋", "出租房屋", "覆盖率", "待核查", "已升级", "处置率", "匹配率", "平均匹配得分"],
        [[s.get("street") or "", _int(s.get("houses")), _int(s.get("rented_houses")), _pct(s.get("declaration_coverage")),
          _int(s.get("open_total")), _int(s.get("escalated")), _pct(s.get("resolution_rate")), _pct(s.get("match_rate")),
          "—" if s.get("mean_match_score") is None else f"{float(s['mean_match_score']):.3f}"] for s in data.streets]))
    parts.append(f'<p class="note">gridlake · {_e(data.run_date)} · 离线可读，无外部资源。</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _supervision_section(data: ReportData) -> list[str]:
    """Rates supervisors are judged by (gold.supervision_metrics), per street and district, and over nights."""
    rows = data.supervision
    streets = [r for r in rows if r.get("level") == "street"]
    backlog = sorted((k for k in rows[0] if k.startswith("backlog_")),
                     key=lambda k: (k.startswith("backlog_gt"), int(k.rsplit("_", 1)[1])))
    labels = {k: ("≤" if "_le_" in k else ">") + k.rsplit("_", 1)[1] + "天" for k in backlog}
    out = ["<h2>核查时效与督办</h2>"]
    out.append(svg.bar_chart(
        [str(r.get("street") or "") for r in streets],
        [("按时核查率", [r.get("on_time_rate") for r in streets]), ("重办率", [r.get("reopen_rate") for r in streets])],
        "按时核查率与重办率（按街道）", value_format=svg.fmt_pct, max_value=1.0))
    nights = [str(t["run_date"]) for t in data.supervision_trend]
    out.append(svg.line_chart(nights, [("催办", [t.get("reminders") for t in data.supervision_trend]),
                                       ("升级街道", [t.get("escalated_street") for t in data.supervision_trend]),
                                       ("重办", [t.get("reopened") for t in data.supervision_trend])], "督办趋势"))
    out.append(_table(
        ["层级", "街道", "已核查", "按时核查率", "催办", "升级街道", "重办", "重办率", *[f"积压{labels[k]}" for k in backlog]],
        [["全区" if r["level"] == "district" else "街道", r.get("street") or "", _int(r.get("verified")),
          _pct(r.get("on_time_rate")), _int(r.get("reminders")), _int(r.get("escalated_street")), _int(r.get("reopened")),
          _pct(r.get("reopen_rate")), *[_int(r.get(k)) for k in backlog]] for r in rows]))
    district = next((r for r in rows if r.get("level") == "district"), None)
    if district:
        out.append("<h2>规则现场核实准确率（属实 / 已核查）</h2>")
        out.append(_table(["规则", "问题类型", "已核查", "属实", "准确率"], [
            [r, data.rule_titles.get(r, ""), _int(district.get(f"verified_{r.lower()}")),
             _int(district.get(f"confirmed_{r.lower()}")), _pct(district.get(f"precision_{r.lower()}"))]
            for r in RULE_CODES]))
    return out


# --- writing ------------------------------------------------------------------------------
def write_report(html_text: str, path: Path) -> bool:
    """Write the page atomically (temp file + ``os.replace``, mode 0o600); False when unchanged."""
    from jobs.gold.exports import write_if_changed

    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path.parent, DIR_MODE)
    return write_if_changed(path, html_text.encode("utf-8"))


def report_path(settings: Settings, run_date: dt.date) -> Path:
    """``reports/district/<date>.html``."""
    return settings.reports / "district" / f"{run_date.isoformat()}.html"


def run(ctx: RunContext) -> dict[str, Any]:
    """Stage "report": render tonight's district report and link it in the manifest."""
    data = gather(ctx.spark, ctx.settings, ctx.run_date)
    path = report_path(ctx.settings, ctx.run_date)
    written = write_report(render_html(data), path)
    ctx.manifest.doc.setdefault("links", {})["district_report"] = str(path)
    stats = {
        "path": str(path),
        "written": written,
        "communities": len(data.communities),
        "nights": len(data.trend),
        "open_discrepancies": sum(sum(v.values()) for v in data.by_rule.values()),
        "match_groups": len(data.match),
    }
    log.info("district report %s -> %s", ctx.date_str, path)
    return stats
