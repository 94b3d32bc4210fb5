"""A fake eGain AI Knowledge Hub: OAuth token endpoint and the Ingestion API's import jobs.

Jobs read the folder from S3 (moto) with the AWS keys given in the request. moto accepts any
key, so the fake itself plays IAM: only pairs in ``aws_keys`` may read; others fail the job with
AccessDenied. Every object is one content file: known content types import, a ``.txt`` file
whose text starts with ``INVALID`` or an empty file is an error, other types are warnings.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from airflow_provider_ingest.testing.server import FakeService

API = "/knowledge/contentmgr/v4"
SCOPE = "knowledge.contentmgr.manage"
CONTENT_TYPES = (".html", ".htm", ".txt", ".md", ".pdf", ".docx", ".json", ".xml", ".csv")


class EgainFake(FakeService):
    conn_id = "egain_default"
    tunables = ("scheduled_seconds", "in_progress_seconds", "token_ttl")

    def __init__(
        self,
        *,
        client_id: str = "egain-test-client",
        client_secret: str = "egain-test/secret+0123 ==",  # encodes differently by quote and quote_plus
        aws_keys: dict[str, str] | None = None,
        scheduled_seconds: float = 0.3,
        in_progress_seconds: float = 0.6,
        token_ttl: float = 3600.0,
        **kwargs: Any,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.aws_keys = aws_keys if aws_keys is not None else {"testing": "testing"}
        self.scheduled_seconds = scheduled_seconds
        self.in_progress_seconds = in_progress_seconds
        self.token_ttl = token_ttl
        self.tokens: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        super().__init__(**kwargs)

    def airflow_connection(self) -> dict[str, Any]:
        return {
            "conn_type": "egain",
            "host": self.url,
            "login": self.client_id,
            "password": self.client_secret,
            "extra": {"auth_url": f"{self.url}/oauth2/token", "scope": SCOPE},
        }

    def reset_state(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.jobs.clear()

    def error_body(self, code: str, message: str) -> dict[str, Any]:
        return {"code": code, "developerMessage": message, "details": [], "userMessage": message}

    def expire_tokens(self) -> None:
        """Make every issued token expire now (tests of renewal mid-wait)."""
        with self.lock:
            for token in self.tokens.values():
                token["expires_at"] = 0.0

    # --- auth -----------------------------------------------------------------------------------
    def _authorize(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        token = (
            self.tokens.get(header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else None
        )
        if token is None or token["expires_at"] < time.time():
            return self.error(401, "401-100", "missing, unknown or expired access token")
        if SCOPE not in token["scopes"]:
            return self.error(403, "403-100", f"the token lacks the {SCOPE} scope")
        return None

    # --- jobs -----------------------------------------------------------------------------------
    def _check_body(self, body: Any, import_job: bool) -> str | None:
        """The first problem with a request body, naming the field, or None."""
        if not isinstance(body, dict):
            return "body: expected a JSON object"
        source = body.get("dataSource")
        if not isinstance(source, dict):
            return "dataSource: required"
        if source.get("type") != "AWS S3 bucket":
            return "dataSource.type: must be 'AWS S3 bucket'"
        path = source.get("path")
        if not isinstance(path, str) or not path.startswith("s3://") or not path.endswith("/"):
            return "dataSource.path: must be an s3://bucket/folder/ path ending in '/'"
        if not source.get("region"):
            return "dataSource.region: required"
        creds = source.get("credentials")
        if not isinstance(creds, dict) or not creds.get("accessKeyId") or not creds.get("secretAccessKey"):
            return "dataSource.credentials: accessKeyId and secretAccessKey are required"
        if not import_job:
            return None
        if body.get("operation") not in ("import", "reimport"):
            return "operation: must be 'import' or 'reimport'"
        schedule = body.get("scheduleTime")
        if schedule is not None:
            try:
                when = datetime.fromisoformat(str(schedule["date"]).replace("Z", "+00:00"))
            except (KeyError, TypeError, ValueError):
                return "scheduleTime.date: must be an ISO 8601 UTC date-time"
            if when.tzinfo is None:
                return "scheduleTime.date: must carry a UTC offset"
            if when.timestamp() < time.time():  # the document states no upper limit
                return "scheduleTime.date: must be in the future"
        return None

    def _start(self, body: dict[str, Any], job_type: str) -> Response:
        job_id = str(uuid.uuid4()).upper()
        start_at = time.time()
        if schedule := body.get("scheduleTime"):
            start_at = datetime.fromisoformat(str(schedule["date"]).replace("Z", "+00:00")).timestamp()
        with self.lock:
            self.jobs[job_id] = {
                "id": job_id,
                "jobType": job_type,
                "dataSource": body["dataSource"],
                "operation": body.get("operation"),
                "created": time.time(),
                "start_at": start_at,
                "cancelled": False,
                "outcome": None,
            }
            self.start_clock(job_id)
        self.record("job_created", id=job_id, jobType=job_type)
        return Response(status_code=202, headers={"location": f"{API}/import/content/{job_id}"})

    def _evaluate(self, job: dict[str, Any]) -> dict[str, Any]:
        """Read the folder with the job's keys; per-file results."""
        source = job["dataSource"]
        creds = source["credentials"]
        if self.aws_keys.get(creds["accessKeyId"]) != creds["secretAccessKey"]:
            return {"error": "AccessDenied: the AWS credentials cannot read " + source["path"], "files": []}
        bucket, _, prefix = source["path"][len("s3://") :].partition("/")
        s3 = self.s3_client()
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        except Exception as exc:  # noqa: BLE001 - a missing bucket is a job error, not a crash
            return {"error": f"cannot list {source['path']}: {type(exc).__name__}", "files": []}
        if not keys:
            return {"error": f"the folder {source['path']} holds no content", "files": []}
        files = []
        for key in keys:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if not body or (key.endswith(".txt") and body.startswith(b"INVALID")):
                files.append({"name": key, "status": "error", "message": "unreadable or invalid content"})
            elif key.lower().endswith(CONTENT_TYPES):
                files.append({"name": key, "status": "successful", "message": None})
            else:
                files.append(
                    {"name": key, "status": "warning", "message": "unknown file type, imported as attachment"}
                )
        return {"error": None, "files": files}

    def status_of(self, job: dict[str, Any], read: bool = False) -> dict[str, Any]:
        """The job's status reply, moved on by the fake's clock (``read``: a status read)."""
        scheduled_until = max(job["start_at"], job["created"] + self.scheduled_seconds)
        done_at = scheduled_until + self.in_progress_seconds
        ends = (scheduled_until - job["created"], done_at - job["created"])
        if job["cancelled"]:
            status = "Cancelled"
        elif job["start_at"] > time.time():  # a scheduleTime ahead is real time, whatever the clock
            status = "Scheduled"
        elif (now := job["created"] + self.job_age(job["id"], ends, read=read)) < scheduled_until:
            status = "Scheduled"
        elif now < done_at:
            status = "In Progress"
        else:
            if job["outcome"] is None:
                job["outcome"] = outcome = self._evaluate(job)
                self.record("job_finished", id=job["id"], error=outcome["error"])
            status = "Failed" if job["outcome"]["error"] else "Successful"
        files = (job["outcome"] or {}).get("files", [])
        total = len(files) if job["outcome"] else None
        counts = {
            k: sum(1 for f in files if f["status"] == s)
            for k, s in (("successful", "successful"), ("warnings", "warning"), ("errors", "error"))
        }
        processed = total or 0
        if status == "In Progress":
            processed = 0
        return {
            "jobId": job["id"],
            "jobType": job["jobType"],
            "status": status,
            "progress": {
                "processed": processed,
                "total": total,
                "percentage": 100 if status in ("Successful", "Failed") else 0,
            },
            "results": counts,
            "fileResults": files,
            "error": (job["outcome"] or {}).get("error") if status == "Failed" else None,
            "logFileLocation": f"s3://egain-logs/{job['id']}.log" if job["outcome"] else None,
        }

    def install_routes(self, app: FastAPI) -> None:
        @app.post("/oauth2/token")
        async def token(request: Request) -> Response:
            form = await request.form()
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            header = request.headers.get("authorization", "")
            if header.startswith("Basic "):  # RFC 6749 2.3.1: a server must take HTTP Basic too
                try:
                    pair = base64.b64decode(header[6:]).decode()
                except ValueError:
                    pair = ""
                raw_id, _, raw_secret = pair.partition(":")
                # RFC 6749 2.3.1 form-encodes both before Basic; many clients (requests' HTTPBasicAuth,
                # which the eGain SDK's OAuth client uses) send them as they are: take either
                client_id, client_secret = raw_id, raw_secret
                if (client_id, client_secret) != (self.client_id, self.client_secret):
                    client_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            if client_id != self.client_id or client_secret != self.client_secret:
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "client authentication failed"}, 401
                )
            value = secrets.token_urlsafe(24)
            scopes = str(form.get("scope") or "").split()
            with self.lock:
                self.tokens[value] = {"expires_at": time.time() + self.token_ttl, "scopes": scopes}
            self.record("token_issued")
            return JSONResponse(
                {"access_token": value, "token_type": "Bearer", "expires_in": int(self.token_ttl)}
            )

        async def start(request: Request, job_type: str) -> Response:
            if denied := self._authorize(request):
                return denied
            try:
                body = await request.json()
            except ValueError:
                return self.error(400, "400-100", "body: not valid JSON")
            if problem := self._check_body(body, job_type == "Import"):
                return self.error(400, "400-101", problem)
            if job_type == "Validation":
                body = {"dataSource": body["dataSource"]}
            return self._start(body, job_type)

        @app.post(f"{API}/import/content")
        async def start_import(request: Request) -> Response:
            return await start(request, "Import")

        @app.post(f"{API}/import/content/validate")
        async def start_validation(request: Request) -> Response:
            return await start(request, "Validation")

        @app.get(f"{API}/import/content/{{job_id}}/status")
        async def status(job_id: str, request: Request) -> Response:
            if denied := self._authorize(request):
                return denied
            with self.lock:
                job = self.jobs.get(job_id)
                if job is None:
                    return self.error(404, "404-100", f"jobId: no import job {job_id}")
                return JSONResponse(self.status_of(job, read=True))

        @app.post(f"{API}/import/content/{{job_id}}/cancel")
        async def cancel(job_id: str, request: Request) -> Response:
            if denied := self._authorize(request):
                return denied
            with self.lock:
                job = self.jobs.get(job_id)
                if job is None:
                    return self.error(404, "404-100", f"jobId: no import job {job_id}")
                # the SDK's cancelImport: completed, failed (and so already cancelled) jobs
                # cannot be cancelled: 409
                if (status := self.status_of(job)["status"]) in ("Successful", "Failed", "Cancelled"):
                    return self.error(409, "409-100", f"job {job_id} has already ended ({status})")
                job["cancelled"] = True
            self.record("job_cancelled", id=job_id)
            return Response(status_code=204)
