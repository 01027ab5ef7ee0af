"""Plausibility limits of typed values (``conf/values.yaml``), validated by pydantic on load."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gridlake.config import CONF_DIR, ConfigError
from gridlake.config_models import config_error
from gridlake.parse.dates import DateRules
from gridlake.parse.numbers import AREA_UNITS, COUNT_UNITS, NumberRules


class DateLimits(BaseModel):
    """``dates:`` section."""

    model_config = ConfigDict(extra="forbid")
    min_year: int = Field(1900, ge=1)
    max_year: int = Field(2100, le=9998)
    serial_min_year: int = 1950
    serial_max_year: int = 2100
    two_digit_min_year: int = 2015
    two_digit_max_year: int = 2035
    future_tolerance_days: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DateLimits:
        for lo, hi in (("min_year", "max_year"), ("serial_min_year", "serial_max_year"),
                       ("two_digit_min_year", "two_digit_max_year")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} must not be above {hi}")
        return self


class NumberLimits(BaseModel):
    """``numbers:`` section."""

    model_config = ConfigDict(extra="forbid")
    area_max_m2: float = Field(5000, gt=0)
    tenants_max: int = Field(50, ge=1)
    household_max: int = Field(30, ge=1)


class ValueLimits(BaseModel):
    """``conf/values.yaml``."""

    model_config = ConfigDict(extra="forbid")
    dates: DateLimits = Field(default_factory=DateLimits)
    numbers: NumberLimits = Field(default_factory=NumberLimits)

    def date_rules(self, timezone: str = "Asia/Shanghai") -> DateRules:
        """The parser's rules for these limits."""
        d = self.dates
        return DateRules(d.min_year, d.max_year, d.serial_min_year, d.serial_max_year, d.two_digit_min_year,
                         d.two_digit_max_year, timezone)

    def area(self) -> NumberRules:
        """Rules of an area in square metres (> 0, at most ``area_max_m2``)."""
        return NumberRules(integer=False, units=AREA_UNITS, min_exclusive=0, min_inclusive=None,
                           max_inclusive=self.numbers.area_max_m2)

    def count(self, maximum: int) -> NumberRules:
        """Rules of a count of people (integer, 0..maximum)."""
        return NumberRules(integer=True, units=COUNT_UNITS, min_inclusive=0, max_inclusive=maximum)


def load_limits(path: str | Path | None = None) -> ValueLimits:
    """Load and validate ``conf/values.yaml`` (defaults when the file is absent)."""
    p = Path(path) if path else CONF_DIR / "values.yaml"
    if not p.exists():
        return ValueLimits()
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        return ValueLimits.model_validate(doc)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p.name}: not YAML ({type(exc).__name__})") from None
    except ValidationError as exc:
        raise config_error(exc, p.name) from None


@lru_cache(maxsize=1)
def limits() -> ValueLimits:
    """``conf/values.yaml``, loaded once per process."""
    return load_limits()
