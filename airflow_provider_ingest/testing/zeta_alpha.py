"""A fake Zeta Alpha Ingestion API: tenant-scoped documents that move ingesting -> indexing ->
indexed over time.

Keys (``X-Auth``) and bearer tokens each belong to one tenant: another tenant's documents are
out of reach (403). A ``document_id`` that is not a sha1 hex string, or an access-rights update
for an unknown document, is an entry in the reply's ``errors``, not an HTTP error. ``url``
content is downloaded when indexing starts; content that cannot be read (a failed download, bad
base64, text starting with ``CORRUPT``) ends ``failed`` with an error code.

A document batch without ``content_ingestion_job_id`` makes a new ingestion job, named in the reply
for each document; documents sent with an id join that job. ``custom_metadata_keys`` (a tunable,
None by default) gives the index a custom schema: a ``custom_metadata`` key it does not define is a
per-document error, and the declared fields that only an index without a custom schema keeps
(``title``, ``last_updated_at``...) are dropped, as the seed describes.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from airflow_provider_ingest.testing.server import FakeService

API = "/v0/service/ingestion/documents"
SCHEMALESS_FIELDS = {"title", "authors", "created_at", "last_updated_at", "image_urls", "logo_url"}
SHA1_HEX = re.compile(r"^[0-9a-f]{40}$")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ZetaAlphaFake(FakeService):
    conn_id = "zeta_alpha_default"
    # hide_for_polls: a document just sent stays invisible (404, left out of filters) for this many
    # reads that would have shown it, as a search index that is not refreshed yet
    tunables = ("ingesting_seconds", "indexing_seconds", "custom_metadata_keys", "hide_for_polls")

    def __init__(
        self,
        *,
        api_keys: dict[str, str] | None = None,
        tenant: str = "acme",
        ingesting_seconds: float = 0.2,
        indexing_seconds: float = 0.4,
        **kwargs: Any,
    ):
        self.tenant = tenant
        self.api_key = "za-test-key-0123456789abcdef"
        self.api_keys = (
            api_keys if api_keys is not None else {self.api_key: tenant, "za-other-tenant-key": "other"}
        )
        self.ingesting_seconds = ingesting_seconds
        self.indexing_seconds = indexing_seconds
        self.custom_metadata_keys: list[str] | None = None
        self.hide_for_polls = 0
        self.documents: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.rejections: dict[str, str] = {}
        super().__init__(**kwargs)

    def reject(self, document_id: str, message: str) -> None:
        """Fault injection at document level: the next batches answer ``errors`` for this id.
        ``{document}`` in the message is replaced by the document as sent (a vendor echoing it)."""
        with self.lock:
            self.rejections[document_id] = message

    def airflow_connection(self) -> dict[str, Any]:
        return {
            "conn_type": "zeta_alpha",
            "host": self.url,
            "password": self.api_key,
            "extra": {"tenant": self.tenant},
        }

    def reset_state(self) -> None:
        with self.lock:
            self.documents.clear()
            self.rejections.clear()

    def error_body(self, code: str, message: str) -> dict[str, Any]:
        return {"detail": message, "code": code}

    # --- auth and scope ---------------------------------------------------------------------------
    def _scope(self, request: Request) -> tuple[str, str] | JSONResponse:
        key = request.headers.get("x-auth") or request.headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        owner = self.api_keys.get(key or "")
        if owner is None:
            return self.error(401, "unauthorized", "a valid X-Auth API key or bearer token is required")
        tenant = request.query_params.get("tenant")
        if not tenant:
            return self.error(422, "validation_error", "tenant: query parameter is required")
        if tenant != owner:
            return self.error(
                403, "forbidden", f"the key has no ingestion-manager role for tenant {tenant!r}"
            )
        return tenant, request.query_params.get("index_id") or "default"

    # --- document lifecycle ----------------------------------------------------------------------
    def _content_problem(self, document: dict[str, Any]) -> str | None:
        content = document.get("document_content")
        if not content:
            return None
        source = content.get("from_") or {}
        try:
            if "base64_string" in source:
                data = base64.b64decode(source["base64_string"], validate=True)
            elif "plain_text_string" in source:
                data = source["plain_text_string"].encode()
            elif "url" in source:
                reply = requests.get(source["url"], timeout=10)
                if reply.status_code != 200:
                    return "download_failed"
                data = reply.content
            else:
                return "no_content"
        except (ValueError, requests.RequestException):
            return "content_unreadable"
        document["_content"] = data
        return "content_parse_error" if data.startswith(b"CORRUPT") else None

    def _advance(self, document: dict[str, Any], read: bool = False) -> None:
        """Move the document on by the fake's clock (``read``: a status read)."""
        if document.get("_final"):
            return
        ends = (self.ingesting_seconds, self.ingesting_seconds + self.indexing_seconds)
        age = self.job_age(document["_clock"], ends, read=read)
        update = document["version"] > 1
        if age < self.ingesting_seconds:
            document["status"] = "ingesting"
        elif age < self.ingesting_seconds + self.indexing_seconds:
            if "_checked" not in document:
                document["_checked"] = self._content_problem(document)
            document["status"] = "indexing_update" if update else "indexing"
        else:
            if "_checked" not in document:
                document["_checked"] = self._content_problem(document)
            if document["_checked"]:
                document.update(status="failed", error_codes=[document["_checked"]])
            elif not document.get("is_indexable", True):
                document["status"] = "ingested"
            else:
                document["status"] = "indexed_update" if update else "indexed"
            document["_final"] = True

    def _visible(self, document: dict[str, Any]) -> bool:
        """False (and one read used up) while a just-sent document is still hidden."""
        if document.get("_hidden", 0) > 0:
            document["_hidden"] -= 1
            return False
        return True

    def _view(self, document: dict[str, Any], include_status: bool) -> dict[str, Any]:
        self._advance(document, read=include_status)
        view = {k: v for k, v in document.items() if not k.startswith("_")}
        content = view.get("document_content")
        if content:
            view["document_content"] = {
                "content_type": content.get("content_type"),
                "from_": {},
                "download_url": f"{API}/{document['document_id']}/content",
            }
        if not include_status:
            view.pop("status", None)
            view.pop("error_codes", None)
        return view

    def _reply(self, tenant: str, index_id: str, documents: list[dict], errors: list[dict]) -> JSONResponse:
        body: dict[str, Any] = {"tenant": tenant, "index_id": index_id, "documents": documents}
        if errors:
            body["errors"] = errors
        return JSONResponse(body)

    def _ingest(self, tenant: str, index_id: str, item: dict[str, Any]) -> dict[str, Any]:
        if self.custom_metadata_keys is not None:  # only an index without a custom schema keeps these
            item = {k: v for k, v in item.items() if k not in SCHEMALESS_FIELDS}
        key = (tenant, index_id, item["document_id"])
        previous = self.documents.get(key)
        version = previous["version"] + 1 if previous and not previous.get("deleted") else 1
        stamp = _now()
        document = {
            **{k: v for k, v in item.items() if k != "document_content"},
            "document_content": item.get("document_content"),
            "tenant": tenant,
            "index_id": index_id,
            "deleted": False,
            "version": version,
            "status": "ingesting",
            "request_created_at": previous["request_created_at"] if previous else stamp,
            "request_last_updated_at": stamp,
            "_since": time.time(),
            "_clock": (*key, version),
            "_hidden": self.hide_for_polls,
        }
        self.documents[key] = document
        self.start_clock(document["_clock"])
        return {
            "document_id": item["document_id"],
            "version": str(version),
            "content_source_id": item.get("content_source_id"),
            "content_ingestion_job_id": item.get("content_ingestion_job_id"),
            "status": "ingesting",
        }

    # --- routes ----------------------------------------------------------------------------------
    def install_routes(self, app: FastAPI) -> None:
        async def batch(request: Request) -> tuple[str, str, dict[str, Any]] | Response:
            scope = self._scope(request)
            if isinstance(scope, Response):
                return scope
            try:
                body = await request.json()
            except ValueError:
                return self.error(422, "validation_error", "body: not JSON")
            if not isinstance(body, dict):
                return self.error(422, "validation_error", "body: expected an object")
            return scope[0], body.get("index_id") or scope[1], body

        @app.post(f"{API}/document-batches")
        async def document_batches(request: Request) -> Response:
            parsed = await batch(request)
            if isinstance(parsed, Response):
                return parsed
            tenant, index_id, body = parsed
            if not isinstance(body.get("documents"), list):
                return self.error(422, "validation_error", "documents: a list is required")
            accepted, errors = [], []
            new_job = f"job-{uuid.uuid4()}"  # for the documents that name none
            with self.lock:
                for item in body["documents"]:
                    doc_id = item.get("document_id") if isinstance(item, dict) else None
                    if not isinstance(doc_id, str) or not SHA1_HEX.match(doc_id):
                        errors.append(
                            {"document_id": str(doc_id), "error_message": "document_id must be a sha1 hex"}
                        )
                        continue
                    if any(not r.get("name") for r in item.get("allow_access_rights") or []):
                        errors.append(
                            {"document_id": doc_id, "error_message": "allow_access_rights[].name is required"}
                        )
                        continue
                    if doc_id in self.rejections:
                        message = self.rejections[doc_id].replace("{document}", json.dumps(item))
                        errors.append({"document_id": doc_id, "error_message": message})
                        continue
                    if self.custom_metadata_keys is not None:
                        unknown = sorted(
                            set(item.get("custom_metadata") or {}) - set(self.custom_metadata_keys)
                        )
                        if unknown:
                            errors.append(
                                {
                                    "document_id": doc_id,
                                    "error_message": f"custom_metadata: key {unknown[0]!r} is not "
                                    "defined in the index configuration",
                                }
                            )
                            continue
                    item = {
                        **item,
                        "content_ingestion_job_id": item.get("content_ingestion_job_id") or new_job,
                    }
                    accepted.append(self._ingest(tenant, index_id, item))
            self.record("document_batch", documents=len(accepted), errors=len(errors))
            return self._reply(tenant, index_id, accepted, errors)

        @app.post(f"{API}/access-rights-batches")
        async def access_rights_batches(request: Request) -> Response:
            parsed = await batch(request)
            if isinstance(parsed, Response):
                return parsed
            tenant, index_id, body = parsed
            updated, errors = [], []
            with self.lock:
                for item in body.get("documents") or []:
                    document = self.documents.get((tenant, index_id, item.get("document_id")))
                    if document is None or document["deleted"]:
                        errors.append(
                            {"document_id": str(item.get("document_id")), "error_message": "not found"}
                        )
                        continue
                    if any(not r.get("name") for r in item.get("allow_access_rights") or []):
                        errors.append(
                            {"document_id": item["document_id"], "error_message": "access right without name"}
                        )
                        continue
                    document["allow_access_rights"] = item.get("allow_access_rights") or []
                    document["request_last_updated_at"] = _now()
                    updated.append(
                        {
                            "document_id": item["document_id"],
                            "version": str(document["version"]),
                            "status": document["status"],
                        }
                    )
            self.record("access_rights_batch", documents=len(updated), errors=len(errors))
            return self._reply(tenant, index_id, updated, errors)

        @app.post(f"{API}/delete-document-batches")
        async def delete_document_batches(request: Request) -> Response:
            parsed = await batch(request)
            if isinstance(parsed, Response):
                return parsed
            tenant, index_id, body = parsed
            deleted, errors = [], []
            with self.lock:
                for doc_id in body.get("document_ids") or []:
                    document = self.documents.get((tenant, index_id, doc_id))
                    if document is None or document["deleted"]:
                        errors.append({"document_id": str(doc_id), "error_message": "not found"})
                        continue
                    document.update(deleted=True, status="marked_for_deletion", _final=True)
                    deleted.append(
                        {
                            "document_id": doc_id,
                            "version": str(document["version"]),
                            "status": "marked_for_deletion",
                        }
                    )
            self.record("delete_batch", documents=len(deleted), errors=len(errors))
            return self._reply(tenant, index_id, deleted, errors)

        @app.get(f"{API}/{{document_id}}")
        async def retrieve(document_id: str, request: Request) -> Response:
            scope = self._scope(request)
            if isinstance(scope, Response):
                return scope
            include = request.query_params.get("include_document_status") == "true"
            with self.lock:
                document = self.documents.get((*scope, document_id))
                if document is None or not self._visible(document):
                    return self.error(404, "not_found", f"document {document_id} not found")
                return JSONResponse(self._view(document, include))

        @app.get(f"{API}/{{document_id}}/content")
        async def content(document_id: str, request: Request) -> Response:
            scope = self._scope(request)
            if isinstance(scope, Response):
                return scope
            with self.lock:
                document = self.documents.get((*scope, document_id))
                if document is None or not document.get("document_content"):
                    return self.error(404, "not_found", f"no content for document {document_id}")
                source = document["document_content"].get("from_") or {}
                if "url" in source:
                    return RedirectResponse(source["url"], status_code=307)
                data = source.get("plain_text_string", "").encode() or base64.b64decode(
                    source.get("base64_string", "")
                )
                headers = {"Content-Disposition": f'attachment; filename="{document_id}"'}
                return Response(
                    data, media_type=document["document_content"]["content_type"], headers=headers
                )

        @app.get(API)
        async def filter_documents(request: Request) -> Response:
            scope = self._scope(request)
            if isinstance(scope, Response):
                return scope
            query = request.query_params
            try:
                page = int(query.get("page", 1))
                page_size = int(query.get("page_size", 100))
            except ValueError:
                return self.error(422, "validation_error", "page, page_size: integers")
            if page < 1 or not 1 <= page_size <= 1000:
                return self.error(422, "validation_error", "page >= 1 and 1 <= page_size <= 1000")
            ids, uris = set(query.getlist("document_id_in")), set(query.getlist("uri_in"))
            include = query.get("include_document_status") == "true"
            with self.lock:
                matches = [
                    d
                    for (tenant, index_id, _), d in sorted(self.documents.items())
                    if (tenant, index_id) == scope
                    and not d["deleted"]
                    and (not ids or d["document_id"] in ids)
                    and (not uris or d.get("uri") in uris)
                    and all(
                        d.get(k) == query[k]
                        for k in ("content_source_id", "content_ingestion_job_id")
                        if k in query
                    )
                    and (
                        "request_last_updated_after" not in query
                        or d["request_last_updated_at"] > query["request_last_updated_after"]
                    )
                ]
                matches = [d for d in matches if self._visible(d)]
                window = matches[(page - 1) * page_size : page * page_size]
                body: dict[str, Any] = {
                    "count": len(matches),
                    "page": page,
                    "page_size": page_size,
                    "results": [self._view(d, include) for d in window],
                }
            if page * page_size < len(matches):
                body["next"] = {"page": page + 1, "page_size": page_size}
            if page > 1:
                body["previous"] = {"page": page - 1, "page_size": page_size}
            return JSONResponse(body)
