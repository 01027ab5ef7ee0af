"""The pandas engine: prepare, block, compare, estimate, score, decide (no Spark needed).

Each side is prepared once (an address is normalised and parsed once per distinct text), then
both are *coded*: every compared value and the normalised text are factorised jointly for the two
sides (:mod:`matching.codes`) and blocking runs as integer joins (:mod:`matching.blocking`). A
candidate pair is a (left position, right position) pair of ints; comparing pairs gathers codes,
decides ``null``/``exact`` levels and must-agree rules on them, and runs rapidfuzz once per distinct
value pair. The Spark adapter (:mod:`matching.spark`) runs the same steps with joins and pandas
UDFs; both share :mod:`matching.compare` and :mod:`matching.scoring`.
"""

from __future__ import annotations

import logging
import sys
from functools import lru_cache

import numpy as np
import pandas as pd

from matching.address import normalize, parse_normalized
from matching.blocking import Blocker, block_info
from matching.codes import joint_codes, map_unique
from matching.compare import (
    add_comparison_values,
    agreement_checks,
    agreement_from_codes,
    comparison_values,
    level_names,
    levels_from_codes,
    pair_levels,
    transform_value,
)
from matching.scoring import (
    FSModel,
    estimate_u,
    initial_model,
    level_pattern_codes,
    match_probability,
    match_weights,
    pattern_counts,
    run_em,
)
from matching.spec import LinkageSpec
from schemas.address import ADDRESS_COMPONENTS

log = logging.getLogger(__name__)

__all__ = ["prepare", "parsed_addresses", "block", "block_info", "score_pairs", "self_link_levels", "train", "decide", "link",
           "candidate_levels", "decide_positions", "top_candidates", "DECISION_COLUMNS"]

DECISION_COLUMNS = ["left_id", "right_id", "weight", "score", "method", "explanation"]
_FUZZY_CACHE_MAX = 2_000_000      # distinct fuzzy value pairs remembered across chunks (per comparison)


#: distinct texts (and distinct normalised texts) whose parse one process remembers across calls. A Spark
#: Python worker is reused for many batches and for every table of a night, and the same address arrives
#: many times: written by the registry, then by each resident who declares it and by each department that
#: records it (on a district's first night, 992,590 distinct texts among 2,048,621). Bounded by
#: least-recent use; about 0.6 KB an entry, the parts shared (``sys.intern``).
ADDRESS_MEMO_SIZE = 500_000


@lru_cache(maxsize=ADDRESS_MEMO_SIZE)
def _components(norm: str | None) -> tuple[str | None, ...]:
    parsed = parse_normalized(norm)
    # the same few thousand road, complex and room names come back in many addresses: shared, not copied
    return tuple(None if parsed[c] is None else sys.intern(parsed[c]) for c in ADDRESS_COMPONENTS)


@lru_cache(maxsize=ADDRESS_MEMO_SIZE)
def _address_row(text: str) -> tuple[str | None, ...]:
    """``(address_norm, *components)`` of one text: normalised once, and parsed once per normalised text."""
    norm = normalize(text)
    return (norm, *_components(norm))


_NO_ADDRESS = (None,) * (1 + len(ADDRESS_COMPONENTS))


def parsed_addresses(texts: pd.Series | np.ndarray) -> pd.DataFrame:
    """``address_norm`` and the address components of each text (non-text -> all None), normalised once
    per distinct text and parsed once per distinct normalised text, in this call and across the calls of
    one process (:data:`ADDRESS_MEMO_SIZE`)."""
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object), use_na_sentinel=True)
    rows = [_address_row(t) if isinstance(t, str) else _NO_ADDRESS for t in uniq]
    rows.append(_NO_ADDRESS)
    table = np.empty((len(rows), len(_NO_ADDRESS)), dtype=object)
    table[:] = rows
    take = np.where(codes < 0, len(uniq), codes)
    out = table[take]
    return pd.DataFrame({name: out[:, i] for i, name in enumerate(("address_norm", *ADDRESS_COMPONENTS))})


def prepare(df: pd.DataFrame, spec: LinkageSpec, side: str) -> pd.DataFrame:
    """The side's id (as string, column ``_id``), every column the spec needs and each comparison's value.

    With ``parse_address.<side>`` set, that raw column is normalised and parsed into the address
    components (and ``address_norm``) first. Missing values are ``None``.
    """
    id_col = spec.left_id if side == "left" else spec.right_id
    if id_col not in df.columns:
        raise KeyError(id_col)
    out = pd.DataFrame({"_id": df[id_col].astype(str).to_numpy(dtype=object)})
    raw_col = spec.parse_address.get(side)
    if raw_col:
        if raw_col not in df.columns:
            raise KeyError(raw_col)
        out = pd.concat([out, parsed_addresses(df[raw_col])], axis=1)
    for c in spec.columns:
        if c not in out.columns:
            out[c] = (df[c].astype(object).where(df[c].notna(), None).to_numpy(dtype=object) if c in df.columns
                      else np.full(len(out), None, dtype=object))
    for comp in spec.comparisons:  # block on the same normalised values the comparisons see (e.g. ID 15->18, x->X)
        if comp.transform not in (None, "nfkc") and len(comp.columns) == 1:
            c = comp.columns[0]
            out[c] = map_unique(out[c], lambda v, t=comp.transform: transform_value(str(v), t))
    return add_comparison_values(out, spec)


def block(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """Candidate pairs ``(_id_l, _id_r)``: see :func:`matching.blocking.block_info` (this drops the
    too-vague report)."""
    return block_info(left, right, spec)[0]


class _CodedSides:
    """Two prepared sides coded for comparing: per comparison, the left and right codes of its compared
    value and the distinct values; the normalised texts likewise."""

    def __init__(self, left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec) -> None:
        self.spec = spec
        self.comparisons = []
        same = right is left       # a side linked with itself: each column coded once (matching.codes)
        for comp in spec.comparisons:
            lv = comparison_values(left, comp, "")
            a, b, values = joint_codes(lv, lv if same else comparison_values(right, comp, ""))
            self.comparisons.append((comp, a, b, values, {}))
        self.text = None
        if "address_norm" in left.columns and "address_norm" in right.columns:
            lt = left["address_norm"]
            self.text = joint_codes(lt, lt if same else right["address_norm"])[:2]

    def compare(self, lpos: np.ndarray, rpos: np.ndarray) -> pd.DataFrame:
        """For the pairs ``(lpos[i], rpos[i])``: ``_lpos``, ``_rpos``, the level of every comparison,
        ``_compatible`` (every must-agree rule holds), ``_violations`` and ``_same_text``."""
        cols: dict[str, np.ndarray] = {"_lpos": lpos, "_rpos": rpos}
        oks = []
        for comp, lcodes, rcodes, values, cache in self.comparisons:
            a, b = lcodes[lpos], rcodes[rpos]
            if len(cache) > _FUZZY_CACHE_MAX:
                cache.clear()
            cols[comp.name] = levels_from_codes(comp, a, b, values, cache)
            oks.append(agreement_from_codes(comp, a, b))
        cols["_compatible"], cols["_violations"] = agreement_checks(
            self.spec, {c.name: cols[c.name] for c in self.spec.comparisons}, oks)
        if self.text is not None:
            a = self.text[0][lpos]
            cols["_same_text"] = (a >= 0) & (a == self.text[1][rpos])
        else:
            cols["_same_text"] = np.zeros(len(lpos), dtype=bool)
        return pd.DataFrame(cols)


def _estimate(coded: _CodedSides, n_left: int, n_right: int, levels: pd.DataFrame, spec: LinkageSpec) -> FSModel:
    model = initial_model(spec)
    if not spec.em.enabled:
        return model
    if n_left and n_right and spec.em.random_pairs > 0:
        rng = np.random.default_rng(spec.em.seed)
        li = rng.integers(0, n_left, spec.em.random_pairs)
        ri = rng.integers(0, n_right, spec.em.random_pairs)
        model = estimate_u(coded.compare(li, ri), spec, model)
    if len(levels) > spec.em.max_pairs:
        levels = levels.sample(spec.em.max_pairs, random_state=spec.em.seed)
    # EM on the pairs that pass the must-agree rules: decisions are only made among them, and it keeps
    # EM from taking "same room number in another building" as the match class
    levels = levels[levels["_compatible"].to_numpy()]
    model.lam = spec.em.prior or float(np.clip(n_left / max(1, len(levels)), 1e-6, 0.5))
    if len(levels) < spec.em.min_pairs:
        log.info("linkage %s: %d blocked pairs < em.min_pairs, keeping the starting m", spec.name, len(levels))
        return model
    model = run_em(pattern_counts(levels, spec), spec, model)
    log.info("linkage %s: EM %d iterations (converged=%s), lambda=%.4g", spec.name, model.iterations,
             model.converged, model.lam)
    return model


def _candidate_levels(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec, coded: _CodedSides | None = None
                      ) -> tuple[_CodedSides, pd.DataFrame, dict[int, list[str]]]:
    """Block and compare in chunks of ``spec.block_chunk`` left rows: the coded sides, every candidate
    pair's levels (by position) and the too-vague rules per left position."""
    coded = coded or _CodedSides(left, right, spec)
    blocker = Blocker(left, right, spec)
    vague: dict[int, list[str]] = {}
    chunks = []
    step = max(1, spec.block_chunk)
    for start in range(0, len(left), step):
        lpos, rpos, vg = blocker.pairs(np.arange(start, min(len(left), start + step)))
        vague.update(vg)
        chunks.append(coded.compare(lpos, rpos))
    empty = np.empty(0, dtype=np.int64)
    levels = pd.concat(chunks, ignore_index=True) if chunks else coded.compare(empty, empty)
    return coded, levels, vague


def candidate_levels(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec
                     ) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Block and compare two prepared sides as :func:`link` does: every candidate pair's levels by position
    (``_lpos``, ``_rpos``, one column per comparison, ``_compatible``, ``_violations``, ``_same_text``) and,
    per left position, the blocking rules skipped as too vague (spec order). Used per partition by
    :func:`matching.spark.link_spark`."""
    _, levels, vague = _candidate_levels(left, right, spec)
    return levels, vague


def decide_positions(pairs: pd.DataFrame, left_ids: np.ndarray, right_ids: np.ndarray, spec: LinkageSpec,
                     model: FSModel, vague: dict[int, list[str]]) -> pd.DataFrame:
    """:data:`DECISION_COLUMNS` for every left position (``left_ids`` order) from pairs by position with their
    levels and ``weight`` (see :func:`candidate_levels`); ``right_ids`` are distinct, ties on weight go to the
    smaller right id, as in :func:`link`."""
    right_ids = np.asarray(right_ids, dtype=object)
    right_rank, _ = pd.factorize(right_ids, sort=True)
    return _decide(pairs, np.asarray(left_ids, dtype=object), right_ids, right_rank, spec, model, vague)


def top_candidates(pairs: pd.DataFrame, n_left: int, right_ids: np.ndarray, spec: LinkageSpec, k: int
                   ) -> np.ndarray:
    """The ``k`` best candidates of every left position (``0..n_left-1``) from scored pairs by position
    (``_lpos``, ``_rpos``, ``_compatible``, ``_violations``, ``weight``; ``right_ids`` by ``_rpos``): an
    object array of lists (None for a position without pairs) of ``{house_code, weight, why}`` dicts,
    compatible candidates first, then by weight (rounded to 4 decimals), then by the smaller right id.

    ``why`` says why the candidate was not chosen: ``conflict:<components>`` (a must-agree component
    differs, e.g. a room number; ``registry`` when none is named), ``low_weight`` (below
    ``decision.min_weight``), ``ambiguous`` (within ``decision.min_gap`` of the best compatible candidate,
    or, for the best one, of the second) or ``outranked``. The same content and order as Spark's
    ``collect_list`` of the gold ``CANDIDATE`` struct (jobs.matching.runner)."""
    out = np.full(n_left, None, dtype=object)
    if k <= 0 or not len(pairs):
        return out
    d = spec.decision
    lp = pairs["_lpos"].to_numpy().astype(np.int64)
    w = np.round(pairs["weight"].to_numpy(dtype=float), 4)
    comp = pairs["_compatible"].to_numpy(dtype=bool)
    rid = np.asarray(right_ids, dtype=object)[pairs["_rpos"].to_numpy()]
    rrank, _ = pd.factorize(rid, sort=True)
    # best and second compatible weight per left position (ties on weight: the smaller id first)
    best = np.full(n_left, np.nan)
    second = np.full(n_left, np.nan)
    ci = np.flatnonzero(comp)
    if len(ci):
        co = ci[np.lexsort((rrank[ci], -w[ci], lp[ci]))]
        start = np.r_[True, lp[co][1:] != lp[co][:-1]]
        best[lp[co[start]]] = w[co[start]]
        nxt = np.flatnonzero(~start & np.r_[False, start[:-1]])
        second[lp[co[nxt]]] = w[co[nxt]]
    order = np.lexsort((rrank, -w, ~comp, lp))
    ls = lp[order]
    starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = order[rank < k]
    wk, bk, sk = w[keep], best[lp[keep]], second[lp[keep]]
    close = np.where(wk >= bk, bk - sk, bk - wk)          # NaN (no best or no second): never ambiguous
    viol = pairs["_violations"].to_numpy(dtype=object)[keep]
    why = np.where(wk < d.min_weight, "low_weight",
                   np.where(np.nan_to_num(close, nan=np.inf) < d.min_gap, "ambiguous", "outranked")).astype(object)
    bad = ~comp[keep]
    why[bad] = ["conflict:" + (v.replace(";", ",").replace("|", ",") if isinstance(v, str) else "registry")
                for v in viol[bad]]
    for p, code, wt, y in zip(lp[keep].tolist(), rid[keep].tolist(), wk.tolist(), why.tolist(), strict=True):
        if out[p] is None:
            out[p] = []
        out[p].append({"house_code": code, "weight": wt, "why": y})
    return out


def train(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec, pairs_levels: pd.DataFrame | None = None
          ) -> FSModel:
    """Estimate u from random pairs and m, lambda by EM on the blocked pairs (two prepared sides;
    ``pairs_levels``: their candidate pairs' levels when already computed)."""
    coded = _CodedSides(left, right, spec)
    if pairs_levels is None:
        _, pairs_levels, _ = _candidate_levels(left, right, spec, coded)
    return _estimate(coded, len(left), len(right), pairs_levels, spec)


def self_link_levels(side: pd.DataFrame, spec: LinkageSpec, model: FSModel | None = None
                     ) -> tuple[pd.DataFrame, FSModel]:
    """A prepared side linked with itself (deduplication): every candidate pair once, the smaller id left,
    in blocking order; columns ``_id_l``, ``_id_r``, one level per comparison, ``_compatible``,
    ``_violations``, ``_same_text``, ``weight``; and the model (EM-trained here when ``model`` is None).

    The same pairs, levels and model as :func:`block` of the side with itself, :func:`score_pairs` and
    :func:`train`, without materialising the pairs' values: the side's keys and compared values are coded
    once and the pairs stay positions until their ids are attached. ``side``'s ids must be distinct."""
    ids = side["_id"].to_numpy(dtype=object)
    if len(ids) != len(pd.unique(ids)):
        raise ValueError(f"linkage {spec.name}: self_link_levels needs distinct ids")
    lpos, rpos, _ = Blocker(side, side, spec).pairs()
    rank, _ = pd.factorize(ids, sort=True)             # the ids' order (Python string order, as ``<``)
    keep = rank[lpos] < rank[rpos]
    coded = _CodedSides(side, side, spec)
    levels = coded.compare(lpos[keep], rpos[keep])
    levels.insert(0, "_id_r", ids[levels.pop("_rpos").to_numpy()])
    levels.insert(0, "_id_l", ids[levels.pop("_lpos").to_numpy()])
    if model is None:
        model = _estimate(coded, len(side), len(side), levels, spec)
    levels["weight"] = match_weights(levels, spec, model)
    return levels, model


def score_pairs(pairs: pd.DataFrame, spec: LinkageSpec, model: FSModel) -> pd.DataFrame:
    """Levels, compatibility and match weight of materialised pairs (``l_*``/``r_*`` columns): columns
    ``_id_l``, ``_id_r``, one level per comparison, ``_compatible``, ``_violations``, ``_same_text``, ``weight``."""
    levels = pair_levels(pairs, spec)
    levels["weight"] = match_weights(levels, spec, model)
    return levels


def _dominated_by_best(ok: pd.DataFrame, order: np.ndarray, first: np.ndarray, spec: LinkageSpec,
                       labels: dict[str, list[str]]) -> np.ndarray:
    """Per candidate in ``order`` (grouped by left record, best first at ``first``): whether the group's
    best candidate Pareto-dominates it over the comparisons' ordered levels. A level earlier in a
    comparison's list is better (exact > pinyin > fuzzy > else); ``null`` (a side lacks the value) is
    comparable only with ``null``, so a candidate never dominates by having a value the other lacks."""
    is_first = np.zeros(len(order), dtype=bool)
    is_first[first] = True
    grp = np.cumsum(is_first) - 1
    geq = np.ones(len(order), dtype=bool)
    strict = np.zeros(len(order), dtype=bool)
    for c in spec.comparisons:
        lv = ok[c.name].to_numpy().astype(np.int64)[order]
        lb = lv[first][grp]
        null = labels[c.name].index("null") if "null" in labels[c.name] else -1
        both = (lv != null) & (lb != null)
        geq &= (lb == lv) | (both & (lb < lv))
        strict |= both & (lb < lv)
    return geq & strict & ~is_first


def _decide(pairs: pd.DataFrame, left_ids: np.ndarray, right_ids: np.ndarray, right_rank: np.ndarray,
            spec: LinkageSpec, model: FSModel, vague: dict[int, list[str]]) -> pd.DataFrame:
    """One decision per left position (``left_ids`` order) from scored pairs by position (``_lpos``,
    ``_rpos``, levels, ``_compatible``, ``_violations``, ``_same_text``, ``weight``); ties on weight go
    to the better levels, then to the lower ``right_rank``."""
    d = spec.decision
    labels = level_names(spec)
    n = len(left_ids)
    right_id = np.full(n, None, dtype=object)
    weight = np.full(n, np.nan)
    score = np.full(n, np.nan)
    method = np.full(n, "unresolved", dtype=object)
    expl = np.full(n, "unresolved=no_candidate", dtype=object)
    has_pairs = np.zeros(n, dtype=bool)
    has_pairs[pairs["_lpos"].to_numpy()] = True
    decided = np.zeros(n, dtype=bool)
    ok = pairs[pairs["_compatible"].to_numpy()]
    if len(ok):
        lp, w = ok["_lpos"].to_numpy(), ok["weight"].to_numpy(dtype=float)
        # ties on weight: the better levels first (so a candidate that dominates another of equal weight
        # ranks before it), then the smaller right id
        level_sum = np.zeros(len(ok), dtype=np.int64)
        for c in spec.comparisons:
            level_sum += ok[c.name].to_numpy().astype(np.int64)
        order = np.lexsort((right_rank[ok["_rpos"].to_numpy()], level_sum, -w, lp))
        lp_sorted = lp[order]
        first = np.flatnonzero(np.r_[True, lp_sorted[1:] != lp_sorted[:-1]])
        nxt = np.minimum(first + 1, len(order) - 1)
        has_second = (first + 1 < len(order)) & (lp_sorted[nxt] == lp_sorted[first])
        best = ok.iloc[order[first]]
        pos = best["_lpos"].to_numpy()
        w1 = best["weight"].to_numpy(dtype=float)
        # Pareto dominance: a runner-up the best candidate dominates (at least as good a level on every
        # comparison, strictly better on one) is not ambiguous with it; the gap is taken to the best
        # candidate the best one does not dominate
        dominated = _dominated_by_best(ok, order, first, spec, labels)
        is_first = np.zeros(len(order), dtype=bool)
        is_first[first] = True
        later = np.flatnonzero(~dominated & ~is_first)
        grp = np.cumsum(is_first) - 1
        eff = np.full(len(first), -1)
        if len(later):
            g_later = grp[later]
            firsts_of = np.flatnonzero(np.r_[True, g_later[1:] != g_later[:-1]])
            eff[g_later[firsts_of]] = later[firsts_of]
        has_eff = eff >= 0
        gap = np.where(has_eff, w1 - w[order[np.maximum(eff, 0)]], np.inf)
        runner_up = right_ids[ok["_rpos"].to_numpy()[order[np.maximum(eff, 0)]]]
        raw_runner_up = right_ids[ok["_rpos"].to_numpy()[order[nxt]]]
        dominates = has_second & dominated[nxt]
        prob = np.asarray(match_probability(w1, model.lam), dtype=float)
        exact = best["_same_text"].to_numpy(dtype=bool).copy()
        all_exact = np.ones(len(best), dtype=bool)
        for c in spec.comparisons:
            labs = np.asarray(labels[c.name], dtype=object)[best[c.name].to_numpy().astype(int)]
            all_exact &= np.isin(labs, ["null", *d.exact_level_names])
        exact |= all_exact
        # the levels part of an explanation depends on the level pattern only: built once per pattern
        _, first_of, inverse = np.unique(level_pattern_codes(best, spec), return_index=True, return_inverse=True)
        prefix = []
        for k in first_of.tolist():
            parts = [f"{c.name}={labels[c.name][int(best[c.name].iat[k])]}" for c in spec.comparisons]
            prefix.append("".join(f"{p};" for p in parts if not p.endswith("=null")))
        prefix_of = np.asarray(prefix, dtype=object)[inverse.reshape(-1)]
        accept = (w1 >= d.min_weight) & (gap >= d.min_gap)
        best_right = right_ids[best["_rpos"].to_numpy()]
        texts = []
        for k, (pre, wk, g, pk) in enumerate(zip(prefix_of.tolist(), w1.tolist(), gap.tolist(), prob.tolist(),
                                                strict=True)):
            gap_txt = "inf" if g == np.inf else f"{g:.2f}"
            if dominates[k]:
                gap_txt += f";dominates={raw_runner_up[k]}"
            if wk < d.min_weight:
                texts.append(f"unresolved=low_weight;{pre}weight={wk:.2f};gap={gap_txt}")
            elif g < d.min_gap:
                texts.append(f"unresolved=ambiguous;{pre}weight={wk:.2f};gap={gap_txt};runner_up={runner_up[k]}")
            else:
                texts.append(f"{pre}weight={wk:.2f};gap={gap_txt};score={pk:.4f}")
        weight[pos], score[pos], expl[pos] = w1, np.round(prob, 6), np.asarray(texts, dtype=object)
        right_id[pos[accept]] = best_right[accept]
        method[pos[accept]] = np.array(["fuzzy", "exact"], dtype=object)[exact[accept].astype(int)]
        decided[pos] = True
    bad = pairs[(has_pairs & ~decided)[pairs["_lpos"].to_numpy()]]
    for p, g in bad.groupby("_lpos", sort=False)["_violations"]:
        viol = sorted({v for x in g for v in x.split(";") if v})
        expl[p] = f"unresolved=not_in_registry:{','.join(viol)};candidates={len(g)}"
    for p, rules in vague.items():
        if right_id[p] is None:
            base = "unresolved=too_vague" if not has_pairs[p] else expl[p]
            expl[p] = f"{base};too_vague={'|'.join(rules)}"
    return pd.DataFrame({"left_id": left_ids, "right_id": right_id, "weight": weight, "score": score,
                         "method": method, "explanation": expl}, columns=DECISION_COLUMNS)


def decide(scored: pd.DataFrame, left_ids: pd.Series, spec: LinkageSpec, model: FSModel,
           vague: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One decision per distinct left id (:data:`DECISION_COLUMNS`), vectorised.

    ``scored`` holds ``_id_l``, ``_id_r``, the levels, ``_compatible``, ``_violations``, ``_same_text`` and
    ``weight`` of candidate pairs. Incompatible candidates (a must-agree component differs: building, room,
    ...) are never chosen. The best remaining one is accepted when its weight reaches
    ``decision.min_weight`` and beats the runner-up by ``decision.min_gap``; otherwise the record is
    unresolved, with the reason in the explanation (``low_weight``, ``ambiguous``,
    ``not_in_registry:<comparisons>``, ``no_candidate``, ``too_vague``). ``vague`` (left id -> blocking
    rules skipped as too vague) is reported in the explanation of unresolved records
    (``too_vague=<rule>|<rule>``). Ties on weight go to the better levels (a lower sum of level indices:
    a candidate that dominates another of equal weight comes first), then to the smaller right id. A
    runner-up the best candidate Pareto-dominates (at least as good a level on every comparison, strictly
    better on one; ``null`` comparable only with ``null``) is not ambiguous with it: the gap is taken to the
    best candidate it does not dominate, and the explanation names the dominated one (``dominates=<id>``).
    """
    ids = pd.unique(np.asarray(left_ids, dtype=object))
    index = pd.Index(ids)
    lpos = index.get_indexer(scored["_id_l"])
    keep = lpos >= 0
    rcodes, right_ids = pd.factorize(scored["_id_r"].to_numpy(dtype=object), sort=True)
    pairs = scored.loc[keep].assign(_lpos=lpos[keep], _rpos=rcodes[keep])
    vague_pos = {int(index.get_loc(k)): v for k, v in (vague or {}).items() if k in index}
    right_ids = np.asarray(right_ids, dtype=object)
    return _decide(pairs, ids, right_ids, np.arange(len(right_ids)), spec, model, vague_pos)


def link(left_df: pd.DataFrame, right_df: pd.DataFrame, spec: LinkageSpec, model: FSModel | None = None,
         top_k: int = 0) -> tuple[pd.DataFrame, FSModel]:
    """Run a whole linkage with the pandas engine; return (decisions, fitted model).

    One decision per distinct left id (a repeated id keeps its first row; so does a repeated right id).
    Left records are blocked and compared in chunks of ``spec.block_chunk``; only the pairs' positions
    and levels (small ints) are kept, so memory grows with the candidate count, not the blocks' sizes.
    ``top_k`` > 0: a ``candidates`` column, the best ``top_k`` candidates of every unresolved record
    (:func:`top_candidates`; None for resolved ones and for those without a candidate).
    """
    left = prepare(left_df, spec, "left").drop_duplicates("_id").reset_index(drop=True)
    right = prepare(right_df, spec, "right").drop_duplicates("_id").reset_index(drop=True)
    coded, levels, vague = _candidate_levels(left, right, spec)
    log.info("linkage %s: %d left, %d right, %d candidate pairs, %d too-vague records", spec.name, len(left),
             len(right), len(levels), len(vague))
    if model is None:
        model = _estimate(coded, len(left), len(right), levels, spec)
    levels["weight"] = match_weights(levels, spec, model)
    right_ids = right["_id"].to_numpy(dtype=object)
    right_rank, _ = pd.factorize(right_ids, sort=True)     # ids are distinct: the code is the sort rank
    out = _decide(levels, left["_id"].to_numpy(dtype=object), right_ids, right_rank, spec, model, vague)
    if top_k > 0:
        open_ = out["right_id"].isna().to_numpy()      # candidates of unresolved records only
        out["candidates"] = top_candidates(levels[open_[levels["_lpos"].to_numpy()]], len(left), right_ids, spec,
                                           top_k)
    return out, model
