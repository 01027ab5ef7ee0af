"""Write-audit-publish: validate a frame with its suite right before it is published.

:func:`audit_dataframe` is what :meth:`gridlake.pipeline.RunContext.audit` calls. It runs the
table's suite (``expectations/<layer>.<table>.yaml``) as a GX Checkpoint in an ephemeral GX context
(nothing GX writes by itself touches disk), on the Spark frame or, for a small frame whose suite means
the same there, on its columns collected into pandas (:mod:`gridlake.quality.engines`), then

1. sanitises the result (counts and surrogate row ids only) and stores it as
   ``<settings.quality>/<run_date>/<layer>.<table>.json``;
2. merges one row per expectation into the Delta table ``quality.results``;
3. raises :class:`QualityGateError` when an error-level expectation failed (publication stops),
   naming the suite, the expectations and the counts; warnings are only returned/recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridlake.errors import QualityGateError
from gridlake.frames import LINEAGE_CUT_MAX_ROWS, cut_if_small
from gridlake.quality import gx, history
from gridlake.quality.derived import add_derived
from gridlake.quality.engines import PandasPlan, pandas_parameters, pandas_plan, to_pandas_frame
from gridlake.quality.sanitise import sanitise_suite_result
from gridlake.quality.suites import ExpectationSpec, SuiteSpec, build_suite, load_suite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from gridlake.context import RunContext

log = logging.getLogger(__name__)

_CTX_KEY = "quality_gx_context"
# One GX context serves a night and is not thread-safe: a stage that audits from several threads
# (``spark.stage_threads``) validates one frame at a time; its other work goes on meanwhile.
_GX_LOCK = threading.RLock()


def _gx_context(ctx: RunContext) -> Any:
    """One ephemeral GX context per night (kept in ``ctx.extras``), progress bars off."""
    with _GX_LOCK:
        context = ctx.extras.get(_CTX_KEY)
        if context is None:
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            context.data_sources.add_spark("gridlake")
            context.data_sources.add_pandas("gridlake_pandas")
            ctx.extras[_CTX_KEY] = context
        return context


def _checkpoint(context: Any, spec: SuiteSpec, expectations: list[ExpectationSpec], id_columns: list[str],
                pandas: PandasPlan | None = None) -> Any:
    """(Re)create the suite, the whole-dataframe batch definition, validation definition and checkpoint
    (on the pandas data source, with the plan's kwargs, when ``pandas`` is given)."""
    name = spec.name
    for coll in (context.checkpoints, context.validation_definitions, context.suites):
        try:
            coll.delete(name)
        except Exception:  # noqa: BLE001 - absent on first use
            pass
    ds = context.data_sources.get("gridlake_pandas" if pandas else "gridlake")
    try:
        asset = ds.get_asset(name)
    except Exception:  # noqa: BLE001 - GX raises LookupError (or its own error) when absent
        asset = ds.add_dataframe_asset(name)
    try:
        batch_def = asset.get_batch_definition(name)
    except Exception:  # noqa: BLE001 - KeyError when absent
        batch_def = asset.add_batch_definition_whole_dataframe(name)
    suite = context.suites.add(build_suite(spec, expectations, pandas.kwargs if pandas else None))
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_def, suite=suite))
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY",
        "include_unexpected_rows": False,
        "return_unexpected_index_query": False,
        "exclude_unexpected_values": True,  # index columns only, never the offending values
        "partial_unexpected_count": 20 if id_columns else 0,
    }
    if id_columns:
        result_format["unexpected_index_column_names"] = id_columns
    return context.checkpoints.add(gx.Checkpoint(name=name, validation_definitions=[vd], actions=[],
                                                 result_format=result_format))


def _describe_failure(spec: SuiteSpec, exp: ExpectationSpec, r: dict[str, Any]) -> str:
    res = r.get("result") or {}
    target = ",".join(exp.columns)
    if exp.kwargs.get("row_condition"):
        target += f" where {exp.kwargs['row_condition']}"
    head = f"{spec.name}: {exp.type}({target}) failed"
    if r.get("exception_info", {}).get("raised_exception"):
        return f"{head}: {r['exception_info'].get('exception_message')} raised"
    if "unexpected_count" in res:
        return f"{head}: {res['unexpected_count']} of {res.get('element_count')} rows unexpected"
    bounds = {k: v for k, v in (r.get("expectation_config") or {}).get("kwargs", {}).items()
              if k in ("min_value", "max_value", "value")}
    return f"{head}: observed {res.get('observed_value')!r}, expected {bounds}"


def _parameters(ctx: RunContext, spec: SuiteSpec) -> tuple[dict[str, Any], list[int]]:
    nights = int(spec.volume.get("nights", 7))
    counts = history.previous_counts_cached(ctx, spec.layer, spec.table, nights)
    vmin, vmax = history.volume_band(counts, spec.volume.get("low", 0.5), spec.volume.get("high", 2.0),
                                     int(spec.volume.get("min_history", 3)))
    return {
        "run_date": ctx.date_str,
        "run_date_next": (ctx.run_date + dt.timedelta(days=1)).isoformat(),
        "volume_min": vmin,
        "volume_max": vmax,
    }, counts


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


#: expectations about the whole table, not its rows: on a night's changes they are evaluated on the table's size
TABLE_LEVEL_TYPES = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})


def _share(exp: ExpectationSpec) -> bool:
    """An expectation about a share of the table's rows (``mostly``): measured on the whole table."""
    return exp.kwargs.get("mostly") is not None


def audit_dataframe(ctx: RunContext, layer: str, table: str, df: DataFrame,
                    table_rows: int | None = None, whole: DataFrame | None = None) -> dict[str, Any]:
    """Validate ``df`` before it is published as ``layer.table``; raise on error-level failures.

    With ``table_rows``, ``df`` is the night's changes to a table kept one row per row id (every row the
    night writes that the table does not hold as it is; the rows it keeps were audited the night they were
    written) and the table will hold ``table_rows`` rows afterwards: the row-level expectations run on the
    changes, the table-level ones (:data:`TABLE_LEVEL_TYPES`: the volume band) on a frame of ``table_rows``
    rows, and the night's row count recorded for later volume bands is the table's. A uniqueness expectation
    on the row id holds for the table when the writer keeps one row per id (a MERGE by that id; a frame
    checked for it: :func:`jobs.matching.person_publish.changes`). An expectation about a share of the rows
    (``mostly``) runs on ``whole``, the table as it will be (a Spark frame, computed only for it), and is
    skipped with its reason when ``whole`` is not given.

    Returns ``{"suite", "success", "rows", "evaluated", "failed_errors", "failed_warnings",
    "warnings": [...], "skipped": [...], "result_file"}`` (and ``changed_rows`` with ``table_rows``; recorded
    in the manifest by the caller). A table without a suite file is published with ``{"suite": None}``.
    """
    spec = load_suite(layer, table)
    if spec is None:
        log.warning("no expectation suite for %s.%s; published without audit", layer, table)
        return {"suite": None, "success": True}
    frame, unavailable = add_derived(ctx, df, spec.derived)
    if whole is not None:   # only the helper columns the share expectations read (a lookup is a join)
        read = {c for e in spec.expectations if _share(e) for c in e.columns}
        whole = add_derived(ctx, whole, {k: v for k, v in spec.derived.items() if k in read})[0]
    # the suite's checks are decided on the frame's own columns; only those the suite reads are kept for GX
    # (a silver batch's 20-odd columns, its parsed address among them, were copied into the cache whole)
    columns = set(frame.columns)
    frame = frame.select(*read_columns(spec, frame.columns)).persist()
    rows = frame.count()
    small = _small_frame(ctx, spec, frame, rows)
    if small is not None:
        frame.unpersist()
        return _audit(ctx, spec, small[0], small[1], rows, unavailable, columns, table_rows, whole)
    # GX asks dozens of small queries of the frame, and over a persisted frame Spark re-analyses the whole
    # transform's plan (and matches it against the cache) for each: a small frame's lineage is cut instead
    frame = cut_if_small(frame, rows, LINEAGE_CUT_MAX_ROWS)
    try:
        return _audit(ctx, spec, frame, None, rows, unavailable, columns, table_rows, whole)
    finally:
        frame.unpersist()


def read_columns(spec: SuiteSpec, columns: list[str]) -> list[str]:
    """The ``columns`` the suite reads, in their order: every expectation's columns, the row ids, and any
    name a ``row_condition`` mentions (a word of the condition that is a column: more than it reads, never
    less). At least one column, so that a suite of table-level expectations still counts rows."""
    read = {c for e in spec.expectations for c in e.columns} | set(spec.row_id_columns)
    for e in spec.expectations:
        read |= set(re.findall(r"\w+", str(e.kwargs.get("row_condition") or "")))
    return [c for c in columns if c in read] or list(columns[:1])


def _small_frame(ctx: RunContext, spec: SuiteSpec, frame: DataFrame, rows: int) -> tuple[Any, PandasPlan] | None:
    """``(pandas frame, plan)`` when ``frame`` (persisted, ``rows`` rows) has at most ``validation.pandas_max_rows``
    rows and its suite means the same on pandas; else None (validated on Spark)."""
    if rows > ctx.settings.validation.pandas_max_rows:
        return None
    id_columns = [c for c in spec.row_id_columns if c in frame.columns]
    runnable = [e for e in spec.expectations if all(c in frame.columns for c in e.columns)]
    plan, why = pandas_plan(runnable, frame.schema, id_columns)
    if plan is None:
        log.info("quality %s: validated on Spark (%s)", spec.name, why)
        return None
    try:
        return to_pandas_frame(frame, plan), plan
    except Exception as exc:  # noqa: BLE001 - e.g. a timestamp pandas cannot hold: Spark validates it
        log.info("quality %s: validated on Spark (collecting it failed: %s)", spec.name, type(exc).__name__)
        return None


def _audit(ctx: RunContext, spec: SuiteSpec, frame: Any, pandas: PandasPlan | None, rows: int,
           unavailable: set[str], columns: set[str], table_rows: int | None = None,
           whole: DataFrame | None = None) -> dict[str, Any]:
    """Validate ``frame`` (a Spark frame, or a pandas one with its ``pandas`` plan; ``columns``: the Spark
    frame's, which decide what runs; ``table_rows``: the frame is the table's changes, see
    :func:`audit_dataframe`) and publish the verdict."""
    runnable: list[ExpectationSpec] = []
    skipped: list[tuple[ExpectationSpec, str]] = []
    unrunnable: list[tuple[ExpectationSpec, str]] = []  # error-level checks that cannot run: they fail closed
    for exp in spec.expectations:
        missing = [c for c in exp.columns if c not in columns]
        # a derived column computed from a source column the frame lacks is a missing column too
        missing += [f"{c} (from {spec.derived[c]['column']})" for c in exp.columns if c in unavailable
                    and spec.derived.get(c, {}).get("column") and spec.derived[c]["column"] not in columns]
        if missing:
            why = f"column(s) missing: {', '.join(missing)}"
            (unrunnable if exp.severity == "error" else skipped).append((exp, why))
        elif set(exp.columns) & unavailable:
            skipped.append((exp, "derived column unavailable (lookup table does not exist yet)"))
        elif table_rows is not None and _share(exp) and whole is None:
            skipped.append((exp, "a share of the whole table, not of a night's changes (the table was not given)"))
        else:
            runnable.append(exp)
    id_columns = [c for c in spec.row_id_columns if c in columns]
    params, counts = _parameters(ctx, spec)
    spark_params = params
    if pandas is not None:
        params = pandas_parameters(params)
    context = _gx_context(ctx)
    run_id = gx.RunIdentifier(run_name=ctx.run_id, run_time=dt.datetime.now(dt.UTC))

    def validate(expectations: list[ExpectationSpec], index_columns: list[str], data: Any = frame,
                 plan: PandasPlan | None = pandas, parameters: dict[str, Any] = params) -> dict[str, Any]:
        with _GX_LOCK:
            checkpoint = _checkpoint(context, spec, expectations, index_columns, plan)
            result = checkpoint.run(batch_parameters={"dataframe": data}, expectation_parameters=parameters,
                                    run_id=run_id)
            return next(iter(result.run_results.values())).to_json_dict()

    on_table = [e for e in runnable if table_rows is not None and e.type in TABLE_LEVEL_TYPES]
    on_whole = [e for e in runnable if table_rows is not None and _share(e) and e not in on_table]
    on_rows = [e for e in runnable if e not in on_table and e not in on_whole]
    # Counts first (one pass, no per-expectation row lookups); only the expectations that failed
    # are run again to fetch the surrogate ids of their failing rows.
    raw = validate(on_rows, [])
    failed = {r["expectation_config"]["meta"]["gridlake_key"] for r in raw["results"] if not r["success"]}
    if failed and id_columns:
        detail = validate([e for e in on_rows if e.key in failed], id_columns)
        by_key = {r["expectation_config"]["meta"]["gridlake_key"]: r for r in detail["results"]}
        raw["results"] = [by_key.get(r["expectation_config"]["meta"]["gridlake_key"], r) for r in raw["results"]]
    changed_rows = None
    if table_rows is not None:
        changed_rows, rows = rows, table_rows
    if on_table:
        # the table after the MERGE as GX sees a table-level expectation: its number of rows (no columns)
        import pandas as pd

        sized = pd.DataFrame(index=pd.RangeIndex(table_rows))
        raw["results"] += validate(on_table, [], sized, PandasPlan((), {e.key: dict(e.kwargs) for e in on_table}),
                                   pandas_parameters(spark_params))["results"]
    if on_whole:
        raw["results"] += validate(on_whole, [], whole, None, spark_params)["results"]
    doc = sanitise_suite_result(raw, id_columns)
    doc["meta"]["gridlake"] = {"run_id": ctx.run_id, "run_date": ctx.date_str, "layer": spec.layer,
                               "table": spec.table, "rows": rows, "changed_rows": changed_rows,
                               "previous_counts": counts,
                               "row_id_columns": id_columns, "engine": "spark" if pandas is None else "pandas",
                               "skipped": [{"expectation": e.key, "severity": e.severity, "dimension": e.dimension,
                                            "reason": why} for e, why in skipped],
                               "failed_unrunnable": [{"expectation": e.key, "severity": e.severity,
                                                      "dimension": e.dimension, "reason": why}
                                                     for e, why in unrunnable]}
    out_file = ctx.settings.quality / ctx.date_str / f"{spec.name}.json"
    _write_json(out_file, doc)

    by_key = {e.key: e for e in runnable}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    base = {"run_id": ctx.run_id, "run_date": ctx.run_date, "layer": spec.layer, "table": spec.table,
            "suite": spec.name, "validated_at": now}
    hist_rows: list[dict[str, Any]] = [{**base, "expectation": history.ROW_COUNT, "expectation_type": "metric",
                                        "dimension": "timeliness", "severity": "warning", "success": True,
                                        "skipped": False, "element_count": rows}]
    errors: list[str] = []
    warnings: list[str] = []
    for r in doc["results"]:
        exp = by_key[r["expectation_config"]["meta"]["gridlake_key"]]
        res = r["result"]
        hist_rows.append({**base, "expectation": exp.key, "expectation_type": exp.type, "dimension": exp.dimension,
                          "severity": exp.severity, "success": bool(r["success"]), "skipped": False,
                          "element_count": res.get("element_count", rows),
                          "unexpected_count": res.get("unexpected_count"),
                          "unexpected_percent": _float(res.get("unexpected_percent"))})
        if not r["success"]:
            (errors if exp.severity == "error" else warnings).append(_describe_failure(spec, exp, r))
    for exp, _why in skipped:
        hist_rows.append({**base, "expectation": exp.key, "expectation_type": exp.type, "dimension": exp.dimension,
                          "severity": exp.severity, "success": None, "skipped": True})
    for exp, why in unrunnable:
        hist_rows.append({**base, "expectation": exp.key, "expectation_type": exp.type, "dimension": exp.dimension,
                          "severity": exp.severity, "success": False, "skipped": False})
        errors.append(f"{spec.name}: {exp.type}({','.join(exp.columns)}) cannot run ({why}); "
                      "an error-level check that cannot run fails")
    history.record(ctx, hist_rows)

    summary = {
        "suite": spec.name,
        "engine": "spark" if pandas is None else "pandas",
        "success": not errors,
        "rows": rows,
        **({"changed_rows": changed_rows} if changed_rows is not None else {}),
        "evaluated": len(runnable),
        "failed_errors": len(errors),
        "failed_warnings": len(warnings),
        "errors": errors,
        "warnings": warnings,
        "skipped": [f"{e.key}: {why}" for e, why in skipped],
        "result_file": str(out_file),
    }
    for w in warnings:
        log.warning("quality warning: %s", w)
    if errors:
        ctx.manifest.record_quality(spec.name, summary)
        try:
            from gridlake.quality.docs import build_data_docs

            build_data_docs(ctx.settings)
        except Exception:  # noqa: BLE001 - the gate's verdict matters more than the docs
            log.exception("could not build Data Docs after a failed gate")
        raise QualityGateError("; ".join(errors) + "; publication stopped")
    return summary


def _float(v: Any) -> float | None:
    return None if v is None else float(v)
