"""Per-source ingestion DAGs ``gridlake_ingest_<source>``, one per entry of conf/sources.yaml.

Each DAG ingests that source's landing folder of the night into its bronze Delta table
(``spark-submit jobs/submit.py --stages bronze --sources <source>``) and emits the Asset
``bronze.<source>``. Re-ingesting a night is a no-op (the ingestion log is keyed by content hash).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from gridlake.airflow_env import (
    INGEST_CRON,
    SPARK_POOL,
    TIMEZONE,
    dag_settings,
    date_params,
    default_args,
    source_names,
    spark_stage,
    start_date,
    table_asset,
    timetable,
)

DOC = """
### Ingest `{source}` into bronze

* **What**: every file of `landing/{source}/<night>/` → Delta table `bronze.{source}`
  (append-only, raw strings + lineage columns; malformed rows kept with the raw line).
* **Night**: the logical date in Asia/Shanghai (the data interval start), or the `date` param.
* **Schedule**: `{cron}` Asia/Shanghai, interval timetable: the run for delivery day D starts at
  01:00 on D+1. The nightly collision DAG `gridlake_nightly` runs at 02:00 and reads `bronze.*`.
* **Idempotent**: a file already ingested (same SHA-256) is skipped, so reruns and backfills change nothing.
* **Spark**: `spark-submit jobs/submit.py` in pool `{pool}` (one JVM at a time on a laptop).
* **On failure**: retried; after the last try the alert hooks run (default: `<data>/alerts/<run_id>.json`),
  and the stage failure is in the run manifest `lake/_runs/gridlake_ingest_{source}__<night>.json`.
"""


def build(source: str):
    """The ingestion DAG of one source."""
    dag_id = f"gridlake_ingest_{source}"

    @dag(
        dag_id=dag_id,
        schedule=timetable(INGEST_CRON),
        start_date=start_date(),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        params=date_params(),
        tags=["gridlake", "bronze", "ingestion", source],
        doc_md=DOC.format(source=source, cron=INGEST_CRON, pool=SPARK_POOL),
        description=f"landing/{source} -> bronze.{source}",
    )
    def ingest_dag():
        @task(task_id="landed_files")
        def landed_files() -> list[str]:
            """List tonight's delivered files not yet in bronze; skip the run (no Spark) when there are none."""
            from airflow.sdk import get_current_context
            from airflow.sdk.exceptions import AirflowSkipException

            from gridlake.airflow_env import night_of, not_yet_ingested
            from gridlake.sources import get_source
            from jobs.bronze.landing import discover  # the bronze stage's own listing: sub-folders, no links

            night = night_of(get_current_context(), TIMEZONE)
            folder = dag_settings().landing / source / night.isoformat()
            found, _ = discover(dag_settings().landing, {source: get_source(source)}, night)
            files = [f.path for f in found if not f.skip]
            if not files:
                raise AirflowSkipException(f"no delivery in {folder}")
            new = not_yet_ingested(dag_settings(), files)
            if not new:
                raise AirflowSkipException(f"all {len(files)} file(s) in {folder} are in bronze already")
            return [str(p.relative_to(folder)) for p in new]

        @task(task_id="ingest", pool=SPARK_POOL, outlets=[table_asset("bronze", source)])
        def ingest(files: list[str]) -> str:
            """Ingest the night's files into bronze (spark-submit)."""
            return spark_stage(dag_id, ["bronze"], sources=[source])

        ingest(landed_files())

    return ingest_dag()


for _source in source_names():
    globals()[f"gridlake_ingest_{_source}"] = build(_source)
