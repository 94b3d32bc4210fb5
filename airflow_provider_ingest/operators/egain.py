"""eGain AI Knowledge Hub: import a formatted content folder from S3 and wait for the job."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Context

from airflow_provider_ingest.exceptions import IngestJobFailed
from airflow_provider_ingest.hooks.egain import EgainHook
from airflow_provider_ingest.http import mask
from airflow_provider_ingest.jobs import JobSnapshot, wait_for_job
from airflow_provider_ingest.lineage import EgainLineage
from airflow_provider_ingest.operators.base import IngestJobOperator
from airflow_provider_ingest.triggers.egain import EgainImportJobTrigger
from airflow_provider_ingest.validation import check_choice, check_type, parse_s3_uri, require

OPERATIONS = {"import", "reimport"}
VALIDATION_KEY = "egain_validation_job_id"
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


def parse_schedule_time(value: Any, now: datetime | None = None) -> str | None:
    """A UTC instant in the future, as the API's ISO 8601 text (``2024-03-01T10:00:00.000Z``).

    Neither the Ingestion API document nor eGain's published docs give an upper limit, so none is
    imposed here: the API is the judge of how far ahead a job may be scheduled."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"schedule_time: {value!r} is not an ISO 8601 date-time") from None
    check_type(value, datetime, "schedule_time")
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError("schedule_time: must be in UTC (e.g. 2026-03-01T10:00:00Z), not naive or offset")
    now = now or datetime.now(UTC)
    if value <= now:
        raise ValueError(f"schedule_time: {value.isoformat()} is in the past")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class EgainStartImportOperator(EgainLineage, IngestJobOperator):
    """Import the content folder ``s3_path`` (``s3://bucket/folder/``) into the knowledge base.

    The AWS keys eGain needs to read the folder come from the Airflow AWS connection
    ``aws_conn_id``, never from DAG code; temporary credentials are refused, since the API has no
    field for a session token. With ``validate_first=True`` a validation job checks the folder
    first and the task stops, with its errors, before importing anything; the validation job is
    tracked like the import (a kill or a timeout cancels it).

    eGain has no idempotency key and no list of jobs: when the start call's reply is lost (or the
    worker dies during it) the import may or may not have started, and nothing can tell which. The
    task then fails without retrying, naming the folder and the time of the call, unless
    ``resubmit_on_unknown_start=True`` allows a second import.

    Returns ``{"job_id", "status", "results"}``. A ``Successful`` job that reports errors fails
    the task unless ``allow_partial=True``.

    :param s3_path: The folder to import, ``s3://bucket/folder/`` with the trailing ``/``, laid
        out in eGain's import format (templated). It must hold at least one object.
    :param region: The AWS region of the bucket (templated).
    :param operation: ``import`` (new content) or ``reimport`` (templated).
    :param schedule_time: When eGain should run the job, a future UTC instant: a ``datetime``
        with UTC tzinfo or ISO 8601 text such as ``2026-03-01T10:00:00Z`` (templated). ``None``
        starts it at once. A naive, non-UTC or past value fails before any call.
    :param validate_first: Run an eGain validation job on the folder first and stop, naming its
        errors, before importing anything (templated).
    :param allow_partial: Let a ``Successful`` job that reports errors pass.
    :param egain_conn_id: The Airflow connection to eGain.
    :param aws_conn_id: The Airflow AWS connection whose long-lived access key id and secret are
        handed to eGain to read the folder (masked; temporary credentials are refused).
    """

    hook_class = EgainHook
    trigger_class = EgainImportJobTrigger
    external_id_key = "egain_import_job_id"
    how_to_check = "the eGain AI Knowledge Hub's import jobs (Content Manager, Import)"
    template_fields = ("s3_path", "region", "schedule_time", "operation", "validate_first", "allow_partial")

    def __init__(
        self,
        *,
        s3_path: str,
        region: str = "us-east-1",
        operation: str = "import",
        schedule_time: str | datetime | None = None,
        validate_first: bool = False,
        allow_partial: bool = False,
        egain_conn_id: str = "egain_default",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ):
        super().__init__(conn_id=egain_conn_id, **kwargs)
        self.s3_path = s3_path
        self.region = region
        self.operation = operation
        self.schedule_time = schedule_time
        self.validate_first = validate_first
        self.allow_partial = allow_partial
        self.aws_conn_id = aws_conn_id

    def validate(self) -> None:
        bucket, folder = parse_s3_uri(self.s3_path, "s3_path")
        if not self.s3_path.endswith("/"):
            raise ValueError(f"s3_path: {self.s3_path!r} must be a folder ending in '/'")
        check_choice(self.operation, OPERATIONS, "operation")
        check_type(self.validate_first, bool, "validate_first")
        check_type(self.allow_partial, bool, "allow_partial")  # "no" would otherwise be truthy
        if not REGION.match(str(require(self.region, "region"))):
            raise ValueError(f"region: {self.region!r} is not an AWS region name")
        parse_schedule_time(self.schedule_time)
        self._aws = self._aws_hook()
        listing = self._aws.get_conn().list_objects_v2(Bucket=bucket, Prefix=folder, MaxKeys=1)
        if not listing.get("KeyCount"):
            raise ValueError(f"s3_path: {self.s3_path} is empty or does not exist")

    def _aws_hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id)

    def data_source(self) -> dict[str, Any]:
        credentials = self._aws.get_credentials()
        mask(credentials.access_key, credentials.secret_key, credentials.token)
        if credentials.token:
            raise ValueError(
                f"aws_conn_id: {self.aws_conn_id!r} yields temporary credentials (a session token); "
                "eGain accepts only a long-lived access key id and secret"
            )
        if not credentials.access_key or not credentials.secret_key:
            raise ValueError(f"aws_conn_id: {self.aws_conn_id!r} has no access key id and secret")
        return {
            "type": "AWS S3 bucket",
            "path": self.s3_path,
            "region": self.region,
            "credentials": {"accessKeyId": credentials.access_key, "secretAccessKey": credentials.secret_key},
        }

    def describe_start(self) -> str:
        return f"the {self.operation} of {self.s3_path}"

    def submit(self, context: Context) -> str:
        data_source = self.data_source()
        if self.validate_first:
            self.run_validation(data_source, context)
        body: dict[str, Any] = {"dataSource": data_source, "operation": self.operation}
        if schedule := parse_schedule_time(self.schedule_time):
            body["scheduleTime"] = {"date": schedule}
        # the digest names the request without the credentials in it
        request = {"path": self.s3_path, "operation": self.operation, "schedule": schedule}
        return self.start_call(context, request, lambda: self.hook.start_import(body))

    def run_validation(self, data_source: dict[str, Any], context: Context) -> None:
        """Run a validation job to its end; it is stored and killed like the import."""
        store = self.ledger(context).store
        job_id = self.validation_job_id = self.hook.start_validation(data_source)
        store.set(VALIDATION_KEY, job_id)
        self.log.info("Validating %s with eGain job %s", self.s3_path, job_id)
        with self.cancel_when_timed_out(job_id):
            snapshot = wait_for_job(
                self.hook,
                job_id,
                poll_interval=self.poll_interval,
                deadline=self.deadline(context),
                log=self.log,
            )
        self.validation_job_id = None
        errors = (snapshot.details.get("results") or {}).get("errors") or 0
        if errors:
            raise IngestJobFailed(
                f"eGain validation job {job_id} found {errors} error(s) in {self.s3_path}; "
                f"nothing was imported (log: {snapshot.details.get('logFileLocation') or 'none'})"
            )

    def on_kill(self) -> None:
        if self.cancel_on_kill and getattr(self, "validation_job_id", None):
            self.log.info("Canceling eGain validation job %s", self.validation_job_id)
            self.hook.cancel_job(self.validation_job_id)
        super().on_kill()

    def job_result(self, job_id: Any, snapshot: JobSnapshot | None, context: Context) -> Any:
        if not self.wait_for_completion:
            return {"job_id": job_id, "status": None, "results": {}}
        snapshot = snapshot or self.hook.job_snapshot(job_id)
        results = snapshot.details.get("results") or {}
        if results.get("errors") and not self.allow_partial:
            raise IngestJobFailed(
                f"eGain import job {job_id} finished with {results['errors']} error(s) "
                f"({results.get('successful', 0)} imported); set allow_partial=True to accept that "
                f"(log: {snapshot.details.get('logFileLocation') or 'none'})"
            )
        self.log.info("eGain import job %s: %s", job_id, results)
        return {"job_id": job_id, "status": snapshot.status, "results": results}
