"""Amazon Q in Connect (boto3 ``qconnect``) on the amazon provider's ``AwsBaseHook``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_provider_ingest.exceptions import FINAL_CLIENT_ERRORS, IngestApiError, IngestApiRejected
from airflow_provider_ingest.http import (
    RETRYABLE_STATUSES,
    ApiClient,
    NetworkSettings,
    RetryPolicy,
    mask,
    parse_retry_after,
)
from airflow_provider_ingest.jobs import JobSnapshot, JobState, StatusTable

# The UI colour of this family's operators and sensors.
QCONNECT_UI_COLOR = "#cfe3ff"

REPORT_SAMPLE = 3
SERVICE = "Amazon Q in Connect"


WAITER_PATH = Path(__file__).parents[1] / "waiters" / "qconnect.json"


def status_table(waiter_name: str = "import_job_complete") -> StatusTable:
    """The waiter's acceptors as a status table, so the sensor, the operator and the trigger judge
    a job by the same data the boto waiter uses."""
    acceptors = json.loads(WAITER_PATH.read_text())["waiters"][waiter_name]["acceptors"]
    states: dict[str, set[str]] = {"success": set(), "failure": set(), "retry": set()}
    for acceptor in acceptors:
        if acceptor["matcher"] != "path" or acceptor["argument"] != "importJob.status":
            raise ValueError(f"{WAITER_PATH.name}: only importJob.status path acceptors are supported")
        states[acceptor["state"]].add(acceptor["expected"])
    return StatusTable.of(succeeded=states["success"], failed=states["failure"], running=states["retry"])


IMPORT_JOB_STATUSES = status_table()

# Errors a retry of the task cannot fix (the request, the resource or the permissions are wrong).
# Q in Connect's model gives ThrottlingException HTTP 400, so the code decides, not the status.
FINAL_ERROR_CODES = frozenset(
    {"ValidationException", "ResourceNotFoundException", "AccessDeniedException", "ConflictException"}
)


def as_provider_error(exc: Exception) -> Exception:
    """A botocore ``ClientError`` as the provider's error: :class:`IngestApiRejected` (Airflow does
    not retry it) for the codes in :data:`FINAL_ERROR_CODES`, :class:`IngestApiError` for the rest
    (throttling or a 5xx past botocore's own retries: Airflow's retry may succeed). Both keep the
    vendor's message, which ``with_provider_rules`` already prefixed with the call and status."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return exc
    error = exc.response.get("Error") or {}
    code = str(error.get("Code") or "")
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    # An error without a code (botocore then uses the status as its code) follows the shared
    # rule for statuses (exceptions.FINAL_CLIENT_ERRORS).
    final = code in FINAL_ERROR_CODES or (code == str(status) and status in FINAL_CLIENT_ERRORS)
    kind = IngestApiRejected if final else IngestApiError
    message, method, endpoint = str(error.get("Message") or exc), exc.operation_name, ""
    named = re.match(rf"^{re.escape(SERVICE)} (\S+) (\S+): HTTP \d+: (.*)$", message, re.DOTALL)
    if named:  # with_provider_rules' form: the call, then the vendor's own message
        method, endpoint, message = named.groups()
    return kind(SERVICE, method, endpoint, status, message, code or None)


def aws_network(verify: bool | str | None, config: Any) -> NetworkSettings:
    """What botocore does on the wire, for requests this package sends itself (the trigger's
    signed polls, presigned uploads and reports): ``verify`` (the hook's: operator argument or
    connection extra; default ``AWS_CA_BUNDLE`` or certifi's bundle, botocore's default), the
    botocore config's ``proxies`` (else the environment's) and ``client_cert``."""
    if verify is None or verify is True:
        import certifi

        verify = os.environ.get("AWS_CA_BUNDLE") or certifi.where()
    proxies = getattr(config, "proxies", None) or {}
    for url in proxies.values():
        mask(urlsplit(url).password)
    cert = getattr(config, "client_cert", None)
    if isinstance(cert, list | tuple):
        cert = (cert[0], cert[1])
    return NetworkSettings(tuple(sorted(proxies.items())), verify, cert)


def max_attempts(client: Any) -> int:
    retries = client.meta.config.retries or {}
    if retries.get("total_max_attempts"):
        return int(retries["total_max_attempts"])
    if retries.get("max_attempts") is not None:
        return int(retries["max_attempts"]) + 1
    return 3 if retries.get("mode") == "standard" else 5  # botocore's defaults


def with_provider_rules(client: Any) -> Any:
    """Make a boto3 / aiobotocore client follow the provider's HTTP rules (see ``http.py``):

    - ``Retry-After`` on a retryable status wins over botocore's own backoff, within botocore's
      attempt budget (botocore ignores the header: a throttled call came back in 0.2 s, not 1 s);
    - an error names the service, the HTTP status and the endpoint, not only the operation.
    """
    service_id = client.meta.service_model.service_id.hyphenize()
    cap = max_attempts(client)
    retry_after_max = RetryPolicy().retry_after_max

    def retry_after(response: Any = None, attempts: int = 0, **_: Any) -> float | None:
        if response is None or attempts >= cap:
            return None  # botocore's handler decides (and stops at the same cap)
        http_response = response[0]
        if http_response.status_code not in RETRYABLE_STATUSES:
            return None
        delay = parse_retry_after(http_response.headers.get("Retry-After"))
        return None if delay is None else min(delay, retry_after_max)

    def name_the_call(http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        error = parsed.get("Error") if isinstance(parsed, dict) else None
        if http_response is None or http_response.status_code < 300 or not isinstance(error, dict):
            return
        where = f"{model.http.get('method')} {model.http.get('requestUri')}" if model is not None else "?"
        status = http_response.status_code
        error["Message"] = f"{SERVICE} {where}: HTTP {status}: {error.get('Message') or ''}"

    client.meta.events.register_first(f"needs-retry.{service_id}", retry_after)
    client.meta.events.register(f"after-call.{service_id}", name_the_call)
    return client


_models_loaded = threading.Event()
_models_lock = threading.Lock()


def _load_models(new_context: Callable[[], Any]) -> None:
    """Create and close one async client in this (worker) thread's own loop. A process's first
    client reads botocore's JSON models from disk (0.1-0.3 s); in a trigger that would hold the
    triggerer's event loop, which every other wait shares. Later clients find them cached."""

    async def enter_and_leave() -> None:
        async with new_context():
            pass

    with _models_lock:
        if not _models_loaded.is_set():
            asyncio.run(enter_and_leave())
            _models_loaded.set()


class _AsyncClientWithRules:
    """aiobotocore hands out an async context manager; the client exists only once entered."""

    def __init__(self, context: Any, new_context: Callable[[], Any]):
        self.context, self.new_context = context, new_context

    async def __aenter__(self) -> Any:
        if not _models_loaded.is_set():
            await asyncio.to_thread(_load_models, self.new_context)
        return with_provider_rules(await self.context.__aenter__())

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.context.__aexit__(*exc)


class QConnectHook(AwsBaseHook):
    """``aws_default`` connection; region, role assumption and a per-service endpoint
    (``service_config: {"qconnect": {"endpoint_url": ...}}`` in the extra) work as for any AWS hook.

    Waiters come from this package's ``waiters/qconnect.json`` (``import_job_complete``).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["client_type"] = "qconnect"
        super().__init__(*args, **kwargs)

    def get_client_type(self, region_name: str | None = None, config: Any = None, deferrable: bool = False):
        def new_client() -> Any:
            return super(QConnectHook, self).get_client_type(region_name, config, deferrable)

        client = new_client()
        return _AsyncClientWithRules(client, new_client) if deferrable else with_provider_rules(client)

    def network_settings(self) -> NetworkSettings:
        """The proxies and TLS settings of this hook's boto3 client (see :func:`aws_network`)."""
        return aws_network(self.verify, self.conn.meta.config)

    @cached_property
    def waiter_path(self) -> Path:
        # The amazon provider looks in its own package; our waiter ships with us.
        return WAITER_PATH

    def get_knowledge_base(self, knowledge_base_id: str) -> dict[str, Any]:
        return self.conn.get_knowledge_base(knowledgeBaseId=knowledge_base_id)["knowledgeBase"]

    def import_job_snapshot(self, knowledge_base_id: str, import_job_id: str) -> JobSnapshot:
        """One observation of an import job; a failed one carries its failed-record summary."""
        job = self.get_import_job(knowledge_base_id, import_job_id)
        status = str(job.get("status") or "")
        state = IMPORT_JOB_STATUSES.state_of(status)
        reason = self.failure_summary(job) if state is JobState.FAILED else None
        return JobSnapshot(import_job_id, status, state, reason)

    def get_import_job(self, knowledge_base_id: str, import_job_id: str) -> dict[str, Any]:
        """The import job. A 2xx reply without it (a cut or garbled body: botocore then returns
        only ResponseMetadata) is read again, as the shared rules do for a malformed status reply,
        within botocore's attempt budget; then it is an ``IngestApiError`` naming what was missing."""
        from botocore.parsers import ResponseParserError

        attempts = max_attempts(self.conn)
        for _ in range(attempts):
            try:
                reply = self.conn.get_import_job(knowledgeBaseId=knowledge_base_id, importJobId=import_job_id)
            except (ResponseParserError, TypeError, AttributeError):
                # botocore's parser fails on a body that is not the documented object: a garbled
                # reply, a JSON ``null`` (TypeError), or an array, string or number where it
                # expects an object (AttributeError: no ``.get``). A malformed reply, read again.
                continue
            job = reply.get("importJob") if isinstance(reply, dict) else None
            if isinstance(job, dict) and job.get("status"):
                return job
        raise IngestApiError(
            SERVICE,
            "GET",
            f"/knowledgeBases/{knowledge_base_id}/importJobs/{import_job_id}",
            200,
            f"{attempts} replies in a row had no importJob status",
            "MalformedReply",
        )

    def failure_summary(self, job: dict[str, Any]) -> str:
        """A short account of a failed import: its failed-record count and first few reasons."""
        report_url = job.get("failedRecordReport")
        if not report_url:
            return f"import job {job.get('importJobId')} is {job.get('status')} (no failed-record report)"
        mask(report_url)  # presigned: its signature must not reach a log
        client = ApiClient("Amazon Q in Connect report", report_url, network=self.network_settings())
        text = client.request("GET", "").text
        rows = list(csv.DictReader(io.StringIO(text)))
        reason_column = next(
            (c for c in (rows[0] if rows else {}) if "error" in c.lower() or "reason" in c.lower()), None
        )
        reasons = [row.get(reason_column) or "?" for row in rows[:REPORT_SAMPLE]] if reason_column else []
        first = f"; first reasons: {'; '.join(reasons)}" if reasons else ""
        return (
            f"import job {job.get('importJobId')} is {job.get('status')}: {len(rows)} record(s) failed{first}"
        )
