"""Building blocks of the DAG files (``dags/``): schedules, Assets, task defaults, the Spark task body.

Airflow is imported lazily inside each function: the DAG files call these at parse time, and the
scheduler parses them often. What the tasks do at run time is in :mod:`gridlake.airflow_runtime`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from gridlake.airflow_runtime import (  # noqa: F401 - the DAG files import these from here
    NIGHT_KEY_FORMAT,
    SPARK_POOL,
    TIMEZONE,
    check_quality_gate,
    gridlake_run_id,
    night_of,
    not_yet_ingested,
    run_spark_job,
)
from gridlake.config import Settings, load_settings

log = logging.getLogger(__name__)

# Ingestion at 01:00 (Shanghai) on D+1 for the delivery night D, as a partitioned run whose partition
# key is D; the collision night runs when every source's bronze Asset has the partition D. The
# maintenance DAG keeps an interval timetable (logical date = the day).
INGEST_CRON = "0 1 * * *"
NIGHTLY_CRON = "0 2 * * *"  # only the docs' "due by" time of the nightly DAG: it is Asset-triggered
GOLD_TABLES = ("house_resolution", "person_resolution", "house_profile", "discrepancies", "followups", "grid_metrics")
#: gold tables the matching stage writes (the others are the gold stage's)
MATCHING_TABLES = ("house_resolution", "person_resolution")


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
