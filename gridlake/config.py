"""Typed configuration loaded from ``conf/gridlake.yaml``.

One file holds every profile (``local``, ``cluster``); a profile is chosen by
``--profile`` or ``GRIDLAKE_PROFILE``. Any value can be overridden by an
environment variable ``GRIDLAKE_<SECTION>__<KEY>`` (for example
``GRIDLAKE_SPARK__MASTER=spark://host:7077``); the data root also by
``--data`` or ``GRIDLAKE_DATA``. An unknown key or a value of the wrong type
stops with a :class:`ConfigError` that names the file and the key.

The sections are pydantic models (:class:`gridlake.config_models.ConfigModel`). The env overrides are
merged by the small :func:`_env_overrides` rather than pydantic-settings: :func:`load_settings` takes the
environment as an explicit mapping (tests and the DAGs pass their own), the precedence has four layers
(file defaults < profile < env < ``--data``) where pydantic-settings puts init values above env, and
``GRIDLAKE_DATA``/``GRIDLAKE_LAKE_ROOT``/``GRIDLAKE_PROFILE`` are not ``<SECTION>__<KEY>`` names. The
models themselves do the coercion (``"64"`` -> 64, ``"false"`` -> False) and the checks.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator

from gridlake.config_models import ConfigError, ConfigModel, config_error

__all__ = ["CONF_DIR", "LIFECYCLE_LAYERS", "REPO_ROOT", "AirflowConfig", "ConfigError", "PrivacyConfig",
           "RetentionConfig", "Settings", "SparkConfig", "StorageConfig", "ValidationConfig", "load_settings"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = Path(os.environ.get("GRIDLAKE_CONF_DIR", REPO_ROOT / "conf"))


class _Section(ConfigModel):
    """A section of gridlake.yaml: numbers given for a text value (``vacuum_hours: {gold: 720}``) are text."""

    model_config = ConfigDict(coerce_numbers_to_str=True)


class SparkConfig(_Section):
    """How the Spark session is built."""

    master: str = Field("local[2]", min_length=1)
    driver_memory: str = Field("6g", pattern=r"^[0-9]+[kmgtKMGT]$")
    executor_memory: str = Field("2g", pattern=r"^[0-9]+[kmgtKMGT]$")
    executor_cores: int = 1
    shuffle_partitions: int = Field(4, ge=1)
    default_parallelism: int = Field(4, ge=1)
    # Partitions of Delta's log-replay job (Delta's default, 50, is for clusters; on two local
    # cores every cold table read pays for 50 tiny tasks).
    delta_snapshot_partitions: int = Field(4, ge=1)
    # Most tasks of a parallel file listing (Spark's spark.sql.sources.parallelPartitionDiscovery.parallelism,
    # which Delta's VACUUM uses for its listing job: Spark's default, 10,000, makes every VACUUM of a small
    # table on two local cores run thousands of empty tasks).
    listing_parallelism: int = Field(8, ge=1)
    # Independent units of one stage (silver: its sources; matching: the houses' publication beside person
    # linkage) submitted from this many driver threads at once, so one unit's planning, commits or pandas work
    # overlap another's Spark jobs; 1 runs them one after another.
    stage_threads: int = Field(1, ge=1, le=16)
    # ... but never two units of more than this many new bronze rows at once (each caches its batch); the
    # smaller units run beside such a unit
    stage_threads_max_rows: int = Field(100_000, ge=0)
    # Compile each query to Java (Spark's whole-stage and expression code generation). Off, expressions are
    # interpreted: on a community night (a few thousand rows) that saves compiling and JIT-warming code that
    # runs once (a community night 11-24% faster, docs/speed.md); a district's gold stage alone took as long either
    # way, and silver and matching at scale were not measured, so it stays on. `gridlake demo` turns it off for its
    # tiny and community districts.
    codegen: bool = True
    # The driver JVM's garbage collector: "jvm" leaves the JVM's own choice (G1 on this machine), the others
    # add -XX:+Use<Name>GC. "parallel" is faster on a small night (its CPU does not compete with the work on
    # two cores); on a district night with it the driver died in gold, so only `gridlake demo`'s small
    # districts take it (docs/speed.md).
    driver_gc: Literal["jvm", "parallel", "g1", "serial"] = "jvm"
    # When the driver JVM compiles a method again with its optimising compiler (C2). "jvm" keeps the JVM's
    # thresholds; "late_c2" raises the C2 thresholds tenfold, so only the hottest code is optimised (C1's code
    # runs until then). In a district's gold stage run alone, in a JVM of its own, C2 took 172 s of compile time
    # (38% of the JVM's CPU samples) and "late_c2" made the stage 0.92x as long; a whole district night, whose
    # stages share one JVM, gained nothing from it (its first night 1.06x, docs/speed.md), so "jvm" ships.
    driver_jit: Literal["jvm", "late_c2"] = "jvm"
    # Hadoop's checksummed local file system (file:// paths): it writes a hidden .crc file beside every file,
    # renames it with the file, and verifies it on every read. Off, Hadoop's raw local file system writes the
    # file alone (a tiny Delta append about 15% faster, docs/speed.md). Delta's own checksum of each commit
    # (_delta_log/<version>.crc) is kept either way; a lake on object storage is not affected.
    local_checksum_files: bool = False
    # Compress the columnar cache of persisted frames (Spark's spark.sql.inMemoryColumnarStorage.compressed,
    # on by Spark's default). The frames a large night keeps (gold's shared views, silver's batches, the
    # records house resolution reads again) are cached (gold's on the local disk, the others in memory and,
    # when it is full, on disk) and read back within the stage;
    # encoding every column of every batch cost more CPU on two cores than the bytes saved (a district's
    # incremental gold 0.95-0.97x as long uncompressed, its first silver night 0.91x; docs/speed.md).
    # Small frames are local checkpoints, which this does not touch.
    cache_compressed: bool = False
    ui_enabled: bool = False
    log_level: str = "ERROR"
    extra: dict[str, str] = Field(default_factory=dict)


class AirflowConfig(_Section):
    """The embedded Airflow used by the demo and the tests."""

    home: str = ""  # default: <data_root>/airflow
    parallelism: int = 2
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    spark_submit: bool = True


class ValidationConfig(_Section):
    """How Great Expectations validates a table before it is published (``gridlake/quality``)."""

    # A frame of at most this many rows is validated by GX's pandas engine in the driver (only the columns
    # its suite reads are collected), when its suite means the same there; larger ones on Spark. 0: always
    # Spark. See gridlake/quality/engines.py.
    pandas_max_rows: int = Field(100_000, ge=0)


class WorkbooksConfig(_Section):
    """How the exports stage builds the officers' workbooks (``jobs/exports``)."""

    # openpyxl builds each grid's workbook in Python, one core's work while the JVM waits: from this many
    # grids on in a night, up to ``processes`` worker processes build them (1: always in the stage's own
    # process). Below it a night's lists are too few to pay for starting the workers.
    processes: int = Field(2, ge=1, le=16)
    processes_min_grids: int = Field(100, ge=0)


class PrivacyConfig(_Section):
    """Pseudonymisation key handling (DESIGN.md section 6)."""

    key_env: str = "GRIDLAKE_PSEUDONYM_KEY"
    # Only the demo profile may create its own local key file; others fail closed.
    allow_local_key: bool = False
    local_key_file: str = ""  # default: <data_root>/.gridlake-key


class StorageConfig(_Section):
    """Object storage of a lake on ``s3a://`` (ignored for a local lake).

    Only where and how to connect lives here; the credentials never do: they are read at session start
    from the environment variables *named* here (default the usual AWS ones), or, when those are unset,
    from S3A's own provider chain (instance profile, web identity).
    """

    endpoint: str = Field("", pattern=r"^(https?://[A-Za-z0-9.\-\[\]:]+(/[^@\s]*)?)?$")  # no user:pass@ in it
    region: str = ""                    # e.g. cn-north-1; empty: the SDK's default resolution
    path_style_access: bool = False     # true for most S3-compatible servers (MinIO, Ceph RGW, moto)
    access_key_env: str = Field("AWS_ACCESS_KEY_ID", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    secret_key_env: str = Field("AWS_SECRET_ACCESS_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    session_token_env: str = Field("AWS_SESSION_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


LIFECYCLE_LAYERS = ("bronze", "silver", "gold", "quality", "_runs")


class RetentionConfig(_Section):
    """How long data lives per layer (``gridlake maintain``, docs/reliability.md "For auditors")."""

    bronze_days: int = Field(400, ge=1)          # raw delivered rows older than this are deleted (counts stay in the logs)
    silver_history_days: int = Field(400, ge=1)  # closed SCD2 versions (valid_to) older than this are deleted
    quarantine_raw_days: int = Field(90, ge=1)   # quarantined rows keep reason codes; raw line and key dropped after this
    time_travel_days: int = Field(30, ge=1)      # every night started within this many days stays reproducible (as-of)
    # VACUUM retention (hours) per layer: files removed from a table longer ago than this are deleted.
    vacuum_hours: dict[str, str] = Field(default_factory=lambda: {
        "bronze": "168", "silver": "168", "gold": "720", "quality": "168", "_runs": "720"})
    optimize_min_files: int = Field(8, ge=1)     # OPTIMIZE a table with at least this many small files
    small_file_mb: int = Field(32, ge=1)         # a data file below this size is small

    @field_validator("vacuum_hours")
    @classmethod
    def _known_layers_whole_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for layer, hours in value.items():
            if layer not in LIFECYCLE_LAYERS:
                raise ValueError(f"unknown layer {layer}; allowed: {', '.join(LIFECYCLE_LAYERS)}")
            if not hours.isdigit() or int(hours) < 1:
                raise ValueError(f"{layer}: expected a whole number of hours >= 1")
        return value

    def vacuum_hours_for(self, layer: str) -> int:
        """VACUUM retention of ``layer`` in hours (the largest configured one for an unlisted layer)."""
        if layer in self.vacuum_hours:
            return int(self.vacuum_hours[layer])
        return max(int(h) for h in self.vacuum_hours.values()) if self.vacuum_hours else 168


class Settings(_Section):
    """A resolved profile: where data lives and how engines run."""

    profile: str
    data_root: str
    lake_root: str = ""  # default: <data_root>/lake; may be s3a://, hdfs://, abfss://
    spark: SparkConfig = Field(default_factory=SparkConfig)
    airflow: AirflowConfig = Field(default_factory=AirflowConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    workbooks: WorkbooksConfig = Field(default_factory=WorkbooksConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
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


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


#: sections whose keys are names of another system, case-sensitive (Spark properties): kept as written
_VERBATIM_KEYS = (("spark", "extra"),)


def _env_overrides(env: typing.Mapping[str, str]) -> dict[str, Any]:
    """``GRIDLAKE_SPARK__MASTER=x`` -> ``{"spark": {"master": "x"}}``.

    Names are lower-cased, except a key below ``spark.extra``, which is a Spark property (case-sensitive):
    ``GRIDLAKE_SPARK__EXTRA__spark.eventLog.enabled=true`` sets ``spark.eventLog.enabled``."""
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith("GRIDLAKE_") or "__" not in key:
            continue
        raw = key[len("GRIDLAKE_") :].split("__")
        parts = [p.lower() for p in raw]
        for prefix in _VERBATIM_KEYS:
            if tuple(parts[: len(prefix)]) == prefix and len(parts) > len(prefix):
                parts = [*prefix, *raw[len(prefix) :]]
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
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, f"{path} (profile {name}, env GRIDLAKE_*)") from None
