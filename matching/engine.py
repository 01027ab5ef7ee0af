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
from matching.compare import add_comparison_values, compare_pairs
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
        texts = df[raw_col].where(df[raw_col].map(lambda t: isinstance(t, str)), None)
        uniq = pd.unique(texts.dropna())
        cache = {t: parse(t) for t in uniq}
        empty = dict.fromkeys(ADDRESS_COMPONENTS)
        parsed = pd.DataFrame([cache.get(t, empty) if t is not None else empty for t in texts],
                              index=df.index, columns=list(ADDRESS_COMPONENTS))
        norms = {t: normalize(t) for t in uniq}
        out["address_norm"] = texts.map(lambda t: norms.get(t) if t is not None else None)
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
    out = out.reset_index(drop=True)
    out = out.astype({c: object for c in out.columns if c != "_id"})
    out = out.where(out.notna(), None)
    return add_comparison_values(out, spec)


def _prefixed(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return df.rename(columns={c: f"{prefix}{c}" for c in df.columns})


def block(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """Candidate pairs ``(_id_l, _id_r)``: see :func:`block_info` (this drops the too-vague report)."""
    return block_info(left, right, spec)[0]


def _rule_name(rule: tuple[str, ...]) -> str:
    return "+".join(rule)


def _rule_join(lk: pd.DataFrame, rk: pd.DataFrame, sizes: pd.DataFrame, rule: tuple[str, ...], cap: int | None
               ) -> tuple[pd.DataFrame, pd.Series]:
    keys = list(rule)
    if cap is not None:
        lk = lk.merge(sizes, on=keys, how="inner")
        vague = lk.loc[lk["_n"] > cap, "_id_l"]
        lk = lk.loc[lk["_n"] <= cap].drop(columns="_n")
    else:
        vague = pd.Series([], dtype=object)
    pairs = lk.merge(rk, on=keys)[["_id_l", "_id_r"]]
    return pairs, vague


def block_info(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec, right_keys: dict | None = None
               ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Candidate pairs and, per left id, the rules skipped as too vague.

    Each rule is an equi-join on its keys (null keys never join). A left record whose key
    matches more than ``spec.max_block_size`` right records under a rule is too vague for
    that rule: the rule is skipped for it (no pairs) and reported. ``blocking_fallback``
    rules run only for the left records the main rules found no candidate for.
    """
    right_keys = right_keys if right_keys is not None else prepare_right_keys(right, spec)
    vague: dict[str, list[str]] = {}

    def run(rules: tuple[tuple[str, ...], ...], lside: pd.DataFrame) -> list[pd.DataFrame]:
        frames = []
        for rule in rules:
            rk, sizes = right_keys[rule]
            lk = _block_keys(lside, rule)
            if lk.empty or rk.empty:
                continue
            pairs, vg = _rule_join(lk.rename(columns={"_id": "_id_l"}), rk, sizes, rule, spec.max_block_size)
            frames.append(pairs)
            for lid in vg.tolist():
                vague.setdefault(lid, []).append(_rule_name(rule))
        return frames

    frames = run(spec.blocking, left)
    ids = (pd.concat(frames, ignore_index=True).drop_duplicates() if frames
           else pd.DataFrame({"_id_l": pd.Series([], dtype=object), "_id_r": pd.Series([], dtype=object)}))
    if spec.blocking_fallback:
        rest = left[~left["_id"].isin(ids["_id_l"])]
        if len(rest):
            more = run(spec.blocking_fallback, rest)
            if more:
                ids = pd.concat([ids, *more], ignore_index=True).drop_duplicates()
    return ids.reset_index(drop=True), vague


def prepare_right_keys(right: pd.DataFrame, spec: LinkageSpec) -> dict:
    """Per blocking rule: the right side's keys (``_id`` renamed ``_id_r``) and the size of each key group."""
    out = {}
    for rule in spec.blocking + spec.blocking_fallback:
        rk = _block_keys(right, rule)
        sizes = rk.groupby(list(rule), sort=False).size().rename("_n").reset_index()
        out[rule] = (rk.rename(columns={"_id": "_id_r"}), sizes)
    return out


def _block_keys(df: pd.DataFrame, rule: tuple[str, ...]) -> pd.DataFrame:
    out = pd.DataFrame({"_id": df["_id"]})
    for key in rule:
        base, start, stop = parse_key(key)
        col = df[base]
        if start is not None or stop is not None:
            col = col.map(lambda v, a=start, b=stop: v[a:b] if isinstance(v, str) and len(v) >= 3 else None)
        out[key] = col
    return out.dropna()


class _Rows:
    """One side's rows by id (first row per id), prefixed, for gathering candidate pairs by position."""

    def __init__(self, df: pd.DataFrame, prefix: str) -> None:
        unique = df.drop_duplicates("_id")
        self.index = pd.Index(unique["_id"])
        self.frame = _prefixed(unique, prefix).reset_index(drop=True)


def _compared_columns(df: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """Only what comparing pairs reads (id, normalised text, precomputed compared values), when every
    comparison's value is precomputed; else the whole frame."""
    values = [f"_cv_{c.name}" for c in spec.comparisons]
    if not all(v in df.columns for v in values):
        return df
    return df[["_id", *(["address_norm"] if "address_norm" in df.columns else []), *values]]


def _materialise(ids: pd.DataFrame, left: pd.DataFrame | _Rows, right: pd.DataFrame | _Rows) -> pd.DataFrame:
    """The pairs' ``l_*`` and ``r_*`` columns, in the order of ``ids`` (pairs with an unknown id dropped).

    Rows are gathered by position (``Index.get_indexer`` + ``take``) instead of two merges, and a
    prepared :class:`_Rows` side is reused across chunks instead of being copied for each one.
    """
    lrows = left if isinstance(left, _Rows) else _Rows(left, "l_")
    rrows = right if isinstance(right, _Rows) else _Rows(right, "r_")
    li = lrows.index.get_indexer(ids["_id_l"])
    ri = rrows.index.get_indexer(ids["_id_r"])
    keep = (li >= 0) & (ri >= 0)
    extra = [c for c in ids.columns if c not in ("_id_l", "_id_r")]
    parts = [ids.loc[keep, extra].reset_index(drop=True)] if extra else []
    parts += [lrows.frame.take(li[keep]).reset_index(drop=True), rrows.frame.take(ri[keep]).reset_index(drop=True)]
    return pd.concat(parts, axis=1)


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


def _pair_levels(pairs: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    levels = compare_pairs(pairs, spec)
    levels.insert(0, "_id_r", pairs["r__id"].to_numpy())
    levels.insert(0, "_id_l", pairs["l__id"].to_numpy())
    if "l_address_norm" in pairs and "r_address_norm" in pairs:
        levels["_same_text"] = (pairs["l_address_norm"].fillna("\x00").to_numpy()
                                == pairs["r_address_norm"].fillna("\x01").to_numpy())
    else:
        levels["_same_text"] = False
    return levels


def score_pairs(pairs: pd.DataFrame, spec: LinkageSpec, model: FSModel) -> pd.DataFrame:
    """Levels, compatibility and match weight of every pair (columns ``_id_l``, ``_id_r``, levels, ``weight``)."""
    levels = _pair_levels(pairs, spec)
    levels["weight"] = match_weights(levels, spec, model)
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


def decide(scored: pd.DataFrame, left_ids: pd.Series, spec: LinkageSpec, model: FSModel,
           vague: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One decision per left id (:data:`DECISION_COLUMNS`), vectorised; same rules and explanations as
    :func:`decide_group`. ``vague`` (left id -> blocking rules skipped as too vague) is reported in the
    explanation of unresolved records (``too_vague=<rule>|<rule>``)."""
    from matching.compare import level_names

    d = spec.decision
    labels = level_names(spec)
    vague = vague or {}
    ids = pd.unique(left_ids)
    res: dict[str, dict] = {}
    if len(scored):
        ok = scored[scored["_compatible"].to_numpy()]
        ok = ok.sort_values(["_id_l", "weight", "_id_r"], ascending=[True, False, True], kind="stable")
        rank = ok.groupby("_id_l", sort=False).cumcount().to_numpy()
        best = ok[rank == 0].reset_index(drop=True)
        second = ok[rank == 1][["_id_l", "weight", "_id_r"]].rename(columns={"weight": "_w2", "_id_r": "_r2"})
        best = best.merge(second, on="_id_l", how="left")
        w = best["weight"].to_numpy(dtype=float)
        w2 = best["_w2"].to_numpy(dtype=float)
        gap = np.where(np.isnan(w2), np.inf, w - w2)
        score = np.asarray(match_probability(w, model.lam), dtype=float)
        lab_cols = []
        exact = best["_same_text"].to_numpy(dtype=bool).copy()
        all_exact = np.ones(len(best), dtype=bool)
        for c in spec.comparisons:
            labs = np.asarray(labels[c.name], dtype=object)
            col = labs[best[c.name].to_numpy().astype(int)]
            lab_cols.append((c.name, col))
            all_exact &= np.isin(col, ["null", *d.exact_level_names])
        exact |= all_exact
        r2 = best["_r2"].tolist()
        lids = best["_id_l"].tolist()
        rids = best["_id_r"].tolist()
        for k in range(len(best)):
            parts = [f"{name}={col[k]}" for name, col in lab_cols if col[k] != "null"]
            parts.append(f"weight={w[k]:.2f}")
            expl = ";".join(parts)
            g = gap[k]
            gap_txt = "inf" if g == np.inf else f"{g:.2f}"
            sc = round(float(score[k]), 6)
            if w[k] < d.min_weight:
                r = {"right_id": None, "weight": float(w[k]), "score": sc, "method": "unresolved",
                     "explanation": f"unresolved=low_weight;{expl};gap={gap_txt}"}
            elif g < d.min_gap:
                r = {"right_id": None, "weight": float(w[k]), "score": sc, "method": "unresolved",
                     "explanation": f"unresolved=ambiguous;{expl};gap={gap_txt};runner_up={r2[k]}"}
            else:
                r = {"right_id": rids[k], "weight": float(w[k]), "score": sc,
                     "method": "exact" if exact[k] else "fuzzy",
                     "explanation": f"{expl};gap={gap_txt};score={score[k]:.4f}"}
            res[lids[k]] = r
        bad = scored[~scored["_id_l"].isin(best["_id_l"])]
        for lid, g in bad.groupby("_id_l", sort=False)["_violations"]:
            viol = sorted({v for x in g for v in x.split(";") if v})
            res[lid] = {"right_id": None, "weight": None, "score": None, "method": "unresolved",
                        "explanation": f"unresolved=not_in_registry:{','.join(viol)};candidates={len(g)}"}
    rows = []
    for lid in ids:
        r = res.get(lid)
        if r is None:
            reason = "too_vague" if lid in vague else "no_candidate"
            r = {"right_id": None, "weight": None, "score": None, "method": "unresolved",
                 "explanation": f"unresolved={reason}"}
        if r["right_id"] is None and lid in vague:
            r = dict(r, explanation=f"{r['explanation']};too_vague={'|'.join(vague[lid])}")
        rows.append(dict(r, left_id=lid))
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


def link(left_df: pd.DataFrame, right_df: pd.DataFrame, spec: LinkageSpec, model: FSModel | None = None
         ) -> tuple[pd.DataFrame, FSModel]:
    """Run a whole linkage with the pandas engine; return (decisions, fitted model).

    Left records are blocked and compared in chunks of ``spec.block_chunk``; only the pairs'
    levels (small ints) are kept, so memory grows with the candidate count, not the blocks' sizes.
    """
    left = prepare(left_df, spec, "left")
    right = prepare(right_df, spec, "right")
    right_keys = prepare_right_keys(right, spec)
    vague: dict[str, list[str]] = {}
    chunks = []
    step = max(1, spec.block_chunk)
    right_rows = _Rows(_compared_columns(right, spec), "r_")
    for start in range(0, len(left), step):
        part = left.iloc[start:start + step]
        ids, vg = block_info(part, right, spec, right_keys)
        vague.update(vg)
        chunks.append(_pair_levels(_materialise(ids, _compared_columns(part, spec), right_rows), spec))
    levels = pd.concat(chunks, ignore_index=True) if chunks else _pair_levels(
        _materialise(pd.DataFrame(columns=["_id_l", "_id_r"]), left, right), spec)
    log.info("linkage %s: %d left, %d right, %d candidate pairs, %d too-vague records", spec.name, len(left),
             len(right), len(levels), len(vague))
    if model is None:
        model = initial_model(spec)
        if spec.em.enabled:
            model = train(left, right, spec, levels)
    levels["weight"] = match_weights(levels, spec, model)
    return decide(levels, left["_id"], spec, model, vague), model
