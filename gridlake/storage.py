"""Where the lake lives: a local folder or object storage (``s3a://``), and how each client reaches it.

Three clients touch the lake and each needs the same place and the same credentials:

- Spark (Delta): the S3A connector (``hadoop-aws`` matching pyspark's Hadoop, plus the AWS SDK v2
  modules it calls) on ``spark.jars``, the endpoint and path style as ``spark.hadoop.fs.s3a.*``
  properties (:func:`s3a_spark_conf`), and the credentials set on the session's Hadoop configuration
  after it started (:func:`apply_credentials`), so they never appear on a ``spark-submit`` command
  line, in a Spark property listing or in a log. The executors receive them with each task's
  serialised Hadoop configuration.
- ``deltalake`` (delta-rs, no JVM): the privacy gate's known-PII read of silver, row counts, the
  ingestion log check; :func:`deltalake_location` gives the URI and storage options.
- Hadoop's FileSystem through the session's JVM: listing the tables of a layer (:func:`list_tables`).

A lake on any other remote scheme (``hdfs://``, ``abfss://``) works through Spark as far as Spark's
configuration reaches; the JVM-free readers support ``s3a://`` only and say so
(:class:`StorageError`). File-level operations (lifecycle inventory, erasure's log purge, the
file-by-file privacy scan) call :func:`require_local`, which names the operation that cannot run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gridlake.errors import GridlakeError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from gridlake.config import Settings

LOG_DIR = "_delta_log"


class StorageError(GridlakeError):
    """The lake's storage cannot do what was asked (the message names the operation and the scheme)."""


def scheme(settings: Settings) -> str:
    """``""`` for a local lake, else the URI scheme of the lake root (``s3a``, ``hdfs``, ...)."""
    lake = settings.lake
    return urlsplit(lake).scheme.lower() if "://" in lake else ""


def is_local(settings: Settings) -> bool:
    """True when the lake is a folder of this machine."""
    return scheme(settings) == ""


def is_s3a(settings: Settings) -> bool:
    """True when the lake is on S3 (or an S3-compatible store) through the S3A connector."""
    return scheme(settings) == "s3a"


def require_local(settings: Settings, operation: str) -> None:
    """Raise :class:`StorageError` naming ``operation`` unless the lake is a local folder."""
    if not is_local(settings):
        raise StorageError(
            f"{operation} works on a local lake only (file by file); the lake is on {scheme(settings)}:// "
            f"({bucket_of(settings)}). Run it where the lake is a local path, or use the Delta-level "
            "commands, which work on object storage")


def bucket_of(settings: Settings) -> str:
    """``scheme://bucket`` of a remote lake (the part safe to name in a message), ``""`` for a local one."""
    if is_local(settings):
        return ""
    parts = urlsplit(settings.lake)
    return f"{parts.scheme}://{parts.hostname or ''}"


# --- Spark: properties and credentials ------------------------------------------------------------
def s3a_spark_conf(settings: Settings) -> dict[str, str]:
    """The non-secret ``spark.hadoop.fs.s3a.*`` properties of the configured storage (empty unless s3a)."""
    if not is_s3a(settings):
        return {}
    st = settings.storage
    conf = {"spark.hadoop.fs.s3a.path.style.access": str(st.path_style_access).lower()}
    if st.endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = st.endpoint
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(st.endpoint.startswith("https://")).lower()
    if st.region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = st.region
    return conf


def credentials(settings: Settings, env: dict[str, str] | None = None) -> dict[str, str]:
    """``{"access_key", "secret_key"[, "session_token"]}`` from the environment variables the config names.

    Empty when neither key variable is set (S3A then uses its own provider chain); a
    :class:`StorageError` naming the *variable* (never its value) when only one of the two is set.
    """
    env = dict(os.environ) if env is None else env
    st = settings.storage
    access, secret = env.get(st.access_key_env, ""), env.get(st.secret_key_env, "")
    if not access and not secret:
        return {}
    if not access or not secret:
        missing = st.access_key_env if not access else st.secret_key_env
        raise StorageError(f"storage credentials incomplete: {missing} is not set (storage.access_key_env / "
                           "storage.secret_key_env name the variables holding the S3 keys)")
    out = {"access_key": access, "secret_key": secret}
    if env.get(st.session_token_env):
        out["session_token"] = env[st.session_token_env]
    return out


def apply_credentials(spark: SparkSession, settings: Settings) -> None:
    """Put the S3 credentials on the session's Hadoop configuration (driver and, through tasks, executors)."""
    if not is_s3a(settings):
        return
    creds = credentials(settings)
    if not creds:
        return
    hconf = spark.sparkContext._jsc.hadoopConfiguration()  # noqa: SLF001 - the only handle on it
    hconf.set("fs.s3a.access.key", creds["access_key"])
    hconf.set("fs.s3a.secret.key", creds["secret_key"])
    if "session_token" in creds:
        hconf.set("fs.s3a.session.token", creds["session_token"])
        hconf.set("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider")


# --- deltalake (no JVM) ---------------------------------------------------------------------------
def deltalake_location(settings: Settings, path: str,
                       env: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """``(uri, storage_options)`` for opening the Delta table at ``path`` with ``deltalake``.

    The credentials come from ``env`` (default the process environment), under the names the
    configuration gives."""
    if "://" not in path:
        return path, {}
    parts = urlsplit(path)
    if parts.scheme.lower() != "s3a":
        raise StorageError(f"reading {parts.scheme}:// tables without Spark is not supported (s3a:// only)")
    st = settings.storage
    opts: dict[str, str] = {"AWS_REGION": st.region or "us-east-1"}
    if st.endpoint:
        opts["AWS_ENDPOINT_URL"] = st.endpoint
        if st.endpoint.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    if st.path_style_access:
        opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    creds = credentials(settings, env)
    if creds:
        opts["AWS_ACCESS_KEY_ID"] = creds["access_key"]
        opts["AWS_SECRET_ACCESS_KEY"] = creds["secret_key"]
        if "session_token" in creds:
            opts["AWS_SESSION_TOKEN"] = creds["session_token"]
    return "s3://" + path.split("://", 1)[1], opts


def open_delta(settings: Settings, path: str, version: int | None = None):
    """A ``deltalake.DeltaTable`` at ``path`` (local or s3a), or ``None`` when no table is there."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if "://" not in path and not Path(path, LOG_DIR).is_dir():
        return None
    uri, opts = deltalake_location(settings, path)
    try:
        return DeltaTable(uri, version=version, storage_options=opts or None)
    except TableNotFoundError:
        return None


# --- listing (Hadoop FileSystem for a remote lake) ------------------------------------------------
def list_tables(spark: SparkSession | None, settings: Settings, layer: str) -> list[str]:
    """Names of the Delta tables (folders holding a ``_delta_log``) of one layer, sorted.

    A local lake is listed with :mod:`pathlib`; a remote one through Hadoop's FileSystem of the
    running session (any scheme Spark can read), which needs ``spark``.
    """
    base = f"{settings.lake.rstrip('/')}/{layer}"
    if is_local(settings):
        root = Path(base)
        return sorted(p.name for p in root.iterdir() if (p / LOG_DIR).is_dir()) if root.is_dir() else []
    if spark is None:
        raise StorageError(f"listing the {layer} tables of a lake on {scheme(settings)}:// needs a Spark session")
    jvm = spark._jvm  # noqa: SLF001 - py4j gateway
    root_path = jvm.org.apache.hadoop.fs.Path(base)
    fs = root_path.getFileSystem(spark._jsc.hadoopConfiguration())  # noqa: SLF001
    if not fs.exists(root_path):
        return []
    out = []
    for st in fs.listStatus(root_path):
        if st.isDirectory() and fs.exists(jvm.org.apache.hadoop.fs.Path(st.getPath(), LOG_DIR)):
            out.append(str(st.getPath().getName()))
    return sorted(out)
