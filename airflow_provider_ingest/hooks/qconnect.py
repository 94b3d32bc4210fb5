"""Amazon Q in Connect (boto3 ``qconnect``) on the amazon provider's ``AwsBaseHook``."""

from __future__ import annotations

import csv
import io
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_provider_ingest.http import ApiClient, mask

REPORT_SAMPLE = 3


class QConnectHook(AwsBaseHook):
    """``aws_default`` connection; region, role assumption and a per-service endpoint
    (``service_config: {"qconnect": {"endpoint_url": ...}}`` in the extra) work as for any AWS hook.

    Waiters come from this package's ``waiters/qconnect.json`` (``import_job_complete``).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["client_type"] = "qconnect"
        super().__init__(*args, **kwargs)

    @cached_property
    def waiter_path(self) -> Path:
        # The amazon provider looks in its own package; our waiter ships with us.
        return Path(__file__).parents[1] / "waiters" / "qconnect.json"

    def get_import_job(self, knowledge_base_id: str, import_job_id: str) -> dict[str, Any]:
        return self.conn.get_import_job(knowledgeBaseId=knowledge_base_id, importJobId=import_job_id)[
            "importJob"
        ]

    def failure_summary(self, job: dict[str, Any]) -> str:
        """A short account of a failed import: its failed-record count and first few reasons."""
        report_url = job.get("failedRecordReport")
        if not report_url:
            return f"import job {job.get('importJobId')} is {job.get('status')} (no failed-record report)"
        mask(report_url)  # presigned: its signature must not reach a log
        text = ApiClient("Amazon Q in Connect report", report_url).request("GET", "").text
        rows = list(csv.DictReader(io.StringIO(text)))
        reason_column = next(
            (c for c in (rows[0] if rows else {}) if "error" in c.lower() or "reason" in c.lower()), None
        )
        reasons = [row.get(reason_column) or "?" for row in rows[:REPORT_SAMPLE]] if reason_column else []
        first = f"; first reasons: {'; '.join(reasons)}" if reasons else ""
        return (
            f"import job {job.get('importJobId')} is {job.get('status')}: {len(rows)} record(s) failed{first}"
        )
