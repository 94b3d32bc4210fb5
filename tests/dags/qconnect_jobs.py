"""Test DAGs: one Q in Connect quick-responses import, poking or deferred, one retry, no delay."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_ingest.operators.qconnect import QConnectImportQuickResponsesOperator

for mode in ("poke", "deferred"):
    with DAG(
        dag_id=f"test_qconnect_{mode}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        params={"s3_key": "s3://ingest-test/qr/good.csv", "kb": "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"},
    ):
        QConnectImportQuickResponsesOperator(
            task_id="import",
            s3_key="{{ params.s3_key }}",
            knowledge_base_id="{{ params.kb }}",
            deferrable=mode == "deferred",
            waiter_delay=0.2,
            waiter_max_attempts=300,
            retries=1,
            retry_delay=dt.timedelta(seconds=0),
        )
