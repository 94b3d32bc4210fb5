"""eGain AI Knowledge Hub Ingestion API (``/knowledge/contentmgr/v4``), OAuth 2.0 client credentials."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Connection

from airflow_provider_ingest.auth import OAuthClientCredentials
from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.hooks.base import IngestHttpHook
from airflow_provider_ingest.http import Auth, needs
from airflow_provider_ingest.jobs import JobSnapshot, StatusTable

EGAIN_STATUSES = StatusTable.of(
    succeeded={"successful"},
    failed={"failed", "cancelled", "canceled"},
    running={"scheduled", "in progress"},
)
DEFAULT_SCOPE = "knowledge.contentmgr.manage"
STATUS_REPLY = needs("status")  # a status reply without one is malformed, not an unknown status
API_PREFIX = "knowledge/contentmgr/v4"


def job_id_from_location(location: str) -> str:
    """``/knowledge/contentmgr/v4/import/content/<id>`` (absolute or relative) -> ``<id>``."""
    job_id = location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not job_id or job_id in ("content", "status"):
        raise ValueError(f"cannot read a job id from location {location!r}")
    return job_id


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
    extra ``token_url`` and ``scope`` (default ``knowledge.contentmgr.manage``)."""

    default_conn_name = "egain_default"
    conn_type = "egain"
    hook_name = "eGain AI Knowledge Hub"
    service = "eGain"

    def client_settings(self, conn: Connection) -> tuple[str, Auth]:
        extra = self.extra_of(conn)
        if not extra.get("token_url"):
            raise ValueError(f"connection {conn.conn_id!r}: extra 'token_url' is required")
        if not conn.login or not conn.password:
            raise ValueError(
                f"connection {conn.conn_id!r}: login (client id) and password (client secret) are required"
            )
        auth = OAuthClientCredentials(
            self.service, extra["token_url"], conn.login, conn.password, extra.get("scope") or DEFAULT_SCOPE
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
        return self.client.json("GET", f"import/content/{job_id}/status", shape=STATUS_REPLY)

    def job_snapshot(self, job_id: str) -> JobSnapshot:
        return egain_snapshot(job_id, self.get_status(job_id))

    async def ajob_snapshot(self, job_id: str) -> JobSnapshot:
        client = await self.aclient()
        body = await client.json("GET", f"import/content/{job_id}/status", shape=STATUS_REPLY)
        return egain_snapshot(job_id, body)

    # Canceling twice is harmless: a lost reply may be retried.
    def cancel_job(self, job_id: str) -> None:
        self.client.request("POST", f"import/content/{job_id}/cancel", idempotent=True)

    async def acancel_job(self, job_id: str) -> None:
        await (await self.aclient()).request("POST", f"import/content/{job_id}/cancel", idempotent=True)

    def probe(self) -> str:
        self.client.auth.headers(self.client)
        return "eGain token endpoint accepted the client credentials"
