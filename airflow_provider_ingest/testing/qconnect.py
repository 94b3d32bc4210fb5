"""A fake Amazon Q in Connect (``qconnect``, signing name ``wisdom``): the REST-JSON routes of
GetKnowledgeBase, StartContentUpload, StartImportJob, GetImportJob and ListImportJobs as
botocore's model has them, a presigned PUT endpoint, and import jobs that parse the uploaded
quick-responses CSV.

Knowledge bases have a type (``knowledgeBaseType``): ``knowledge_base_ids`` are QUICK_RESPONSES
ones, ``other_knowledge_bases`` maps more ids to another type (CUSTOM, EXTERNAL...). An ARN in a
URL path is refused (the model: "URLs cannot contain the ARN"). StartImportJob is idempotent on
``clientToken`` (an ``idempotencyToken`` in the model): the same token with the same parameters
returns the job the first call made; with other parameters it is a ConflictException.

moto has no ``qconnect``; point boto3 at this fake with the AWS connection's
``service_config: {"qconnect": {"endpoint_url": fake.url}}``. A row without a name or content is
rejected: the job ends FAILED with a ``failedRecordReport`` CSV (lineNumber, name, errorMessage).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from airflow_provider_ingest.testing.server import FakeService

KB_ARN_PREFIX = "arn:aws:wisdom:us-east-1:123456789012:knowledge-base/"
# botocore's ImportJobSummary members (ImportJobData has url, urlExpiry, failedRecordReport too)
SUMMARY_MEMBERS = {
    "importJobId",
    "knowledgeBaseId",
    "uploadId",
    "knowledgeBaseArn",
    "importJobType",
    "status",
    "createdTime",
    "lastModifiedTime",
    "metadata",
    "externalSourceConfiguration",
}


class QConnectFake(FakeService):
    conn_id = None  # reached through the AWS connection's service_config, not a connection of its own
    # cut_start_replies: StartImportJob replies cut mid-body after the fake acted, as a proxy or a
    # dropped connection leaves them (botocore then returns only ResponseMetadata)
    tunables = ("processing_seconds", "cut_start_replies")

    def __init__(
        self,
        *,
        knowledge_base_ids: tuple[str, ...] = ("1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4",),
        other_knowledge_bases: dict[str, str] | None = None,
        processing_seconds: float = 0.5,
        **kwargs: Any,
    ):
        self.knowledge_base_types = {kb: "QUICK_RESPONSES" for kb in knowledge_base_ids}
        self.knowledge_base_types.update(
            other_knowledge_bases
            if other_knowledge_bases is not None
            else {"2c1d6e3f-4a5b-4c6d-9e7f-8091a2b3c4d5": "CUSTOM"}
        )
        self.knowledge_base_ids = set(self.knowledge_base_types)
        self.processing_seconds = processing_seconds
        self.cut_start_replies = 0
        self.uploads: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tokens: dict[tuple[str, str], tuple[str, str]] = {}
        super().__init__(**kwargs)

    def aws_service_config(self) -> dict[str, Any]:
        return {"qconnect": {"endpoint_url": self.url}}

    def reset_state(self) -> None:
        with self.lock:
            self.uploads.clear()
            self.jobs.clear()
            self.tokens.clear()

    def error_body(self, code: str, message: str) -> dict[str, Any]:
        return {"message": message}

    def error(self, status: int, code: str, message: str) -> JSONResponse:
        # rest-json: botocore reads the error code from this header
        return JSONResponse({"message": message}, status_code=status, headers={"x-amzn-ErrorType": code})

    def _unsigned(self, request: Request) -> JSONResponse | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 Credential=") or "/wisdom/aws4_request" not in auth:
            return self.error(
                403, "AccessDeniedException", "a SigV4 Authorization header for wisdom is required"
            )
        return None

    def _knowledge_base(self, knowledge_base_id: str) -> JSONResponse | None:
        if knowledge_base_id.startswith("arn:"):
            return self.error(
                400, "ValidationException", "knowledgeBaseId: URLs cannot contain the ARN; use the id"
            )
        if knowledge_base_id not in self.knowledge_base_ids:
            response = self.error(
                404, "ResourceNotFoundException", f"knowledge base {knowledge_base_id} not found"
            )
            return response
        return None

    # --- import processing ----------------------------------------------------------------------
    def _process(self, job: dict[str, Any]) -> None:
        data = self.uploads[job["uploadId"]]["body"]
        rows = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        names = {re.sub(r"[\s_\-]", "", c).lower(): c for c in rows.fieldnames or []}
        rejected, accepted = [], 0
        for line, row in enumerate(rows, start=2):
            name = (row.get(names.get("name", ""), "") or "").strip()
            content = (row.get(names.get("content", ""), "") or "").strip()
            if not name or not content:
                missing = "name" if not name else "content"
                rejected.append({"lineNumber": line, "name": name, "errorMessage": f"missing {missing}"})
            else:
                accepted += 1
        job["_accepted"], job["_rejected"] = accepted, rejected
        job["status"] = "FAILED" if rejected or not accepted else "COMPLETE"
        if rejected:
            job["failedRecordReport"] = (
                f"{self.url}/_reports/{job['importJobId']}?X-Amz-Signature={job['_sig']}"
            )
        job["lastModifiedTime"] = time.time()
        self.record(
            "job_finished",
            id=job["importJobId"],
            status=job["status"],
            accepted=accepted,
            rejected=len(rejected),
        )

    def _view(self, job: dict[str, Any], read: bool = False) -> dict[str, Any]:
        """The job's public view, moved on by the fake's clock (``read``: a status read)."""
        if (
            job["status"] == "START_IN_PROGRESS"
            and self.job_age(job["importJobId"], (self.processing_seconds,), read=read)
            >= self.processing_seconds
        ):
            self._process(job)
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def _start_reply(self, body: dict[str, Any]) -> Response:
        with self.lock:
            cut = self.cut_start_replies > 0
            self.cut_start_replies -= cut
        if not cut:
            return JSONResponse(body)
        text = JSONResponse(body).body
        return Response(text[: len(text) // 2], media_type="application/json")

    # --- routes ---------------------------------------------------------------------------------
    def install_routes(self, app: FastAPI) -> None:
        @app.post("/knowledgeBases/{knowledge_base_id}/upload")
        async def start_content_upload(knowledge_base_id: str, request: Request) -> Response:
            if denied := self._unsigned(request) or self._knowledge_base(knowledge_base_id):
                return denied
            body = await request.json()
            if body.get("contentType") != "text/csv":
                return self.error(
                    400, "ValidationException", "contentType: quick responses import takes text/csv"
                )
            ttl = body.get("presignedUrlTimeToLive", 60)
            if not isinstance(ttl, int) or not 1 <= ttl <= 60:
                return self.error(400, "ValidationException", "presignedUrlTimeToLive: 1 to 60 minutes")
            upload_id = str(uuid.uuid4())
            signature = secrets.token_hex(32)
            expiry = time.time() + ttl * 60
            headers = {"x-amz-server-side-encryption": "AES256", "content-type": "text/csv"}
            with self.lock:
                self.uploads[upload_id] = {
                    "sig": signature,
                    "expiry": expiry,
                    "headers": headers,
                    "body": None,
                    "kb": knowledge_base_id,
                }
            url = f"{self.url}/_uploads/{upload_id}?X-Amz-Expires={ttl * 60}&X-Amz-Signature={signature}"
            return JSONResponse(
                {"uploadId": upload_id, "url": url, "urlExpiry": expiry, "headersToInclude": headers}
            )

        @app.put("/_uploads/{upload_id}")
        async def presigned_put(upload_id: str, request: Request) -> Response:
            upload = self.uploads.get(upload_id)
            if upload is None or request.query_params.get("X-Amz-Signature") != upload["sig"]:
                return Response("<Error><Code>SignatureDoesNotMatch</Code></Error>", 403)
            if time.time() > upload["expiry"]:
                return Response(
                    "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", 403
                )
            for header, value in upload["headers"].items():
                if request.headers.get(header) != value:
                    return Response(
                        f"<Error><Code>AccessDenied</Code><Message>{header} is signed</Message></Error>", 403
                    )
            body = await request.body()
            with self.lock:
                upload["body"] = body
            self.record(
                "upload_received",
                upload_id=upload_id,
                bytes=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
            )
            return Response(status_code=200)

        @app.post("/knowledgeBases/{knowledge_base_id}/importJobs")
        async def start_import_job(knowledge_base_id: str, request: Request) -> Response:
            if denied := self._unsigned(request) or self._knowledge_base(knowledge_base_id):
                return denied
            body = await request.json()
            if body.get("importJobType") != "QUICK_RESPONSES":
                return self.error(400, "ValidationException", "importJobType: must be QUICK_RESPONSES")
            upload = self.uploads.get(body.get("uploadId") or "")
            if upload is None or upload["body"] is None or upload["kb"] != knowledge_base_id:
                return self.error(400, "ValidationException", "uploadId: no uploaded asset with this id")
            if len(body.get("metadata") or {}) > 10:
                return self.error(400, "ValidationException", "metadata: at most 10 entries")
            token = body.get("clientToken") or str(uuid.uuid4())
            fingerprint = repr(sorted((k, repr(v)) for k, v in body.items() if k != "clientToken"))
            with self.lock:
                if (known := self.tokens.get((knowledge_base_id, token))) is not None:
                    job_id, known_fingerprint = known
                    if known_fingerprint != fingerprint:
                        return self.error(
                            409, "ConflictException", "clientToken: reused with other parameters"
                        )
                    self.record("start_import_job", token=token, id=job_id)
                    return self._start_reply({"importJob": self._view(self.jobs[job_id])})
                job_id = str(uuid.uuid4())
                now = time.time()
                self.jobs[job_id] = {
                    "importJobId": job_id,
                    "knowledgeBaseId": knowledge_base_id,
                    "knowledgeBaseArn": f"{KB_ARN_PREFIX}{knowledge_base_id}",
                    "uploadId": body["uploadId"],
                    "importJobType": "QUICK_RESPONSES",
                    "status": "START_IN_PROGRESS",
                    "url": f"{self.url}/_uploads/{body['uploadId']}",
                    "urlExpiry": upload["expiry"],
                    "createdTime": now,
                    "lastModifiedTime": now,
                    "metadata": body.get("metadata") or {},
                    **(
                        {"externalSourceConfiguration": body["externalSourceConfiguration"]}
                        if body.get("externalSourceConfiguration")
                        else {}
                    ),
                    "_sig": secrets.token_hex(16),
                }
                self.tokens[(knowledge_base_id, token)] = (job_id, fingerprint)
                self.start_clock(job_id)
                view = self._view(self.jobs[job_id])
            self.record("job_created", id=job_id)
            self.record("start_import_job", token=token, id=job_id)
            return self._start_reply({"importJob": view})

        @app.get("/knowledgeBases/{knowledge_base_id}/importJobs")
        async def list_import_jobs(knowledge_base_id: str, request: Request) -> Response:
            """ListImportJobs: ``importJobSummaries`` oldest first, ``maxResults`` 1 to 100, an
            opaque ``nextToken`` while more remain."""
            if denied := self._unsigned(request) or self._knowledge_base(knowledge_base_id):
                return denied
            query = request.query_params
            try:
                limit = int(query.get("maxResults", 100))
                offset = int(query["nextToken"].removeprefix("page-")) if "nextToken" in query else 0
            except ValueError:
                return self.error(400, "ValidationException", "maxResults, nextToken: not valid")
            if not 1 <= limit <= 100 or offset < 0:
                return self.error(400, "ValidationException", "maxResults: 1 to 100")
            with self.lock:
                jobs = sorted(
                    (j for j in self.jobs.values() if j["knowledgeBaseId"] == knowledge_base_id),
                    key=lambda j: j["createdTime"],
                )
                summaries = [
                    {k: v for k, v in self._view(j).items() if k in SUMMARY_MEMBERS}
                    for j in jobs[offset : offset + limit]
                ]
            body: dict[str, Any] = {"importJobSummaries": summaries}
            if offset + limit < len(jobs):
                body["nextToken"] = f"page-{offset + limit}"
            return JSONResponse(body)

        @app.get("/knowledgeBases/{knowledge_base_id}/importJobs/{import_job_id}")
        async def get_import_job(knowledge_base_id: str, import_job_id: str, request: Request) -> Response:
            if denied := self._unsigned(request) or self._knowledge_base(knowledge_base_id):
                return denied
            with self.lock:
                job = self.jobs.get(import_job_id)
                if job is None or job["knowledgeBaseId"] != knowledge_base_id:
                    return self.error(
                        404, "ResourceNotFoundException", f"import job {import_job_id} not found"
                    )
                return JSONResponse({"importJob": self._view(job, read=True)})

        @app.get("/_reports/{import_job_id}")
        async def failed_record_report(import_job_id: str, request: Request) -> Response:
            job = self.jobs.get(import_job_id)
            if job is None or request.query_params.get("X-Amz-Signature") != job["_sig"]:
                return Response("<Error><Code>AccessDenied</Code></Error>", 403)
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=["lineNumber", "name", "errorMessage"])
            writer.writeheader()
            writer.writerows(job.get("_rejected", []))
            return Response(out.getvalue(), media_type="text/csv")

        @app.get("/knowledgeBases/{knowledge_base_id:path}")
        async def get_knowledge_base(knowledge_base_id: str, request: Request) -> Response:
            # registered last, so only an ARN (whose "/" the path holds decoded) or an id gets here
            if denied := self._unsigned(request) or self._knowledge_base(knowledge_base_id):
                return denied
            kb_type = self.knowledge_base_types[knowledge_base_id]
            return JSONResponse(
                {
                    "knowledgeBase": {
                        "knowledgeBaseId": knowledge_base_id,
                        "knowledgeBaseArn": f"{KB_ARN_PREFIX}{knowledge_base_id}",
                        "name": f"{kb_type.lower()}-{knowledge_base_id[:8]}",
                        "knowledgeBaseType": kb_type,
                        "status": "ACTIVE",
                    }
                }
            )
