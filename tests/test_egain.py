"""eGain hook, operator, sensor and trigger over real HTTP against the fake and moto S3."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from conftest import BUCKET, EGAIN_AWS_KEY, kill_while_running, run_dag, run_trigger

from airflow_provider_ingest.exceptions import (
    IngestApiError,
    IngestApiRejected,
    IngestInputError,
    IngestJobFailed,
    IngestJobTimeout,
    IngestStartUnknown,
)
from airflow_provider_ingest.hooks.egain import EgainHook, egain_snapshot, job_id_from_location
from airflow_provider_ingest.http import RetryPolicy
from airflow_provider_ingest.jobs import JobState
from airflow_provider_ingest.operators.egain import EgainStartImportOperator, parse_schedule_time
from airflow_provider_ingest.sensors.egain import EgainImportJobSensor
from airflow_provider_ingest.testing.state import TaskStateStore
from airflow_provider_ingest.triggers.egain import EgainImportJobTrigger

FOLDER = f"s3://{BUCKET}/kb/"


@pytest.fixture
def kb(s3):
    for name, body in [("a.html", b"<p>reset your password</p>"), ("b.md", b"# VPN"), ("c.bin", b"\x00\x01")]:
        s3.put_object(Bucket=BUCKET, Key=f"kb/{name}", Body=body)
    s3.put_object(Bucket=BUCKET, Key="kb-bad/a.txt", Body=b"INVALID front matter")
    s3.put_object(Bucket=BUCKET, Key="kb-bad/b.html", Body=b"<p>ok</p>")
    return FOLDER


def import_op(**kwargs):
    args = {"task_id": "import", "s3_path": FOLDER, "aws_conn_id": "aws_egain", "poll_interval": 0.1}
    return EgainStartImportOperator(**{**args, **kwargs})


def data_source(path=FOLDER):
    return {
        "type": "AWS S3 bucket",
        "path": path,
        "region": "us-east-1",
        "credentials": {"accessKeyId": EGAIN_AWS_KEY[0], "secretAccessKey": EGAIN_AWS_KEY[1]},
    }


def tokens_issued(egain):
    return len(egain.journal(event="token_issued"))


# --- hook: tokens --------------------------------------------------------------------------------
def test_one_token_for_many_calls(egain, kb):
    hook = EgainHook()
    job_id = hook.start_import({"dataSource": data_source(), "operation": "import"})
    for _ in range(5):
        hook.get_status(job_id)
    assert EgainHook().get_status(job_id)["jobType"] == "Import"  # a second hook shares the cache
    assert tokens_issued(egain) == 1


def test_token_renewed_on_401_and_before_expiry(egain, kb):
    hook = EgainHook()
    job_id = hook.start_import({"dataSource": data_source(), "operation": "import"})
    egain.expire_tokens()
    hook.get_status(job_id)  # 401 -> one new token -> retried
    assert tokens_issued(egain) == 2
    egain.configure(token_ttl=59)  # inside the 60 s renewal margin: renewed before it expires
    from airflow_provider_ingest.auth import clear_token_cache

    clear_token_cache()
    hook.get_status(job_id)
    hook.get_status(job_id)
    egain.configure(token_ttl=3600)
    assert tokens_issued(egain) == 4  # both calls after the clear renewed a still-valid token


def test_wrong_secret_fails_test_connection_without_leaking(egain, monkeypatch):
    assert EgainHook().test_connection()[0]
    conn = egain.airflow_connection()
    conn["password"] = "not-the-secret-42"
    monkeypatch.setenv("AIRFLOW_CONN_EGAIN_BAD", json.dumps(conn))
    ok, message = EgainHook("egain_bad").test_connection()
    assert not ok and "401" in message and "not-the-secret-42" not in message


def test_missing_scope_is_403(egain, monkeypatch):
    conn = egain.airflow_connection()
    conn["extra"]["scope"] = "knowledge.portalmgr.read"
    monkeypatch.setenv("AIRFLOW_CONN_EGAIN_NOSCOPE", json.dumps(conn))
    with pytest.raises(IngestApiRejected, match="HTTP 403"):
        EgainHook("egain_noscope").get_status("X")


# --- hook: jobs ----------------------------------------------------------------------------------
def test_location_header_and_lifecycle(egain, kb):
    assert job_id_from_location("/knowledge/contentmgr/v4/import/content/7A84B875") == "7A84B875"
    assert job_id_from_location("https://api.example/knowledge/contentmgr/v4/import/content/ABC/") == "ABC"
    egain.configure(clock="steps")  # each state holds until the test moves the job on
    hook = EgainHook()
    job_id = hook.start_import({"dataSource": data_source(), "operation": "import"})
    assert job_id in egain.jobs
    seen = []
    for _ in range(3):
        snap = hook.job_snapshot(job_id)
        seen.append((snap.status, snap.state))
        egain.advance(job_id)
    assert seen == [
        ("Scheduled", JobState.RUNNING),
        ("In Progress", JobState.RUNNING),
        ("Successful", JobState.SUCCEEDED),
    ]
    assert snap.details["results"] == {"successful": 2, "warnings": 1, "errors": 0}


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Scheduled", JobState.RUNNING),
        ("In Progress", JobState.RUNNING),
        ("in progress", JobState.RUNNING),
        ("Successful", JobState.SUCCEEDED),
        ("SUCCESSFUL", JobState.SUCCEEDED),
        ("Failed", JobState.FAILED),
        ("Cancelled", JobState.FAILED),
        ("Paused", None),
    ],
)
def test_status_mapping(status, state):
    assert egain_snapshot("J", {"status": status}).state is state


def test_bad_body_is_400_naming_the_field(egain):
    with pytest.raises(IngestApiRejected, match="operation") as info:
        EgainHook().start_import({"dataSource": data_source(), "operation": "merge"})
    assert info.value.status == 400 and info.value.code == "400-101" and "operation" in str(info.value)


# --- operator ------------------------------------------------------------------------------------
def test_import_returns_job_and_results(egain, kb):
    result = import_op().execute({})
    assert result["status"] == "Successful"
    assert result["results"] == {"successful": 2, "warnings": 1, "errors": 0}
    assert EGAIN_AWS_KEY[1] not in json.dumps(result)


def test_errors_fail_unless_partial_allowed(egain, kb):
    with pytest.raises(IngestJobFailed, match="1 error"):
        import_op(s3_path=f"s3://{BUCKET}/kb-bad/").execute({})
    result = import_op(s3_path=f"s3://{BUCKET}/kb-bad/", allow_partial=True).execute({})
    assert result["results"]["errors"] == 1


def test_validate_first_stops_before_importing(egain, kb):
    with pytest.raises(IngestJobFailed, match="validation"):
        import_op(s3_path=f"s3://{BUCKET}/kb-bad/", validate_first=True).execute({})
    assert [e["jobType"] for e in egain.journal(event="job_created")] == ["Validation"]
    import_op(validate_first=True).execute({})
    assert [e["jobType"] for e in egain.journal(event="job_created")] == [
        "Validation",
        "Validation",
        "Import",
    ]


def test_wrong_aws_keys_fail_the_job_with_the_servers_reason(egain, kb, monkeypatch, moto_s3):
    conn = {"conn_type": "aws", "login": "AKIAWRONG", "password": "wrong", "extra": {"endpoint_url": moto_s3}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_WRONG", json.dumps(conn))
    with pytest.raises(IngestJobFailed, match="AccessDenied"):
        import_op(aws_conn_id="aws_wrong").execute({})


def test_on_kill_cancels_the_job(egain, kb):
    egain.configure(clock="steps")  # the job stays scheduled until killed
    op = import_op()
    error = kill_while_running(op)
    assert EgainHook().get_status(op.job_id)["status"] == "Cancelled"
    assert "Cancelled" in str(error)


# --- bad input: fails before any eGain request ----------------------------------------------------
def _future(**delta):
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"s3_path": f"s3://{BUCKET}/kb"}, "s3_path"),
        ({"s3_path": f"s3://{BUCKET}/no-such-folder/"}, "s3_path"),
        ({"s3_path": "/local/folder/"}, "s3_path"),
        ({"operation": "merge"}, "operation"),
        ({"schedule_time": "2026-03-01T10:00:00"}, "schedule_time"),
        ({"schedule_time": "2020-01-01T00:00:00Z"}, "schedule_time"),
        ({"schedule_time": "2030-01-01T10:00:00+02:00"}, "schedule_time"),
        ({"region": "Europe"}, "region"),
        ({"validate_first": "yes"}, "validate_first"),
    ],
)
def test_bad_input_fails_before_any_request(egain, kb, kwargs, field):
    with pytest.raises(ValueError, match=field):
        import_op(**kwargs).execute({})
    assert egain.journal() == []


def test_temporary_credentials_are_refused(egain, kb, monkeypatch, moto_s3):
    conn = {
        "conn_type": "aws",
        "login": "ASIATEMP",
        "password": "temp-secret-value-777",
        "extra": {"endpoint_url": moto_s3, "aws_session_token": "session-token-value-888"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEMP", json.dumps(conn))
    with pytest.raises(ValueError, match="temporary credentials") as info:
        import_op(aws_conn_id="aws_temp").execute({})
    assert "temp-secret-value-777" not in str(info.value) and "session-token-value-888" not in str(info.value)
    assert egain.journal() == []


@pytest.mark.parametrize("days", [1, 30], ids=["tomorrow", "a-month-ahead"])
def test_schedule_time_is_sent_in_the_apis_format(egain, kb, days):
    # no 7-day cap: neither the API document nor eGain's published docs state one (issue 16 item 15)
    when = _future(days=days)
    assert parse_schedule_time(when) == when.replace("Z", ".000Z")
    job = import_op(schedule_time=when, wait_for_completion=False).execute({})
    assert EgainHook().get_status(job["job_id"])["status"] == "Scheduled"


# --- full Airflow runs ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_retry_reattaches_and_no_secret_reaches_logs_or_xcom(airflow_db, egain, kb, mode, capfd):
    # a transient error beyond the request budget fails try 1 (a 400 would be final: no retry)
    egain.add_fault(action="status", status=503, retry_after="0", method="GET", path=r"/status$", times=5)
    run, tis = run_dag(f"test_egain_{mode}")
    assert run.state == "success"
    assert tis["import"].try_number == 2
    assert len(egain.journal(event="job_created")) == 1
    result = tis["import"].xcom_pull(task_ids="import")
    assert result["status"] == "Successful"
    captured = capfd.readouterr()
    output = captured.out + captured.err + json.dumps(result)
    for secret in (EGAIN_AWS_KEY[0], EGAIN_AWS_KEY[1], egain.client_secret, *egain.tokens):
        assert secret not in output


# --- sensor and trigger --------------------------------------------------------------------------
def test_sensor_accepts_a_location(egain, kb):
    job_id = EgainHook().start_import({"dataSource": data_source(), "operation": "import"})
    sensor = EgainImportJobSensor(
        task_id="wait",
        job_id=f"/knowledge/contentmgr/v4/import/content/{job_id}",
        poll_interval=0.05,
        timeout=20,
    )
    sensor.execute({})
    assert EgainHook().get_status(job_id)["status"] == "Successful"


def test_trigger_round_trip_success_and_failure(egain, kb):
    hook = EgainHook()
    job_id = hook.start_import({"dataSource": data_source(), "operation": "import"})
    trigger = EgainImportJobTrigger(
        job_id=job_id, conn_id="egain_default", deadline=time.time() + 30, poll_interval=0.1
    )
    path, kwargs = trigger.serialize()
    assert egain.client_secret not in json.dumps(kwargs)
    rebuilt = EgainImportJobTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)
    event = run_trigger(rebuilt)
    assert event["status"] == "success" and event["job"]["details"]["results"]["successful"] == 2
    job_id = hook.start_import(
        {"dataSource": data_source(f"s3://{BUCKET}/nothing-here/"), "operation": "import"}
    )
    event = run_trigger(
        EgainImportJobTrigger(
            job_id=job_id, conn_id="egain_default", deadline=time.time() + 30, poll_interval=0.1
        )
    )
    assert event["status"] == "error" and "holds no content" in event["message"]


def test_trigger_renews_an_expired_token_mid_wait(egain, kb):
    hook = EgainHook()
    job_id = hook.start_import({"dataSource": data_source(), "operation": "import"})
    egain.expire_tokens()
    event = run_trigger(
        EgainImportJobTrigger(
            job_id=job_id, conn_id="egain_default", deadline=time.time() + 30, poll_interval=0.1
        )
    )
    assert event["status"] == "success"
    assert tokens_issued(egain) == 2


# --- exactly once: lost replies, kills, timeouts ------------------------------------------------------
Store = TaskStateStore  # Airflow's task_state_store rules: it outlives a try


class WorkerKilled(BaseException):
    """SIGKILL: nothing after this point of the try runs."""


class DiesBeforeStoringTheId(Store):
    """The worker dies after the start call reached eGain, before the job id was stored."""

    def set(self, key, value):
        if key == "egain_import_job_id":
            raise WorkerKilled(key)
        super().set(key, value)


def start_calls(egain):
    return [r for r in egain.journal() if r.get("method") == "POST" and r["path"].endswith("/import/content")]


def test_lost_start_reply_fails_without_a_second_import(egain, kb):
    egain.add_fault(action="drop_after", method="POST", path=r"/import/content$")
    store = Store()
    started_at = r"import of s3://ingest-test/kb/ at 20\d\d-\d\d-\d\dT"
    with pytest.raises(IngestStartUnknown, match=started_at) as info:
        import_op().execute({"task_state_store": store})
    assert isinstance(info.value, AirflowFailException)  # Airflow does not retry it
    assert "resubmit_on_unknown_start=True" in str(info.value) and "eGain" in str(info.value)
    assert len(egain.journal(event="job_created")) == 1 and len(start_calls(egain)) == 1
    # a user who clears the task gets the same answer, and still no second import
    with pytest.raises(IngestStartUnknown, match="in an earlier try"):
        import_op().execute({"task_state_store": store})
    assert len(start_calls(egain)) == 1
    # an explicit opt-in allows the resend
    result = import_op(resubmit_on_unknown_start=True).execute({"task_state_store": store})
    assert result["status"] == "Successful" and len(egain.journal(event="job_created")) == 2


def test_worker_killed_during_the_start_call_is_not_a_second_import(egain, kb):
    store = DiesBeforeStoringTheId()
    with pytest.raises(WorkerKilled):
        import_op().execute({"task_state_store": store})
    assert len(egain.journal(event="job_created")) == 1
    with pytest.raises(IngestStartUnknown, match="in an earlier try"):
        import_op().execute({"task_state_store": Store(store)})
    assert len(start_calls(egain)) == 1


def test_a_refused_start_leaves_no_intent_and_is_not_retried(egain, kb):
    """A 4xx from eGain: nothing started (the next try may start), and Airflow does not retry."""
    egain.add_fault(action="status", status=400, method="POST", path=r"/import/content$")
    store = Store()
    with pytest.raises(IngestApiRejected, match="HTTP 400") as info:
        import_op().execute({"task_state_store": store})
    assert isinstance(info.value, AirflowFailException)
    assert import_op().execute({"task_state_store": store})["status"] == "Successful"
    assert len(egain.journal(event="job_created")) == 1


def test_bad_input_is_not_retried(egain, kb):
    with pytest.raises(IngestInputError, match="operation") as info:
        import_op(operation="merge").execute({})
    assert isinstance(info.value, AirflowFailException) and isinstance(info.value, ValueError)


def test_kill_during_validation_cancels_the_validation_job(egain, kb):
    egain.configure(clock="steps")
    op = import_op(validate_first=True)
    error = kill_while_running(op, started=lambda op: getattr(op, "validation_job_id", None) is not None)
    jobs = egain.journal(event="job_created")
    assert [j["jobType"] for j in jobs] == ["Validation"]  # no import was started
    assert egain.jobs[jobs[0]["id"]]["cancelled"]
    assert isinstance(error, IngestJobFailed) and "Cancelled" in str(error)


def test_timeout_cancels_the_job(egain, kb):
    egain.configure(clock="steps")  # the job is still scheduled when the timeout passes
    store = Store()
    with pytest.raises(IngestJobTimeout, match="canceled it"):
        import_op(timeout=0.3).execute({"task_state_store": store})
    assert EgainHook().get_status(store["egain_import_job_id"])["status"] == "Cancelled"


def test_timeout_without_cancel_leaves_the_job_and_a_retry_keeps_the_deadline(egain, kb):
    egain.configure(clock="steps")  # the job is still scheduled when the timeout passes
    store = Store()
    with pytest.raises(IngestJobTimeout, match="left running"):
        import_op(timeout=0.3, cancel_on_timeout=False).execute({"task_state_store": store})
    job_id = store["egain_import_job_id"]
    assert EgainHook().get_status(job_id)["status"] == "Scheduled"
    polls_before = len(egain.journal())
    # the retry re-attaches to the same job with the deadline it was first given: already past
    with pytest.raises(IngestJobTimeout, match="left running"):
        import_op(timeout=3600, cancel_on_timeout=False).execute({"task_state_store": store})
    statuses = [r for r in egain.journal()[polls_before:] if r.get("path", "").endswith("/status")]
    assert len(statuses) == 2  # the re-attach check and one poll, not an hour of polling
    assert len(egain.journal(event="job_created")) == 1


def test_deferred_retry_keeps_the_deadline_and_a_timeout_event_cancels(egain, kb):
    egain.configure(clock="steps")  # the job is still scheduled when the timeout passes
    store = Store()
    with pytest.raises(TaskDeferred) as first:
        import_op(deferrable=True, timeout=0.3).execute({"task_state_store": store})
    with pytest.raises(TaskDeferred) as again:  # a retry while the job runs: same deadline
        import_op(deferrable=True, timeout=3600).execute({"task_state_store": store})
    assert first.value.trigger.deadline == again.value.trigger.deadline
    assert first.value.trigger.deadline == store["egain_import_job_id.deadline"]
    event = run_trigger(again.value.trigger)
    assert event["status"] == "timeout"
    with pytest.raises(IngestJobTimeout, match="canceled it"):
        import_op(deferrable=True).execute_complete({"task_state_store": store}, event=event)
    assert EgainHook().get_status(store["egain_import_job_id"])["status"] == "Cancelled"


@pytest.mark.parametrize("body", [None, [], {"code": "500-1", "developerMessage": "oops"}])
def test_a_status_reply_that_is_not_a_status_is_a_clear_error(egain, kb, body):
    job_id = EgainHook().start_import({"dataSource": data_source(), "operation": "import"})
    egain.add_fault(action="body", body=body, method="GET", path=r"/status$", times=100)
    hook = EgainHook(retry=RetryPolicy(attempts=3, backoff=0.01))
    with pytest.raises(IngestApiError, match=r"eGain GET .*/status failed: HTTP 200 \[MalformedReply\]"):
        hook.get_status(job_id)
    statuses = [r for r in egain.journal() if r.get("path", "").endswith("/status")]
    assert len(statuses) == 3  # retried within the budget, then a clear error


def test_one_malformed_status_reply_is_retried(egain, kb):
    job_id = EgainHook().start_import({"dataSource": data_source(), "operation": "import"})
    egain.add_fault(action="body", body=None, method="GET", path=r"/status$", times=1)
    hook = EgainHook(retry=RetryPolicy(attempts=3, backoff=0.01))
    assert hook.get_status(job_id)["status"] in ("Scheduled", "In Progress", "Successful")
