"""Nothing secret leaks, even from a vendor that echoes the request in its errors (the fakes'
``echo`` fault): not client secrets (raw or URL-encoded), not bearer tokens, not presigned URLs'
signatures and security tokens; and an id can only ever address its own resource."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from urllib.parse import parse_qs, quote, quote_plus

import pytest
from conftest import BUCKET, run_dag

from airflow_provider_ingest.exceptions import IngestApiError, IngestJobFailed
from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook
from airflow_provider_ingest.hooks.egain import EgainHook
from airflow_provider_ingest.hooks.polaris import PolarisHook
from airflow_provider_ingest.hooks.zeta_alpha import STATUS_CHUNK, ZetaAlphaHook, s3_document_id
from airflow_provider_ingest.http import close_shared_sessions, mask, redact
from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.operators.polaris import (
    PolarisEnsureS3ConnectionOperator,
    PolarisStartIngestionJobOperator,
)
from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator
from airflow_provider_ingest.schema_inference import default_mappings
from airflow_provider_ingest.sensors.adobe_aep import AdobeAepBatchSensor
from airflow_provider_ingest.sensors.egain import EgainImportJobSensor
from airflow_provider_ingest.sensors.polaris import PolarisJobSensor
from airflow_provider_ingest.sensors.zeta_alpha import ZetaAlphaDocumentsSensor
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID

# Presigned-URL query values that must never be readable: anything but *** after these names.
UNMASKED_SIGNATURE = re.compile(
    r"(?i)(x-amz-signature|x-amz-security-token|x-amz-credential|[?&]signature)(=|%3D)(?!\*\*\*)"
)


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret)}


def assert_none_in(text: str, secrets: set[str]) -> None:
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"leaked {leaked}"


def echoes(fake) -> list[dict]:
    return [r for r in fake.journal() if r.get("fault") == "echo"]


# --- the core ------------------------------------------------------------------------------------
def test_a_registered_secret_is_masked_in_its_url_encoded_forms_too():
    secret = "leak-test/secret+value =x"
    assert len(forms(secret)) == 3  # the three forms differ
    mask(secret)
    text = redact(f"echo: {secret} | {quote(secret, safe='')} | {quote_plus(secret)}")
    assert_none_in(text, forms(secret))
    assert text.count("***") == 3


SIGV4 = (
    "https://b.s3.amazonaws.com/k.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z"
    "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjE%2Bsecret%3D"
    "&X-Amz-Signature=0123456789abcdef0123456789abcdef"
)
SIGV2 = "https://b.s3.amazonaws.com/k.pdf?AWSAccessKeyId=AKIAEXAMPLE&Signature=abc%2Bdef%3D&Expires=1&x-amz-security-token=FQoGZXIvYXdz"


@pytest.mark.parametrize(
    "text",
    [
        SIGV4,
        SIGV2,
        quote(SIGV4, safe=""),  # a URL sent as a form or query value
        quote(quote(SIGV4, safe=""), safe=""),
        json.dumps({"url": SIGV4}).replace("&", "\\u0026"),  # a JSON encoder that escapes '&'
        f"error near '{SIGV2}', please retry",
    ],
    ids=["sigv4", "sigv2", "encoded", "double-encoded", "json-escaped", "quoted-in-prose"],
)
def test_presigned_signatures_and_tokens_are_masked_in_any_form(text):
    masked = redact(text)
    for value in ("0123456789abcdef0123456789abcdef", "IQoJb3JpZ2luX2VjE", "abc%2Bdef", "FQoGZXIvYXdz"):
        assert value not in masked
    assert not UNMASKED_SIGNATURE.search(masked)
    assert "b.s3.amazonaws.com" in masked  # the object is still named


# --- fakes that echo the request -------------------------------------------------------------------
def test_egain_token_endpoint_echo_leaks_no_client_secret(egain, caplog):
    egain.add_fault(action="echo", method="POST", path="/oauth2/token", status=400)
    caplog.set_level(logging.INFO)  # (botocore DEBUG prints signing input; a task log masks it)
    ok, message = EgainHook().test_connection()
    assert not ok and "cannot process POST /oauth2/token" in message and len(echoes(egain)) == 1
    assert_none_in(message + caplog.text, forms(egain.client_secret))


def test_egain_api_echo_leaks_no_bearer_token(egain, caplog):
    hook = EgainHook()
    hook.client.auth.headers(hook.client)  # a token first
    egain.add_fault(action="echo", method="GET", path="/status$", status=400)
    caplog.set_level(logging.INFO)  # (botocore DEBUG prints signing input; a task log masks it)
    with pytest.raises(IngestApiError, match=r"HTTP 400 \[Echo\].*Bearer \*\*\*"):
        hook.get_status("J1")
    assert egain.tokens and len(echoes(egain)) == 1
    text = str(caplog.text)
    for token in egain.tokens:
        assert_none_in(text, forms(token))


def test_aep_echoes_leak_neither_secret_nor_token(adobe, caplog):
    caplog.set_level(logging.INFO)  # (botocore DEBUG prints signing input; a task log masks it)
    adobe.add_fault(action="echo", method="POST", path="/ims/token", status=400)
    with pytest.raises(IngestApiError) as token_error:
        AdobeAepHook().get_dataset(DATASET_ID)
    hook = AdobeAepHook()
    assert hook.get_dataset(DATASET_ID)["name"] == "events"  # a token now
    adobe.add_fault(action="echo", method="GET", path="/dataSets/", status=400)
    with pytest.raises(IngestApiError) as api_error:
        hook.get_dataset(DATASET_ID)
    assert len(echoes(adobe)) == 2 and "x-api-key" in str(api_error.value)
    text = str(token_error.value) + str(api_error.value) + caplog.text
    assert_none_in(text, forms(adobe.client_secret) | {t for token in adobe.tokens for t in forms(token)})


def test_aep_trigger_echo_leaks_no_token(adobe):
    hook = AdobeAepHook()
    batch_id = hook.create_batch(DATASET_ID)
    adobe.add_fault(action="echo", method="GET", path="/batches/", status=400)

    async def poll():
        try:
            return await hook.ajob_snapshot(batch_id)
        finally:
            await close_shared_sessions()

    with pytest.raises(IngestApiError, match=r"Bearer \*\*\*") as info:
        asyncio.run(poll())
    assert_none_in(str(info.value), {t for token in adobe.tokens for t in forms(token)})


@pytest.mark.parametrize(
    ("mode", "fault"),
    [
        ("poke", {"method": "POST", "path": "/oauth2/token"}),
        ("deferred", {"method": "GET", "path": "/status$"}),
    ],
    ids=["token-endpoint-echo", "status-echo-in-trigger"],
)
def test_echoing_egain_leaks_nothing_into_task_logs_or_xcom(airflow_db, egain, s3, mode, fault, capfd):
    for name, body in [("a.html", b"<p>reset your password</p>"), ("b.md", b"# VPN")]:
        s3.put_object(Bucket=BUCKET, Key=f"kb/{name}", Body=body)
    egain.add_fault(action="echo", status=400, **fault)
    run, tis = run_dag(f"test_egain_{mode}")
    if mode == "poke":  # a 400 from the token endpoint is final: the task fails without a retry
        assert run.state == "failed" and tis["import"].try_number == 1
    else:  # the trigger's error event fails try 1; the retry re-attaches and succeeds
        assert run.state == "success" and tis["import"].try_number == 2
    assert len(echoes(egain)) == 1
    captured = capfd.readouterr()
    output = captured.out + captured.err + json.dumps(tis["import"].xcom_pull(task_ids="import"))
    assert "cannot process" in output  # the echo reached the log, masked
    secrets = forms(egain.client_secret) | {t for token in egain.tokens for t in forms(token)}
    assert_none_in(output, secrets)


@pytest.fixture
def role_credentials(moto_s3, monkeypatch):
    """An AWS connection with a session token, as an assumed role has: presigned URLs carry it."""
    conn = {
        "conn_type": "aws",
        "login": "ASIAROLETEST00000001",
        "password": "roleSecret/Key+0123456789abcdef",
        "extra": {
            "endpoint_url": moto_s3,
            "region_name": "us-east-1",
            "aws_session_token": "FwoGZXIvYXdzEROLESESSIONTOKEN0123456789",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_ROLE", json.dumps(conn))
    return conn


@pytest.mark.parametrize("echo", ["whole-request", "per-document"])
def test_zeta_url_mode_echo_leaks_no_presigned_signature_or_token(zeta, s3, role_credentials, caplog, echo):
    for name in ("a.pdf", "b.pdf"):
        s3.put_object(Bucket=BUCKET, Key=f"za-echo/{name}", Body=b"%PDF-1.4")
    if echo == "whole-request":  # the batch request fails with the request in its error
        zeta.add_fault(action="echo", method="POST", path="document-batches", status=400)
    else:  # the batch succeeds; one document is rejected with itself quoted
        zeta.reject(s3_document_id(BUCKET, "za-echo/a.pdf"), "cannot process {document}")
    caplog.set_level(logging.INFO)  # (botocore DEBUG prints signing input; a task log masks it)
    op = S3ToZetaAlphaOperator(
        task_id="za", s3_prefix=f"s3://{BUCKET}/za-echo/", content_mode="url", aws_conn_id="aws_role"
    )
    with pytest.raises(IngestJobFailed, match="cannot process") as info:
        op.execute({})
    text = str(info.value) + caplog.text
    assert "za-echo/a.pdf?" in text  # the echoed URL, masked
    assert "***" in text and not UNMASKED_SIGNATURE.search(text)
    assert "FwoGZXIvYXdzEROLESESSIONTOKEN" not in text


# --- ids in URL paths ------------------------------------------------------------------------------
TRAVERSAL = "../connections/x"


@pytest.mark.parametrize(
    ("make_sensor", "field"),
    [
        (lambda: PolarisJobSensor(task_id="s", job_id=TRAVERSAL, poll_interval=0.01), "job_id"),
        (lambda: PolarisJobSensor(task_id="s", job_id="..", deferrable=True), "job_id"),
        (lambda: EgainImportJobSensor(task_id="s", job_id=TRAVERSAL, poll_interval=0.01), "job_id"),
        (lambda: AdobeAepBatchSensor(task_id="s", batch_id="a\nb", poll_interval=0.01), "batch_id"),
        (lambda: ZetaAlphaDocumentsSensor(task_id="s", document_ids=["a" * 40, "x/y"]), "document_ids"),
    ],
    ids=["polaris-poke", "polaris-deferred", "egain", "aep-control-char", "zeta"],
)
def test_sensors_refuse_path_ids_before_any_call(polaris, egain, adobe, zeta, make_sensor, field):
    refused = rf"^{field}(\[\])?: .*(cannot be a URL path segment|cannot read a job id)"
    with pytest.raises(ValueError, match=refused):
        make_sensor().execute({})
    assert polaris.journal() == egain.journal() == adobe.journal() == zeta.journal() == []


def test_operators_refuse_path_ids_before_any_call(polaris, adobe):
    with pytest.raises(ValueError, match="^dataset_id: "):
        S3ToAdobeAepOperator(task_id="a", dataset_id=TRAVERSAL, s3_prefix=f"s3://{BUCKET}/x/").execute({})
    with pytest.raises(ValueError, match="^file_name_template: "):
        S3ToAdobeAepOperator(
            task_id="a", dataset_id=DATASET_ID, s3_prefix=f"s3://{BUCKET}/x/", file_name_template="../{stem}"
        ).execute({})
    with pytest.raises(ValueError, match="^name: "):
        PolarisEnsureS3ConnectionOperator(
            task_id="e", name="a/b", bucket=BUCKET, aws_assumed_role_arn="arn:aws:iam::123456789012:role/p"
        ).execute({})
    assert polaris.journal() == adobe.journal() == []


def test_an_id_with_url_syntax_names_one_resource(polaris, egain):
    with pytest.raises(IngestApiError, match="HTTP 404"):
        PolarisHook().get_job("a?b#c%2F")
    [request] = polaris.journal()
    assert request["path"].endswith("/jobs/a?b#c%2F") and request["query"] == ""
    with pytest.raises(IngestApiError, match="HTTP 404"):
        EgainHook().get_status("j?x=1")
    assert egain.journal()[-1]["path"].endswith("/import/content/j?x=1/status")


# --- Polaris mapping expressions -------------------------------------------------------------------
def test_a_column_name_with_a_double_quote_stays_one_identifier(polaris, s3):
    s3.put_object(
        Bucket=BUCKET,
        Key="polaris-quote/a.csv",
        Body=b'timestamp,"we""ird",n\n2026-03-01T00:00:00Z,Oslo,3\n2026-03-01T00:00:01Z,Rome,4\n',
    )
    mappings = default_mappings(
        [{"name": "timestamp", "dataType": "string"}, {"name": 'we"ird', "dataType": "string"}], "timestamp"
    )
    assert mappings[1] == {"columnName": 'we"ird', "expression": '"we""ird"'}
    PolarisEnsureS3ConnectionOperator(
        task_id="e", name="test-conn", bucket=BUCKET, aws_assumed_role_arn="arn:aws:iam::123456789012:role/p"
    ).execute({})
    op = PolarisStartIngestionJobOperator(
        task_id="ingest",
        table_name="quotes",
        connection_name="test-conn",
        prefixes=["polaris-quote/"],
        format_settings={"format": "csv"},
        poll_interval=0.05,
    )
    job_id = op.execute({})
    assert PolarisHook().get_job_metrics(job_id)["numRowsPersisted"] == 2
    job = PolarisHook().get_job(job_id)  # the job as Polaris read it (a list shows only summaries)
    assert {"columnName": 'we"ird', "expression": '"we""ird"'} in job["mappings"]


# --- Zeta Alpha: limits and chunks ---------------------------------------------------------------
def test_an_object_one_byte_over_the_batch_limit_fails_the_task_by_name(zeta, s3):
    # estimated request bytes: 1024 of envelope + 4/3 of the content (base64)
    s3.put_object(Bucket=BUCKET, Key="za-limit/at.bin", Body=b"\x00" * 300)  # 1024 + 400 = 1424
    s3.put_object(Bucket=BUCKET, Key="za-limit/over.bin", Body=b"\x00" * 301)  # 1024 + 401 = 1425
    op = S3ToZetaAlphaOperator(
        task_id="za", s3_prefix=f"s3://{BUCKET}/za-limit/", batch_max_bytes=1424, poll_interval=0.05
    )
    over = s3_document_id(BUCKET, "za-limit/over.bin")
    with pytest.raises(
        IngestJobFailed, match=rf"rejected 1 of 2 documents: {over}: .*exceeds batch_max_bytes"
    ):
        op.execute({})
    assert [e["documents"] for e in zeta.journal(event="document_batch")] == [1]  # the one at the limit
    assert ("acme", "default", s3_document_id(BUCKET, "za-limit/at.bin")) in zeta.documents


def status_calls(zeta) -> list[int]:
    """How many document ids each status request asked for, in order."""
    return [
        len(parse_qs(r["query"]).get("document_id_in", []))
        for r in zeta.journal()
        if r.get("method") == "GET" and r["path"].endswith("/documents") and "document_id_in" in r["query"]
    ]


@pytest.mark.parametrize("side", ["sync", "async"])
def test_document_statuses_are_read_in_chunks(zeta, side):
    ids = [s3_document_id(BUCKET, f"za-none/{n}") for n in range(STATUS_CHUNK + 50)]
    hook = ZetaAlphaHook()
    if side == "sync":
        snapshot = hook.job_snapshot(ids)
    else:

        async def poll():
            try:
                return await hook.ajob_snapshot(ids)
            finally:
                await close_shared_sessions()

        snapshot = asyncio.run(poll())
    assert snapshot.details["statuses"] == {"not_found": 150}
    assert status_calls(zeta) == [STATUS_CHUNK, 50]


# --- a deferred sensor does not own the job ----------------------------------------------------------
def test_killing_a_deferred_sensor_leaves_the_job_running(polaris, s3):
    from airflow.sdk.exceptions import TaskDeferred

    s3.put_object(
        Bucket=BUCKET, Key="polaris-kill/a.csv", Body=b"timestamp,city\n2026-03-01T00:00:00Z,Oslo\n"
    )
    PolarisEnsureS3ConnectionOperator(
        task_id="e", name="test-conn", bucket=BUCKET, aws_assumed_role_arn="arn:aws:iam::123456789012:role/p"
    ).execute({})
    job_id = PolarisStartIngestionJobOperator(
        task_id="ingest",
        table_name="kill",
        connection_name="test-conn",
        prefixes=["polaris-kill/"],
        format_settings={"format": "csv"},
        wait_for_completion=False,
    ).execute({})
    sensor = PolarisJobSensor(task_id="wait", job_id=job_id, deferrable=True, poll_interval=0.05, timeout=30)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger

    async def kill_then_wait():
        waiting = asyncio.create_task(anext(trigger.run()))
        await trigger.on_kill()  # the user killed the sensor's task
        event = await waiting
        await close_shared_sessions()
        return event.payload

    event = asyncio.run(kill_then_wait())
    assert [r for r in polaris.journal() if r.get("method") == "PUT"] == []  # no cancel sent
    assert event["status"] == "success" and event["job"]["status"] == "completed"
    assert sensor.execute_complete({}, event)["executionStatus"] == "completed"
