"""A fake Imply Polaris: project-scoped Connections v1 and Jobs v1, reading objects from moto S3.

Shapes follow the doc and Imply's polaris-sdk models: a created job is 201 with ``Location``;
errors are top-level ``{"code", "message"}``. Jobs go pending -> running -> completed/failed as
time passes; on completion the fake reads the selected objects, checks every ``inputSchema``
column is present, and counts the rows into its table (missing columns or unreadable objects fail
the job, naming the key; zero rows completes with health error ``no_rows_ingested``).
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import io
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_ingest.testing.server import FakeService

# What a job may name (Polaris's batch formats), and the subset this fake can read back: a job over
# orc or avro_ocf objects is accepted and then fails naming the format, never silently succeeds.
FORMATS = {"nd-json", "csv", "parquet", "orc", "avro_ocf"}
READABLE_FORMATS = {"nd-json", "csv", "parquet"}
DATA_TYPES = {"string", "long", "double", "float", "json"}
ROLE_ARN = re.compile(r"^arn:aws:iam::\d{12}:role/.+$")
TERMINAL = {"completed", "failed", "canceled"}
USER = {"username": "api-key-pok_fake...test", "userId": "00000000-0000-4000-8000-000000000000"}


def _now() -> str:
    return _stamp(time.time())


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Jobs v1 list (polaris-sdk ``jobs.list_jobs``): sortable columns, and the keys of a job summary
# (``BatchJobSummaryResponse``); a summary's source is only its type and connection name.
SORT_COLUMNS = {
    "created_date_time": lambda j: j["_created"],
    "last_updated_date_time": lambda j: j["_updated"],
    "execution_status": lambda j: j["executionStatus"],
    "target_table_name": lambda j: j["target"].get("tableName") or "",
    "type": lambda j: j["type"],
}
SUMMARY_KEYS = (
    "createdBy",
    "createdTimestamp",
    "desiredExecutionStatus",
    "executionStatus",
    "health",
    "id",
    "lastModifiedBy",
    "lastUpdatedTimestamp",
    "target",
    "type",
    "completedTimestamp",
    "startedTimestamp",
)


def read_rows(data: bytes, key: str, data_format: str) -> Any:
    """An Arrow table from one object (gzip handled)."""
    if key.endswith(".gz"):
        data = gzip.decompress(data)
    if not data.strip():
        import pyarrow as pa

        return pa.table({})
    if data_format == "nd-json":
        import pyarrow.json as pjson

        return pjson.read_json(io.BytesIO(data))
    if data_format == "csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(io.BytesIO(data))
    if data_format not in READABLE_FORMATS:
        raise ValueError(f"this fake cannot read {data_format} objects ({key})")
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


class PolarisFake(FakeService):
    conn_id = "polaris_default"
    tunables = ("pending_seconds", "running_seconds")

    def __init__(
        self,
        *,
        api_key: str = "pok_fake_polaris_test_key_0123456789",
        project_id: str = "test-project",
        organization: str = "demo.us-east-1.aws",
        pending_seconds: float = 0.5,
        running_seconds: float = 1.0,
        **kwargs: Any,
    ):
        self.api_key = api_key
        self.project_id = project_id
        self.organization = organization
        self.pending_seconds = pending_seconds
        self.running_seconds = running_seconds
        self.connections: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, int] = {}
        self._next_failure: str | None = None
        super().__init__(**kwargs)

    def airflow_connection(self) -> dict[str, Any]:
        return {
            "conn_type": "imply_polaris",
            "host": self.url,
            "password": self.api_key,
            # the organization a real *.api.imply.io host would name (the asset's authority)
            "extra": {"project_id": self.project_id, "organization": self.organization},
        }

    def reset_state(self) -> None:
        with self.lock:
            self.connections.clear()
            self.jobs.clear()
            self.tables.clear()
            self._next_failure = None

    def backdate_job(self, job_id: str, seconds: float) -> None:
        """Make a job look created (and last updated) ``seconds`` earlier: an older job in the list."""
        with self.lock:
            job = self.jobs[job_id]
            job["_created"] -= seconds
            job["createdTimestamp"] = _stamp(job["_created"])
            self._touch(job, job["_updated"] - seconds)

    def fail_next_job(self, message: str = "injected job failure") -> None:
        with self.lock:
            self._next_failure = message

    # --- validation -----------------------------------------------------------------------------
    def _connection_problem(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body: expected a JSON object"
        if body.get("type") != "s3":
            return "type: only 's3' connections are supported"
        for field in ("name", "bucket", "awsEndpoint", "awsAssumedRoleArn"):
            if not isinstance(body.get(field), str) or not body[field]:
                return f"{field}: required"
        if not ROLE_ARN.match(body["awsAssumedRoleArn"]):
            return "awsAssumedRoleArn: not an IAM role ARN"
        return None

    def _job_problem(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body: expected a JSON object"
        if body.get("type") != "batch":
            return "type: must be 'batch'"
        target = body.get("target") or {}
        if target.get("type") != "table" or not target.get("tableName"):
            return "target: must be {'type': 'table', 'tableName': ...}"
        source = body.get("source") or {}
        if source.get("type") != "s3":
            return "source.type: must be 's3'"
        connection = self.connections.get(source.get("connectionName") or "")  # "" names none
        if connection is None:
            return f"source.connectionName: no connection named {source.get('connectionName')!r}"
        given = [k for k in ("uris", "prefixes", "objects", "pattern") if source.get(k)]
        if len(given) != 1:
            return "source: exactly one of uris, prefixes, objects, pattern is required"
        for uri in source.get("uris") or []:
            if not str(uri).startswith(f"s3://{connection['bucket']}/"):
                return f"source.uris: {uri!r} is not in bucket {connection['bucket']!r}"
        if (source.get("formatSettings") or {}).get("format") not in FORMATS:
            return f"source.formatSettings.format: must be one of {sorted(FORMATS)}"
        schema = source.get("inputSchema")
        if not isinstance(schema, list) or not schema:
            return "source.inputSchema: a non-empty list is required"
        for column in schema:
            if (
                not isinstance(column, dict)
                or not column.get("name")
                or column.get("dataType") not in DATA_TYPES
            ):
                return f"source.inputSchema: bad column {column!r}"
        mappings = body.get("mappings")
        if not isinstance(mappings, list) or not all(
            isinstance(m, dict) and m.get("columnName") and m.get("expression") for m in mappings
        ):
            return "mappings: a list of {columnName, expression} is required"
        if "__time" not in {m["columnName"] for m in mappings}:
            return "mappings: a __time mapping is required"
        if body.get("ingestionMode", "append") not in ("append", "replace"):
            return "ingestionMode: must be 'append' or 'replace'"
        if not body.get("createTableIfNotExists", False) and target["tableName"] not in self.tables:
            return f"target.tableName: table {target['tableName']!r} does not exist"
        return None

    # --- lifecycle ------------------------------------------------------------------------------
    def _select_keys(self, job: dict[str, Any]) -> list[str]:
        source = job["source"]
        connection = self.connections[source["connectionName"]]
        bucket, base = connection["bucket"], connection.get("prefix") or ""
        if source.get("uris"):
            return [u[len(f"s3://{bucket}/") :] for u in source["uris"]]
        if source.get("objects"):
            return list(source["objects"])
        s3 = self.s3_client()
        listed: list[str] = []
        for prefix in source.get("prefixes") or [base]:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                listed += [o["Key"] for o in page.get("Contents", []) if o["Key"].startswith(base)]
        if source.get("pattern"):
            listed = [k for k in listed if fnmatch.fnmatch(k, source["pattern"])]
        return listed

    def _ingest(self, job: dict[str, Any]) -> None:
        """Read the job's objects and settle its outcome, health and metrics."""
        source = job["source"]
        bucket = self.connections[source["connectionName"]]["bucket"]
        columns = [c["name"] for c in source["inputSchema"]]
        rows = size = 0
        try:
            s3 = self.s3_client()
            for key in self._select_keys(job):
                try:
                    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    table = read_rows(data, key, source["formatSettings"]["format"])
                except Exception as exc:  # noqa: BLE001 - any read problem fails the job
                    reason = f"{type(exc).__name__}: {exc}"[:200]
                    raise ValueError(f"cannot read s3://{bucket}/{key}: {reason}") from None
                if table.num_rows and (missing := [c for c in columns if c not in table.column_names]):
                    raise ValueError(f"s3://{bucket}/{key} lacks input columns {missing}")
                rows += table.num_rows
                size += len(data)
        except ValueError as exc:
            job.update(
                executionStatus="failed",
                health={"status": "error", "code": "ingestion_failed", "message": str(exc)},
            )
        else:
            if job.pop("_fail", None):
                job.update(
                    executionStatus="failed",
                    health={"status": "error", "code": "injected_failure", "message": job["_fail_message"]},
                )
            elif rows == 0:
                job.update(
                    executionStatus="completed",
                    health={
                        "status": "error",
                        "code": "no_rows_ingested",
                        "message": "No rows were ingested",
                    },
                )
            else:
                job.update(executionStatus="completed", health={"status": "ok"})
                table_name = job["target"]["tableName"]
                base = 0 if job["ingestionMode"] == "replace" else self.tables.get(table_name, 0)
                self.tables[table_name] = base + rows
            job["_metrics"].update(
                numRowsProcessed=rows,
                numRowsPersisted=rows if job["health"]["status"] == "ok" else 0,
                numBytesProcessed=size,
            )
        self.record("job_finished", id=job["id"], status=job["executionStatus"], rows=rows)

    def _touch(self, job: dict[str, Any], when: float) -> None:
        job["_updated"] = when
        job["lastUpdatedTimestamp"] = _stamp(when)

    def _advance(self, job: dict[str, Any]) -> dict[str, Any]:
        """Move the job on by elapsed time; each change stamps the time it happened (not the time
        it is read), so the list's default order, newest *updated* first, is the service's."""
        if job["executionStatus"] not in TERMINAL:
            started = job["_created"] + self.pending_seconds
            ended = started + self.running_seconds
            if time.time() >= started and "startedTimestamp" not in job:
                job["startedTimestamp"] = _stamp(started)
                self._touch(job, started)
                job["executionStatus"] = "running"
            if time.time() >= ended:
                self._ingest(job)
                job["completedTimestamp"] = _stamp(ended)
                self._touch(job, ended)
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def _summary(self, job: dict[str, Any]) -> dict[str, Any]:
        public = self._advance(job)
        summary = {k: public[k] for k in SUMMARY_KEYS if k in public}
        source = public.get("source") or {}
        summary["source"] = {"type": source.get("type"), "connectionName": source.get("connectionName")}
        return summary

    # --- routes ---------------------------------------------------------------------------------
    def _denied(self, request: Request, project_id: str) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            user, password = "", "?"
        if not header.startswith("Basic ") or user != self.api_key or password:
            return self.error(401, "Unauthorized", "a valid API key is required (HTTP Basic, empty password)")
        if project_id != self.project_id:
            return self.error(404, "NotFound", f"project {project_id} not found")
        return None

    def install_routes(self, app: FastAPI) -> None:
        base = "/v1/projects/{project_id}"

        @app.post(f"{base}/connections")
        async def create_connection(project_id: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            body = await request.json()
            if problem := self._connection_problem(body):
                return self.error(400, "BadRequest", problem)
            with self.lock:
                if body["name"] in self.connections:
                    return self.error(409, "AlreadyExists", f"connection {body['name']!r} already exists")
                stamp = _now()
                connection = {
                    **body,
                    "submittedByUser": USER,
                    "submittedOnTimestamp": stamp,
                    "modifiedByUser": USER,
                    "modifiedOnTimestamp": stamp,
                }
                self.connections[body["name"]] = connection
            self.record("connection_created", name=body["name"])
            return JSONResponse(connection)

        @app.get(f"{base}/connections")
        async def list_connections(project_id: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            with self.lock:
                return JSONResponse({"values": list(self.connections.values())})

        @app.get(f"{base}/connections/{{name}}")
        async def get_connection(project_id: str, name: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            with self.lock:
                if name not in self.connections:
                    return self.error(404, "NotFound", f"connection {name!r} not found")
                return JSONResponse(self.connections[name])

        @app.post(f"{base}/jobs")
        async def create_job(project_id: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            body = await request.json()
            with self.lock:
                if problem := self._job_problem(body):
                    return self.error(400, "BadRequest", problem)
                job_id = str(uuid.uuid4())
                created = time.time()
                stamp = _stamp(created)
                job = {
                    **body,
                    "id": job_id,
                    "ingestionMode": body.get("ingestionMode", "append"),
                    "desiredExecutionStatus": "running",
                    "executionStatus": "pending",
                    "health": {"status": "ok"},
                    "createdBy": USER,
                    "lastModifiedBy": USER,
                    "createdTimestamp": stamp,
                    "lastUpdatedTimestamp": stamp,
                    "_created": created,
                    "_updated": created,
                    "_metrics": {
                        "numRowsProcessed": 0,
                        "numRowsPersisted": 0,
                        "numBytesProcessed": 0,
                        "numRowsProcessedWithWarning": 0,
                        "numRowsSkippedByFilter": 0,
                        "numRowsSkippedByError": 0,
                    },
                }
                if self._next_failure is not None:
                    job["_fail"], job["_fail_message"], self._next_failure = True, self._next_failure, None
                self.jobs[job_id] = job
                public = self._advance(job)
            self.record("job_created", id=job_id)
            location = f"/v1/projects/{project_id}/jobs/{job_id}"
            return JSONResponse(public, status_code=201, headers={"Location": location})

        @app.get(f"{base}/jobs")
        async def list_jobs(project_id: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            query = request.query_params
            column = query.get("sortColumn", "last_updated_date_time")
            order = query.get("sortOrder", "DESC")
            if column not in SORT_COLUMNS:
                return self.error(400, "BadRequest", f"sortColumn: must be one of {sorted(SORT_COLUMNS)}")
            if order not in ("ASC", "DESC"):
                return self.error(400, "BadRequest", "sortOrder: must be ASC or DESC")
            try:
                limit = int(query.get("paginationLimit", 100))
                offset = int(query.get("paginationOffset", 0))
            except ValueError:
                return self.error(400, "BadRequest", "paginationLimit, paginationOffset: integers")
            if not 1 <= limit <= 1000 or offset < 0:
                return self.error(400, "BadRequest", "paginationLimit: 1..1000; paginationOffset: >= 0")
            filters = {
                "type": query.getlist("type"),
                "executionStatus": query.getlist("executionStatus"),
            }
            table, connections = query.get("targetTableName"), query.getlist("connectionName")
            with self.lock:
                for job in self.jobs.values():
                    self._advance(job)  # a status change is an update: it moves the job up the default order
                jobs = [
                    j
                    for j in self.jobs.values()
                    if all(not wanted or j[key] in wanted for key, wanted in filters.items())
                    and (table is None or j["target"].get("tableName") == table)
                    and (not connections or (j.get("source") or {}).get("connectionName") in connections)
                ]
                jobs.sort(key=SORT_COLUMNS[column], reverse=order == "DESC")
                page = jobs[offset : offset + limit]
                return JSONResponse(
                    {
                        "values": [self._summary(j) for j in page],
                        "moreResultsAvailable": offset + limit < len(jobs),
                    }
                )

        def lookup(job_id: str) -> dict[str, Any] | JSONResponse:
            job = self.jobs.get(job_id)
            return job if job is not None else self.error(404, "NotFound", f"job {job_id} not found")

        @app.get(f"{base}/jobs/{{job_id}}")
        async def get_job(project_id: str, job_id: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            with self.lock:
                job = lookup(job_id)
                return job if isinstance(job, JSONResponse) else JSONResponse(self._advance(job))

        @app.put(f"{base}/jobs/{{job_id}}")
        async def update_job(project_id: str, job_id: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            body = await request.json()
            if body != {"desiredExecutionStatus": "canceled"}:
                return self.error(400, "BadRequest", "desiredExecutionStatus: only 'canceled' may be set")
            with self.lock:
                job = lookup(job_id)
                if isinstance(job, JSONResponse):
                    return job
                self._advance(job)
                if job["executionStatus"] not in TERMINAL:
                    job.update(executionStatus="canceled", desiredExecutionStatus="canceled")
                    self._touch(job, time.time())
                    self.record("job_canceled", id=job_id)
                return JSONResponse(self._advance(job))

        @app.get(f"{base}/jobs/{{job_id}}/metrics")
        async def job_metrics(project_id: str, job_id: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            with self.lock:
                job = lookup(job_id)
                if isinstance(job, JSONResponse):
                    return job
                self._advance(job)
                return JSONResponse({"totals": dict(job["_metrics"])})
