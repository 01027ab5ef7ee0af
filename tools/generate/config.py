"""Generator configuration: conf/generator.yaml, optional noise overrides, resolved scale."""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gridlake.config import CONF_DIR, ConfigError

#: the second address noise model's kinds (tools.generate.noise_second), named in generator.yaml
SECOND_KINDS = (
    "num_fullwidth", "num_cn_digits", "num_cn_positional", "num_mixed", "room_suffix", "marker_variant",
    "floor_written", "bracketed_note", "filler", "community_after_road", "room_before_building", "admin_missing",
    "admin_repeated", "short_dash", "homophone_sound", "traditional", "separators",
)
SECOND_UNRESOLVABLE = ("typo_building", "typo_room", "missing_room", "too_little_info")


@dataclass(frozen=True)
class Scale:
    """How big the district is."""

    name: str
    houses: int
    streets: int
    communities_per_street: int
    grid_size: int


@dataclass(frozen=True)
class GenConfig:
    """Everything one generator run depends on (recorded in truth/manifest.json)."""

    scale: Scale
    days: int
    start: dt.date
    seed: int
    world: dict[str, Any]
    noise: dict[str, Any]
    officers: dict[str, Any]

    @property
    def noise_model(self) -> str:
        """The address noise model: ``default`` or ``second``."""
        return str(self.noise.get("model", "default"))

    @property
    def address_noise(self) -> dict[str, Any]:
        """The rates and kinds of the active address noise model (``noise.address`` or ``noise.address_second``)."""
        return self.noise["address_second"] if self.noise_model == "second" else self.noise["address"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale.__dict__, "days": self.days, "start": self.start.isoformat(),
            "seed": self.seed, "world": self.world, "noise": self.noise, "officers": self.officers,
        }


def _merge(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k not in out:
            raise ConfigError(f"{where}.{k}: unknown key; allowed: {', '.join(sorted(out))}")
        if isinstance(out[k], dict):
            if not isinstance(v, dict):
                raise ConfigError(f"{where}.{k}: expected a mapping")
            out[k] = _merge(out[k], v, f"{where}.{k}")
        else:
            out[k] = v
    return out


def resolve_scale(raw: dict[str, Any], scale: str | int) -> Scale:
    """A named scale of generator.yaml, or a number of houses."""
    s = str(scale)
    if s in raw:
        return Scale(name=s, **raw[s])
    if not s.isdigit() or int(s) < 20:
        raise ConfigError(f"--scale: expected one of {', '.join(raw)} or a number of houses (>= 20), got {scale!r}")
    n = int(s)
    streets = max(1, min(10, n // 20000 or 1))
    cps = max(1, min(9, n // (streets * 1000) or 1))
    grid = max(20, min(300, n // (streets * cps * 4) or 20))
    return Scale(name=s, houses=n, streets=streets, communities_per_street=cps, grid_size=grid)


NOISE_MODELS = ("default", "second")

#: enforcement sources (as tools.generate.world.ENF_SOURCES) whose mentions may carry an ID number
PERSON_SOURCES = ("police_incidents", "mediation_cases", "safety_inspections", "family_planning")

Rate = Field(ge=0.0, le=1.0)


class PersonNoise(BaseModel):
    """``noise.persons``: how departments write the persons they name (every rate in [0, 1])."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # share of mentions that carry an ID number, per source (declarations always do)
    id_present: dict[str, float] = Field(default_factory=lambda: {
        "police_incidents": 0.55, "mediation_cases": 0.45, "family_planning": 0.9})
    id_typo_rate: float = Rate          # one digit mistyped (fails the checksum)
    id15_rate: float = Rate             # legacy 15-digit form (born 19xx)
    phone_present: float = Rate         # enforcement mentions with a phone (declarations always have one)
    family_phone_rate: float = Rate     # a household member's phone instead of one's own
    traditional_rate: float = Rate      # name in traditional characters
    homophone_rate: float = Rate        # one given-name character replaced by a same-sounding one
    namesake_rate: float = Rate         # per mention: a different person with the same name in the community
    phone_format_rate: float = Rate     # +86, spaces, dashes
    # kinds of the second model only (noise.persons_second; 0 in the default model, which draws nothing for them)
    name_separator_rate: float = 0.0    # 张 伟 / 张·伟: a space or a middle dot between surname and given name
    id_fullwidth_rate: float = 0.0      # ID typed with full-width digits (an IME left in full-width mode), x lowercase
    id_spaced_rate: float = 0.0         # ID written in groups: 440304 19850312 123X
    landline_rate: float = 0.0          # the household's landline (0755-8xxxxxxx, or the 8 local digits) for a phone
    phone_transposed_rate: float = 0.0  # the mobile with two adjacent digits swapped (typed from dictation)
    old_phone_rate: float = 0.0         # an older mobile of the person (the number changed since)

    @field_validator("id_present")
    @classmethod
    def _sources(cls, value: dict[str, float]) -> dict[str, float]:
        for src, v in value.items():
            if src not in PERSON_SOURCES:
                raise ValueError(f"id_present.{src}: unknown source; known: {', '.join(PERSON_SOURCES)}")
            if not 0 <= v <= 1:
                raise ValueError(f"id_present.{src}: expected a number in [0, 1], got {v!r}")
        return value


_DEFAULTS = {"id_typo_rate": 0.04, "id15_rate": 0.05, "phone_present": 0.85, "family_phone_rate": 0.08,
             "traditional_rate": 0.05, "homophone_rate": 0.05, "namesake_rate": 0.03, "phone_format_rate": 0.35}


def person_noise(noise: dict[str, Any], where: str | None = None) -> PersonNoise:
    """Validate the person noise of the active model: ``noise['persons']`` (default model) or
    ``noise['persons_second']`` (``second`` model, when present); absent: the defaults. Errors name the key
    and the expected type."""
    block = "persons_second" if noise.get("model") == "second" and "persons_second" in noise else "persons"
    where = where or f"generator.yaml: noise.{block}"
    raw = noise.get(block)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    try:
        return PersonNoise(**{**_DEFAULTS, **raw})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{where}.{loc}: {err['msg']}" if loc else f"{where}: {err['msg']}") from None


def load_gen_config(
    scale: str | int = "community", days: int = 3, start: str | dt.date = "2026-11-01", seed: int = 20141,
    noise_file: str | Path | None = None, conf_file: str | Path | None = None, noise_model: str | None = None,
) -> GenConfig:
    """Load conf/generator.yaml (or ``conf_file``) and apply the ``--noise`` overrides.

    ``noise_file`` is a YAML file of overrides, or a noise model name (``default``/``second``, as
    ``gridlake generate --noise second``); ``noise_model`` selects the model explicitly."""
    if noise_file is not None and str(noise_file) in NOISE_MODELS:
        noise_model, noise_file = str(noise_file), None
    path = Path(conf_file) if conf_file else CONF_DIR / "generator.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"generator configuration not found: {path}") from None
    noise = doc.get("noise") or {}
    if noise_file:
        try:
            over = yaml.safe_load(Path(noise_file).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"--noise file not found: {noise_file}") from None
        over = over.get("noise", over)
        noise = _merge(noise, over, "noise")
    if noise_model is not None:
        noise = {**noise, "model": noise_model}
    model = noise.get("model", "default")
    if model not in NOISE_MODELS:
        raise ConfigError(f"noise.model: expected one of {', '.join(NOISE_MODELS)}, got {model!r}")
    if model == "second":
        _check_second(noise.get("address_second"))
    person_noise(noise)
    if days < 1:
        raise ConfigError("--days must be at least 1")
    try:
        start_d = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start))
    except ValueError:
        raise ConfigError(f"--start: expected YYYY-MM-DD, got {start!r}") from None
    return GenConfig(
        scale=resolve_scale(doc["scales"], scale), days=int(days), start=start_d, seed=int(seed),
        world=doc["world"], noise=noise, officers=doc.get("officers") or {},
    )


def _check_second(block: Any) -> None:
    """noise.address_second: rates in [0, 1], kinds and unresolvable kinds known, weights >= 0."""
    where = "generator.yaml: noise.address_second"
    if not isinstance(block, dict):
        raise ConfigError(f"{where}: expected a mapping")
    for key in ("messy_rate", "messy_rate_rentals", "extra_kinds_p", "unresolvable_rate"):
        v = block.get(key)
        if not isinstance(v, int | float) or not 0 <= v <= 1:
            raise ConfigError(f"{where}.{key}: expected a number in [0, 1], got {v!r}")
    for key, known in (("kinds", SECOND_KINDS), ("unresolvable_kinds", SECOND_UNRESOLVABLE)):
        kinds = block.get(key)
        if not isinstance(kinds, dict) or not kinds:
            raise ConfigError(f"{where}.{key}: expected a mapping of kind -> weight")
        for k, w in kinds.items():
            if k not in known:
                raise ConfigError(f"{where}.{key}.{k}: unknown kind; known: {', '.join(known)}")
            if not isinstance(w, int | float) or w < 0:
                raise ConfigError(f"{where}.{key}.{k}: expected a weight >= 0, got {w!r}")
        if sum(kinds.values()) <= 0:
            raise ConfigError(f"{where}.{key}: at least one weight must be > 0")


def generator_info(truth_dir: str | Path) -> dict[str, Any]:
    """Which generator run produced a district: ``{seed, noise_model, scale, houses, days, start}`` from
    ``truth_dir/manifest.json`` (manifests older than the noise models say ``default``); ``{}`` without one."""
    path = Path(truth_dir) / "manifest.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    cfg = doc.get("config") or {}
    scale = cfg.get("scale") or {}
    return {"seed": doc.get("seed", cfg.get("seed")),
            "noise_model": doc.get("noise_model", (cfg.get("noise") or {}).get("model", "default")),
            "scale": doc.get("scale", scale.get("name")), "houses": scale.get("houses"),
            "days": cfg.get("days"), "start": cfg.get("start")}
