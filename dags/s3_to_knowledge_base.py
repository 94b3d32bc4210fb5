"""
### S3 to knowledge base

Imports one day's knowledge content folder from S3 into knowledge services.

- **eGain AI Knowledge Hub**: imports `<prefix>articles/` (formatted as eGain's import format
  guide describes) and waits for the job in the triggerer. `egain_validate_first` runs a
  validation job first and stops before importing when the folder has errors.
- **Amazon Q in Connect**: uploads `<prefix>quick_responses.csv` to a quick-responses knowledge
  base and waits for the import job.
- **Zeta Alpha**: sends every file under `<prefix>articles/` as a document (mirroring the folder:
  unchanged files are skipped, removed ones deleted) and waits until all are indexed.

Branches run in parallel. On its daily schedule the run reads
`s3://<bucket>/knowledge/<logical date>/`; from the UI's
trigger form, fill in `prefix` to import another folder, or switch a branch off. The last task
logs and returns what landed.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task

from airflow_provider_ingest.branching import branch_switch
from airflow_provider_ingest.operators.egain import EgainStartImportOperator
from airflow_provider_ingest.operators.qconnect import QConnectImportQuickResponsesOperator
from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator

# A run triggered with no logical date (the REST API allows it) has no `ds`: it reads the folder of
# the day it runs after.
FOLDER = (
    "{{ params.prefix or 'knowledge/' ~ "
    "(dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d') ~ '/' }}"
)

with DAG(
    dag_id="s3_to_knowledge_base",
    description="An S3 content folder into knowledge services",
    doc_md=__doc__,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1)},
    tags=["ingest", "egain", "qconnect", "zeta_alpha"],
    params={
        "bucket": Param("ingest-demo", type="string", minLength=3, description="S3 bucket to read."),
        "prefix": Param(
            "",
            type="string",
            description="Folder in the bucket, ending in '/'. Empty: knowledge/<logical date>/.",
        ),
        "region": Param("us-east-1", type="string", description="AWS region of the bucket."),
        "run_egain": Param(True, type="boolean", description="Import into eGain AI Knowledge Hub."),
        "egain_operation": Param(
            "import", enum=["import", "reimport"], description="eGain: import new content or reimport all."
        ),
        "egain_validate_first": Param(
            False, type="boolean", description="eGain: validate the folder before importing."
        ),
        "egain_schedule_time": Param(
            "",
            type="string",
            description="eGain: start the import at this UTC time (e.g. 2026-03-01T10:00:00Z). Empty: now.",
        ),
        "egain_allow_partial": Param(
            False, type="boolean", description="eGain: a Successful job that reports errors still passes."
        ),
        "run_qconnect": Param(True, type="boolean", description="Import quick responses into Q in Connect."),
        "qconnect_knowledge_base_id": Param(
            "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4",
            type="string",
            description="Q in Connect: id of the QUICK_RESPONSES knowledge base.",
        ),
        "run_zeta_alpha": Param(True, type="boolean", description="Ingest the articles into Zeta Alpha."),
        "zeta_alpha_content_source_id": Param(
            "s3-knowledge",
            type="string",
            minLength=1,
            description="Zeta Alpha: content source the documents belong to (scopes the folder mirror).",
        ),
        "zeta_alpha_content_mode": Param(
            "inline",
            enum=["inline", "url"],
            description="Zeta Alpha: send file contents (inline) or a presigned S3 URL (url).",
        ),
        "zeta_alpha_access_rights": Param(
            ["public"],
            type="array",
            items={"type": "string"},
            minItems=1,
            description="Zeta Alpha: names of the access rights every document allows.",
        ),
    },
) as dag:
    egain_import = EgainStartImportOperator(
        task_id="egain_import",
        s3_path="s3://{{ params.bucket }}/" + FOLDER + "articles/",
        region="{{ params.region }}",
        operation="{{ params.egain_operation }}",
        validate_first="{{ params.egain_validate_first }}",
        schedule_time="{{ params.egain_schedule_time or None }}",
        allow_partial="{{ params.egain_allow_partial }}",
        deferrable=True,
        poll_interval=5,
        timeout=6 * 3600,
    )

    qconnect_import = QConnectImportQuickResponsesOperator(
        task_id="qconnect_import",
        s3_key="s3://{{ params.bucket }}/" + FOLDER + "quick_responses.csv",
        knowledge_base_id="{{ params.qconnect_knowledge_base_id }}",
        deferrable=True,
        waiter_delay=5,
        waiter_max_attempts=3 * 3600 // 5,
    )

    zeta_alpha_ingest = S3ToZetaAlphaOperator(
        task_id="zeta_alpha_ingest",
        s3_prefix="s3://{{ params.bucket }}/" + FOLDER + "articles/",
        content_source_id="{{ params.zeta_alpha_content_source_id }}",
        # names from the form -> [{"name": ...}, ...] (rendered as a native list)
        allow_access_rights="[{% for name in params.zeta_alpha_access_rights %}"
        "{'name': {{ name | tojson }}},{% endfor %}]",
        content_mode="{{ params.zeta_alpha_content_mode }}",
        sync=True,
        deferrable=True,
        poll_interval=5,
        timeout=3 * 3600,
    )

    @task(trigger_rule="none_failed")
    def summarize(ti=None) -> dict:
        summary = {
            "egain": ti.xcom_pull(task_ids="egain_import"),
            "qconnect": {"import_job_id": ti.xcom_pull(task_ids="qconnect_import")},
            "zeta_alpha": {
                k: v
                for k, v in (ti.xcom_pull(task_ids="zeta_alpha_ingest") or {}).items()
                if k != "document_ids"
            },
        }
        print(f"Landed: {summary}")
        return summary

    summary = summarize()
    branch_switch("egain") >> egain_import >> summary
    branch_switch("qconnect") >> qconnect_import >> summary
    branch_switch("zeta_alpha") >> zeta_alpha_ingest >> summary
