"""``gridlake_nightly``: the collision night, one task per pipeline stage, linked by Assets.

bronze (catch-up) → silver → quality_gate → matching → gold → exports → report → quality_report.
Every Spark stage is ``spark-submit jobs/submit.py --stages <stage>`` for the run's night.
"""

from __future__ import annotations

from airflow.sdk import chain, dag, task

from gridlake.airflow_env import (
    GOLD_TABLES,
    NIGHTLY_CRON,
    SPARK_POOL,
    TIMEZONE,
    check_quality_gate,
    dag_settings,
    date_params,
    default_args,
    folder_asset,
    gridlake_run_id,
    night_of,
    source_names,
    spark_stage,
    start_date,
    table_asset,
    timetable,
)
from gridlake.alerts import failure_notifiers
from gridlake.pipeline import STAGES

DAG_ID = "gridlake_nightly"

DOC = f"""
### The collision night

Runs one delivery night through the lake, stage by stage (`gridlake.pipeline.STAGES`):

| task | does | emits |
|---|---|---|
| `bronze` | catch-up ingestion of every source (a no-op when the `gridlake_ingest_*` DAGs already ran) | |
| `silver` | type, standardise, validate, deduplicate; SCD2; quarantine; conservation | `silver.*` |
| `quality_gate` | write–audit–publish: stops here unless silver passed its error-level suites | |
| `matching` | address resolution → `gold.house_resolution` | `gold.house_resolution` |
| `gold` | profiles, discrepancies (the collision rules), follow-ups, grid metrics | `gold.*` |
| `exports` | one XLSX/CSV per officer and grid, masked | `exports` |
| `report` | the district report `reports/district/<night>.html` and the delivery report `reports/delivery/<night>.html` | `reports`, `delivery_reports` |
| `quality_report` | Data Docs `quality/data_docs/index.html` | `data_docs` |

* **Night** = logical date in Asia/Shanghai (interval start), or the `date` param. Run ids, the
  manifest (`lake/_runs/{DAG_ID}__<night>.json`) and every write depend only on the night, so a rerun
  or a backfill (`airflow backfill create --dag-id {DAG_ID} --from-date ... --to-date ...`, nights
  in order, one at a time) gives the same lake as a clean run.
* **Schedule**: cron `{NIGHTLY_CRON}` Asia/Shanghai (interval timetable) — one hour after the
  ingestion DAGs; not Asset-triggered, because an Asset-triggered run has no logical date (night).
  The `bronze.*` Assets are this DAG's inlets (lineage), and the catch-up task makes the night
  complete even when an ingestion DAG was late.
* **Spark** runs in spark-submit (pool `{SPARK_POOL}`), local master or the `cluster` profile's.
* **Failures**: each task retries (≥ 2, backoff); the stage failure is in the manifest and the
  alert hooks (`$GRIDLAKE_ALERT_HOOKS`, default `<data>/alerts/<run_id>.json`) get a record.
"""

_OUTLETS = {
    "silver": [table_asset("silver", s) for s in source_names()],
    "matching": [table_asset("gold", "house_resolution")],
    "gold": [table_asset("gold", t) for t in GOLD_TABLES if t != "house_resolution"],
    "exports": [folder_asset("exports", str(dag_settings().exports))],
    "report": [folder_asset("reports", str(dag_settings().reports / "district")),
               folder_asset("delivery_reports", str(dag_settings().reports / "delivery"))],
    "quality_report": [folder_asset("data_docs", str(dag_settings().quality / "data_docs"))],
}


def _stage_task(stage: str):
    inlets = [table_asset("bronze", s) for s in source_names()] if stage == "bronze" else []

    @task(task_id=stage, pool=SPARK_POOL, outlets=_OUTLETS.get(stage, []), inlets=inlets,
          doc_md=f"`spark-submit jobs/submit.py --stages {stage}` for the night.")
    def run_stage() -> str:
        return spark_stage(DAG_ID, [stage])

    return run_stage()


@dag(
    dag_id=DAG_ID,
    schedule=timetable(NIGHTLY_CRON),
    start_date=start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params=date_params(),
    on_failure_callback=failure_notifiers(),
    tags=["gridlake", "nightly", "collision", "gold"],
    doc_md=DOC,
    description="bronze catch-up → silver → quality gate → matching → gold → exports → reports",
)
def gridlake_nightly():
    @task(task_id="quality_gate", doc_md="Fail unless silver succeeded and no silver suite failed at error level.")
    def quality_gate() -> dict:
        from airflow.sdk import get_current_context

        run_id = gridlake_run_id(DAG_ID, night_of(get_current_context(), TIMEZONE))
        return check_quality_gate(dag_settings(), run_id, layer="silver", stage="silver")

    steps = []
    for stage in STAGES:
        steps.append(_stage_task(stage))
        if stage == "silver":
            steps.append(quality_gate())
    chain(*steps)


gridlake_nightly()
