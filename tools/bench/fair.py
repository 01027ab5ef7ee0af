"""The fair set-up shared by both engines of ``tools.bench.fair_run``: derived features, capped blocking keys,
the tuning/test split and threshold selection by best F1 (issue 22 item 3).

* **Derived features** come from gridlake's own preparation (:func:`matching.engine.prepare` with the
  ``address_to_house`` spec): the same parse, the ``name`` transform on road / complex / village (numerals as
  digits) and the ``lane`` transform (东村二坊 = 东邨2坊), plus a name's sound (:func:`name_sound`) and the slice
  keys (``complex[:2]``, ``complex[-2:]``) of gridlake's blocking rules.
* **Capped blocking keys** (:func:`capped_keys`): one column per gridlake blocking rule holding the rule's key
  when the registry has at most ``max_block_size`` houses under it (else null: the rule is too vague for that
  key, as in gridlake), so a Splink equi-join on that column makes exactly the candidate pairs gridlake's rule
  makes; fallback rules only for queries no main rule found a house for.
* **Decisions** are raw: each engine returns its best compatible candidate with its weight and its gap to the
  runner-up; :func:`tune` picks (min_weight, min_gap) by best F1 on the tuning split, :func:`split_ids` makes
  the split (by a hash of the id, independent of the engines), and the chosen thresholds are scored on the
  other split.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["NAME_COLUMNS", "NUMBER_COLUMNS", "STRICT", "WHEN_BOTH", "PLACE_GROUPS", "rule_columns", "name_sound",
           "address_features", "capped_keys", "split_ids", "decide", "tune", "score_split",
           "WEIGHT_GRID_STEP", "GAP_GRID"]

NAME_COLUMNS = ("community", "road", "complex", "village", "lane")
NUMBER_COLUMNS = ("door_no", "lane_no", "building", "unit", "floor", "room")
STRICT = ("lane_no", "building", "floor", "room")        # text names it -> the house must have the same (hard)
WHEN_BOTH = ("unit",)                                     # both name it -> must agree (hard); lane: by its level
PLACE_GROUPS = (("complex",), ("road", "door_no"), ("village", "lane"))
WEIGHT_GRID_STEP = 0.25
GAP_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0)


def rule_columns(rule: list[str]) -> list[str]:
    """Feature column names of a gridlake blocking rule: ``complex[:2]`` -> ``complex__0_2``, ``complex[-2:]``
    -> ``complex__-2_``; plain components unchanged."""
    from matching.spec import parse_key

    out = []
    for key in rule:
        base, a, b = parse_key(key)
        def num(x: int | None) -> str:
            return "" if x is None else str(x).replace("-", "m")

        out.append(base if a is None and b is None else f"{base}__{num(a)}_{num(b)}")
    return out


def _slicer(key: str):
    from matching.spec import parse_key

    _, a, b = parse_key(key)
    return lambda v: (v[a:b] or None) if isinstance(v, str) and v else None


def name_sound(v: object) -> str | None:
    """A name's sound: per character its smallest tone-less pinyin reading (homophones and traditional
    characters mostly share it; a character with several readings may not: the engine's own ``pinyin`` level
    intersects all readings, which a single column cannot)."""
    if not isinstance(v, str) or not v:
        return None
    from matching.compare import pinyin_readings

    return " ".join(min(r) for r in pinyin_readings(v)) or None


def address_features(df: pd.DataFrame, id_col: str, side: str, spec: Any) -> pd.DataFrame:
    """``unique_id``, the spec's prepared comparison columns (transforms applied), ``<name>_py`` sounds and the
    slice columns the spec's blocking rules use."""
    from matching.engine import prepare

    src = df.rename(columns={id_col: spec.left_id if side == "left" else spec.right_id})
    p = prepare(src, spec, side)
    cols = [c for c in (*NAME_COLUMNS, "street", *NUMBER_COLUMNS) if c in p.columns]
    out = p[["_id", *cols]].rename(columns={"_id": "unique_id"}).copy()
    for c in cols:
        out[c] = out[c].astype(object).where(out[c].notna() & (out[c] != ""), None)
    for c in ("road", "complex", "village", "lane"):
        uniq = {v: name_sound(v) for v in pd.unique(out[c].dropna())}
        out[f"{c}_py"] = out[c].map(uniq).astype(object).where(out[c].notna(), None)
    for rule in [*spec.blocking, *spec.blocking_fallback]:
        for raw, col in zip(rule, rule_columns(rule), strict=True):
            if col != raw and col not in out.columns:
                base, cut = raw.split("[", 1)[0], _slicer(raw)
                uniq = {v: cut(v) for v in pd.unique(out[base].dropna())}
                out[col] = out[base].map(uniq).astype(object).where(out[base].notna(), None)
    return out.reset_index(drop=True)


def _key(df: pd.DataFrame, cols: list[str]) -> pd.Series:
    ok = df[cols].notna().all(axis=1)
    key = df[cols[0]].astype(str)
    for c in cols[1:]:
        key = key + "\x1f" + df[c].astype(str)
    return key.where(ok, None)


def capped_keys(reg: pd.DataFrame, qry: pd.DataFrame, spec: Any) -> tuple[list[str], dict[str, Any]]:
    """Add ``blk_<i>`` (main rules) and ``fbk_<j>`` (fallback rules) columns to ``reg`` and ``qry`` in place:
    the rule's key where the registry holds 1..``max_block_size`` houses under it, else null (gridlake's
    ``too_vague``; a key the registry lacks joins nothing anyway). Fallback keys are set only on queries no main
    rule found a house for. Returns the key columns and per-rule counts (queries keyed, registry blocks capped)."""
    cap = spec.max_block_size or 10**9
    names, stats = [], {}
    found = np.zeros(len(qry), dtype=bool)
    rules = [("blk", i, r) for i, r in enumerate(spec.blocking)] + \
            [("fbk", j, r) for j, r in enumerate(spec.blocking_fallback)]
    for kind, i, rule in rules:
        cols = rule_columns(rule)
        name = f"{kind}_{i}"
        rk, qk = _key(reg, cols), _key(qry, cols)
        counts = rk.value_counts()
        ok = set(counts[counts <= cap].index)
        reg[name] = rk.where(rk.isin(ok), None)
        qv = qk.where(qk.isin(ok), None)
        if kind == "fbk":
            qv = qv.where(~found, None)
        qry[name] = qv
        if kind == "blk":
            found |= qv.notna().to_numpy()
        names.append(name)
        vague = qk.notna() & qk.isin(counts.index) & ~qk.isin(ok)
        if kind == "fbk":                  # a fallback rule is only tried for queries the main rules missed
            vague &= ~found
        stats[name] = {"rule": list(rule), "queries_keyed": int(qv.notna().sum()),
                       "queries_too_vague": int(vague.sum()),
                       "registry_keys_over_cap": int((counts > cap).sum())}
    return names, stats


def split_ids(ids: pd.Series, seed: int) -> np.ndarray:
    """True for the tuning split, False for the test split: half of the ids by a hash of seed and id."""
    return np.array([hashlib.blake2b(f"{seed}|{i}".encode(), digest_size=8).digest()[0] % 2 == 0
                     for i in ids.astype(str)], dtype=bool)


def decide(raw: pd.DataFrame, min_weight: float, min_gap: float) -> pd.DataFrame:
    """``id``, ``house_code`` from raw decisions (``id``, ``house_code`` = best compatible candidate or None,
    ``weight``, ``gap`` to the runner-up, inf without one): accepted when weight >= min_weight and gap >= min_gap."""
    ok = raw["house_code"].notna() & (raw["weight"] >= min_weight) & (raw["gap"] >= min_gap)
    return pd.DataFrame({"id": raw["id"], "house_code": raw["house_code"].where(ok, None)})


def tune(raw: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """The (min_weight, min_gap) with the best F1 of ``raw`` against ``truth`` (id, true_code): min_weight over
    a grid of ``WEIGHT_GRID_STEP`` covering the best weights, min_gap over :data:`GAP_GRID`. Vectorised: for
    each gap, correct/wrong answers are counted by cumulative sums over the weight grid."""
    df = truth[["id", "true_code"]].merge(raw, on="id", how="left")
    resolvable = int((df["true_code"].fillna("") != "").sum())
    has = df["house_code"].notna().to_numpy()
    w = df["weight"].to_numpy(dtype=float)
    gap = df["gap"].to_numpy(dtype=float)
    correct = has & (df["house_code"].astype(object).to_numpy() == df["true_code"].astype(object).to_numpy())
    finite = w[has & np.isfinite(w)]
    if not len(finite):
        return {"min_weight": 0.0, "min_gap": 0.0, "f1": 0.0}
    grid = np.arange(np.floor(finite.min()), np.ceil(finite.max()) + WEIGHT_GRID_STEP, WEIGHT_GRID_STEP)
    best: dict[str, Any] = {"f1": -1.0}
    for g in GAP_GRID:
        sel = has & (gap >= g)
        # answers with weight >= t: counts of weights at or above each grid point
        ws_c, ws_w = np.sort(w[sel & correct]), np.sort(w[sel & ~correct])
        tp = len(ws_c) - np.searchsorted(ws_c, grid, side="left")
        fp = len(ws_w) - np.searchsorted(ws_w, grid, side="left")
        p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
        r = tp / max(resolvable, 1)
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
        k = int(np.argmax(f1))
        if f1[k] > best["f1"] + 1e-12:
            best = {"min_weight": round(float(grid[k]), 3), "min_gap": g, "f1": round(float(f1[k]), 5),
                    "precision": round(float(p[k]), 5), "recall": round(float(r[k]), 5)}
    return best


def score_split(raw: pd.DataFrame, truth: pd.DataFrame, tuning: np.ndarray, defaults: tuple[float, float] | None
                ) -> dict[str, Any]:
    """Tune on the ``tuning`` rows of ``truth`` and score the chosen thresholds on the others (and, with
    ``defaults``, the engine's own untuned thresholds on the same test split)."""
    from tools.bench.matching import score_answers

    t_truth, s_truth = truth[tuning], truth[~tuning]
    chosen = tune(raw, t_truth)
    out: dict[str, Any] = {"tuning_records": int(tuning.sum()), "test_records": int((~tuning).sum()),
                           "chosen_on_tuning": chosen,
                           "test": score_answers(decide(raw, chosen["min_weight"], chosen["min_gap"]), s_truth)}
    if defaults is not None:
        out["test_at_default_thresholds"] = {"min_weight": defaults[0], "min_gap": defaults[1],
                                             **score_answers(decide(raw, *defaults), s_truth)["overall"]}
    return out
