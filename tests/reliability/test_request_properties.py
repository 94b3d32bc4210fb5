"""Property tests for the request builders: any input the operators' checks accept builds a request
the service (its fake, over real HTTP) accepts. Hypothesis draws the inputs; each example goes
through the operator's own checks and builder, then to the fake.
"""

from __future__ import annotations

import hashlib
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_ingest.hooks.egain import EgainHook
from airflow_provider_ingest.hooks.polaris import PolarisHook
from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook
from airflow_provider_ingest.operators.egain import EgainStartImportOperator
from airflow_provider_ingest.operators.polaris import (
    DATA_TYPES,
    INGESTION_MODES,
    POLARIS_FORMATS,
    PolarisStartIngestionJobOperator,
)
from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator

BUCKET = "reliability-properties"
ROLE = "arn:aws:iam::123456789012:role/properties"
# Function-scoped fakes are reset per test, not per example: each example adds its own jobs.
PROPERTY_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=30).filter(
    lambda s: s[0].isalpha()
)
keys = st.lists(
    st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20), min_size=1, max_size=3
).map("/".join)
metadata_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
)


@pytest.fixture(scope="module")
def bucket(s3) -> str:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="kb/a.html", Body=b"<p>a</p>")
    return BUCKET


# --- Polaris: the batch job spec ---------------------------------------------------------------------
@st.composite
def polaris_job_args(draw) -> dict:
    columns = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    schema = [{"name": c, "dataType": draw(st.sampled_from(sorted(DATA_TYPES)))} for c in columns]
    descriptor = draw(st.sampled_from(["uris", "prefixes", "objects", "pattern"]))
    key_list = draw(st.lists(keys, min_size=1, max_size=3))
    values = {
        "uris": [f"s3://{BUCKET}/{k}" for k in key_list],
        "prefixes": [k + "/" for k in key_list],
        "objects": key_list,
        "pattern": key_list[0] + "/*.json",
    }
    return {
        "table_name": draw(names),
        "connection_name": "properties",
        descriptor: values[descriptor],
        "format_settings": {"format": draw(st.sampled_from(sorted(POLARIS_FORMATS)))},
        "input_schema": schema,
        "time_column": draw(st.sampled_from(columns)),
        "ingestion_mode": draw(st.sampled_from(sorted(INGESTION_MODES))),
    }


@PROPERTY_SETTINGS
@given(args=polaris_job_args())
def test_any_valid_polaris_job_is_accepted(polaris, args):
    hook = PolarisHook()
    if hook.get_s3_connection("properties") is None:
        hook.create_connection(
            {"type": "s3", "name": "properties", "bucket": BUCKET, "awsEndpoint": "s3.amazonaws.com",
             "awsAssumedRoleArn": ROLE}
        )  # fmt: skip
    op = PolarisStartIngestionJobOperator(task_id="p", **args)
    op.validate()
    spec = op.job_spec()
    job = hook.create_job(spec)  # a 400 from the fake raises IngestApiError naming the field
    stored = hook.get_job(job["id"])
    assert stored["target"]["tableName"] == args["table_name"]
    assert stored["source"]["inputSchema"] == args["input_schema"]


# --- eGain: the import body ------------------------------------------------------------------------
regions = st.sampled_from(["us-east-1", "eu-west-2", "ap-southeast-2", "ca-central-1"])


@PROPERTY_SETTINGS
@given(
    region=regions,
    operation=st.sampled_from(["import", "reimport"]),
    minutes_ahead=st.none() | st.integers(min_value=5, max_value=7 * 24 * 60 - 5),
)
def test_any_valid_egain_import_is_accepted(egain, bucket, region, operation, minutes_ahead):
    schedule = None
    if minutes_ahead is not None:
        schedule = (datetime.now(UTC) + timedelta(minutes=minutes_ahead)).strftime("%Y-%m-%dT%H:%M:%SZ")
    op = EgainStartImportOperator(
        task_id="e",
        s3_path=f"s3://{bucket}/kb/",
        region=region,
        operation=operation,
        schedule_time=schedule,
        aws_conn_id="aws_egain",
    )
    op.validate()
    job_id = op.submit({})  # a 4xx from the fake raises
    assert EgainHook().get_status(job_id)["status"]


# --- Zeta Alpha: one document per S3 object ---------------------------------------------------------
@PROPERTY_SETTINGS
@given(
    key=keys,
    body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=st.sampled_from([None, "text/plain", "text/markdown", "application/json", "image/png"]),
    metadata=st.dictionaries(names, metadata_text, max_size=3),
    rights=st.lists(st.fixed_dictionaries({"name": names}), min_size=1, max_size=3),
    content_mode=st.sampled_from(["inline", "url"]),
)
def test_any_valid_zeta_document_is_accepted(zeta, s3, bucket, key, body, content_type, metadata, rights,
                                             content_mode):  # fmt: skip
    key = f"za/{key}"
    extra = {"ContentType": content_type} if content_type else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    op = S3ToZetaAlphaOperator(
        task_id="z",
        s3_prefix=f"s3://{bucket}/za/",
        content_source_id="properties",
        allow_access_rights=rights,
        custom_metadata=metadata,
        content_mode=content_mode,
    )
    op.validate()
    obj = next(o for o in op.list_objects(bucket, "za/") if o["Key"] == key)
    document = op.document(bucket, obj)
    reply = ZetaAlphaHook().ingest_documents([document])
    assert not reply.get("errors"), reply["errors"]
    # the footnote's id: sha1 hex of the internal id, here the object's URI
    assert document["document_id"] == hashlib.sha1(f"s3://{bucket}/{key}".encode()).hexdigest()
    stored = ZetaAlphaHook().get_document(document["document_id"])
    assert stored["uri"] == f"s3://{bucket}/{key}"
