"""Strip every raw value from a GX validation result before anything is written.

Kept: counts and percentages, aggregate observed values that are numbers, booleans or
dates, column names, and up to :data:`MAX_ROW_IDS` surrogate row ids of failing rows
(only the suite's ``row_id_columns``, e.g. ``_source_file``/``_row_number``).
Dropped: ``partial_unexpected_*``, ``unexpected_list``, ``unexpected_index_list``,
``unexpected_rows``, ``details``, queries, and observed values that could be data.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ROW_IDS = 20
_COUNT_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count", "missing_percent",
               "unexpected_percent_total", "unexpected_percent_nonmissing")
_FORBIDDEN = re.compile(r"partial_unexpected|unexpected_list|unexpected_index_list|unexpected_rows|"
                        r"unexpected_index_query|details|unexpected_values|value_counts")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?$")
#: Expectations whose observed value is a list of column names (schema, not data).
_COLUMN_LIST_TYPES = {"expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list"}


def row_ids(result: dict[str, Any], id_columns: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """Surrogate ids of failing rows from GX's index list (only the id columns, at most MAX_ROW_IDS)."""
    out: list[dict[str, Any]] = []
    for key in ("partial_unexpected_index_list", "unexpected_index_list"):
        for entry in result.get(key) or []:
            if not isinstance(entry, dict):
                continue
            cols = [c for c in id_columns if c in entry]
            if cols and all(isinstance(entry[c], list) for c in cols):  # {col: [v1, v2, ...]}
                for vals in zip(*(entry[c] for c in cols), strict=False):
                    out.append(dict(zip(cols, vals, strict=True)))
            elif cols:
                out.append({c: entry[c] for c in cols})
        if out:
            break
    return [{k: _scalar(v) for k, v in r.items()} for r in out[:MAX_ROW_IDS]]


def _scalar(v: Any) -> Any:
    return v if isinstance(v, (int, float, bool)) or v is None else str(v)


def _safe_observed(etype: str, value: Any) -> bool:
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        return bool(_DATE.match(value))
    if etype in _COLUMN_LIST_TYPES and isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return False


def sanitise_expectation_result(r: dict[str, Any], id_columns: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """One expectation result (``to_json_dict`` form) with no raw values."""
    config = dict(r.get("expectation_config") or {})
    etype = str(config.get("type", ""))
    result = dict(r.get("result") or {})
    clean: dict[str, Any] = {k: result[k] for k in _COUNT_KEYS if k in result}
    if "observed_value" in result and _safe_observed(etype, result["observed_value"]):
        clean["observed_value"] = result["observed_value"]
    ids = row_ids(result, id_columns)
    if ids:
        clean["failing_row_ids"] = ids
    exc = dict(r.get("exception_info") or {})
    raised = bool(exc.get("raised_exception"))
    return {
        "success": bool(r.get("success")),
        "expectation_config": config,
        "result": clean,
        "meta": dict(r.get("meta") or {}),
        # An exception message may quote data: keep only that one was raised and its type.
        "exception_info": {"raised_exception": raised, "exception_traceback": None,
                           "exception_message": _exception_type(exc.get("exception_message")) if raised else None},
    }


def _exception_type(message: Any) -> str:
    head = str(message or "").split(":", 1)[0].strip()
    return head if re.fullmatch(r"[A-Za-z_][\w.]{0,80}", head) else "error during validation"


def sanitise_suite_result(doc: dict[str, Any], id_columns: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """A whole suite validation result (``to_json_dict`` form) with no raw values."""
    out = {k: v for k, v in doc.items() if k != "results"}
    out["results"] = [sanitise_expectation_result(r, id_columns) for r in doc.get("results") or []]
    assert_clean(out)
    return out


def assert_clean(obj: Any, path: str = "") -> None:
    """Defensive: raise if any forbidden key survived anywhere in ``obj``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if _FORBIDDEN.search(str(k)):
                raise ValueError(f"quality output would keep raw values under {path}/{k}")
            assert_clean(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            assert_clean(v, f"{path}[{i}]")
