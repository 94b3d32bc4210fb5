"""Imply Polaris: Connections v1 and Jobs v1, project-scoped (``/v1/projects/{project_id}``)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import Connection

from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.hooks.base import IngestHttpHook
from airflow_provider_ingest.http import Auth, StaticAuth, segment
from airflow_provider_ingest.jobs import JobSnapshot, JobState, StatusTable

POLARIS_STATUSES = StatusTable.of(
    succeeded={"completed"},
    failed={"failed", "canceled"},
    running={"pending", "running", "idle", "suspended", "unknown"},
)


def polaris_snapshot(job: dict[str, Any]) -> JobSnapshot:
    """A job's state. ``completed`` with health ``error`` (e.g. ``no_rows_ingested``) is a failure;
    ``warn`` succeeds with the warning logged."""
    status = str(job.get("executionStatus") or "")
    state = POLARIS_STATUSES.state_of(status)
    health = job.get("health") or {}
    health_text = ": ".join(str(health[k]) for k in ("code", "message") if health.get(k)) or None
    reason = warning = None
    if health.get("status") == "error":
        reason = health_text
        if state is JobState.SUCCEEDED:
            state = JobState.FAILED
    elif health.get("status") == "warn":
        warning = health_text
    if state is JobState.FAILED and not reason:
        reason = f"executionStatus is {status}"
    details = {
        "id": job.get("id"),
        "executionStatus": status,
        "health": health,
        "tableName": (job.get("target") or {}).get("tableName"),
    }
    return JobSnapshot(job.get("id"), status, state, reason, warning=warning, details=details)


def _same_source(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("connectionName", "uris", "prefixes", "objects", "pattern")
    return all(a.get(k) == b.get(k) for k in keys)


class PolarisHook(IngestHttpHook):
    """Connection: host = API base URL, password = API key, extra ``project_id``.

    The key is sent as the HTTP Basic user with an empty password, as the doc's ``--user KEY:``.
    """

    default_conn_name = "polaris_default"
    conn_type = "imply_polaris"
    hook_name = "Imply Polaris"
    service = "Imply Polaris"

    def client_settings(self, conn: Connection) -> tuple[str, Auth]:
        project_id = self.extra_of(conn).get("project_id")
        if not project_id:
            raise ValueError(f"connection {conn.conn_id!r}: extra 'project_id' is required")
        if not conn.password:
            raise ValueError(f"connection {conn.conn_id!r}: the password (API key) is empty")
        token = base64.b64encode(f"{conn.password}:".encode()).decode()
        auth = StaticAuth({"Authorization": f"Basic {token}"})
        return f"{self.base_url_of(conn)}/v1/projects/{segment(project_id, 'extra project_id')}", auth

    # connections
    def get_s3_connection(self, name: str) -> dict[str, Any] | None:
        try:
            # quoted: a name with '#', '?' or '%' would otherwise address another resource, and
            # ensure-connection would then miss the existing connection and hit a 409
            return self.client.json("GET", f"connections/{segment(name, 'connection_name')}")
        except IngestApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_connection(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.client.json("POST", "connections", json=spec)

    # jobs
    def create_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.client.json("POST", "jobs", json=spec)

    def list_jobs(self) -> list[dict[str, Any]]:
        return (self.client.json("GET", "jobs") or {}).get("values", [])

    def find_started_job(self, spec: dict[str, Any], since: datetime) -> dict[str, Any] | None:
        """The newest job created from ``spec`` at or after ``since``: after a start call whose reply
        was lost, the job it created, if any, so the caller adopts it instead of starting another."""
        for job in self.list_jobs():  # newest first
            created = datetime.fromisoformat(str(job.get("createdTimestamp", "")).replace("Z", "+00:00")[:26])
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            if created < since:
                return None
            if job.get("target") == spec["target"] and _same_source(job.get("source") or {}, spec["source"]):
                return job
        return None

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.client.json("GET", f"jobs/{segment(job_id, 'job_id')}")

    def get_job_metrics(self, job_id: str) -> dict[str, Any]:
        return (self.client.json("GET", f"jobs/{segment(job_id, 'job_id')}/metrics") or {}).get("totals", {})

    def job_snapshot(self, job_id: str) -> JobSnapshot:
        return polaris_snapshot(self.get_job(job_id))

    async def ajob_snapshot(self, job_id: str) -> JobSnapshot:
        return polaris_snapshot(await (await self.aclient()).json("GET", f"jobs/{segment(job_id, 'job_id')}"))

    def cancel_job(self, job_id: str) -> None:
        self.client.json(
            "PUT", f"jobs/{segment(job_id, 'job_id')}", json={"desiredExecutionStatus": "canceled"}
        )

    async def acancel_job(self, job_id: str) -> None:
        client = await self.aclient()
        await client.json(
            "PUT", f"jobs/{segment(job_id, 'job_id')}", json={"desiredExecutionStatus": "canceled"}
        )

    def probe(self) -> str:
        self.client.json("GET", "connections")
        return "Polaris API reachable and the API key accepted"
