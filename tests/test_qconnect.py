"""Q in Connect: the operator end to end, retries, waiter, trigger."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import requests
from conftest import BUCKET, qconnect_client, run_dag, run_trigger

from airflow_provider_ingest.exceptions import (
    IngestApiError,
    IngestApiRejected,
    IngestInputError,
    IngestJobFailed,
)
from airflow_provider_ingest.hooks.qconnect import QConnectHook, max_attempts
from airflow_provider_ingest.operators.qconnect import (
    START_REPLY_ATTEMPTS,
    UPLOAD_ID_KEY,
    QConnectImportQuickResponsesOperator,
)
from airflow_provider_ingest.sensors.qconnect import QConnectImportJobSensor
from airflow_provider_ingest.testing.state import TaskStateStore
from airflow_provider_ingest.triggers.qconnect import QConnectImportJobTrigger

KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
GOOD = (
    b"Name,Content,Content Type,Shortcut Key\n"
    b"reset,Reset your password here,text/plain,rst\nvpn,Use the VPN,text/plain,vpn\n"
)
BAD = b"name,content\nok,fine\n,no name here\nempty-content,\n"


@pytest.fixture
def csvs(s3):
    files = {
        "qr/good.csv": GOOD,
        "qr/bad.csv": BAD,
        "qr/empty.csv": b"",
        "qr/noheader.csv": b"reset,Reset your password\n",
        "qr/latin1.csv": "name,content\ncaf\u00e9,cr\u00e8me\n".encode("latin-1"),
    }
    for key, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return files


def import_op(**kwargs):
    args = {
        "task_id": "import",
        "s3_key": f"s3://{BUCKET}/qr/good.csv",
        "knowledge_base_id": KB,
        "poll_interval": 0.1,
    }
    return QConnectImportQuickResponsesOperator(**{**args, **kwargs})


class TI:
    dag_id, run_id, task_id, map_index = "dag", "manual__1", "import", -1
    stats_tags: dict = {}


# --- operator --------------------------------------------------------------------------------------
def test_operator_uploads_the_bytes_once_and_imports(qconnect, csvs):
    job_id = import_op().execute({})
    uploads = qconnect.journal(event="upload_received")
    assert [u["sha256"] for u in uploads] == [hashlib.sha256(GOOD).hexdigest()]
    assert [j["id"] for j in qconnect.journal(event="job_created")] == [job_id]
    assert QConnectHook().get_import_job(KB, job_id)["status"] == "COMPLETE"


def test_failed_job_names_the_failing_rows(qconnect, csvs):
    with pytest.raises(IngestJobFailed) as info:
        import_op(s3_key=f"s3://{BUCKET}/qr/bad.csv").execute({})
    text = str(info.value)
    assert "2 record(s) failed" in text and "missing name" in text and "missing content" in text
    assert "X-Amz-Signature" not in text


def test_same_run_task_and_file_give_one_job(qconnect, csvs):
    op = import_op(wait_for_completion=False)
    op.validate()
    store = TaskStateStore()
    context = {"ti": TI(), "task_state_store": store}
    first = op.submit_job(context)
    second = import_op().submit_job(context)  # a retry: same token, stored upload id
    assert first == second
    assert store[UPLOAD_ID_KEY] and len(qconnect.journal(event="upload_received")) == 1
    assert len(qconnect.journal(event="job_created")) == 1


def botocore_attempts() -> int:
    return max_attempts(QConnectHook().conn)


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_retry_reattaches(airflow_db, qconnect, csvs, mode):
    # Fail the worker's first status read (boto3's, not the trigger's aiohttp) with 503 on every
    # one of botocore's attempts: try 1 fails after the job started, in the poll (poke) or in
    # execute_complete (deferred), whatever the job's progress; try 2 re-attaches to the job. The
    # faults are used up by try 1, so try 2's reads all succeed.
    qconnect.add_fault(
        action="status",
        status=503,
        retry_after="0",
        times=botocore_attempts(),
        method="GET",
        path=r"/importJobs/",
        agent="^Boto3/",
    )
    run, tis = run_dag(f"test_qconnect_{mode}")
    assert run.state == "success"
    assert tis["import"].try_number == 2
    assert len(qconnect.journal(event="job_created")) == 1
    assert len(qconnect.journal(event="upload_received")) == 1


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("qr/missing.csv", "does not exist"),
        ("qr/empty.csv", "is empty"),
        ("qr/noheader.csv", "header"),
        ("qr/latin1.csv", "not UTF-8"),
    ],
)
def test_bad_csv_fails_before_any_qconnect_call(qconnect, csvs, key, field):
    with pytest.raises(ValueError, match=field):
        import_op(s3_key=f"s3://{BUCKET}/{key}").execute({})
    assert qconnect.journal() == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"knowledge_base_id": "kb-1"}, "knowledge_base_id"),
        ({"metadata": {"a": 1}}, "metadata"),
        ({"external_source_configuration": {"source": "S3"}}, "external_source_configuration"),
    ],
)
def test_bad_arguments_fail_before_any_call(qconnect, csvs, kwargs, field):
    with pytest.raises(ValueError, match=field):
        import_op(**kwargs).execute({})
    assert qconnect.journal() == []


# --- waiter, sensor, trigger -------------------------------------------------------------------------
def test_waiter_json_loads_with_the_documented_acceptors():
    hook = QConnectHook()
    config = json.loads(hook.waiter_path.read_text())["waiters"]["import_job_complete"]
    states = {a["expected"]: a["state"] for a in config["acceptors"]}
    assert states["COMPLETE"] == "success" and states["FAILED"] == "failure"
    assert states["START_IN_PROGRESS"] == "retry"
    assert {a["argument"] for a in config["acceptors"]} == {"importJob.status"}
    assert config["operation"] == "GetImportJob"


def start(qconnect, body=GOOD, token="tok"):
    qc = qconnect_client(qconnect)
    upload = qc.start_content_upload(knowledgeBaseId=KB, contentType="text/csv")
    requests.put(upload["url"], data=body, headers=upload["headersToInclude"], timeout=5)
    return qc.start_import_job(
        knowledgeBaseId=KB, importJobType="QUICK_RESPONSES", uploadId=upload["uploadId"], clientToken=token
    )["importJob"]["importJobId"]


def test_sensor_pokes_to_complete_and_raises_on_failure(qconnect):
    qconnect.configure(clock="steps")
    job_id = start(qconnect)
    sensor = QConnectImportJobSensor(
        task_id="s", knowledge_base_id=KB, import_job_id=job_id, poll_interval=0.1
    )
    assert sensor.poke({}) is False
    qconnect.advance(job_id)
    assert sensor.poke({}) is True
    bad_id = start(qconnect, BAD, "t2")
    failing = QConnectImportJobSensor(task_id="s", knowledge_base_id=KB, import_job_id=bad_id)
    qconnect.advance(bad_id)
    with pytest.raises(IngestJobFailed, match="missing name"):
        failing.poke({})


def test_trigger_round_trip_and_success(qconnect):
    job_id = start(qconnect)
    trigger = QConnectImportJobTrigger(
        knowledge_base_id=KB, import_job_id=job_id, deadline=time.time() + 30, waiter_delay=0.1
    )
    path, kwargs = trigger.serialize()
    rebuilt = QConnectImportJobTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)
    event = run_trigger(rebuilt)
    assert event["status"] == "success" and event["import_job_id"] == job_id


def test_trigger_failed_and_deadline_events(qconnect):
    qconnect.configure(clock="steps")  # the second job must still run when its deadline passes
    bad_job = start(qconnect, BAD, "t-bad")
    qconnect.advance(bad_job)
    failed = QConnectImportJobTrigger(
        knowledge_base_id=KB,
        import_job_id=bad_job,
        deadline=time.time() + 30,
        waiter_delay=0.1,
    )
    event = run_trigger(failed)
    assert event["status"] == "error" and "FAILED" in event["message"], event
    running = QConnectImportJobTrigger(
        knowledge_base_id=KB,
        import_job_id=start(qconnect, GOOD, "t-late"),
        deadline=time.time(),
        waiter_delay=0.1,
    )
    event = run_trigger(running)
    assert event["status"] == "timeout" and event["import_job_id"] == running.import_job_id, event


@pytest.mark.parametrize(
    "token", [None, "FwoGZXIvYXdzEXAMPLE/session+token=="], ids=["no-session-token", "session-token"]
)
@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases/kb%201/importJobs/a-b_c~d",
            id="encoded-path",
        ),
        pytest.param("http://127.0.0.1:8123/knowledgeBases/kb/importJobs/job", id="http-port-8123"),
        pytest.param(
            "https://wisdom.eu-west-2.amazonaws.com:8443/knowledgeBases/kb/importJobs?maxResults=10&nextToken=a%2Fb%3D%3D",
            id="https-port-8443-encoded-query",
        ),
        pytest.param(
            "https://wisdom.eu-west-2.amazonaws.com:443/knowledgeBases", id="https-default-port-443"
        ),
        pytest.param(
            "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases?z=1&a=2&a=1&empty=&flag",
            id="query-unsorted-repeated-empty",
        ),
    ],
)
def test_sigv4_signature_matches_botocore(token, url):
    """The trigger's own SigV4 signer must produce exactly botocore's signature, on query strings,
    session tokens and non-default ports (issue 19: it stays only while it does)."""
    from datetime import UTC, datetime

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from airflow_provider_ingest.auth import AwsSigV4

    frozen = Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token
    ).get_frozen_credentials()
    reference = AWSRequest(method="GET", url=url)
    SigV4Auth(frozen, "wisdom", "eu-west-2").add_auth(reference)
    when = datetime.strptime(reference.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    ours = AwsSigV4(None, "wisdom", "eu-west-2").sign(frozen, "GET", url, when)
    assert ours["Authorization"] == reference.headers["Authorization"]
    assert ours.get("x-amz-security-token") == reference.headers.get("X-Amz-Security-Token")


# --- exactly once: cut replies, retries after a failed import, status errors, the knowledge base ------
CUSTOM_KB = "2c1d6e3f-4a5b-4c6d-9e7f-8091a2b3c4d5"  # the fake's CUSTOM knowledge base


def task_context():
    return {"ti": TI(), "task_state_store": TaskStateStore()}


def start_requests(qconnect):
    return [r for r in qconnect.journal() if r.get("method") == "POST" and r["path"].endswith("/importJobs")]


def test_a_start_reply_cut_mid_body_is_sent_again_with_the_same_token(qconnect, csvs):
    """Issue 16, item 3: botocore returns only ResponseMetadata for a cut body; the start is sent
    again at once, with the same clientToken, and the job the first call made is returned."""
    qconnect.configure(cut_start_replies=2)
    job_id = import_op().execute(task_context())
    starts = qconnect.journal(event="start_import_job")
    assert len(starts) == 3 and len({s["token"] for s in starts}) == 1
    assert {s["id"] for s in starts} == {job_id}
    assert [j["id"] for j in qconnect.journal(event="job_created")] == [job_id]


def test_replies_without_the_job_beyond_the_budget_fail_naming_the_token(qconnect, csvs):
    qconnect.configure(cut_start_replies=100)
    context = task_context()
    with pytest.raises(IngestApiError, match="no importJob, for clientToken [0-9a-f]{64}") as info:
        import_op().execute(context)
    token = qconnect.journal(event="start_import_job")[0]["token"]
    assert token in str(info.value) and len(start_requests(qconnect)) == START_REPLY_ATTEMPTS
    assert len(qconnect.journal(event="job_created")) == 1
    # Airflow's retry sends the same token and gets the job the cut replies named
    qconnect.configure(cut_start_replies=0)
    job_id = import_op().execute(context)
    assert [j["id"] for j in qconnect.journal(event="job_created")] == [job_id]
    assert {s["token"] for s in qconnect.journal(event="start_import_job")} == {token}


@pytest.mark.parametrize("fixed", [True, False], ids=["file-fixed", "file-unchanged"])
def test_a_retry_after_a_failed_import_uploads_again_under_a_new_token(qconnect, csvs, s3, fixed):
    """Issue 16, item 4: the token and upload of a FAILED import are not reused (the same token
    would return the failed job forever), whether or not the file changed."""
    s3.put_object(Bucket=BUCKET, Key="qr/fixed-later.csv", Body=BAD)
    context = task_context()
    with pytest.raises(IngestJobFailed, match="missing name"):
        import_op(s3_key=f"s3://{BUCKET}/qr/fixed-later.csv").execute(context)
    first_job = qconnect.journal(event="job_created")[0]["id"]
    if fixed:
        s3.put_object(Bucket=BUCKET, Key="qr/fixed-later.csv", Body=GOOD)  # the user fixes the CSV
        job_id = import_op(s3_key=f"s3://{BUCKET}/qr/fixed-later.csv").execute(context)
        assert qconnect.jobs[job_id]["status"] == "COMPLETE"
    else:
        with pytest.raises(IngestJobFailed, match="missing name") as info:
            import_op(s3_key=f"s3://{BUCKET}/qr/fixed-later.csv").execute(context)
        assert first_job not in str(info.value)  # a new job failed, not the first one again
    uploads = qconnect.journal(event="upload_received")
    sent = (BAD, GOOD if fixed else BAD)
    assert [u["sha256"] for u in uploads] == [hashlib.sha256(b).hexdigest() for b in sent]
    jobs = [j["id"] for j in qconnect.journal(event="job_created")]
    assert len(jobs) == 2 and qconnect.jobs[jobs[1]]["uploadId"] == uploads[1]["upload_id"]
    assert context["task_state_store"][UPLOAD_ID_KEY]["upload_id"] == uploads[1]["upload_id"]
    assert len({s["token"] for s in qconnect.journal(event="start_import_job")}) == 2


def test_a_changed_object_is_uploaded_again_before_its_first_job(qconnect, csvs, s3):
    """The upload of a try whose start failed is reused only while the S3 object (its ETag) is
    unchanged."""
    s3.put_object(Bucket=BUCKET, Key="qr/changing.csv", Body=GOOD)
    qconnect.add_fault(
        action="status",
        status=503,
        retry_after="0",
        times=botocore_attempts(),
        method="POST",
        path=r"/importJobs$",
    )
    context = task_context()
    with pytest.raises(IngestApiError, match="503"):
        import_op(s3_key=f"s3://{BUCKET}/qr/changing.csv").execute(context)
    assert qconnect.journal(event="job_created") == []
    changed = GOOD + b"new,A new quick response\n"
    s3.put_object(Bucket=BUCKET, Key="qr/changing.csv", Body=changed)
    job_id = import_op(s3_key=f"s3://{BUCKET}/qr/changing.csv").execute(context)
    uploads = qconnect.journal(event="upload_received")
    assert [u["sha256"] for u in uploads] == [hashlib.sha256(b).hexdigest() for b in (GOOD, changed)]
    assert qconnect.jobs[job_id]["uploadId"] == uploads[1]["upload_id"]


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        ({"status": 403}, IngestApiRejected, "HTTP 403.*injected fault"),
        ({"status": 503, "retry_after": "0", "times": 100}, IngestApiError, "HTTP 503"),
    ],
    ids=["403-final", "503-past-botocore-attempts"],
)
def test_a_status_error_in_the_poke_wait_is_not_swallowed(qconnect, csvs, fault, error, text):
    """Issue 16, item 11: a status read that fails (past botocore's own retries) fails the task
    with the vendor's message, at once; it is not read as "did not finish in time"."""
    qconnect.configure(clock="steps")  # the job is still running when the read fails
    qconnect.add_fault(action="status", method="GET", path=r"/importJobs/", **fault)
    with pytest.raises(error, match=text) as info:
        import_op(timeout=60).execute(task_context())
    assert "did not finish" not in str(info.value)


def test_transient_status_errors_are_retried_in_the_poke_wait(qconnect, csvs):
    qconnect.add_fault(action="status", status=503, retry_after="0", method="GET", path=r"/importJobs/")
    qconnect.add_fault(action="status", status=429, retry_after="0", method="GET", path=r"/importJobs/")
    assert import_op().execute(task_context()) in qconnect.jobs


def test_a_knowledge_base_of_another_type_fails_before_any_upload(qconnect, csvs):
    """Issue 16, item 13."""
    with pytest.raises(IngestInputError, match=f"knowledge_base_id: {CUSTOM_KB} is a CUSTOM knowledge base"):
        import_op(knowledge_base_id=CUSTOM_KB).execute(task_context())
    assert [r["path"] for r in qconnect.journal() if "path" in r] == [f"/knowledgeBases/{CUSTOM_KB}"]


def test_an_arn_is_resolved_to_its_id_and_never_put_in_a_url(qconnect, csvs):
    arn = f"arn:aws:wisdom:us-east-1:123456789012:knowledge-base/{KB}"
    job_id = import_op(knowledge_base_id=arn).execute(task_context())
    assert qconnect.jobs[job_id]["knowledgeBaseArn"] == arn
    paths = [r["path"] for r in qconnect.journal() if "path" in r]
    assert paths and not [p for p in paths if "arn" in p]
    elsewhere = f"arn:aws:wisdom:eu-west-1:210987654321:knowledge-base/{KB}"
    with pytest.raises(IngestInputError, match="not the knowledge base the connection reaches"):
        import_op(knowledge_base_id=elsewhere).execute(task_context())
    not_a_kb = f"arn:aws:wisdom:us-east-1:123456789012:quick-response/{KB}/{CUSTOM_KB}"
    with pytest.raises(IngestInputError, match="the ARN of a quick-response"):
        import_op(knowledge_base_id=not_a_kb).execute(task_context())


def test_an_unknown_knowledge_base_fails_without_retry(qconnect, csvs):
    with pytest.raises(IngestInputError, match="no knowledge base 00000000"):
        import_op(knowledge_base_id="00000000-0000-4000-8000-000000000000").execute(task_context())
    assert qconnect.journal(event="upload_received") == []
