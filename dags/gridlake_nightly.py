"""``gridlake_nightly``: the collision night, one task per pipeline stage, linked by Assets.

Started by the ``bronze.<source>`` Assets of the ingestion DAGs, one run per night (the partition key).
bronze (check) → silver → quality_gate → matching → gold → exports → reports.
Every Spark stage is ``spark-submit gridlake/submit.py --stages <stage>`` for the run's night.
"""

from __future__ import annotations

from airflow.sdk import chain, dag, task

from gridlake.airflow_dags import (
    GOLD_TABLES,
    MATCHING_TABLES,
    SPARK_POOL,
    TIMEZONE,
    check_quality_gate,
    dag_settings,
    date_params,
    default_args,
    folder_asset,
    gridlake_run_id,
    night_of,
    nightly_timetable,
    source_names,
    spark_stage,
    start_date,
    table_asset,
)
from gridlake.alerts import failure_notifiers
from gridlake.pipeline import STAGES

DAG_ID = "gridlake_nightly"

DOC = f"""
### The collision night

Runs one delivery night through the lake, stage by stage (`gridlake.pipeline.STAGES`):

| task | does | emits |
|---|---|---|
| `bronze` | check (no Spark): every source of the night is in bronze or delivered nothing (declared absent); fails naming the late sources | |
| `silver` | type, standardise, validate, deduplicate; SCD2; quarantine; conservation | `silver.*` |
| `quality_gate` | write–audit–publish: stops here unless silver passed its error-level suites | |
| `matching` | address resolution → `gold.house_resolution` | `gold.house_resolution` |
| `gold` | profiles, discrepancies (the collision rules), follow-ups, grid metrics | `gold.*` |
| `exports` | one XLSX/CSV per officer and grid, masked | `exports` |
| `reports` | the district report `reports/district/<night>.html`, the delivery report `reports/delivery/<night>.html`, the quality report and Data Docs `quality/data_docs/index.html` | `reports`, `delivery_reports`, `data_docs` |

* **Schedule**: `PartitionedAssetTimetable(AssetAll(bronze.*))`: a run for the night D is created
  once every `gridlake_ingest_<source>` DAG emitted `bronze.<source>` with partition key D (a source
  that delivered nothing emits it too). Airflow 3.3 queues partitions oldest first and
  `max_active_runs=1` keeps nights in order. An ingestion run that is late fires its deadline alert.
* **Night** = the run's partition key, or the `date` param (manual runs: `{{"date": "2026-11-02"}}`),
  or the logical date in Asia/Shanghai. Run ids, the manifest (`lake/_runs/{DAG_ID}__<night>.json`)
  and every write depend only on the night, so a rerun gives the same lake as a clean run.
* **Backfill**: an Asset-triggered DAG is not periodic, so `airflow backfill create` refuses
  `{DAG_ID}`; backfill the ingestion DAGs (`airflow backfill create --dag-id gridlake_ingest_<source>
  --from-date ... --to-date ...`, partitioned runs, nights in order) and each completed night
  starts its nightly run; or trigger it with the `date` param.
* **Spark** runs in spark-submit (pool `{SPARK_POOL}`), local master or the `cluster` profile's.
* **Failures**: each task retries (≥ 2, backoff); the stage failure is in the manifest and the alert
  notifiers (`alerts` in conf/notifications.yaml: `<data>/alerts/<run_id>.json`, mail) get a record.
"""

_OUTLETS = {
    "silver": [table_asset("silver", s) for s in source_names()],
    "matching": [table_asset("gold", t) for t in MATCHING_TABLES],
    "gold": [table_asset("gold", t) for t in GOLD_TABLES if t not in MATCHING_TABLES],
    "exports": [folder_asset("exports", str(dag_settings().exports))],
    "reports": [folder_asset("reports", str(dag_settings().reports / "district")),
                folder_asset("delivery_reports", str(dag_settings().reports / "delivery")),
                folder_asset("data_docs", str(dag_settings().quality / "data_docs"))],
}


def _stage_task(stage: str):
    @task(task_id=stage, pool=SPARK_POOL, outlets=_OUTLETS.get(stage, []),
          doc_md=f"`spark-submit gridlake/submit.py --stages {stage}` for the night.")
    def run_stage() -> str:
        return spark_stage(DAG_ID, [stage])

    return run_stage()


def _bronze_check():
    @task(task_id="bronze", inlets=[table_asset("bronze", s) for s in source_names()],
          doc_md="Check (no Spark): every source of the night is in bronze or delivered nothing.")
    def bronze() -> dict:
        from airflow.sdk import get_current_context

        night = night_of(get_current_context(), TIMEZONE)
        from jobs.bronze.completeness import check_bronze_complete

        return check_bronze_complete(dag_settings(), night, source_names())

    return bronze()


@dag(
    dag_id=DAG_ID,
    schedule=nightly_timetable(),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params=date_params(),
    on_failure_callback=failure_notifiers(),
    tags=["gridlake", "nightly", "collision", "gold"],
    doc_md=DOC,
    description="bronze.* (partition = night) → bronze check → silver → quality gate → matching → gold → exports → reports",
)
def gridlake_nightly():
    @task(task_id="quality_gate", doc_md="Fail unless silver succeeded and no silver suite failed at error level.")
    def quality_gate() -> dict:
        from airflow.sdk import get_current_context

        run_id = gridlake_run_id(DAG_ID, night_of(get_current_context(), TIMEZONE))
        return check_quality_gate(dag_settings(), run_id, layer="silver", stage="silver")

    steps = []
    for stage in STAGES:
        steps.append(_bronze_check() if stage == "bronze" else _stage_task(stage))
        if stage == "silver":
            steps.append(quality_gate())
    chain(*steps)


gridlake_nightly()
