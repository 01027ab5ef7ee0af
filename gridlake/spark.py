"""The one Spark session factory: Delta enabled, offline after the first set-up.

The Delta jars (``io.delta:delta-spark_<spark>_2.13`` and ``delta-storage``) are
fetched once from Maven Central into a local cache by ``gridlake setup``; every
session afterwards loads them from that cache with ``spark.jars`` and needs no
network. A lake on ``s3a://`` adds the S3A connector's jars (:func:`s3a_jars`, fetched by
``gridlake setup --s3``, or by ``gridlake setup`` when the configured lake is on s3a://).
The cache is ``$GRIDLAKE_JAR_CACHE`` or ``~/.cache/gridlake/jars``; a jar already in ``~/.m2``
is copied from there instead of downloaded.
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
from gridlake.storage import apply_credentials, is_s3a, s3a_spark_conf

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


# The S3A connector for a lake on s3a://: hadoop-aws of the Hadoop pyspark ships (hadoop-client-api-3.5.0),
# and of the AWS SDK v2 (2.35.4, the version hadoop-project 3.5.0 pins) only the modules it calls, with
# their runtime closure, instead of the SDK's 686 MB `bundle` jar (36 jars, 12.9 MB): s3, s3-transfer-manager, sts (assumed
# roles), apache-client (sync) and netty-nio-client (async; netty itself is in pyspark's jars). Left out:
# kms and s3accessgrants (client-side encryption, access grants): configuring those needs the bundle
# instead. analyticsaccelerator-s3 is needed although its input stream is optional (S3AFileSystem links it).
HADOOP_VERSION = "3.5.0"
AWS_SDK_VERSION = "2.35.4"
AWS_SDK_MODULES = (
    "annotations", "apache-client", "arns", "auth", "aws-core", "aws-query-protocol", "aws-xml-protocol",
    "checksums", "checksums-spi", "crt-core", "endpoints-spi", "http-auth", "http-auth-aws",
    "http-auth-aws-eventstream", "http-auth-spi", "http-client-spi", "identity-spi", "json-utils",
    "metrics-spi", "netty-nio-client", "profiles", "protocol-core", "regions", "retries", "retries-spi",
    "s3", "s3-transfer-manager", "sdk-core", "sts", "third-party-jackson-core", "utils", "utils-lite",
)


def s3a_jars() -> list[MavenJar]:
    """The jars the S3A connector needs on top of pyspark (which has Hadoop's client, netty, httpclient)."""
    return [
        MavenJar("org.apache.hadoop", "hadoop-aws", HADOOP_VERSION),
        *(MavenJar("software.amazon.awssdk", m, AWS_SDK_VERSION) for m in AWS_SDK_MODULES),
        MavenJar("software.amazon.eventstream", "eventstream", "1.0.1"),
        MavenJar("org.reactivestreams", "reactive-streams", "1.0.4"),
        MavenJar("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3", "1.3.1"),
    ]


def needed_jars(settings: Settings | None = None, s3: bool = False) -> list[MavenJar]:
    """Delta's jars, plus the S3A connector's when the lake is on ``s3a://`` (or ``s3`` asks for them)."""
    return delta_jars() + (s3a_jars() if s3 or (settings is not None and is_s3a(settings)) else [])


def jar_cache_dir() -> Path:
    return Path(os.environ.get("GRIDLAKE_JAR_CACHE", Path.home() / ".cache" / "gridlake" / "jars"))


def fetch_jars(jars: list[MavenJar], cache: Path | None = None, timeout: float = 120.0) -> list[Path]:
    """Download ``jars`` into the cache once (each verified by its SHA-1); return their paths."""
    cache = cache or jar_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    m2 = Path.home() / ".m2" / "repository"
    for jar in jars:
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


def fetch_delta_jars(cache: Path | None = None, timeout: float = 120.0) -> list[Path]:
    """Download the Delta jars into the cache once (verified by SHA-1); return their paths."""
    return fetch_jars(delta_jars(), cache, timeout)


def cached_jars(settings: Settings | None = None, cache: Path | None = None) -> list[Path]:
    """Paths of the cached jars a session of ``settings`` needs, or a SparkSetupError saying how to get them."""
    cache = cache or jar_cache_dir()
    jars = needed_jars(settings)
    missing = [j.filename for j in jars if not (cache / j.filename).exists()]
    if missing:
        s3 = any(j.artifact == "hadoop-aws" for j in jars)
        raise SparkSetupError(
            f"jars missing from {cache}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}. Run "
            f"`{'gridlake setup --s3' if s3 else 'make setup` (or `gridlake setup'}` once with Maven Central reachable."
        )
    return [cache / j.filename for j in jars]


def cached_delta_jars(cache: Path | None = None) -> list[Path]:
    """Paths of the cached Delta jars, or a SparkSetupError saying how to get them."""
    return cached_jars(None, cache)


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


#: characters of a plan string Spark keeps (the rest truncated): enough to read a plan's shape when debugging
MAX_PLAN_STRING_LENGTH = 100_000
#: executions whose plans Spark's SQL listener retains (its default 1,000; the UI is off by default here)
RETAINED_EXECUTIONS = 100


#: Hadoop's raw local file system for file:// paths, through both of its APIs (FileSystem: Spark's and Delta's
#: data files; AbstractFileSystem/FileContext: Delta's log store). A Delta commit on a local disk checks that
#: its log file does not exist and then renames it into place, with either file system; Delta serialises the
#: two within the JVM when the file system is the raw one (its HDFSLogStore).
RAW_LOCAL_FS = {"spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
                "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.apache.hadoop.fs.local.RawLocalFs"}


#: JVM options of each ``spark.driver_gc`` choice
GC_OPTIONS: dict[str, tuple[str, ...]] = {"jvm": (), "parallel": ("-XX:+UseParallelGC",),
                                          "g1": ("-XX:+UseG1GC",), "serial": ("-XX:+UseSerialGC",)}
#: JVM options of each ``spark.driver_jit`` choice: "late_c2" is HotSpot's tier-4 (C2) thresholds x10
JIT_OPTIONS: dict[str, tuple[str, ...]] = {
    "jvm": (),
    "late_c2": ("-XX:Tier4InvocationThreshold=50000", "-XX:Tier4MinInvocationThreshold=6000",
                "-XX:Tier4CompileThreshold=150000", "-XX:Tier4BackEdgeThreshold=400000"),
}


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
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(sp.listing_parallelism),
        "spark.ui.enabled": str(sp.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
        # Plan strings bounded, and few kept: Spark builds a query's whole plan string at every adaptive re-plan
        # (for the SQL listener, UI or not) and keeps the last executions' ones. A district night's gold plans
        # read frames persisted with their lineage, whose strings nest the cached plans below them: the first
        # night at 0019852 died in gold building one (OutOfMemoryError: Java heap space in explainString).
        # Spark's guidance for plan strings that exhaust the driver is this limit (SPARK-26103).
        "spark.sql.maxPlanStringLength": str(MAX_PLAN_STRING_LENGTH),
        "spark.sql.ui.retainedExecutions": str(RETAINED_EXECUTIONS),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.jars": ",".join(str(p) for p in cached_jars(settings)),
        "spark.sql.session.timeZone": settings.timezone,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta's safety check stays on (a zero-retention VACUUM is refused). gridlake.lifecycle computes every
        # VACUUM's retention itself, records it as the table's property, and lifts the check only in an erasure.
        "spark.databricks.delta.retentionDurationCheck.enabled": "true",
        # Delta keeps a small table's file list in each commit's checksum (allFilesInCrc), computed incrementally
        # from the previous one, and in a session whose time zone is not UTC (ours: settings.timezone) it checks
        # that list after every commit by rebuilding the table's whole state: two more Spark jobs per commit
        # (66 rebuilds in a community night's 475 queries, 13.8 s). On a mismatch the check only records a
        # Delta usage event (it throws in Delta's own tests alone), so here it costs and guards nothing. Delta
        # does not say why a non-UTC zone forces it; the zone-dependent part of a file entry is a timestamp
        # partition value, and io.write_table refuses a timestamp partition column. The checksum stays.
        "spark.databricks.delta.allFilesInCrc.verificationMode.forceOnNonUTC.enabled": "false",
        "spark.sql.warehouse.dir": str(settings.data / "spark-warehouse"),
        "spark.driver.extraJavaOptions": " ".join([f"-Dderby.system.home={settings.data / 'derby'}",
                                                   *GC_OPTIONS[sp.driver_gc], *JIT_OPTIONS[sp.driver_jit]]),
        "spark.executorEnv.PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        # Hadoop's local FS chmods what it creates from this, not from the process umask (gridlake.permissions).
        "spark.hadoop.fs.permissions.umask-mode": HADOOP_UMASK,
    }
    if not sp.local_checksum_files:  # file:// without Hadoop's .crc side files (spark.local_checksum_files)
        conf.update(RAW_LOCAL_FS)
    # spark.cache_compressed (conf/gridlake.yaml): the columnar cache of persisted frames encoded or not
    conf["spark.sql.inMemoryColumnarStorage.compressed"] = str(sp.cache_compressed).lower()
    if not sp.codegen:  # interpreted expressions and operators (spark.codegen in conf/gridlake.yaml)
        conf["spark.sql.codegen.wholeStage"] = "false"
        conf["spark.sql.codegen.factoryMode"] = "NO_CODEGEN"
    conf.update(s3a_spark_conf(settings))  # endpoint, path style: never credentials (apply_credentials)
    conf.update(sp.extra)
    return conf


def get_spark(settings: Settings, app_name: str = "gridlake") -> SparkSession:
    """Return the process's SparkSession, creating it with Delta and the profile's settings."""
    prepare_environment()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        apply_credentials(active, settings)
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
    apply_credentials(spark, settings)
    return spark


#: the Spark local property naming the pipeline stage a job belongs to (event log, UI; ``gridlake bench profile``)
STAGE_PROPERTY = "gridlake.stage"


def label_jobs(spark: SparkSession, stage: str | None) -> None:
    """Tag the jobs this driver thread submits from now on with ``stage`` (None: untag). Jobs of other threads
    (silver's units) carry no tag; a profile places them by time. A session without a SparkContext (Spark
    Connect) has nothing to tag."""
    try:
        spark.sparkContext.setLocalProperty(STAGE_PROPERTY, stage)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a connect session has no SparkContext: the tag is only for profiles
        log.debug("no SparkContext to label jobs with")


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
