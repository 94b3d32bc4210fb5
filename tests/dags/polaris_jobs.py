"""Test DAGs: one Polaris ingestion task, poking or deferred, with one retry and no retry delay."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_ingest.operators.polaris import PolarisStartIngestionJobOperator

for mode in ("poke", "deferred"):
    with DAG(
        dag_id=f"test_polaris_{mode}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        render_template_as_native_obj=True,
        params={"table": "events", "connection": "test-conn", "prefixes": None, "uris": None},
    ):
        PolarisStartIngestionJobOperator(
            task_id="ingest",
            table_name="{{ params.table }}",
            connection_name="{{ params.connection }}",
            prefixes="{{ params.prefixes }}",
            uris="{{ params.uris }}",
            deferrable=mode == "deferred",
            poll_interval=0.2,
            timeout=60,
            retries=1,
            retry_delay=dt.timedelta(seconds=0),
        )
