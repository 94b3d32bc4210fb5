"""Bad input fails before any remote call, with a ValueError naming the field.

One table per operator that starts remote work. Each case changes one argument of a valid
baseline and runs ``op.execute({})`` against the running fakes; it must raise from the operator's
own checks (``validate`` / ``spec`` / ``updates``), leave the fake's journal empty (no token
request either) and send no AWS request at all (S3 or Q in Connect): every botocore send in this
process is recorded while the operator runs.
"""

from __future__ import annotations

import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.endpoint
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ingest.exceptions import IngestInputError
from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.operators.egain import EgainStartImportOperator
from airflow_provider_ingest.operators.polaris import (
    PolarisEnsureS3ConnectionOperator,
    PolarisStartIngestionJobOperator,
)
from airflow_provider_ingest.operators.qconnect import QConnectImportQuickResponsesOperator
from airflow_provider_ingest.operators.zeta_alpha import (
    S3ToZetaAlphaOperator,
    ZetaAlphaUpdateAccessRightsOperator,
)
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID

BUCKET = "reliability-bad-input"
KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"  # the Q in Connect fake's knowledge base
ROLE = "arn:aws:iam::123456789012:role/polaris"
DOC_ID = "0" * 39 + "a"  # a sha1 hex document id
CHECKS = {"validate", "spec", "updates"}  # where each operator checks its arguments
NO_SCHEMES = ("uris", "prefixes", "objects", "pattern")


@pytest.fixture
def aws_calls(monkeypatch) -> list[str]:
    """Every request botocore sends from this process (any client, any service), recorded and
    passed through unchanged."""
    sent: list[str] = []
    original = botocore.endpoint.Endpoint._send

    def recording(self, request):
        sent.append(f"{request.method} {request.url}")
        return original(self, request)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", recording)
    return sent


@pytest.fixture(scope="module")
def inputs(s3) -> str:
    """Objects the baselines read (eGain's folder, Q in Connect's CSV)."""
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="kb/a.html", Body=b"<p>reset your password</p>")
    s3.put_object(Bucket=BUCKET, Key="qr/good.csv", Body=b"name,content\nreset,Reset it here\n")
    return BUCKET


def refused_before_any_call(make, kwargs: dict[str, Any], fields: tuple[str, ...], fake, aws_calls) -> None:
    fake.reset()
    op = make(**kwargs)
    aws_calls.clear()
    with pytest.raises(IngestInputError) as info:  # a ValueError that Airflow does not retry
        op.execute({})
    assert isinstance(info.value, AirflowFailException) and isinstance(info.value, ValueError)
    message = str(info.value)
    missing = [field for field in fields if field not in message]
    assert not missing, f"the error does not name {missing}: {message}"
    check = info.value.__cause__ or info.value  # the check's own ValueError, wrapped once
    raised_in = {frame.name for frame in traceback.extract_tb(check.__traceback__)}
    assert raised_in & CHECKS, f"raised outside the argument checks: {sorted(raised_in)}"
    assert fake.journal() == [], "the fake was called"
    assert aws_calls == [], "an AWS request was sent"


def _in(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Imply Polaris: start ingestion job -------------------------------------------------------------
def polaris_job(**kwargs):
    args = {
        "task_id": "ingest",
        "table_name": "events",
        "connection_name": "events-s3",
        "prefixes": ["events/"],
        "input_schema": [{"name": "timestamp", "dataType": "string"}, {"name": "city", "dataType": "string"}],
    }
    return PolarisStartIngestionJobOperator(**{**args, **kwargs})


NO_PREFIX = {"prefixes": None}
POLARIS_JOB_CASES = [
    pytest.param({"table_name": None}, ("table_name",), id="table_name-missing"),
    pytest.param({"table_name": ""}, ("table_name",), id="table_name-empty"),
    pytest.param({"table_name": 42}, ("table_name",), id="table_name-int"),
    pytest.param({"connection_name": None}, ("connection_name",), id="connection_name-missing"),
    pytest.param({"connection_name": ""}, ("connection_name",), id="connection_name-empty"),
    pytest.param({"connection_name": ["events-s3"]}, ("connection_name",), id="connection_name-list"),
    pytest.param(NO_PREFIX, NO_SCHEMES, id="source-missing"),
    pytest.param({"prefixes": []}, NO_SCHEMES, id="prefixes-empty-list"),
    pytest.param({"uris": [f"s3://{BUCKET}/a.json"]}, ("uris", "prefixes"), id="uris-and-prefixes"),
    pytest.param(
        {**NO_PREFIX, "objects": ["a.json"], "pattern": "*.json"}, NO_SCHEMES, id="objects-and-pattern"
    ),
    pytest.param({"prefixes": "events/"}, ("prefixes",), id="prefixes-str-not-list"),
    pytest.param({"prefixes": [7]}, ("prefixes",), id="prefixes-item-int"),
    pytest.param({"prefixes": [f"s3://{BUCKET}/events/"]}, ("prefixes",), id="prefixes-item-uri"),
    pytest.param({**NO_PREFIX, "objects": [""]}, ("objects",), id="objects-item-empty"),
    pytest.param({**NO_PREFIX, "objects": [f"s3://{BUCKET}/a.json"]}, ("objects",), id="objects-item-uri"),
    pytest.param({**NO_PREFIX, "pattern": ["*.json"]}, ("pattern",), id="pattern-list"),
    pytest.param({**NO_PREFIX, "uris": [f"{BUCKET}/a.json"]}, ("uris",), id="uri-no-scheme"),
    pytest.param({**NO_PREFIX, "uris": [f"http://{BUCKET}/a.json"]}, ("uris",), id="uri-http"),
    pytest.param({**NO_PREFIX, "uris": ["s3:///a.json"]}, ("uris",), id="uri-no-bucket"),
    pytest.param({**NO_PREFIX, "uris": ["s3://Bad_Bucket/a.json"]}, ("uris",), id="uri-bucket-uppercase"),
    pytest.param({**NO_PREFIX, "uris": ["s3://ab/a.json"]}, ("uris",), id="uri-bucket-too-short"),
    pytest.param({**NO_PREFIX, "uris": ["s3://my..bucket/a.json"]}, ("uris",), id="uri-bucket-double-dot"),
    pytest.param({**NO_PREFIX, "uris": ["s3://192.168.1.1/a.json"]}, ("uris",), id="uri-bucket-ip"),
    pytest.param({**NO_PREFIX, "uris": ["s3://xn--bucket/a.json"]}, ("uris",), id="uri-bucket-reserved"),
    pytest.param({**NO_PREFIX, "uris": [f"s3://{BUCKET}"]}, ("uris",), id="uri-no-key"),
    pytest.param({**NO_PREFIX, "uris": [f"s3://{BUCKET}/events/"]}, ("uris",), id="uri-folder"),
    pytest.param({"format_settings": {"format": "xlsx"}}, ("format_settings.format",), id="format-unknown"),
    pytest.param({"format_settings": {"type": "csv"}}, ("format_settings.format",), id="format-missing"),
    pytest.param({"format_settings": "csv"}, ("format_settings",), id="format_settings-str"),
    pytest.param({"format_settings": {"format": "tsv"}}, ("format_settings.format",), id="format-tsv"),
    pytest.param(
        {"format_settings": {"format": "orc"}, "input_schema": None}, ("input_schema",), id="orc-no-schema"
    ),
    pytest.param({"ingestion_mode": "upsert"}, ("ingestion_mode",), id="ingestion_mode-unknown"),
    pytest.param({"create_table_if_not_exists": "yes"}, ("create_table_if_not_exists",), id="create-str"),
    pytest.param({"input_schema": {"name": "timestamp"}}, ("input_schema",), id="schema-dict"),
    pytest.param(
        {"input_schema": [{"name": "", "dataType": "string"}]},
        ("input_schema[].name",),
        id="schema-name-empty",
    ),
    pytest.param(
        {"input_schema": [{"name": 5, "dataType": "string"}]}, ("input_schema[].name",), id="schema-name-int"
    ),
    pytest.param(
        {"input_schema": [{"name": "timestamp", "dataType": "timestamp"}]},
        ("input_schema[].dataType",),
        id="schema-dataType-unknown",
    ),
    pytest.param({"mappings": "city"}, ("mappings",), id="mappings-str"),
    pytest.param(
        {"mappings": [{"columnName": "__time"}]}, ("mappings[].expression",), id="mapping-expression-missing"
    ),
    pytest.param(
        {"mappings": [{"columnName": "city", "expression": '"city"'}]},
        ("mappings", "__time"),
        id="no-time-mapping",
    ),
    pytest.param({"time_column": ""}, ("time_column",), id="time_column-empty"),
    pytest.param({"time_column": "ts"}, ("time_column",), id="time_column-not-in-schema"),
]


@pytest.mark.parametrize(("kwargs", "fields"), POLARIS_JOB_CASES)
def test_polaris_ingestion_job(polaris, aws_calls, kwargs, fields):
    refused_before_any_call(polaris_job, kwargs, fields, polaris, aws_calls)


# --- Imply Polaris: ensure S3 connection ------------------------------------------------------------
def polaris_connection(**kwargs):
    args = {"task_id": "ensure", "name": "events-s3", "bucket": BUCKET, "aws_assumed_role_arn": ROLE}
    return PolarisEnsureS3ConnectionOperator(**{**args, **kwargs})


POLARIS_CONNECTION_CASES = [
    pytest.param({"name": None}, ("name",), id="name-missing"),
    pytest.param({"name": ""}, ("name",), id="name-empty"),
    pytest.param({"name": 42}, ("name",), id="name-int"),
    pytest.param({"bucket": None}, ("bucket",), id="bucket-missing"),
    pytest.param({"bucket": ""}, ("bucket",), id="bucket-empty"),
    pytest.param({"bucket": f"s3://{BUCKET}"}, ("bucket",), id="bucket-is-uri"),
    pytest.param({"bucket": "Bad_Bucket"}, ("bucket",), id="bucket-uppercase"),
    pytest.param({"bucket": "my..bucket"}, ("bucket",), id="bucket-double-dot"),
    pytest.param({"bucket": "10.0.0.1"}, ("bucket",), id="bucket-ip"),
    pytest.param({"bucket": "b" * 64}, ("bucket",), id="bucket-too-long"),
    pytest.param({"aws_assumed_role_arn": None}, ("aws_assumed_role_arn",), id="role-missing"),
    pytest.param({"aws_assumed_role_arn": ""}, ("aws_assumed_role_arn",), id="role-empty"),
    pytest.param({"aws_assumed_role_arn": "polaris-read"}, ("aws_assumed_role_arn",), id="role-not-arn"),
    pytest.param(
        {"aws_assumed_role_arn": "arn:aws:iam::1234:role/x"},
        ("aws_assumed_role_arn",),
        id="role-short-account",
    ),
    pytest.param({"aws_endpoint": ""}, ("aws_endpoint",), id="endpoint-empty"),
    pytest.param({"aws_endpoint": 443}, ("aws_endpoint",), id="endpoint-int"),
    pytest.param({"prefix": 5}, ("prefix",), id="prefix-int"),
]


@pytest.mark.parametrize(("kwargs", "fields"), POLARIS_CONNECTION_CASES)
def test_polaris_ensure_connection(polaris, aws_calls, kwargs, fields):
    refused_before_any_call(polaris_connection, kwargs, fields, polaris, aws_calls)


# --- eGain ------------------------------------------------------------------------------------------
def egain_import(**kwargs):
    args = {"task_id": "import", "s3_path": f"s3://{BUCKET}/kb/"}
    return EgainStartImportOperator(**{**args, **kwargs})


EGAIN_CASES = [
    pytest.param({"s3_path": None}, ("s3_path",), id="s3_path-missing"),
    pytest.param({"s3_path": ""}, ("s3_path",), id="s3_path-empty"),
    pytest.param({"s3_path": 42}, ("s3_path",), id="s3_path-int"),
    pytest.param({"s3_path": f"{BUCKET}/kb/"}, ("s3_path",), id="s3_path-no-scheme"),
    pytest.param({"s3_path": f"http://{BUCKET}/kb/"}, ("s3_path",), id="s3_path-http"),
    pytest.param({"s3_path": "s3:///kb/"}, ("s3_path",), id="s3_path-no-bucket"),
    pytest.param({"s3_path": "s3://Bad_Bucket/kb/"}, ("s3_path",), id="s3_path-bucket-uppercase"),
    pytest.param({"s3_path": "s3://my..bucket/kb/"}, ("s3_path",), id="s3_path-bucket-double-dot"),
    pytest.param({"s3_path": f"s3://{BUCKET}/kb"}, ("s3_path",), id="s3_path-not-folder"),
    pytest.param({"region": None}, ("region",), id="region-missing"),
    pytest.param({"region": ""}, ("region",), id="region-empty"),
    pytest.param({"region": "Europe"}, ("region",), id="region-unknown"),
    pytest.param({"region": 1}, ("region",), id="region-int"),
    pytest.param({"operation": "merge"}, ("operation",), id="operation-unknown"),
    pytest.param({"operation": None}, ("operation",), id="operation-missing"),
    pytest.param({"validate_first": "yes"}, ("validate_first",), id="validate_first-str"),
    pytest.param({"allow_partial": "no"}, ("allow_partial",), id="allow_partial-str"),
    pytest.param({"schedule_time": "tomorrow"}, ("schedule_time",), id="schedule-not-iso"),
    pytest.param({"schedule_time": 1767225600}, ("schedule_time",), id="schedule-int"),
    pytest.param({"schedule_time": _in(days=1)[:-1]}, ("schedule_time",), id="schedule-naive"),
    pytest.param({"schedule_time": _in(days=1)[:-1] + "+02:00"}, ("schedule_time",), id="schedule-offset"),
    pytest.param({"schedule_time": _in(hours=-1)}, ("schedule_time",), id="schedule-past"),
]


@pytest.mark.parametrize(("kwargs", "fields"), EGAIN_CASES)
def test_egain_import(egain, inputs, aws_calls, kwargs, fields):
    refused_before_any_call(egain_import, kwargs, fields, egain, aws_calls)


# --- Amazon Q in Connect ----------------------------------------------------------------------------
def qconnect_import(**kwargs):
    args = {"task_id": "import", "s3_key": f"s3://{BUCKET}/qr/good.csv", "knowledge_base_id": KB}
    return QConnectImportQuickResponsesOperator(**{**args, **kwargs})


CONNECT = "external_source_configuration"
INSTANCE = f"{CONNECT}.configuration.connectConfiguration.instanceId"
QCONNECT_CASES = [
    pytest.param({"knowledge_base_id": None}, ("knowledge_base_id",), id="kb-missing"),
    pytest.param({"knowledge_base_id": ""}, ("knowledge_base_id",), id="kb-empty"),
    pytest.param({"knowledge_base_id": 123}, ("knowledge_base_id",), id="kb-int"),
    pytest.param({"knowledge_base_id": "kb-1"}, ("knowledge_base_id",), id="kb-not-uuid"),
    pytest.param({"knowledge_base_id": KB.upper()}, ("knowledge_base_id",), id="kb-uppercase"),
    pytest.param(
        {"knowledge_base_id": "arn:aws:wisdom:us-east-1:123456789012:knowledge-base/kb-1"},
        ("knowledge_base_id",),
        id="kb-arn-without-uuid",
    ),
    pytest.param({"s3_key": None}, ("s3_key",), id="s3_key-missing"),
    pytest.param({"s3_key": ""}, ("s3_key",), id="s3_key-empty"),
    pytest.param({"s3_key": "qr/good.csv"}, ("s3_key",), id="s3_key-no-scheme-no-bucket"),
    pytest.param({"s3_key": f"http://{BUCKET}/qr/good.csv"}, ("s3_key",), id="s3_key-http"),
    pytest.param({"s3_key": "s3:///qr/good.csv"}, ("s3_key",), id="s3_key-no-bucket"),
    pytest.param({"s3_key": "s3://Bad_Bucket/qr/good.csv"}, ("s3_key",), id="s3_key-bucket-uppercase"),
    pytest.param({"s3_key": f"s3://{BUCKET}/qr/"}, ("s3_key",), id="s3_key-folder"),
    pytest.param({"s3_key": f"s3://{BUCKET}"}, ("s3_key",), id="s3_key-no-key"),
    pytest.param({"s3_key": "qr/good.csv", "s3_bucket": "Bad_Bucket"}, ("s3_bucket",), id="s3_bucket-bad"),
    pytest.param({"s3_key": "qr/good.csv", "s3_bucket": "a..b"}, ("s3_bucket",), id="s3_bucket-double-dot"),
    pytest.param({"s3_bucket": BUCKET}, ("s3_key", "s3_bucket"), id="s3_key-uri-and-s3_bucket"),
    pytest.param({"s3_key": 5, "s3_bucket": BUCKET}, ("s3_key",), id="s3_key-int-with-bucket"),
    pytest.param({"metadata": "team=support"}, ("metadata",), id="metadata-str"),
    pytest.param({"metadata": {"team": 1}}, ("metadata",), id="metadata-value-int"),
    pytest.param({"metadata": {"": "x"}}, ("metadata",), id="metadata-key-empty"),
    pytest.param({"metadata": {"team": ""}}, ("metadata",), id="metadata-value-empty"),
    pytest.param({"metadata": {"k": "v" * 4097}}, ("metadata",), id="metadata-value-over-4096"),
    pytest.param({"metadata": {f"k{i}": "v" for i in range(11)}}, ("metadata",), id="metadata-11-entries"),
    pytest.param({CONNECT: "AMAZON_CONNECT"}, (CONNECT,), id="external-str"),
    pytest.param({CONNECT: {}}, (f"{CONNECT}.source",), id="external-empty"),
    pytest.param({CONNECT: {"source": "S3"}}, (f"{CONNECT}.source",), id="external-source-unknown"),
    pytest.param({CONNECT: {"source": "AMAZON_CONNECT"}}, (INSTANCE,), id="external-no-configuration"),
    pytest.param(
        {CONNECT: {"source": "AMAZON_CONNECT", "configuration": "i-1"}},
        (f"{CONNECT}.configuration",),
        id="external-configuration-str",
    ),
    pytest.param(
        {CONNECT: {"source": "AMAZON_CONNECT", "configuration": {"connectConfiguration": {"instanceId": 7}}}},
        (INSTANCE,),
        id="external-instance-int",
    ),
    pytest.param({"presigned_url_ttl_minutes": 0}, ("presigned_url_ttl_minutes",), id="ttl-0"),
    pytest.param({"presigned_url_ttl_minutes": 61}, ("presigned_url_ttl_minutes",), id="ttl-over-60"),
    pytest.param({"presigned_url_ttl_minutes": "60"}, ("presigned_url_ttl_minutes",), id="ttl-str"),
]


@pytest.mark.parametrize(("kwargs", "fields"), QCONNECT_CASES)
def test_qconnect_import(qconnect, inputs, aws_calls, kwargs, fields):
    refused_before_any_call(qconnect_import, kwargs, fields, qconnect, aws_calls)


# --- Zeta Alpha: S3 folder as documents ---------------------------------------------------------------
def zeta_ingest(**kwargs):
    args = {"task_id": "za", "s3_prefix": f"s3://{BUCKET}/za/", "allow_access_rights": [{"name": "public"}]}
    return S3ToZetaAlphaOperator(**{**args, **kwargs})


RIGHTS = "allow_access_rights"
ZETA_CASES = [
    pytest.param({"s3_prefix": None}, ("s3_prefix",), id="s3_prefix-missing"),
    pytest.param({"s3_prefix": ""}, ("s3_prefix",), id="s3_prefix-empty"),
    pytest.param({"s3_prefix": ["s3://b/za/"]}, ("s3_prefix",), id="s3_prefix-list"),
    pytest.param({"s3_prefix": "za/"}, ("s3_prefix",), id="s3_prefix-no-scheme"),
    pytest.param({"s3_prefix": f"http://{BUCKET}/za/"}, ("s3_prefix",), id="s3_prefix-http"),
    pytest.param({"s3_prefix": "s3://"}, ("s3_prefix",), id="s3_prefix-no-bucket"),
    pytest.param({"s3_prefix": "s3://Bad_Bucket/za/"}, ("s3_prefix",), id="s3_prefix-bucket-uppercase"),
    pytest.param({"s3_prefix": "s3://-bucket/za/"}, ("s3_prefix",), id="s3_prefix-bucket-leading-dash"),
    pytest.param({"s3_prefix": "s3://my..bucket/za/"}, ("s3_prefix",), id="s3_prefix-bucket-double-dot"),
    pytest.param({"content_mode": "stream"}, ("content_mode",), id="content_mode-unknown"),
    pytest.param({"content_mode": None}, ("content_mode",), id="content_mode-missing"),
    pytest.param({RIGHTS: [{}]}, (f"{RIGHTS}[].name",), id="rights-name-missing"),
    pytest.param({RIGHTS: [{"name": ""}]}, (f"{RIGHTS}[].name",), id="rights-name-empty"),
    pytest.param({RIGHTS: {"name": "public"}}, (RIGHTS,), id="rights-dict-not-list"),
    pytest.param({RIGHTS: ["public"]}, (RIGHTS,), id="rights-item-str"),
    pytest.param({"custom_metadata": "team"}, ("custom_metadata",), id="custom_metadata-str"),
    pytest.param({"batch_max_documents": 0}, ("batch_max_documents",), id="batch_max_documents-0"),
    pytest.param({"batch_max_documents": "100"}, ("batch_max_documents",), id="batch_max_documents-str"),
    pytest.param({"batch_max_documents": True}, ("batch_max_documents",), id="batch_max_documents-bool"),
    pytest.param({"batch_max_bytes": 10}, ("batch_max_bytes",), id="batch_max_bytes-too-small"),
    pytest.param({"max_in_flight": 0}, ("max_in_flight",), id="max_in_flight-0"),
    pytest.param({"sync": True}, ("content_source_id",), id="sync-without-content_source_id"),
    pytest.param({"sync": "yes", "content_source_id": "s3"}, ("sync",), id="sync-str"),
    pytest.param({"content_source_id": 7}, ("content_source_id",), id="content_source_id-int"),
    pytest.param({"url_expires_in": 0}, ("url_expires_in",), id="url_expires_in-0"),
    pytest.param({"url_expires_in": 8 * 86400}, ("url_expires_in",), id="url_expires_in-over-7-days"),
    pytest.param({"etag_metadata_key": 5}, ("etag_metadata_key",), id="etag_metadata_key-int"),
]


@pytest.mark.parametrize(("kwargs", "fields"), ZETA_CASES)
def test_zeta_alpha_ingest(zeta, aws_calls, kwargs, fields):
    refused_before_any_call(zeta_ingest, kwargs, fields, zeta, aws_calls)


# --- Zeta Alpha: access rights ------------------------------------------------------------------------
def zeta_rights(**kwargs):
    args = {"task_id": "ar", "document_ids": [DOC_ID], RIGHTS: [{"name": "role-42", "type": "user_role_id"}]}
    return ZetaAlphaUpdateAccessRightsOperator(**{**args, **kwargs})


BOTH = ("documents", "document_ids")
DOCUMENTS = [{"document_id": DOC_ID, RIGHTS: [{"name": "public"}]}]
ZETA_RIGHTS_CASES = [
    pytest.param({"document_ids": None}, BOTH, id="neither"),
    pytest.param({"document_ids": []}, BOTH, id="document_ids-empty"),
    pytest.param({"documents": DOCUMENTS}, BOTH, id="documents-and-document_ids"),
    pytest.param({"document_ids": DOC_ID}, ("document_ids",), id="document_ids-str"),
    pytest.param({"document_ids": ["s3://b/k.txt"]}, ("document_ids",), id="document_id-not-sha1"),
    pytest.param({"document_ids": [DOC_ID.upper()]}, ("document_ids",), id="document_id-uppercase"),
    pytest.param({"document_ids": [None]}, ("document_ids",), id="document_id-none"),
    pytest.param({RIGHTS: None}, (RIGHTS,), id="rights-missing"),
    pytest.param({RIGHTS: []}, (RIGHTS,), id="rights-empty"),
    pytest.param({RIGHTS: [{"type": "user_uuid"}]}, (f"{RIGHTS}[].name",), id="rights-name-missing"),
    pytest.param({"document_ids": None, "documents": DOCUMENTS}, (RIGHTS,), id="documents-and-rights"),
    pytest.param(
        {"document_ids": None, RIGHTS: None, "documents": [{RIGHTS: []}]},
        ("documents[].document_id",),
        id="documents-id-missing",
    ),
    pytest.param(
        {"document_ids": None, RIGHTS: None, "documents": [{"document_id": "x"}]},
        ("documents[].document_id",),
        id="documents-id-not-sha1",
    ),
    pytest.param(
        {"document_ids": None, RIGHTS: None, "documents": ["x"]}, ("documents",), id="documents-item-str"
    ),
    pytest.param(
        {"document_ids": None, RIGHTS: None, "documents": [{"document_id": DOC_ID, RIGHTS: [{}]}]},
        (f"documents[].{RIGHTS}[].name",),
        id="documents-rights-name-missing",
    ),
    pytest.param({"batch_max_documents": 0}, ("batch_max_documents",), id="batch_max_documents-0"),
    pytest.param({"max_in_flight": "4"}, ("max_in_flight",), id="max_in_flight-str"),
    pytest.param({"content_source_id": 1}, ("content_source_id",), id="content_source_id-int"),
]


@pytest.mark.parametrize(("kwargs", "fields"), ZETA_RIGHTS_CASES)
def test_zeta_alpha_access_rights(zeta, aws_calls, kwargs, fields):
    refused_before_any_call(zeta_rights, kwargs, fields, zeta, aws_calls)


# --- Adobe Experience Platform ----------------------------------------------------------------------
def adobe_ingest(**kwargs):
    args = {"task_id": "aep", "dataset_id": DATASET_ID, "s3_prefix": f"s3://{BUCKET}/aep/"}
    return S3ToAdobeAepOperator(**{**args, **kwargs})


KEYS = ("s3_prefix", "s3_keys")
NO_AEP_PREFIX = {"s3_prefix": None}
ADOBE_CASES = [
    pytest.param({"dataset_id": None}, ("dataset_id",), id="dataset_id-missing"),
    pytest.param({"dataset_id": ""}, ("dataset_id",), id="dataset_id-empty"),
    pytest.param({"dataset_id": 5}, ("dataset_id",), id="dataset_id-int"),
    pytest.param(NO_AEP_PREFIX, KEYS, id="source-missing"),
    pytest.param({"s3_keys": [f"s3://{BUCKET}/aep/a.csv"]}, KEYS, id="s3_prefix-and-s3_keys"),
    pytest.param({"s3_prefix": "aep/"}, ("s3_prefix",), id="s3_prefix-no-scheme"),
    pytest.param(
        {"s3_prefix": f"https://{BUCKET}.s3.amazonaws.com/aep/"}, ("s3_prefix",), id="s3_prefix-https"
    ),
    pytest.param({"s3_prefix": "s3://B/aep/"}, ("s3_prefix",), id="s3_prefix-bucket-bad"),
    pytest.param({**NO_AEP_PREFIX, "s3_keys": f"s3://{BUCKET}/aep/a.csv"}, ("s3_keys",), id="s3_keys-str"),
    pytest.param({**NO_AEP_PREFIX, "s3_keys": [5]}, ("s3_keys",), id="s3_keys-item-int"),
    pytest.param({**NO_AEP_PREFIX, "s3_keys": [f"{BUCKET}/aep/a.csv"]}, ("s3_keys",), id="s3_key-no-scheme"),
    pytest.param({**NO_AEP_PREFIX, "s3_keys": ["s3:///aep/a.csv"]}, ("s3_keys",), id="s3_key-no-bucket"),
    pytest.param({**NO_AEP_PREFIX, "s3_keys": ["s3://10.1.2.3/a.csv"]}, ("s3_keys",), id="s3_key-bucket-ip"),
    pytest.param({**NO_AEP_PREFIX, "s3_keys": [f"s3://{BUCKET}/aep/"]}, ("s3_keys",), id="s3_key-folder"),
    pytest.param({**NO_AEP_PREFIX, "s3_keys": [f"s3://{BUCKET}"]}, ("s3_keys",), id="s3_key-no-key"),
    pytest.param({"input_format": "xlsx"}, ("input_format",), id="input_format-unknown"),
    pytest.param({"input_format": "nd-json"}, ("input_format",), id="input_format-polaris-name"),
    pytest.param({"input_format": None}, ("input_format",), id="input_format-missing"),
    pytest.param({"file_name_template": ""}, ("file_name_template",), id="template-empty"),
    pytest.param({"file_name_template": 5}, ("file_name_template",), id="template-int"),
    pytest.param({"file_name_template": "out.parquet"}, ("file_name_template",), id="template-constant"),
    pytest.param(
        {"file_name_template": "{stem}-{part}.parquet"}, ("file_name_template",), id="template-unknown-field"
    ),
    pytest.param(
        {"file_name_template": "{stem}-{0}.parquet"}, ("file_name_template",), id="template-positional"
    ),
    pytest.param({"file_name_template": "{stem}{"}, ("file_name_template",), id="template-unbalanced"),
    pytest.param({"validate_schema": "no"}, ("validate_schema",), id="validate_schema-str"),
    pytest.param({"small_file_max_bytes": 0}, ("small_file_max_bytes",), id="small_file_max_bytes-0"),
    pytest.param({"chunk_size": 100}, ("chunk_size",), id="chunk_size-too-small"),
    pytest.param({"chunk_size": 1.5e6}, ("chunk_size",), id="chunk_size-float"),
    pytest.param({"block_size": "1MB"}, ("block_size",), id="block_size-str"),
]


@pytest.mark.parametrize(("kwargs", "fields"), ADOBE_CASES)
def test_adobe_aep_ingest(adobe, aws_calls, kwargs, fields):
    refused_before_any_call(adobe_ingest, kwargs, fields, adobe, aws_calls)


# --- the baselines themselves are valid ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "fake"),
    [
        pytest.param(polaris_job, "polaris", id="polaris-job"),
        pytest.param(polaris_connection, "polaris", id="polaris-connection"),
        pytest.param(egain_import, "egain", id="egain"),
        pytest.param(qconnect_import, "qconnect", id="qconnect"),
        pytest.param(zeta_ingest, "zeta", id="zeta-alpha"),
        pytest.param(zeta_rights, "zeta", id="zeta-alpha-rights"),
        pytest.param(adobe_ingest, "adobe", id="adobe-aep"),
    ],
)
def test_baselines_pass_the_checks(request, inputs, make, fake):
    """Each table changes one argument of a baseline that passes every check, so each case fails
    because of that argument alone."""
    fake = request.getfixturevalue(fake)
    op = make()
    check = next(getattr(op, name) for name in ("validate", "spec", "updates") if hasattr(op, name))
    check()
    assert fake.journal() == []
