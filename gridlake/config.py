"""Typed configuration loaded from ``conf/gridlake.yaml``.

One file holds every profile (``local``, ``cluster``); a profile is chosen by
``--profile`` or ``GRIDLAKE_PROFILE``. Any value can be overridden by an
environment variable ``GRIDLAKE_<SECTION>__<KEY>`` (for example
``GRIDLAKE_SPARK__MASTER=spark://host:7077``); the data root also by
``--data`` or ``GRIDLAKE_DATA``. An unknown key or a value of the wrong type
stops with a :class:`ConfigError` that names it.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = Path(os.environ.get("GRIDLAKE_CONF_DIR", REPO_ROOT / "conf"))


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the key."""


@dataclass(frozen=True)
class SparkConfig:
    """How the Spark session is built."""

    master: str = "local[2]"
    driver_memory: str = "4g"
    executor_memory: str = "2g"
    executor_cores: int = 1
    shuffle_partitions: int = 4
    default_parallelism: int = 4
    # Partitions of Delta's log-replay job (Delta's default, 50, is for clusters; on two local
    # cores every cold table read pays for 50 tiny tasks).
    delta_snapshot_partitions: int = 4
    ui_enabled: bool = False
    log_level: str = "ERROR"
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.master:
            raise ConfigError("spark.master must not be empty")
        for name in ("driver_memory", "executor_memory"):
            value = getattr(self, name)
            if not value[:-1].isdigit() or value[-1].lower() not in "kmgt":
                raise ConfigError(f"spark.{name}: expected a size like '4g', got {value!r}")
        for name in ("shuffle_partitions", "default_parallelism", "delta_snapshot_partitions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"spark.{name} must be at least 1")


@dataclass(frozen=True)
class AirflowConfig:
    """The embedded Airflow used by the demo and the tests."""

    home: str = ""  # default: <data_root>/airflow
    parallelism: int = 2
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    spark_submit: bool = True


@dataclass(frozen=True)
class PrivacyConfig:
    """Pseudonymisation key handling (DESIGN.md section 6)."""

    key_env: str = "GRIDLAKE_PSEUDONYM_KEY"
    # Only the demo profile may create its own local key file; others fail closed.
    allow_local_key: bool = False
    local_key_file: str = ""  # default: <data_root>/.gridlake-key


LIFECYCLE_LAYERS = ("bronze", "silver", "gold", "quality", "_runs")


@dataclass(frozen=True)
class RetentionConfig:
    """How long data lives per layer (``gridlake maintain``, docs/reliability.md "For auditors")."""

    bronze_days: int = 400            # raw delivered rows older than this are deleted (counts stay in the logs)
    silver_history_days: int = 400    # closed SCD2 versions (valid_to) older than this are deleted
    quarantine_raw_days: int = 90     # quarantined rows keep reason codes; raw line and key dropped after this
    time_travel_days: int = 30        # every night started within this many days stays reproducible (as-of)
    # VACUUM retention (hours) per layer: files removed from a table longer ago than this are deleted.
    vacuum_hours: dict[str, str] = field(default_factory=lambda: {
        "bronze": "168", "silver": "168", "gold": "720", "quality": "168", "_runs": "720"})
    optimize_min_files: int = 8       # OPTIMIZE a table with at least this many small files
    small_file_mb: int = 32           # a data file below this size is small

    def validate(self) -> None:
        for name in ("bronze_days", "silver_history_days", "quarantine_raw_days", "time_travel_days",
                     "optimize_min_files", "small_file_mb"):
            if getattr(self, name) < 1:
                raise ConfigError(f"retention.{name} must be at least 1, got {getattr(self, name)}")
        for layer, hours in self.vacuum_hours.items():
            if layer not in LIFECYCLE_LAYERS:
                raise ConfigError(f"retention.vacuum_hours.{layer}: unknown layer; allowed: {', '.join(LIFECYCLE_LAYERS)}")
            if not str(hours).isdigit() or int(hours) < 1:
                raise ConfigError(f"retention.vacuum_hours.{layer}: expected a whole number of hours >= 1, got {hours!r}")

    def vacuum_hours_for(self, layer: str) -> int:
        """VACUUM retention of ``layer`` in hours (the largest configured one for an unlisted layer)."""
        if layer in self.vacuum_hours:
            return int(self.vacuum_hours[layer])
        return max(int(h) for h in self.vacuum_hours.values()) if self.vacuum_hours else 168


@dataclass(frozen=True)
class Settings:
    """A resolved profile: where data lives and how engines run."""

    profile: str
    data_root: str
    lake_root: str = ""  # default: <data_root>/lake; may be s3a://, hdfs://, abfss://
    spark: SparkConfig = field(default_factory=SparkConfig)
    airflow: AirflowConfig = field(default_factory=AirflowConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    timezone: str = "Asia/Shanghai"

    # --- paths of one deployment -------------------------------------------------
    @property
    def data(self) -> Path:
        return Path(self.data_root)

    @property
    def lake(self) -> str:
        return self.lake_root or str(self.data / "lake")

    def table_path(self, layer: str, table: str) -> str:
        """Location of the Delta table ``layer.table``."""
        return f"{self.lake.rstrip('/')}/{layer}/{table}"

    @property
    def runs_dir(self) -> str:
        return f"{self.lake.rstrip('/')}/_runs"

    @property
    def landing(self) -> Path:
        return self.data / "landing"

    @property
    def truth(self) -> Path:
        return self.data / "truth"

    @property
    def quality(self) -> Path:
        return self.data / "quality"

    @property
    def exports(self) -> Path:
        return self.data / "exports"

    @property
    def reports(self) -> Path:
        return self.data / "reports"

    @property
    def airflow_home(self) -> Path:
        return Path(self.airflow.home) if self.airflow.home else self.data / "airflow"

    @property
    def key_file(self) -> Path:
        return Path(self.privacy.local_key_file) if self.privacy.local_key_file else self.data / ".gridlake-key"


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert ``value`` to ``typ`` (str, int, bool, dict, dataclass) or raise ConfigError."""
    origin = typing.get_origin(typ)
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _build(typ, value, where)
    if origin in (dict,):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {str(k): str(v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        return value
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if typ is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
        return str(value)
    return value


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in raw.items()}
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _env_overrides(env: typing.Mapping[str, str]) -> dict[str, Any]:
    """``GRIDLAKE_SPARK__MASTER=x`` -> ``{"spark": {"master": "x"}}``."""
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith("GRIDLAKE_") or "__" not in key:
            continue
        parts = [p.lower() for p in key[len("GRIDLAKE_") :].split("__")]
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def load_settings(
    profile: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    conf_file: str | os.PathLike[str] | None = None,
    env: typing.Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate one profile from ``conf/gridlake.yaml``.

    Precedence, lowest first: the file's ``defaults``, the profile, environment
    overrides, then the explicit ``data_root`` argument (``--data``).
    """
    env = os.environ if env is None else env
    path = Path(conf_file) if conf_file else CONF_DIR / "gridlake.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    unknown = sorted(set(doc) - {"defaults", "profiles"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; allowed: defaults, profiles")
    profiles = doc.get("profiles") or {}
    name = profile or env.get("GRIDLAKE_PROFILE") or "local"
    if name not in profiles:
        raise ConfigError(f"unknown profile {name!r}; {path} defines: {', '.join(sorted(profiles))}")
    raw = _deep_merge(doc.get("defaults") or {}, profiles[name] or {})
    raw = _deep_merge(raw, _env_overrides(env))
    raw.pop("profile", None)
    if data_root is not None:
        raw["data_root"] = str(data_root)
    elif env.get("GRIDLAKE_DATA"):
        raw["data_root"] = env["GRIDLAKE_DATA"]
    if env.get("GRIDLAKE_LAKE_ROOT"):
        raw["lake_root"] = env["GRIDLAKE_LAKE_ROOT"]
    raw.setdefault("data_root", "./data")
    root = str(raw["data_root"])
    if "://" not in root:
        raw["data_root"] = str(Path(root).expanduser().resolve())
    raw["profile"] = name
    return _build(Settings, raw, f"profile {name}")
