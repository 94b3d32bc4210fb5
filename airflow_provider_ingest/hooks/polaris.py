"""Imply Polaris: Connections v1 and Jobs v1, project-scoped (``/v1/projects/{project_id}``)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from airflow.sdk import Connection

from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.hooks.base import IngestHttpHook
from airflow_provider_ingest.http import Auth, StaticAuth, needs
from airflow_provider_ingest.jobs import JobSnapshot, JobState, StatusTable

# What a job (status) reply must hold; a ``null``, a list or an error object in a 2xx is a malformed
# reply, retried and then reported naming what was missing.
JOB_REPLY = needs("id", "executionStatus")
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


def created_at(job: dict[str, Any]) -> float | None:
    """A job's ``createdTimestamp`` (ISO 8601, nanoseconds allowed) as epoch seconds, or None."""
    try:
        created = datetime.fromisoformat(str(job.get("createdTimestamp") or ""))
    except ValueError:
        return None
    return (created if created.tzinfo else created.replace(tzinfo=UTC)).timestamp()


# The Jobs v1 list is paged (``paginationLimit`` 1..1000, default 100): the pages a search for a
# lost job reads at most before giving up (the newest jobs come first, so this is rarely reached).
MAX_LIST_PAGES = 10


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
        return f"{self.base_url_of(conn)}/v1/projects/{project_id}", auth

    # connections
    def get_s3_connection(self, name: str) -> dict[str, Any] | None:
        try:
            # quoted: a name with '#', '?' or '%' would otherwise address another resource, and
            # ensure-connection would then miss the existing connection and hit a 409
            return self.client.json("GET", f"connections/{quote(name, safe='')}")
        except IngestApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_connection(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.client.json("POST", "connections", json=spec)

    # jobs
    def create_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create a job. A 2xx reply without a readable ``id`` (garbled, cut, not the job) is a
        malformed reply: ``IngestApiError.outcome_unknown``, so the caller looks for the job."""
        return self.client.json("POST", "jobs", json=spec, shape=needs("id"))

    def list_jobs(
        self,
        *,
        table_name: str | None = None,
        job_type: str | None = None,
        sort_column: str | None = None,
        sort_order: str = "DESC",
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of job summaries and whether more follow (``moreResultsAvailable``).

        Parameters as polaris-sdk's ``jobs.list_jobs`` sends them: ``targetTableName``, ``type``,
        ``sortColumn`` / ``sortOrder``, ``paginationLimit`` / ``paginationOffset``. Without a sort the
        API orders by ``last_updated_date_time`` DESC. A summary's ``source`` holds only its type and
        connection name, not the objects it reads (``get_job`` has those)."""
        params: dict[str, Any] = {"paginationLimit": limit, "paginationOffset": offset}
        if table_name is not None:
            params["targetTableName"] = table_name
        if job_type is not None:
            params["type"] = job_type
        if sort_column is not None:
            params.update(sortColumn=sort_column, sortOrder=sort_order)
        reply = self.client.json("GET", "jobs", params=params, shape=needs("values"))
        values = reply["values"]
        if not isinstance(values, list):
            raise IngestApiError(
                self.service,
                "GET",
                self.client.endpoint(self.client.url("jobs")),
                200,
                "the reply's 'values' is not a list",
                "MalformedReply",
            )
        return values, bool(reply.get("moreResultsAvailable"))

    def jobs_created_since(self, table_name: str, since: float) -> list[dict[str, Any]]:
        """Summaries of the batch jobs into ``table_name`` created at or after ``since`` (epoch
        seconds), newest first: sorted by creation server-side, paged until an older one shows."""
        found: list[dict[str, Any]] = []
        for page in range(MAX_LIST_PAGES):
            values, more = self.list_jobs(
                table_name=table_name,
                job_type="batch",
                sort_column="created_date_time",
                sort_order="DESC",
                limit=100,
                offset=page * 100,
            )
            for job in values:
                created = created_at(job)
                if created is not None and created < since:
                    return found
                found.append(job)
            if not more:
                break
        return found

    def find_started_job(
        self,
        spec: dict[str, Any],
        called_at: float,
        *,
        replaces: str | None = None,
        clock_skew: float = 60.0,
    ) -> dict[str, Any] | None:
        """The job a start call for ``spec`` made at ``called_at`` (epoch seconds, the worker's
        clock) created, if any: the caller adopts it instead of starting another.

        A candidate targets the same table, reads the same source (connection and objects) and was
        created at or after the call, give or take ``clock_skew`` between worker and API. Never the
        job this try replaces, and never a failed or canceled job created before the call (within
        the skew window that can only be an earlier job, not the one this call just made). The
        job created first after the call wins: a later identical one is someone else's."""
        target, source = spec["target"], spec["source"]
        after, within_skew = [], []
        for summary in self.jobs_created_since(target["tableName"], called_at - clock_skew):
            if summary.get("id") in (None, replaces) or summary.get("target") != target:
                continue
            if (summary.get("source") or {}).get("connectionName") != source.get("connectionName"):
                continue
            job = self.get_job(summary["id"])  # the summary does not name the objects read
            if not _same_source(job.get("source") or {}, source):
                continue
            created = created_at(job) or 0.0
            if created >= called_at:
                after.append((created, job))
            elif POLARIS_STATUSES.state_of(job.get("executionStatus")) is not JobState.FAILED:
                within_skew.append((created, job))
        if after:
            return min(after, key=lambda pair: pair[0])[1]
        if within_skew:
            return max(within_skew, key=lambda pair: pair[0])[1]
        return None

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.client.json("GET", f"jobs/{job_id}", shape=JOB_REPLY)

    def get_job_metrics(self, job_id: str) -> dict[str, Any]:
        return (self.client.json("GET", f"jobs/{job_id}/metrics") or {}).get("totals", {})

    def job_snapshot(self, job_id: str) -> JobSnapshot:
        return polaris_snapshot(self.get_job(job_id))

    async def ajob_snapshot(self, job_id: str) -> JobSnapshot:
        return polaris_snapshot(await (await self.aclient()).json("GET", f"jobs/{job_id}", shape=JOB_REPLY))

    def cancel_job(self, job_id: str) -> None:
        self.client.json("PUT", f"jobs/{job_id}", json={"desiredExecutionStatus": "canceled"})

    async def acancel_job(self, job_id: str) -> None:
        client = await self.aclient()
        await client.json("PUT", f"jobs/{job_id}", json={"desiredExecutionStatus": "canceled"})

    def probe(self) -> str:
        self.client.json("GET", "connections")
        return "Polaris API reachable and the API key accepted"
