"""Narrowing the records an incremental linkage looks at before their blocking keys are computed.

An incremental night asks :func:`matching.spark.affected_left` which records share a blocking key with a
house that changed. A night changes a few houses, yet computing every record's keys means the comparisons'
transforms (pandas UDFs) over every record of the lake. :func:`narrow` brings the changed houses to the
driver (up to :data:`NARROW_MAX_RIGHT`) and keeps only the records whose untransformed components could
give one of their keys; ``affected_left`` then decides exactly, over those records. It changes no answer:
``tests/integration/test_incremental_matching.py`` compares both.

Not among :data:`jobs.matching.runner.DECIDING_MODULES`: it decides nothing, so changing it does not make
the next night re-link every record.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from matching.spec import LinkageSpec

__all__ = ["NARROW_MAX_RIGHT", "narrow", "narrowing_condition", "plain_components", "transformed_columns"]

#: up to this many changed right records, :func:`narrow` narrows the left side by their values
NARROW_MAX_RIGHT = 5_000


def transformed_columns(spec: LinkageSpec) -> set[str]:
    """Columns whose blocking values may pass through a comparison's transform: every column of a comparison
    with one. ``matching.spark`` transforms fewer (one-column comparisons, not ``nfkc``); counting more only
    narrows less, so the narrowing stays a necessary condition if it ever transforms more of them."""
    return {col for c in spec.comparisons if c.transform is not None for col in c.columns}


def plain_components(rule: Sequence[str], transformed: set[str]) -> list[str]:
    """The components of a blocking ``rule`` that are a column as delivered: no slice, no transform."""
    from matching.spec import parse_key

    out = []
    for key in rule:
        base, start, stop = parse_key(key)
        if start is None and stop is None and base not in transformed:
            out.append(base)
    return out


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def narrowing_condition(rows: Sequence[Any], rules: Sequence[Sequence[str]], spec: LinkageSpec) -> Column | None:
    """A condition every left record meets that shares a key of ``rules`` with one of the right ``rows``
    (``pyspark.sql.Row``), or None when it cannot be stated safely.

    ``matching.spark`` joins a rule's n components with a control character (``\\x1f``) and compares the
    joined texts. When no right value holds a control character (checked here, after the comparisons'
    transforms; else None), a right key holds exactly n - 1 of them, so a left key equal to it does too: each
    of its components equals the right one. A record whose plain components (:func:`plain_components`) are
    not among the right rows' values of those columns, for every rule, therefore shares no key. None as well
    when a rule has no plain component, or a plain value is not text (Spark's cast of it is compared).
    """
    from pyspark.sql import functions as F

    from matching.compare import transform_value

    transformed = transformed_columns(spec)
    plains = [plain_components(rule, transformed) for rule in rules]
    if not rules or any(not p for p in plains):
        return None
    transforms: dict[str, list[str]] = {}
    for comp in spec.comparisons:  # in the order matching.spark applies them
        if len(comp.columns) == 1 and comp.transform is not None:
            transforms.setdefault(comp.columns[0], []).append(comp.transform)
    plain_columns = {c for p in plains for c in p}
    for r in rows:
        for c, v in r.asDict().items():
            if v is None:
                continue
            if not isinstance(v, str):
                if c in plain_columns:
                    return None
                continue
            if _has_control(v):
                return None
            for t in transforms.get(c, ()):
                v = transform_value(v, t) or ""
                if _has_control(v):
                    return None
    condition = F.lit(False)
    for plain in plains:
        part = F.lit(True)
        for c in plain:
            part = part & F.col(c).cast("string").isin(sorted({r[c] for r in rows if r[c] is not None}))
        condition = condition | part
    return condition


def narrow(left: DataFrame, changed_right: DataFrame, spec: LinkageSpec) -> tuple[DataFrame, DataFrame]:
    """``(left, changed_right)`` for :func:`matching.spark.affected_left`: up to :data:`NARROW_MAX_RIGHT`
    changed right records are brought to the driver (one small Spark job) and returned as a local frame,
    and ``left`` keeps only the records :func:`narrowing_condition` allows; else both as given."""
    rows = changed_right.limit(NARROW_MAX_RIGHT + 1).collect()
    if len(rows) > NARROW_MAX_RIGHT:
        return left, changed_right
    rules = list(spec.blocking) + list(spec.blocking_fallback or ())
    condition = narrowing_condition(rows, rules, spec)
    right = left.sparkSession.createDataFrame(rows, changed_right.schema)
    return (left if condition is None else left.where(condition)), right
