"""eGain hook: the job id a start reply's Location names, the status snapshot and cancel, called
directly or over HTTP against EgainFake (no S3: a job whose AWS keys the fake does not know ends
Failed with AccessDenied before any S3 read)."""

from __future__ import annotations

import pytest

from airflow_provider_ingest.auth import clear_token_cache
from airflow_provider_ingest.exceptions import IngestApiError, IngestApiRejected
from airflow_provider_ingest.hooks.egain import EgainHook, egain_snapshot, job_id_from_location
from airflow_provider_ingest.http import RetryPolicy
from airflow_provider_ingest.jobs import JobSnapshot, JobState
from airflow_provider_ingest.testing import EgainFake

from .support import run, serving

CONN_ID = "egain_core_hooks"
API = "/knowledge/contentmgr/v4"
FAST = RetryPolicy(attempts=3, backoff=0.001, backoff_max=0.002)
SOURCE = {
    "type": "AWS S3 bucket",
    "path": "s3://bucket/kb/",
    "region": "us-east-1",
    "credentials": {"accessKeyId": "AKIAUNKNOWN", "secretAccessKey": "not-a-key-the-fake-knows"},
}


@pytest.fixture(scope="module")
def fake():
    with serving(EgainFake(clock="steps"), CONN_ID) as (server, _):
        yield server


@pytest.fixture
def egain(fake):
    fake.reset()
    fake.configure(clock="steps")
    clear_token_cache()
    yield fake
    fake.clear_faults()


def hook() -> EgainHook:
    return EgainHook(egain_conn_id=CONN_ID, retry=FAST)


def requests_to(fake, suffix: str) -> list[tuple[str, str, int | None]]:
    return [
        (r["method"], r["path"], r["status"]) for r in fake.journal() if r.get("path", "").endswith(suffix)
    ]


# --- job_id_from_location ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("location", "job_id"),
    [
        (
            f"{API}/import/content/7A84B875-6F75-4C7B-B137-0632B62DB0BD",
            "7A84B875-6F75-4C7B-B137-0632B62DB0BD",
        ),
        (f"https://api.example{API}/import/content/ABC/", "ABC"),
        ("import/content/REL", "REL"),
        (f"{API}/import/content/Q1?expand=all", "Q1"),
        (f"{API}/import/content/Q2?next=/import/content/OTHER?x", "Q2"),
    ],
)
def test_job_id_is_the_last_segment_of_an_import_location(location, job_id):
    assert job_id_from_location(location) == job_id


@pytest.mark.parametrize(
    "location",
    [
        "",
        "../connections/x",
        f"{API}/import/content",
        f"{API}/import/content/",
        f"{API}/import/content/validate",
        f"{API}/import/content/status",
        f"{API}/import/content/.",
        f"{API}/import/content/..",
        f"{API}/import/content/A/status",
        f"{API}/reimport/content/A",
        f"{API}/import/contents/A",
        "/import/content//",
    ],
)
def test_a_location_that_names_no_import_job_is_refused(location):
    with pytest.raises(ValueError, match=r"^job_id: cannot read a job id from location '") as raised:
        job_id_from_location(location)
    assert repr(location) in str(raised.value)


# --- egain_snapshot ----------------------------------------------------------------------------
def test_snapshot_carries_status_progress_and_details():
    body = {
        "jobId": "J1",
        "jobType": "Import",
        "status": "In Progress",
        "progress": {"processed": 3, "total": 10, "percentage": 30},
        "results": {"successful": 3, "warnings": 0, "errors": 0},
        "logFileLocation": "s3://logs/J1.log",
        "error": None,
    }
    assert egain_snapshot("J1", body) == JobSnapshot(
        "J1",
        "In Progress",
        JobState.RUNNING,
        reason=None,
        progress="3 of 10 processed",
        details={
            "job_id": "J1",
            "status": "In Progress",
            "jobType": "Import",
            "progress": {"processed": 3, "total": 10, "percentage": 30},
            "results": {"successful": 3, "warnings": 0, "errors": 0},
            "logFileLocation": "s3://logs/J1.log",
        },
    )


def test_snapshot_of_a_bare_body():
    assert egain_snapshot("J2", {"status": None, "progress": None, "results": None}) == JobSnapshot(
        "J2",
        "",
        None,
        details={
            "job_id": "J2",
            "status": "",
            "jobType": None,
            "progress": {},
            "results": {},
            "logFileLocation": None,
        },
    )


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        ({"total": 5}, "0 of 5 processed"),
        ({"processed": 0, "total": 0}, "0 of 0 processed"),
        ({"processed": 2, "total": None}, None),
        ({"processed": 2}, None),
    ],
)
def test_snapshot_progress_text(progress, text):
    assert egain_snapshot("J", {"status": "Scheduled", "progress": progress}).progress == text


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"developerMessage": "dev says", "message": "user says"}, "dev says"),
        ({"developerMessage": "", "message": "user says"}, "user says"),
        ({"code": "500-1"}, "{'code': '500-1'}"),
        (
            "AccessDenied: the AWS credentials cannot read s3://b/",
            "AccessDenied: the AWS credentials cannot read s3://b/",
        ),
        ("", None),
        (None, None),
    ],
)
def test_snapshot_reason_is_the_servers_error(error, reason):
    assert egain_snapshot("J", {"status": "Failed", "error": error}).reason == reason


# The job statuses eGain's Ingestion API reports (the SDK's ImportStatus; the vendor document shows
# only the 202 + Location start): every one is sorted, case-insensitively; others keep waiting.
@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Scheduled", JobState.RUNNING),
        ("In Progress", JobState.RUNNING),
        ("Successful", JobState.SUCCEEDED),
        ("Failed", JobState.FAILED),
        ("Cancelled", JobState.FAILED),
        ("Canceled", JobState.FAILED),
        ("FAILED", JobState.FAILED),
        ("Paused", None),
    ],
)
def test_status_table(status, state):
    assert egain_snapshot("J", {"status": status}).state is state


# --- over HTTP: start, snapshot, cancel --------------------------------------------------------
def test_start_returns_the_job_the_location_names(egain):
    job_id = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    assert list(egain.jobs) == [job_id]
    assert egain.jobs[job_id]["jobType"] == "Import"
    validation = hook().start_validation(SOURCE)
    assert egain.jobs[validation]["jobType"] == "Validation" and validation != job_id
    assert requests_to(egain, "/import/content") == [("POST", f"{API}/import/content", 202)]
    assert requests_to(egain, "/validate") == [("POST", f"{API}/import/content/validate", 202)]


@pytest.mark.parametrize(("status", "body"), [(200, {"ok": True}), (202, {"jobId": "J"}), (201, None)])
def test_a_start_reply_without_202_and_location_is_malformed(egain, status, body):
    egain.add_fault(action="body", status=status, body=body, method="POST", path=r"/import/content$")
    with pytest.raises(IngestApiError, match="expected 202 with a location header") as raised:
        hook().start_import({"dataSource": SOURCE, "operation": "import"})
    error = raised.value
    assert not isinstance(error, IngestApiRejected)
    assert (error.service, error.method, error.status, error.code) == (
        "eGain",
        "POST",
        status,
        "MalformedReply",
    )
    assert error.endpoint == f"{egain.url}{API}/import/content"
    assert error.server_message == f"expected 202 with a location header, got {status}"
    assert error.outcome_unknown
    assert len(requests_to(egain, "/import/content")) == 1  # a start is never sent twice on a guess


def test_a_refused_start_is_the_servers_error(egain):
    with pytest.raises(IngestApiRejected, match=r"HTTP 400 \[400-101\]: dataSource: required"):
        hook().start_import({"operation": "import"})


def test_job_snapshot_reads_the_jobs_status(egain):
    job_id = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    first = hook().job_snapshot(job_id)
    assert (first.job_id, first.status, first.state) == (job_id, "Scheduled", JobState.RUNNING)
    assert first.details["jobType"] == "Import"
    egain.advance(job_id, 2)
    last = hook().job_snapshot(job_id)
    assert (last.status, last.state) == ("Failed", JobState.FAILED)
    assert last.reason == "AccessDenied: the AWS credentials cannot read s3://bucket/kb/"
    assert requests_to(egain, "/status") == [("GET", f"{API}/import/content/{job_id}/status", 200)] * 2


def test_ajob_snapshot_reads_the_jobs_status(egain):
    job_id = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    egain.advance(job_id, 2)
    snap = run(lambda: hook().ajob_snapshot(job_id))
    assert (snap.job_id, snap.status, snap.state) == (job_id, "Failed", JobState.FAILED)
    assert snap.reason == "AccessDenied: the AWS credentials cannot read s3://bucket/kb/"
    assert requests_to(egain, "/status") == [("GET", f"{API}/import/content/{job_id}/status", 200)]


@pytest.mark.parametrize("body", [None, {"jobId": "J"}])
def test_a_status_reply_without_a_status_is_malformed(egain, body):
    job_id = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    egain.add_fault(action="body", body=body, method="GET", path=r"/status$", times=10)
    with pytest.raises(IngestApiError, match=r"HTTP 200 \[MalformedReply\]"):
        hook().job_snapshot(job_id)
    with pytest.raises(IngestApiError, match=r"HTTP 200 \[MalformedReply\]"):
        run(lambda: hook().ajob_snapshot(job_id))


def test_job_ids_are_one_path_segment(egain):
    with pytest.raises(ValueError, match=r"^job_id: 'a/b' cannot be a URL path segment"):
        hook().job_snapshot("a/b")
    with pytest.raises(ValueError, match=r"^job_id: 'a/b' cannot be a URL path segment"):
        run(lambda: hook().ajob_snapshot("a/b"))
    for call in (hook().job_snapshot, lambda j: run(lambda: hook().ajob_snapshot(j))):
        with pytest.raises(IngestApiRejected, match=r"\[404-100\]: jobId: no import job a\?b#c$"):
            call("a?b#c")
    assert requests_to(egain, "/status") == [("GET", f"{API}/import/content/a?b#c/status", 404)] * 2


def test_cancel_stops_a_running_job(egain):
    job_id = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    other = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    hook().cancel_job(job_id)
    run(lambda: hook().acancel_job(other))
    assert egain.jobs[job_id]["cancelled"] and egain.jobs[other]["cancelled"]
    assert [e["id"] for e in egain.journal(event="job_cancelled")] == [job_id, other]
    assert requests_to(egain, "/cancel") == [
        ("POST", f"{API}/import/content/{job_id}/cancel", 204),
        ("POST", f"{API}/import/content/{other}/cancel", 204),
    ]


def test_cancel_of_an_ended_job_is_done(egain):
    job_id = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    egain.advance(job_id, 2)
    hook().cancel_job(job_id)  # 409: it has ended, nothing to stop
    run(lambda: hook().acancel_job(job_id))
    assert [status for _, _, status in requests_to(egain, "/cancel")] == [409, 409]
    assert egain.journal(event="job_cancelled") == []


def test_cancel_of_an_unknown_job_is_an_error(egain):
    with pytest.raises(IngestApiRejected, match=r"HTTP 404 \[404-100\]: jobId: no import job NOPE"):
        hook().cancel_job("NOPE")
    with pytest.raises(IngestApiRejected, match=r"HTTP 404 \[404-100\]: jobId: no import job NOPE"):
        run(lambda: hook().acancel_job("NOPE"))


def test_cancel_whose_reply_was_lost_is_sent_again(egain):
    job_id = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    other = hook().start_import({"dataSource": SOURCE, "operation": "import"})
    egain.add_fault(action="drop_after", method="POST", path=r"/cancel$")
    hook().cancel_job(job_id)  # the second try meets its own first success: 409, done
    egain.add_fault(action="drop_after", method="POST", path=r"/cancel$")
    run(lambda: hook().acancel_job(other))
    assert [status for _, _, status in requests_to(egain, "/cancel")] == [None, 409, None, 409]
    assert [e["id"] for e in egain.journal(event="job_cancelled")] == [job_id, other]


def test_cancel_ids_are_one_path_segment(egain):
    with pytest.raises(ValueError, match=r"^job_id: 'a/b' cannot be a URL path segment"):
        hook().cancel_job("a/b")
    with pytest.raises(ValueError, match=r"^job_id: 'a/b' cannot be a URL path segment"):
        run(lambda: hook().acancel_job("a/b"))
    assert requests_to(egain, "/cancel") == []
