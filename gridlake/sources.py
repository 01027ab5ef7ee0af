"""Department sources declared in ``conf/sources.yaml``, loaded into validated pydantic models.

``columns`` maps each canonical column to the header the department writes, or to a
list of headers (aliases: the first is the template's own, the others how offices
rename it). Headers are compared after :func:`normalise_header` (NFKC, case, spaces,
punctuation, a trailing unit in brackets), so ``建筑面积(㎡)`` and ``建筑面积`` are one.
The ``ingest`` section holds the landing and XLSX limits (:class:`IngestConfig`).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from gridlake.config import CONF_DIR, ConfigError
from gridlake.config_models import ConfigModel, config_error

_TRAILING_UNIT = re.compile(r"\s*[(\[{<（【〔［｛〈《][^()\[\]{}<>（）【】〔〕［］｛｝〈〉《》]*[)\]}>）】〕］｝〉》]\s*$")
_INVISIBLE = {"\ufeff", "\u200b", "\u200c", "\u200d", "\u2060"}


def normalise_header(name: str | None) -> str:
    """A header as compared with sources.yaml: NFKC, case-folded, without a trailing unit in brackets
    (``建筑面积(㎡)``), spaces, punctuation, symbols and invisible characters (BOM, zero-width)."""
    s = unicodedata.normalize("NFKC", name or "")
    s = "".join(ch for ch in s if ch not in _INVISIBLE).strip()
    while True:
        cut = _TRAILING_UNIT.sub("", s)
        if cut == s or not cut.strip():
            break
        s = cut
    out = [ch for ch in s if unicodedata.category(ch)[0] not in "PZSC"]
    return "".join(out).casefold()


class IngestConfig(BaseModel):
    """Landing and XLSX limits (``ingest:`` in conf/sources.yaml; env ``GRIDLAKE_INGEST__<KEY>`` overrides)."""

    model_config = ConfigDict(extra="forbid")

    header_scan_rows: int = Field(20, ge=1, le=1000, description="rows scanned for the header below title rows")
    stable_seconds: float = Field(0, ge=0, description="a file's mtime must be this old before it is read")
    xlsx_max_uncompressed_bytes: int = Field(512 * 1024 * 1024, ge=1)
    xlsx_max_ratio: float = Field(200.0, gt=1, description="uncompressed/compressed size of one zip member")
    xlsx_ratio_min_bytes: int = Field(4 * 1024 * 1024, ge=0, description="members smaller than this skip the ratio check")
    xlsx_max_rows: int = Field(1_048_576, ge=1, description="rows with a value in the data sheet")
    xlsx_max_columns: int = Field(256, ge=1, description="columns with a value in the data sheet")
    xlsx_max_merged_cells: int = Field(100_000, ge=0, description="cells covered by merged ranges in the data sheet")
    read_processes: int = Field(2, ge=1, le=64, description="processes reading a large night's files side by side")
    parallel_min_bytes: int = Field(64 * 1024 * 1024, ge=0,
                                    description="a night's files read side by side only from this many bytes")

FORMATS = {"csv", "xlsx"}
ENCODINGS = {"gb18030", "utf-8", "utf-8-sig"}
DELIVERIES = {"snapshot", "increment"}


class Source(ConfigModel):
    """One department delivery: how its files look and what its rows mean.

    Built from a ``sources.yaml`` entry, where ``columns`` maps a canonical column to one header or a
    list of them: ``columns`` keeps the first (the template's own), ``aliases`` all of them.
    """

    name: str
    format: Literal["csv", "xlsx"]
    delivery: Literal["snapshot", "increment"]
    key: tuple[str, ...] = Field(min_length=1)
    columns: dict[str, str] = Field(min_length=1)  # canonical -> the template's header (the first alias)
    required: tuple[str, ...]
    personal: tuple[str, ...] = ()
    # optional columns many departments' extracts never carry (persons' names and phones beside their IDs):
    # absent, they load as empty without a MISSING_OPTIONAL_COLUMNS note every night
    often_absent: tuple[str, ...] = ()
    encoding: str = "utf-8"
    file_glob: str = "*"
    order_by: str | None = None
    owner: str = ""
    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # canonical -> every accepted header
    done_marker: StrictBool = False  # a file is read only once ``<name>.done`` (or the night's ``.done``) exists

    @model_validator(mode="before")
    @classmethod
    def _headers(cls, raw: Any) -> Any:
        """``columns: {c: [h1, h2]}`` -> ``columns: {c: h1}``, ``aliases: {c: (h1, h2)}``; ``required`` defaults to ``key``."""
        if not isinstance(raw, dict) or "aliases" in raw or not isinstance(raw.get("columns"), dict):
            return raw
        aliases: dict[str, tuple[str, ...]] = {}
        for canon, value in raw["columns"].items():
            headers = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
            if not headers or not all(isinstance(h, str) and h.strip() for h in headers):
                raise ValueError(f"columns.{canon}: expected a header (string) or a non-empty list of headers")
            aliases[str(canon)] = headers
        out = {**raw, "columns": {k: v[0] for k, v in aliases.items()}, "aliases": aliases}
        out.setdefault("required", raw.get("key"))
        out["personal"] = raw.get("personal") or ()
        return out

    @model_validator(mode="after")
    def _consistent(self) -> Source:
        if self.format == "csv" and self.encoding not in ENCODINGS:
            raise ValueError(f"encoding: not one of {sorted(ENCODINGS)}")
        for attr in ("key", "required", "personal", "often_absent"):
            bad = [c for c in getattr(self, attr) if c not in self.columns]
            if bad:
                raise ValueError(f"{attr}: {', '.join(bad)} not among the declared columns")
        if set(self.often_absent) & set(self.required):
            raise ValueError("often_absent: a required column cannot be often absent")
        if self.order_by and self.order_by not in self.columns:
            raise ValueError(f"order_by: {self.order_by} not among the declared columns")
        owner: dict[str, str] = {}
        for canon in self.columns:
            for header in self.aliases.get(canon) or (self.columns[canon],):
                norm = normalise_header(header)
                if not norm:
                    raise ValueError(f"columns.{canon}: header {header!r} is empty once normalised")
                if owner.setdefault(norm, canon) != canon:
                    raise ValueError(f"columns.{canon}: header {header!r} is also a header of "
                                     f"{owner[norm]} (after normalising: {norm!r})")
        return self

    @property
    def header_to_canonical(self) -> dict[str, str]:
        """Normalised header (every alias and the canonical name itself) -> canonical column."""
        out: dict[str, str] = {}
        for canon in self.columns:
            out.setdefault(normalise_header(canon), canon)
        for canon in self.columns:
            for header in self.aliases.get(canon) or (self.columns[canon],):
                out[normalise_header(header)] = canon
        return out

    @property
    def canonical_columns(self) -> list[str]:
        return list(self.columns)


def _source(name: str, raw: Any, path: str) -> Source:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: sources.{name}: expected a mapping")
    for derived in ("name", "aliases"):  # set by the loader, not written in the file
        if derived in raw:
            raise ConfigError(f"{path}: sources.{name}.{derived}: unknown key")
    try:
        return Source.model_validate({**raw, "name": name})
    except ValidationError as exc:
        raise config_error(exc, path, f"sources.{name}") from None


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
    return tuple((name, _source(str(name), spec, path)) for name, spec in raw.items())


def load_ingest_config(path: str | Path | None = None) -> IngestConfig:
    """The ``ingest`` section of conf/sources.yaml, validated; ``GRIDLAKE_INGEST__<KEY>`` overrides a key."""
    path = Path(path) if path else CONF_DIR / "sources.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"sources file not found: {path}") from None
    raw = dict(doc.get("ingest") or {})
    for key, value in os.environ.items():
        if key.startswith("GRIDLAKE_INGEST__"):
            raw[key.removeprefix("GRIDLAKE_INGEST__").lower()] = value
    try:
        return IngestConfig(**raw)
    except ValidationError as exc:
        raise config_error(exc, str(path), "ingest") from None


def get_source(name: str) -> Source:
    """One source by name, or a ConfigError listing the known ones."""
    sources = load_sources()
    if name not in sources:
        raise ConfigError(f"unknown source {name!r}; known: {', '.join(sources)}")
    return sources[name]


@dataclass
class SourceFile:
    """A delivered file found in landing (``shown``: its path as text safe to record, even for a file name
    that is not UTF-8; ``note``: how it was found; ``skip``: why it is not read, for an ignored file)."""

    source: str
    delivery_date: str
    path: Path
    extra: dict[str, str] = field(default_factory=dict)
    shown: str = ""
    note: str | None = None
    skip: str | None = None

    def __post_init__(self) -> None:
        if not self.shown:
            self.shown = shown_path(self.path)


def shown_path(path: Path | str) -> str:
    """A path as text that can be stored and logged: a file name that is not UTF-8 (surrogate escapes) is
    decoded as gb18030 when it is valid gb18030, else its undecodable bytes are shown as U+FFFD."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for part in text.split("/"):
        try:
            part.encode("utf-8")
            out.append(part)
            continue
        except UnicodeEncodeError:
            raw = part.encode("utf-8", "surrogateescape")
        try:
            out.append(raw.decode("gb18030"))
        except UnicodeDecodeError:
            out.append(raw.decode("utf-8", "replace"))
    return "/".join(out)
