"""The embedded Airflow of one gridlake deployment, and what the DAG tasks call at run time.

* :func:`airflow_environment` builds the process environment every ``airflow`` command
  of a deployment runs with: ``AIRFLOW_HOME`` under the data root, the repo's ``dags/``,
  a SQLite metadata database, LocalExecutor (Airflow 3 has no SequentialExecutor),
  the simple auth manager with a generated admin password, and the gridlake/Spark variables.
* :func:`spark_submit_command` / :func:`run_spark_job` run a night's stages as a
  ``spark-submit jobs/submit.py`` application, streaming its output into the task log.
* :func:`failure_record` / :func:`write_alert_file` are what the alert notifiers of
  :mod:`gridlake.alerts` (the DAGs' ``on_failure_callback`` and deadline callbacks) say and keep.

Nothing here imports Airflow or pyspark at module level: the DAG files import it at parse time.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gridlake.config import REPO_ROOT, Settings, load_settings
from gridlake.errors import GridlakeError
from gridlake.permissions import SERVICE_UMASK
from gridlake.runid import run_id_file_name, validate_run_id
from gridlake.sanitise import describe_exception, sanitise_text

log = logging.getLogger(__name__)

DAGS_FOLDER = REPO_ROOT / "dags"
SUBMIT_APP = REPO_ROOT / "jobs" / "submit.py"
ADMIN_USER = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
SPARK_POOL = "gridlake_spark"
ERROR_MARKER = "GRIDLAKE-ERROR:"

# Airflow variables of the caller that must not leak into the embedded instance.
_FOREIGN_PREFIXES = ("AIRFLOW__", "AIRFLOW_HOME", "AIRFLOW_CONFIG")


# --- the environment -----------------------------------------------------------------
def venv_bin() -> Path:
    """The bin folder of the Python running gridlake (airflow and spark-submit live there)."""
    return Path(sys.executable).parent


def _secret(home: Path, name: str, nbytes: int = 32) -> str:
    """A random secret kept in ``home/name`` so every component of the instance shares it."""
    path = home / name
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(nbytes))
    return path.read_text(encoding="utf-8").strip()


def ensure_admin_password(settings: Settings) -> Path:
    """Create (once) the simple auth manager's password file with a random admin password."""
    home = settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    path = home / PASSWORDS_FILE
    current: dict[str, str] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text(encoding="utf-8") or "{}")
        except json.JSONDecodeError:
            current = {}
    if ADMIN_USER not in current:
        current[ADMIN_USER] = secrets.token_urlsafe(12)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(current) + "\n")
    return path


def airflow_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every ``airflow`` process of this deployment (see module doc)."""
    from gridlake.spark import find_java_home

    base = dict(os.environ if base is None else base)
    env = {k: v for k, v in base.items() if not k.startswith(_FOREIGN_PREFIXES)}
    home = settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    af = settings.airflow
    bin_dir = str(venv_bin())
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(af.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(af.parallelism),
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": settings.timezone,
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / PASSWORDS_FILE),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": (
            "True" if base.get("GRIDLAKE_AIRFLOW_ALL_ADMINS", "").lower() in ("1", "true") else "False"
        ),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{af.api_host}:{af.api_port}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(home),
        "AIRFLOW__API__HOST": af.api_host,
        "AIRFLOW__API__PORT": str(af.api_port),
        "AIRFLOW__API__BASE_URL": f"http://{af.api_host}:{af.api_port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret(home, ".jwt_secret"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "GRIDLAKE_DATA": str(settings.data),
        "GRIDLAKE_PROFILE": settings.profile,
        "PATH": os.pathsep.join([bin_dir] + [p for p in base.get("PATH", "").split(os.pathsep) if p and p != bin_dir]),
        "JAVA_HOME": find_java_home(),
        "SPARK_LOCAL_IP": base.get("SPARK_LOCAL_IP", "127.0.0.1"),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT)] + ([base["PYTHONPATH"]] if base.get("PYTHONPATH") else [])),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    if settings.lake_root:
        env["GRIDLAKE_LAKE_ROOT"] = settings.lake_root
    return env


def _fernet_key(home: Path) -> str:
    """A Fernet key (urlsafe base64 of 32 bytes) kept in AIRFLOW_HOME."""
    import base64

    path = home / ".fernet_key"
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    return path.read_text(encoding="utf-8").strip()


def airflow_cli(settings: Settings, *args: str, env: Mapping[str, str] | None = None,
                capture: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``airflow <args>`` of this deployment; raise GridlakeError with its last lines when it fails."""
    env = dict(env or airflow_environment(settings))
    exe = str(venv_bin() / "airflow")
    proc = subprocess.run([exe, *args], env=env, cwd=str(REPO_ROOT), text=True,
                          capture_output=capture, check=False)
    if check and proc.returncode != 0:
        tail = "\n".join(((proc.stdout or "") + (proc.stderr or "")).splitlines()[-15:])
        raise GridlakeError(f"`airflow {' '.join(args)}` failed (exit {proc.returncode}). {tail}")
    return proc


def prepare_airflow(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``airflow db migrate`` plus the Spark pool (1 slot locally: one JVM at a time on 2 cores)."""
    env = dict(env or airflow_environment(settings))
    ensure_admin_password(settings)
    airflow_cli(settings, "db", "migrate", env=env, capture=True)
    slots = "1" if settings.spark.master.startswith("local") else str(max(1, settings.airflow.parallelism))
    airflow_cli(settings, "pools", "set", SPARK_POOL, slots, "Spark applications (spark-submit)", env=env,
                capture=True)
    return env


def cmd_airflow_ui(args: argparse.Namespace) -> int:
    """``gridlake airflow-ui``: migrate the metadata DB and run ``airflow standalone`` on 127.0.0.1."""
    from rich.console import Console

    console = Console(stderr=True)
    settings = load_settings(args.profile, args.data)
    env = prepare_airflow(settings)
    pw_file = settings.airflow_home / PASSWORDS_FILE
    url = f"http://{settings.airflow.api_host}:{settings.airflow.api_port}"
    console.print(f"[bold]Airflow UI[/] {url}  user [bold]{ADMIN_USER}[/], password in {pw_file}")
    console.print(f"AIRFLOW_HOME={settings.airflow_home}  dags: {DAGS_FOLDER}  (Ctrl-C stops every component)")
    proc = subprocess.Popen([str(venv_bin() / "airflow"), "standalone"], env=env, cwd=str(REPO_ROOT))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 130


# --- the night of a DAG run ----------------------------------------------------------
def _field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: a deadline callback gets the DAG run as a dict, a task callback as an object."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def night_of(context: Mapping[str, Any], timezone: str = "Asia/Shanghai") -> dt.date:
    """The delivery night a DAG run processes.

    In order: the ``date`` param (a manual run), the run's partition key (``YYYY-MM-DD``: the
    ingestion DAGs' ``CronPartitionTimetable`` and the nightly DAG's partitioned Asset trigger),
    else the logical date (or, without one, the run-after time) in ``timezone``.
    """
    params = context.get("params") or {}
    if params.get("date"):
        return dt.date.fromisoformat(str(params["date"]))
    dag_run = context.get("dag_run")
    key = context.get("partition_key") or _field(dag_run, "partition_key")
    if key:
        try:
            return dt.date.fromisoformat(str(key)[:10])
        except ValueError:
            raise GridlakeError(f"partition key {str(key)[:40]!r} is not a night (YYYY-MM-DD)") from None
    when = context.get("logical_date") or _field(dag_run, "logical_date") or _field(dag_run, "run_after")
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    if when is None:
        raise GridlakeError("a DAG run without partition key or logical date needs the `date` param (YYYY-MM-DD)")
    return when.astimezone(ZoneInfo(timezone)).date()


def gridlake_run_id(dag_id: str, night: dt.date) -> str:
    """One manifest per DAG and night: reruns and retries of a night add attempts to it."""
    return f"{dag_id}__{night.isoformat()}"


# --- spark-submit ----------------------------------------------------------------------
def spark_submit_command(settings: Settings, night: dt.date, stages: Iterable[str], run_id: str,
                         sources: Iterable[str] | None = None) -> list[str]:
    """``spark-submit`` of ``jobs/submit.py`` with every Spark property of the profile."""
    validate_run_id(run_id)
    from gridlake.spark import spark_conf

    conf = spark_conf(settings, app_name=f"gridlake-{'-'.join(stages)}")
    conf.setdefault("spark.log.level", settings.spark.log_level)  # quiet from the first line of the JVM
    cmd = [str(venv_bin() / "spark-submit"), "--master", conf.pop("spark.master"),
           "--driver-memory", conf.pop("spark.driver.memory"), "--name", conf.pop("spark.app.name")]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(SUBMIT_APP), "--date", night.isoformat(), "--stages", ",".join(stages), "--run-id", run_id]
    if sources:
        cmd += ["--sources", ",".join(sources)]
    return cmd


def spark_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a spark-submit child: Java, the venv's Python, the deployment's data root."""
    from gridlake.spark import find_java_home

    env = dict(os.environ if base is None else base)
    env.update({
        "JAVA_HOME": find_java_home(),
        "SPARK_LOCAL_IP": env.get("SPARK_LOCAL_IP", "127.0.0.1"),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "GRIDLAKE_DATA": str(settings.data),
        "GRIDLAKE_PROFILE": settings.profile,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
        "PATH": os.pathsep.join([str(venv_bin()), env.get("PATH", "")]),
    })
    env.pop("SPARK_HOME", None)
    return env


_NOISE = re.compile(r"WARN NativeCodeLoader|Using Spark's default log4j|Setting default log level|"
                    r"To adjust logging level|WARN Utils: Service 'SparkUI'")


def last_error_line(lines: Iterable[str]) -> str:
    """The job's own error message: the ``GRIDLAKE-ERROR:`` line, else the last exception-looking line."""
    lines = [ln.rstrip() for ln in lines if ln.strip()]
    for line in reversed(lines):
        if ERROR_MARKER in line:
            return line.split(ERROR_MARKER, 1)[1].strip()
    for line in reversed(lines):
        if re.search(r"(Error|Exception)\b", line) and not line.lstrip().startswith("at "):
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def run_streaming(cmd: list[str], env: Mapping[str, str], logger: logging.Logger | None = None,
                  cwd: str | None = None) -> list[str]:
    """Run ``cmd``, logging each output line as it comes; raise RuntimeError with the last error line."""
    logger = logger or log
    tail: collections.deque[str] = collections.deque(maxlen=400)
    # umask 077: the spark-submit JVM writes for the service user only, whatever the worker's umask
    proc = subprocess.Popen(cmd, env=dict(env), cwd=cwd or str(REPO_ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace",
                            umask=SERVICE_UMASK)
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = sanitise_text(raw.rstrip("\n"), 20_000) + "\n"  # JVM log lines quote values too
        tail.append(line)
        if not _NOISE.search(line):
            logger.info("%s", line.rstrip())
    rc = proc.wait()
    if rc != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} exited with {rc}: {sanitise_text(last_error_line(tail))}")
    return list(tail)


def run_spark_job(night: dt.date, stages: Iterable[str], run_id: str, sources: Iterable[str] | None = None,
                  settings: Settings | None = None, logger: logging.Logger | None = None) -> str:
    """Run ``stages`` of ``night`` through spark-submit (the task body of every Spark task)."""
    settings = settings or load_settings()
    stages = list(stages)
    cmd = spark_submit_command(settings, night, stages, run_id, sources)
    (logger or log).info("spark-submit %s for %s (run %s, master %s)", ",".join(stages), night, run_id,
                         settings.spark.master)
    run_streaming(cmd, spark_environment(settings), logger)
    return run_id


# --- the quality gate --------------------------------------------------------------------
def not_yet_ingested(settings: Settings, files: Iterable[Path]) -> list[Path]:
    """The ``files`` whose content (SHA-256) the bronze ingestion log has not recorded yet.

    Read with ``deltalake`` (no JVM), so an ingestion DAG whose files are all in bronze already -
    the nightly DAG's catch-up took them, or a rerun - skips without starting Spark. With a lake
    on object storage every file counts as new (bronze itself then skips what it knows).
    """
    from jobs.bronze.readers import sha256_file  # the hash the ingestion log is keyed by

    files = list(files)
    path = settings.table_path("bronze", "_ingestion_log")
    if "://" in path or not Path(path, "_delta_log").is_dir():
        return files
    from deltalake import DeltaTable

    known = set(DeltaTable(path).to_pyarrow_table(columns=["file_sha256"]).column("file_sha256").to_pylist())

    def new(f: Path) -> bool:
        try:
            return sha256_file(f) not in known
        except OSError:  # gone or unreadable: bronze records it with its reason
            return True

    return [f for f in files if new(f)]


def manifest_doc(settings: Settings, run_id: str) -> dict[str, Any]:
    """The JSON manifest of ``run_id`` (empty dict when none was written)."""
    from gridlake.manifest import runs_dir

    safe = run_id.replace("/", "_").replace(":", "_")
    path = runs_dir(settings) / f"{safe}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _blocking(result: Any) -> bool:
    """Does one recorded quality result stop publication (an error-level failure)?"""
    if not isinstance(result, dict):
        return False
    if result.get("blocking") or result.get("published") is False:
        return True
    if isinstance(result.get("failed_errors"), int) and result["failed_errors"] > 0:
        return True
    errors = result.get("errors", 0)
    if isinstance(errors, (int, float)) and errors > 0:
        return True
    if isinstance(errors, list) and errors:
        return True
    level = str(result.get("level", result.get("severity", "error"))).lower()
    return result.get("success") is False and level == "error"


def check_quality_gate(settings: Settings, run_id: str, layer: str = "silver",
                       stage: str = "silver") -> dict[str, Any]:
    """Write–audit–publish: refuse to go on unless ``stage`` succeeded and no ``layer`` suite failed at error level."""
    from gridlake.errors import QualityGateError

    doc = manifest_doc(settings, run_id)
    status = (doc.get("stages", {}).get(stage) or {}).get("status")
    if status != "success":
        raise QualityGateError(f"quality gate: stage {stage} of run {run_id} is {status or 'missing'}")
    results = {k: v for k, v in (doc.get("quality") or {}).items() if k.startswith(f"{layer}.")}
    failed = sorted(k for k, v in results.items() if _blocking(v))
    if failed:
        raise QualityGateError(f"quality gate: error-level expectations failed for {', '.join(failed)}")
    return {"suites": len(results), "failed": 0}


# --- alerts ---------------------------------------------------------------------------------
def failure_record(context: Mapping[str, Any]) -> dict[str, Any]:
    """What an alert says: DAG, run, task, night, try, the error line and where the log is."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    try:
        night = night_of(context).isoformat()
    except Exception:  # noqa: BLE001 - an alert must never fail on a missing date
        night = None
    dag_id = _field(dag_run, "dag_id") or getattr(ti, "dag_id", None)
    return {
        "dag_id": dag_id,
        "airflow_run_id": _field(dag_run, "run_id") or context.get("run_id"),
        "run_id": gridlake_run_id(dag_id, dt.date.fromisoformat(night)) if dag_id and night else None,
        "night": night,
        "task_id": getattr(ti, "task_id", None),
        "try_number": getattr(ti, "try_number", None),
        "error": describe_exception(exc) if exc is not None else sanitise_text(context.get("reason") or ""),
        "log_url": getattr(ti, "log_url", None),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_alert_file(record: dict[str, Any], settings: Settings) -> Path:
    """Add the record to ``<data>/alerts/<run_id>.json`` (one file per run; the alert file notifier's body)."""
    alerts = settings.data / "alerts"
    alerts.mkdir(parents=True, exist_ok=True)
    record = {**record, "error": sanitise_text(record.get("error") or "")}  # whatever built the record
    name = run_id_file_name(record.get("run_id") or record.get("airflow_run_id"))
    path = alerts / f"{name}.json"
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"run_id": record.get("run_id"),
                                                                               "failures": []}
    doc["failures"].append(record)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def which_airflow() -> str | None:
    """Path of the venv's ``airflow`` executable (None when Airflow is not installed)."""
    exe = venv_bin() / "airflow"
    return str(exe) if exe.exists() else shutil.which("airflow")


# --- DAG building blocks (airflow imported lazily: the DAG files call these at parse time) -----
TIMEZONE = "Asia/Shanghai"
# Ingestion at 01:00 (Shanghai) on D+1 for the delivery night D, as a partitioned run whose partition
# key is D; the collision night runs when every source's bronze Asset has the partition D. The
# maintenance DAG keeps an interval timetable (logical date = the day).
INGEST_CRON = "0 1 * * *"
NIGHTLY_CRON = "0 2 * * *"  # only the docs' "due by" time of the nightly DAG: it is Asset-triggered
NIGHT_KEY_FORMAT = "%Y-%m-%d"
GOLD_TABLES = ("house_resolution", "house_profile", "discrepancies", "followups", "grid_metrics")


def start_date() -> Any:
    """First schedulable night of every gridlake DAG (catchup is off)."""
    import pendulum

    return pendulum.datetime(2024, 1, 1, tz=TIMEZONE)


def timetable(cron: str) -> Any:
    """A daily interval timetable in Shanghai time: logical date = the delivery day."""
    from airflow.sdk import CronDataIntervalTimetable

    return CronDataIntervalTimetable(cron, timezone=TIMEZONE)


def ingest_timetable() -> Any:
    """The ingestion DAGs' schedule: 01:00 Shanghai, partition key = the night before (``YYYY-MM-DD``).

    ``run_offset=-1`` makes the partition date one cron interval before the run, and the key is
    formatted in the timetable's timezone, so the run at 01:00 on 11-02 ingests the night 11-01.
    Partitioned and periodic: ``airflow backfill create`` makes one run per night, in order.
    """
    from airflow.sdk import CronPartitionTimetable

    return CronPartitionTimetable(INGEST_CRON, timezone=TIMEZONE, run_offset=-1, key_format=NIGHT_KEY_FORMAT)


def nightly_timetable() -> Any:
    """The nightly DAG's schedule: a run per night once every source's ``bronze.<source>`` has that partition."""
    from airflow.sdk import AssetAll, PartitionedAssetTimetable

    return PartitionedAssetTimetable(assets=AssetAll(*(table_asset("bronze", s) for s in source_names())))


def check_bronze_complete(settings: Settings, night: dt.date, sources: Iterable[str]) -> dict[str, Any]:
    """Is every source of ``night`` in bronze? Each source is ``in_bronze`` or ``absent`` (no delivery).

    Reads the landing folders and the ingestion log (``deltalake``, no JVM); raises
    :class:`GridlakeError` naming the sources with delivered files not yet in bronze (late).
    """
    from gridlake.sources import get_source
    from jobs.bronze.landing import discover  # the bronze stage's own listing: sub-folders, no links

    status: dict[str, str] = {}
    late: dict[str, int] = {}
    for source in sources:
        found, _ = discover(settings.landing, {source: get_source(source)}, night)
        files = [f.path for f in found if not f.skip]
        if not files:
            status[source] = "absent"
            continue
        missing = not_yet_ingested(settings, files)
        if missing:
            late[source] = len(missing)
        status[source] = "late" if missing else "in_bronze"
    if late:
        raise GridlakeError("bronze incomplete for the night " + night.isoformat() + ": "
                            + ", ".join(f"{s} ({n} file(s) not ingested)" for s, n in sorted(late.items())))
    return {"night": night.isoformat(), "sources": status}


def default_args() -> dict[str, Any]:
    """Task defaults: >= 2 retries with exponential backoff, a timeout, the failure notifiers."""
    from gridlake.alerts import failure_notifiers  # it imports this module

    return {
        "owner": "gridlake",
        "retries": max(2, int(os.environ.get("GRIDLAKE_AIRFLOW_RETRIES", "2"))),
        "retry_delay": dt.timedelta(seconds=int(os.environ.get("GRIDLAKE_AIRFLOW_RETRY_DELAY", "120"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": dt.timedelta(hours=4),
        "on_failure_callback": failure_notifiers(),
    }


def date_params() -> dict[str, Any]:
    """The ``date`` param: process that night instead of the logical date."""
    from airflow.sdk import Param

    return {"date": Param(None, type=["null", "string"], title="night (YYYY-MM-DD)",
                          description="Process this delivery night instead of the logical date (Asia/Shanghai).")}


_SETTINGS: dict[str, Settings] = {}


def dag_settings() -> Settings:
    """The deployment's settings for the DAG files (profile and data root from the environment)."""
    if "s" not in _SETTINGS:
        _SETTINGS["s"] = load_settings()
    return _SETTINGS["s"]


def source_names() -> tuple[str, ...]:
    """Source names of conf/sources.yaml, in file order."""
    from gridlake.sources import load_sources

    return tuple(load_sources())


def _uri(location: str) -> str:
    return location if "://" in location else f"file://{location}"


def table_asset(layer: str, table: str) -> Any:
    """The Asset of the Delta table ``layer.table``."""
    from airflow.sdk import Asset

    return Asset(name=f"{layer}.{table}", uri=_uri(dag_settings().table_path(layer, table)), group="gridlake")


def folder_asset(name: str, path: str) -> Any:
    """The Asset of an output folder (exports, reports, Data Docs)."""
    from airflow.sdk import Asset

    return Asset(name=name, uri=_uri(path), group="gridlake")


def spark_stage(dag_id: str, stages: list[str], sources: list[str] | None = None) -> str:
    """Task body: run ``stages`` of this run's night through spark-submit; return the gridlake run id."""
    from airflow.sdk import get_current_context

    night = night_of(get_current_context(), TIMEZONE)
    run_id = gridlake_run_id(dag_id, night)
    run_spark_job(night, stages, run_id, sources=sources, settings=dag_settings(), logger=log)
    return run_id
