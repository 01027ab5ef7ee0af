"""Persons across sources: link person mentions with the ``person`` spec and cluster them into persons.

Every mention (declarant, party of a police or mediation record, ...) is prepared once
(:func:`prepare_mentions`): the validated ID number (GB 11643, a 15-digit ID upgraded to 18 digits), the ID
as written (cleaned, so a mistyped digit is one edit away from the true ID), birth date and sex read from an
ID that is valid or fails only its checksum, the name's sound (blocking key), the normalised phone. The
spec (``conf/matching/person.yaml``) runs on the pandas engine with the mentions on both sides; its EM
estimates the weights. A pair links when a ``decision.decisive`` comparison is exact (the same validated
ID, whatever else differs), or when it passes every must-agree rule, its weight reaches ``decision.min_weight`` and at least one ``decision.corroborate``
comparison agrees (a name alone never links: namesakes). Pairs failing a must-agree rule (two different
valid IDs) never link, and clusters are merged strongest link first under the same rule: a cluster never
holds two different valid IDs. Each person gets a stable pseudonymous key: the HMAC of the smallest valid
ID in its cluster, else of its smallest record key. Nothing here logs or returns names, phones or IDs.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import opencc
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridlake.ids import normalize_id, normalize_ids, normalize_phones, upgrade_15_to_18
from gridlake.privacy import pseudonym_py
from matching.codes import map_unique
from matching.compare import level_names
from matching.engine import prepare, self_link_levels
from matching.person_bearer import sole_bearer_links
from matching.scoring import FSModel
from matching.spec import LinkageSpec, load_spec

log = logging.getLogger(__name__)

__all__ = ["canonical_name", "name_sound", "prepare_mentions", "scored_pairs", "cluster", "apply_links", "finish_persons", "Links", "resolve_persons", "RESOLUTION_COLUMNS", "id_parts"]

#: one row per mention: person_key, how it joined its person, the weight of that link and why
RESOLUTION_COLUMNS = ["record_key", "person_key", "method", "weight", "explanation"]


def id_parts(raw: str | None) -> tuple[str | None, str | None, str | None, str | None]:
    """``(valid18, text18, birth, sex)`` of an ID as written: the validated 18-digit ID (None unless it
    passes GB 11643), the cleaned 18-character text (15 digits upgraded; also when the checksum fails; None
    for anything else), the birth date ``YYYYMMDD`` and sex ``M``/``F`` when the text is valid or fails
    only its checksum (its date is a real date)."""
    valid, reason = normalize_id(raw)
    if valid is not None:
        text = valid
    elif reason == "ID_CHECKSUM":
        text = unicodedata.normalize("NFKC", raw or "").strip().replace(" ", "").upper()
    else:
        s = unicodedata.normalize("NFKC", raw or "").strip().replace(" ", "").upper()
        text = upgrade_15_to_18(s) if len(s) == 15 and s.isdigit() else (s if len(s) == 18 else None)
        return None, text, None, None
    try:
        birth = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14])).strftime("%Y%m%d")
    except ValueError:
        return valid, text, None, None
    return valid, text, birth, "M" if int(text[16]) % 2 else "F"


_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def id_parts_many(values: np.ndarray) -> list[np.ndarray]:
    """:func:`id_parts` of every value, as four object arrays (``valid18``, ``text18``, ``birth``, ``sex``).

    The IDs :func:`gridlake.ids.normalize_ids` validates are split on arrays (their birth date checked
    against the calendar); every other value goes through :func:`id_parts`, so each result equals its."""
    arr = np.asarray(values, dtype=object)
    valid, _ = normalize_ids(arr)
    out = [np.full(len(arr), None, dtype=object) for _ in range(4)]
    ok = np.flatnonzero(valid != None)     # noqa: E711 (object array: elementwise)
    if len(ok):
        v = valid[ok]
        d = np.frombuffer("".join(v.tolist()).encode("ascii"), dtype=np.uint8).reshape(len(ok), 18) \
            .astype(np.int32) - ord("0")
        year = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
        month, day = d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        real = (month >= 1) & (month <= 12) & (day >= 1) \
            & (day <= _DAYS[np.clip(month, 0, 12)] + (leap & (month == 2)))
        out[0][ok] = v
        out[1][ok] = v
        out[2][ok[real]] = [t[6:14] for t in v[real].tolist()]
        out[3][ok[real]] = np.where(d[real, 16] % 2 == 1, "M", "F").astype(object)
    for i in np.flatnonzero(valid == None).tolist():     # noqa: E711
        out[0][i], out[1][i], out[2][i], out[3][i] = id_parts(arr[i])
    return out


#: what people put between the parts of a name (a space, or a middle dot between the parts of a transliterated
#: minority or foreign name, or between surname and given name on some forms): none of it is the name
_NAME_SEPARATORS = re.compile(r"[\s·•‧・．.\-_]+")


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def canonical_name(v: object) -> str | None:
    """A name as compared: NFKC, without separators (``张 伟``, ``张·伟``, ``阿卜杜·热合曼``), in simplified
    characters (OpenCC t2s: ``張偉`` and ``於小明`` are ``张伟`` and ``于小明``, as a clerk reading them would
    say). None when nothing is left."""
    if not isinstance(v, str):
        return None
    s = _NAME_SEPARATORS.sub("", unicodedata.normalize("NFKC", v))
    return _t2s().convert(s) if s else None


@lru_cache(maxsize=100_000)
def _usual_reading(ch: str) -> str:
    from pypinyin import Style, pinyin

    r = pinyin(ch, style=Style.NORMAL, heteronym=False, errors=lambda c: [[x] for x in c])
    return r[0][0] if r and r[0] and r[0][0] else ch


def name_sound(name: str | None) -> str | None:
    """Blocking key of a (canonical) name: the usual tone-less reading of every character (pypinyin's
    default reading of the character, the one a pinyin input method offers first: a same-sounding character
    typed for the right one shares it). Character by character, not as a phrase: a name is not a word of the
    phrase dictionary (and a character's reading is then looked up once). Not the smallest reading: for a
    heteronym that pick is arbitrary (乐 le/yue, 单 dan/shan) and a homophone of its usual reading then got
    another key."""
    if not name:
        return None
    return " ".join(_usual_reading(ch) for ch in name)


def prepare_mentions(df: pd.DataFrame) -> pd.DataFrame:
    """The columns the ``person`` spec reads from mentions (``record_key``, ``name``, ``phone``,
    ``id_number``, ``house_code``; missing ones are empty): ``record_key``, ``id_valid``, ``id_text``,
    ``birth``, ``sex``, ``name``, ``name_sound``, ``phone``, ``house_code``."""
    def col(c: str) -> pd.Series:
        return df[c] if c in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)

    def blank(v: object) -> str | None:
        return v.strip() if isinstance(v, str) and v.strip() else None

    # each function once per distinct value (a person's ID, name and phone recur across their mentions); IDs
    # and phones on arrays of them (a million distinct IDs at district scale)
    ids = _per_distinct(col("id_number"), lambda u: id_parts_many(np.array([blank(v) for v in u], dtype=object)))
    names = map_unique(col("name"), canonical_name)
    return pd.DataFrame({
        "record_key": col("record_key").astype(str).to_numpy(dtype=object),
        "id_valid": ids[0], "id_text": ids[1], "birth": ids[2], "sex": ids[3],
        "name": names, "name_sound": map_unique(names, name_sound),
        "phone": _per_distinct(col("phone"),
                               lambda u: [normalize_phones(np.array([blank(v) for v in u], dtype=object))])[0],
        "house_code": map_unique(col("house_code"), blank),
    })


def _per_distinct(values: pd.Series, fn) -> list[np.ndarray]:
    """``fn`` (distinct values -> object arrays of results) once over the distinct non-missing values: each
    result array spread over ``values`` (None where the value is missing)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    return [np.append(np.asarray(r, dtype=object), None)[codes] for r in fn(np.asarray(uniques, dtype=object))]


def scored_pairs(mentions: pd.DataFrame, spec: LinkageSpec, model: FSModel | None = None
                 ) -> tuple[pd.DataFrame, FSModel]:
    """Candidate pairs of prepared mentions (each unordered pair once, ``_id_l < _id_r``) with their levels,
    ``_compatible``, ``_violations`` and ``weight``; and the model (EM-trained here when ``model`` is None)."""
    side = prepare(mentions, spec, "left").drop_duplicates("_id").reset_index(drop=True)
    return self_link_levels(side, spec, model)


def _links(levels: pd.DataFrame, spec: LinkageSpec) -> pd.DataFrame:
    """The pairs that link (``method`` decisive|score), strongest first."""
    comps = {c.name: c for c in spec.comparisons}
    d = spec.decision
    ok = levels["_compatible"].to_numpy(dtype=bool)
    decisive = np.zeros(len(levels), dtype=bool)
    for name in d.decisive:
        exact = [i for i, lv in enumerate(comps[name].levels) if lv.kind == "exact"]
        decisive |= levels[name].isin(exact).to_numpy()
    corroborated = np.zeros(len(levels), dtype=bool) if d.corroborate else np.ones(len(levels), dtype=bool)
    for name in d.corroborate:
        c = comps[name]
        lv = levels[name].to_numpy()
        corroborated |= (lv != (c.null_index if c.null_index is not None else -1)) & (lv != len(c.levels) - 1)
    scored = corroborated & (levels["weight"].to_numpy() >= d.min_weight)
    take = decisive | (ok & scored)      # the same validated ID decides, even against a differently written name
    out = levels[take].copy()
    out["method"] = np.where(decisive[take], "id", "score")
    out["_rank"] = np.where(decisive[take], 1, 0)
    return out.sort_values(["_rank", "weight", "_id_l", "_id_r"], ascending=[False, False, True, True],
                           kind="stable")


def _explain_rows(links: pd.DataFrame, rows: np.ndarray, others: np.ndarray, spec: LinkageSpec,
                  labels: dict[str, list[str]]) -> list[str]:
    """The explanation of each link ``rows[i]`` (positions in ``links``) shown on a record whose other side
    is ``others[i]``: ``linked_to=<other>;<comparison>=<level>;...;weight=<w>`` (null levels left out). The
    levels part depends on the level pattern only, so it is built once per distinct pattern."""
    if not len(rows):
        return []
    lv = np.column_stack([links[c.name].to_numpy().astype(np.int64)[rows] for c in spec.comparisons])
    patterns, inverse = np.unique(lv, axis=0, return_inverse=True)
    prefix = []
    for pat in patterns.tolist():
        parts = [f"{c.name}={labels[c.name][k]}" for c, k in zip(spec.comparisons, pat, strict=True)]
        prefix.append(";".join(p for p in parts if not p.endswith("=null")))
    w = links["weight"].to_numpy(dtype=float)[rows]
    return [f"linked_to={o};{prefix[i]};weight={x:.2f}"
            for o, i, x in zip(others.tolist(), inverse.reshape(-1).tolist(), w.tolist(), strict=True)]


def _group_min(groups: np.ndarray, values: np.ndarray) -> dict[int, str]:
    """The smallest value per group (missing values ignored; groups without one are absent)."""
    ok = np.array([isinstance(v, str) for v in values], dtype=bool)
    g, v = groups[ok], values[ok]
    if not len(g):
        return {}
    rank, uniq = pd.factorize(v, sort=True)           # codes in the strings' order
    order = np.lexsort((rank, g))
    gs = g[order]
    first = np.r_[True, gs[1:] != gs[:-1]]
    return dict(zip(gs[first].tolist(), np.asarray(uniq, dtype=object)[rank[order][first]].tolist(), strict=True))


@dataclass(frozen=True)
class Links:
    """The persons after the scored links, before the sole-bearer pass (positions in the prepared mentions):
    ``roots`` each mention's person (its smallest position), ``components`` its component of the link graph
    (every link, applied or skipped under the never-link rule: clustering inside one never reads another; its
    smallest position), and the ``method`` (``id`` | ``score`` | ``single``), ``weight`` and ``explanation``
    of the link explained on each mention."""

    roots: np.ndarray
    components: np.ndarray
    method: np.ndarray
    weight: np.ndarray
    explanation: np.ndarray


def apply_links(mentions: pd.DataFrame, levels: pd.DataFrame, spec: LinkageSpec) -> Links:
    """The scored links of prepared mentions applied strongest first (decisive ones before scored ones, then by
    weight); a link that would put two different valid IDs into one person is skipped (``never_link`` in no
    explanation: the records simply stay apart). See :func:`cluster`."""
    keys = mentions["record_key"].astype(str).to_numpy(dtype=object)
    n = len(keys)
    valid = mentions["id_valid"].to_numpy(dtype=object)
    links = _links(levels, spec)
    index = pd.Index(keys)
    la = index.get_indexer(links["_id_l"].to_numpy(dtype=object))
    lb = index.get_indexer(links["_id_r"].to_numpy(dtype=object))
    if len(la) and (la.min() < 0 or lb.min() < 0):
        raise KeyError("a scored pair names a record that is not among the mentions")
    # union-find on Python lists (root = the smaller position); a cluster holds at most one valid ID, so
    # each root carries that ID or None and a link is skipped when both roots carry different ones
    parent = list(range(n))
    id_of = [v if v else None for v in valid.tolist()]
    explained = [-1] * n          # the link explained on the record
    other = [-1] * n              # the record that link joins it to

    def find(i: int) -> int:
        return _find(parent, i)

    skipped = 0
    for k, (a, b) in enumerate(zip(la.tolist(), lb.tolist(), strict=True)):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        ia, ib = id_of[ra], id_of[rb]
        if ia is not None and ib is not None and ia != ib:
            skipped += 1
            continue
        root, child = (ra, rb) if ra < rb else (rb, ra)
        parent[child] = root
        if id_of[root] is None:
            id_of[root] = id_of[child]
        rec = b if explained[b] < 0 else a      # the link is explained on a record not yet explained
        if explained[rec] < 0:
            explained[rec], other[rec] = k, (a if rec == b else b)
    if skipped:
        log.info("persons: %d links skipped (they would join two different valid ID numbers)", skipped)
    exp = np.asarray(explained, dtype=np.int64)
    recs = np.flatnonzero(exp >= 0)
    rows = exp[recs]
    method = np.full(n, "single", dtype=object)
    weight = np.full(n, np.nan)
    expl = np.full(n, "single", dtype=object)
    method[recs] = links["method"].to_numpy(dtype=object)[rows]
    weight[recs] = links["weight"].to_numpy(dtype=float)[rows]
    expl[recs] = np.asarray(_explain_rows(links, rows, keys[np.asarray(other, dtype=np.int64)[recs]], spec,
                                          level_names(spec)), dtype=object)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    return Links(roots, _smallest_member(n, la, lb), method, weight, expl)


def _find(parent: list[int], i: int) -> int:
    """The root of ``i`` in a union-find's ``parent`` list, the path to it compressed."""
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return root


def _smallest_member(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per node of a graph on ``n`` nodes with edges ``a``-``b``: the smallest node of its component."""
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    smallest = np.full(int(label.max()) + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(smallest, label, np.arange(n, dtype=np.int64))
    return smallest[label]


def finish_persons(mentions: pd.DataFrame, linked: Links, spec: LinkageSpec, key: bytes,
                   known: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """The persons (:data:`RESOLUTION_COLUMNS`) from the scored links' :class:`Links`: the sole-bearer pass
    (with ``decision.sole_bearer``) over every mention, then each person's key. See :func:`cluster`.

    ``known`` (an incremental linkage): per mention, the person key it had last night (None when the mention
    is new or changed) and that person's size then. A person made of exactly one of last night's persons,
    every mention unchanged, has the same smallest valid ID or record key, so its key is taken as it was
    instead of computed again (an HMAC per person: 3.8 s for a district's million)."""
    keys = mentions["record_key"].astype(str).to_numpy(dtype=object)
    n = len(keys)
    valid = mentions["id_valid"].to_numpy(dtype=object)
    parent = np.asarray(linked.roots, dtype=np.int64).tolist()   # a root is its own parent
    method = np.array(linked.method, dtype=object)
    weight = np.array(linked.weight, dtype=float)
    expl = np.array(linked.explanation, dtype=object)

    def find(i: int) -> int:
        return _find(parent, i)

    if spec.decision.sole_bearer:
        bearer = sole_bearer_links(mentions, np.asarray(linked.roots, dtype=np.int64))
        for a, b, why in bearer:
            ra, rb = find(a), find(b)
            root, child = (ra, rb) if ra < rb else (rb, ra)
            parent[child] = root
            if method[a] == "single":
                method[a] = "sole_bearer"
                expl[a] = f"linked_to={keys[b]};{why}"
        log.info("persons: %d persons without a valid ID joined the sole bearer of their name", len(bearer))
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    person, todo = _known_persons(roots, known) if known is not None else ({}, np.ones(n, dtype=bool))
    # the smallest valid ID's pseudonym is the person key gold already uses for that ID
    best_id = _group_min(roots[todo], valid[todo])
    best_key = _group_min(roots[todo], keys[todo])
    person.update({r: pseudonym_py(key, best_id[r] if r in best_id else "record:" + k) for r, k in best_key.items()})
    return pd.DataFrame({"record_key": keys, "person_key": [person[r] for r in roots.tolist()], "method": method,
                         "weight": weight, "explanation": expl}, columns=RESOLUTION_COLUMNS)


def _known_persons(roots: np.ndarray, known: tuple[np.ndarray, np.ndarray]) -> tuple[dict[int, str], np.ndarray]:
    """The persons (roots) whose key is last night's (see :func:`finish_persons`) and, per mention, whether its
    person's key is still to be computed."""
    before, size = known
    code, uniques = pd.factorize(np.asarray(before, dtype=object), use_na_sentinel=True)
    frame = pd.DataFrame({"root": roots, "code": code, "size": np.asarray(size, dtype=np.int64)})
    g = frame.groupby("root", sort=False).agg(lo=("code", "min"), hi=("code", "max"), n=("code", "size"),
                                              size=("size", "first"))
    same = (g["lo"] == g["hi"]) & (g["lo"] >= 0) & (g["n"] == g["size"])
    keep = g[same]
    person = dict(zip(keep.index.tolist(), np.asarray(uniques, dtype=object)[keep["lo"].to_numpy()].tolist(),
                      strict=True))
    return person, ~np.isin(roots, keep.index.to_numpy())


def cluster(mentions: pd.DataFrame, levels: pd.DataFrame, spec: LinkageSpec, key: bytes) -> pd.DataFrame:
    """Persons from prepared mentions and their scored pairs (:data:`RESOLUTION_COLUMNS`).

    Links are applied strongest first (decisive ones before scored ones, then by weight); a link that would
    put two different valid IDs into one person is skipped (``never_link`` in no explanation: the records
    simply stay apart). ``method``: ``id`` | ``score`` (the first link that joined the record to its person;
    the explanation names the other record, the levels and the weight) | ``sole_bearer`` (with
    ``decision.sole_bearer``: a person without a valid ID joined the only identified bearer of its name's
    sound, :mod:`matching.person_bearer`; no weight) | ``single`` (no link explained on
    this record: alone, or the record its person's links were explained against)."""
    return finish_persons(mentions, apply_links(mentions, levels, spec), spec, key)


def resolve_persons(mentions: pd.DataFrame, key: bytes, spec: LinkageSpec | None = None,
                    model: FSModel | None = None) -> tuple[pd.DataFrame, FSModel]:
    """Person mentions as delivered -> one row per mention (:data:`RESOLUTION_COLUMNS`), and the model.

    The mentions are linked in the order of their ``record_key``, whatever order they arrive in: the sample
    of random pairs that estimates u, the tie-breaks and so the persons and scores follow the frame's order
    (a district's mentions in Spark's partition order and in another joined 5 mentions to other persons and
    changed 238,613 scores)."""
    spec = spec or load_spec("person")
    ordered = mentions.assign(record_key=mentions["record_key"].astype(str)).sort_values("record_key", kind="stable")
    prepared = prepare_mentions(ordered).drop_duplicates("record_key").reset_index(drop=True)
    levels, model = scored_pairs(prepared, spec, model)
    log.info("persons: %d mentions, %d candidate pairs, EM %d iterations", len(prepared), len(levels),
             model.iterations)
    return cluster(prepared, levels, spec, key), model
