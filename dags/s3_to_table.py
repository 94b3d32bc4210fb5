"""
### S3 to table

Loads one day of event files from S3 into analytics tables.

- **Imply Polaris**: ensures an S3 connection for the bucket, then runs a batch ingestion job
  into `params.table` and waits for it in the triggerer.
- **Adobe Experience Platform**: converts the same files to Parquet on the worker (streamed),
  uploads them into one batch of `params.aep_dataset_id`, completes it and waits for promotion.

Branches run in parallel and can be switched off (`run_polaris`, `run_adobe`).

On its daily schedule the run reads `s3://<bucket>/events/<logical date>/`; from the UI's
trigger form, fill in `prefix` to load another folder. The last task logs and returns what landed.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task

from airflow_provider_ingest.branching import branch_switch
from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.operators.polaris import (
    PolarisEnsureS3ConnectionOperator,
    PolarisStartIngestionJobOperator,
)

# Scheduled runs leave `prefix` empty and read that day's folder.
# A run triggered with no logical date (the REST API allows it) has no `ds`: it reads the folder of
# the day it runs after.
PREFIX = (
    "{{ params.prefix or 'events/' ~ "
    "(dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d') ~ '/' }}"
)

with DAG(
    dag_id="s3_to_table",
    description="S3 event files into Imply Polaris and Adobe Experience Platform",
    doc_md=__doc__,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1)},
    tags=["ingest", "polaris", "adobe"],
    params={
        "bucket": Param("ingest-demo", type="string", minLength=3, description="S3 bucket to read."),
        "prefix": Param(
            "",
            type="string",
            description="Folder in the bucket, ending in '/'. Empty: events/<logical date>/.",
        ),
        "format": Param(
            "nd-json", enum=["nd-json", "csv", "parquet"], description="Format of every file in the folder."
        ),
        "table": Param("events", type="string", minLength=1, description="Polaris table to load into."),
        "polaris_connection": Param(
            "ingest-demo-s3", type="string", description="Name of the Polaris S3 connection to use or create."
        ),
        "aws_assumed_role_arn": Param(
            "arn:aws:iam::123456789012:role/polaris-ingest",
            type="string",
            description="Role Polaris assumes to read the bucket.",
        ),
        "run_polaris": Param(True, type="boolean", description="Load into Imply Polaris."),
        "run_adobe": Param(True, type="boolean", description="Load into Adobe Experience Platform."),
        "aep_dataset_id": Param(
            "5f0c1e2d3a4b5c6d7e8f9a0b", type="string", minLength=1, description="AEP dataset to load into."
        ),
        "polaris_ingestion_mode": Param(
            "append",
            enum=["append", "replace"],
            description="Polaris: append rows, or replace the table's data.",
        ),
        "aep_small_file_max_bytes": Param(
            256 * 1024 * 1024,
            type="integer",
            minimum=1,
            description="AEP: files up to this size go in one PUT; larger ones through the chunked upload.",
        ),
        "aep_chunk_size": Param(
            16 * 1024 * 1024,
            type="integer",
            minimum=1024,
            description="AEP: bytes per chunk of a chunked upload (one chunk is held in memory).",
        ),
    },
) as dag:
    ensure_connection = PolarisEnsureS3ConnectionOperator(
        task_id="polaris_ensure_connection",
        name="{{ params.polaris_connection }}",
        bucket="{{ params.bucket }}",
        aws_assumed_role_arn="{{ params.aws_assumed_role_arn }}",
    )

    polaris_ingest = PolarisStartIngestionJobOperator(
        task_id="polaris_ingest",
        table_name="{{ params.table }}",
        connection_name="{{ params.polaris_connection }}",
        prefixes=[PREFIX],
        format_settings={"format": "{{ params.format }}"},
        ingestion_mode="{{ params.polaris_ingestion_mode }}",
        deferrable=True,
        poll_interval=5,
        timeout=3 * 3600,
    )

    adobe_ingest = S3ToAdobeAepOperator(
        task_id="adobe_ingest",
        dataset_id="{{ params.aep_dataset_id }}",
        s3_prefix="s3://{{ params.bucket }}/" + PREFIX,
        input_format="{{ 'json' if params.format == 'nd-json' else params.format }}",
        small_file_max_bytes="{{ params.aep_small_file_max_bytes }}",
        chunk_size="{{ params.aep_chunk_size }}",
        deferrable=True,
        poll_interval=5,
        timeout=3 * 3600,
    )

    @task(trigger_rule="none_failed")
    def summarize(ti=None) -> dict:
        metrics = ti.xcom_pull(task_ids="polaris_ingest", key="metrics") or {}
        summary = {
            "polaris": {
                "job_id": ti.xcom_pull(task_ids="polaris_ingest"),
                "rows_ingested": metrics.get("numRowsPersisted"),
                "rows_processed": metrics.get("numRowsProcessed"),
            },
            "adobe": ti.xcom_pull(task_ids="adobe_ingest"),
        }
        print(f"Landed: {summary}")
        return summary

    summary = summarize()
    branch_switch("polaris") >> ensure_connection >> polaris_ingest >> summary
    branch_switch("adobe") >> adobe_ingest >> summary
