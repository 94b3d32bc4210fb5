"""Zeta Alpha Ingestion API (``/v0/service/ingestion``): document, access-rights and delete
batches, retrieve and filter documents. Every call is scoped by the ``tenant`` query parameter."""

from __future__ import annotations

import time
from collections.abc import Iterator
from hashlib import sha1
from typing import Any

from airflow.sdk import Connection

from airflow_provider_ingest.hooks.base import IngestHttpHook
from airflow_provider_ingest.http import Auth, StaticAuth, segment
from airflow_provider_ingest.jobs import JobSnapshot, JobState, StatusTable

# The UI colour of this family's operators and sensors.
ZETA_ALPHA_UI_COLOR = "#d4f0e4"

DOCUMENT_STATUSES = StatusTable.of(
    succeeded={"indexed", "indexed_update"},
    failed={"failed", "quarantined", "quarantine_failed", "not_found"},
    running={
        "ingesting",
        "indexing",
        "indexing_update",
        "ingested",
        "marked_for_deletion",
        "marked_for_quarantine",
    },
)
STATUS_CHUNK = 100  # document ids per filter call when checking statuses
STATUS_PAGE = 1000  # documents per filter page when checking an ingestion job's statuses
NOT_VISIBLE = "not_found"


def compute_document_id(internal_id: str) -> str:
    """The only document_id format the API supports (the doc's footnote): sha1 hex of an id."""
    return sha1(internal_id.encode("utf-8")).hexdigest()


def s3_document_id(bucket: str, key: str) -> str:
    """An S3 object's document id: its ``s3://bucket/key`` URI as the internal id."""
    return compute_document_id(f"s3://{bucket}/{key}")


def document_state(document: dict[str, Any]) -> JobState | None:
    status = document.get("status")
    if status == "ingested" and document.get("is_indexable") is False:
        return JobState.SUCCEEDED  # stored but never meant to be indexed
    return DOCUMENT_STATUSES.state_of(status)


def ingestion_job(
    ingestion_job_id: str | None, documents: int | str | None, sent_at: float, grace: float
) -> dict[str, Any]:
    """The job id of a document ingestion: small whatever the folder size (issue 16, item 7).

    Every document sent carries ``content_ingestion_job_id``, and the filter endpoint selects by it,
    so the wait needs the ingestion job's id and how many documents to expect, not their ids.
    ``sent_at`` (epoch seconds) and ``grace`` (seconds) bound how long a sent document may stay
    invisible (``not_found``) before it counts as failed."""
    return {
        "ingestion_job_id": ingestion_job_id,
        "documents": documents,
        "sent_at": sent_at,
        "not_found_grace": grace,
    }


def ingestion_snapshot(job: dict[str, Any], found: dict[str, dict[str, Any]], now: float) -> JobSnapshot:
    """One snapshot of an ingestion job from the documents the filter returned for it. A document
    sent but not visible yet (or reported ``not_found``) is pending within the grace period after
    ``sent_at``, and failed after it."""
    expected = int(job.get("documents") or 0)
    within_grace = now - float(job.get("sent_at") or 0) < float(job.get("not_found_grace") or 0)
    counts: dict[str, int] = {}
    done, failed, waiting, unknown = 0, [], 0, set()
    for doc_id, document in found.items():
        status = str(document.get("status") or NOT_VISIBLE)
        counts[status] = counts.get(status, 0) + 1
        state = document_state(document)
        if status == NOT_VISIBLE and within_grace:
            waiting += 1
        elif state is JobState.SUCCEEDED:
            done += 1
        elif state is JobState.FAILED:
            failed.append(doc_id)
        else:
            waiting += 1
            if state is None:
                unknown.add(status)
    missing = max(0, expected - len(found))
    if missing:
        counts[NOT_VISIBLE] = counts.get(NOT_VISIBLE, 0) + missing
        if within_grace:
            waiting += missing
    details = {
        "document_count": expected,
        "statuses": counts,
        "ingestion_job_id": job.get("ingestion_job_id"),
    }
    progress = f"{done} of {expected} indexed"
    warning = f"unexpected document status {', '.join(sorted(unknown))}; still waiting" if unknown else None
    if waiting:
        return JobSnapshot(
            "documents", "in progress", JobState.RUNNING, progress=progress, warning=warning, details=details
        )
    if failed or missing:
        named = ", ".join(
            f"{d} ({found[d].get('status', NOT_VISIBLE)}: "
            f"{','.join(found[d].get('error_codes') or []) or 'no error code'})"
            for d in failed[:20]
        )
        more = f" and {len(failed) - 20} more" if len(failed) > 20 else ""
        invisible = (
            f"{'; and ' if failed else ''}{missing} never became visible (not_found "
            f"{job.get('not_found_grace')}s after sending)"
            if missing
            else ""
        )
        reason = f"{len(failed) + missing} of {expected} document(s) failed: {named}{more}{invisible}"
        return JobSnapshot("documents", "failed", JobState.FAILED, reason, progress, details=details)
    return JobSnapshot("documents", "indexed", JobState.SUCCEEDED, progress=progress, details=details)


def documents_snapshot(document_ids: list[str], found: dict[str, dict[str, Any]]) -> JobSnapshot:
    """One snapshot for a set of documents: succeeded when all succeeded; failed once none is still
    in progress and any failed (naming them with their error codes); running otherwise."""
    by_state: dict[JobState | None, list[str]] = {}
    for doc_id in document_ids:
        document = found.get(doc_id) or {"status": "not_found"}
        by_state.setdefault(document_state(document), []).append(doc_id)
    done = len(by_state.get(JobState.SUCCEEDED, []))
    failed = by_state.get(JobState.FAILED, [])
    waiting = len(document_ids) - done - len(failed)
    counts: dict[str, int] = {}
    for doc_id in document_ids:
        status = (found.get(doc_id) or {}).get("status", "not_found")
        counts[status] = counts.get(status, 0) + 1
    details = {"document_count": len(document_ids), "statuses": counts}
    progress = f"{done} of {len(document_ids)} indexed"
    # A status the table does not know keeps waiting, but is named once (JobWatch logs a warning
    # once) instead of passing silently as "in progress".
    unknown = sorted({str((found.get(d) or {}).get("status")) for d in by_state.get(None, [])})
    warning = f"unexpected document status {', '.join(unknown)}; still waiting" if unknown else None
    if waiting:
        return JobSnapshot(
            "documents", "in progress", JobState.RUNNING, progress=progress, warning=warning, details=details
        )
    if failed:
        named = ", ".join(
            f"{d} ({(found.get(d) or {}).get('status', 'not_found')}: "
            f"{','.join((found.get(d) or {}).get('error_codes') or []) or 'no error code'})"
            for d in failed[:20]
        )
        more = f" and {len(failed) - 20} more" if len(failed) > 20 else ""
        reason = f"{len(failed)} of {len(document_ids)} document(s) failed: {named}{more}"
        return JobSnapshot("documents", "failed", JobState.FAILED, reason, progress, details=details)
    return JobSnapshot("documents", "indexed", JobState.SUCCEEDED, progress=progress, details=details)


class ZetaAlphaHook(IngestHttpHook):
    """Connection: host = base URL, password = API key (``X-Auth``; a bearer token when extra
    ``auth_type`` is ``bearer``), extra ``tenant`` and optional ``index_id``."""

    conn_name_attr = "zeta_alpha_conn_id"
    default_conn_name = "zeta_alpha_default"
    conn_type = "zeta_alpha"
    hook_name = "Zeta Alpha"
    service = "Zeta Alpha"

    def client_settings(self, conn: Connection) -> tuple[str, Auth]:
        extra = self.extra_of(conn)
        if not extra.get("tenant"):
            raise ValueError(f"connection {conn.conn_id!r}: extra 'tenant' is required")
        if not conn.password:
            raise ValueError(f"connection {conn.conn_id!r}: the password (API key or token) is empty")
        self.scope = {"tenant": extra["tenant"]}
        if extra.get("index_id"):
            self.scope["index_id"] = extra["index_id"]
        if extra.get("auth_type", "api_key") == "bearer":
            auth = StaticAuth({"Authorization": f"Bearer {conn.password}"})
        else:
            auth = StaticAuth({"X-Auth": conn.password})
        return f"{self.base_url_of(conn)}/v0/service/ingestion", auth

    def _params(self, batch: bool = False, **criteria: Any) -> list[tuple[str, str]]:
        """Query pairs: the tenant, the index (GETs; batches carry it in the body), the criteria.
        Lists become repeated keys (``document_id_in=a&document_id_in=b``)."""
        scope = {"tenant": self.scope["tenant"]}
        if not batch and "index_id" in self.scope:
            scope["index_id"] = self.scope["index_id"]
        pairs = []
        for key, value in {**scope, **criteria}.items():
            for item in value if isinstance(value, list) else [value]:
                if item is not None:
                    pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
        return pairs

    def _get(self, path: str, **criteria: Any) -> Any:
        client = self.client  # first: building it reads tenant and index from the connection
        return client.json("GET", path, params=self._params(**criteria))

    def _batch(self, path: str, body: dict[str, Any], content_source_id: str | None = None) -> dict[str, Any]:
        client = self.client
        if "index_id" in self.scope:
            body = {"index_id": self.scope["index_id"], **body}
        if content_source_id:
            body["content_source_id"] = content_source_id
        # Batches are upserts keyed by document id: resending one after a lost reply is harmless.
        return client.json("POST", path, params=self._params(batch=True), json=body, idempotent=True)

    def ingest_documents(
        self, documents: list[dict[str, Any]], content_ingestion_job_id: str | None = None
    ) -> dict[str, Any]:
        if content_ingestion_job_id:
            documents = [{**d, "content_ingestion_job_id": content_ingestion_job_id} for d in documents]
        return self._batch("documents/document-batches", {"documents": documents})

    def update_access_rights(
        self, documents: list[dict[str, Any]], content_source_id: str | None = None
    ) -> dict[str, Any]:
        return self._batch("documents/access-rights-batches", {"documents": documents}, content_source_id)

    def delete_documents(
        self, document_ids: list[str], content_source_id: str | None = None
    ) -> dict[str, Any]:
        return self._batch(
            "documents/delete-document-batches", {"document_ids": document_ids}, content_source_id
        )

    def get_document(self, document_id: str, include_document_status: bool = False) -> dict[str, Any]:
        return self._get(
            f"documents/{segment(document_id, 'document_id')}",
            include_document_status=include_document_status,
        )

    def get_document_content(self, document_id: str) -> bytes:
        client = self.client
        return client.request(
            "GET", f"documents/{segment(document_id, 'document_id')}/content", params=self._params()
        ).content

    def filter_documents(self, page_size: int = 100, **criteria: Any) -> Iterator[dict[str, Any]]:
        """Every document matching ``criteria``, following ``next`` from page to page."""
        page: int | None = 1
        while page is not None:
            reply = self._get("documents", page=page, page_size=page_size, **criteria) or {}
            yield from reply.get("results", [])
            page = (reply.get("next") or {}).get("page")

    def _status_query(self, chunk: list[str]) -> list[tuple[str, str]]:
        return self._params(document_id_in=chunk, include_document_status=True, page_size=len(chunk))

    def _job_query(self, job: dict[str, Any], page: int) -> list[tuple[str, str]]:
        return self._params(
            content_ingestion_job_id=job["ingestion_job_id"],
            include_document_status=True,
            page=page,
            page_size=STATUS_PAGE,
        )

    def job_snapshot(self, job_id: Any) -> JobSnapshot:
        """A snapshot of an ingestion job (see :func:`ingestion_job`), or of a list of document ids."""
        if isinstance(job_id, dict):
            return self._ingestion_snapshot(job_id)
        return self._documents_snapshot(job_id)

    def _ingestion_snapshot(self, job: dict[str, Any]) -> JobSnapshot:
        client = self.client
        found: dict[str, dict[str, Any]] = {}
        page: int | None = 1 if job.get("ingestion_job_id") and job.get("documents") else None
        while page is not None:
            reply = client.json("GET", "documents", params=self._job_query(job, page)) or {}
            found.update({d["document_id"]: d for d in reply.get("results", [])})
            page = (reply.get("next") or {}).get("page")
        return ingestion_snapshot(job, found, time.time())

    async def _aingestion_snapshot(self, job: dict[str, Any]) -> JobSnapshot:
        client = await self.aclient()
        found: dict[str, dict[str, Any]] = {}
        page: int | None = 1 if job.get("ingestion_job_id") and job.get("documents") else None
        while page is not None:
            reply = await client.json("GET", "documents", params=self._job_query(job, page)) or {}
            found.update({d["document_id"]: d for d in reply.get("results", [])})
            page = (reply.get("next") or {}).get("page")
        return ingestion_snapshot(job, found, time.time())

    def _documents_snapshot(self, job_id: list[str]) -> JobSnapshot:
        client = self.client
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(job_id), STATUS_CHUNK):
            reply = client.json(
                "GET", "documents", params=self._status_query(job_id[start : start + STATUS_CHUNK])
            )
            found.update({d["document_id"]: d for d in (reply or {}).get("results", [])})
        return documents_snapshot(job_id, found)

    async def ajob_snapshot(self, job_id: Any) -> JobSnapshot:
        if isinstance(job_id, dict):
            return await self._aingestion_snapshot(job_id)
        client = await self.aclient()  # first: it reads tenant and index without blocking
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(job_id), STATUS_CHUNK):
            reply = await client.json(
                "GET", "documents", params=self._status_query(job_id[start : start + STATUS_CHUNK])
            )
            found.update({d["document_id"]: d for d in (reply or {}).get("results", [])})
        return documents_snapshot(job_id, found)

    def cancel_job(self, job_id: list[str]) -> None:
        """Indexing cannot be canceled: documents already sent stay in the index."""

    async def acancel_job(self, job_id: list[str]) -> None:
        """Indexing cannot be canceled: documents already sent stay in the index."""

    def probe(self) -> str:
        next(iter(self.filter_documents(page_size=1)), None)
        return f"Zeta Alpha reachable; the key may read tenant {self.scope['tenant']!r}"
