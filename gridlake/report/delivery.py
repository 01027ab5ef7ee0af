"""The delivery report for data engineers: what each department sent tonight and how it was read.

Per source and night: the files (loaded, rejected, empty, duplicate... and why), how each was read
(format by content, header row, the headers seen and the column each mapped to, unknown headers),
the rows' fate (silver, quarantine, duplicates), quarantine reasons with counts, the forms dates
were written in, unknown vocabulary values with counts, and the files in landing that were ignored.
A new template variant shows up here the morning after, and is one line of configuration.

Written as ``reports/delivery/<date>.html`` (jinja2, autoescaped, self-contained) and ``.json`` by
the night's report step (:func:`run_reports`) and by ``gridlake delivery-report --date D``.
Never a raw personal value: headers, file names, unknown values and error texts pass through
:func:`safe_text` (digit runs masked, control characters removed, length capped); counts otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from gridlake.config import Settings
    from gridlake.pipeline import RunContext

log = logging.getLogger(__name__)

DIR_MODE = 0o700  # service user only (gridlake.permissions)
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
MAX_TEXT = 80
_DIGITS = re.compile(r"[0-9０-９]{5,}[0-9０-９Xx]?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LOG_OPTIONAL = ("detected_format", "header_row", "header_map", "note", "extra_columns", "error")


def safe_text(value: Any, cap: int = MAX_TEXT) -> str | None:
    """Text fit for the report: runs of 5+ digits masked (IDs, phones), control characters removed, capped."""
    if value is None:
        return None
    s = _CONTROL.sub(" ", str(value))
    s = _DIGITS.sub(lambda m: "#" * 4 + "…", s)
    return s[:cap] + ("…" if len(s) > cap else "")


def _rel(path: str, settings: Settings) -> str:
    try:
        p = Path(path).resolve().relative_to(Path(settings.landing).resolve())
        return safe_text(str(p), 120) or ""
    except (ValueError, OSError):
        return safe_text(Path(path).name, 120) or ""


def _table(spark: SparkSession, settings: Settings, layer: str, name: str) -> DataFrame | None:
    from gridlake import io

    return io.read_table(spark, settings, layer, name) if io.table_exists(spark, settings, layer, name) else None


def _header_map(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return []
    if not isinstance(doc, dict):
        return []
    return [{"seen": safe_text(k, 40), "canonical": safe_text(v, 40) if v else None} for k, v in doc.items()]


NAME_COLUMNS = {"declarations": ["name"], "rentals": ["landlord_name"], "mediation_cases": ["parties"],
                "grid_officers": ["officer_name"]}
WITHHELD = "(withheld: a person's name)"


def _known_names(spark: SparkSession, settings: Settings, candidates: set[str]) -> set[str]:
    """Which of ``candidates`` (unknown vocabulary values) are names of persons silver knows: never shown."""
    from pyspark.sql import functions as F

    found: set[str] = set()
    if not candidates:
        return found
    for table, cols in NAME_COLUMNS.items():
        df = _table(spark, settings, "silver", table)
        if df is None:
            continue
        for c in cols:
            if c in df.columns:
                found |= {r[0] for r in df.where(F.trim(F.col(c)).isin(sorted(candidates)))
                          .select(F.trim(F.col(c))).distinct().collect()}
    return found


def _anomalies(settings: Settings, run_date: dt.date, current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Files in landing not loaded for the night (from the run manifests of ``run_date``)."""
    from gridlake.manifest import runs_dir

    docs = [current] if current else []
    folder = runs_dir(settings)
    if folder.is_dir():
        for p in sorted(folder.glob("*.json")):
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and doc.get("run_date") == run_date.isoformat():
                docs.append(doc)
    seen: dict[str, dict[str, Any]] = {}
    for doc in docs:
        for a in doc.get("landing_anomalies") or []:
            path = _rel(str(a.get("path", "")), settings)
            seen.setdefault(path, {"path": path, "kind": safe_text(a.get("kind"), 40),
                                   "source": safe_text(a.get("source"), 40), "detail": safe_text(a.get("detail"))})
    return sorted(seen.values(), key=lambda a: (a["source"] or "", a["path"]))


def collect(spark: SparkSession, settings: Settings, run_date: dt.date,
            manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report's content for deliveries of ``run_date``: plain, JSON-ready, no personal value."""
    from pyspark.sql import functions as F

    day = F.lit(run_date)
    sources: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "files": [], "rows": {"bronze": 0, "silver": 0, "quarantine": 0, "duplicates": 0},
        "quarantine_reasons": {}, "duplicate_reasons": {}, "unknown_headers": [],
        "unknown_vocab": [], "date_forms": [], "number_forms": [], "invalid_id_rows": {}})

    cons: dict[str, dict[str, int]] = {}
    conservation = _table(spark, settings, "silver", "_conservation")
    if conservation is not None:
        for r in conservation.collect():
            cons[r["file_sha256"]] = {"silver": r["silver_rows"], "quarantine": r["quarantine_rows"],
                                      "duplicates": r["duplicate_rows"], "balanced": r["balanced"]}

    ingestion = _table(spark, settings, "bronze", "_ingestion_log")
    if ingestion is not None:
        cols = ["file_sha256", "source", "path", "status", "bronze_rows", "ingested_at"]
        cols += [c for c in _LOG_OPTIONAL if c in ingestion.columns]
        rows = ingestion.where(F.col("delivery_date") == day).select(*cols).orderBy("source", "path", "ingested_at")
        latest: dict[tuple[str, str], Any] = {}
        for r in rows.collect():  # the last attempt per (file, content)
            latest[(r["path"], r["file_sha256"])] = r.asDict()
        for r in latest.values():
            src = sources[r["source"]]
            mapping = _header_map(r.get("header_map"))
            c = cons.get(r["file_sha256"], {})
            f = {
                "path": _rel(r["path"], settings), "status": r["status"], "error": safe_text(r.get("error")),
                "bronze_rows": int(r["bronze_rows"] or 0), "silver_rows": c.get("silver"),
                "quarantine_rows": c.get("quarantine"), "duplicate_rows": c.get("duplicates"),
                "balanced": c.get("balanced"), "detected_format": safe_text(r.get("detected_format"), 10),
                "header_row": r.get("header_row"), "note": safe_text(r.get("note")), "headers": mapping,
                "extra_columns": safe_text(r.get("extra_columns")),
            }
            src["files"].append(f)
            if r["status"] == "loaded":
                src["rows"]["bronze"] += f["bronze_rows"]
                for k in ("silver", "quarantine", "duplicates"):
                    src["rows"][k] += int(c.get(k) or 0)
            for h in mapping:
                if h["canonical"] is None and h["seen"] not in src["unknown_headers"]:
                    src["unknown_headers"].append(h["seen"])

    for table, key in (("_quarantine", "quarantine_reasons"), ("_duplicates", "duplicate_reasons")):
        df = _table(spark, settings, "silver", table)
        if df is None:
            continue
        for r in df.where(F.col("_delivery_date") == day).groupBy("source", "reason_code").count().collect():
            sources[r["source"]][key][r["reason_code"]] = int(r["count"])

    profile = _table(spark, settings, "silver", "_value_profile")
    if profile is not None:
        agg = (profile.where(F.col("delivery_date") == day).groupBy("source", "column", "kind", "value")
               .agg(F.sum("rows").alias("rows")).orderBy("source", "column", F.desc("rows"), "value"))
        lists = {"date_form": "date_forms", "number_form": "number_forms", "unknown_vocab": "unknown_vocab"}
        for r in agg.collect():
            src = sources[r["source"]]
            if r["kind"] == "invalid_ids":
                src["invalid_id_rows"][r["column"]] = int(r["rows"])
            elif r["kind"] in lists:
                src[lists[r["kind"]]].append({"column": r["column"], "value": safe_text(r["value"], 32),
                                              "rows": int(r["rows"])})

    names = _known_names(spark, settings, {v["value"] for s in sources.values() for v in s["unknown_vocab"]})
    for src in sources.values():
        for v in src["unknown_vocab"]:
            if v["value"] in names:
                v["value"] = WITHHELD
        src["quarantine_reasons"] = dict(sorted(src["quarantine_reasons"].items(), key=lambda kv: (-kv[1], kv[0])))
        src["duplicate_reasons"] = dict(sorted(src["duplicate_reasons"].items(), key=lambda kv: (-kv[1], kv[0])))
        statuses: dict[str, int] = defaultdict(int)
        for f in src["files"]:
            statuses[f["status"]] += 1
        src["files_by_status"] = dict(sorted(statuses.items()))
    return {"date": run_date.isoformat(), "sources": dict(sorted(sources.items())),
            "ignored": _anomalies(settings, run_date, manifest)}


def render_html(data: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (jinja2, autoescaped)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("delivery.html.j2").render(data=data)


def write(settings: Settings, data: dict[str, Any]) -> dict[str, str]:
    """Write ``reports/delivery/<date>.html`` and ``.json`` (unchanged content is not rewritten)."""
    folder = Path(settings.reports) / "delivery"
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    out = {}
    for ext, text in (("html", render_html(data)),
                      ("json", json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str))):
        path = folder / f"{data['date']}.{ext}"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_suffix(f".{ext}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        out[ext] = str(path)
    return out


def run(ctx: RunContext) -> dict[str, Any]:
    """Write tonight's delivery report; returns its paths and a few counts for the manifest."""
    data = collect(ctx.spark, ctx.settings, ctx.run_date, ctx.manifest.doc)
    paths = write(ctx.settings, data)
    ctx.manifest.doc.setdefault("links", {})["delivery_report"] = paths["html"]
    return {"delivery_report": paths["html"], "sources": len(data["sources"]), "ignored_files": len(data["ignored"]),
            "unknown_headers": sum(len(s["unknown_headers"]) for s in data["sources"].values()),
            "unknown_vocab_values": sum(len(s["unknown_vocab"]) for s in data["sources"].values())}


def run_reports(ctx: RunContext) -> dict[str, Any]:
    """The night's report step: the district report, then the delivery report."""
    from gridlake.report import district

    stats = dict(district.run(ctx) or {})
    stats["delivery"] = run(ctx)
    return stats


def cmd_delivery_report(args: argparse.Namespace) -> int:
    """``gridlake delivery-report --date D``: (re)write the delivery report of one night from the lake."""
    from gridlake.config import load_settings
    from gridlake.pipeline import parse_date
    from gridlake.spark import get_spark

    settings = load_settings(args.profile, args.data)
    run_date = parse_date(args.date)
    data = collect(get_spark(settings), settings, run_date)
    paths = write(settings, data)
    log.info("delivery report: %s", paths["html"])
    return 0
