"""Adobe Experience Platform: Batch Ingestion (import), Catalog and Schema Registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote

from airflow.sdk import Connection

from airflow_provider_ingest.auth import OAuthClientCredentials, WithHeaders
from airflow_provider_ingest.hooks.base import IngestHttpHook, deprecated_extra
from airflow_provider_ingest.http import Auth, Shape, needs, segment
from airflow_provider_ingest.jobs import JobSnapshot, StatusTable

# The UI colour of this family's operators and sensors.
ADOBE_AEP_UI_COLOR = "#ffd4d1"

BATCH_STATUSES = StatusTable.of(
    succeeded={"success", "active"},
    failed={"failed", "aborted", "abandoned", "inactive"},
    running={"loading", "loaded", "staging", "staged", "processing", "queued", "retrying"},
)
DEFAULT_TOKEN_URL = "https://ims-na1.adobelogin.com/ims/token/v3"
DEFAULT_SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session"
IMPORT = "data/foundation/import/batches"
CATALOG = "data/foundation/catalog"
XED_FULL = "application/vnd.adobe.xed-full+json;version=1"
DEFAULT_CHUNK = 16 * 1024 * 1024  # one chunk is held in memory while it is sent


def batch_reply(batch_id: str) -> Shape:
    """Catalog answers ``{batch_id: {..., "status"}}``; a ``null``, a list, an error object or a
    map without this batch in a 2xx is a malformed reply (retried, then reported naming it)."""

    def check(body: Any) -> str | None:
        if not isinstance(body, dict):
            return f"expected a JSON object, got {type(body).__name__ if body is not None else 'null'}"
        batch = body.get(batch_id)
        if not isinstance(batch, dict):
            return f"the reply has no batch {batch_id!r}"
        return needs("status")(batch)

    return check


def batch_snapshot(batch_id: str, batch: dict[str, Any]) -> JobSnapshot:
    status = str(batch.get("status") or "")
    errors = batch.get("errors") or []
    reason = (
        "; ".join(
            f"{e.get('code', '?')}: {e.get('description') or e.get('message') or e}" for e in errors[:5]
        )
        or None
    )
    details = {
        "batch_id": batch_id,
        "status": status,
        "errors": errors[:20],
        "metrics": batch.get("metrics") or {},
    }
    return JobSnapshot(batch_id, status, BATCH_STATUSES.state_of(status), reason, details=details)


class AdobeAepHook(IngestHttpHook):
    """Connection: host = platform URL, login = client id (also ``x-api-key``), password = client
    secret, extra ``ims_org_id``, ``sandbox_name`` (default ``prod``), ``auth_url`` (the IMS
    token endpoint; ``token_url`` is its deprecated name), ``scopes``."""

    conn_name_attr = "adobe_aep_conn_id"
    default_conn_name = "adobe_aep_default"
    conn_type = "adobe_aep"
    hook_name = "Adobe Experience Platform"
    service = "Adobe Experience Platform"

    def client_settings(self, conn: Connection) -> tuple[str, Auth]:
        extra = self.extra_of(conn)
        for value, field in (
            (conn.login, "login (client id)"),
            (conn.password, "password (client secret)"),
            (extra.get("ims_org_id"), "extra ims_org_id"),
        ):
            if not value:
                raise ValueError(f"connection {conn.conn_id!r}: {field} is required")
        token = OAuthClientCredentials(
            self.service,
            deprecated_extra(conn, extra, "auth_url", "token_url") or DEFAULT_TOKEN_URL,
            cast(str, conn.login),  # both checked above
            cast(str, conn.password),
            extra.get("scopes") or DEFAULT_SCOPES,
        )
        fixed = {
            "x-api-key": conn.login,
            "x-gw-ims-org-id": extra["ims_org_id"],
            "x-sandbox-name": extra.get("sandbox_name") or "prod",
        }
        return self.base_url_of(conn), WithHeaders(token, fixed)

    @property
    def client_id(self) -> str | None:
        """The connection's client id: Catalog names it as a batch's ``createdClient``."""
        return self.get_connection(self.conn_id).login

    # --- batches ---------------------------------------------------------------------------------
    def create_batch(
        self, dataset_id: str, input_format: str = "parquet", tags: dict[str, list[str]] | None = None
    ) -> str:
        """A new batch's id. A 2xx reply without a readable ``id`` is a malformed reply
        (``IngestApiError.outcome_unknown``): the batch may exist, see :meth:`list_batches`.
        ``tags`` (tag -> list of strings) are kept on the Catalog batch and listed with it."""
        body: dict[str, Any] = {"datasetId": dataset_id, "inputFormat": {"format": input_format}}
        if tags:
            body["tags"] = tags
        return self.client.json("POST", IMPORT, json=body, shape=needs("id"))["id"]

    def list_batches(
        self,
        dataset_id: str,
        *,
        created_after_ms: int | None = None,
        status: str | None = None,
        limit: int = 100,
        start: int = 0,
    ) -> list[dict[str, Any]]:
        """Catalog batches of a dataset, newest created first (``orderBy=desc:created``), each with
        its ``id``: ``GET /catalog/batches?dataSet=&createdAfter=&status=&limit=&start=``. Catalog
        answers a map of id to batch; ``limit`` is 1..100 (20 when not given)."""
        params: dict[str, Any] = {"dataSet": dataset_id, "orderBy": "desc:created", "limit": limit}
        if created_after_ms is not None:
            params["createdAfter"] = created_after_ms
        if status is not None:
            params["status"] = status
        if start:
            params["start"] = start
        reply = self.client.json("GET", f"{CATALOG}/batches", params=params, shape=needs())
        batches = [{**batch, "id": batch_id} for batch_id, batch in reply.items() if isinstance(batch, dict)]
        return sorted(batches, key=lambda b: b.get("created") or 0, reverse=True)

    def _file_path(self, batch_id: str, dataset_id: str, file_name: str) -> str:
        return (
            f"{IMPORT}/{segment(batch_id, 'batch_id')}/datasets/{segment(dataset_id, 'dataset_id')}"
            f"/files/{segment(file_name, 'file_name')}"
        )

    def upload_file(
        self,
        batch_id: str,
        dataset_id: str,
        file_name: str,
        size: int,
        open_file: Callable[[], Any],
        small_file_max_bytes: int = 256 * 1024 * 1024,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        """Upload ``size`` bytes from ``open_file()`` (a fresh readable file each call): one PUT up
        to ``small_file_max_bytes``, else the large-file API in ``chunk_size`` PATCHes.

        A chunk is retried on its own (same bytes, same Content-Range) after a retryable error, so
        an interrupted large file resumes from the last acknowledged chunk."""
        path = self._file_path(batch_id, dataset_id, file_name)
        octets = {"content-type": "application/octet-stream"}
        if size <= small_file_max_bytes:
            self.client.request("PUT", path, data=open_file, headers={**octets, "Content-Length": str(size)})
            return
        self.client.request("POST", f"{path}?action=initialize", idempotent=True)
        with open_file() as source:
            start = 0
            while start < size:
                chunk = source.read(min(chunk_size, size - start))
                end = start + len(chunk) - 1
                headers = {**octets, "Content-Range": f"bytes {start}-{end}/{size}"}
                self.client.request("PATCH", path, data=chunk, headers=headers, idempotent=True)
                start = end + 1
        self.client.request("POST", f"{path}?action=COMPLETE", idempotent=True)

    def complete_batch(self, batch_id: str) -> None:
        self.client.request(
            "POST", f"{IMPORT}/{segment(batch_id, 'batch_id')}?action=COMPLETE", idempotent=True
        )

    def abort_batch(self, batch_id: str) -> None:
        self.client.request("POST", f"{IMPORT}/{segment(batch_id, 'batch_id')}?action=ABORT", idempotent=True)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        path = f"{CATALOG}/batches/{segment(batch_id, 'batch_id')}"
        reply = self.client.json("GET", path, shape=batch_reply(batch_id))
        return reply[batch_id]

    def job_snapshot(self, job_id: str) -> JobSnapshot:
        return batch_snapshot(job_id, self.get_batch(job_id))

    async def ajob_snapshot(self, job_id: str) -> JobSnapshot:
        path = f"{CATALOG}/batches/{segment(job_id, 'job_id')}"
        reply = await (await self.aclient()).json("GET", path, shape=batch_reply(job_id))
        return batch_snapshot(job_id, reply[job_id])

    def cancel_job(self, job_id: str) -> None:
        self.abort_batch(job_id)

    async def acancel_job(self, job_id: str) -> None:
        await (await self.aclient()).request(
            "POST", f"{IMPORT}/{segment(job_id, 'job_id')}?action=ABORT", idempotent=True
        )

    # --- catalog and schema registry ---------------------------------------------------------------
    def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        reply = self.client.json("GET", f"{CATALOG}/dataSets/{segment(dataset_id, 'dataset_id')}") or {}
        return reply.get(dataset_id) or {}

    def get_dataset_schema(self, dataset_id: str) -> dict[str, Any]:
        """The full XDM schema of a dataset (its ``schemaRef`` resolved in the Schema Registry)."""
        schema_id = (self.get_dataset(dataset_id).get("schemaRef") or {}).get("id")
        if not schema_id:
            raise ValueError(f"dataset_id: dataset {dataset_id!r} has no schemaRef")
        path = f"data/foundation/schemaregistry/tenant/schemas/{quote(schema_id, safe='')}"
        return self.client.json("GET", path, headers={"Accept": XED_FULL})

    def probe(self) -> str:
        """A token, then the cheapest authorized read of the platform: Catalog's dataset list,
        one entry. It carries the org and sandbox headers, so a wrong platform host, IMS org or
        sandbox fails here (Adobe answers 403 for an org or sandbox the client may not use)."""
        self.client.auth.headers(self.client)
        self.client.json("GET", f"{CATALOG}/dataSets", params={"limit": 1, "properties": "name"})
        sandbox = self.client.auth.fixed["x-sandbox-name"]  # type: ignore[attr-defined]
        return f"Adobe IMS accepted the client credentials; Catalog readable in sandbox {sandbox!r}"
