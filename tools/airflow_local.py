"""The embedded Airflow of one gridlake deployment, for the demo and ``gridlake airflow-ui``.

:func:`airflow_environment` builds the process environment every ``airflow`` command of a
deployment runs with: ``AIRFLOW_HOME`` under the data root, the repo's ``dags/``, a SQLite metadata
database, LocalExecutor (Airflow 3 has no SequentialExecutor), the simple auth manager with a
generated admin password, and the gridlake/Spark variables. A production deployment brings its own
Airflow and only needs ``dags/`` and :mod:`gridlake.airflow_dags`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from gridlake.airflow_runtime import SPARK_POOL, venv_bin
from gridlake.config import REPO_ROOT, Settings, load_settings
from gridlake.errors import GridlakeError

log = logging.getLogger(__name__)

DAGS_FOLDER = REPO_ROOT / "dags"
ADMIN_USER = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


# Airflow variables of the caller that must not leak into the embedded instance.
_FOREIGN_PREFIXES = ("AIRFLOW__", "AIRFLOW_HOME", "AIRFLOW_CONFIG")


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


#: what the Spark pool is for (its description in Airflow)
SPARK_POOL_DESCRIPTION = "Spark applications (spark-submit)"


def spark_pool_slots(settings: Settings) -> int:
    """The Spark pool's slots: 1 on a local master (one JVM at a time on 2 cores), else the Airflow parallelism."""
    return 1 if settings.spark.master.startswith("local") else max(1, settings.airflow.parallelism)


def prepare_airflow(settings: Settings, env: Mapping[str, str] | None = None, migrate: bool = True) -> dict[str, str]:
    """``airflow db migrate`` plus the Spark pool (:func:`spark_pool_slots`); ``migrate=False``: the
    environment and admin password only, for a process that calls :func:`migrate_metadata` itself."""
    env = dict(env or airflow_environment(settings))
    ensure_admin_password(settings)
    if migrate:
        airflow_cli(settings, "db", "migrate", env=env, capture=True)
        airflow_cli(settings, "pools", "set", SPARK_POOL, str(spark_pool_slots(settings)), SPARK_POOL_DESCRIPTION,
                    env=env, capture=True)
    return env


def migrate_metadata(pool_slots: int) -> None:
    """What :func:`prepare_airflow` runs as two ``airflow`` commands, in this process (its environment from
    :func:`airflow_environment`): the metadata database migrated, the Spark pool set. The demo's Airflow
    process does this itself instead of waiting for two more processes to start and import Airflow."""
    from airflow.models.pool import Pool
    from airflow.utils import db
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    providers_configuration_loaded(db.upgradedb)()
    Pool.create_or_update_pool(SPARK_POOL, pool_slots, SPARK_POOL_DESCRIPTION, include_deferred=False)


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


def which_airflow() -> str | None:
    """Path of the venv's ``airflow`` executable (None when Airflow is not installed)."""
    exe = venv_bin() / "airflow"
    return str(exe) if exe.exists() else shutil.which("airflow")
