"""
### S3 backfill (fan-out)

Loads a range of day-folders at once: one Imply Polaris job and one Adobe Experience Platform
batch **per day**, as mapped tasks (`.expand`), every wait held by the triggerer rather than a
worker slot. Fill in `first_day` and `days` in the trigger form.

Each map index owns its job: its `task_state_store` is scoped to the map index, so a retried
index re-attaches to its own job (or adopts the one its lost start reply made) and never to a
sibling's. Branches can be switched off (`run_polaris`, `run_adobe`).
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

with DAG(
    dag_id="s3_backfill",
    description="A range of S3 day-folders into Imply Polaris and Adobe Experience Platform, one job per day",
    doc_md=__doc__,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1)},
    tags=["ingest", "polaris", "adobe", "backfill"],
    params={
        "bucket": Param("ingest-demo", type="string", minLength=3, description="S3 bucket to read."),
        "first_day": Param(
            "2026-01-01", type="string", format="date", description="First day-folder (events/<day>/)."
        ),
        "days": Param(3, type="integer", minimum=1, maximum=366, description="How many day-folders."),
        "table": Param("events", type="string", minLength=1, description="Polaris table to load into."),
        "polaris_connection": Param(
            "ingest-demo-s3", type="string", description="Name of the Polaris S3 connection to use or create."
        ),
        "aws_assumed_role_arn": Param(
            "arn:aws:iam::123456789012:role/polaris-ingest",
            type="string",
            description="Role Polaris assumes to read the bucket.",
        ),
        "aep_dataset_id": Param(
            "5f0c1e2d3a4b5c6d7e8f9a0b", type="string", minLength=1, description="AEP dataset to load into."
        ),
        "run_polaris": Param(True, type="boolean", description="Load into Imply Polaris."),
        "run_adobe": Param(True, type="boolean", description="Load into Adobe Experience Platform."),
    },
) as dag:

    @task
    def day_folders(params: dict | None = None) -> list[str]:
        """``events/<day>/`` for each day of the range."""
        first = dt.date.fromisoformat(params["first_day"])
        return [f"events/{first + dt.timedelta(days=n)}/" for n in range(params["days"])]

    @task
    def folder_uris(folders: list[str], params: dict | None = None) -> list[str]:
        return [f"s3://{params['bucket']}/{folder}" for folder in folders]

    folders = day_folders()

    ensure_connection = PolarisEnsureS3ConnectionOperator(
        task_id="polaris_ensure_connection",
        name="{{ params.polaris_connection }}",
        bucket="{{ params.bucket }}",
        aws_assumed_role_arn="{{ params.aws_assumed_role_arn }}",
    )
    polaris_ingest = PolarisStartIngestionJobOperator.partial(
        task_id="polaris_ingest",
        table_name="{{ params.table }}",
        connection_name="{{ params.polaris_connection }}",
        deferrable=True,
        poll_interval=5,
        timeout=3 * 3600,
    ).expand(prefixes=folders.map(lambda folder: [folder]))

    adobe_ingest = S3ToAdobeAepOperator.partial(
        task_id="adobe_ingest",
        dataset_id="{{ params.aep_dataset_id }}",
        input_format="json",
        deferrable=True,
        poll_interval=5,
        timeout=3 * 3600,
    ).expand(s3_prefix=folder_uris(folders))

    @task(trigger_rule="none_failed")
    def summarize(ti=None) -> dict:
        summary = {
            "polaris_jobs": list(ti.xcom_pull(task_ids="polaris_ingest") or []),
            "adobe_batches": [b["batch_id"] for b in ti.xcom_pull(task_ids="adobe_ingest") or [] if b],
        }
        print(f"Landed: {summary}")
        return summary

    summary = summarize()
    branch_switch("polaris") >> ensure_connection >> polaris_ingest >> summary
    branch_switch("adobe") >> adobe_ingest >> summary
    folders >> ensure_connection
