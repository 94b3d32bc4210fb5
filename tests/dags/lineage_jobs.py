"""Test DAGs for lineage: every start operator and sensor in one run (links, asset events), and
the example DAGs s3_to_table and on_table_loaded with retries off, so a failure ends a run at once."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.operators.egain import EgainStartImportOperator
from airflow_provider_ingest.operators.polaris import PolarisStartIngestionJobOperator
from airflow_provider_ingest.operators.qconnect import QConnectImportQuickResponsesOperator
from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator
from airflow_provider_ingest.sensors.adobe_aep import AdobeAepBatchSensor
from airflow_provider_ingest.sensors.egain import EgainImportJobSensor
from airflow_provider_ingest.sensors.polaris import PolarisJobSensor
from airflow_provider_ingest.sensors.qconnect import QConnectImportJobSensor
from airflow_provider_ingest.sensors.zeta_alpha import ZetaAlphaDocumentsSensor
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID

BUCKET = "ingest-test"
KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
FAST = {"poll_interval": 0.1, "timeout": 60}

with DAG(
    dag_id="test_lineage_all",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    render_template_as_native_obj=True,
):
    polaris = PolarisStartIngestionJobOperator(
        task_id="polaris",
        table_name="events",
        connection_name="test-conn",
        prefixes=["lineage/polaris/"],
        **FAST,
    )
    adobe = S3ToAdobeAepOperator(
        task_id="adobe", dataset_id=DATASET_ID, s3_prefix=f"s3://{BUCKET}/lineage/aep/", **FAST
    )
    egain = EgainStartImportOperator(
        task_id="egain", s3_path=f"s3://{BUCKET}/lineage/kb/", aws_conn_id="aws_egain", **FAST
    )
    qconnect = QConnectImportQuickResponsesOperator(
        task_id="qconnect", s3_key=f"s3://{BUCKET}/lineage/qr.csv", knowledge_base_id=KB, **FAST
    )
    zeta = S3ToZetaAlphaOperator(
        task_id="zeta", s3_prefix=f"s3://{BUCKET}/lineage/za/", content_source_id="cs-1", **FAST
    )
    polaris >> PolarisJobSensor(task_id="polaris_sensor", job_id="{{ ti.xcom_pull('polaris') }}")
    adobe >> AdobeAepBatchSensor(task_id="adobe_sensor", batch_id="{{ ti.xcom_pull('adobe')['batch_id'] }}")
    egain >> EgainImportJobSensor(task_id="egain_sensor", job_id="{{ ti.xcom_pull('egain')['job_id'] }}")
    qconnect >> QConnectImportJobSensor(
        task_id="qconnect_sensor", knowledge_base_id=KB, import_job_id="{{ ti.xcom_pull('qconnect') }}"
    )
    zeta >> ZetaAlphaDocumentsSensor(
        task_id="zeta_sensor",
        ingestion_job_id="{{ ti.xcom_pull('zeta')['ingestion_job_id'] }}",
        documents="{{ ti.xcom_pull('zeta')['sent'] }}",
    )


def _example(name: str):
    path = Path(__file__).resolve().parents[2] / "dags" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


s3_to_table = _example("s3_to_table")
for task in s3_to_table.tasks:
    task.retries = 0
on_table_loaded = _example("on_table_loaded")
