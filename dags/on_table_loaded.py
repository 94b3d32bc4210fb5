"""
### On table loaded

Runs each time `s3_to_table` has loaded rows into the Polaris table `events`: it is scheduled on
the table's asset, `imply-polaris://<org>.<region>.<cloud>/<project>/events`, which the Polaris
ingestion task emits an event for once its job succeeded (never after a failed ingestion).

The event's `extra` says what landed (job id, rows, bytes, the S3 prefix); the task here reads
it from the triggering event and reports it. Point the asset at your own organization and project
with `POLARIS_ORGANIZATION` and `POLARIS_PROJECT_ID` in the environment of the DAG processor
(plain environment variables: parsing this file reads no connection and makes no network call).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Param, task

from airflow_provider_ingest.assets import polaris_table_asset

EVENTS_TABLE = polaris_table_asset(
    os.environ.get("POLARIS_ORGANIZATION", "demo.us-east-1.aws"),
    os.environ.get("POLARIS_PROJECT_ID", "test-project"),
    "events",
)

with DAG(
    dag_id="on_table_loaded",
    description="Reports each load of the Polaris events table",
    doc_md=__doc__,
    schedule=[EVENTS_TABLE],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["ingest", "polaris", "assets"],
    params={
        "min_rows": Param(1, type="integer", minimum=0, description="Fail when a load brought fewer rows."),
    },
) as dag:

    @task
    def report_load(params=None, triggering_asset_events=None) -> list[dict]:
        events = triggering_asset_events[EVENTS_TABLE] if triggering_asset_events else []
        loads = [{"asset": EVENTS_TABLE.uri, **event.extra} for event in events]
        print(f"Loaded: {loads}")
        short = [load for load in loads if (load.get("rows") or 0) < params["min_rows"]]
        if short:
            raise ValueError(f"loads with fewer than {params['min_rows']} rows: {short}")
        return loads

    report_load()
