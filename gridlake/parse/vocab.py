"""Controlled vocabularies as data (``conf/vocab.yaml``), validated by pydantic, matched after normalising.

A vocabulary maps canonical codes (those of :mod:`schemas.vocab`) to synonyms. The lookup table of
a vocabulary holds, normalised by :func:`normalise`, every standard label of ``schemas/vocab.py``,
every code and every synonym; two codes sharing a normalised key is a configuration error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridlake.config import CONF_DIR, ConfigError
from gridlake.config_models import config_error
from schemas import vocab as standard

UNKNOWN_VOCAB = "UNKNOWN_VOCAB"
MAX_REPORTED = 24  # an unknown value shown in the delivery report is cut to this many characters

# vocabulary name -> the standard label -> code mapping of schemas/vocab.py
STANDARD: dict[str, Mapping[str, str]] = {
    "house_usage": standard.HOUSE_USAGE,
    "house_legal": standard.HOUSE_LEGAL,
    "house_status": standard.HOUSE_STATUS,
    "rental_status": standard.RENTAL_STATUS,
    "relation": standard.RELATION,
    "channel": standard.CHANNEL,
    "safety_severity": standard.SAFETY_SEVERITY,
    "verification_outcome": standard.VERIFICATION_OUTCOME,
}

_PUNCT = re.compile(r"[\s\-_·・.,，。、/\\|()（）\[\]【】<>《》\"'“”‘’:：;；!！?？*#]+")


class Vocabulary(BaseModel):
    """One vocabulary: code -> synonyms, and the suffixes stripped before matching."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    codes: dict[str, list[str]]
    suffixes: list[str] = Field(default_factory=list)


class VocabFile(BaseModel):
    """``conf/vocab.yaml``."""

    model_config = ConfigDict(extra="forbid")
    vocabularies: dict[str, Vocabulary]


def normalise(text: str, suffixes: tuple[str, ...] = ()) -> str:
    """NFKC, case-folded, without spaces or punctuation, with up to two trailing ``suffixes`` removed."""
    s = _PUNCT.sub("", unicodedata.normalize("NFKC", text)).casefold()
    ordered = sorted((x.casefold() for x in suffixes), key=len, reverse=True)
    for _ in range(2):
        for suf in ordered:
            if suf and s.endswith(suf) and len(s) > len(suf):
                s = s[: -len(suf)]
                break
        else:
            break
    return s


class Lookup:
    """A validated vocabulary: :meth:`code` of a delivered value, or None."""

    def __init__(self, name: str, vocab: Vocabulary) -> None:
        self.name = name
        self.suffixes = tuple(vocab.suffixes)
        table: dict[str, str] = {}
        labels = STANDARD[name]
        entries: list[tuple[str, str]] = [(label, code) for label, code in labels.items()]
        entries += [(code, code) for code in labels.values()]
        entries += [(syn, code) for code, syns in vocab.codes.items() for syn in syns]
        for text, code in entries:
            key = normalise(str(text), self.suffixes)
            if not key:
                raise ConfigError(f"vocab.yaml: vocabularies.{name}: synonym {text!r} of {code} normalises to nothing")
            if table.get(key, code) != code:
                raise ConfigError(f"vocab.yaml: vocabularies.{name}: {text!r} means both {table[key]} and {code}")
            table[key] = code
        self.table = table
        self.codes = tuple(dict.fromkeys(labels.values()))

    def code(self, value: str | None) -> str | None:
        """The canonical code of ``value`` (None when blank or unknown)."""
        if value is None:
            return None
        return self.table.get(normalise(value, self.suffixes))


def load_vocabularies(path: str | Path | None = None) -> dict[str, Lookup]:
    """Load and validate ``conf/vocab.yaml``: every vocabulary of :data:`STANDARD`, codes from schemas/vocab.py."""
    p = Path(path) if path else CONF_DIR / "vocab.yaml"
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: cannot read ({type(exc).__name__})") from None
    try:
        parsed = VocabFile.model_validate(doc)
    except ValidationError as exc:
        raise config_error(exc, p.name) from None
    missing = sorted(set(STANDARD) - set(parsed.vocabularies))
    extra = sorted(set(parsed.vocabularies) - set(STANDARD))
    if missing or extra:
        raise ConfigError(f"{p.name}: vocabularies: missing {missing}, unknown {extra} (known: {sorted(STANDARD)})")
    for name, vocab in parsed.vocabularies.items():
        allowed = set(STANDARD[name].values())
        bad = sorted(set(vocab.codes) - allowed)
        if bad:
            raise ConfigError(f"{p.name}: vocabularies.{name}.codes: {bad} not among {sorted(allowed)} "
                              "(schemas/vocab.py)")
    return {name: Lookup(name, vocab) for name, vocab in parsed.vocabularies.items()}


@lru_cache(maxsize=1)
def vocabularies() -> dict[str, Lookup]:
    """The vocabularies of ``conf/vocab.yaml``, loaded once per process."""
    return load_vocabularies()


def reportable(value: str | None) -> str | None:
    """An unknown vocabulary value as it may appear in the delivery report: trimmed, digit runs masked, capped."""
    if value is None:
        return None
    s = unicodedata.normalize("NFKC", value).strip()
    s = re.sub(r"[0-9Xx]{5,}", lambda m: "#" * min(len(m.group(0)), 4) + "…", s)
    s = re.sub(r"[\x00-\x1f\x7f]", " ", s)
    return s[:MAX_REPORTED] + ("…" if len(s) > MAX_REPORTED else "") if s else None
