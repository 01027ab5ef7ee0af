"""Comparisons with ordered levels, vectorised over pandas pairs (engine-agnostic core).

A pair frame holds the left columns prefixed ``l_`` and the right ones ``r_``.
:func:`compare_pairs` returns one small-int column per comparison: the index of
the first level the pair satisfies (levels are ordered, the last is ``else``).
Fuzzy levels use rapidfuzz on NFKC text: ``ratio`` (normalised InDel similarity),
``levenshtein`` (edit distance), ``jaro_winkler`` — never the token_* scorers,
which split on spaces and Chinese has none. ``pinyin`` compares by sound (pypinyin, tone-less,
every reading of a character with several): 沙咀 = 沙嘴 (sha zui), 沙尾 (sha wei) is not.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import pandas as pd
from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.fuzz import ratio
from rapidfuzz.process import cpdist

from matching.address_lexicon import simplified
from matching.codes import joint_codes, map_unique
from matching.numerals import NUMERAL_CHARS, cn_to_int
from matching.spec import Comparison, Level, LinkageSpec

__all__ = ["compare_pairs", "comparison_values", "name_key", "pinyin_readings", "pinyin_similarity", "sounds_alike", "add_comparison_values", "lane_key", "levels_from_codes",
           "agreement_from_codes", "one_of_agreements", "violation_names", "agreement_checks", "pair_levels",
           "level_names"]


def _nfkc(v: object) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    s = unicodedata.normalize("NFKC", str(v)).strip()
    return s or None


_LANE_VARIANTS = str.maketrans({"邨": "村", "衖": "巷", "坊": "坊"})


def lane_key(v: str | None) -> str | None:
    """Canonical 坊/巷 name: variant characters unified (邨 -> 村, a trailing 方 -> 坊) and the lane's
    numeral as digits, so ``东邨二坊``, ``东村2坊`` and ``东村二方`` all give ``东村2坊`` (``一巷`` -> ``1巷``)."""
    if v is None:
        return None
    import re

    from matching.address import cn_to_int

    s = unicodedata.normalize("NFKC", v).strip().translate(_LANE_VARIANTS)
    s = re.sub(r"方$", "坊", s)

    def num(m: re.Match[str]) -> str:
        n = cn_to_int(m.group(1))
        return m.group(1) if n is None else str(n)

    s = re.sub(r"([零〇一二两三四五六七八九十百]+)(?=[坊巷]$)", num, s)
    return s or None


_NAME_NUMERAL = re.compile(f"[0-9{NUMERAL_CHARS}]+")


def name_key(v: str | None) -> str | None:
    """Canonical place name for comparing: traditional characters simplified and every Chinese numeral run
    written as digits, on both sides, so ``梅林一村`` = ``梅林1村`` and ``第五大道`` = ``第5大道`` (``三元里`` and
    ``3元里`` too: a name is compared, never read as a number)."""
    if v is None:
        return None
    s = simplified(unicodedata.normalize("NFKC", v).strip().upper())

    def num(m: re.Match[str]) -> str:
        n = cn_to_int(m.group(0))
        return m.group(0) if n is None else str(n)

    return _NAME_NUMERAL.sub(num, s) or None


@lru_cache(maxsize=500_000)
def transform_value(v: str | None, transform: str | None) -> str | None:
    """``v`` under a comparison's ``transform`` (``id_number``, ``phone``, ``lane``, ``name``, ``digits``;
    ``None``/``nfkc``: as is). Pure, so remembered: :func:`matching.engine.prepare` transforms a column and
    then its compared value, which for an already normalised ID or phone is the same text again."""
    if v is None or transform in (None, "nfkc"):
        return v
    if transform == "id_number":
        from gridlake.ids import normalize_id

        return normalize_id(v)[0]
    if transform == "phone":
        from gridlake.ids import normalize_phone

        return normalize_phone(v)
    if transform == "lane":
        return lane_key(v)
    if transform == "name":
        return name_key(v)
    if transform == "digits":
        d = "".join(ch for ch in v if ch.isdigit())
        return d or None
    return v


def comparison_values(frame: pd.DataFrame, comp: Comparison, prefix: str) -> pd.Series:
    """The compared value of one side: the comparison's columns NFKC'd, joined, transformed.

    A precomputed column ``<prefix>_cv_<name>`` (see :func:`add_comparison_values`) is used as is."""
    pre = f"{prefix}_cv_{comp.name}"
    if pre in frame:
        return frame[pre]
    parts = [pd.Series(map_unique(frame[f"{prefix}{c}"], _nfkc), index=frame.index, dtype=object)
             if f"{prefix}{c}" in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)
             for c in comp.columns]
    if len(parts) == 1:
        joined = parts[0]
    else:
        joined = pd.concat(parts, axis=1).apply(lambda r: "".join(x for x in r if x) or None, axis=1)
    if comp.transform not in (None, "nfkc"):
        joined = pd.Series(map_unique(joined, lambda v: transform_value(v, comp.transform)), index=frame.index,
                           dtype=object)
    return joined.astype(object).where(joined.notna(), None)


def add_comparison_values(df: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """Add ``_cv_<name>`` (the compared value) per comparison to one side's frame: computed once per
    record instead of once per pair."""
    for comp in spec.comparisons:
        df[f"_cv_{comp.name}"] = comparison_values(df, comp, "").to_numpy()
    return df


@lru_cache(maxsize=200_000)
def pinyin_readings(text: str) -> tuple[frozenset[str], ...]:
    """Per character of ``text`` the set of its tone-less pinyin readings (every reading of a character
    that has several, e.g. 咀: {ju, zui}); a character without a reading (digit, letter) stands for itself."""
    return tuple(_char_readings(ch) for ch in text if not ch.isspace())


@lru_cache(maxsize=100_000)
def _char_readings(ch: str) -> frozenset[str]:
    """The tone-less pinyin readings of one character (itself when it has none): pypinyin once per
    distinct character, not once per distinct text."""
    from pypinyin import Style, pinyin

    readings = pinyin(ch, style=Style.NORMAL, heteronym=True, errors=lambda c: [c])[0]
    return frozenset(r.lower() for r in readings if r) or frozenset([ch])


def pinyin_similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two texts by sound: 1.0 when every character of one reads like the one at the
    same place in the other (same length, a shared tone-less reading); else rapidfuzz ``ratio`` of the
    spelled-out syllables, each character taking the reading it shares with the other text's character
    at the same place where there is one (so 沙咀路/沙嘴路 = 1.0, 沙尾路/沙嘴路 = ratio of shaweilu/shazuilu)."""
    ra, rb = pinyin_readings(a), pinyin_readings(b)
    if len(ra) == len(rb) and all(x & y for x, y in zip(ra, rb, strict=True)):
        return 1.0
    sa, sb = [], []
    for i in range(max(len(ra), len(rb))):
        x = ra[i] if i < len(ra) else None
        y = rb[i] if i < len(rb) else None
        common = sorted(x & y) if x is not None and y is not None else []
        if common:
            sa.append(common[0])
            sb.append(common[0])
            continue
        if x is not None:
            sa.append(min(x))
        if y is not None:
            sb.append(min(y))
    return ratio(" ".join(sa), " ".join(sb)) / 100.0


def sounds_alike(a: str, b: str) -> bool:
    """Whether every character of one text reads like the one at the same place in the other (same length, a
    shared tone-less reading): exactly when :func:`pinyin_similarity` is 1.0 (otherwise it is the ratio of
    two different syllable strings), without spelling out the syllables."""
    ra, rb = pinyin_readings(a), pinyin_readings(b)
    return len(ra) == len(rb) and all(x & y for x, y in zip(ra, rb, strict=True))


def _pinyin_hit(a: str, b: str, threshold: float | None) -> bool:
    t = 1.0 if threshold is None else threshold
    return sounds_alike(a, b) if t >= 1.0 else pinyin_similarity(a, b) >= t


def _level_of(comp: Comparison, a: str | None, b: str | None) -> int:
    for i, lv in enumerate(comp.levels):
        k = lv.kind
        if k == "null":
            if a is None or b is None:
                return i
            continue
        if a is None or b is None:
            continue
        if k == "exact" and a == b:
            return i
        if k == "ratio" and ratio(a, b) / 100.0 >= lv.threshold:
            return i
        if k == "jaro_winkler" and JaroWinkler.similarity(a, b) >= lv.threshold:
            return i
        if k == "levenshtein" and Levenshtein.distance(a, b) <= lv.threshold:
            return i
        if k == "pinyin" and _pinyin_hit(a, b, lv.threshold):
            return i
        if k == "prefix" and len(_common_prefix(a, b)) >= lv.threshold:
            return i
        if k == "numeric_diff":
            try:
                if abs(float(a) - float(b)) <= lv.threshold:
                    return i
            except ValueError:
                pass
        if k == "else":
            return i
    return len(comp.levels) - 1


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def _fuzzy_from(comp: Comparison) -> int:
    """Index of the first level that needs the values themselves (not only null / equal / else)."""
    for i, lv in enumerate(comp.levels):
        if lv.kind not in ("null", "exact", "else"):
            return i
    return len(comp.levels)


def levels_from_codes(comp: Comparison, a: np.ndarray, b: np.ndarray, values: np.ndarray,
                      cache: dict[int, int] | None = None) -> np.ndarray:
    """Level index per pair of jointly coded values (``a``/``b``: codes into ``values``, -1 = missing).

    Leading ``null``/``exact``/``else`` levels are decided on the codes alone; from the first level that
    needs the text (a rapidfuzz threshold, ``prefix``, ``numeric_diff``) on, each *distinct* value pair still
    undecided is decided once, level by level (:func:`_levels_of_values`: rapidfuzz over all of them at once;
    ``pinyin``, ``prefix`` and ``numeric_diff`` a pair at a time, their results kept in ``cache``, keyed by
    ``pair code * 256 + level``, across calls that share ``values``).
    """
    n = len(a)
    out = np.full(n, len(comp.levels) - 1, dtype=np.int8)
    if n == 0:
        return out
    both = (a >= 0) & (b >= 0)
    undecided = np.ones(n, dtype=bool)
    stop = _fuzzy_from(comp)
    for i, lv in enumerate(comp.levels[:stop]):
        if lv.kind == "null":
            sel = undecided & ~both
        elif lv.kind == "exact":
            sel = undecided & both & (a == b)
        else:   # else
            sel = undecided
        out[sel] = i
        undecided &= ~sel
    if stop == len(comp.levels) or not undecided.any():
        return out
    out[undecided & ~both] = _level_of(comp, None, None)
    rest = np.flatnonzero(undecided & both)
    if rest.size:
        width = len(values) + 1
        distinct, inverse = np.unique(a[rest] * width + b[rest], return_inverse=True)
        out[rest] = _levels_of_values(comp, values, distinct, width, {} if cache is None else cache)[
            inverse.reshape(-1)]
    return out


#: level kinds scored by rapidfuzz over all distinct value pairs at once (``cpdist``: the same scorer, pairwise)
_VECTOR_SCORERS = {"ratio": ratio, "jaro_winkler": JaroWinkler.similarity, "levenshtein": Levenshtein.distance}


def _levels_of_values(comp: Comparison, values: np.ndarray, distinct: np.ndarray, width: int,
                      cache: dict[int, bool]) -> np.ndarray:
    """:func:`_level_of` of each distinct pair of present values (``distinct``: ``left * width + right``
    codes into ``values``), level by level over the pairs still undecided: ``exact`` and the rapidfuzz
    levels vectorised, the others (``pinyin``, ``prefix``, ``numeric_diff``) a pair at a time, remembered in
    ``cache`` (keyed by pair code and level)."""
    li, ri = np.divmod(distinct, width)
    left, right = values[li], values[ri]
    out = np.full(len(distinct), len(comp.levels) - 1, dtype=np.int8)
    todo = np.ones(len(distinct), dtype=bool)
    for i, lv in enumerate(comp.levels):
        idx = np.flatnonzero(todo)
        if not idx.size:
            break
        k = lv.kind
        if k == "null":            # both values are present here
            continue
        a, b = left[idx], right[idx]
        if k == "exact":
            hit = a == b
        elif k == "else":
            hit = np.ones(len(idx), dtype=bool)
        elif k in _VECTOR_SCORERS:
            scores = cpdist(a.tolist(), b.tolist(), scorer=_VECTOR_SCORERS[k],
                            dtype=np.int64 if k == "levenshtein" else np.float64)
            hit = (scores <= lv.threshold) if k == "levenshtein" else \
                ((scores / 100.0 if k == "ratio" else scores) >= lv.threshold)
        else:
            hit = np.empty(len(idx), dtype=bool)
            for j, (code, x, y) in enumerate(zip((distinct[idx] * 256 + i).tolist(), a.tolist(), b.tolist(),
                                                 strict=True)):
                h = cache.get(code)
                if h is None:
                    h = cache[code] = _hit(lv, x, y)
                hit[j] = h
        hit = np.asarray(hit, dtype=bool)
        out[idx[hit]] = i
        todo[idx[hit]] = False
    return out


def _hit(lv: Level, a: str, b: str) -> bool:
    """Whether two present values satisfy one level (as in :func:`_level_of`)."""
    k = lv.kind
    if k == "pinyin":
        return _pinyin_hit(a, b, lv.threshold)
    if k == "prefix":
        return len(_common_prefix(a, b)) >= lv.threshold
    if k == "numeric_diff":
        try:
            return abs(float(a) - float(b)) <= lv.threshold
        except ValueError:
            return False
    raise ValueError(f"level kind {k!r} has no scorer")


def agreement_from_codes(comp: Comparison, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where a pair of jointly coded values satisfies the comparison's ``must_agree`` policy:
    ``strict``: the left value is missing or equal; ``when_both``: also when the right one is missing."""
    if comp.must_agree == "none":
        return np.ones(len(a), dtype=bool)
    ok = (a < 0) | (a == b)
    if comp.must_agree == "when_both":
        ok |= b < 0
    return ok


def one_of_agreements(spec: LinkageSpec, levels: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Per ``must_agree_one_of`` rule, True where the pair satisfies it: no group of the rule is named on both
    sides (every comparison of the group above its ``null`` level), or some group agrees (every comparison
    of the group above ``null`` and below ``else``). E.g. ``place: [[complex], [road, door_no]]``: a house
    whose complex and road/door number both differ from the text's is not the place the text names."""
    comps = {c.name: c for c in spec.comparisons}
    out = []
    for rule, groups in spec.must_agree_one_of:
        named_any = np.zeros(len(next(iter(levels.values()))) if levels else 0, dtype=bool)
        agree_any = named_any.copy()
        for group in groups:
            named = np.ones(len(named_any), dtype=bool)
            agree = named.copy()
            for name in group:
                comp, lv = comps[name], levels[name]
                present = lv != comp.null_index if comp.null_index is not None else np.ones(len(lv), dtype=bool)
                named &= present
                agree &= present & (lv != len(comp.levels) - 1)
            named_any |= named
            agree_any |= agree
        out.append((rule, ~named_any | agree_any))
    return out


def violation_names(checks: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Per pair, the names of the failed must-agree checks ``(name, ok)``, ``;``-joined ("" when none)."""
    n = len(checks[0][1]) if checks else 0
    violations = np.full(n, "", dtype=object)
    for name, ok in checks:
        bad = np.flatnonzero(~ok)
        if bad.size:
            have = violations[bad]
            violations[bad] = np.where(have == "", name, have + ";" + name)
    return violations


def _agree_on_levels(comp: Comparison, ok: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``ok`` widened to the pairs whose level agrees without being exact (not null, not else)."""
    if comp.must_agree == "none" or _fuzzy_from(comp) == len(comp.levels):
        return ok
    agree = levels != len(comp.levels) - 1
    if comp.null_index is not None:
        agree &= levels != comp.null_index
    return ok | agree


def agreement_checks(spec: LinkageSpec, levels: dict[str, np.ndarray], oks: list[np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``_compatible`` and ``_violations`` of pairs from each comparison's must-agree result (``oks``, in
    spec order) and the ``must_agree_one_of`` rules over the pairs' ``levels``. A must-agree comparison with
    levels between ``exact`` and ``else`` (``pinyin``, a fuzzy threshold) also agrees on those: 东寸二坊
    agrees with 东村二坊 by sound, 西村二坊 does not."""
    checks = [(c.name, _agree_on_levels(c, ok, levels[c.name])) for c, ok in zip(spec.comparisons, oks, strict=True)]
    checks += one_of_agreements(spec, levels)
    compatible = np.ones(len(oks[0]) if oks else 0, dtype=bool)
    for _, ok in checks:
        compatible &= ok
    return compatible, violation_names(checks)


def compare_pairs(pairs: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """Levels of every comparison for every pair, plus ``_compatible`` (all must_agree and
    ``must_agree_one_of`` rules hold) and ``_violations`` (names of the failed ones, ``;``-joined, or empty)."""
    out = pd.DataFrame(index=pairs.index)
    oks = []
    for comp in spec.comparisons:
        a, b, values = joint_codes(comparison_values(pairs, comp, "l_"), comparison_values(pairs, comp, "r_"))
        out[comp.name] = levels_from_codes(comp, a, b, values)
        oks.append(agreement_from_codes(comp, a, b))
    out["_compatible"], out["_violations"] = agreement_checks(
        spec, {c.name: out[c.name].to_numpy() for c in spec.comparisons}, oks)
    return out


def pair_levels(pairs: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """:func:`compare_pairs` of materialised pairs with their ids first (``_id_l``, ``_id_r``) and
    ``_same_text`` (both normalised texts present and equal) last: the levels both engines score."""
    levels = compare_pairs(pairs, spec)
    levels.insert(0, "_id_r", pairs["r__id"].to_numpy())
    levels.insert(0, "_id_l", pairs["l__id"].to_numpy())
    if "l_address_norm" in pairs and "r_address_norm" in pairs:
        a, b, _ = joint_codes(pairs["l_address_norm"], pairs["r_address_norm"])
        levels["_same_text"] = (a >= 0) & (a == b)
    else:
        levels["_same_text"] = False
    return levels


def level_names(spec: LinkageSpec) -> dict[str, list[str]]:
    """Level labels per comparison (for explanations)."""
    return {c.name: [lv.label for lv in c.levels] for c in spec.comparisons}
