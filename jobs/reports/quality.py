"""Part of stage ``reports``: the auditors' per-night quality summary and the Data Docs.

Writes ``<settings.reports>/quality/<run_date>.json`` and ``.html`` (self-contained: inline CSS,
no external URL, UTF-8) with row counts per layer, conservation figures, results by quality
dimension, the trend over the last nights (``quality.results``), input file hashes and Delta
versions (from the run manifest), rebuilds the offline Data Docs and links both from the
manifest (``links``). Counts only: no value of any row appears.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from gridlake import io
from gridlake.quality import DIMENSIONS, history
from gridlake.quality.docs import build_data_docs
from gridlake.storage import list_tables

if TYPE_CHECKING:
    from gridlake.context import RunContext

log = logging.getLogger(__name__)

TREND_NIGHTS = 14
LAYERS = ("bronze", "silver", "gold")


def _row_counts(ctx: RunContext) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for layer in LAYERS:
        for name in list_tables(ctx.spark, ctx.settings, layer):  # a local folder or object storage
            out.setdefault(layer, {})[name] = io.row_count(ctx.spark, ctx.settings, layer, name)
    return out


def _conservation(ctx: RunContext) -> dict[str, Any]:
    doc = dict(ctx.manifest.doc.get("conservation") or {})
    per_source: list[dict[str, Any]] = []
    if io.table_exists(ctx.spark, ctx.settings, "silver", "_conservation"):
        df = io.read_table(ctx.spark, ctx.settings, "silver", "_conservation").where(F.col("run_id") == ctx.run_id)
        per_source = [r.asDict() for r in df.groupBy("source").agg(
            F.count("*").alias("files"), F.sum("bronze_rows").alias("bronze_rows"),
            F.sum("silver_rows").alias("silver_rows"), F.sum("quarantine_rows").alias("quarantine_rows"),
            F.sum("duplicate_rows").alias("duplicate_rows"), F.min(F.col("balanced").cast("int")).alias("balanced"),
        ).orderBy("source").collect()]
        for r in per_source:
            r["balanced"] = bool(r["balanced"])
    return {"run": doc.get("run") or {}, "per_source": per_source}


def _results(ctx: RunContext) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]], list[dict[str, Any]]]:
    df = history.read_results(ctx.spark, ctx.settings)
    if df is None:
        return [], {}, []
    checks = df.where(F.col("expectation_type") != "metric")
    tonight = checks.where(F.col("run_id") == ctx.run_id)
    rows = [r.asDict() for r in tonight.select(
        "layer", "table", "expectation", "dimension", "severity", "success", "skipped", "element_count",
        "unexpected_count", "unexpected_percent").orderBy("layer", "table", "expectation").collect()]
    by_dim: dict[str, dict[str, int]] = {d: {"evaluated": 0, "passed": 0, "failed_error": 0, "failed_warning": 0,
                                              "skipped": 0} for d in DIMENSIONS}
    for r in rows:
        d = by_dim.setdefault(r["dimension"], {"evaluated": 0, "passed": 0, "failed_error": 0,
                                                "failed_warning": 0, "skipped": 0})
        if r["skipped"]:
            d["skipped"] += 1
            continue
        d["evaluated"] += 1
        if r["success"]:
            d["passed"] += 1
        else:
            d["failed_error" if r["severity"] == "error" else "failed_warning"] += 1
    trend = [r.asDict() for r in checks.where(~F.col("skipped") & (F.col("run_date") <= F.lit(ctx.run_date)))
             .groupBy("run_date").agg(
                 F.count("*").alias("evaluated"),
                 F.sum(F.col("success").cast("int")).alias("passed"),
                 F.sum(F.when(~F.col("success") & (F.col("severity") == "error"), 1).otherwise(0)).alias("failed_error"),
                 F.sum(F.when(~F.col("success") & (F.col("severity") == "warning"), 1).otherwise(0)).alias("failed_warning"),
             ).orderBy(F.col("run_date").desc()).limit(TREND_NIGHTS).collect()]
    for t in trend:
        t["run_date"] = t["run_date"].isoformat()
        t["pass_rate"] = round(100.0 * (t["passed"] or 0) / t["evaluated"], 1) if t["evaluated"] else None
    return rows, by_dim, sorted(trend, key=lambda t: t["run_date"])


def build_summary(ctx: RunContext) -> dict[str, Any]:
    """The quality summary of the night as a JSON-able dict."""
    ctx.manifest.record_tables(ctx.spark)
    results, by_dim, trend = _results(ctx)
    m = ctx.manifest.doc
    return {
        "run_id": ctx.run_id,
        "run_date": ctx.date_str,
        "code_version": m.get("code_version"),
        "row_counts": _row_counts(ctx),
        "conservation": _conservation(ctx),
        "gates": m.get("quality") or {},
        "results_by_dimension": by_dim,
        "results": results,
        "trend": trend,
        "input_files": [{k: f.get(k) for k in ("source", "path", "sha256", "rows", "status") if k in f}
                        for f in m.get("files") or []],
        "table_versions": m.get("table_versions") or {},
    }


def run(ctx: RunContext) -> dict[str, Any]:
    """Stage entry point: write the summary (JSON + HTML), rebuild Data Docs, link them in the manifest."""
    summary = build_summary(ctx)
    out_dir = ctx.settings.reports / "quality"
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / f"{ctx.date_str}.json", out_dir / f"{ctx.date_str}.html"
    _atomic(json_path, json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    _atomic(html_path, render_html(summary))
    docs_index = build_data_docs(ctx.settings)
    links = dict(ctx.manifest.doc.get("links") or {})
    links.update({"quality_report_html": str(html_path), "quality_report_json": str(json_path),
                  "data_docs": str(docs_index)})
    ctx.manifest.set("links", links)
    failed = sum(v["failed_error"] + v["failed_warning"] for v in summary["results_by_dimension"].values())
    return {"report": str(html_path), "data_docs": str(docs_index), "expectations": len(summary["results"]),
            "failed": failed}


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
DIMENSION_LABELS = {"completeness": "完整性", "uniqueness": "唯一性", "validity": "规范性/有效性",
                    "consistency": "一致性", "accuracy": "准确性", "timeliness": "及时性"}


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> dict[str, Any]:
    return {"headers": headers, "rows": rows, "numeric": sorted(numeric or set())}


def _status(ok: bool | None, warn: bool = False) -> dict[str, str]:
    """A result cell: ``{"status": "pass" | "fail" | "warning" | "skipped"}``."""
    if ok is None:
        return {"status": "skipped"}
    return {"status": "pass" if ok else ("warning" if warn else "fail")}


def page_data(s: dict[str, Any]) -> dict[str, Any]:
    """The summary as the plain data ``quality.html.j2`` renders: sections of tables of values and cell kinds."""
    cons = s["conservation"]
    run = cons.get("run") or {}
    conservation = [_table(["bronze", "silver", "quarantine", "duplicates", "balanced 平衡"],
                           [[run.get("bronze_rows"), run.get("silver_rows"), run.get("quarantine_rows"),
                             run.get("duplicate_rows"), _status(bool(run.get("balanced")))]], {0, 1, 2, 3})] if run else []
    conservation.append(_table(
        ["source 来源", "files", "bronze", "silver", "quarantine", "duplicates", "balanced"],
        [[r["source"], r["files"], r["bronze_rows"], r["silver_rows"], r["quarantine_rows"], r["duplicate_rows"],
          _status(r["balanced"])] for r in cons.get("per_source") or []], {1, 2, 3, 4, 5}))
    sections = [
        ("各层行数 Row counts per layer", [_table(
            ["layer 层", "table 表", "rows 行数"],
            [[layer, t, n] for layer, tabs in s["row_counts"].items() for t, n in tabs.items()], {2})]),
        ("行数守恒 Conservation (bronze = silver + quarantine + duplicates)", conservation),
        ("按质量维度 Results by dimension (GB/T 36344)", [_table(
            ["dimension 维度", "evaluated", "passed", "failed (error)", "failed (warning)", "skipped"],
            [[f"{d} {DIMENSION_LABELS.get(d, '')}", v["evaluated"], v["passed"], v["failed_error"],
              v["failed_warning"], v["skipped"]] for d, v in s["results_by_dimension"].items()], {1, 2, 3, 4, 5})]),
        (f"近 {TREND_NIGHTS} 晚趋势 Trend over the last nights", [_table(
            ["night 日期", "evaluated", "passed", "failed (error)", "failed (warning)", "pass rate"],
            [[t["run_date"], t["evaluated"], t["passed"], t["failed_error"], t["failed_warning"],
              {"bar": int(t["pass_rate"] or 0), "label": t["pass_rate"]}] for t in s["trend"]], {1, 2, 3, 4})]),
        ("期望明细 Expectations tonight", [_table(
            ["table", "expectation", "dimension", "severity", "result", "rows", "unexpected", "%"],
            [[f"{r['layer']}.{r['table']}", {"code": r["expectation"]}, r["dimension"], r["severity"],
              _status(None if r["skipped"] else r["success"], r["severity"] == "warning"),
              r["element_count"], r["unexpected_count"],
              None if r["unexpected_percent"] is None else round(r["unexpected_percent"], 2)]
             for r in s["results"]], {5, 6, 7})]),
        ("输入文件 Input files (SHA-256)", [_table(
            ["source", "file", "sha256"],
            [[f.get("source"), f.get("path"), {"code": f.get("sha256")}] for f in s["input_files"]])]),
        ("Delta 版本 Table versions", [_table(
            ["table", "version"], [[k, v] for k, v in sorted(s["table_versions"].items())], {1})]),
    ]
    return {"run_date": s["run_date"], "run_id": s["run_id"], "code_version": s.get("code_version"),
            "sections": [{"title": title, "tables": tables} for title, tables in sections]}


def render_html(s: dict[str, Any]) -> str:
    """Self-contained HTML of a summary (inline CSS, no external resource, no links out)."""
    from jobs.reports.templating import render

    return render(TEMPLATE_DIR, "quality.html.j2", page=page_data(s))
