"""Fellegi–Sunter scoring with parameters estimated from the data (Splink-style).

* ``u`` (probability of each level among non-matches) from random pairs:
  nearly every random pair is a non-match;
* ``m`` (probability among matches) and the prior ``lambda`` by EM on the blocked
  pairs with ``u`` fixed, over *pattern counts* (distinct level vectors with their
  number of pairs) — so Spark only ships a small table to the driver;
* match weight of a pair = sum over comparisons of ``log2(m/u)`` of its level,
  0 for the ``null`` level (no evidence either way);
* weights never rise along a comparison's ordered levels (exact -> fuzzy -> else): where the estimates
  say otherwise (a fuzzy level weighing more than exact, from few matches), adjacent violators are
  pooled into their m-weighted mean (:func:`monotone_weights`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matching.spec import LinkageSpec

__all__ = ["FSModel", "monotone_weights", "initial_model", "estimate_u", "level_pattern_codes", "pattern_counts",
           "run_em", "match_weights", "match_probability"]


@dataclass
class FSModel:
    """m and u per comparison level, the prior lambda and how EM went."""

    m: dict[str, list[float]]
    u: dict[str, list[float]]
    lam: float
    iterations: int = 0
    converged: bool = False
    history: list[float] = field(default_factory=list)

    def weights(self, spec: LinkageSpec) -> dict[str, np.ndarray]:
        """log2(m/u) per level, non-increasing from the first real level to ``else``
        (:func:`monotone_weights`); 0 for the null level."""
        out = {}
        for c in spec.comparisons:
            m = np.asarray(self.m[c.name], dtype=float)
            w = np.log2(m / np.asarray(self.u[c.name]))
            real = np.array([i for i, lv in enumerate(c.levels) if lv.kind != "null"], dtype=int)
            w[real] = monotone_weights(w[real], m[real])
            if c.null_index is not None:
                w[c.null_index] = 0.0
            out[c.name] = w
        return out

    def to_dict(self) -> dict:
        """JSON-friendly parameters (for the run manifest)."""
        return {"lambda": self.lam, "iterations": self.iterations, "converged": self.converged,
                "m": {k: [round(x, 6) for x in v] for k, v in self.m.items()},
                "u": {k: [round(x, 6) for x in v] for k, v in self.u.items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def to_state(self) -> str:
        """Exact parameters as JSON (no rounding): reloaded with :meth:`from_state`, the weights are identical."""
        return json.dumps({"lambda": self.lam, "iterations": self.iterations, "converged": self.converged,
                           "m": self.m, "u": self.u}, sort_keys=True)

    @classmethod
    def from_state(cls, text: str, spec: LinkageSpec) -> FSModel:
        """A model saved by :meth:`to_state`; ``ValueError`` when it does not fit ``spec``'s comparisons."""
        raw = json.loads(text)
        m, u = raw["m"], raw["u"]
        for c in spec.comparisons:
            if len(m.get(c.name, ())) != len(c.levels) or len(u.get(c.name, ())) != len(c.levels):
                raise ValueError(f"saved model does not fit comparison {c.name!r} of spec {spec.name!r}")
        return cls({k: [float(x) for x in v] for k, v in m.items()}, {k: [float(x) for x in v] for k, v in u.items()},
                   float(raw["lambda"]), int(raw.get("iterations", 0)), bool(raw.get("converged", False)))


def monotone_weights(weights: np.ndarray, mass: np.ndarray | None = None) -> np.ndarray:
    """The non-increasing sequence closest to ``weights`` (pool adjacent violators, weighted by ``mass``,
    e.g. each level's m): a level never weighs more than the stricter level before it. ``[5, 7, -3]``
    with equal mass gives ``[6, 6, -3]``; an already non-increasing sequence is returned unchanged."""
    w = np.asarray(weights, dtype=float)
    if w.size < 2:
        return w.copy()
    mass_arr = np.ones_like(w) if mass is None else np.maximum(np.asarray(mass, dtype=float), 1e-12)
    blocks: list[list[float]] = []   # [mean, mass, count]
    for x, k in zip(w.tolist(), mass_arr.tolist(), strict=True):
        blocks.append([x, k, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            x2, k2, n2 = blocks.pop()
            x1, k1, n1 = blocks.pop()
            blocks.append([(x1 * k1 + x2 * k2) / (k1 + k2), k1 + k2, n1 + n2])
    return np.concatenate([np.full(n, x) for x, _, n in blocks])


def _normalise(v: np.ndarray, null_index: int | None) -> np.ndarray:
    v = np.asarray(v, dtype=float).copy()
    if null_index is not None:
        v[null_index] = 0.0
    s = v.sum()
    v = v / s if s > 0 else np.full_like(v, 1.0 / len(v))
    if null_index is not None:
        v[null_index] = 1.0  # neutral: weight 0 and factor 1 in the likelihood
    return np.clip(v, 1e-9, 1.0)


def initial_model(spec: LinkageSpec) -> FSModel:
    """Starting values: the spec's m/u where given, else m falling and u rising along the levels."""
    m, u = {}, {}
    for c in spec.comparisons:
        n = len(c.levels)
        real = [i for i, lv in enumerate(c.levels) if lv.kind != "null"]
        dm = np.zeros(n)
        du = np.zeros(n)
        for rank, i in enumerate(real):
            dm[i] = 0.95 if rank == 0 else 0.05 * (0.5 ** rank)
            du[i] = 0.02 * (4 ** rank)
        for i, lv in enumerate(c.levels):
            if lv.m is not None:
                dm[i] = lv.m
            if lv.u is not None:
                du[i] = lv.u
        m[c.name] = _normalise(dm, c.null_index).tolist()
        u[c.name] = _normalise(du, c.null_index).tolist()
    return FSModel(m, u, spec.em.prior or 1e-3)


def _level_hist(levels: pd.DataFrame, name: str, n_levels: int, weights: np.ndarray | None = None) -> np.ndarray:
    idx = levels[name].to_numpy().astype(int)
    return np.bincount(idx, weights=weights, minlength=n_levels).astype(float)


def estimate_u(random_levels: pd.DataFrame, spec: LinkageSpec, model: FSModel) -> FSModel:
    """Set u from the level frequencies of random pairs (smoothed; spec-given u is kept)."""
    if len(random_levels) == 0:
        return model
    for c in spec.comparisons:
        counts = _level_hist(random_levels, c.name, len(c.levels)) + spec.em.smoothing
        fixed = [lv.u for lv in c.levels]
        if any(x is not None for x in fixed):
            counts = np.array([counts[i] if fixed[i] is None else fixed[i] * counts.sum() for i in range(len(counts))])
        model.u[c.name] = _normalise(counts, c.null_index).tolist()
    return model


def _radix_fits(spec: LinkageSpec) -> bool:
    return math.prod(len(c.levels) for c in spec.comparisons) < 2 ** 62


def level_pattern_codes(levels: pd.DataFrame, spec: LinkageSpec) -> np.ndarray:
    """One int per pair for its vector of levels: mixed radix over the comparisons' level counts (a
    dense group number when the spec has too many level combinations for an int64)."""
    if not _radix_fits(spec):
        return levels.groupby([c.name for c in spec.comparisons], sort=False).ngroup().to_numpy(dtype=np.int64)
    code = np.zeros(len(levels), dtype=np.int64)
    for c in spec.comparisons:
        code = code * len(c.levels) + levels[c.name].to_numpy().astype(np.int64)
    return code


def pattern_counts(levels: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """Distinct level vectors with their number of pairs (column ``n``)."""
    names = [c.name for c in spec.comparisons]
    if not _radix_fits(spec):
        return levels.groupby(names, sort=False).size().rename("n").reset_index()
    distinct, counts = np.unique(level_pattern_codes(levels, spec), return_counts=True)
    out = {}
    for c in reversed(spec.comparisons):
        distinct, out[c.name] = np.divmod(distinct, len(c.levels))
    return pd.DataFrame({**{n: out[n].astype(np.int16) for n in names}, "n": counts.astype(np.int64)})


def _log_likelihoods(patterns: pd.DataFrame, spec: LinkageSpec, model: FSModel) -> tuple[np.ndarray, np.ndarray]:
    lm = np.zeros(len(patterns))
    lu = np.zeros(len(patterns))
    for c in spec.comparisons:
        idx = patterns[c.name].to_numpy().astype(int)
        lm += np.log(np.asarray(model.m[c.name]))[idx]
        lu += np.log(np.asarray(model.u[c.name]))[idx]
    return lm, lu


def run_em(patterns: pd.DataFrame, spec: LinkageSpec, model: FSModel) -> FSModel:
    """EM for m and lambda on pattern counts, u fixed. Returns the updated model."""
    if len(patterns) == 0 or not spec.em.enabled:
        return model
    n = patterns["n"].to_numpy().astype(float)
    lam = model.lam
    prev = None
    for it in range(1, spec.em.max_iterations + 1):
        lm, lu = _log_likelihoods(patterns, spec, model)
        a = np.log(lam) + lm
        b = np.log1p(-lam) + lu
        p = 1.0 / (1.0 + np.exp(np.clip(b - a, -700, 700)))
        w = n * p
        if spec.em.estimate_lambda:
            lam = float(np.clip(w.sum() / n.sum(), 1e-9, 1 - 1e-9))
        for c in spec.comparisons:
            if not c.estimate_m:
                continue
            counts = _level_hist(patterns, c.name, len(c.levels), w) + spec.em.smoothing * 1e-3
            model.m[c.name] = _normalise(counts, c.null_index).tolist()
        ll = float(np.sum(n * np.logaddexp(a, b)))
        model.history.append(ll)
        model.iterations = it
        if prev is not None and abs(ll - prev) <= spec.em.tolerance * max(1.0, abs(prev)):
            model.converged = True
            break
        prev = ll
    model.lam = lam
    return model


def match_weights(levels: pd.DataFrame, spec: LinkageSpec, model: FSModel) -> np.ndarray:
    """Match weight (bits) of every pair."""
    total = np.zeros(len(levels))
    for name, w in model.weights(spec).items():
        total += w[levels[name].to_numpy().astype(int)]
    return total


def match_probability(weight: np.ndarray | float, lam: float) -> np.ndarray | float:
    """Posterior match probability from a match weight and the prior lambda."""
    prior = math.log2(lam / (1 - lam))
    return 1.0 / (1.0 + np.power(2.0, -(np.asarray(weight) + prior)))
