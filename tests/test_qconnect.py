"""Q in Connect: boto3 against the fake's routes, the operator end to end, retries, waiter, trigger."""

from __future__ import annotations

import hashlib
import json
import time

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from conftest import BUCKET, run_dag, run_trigger

from airflow_provider_ingest.exceptions import IngestJobFailed
from airflow_provider_ingest.hooks.qconnect import QConnectHook
from airflow_provider_ingest.operators.qconnect import UPLOAD_ID_KEY, QConnectImportQuickResponsesOperator
from airflow_provider_ingest.sensors.qconnect import QConnectImportJobSensor
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


def client(qconnect):
    return boto3.client(
        "qconnect",
        endpoint_url=qconnect.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def import_op(**kwargs):
    args = {
        "task_id": "import",
        "s3_key": f"s3://{BUCKET}/qr/good.csv",
        "knowledge_base_id": KB,
        "poll_interval": 0.1,
    }
    return QConnectImportQuickResponsesOperator(**{**args, **kwargs})


class TaskStateStore(dict):
    """The get/set surface of Airflow's task_state_store, for calling operator steps directly."""

    def set(self, key, value):
        self[key] = value


class TI:
    dag_id, run_id, task_id, map_index = "dag", "manual__1", "import", -1


# --- the fake, driven by a real boto3 client ------------------------------------------------------
def test_boto3_routes_and_documented_exceptions(qconnect):
    qc = client(qconnect)
    upload = qc.start_content_upload(knowledgeBaseId=KB, contentType="text/csv", presignedUrlTimeToLive=5)
    assert set(upload) >= {"uploadId", "url", "urlExpiry", "headersToInclude"}
    assert requests.put(upload["url"], data=GOOD, timeout=5).status_code == 403  # headers are signed
    put = requests.put(upload["url"], data=GOOD, headers=upload["headersToInclude"], timeout=5)
    assert put.status_code == 200
    job = qc.start_import_job(
        knowledgeBaseId=KB, importJobType="QUICK_RESPONSES", uploadId=upload["uploadId"], clientToken="t1"
    )["importJob"]
    assert job["status"] == "START_IN_PROGRESS"
    again = qc.start_import_job(
        knowledgeBaseId=KB, importJobType="QUICK_RESPONSES", uploadId=upload["uploadId"], clientToken="t1"
    )["importJob"]
    assert again["importJobId"] == job["importJobId"]
    errors = {
        "ConflictException": lambda: qc.start_import_job(
            knowledgeBaseId=KB,
            importJobType="QUICK_RESPONSES",
            uploadId=upload["uploadId"],
            clientToken="t1",
            metadata={"a": "b"},
        ),
        "ResourceNotFoundException": lambda: qc.get_import_job(
            knowledgeBaseId="00000000-0000-4000-8000-000000000000", importJobId=job["importJobId"]
        ),
        "ValidationException": lambda: qc.start_import_job(
            knowledgeBaseId=KB, importJobType="QUICK_RESPONSES", uploadId="never-uploaded"
        ),
    }
    for code, call in errors.items():
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] == code
    time.sleep(0.35)
    assert (
        qc.get_import_job(knowledgeBaseId=KB, importJobId=job["importJobId"])["importJob"]["status"]
        == "COMPLETE"
    )
    assert (
        requests.get(
            f"{qconnect.url}/knowledgeBases/{KB}/importJobs/{job['importJobId']}", timeout=5
        ).status_code
        == 403
    )


def test_presigned_url_expires(qconnect):
    upload = client(qconnect).start_content_upload(knowledgeBaseId=KB, contentType="text/csv")
    qconnect.uploads[upload["uploadId"]]["expiry"] = time.time() - 1
    response = requests.put(upload["url"], data=GOOD, headers=upload["headersToInclude"], timeout=5)
    assert response.status_code == 403 and "expired" in response.text


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


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_retry_reattaches(airflow_db, qconnect, csvs, mode):
    # Fail the worker's first status read (boto3's, not the trigger's aiobotocore): try 1 fails
    # after the job started, in the poll (poke) or in execute_complete (deferred).
    qconnect.add_fault(action="status", status=400, method="GET", path=r"/importJobs/", agent="^Boto3/")
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
    qc = client(qconnect)
    upload = qc.start_content_upload(knowledgeBaseId=KB, contentType="text/csv")
    requests.put(upload["url"], data=body, headers=upload["headersToInclude"], timeout=5)
    return qc.start_import_job(
        knowledgeBaseId=KB, importJobType="QUICK_RESPONSES", uploadId=upload["uploadId"], clientToken=token
    )["importJob"]["importJobId"]


def test_sensor_pokes_to_complete_and_raises_on_failure(qconnect):
    sensor = QConnectImportJobSensor(
        task_id="s", knowledge_base_id=KB, import_job_id=start(qconnect), poll_interval=0.1
    )
    while not sensor.poke({}):
        time.sleep(0.1)
    failing = QConnectImportJobSensor(
        task_id="s", knowledge_base_id=KB, import_job_id=start(qconnect, BAD, "t2")
    )
    time.sleep(0.35)
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
    failed = QConnectImportJobTrigger(
        knowledge_base_id=KB,
        import_job_id=start(qconnect, BAD, "t-bad"),
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


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLE/session+token=="])
@pytest.mark.parametrize(
    "url",
    [
        "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases/kb%201/importJobs/a-b_c~d",
        "http://127.0.0.1:8123/knowledgeBases/kb/importJobs/job",
        "https://wisdom.eu-west-2.amazonaws.com:8443/knowledgeBases/kb/importJobs?maxResults=10&nextToken=a%2Fb%3D%3D",
        "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases?z=1&a=2&a=1&empty=&flag",
    ],
)
def test_sigv4_signature_matches_botocore(token, url):
    """The trigger's own SigV4 signer must produce exactly botocore's signature."""
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
