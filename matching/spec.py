"""Linkage specs: YAML in ``conf/matching/*.yaml`` loaded into frozen pydantic models.

A spec says how to prepare both sides, which blocking rules generate candidate
pairs, which comparisons (with ordered levels) score them, how the Fellegi–Sunter
parameters are estimated (EM), and when to decide or abstain. Every threshold
lives here, not in code. See ``matching/README.md`` for the format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, StrictBool, StrictInt, ValidationError, field_validator, model_validator

from gridlake.config_models import ConfigModel, config_error
from gridlake.errors import GridlakeError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "matching"

LEVEL_KINDS = ("null", "exact", "ratio", "levenshtein", "jaro_winkler", "numeric_diff", "prefix", "pinyin", "else")
FUZZY_KINDS = ("ratio", "levenshtein", "jaro_winkler", "prefix")
AGREE_POLICIES = ("none", "when_both", "strict")
TRANSFORMS = (None, "nfkc", "id_number", "phone", "digits", "lane", "name")
LevelKind = Literal["null", "exact", "ratio", "levenshtein", "jaro_winkler", "numeric_diff", "prefix", "pinyin", "else"]
Transform = Literal["nfkc", "id_number", "phone", "digits", "lane", "name"]
Rule = tuple[str, ...]


class SpecError(GridlakeError):
    """A linkage spec is invalid; the message names the file and the field."""


class Level(ConfigModel):
    """One level of a comparison: ``kind`` with an optional ``threshold``; ``m``/``u`` are starting values.

    Written as a mapping (``{kind: ratio, threshold: 0.9}``), a kind name (``exact``) or YAML ``null``.
    """

    kind: LevelKind
    threshold: float | None = None
    m: float | None = Field(None, gt=0, lt=1)
    u: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        if raw is None:
            return {"kind": "null"}
        return {"kind": raw} if isinstance(raw, str) else raw

    @model_validator(mode="after")
    def _threshold_fits_kind(self) -> Level:
        if self.kind in (*FUZZY_KINDS, "numeric_diff") and self.threshold is None:
            raise ValueError(f"threshold: level kind {self.kind!r} needs a threshold")
        if self.kind in ("ratio", "jaro_winkler", "pinyin") and self.threshold is not None \
                and not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold: the threshold of {self.kind} is a similarity in [0, 1]")
        return self

    @property
    def label(self) -> str:
        """Short label used in explanations: ``exact``, ``jaro_winkler>0.9``, ``else``."""
        if self.threshold is None:
            return self.kind
        op = "<=" if self.kind in ("levenshtein", "numeric_diff") else ">="
        return f"{self.kind}{op}{self.threshold:g}"


class Comparison(ConfigModel):
    """A comparison of one (or several joined) column(s) between both sides (``column``/``columns``, default: its name)."""

    name: str = Field(min_length=1)
    columns: tuple[str, ...]
    levels: tuple[Level, ...]
    # none | when_both (both present and differ -> excluded) | strict (+ left present, right null); "differ":
    # not equal and below every level that agrees (a pinyin or fuzzy level between exact and else agrees)
    must_agree: Literal["none", "when_both", "strict"] = "none"
    transform: Transform | None = None
    estimate_m: StrictBool = True    # False: EM keeps the levels' starting m (decisive names that EM under-weights)

    @model_validator(mode="before")
    @classmethod
    def _columns_and_policy(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        out = {k: v for k, v in raw.items() if k != "column"}
        cols = raw.get("columns") or raw.get("column") or raw.get("name")
        out["columns"] = (cols,) if isinstance(cols, str) else cols
        agree = raw.get("must_agree", "none")
        out["must_agree"] = {True: "when_both", False: "none"}.get(agree, agree) if isinstance(agree, bool) else agree
        return out

    @model_validator(mode="after")
    def _level_order(self) -> Comparison:
        kinds = [lv.kind for lv in self.levels]
        if len(kinds) < 2:
            raise ValueError("levels: a comparison needs at least two levels")
        if kinds[-1] != "else":
            raise ValueError("levels: the last level must be 'else'")
        if kinds.count("null") > 1 or ("null" in kinds and kinds[0] != "null"):
            raise ValueError("levels: 'null' may appear once, as the first level")
        if not self.estimate_m and any(lv.m is None for lv in self.levels if lv.kind != "null"):
            raise ValueError("estimate_m: false needs an m on every level except null")
        return self

    @property
    def null_index(self) -> int | None:
        for i, lv in enumerate(self.levels):
            if lv.kind == "null":
                return i
        return None


class EMConfig(ConfigModel):
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


class Decision(ConfigModel):
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
    # for clustering: join a person without a valid ID to the only identified bearer of its name's sound when
    # nothing contradicts (matching/person_bearer.py)
    sole_bearer: bool = False


def _blocking_rules(value: Any) -> Any:
    """``[[a, b], c]`` -> ``((a, b), (c,))``; every key a column or a slice ``column[a:b]``."""
    if not isinstance(value, list):
        return value
    out = []
    for i, rule in enumerate(value):
        rule = (rule,) if isinstance(rule, str) else tuple(rule or ())
        if not rule or not all(isinstance(c, str) for c in rule):
            raise ValueError(f"[{i}] must be a non-empty list of column names")
        for key in rule:
            if not _KEY_RE.match(key):
                raise ValueError(f"[{i}]: bad blocking key {key!r}: use a column name or column[a:b]")
        out.append(rule)
    return tuple(out)


class LinkageSpec(ConfigModel):
    """A whole linkage."""

    name: str = Field(min_length=1)
    left_id: str = "id"
    right_id: str = "id"
    comparisons: tuple[Comparison, ...]
    blocking: tuple[Rule, ...] = Field(min_length=1)
    parse_address: dict[Literal["left", "right"], str] = Field(default_factory=dict)  # side -> raw address column
    em: EMConfig = Field(default_factory=EMConfig)
    decision: Decision = Field(default_factory=Decision)
    description: str = ""
    source: str = ""
    blocking_fallback: tuple[Rule, ...] = ()   # only for left records the main rules found nothing for
    max_block_size: StrictInt | None = Field(None, ge=1)  # a left record with more candidates from one rule: skipped
    block_chunk: StrictInt = Field(20000, ge=1)           # left records blocked/compared per chunk (bounds memory)
    # name -> groups of comparisons: when some group is named on both sides, at least one such group must agree
    must_agree_one_of: tuple[tuple[str, tuple[Rule, ...]], ...] = ()

    @field_validator("em", "decision", "parse_address", "blocking_fallback", "description", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: Any) -> Any:
        return cls.model_fields[info.field_name].get_default(call_default_factory=True) if value is None else value

    @field_validator("blocking", "blocking_fallback", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        return _blocking_rules(value)

    @field_validator("must_agree_one_of", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        """``{rule: [[a, b], c]}`` -> ``((rule, ((a, b), (c,))),)``."""
        if value is None:
            return ()
        if not isinstance(value, dict):
            return value
        out = []
        for rule, groups in value.items():
            if not isinstance(groups, list) or not groups:
                raise ValueError(f"{rule}: a non-empty list of groups (lists of comparison names)")
            out.append((str(rule), tuple((g,) if isinstance(g, str) else tuple(g or ()) for g in groups)))
        return tuple(out)

    @model_validator(mode="after")
    def _names(self) -> LinkageSpec:
        names = [c.name for c in self.comparisons]
        if not names:
            raise ValueError("comparisons: at least one comparison is needed")
        if len(set(names)) != len(names):
            raise ValueError("comparisons: comparison names must be unique")
        for rule, groups in self.must_agree_one_of:
            if rule in names:
                raise ValueError(f"must_agree_one_of.{rule}: the rule name is also a comparison name")
            for group in groups:
                unknown = [c for c in group if c not in names]
                if not group or unknown:
                    raise ValueError(f"must_agree_one_of.{rule}: {unknown or 'an empty group'} "
                                     "is not a comparison of this spec")
        for key in ("decisive", "corroborate"):
            unknown = [c for c in getattr(self.decision, key) if c not in names]
            if unknown:
                raise ValueError(f"decision.{key}: {unknown} is not a comparison of this spec")
        return self

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


def spec_from_dict(raw: dict[str, Any], source: str = "<dict>") -> LinkageSpec:
    """Validate and build a :class:`LinkageSpec` from parsed YAML (``source`` names it in errors)."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a spec is a mapping")
    if "source" in raw:  # set by the loader, not written in the file
        raise SpecError(f"{source}: source: unknown key")
    try:
        return LinkageSpec.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise config_error(exc, source, cls=SpecError) from None


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

    A saved model or an incremental linkage is only reused while the fingerprint is unchanged. Where the
    spec was read from (``source``) and its ``description`` decide nothing and are left out: with the file's
    path in it, a lake run from another checkout or install (a new release's folder, the Airflow image
    against the command line) lost its saved model, and the night re-linked every record and trained again.
    """
    import hashlib

    decided = spec.model_dump(mode="json", exclude={"source", "description"})
    return hashlib.sha256(json.dumps(decided, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def code_fingerprint(spec: LinkageSpec, modules: tuple[str, ...]) -> str:
    """:func:`spec_fingerprint` combined with the code of ``modules`` (file names in ``matching/``): a saved
    model or state is reused only while neither the spec nor the code deciding it changed."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256(spec_fingerprint(spec).encode())
    for name in modules:
        f = Path(__file__).resolve().parent / name
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()
