"""Expectation suites declared as data: ``expectations/<layer>.<table>.yaml``.

A suite file::

    suite: silver.housing
    description: ...
    row_id_columns: [_source_file, _row_number]   # surrogate ids reported for failing rows
    volume: {nights: 7, low: 0.5, high: 2.0}      # band for $volume_min / $volume_max
    derived:                                      # helper columns computed before validation
      _house_code_known: {lookup: silver.housing, column: house_code, key: house_code, where: is_current}
      _id_ok: {check: id_checksum, column: id_number}
      _late: {expr: "declared_at > updated_at"}
    expectations:
      - type: expect_column_values_to_be_unique
        kwargs: {column: house_code, row_condition: "is_current = true", condition_parser: spark}
        severity: error          # error stops publication, warning is recorded
        dimension: uniqueness    # GB/T 36344: completeness uniqueness validity consistency accuracy timeliness
        note: one current row per house code

Suite parameters (``{$PARAMETER: name}`` in kwargs) filled at validation time:
``run_date`` (YYYY-MM-DD), ``run_date_next`` (the day after; for timestamps),
``volume_min`` / ``volume_max`` (from earlier nights' row counts in ``quality.results``).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gridlake.config import REPO_ROOT
from gridlake.errors import GridlakeError
from gridlake.quality import DIMENSIONS, SEVERITIES, gx

SUITES_DIR = REPO_ROOT / "expectations"
PARAMETERS = ("run_date", "run_date_next", "volume_min", "volume_max")
DEFAULT_ROW_IDS = ("_source_file", "_row_number")


class SuiteError(GridlakeError):
    """A suite file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, with its severity and quality dimension."""

    type: str
    kwargs: dict[str, Any]
    severity: str
    dimension: str
    note: str = ""

    @property
    def columns(self) -> list[str]:
        """Columns the expectation reads (from ``column``, ``column_A/B``, ``column_list``)."""
        cols = [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]
        cols += list(self.kwargs.get("column_list") or [])
        return [str(c) for c in cols]

    @property
    def key(self) -> str:
        """Readable, stable identifier: ``type(columns | condition)``."""
        inner = ",".join(self.columns)
        cond = self.kwargs.get("row_condition")
        if cond:
            inner = f"{inner} | {cond}" if inner else str(cond)
        return f"{self.type}({inner})"

    def parameters(self) -> set[str]:
        """Names of the suite parameters used in the kwargs."""
        return {v["$PARAMETER"] for v in self.kwargs.values() if isinstance(v, dict) and "$PARAMETER" in v}


@dataclass(frozen=True)
class SuiteSpec:
    """A parsed suite file."""

    name: str
    layer: str
    table: str
    expectations: tuple[ExpectationSpec, ...]
    row_id_columns: tuple[str, ...] = DEFAULT_ROW_IDS
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)
    volume: dict[str, float] = field(default_factory=dict)
    description: str = ""
    path: str = ""


def suite_path(layer: str, table: str, directory: Path | None = None) -> Path:
    return (directory or SUITES_DIR) / f"{layer}.{table}.yaml"


def _parse(doc: dict[str, Any], where: str) -> SuiteSpec:
    name = str(doc.get("suite") or "")
    if name.count(".") != 1:
        raise SuiteError(f"{where}: 'suite' must be '<layer>.<table>', got {name!r}")
    layer, table = name.split(".")
    specs = []
    known = set(gx.expectations.__dict__)  # class names, e.g. ExpectColumnValuesToBeUnique
    for i, raw in enumerate(doc.get("expectations") or []):
        at = f"{where}: expectations[{i}]"
        etype = str(raw.get("type", ""))
        if _class_name(etype) not in known:
            raise SuiteError(f"{at}: unknown expectation type {etype!r}")
        severity = str(raw.get("severity", "error"))
        if severity not in SEVERITIES:
            raise SuiteError(f"{at}: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        dimension = str(raw.get("dimension", ""))
        if dimension not in DIMENSIONS:
            raise SuiteError(f"{at}: dimension must be one of {', '.join(DIMENSIONS)}, got {dimension!r}")
        kwargs = dict(raw.get("kwargs") or {})
        spec = ExpectationSpec(etype, kwargs, severity, dimension, str(raw.get("note", "")))
        unknown = spec.parameters() - set(PARAMETERS)
        if unknown:
            raise SuiteError(f"{at}: unknown suite parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(PARAMETERS)}")
        specs.append(spec)
    if not specs:
        raise SuiteError(f"{where}: no expectations")
    derived = {str(k): dict(v) for k, v in (doc.get("derived") or {}).items()}
    for col, d in derived.items():
        if not ({"lookup", "check", "expr"} & set(d)):
            raise SuiteError(f"{where}: derived.{col} needs one of lookup, check, expr")
    return SuiteSpec(
        name=name, layer=layer, table=table, expectations=tuple(specs),
        row_id_columns=tuple(doc.get("row_id_columns") or DEFAULT_ROW_IDS),
        derived=derived, volume={k: float(v) for k, v in (doc.get("volume") or {}).items()},
        description=str(doc.get("description", "")), path=where,
    )


@functools.lru_cache(maxsize=128)
def _load_cached(path: str, mtime: float) -> SuiteSpec:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return _parse(doc, path)


def load_suite(layer: str, table: str, directory: Path | None = None) -> SuiteSpec | None:
    """The suite of ``layer.table``, or None when the repo keeps none for it."""
    path = suite_path(layer, table, directory)
    if not path.exists():
        return None
    spec = _load_cached(str(path), path.stat().st_mtime)
    if (spec.layer, spec.table) != (layer, table):
        raise SuiteError(f"{path}: declares suite {spec.name!r}, expected {layer}.{table}")
    return spec


def all_suites(directory: Path | None = None) -> list[SuiteSpec]:
    """Every suite file in ``expectations/``, sorted by name."""
    out = []
    for p in sorted((directory or SUITES_DIR).glob("*.yaml")):
        layer, _, table = p.stem.partition(".")
        spec = load_suite(layer, table, directory)
        if spec:
            out.append(spec)
    return out


def _class_name(etype: str) -> str:
    return "".join(part.capitalize() for part in etype.split("_"))


def build_expectation(spec: ExpectationSpec, kwargs: dict[str, Any] | None = None) -> Any:
    """The GX Expectation object of one spec (severity and dimension kept in ``meta``); ``kwargs`` replace
    the spec's own (the same check written for another engine, e.g. a row condition for pandas)."""
    cls = getattr(gx.expectations, _class_name(spec.type))
    kwargs = copy.deepcopy(spec.kwargs if kwargs is None else kwargs)
    meta = {"severity": spec.severity, "dimension": spec.dimension, "gridlake_key": spec.key}
    if spec.note:
        meta["notes"] = spec.note
    return cls(**kwargs, meta=meta, severity="critical" if spec.severity == "error" else "warning")


def build_suite(spec: SuiteSpec, expectations: list[ExpectationSpec] | None = None,
                kwargs_by_key: dict[str, dict[str, Any]] | None = None) -> Any:
    """A GX ExpectationSuite (not yet added to a context) from a spec (``kwargs_by_key``: see build_expectation)."""
    chosen = expectations if expectations is not None else spec.expectations
    by_key = kwargs_by_key or {}
    return gx.ExpectationSuite(name=spec.name, expectations=[build_expectation(e, by_key.get(e.key)) for e in chosen],
                               meta={"notes": spec.description} if spec.description else None)
