"""eGain AI Knowledge Hub Ingestion API (``/knowledge/contentmgr/v4``), OAuth 2.0 client credentials."""

from __future__ import annotations

import re
from typing import Any

from airflow.sdk import Connection

from airflow_provider_ingest.auth import OAuthClientCredentials
from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.hooks.base import IngestHttpHook, deprecated_extra
from airflow_provider_ingest.http import Auth, needs, segment
from airflow_provider_ingest.jobs import JobSnapshot, StatusTable

# The UI colour of this family's operators and sensors.
EGAIN_UI_COLOR = "#ffe3c7"

EGAIN_STATUSES = StatusTable.of(
    succeeded={"successful"},
    failed={"failed", "cancelled", "canceled"},
    running={"scheduled", "in progress"},
)
DEFAULT_SCOPE = "knowledge.contentmgr.manage"
STATUS_REPLY = needs("status")  # a status reply without one is malformed, not an unknown status
API_PREFIX = "knowledge/contentmgr/v4"
# Test connection asks for the status of a job that cannot exist (the nil UUID).
PROBE_JOB_ID = "00000000-0000-0000-0000-000000000000"


def job_id_from_location(location: str) -> str:
    """``/knowledge/contentmgr/v4/import/content/<id>`` (absolute or relative) -> ``<id>``; only a
    location of that shape (``../connections/x`` is not one)."""
    match = re.search(r"(?:^|/)import/content/([^/]+)/?$", location.split("?", 1)[0])
    if not match or match.group(1) in ("validate", "status", ".", ".."):
        raise ValueError(f"job_id: cannot read a job id from location {location!r}")
    return match.group(1)


def egain_snapshot(job_id: str, body: dict[str, Any]) -> JobSnapshot:
    status = str(body.get("status") or "")
    progress = body.get("progress") or {}
    progress_text = None
    if progress.get("total") is not None:
        progress_text = f"{progress.get('processed', 0)} of {progress['total']} processed"
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("developerMessage") or error.get("message") or str(error)
    details = {
        "job_id": job_id,
        "status": status,
        "jobType": body.get("jobType"),
        "progress": progress,
        "results": body.get("results") or {},
        "logFileLocation": body.get("logFileLocation"),
    }
    state = EGAIN_STATUSES.state_of(status)
    return JobSnapshot(job_id, status, state, reason=error or None, progress=progress_text, details=details)


class EgainHook(IngestHttpHook):
    """Connection: host = API base URL, login = client id, password = client secret,
    extra ``auth_url`` (the OAuth token endpoint; ``token_url`` is its deprecated name) and
    ``scope`` (default ``knowledge.contentmgr.manage``)."""

    conn_name_attr = "egain_conn_id"
    default_conn_name = "egain_default"
    conn_type = "egain"
    hook_name = "eGain AI Knowledge Hub"
    service = "eGain"

    def client_settings(self, conn: Connection) -> tuple[str, Auth]:
        extra = self.extra_of(conn)
        auth_url = deprecated_extra(conn, extra, "auth_url", "token_url")
        if not auth_url:
            raise ValueError(
                f"connection {conn.conn_id!r}: extra 'auth_url' (OAuth token endpoint) is required"
            )
        if not conn.login or not conn.password:
            raise ValueError(
                f"connection {conn.conn_id!r}: login (client id) and password (client secret) are required"
            )
        auth = OAuthClientCredentials(
            self.service, auth_url, conn.login, conn.password, extra.get("scope") or DEFAULT_SCOPE
        )
        return f"{self.base_url_of(conn)}/{API_PREFIX}", auth

    def _start(self, path: str, body: dict[str, Any]) -> str:
        response = self.client.request("POST", path, json=body)
        location = response.headers.get("location")
        try:
            if response.status_code != 202 or not location:
                raise ValueError(f"expected 202 with a location header, got {response.status_code}")
            return job_id_from_location(location)
        except ValueError as exc:
            # The server accepted the call but its reply does not name the job: the outcome of the
            # start is unknown (IngestApiError.outcome_unknown), not a bad input.
            raise IngestApiError(
                self.service,
                "POST",
                self.client.endpoint(self.client.url(path)),
                response.status_code,
                str(exc),
                "MalformedReply",
            ) from None

    def start_import(self, body: dict[str, Any]) -> str:
        """Start an import (body: ``dataSource``, ``operation``, optional ``scheduleTime``); the job id."""
        return self._start("import/content", body)

    def start_validation(self, data_source: dict[str, Any]) -> str:
        """Start a job that checks the folder against the import format without importing."""
        return self._start("import/content/validate", {"dataSource": data_source})

    def get_status(self, job_id: str) -> dict[str, Any]:
        return self.client.json(
            "GET", f"import/content/{segment(job_id, 'job_id')}/status", shape=STATUS_REPLY
        )

    def job_snapshot(self, job_id: str) -> JobSnapshot:
        return egain_snapshot(job_id, self.get_status(job_id))

    async def ajob_snapshot(self, job_id: str) -> JobSnapshot:
        client = await self.aclient()
        path = f"import/content/{segment(job_id, 'job_id')}/status"
        body = await client.json("GET", path, shape=STATUS_REPLY)
        return egain_snapshot(job_id, body)

    # eGain answers 409 to a cancel of a job that has ended (completed, failed or already
    # cancelled, as the SDK's cancelImport declares): the job is stopped either way, and a cancel
    # whose lost reply is retried meets its own first success as a 409.
    def cancel_job(self, job_id: str) -> None:
        try:
            self.client.request("POST", f"import/content/{segment(job_id, 'job_id')}/cancel", idempotent=True)
        except IngestApiError as exc:
            if exc.status != 409:
                raise
            self.log.info("eGain job %s has already ended; nothing to cancel", job_id)

    async def acancel_job(self, job_id: str) -> None:
        try:
            path = f"import/content/{segment(job_id, 'job_id')}/cancel"
            await (await self.aclient()).request("POST", path, idempotent=True)
        except IngestApiError as exc:
            if exc.status != 409:
                raise
            self.log.info("eGain job %s has already ended; nothing to cancel", job_id)

    def probe(self) -> str:
        """A token, then one authorized read against the API host: the status of a job that
        cannot exist. The API checks the token (401) and its scope (403) before it looks the job
        up, so eGain's own 404 error (a JSON body with an error code) proves the host serves the
        Ingestion API and accepts the token; a wrong host answers otherwise (its 404 has no eGain
        error code, or the call fails) and the test fails naming the status and endpoint. The
        job-status read is the only read the Ingestion API documents, and it changes nothing."""
        self.client.auth.headers(self.client)
        try:
            self.client.json("GET", f"import/content/{PROBE_JOB_ID}/status")
        except IngestApiError as exc:
            if exc.status != 404 or not exc.code:
                raise
        return "eGain token endpoint accepted the client credentials and the Ingestion API the token"
