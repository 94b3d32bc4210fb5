"""A minimal job service over real HTTP, and its hook, for the operator base's tests.

``JobsFake`` is a :class:`~airflow_provider_ingest.testing.server.FakeService`: it journals every
request it answers and takes the shipped fault injector's faults. ``RemoteHook`` talks to it through
the project's HTTP core (``ApiClient``, its retry rules and error classification), as the real
hooks do, so what a start call ends as (started, refused, unknown) is decided by the core from
what happened on the wire:

- ``ok``: ``POST /jobs`` makes the job and answers 201 with its id;
- ``lost``: a ``drop_after`` fault: the job is made, the connection aborted before the reply;
- ``dropped``: a ``drop`` fault: the request reached the server and was aborted unread, no job;
- ``garbled``: a ``malformed_after`` fault: the job is made, the 2xx reply is not JSON;
- ``refused``: a ``body`` fault answering 400, no job;
- unreachable: a connection to a port nothing listens on (never sent: the server sees nothing);
- local: a connection without a signing key; the hook's auth raises before any request.

``GET /jobs?label=&digest=`` lists the jobs a start labelled ``label`` made; with the ``listing``
tunable ``"off"`` (the default) the service cannot list and answers 501, and the hook's ``find``
then cannot tell (None).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.hooks.base import IngestHttpHook
from airflow_provider_ingest.http import RetryPolicy, StaticAuth, Timeouts, needs, segment
from airflow_provider_ingest.jobs import JobSnapshot, StatusTable, spec_digest
from airflow_provider_ingest.operators.base import NOTHING_STARTED
from airflow_provider_ingest.testing import FakeService

STATUSES = StatusTable.of(succeeded={"done"}, failed={"failed", "canceled"}, running={"running"})
SCRIPT = ("running", "done")  # the statuses a new job shows by default, one per status read
FAST = RetryPolicy(attempts=3, backoff=0.001, backoff_max=0.002)
# Guards against a hung test, not timings the tests depend on.
GUARD = Timeouts(connect=5.0, read=20.0)
# What the journal shows a start as, by the fault that took it (no fault: by the status).
START_FAULTS = {"drop_after": "lost", "drop": "dropped", "malformed_after": "garbled"}
START_STATUSES = {201: "ok", 400: "refused"}


class JobsFake(FakeService):
    conn_id = None
    tunables = ("listing",)

    def __init__(self, **kwargs: Any) -> None:
        self.listing = "off"
        self.jobs: dict[str, dict[str, Any]] = {}
        self.script: list[str] = list(SCRIPT)
        self.on_start: Any = None  # called while a start is handled, before the job is made
        self.on_status: Any = None  # called on each status read (e.g. to kill the task mid-wait)
        self.seen = 0  # journal entries before this one are forgotten by calls()
        super().__init__(**kwargs)

    def airflow_connection(self, key: str | None = "signing-key") -> dict[str, Any]:
        return {"conn_type": "remote", "host": self.url, "extra": {"key": key or ""}}

    def reset_state(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.script = list(SCRIPT)
            self.on_start = self.on_status = None
            self.seen = 0

    # --- state a test sets up or reads ------------------------------------------------------
    def add_job(self, statuses: list[str], request: dict[str, Any] | None = None) -> str:
        with self.lock:
            job_id = f"job-{len(self.jobs) + 1}"
            self.jobs[job_id] = {"statuses": list(statuses), "request": request or {}}
        return job_id

    def script_starts(self, *outcomes: str) -> None:
        """The outcome of the next start calls, in order (``ok`` needs no fault)."""
        rules = {
            "lost": {"action": "drop_after"},
            "dropped": {"action": "drop"},
            "garbled": {"action": "malformed_after"},
            "refused": {"action": "body", "status": 400, "body": {"message": "folder is not allowed"}},
        }
        for outcome in outcomes:
            self.add_fault(method="POST", path="^/jobs$", **rules[outcome])

    def fail_cancels(self) -> None:
        """The next cancel fails with a 500 (not retried by the core)."""
        self.add_fault(method="DELETE", path="^/jobs/", action="status", status=500)

    def forget_calls(self) -> None:
        self.seen = len(self.journal())

    def calls(self, kind: str | None = None) -> list[Any]:
        """What the service saw, as ``(kind, argument)`` pairs in the order it answered them (or
        only the arguments of ``kind``): start (its outcome), find (the digest searched for),
        status, cancel and result (the job id)."""
        seen = []
        for entry in self.journal()[self.seen :]:
            if "method" not in entry:
                continue
            method, parts = entry["method"], entry["path"].strip("/").split("/")
            if (method, parts) == ("POST", ["jobs"]):
                outcome = START_FAULTS.get(entry["fault"]) or START_STATUSES.get(entry["status"])
                seen.append(("start", outcome or f"HTTP {entry['status']}"))
            elif (method, parts) == ("GET", ["jobs"]):
                seen.append(("find", parse_qs(entry["query"]).get("digest", [None])[0]))
            elif method == "GET" and len(parts) == 2:
                seen.append(("status", parts[1]))
            elif method == "DELETE" and len(parts) == 2:
                seen.append(("cancel", parts[1]))
            elif method == "GET" and parts[2:] == ["result"]:
                seen.append(("result", parts[1]))
            else:
                seen.append((f"{method} {entry['path']}", None))
        return seen if kind is None else [arg for what, arg in seen if what == kind]

    # --- the API ------------------------------------------------------------------------------
    def install_routes(self, app: FastAPI) -> None:
        # The start and status handlers are plain functions, run in the server's thread pool: the
        # test's hooks they call (on_start, on_status) may call the service again (a kill cancels
        # the job), which the event loop then serves. The lock is never held across such a call.
        @app.post("/jobs")
        def start(body: dict[str, Any]) -> Response:
            if self.on_start is not None:
                self.on_start()
            with self.lock:
                job_id = f"job-{len(self.jobs) + 1}"
                self.jobs[job_id] = {"statuses": list(self.script), "request": body}
            return JSONResponse({"id": job_id}, status_code=201)

        @app.get("/jobs")
        async def find(request: Request) -> Response:
            if self.listing != "on":
                return self.error(501, "NotImplemented", "this service cannot list jobs")
            label = request.query_params.get("label")
            with self.lock:
                found = [
                    {"id": job_id, "request": job["request"]}
                    for job_id, job in self.jobs.items()
                    if job["request"].get("label") == label
                ]
            return JSONResponse({"jobs": found})

        @app.get("/jobs/{job_id}")
        def status(job_id: str) -> Response:
            with self.lock:
                if job_id not in self.jobs:
                    return self.error(404, "NotFound", f"no job {job_id}")
            if self.on_status is not None:
                self.on_status()
            with self.lock:
                statuses = self.jobs[job_id]["statuses"]
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            return JSONResponse({"id": job_id, "status": status, "rows": 7})

        @app.delete("/jobs/{job_id}")
        async def cancel(job_id: str) -> Response:
            with self.lock:
                if job_id not in self.jobs:
                    return self.error(404, "NotFound", f"no job {job_id}")
                self.jobs[job_id]["statuses"] = ["canceled"]
            return Response(status_code=204)

        @app.get("/jobs/{job_id}/result")
        async def result(job_id: str) -> Response:
            return JSONResponse({"job_id": job_id})


class SigningAuth(StaticAuth):
    """Signs each request with the connection's key; without one it fails locally, before sending."""

    def headers(self, client: Any, method: str = "GET", url: str = "") -> dict[str, str]:
        if not self.fixed.get("X-Key"):
            raise RuntimeError("could not sign the request")
        return dict(self.fixed)


class RemoteHook(IngestHttpHook):
    """The hook of JobsFake's API, on the project's HTTP core."""

    conn_type = "remote"
    hook_name = "Remote"
    service = "Remote"

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("timeouts", GUARD)
        super().__init__(conn_id, **kwargs)

    def client_settings(self, conn: Any) -> tuple[str, Any]:
        return self.base_url_of(conn), SigningAuth({"X-Key": self.extra_of(conn).get("key") or ""})

    def start(self, request: dict[str, Any]) -> str:
        return self.client.json("POST", "jobs", json=request, shape=needs("id"))["id"]

    def find(self, label: str, intent: dict[str, Any]) -> Any:
        """The job a start labelled ``label`` made, checked against the intent's digest;
        ``NOTHING_STARTED`` when the listing shows none, None when the service cannot list."""
        try:
            reply = self.client.json(
                "GET", "jobs", params={"label": label, "digest": intent["digest"]}, shape=needs("jobs")
            )
        except IngestApiError as exc:
            if exc.status == 501:
                return None
            raise
        if not reply["jobs"]:
            return NOTHING_STARTED
        assert [spec_digest(job["request"]) for job in reply["jobs"]] == [intent["digest"]]
        return reply["jobs"][0]["id"]

    def job_snapshot(self, job_id: str) -> JobSnapshot:
        body = self.client.json("GET", f"jobs/{segment(job_id, 'job_id')}", shape=needs("status"))
        status = body["status"]
        return JobSnapshot(job_id, status, STATUSES.state_of(status), details={"rows": body["rows"]})

    def cancel_job(self, job_id: str) -> None:
        self.client.request("DELETE", f"jobs/{segment(job_id, 'job_id')}")

    def result(self, job_id: str) -> dict[str, Any]:
        return self.client.json("GET", f"jobs/{segment(job_id, 'job_id')}/result")
