"""Person linkage over only what a night touched, equal to linking every mention again with the same model.

:func:`link_persons` links prepared-to-be mentions either in full (every candidate pair scored, the link
graph clustered, as :func:`matching.person_link.resolve_persons`) or, given the previous night's
:class:`Previous` and its model, *incrementally*: only the components of the link graph a changed mention
can reach are blocked, scored and clustered again; every other mention keeps its links. The sole-bearer pass
and the persons' keys then run over every mention, as in a full linkage, so the result is the full linkage's
with the same model, record for record (``tests/unit/test_person_incremental.py`` proves it over nights of
additions, removals, changed fields, blocks crossing the cap and sounds gaining a bearer).

Why the unit is a component of the link graph (every link ``_links`` keeps, applied or skipped): links are
applied strongest first under the never-link rule, so which of two conflicting links is skipped depends on
every link of the mentions involved, but never on a link outside their component. A component must be
linked again when a mention in it changed, went, or shares a blocking key with a mention that did (its
candidate pairs change); a block whose size crossed ``max_block_size`` gains or loses all its pairs, and its
members are among those sharing the key. A pair between a re-linked and a kept mention that shares no such
key existed last night with the same levels and weight; had it linked, both would be in one component.

The state (:func:`state_columns`, one row per mention) holds no name, phone or ID: a keyed hash (SipHash
with a key derived from the deployment's pseudonym key) of the prepared values and of each blocking rule's
key, and the smallest record key of the mention's component and of its person after the scored links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gridlake.forked import Forked
from matching.blocking import key_values
from matching.person_link import Links, apply_links, finish_persons, prepare_mentions, scored_pairs
from matching.scoring import FSModel
from matching.spec import LinkageSpec

__all__ = ["state_columns", "Previous", "Linkage", "link_persons", "state_hash_key", "links_before_bearer",
           "block_columns"]

log = logging.getLogger(__name__)

#: compared and blocked on: a mention whose prepared values hash the same is unchanged for the linkage
PREPARED = ["id_valid", "id_text", "birth", "sex", "name", "name_sound", "phone", "house_code"]
#: a night changing more than this share of the mentions (new, gone or changed) is linked in full
FULL_SHARE = 0.2
NULL_HASH = 0   # a blocking key with a missing part (it never blocks); real hashes are odd


def _member(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is one of ``among`` (int64 hashes), by a hash table: numpy's ``isin`` sorts both
    arrays for values spread over the whole int64 range (0.4 s for a district's 1.3 M mentions, against 0.013 s)."""
    return pd.Series(values, copy=False).isin(among).to_numpy(dtype=bool)


def block_columns(spec: LinkageSpec) -> list[str]:
    """The state's column per blocking rule: ``block_0`` ... in the spec's order."""
    return [f"block_{i}" for i in range(len(spec.blocking))]


def state_columns(spec: LinkageSpec) -> list[str]:
    return ["record_key", "input_hash", *block_columns(spec), "component", "cluster"]



def state_hash_key(secret: bytes) -> str:
    """The 16-character SipHash key of the state's hashes, derived from the deployment's pseudonym key (a
    keyed hash: a phone's hash cannot be found by hashing every phone number)."""
    digest = hmac.new(secret, b"gridlake person-linkage state", hashlib.sha256).digest()
    return base64.b64encode(digest[:12]).decode("ascii")


def _row_hashes(frame: pd.DataFrame, hash_key: str) -> np.ndarray:
    """Each row's keyed hash (odd), every kind of missing value (None, NaN, NA) hashed alike. Hashed value by
    value (``categorize=False``): a mention's prepared values are nearly all distinct, and categorising them
    first took 2.5 times as long (7.9-10.8 s against 3.2-3.5 s for a district's 1.3 M mentions)."""
    values = frame.astype(object)
    values = values.where(values.notna(), None)
    h = pd.util.hash_pandas_object(values, index=False, hash_key=hash_key, categorize=False).to_numpy(dtype=np.uint64)
    return (h | np.uint64(1)).view(np.int64)


def input_hashes(prepared: pd.DataFrame, hash_key: str) -> np.ndarray:
    return _row_hashes(prepared[PREPARED], hash_key)


def block_hashes(prepared: pd.DataFrame, spec: LinkageSpec, hash_key: str) -> dict[str, np.ndarray]:
    """Per blocking rule, each mention's key hashed (:data:`NULL_HASH` where a part is missing)."""
    values = {k: key_values(prepared, k) for rule in spec.blocking for k in rule}
    out = {}
    for name, rule in zip(block_columns(spec), spec.blocking, strict=True):
        parts = pd.DataFrame({str(i): values[k] for i, k in enumerate(rule)}, dtype=object)
        h = _row_hashes(parts, hash_key) if len(parts) else np.empty(0, dtype=np.int64)
        out[name] = np.where(parts.isna().any(axis=1).to_numpy(), NULL_HASH, h).astype(np.int64)
    return out


@dataclass(frozen=True)
class Previous:
    """The last linkage: its state (:func:`state_columns`) and, per mention, the link explained on it before
    the sole-bearer pass (``record_key``, ``method`` id|score|single, ``weight``, ``explanation``) and,
    optionally, its person's key and size then (``person_key``, ``size``: reused for unchanged persons)."""

    state: pd.DataFrame
    links: pd.DataFrame


@dataclass
class Linkage:
    persons: pd.DataFrame          # person_link.RESOLUTION_COLUMNS, one row per mention in record_key order
    model: FSModel
    state: pd.DataFrame            # state_columns(spec)
    stats: dict = field(default_factory=dict)


def links_before_bearer(persons: pd.DataFrame) -> pd.DataFrame:
    """What the scored links explained on each mention, read back from a linkage's rows (``record_key``,
    ``method``, ``weight``, ``explanation``; a sole-bearer row was ``single`` before that pass), with its person's
    key and size (``person_key``, ``size``)."""
    linked = persons["method"].isin(["id", "score"]).to_numpy()
    size = persons.groupby("person_key")["record_key"].transform("size")
    return pd.DataFrame({"record_key": persons["record_key"].astype(str).to_numpy(dtype=object),
                         "method": np.where(linked, persons["method"].to_numpy(dtype=object), "single"),
                         "weight": np.where(linked, persons["weight"].to_numpy(dtype=float), np.nan),
                         "explanation": np.where(linked, persons["explanation"].to_numpy(dtype=object), "single"),
                         "person_key": persons["person_key"].to_numpy(dtype=object),
                         "size": size.to_numpy(dtype=np.int64)})


def _state(prepared: pd.DataFrame, spec: LinkageSpec, inputs: np.ndarray, blocks: dict[str, np.ndarray],
           components: np.ndarray, clusters: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"record_key": prepared["record_key"].to_numpy(dtype=object), "input_hash": inputs,
                         **blocks, "component": components, "cluster": clusters}, columns=state_columns(spec))


def _state_hashes(prepared: pd.DataFrame, spec: LinkageSpec, hash_key: str, inputs: np.ndarray | None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return (input_hashes(prepared, hash_key) if inputs is None else inputs), block_hashes(prepared, spec, hash_key)


def _full(prepared: pd.DataFrame, key: bytes, spec: LinkageSpec, model: FSModel | None, hash_key: str,
          inputs: np.ndarray | None, why: str, beside: bool = False) -> Linkage:
    # the state's hashes (11 s of a district's 1.3 M mentions) need only the prepared mentions: with ``beside``,
    # computed in a forked child while this process links (gridlake.forked; the same values either way)
    hashes = Forked(lambda: _state_hashes(prepared, spec, hash_key, inputs), "person-state-hashes", enabled=beside)
    try:
        levels, model = scored_pairs(prepared, spec, model)
        linked = apply_links(prepared, levels, spec)
        persons = finish_persons(prepared, linked, spec, key)
    except BaseException:
        hashes.cancel()
        raise
    keys = prepared["record_key"].to_numpy(dtype=object)
    inputs, blocks = hashes.result()
    state = _state(prepared, spec, inputs, blocks, keys[linked.components], keys[linked.roots])
    stats = {"mode": "full", "reason": why, "mentions": len(prepared), "relinked": len(prepared),
             "candidate_pairs": len(levels), "state_hashed_beside": hashes.delivered}
    return Linkage(persons, model, state, stats)


def link_persons(mentions: pd.DataFrame, key: bytes, spec: LinkageSpec, model: FSModel | None,
                 previous: Previous | None, hash_key: str, full_share: float = FULL_SHARE,
                 beside: bool = False) -> Linkage:
    """Mentions as delivered (``record_key``, ``name``, ``phone``, ``id_number``, ``house_code``) -> the
    persons, the model (EM-trained when ``model`` is None) and tonight's state. Incremental when ``previous``
    and ``model`` are given and the night changed at most ``full_share`` of the mentions; else in full.
    ``beside``: a full linkage hashes its state in a forked child meanwhile (:class:`gridlake.forked.Forked`)."""
    ordered = mentions.assign(record_key=mentions["record_key"].astype(str)).sort_values("record_key", kind="stable")
    prepared = prepare_mentions(ordered).drop_duplicates("record_key").reset_index(drop=True)
    why = ("no saved model" if model is None else "no previous linkage" if previous is None
           else "the spec has fallback blocking rules" if spec.blocking_fallback else None)
    if why:
        return _full(prepared, key, spec, model, hash_key, None, why, beside)
    inputs = input_hashes(prepared, hash_key)
    state = previous.state
    if list(state.columns) != state_columns(spec):
        return _full(prepared, key, spec, model, hash_key, inputs, "the saved state has other columns", beside)
    keys = prepared["record_key"].to_numpy(dtype=object)
    n = len(keys)
    at = pd.Index(state["record_key"].to_numpy(dtype=object)).get_indexer(keys)      # -1: new tonight
    known = at >= 0
    same = known & (state["input_hash"].to_numpy(dtype=np.int64)[np.where(known, at, 0)] == inputs)
    changed = ~same
    gone = np.ones(len(state), dtype=bool)
    gone[at[known]] = False
    touched_rows = gone.copy()
    touched_rows[at[changed & known]] = True            # the state rows of changed and gone mentions
    n_changed = int(changed.sum()) + int(gone.sum())
    if n_changed > full_share * max(n, 1):
        return _full(prepared, key, spec, model, hash_key, inputs, f"{n_changed} of {n} mentions changed", beside)
    # tonight's blocking keys: the saved ones for unchanged mentions (the same prepared values), hashed for the rest
    fresh = block_hashes(prepared.loc[changed], spec, hash_key)
    blocks = {}
    for name, old in ((c, state[c].to_numpy(dtype=np.int64)) for c in block_columns(spec)):
        now = old[np.where(known, at, 0)].copy()
        now[changed] = fresh[name]
        blocks[name] = now
    cap = spec.max_block_size if spec.max_block_size is not None else np.inf
    dirty = changed.copy()
    for name, now in blocks.items():
        old = state[name].to_numpy(dtype=np.int64)
        touched = np.union1d(now[changed], old[touched_rows])
        touched = touched[touched != NULL_HASH]
        if not len(touched):
            continue
        size_now = pd.Series(now[_member(now, touched)]).value_counts().reindex(touched, fill_value=0)
        size_old = pd.Series(old[_member(old, touched)]).value_counts().reindex(touched, fill_value=0)
        crossed = touched[(size_now.to_numpy() <= cap) | (size_old.to_numpy() <= cap)]
        dirty |= _member(now, crossed)
    components = state["component"].to_numpy(dtype=object)
    dirty_components = set(components[touched_rows].tolist()) | set(components[at[dirty & known]].tolist())
    mine = np.where(known, components[np.where(known, at, 0)], None)
    relink = dirty | (known & pd.Series(mine).isin(list(dirty_components)).to_numpy())
    linked, n_pairs = _relink(prepared, spec, model, relink, blocks, cap)
    # every mention's links: the kept ones from the previous linkage, the others from tonight's
    clusters = state["cluster"].to_numpy(dtype=object)
    comp = np.where(known, components[np.where(known, at, 0)], None).astype(object)
    clus = np.where(known, clusters[np.where(known, at, 0)], None).astype(object)
    before = previous.links.set_index("record_key").reindex(keys)
    method = before["method"].to_numpy(dtype=object)
    weight = before["weight"].to_numpy(dtype=float)
    expl = before["explanation"].to_numpy(dtype=object)
    sub = np.flatnonzero(relink)
    sub_keys = keys[sub]
    comp[sub], clus[sub] = sub_keys[linked.components], sub_keys[linked.roots]
    method[sub], weight[sub], expl[sub] = linked.method, linked.weight, linked.explanation
    index = pd.Index(keys)
    roots, comp_roots = index.get_indexer(clus), index.get_indexer(comp)
    kept = ~relink
    if (roots < 0).any() or (comp_roots < 0).any() or pd.isna(method[kept]).any():
        return _full(prepared, key, spec, model, hash_key, inputs, "the saved links do not cover the kept mentions",
                     beside)
    known = None
    if {"person_key", "size"} <= set(before.columns):    # last night's person keys, for unchanged mentions
        known = (np.where(same, before["person_key"].to_numpy(dtype=object), None),
                 before["size"].fillna(0).to_numpy(dtype=np.int64))
    persons = finish_persons(prepared, Links(roots, comp_roots, method, weight, expl), spec, key, known)
    stats = {"mode": "incremental", "mentions": n, "changed": int(changed.sum()), "gone": int(gone.sum()),
             "relinked": int(relink.sum()), "candidate_pairs": n_pairs}
    log.info("persons: incremental linkage, %d of %d mentions linked again (%d changed, %d gone)",
             stats["relinked"], n, stats["changed"], stats["gone"])
    return Linkage(persons, model, _state(prepared, spec, inputs, blocks, comp, clus), stats)


def _relink(prepared: pd.DataFrame, spec: LinkageSpec, model: FSModel, relink: np.ndarray,
            blocks: dict[str, np.ndarray], cap: float) -> tuple[Links, int]:
    """The scored links among the ``relink`` mentions, with every other mention's blocks as large as they are.

    The blocks holding a mention to re-link are taken whole where they are within the cap (so the engine sees
    their true size) and the pairs kept are those between two re-linked mentions sharing such a block: a block
    over the cap yields no pair, however few of its members are taken."""
    mentions = prepared.loc[relink].reset_index(drop=True)
    if not len(mentions):
        empty = np.empty(0, dtype=np.int64)
        return Links(empty, empty, np.empty(0, dtype=object), np.empty(0), np.empty(0, dtype=object)), 0
    take = relink.copy()
    sizes = {}
    for name, now in blocks.items():
        mine = now[relink]
        mine = np.unique(mine[mine != NULL_HASH])
        size = pd.Series(now[_member(now, mine)]).value_counts()
        sizes[name] = size
        take |= _member(now, size.index[size.to_numpy() <= cap].to_numpy())
    sub = prepared.loc[take].reset_index(drop=True)
    levels, _ = scored_pairs(sub, spec, model)
    keys = prepared["record_key"].to_numpy(dtype=object)
    index = pd.Index(keys)
    pl = index.get_indexer(levels["_id_l"].to_numpy(dtype=object))
    pr = index.get_indexer(levels["_id_r"].to_numpy(dtype=object))
    ok = np.zeros(len(levels), dtype=bool)
    for name, now in blocks.items():
        kl, kr = now[pl], now[pr]
        within = sizes[name].reindex(kl, fill_value=np.inf).to_numpy() <= cap
        ok |= (kl == kr) & (kl != NULL_HASH) & within
    keep = ok & relink[pl] & relink[pr]
    return apply_links(mentions, levels.loc[keep].reset_index(drop=True), spec), int(keep.sum())
