"""Amazon Q in Connect: import a quick-responses CSV from S3 and wait for the import job."""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import math
import re
import uuid
import warnings
from collections.abc import Iterator
from typing import Any, cast

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk import Context
from botocore.exceptions import ClientError

from airflow_provider_ingest.exceptions import (
    IngestApiError,
    IngestInputError,
    IngestJobFailed,
    IngestJobTimeout,
)
from airflow_provider_ingest.hooks.qconnect import (
    IMPORT_JOB_STATUSES,
    QCONNECT_UI_COLOR,
    SERVICE,
    QConnectHook,
    as_provider_error,
)
from airflow_provider_ingest.http import ApiClient, mask
from airflow_provider_ingest.jobs import JobState, wait_for_job
from airflow_provider_ingest.lineage_aws import QConnectLineage
from airflow_provider_ingest.operators.base import (
    ExactlyOnceJobMixin,
    default_deferrable,
    fail_fast_on_bad_input,
)
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
UPLOAD_ID_KEY = "qconnect_upload_id"  # {"upload_id", "etag"}: the upload the next start call uses
# StartImportJob calls per try whose 2xx reply carries no ``importJob`` (a body cut in transit:
# botocore then returns only ResponseMetadata) before the task gives up, naming the clientToken.
START_REPLY_ATTEMPTS = 3
KB_ARN = re.compile(rf"^arn:[a-z-]+:wisdom:[a-z0-9-]*:[0-9]{{12}}:([a-z-]+)/({_UUID}(?:/{_UUID})*)$")


DEFAULT_WAITER_DELAY = 30.0
DEFAULT_WAIT_SECONDS = 6 * 3600.0


def waiter_settings(
    owner: str,
    waiter_delay: float | None,
    waiter_max_attempts: int | None,
    poll_interval: float | None,
    timeout: float | None,
) -> tuple[float, int]:
    """``(waiter_delay, waiter_max_attempts)`` from the amazon provider's names or their
    deprecated aliases ``poll_interval`` (the delay) and ``timeout`` (seconds: the attempts are
    ``ceil(timeout / delay)``); a name and its alias together are a TypeError."""
    from airflow.exceptions import AirflowProviderDeprecationWarning

    for alias, value, name, named in (
        ("poll_interval", poll_interval, "waiter_delay", waiter_delay),
        ("timeout", timeout, "waiter_max_attempts", waiter_max_attempts),
    ):
        if value is None:
            continue
        if named is not None:
            raise TypeError(f"{owner}: give {name}, not also its deprecated alias {alias}")
        warnings.warn(
            f"{owner}: {alias} is deprecated, use {name}", AirflowProviderDeprecationWarning, stacklevel=4
        )
    delay = float(waiter_delay if waiter_delay is not None else poll_interval or DEFAULT_WAITER_DELAY)
    if waiter_max_attempts is not None:
        check_int(waiter_max_attempts, "waiter_max_attempts", 1)
    if delay <= 0:
        raise ValueError(f"waiter_delay: must be more than 0, got {delay}")
    if waiter_max_attempts is None:
        waiter_max_attempts = max(1, math.ceil((timeout or DEFAULT_WAIT_SECONDS) / delay))
    return delay, int(waiter_max_attempts)


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


class QConnectImportQuickResponsesOperator(
    QConnectLineage, ExactlyOnceJobMixin, AwsBaseOperator[QConnectHook]
):
    """Upload the quick-responses CSV at ``s3_key`` to a knowledge base and import it.

    The CSV is checked before any Q in Connect call (exists, not empty, UTF-8, a header naming at
    least the name and content columns), then the knowledge base (``GetKnowledgeBase``): it must be
    a ``QUICK_RESPONSES`` knowledge base, or the task fails before any upload. An ARN is accepted
    and turned into the knowledge base's id locally (the API's URLs cannot contain the ARN), then
    checked against the ARN ``GetKnowledgeBase`` returns, so a region or account other than the
    connection's is refused by name instead of reaching another knowledge base.

    ``start_content_upload`` gives a presigned URL; the object is streamed from S3 to it with every
    header in ``headersToInclude``, then ``start_import_job`` runs with a ``clientToken`` derived
    from the DAG run, task, map index, file and upload id. StartImportJob is idempotent on that
    token, so a start whose reply was lost or cut (no ``importJob`` in it) is sent again at once,
    up to ``START_REPLY_ATTEMPTS`` times in a try; a retried task sends it again too and gets the
    same job back, never a second one. The upload (its id and the object's ETag) is kept in
    ``task_state_store`` and reused only while the job it fed is in progress or complete: after a
    FAILED import, or once the S3 object changed, the retry uploads the file again under a new
    token (the same token would return the failed job forever).

    Import jobs cannot be canceled through the API: a timeout leaves the job to finish. Wrong
    arguments and errors a retry cannot fix (validation, unknown resource, access denied,
    conflict) fail without Airflow's retries. Returns the import job id.

    Waiting, as the amazon provider's operators wait: ``waiter_delay`` seconds between polls
    (default 30) and at most ``waiter_max_attempts`` polls (default 720: six hours at the default
    delay), poked or deferred. ``poll_interval`` (deprecated) is ``waiter_delay``; ``timeout``
    (deprecated, seconds) sets ``waiter_max_attempts = ceil(timeout / waiter_delay)``.
    ``aws_conn_id``, ``region_name``, ``verify`` and ``botocore_config`` are ``AwsBaseOperator``'s
    and reach the deferred wait too.

    :param s3_key: The CSV, as ``s3://bucket/key`` or, with ``s3_bucket``, as a key (templated).
    :param knowledge_base_id: The id or ARN of a ``QUICK_RESPONSES`` knowledge base (templated).
    :param s3_bucket: The bucket, when ``s3_key`` is a key rather than a URI (templated).
    :param metadata: Up to 10 string pairs attached to the import job (templated).
    :param external_source_configuration: ``{"source": "AMAZON_CONNECT", "configuration":
        {"connectConfiguration": {"instanceId": ...}}}`` (templated).
    :param wait_for_completion: Wait until the import job ends, and fail the task when it fails.
    :param deferrable: Wait in the triggerer instead of holding a worker slot. The default is
        Airflow's ``[operators] default_deferrable`` setting (``False`` unless configured).
    :param waiter_delay: Seconds between two status reads while waiting (default 30).
    :param waiter_max_attempts: Status reads at most (default 720); the wait lasts at most
        ``waiter_delay * waiter_max_attempts`` seconds, kept across retries. Import jobs cannot be
        canceled through the API, so a job still running then is left running.
    :param poll_interval: Deprecated: ``waiter_delay``.
    :param timeout: Deprecated: seconds, giving ``waiter_max_attempts = ceil(timeout / waiter_delay)``.
    :param presigned_url_ttl_minutes: How long the upload URL Q in Connect hands out stays valid,
        1 to 60 minutes.
    """

    aws_hook_class = QConnectHook
    external_id_key = "qconnect_import_job_id"
    start_is_idempotent = True  # clientToken: the same request returns the same job
    can_cancel = False  # the API has no call that stops an import job
    how_to_check = "the knowledge base's import jobs (ListImportJobs)"
    template_fields = aws_template_fields(
        "s3_key", "s3_bucket", "knowledge_base_id", "metadata", "external_source_configuration"
    )
    template_fields_renderers = {"metadata": "json", "external_source_configuration": "json"}
    ui_color = QCONNECT_UI_COLOR

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
        waiter_delay: float | None = None,
        waiter_max_attempts: int | None = None,
        poll_interval: float | None = None,
        timeout: float | None = None,
        presigned_url_ttl_minutes: int = 60,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        waiter_delay, waiter_max_attempts = waiter_settings(
            type(self).__name__, waiter_delay, waiter_max_attempts, poll_interval, timeout
        )
        self.resubmit_on_unknown_start = False  # never needed: the start is idempotent
        self.cancel_on_timeout = False  # nothing to cancel with
        self.s3_key = s3_key
        self.s3_bucket = s3_bucket
        self.knowledge_base_id = knowledge_base_id
        self.metadata = metadata
        self.external_source_configuration = external_source_configuration
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.presigned_url_ttl_minutes = presigned_url_ttl_minutes
        self.job_id: str | None = None
        self.etag: str | None = None
        self.kb_id: str | None = None  # checked by GetKnowledgeBase; never an ARN

    @property
    def wait_seconds(self) -> float:
        """The whole wait: ``waiter_delay * waiter_max_attempts``."""
        return self.waiter_delay * self.waiter_max_attempts

    @property
    def poll_interval(self) -> float:
        """Deprecated: ``waiter_delay``."""
        return self.waiter_delay

    @property
    def timeout(self) -> float:
        """Deprecated: ``waiter_delay * waiter_max_attempts``."""
        return self.wait_seconds

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
        self.etag = str(head.get("ETag") or "").strip('"')
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

    # --- the knowledge base -----------------------------------------------------------------------
    def kb_path_id(self) -> str:
        """``knowledge_base_id`` as the API's URLs take it: the id, also when an ARN was given."""
        arn = KB_ARN.match(self.knowledge_base_id)
        return arn.group(2) if arn else self.knowledge_base_id

    def knowledge_base(self) -> str:
        """The knowledge base's id, once ``GetKnowledgeBase`` showed a QUICK_RESPONSES knowledge
        base (and, for an ARN, the very one the ARN names). Raises :class:`IngestInputError`."""
        if self.kb_id is not None:
            return self.kb_id
        given = self.knowledge_base_id
        arn = KB_ARN.match(given)
        if arn and (arn.group(1) != "knowledge-base" or "/" in arn.group(2)):
            raise IngestInputError(
                f"knowledge_base_id: {given!r} is the ARN of a {arn.group(1)}, not of a knowledge base"
            )
        kb_id = self.kb_path_id()
        try:
            kb = self.hook.get_knowledge_base(kb_id)
        except ClientError as exc:
            error = as_provider_error(exc)
            if getattr(error, "code", None) != "ResourceNotFoundException":
                raise error from exc
            where = " in the connection's region and account" if arn else ""
            reason = cast(IngestApiError, error).server_message  # as_provider_error of a ClientError
            raise IngestInputError(
                f"knowledge_base_id: no knowledge base {kb_id}{where} ({reason})"
            ) from None
        if arn and kb.get("knowledgeBaseArn") != given:
            raise IngestInputError(
                f"knowledge_base_id: the ARN {given} is not the knowledge base the connection reaches "
                f"under that id ({kb.get('knowledgeBaseArn')}): check the region and account"
            )
        if kb.get("knowledgeBaseType") != "QUICK_RESPONSES":
            raise IngestInputError(
                f"knowledge_base_id: {given} is a {kb.get('knowledgeBaseType')} knowledge base; quick "
                "responses can be imported only into a QUICK_RESPONSES knowledge base"
            )
        self.kb_id = kb_id
        return kb_id

    # --- ExactlyOnceJobMixin ---------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        with fail_fast_on_bad_input(), provider_errors():
            self.validate()
            self.knowledge_base()  # before any upload
            return self.execute_resumable(context)

    @property
    def service_name(self) -> str:
        return SERVICE

    def object_etag(self) -> str:
        """The S3 object's ETag, read once per operator (``check_csv`` reads it first)."""
        if self.etag is None:
            bucket, key = self.s3_location()
            self.etag = str(self.s3_client.head_object(Bucket=bucket, Key=key).get("ETag") or "").strip('"')
        return self.etag

    def describe_start(self) -> str:
        return f"the import of {self.s3_key}"

    def client_token(self, context: Context, upload_id: str) -> str:
        """The same for every call of one upload in one task (its tries, its resends); another
        upload (after a FAILED import, or a changed file) gets another token."""
        ti = context.get("ti")
        if ti is not None:
            run = f"{ti.dag_id}|{ti.run_id}|{ti.task_id}|{ti.map_index}"
        else:  # outside a task run: no retry to protect, but resends in this call still share it
            run = self.__dict__.setdefault("_run_seed", uuid.uuid4().hex)
        bucket, key = self.s3_location()
        seed = f"{run}|s3://{bucket}/{key}|{self.kb_path_id()}|{upload_id}"
        return hashlib.sha256(seed.encode()).hexdigest()

    def upload(self) -> str:
        bucket, key = self.s3_location()
        reply = self.hook.conn.start_content_upload(
            knowledgeBaseId=self.kb_path_id(),
            contentType="text/csv",
            presignedUrlTimeToLive=self.presigned_url_ttl_minutes,
        )
        mask(reply["url"])
        size = self.s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"]

        def stream() -> _S3Upload:  # a fresh S3 stream for each try of the PUT
            return _S3Upload(self.s3_client.get_object(Bucket=bucket, Key=key)["Body"], size)

        headers = {**(reply.get("headersToInclude") or {}), "Content-Length": str(size)}
        upload = ApiClient("Amazon Q in Connect upload", reply["url"], network=self.hook.network_settings())
        upload.request("PUT", "", data=stream, headers=headers)
        self.log.info("Uploaded s3://%s/%s (%d bytes) as upload %s", bucket, key, size, reply["uploadId"])
        return reply["uploadId"]

    def reusable_upload(self, context: Context) -> str | None:
        """The stored upload, while the object is unchanged and no FAILED import used it."""
        ledger = self.ledger(context)
        record = ledger.store.get(UPLOAD_ID_KEY)
        if isinstance(record, str):  # stored by an earlier version: an id without its ETag
            record = {"upload_id": record, "etag": None}
        if not isinstance(record, dict) or not record.get("upload_id"):
            return None
        upload_id = record["upload_id"]
        if record.get("etag") not in (None, self.object_etag()):
            self.log.info(
                "%s changed since upload %s (ETag %s, now %s): uploading it again",
                self.s3_key,
                upload_id,
                record.get("etag"),
                self.etag,
            )
            return None
        previous = ledger.job_id()
        if previous:
            job = self.hook.get_import_job(self.kb_path_id(), previous)
            if job.get("uploadId") == upload_id and (
                IMPORT_JOB_STATUSES.state_of(job.get("status")) is JobState.FAILED
            ):
                self.log.info(
                    "Import job %s of upload %s ended %s: uploading again under a new clientToken",
                    previous,
                    upload_id,
                    job.get("status"),
                )
                return None
        return upload_id

    def submit(self, context: Context) -> str:
        kb_id = self.knowledge_base()
        upload_id = self.reusable_upload(context)
        if upload_id is None:
            upload_id = self.upload()
            record = {"upload_id": upload_id, "etag": self.object_etag()}
            self.ledger(context).store.set(UPLOAD_ID_KEY, record)
        token = self.client_token(context, upload_id)
        optional = {
            k: v
            for k, v in (
                ("metadata", self.metadata),
                ("externalSourceConfiguration", self.external_source_configuration),
            )
            if v
        }
        request = {
            "knowledgeBaseId": kb_id,
            "importJobType": "QUICK_RESPONSES",
            "uploadId": upload_id,
            "clientToken": token,
            **optional,
        }
        for attempt in range(1, START_REPLY_ATTEMPTS + 1):
            reply = self.start_call(context, request, lambda: self.hook.conn.start_import_job(**request))
            job = reply.get("importJob") if isinstance(reply, dict) else None
            if isinstance(job, dict) and job.get("importJobId"):
                return job["importJobId"]
            # The body was cut or garbled after the service acted (or not): the token makes a
            # resend safe, and it returns the job the first call made, if it made one.
            self.log.warning(
                "StartImportJob replied without the import job (%d of %d); sending it again with "
                "clientToken %s",
                attempt,
                START_REPLY_ATTEMPTS,
                token,
            )
        # The intent stays recorded: Airflow's retry sends the same token again and gets the job.
        raise IngestApiError(
            SERVICE,
            "POST",
            f"/knowledgeBases/{kb_id}/importJobs",
            200,
            f"{START_REPLY_ATTEMPTS} replies in a row carried no importJob, for clientToken {token}; "
            "a job may have started: a retry of this task sends the same clientToken and gets it back",
            "NoImportJob",
        )

    def get_job_status(self, external_id: Any, context: Context) -> str:
        return self.hook.get_import_job(self.kb_path_id(), external_id)["status"]

    def is_job_active(self, status: str) -> bool:
        # an unknown status keeps waiting, as in the waiter: re-attach rather than submit twice
        return IMPORT_JOB_STATUSES.state_of(status) not in (JobState.SUCCEEDED, JobState.FAILED)

    def is_job_succeeded(self, status: str) -> bool:
        return IMPORT_JOB_STATUSES.state_of(status) is JobState.SUCCEEDED

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        self.job_id = external_id
        if not self.wait_for_completion:
            return external_id
        deadline = self.deadline(context)  # stored with the job: a retry keeps it
        if self.deferrable:
            self.defer(
                trigger=QConnectImportJobTrigger(
                    knowledge_base_id=self.kb_path_id(),
                    import_job_id=external_id,
                    deadline=deadline,
                    waiter_delay=self.waiter_delay,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
            )
        with self.cancel_when_timed_out(external_id):
            # Every status read either answers or raises: botocore retries what is transient
            # (within its attempts, honouring Retry-After), anything else fails with the
            # vendor's message. Nothing is swallowed and decided on a later read.
            wait_for_job(
                _ImportJobs(self.hook, self.kb_path_id()),
                external_id,
                poll_interval=self.poll_interval,
                deadline=deadline,
                log=self.log,
            )
        return external_id  # the mixin returns this on re-attach

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        return external_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        with provider_errors():
            import_job_id = (event or {}).get("import_job_id") or self.job_id
            if import_job_id is None:
                raise IngestJobFailed(
                    "Amazon Q in Connect: no import job id (not in the event, none recorded)"
                )
            job = self.hook.get_import_job(self.kb_path_id(), import_job_id)
            if check_import_job(self.hook, job):
                return import_job_id
            message = (event or {}).get("message") or f"the wait ended without a result: {event!r}"
            raise (IngestJobTimeout if (event or {}).get("status") == "timeout" else IngestJobFailed)(
                f"Amazon Q in Connect import job {import_job_id}: {message}"
            )


class _ImportJobs:
    """The import jobs of one knowledge base, as the shared wait (``wait_for_job``) reads a job."""

    service = SERVICE

    def __init__(self, hook: QConnectHook, knowledge_base_id: str):
        self.hook, self.knowledge_base_id = hook, knowledge_base_id

    def job_snapshot(self, job_id: str) -> Any:
        return self.hook.import_job_snapshot(self.knowledge_base_id, job_id)


@contextlib.contextmanager
def provider_errors() -> Iterator[None]:
    """botocore's ``ClientError`` as the provider's errors (see ``as_provider_error``)."""
    try:
        yield
    except ClientError as exc:
        raise as_provider_error(exc) from exc
