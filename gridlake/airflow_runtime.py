"""What the Airflow tasks of gridlake call at run time: the night of a run, spark-submit, the quality gate.

* :func:`night_of` / :func:`gridlake_run_id`: the delivery night of a DAG run (the ``date`` param, the
  partition key, the logical date) and the gridlake run id that depends on it only.
* :func:`spark_submit_command` / :func:`run_spark_job` run a night's stages in the stage server when one
  serves the data root (:mod:`gridlake.stage_server`: one warm Spark application), else as a
  ``spark-submit gridlake/submit.py`` application, streaming its output into the task log.
* :func:`not_yet_ingested`, :func:`check_quality_gate`: what a task checks without a JVM.
* :func:`failure_record` / :func:`write_alert_file`: what an alert says and keeps (no Airflow import, so
  the spark-submit driver and the privacy gate use them too); the notifiers are :mod:`gridlake.alerts`.

Nothing here imports Airflow or pyspark at module level: the DAG files import it at parse time.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
import re
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

SUBMIT_APP = REPO_ROOT / "gridlake" / "submit.py"
SPARK_POOL = "gridlake_spark"
ERROR_MARKER = "GRIDLAKE-ERROR:"
TIMEZONE = "Asia/Shanghai"
NIGHT_KEY_FORMAT = "%Y-%m-%d"


def venv_bin() -> Path:
    """The bin folder of the Python running gridlake (airflow and spark-submit live there)."""
    return Path(sys.executable).parent


def context_field(obj: Any, name: str) -> Any:
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
    key = context.get("partition_key") or context_field(dag_run, "partition_key")
    if key:
        try:
            return dt.date.fromisoformat(str(key)[:10])
        except ValueError:
            raise GridlakeError(f"partition key {str(key)[:40]!r} is not a night (YYYY-MM-DD)") from None
    when = context.get("logical_date") or context_field(dag_run, "logical_date") or context_field(dag_run, "run_after")
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    if when is None:
        raise GridlakeError("a DAG run without partition key or logical date needs the `date` param (YYYY-MM-DD)")
    return when.astimezone(ZoneInfo(timezone)).date()


def gridlake_run_id(dag_id: str, night: dt.date) -> str:
    """One manifest per DAG and night: reruns and retries of a night add attempts to it."""
    return f"{dag_id}__{night.isoformat()}"


def spark_submit_command(settings: Settings, night: dt.date, stages: Iterable[str], run_id: str,
                         sources: Iterable[str] | None = None) -> list[str]:
    """``spark-submit`` of ``gridlake/submit.py`` with every Spark property of the profile."""
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
    from gridlake.stage_client import run_stages

    if run_stages(settings, night, stages, run_id, sources, logger) is not None:  # a warm Spark application
        return run_id
    cmd = spark_submit_command(settings, night, stages, run_id, sources)
    (logger or log).info("spark-submit %s for %s (run %s, master %s)", ",".join(stages), night, run_id,
                         settings.spark.master)
    run_streaming(cmd, spark_environment(settings), logger)
    return run_id


def not_yet_ingested(settings: Settings, files: Iterable[Path]) -> list[Path]:
    """The ``files`` whose content (SHA-256) the bronze ingestion log has not recorded yet.

    Read with ``deltalake`` (no JVM), so an ingestion DAG whose files are all in bronze already -
    the nightly DAG's catch-up took them, or a rerun - skips without starting Spark. A lake on
    ``s3a://`` is read with the configured storage options; on another remote scheme every file
    counts as new (bronze itself then skips what it knows).
    """
    from gridlake.io import sha256_file  # the hash the ingestion log is keyed by
    from gridlake.storage import is_local, is_s3a, open_delta

    files = list(files)
    table = (open_delta(settings, settings.table_path("bronze", "_ingestion_log"))
             if is_local(settings) or is_s3a(settings) else None)
    if table is None:
        return files
    known = set(table.to_pyarrow_table(columns=["file_sha256"]).column("file_sha256").to_pylist())

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


# --- alerts: what a failure alert says and where it is kept (the notifiers are gridlake.alerts) ---
def failure_record(context: Mapping[str, Any]) -> dict[str, Any]:
    """What an alert says: DAG, run, task, night, try, the error line and where the log is."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    try:
        night = night_of(context).isoformat()
    except Exception:  # noqa: BLE001 - an alert must never fail on a missing date
        night = None
    dag_id = context_field(dag_run, "dag_id") or getattr(ti, "dag_id", None)
    return {
        "dag_id": dag_id,
        "airflow_run_id": context_field(dag_run, "run_id") or context.get("run_id"),
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
