"""The fakes themselves, driven with plain HTTP (or the vendor's SDK): auth, validation, control
endpoints, faults, and the clocks that move their jobs on. What the provider does with them is
tested in the service's own test file; what a fake does, here."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import BUCKET, HANG_GUARD, qconnect_client, wait_until
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_ingest.testing.adobe_aep import DATASET_ID
from airflow_provider_ingest.testing.server import FakeService

ROLE = "arn:aws:iam::123456789012:role/polaris"


@pytest.fixture
def api(polaris):
    session = requests.Session()
    session.auth = (polaris.api_key, "")
    base = f"{polaris.url}/v1/projects/{polaris.project_id}"
    return session, base


def faults(fake, *rules):
    response = requests.post(f"{fake.url}/_fake/faults", json=list(rules), timeout=5)
    assert response.status_code == 200, response.text


def create_connection(session, base):
    body = {
        "type": "s3",
        "name": "c1",
        "bucket": BUCKET,
        "awsEndpoint": "s3.amazonaws.com",
        "awsAssumedRoleArn": ROLE,
    }
    return session.post(f"{base}/connections", json=body, timeout=5)


def job_body(**source):
    return {
        "type": "batch",
        "target": {"type": "table", "tableName": "t"},
        "createTableIfNotExists": True,
        "source": {
            "type": "s3",
            "connectionName": "c1",
            "formatSettings": {"format": "nd-json"},
            "inputSchema": [{"name": "timestamp", "dataType": "string"}],
            **source,
        },
        "mappings": [{"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'}],
    }


def test_polaris_auth_and_project_scope(polaris, api):
    session, base = api
    assert requests.get(f"{base}/jobs", timeout=5).status_code == 401
    assert requests.get(f"{base}/jobs", auth=("wrong", ""), timeout=5).status_code == 401
    assert requests.get(f"{base}/jobs", auth=(polaris.api_key, "x"), timeout=5).status_code == 401
    other = session.get(f"{polaris.url}/v1/projects/other/jobs", timeout=5)
    assert other.status_code == 404 and other.json()["code"] == "NotFound"
    assert session.get(f"{base}/jobs", timeout=5).json() == {"values": [], "moreResultsAvailable": False}


def test_polaris_validates_like_the_doc(polaris, api):
    session, base = api
    assert create_connection(session, base).status_code == 200
    assert create_connection(session, base).status_code == 409
    cases = [
        (job_body(uris=[f"s3://{BUCKET}/a"], prefixes=["a/"]), "exactly one"),
        (job_body(), "exactly one"),
        (job_body(uris=["s3://other-bucket/a"]), "source.uris"),
        ({**job_body(prefixes=["a/"]), "mappings": [{"columnName": "x", "expression": "1"}]}, "__time"),
        (
            {**job_body(prefixes=["a/"]), "source": {**job_body()["source"], "connectionName": "nope"}},
            "connectionName",
        ),
    ]
    for body, field in cases:
        response = session.post(f"{base}/jobs", json=body, timeout=5)
        assert response.status_code == 400 and field in response.json()["message"], response.text
    created = session.post(f"{base}/jobs", json=job_body(prefixes=["a/"]), timeout=5)
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"/jobs/{created.json()['id']}")


def test_fault_actions_through_the_control_endpoint(polaris, api):
    session, base = api
    faults(polaris, {"path": "/jobs$", "action": "status", "status": 429, "retry_after": "3", "times": 1})
    throttled = session.get(f"{base}/jobs", timeout=5)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert session.get(f"{base}/jobs", timeout=5).status_code == 200

    faults(polaris, {"method": "GET", "path": "/jobs$", "action": "drop"})
    with pytest.raises(requests.ConnectionError, match="Connection aborted"):
        session.get(f"{base}/jobs", timeout=5)

    faults(polaris, {"path": "/jobs$", "action": "malformed"})
    with pytest.raises(requests.JSONDecodeError, match="Expecting property name"):
        session.get(f"{base}/jobs", timeout=5).json()

    faults(polaris, {"path": "/jobs$", "action": "delay", "seconds": 0.5})
    started = time.monotonic()
    session.get(f"{base}/jobs", timeout=5)
    assert time.monotonic() - started >= 0.5

    create_connection(session, base)
    faults(polaris, {"method": "POST", "path": "/jobs$", "action": "drop_after"})
    with pytest.raises(requests.ConnectionError, match="Connection aborted"):
        session.post(f"{base}/jobs", json=job_body(prefixes=["a/"]), timeout=5)
    assert len(session.get(f"{base}/jobs", timeout=5).json()["values"]) == 1  # it acted, then hung up
    assert [r["fault"] for r in polaris.journal() if r.get("fault")] == [
        "status",
        "drop",
        "malformed",
        "delay",
        "drop_after",
    ]


def test_control_endpoints_reject_bad_input_and_reset(polaris, api):
    assert (
        requests.post(f"{polaris.url}/_fake/faults", json={"action": "explode"}, timeout=5).status_code == 400
    )
    assert requests.post(f"{polaris.url}/_fake/config", json={"nope": 1}, timeout=5).status_code == 400
    assert (
        requests.post(f"{polaris.url}/_fake/config", json={"pending_seconds": 7}, timeout=5).status_code
        == 200
    )
    assert polaris.pending_seconds == 7
    session, base = api
    create_connection(session, base)
    assert requests.post(f"{polaris.url}/_fake/reset", timeout=5).status_code == 200
    assert (polaris.pending_seconds, polaris.clock) == (0.5, "polls")  # as the fake was made
    assert session.get(f"{base}/connections", timeout=5).json() == {"values": []}
    assert (
        requests.get(f"{polaris.url}/_fake/journal", timeout=5).json()[-1]["path"]
        == "/v1/projects/test-project/connections"
    )


def test_egain_token_and_error_shapes(egain):
    bad = requests.post(
        f"{egain.url}/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        timeout=5,
    )
    assert bad.status_code == 401
    no_token = requests.get(f"{egain.url}/knowledge/contentmgr/v4/import/content/X/status", timeout=5)
    assert no_token.status_code == 401 and set(no_token.json()) == {
        "code",
        "developerMessage",
        "details",
        "userMessage",
    }


# --- moved from the service test files: what the fakes answer ----------------------------------------
QC_KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
QC_CSV = b"Name,Content\nreset,Reset your password here\n"


def test_qconnect_boto3_routes_and_documented_exceptions(qconnect):
    qconnect.configure(clock="steps")
    qc = qconnect_client(qconnect)
    upload = qc.start_content_upload(knowledgeBaseId=QC_KB, contentType="text/csv", presignedUrlTimeToLive=5)
    assert set(upload) >= {"uploadId", "url", "urlExpiry", "headersToInclude"}
    assert requests.put(upload["url"], data=QC_CSV, timeout=5).status_code == 403  # headers are signed
    put = requests.put(upload["url"], data=QC_CSV, headers=upload["headersToInclude"], timeout=5)
    assert put.status_code == 200
    job = qc.start_import_job(
        knowledgeBaseId=QC_KB, importJobType="QUICK_RESPONSES", uploadId=upload["uploadId"], clientToken="t1"
    )["importJob"]
    assert job["status"] == "START_IN_PROGRESS"
    again = qc.start_import_job(
        knowledgeBaseId=QC_KB, importJobType="QUICK_RESPONSES", uploadId=upload["uploadId"], clientToken="t1"
    )["importJob"]
    assert again["importJobId"] == job["importJobId"]
    errors = {
        "ConflictException": lambda: qc.start_import_job(
            knowledgeBaseId=QC_KB,
            importJobType="QUICK_RESPONSES",
            uploadId=upload["uploadId"],
            clientToken="t1",
            metadata={"a": "b"},
        ),
        "ResourceNotFoundException": lambda: qc.get_import_job(
            knowledgeBaseId="00000000-0000-4000-8000-000000000000", importJobId=job["importJobId"]
        ),
        "ValidationException": lambda: qc.start_import_job(
            knowledgeBaseId=QC_KB, importJobType="QUICK_RESPONSES", uploadId="never-uploaded"
        ),
    }
    for code, call in errors.items():
        with pytest.raises(ClientError, match=code) as info:
            call()
        assert info.value.response["Error"]["Code"] == code
    qconnect.advance(job["importJobId"])
    status = qc.get_import_job(knowledgeBaseId=QC_KB, importJobId=job["importJobId"])["importJob"]["status"]
    assert status == "COMPLETE"
    unsigned = requests.get(
        f"{qconnect.url}/knowledgeBases/{QC_KB}/importJobs/{job['importJobId']}", timeout=5
    )
    assert unsigned.status_code == 403


def test_qconnect_presigned_url_expires(qconnect):
    upload = qconnect_client(qconnect).start_content_upload(knowledgeBaseId=QC_KB, contentType="text/csv")
    qconnect.uploads[upload["uploadId"]]["expiry"] = time.time() - 1
    response = requests.put(upload["url"], data=QC_CSV, headers=upload["headersToInclude"], timeout=5)
    assert response.status_code == 403 and "expired" in response.text


def test_qconnect_get_knowledge_base_as_botocore_models_it(qconnect):
    kb = qconnect_client(qconnect).get_knowledge_base(knowledgeBaseId=QC_KB)["knowledgeBase"]
    assert kb["knowledgeBaseType"] == "QUICK_RESPONSES" and kb["knowledgeBaseId"] == QC_KB
    assert kb["knowledgeBaseArn"].endswith(f":knowledge-base/{QC_KB}") and kb["status"] == "ACTIVE"
    with pytest.raises(ClientError, match="ResourceNotFoundException") as info:
        qconnect_client(qconnect).get_knowledge_base(knowledgeBaseId="00000000-0000-4000-8000-000000000000")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_zeta_tenant_isolation_and_auth(zeta):
    base = f"{zeta.url}/v0/service/ingestion/documents"
    own, other = {"X-Auth": zeta.api_key}, {"X-Auth": "za-other-tenant-key"}
    doc_id = "a" * 40
    sent = requests.post(
        f"{base}/document-batches",
        params={"tenant": "acme"},
        headers=own,
        json={"documents": [{"document_id": doc_id, "allow_access_rights": [{"name": "public"}]}]},
        timeout=5,
    )
    assert sent.status_code == 200 and "errors" not in sent.json()
    assert (
        requests.get(f"{base}/{doc_id}", params={"tenant": "acme"}, headers=other, timeout=5).status_code
        == 403
    )
    assert requests.get(base, params={"tenant": "other"}, headers=other, timeout=5).json()["count"] == 0
    assert requests.get(base, params={"tenant": "acme"}, timeout=5).status_code == 401
    bearer = {"Authorization": f"Bearer {zeta.api_key}"}
    assert (
        requests.get(f"{base}/{doc_id}", params={"tenant": "acme"}, headers=bearer, timeout=5).status_code
        == 200
    )
    reply = requests.post(
        f"{base}/document-batches",
        params={"tenant": "acme"},
        headers=own,
        json={"documents": [{"document_id": "not-a-sha1"}]},
        timeout=5,
    )
    assert reply.status_code == 200 and reply.json()["errors"][0]["document_id"] == "not-a-sha1"


def test_adobe_requires_the_platform_headers_like_the_service(adobe):
    token = requests.post(
        f"{adobe.url}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": adobe.client_id,
            "client_secret": adobe.client_secret,
        },
        timeout=5,
    ).json()["access_token"]
    good = {
        "Authorization": f"Bearer {token}",
        "x-api-key": adobe.client_id,
        "x-gw-ims-org-id": adobe.ims_org_id,
    }
    url = f"{adobe.url}/data/foundation/catalog/dataSets/{DATASET_ID}"

    def status(**changes: Any) -> tuple[int, str]:
        headers = {k: v for k, v in {**good, **changes}.items() if v is not None}
        reply = requests.get(url, headers=headers, timeout=5)
        return reply.status_code, reply.json().get("error_code", "")

    assert status() == (200, "")
    assert status(**{"x-gw-ims-org-id": None}) == (400, "400001")
    assert status(**{"x-gw-ims-org-id": "OTHER@AdobeOrg"}) == (403, "403025")
    assert status(**{"x-api-key": "another-client"}) == (403, "403010")
    assert status(**{"x-sandbox-name": "dev"}) == (403, "403027")
    assert status(Authorization="Bearer not-a-token") == (401, "401013")


# --- the clocks that move jobs on (the shared base, testing/server.py) --------------------------------
class ClockFake(FakeService):
    """The smallest fake on the shared base: a job is ``queued`` for 1 s, ``working`` until 3 s,
    then ``done``; ``GET /jobs/{id}`` is a status read, ``GET /jobs/{id}/peek`` is not."""

    conn_id = "clock"
    tunables = ("stages",)

    def __init__(self, **kwargs: Any):
        self.stages = (1.0, 3.0)
        self.jobs: list[str] = []
        super().__init__(**kwargs)

    def reset_state(self) -> None:
        self.jobs.clear()

    def state(self, job: str, read: bool) -> str:
        age = self.job_age(job, self.stages, read=read)
        return "queued" if age < self.stages[0] else "working" if age < self.stages[1] else "done"

    def install_routes(self, app: FastAPI) -> None:
        @app.post("/jobs")
        async def create(request: Request) -> JSONResponse:
            job = f"job-{len(self.jobs) + 1}"
            self.jobs.append(job)
            self.start_clock(job)
            return JSONResponse({"id": job})

        @app.get("/jobs/{job}")
        async def read(job: str) -> JSONResponse:
            return JSONResponse({"state": self.state(job, read=True)})

        @app.get("/jobs/{job}/peek")
        async def peek(job: str) -> JSONResponse:
            return JSONResponse({"state": self.state(job, read=False)})


@pytest.fixture(scope="module")
def clock_server():
    with ClockFake() as fake:
        yield fake


@pytest.fixture
def clock(clock_server):
    clock_server.reset()
    yield clock_server
    clock_server.reset()


def new_job(fake) -> str:
    return requests.post(f"{fake.url}/jobs", timeout=5).json()["id"]


def reads(fake, job: str, count: int) -> list[str]:
    return [requests.get(f"{fake.url}/jobs/{job}", timeout=5).json()["state"] for _ in range(count)]


def peek(fake, job: str) -> str:
    return requests.get(f"{fake.url}/jobs/{job}/peek", timeout=5).json()["state"]


def control(fake, what: str, body: Any = None) -> requests.Response:
    return requests.post(f"{fake.url}/_fake/{what}", json=body, timeout=5)


def test_clock_polls_moves_a_job_one_state_per_status_read(clock):
    clock.configure(clock="polls")
    job, other = new_job(clock), new_job(clock)
    assert peek(clock, job) == "queued"  # a read that is not a status read moves nothing
    assert reads(clock, job, 3) == ["working", "done", "done"]
    assert peek(clock, other) == "queued"  # each job counts its own reads


def test_clock_polls_with_reads_per_step_through_the_control_endpoint(clock):
    assert control(clock, "config", {"clock": "polls", "reads_per_step": 3}).status_code == 200
    job = new_job(clock)
    assert reads(clock, job, 7) == ["queued", "queued", "working", "working", "working", "done", "done"]


def test_clock_steps_moves_a_job_only_when_told(clock):
    clock.configure(clock="steps")
    first, second = new_job(clock), new_job(clock)
    assert reads(clock, first, 3) == ["queued"] * 3  # reads move nothing
    clock.advance(first)
    assert (peek(clock, first), peek(clock, second)) == ("working", "queued")
    clock.advance()  # every job
    assert (peek(clock, first), peek(clock, second)) == ("done", "working")
    clock.advance(second, steps=5)  # past the last state: stays done
    assert peek(clock, second) == "done"
    assert [(e["job"], e["steps"]) for e in clock.journal("advanced")] == [(first, 1), (None, 1), (second, 5)]
    with pytest.raises(KeyError, match="no job 'job-9'"):
        clock.advance("job-9")


def test_clock_steps_through_the_control_endpoint(clock):
    assert control(clock, "config", {"clock": "steps"}).status_code == 200
    first, second = new_job(clock), new_job(clock)
    assert control(clock, "advance", {"job": first}).status_code == 200
    assert (peek(clock, first), peek(clock, second)) == ("working", "queued")
    assert requests.post(f"{clock.url}/_fake/advance", timeout=5).status_code == 200  # no body: every job
    assert (peek(clock, first), peek(clock, second)) == ("done", "working")
    assert control(clock, "advance", {"job": second, "steps": 2}).status_code == 200
    assert peek(clock, second) == "done"
    missing = control(clock, "advance", {"job": "job-9"})
    assert missing.status_code == 404 and "no job 'job-9'" in missing.json()["message"]
    bad = control(clock, "advance", {"job": first, "steps": "many"})
    assert bad.status_code == 400 and "many" in bad.json()["message"]


def test_clock_wall_is_real_time_and_cannot_be_advanced(clock):
    assert clock.clock == "wall"  # the default, for demos
    clock.configure(stages=(1000.0, 2000.0))
    job = new_job(clock)
    assert reads(clock, job, 3) == ["queued"] * 3  # reads do not move it: 1000 s have not passed
    with pytest.raises(ValueError, match="clock is 'wall'"):
        clock.advance(job)
    refused = control(clock, "advance", {"job": job})
    assert refused.status_code == 400 and "clock is 'wall'" in refused.json()["message"]
    clock.configure(stages=(0.0, 0.0))  # no time to wait: done at once, as in real time
    assert peek(clock, job) == "done"


def test_clock_zero_length_stages_pass_at_once_under_every_clock(clock):
    for mode in ("polls", "steps"):
        clock.configure(clock=mode, stages=(0.0, 3.0))  # no queued stage: one step from the end
        job = new_job(clock)
        assert peek(clock, job) == "working", mode
        clock.advance(job)
        assert peek(clock, job) == "done", mode


def test_clock_settings_are_checked_and_reset_puts_them_back(clock):
    with pytest.raises(ValueError, match="clock: must be one of \\['wall', 'polls', 'steps'\\], got 'fast'"):
        clock.configure(clock="fast")
    refused = control(clock, "config", {"clock": "fast"})
    assert refused.status_code == 400 and "must be one of" in refused.json()["message"]
    with pytest.raises(ValueError, match="clock: must be one of"):
        ClockFake(clock="fast")
    clock.configure(clock="steps", reads_per_step=4)
    clock.reset()
    assert (clock.clock, clock.reads_per_step) == ("wall", 1)
    assert ClockFake(clock="polls", reads_per_step=2).reads_per_step == 2


# --- held requests ---------------------------------------------------------------------------------------
def test_a_held_request_waits_until_released(clock):
    # held longer than this test waits: only release() lets it go
    clock.add_fault(action="hold", method="POST", path="^/jobs$", seconds=10 * HANG_GUARD)
    created: list[dict] = []
    poster = threading.Thread(
        target=lambda: created.append(requests.post(f"{clock.url}/jobs", timeout=HANG_GUARD).json()),
        daemon=True,
    )
    poster.start()
    wait_until(lambda: clock.journal("held"), "the request was held")
    assert [(e["method"], e["path"]) for e in clock.journal("held")] == [("POST", "/jobs")]
    assert poster.is_alive() and clock.jobs == [] and created == []  # unanswered, not acted on
    assert control(clock, "release").status_code == 200
    poster.join(HANG_GUARD)
    assert created == [{"id": "job-1"}] and clock.jobs == ["job-1"]
    assert [r["fault"] for r in clock.journal() if r.get("path") == "/jobs" and "event" not in r] == ["hold"]
    clock.add_fault(action="hold", method="POST", path="^/jobs$", seconds=10 * HANG_GUARD)  # holds again
    poster = threading.Thread(
        target=lambda: requests.post(f"{clock.url}/jobs", timeout=HANG_GUARD), daemon=True
    )
    poster.start()
    wait_until(lambda: len(clock.journal("held")) == 2, "the second request was held")
    assert poster.is_alive()
    clock.release()
    poster.join(HANG_GUARD)
    assert clock.jobs == ["job-1", "job-2"]


def test_a_hold_never_released_ends_after_its_guard(clock):
    clock.add_fault(action="hold", method="POST", path="^/jobs$", seconds=0.2)
    started = time.monotonic()
    assert requests.post(f"{clock.url}/jobs", timeout=HANG_GUARD).json() == {"id": "job-1"}
    assert time.monotonic() - started >= 0.2  # a lower bound: a busy machine only makes it longer


def test_the_journal_says_when_each_request_arrived_on_the_monotonic_clock(clock):
    before = time.monotonic()
    new_job(clock)
    time.sleep(0.05)  # a gap to measure, not a synchronisation
    new_job(clock)
    after = time.monotonic()
    first, second = [r for r in clock.journal() if r.get("path") == "/jobs"]
    assert before <= first["arrived"] and second["arrived"] - first["arrived"] >= 0.05
    assert second["arrived"] <= after
