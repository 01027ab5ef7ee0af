"""The pandas side of the partitioned Spark linkage (:func:`matching.spark.link_spark`), no Spark import.

The Spark adapter splits one linkage into *partitions* and runs the pandas engine
(:func:`matching.engine.candidate_levels`, :func:`matching.engine.decide_positions`) inside each; this
module holds the routing plan, the function run per partition and the reduction of the few queries
whose candidates lie in several partitions.

Routing (:func:`plan_routes`). The rules of a pass (main, then fallback) are grouped into *routes*: a
route is a blocking key (e.g. ``room``) and the rules that all contain it. A query and a right record
go to partition ``(route, hash(key value) mod buckets)`` of every route whose key they have. Why a
partition reproduces the engine:

* every pair a rule of the route can produce shares the route key's value (the rule is an equi-join on
  a set of keys that includes it), so both records are in the same partition;
* the block size ``max_block_size`` is checked against counts ALL right records sharing the rule's key
  value, and they all share the route key too: they are all in that partition, so the count is global
  (partitioning can never split a block);
* a query with a null route key cannot join any rule of the route (null keys never join), so it loses
  nothing by not being sent there.

With ``address_to_house`` every main rule contains ``room``: one route, each query in exactly one
partition, decided there. The fallback rules share no key (``building`` for two, ``lane_no`` for two),
so a query having both keys goes to two partitions. Such a query (and every query with a forced pair)
is *non-local*: its partitions emit its candidate pairs with their levels (``p`` rows) and too-vague
rules (``v`` rows); :func:`reduce_queries` gathers them by query and decides deterministically as the
engine does. Except a query whose one forced pair (a delivered code) is among the candidates of its one
main partition: the reduction would see exactly those pairs (the main pass found some, so no fallback
pair counts; the forced pair is one of them), so the partition decides it, code verified or not
(:func:`verify_forced`), and the query goes no further (a third of the generated district's records
carry a code). The reduction takes the main pass's pairs when there are any, else the fallback pass's
(the engine runs the fallback rules only for queries the main rules found nothing for), duplicates (a pair found by rules
of two routes) removed, too-vague rules in spec order, ties to the smaller right id. Comparison levels
and weights depend only on the two records and the fixed model, so they are the same wherever a pair
is compared. A *local* query that finds no main pairs is sent on (an ``f`` row) to the fallback pass.

Output rows (:data:`OUT_COLUMNS`, ``_kind``): ``d`` a decision, ``f`` needs the fallback pass, ``p`` a
candidate pair, ``v`` too-vague rules of a query in one partition (also a presence marker), ``c``
pattern counts of compatible pairs (training: m by EM on counts only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matching.blocking import rule_name
from matching.compare import level_names
from matching.engine import candidate_levels, decide_positions, prepare, top_candidates
from matching.scoring import FSModel, match_probability, match_weights
from matching.spec import LinkageSpec, parse_key

__all__ = ["Route", "plan_routes", "rule_names", "OUT_COLUMNS", "run_partition", "reduce_queries",
           "forced_pair_rows", "MAIN", "FALLBACK", "FORCED"]

MAIN, FALLBACK, FORCED = 0, 1, 2
OUT_COLUMNS = ["_kind", "_id_l", "_pass", "_id_r", "_levels", "_compatible", "_violations", "_same_text", "_n",
               "_rules", "right_id", "weight", "score", "method", "explanation", "_cands"]


@dataclass(frozen=True)
class Route:
    """A partition key and the rules of one pass that all contain it."""

    key: str
    rules: tuple[tuple[str, ...], ...]


def plan_routes(rules: tuple[tuple[str, ...], ...], spec: LinkageSpec) -> list[Route]:
    """Group ``rules`` into routes, greedily: the key contained in most of the rules left, preferring a
    plain column (no slice) whose comparison has no value transform, then the first key in spec order."""
    transformed = {c.columns[0] for c in spec.comparisons
                   if c.transform not in (None, "nfkc") and len(c.columns) == 1}
    left = list(rules)
    routes: list[Route] = []
    while left:
        keys = list(dict.fromkeys(k for r in left for k in r))
        ranks = []
        for i, k in enumerate(keys):
            base, start, stop = parse_key(k)
            ranks.append((-sum(k in r for r in left), start is not None or stop is not None, base in transformed, i))
        key = keys[min(range(len(keys)), key=ranks.__getitem__)]
        routes.append(Route(key, tuple(r for r in left if key in r)))
        left = [r for r in left if key not in r]
    return routes


def rule_names(spec: LinkageSpec) -> list[str]:
    """Names of the main then the fallback rules: a too-vague rule is carried as its index in this list."""
    return [rule_name(r) for r in (*spec.blocking, *spec.blocking_fallback)]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in OUT_COLUMNS})


def _rows(kind: str, n: int, pass_no: int, **cols: object) -> pd.DataFrame:
    out = {c: np.full(n, None, dtype=object) for c in OUT_COLUMNS}
    out["_kind"] = np.full(n, kind, dtype=object)
    out["_pass"] = np.full(n, pass_no, dtype=np.int32)
    for k, v in cols.items():
        out[k] = np.asarray(v, dtype=np.float64 if k in ("weight", "score") else object) if n else out[k]
    return pd.DataFrame(out, columns=OUT_COLUMNS)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty()
    if len(parts) == 1:
        return parts[0]
    return pd.DataFrame({c: np.concatenate([p[c].to_numpy(dtype=object) for p in parts]) for c in OUT_COLUMNS},
                        columns=OUT_COLUMNS)


def _prepared(df: pd.DataFrame, spec: LinkageSpec, side: str) -> pd.DataFrame:
    id_col = spec.left_id if side == "left" else spec.right_id
    src = df.drop(columns=[id_col], errors="ignore").rename(columns={"_id": id_col}).reset_index(drop=True)
    out = prepare(src, spec, side)
    if "address_norm" in src.columns:
        out["address_norm"] = src["address_norm"].astype(object).where(src["address_norm"].notna(), None)
    return out


def _level_strings(levels: pd.DataFrame, spec: LinkageSpec) -> np.ndarray:
    cols = [levels[c.name].to_numpy().astype(np.int64).astype(str) for c in spec.comparisons]
    if not len(levels):
        return np.empty(0, dtype=object)
    return np.asarray([",".join(t) for t in zip(*cols, strict=True)], dtype=object)


def _pattern_rows(levels: pd.DataFrame, spec: LinkageSpec, pass_no: int) -> pd.DataFrame:
    ok = levels[levels["_compatible"].to_numpy(dtype=bool)]
    if not len(ok):
        return _empty()
    pats, counts = np.unique(_level_strings(ok, spec), return_counts=True)
    return _rows("c", len(pats), pass_no, _levels=pats, _n=counts.astype(np.int64).tolist())


def _rule_text(indices: list[int]) -> str:
    return "|".join(str(i) for i in sorted(set(indices)))


def _indices(text: object) -> list[int]:
    return [int(x) for x in str(text).split("|") if x] if isinstance(text, str) else []


def run_partition(left: pd.DataFrame, right: pd.DataFrame, spec: LinkageSpec, model: FSModel | None,
                  route: Route, pass_no: int, top_k: int = 0) -> pd.DataFrame:
    """One partition of one pass: the engine's blocking (the route's rules), comparisons and, with a
    ``model``, decisions of its local queries; ``model=None`` counts level patterns instead (training).

    ``left`` has ``_id``, the spec's columns, optionally ``address_norm``, and the routing flags
    ``_local`` (all the query's candidates meet in one partition per pass and it has no forced pair),
    ``_next`` (it has a fallback route) and ``_prev`` (too-vague main rules, fallback pass only). ``top_k`` > 0: the
    decisions of unresolved records carry their best ``top_k`` candidates (``_cands``, JSON text).
    ``_forced_id`` (optional): the query's one delivered code; with a ``model``, in the main pass, a
    non-local query of one main route (``_fan0`` 1) whose code is among its candidates here is decided here
    (a ``d`` row of pass :data:`FORCED`, see the module docstring)."""
    if not len(left):
        return _empty()
    names = rule_names(spec)
    index_of = {n: i for i, n in enumerate(names)}
    sub = spec.model_copy(update=dict(blocking=route.rules, blocking_fallback=(), parse_address={}))
    lp, rp = _prepared(left, sub, "left"), _prepared(right, sub, "right")
    levels, vague = candidate_levels(lp, rp, sub)
    lid, rid = lp["_id"].to_numpy(dtype=object), rp["_id"].to_numpy(dtype=object)
    n = len(lid)
    local = left["_local"].to_numpy(dtype=bool)
    has_pairs = np.zeros(n, dtype=bool)
    has_pairs[levels["_lpos"].to_numpy()] = True
    vague_idx = {p: [index_of[r] for r in rules] for p, rules in vague.items()}
    prev = [_indices(x) for x in left["_prev"]] if "_prev" in left.columns else [[] for _ in range(n)]
    parts = []
    # a query whose delivered code (``_forced_id``) is among its candidates here, all of them here (its one
    # main route), is decided here with it (pass FORCED): the reduction would see the same pairs
    verified = np.zeros(n, dtype=bool)
    is_forced = np.zeros(len(levels), dtype=bool)
    if model is not None and pass_no == MAIN and "_forced_id" in left.columns and len(levels):
        lpos = levels["_lpos"].to_numpy()
        is_forced = rid[levels["_rpos"].to_numpy()] == left["_forced_id"].to_numpy(dtype=object)[lpos]
        verified[lpos[is_forced]] = True
        verified &= ~local & (left["_fan0"].to_numpy() == 1)
    # non-local queries: candidate pairs and too-vague rules, decided by reduce_queries
    far = ~local & ~verified
    if far.any():
        pairs = levels[far[levels["_lpos"].to_numpy()]]
        parts.append(_rows("p", len(pairs), pass_no, _id_l=lid[pairs["_lpos"].to_numpy()],
                           _id_r=rid[pairs["_rpos"].to_numpy()], _levels=_level_strings(pairs, spec),
                           _compatible=pairs["_compatible"].to_numpy(dtype=bool),
                           _violations=pairs["_violations"].to_numpy(dtype=object),
                           _same_text=pairs["_same_text"].to_numpy(dtype=bool)))
        fpos = np.flatnonzero(far)
        parts.append(_rows("v", len(fpos), pass_no, _id_l=lid[fpos],
                           _rules=[_rule_text(vague_idx.get(int(p), [])) for p in fpos]))
    onward = local & ~has_pairs & (pass_no == MAIN) & left["_next"].to_numpy(dtype=bool)
    if onward.any():    # the engine's fallback rules run only for these; carried on with their vague rules
        opos = np.flatnonzero(onward)
        parts.append(_rows("f", len(opos), pass_no, _id_l=lid[opos],
                           _rules=[_rule_text(vague_idx.get(int(p), [])) for p in opos]))
    final = local & ~onward
    decided = final | verified
    if model is None:
        parts.append(_pattern_rows(levels[final[levels["_lpos"].to_numpy()]], spec, pass_no))
    elif decided.any():
        levels["weight"] = match_weights(levels, spec, model)
        all_vague = {p: [names[i] for i in sorted(set(prev[p] + vague_idx.get(p, [])))]
                     for p in range(n) if decided[p] and (prev[p] or p in vague_idx)}
        dec = decide_positions(levels, lid, rid, spec, model, all_vague)
        if verified.any():
            verify_forced(dec, levels, is_forced & verified[levels["_lpos"].to_numpy()], rid, spec, model)
        cands = _candidates_json(levels[decided[levels["_lpos"].to_numpy()]], dec, rid, spec, top_k)
        for mask, pass_of in ((final, pass_no), (verified, FORCED)):
            if mask.any():
                d = dec[mask]
                parts.append(_rows("d", len(d), pass_of, _id_l=d["left_id"], right_id=d["right_id"],
                                   weight=d["weight"], score=d["score"], method=d["method"],
                                   explanation=d["explanation"], _cands=cands[mask]))
    return _concat(parts)


def forced_pair_rows(pairs: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """``p`` rows (pass :data:`FORCED`) of materialised forced pairs (``l_*``/``r_*`` columns, see
    :func:`matching.compare.pair_levels`)."""
    from matching.compare import pair_levels

    lv = pair_levels(pairs.reset_index(drop=True), spec)
    return _rows("p", len(lv), FORCED, _id_l=lv["_id_l"], _id_r=lv["_id_r"], _levels=_level_strings(lv, spec),
                 _compatible=lv["_compatible"].to_numpy(dtype=bool), _violations=lv["_violations"],
                 _same_text=lv["_same_text"].to_numpy(dtype=bool))


def _candidates_json(pairs: pd.DataFrame, dec: pd.DataFrame, right_ids: np.ndarray, spec: LinkageSpec,
                     top_k: int) -> np.ndarray:
    """Per decision (``dec`` by left position): the engine's best ``top_k`` candidates
    (:func:`matching.engine.top_candidates`) as JSON text, for unresolved records only (else None)."""
    out = np.full(len(dec), None, dtype=object)
    if top_k <= 0:
        return out
    open_ = dec["right_id"].isna().to_numpy()
    cands = top_candidates(pairs[open_[pairs["_lpos"].to_numpy()]], len(dec), right_ids, spec, top_k)
    for p in np.flatnonzero(open_).tolist():
        if cands[p] is not None:
            out[p] = json.dumps(cands[p], ensure_ascii=False)
    return out


def _explanation_prefixes(frame: pd.DataFrame, spec: LinkageSpec, labels: dict[str, list[str]]) -> list[str]:
    """Each row's comparison levels as explanation text (``name=level;`` per comparison, null levels left out),
    computed column by column."""
    if not spec.comparisons:
        return [""] * len(frame)
    columns = []
    for c in spec.comparisons:
        texts = [f"{c.name}={label}" for label in labels[c.name]]
        columns.append([texts[int(v)] for v in frame[c.name].tolist()])
    return ["".join(f"{p};" for p in parts if not p.endswith("=null")) for parts in zip(*columns, strict=True)]


def reduce_queries(rows: pd.DataFrame, spec: LinkageSpec, model: FSModel | None, top_k: int = 0) -> pd.DataFrame:
    """Decisions (``d`` rows; ``c`` pattern counts when ``model`` is None) of the non-local queries in
    ``rows`` (their ``p`` and ``v`` rows from every partition, see the module docstring).

    A forced pair (pass :data:`FORCED`: a delivered code) is one more candidate of its query, and it is
    accepted (``scanned_code_verified``) when compatible and at least ``decision.verify_min_weight``.
    ``top_k``: as in :func:`run_partition` (a forced pair is a candidate like the blocked ones)."""
    if not len(rows):
        return _empty()
    names = rule_names(spec)
    ids = pd.unique(rows["_id_l"].to_numpy(dtype=object))
    qpos = pd.Index(ids)
    kind, pass_no = rows["_kind"].to_numpy(dtype=object), rows["_pass"].to_numpy().astype(int)
    lpos_all = qpos.get_indexer(rows["_id_l"])
    blocked_main = np.zeros(len(ids), dtype=bool)
    blocked_main[lpos_all[(kind == "p") & (pass_no == MAIN)]] = True
    main_q = blocked_main[lpos_all]
    keep = (kind == "p") & (((pass_no == MAIN) & main_q) | ((pass_no == FALLBACK) & ~main_q) | (pass_no == FORCED))
    if model is None:
        keep &= pass_no != FORCED
    pairs = rows[keep].sort_values("_pass", kind="stable").drop_duplicates(["_id_l", "_id_r"])
    level_cols = {c.name: [] for c in spec.comparisons}
    for text in pairs["_levels"].tolist():
        for c, v in zip(spec.comparisons, text.split(","), strict=True):
            level_cols[c.name].append(int(v))
    lv = pd.DataFrame({k: np.asarray(v, dtype=np.int16) for k, v in level_cols.items()}, index=pairs.index)
    lv["_compatible"] = pairs["_compatible"].to_numpy(dtype=bool)
    if model is None:
        return _pattern_rows(lv, spec, FALLBACK)
    rcodes, right_ids = pd.factorize(pairs["_id_r"].to_numpy(dtype=object), sort=True)
    lv["_violations"] = pairs["_violations"].fillna("").to_numpy(dtype=object)
    lv["_same_text"] = pairs["_same_text"].to_numpy(dtype=bool)
    lv["_lpos"] = qpos.get_indexer(pairs["_id_l"])
    lv["_rpos"] = rcodes
    lv["weight"] = match_weights(lv, spec, model)
    vague: dict[int, set[int]] = {}
    vrows = rows[(kind == "v") & ((pass_no == MAIN) | ~main_q)]
    for q, text in zip(qpos.get_indexer(vrows["_id_l"]).tolist(), vrows["_rules"].tolist(), strict=True):
        if _indices(text):
            vague.setdefault(q, set()).update(_indices(text))
    # the forced pair is a candidate of its query like the blocked ones; decide as the engine does
    dec = decide_positions(lv.reset_index(drop=True), ids, np.asarray(right_ids, dtype=object), spec, model,
                           {q: [names[i] for i in sorted(v)] for q, v in vague.items()})
    # a forced pair also found by blocking was kept as the blocked row above (same levels)
    fkeys = rows[keep & (pass_no == FORCED)]
    fkeys = set(zip(fkeys["_id_l"].tolist(), fkeys["_id_r"].tolist(), strict=True))
    is_forced = np.fromiter(((a, b) in fkeys for a, b in zip(pairs["_id_l"].tolist(), pairs["_id_r"].tolist(),
                                                              strict=True)), dtype=bool, count=len(pairs))
    verify_forced(dec, lv, is_forced, np.asarray(right_ids, dtype=object), spec, model)
    cands = _candidates_json(lv, dec, np.asarray(right_ids, dtype=object), spec, top_k)
    return _rows("d", len(dec), MAIN, _id_l=dec["left_id"], right_id=dec["right_id"], weight=dec["weight"],
                 score=dec["score"], method=dec["method"], explanation=dec["explanation"], _cands=cands)


def verify_forced(dec: pd.DataFrame, levels: pd.DataFrame, is_forced: np.ndarray, right_ids: np.ndarray,
                  spec: LinkageSpec, model: FSModel) -> None:
    """Accept delivered codes in ``dec`` (decisions by left position, changed in place): a forced pair
    (``is_forced``, a mask over ``levels``: pairs by position with their levels and ``weight``) that is
    compatible and of at least ``decision.verify_min_weight`` bits decides its query
    (``scanned_code_verified``; of several, the heaviest, then the smaller right id)."""
    forced = levels[is_forced & levels["_compatible"].to_numpy()
                    & (levels["weight"].to_numpy() >= spec.decision.verify_min_weight)]
    if not len(forced):
        return
    labels = level_names(spec)
    forced = forced.assign(_rid=right_ids[forced["_rpos"].to_numpy()])
    forced = forced.sort_values(["_lpos", "weight", "_rid"], ascending=[True, False, True])
    forced = forced.drop_duplicates("_lpos")
    # one column at a time (a row-by-row .loc took 40 min on a district night's ~10^5 forced pairs)
    pos = forced["_lpos"].to_numpy(dtype=np.int64)
    weights = [float(w) for w in forced["weight"].tolist()]
    dec.loc[pos, "right_id"] = forced["_rid"].to_numpy(dtype=object)
    dec.loc[pos, "weight"] = weights
    dec.loc[pos, "score"] = [round(float(match_probability(w, model.lam)), 6) for w in weights]
    dec.loc[pos, "method"] = "scanned_code_verified"
    dec.loc[pos, "explanation"] = [f"scanned_code_verified;{prefix}weight={w:.2f}" for prefix, w in
                                   zip(_explanation_prefixes(forced, spec, labels), weights, strict=True)]
