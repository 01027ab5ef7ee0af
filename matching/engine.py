"""The pandas engine: prepare, block, compare, estimate, score, decide (no Spark needed).

The Spark adapter (:mod:`matching.spark`) runs the same steps with joins and
pandas UDFs; both share :mod:`matching.compare`, :mod:`matching.scoring` and
:func:`decide_group`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from matching.address import normalize, parse
from matching.compare import compare_pairs
from matching.scoring import (
    FSModel,
    estimate_u,
    initial_model,
    match_probability,
    match_weights,
    pattern_counts,
    run_em,
)
from matching.spec import LinkageSpec, parse_key
from schemas.address import ADDRESS_COMPONENTS

log = logging.getLogger(__name__)

__all__ = ["prepare", "block", "random_pairs", "score_pairs", "train", "decide", "link", "explanation",
           "DECISION_COLUMNS"]

DECISION_COLUMNS = ["left_id", "right_id", "weight", "score", "method", "explanation"]


def prepare(df: pd.DataFrame, spec: LinkageSpec, side: str) -> pd.DataFrame:
    """The side's id (as string, column ``_id``) and every column the spec needs.

    With ``parse_address.<side>`` set, that raw column is normalised and parsed into
    the address components (and ``address_norm``) first.
    """
    id_col = spec.left_id if side == "left" else spec.right_id
    if id_col not in df.columns:
        raise KeyError(id_col)
    out = pd.DataFrame({"_id": df[id_col].astype(str)}, index=df.index)
    raw_col = spec.parse_address.get(side)
    if raw_col:
        if raw_col not in df.columns:
            raise KeyError(raw_col)
        parsed = pd.DataFrame([parse(t) if isinstance(t, str) else dict.fromkeys(ADDRESS_COMPONENTS)
                               for t in df[raw_col]], index=df.index, columns=list(ADDRESS_COMPONENTS))
        out["address_norm"] = df[raw_col].map(lambda t: normalize(t) if isinstance(t, str) else None)
        for c in ADDRESS_COMPONENTS:
            out[c] = parsed[c]
    for c in spec.columns:
        if c not in out.columns:
            out[c] = df[c].astype(object).where(df[c].notna(), None) if c in df.columns else None
    from matching.compare import _transform

    for comp in spec.comparisons:  # block on the same normalised values the comparisons see (e.g. ID 15->18, x->X)
        if comp.transform not in (None, "nfkc") and len(comp.columns) == 1:
            c = comp.columns[0]
            out[c] = out[c].map(lambda v, t=comp.transform: _transform(str(v), t) if v is not None and v == v else None)
    return out.reset_index(drop=True)


def _prefixed(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return df.rename(columns={c: f"{prefix}{c}" for c in df.columns})


def block(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """Candidate pairs: the union of equi-joins on each blocking rule (null keys never join)."""
    frames = []
    for rule in spec.blocking:
        lk, rk = _block_keys(left, rule), _block_keys(right, rule)
        if lk.empty or rk.empty:
            continue
        frames.append(lk.merge(rk, on=list(rule), suffixes=("_l", "_r"))[["_id_l", "_id_r"]])
    if not frames:
        return pd.DataFrame(columns=["_id_l", "_id_r"])
    ids = pd.concat(frames, ignore_index=True).drop_duplicates()
    return ids


def _block_keys(df: pd.DataFrame, rule: tuple[str, ...]) -> pd.DataFrame:
    out = pd.DataFrame({"_id": df["_id"]})
    for key in rule:
        base, start, stop = parse_key(key)
        col = df[base]
        if start is not None or stop is not None:
            col = col.map(lambda v, a=start, b=stop: v[a:b] if isinstance(v, str) and len(v) >= 3 else None)
        out[key] = col
    return out.dropna()


def _materialise(ids: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    lp = _prefixed(left.drop_duplicates("_id"), "l_")
    rp = _prefixed(right.drop_duplicates("_id"), "r_")
    return (ids.merge(lp, left_on="_id_l", right_on="l__id").merge(rp, left_on="_id_r", right_on="r__id")
            .drop(columns=["_id_l", "_id_r"]).reset_index(drop=True))


def random_pairs(left: pd.DataFrame, right: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` random (left, right) pairs, materialised."""
    if left.empty or right.empty or n <= 0:
        return _materialise(pd.DataFrame(columns=["_id_l", "_id_r"]), left, right)
    rng = np.random.default_rng(seed)
    li = rng.integers(0, len(left), n)
    ri = rng.integers(0, len(right), n)
    lp = _prefixed(left.iloc[li].reset_index(drop=True), "l_")
    rp = _prefixed(right.iloc[ri].reset_index(drop=True), "r_")
    return pd.concat([lp, rp], axis=1)


def train(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec, pairs_levels: pd.DataFrame | None = None
          ) -> FSModel:
    """Estimate u from random pairs and m, lambda by EM on the blocked pairs."""
    model = initial_model(spec)
    if not spec.em.enabled:
        return model
    rnd = random_pairs(left, right, spec.em.random_pairs, spec.em.seed)
    model = estimate_u(compare_pairs(rnd, spec), spec, model)
    if pairs_levels is None:
        pairs_levels = compare_pairs(_materialise(block(left, right, spec), left, right), spec)
    if len(pairs_levels) > spec.em.max_pairs:
        pairs_levels = pairs_levels.sample(spec.em.max_pairs, random_state=spec.em.seed)
    # EM on the pairs that pass the must-agree rules: decisions are only made among them, and it keeps
    # EM from taking "same room number in another building" as the match class
    pairs_levels = pairs_levels[pairs_levels["_compatible"]]
    model.lam = spec.em.prior or float(np.clip(len(left) / max(1, len(pairs_levels)), 1e-6, 0.5))
    if len(pairs_levels) < spec.em.min_pairs:
        log.info("linkage %s: %d blocked pairs < em.min_pairs, keeping the starting m", spec.name, len(pairs_levels))
        return model
    model = run_em(pattern_counts(pairs_levels, spec), spec, model)
    log.info("linkage %s: EM %d iterations (converged=%s), lambda=%.4g", spec.name, model.iterations,
             model.converged, model.lam)
    return model


def score_pairs(pairs: pd.DataFrame, spec: LinkageSpec, model: FSModel) -> pd.DataFrame:
    """Levels, compatibility and match weight of every pair (columns ``_id_l``, ``_id_r``, levels, ``weight``)."""
    levels = compare_pairs(pairs, spec)
    levels.insert(0, "_id_r", pairs["r__id"].to_numpy())
    levels.insert(0, "_id_l", pairs["l__id"].to_numpy())
    levels["weight"] = match_weights(levels, spec, model)
    if "l_address_norm" in pairs and "r_address_norm" in pairs:
        levels["_same_text"] = (pairs["l_address_norm"].to_numpy() == pairs["r_address_norm"].to_numpy())
    else:
        levels["_same_text"] = False
    return levels


def explanation(row: dict, spec: LinkageSpec, level_labels: dict[str, list[str]]) -> str:
    """``road=exact;building=exact;room=exact;weight=12.3`` for one scored pair (null levels omitted)."""
    parts = []
    for c in spec.comparisons:
        lab = level_labels[c.name][int(row[c.name])]
        if lab != "null":
            parts.append(f"{c.name}={lab}")
    parts.append(f"weight={row['weight']:.2f}")
    return ";".join(parts)


def decide_group(cands: pd.DataFrame, spec: LinkageSpec, lam: float, level_labels: dict[str, list[str]]) -> dict:
    """The decision for one left record from its scored candidate pairs (possibly none).

    Incompatible candidates (a must-agree component differs: building, room, ...) are
    never chosen. The best remaining one is accepted when its weight reaches
    ``decision.min_weight`` and beats the runner-up by ``decision.min_gap``; otherwise
    the record is unresolved, with the reason in the explanation.
    """
    d = spec.decision
    if cands is None or len(cands) == 0:
        return {"right_id": None, "weight": None, "score": None, "method": "unresolved",
                "explanation": "unresolved=no_candidate"}
    ok = cands[cands["_compatible"]]
    if ok.empty:
        viol = sorted({v for s in cands["_violations"] for v in s.split(";") if v})
        return {"right_id": None, "weight": None, "score": None, "method": "unresolved",
                "explanation": f"unresolved=not_in_registry:{','.join(viol)};candidates={len(cands)}"}
    ok = ok.sort_values(["weight", "_id_r"], ascending=[False, True])
    best = ok.iloc[0].to_dict()
    gap = float(best["weight"] - ok.iloc[1]["weight"]) if len(ok) > 1 else float("inf")
    expl = explanation(best, spec, level_labels)
    gap_txt = "inf" if gap == float("inf") else f"{gap:.2f}"
    score = float(match_probability(best["weight"], lam))
    if best["weight"] < d.min_weight:
        return {"right_id": None, "weight": float(best["weight"]), "score": round(score, 6), "method": "unresolved",
                "explanation": f"unresolved=low_weight;{expl};gap={gap_txt}"}
    if gap < d.min_gap:
        return {"right_id": None, "weight": float(best["weight"]), "score": round(score, 6), "method": "unresolved",
                "explanation": f"unresolved=ambiguous;{expl};gap={gap_txt};runner_up={ok.iloc[1]['_id_r']}"}
    exact = bool(best.get("_same_text")) or all(
        level_labels[c.name][int(best[c.name])] in ("null", *d.exact_level_names) for c in spec.comparisons)
    return {"right_id": best["_id_r"], "weight": float(best["weight"]), "score": round(score, 6),
            "method": "exact" if exact else "fuzzy", "explanation": f"{expl};gap={gap_txt};score={score:.4f}"}


def decide(scored: pd.DataFrame, left_ids: pd.Series, spec: LinkageSpec, model: FSModel) -> pd.DataFrame:
    """One decision per left id (:data:`DECISION_COLUMNS`)."""
    from matching.compare import level_names

    labels = level_names(spec)
    groups = dict(tuple(scored.groupby("_id_l", sort=False))) if len(scored) else {}
    rows = []
    for lid in pd.unique(left_ids):
        r = decide_group(groups.get(lid), spec, model.lam, labels)
        r["left_id"] = lid
        rows.append(r)
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


def link(left_df: pd.DataFrame, right_df: pd.DataFrame, spec: LinkageSpec, model: FSModel | None = None
         ) -> tuple[pd.DataFrame, FSModel]:
    """Run a whole linkage with the pandas engine; return (decisions, fitted model)."""
    left = prepare(left_df, spec, "left")
    right = prepare(right_df, spec, "right")
    pairs = _materialise(block(left, right, spec), left, right)
    scored_levels = None
    if model is None:
        model = initial_model(spec)
        if spec.em.enabled:
            scored_levels = compare_pairs(pairs, spec)
            model = train(left, right, spec, scored_levels)
    scored = score_pairs(pairs, spec, model)
    return decide(scored, left["_id"], spec, model), model
