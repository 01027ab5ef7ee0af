"""Per-source ingestion DAGs ``gridlake_ingest_<source>``, one per entry of conf/sources.yaml.

Each DAG is the loader of its source: it ingests the night's landing folder into its bronze Delta
table (``spark-submit gridlake/submit.py --stages bronze --sources <source>``) and emits the Asset
``bronze.<source>`` with the night as partition key, which is what starts ``gridlake_nightly``.
Re-ingesting a night is a no-op (the ingestion log is keyed by content hash).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from gridlake.airflow_dags import (
    INGEST_CRON,
    SPARK_POOL,
    TIMEZONE,
    dag_settings,
    date_params,
    default_args,
    ingest_timetable,
    source_names,
    spark_stage,
    start_date,
    table_asset,
)
from gridlake.alerts import alerts_config, failure_notifiers, source_deadlines

DOC = """
### Ingest `{source}` into bronze

* **What**: every file of `landing/{source}/<night>/` → Delta table `bronze.{source}`
  (append-only, raw strings + lineage columns; malformed rows kept with the raw line).
* **Night** = the run's partition key (`YYYY-MM-DD`), or the `date` param, or the logical date in
  Asia/Shanghai for a run without partition key.
* **Schedule**: `{cron}` Asia/Shanghai, `CronPartitionTimetable(run_offset=-1)`: the run at 01:00 on
  D+1 has the partition key D. A backfill (`airflow backfill create --dag-id gridlake_ingest_{source}`)
  makes one partitioned run per night, in order.
* **Emits** `bronze.{source}` with partition key = the night, also when the source delivered nothing
  (extra `delivered: 0`: declared absent), so `gridlake_nightly` starts once every source has the night.
* **Idempotent**: a file already ingested (same SHA-256) is skipped; Spark starts only for new files.
* **Spark**: `spark-submit gridlake/submit.py` in pool `{pool}` (one JVM at a time on a laptop).
* **Late**: a `DeadlineAlert` fires the alert notifiers when the run has not finished
  {late} min after it was queued (`alerts.source_late_after_minutes`).
* **On failure**: retried; after the last try the alert notifiers run (`<data>/alerts/<run_id>.json`,
  mail when configured), and the stage failure is in the run manifest
  `lake/_runs/gridlake_ingest_{source}__<night>.json`.
"""


def build(source: str):
    """The ingestion DAG of one source."""
    dag_id = f"gridlake_ingest_{source}"
    asset = table_asset("bronze", source)

    @dag(
        dag_id=dag_id,
        schedule=ingest_timetable(),
        start_date=start_date(),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        params=date_params(),
        on_failure_callback=failure_notifiers(),
        deadline=source_deadlines(),
        tags=["gridlake", "bronze", "ingestion", source],
        doc_md=DOC.format(source=source, cron=INGEST_CRON, pool=SPARK_POOL,
                          late=alerts_config().source_late_after_minutes),
        description=f"landing/{source} -> bronze.{source} (partition = night)",
    )
    def ingest_dag():
        @task(task_id="landed_files")
        def landed_files() -> dict:
            """Tonight's delivered files and those not yet in bronze (content hash), without Spark."""
            from airflow.sdk import get_current_context

            from gridlake.airflow_runtime import night_of, not_yet_ingested
            from gridlake.sources import get_source
            from jobs.bronze.landing import discover  # the bronze stage's own listing: sub-folders, no links

            night = night_of(get_current_context(), TIMEZONE)
            found, _ = discover(dag_settings().landing, {source: get_source(source)}, night)
            files = [f.path for f in found if not f.skip]
            new = not_yet_ingested(dag_settings(), files) if files else []
            return {"night": night.isoformat(), "delivered": len(files), "new": len(new)}

        @task(task_id="ingest", pool=SPARK_POOL, outlets=[asset])
        def ingest(landed: dict, *, outlet_events=None) -> dict:
            """Ingest the night's new files (spark-submit); emit ``bronze.<source>`` for the night."""
            if landed["new"]:
                spark_stage(dag_id, ["bronze"], sources=[source])
            event = outlet_events[asset]
            event.add_partitions(landed["night"])  # also for a run without partition key (manual, dag.test)
            event.extra = {"night": landed["night"], "delivered": landed["delivered"], "ingested": landed["new"]}
            return event.extra

        ingest(landed_files())

    return ingest_dag()


for _source in source_names():
    globals()[f"gridlake_ingest_{_source}"] = build(_source)
