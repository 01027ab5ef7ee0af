"""The delivery report renders autoescaped HTML and masks anything that could be a personal value (no Spark)."""

from __future__ import annotations

import json

from gridlake.report.delivery import _header_map, render_html, safe_text


def _data() -> dict:
    src = {
        "files": [{"path": "declarations/2026-11-01/申报<script>.csv", "status": "loaded", "error": None,
                   "bronze_rows": 3, "silver_rows": 2, "quarantine_rows": 1, "duplicate_rows": 0, "balanced": True,
                   "detected_format": "xlsx", "header_row": 3, "note": "delivered as XLSX, configured CSV",
                   "headers": _header_map(json.dumps({"申报编号": "declaration_id", "11010519491231002X": None,
                                                      "<b>备用</b>": None})),
                   "extra_columns": None}],
        "rows": {"bronze": 3, "silver": 2, "quarantine": 1, "duplicates": 0},
        "quarantine_reasons": {"UNKNOWN_VOCAB": 1}, "duplicate_reasons": {},
        "unknown_headers": ["####…", "<b>备用</b>"],
        "unknown_vocab": [{"column": "relation", "value": "<img src=x>", "rows": 1}],
        "date_forms": [{"column": "declared_at", "value": "YYYY年MM月D日", "rows": 2}], "number_forms": [],
        "invalid_id_rows": {}, "files_by_status": {"loaded": 1},
    }
    return {"date": "2026-11-01", "sources": {"declarations": src},
            "ignored": [{"path": "declarations/x.CSV.bak", "kind": "not_matching_glob", "source": "declarations",
                         "detail": None}]}


def test_html_is_escaped_and_shows_what_was_read():
    html = render_html(_data())
    assert "<script>" not in html and "<img" not in html and "<b>备用</b>" not in html
    assert "&lt;img src=x&gt;" in html and "YYYY年MM月D日" in html and "UNKNOWN_VOCAB" in html
    assert "申报编号 → declaration_id" in html and "not_matching_glob" in html
    assert "11010519491231002X" not in html  # a data row read as a header: masked


def test_safe_text_masks_digit_runs_and_control_characters():
    assert safe_text("11010519491231002X的朋友") == "####…的朋友"
    assert safe_text("电话 13800138000") == "电话 ####…"
    assert safe_text("a\x00b\nc") == "a b c"
    assert len(safe_text("长" * 500)) == 81
    assert safe_text(None) is None
    assert _header_map("not json") == [] and _header_map('["a"]') == []


def test_cli_and_report_step_are_wired():
    import importlib

    from gridlake.cli import build_parser
    from gridlake.pipeline import STAGES

    args = build_parser().parse_args(["delivery-report", "--date", "2026-11-01"])
    module, func = args.handler.split(":")
    assert callable(getattr(importlib.import_module(module), func)) and args.date == "2026-11-01"
    module, func = STAGES["report"].split(":")
    assert getattr(importlib.import_module(module), func).__name__ == "run_reports"
