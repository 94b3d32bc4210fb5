"""
### Polaris backfill, the usual way (benchmark only)

What a user without this provider writes for `s3_backfill`'s Polaris branch: one mapped
`PythonOperator` per day-folder that starts the ingestion job over the REST API and then polls it
in a `time.sleep` loop. Each wait holds a Celery worker slot until its job ends.
`benchmarks/deployment.py` links this file into the benchmark stack's DAG folder; it is not an
example DAG.
"""

from __future__ import annotations

import datetime as dt
import time

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param, task

from airflow_provider_ingest.operators.polaris import PolarisEnsureS3ConnectionOperator

POLL_SECONDS = 5  # as s3_backfill's poll_interval
INPUT_SCHEMA = [  # the sample events' columns (airflow_provider_ingest.testing.stack.sample_events)
    {"name": "timestamp", "dataType": "string"},
    {"name": "city", "dataType": "string"},
    {"name": "session", "dataType": "string"},
    {"name": "session_length", "dataType": "long"},
]


def load_day(prefix: str, table: str, connection_name: str) -> str:
    """Start a Polaris batch job for one S3 prefix and sleep until it ends; returns its id."""
    import requests
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection("polaris_default")
    base = f"{conn.host.rstrip('/')}/v1/projects/{conn.extra_dejson['project_id']}"
    auth = (conn.password, "")
    spec = {
        "type": "batch",
        "target": {"type": "table", "tableName": table},
        "createTableIfNotExists": True,
        "source": {
            "type": "s3",
            "connectionName": connection_name,
            "prefixes": [prefix],
            "formatSettings": {"format": "nd-json"},
            "inputSchema": INPUT_SCHEMA,
        },
        "mappings": [{"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'}]
        + [{"columnName": c["name"], "expression": f'"{c["name"]}"'} for c in INPUT_SCHEMA[1:]],
    }
    response = requests.post(f"{base}/jobs", json=spec, auth=auth, timeout=30)
    response.raise_for_status()
    job_id = response.json()["id"]
    while True:
        job = requests.get(f"{base}/jobs/{job_id}", auth=auth, timeout=30)
        job.raise_for_status()
        status = job.json()["executionStatus"]
        if status in ("completed", "failed", "canceled"):
            if status != "completed":
                raise RuntimeError(f"Polaris job {job_id} ended {status}")
            return job_id
        time.sleep(POLL_SECONDS)


with DAG(
    dag_id="polaris_sleep_loop",
    description="Benchmark peer: one PythonOperator per day that polls Polaris in a sleep loop",
    doc_md=__doc__,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    render_template_as_native_obj=True,
    tags=["benchmark"],
    params={
        "bucket": Param("ingest-demo", type="string"),
        "first_day": Param("2026-01-01", type="string", format="date"),
        "days": Param(3, type="integer", minimum=1, maximum=366),
        "table": Param("events", type="string"),
        "polaris_connection": Param("ingest-demo-s3", type="string"),
        "aws_assumed_role_arn": Param("arn:aws:iam::123456789012:role/polaris-ingest", type="string"),
    },
) as dag:

    @task
    def day_folders(params: dict | None = None) -> list[list[str]]:
        first = dt.date.fromisoformat(params["first_day"])
        return [[f"events/{first + dt.timedelta(days=n)}/"] for n in range(params["days"])]

    ensure_connection = PolarisEnsureS3ConnectionOperator(
        task_id="polaris_ensure_connection",
        name="{{ params.polaris_connection }}",
        bucket="{{ params.bucket }}",
        aws_assumed_role_arn="{{ params.aws_assumed_role_arn }}",
    )
    folders = day_folders()
    load = PythonOperator.partial(
        task_id="load_day",
        python_callable=load_day,
        op_kwargs={"table": "{{ params.table }}", "connection_name": "{{ params.polaris_connection }}"},
    ).expand(op_args=folders)
    folders >> ensure_connection >> load
