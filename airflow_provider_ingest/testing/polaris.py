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
EXECUTION_STATUSES = {"pending", "running", "completed", "idle", "canceled", "failed", "suspended", "unknown"}
HEALTH_STATUSES = {"ok", "warn", "error"}
JOB_TYPES = {"batch", "delete_data", "drop_table", "restore_data", "streaming", "sql"}
# the SDK's JobSortSearchColumn -> the job field it sorts by
SORT_COLUMNS = {
    "created_by_user_name": lambda j: j["createdBy"]["username"],
    "created_date_time": lambda j: j["createdTimestamp"],
    "execution_status": lambda j: j["executionStatus"],
    "last_updated_date_time": lambda j: j["lastUpdatedTimestamp"],
    "source_name": lambda j: (j.get("source") or {}).get("connectionName") or "",
    "source_type": lambda j: (j.get("source") or {}).get("type") or "",
    "source_connection_name": lambda j: (j.get("source") or {}).get("connectionName") or "",
    "source_table_name": lambda j: (j.get("source") or {}).get("tableName") or "",
    "target_table_name": lambda j: (j.get("target") or {}).get("tableName") or "",
    "type": lambda j: j["type"],
}
USER = {"username": "api-key-pok_fake...test", "userId": "00000000-0000-4000-8000-000000000000"}


def _now() -> str:
    return _stamp(time.time())


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Jobs v1 list (polaris-sdk ``jobs.list_jobs``): sortable columns, and the keys of a job summary
# (``BatchJobSummaryResponse``); a summary's source is only its type and connection name.
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


def sql_identifiers(expression: str) -> list[str]:
    """The double-quoted identifiers of a Druid SQL expression, read as Druid does: ``""`` inside
    quotes is one ``"``; single-quoted string literals (``''`` escaped) are skipped. A ValueError
    for an unterminated identifier or literal."""
    names: list[str] = []
    i = 0
    while i < len(expression):
        quote = expression[i]
        if quote not in "\"'":
            i += 1
            continue
        text, i = [], i + 1
        while True:
            if i >= len(expression):
                kind = "identifier" if quote == '"' else "string literal"
                raise ValueError(f"unterminated {kind} in {expression!r}")
            if expression[i] == quote:
                if expression[i + 1 : i + 2] == quote:  # doubled: an escaped quote
                    text.append(quote)
                    i += 2
                    continue
                i += 1
                break
            text.append(expression[i])
            i += 1
        if quote == '"':
            names.append("".join(text))
    return names


def expression_problem(expression: str, columns: set[str]) -> str | None:
    """Why Polaris would refuse a mapping expression over these input columns, or None."""
    try:
        names = sql_identifiers(expression)
    except ValueError as exc:
        return str(exc)
    unknown = [name for name in names if name not in columns]
    return f"unknown input column(s) {unknown}" if unknown else None


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
        columns = {c["name"] for c in schema}
        for mapping in mappings:
            problem = expression_problem(str(mapping["expression"]), columns)
            if problem:
                return f"mappings[{mapping['columnName']!r}].expression: {problem}"
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

    def _advance(self, job: dict[str, Any], read: bool = False) -> dict[str, Any]:
        """The job's public view, moved on by the fake's clock (``read``: a status read)."""
        if job["executionStatus"] not in TERMINAL:
            ends = (self.pending_seconds, self.pending_seconds + self.running_seconds)
            age = self.job_age(job["id"], ends, read=read)
            before = job["executionStatus"]
            if age >= self.pending_seconds + self.running_seconds:
                self._ingest(job)
            elif age >= self.pending_seconds:
                job["executionStatus"] = "running"
            if job["executionStatus"] != before:  # a status change is an update
                self._touch(job, time.time())
        return {k: v for k, v in job.items() if not k.startswith("_")}

    @staticmethod
    def _summary(public: dict[str, Any]) -> dict[str, Any]:
        """A job as the list shows it (the SDK's ``BatchJobSummaryResponse``): its source is only
        its type and connection name."""
        summary = {k: public[k] for k in SUMMARY_KEYS if k in public}
        source = public.get("source") or {}
        summary["source"] = {"type": source.get("type"), "connectionName": source.get("connectionName")}
        return summary

    def _cancel(self, job: dict[str, Any]) -> None:
        """Cancel a job that has not ended; one that has keeps its status (and the call succeeds)."""
        self._advance(job)
        if job["executionStatus"] not in TERMINAL:
            job.update(executionStatus="canceled", desiredExecutionStatus="canceled")
            self._touch(job, time.time())
            self.record("job_canceled", id=job["id"])

    def _list_query(self, request: Request) -> dict[str, Any] | str:
        """The list-jobs query as the SDK sends it (``list_jobs``), or the problem with it. A list
        parameter comes repeated (``?type=batch&type=sql``) or comma-separated."""
        query = request.query_params

        def many(name: str) -> list[str]:
            return [v for value in query.getlist(name) for v in value.split(",") if v]

        parsed: dict[str, Any] = {
            "connectionName": many("connectionName"),
            "executionStatus": many("executionStatus"),
            "healthStatus": many("healthStatus"),
            "type": many("type"),
            "searchString": query.get("searchString"),
            "targetTableName": query.get("targetTableName"),
            "sortColumn": query.get("sortColumn", "last_updated_date_time"),
            "sortOrder": query.get("sortOrder", "DESC"),
        }
        for name, known in (
            ("executionStatus", EXECUTION_STATUSES),
            ("healthStatus", HEALTH_STATUSES),
            ("type", JOB_TYPES),
        ):
            if bad := [v for v in parsed[name] if v not in known]:
                return f"{name}: unknown value(s) {bad}; known: {sorted(known)}"
        if parsed["sortColumn"] not in SORT_COLUMNS:
            return f"sortColumn: must be one of {sorted(SORT_COLUMNS)}"
        if parsed["sortOrder"].upper() not in ("ASC", "DESC"):
            return "sortOrder: must be ASC or DESC"
        try:
            parsed["paginationLimit"] = int(query.get("paginationLimit", 100))
            parsed["paginationOffset"] = int(query.get("paginationOffset", 0))
        except ValueError:
            return "paginationLimit, paginationOffset: integers"
        if not 1 <= parsed["paginationLimit"] <= 1000 or parsed["paginationOffset"] < 0:
            return "paginationLimit: 1 to 1000; paginationOffset: at least 0"
        return parsed

    @staticmethod
    def _listed(job: dict[str, Any], query: dict[str, Any]) -> bool:
        source, target = job.get("source") or {}, job.get("target") or {}
        wanted = (
            ("connectionName", source.get("connectionName")),
            ("executionStatus", job["executionStatus"]),
            ("healthStatus", job["health"]["status"]),
            ("type", job["type"]),
        )
        if any(query[name] and value not in query[name] for name, value in wanted):
            return False
        if query["targetTableName"] and target.get("tableName") != query["targetTableName"]:
            return False
        if search := (query["searchString"] or "").lower():
            fields = (
                job["id"],
                job["type"],
                job["executionStatus"],
                target.get("tableName"),
                source.get("connectionName"),
                job["createdBy"]["username"],
            )
            return any(search in str(f).lower() for f in fields if f)
        return True

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
                    "spec": body,  # the request as sent: a required member of the SDK's JobResponse
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
                self.start_clock(job_id)
                public = self._advance(job)
            self.record("job_created", id=job_id)
            location = f"/v1/projects/{project_id}/jobs/{job_id}"
            return JSONResponse(public, status_code=201, headers={"Location": location})

        @app.get(f"{base}/jobs")
        async def list_jobs(project_id: str, request: Request) -> JSONResponse:
            """Filtered, sorted (by default: last updated first, as Polaris) and paginated."""
            if denied := self._denied(request, project_id):
                return denied
            query = self._list_query(request)
            if isinstance(query, str):
                return self.error(400, "BadRequest", query)
            with self.lock:
                views = [self._advance(j) for j in self.jobs.values()]
            views = [v for v in views if self._listed(v, query)]
            views.sort(key=SORT_COLUMNS[query["sortColumn"]], reverse=query["sortOrder"].upper() == "DESC")
            start, limit = query["paginationOffset"], query["paginationLimit"]
            page = views[start : start + limit]
            return JSONResponse(
                {
                    "values": [self._summary(v) for v in page],
                    "moreResultsAvailable": start + limit < len(views),
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
                return job if isinstance(job, JSONResponse) else JSONResponse(self._advance(job, read=True))

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
                self._cancel(job)
                return JSONResponse(self._advance(job))

        @app.get(f"{base}/jobs/{{job_id}}/status")
        async def get_job_status(project_id: str, job_id: str, request: Request) -> JSONResponse:
            if denied := self._denied(request, project_id):
                return denied
            with self.lock:
                job = lookup(job_id)
                if isinstance(job, JSONResponse):
                    return job
                return JSONResponse({"executionStatus": self._advance(job, read=True)["executionStatus"]})

        @app.post(f"{base}/jobs/{{job_id}}/status")
        async def update_job_status(project_id: str, job_id: str, request: Request) -> JSONResponse:
            """The SDK's preferred way to cancel: ``{"desiredExecutionStatus": "canceled"}``.
            ``running``/``suspended`` apply to streaming jobs only; this fake runs batch jobs."""
            if denied := self._denied(request, project_id):
                return denied
            if "json" not in request.headers.get("content-type", ""):
                return self.error(415, "UnsupportedMediaType", "Content-Type: application/json is required")
            try:
                body = await request.json()
            except ValueError:
                return self.error(400, "BadRequest", "body: not valid JSON")
            desired = body.get("desiredExecutionStatus") if isinstance(body, dict) else None
            if desired not in ("running", "canceled", "suspended"):
                return self.error(
                    400, "BadRequest", "desiredExecutionStatus: one of running, canceled, suspended"
                )
            with self.lock:
                job = lookup(job_id)
                if isinstance(job, JSONResponse):
                    return job
                if desired != "canceled":
                    return self.error(
                        400, "BadRequest", f"desiredExecutionStatus: a batch job cannot be {desired}"
                    )
                self._cancel(job)
                return JSONResponse({"executionStatus": job["executionStatus"]})

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
