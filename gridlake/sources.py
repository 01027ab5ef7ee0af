"""Department sources declared in ``conf/sources.yaml``, loaded into validated dataclasses.

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

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridlake.config import CONF_DIR, ConfigError
from gridlake.config_models import config_error

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

FORMATS = {"csv", "xlsx"}
ENCODINGS = {"gb18030", "utf-8", "utf-8-sig"}
DELIVERIES = {"snapshot", "increment"}
_ALLOWED = {"owner", "format", "encoding", "delivery", "file_glob", "key", "order_by", "columns", "required", "personal",
            "done_marker"}


@dataclass(frozen=True)
class Source:
    """One department delivery: how its files look and what its rows mean."""

    name: str
    format: str
    delivery: str
    key: tuple[str, ...]
    columns: dict[str, str]  # canonical -> the template's header (the first alias)
    required: tuple[str, ...]
    personal: tuple[str, ...] = ()
    encoding: str = "utf-8"
    file_glob: str = "*"
    order_by: str | None = None
    owner: str = ""
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical -> every accepted header
    done_marker: bool = False  # a file is read only once ``<name>.done`` (or the night's ``.done``) exists

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
        owner: dict[str, str] = {}
        for canon in self.columns:
            for header in self.aliases.get(canon) or (self.columns[canon],):
                norm = normalise_header(header)
                if not norm:
                    raise ConfigError(f"{where}.columns.{canon}: header {header!r} is empty once normalised")
                if owner.setdefault(norm, canon) != canon:
                    raise ConfigError(f"{where}.columns.{canon}: header {header!r} is also a header of "
                                      f"{owner[norm]} (after normalising: {norm!r})")


def _headers(name: str, canon: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    raise ConfigError(f"sources.{name}.columns.{canon}: expected a header (string) or a non-empty list of headers")


def _source(name: str, raw: dict) -> Source:
    if not isinstance(raw, dict):
        raise ConfigError(f"sources.{name}: expected a mapping")
    unknown = sorted(set(raw) - _ALLOWED)
    if unknown:
        raise ConfigError(f"sources.{name}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ALLOWED))}")
    for req in ("format", "delivery", "key", "columns"):
        if req not in raw:
            raise ConfigError(f"sources.{name}: missing required key {req!r}")
    if not isinstance(raw["columns"], dict) or not raw["columns"]:
        raise ConfigError(f"sources.{name}.columns: expected a mapping canonical column -> header(s)")
    aliases = {str(k): _headers(name, str(k), v) for k, v in raw["columns"].items()}
    if not isinstance(raw.get("done_marker", False), bool):
        raise ConfigError(f"sources.{name}.done_marker: expected true or false")
    src = Source(
        name=name,
        format=str(raw["format"]),
        delivery=str(raw["delivery"]),
        key=tuple(raw["key"]),
        columns={k: v[0] for k, v in aliases.items()},
        aliases=aliases,
        done_marker=bool(raw.get("done_marker", False)),
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
