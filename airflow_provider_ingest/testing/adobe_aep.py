"""A fake Adobe Experience Platform: IMS tokens, Batch Ingestion (small and large file uploads),
Catalog batches and datasets, and the Schema Registry.

Every platform call needs ``Authorization``, ``x-api-key`` (the client id) and
``x-gw-ims-org-id``; a missing org header is 400 and a wrong one 403, like the service. Large
files must arrive in contiguous ``Content-Range`` chunks. On COMPLETE the batch goes
``staging`` and then ``success``, or ``failed`` with errors when a file is not Parquet or has a
column the dataset's XDM schema lacks (checked with pyarrow).
"""

from __future__ import annotations

import io
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from airflow_provider_ingest.parquet_convert import check_xdm_subset
from airflow_provider_ingest.testing.server import FakeService

IMPORT = "/data/foundation/import/batches"
CATALOG = "/data/foundation/catalog"
SCHEMA_ID = "https://ns.adobe.com/acme/schemas/events"
DATASET_ID = "5f0c1e2d3a4b5c6d7e8f9a0b"
EVENTS_SCHEMA = {
    "$id": SCHEMA_ID,
    "title": "Events",
    "type": "object",
    "properties": {
        "timestamp": {"type": "string", "format": "date-time"},
        "city": {"type": "string"},
        "session": {"type": "string"},
        "session_length": {"type": "integer"},
        "score": {"type": "number"},
        "active": {"type": "boolean"},
    },
}
RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class AdobeAepFake(FakeService):
    conn_id = "adobe_aep_default"
    tunables = ("staging_seconds", "token_ttl", "catalog_lag_seconds")

    def __init__(
        self,
        *,
        client_id: str = "aep-test-client",
        client_secret: str = "aep-test-secret-0123456789",
        ims_org_id: str = "ACME0123456789@AdobeOrg",
        datasets: dict[str, dict[str, Any]] | None = None,
        staging_seconds: float = 0.5,
        token_ttl: float = 86399.0,
        catalog_lag_seconds: float = 0.0,
        **kwargs: Any,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.ims_org_id = ims_org_id
        self.schemas = {SCHEMA_ID: EVENTS_SCHEMA}
        self.datasets = datasets or {
            DATASET_ID: {
                "name": "events",
                "schemaRef": {
                    "id": SCHEMA_ID,
                    "contentType": "application/vnd.adobe.xed-full+json;version=1",
                },
            }
        }
        self.staging_seconds = staging_seconds
        self.token_ttl = token_ttl
        # Catalog is eventually consistent: for this long after COMPLETE it still says "loading"
        self.catalog_lag_seconds = catalog_lag_seconds
        self.tokens: dict[str, float] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        super().__init__(**kwargs)

    def airflow_connection(self) -> dict[str, Any]:
        return {
            "conn_type": "adobe_aep",
            "host": self.url,
            "login": self.client_id,
            "password": self.client_secret,
            "extra": {
                "ims_org_id": self.ims_org_id,
                "sandbox_name": "prod",
                "token_url": f"{self.url}/ims/token/v3",
            },
        }

    def reset_state(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.batches.clear()

    def error_body(self, code: str, message: str) -> dict[str, Any]:
        return {"error_code": code, "message": message, "title": message}

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    # --- auth -----------------------------------------------------------------------------------
    def _denied(self, request: Request) -> JSONResponse | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if self.tokens.get(token, 0.0) < time.time():
            return self.error(401, "401013", "Oauth token is not valid")
        if request.headers.get("x-api-key") != self.client_id:
            return self.error(403, "403010", "x-api-key: not the client id the token was issued to")
        org = request.headers.get("x-gw-ims-org-id")
        if not org:
            return self.error(400, "400001", "x-gw-ims-org-id: header is required")
        if org != self.ims_org_id:
            return self.error(403, "403025", "x-gw-ims-org-id: profile is not valid for this org")
        if request.headers.get("x-sandbox-name", "prod") != "prod":
            return self.error(403, "403027", "x-sandbox-name: no such sandbox")
        return None

    # --- batch lifecycle --------------------------------------------------------------------------
    def _validate_files(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        files = batch["files"]
        if not files:
            return [{"code": "INGEST-1212-400", "description": "the batch has no files"}]
        xdm = self.schemas[self.datasets[batch["datasetId"]]["schemaRef"]["id"]]
        errors = []
        for name, file in files.items():
            if not file["complete"]:
                errors.append({"code": "INGEST-1213-400", "description": f"{name}: upload never completed"})
                continue
            try:
                parquet = pq.ParquetFile(io.BytesIO(bytes(file["data"])))
                check_xdm_subset(parquet.schema_arrow, xdm, name)
                batch["rows"] += parquet.metadata.num_rows
            except ValueError as exc:
                errors.append({"code": "INGEST-1401-400", "description": str(exc)})
            except Exception as exc:  # noqa: BLE001 - not Parquet at all
                errors.append(
                    {
                        "code": "INGEST-1400-400",
                        "description": f"{name}: not a Parquet file ({type(exc).__name__})",
                    }
                )
        return errors

    def _view(self, batch: dict[str, Any]) -> dict[str, Any]:
        status = batch["status"]
        if status == "staging":
            since_complete = time.time() - batch["completed_at"]
            if since_complete >= self.catalog_lag_seconds + self.staging_seconds:
                errors = self._validate_files(batch)
                batch.update(status="failed" if errors else "success", errors=errors)
                self.record("batch_finished", id=batch["id"], status=batch["status"], rows=batch["rows"])
                status = batch["status"]
            elif since_complete < self.catalog_lag_seconds:
                status = "loading"  # Catalog has not seen the COMPLETE yet
        return {
            "id": batch["id"],
            "imsOrg": self.ims_org_id,
            "status": status,
            "createdClient": self.client_id,
            "created": batch["created"],
            "updated": int(time.time() * 1000),
            "relatedObjects": [{"type": "dataSet", "id": batch["datasetId"]}],
            "errors": batch.get("errors", []),
            "metrics": {"inputFileCount": len(batch["files"]), "recordsWritten": batch["rows"]},
            "version": "1.0.0",
        }

    def _batch(self, batch_id: str, loading: bool = False) -> dict[str, Any] | JSONResponse:
        batch = self.batches.get(batch_id)
        if batch is None:
            return self.error(404, "404001", f"batch {batch_id} not found")
        if loading and batch["status"] != "loading":
            return self.error(400, "400302", f"batch {batch_id} is {batch['status']}, no longer loading")
        return batch

    # --- routes ---------------------------------------------------------------------------------
    def install_routes(self, app: FastAPI) -> None:
        @app.post("/ims/token/v3")
        async def token(request: Request) -> Response:
            form = await request.form()
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                return JSONResponse({"error": "invalid_client", "error_description": "invalid client"}, 401)
            value = secrets.token_urlsafe(32)
            with self.lock:
                self.tokens[value] = time.time() + self.token_ttl
            self.record("token_issued")
            return JSONResponse(
                {"access_token": value, "token_type": "bearer", "expires_in": int(self.token_ttl)}
            )

        @app.post(IMPORT)
        async def create_batch(request: Request) -> Response:
            if denied := self._denied(request):
                return denied
            body = await request.json()
            dataset_id = body.get("datasetId")
            if dataset_id not in self.datasets:
                return self.error(400, "400301", f"datasetId: dataset {dataset_id!r} not found")
            if (body.get("inputFormat") or {}).get("format", "parquet") != "parquet":
                return self.error(400, "400303", "inputFormat.format: this fake takes parquet")
            batch_id = uuid.uuid4().hex[:24]
            with self.lock:
                self.batches[batch_id] = {
                    "id": batch_id,
                    "datasetId": dataset_id,
                    "status": "loading",
                    "created": int(time.time() * 1000),
                    "files": {},
                    "rows": 0,
                }
                view = self._view(self.batches[batch_id])
            self.record("batch_created", id=batch_id)
            return JSONResponse(view, status_code=201)

        @app.api_route(
            IMPORT + "/{batch_id}/datasets/{dataset_id}/files/{file_name:path}",
            methods=["PUT", "POST", "PATCH"],
        )
        async def file_upload(batch_id: str, dataset_id: str, file_name: str, request: Request) -> Response:
            if denied := self._denied(request):
                return denied
            file_name = unquote(file_name)
            action = request.query_params.get("action")
            data = await request.body()
            with self.lock:
                batch = self._batch(batch_id, loading=True)
                if isinstance(batch, JSONResponse):
                    return batch
                if dataset_id != batch["datasetId"]:
                    return self.error(400, "400304", "dataset_id: not the batch's dataset")
                files = batch["files"]
                if request.method == "PUT":
                    files[file_name] = {"data": bytearray(data), "complete": True, "total": len(data)}
                    self.record(
                        "file_uploaded", batch=batch_id, name=file_name, bytes=len(data), mode="small"
                    )
                    return Response(status_code=200)
                if request.method == "POST" and action == "initialize":
                    files[file_name] = {"data": bytearray(), "complete": False, "total": None, "chunks": []}
                    return Response(status_code=201)
                file = files.get(file_name)
                if file is None:
                    return self.error(404, "404002", f"{file_name}: not initialized")
                if request.method == "POST" and action == "COMPLETE":
                    if file["total"] is None or len(file["data"]) != file["total"]:
                        return self.error(
                            400, "400306", f"{file_name}: {len(file['data'])} of {file['total']} bytes"
                        )
                    file["complete"] = True
                    self.record(
                        "file_uploaded",
                        batch=batch_id,
                        name=file_name,
                        bytes=file["total"],
                        mode="large",
                        chunks=file["chunks"],
                    )
                    return Response(status_code=200)
                if request.method != "PATCH":
                    return self.error(400, "400305", "action: initialize or COMPLETE")
                match = RANGE.match(request.headers.get("content-range", ""))
                if not match:
                    return self.error(400, "400307", "Content-Range: expected 'bytes a-b/total'")
                start, end, total = map(int, match.groups())
                if (
                    start == len(file["data"]) - len(data)
                    and file["chunks"]
                    and file["chunks"][-1] == [start, end]
                ):
                    return Response(status_code=200)  # a retried chunk that already arrived
                if (
                    start != len(file["data"])
                    or end - start + 1 != len(data)
                    or (file["total"] not in (None, total))
                ):
                    return self.error(
                        416,
                        "416001",
                        f"Content-Range {start}-{end}/{total} is not contiguous "
                        f"with the {len(file['data'])} bytes received",
                    )
                file["data"] += data
                file["total"] = total
                file["chunks"].append([start, end])
            return Response(status_code=200)

        @app.post(IMPORT + "/{batch_id}")
        async def batch_action(batch_id: str, request: Request) -> Response:
            if denied := self._denied(request):
                return denied
            action = request.query_params.get("action")
            with self.lock:
                batch = self._batch(batch_id)
                if isinstance(batch, JSONResponse):
                    return batch
                if action == "COMPLETE":
                    if batch["status"] == "loading":
                        batch.update(status="staging", completed_at=time.time())
                        self.record("batch_completed", id=batch_id)
                    return Response(status_code=200)
                if action == "ABORT":
                    if batch["status"] in ("loading", "staging"):
                        batch["status"] = "aborted"
                        self.record("batch_aborted", id=batch_id)
                    return Response(status_code=200)
            return self.error(400, "400308", "action: COMPLETE or ABORT")

        @app.get(CATALOG + "/batches")
        async def list_batches(request: Request) -> Response:
            """Catalog's batch list: a map of id to batch, filtered by ``dataSet``, ``status``,
            ``createdAfter`` / ``createdBefore`` (epoch ms), ordered by ``orderBy`` (e.g.
            ``desc:created``), paged by ``limit`` (1..100, 20 when not given) and ``start``."""
            if denied := self._denied(request):
                return denied
            query = request.query_params
            try:
                limit = int(query.get("limit", 20))
                start = int(query.get("start", 0))
                after = int(query["createdAfter"]) if "createdAfter" in query else None
                before = int(query["createdBefore"]) if "createdBefore" in query else None
            except ValueError:
                return self.error(400, "400310", "limit, start, createdAfter, createdBefore: integers")
            if not 1 <= limit <= 100 or start < 0:
                return self.error(400, "400311", "limit: must be 1..100; start: must be >= 0")
            direction, _, field = query.get("orderBy", "asc:created").rpartition(":")
            if field not in ("created", "updated") or direction not in ("", "asc", "desc"):
                return self.error(400, "400312", "orderBy: [asc:|desc:]created or updated")
            with self.lock:
                views = [self._view(b) for b in self.batches.values()]
            views = [
                v
                for v in views
                if query.get("dataSet") in (None, v["relatedObjects"][0]["id"])
                and query.get("status") in (None, v["status"])
                and (after is None or v["created"] > after)
                and (before is None or v["created"] < before)
            ]
            views.sort(key=lambda v: v[field], reverse=direction == "desc")
            return JSONResponse({v["id"]: v for v in views[start : start + limit]})

        @app.get(CATALOG + "/batches/{batch_id}")
        async def get_batch(batch_id: str, request: Request) -> Response:
            if denied := self._denied(request):
                return denied
            with self.lock:
                batch = self._batch(batch_id)
                return (
                    batch if isinstance(batch, JSONResponse) else JSONResponse({batch_id: self._view(batch)})
                )

        @app.get(CATALOG + "/dataSets/{dataset_id}")
        async def get_dataset(dataset_id: str, request: Request) -> Response:
            if denied := self._denied(request):
                return denied
            if dataset_id not in self.datasets:
                return self.error(404, "404003", f"dataset {dataset_id} not found")
            return JSONResponse({dataset_id: self.datasets[dataset_id]})

        @app.get("/data/foundation/schemaregistry/tenant/schemas/{schema_id:path}")
        async def get_schema(schema_id: str, request: Request) -> Response:
            if denied := self._denied(request):
                return denied
            if "xed-full" not in request.headers.get("accept", ""):
                return self.error(
                    406, "406001", "Accept: application/vnd.adobe.xed-full+json;version=1 is required"
                )
            schema = self.schemas.get(unquote(schema_id))
            if schema is None:
                return self.error(404, "404004", f"schema {unquote(schema_id)} not found")
            return JSONResponse(schema)
