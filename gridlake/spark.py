"""The one Spark session factory: Delta enabled, offline after the first set-up.

The Delta jars (``io.delta:delta-spark_<spark>_2.13`` and ``delta-storage``) are
fetched once from Maven Central into a local cache by ``gridlake setup``; every
session afterwards loads them from that cache with ``spark.jars`` and needs no
network. The cache is ``$GRIDLAKE_JAR_CACHE`` or ``~/.cache/gridlake/jars``; a
jar already in ``~/.m2`` is copied from there instead of downloaded.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gridlake.config import Settings
from gridlake.errors import GridlakeError
from gridlake.permissions import HADOOP_UMASK, secure_process

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

SPARK_VERSION = "4.2.0"
SCALA_BINARY = "2.13"
DELTA_VERSION = "4.4.0"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


class SparkSetupError(GridlakeError):
    """Java or the Delta jars are missing; the message says what to run."""


@dataclass(frozen=True)
class MavenJar:
    group: str
    artifact: str
    version: str

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def relpath(self) -> str:
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.filename}"


def delta_jars() -> list[MavenJar]:
    """The jars Delta Lake needs on top of the pip-installed Spark."""
    spark_mm = ".".join(SPARK_VERSION.split(".")[:2])
    return [
        MavenJar("io.delta", f"delta-spark_{spark_mm}_{SCALA_BINARY}", DELTA_VERSION),
        MavenJar("io.delta", "delta-storage", DELTA_VERSION),
    ]


def jar_cache_dir() -> Path:
    return Path(os.environ.get("GRIDLAKE_JAR_CACHE", Path.home() / ".cache" / "gridlake" / "jars"))


def fetch_delta_jars(cache: Path | None = None, timeout: float = 120.0) -> list[Path]:
    """Download the Delta jars into the cache once (verified by SHA-1); return their paths."""
    cache = cache or jar_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    m2 = Path.home() / ".m2" / "repository"
    for jar in delta_jars():
        target = cache / jar.filename
        if target.exists() and target.stat().st_size > 0:
            out.append(target)
            continue
        local = m2 / jar.relpath
        tmp = target.with_suffix(".part")
        if local.exists():
            shutil.copyfile(local, tmp)
        else:
            url = f"{MAVEN_CENTRAL}/{jar.relpath}"
            log.info("downloading %s", url)
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
                    shutil.copyfileobj(resp, fh)
                with urllib.request.urlopen(url + ".sha1", timeout=timeout) as resp:
                    expected = resp.read().decode().split()[0].strip()
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise SparkSetupError(
                    f"could not download {url}: {exc}. Maven Central must be reachable once, "
                    f"or place {jar.filename} in {cache}"
                ) from exc
            actual = hashlib.sha1(tmp.read_bytes()).hexdigest()
            if actual != expected:
                tmp.unlink(missing_ok=True)
                raise SparkSetupError(f"checksum mismatch for {jar.filename}: {actual} != {expected}")
        tmp.replace(target)
        out.append(target)
    return out


def cached_delta_jars(cache: Path | None = None) -> list[Path]:
    """Paths of the cached Delta jars, or a SparkSetupError saying how to get them."""
    cache = cache or jar_cache_dir()
    missing = [j.filename for j in delta_jars() if not (cache / j.filename).exists()]
    if missing:
        raise SparkSetupError(
            f"Delta jars missing from {cache}: {', '.join(missing)}. Run `make setup` "
            "(or `gridlake setup`) once with Maven Central reachable."
        )
    return [cache / j.filename for j in delta_jars()]


def find_java_home() -> str:
    """JAVA_HOME if it holds a Java 17, else a Java 17 under /usr/lib/jvm."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return home
    for candidate in sorted(glob.glob("/usr/lib/jvm/java-17-openjdk*")) + sorted(glob.glob("/usr/lib/jvm/*17*")):
        if Path(candidate, "bin", "java").exists():
            return candidate
    if shutil.which("java"):
        return str(Path(shutil.which("java") or "").resolve().parent.parent)
    raise SparkSetupError(
        "no Java found: install a Java 17 (e.g. `apt-get install openjdk-17-jdk-headless`) "
        "or set JAVA_HOME to one"
    )


def prepare_environment() -> None:
    """Set the process environment Spark reads before its JVM starts."""
    os.environ["JAVA_HOME"] = find_java_home()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


def spark_conf(settings: Settings, app_name: str = "gridlake") -> dict[str, str]:
    """Every Spark property a gridlake session uses (also fed to spark-submit)."""
    sp = settings.spark
    conf = {
        "spark.app.name": app_name,
        "spark.master": sp.master,
        "spark.driver.memory": sp.driver_memory,
        "spark.executor.memory": sp.executor_memory,
        "spark.executor.cores": str(sp.executor_cores),
        "spark.sql.shuffle.partitions": str(sp.shuffle_partitions),
        "spark.default.parallelism": str(sp.default_parallelism),
        "spark.databricks.delta.snapshotPartitions": str(sp.delta_snapshot_partitions),
        "spark.ui.enabled": str(sp.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.jars": ",".join(str(p) for p in cached_delta_jars()),
        "spark.sql.session.timeZone": settings.timezone,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta's safety check stays on (a zero-retention VACUUM is refused). gridlake.lifecycle computes every
        # VACUUM's retention itself, records it as the table's property, and lifts the check only in an erasure.
        "spark.databricks.delta.retentionDurationCheck.enabled": "true",
        "spark.sql.warehouse.dir": str(settings.data / "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={settings.data / 'derby'} {sp.driver_java_options}".strip(),
        "spark.executorEnv.PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        # Hadoop's local FS chmods what it creates from this, not from the process umask (gridlake.permissions).
        "spark.hadoop.fs.permissions.umask-mode": HADOOP_UMASK,
    }
    conf.update(sp.extra)
    return conf


def get_spark(settings: Settings, app_name: str = "gridlake") -> SparkSession:
    """Return the process's SparkSession, creating it with Delta and the profile's settings."""
    prepare_environment()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    secure_process(settings)  # umask 077 before the JVM starts (it inherits it); private data root
    builder = SparkSession.builder
    for key, value in spark_conf(settings, app_name).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM failed to start: say why in words
        raise SparkSetupError(f"Spark failed to start ({exc}); check JAVA_HOME={os.environ.get('JAVA_HOME')}") from exc
    spark.sparkContext.setLogLevel(settings.spark.log_level)
    quiet_task_errors(spark)
    return spark


# Spark's own loggers that print a failed task's exception, whose message can quote a row's value (an
# ANSI cast error names the string it could not cast): the driver still raises the error, sanitised by
# gridlake.sanitise, so these copies are switched off in this JVM (the driver; executors in local mode).
TASK_ERROR_LOGGERS = ("org.apache.spark.executor.Executor", "org.apache.spark.scheduler.TaskSetManager",
                      "org.apache.spark.scheduler.TaskSchedulerImpl", "org.apache.spark.util.Utils")


def quiet_task_errors(spark: SparkSession) -> None:
    """Turn off the JVM loggers that repeat a failed task's (unsanitised) exception text."""
    try:
        jvm = spark.sparkContext._jvm  # noqa: SLF001 - py4j gateway, the only way to reach log4j
        level = jvm.org.apache.logging.log4j.Level.OFF
        for name in TASK_ERROR_LOGGERS:
            jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)
    except Exception:  # noqa: BLE001 - a remote (Connect) session has no JVM here; nothing to quiet
        log.debug("task error loggers not reachable")
