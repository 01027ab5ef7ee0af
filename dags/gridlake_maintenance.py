"""``gridlake_maintenance``: the weekly lifecycle pass (retention, OPTIMIZE, VACUUM, killed writes, report).

One Spark task, ``spark-submit gridlake/lifecycle/submit.py``, the same pass as ``gridlake maintain``
(:mod:`gridlake.lifecycle.maintain`). Nothing heavy is imported at parse time.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from gridlake.airflow_dags import (
    SPARK_POOL,
    TIMEZONE,
    dag_settings,
    date_params,
    default_args,
    start_date,
    table_asset,
    timetable,
)
from gridlake.alerts import failure_notifiers

DAG_ID = "gridlake_maintenance"
#: Sundays 04:00 Asia/Shanghai, two hours after the nightly DAG starts.
MAINTENANCE_CRON = "0 4 * * 0"

DOC = f"""
### Weekly lake maintenance

| step | does |
|---|---|
| retention | raw bronze rows past `retention.bronze_days` deleted (counts stay in the ingestion log and manifests); closed SCD2 versions past `silver_history_days` deleted; quarantine past `quarantine_raw_days` keeps reason codes, loses raw values |
| OPTIMIZE | tables with at least `optimize_min_files` small files |
| VACUUM | per layer `retention.vacuum_hours`, Delta's safety check on; never younger than the oldest version the last manifest, any night within `time_travel_days` or a running night needs; deletes Parquet files of killed writes once older than the retention |
| staging | bronze staging folders of killed runs (skipped while a night runs) |
| report | `reports/maintenance/<time>.json` and the Delta table `_runs.maintenance`: files and bytes before and after per table; fails when a needed version is no longer readable |

* **Schedule**: cron `{MAINTENANCE_CRON}` ({TIMEZONE}); the `date` param sets the day the retention windows end.
* **Spark** runs in spark-submit (pool `{SPARK_POOL}`, so it never overlaps a nightly Spark stage on one slot).
* Erasure (`gridlake erase`) and key rotation (`gridlake rotate-key`) are operator commands, not scheduled:
  see docs/reliability.md.
"""


@dag(
    dag_id=DAG_ID,
    schedule=timetable(MAINTENANCE_CRON),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params=date_params(),
    on_failure_callback=failure_notifiers(),
    tags=["gridlake", "maintenance", "retention"],
    doc_md=DOC,
    description="retention → OPTIMIZE → VACUUM → killed-write cleanup → report",
)
def gridlake_maintenance():
    @task(task_id="maintain", pool=SPARK_POOL, outlets=[table_asset("_runs", "maintenance")],
          doc_md="`spark-submit gridlake/lifecycle/submit.py` (one pass of `gridlake maintain`).")
    def maintain() -> str:
        import datetime as dt
        import logging

        from airflow.sdk import get_current_context

        from gridlake.lifecycle.maintain import run_maintenance_job

        params = get_current_context()["params"]
        today = dt.date.fromisoformat(params["date"]) if params.get("date") else None
        run_maintenance_job(dag_settings(), today, logging.getLogger("gridlake.maintenance"))
        return "maintained"

    maintain()


gridlake_maintenance()
