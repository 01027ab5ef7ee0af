"""Typed loading of ``conf/rules.yaml``: the collision rules (DESIGN.md section 4).

``load_rules()`` returns a frozen :class:`RulesConfig`; an unknown key or a bad
value raises :class:`gridlake.config.ConfigError` naming it (``rules.R4.tenant_tolerance``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from gridlake.config import CONF_DIR, ConfigError

RULE_IDS = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")
SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class RuleDefaults:
    """Values every rule inherits unless it sets its own."""

    window_days: int = 90
    due_days: int = 7
    escalate_after_days: int = 14
    capacity_per_officer: int = 15
    recency_half_life_days: int = 30


@dataclass(frozen=True)
class RuleConfig:
    """One collision rule; unset tunables fall back to :class:`RuleDefaults`."""

    rule_id: str
    code: str
    title: str
    severity: str
    description: str = ""
    safety_severity: str | None = None
    window_days: int = 90
    grace_days: int = 0
    area_per_person_m2: float = 0.0
    tenant_tolerance: int = 0
    due_days: int = 7
    escalate_after_days: int = 14
    candidates_top_k: int = 3            # R6: best candidate houses shown per address case
    max_per_officer: int | None = None   # at most this many of the rule's cases on one officer's list a night


@dataclass(frozen=True)
class HouseCodeFormat:
    """The housing registry's house-code format: a delivered code is shown only when it matches.

    ``pattern`` is a full-match regular expression (Java/Spark syntax); ``reject_id_numbers``: a value
    with the shape of a resident ID number (a birth date at positions 7-14) is never shown, even if it matches.
    """

    pattern: str = r"^4403[0-9]{14}$"
    reject_id_numbers: bool = True


@dataclass(frozen=True)
class RulesConfig:
    """All rules plus the shared defaults and severity weights."""

    defaults: RuleDefaults
    severity_weights: dict[str, float]
    rules: dict[str, RuleConfig] = field(default_factory=dict)
    house_code_format: HouseCodeFormat = field(default_factory=HouseCodeFormat)

    def __getitem__(self, rule_id: str) -> RuleConfig:
        return self.rules[rule_id]

    def weight(self, severity: str) -> float:
        """The weight of a severity level."""
        return self.severity_weights[severity]

    @property
    def max_window_days(self) -> int:
        return max([self.defaults.window_days, *(r.window_days for r in self.rules.values())])


_RULE_KEYS = {f.name for f in fields(RuleConfig)} - {"rule_id"}
_INT_KEYS = {"window_days", "grace_days", "tenant_tolerance", "due_days", "escalate_after_days", "candidates_top_k",
             "max_per_officer"}
_MIN_ONE = ("window_days", "due_days", "escalate_after_days", "candidates_top_k", "max_per_officer")


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}: must be at least {minimum}, got {value}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value.strip()


def _parse_defaults(raw: Any) -> RuleDefaults:
    if raw is None:
        return RuleDefaults()
    if not isinstance(raw, dict):
        raise ConfigError(f"rules.defaults: expected a mapping, got {type(raw).__name__}")
    allowed = {f.name for f in fields(RuleDefaults)}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"rules.defaults: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    values = {k: _int(v, f"rules.defaults.{k}", 1) for k, v in raw.items()}
    return RuleDefaults(**values)


def _parse_weights(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ConfigError("rules.severity_weights: expected a mapping of severity -> weight")
    unknown = sorted(set(raw) - set(SEVERITIES))
    if unknown:
        raise ConfigError(f"rules.severity_weights: unknown severity {', '.join(unknown)}; allowed: {', '.join(SEVERITIES)}")
    out: dict[str, float] = {}
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ConfigError(f"rules.severity_weights.{k}: expected a positive number, got {v!r}")
        out[k] = float(v)
    missing = sorted(set(SEVERITIES) - set(out))
    if missing:
        raise ConfigError(f"rules.severity_weights: missing {', '.join(missing)}")
    return out


def _parse_rule(rule_id: str, raw: Any, defaults: RuleDefaults, weights: dict[str, float]) -> RuleConfig:
    where = f"rules.{rule_id}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_RULE_KEYS))}")
    for key in ("code", "title", "severity"):
        if key not in raw:
            raise ConfigError(f"{where}.{key}: missing")
    values: dict[str, Any] = {
        "rule_id": rule_id,
        "window_days": defaults.window_days,
        "due_days": defaults.due_days,
        "escalate_after_days": defaults.escalate_after_days,
    }
    for key, value in raw.items():
        k = f"{where}.{key}"
        if key in ("code", "title"):
            values[key] = _str(value, k)
        elif key == "description":
            values[key] = str(value or "").strip()
        elif key in ("severity", "safety_severity"):
            sev = _str(value, k)
            if sev not in weights:
                raise ConfigError(f"{k}: unknown severity {sev!r}; allowed: {', '.join(SEVERITIES)}")
            values[key] = sev
        elif key == "area_per_person_m2":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{k}: expected a positive number, got {value!r}")
            values[key] = float(value)
        elif key in _INT_KEYS:
            values[key] = _int(value, k, 1 if key in _MIN_ONE else 0)
    if rule_id == "R4" and "area_per_person_m2" not in values:
        raise ConfigError(f"{where}.area_per_person_m2: missing")
    return RuleConfig(**values)


def parse_rules(doc: Any) -> RulesConfig:
    """Validate a parsed rules document (the content of ``conf/rules.yaml``)."""
    if not isinstance(doc, dict):
        raise ConfigError("rules: expected a mapping at the top level")
    # deadlines and verification_outcomes are the officers' loop's (gridlake.loop_config validates them)
    allowed_top = {"defaults", "severity_weights", "rules", "deadlines", "verification_outcomes", "house_code_format"}
    unknown = sorted(set(doc) - allowed_top)
    if unknown:
        raise ConfigError(f"rules: unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed_top))}")
    defaults = _parse_defaults(doc.get("defaults"))
    weights = _parse_weights(doc.get("severity_weights"))
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, dict):
        raise ConfigError("rules.rules: expected a mapping R1..R7")
    unknown = sorted(set(raw_rules) - set(RULE_IDS))
    if unknown:
        raise ConfigError(f"rules.rules: unknown rule(s) {', '.join(map(str, unknown))}; allowed: {', '.join(RULE_IDS)}")
    missing = [r for r in RULE_IDS if r not in raw_rules]
    if missing:
        raise ConfigError(f"rules.rules: missing rule(s) {', '.join(missing)}")
    rules = {rid: _parse_rule(rid, raw_rules[rid], defaults, weights) for rid in RULE_IDS}
    codes = [r.code for r in rules.values()]
    if len(set(codes)) != len(codes):
        raise ConfigError("rules.rules: rule codes must be unique")
    return RulesConfig(defaults=defaults, severity_weights=weights, rules=rules,
                       house_code_format=_parse_house_code_format(doc.get("house_code_format")))


def _parse_house_code_format(raw: Any) -> HouseCodeFormat:
    if raw is None:
        return HouseCodeFormat()
    if not isinstance(raw, dict):
        raise ConfigError(f"rules.house_code_format: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"pattern", "reject_id_numbers"})
    if unknown:
        raise ConfigError(f"rules.house_code_format: unknown key(s) {', '.join(unknown)}; allowed: pattern, reject_id_numbers")
    pattern = _str(raw.get("pattern", HouseCodeFormat.pattern), "rules.house_code_format.pattern")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"rules.house_code_format.pattern: not a valid regular expression ({exc})") from None
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ConfigError("rules.house_code_format.pattern: must be anchored (start with ^ and end with $)")
    reject = raw.get("reject_id_numbers", True)
    if not isinstance(reject, bool):
        raise ConfigError(f"rules.house_code_format.reject_id_numbers: expected true or false, got {reject!r}")
    return HouseCodeFormat(pattern=pattern, reject_id_numbers=reject)


def read_rules_doc(path: str | os.PathLike[str] | None = None) -> Any:
    """The parsed YAML of ``conf/rules.yaml`` (or ``path``); a missing or invalid file is a ConfigError."""
    p = Path(path) if path else CONF_DIR / "rules.yaml"
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"rules file not found: {p}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None


def load_rules(path: str | os.PathLike[str] | None = None) -> RulesConfig:
    """Load and validate ``conf/rules.yaml`` (or ``path``)."""
    return parse_rules(read_rules_doc(path))
