"""Typed loading of ``conf/rules.yaml``: the collision rules (DESIGN.md section 4).

``load_rules()`` returns a frozen :class:`RulesConfig`; an unknown key or a bad
value raises :class:`gridlake.config.ConfigError` naming the file and the key
(``rules.R4.tenant_tolerance``); the models are pydantic (:mod:`gridlake.config_models`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from gridlake.config import CONF_DIR, ConfigError
from gridlake.config_models import ConfigModel, config_error

RULE_IDS = ("R1", "R2", "R3", "R4", "R5", "R6", "R7")
SEVERITIES = ("critical", "high", "medium", "low")
Severity = Literal["critical", "high", "medium", "low"]
# deadlines and verification_outcomes are the officers' loop's (gridlake.loop_config validates them)
LOOP_KEYS = ("deadlines", "verification_outcomes")


class _Strict(ConfigModel):
    """Rules are typed exactly: ``"14"`` or ``14.0`` is not a number of days, ``"yes"`` not true."""

    model_config = ConfigDict(strict=True)


class RuleDefaults(_Strict):
    """Values every rule inherits unless it sets its own."""

    window_days: int = Field(90, ge=1)
    due_days: int = Field(7, ge=1)
    escalate_after_days: int = Field(14, ge=1)
    capacity_per_officer: int = Field(15, ge=1)
    recency_half_life_days: int = Field(30, ge=1)


class RuleConfig(_Strict):
    """One collision rule; unset tunables fall back to :class:`RuleDefaults`."""

    rule_id: str
    code: str = Field(min_length=1)
    title: str = Field(min_length=1)
    severity: Severity
    description: str = ""
    safety_severity: Severity | None = None
    window_days: int = Field(90, ge=1)
    grace_days: int = Field(0, ge=0)
    area_per_person_m2: float = Field(0.0, gt=0)  # the default 0 means "not set" (required for R4)
    tenant_tolerance: int = Field(0, ge=0)
    due_days: int = Field(7, ge=1)
    escalate_after_days: int = Field(14, ge=1)
    candidates_top_k: int = Field(3, ge=1)                   # R6: best candidate houses shown per address case
    max_per_officer: int | None = Field(None, ge=1)         # at most this many of the rule's cases on one list a night

    @field_validator("description", mode="before")
    @classmethod
    def _blank_description(cls, value: Any) -> Any:
        return "" if value is None else value

    @model_validator(mode="after")
    def _r4_needs_area(self) -> RuleConfig:
        if self.rule_id == "R4" and "area_per_person_m2" not in self.model_fields_set:
            raise ValueError("area_per_person_m2: missing")
        return self


class HouseCodeFormat(_Strict):
    """The housing registry's house-code format: a delivered code is shown only when it matches.

    ``pattern`` is a full-match regular expression (Java/Spark syntax); ``reject_id_numbers``: a value
    with the shape of a resident ID number (a birth date at positions 7-14) is never shown, even if it matches.
    """

    pattern: str = Field(r"^4403[0-9]{14}$", min_length=1)
    reject_id_numbers: bool = True

    @field_validator("pattern")
    @classmethod
    def _anchored_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc.msg})") from None
        if not (value.startswith("^") and value.endswith("$")):
            raise ValueError("must be anchored (start with ^ and end with $)")
        return value


class RulesConfig(_Strict):
    """All rules plus the shared defaults and severity weights."""

    defaults: RuleDefaults = Field(default_factory=RuleDefaults)
    severity_weights: dict[Severity, float]
    rules: dict[str, RuleConfig] = Field(default_factory=dict)
    house_code_format: HouseCodeFormat = Field(default_factory=HouseCodeFormat)

    @model_validator(mode="before")
    @classmethod
    def _inherit_defaults(cls, raw: Any) -> Any:
        """Each rule gets its id and, unless it sets them, the defaults' window and deadlines."""
        if not isinstance(raw, dict) or not isinstance(raw.get("rules"), dict):
            return raw
        inherited = {k: v for k, v in (raw.get("defaults") or {}).items()
                     if k in ("window_days", "due_days", "escalate_after_days")} if isinstance(
                         raw.get("defaults"), dict) else {}
        rules = {rid: {**inherited, **body, "rule_id": rid} if isinstance(body, dict) else body
                 for rid, body in raw["rules"].items()}
        return {**raw, "rules": rules}

    @field_validator("rules", mode="before")
    @classmethod
    def _all_rules(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping R1..R7")
        unknown = sorted(set(map(str, value)) - set(RULE_IDS))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}; allowed: {', '.join(RULE_IDS)}")
        missing = [r for r in RULE_IDS if r not in value]
        if missing:
            raise ValueError(f"missing rule(s) {', '.join(missing)}")
        return {rid: value[rid] for rid in RULE_IDS}

    @field_validator("rules")
    @classmethod
    def _unique_codes(cls, value: dict[str, RuleConfig]) -> dict[str, RuleConfig]:
        codes = [r.code for r in value.values()]
        if len(set(codes)) != len(codes):
            raise ValueError("rule codes must be unique")
        return value

    @field_validator("severity_weights")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if v <= 0]
        if bad:
            raise ValueError(f"{', '.join(bad)}: expected a positive number")
        missing = sorted(set(SEVERITIES) - set(value))
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return value

    def __getitem__(self, rule_id: str) -> RuleConfig:
        return self.rules[rule_id]

    def weight(self, severity: str) -> float:
        """The weight of a severity level."""
        return self.severity_weights[severity]  # type: ignore[index]

    @property
    def max_window_days(self) -> int:
        return max([self.defaults.window_days, *(r.window_days for r in self.rules.values())])


def parse_rules(doc: Any, source: str = "rules.yaml") -> RulesConfig:
    """Validate a parsed rules document (the content of ``conf/rules.yaml``; ``source`` names it in errors)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: rules: expected a mapping at the top level")
    try:
        return RulesConfig.model_validate({k: v for k, v in doc.items() if k not in LOOP_KEYS})
    except ValidationError as exc:
        raise config_error(exc, source, "rules") from None


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
    return parse_rules(read_rules_doc(path), str(path) if path else "rules.yaml")
