"""Amazon Q in Connect: import a quick-responses CSV from S3 and wait for the import job."""

from __future__ import annotations

import codecs
import csv
import hashlib
import math
import re
import time
import uuid
from typing import Any, cast

from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.sdk import Context, ResumableJobMixin

from airflow_provider_ingest.hooks.qconnect import IMPORT_JOB_STATUSES, QConnectHook
from airflow_provider_ingest.http import ApiClient, mask
from airflow_provider_ingest.jobs import JobState
from airflow_provider_ingest.lineage import QConnectLineage
from airflow_provider_ingest.operators.base import default_deferrable
from airflow_provider_ingest.sensors.qconnect import check_import_job
from airflow_provider_ingest.triggers.qconnect import QConnectImportJobTrigger
from airflow_provider_ingest.validation import (
    check_bucket,
    check_int,
    check_type,
    parse_s3_object_uri,
    require,
)

# Quick-response CSV columns the header check knows, compared case-insensitively and ignoring
# spaces, dashes and underscores. ``name`` and ``content`` are required.
KNOWN_COLUMNS = (
    "name",
    "content",
    "contenttype",
    "shortcutkey",
    "description",
    "channels",
    "language",
    "groupingcriteria",
    "groupingvalues",
    "isactive",
)
REQUIRED_COLUMNS = ("name", "content")
_UUID = r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}"
# botocore's UuidOrArn pattern (fully anchored); botocore does not check patterns client-side, so
# an id matching neither would otherwise reach the service (after the upload, for StartImportJob).
KNOWLEDGE_BASE_ID = re.compile(
    rf"^({_UUID}|arn:[a-z-]*?:wisdom:[a-z0-9-]*?:[0-9]{{12}}:[a-z-]*?/{_UUID}(?:/{_UUID}){{0,2}})$"
)
# botocore's model: ContentMetadata is a map of at most 10 entries whose keys and values are
# NonEmptyString (1 to 4096 characters); TimeToLive is 1 to 60 minutes.
MAX_METADATA_ENTRIES = 10
MAX_STRING = 4096
CHUNK = 1 << 20
UPLOAD_ID_KEY = "qconnect_upload_id"


def normalize_column(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


class _S3Upload:
    """A file-like view of one S3 object for ``requests``: streamed, never held whole in memory."""

    def __init__(self, body: Any, size: int):
        self.body = body
        self.size = size

    def read(self, n: int = -1) -> bytes:
        return self.body.read(n if n and n > 0 else CHUNK)

    def __len__(self) -> int:
        return self.size


class QConnectImportQuickResponsesOperator(QConnectLineage, ResumableJobMixin, AwsBaseOperator[QConnectHook]):
    """Upload the quick-responses CSV at ``s3_key`` to a knowledge base and import it.

    The CSV is checked before any Q in Connect call (exists, not empty, UTF-8, a header naming at
    least the name and content columns). ``start_content_upload`` gives a presigned URL; the object
    is streamed from S3 to it with every header in ``headersToInclude``, then ``start_import_job``
    runs with a ``clientToken`` derived from the DAG run, task and file, so a retried task gets the
    same import job back rather than a second one. The upload id is kept in ``task_state_store``
    so a retry reuses the upload the token was first sent with. Returns the import job id.

    :param s3_key: The CSV, as ``s3://bucket/key`` or, with ``s3_bucket``, as a key (templated).
    :param knowledge_base_id: The id or ARN of a ``QUICK_RESPONSES`` knowledge base (templated).
    :param s3_bucket: The bucket, when ``s3_key`` is a key rather than a URI (templated).
    :param metadata: Up to 10 string pairs attached to the import job (templated).
    :param external_source_configuration: ``{"source": "AMAZON_CONNECT", "configuration":
        {"connectConfiguration": {"instanceId": ...}}}`` (templated).
    :param wait_for_completion: Wait until the import job ends, and fail the task when it fails.
    :param deferrable: Wait in the triggerer instead of holding a worker slot. The default is
        Airflow's ``[operators] default_deferrable`` setting (``False`` unless configured).
    :param poll_interval: Seconds between two status reads while waiting.
    :param timeout: Seconds the wait may last. Import jobs cannot be canceled through the API,
        so a job still running then is left running.
    :param presigned_url_ttl_minutes: How long the upload URL Q in Connect hands out stays valid,
        1 to 60 minutes.
    """

    aws_hook_class = QConnectHook
    external_id_key = "qconnect_import_job_id"
    template_fields = aws_template_fields(
        "s3_key", "s3_bucket", "knowledge_base_id", "metadata", "external_source_configuration"
    )

    def __init__(
        self,
        *,
        s3_key: str,
        knowledge_base_id: str,
        s3_bucket: str | None = None,
        metadata: dict[str, str] | None = None,
        external_source_configuration: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = default_deferrable(),
        poll_interval: float = 30,
        timeout: float = 6 * 3600.0,
        presigned_url_ttl_minutes: int = 60,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.s3_key = s3_key
        self.s3_bucket = s3_bucket
        self.knowledge_base_id = knowledge_base_id
        self.metadata = metadata
        self.external_source_configuration = external_source_configuration
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.presigned_url_ttl_minutes = presigned_url_ttl_minutes
        self.job_id: str | None = None

    # --- checks before any Q in Connect call ------------------------------------------------------
    def s3_location(self) -> tuple[str, str]:
        if self.s3_bucket:
            # both forms at once would send the URI as a key; a bad bucket would reach S3
            check_bucket(self.s3_bucket, "s3_bucket")
            key = check_type(require(self.s3_key, "s3_key"), str, "s3_key")
            if key.startswith("s3://"):
                raise ValueError("s3_key: give a key with s3_bucket, or an s3:// URI without s3_bucket")
            if key.endswith("/"):
                raise ValueError(f"s3_key: {key!r} is a folder, not the CSV object")
            return self.s3_bucket, key
        return parse_s3_object_uri(self.s3_key, "s3_key")

    def validate(self) -> None:
        kb_id = check_type(require(self.knowledge_base_id, "knowledge_base_id"), str, "knowledge_base_id")
        if not KNOWLEDGE_BASE_ID.match(kb_id):
            raise ValueError(
                f"knowledge_base_id: {self.knowledge_base_id!r} is not a knowledge base id or ARN"
            )
        metadata = check_type(self.metadata or {}, dict, "metadata")
        if len(metadata) > MAX_METADATA_ENTRIES:
            raise ValueError(f"metadata: at most {MAX_METADATA_ENTRIES} entries, got {len(metadata)}")
        for key, value in metadata.items():
            check_type(key, str, "metadata")
            check_type(value, str, f"metadata.{key}")
            if not 1 <= len(key) <= MAX_STRING or not 1 <= len(value) <= MAX_STRING:
                raise ValueError(f"metadata: keys and values must be 1 to {MAX_STRING} characters ({key!r})")
        if self.external_source_configuration is not None:
            config = check_type(self.external_source_configuration, dict, "external_source_configuration")
            if config.get("source") != "AMAZON_CONNECT":
                raise ValueError("external_source_configuration.source: must be 'AMAZON_CONNECT'")
            field = "external_source_configuration.configuration"
            configuration = check_type(config.get("configuration") or {}, dict, field)
            connect = check_type(
                configuration.get("connectConfiguration") or {}, dict, f"{field}.connectConfiguration"
            )
            field = f"{field}.connectConfiguration.instanceId"
            if len(check_type(require(connect.get("instanceId"), field), str, field)) > MAX_STRING:
                raise ValueError(f"{field}: at most {MAX_STRING} characters")
        check_int(self.presigned_url_ttl_minutes, "presigned_url_ttl_minutes", 1, 60)
        self.s3_location()  # the arguments, before check_csv reads S3
        self.check_csv()

    @property
    def s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    def check_csv(self) -> int:
        """Stream the object once: UTF-8 throughout and a usable header. Returns its size."""
        bucket, key = self.s3_location()
        uri = f"s3://{bucket}/{key}"
        try:
            head = self.s3_client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # botocore raises a ClientError subclass per code
            raise ValueError(
                f"s3_key: {uri} does not exist or cannot be read ({type(exc).__name__})"
            ) from None
        if not head["ContentLength"]:
            raise ValueError(f"s3_key: {uri} is empty")
        decoder = codecs.getincrementaldecoder("utf-8")()
        body = self.s3_client.get_object(Bucket=bucket, Key=key)["Body"]
        header_text, offset = "", 0
        try:
            while chunk := body.read(CHUNK):
                text = decoder.decode(chunk)
                if "\n" not in header_text:
                    header_text += text[:CHUNK]
                offset += len(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ValueError(f"s3_key: {uri} is not UTF-8 (byte {offset + exc.start})") from None
        header = next(csv.reader([header_text.lstrip("\ufeff").splitlines()[0] if header_text else ""]), [])
        columns = {normalize_column(c) for c in header}
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(
                f"s3_key: {uri} has no header row naming the {' and '.join(missing)} column(s); "
                f"known columns: {', '.join(KNOWN_COLUMNS)}"
            )
        if unknown := sorted(columns - set(KNOWN_COLUMNS)):
            self.log.warning("Columns the import may not know: %s", unknown)
        return head["ContentLength"]

    # --- ResumableJobMixin -----------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self.validate()
        return self.execute_resumable(context)

    def client_token(self, context: Context) -> str:
        ti = context.get("ti")
        if ti is None:  # outside a task run there is no retry to protect
            return uuid.uuid4().hex
        bucket, key = self.s3_location()
        seed = f"{ti.dag_id}|{ti.run_id}|{ti.task_id}|{ti.map_index}|s3://{bucket}/{key}|{self.knowledge_base_id}"
        return hashlib.sha256(seed.encode()).hexdigest()

    def upload(self) -> str:
        bucket, key = self.s3_location()
        reply = self.hook.conn.start_content_upload(
            knowledgeBaseId=self.knowledge_base_id,
            contentType="text/csv",
            presignedUrlTimeToLive=self.presigned_url_ttl_minutes,
        )
        mask(reply["url"])
        size = self.s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"]

        def stream() -> _S3Upload:  # a fresh S3 stream for each try of the PUT
            return _S3Upload(self.s3_client.get_object(Bucket=bucket, Key=key)["Body"], size)

        headers = {**(reply.get("headersToInclude") or {}), "Content-Length": str(size)}
        ApiClient("Amazon Q in Connect upload", reply["url"]).request("PUT", "", data=stream, headers=headers)
        self.log.info("Uploaded s3://%s/%s (%d bytes) as upload %s", bucket, key, size, reply["uploadId"])
        return reply["uploadId"]

    def submit_job(self, context: Context) -> str:
        store = context.get("task_state_store")
        upload_id = store.get(UPLOAD_ID_KEY) if store is not None else None
        if not upload_id:
            upload_id = self.upload()
            if store is not None:
                store.set(UPLOAD_ID_KEY, upload_id)
        optional = {
            k: v
            for k, v in (
                ("metadata", self.metadata),
                ("externalSourceConfiguration", self.external_source_configuration),
            )
            if v
        }
        job = self.hook.conn.start_import_job(
            knowledgeBaseId=self.knowledge_base_id,
            importJobType="QUICK_RESPONSES",
            uploadId=upload_id,
            clientToken=self.client_token(context),
            **optional,
        )["importJob"]
        self.job_id = job["importJobId"]
        self.log.info("Started Q in Connect import job %s", self.job_id)
        return self.job_id

    def get_job_status(self, external_id: Any, context: Context) -> str:
        return self.hook.get_import_job(self.knowledge_base_id, external_id)["status"]

    def is_job_active(self, status: str) -> bool:
        # an unknown status keeps waiting, as in the waiter: re-attach rather than submit twice
        return IMPORT_JOB_STATUSES.state_of(status) not in (JobState.SUCCEEDED, JobState.FAILED)

    def is_job_succeeded(self, status: str) -> bool:
        return IMPORT_JOB_STATUSES.state_of(status) is JobState.SUCCEEDED

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        self.job_id = external_id
        if self.wait_for_completion and self.deferrable:
            self.defer(
                trigger=QConnectImportJobTrigger(
                    knowledge_base_id=self.knowledge_base_id,
                    import_job_id=external_id,
                    deadline=time.time() + self.timeout,
                    waiter_delay=self.poll_interval,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                ),
                method_name="execute_complete",
            )
        if self.wait_for_completion:
            self.wait(external_id)
        return external_id  # the mixin returns this on re-attach

    def wait(self, import_job_id: str) -> None:
        """Poke with the package's waiter (the amazon provider's logging wait loop)."""
        try:
            wait(
                waiter=self.hook.get_waiter("import_job_complete"),
                # amazon annotates int; the delay only reaches time.sleep, which takes a float
                waiter_delay=self.poll_interval,  # type: ignore[arg-type]
                waiter_max_attempts=max(1, math.ceil(self.timeout / max(self.poll_interval, 0.1))),
                args={"knowledgeBaseId": self.knowledge_base_id, "importJobId": import_job_id},
                failure_message="Amazon Q in Connect import job failed",
                status_message="Import job status",
                status_args=["importJob.status"],
            )
        except AirflowException:
            pass  # the job's own state says what happened; a failure is summarised below
        job = self.hook.get_import_job(self.knowledge_base_id, import_job_id)
        if not check_import_job(self.hook, job):
            raise TimeoutError(f"Q in Connect import job {import_job_id} did not finish in {self.timeout}s")

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        return external_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        # execute() stored the id before deferring, so one of the two is set
        import_job_id = cast(str, (event or {}).get("import_job_id") or self.job_id)
        job = self.hook.get_import_job(self.knowledge_base_id, import_job_id)
        if not check_import_job(self.hook, job):
            raise TimeoutError(f"Q in Connect import job {import_job_id}: {(event or {}).get('message')}")
        return import_job_id
