"""Linkage specs: YAML in ``conf/matching/*.yaml`` loaded into typed dataclasses.

A spec says how to prepare both sides, which blocking rules generate candidate
pairs, which comparisons (with ordered levels) score them, how the Fellegi–Sunter
parameters are estimated (EM), and when to decide or abstain. Every threshold
lives here, not in code. See ``matching/README.md`` for the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gridlake.errors import GridlakeError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "matching"

LEVEL_KINDS = ("null", "exact", "ratio", "levenshtein", "jaro_winkler", "numeric_diff", "prefix", "pinyin", "else")
FUZZY_KINDS = ("ratio", "levenshtein", "jaro_winkler", "prefix")
AGREE_POLICIES = ("none", "when_both", "strict")
TRANSFORMS = (None, "nfkc", "id_number", "phone", "digits", "lane", "name")


class SpecError(GridlakeError):
    """A linkage spec is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Level:
    """One level of a comparison: ``kind`` with an optional ``threshold``; ``m``/``u`` are starting values."""

    kind: str
    threshold: float | None = None
    m: float | None = None
    u: float | None = None

    @property
    def label(self) -> str:
        """Short label used in explanations: ``exact``, ``jaro_winkler>0.9``, ``else``."""
        if self.threshold is None:
            return self.kind
        op = "<=" if self.kind in ("levenshtein", "numeric_diff") else ">="
        return f"{self.kind}{op}{self.threshold:g}"


@dataclass(frozen=True)
class Comparison:
    """A comparison of one (or several joined) column(s) between both sides."""

    name: str
    columns: tuple[str, ...]
    levels: tuple[Level, ...]
    # none | when_both (both present and differ -> excluded) | strict (+ left present, right null); "differ":
    # not equal and below every level that agrees (a pinyin or fuzzy level between exact and else agrees)
    must_agree: str = "none"
    transform: str | None = None
    estimate_m: bool = True    # False: EM keeps the levels' starting m (decisive names that EM under-weights)

    @property
    def null_index(self) -> int | None:
        for i, lv in enumerate(self.levels):
            if lv.kind == "null":
                return i
        return None


@dataclass(frozen=True)
class EMConfig:
    """Parameter estimation: u from random pairs, m (and lambda) by EM on blocked pairs."""

    enabled: bool = True
    random_pairs: int = 20000
    max_iterations: int = 50
    tolerance: float = 1e-5
    max_pairs: int = 500000     # blocked pairs used for EM (a sample beyond that)
    prior: float | None = None  # lambda; None = left records / blocked pairs (at most one match each)
    estimate_lambda: bool = False  # let EM move lambda too (unstable when blocks are dense)
    min_pairs: int = 2000       # fewer blocked pairs -> keep the starting m (EM is unreliable on tiny inputs)
    seed: int = 20141
    smoothing: float = 0.5      # pseudo-count added to every level


@dataclass(frozen=True)
class Decision:
    """When the best candidate is accepted: weights in bits (log2 m/u summed)."""

    min_weight: float = 6.0
    min_gap: float = 3.0
    verify_min_weight: float = 0.0   # a delivered (scanned) house code is kept when compatible and at least this
    exact_level_names: tuple[str, ...] = ("exact",)
    # for clustering (matching/person_link.py): comparisons whose ``exact`` level links by itself (a same
    # validated ID), and comparisons of which at least one must agree (not null, not ``else``) for any
    # other link (same name alone never links namesakes); empty = no such rule
    decisive: tuple[str, ...] = ()
    corroborate: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkageSpec:
    """A whole linkage."""

    name: str
    left_id: str
    right_id: str
    comparisons: tuple[Comparison, ...]
    blocking: tuple[tuple[str, ...], ...]
    parse_address: dict[str, str] = field(default_factory=dict)   # side -> raw address column to parse
    em: EMConfig = field(default_factory=EMConfig)
    decision: Decision = field(default_factory=Decision)
    description: str = ""
    source: str = ""
    blocking_fallback: tuple[tuple[str, ...], ...] = ()   # only for left records the main rules found nothing for
    max_block_size: int | None = None   # a left record with more candidates from one rule: rule skipped (too vague)
    block_chunk: int = 20000            # left records blocked/compared per chunk (bounds memory)
    # name -> groups of comparisons: when some group is named on both sides, at least one such group must agree
    must_agree_one_of: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = ()

    @property
    def columns(self) -> list[str]:
        """Every base column the comparisons and blocking rules need, in order."""
        out: list[str] = []
        for c in self.comparisons:
            out += [x for x in c.columns if x not in out]
        for rule in self.blocking + self.blocking_fallback:
            out += [base for base, _, _ in map(parse_key, rule) if base not in out]
        return out


_KEY_RE = re.compile(r"^(\w+)(?:\[(-?\d*):(-?\d*)\])?$")


def parse_key(key: str) -> tuple[str, int | None, int | None]:
    """A blocking key: ``column`` or a slice ``column[:2]`` / ``column[-2:]`` -> (column, start, stop)."""
    m = _KEY_RE.match(key)
    if not m:
        raise SpecError(f"bad blocking key {key!r}: use a column name or column[a:b]")
    start = int(m.group(2)) if m.group(2) else None
    stop = int(m.group(3)) if m.group(3) else None
    return m.group(1), start, stop


def _req(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw or raw[key] in (None, "", []):
        raise SpecError(f"{where}: missing required field '{key}'")
    return raw[key]


def _level(raw: Any, where: str) -> Level:
    if raw is None:  # YAML `null`
        raw = "null"
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a level is a mapping like {{kind: exact}} or a kind name")
    unknown = set(raw) - {"kind", "threshold", "m", "u"}
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}")
    kind = _req(raw, "kind", where)
    if kind not in LEVEL_KINDS:
        raise SpecError(f"{where}: unknown level kind {kind!r}; known: {', '.join(LEVEL_KINDS)}")
    thr = raw.get("threshold")
    if kind in FUZZY_KINDS + ("numeric_diff",) and thr is None:
        raise SpecError(f"{where}: level kind {kind!r} needs a threshold")
    try:
        thr = None if thr is None else float(thr)
        m = None if raw.get("m") is None else float(raw["m"])
        u = None if raw.get("u") is None else float(raw["u"])
    except (TypeError, ValueError):
        raise SpecError(f"{where}: threshold, m and u must be numbers") from None
    for name, v in (("m", m), ("u", u)):
        if v is not None and not 0 < v < 1:
            raise SpecError(f"{where}: {name} must be in (0, 1)")
    if kind in ("ratio", "jaro_winkler", "pinyin") and thr is not None and not 0 <= thr <= 1:
        raise SpecError(f"{where}: threshold of {kind} is a similarity in [0, 1]")
    return Level(kind, thr, m, u)


def _comparison(raw: Any, where: str) -> Comparison:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a comparison is a mapping")
    unknown = set(raw) - {"name", "column", "columns", "levels", "must_agree", "transform", "estimate_m"}
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}")
    name = _req(raw, "name", where)
    cols = raw.get("columns") or raw.get("column") or name
    cols = (cols,) if isinstance(cols, str) else tuple(cols)
    levels = tuple(_level(lv, f"{where}.levels[{i}]") for i, lv in enumerate(_req(raw, "levels", where)))
    kinds = [lv.kind for lv in levels]
    if kinds[-1] != "else":
        raise SpecError(f"{where}: the last level must be 'else'")
    if kinds.count("null") > 1 or ("null" in kinds and kinds[0] != "null"):
        raise SpecError(f"{where}: 'null' may appear once, as the first level")
    if len(levels) < 2:
        raise SpecError(f"{where}: a comparison needs at least two levels")
    agree = raw.get("must_agree", "none")
    agree = {True: "when_both", False: "none"}.get(agree, agree)
    if agree not in AGREE_POLICIES:
        raise SpecError(f"{where}: must_agree is one of {', '.join(AGREE_POLICIES)}")
    transform = raw.get("transform")
    if transform not in TRANSFORMS:
        raise SpecError(f"{where}: transform is one of {', '.join(str(t) for t in TRANSFORMS[1:])}")
    estimate_m = raw.get("estimate_m", True)
    if not isinstance(estimate_m, bool):
        raise SpecError(f"{where}: estimate_m is true or false")
    if not estimate_m and any(lv.m is None for lv in levels if lv.kind != "null"):
        raise SpecError(f"{where}: estimate_m: false needs an m on every level except null")
    return Comparison(name, cols, levels, agree, transform, estimate_m)


def _build(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping")
    known = set(cls.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
    try:
        kwargs = {}
        for k, v in raw.items():
            default = cls.__dataclass_fields__[k].default
            if k == "prior":
                kwargs[k] = None if v is None else float(v)
            elif isinstance(default, bool):
                kwargs[k] = bool(v)
            elif isinstance(default, int) and not isinstance(default, bool):
                kwargs[k] = int(v)
            elif isinstance(default, float):
                kwargs[k] = float(v)
            elif isinstance(default, tuple):
                kwargs[k] = tuple(v)
            else:
                kwargs[k] = v
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: {exc}") from None


def _rules(raw: Any, source: str, field_name: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list):
        raise SpecError(f"{source}: {field_name} is a list of rules (lists of column names)")
    out = []
    for i, rule in enumerate(raw):
        rule = (rule,) if isinstance(rule, str) else tuple(rule or ())
        if not rule or not all(isinstance(c, str) for c in rule):
            raise SpecError(f"{source}: {field_name}[{i}] must be a non-empty list of column names")
        for key in rule:
            try:
                parse_key(key)
            except SpecError as exc:
                raise SpecError(f"{source}: {field_name}[{i}]: {exc}") from None
        out.append(rule)
    return tuple(out)


def spec_from_dict(raw: dict[str, Any], source: str = "<dict>") -> LinkageSpec:
    """Validate and build a :class:`LinkageSpec` from parsed YAML."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a spec is a mapping")
    known = {"name", "description", "left_id", "right_id", "comparisons", "blocking", "blocking_fallback",
             "max_block_size", "block_chunk", "parse_address", "em", "decision", "must_agree_one_of"}
    unknown = set(raw) - known
    if unknown:
        raise SpecError(f"{source}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
    comps = tuple(_comparison(c, f"{source}: comparisons[{i}]") for i, c in enumerate(_req(raw, "comparisons", source)))
    names = [c.name for c in comps]
    if len(set(names)) != len(names):
        raise SpecError(f"{source}: comparison names must be unique")
    blocking = _rules(_req(raw, "blocking", source), source, "blocking")
    fallback = _rules(raw.get("blocking_fallback") or [], source, "blocking_fallback")
    cap, chunk = raw.get("max_block_size"), raw.get("block_chunk", 20000)
    for key, v in (("max_block_size", cap), ("block_chunk", chunk)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise SpecError(f"{source}: {key} must be a positive integer")
    parse_address = raw.get("parse_address") or {}
    if not isinstance(parse_address, dict) or set(parse_address) - {"left", "right"}:
        raise SpecError(f"{source}: parse_address maps 'left'/'right' to a raw address column")
    one_of = _one_of(raw.get("must_agree_one_of") or {}, source, names)
    decision = _build(Decision, raw.get("decision"), f"{source}: decision")
    for key in ("decisive", "corroborate"):
        unknown = [c for c in getattr(decision, key) if c not in names]
        if unknown:
            raise SpecError(f"{source}: decision.{key}: {unknown} is not a comparison of this spec")
    return LinkageSpec(
        name=str(_req(raw, "name", source)),
        left_id=str(raw.get("left_id", "id")),
        right_id=str(raw.get("right_id", "id")),
        comparisons=comps,
        blocking=blocking,
        blocking_fallback=fallback,
        max_block_size=cap,
        block_chunk=int(chunk),
        parse_address=dict(parse_address),
        em=_build(EMConfig, raw.get("em"), f"{source}: em"),
        decision=decision,
        description=str(raw.get("description", "")),
        source=source,
        must_agree_one_of=one_of,
    )


def _one_of(raw: Any, source: str, names: list[str]) -> tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]:
    where = f"{source}: must_agree_one_of"
    if not isinstance(raw, dict):
        raise SpecError(f"{where} maps a rule name to a list of groups (lists of comparison names)")
    out = []
    for rule, groups in raw.items():
        if rule in names:
            raise SpecError(f"{where}: rule name {rule!r} is also a comparison name")
        if not isinstance(groups, list) or not groups:
            raise SpecError(f"{where}.{rule}: a non-empty list of groups (lists of comparison names)")
        built = []
        for group in groups:
            group = (group,) if isinstance(group, str) else tuple(group or ())
            unknown = [c for c in group if c not in names]
            if not group or unknown:
                raise SpecError(f"{where}.{rule}: {unknown or 'an empty group'} is not a comparison of this spec")
            built.append(group)
        out.append((str(rule), tuple(built)))
    return tuple(out)


def load_spec(name_or_path: str | Path) -> LinkageSpec:
    """Load a spec by path, or by name from ``conf/matching/<name>.yaml``."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONF_DIR / f"{name_or_path}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read linkage spec {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    return spec_from_dict(raw, str(path))


def spec_fingerprint(spec: LinkageSpec) -> str:
    """SHA-256 of everything in ``spec`` that decides a linkage (stable across processes).

    A saved model or an incremental linkage is only reused while the fingerprint is unchanged.
    """
    import hashlib

    return hashlib.sha256(repr(spec).encode("utf-8")).hexdigest()
