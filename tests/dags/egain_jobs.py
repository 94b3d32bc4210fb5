"""Test DAGs: one eGain import task, poking or deferred, with one retry and no retry delay."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_ingest.operators.egain import EgainStartImportOperator

for mode in ("poke", "deferred"):
    with DAG(
        dag_id=f"test_egain_{mode}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        params={"s3_path": "s3://ingest-test/kb/"},
    ):
        EgainStartImportOperator(
            task_id="import",
            s3_path="{{ params.s3_path }}",
            aws_conn_id="aws_egain",
            deferrable=mode == "deferred",
            poll_interval=0.2,
            timeout=60,
            retries=1,
            retry_delay=dt.timedelta(seconds=0),
        )
