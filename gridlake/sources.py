"""Department sources declared in ``conf/sources.yaml``, loaded into validated dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from gridlake.config import CONF_DIR, ConfigError

FORMATS = {"csv", "xlsx"}
ENCODINGS = {"gb18030", "utf-8", "utf-8-sig"}
DELIVERIES = {"snapshot", "increment"}
_ALLOWED = {"owner", "format", "encoding", "delivery", "file_glob", "key", "order_by", "columns", "required", "personal"}


@dataclass(frozen=True)
class Source:
    """One department delivery: how its files look and what its rows mean."""

    name: str
    format: str
    delivery: str
    key: tuple[str, ...]
    columns: dict[str, str]  # canonical -> delivered header
    required: tuple[str, ...]
    personal: tuple[str, ...] = ()
    encoding: str = "utf-8"
    file_glob: str = "*"
    order_by: str | None = None
    owner: str = ""

    @property
    def header_to_canonical(self) -> dict[str, str]:
        return {header: canon for canon, header in self.columns.items()}

    @property
    def canonical_columns(self) -> list[str]:
        return list(self.columns)

    def validate(self) -> None:
        where = f"sources.{self.name}"
        if self.format not in FORMATS:
            raise ConfigError(f"{where}.format: {self.format!r} is not one of {sorted(FORMATS)}")
        if self.format == "csv" and self.encoding not in ENCODINGS:
            raise ConfigError(f"{where}.encoding: {self.encoding!r} is not one of {sorted(ENCODINGS)}")
        if self.delivery not in DELIVERIES:
            raise ConfigError(f"{where}.delivery: {self.delivery!r} is not one of {sorted(DELIVERIES)}")
        for attr in ("key", "required", "personal"):
            bad = [c for c in getattr(self, attr) if c not in self.columns]
            if bad:
                raise ConfigError(f"{where}.{attr}: {', '.join(bad)} not among the declared columns")
        if self.order_by and self.order_by not in self.columns:
            raise ConfigError(f"{where}.order_by: {self.order_by} not among the declared columns")
        if not self.key:
            raise ConfigError(f"{where}.key: a business key is required")


def _source(name: str, raw: dict) -> Source:
    if not isinstance(raw, dict):
        raise ConfigError(f"sources.{name}: expected a mapping")
    unknown = sorted(set(raw) - _ALLOWED)
    if unknown:
        raise ConfigError(f"sources.{name}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ALLOWED))}")
    for req in ("format", "delivery", "key", "columns"):
        if req not in raw:
            raise ConfigError(f"sources.{name}: missing required key {req!r}")
    src = Source(
        name=name,
        format=str(raw["format"]),
        delivery=str(raw["delivery"]),
        key=tuple(raw["key"]),
        columns={str(k): str(v) for k, v in raw["columns"].items()},
        required=tuple(raw.get("required", raw["key"])),
        personal=tuple(raw.get("personal") or ()),
        encoding=str(raw.get("encoding", "utf-8")),
        file_glob=str(raw.get("file_glob", "*")),
        order_by=raw.get("order_by"),
        owner=str(raw.get("owner", "")),
    )
    src.validate()
    return src


def load_sources(path: str | Path | None = None) -> dict[str, Source]:
    """All sources, by name, validated."""
    path = Path(path) if path else CONF_DIR / "sources.yaml"
    return dict(_load_cached(str(path)))


@lru_cache(maxsize=8)
def _load_cached(path: str) -> tuple[tuple[str, Source], ...]:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"sources file not found: {path}") from None
    raw = doc.get("sources")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a non-empty 'sources' mapping")
    return tuple((name, _source(name, spec)) for name, spec in raw.items())


def get_source(name: str) -> Source:
    """One source by name, or a ConfigError listing the known ones."""
    sources = load_sources()
    if name not in sources:
        raise ConfigError(f"unknown source {name!r}; known: {', '.join(sources)}")
    return sources[name]


@dataclass
class SourceFile:
    """A delivered file found in landing."""

    source: str
    delivery_date: str
    path: Path
    extra: dict[str, str] = field(default_factory=dict)
