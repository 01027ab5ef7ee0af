"""Blocking for the pandas engine: the spec's equi-join rules as integer joins.

Every blocking key (a column or a slice such as ``complex[:2]``) is coded jointly for both
sides once (:mod:`matching.codes`), each rule's keys are combined into one code, and the
right side is indexed once per rule (its positions sorted by code, with each code's start
and count). A left record then finds its block by one array lookup; the pairs of a chunk
are expanded with ``numpy.repeat`` and deduplicated as ``left * n_right + right`` ints.

Semantics (shared with the Spark adapter, :func:`matching.spark.block_spark_info`): null
keys never join; a left record whose key matches more than ``spec.max_block_size`` right
records under a rule is *too vague* for that rule (no pairs, reported); the
``blocking_fallback`` rules run only for left records the main rules found nothing for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.codes import combine_codes, joint_codes, map_unique
from matching.spec import LinkageSpec, parse_key

__all__ = ["Blocker", "key_values", "block_info", "rule_name"]


def rule_name(rule: tuple[str, ...]) -> str:
    """``complex+building+room``: how a rule is named in ``too_vague`` explanations."""
    return "+".join(rule)


def key_values(df: pd.DataFrame, key: str) -> np.ndarray:
    """One blocking key's value per row of a prepared side: the column, or its slice (a slice of a
    value shorter than 3 characters is missing: too unspecific to block on)."""
    base, start, stop = parse_key(key)
    col = df[base] if base in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)
    if start is None and stop is None:
        return col.to_numpy(dtype=object)
    return map_unique(col, lambda v: v[start:stop] if isinstance(v, str) and len(v) >= 3 else None)


class _RuleIndex:
    """The right side of one rule: right positions sorted by key code, and each code's start and count."""

    def __init__(self, codes: np.ndarray, n_codes: int) -> None:
        pos = np.flatnonzero(codes >= 0)
        self.rpos = pos[np.argsort(codes[pos], kind="stable")]
        self.count = np.bincount(codes[pos], minlength=n_codes).astype(np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)


class Blocker:
    """Candidate pairs of one linkage by position: ``Blocker(left, right, spec).pairs(left_positions)``.

    ``left`` and ``right`` are prepared sides (:func:`matching.engine.prepare`); positions are row
    numbers in them. Keys are coded and the right side indexed once; :meth:`pairs` is then called per
    chunk of left rows.
    """

    def __init__(self, left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec) -> None:
        self.n_left, self.n_right = len(left), len(right)
        self.cap = spec.max_block_size
        keys = sorted({k for rule in spec.blocking + spec.blocking_fallback for k in rule})
        # a side blocked against itself (``right is left``) is coded once: the left codes are the right ones
        # (the codes the concatenation of two equal sides gets: every first occurrence is in the first half)
        same = right is left
        coded = {}
        for key in keys:
            values = key_values(left, key)
            lcodes, rcodes, _ = joint_codes(values, values if same else key_values(right, key))
            coded[key] = lcodes if same else np.concatenate([lcodes, rcodes])
        self._rules: dict[tuple[str, ...], tuple[np.ndarray, _RuleIndex]] = {}
        for rule in dict.fromkeys(spec.blocking + spec.blocking_fallback):
            codes = combine_codes([coded[k] for k in rule])
            n_codes = int(codes.max()) + 1 if len(codes) else 0
            lcodes, rcodes = (codes, codes) if same else (codes[: self.n_left], codes[self.n_left:])
            self._rules[rule] = (lcodes, _RuleIndex(rcodes, n_codes))
        self.main, self.fallback = spec.blocking, spec.blocking_fallback

    def _rule_pairs(self, rule: tuple[str, ...], lpos: np.ndarray, vague: dict[int, list[str]]
                    ) -> tuple[np.ndarray, np.ndarray]:
        lcodes, index = self._rules[rule]
        codes = lcodes[lpos]
        hit = codes >= 0
        lpos, codes = lpos[hit], codes[hit]
        count = index.count[codes]
        if self.cap is not None:
            too_big = count > self.cap
            name = rule_name(rule)
            for p in lpos[too_big].tolist():
                vague.setdefault(p, []).append(name)
            count = np.where(too_big, 0, count)
        keep = count > 0
        lpos, codes, count = lpos[keep], codes[keep], count[keep]
        total = int(count.sum())
        left = np.repeat(lpos, count)
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        right = index.rpos[np.repeat(index.start[codes], count) + within]
        return left, right

    def _union(self, rules: tuple[tuple[str, ...], ...], lpos: np.ndarray, vague: dict[int, list[str]]
               ) -> np.ndarray:
        found = [self._rule_pairs(rule, lpos, vague) for rule in rules]
        if not found:
            return np.empty(0, dtype=np.int64)
        left = np.concatenate([f[0] for f in found]).astype(np.int64, copy=False)
        right = np.concatenate([f[1] for f in found]).astype(np.int64, copy=False)
        return pd.unique(left * max(1, self.n_right) + right)    # hash-based: no sort

    def pairs(self, lpos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict[int, list[str]]]:
        """(left positions, right positions) of the candidate pairs of the left rows ``lpos`` (all rows when
        None), without duplicates; and, per left position, the rules skipped as too vague (in spec order)."""
        lpos = np.arange(self.n_left, dtype=np.int64) if lpos is None else np.asarray(lpos, dtype=np.int64)
        vague: dict[int, list[str]] = {}
        width = max(1, self.n_right)
        code = self._union(self.main, lpos, vague)
        if self.fallback:
            found = np.zeros(self.n_left, dtype=bool)
            found[code // width] = True
            rest = lpos[~found[lpos]]
            if len(rest):   # disjoint from the main pairs: their left rows had none
                code = np.concatenate([code, self._union(self.fallback, rest, vague)])
        return code // width, code % width, vague


def block_info(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec
               ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Candidate pairs ``(_id_l, _id_r)`` of two prepared sides and, per left id, the rules skipped as too
    vague (see the module docstring)."""
    lp, rp, vague = Blocker(left, right, spec).pairs()
    lid, rid = left["_id"].to_numpy(dtype=object), right["_id"].to_numpy(dtype=object)
    ids = pd.DataFrame({"_id_l": lid[lp], "_id_r": rid[rp]}).drop_duplicates().reset_index(drop=True)
    by_id: dict[str, list[str]] = {}
    for p, rules in vague.items():
        by_id.setdefault(lid[p], []).extend(rules)
    return ids, by_id
