"""Typed loading of the officers' loop keys of ``conf/rules.yaml``: outcomes and deadlines (issue 19).

``verification_outcomes`` (label -> outcome code) is the return form's dropdown and the list silver
accepts; ``deadlines`` sets the time limit per severity and when an overdue case reaches the street.
Errors name the key (``rules.deadlines.days.high``) and what was expected.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gridlake.config import ConfigError
from gridlake.config_models import config_error
from gridlake.rules_config import SEVERITIES
from schemas.vocab import VERIFICATION_OUTCOME

DEFAULT_OUTCOMES: dict[str, str] = dict(VERIFICATION_OUTCOME)


class Deadlines(BaseModel):
    """Time limits per severity and the escalation ladder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: dict[str, int] = Field(default_factory=lambda: {"critical": 2, "high": 3, "medium": 7, "low": 14})
    street_after_overdue_days: int = Field(default=3, ge=0)
    backlog_age_buckets: list[int] = Field(default_factory=lambda: [7, 14, 30])

    @field_validator("days")
    @classmethod
    def _all_severities(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(SEVERITIES))
        missing = sorted(set(SEVERITIES) - set(value))
        if unknown or missing:
            raise ValueError(f"expected exactly the severities {', '.join(SEVERITIES)}"
                             f" (unknown: {unknown or '-'}, missing: {missing or '-'})")
        bad = [k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1]
        if bad:
            raise ValueError(f"days must be positive integers ({', '.join(bad)})")
        return value

    @field_validator("backlog_age_buckets")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if not value or any(b <= a for a, b in zip(value, value[1:], strict=False)) or value[0] < 1:
            raise ValueError("expected a non-empty, strictly increasing list of positive days")
        return value


class LoopConfig(BaseModel):
    """The officers' loop keys of ``conf/rules.yaml``."""

    model_config = ConfigDict(frozen=True)

    outcomes: dict[str, str]
    deadlines: Deadlines

    @property
    def labels(self) -> list[str]:
        """The dropdown's labels, in configured order."""
        return list(self.outcomes)


def parse_loop(doc: Any) -> LoopConfig:
    """Validate the ``verification_outcomes`` and ``deadlines`` sections of a rules document."""
    doc = doc if isinstance(doc, dict) else {}
    raw_out = doc.get("verification_outcomes", DEFAULT_OUTCOMES)
    if not isinstance(raw_out, dict) or not raw_out:
        raise ConfigError("rules.verification_outcomes: expected a non-empty mapping label -> outcome code")
    known = set(VERIFICATION_OUTCOME.values())
    outcomes: dict[str, str] = {}
    for label, code in raw_out.items():
        if not isinstance(label, str) or not label.strip() or "," in label or '"' in label:
            raise ConfigError(f"rules.verification_outcomes.{label}: a label must be non-empty text without , or \"")
        if code not in known:
            raise ConfigError(f"rules.verification_outcomes.{label}: unknown outcome code {code!r}; "
                              f"allowed: {', '.join(sorted(known))}")
        outcomes[label.strip()] = code
    if len(",".join(outcomes)) > 250:
        raise ConfigError("rules.verification_outcomes: the labels together exceed Excel's 255-character list")
    try:
        deadlines = Deadlines.model_validate(doc.get("deadlines") or {})
    except ValidationError as exc:
        raise config_error(exc, "rules.yaml", "rules.deadlines") from None
    return LoopConfig(outcomes=outcomes, deadlines=deadlines)


def load_loop(path: str | os.PathLike[str] | None = None) -> LoopConfig:
    """Load the officers' loop keys from ``conf/rules.yaml`` (or ``path``)."""
    from gridlake.rules_config import read_rules_doc

    return parse_loop(read_rules_doc(path))
