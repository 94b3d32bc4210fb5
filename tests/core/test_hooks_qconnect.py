"""Amazon Q in Connect hook: the import-job status table (the waiter's acceptors), the job
snapshot, re-reading a reply without the job, and the failed-record summary, through boto3
against QConnectFake (no S3: the quick-responses CSV is uploaded straight to the fake's
presigned URL)."""

from __future__ import annotations

import json
import os

import pytest
import requests
from botocore.exceptions import ClientError

from airflow_provider_ingest.exceptions import IngestApiError, IngestApiRejected
from airflow_provider_ingest.hooks import qconnect as qconnect_module
from airflow_provider_ingest.hooks.qconnect import IMPORT_JOB_STATUSES, QConnectHook, status_table
from airflow_provider_ingest.jobs import JobSnapshot, JobState, StatusTable
from airflow_provider_ingest.testing import QConnectFake

CONN_ID = "aws_qconnect_core_hooks"
KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
GOOD = b"name,content\nGreeting,Hello there\nBye,See you\n"
BAD = b"name,content\nok,fine\n,no name\nno content,\nx,\n,\nsixth,ok\n"  # four rows rejected


@pytest.fixture(scope="module")
def fake():
    with QConnectFake(clock="steps") as server, pytest.MonkeyPatch.context() as env:
        conn = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {
                "region_name": "us-east-1",
                "service_config": server.aws_service_config(),
                "config_kwargs": {"retries": {"total_max_attempts": 3}},
            },
        }
        env.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        yield server


@pytest.fixture
def qconnect(fake):
    fake.reset()
    fake.configure(clock="steps")
    yield fake
    fake.clear_faults()


@pytest.fixture(scope="module")
def shared_hook(fake) -> QConnectHook:
    """One hook (one boto3 client, ~0.1 s to build) for the module's tests."""
    return QConnectHook(aws_conn_id=CONN_ID)


@pytest.fixture
def hook(shared_hook, qconnect):
    return lambda: shared_hook


def start(hook, body: bytes = GOOD) -> str:
    qc = hook().conn
    upload = qc.start_content_upload(knowledgeBaseId=KB, contentType="text/csv")
    requests.put(upload["url"], data=body, headers=upload["headersToInclude"], timeout=5).raise_for_status()
    reply = qc.start_import_job(
        knowledgeBaseId=KB, importJobType="QUICK_RESPONSES", uploadId=upload["uploadId"]
    )
    return reply["importJob"]["importJobId"]


def job_reads(fake, job_id: str) -> int:
    path = f"/knowledgeBases/{KB}/importJobs/{job_id}"
    return len([r for r in fake.journal() if r.get("method") == "GET" and r.get("path") == path])


# --- the status table: the waiter's acceptors, and the vendor document's statuses ----------------
def test_status_table_is_the_waiters_acceptors():
    expected = StatusTable.of(
        succeeded={"COMPLETE"},
        failed={"FAILED", "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETED"},
        running={"START_IN_PROGRESS"},
    )
    assert status_table() == expected
    assert status_table("import_job_complete") == expected
    assert IMPORT_JOB_STATUSES == expected


# the document's status enum:
# 'START_IN_PROGRESS'|'FAILED'|'COMPLETE'|'DELETE_IN_PROGRESS'|'DELETE_FAILED'|'DELETED'
@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("START_IN_PROGRESS", JobState.RUNNING),
        ("COMPLETE", JobState.SUCCEEDED),
        ("FAILED", JobState.FAILED),
        ("DELETE_IN_PROGRESS", JobState.FAILED),
        ("DELETE_FAILED", JobState.FAILED),
        ("DELETED", JobState.FAILED),
        ("PAUSED", None),
    ],
)
def test_every_documented_status_is_sorted(status, state):
    assert status_table().state_of(status) is state


def write_waiter(tmp_path, monkeypatch, acceptors, name="import_job_complete"):
    path = tmp_path / "qconnect.json"
    path.write_text(
        json.dumps({"version": 2, "waiters": {name: {"operation": "GetImportJob", "acceptors": acceptors}}})
    )
    monkeypatch.setattr(qconnect_module, "WAITER_PATH", path)


def acceptor(expected, state, matcher="path", argument="importJob.status"):
    return {"matcher": matcher, "argument": argument, "expected": expected, "state": state}


def test_status_table_of_another_waiter(tmp_path, monkeypatch):
    write_waiter(
        tmp_path,
        monkeypatch,
        [
            acceptor("A", "success"),
            acceptor("B", "failure"),
            acceptor("C", "retry"),
            acceptor("D", "success"),
        ],
        name="other",
    )
    assert status_table("other") == StatusTable.of(succeeded={"A", "D"}, failed={"B"}, running={"C"})
    with pytest.raises(KeyError, match="import_job_complete"):
        status_table()


@pytest.mark.parametrize(
    "bad",
    [acceptor("X", "failure", matcher="error"), acceptor("X", "failure", argument="importJob.type")],
)
def test_status_table_refuses_acceptors_it_cannot_read(tmp_path, monkeypatch, bad):
    write_waiter(tmp_path, monkeypatch, [acceptor("COMPLETE", "success"), bad])
    with pytest.raises(
        ValueError, match=r"^qconnect.json: only importJob.status path acceptors are supported$"
    ):
        status_table()


# --- import_job_snapshot / get_import_job over the fake ---------------------------------------
def test_snapshot_of_a_running_then_complete_job(hook, qconnect):
    job_id = start(hook)
    assert hook().import_job_snapshot(KB, job_id) == JobSnapshot(
        job_id, "START_IN_PROGRESS", JobState.RUNNING, None
    )
    qconnect.advance(job_id)
    assert hook().import_job_snapshot(KB, job_id) == JobSnapshot(job_id, "COMPLETE", JobState.SUCCEEDED, None)
    assert job_reads(qconnect, job_id) == 2


def test_snapshot_of_a_failed_job_summarises_its_report(hook, qconnect):
    job_id = start(hook, BAD)
    qconnect.advance(job_id)
    snap = hook().import_job_snapshot(KB, job_id)
    assert (snap.job_id, snap.status, snap.state) == (job_id, "FAILED", JobState.FAILED)
    assert snap.reason == (
        f"import job {job_id} is FAILED: 4 record(s) failed; "
        "first reasons: missing name; missing content; missing content"
    )
    reports = [r for r in qconnect.journal() if r.get("path") == f"/_reports/{job_id}"]
    assert [(r["method"], r["status"]) for r in reports] == [("GET", 200)]


def test_snapshot_of_a_failed_job_without_a_report(hook, qconnect):
    job_id = start(hook, b"name,content\n")  # nothing accepted, nothing rejected: FAILED, no report
    qconnect.advance(job_id)
    snap = hook().import_job_snapshot(KB, job_id)
    assert snap == JobSnapshot(
        job_id, "FAILED", JobState.FAILED, f"import job {job_id} is FAILED (no failed-record report)"
    )


def test_get_import_job_returns_the_job(hook, qconnect):
    job_id = start(hook)
    job = hook().get_import_job(KB, job_id)
    assert (job["importJobId"], job["knowledgeBaseId"], job["status"]) == (job_id, KB, "START_IN_PROGRESS")


def test_an_unknown_job_is_the_services_error(hook, qconnect):
    with pytest.raises(ClientError, match="import job nope not found") as raised:
        hook().get_import_job(KB, "nope")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert job_reads(qconnect, "nope") == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"action": "body", "body": None},
        {"action": "body", "body": {}},
        {"action": "body", "body": []},
        {"action": "body", "body": [{"importJob": {"status": "COMPLETE"}}]},
        {"action": "body", "body": "COMPLETE"},
        {"action": "body", "body": 7},
        {"action": "body", "body": {"importJob": None}},
        {"action": "body", "body": {"importJob": []}},
        {"action": "body", "body": {"importJob": {"importJobId": "x"}}},
        {"action": "body", "body": {"importJob": {"status": ""}}},
        {"action": "malformed"},
    ],
)
def test_a_reply_without_the_job_is_read_again(hook, qconnect, fault):
    job_id = start(hook)
    qconnect.add_fault(method="GET", path=f"/importJobs/{job_id}$", **fault)
    assert hook().get_import_job(KB, job_id)["status"] == "START_IN_PROGRESS"
    assert job_reads(qconnect, job_id) == 2


@pytest.mark.parametrize("body", [None, {"importJob": {"status": None}}])
def test_replies_without_the_job_beyond_the_budget_are_an_error(hook, qconnect, body):
    job_id = start(hook)
    qconnect.add_fault(action="body", body=body, method="GET", path=f"/importJobs/{job_id}$", times=10)
    with pytest.raises(IngestApiError, match=r"3 replies in a row had no importJob status$") as raised:
        hook().import_job_snapshot(KB, job_id)
    error = raised.value
    assert not isinstance(error, IngestApiRejected)
    assert (error.service, error.method, error.endpoint, error.status, error.code) == (
        "Amazon Q in Connect",
        "GET",
        f"/knowledgeBases/{KB}/importJobs/{job_id}",
        200,
        "MalformedReply",
    )
    assert job_reads(qconnect, job_id) == 3  # the connection's total_max_attempts


def test_the_reply_budget_is_botocores(hook, qconnect, monkeypatch):
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"])
    conn["extra"]["config_kwargs"] = {"retries": {"max_attempts": 1}}  # retries after the first: 2 tries
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    job_id = start(hook)
    qconnect.add_fault(action="body", body={}, method="GET", path=f"/importJobs/{job_id}$", times=10)
    with pytest.raises(IngestApiError, match=r"2 replies in a row had no importJob status$"):
        QConnectHook(aws_conn_id=CONN_ID).get_import_job(KB, job_id)
    assert job_reads(qconnect, job_id) == 2


# --- failure_summary ----------------------------------------------------------------------------
def test_failure_summary_samples_three_reasons(hook, qconnect):
    job_id = start(hook, BAD)
    qconnect.advance(job_id)
    job = hook().get_import_job(KB, job_id)
    assert hook().failure_summary(job) == (
        f"import job {job_id} is FAILED: 4 record(s) failed; "
        "first reasons: missing name; missing content; missing content"
    )


def test_failure_summary_of_one_rejected_row(hook, qconnect):
    job_id = start(hook, b"name,content\nok,fine\n,lost\n")
    qconnect.advance(job_id)
    job = hook().get_import_job(KB, job_id)
    assert (
        hook().failure_summary(job)
        == f"import job {job_id} is FAILED: 1 record(s) failed; first reasons: missing name"
    )


def test_failure_summary_without_a_report(hook, qconnect):
    assert hook().failure_summary({"importJobId": "J", "status": "DELETED"}) == (
        "import job J is DELETED (no failed-record report)"
    )
    assert hook().failure_summary({"importJobId": "J", "status": "FAILED", "failedRecordReport": ""}) == (
        "import job J is FAILED (no failed-record report)"
    )


def test_failure_summary_of_an_unreadable_report_is_an_error(hook, qconnect):
    job_id = start(hook, BAD)
    qconnect.advance(job_id)
    job = hook().get_import_job(KB, job_id)
    signed = job["failedRecordReport"]
    job["failedRecordReport"] = signed.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    with pytest.raises(IngestApiRejected, match=r"HTTP 403: .*AccessDenied") as raised:
        hook().failure_summary(job)
    assert raised.value.endpoint == f"{qconnect.url}/_reports/{job_id}"  # never the signature


def failed_job(hook, qconnect) -> dict:
    job_id = start(hook, BAD)
    qconnect.advance(job_id)
    return hook().get_import_job(KB, job_id)


def test_an_unreadable_report_is_named_as_the_report(hook, qconnect):
    job = failed_job(hook, qconnect)
    qconnect.add_fault(action="status", status=404, method="GET", path=r"^/_reports/")
    with pytest.raises(IngestApiRejected, match=r"^Amazon Q in Connect report GET http://") as raised:
        hook().failure_summary(job)
    assert (raised.value.service, raised.value.method, raised.value.status) == (
        "Amazon Q in Connect report",
        "GET",
        404,
    )


def test_a_report_without_rows(hook, qconnect):
    job = failed_job(hook, qconnect)
    qconnect.add_fault(action="malformed", method="GET", path=r"^/_reports/")  # 200, one line: a header
    assert hook().failure_summary(job) == f"import job {job['importJobId']} is FAILED: 0 record(s) failed"


def test_the_reports_presigned_url_is_masked(hook, qconnect):
    from airflow_provider_ingest.http import redact

    job = failed_job(hook, qconnect)
    hook().failure_summary(job)
    assert redact(f"report at {job['failedRecordReport']}") == "report at ***"


def test_the_report_is_read_through_the_connections_proxy(qconnect, monkeypatch):
    from airflow_provider_ingest.testing.proxy import ForwardProxy

    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ForwardProxy() as proxy:
        conn = json.loads(os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"])
        conn["extra"]["config_kwargs"] = {"proxies": {"http": proxy.url}}
        monkeypatch.setenv("AIRFLOW_CONN_AWS_QCONNECT_CORE_PROXIED", json.dumps(conn))
        proxied = QConnectHook(aws_conn_id="aws_qconnect_core_proxied")
        job = failed_job(lambda: proxied, qconnect)
        proxy.clear()
        assert proxied.failure_summary(job).endswith(
            "4 record(s) failed; first reasons: missing name; missing content; missing content"
        )
        assert [(e["method"], e["target"].split("?")[0]) for e in proxy.journal()] == [
            ("GET", f"{qconnect.url}/_reports/{job['importJobId']}")
        ]
