"""The fakes, checked by clients nobody here wrote: each vendor's own SDK (polaris-sdk,
egain-api-python, aepp, botocore's qconnect model) drives the shipped fake through every call the
provider makes, and the SDK's own response models must accept every reply.

A fake that drifts from the vendor's contract (a missing route, a refused header, a reply the
SDK's model cannot read, a status code the SDK does not declare) fails here, not in production.
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from conftest import BUCKET

ROLE = "arn:aws:iam::123456789012:role/polaris"


# --- Imply Polaris: polaris-sdk (azure-core, msrest models) ------------------------------------------
def required_missing(obj: Any, path: str = "$") -> list[str]:
    """Members the SDK's msrest model marks required but the reply left out, recursively."""
    problems: list[str] = []
    if hasattr(obj, "_attribute_map"):
        for name, rule in getattr(obj, "_validation", {}).items():
            if rule.get("required") and getattr(obj, name, None) is None:
                problems.append(f"{path}.{obj._attribute_map[name]['key']}")
        for name, spec in obj._attribute_map.items():
            problems += required_missing(getattr(obj, name, None), f"{path}.{spec['key']}")
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            problems += required_missing(item, f"{path}[{i}]")
    return problems


@pytest.fixture
def polaris_sdk(polaris):
    from polaris.sdk.client import ProjectClient

    polaris.configure(clock="steps")
    client = ProjectClient.from_endpoint(polaris.project_id, polaris.url, polaris.api_key, retry_total=0)
    yield client
    client.close()


def polaris_job(table: str = "events") -> dict[str, Any]:
    return {
        "type": "batch",
        "target": {"type": "table", "tableName": table},
        "createTableIfNotExists": True,
        "source": {
            "type": "s3",
            "connectionName": "sdk-conn",
            "uris": [f"s3://{BUCKET}/sdk/polaris.json"],
            "formatSettings": {"format": "nd-json"},
            "inputSchema": [{"name": "timestamp", "dataType": "string"}],
        },
        "mappings": [{"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'}],
    }


def test_polaris_connections_through_the_sdk(polaris, polaris_sdk):
    from azure.core.exceptions import HttpResponseError

    body = {
        "type": "s3",
        "name": "sdk-conn",
        "bucket": BUCKET,
        "awsEndpoint": "s3.amazonaws.com",
        "awsAssumedRoleArn": ROLE,
    }
    # Imply's doc: "A successful request returns a 200 OK response"; the SDK declares 201. The fake
    # follows the doc (the hook takes any 2xx), so the SDK refuses the status, not the body.
    with pytest.raises(HttpResponseError, match="invalid status 'OK'") as info:
        polaris_sdk.connections.create_connection(body)
    created = polaris_sdk.connections._deserialize("ConnectionResponse", info.value.response)
    assert type(created).__name__ == "S3ConnectionResponse" and required_missing(created) == []
    fetched = polaris_sdk.connections.get_connection("sdk-conn")
    assert fetched.bucket == BUCKET and required_missing(fetched) == []
    listed = polaris_sdk.connections.list_connections()
    assert [c.name for c in listed.values] == ["sdk-conn"] and required_missing(listed) == []
    conflict = polaris_sdk.connections.create_connection(body)  # 409: the SDK returns its ErrorResponse
    assert type(conflict).__name__ == "ErrorResponse" and required_missing(conflict) == []
    assert "already exists" in conflict.message
    missing = polaris_sdk.connections.get_connection("nope")  # 404 likewise
    assert type(missing).__name__ == "ErrorResponse" and "not found" in missing.message


def test_polaris_jobs_status_cancel_list_and_metrics_through_the_sdk(polaris, polaris_sdk, s3):
    from azure.core.exceptions import HttpResponseError

    s3.put_object(Bucket=BUCKET, Key="sdk/polaris.json", Body=b'{"timestamp": "2026-01-01T00:00:00Z"}\n')
    connection = {"type": "s3", "name": "sdk-conn", "bucket": BUCKET, "awsEndpoint": "s3"}
    created = requests.post(
        f"{polaris.url}/v1/projects/{polaris.project_id}/connections",
        json={**connection, "awsAssumedRoleArn": ROLE},
        auth=(polaris.api_key, ""),
        timeout=5,
    )
    assert created.status_code == 200, created.text  # see test_polaris_connections_through_the_sdk
    first = polaris_sdk.jobs.create_job(polaris_job("first"))
    assert type(first).__name__ == "BatchJobResponse" and required_missing(first) == []
    assert first.execution_status == "pending"
    second = polaris_sdk.jobs.create_job(polaris_job("second"))

    # GET /jobs/{id}/status: the SDK's JobStatusResponse; POST /jobs/{id}/status cancels
    status = polaris_sdk.jobs.describe_job_status(first.id)
    assert type(status).__name__ == "JobStatusResponse" and status.execution_status == "pending"
    canceled = polaris_sdk.jobs.update_job_status(first.id, {"desiredExecutionStatus": "canceled"})
    assert type(canceled).__name__ == "JobStatusResponse" and canceled.execution_status == "canceled"
    assert polaris_sdk.jobs.describe_job(first.id).execution_status == "canceled"
    with pytest.raises(HttpResponseError, match="a batch job cannot be suspended") as info:
        polaris_sdk.jobs.update_job_status(second.id, {"desiredExecutionStatus": "suspended"})
    assert info.value.status_code == 400
    missing = polaris_sdk.jobs.describe_job_status("00000000-0000-4000-8000-000000000000")
    assert type(missing).__name__ == "ErrorResponse" and required_missing(missing) == []

    polaris.advance(second.id, steps=2)  # pending -> running -> completed
    done = polaris_sdk.jobs.describe_job(second.id)
    assert done.execution_status == "completed" and done.health.status == "ok"
    metrics = polaris_sdk.jobs.describe_job_metrics(second.id)
    assert metrics.totals.num_rows_processed == 1 and required_missing(metrics) == []

    # list: the SDK's defaults (last updated first), sorting and filters
    listed = polaris_sdk.jobs.list_jobs()
    assert type(listed).__name__ == "JobListResponse" and required_missing(listed) == []
    assert [j.id for j in listed.values] == [second.id, first.id]  # the completion is the latest update
    by_creation = polaris_sdk.jobs.list_jobs(sort_column="created_date_time", sort_order="ASC")
    assert [j.id for j in by_creation.values] == [first.id, second.id]
    assert [j.id for j in polaris_sdk.jobs.list_jobs(execution_status=["canceled"]).values] == [first.id]
    assert [j.id for j in polaris_sdk.jobs.list_jobs(target_table_name="second").values] == [second.id]
    assert polaris_sdk.jobs.list_jobs(health_status=["error"]).values == []
    assert len(polaris_sdk.jobs.list_jobs(connection_name=["sdk-conn"], type=["batch"]).values) == 2
    page = polaris_sdk.jobs.list_jobs(pagination_limit=1, sort_column="created_date_time")
    assert [j.id for j in page.values] == [second.id] and page.more_results_available is True
    gone = polaris_sdk.jobs.describe_job("00000000-0000-4000-8000-000000000000")  # 404: ErrorResponse
    assert type(gone).__name__ == "ErrorResponse" and "not found" in gone.message


# --- eGain: egain-api-python (Speakeasy, pydantic models); the token through requests-oauthlib ------
@pytest.fixture
def egain_token(egain, monkeypatch):
    """A client-credentials token fetched by an OAuth 2.0 client library (HTTP Basic client auth)."""
    from oauthlib.oauth2 import BackendApplicationClient
    from requests_oauthlib import OAuth2Session

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake speaks plain http
    session = OAuth2Session(client=BackendApplicationClient(client_id=egain.client_id))
    token = session.fetch_token(
        f"{egain.url}/oauth2/token",
        client_id=egain.client_id,
        client_secret=egain.client_secret,
        scope=["knowledge.contentmgr.manage"],
    )
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    return token["access_token"]


def egain_source(prefix: str) -> dict[str, Any]:
    return {
        "type": "AWS S3 bucket",
        "path": f"s3://{BUCKET}/{prefix}",
        "region": "us-east-1",
        "credentials": {"accessKeyId": "testing", "secretAccessKey": "testing"},
    }


def test_egain_import_validate_status_and_cancel_through_the_sdk(egain, egain_token, s3):
    from egain_api_python import Egain, errors
    from egain_api_python.models import ImportStatus

    s3.put_object(Bucket=BUCKET, Key="sdk-egain/a.html", Body=b"<p>hello</p>")
    egain.configure(clock="steps")
    server = f"{egain.url}/knowledge/contentmgr/v4"
    imports = Egain(access_token=egain_token).content.import_

    started = imports.create_import_job(
        data_source=egain_source("sdk-egain/"), operation="import", server_url=server
    )
    (location,) = started.headers["location"]
    job_id = location.rsplit("/", 1)[-1]
    validation = imports.create_import_validation_job(
        data_source=egain_source("sdk-egain/"), server_url=server
    )
    validation_id = validation.headers["location"][0].rsplit("/", 1)[-1]

    status = imports.get_import_status(job_id=job_id, server_url=server)
    assert isinstance(status, ImportStatus) and (status.status, status.job_type) == ("Scheduled", "Import")
    raw = requests.get(
        f"{server}/import/content/{job_id}/status",
        headers={"Authorization": f"Bearer {egain_token}"},
        timeout=5,
    ).json()
    modelled = {f.alias or name for name, f in ImportStatus.model_fields.items()}
    # the fake's extras beyond the SDK's model: per-file results, the job id
    assert set(raw) - modelled == {"jobId", "fileResults"}

    egain.advance(validation_id, steps=2)
    checked = imports.get_import_status(job_id=validation_id, server_url=server)
    assert (checked.status, checked.job_type, checked.results.successful) == ("Successful", "Validation", 1)

    assert imports.cancel_import(job_id=job_id, server_url=server) is None  # 204
    assert imports.get_import_status(job_id=job_id, server_url=server).status == "Cancelled"
    # the SDK declares 409 for a job that cannot be cancelled: an ended (here: cancelled) one
    for ended in (job_id, validation_id):
        with pytest.raises(errors.EgainDefaultError, match="already ended") as info:
            imports.cancel_import(job_id=ended, server_url=server)
        assert info.value.status_code == 409
    with pytest.raises(errors.WSErrorCommon) as info:
        imports.get_import_status(job_id="7A84B875-6F75-4C7B-B137-0632B62DB0BD", server_url=server)
    assert info.value.data.code == "404-100"


def test_egain_hook_treats_a_repeated_cancel_as_already_ended(egain, s3):
    """The API answers 409 to the second cancel; the hook (sync and async) takes it as done."""
    import asyncio

    from airflow_provider_ingest.exceptions import IngestApiError
    from airflow_provider_ingest.hooks.egain import EgainHook
    from airflow_provider_ingest.http import close_shared_sessions

    egain.configure(clock="steps")
    hook = EgainHook()
    job_id = hook.start_import({"dataSource": egain_source("sdk-egain/"), "operation": "import"})
    hook.cancel_job(job_id)
    hook.cancel_job(job_id)

    async def cancel_again():
        try:
            await EgainHook().acancel_job(job_id)
        finally:
            await close_shared_sessions()

    asyncio.run(cancel_again())
    statuses = [r["status"] for r in egain.journal() if r.get("path", "").endswith("/cancel")]
    assert statuses == [204, 409, 409]
    assert hook.job_snapshot(job_id).status == "Cancelled"
    with pytest.raises(IngestApiError, match="HTTP 404"):  # other errors still raise
        hook.cancel_job("7A84B875-6F75-4C7B-B137-0632B62DB0BD")


# --- Adobe Experience Platform: aepp -----------------------------------------------------------------
@pytest.fixture
def aepp_config(adobe):
    """aepp configured for the fake: platform calls and the IMS token both go to its URL."""
    import aepp
    from aepp import config

    saved = (dict(config.config_object), dict(config.header), json.loads(json.dumps(config.endpoints)))
    aepp.configure(
        org_id=adobe.ims_org_id,
        client_id=adobe.client_id,
        secret=adobe.client_secret,
        scopes="openid,AdobeID,read_organizations",
        environment="support",
        endpoint=adobe.url,
    )
    config.config_object["oauthTokenEndpointV2"] = f"{adobe.url}/ims/token/v3"
    yield config
    for live, old in zip((config.config_object, config.header, config.endpoints), saved, strict=True):
        live.clear()
        live.update(old)


def parquet_bytes(rows: int = 3) -> bytes:
    table = pa.table({"city": [f"c{i}" for i in range(rows)], "score": [float(i) for i in range(rows)]})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def test_aep_batches_files_and_catalog_through_aepp(adobe, aepp_config):
    from aepp import catalog, ingestion

    from airflow_provider_ingest.testing.adobe_aep import DATASET_ID

    adobe.configure(clock="steps")
    uploads = ingestion.DataIngestion()  # fetches the IMS token from the fake
    assert adobe.journal(event="token_issued")
    batch = uploads.createBatch(datasetId=DATASET_ID, format="parquet")
    assert batch["status"] == "loading"
    small = parquet_bytes()
    # uploadSmallFile JSON-encodes what it is given; the provider sends raw bytes: send them the
    # same way through aepp's connector, with aepp's headers
    headers = {**uploads.header, "Content-Type": "application/octet-stream"}
    path = f"{uploads.endpoint}/batches/{batch['id']}/datasets/{DATASET_ID}/files/small.parquet"
    assert uploads.connector.session.put(path, data=small, headers=headers, timeout=5).status_code == 200

    large, part = parquet_bytes(200), 1024
    # aepp reads no body from the documented "201 Created, with empty response": its own error dict
    uploads.uploadLargeFileStartEnd(batch["id"], DATASET_ID, "large.parquet", "initialize")
    assert [r["status"] for r in adobe.journal() if r.get("path", "").endswith("large.parquet")] == [201]
    for start in range(0, len(large), part):
        chunk = large[start : start + part]
        # aepp reads a JSON body from the PATCH reply; the docs (and the fake) give an empty 200
        with pytest.raises(requests.JSONDecodeError, match="Expecting value: line 1 column 1"):
            uploads.uploadLargeFilePart(
                batch["id"],
                DATASET_ID,
                "large.parquet",
                chunk,
                f"bytes {start}-{start + len(chunk) - 1}/{len(large)}",
            )
    assert uploads.uploadLargeFileStartEnd(batch["id"], DATASET_ID, "large.parquet", "COMPLETE") == {}
    patches = [r for r in adobe.journal() if r.get("method") == "PATCH"]
    assert patches and {r["status"] for r in patches} == {200}
    assert {e["name"]: e["mode"] for e in adobe.journal(event="file_uploaded")} == {
        "small.parquet": "small",
        "large.parquet": "large",
    }
    assert uploads.uploadSmallFileFinish(batch["id"], "COMPLETE") == {}

    aborted = uploads.createBatch(datasetId=DATASET_ID, format="parquet")
    assert uploads.uploadSmallFileFinish(aborted["id"], "ABORT") == {}

    cat = catalog.Catalog()
    assert cat.getBatch(batch["id"])[batch["id"]]["status"] == "staging"
    adobe.advance(batch["id"])
    got = cat.getBatch(batch["id"])[batch["id"]]
    assert got["status"] == "success" and got["metrics"]["recordsWritten"] == 203
    assert set(cat.getBatches(dataSet=DATASET_ID)) == {batch["id"], aborted["id"]}
    assert list(cat.getBatches(status="aborted")) == [aborted["id"]]
    assert list(cat.getBatches(limit=1, orderBy="desc:created", createdAfter=got["created"])) in (
        [aborted["id"]],
        [],  # both created in the same millisecond
    )
    assert list(cat.getBatches(limit=1, orderBy="asc:created")) == [batch["id"]]
    dataset = cat.getDataSet(DATASET_ID)
    assert dataset[DATASET_ID]["schemaRef"]["id"].startswith("https://ns.adobe.com/")


@pytest.mark.parametrize(("schema_type", "full"), [("xdm", True), ("xed", True), ("xed", False)])
def test_aep_schema_registry_answers_the_accept_types_aepp_sends(adobe, aepp_config, schema_type, full):
    from aepp import schema

    from airflow_provider_ingest.testing.adobe_aep import SCHEMA_ID

    registry = schema.Schema()  # container "tenant"
    got = registry.getSchema(SCHEMA_ID, full=full, schema_type=schema_type)
    assert got["$id"] == SCHEMA_ID and "city" in got["properties"]
    accepts = [r for r in adobe.journal() if "/schemas/" in r.get("path", "")]
    assert [r["status"] for r in accepts] == [200]


def test_aep_schema_registry_refuses_plain_json(adobe, aepp_config):
    from aepp import schema

    from airflow_provider_ingest.testing.adobe_aep import SCHEMA_ID

    registry = schema.Schema()
    reply = registry.connector.getData(
        f"{registry.endpoint}/tenant/schemas/{requests.utils.quote(SCHEMA_ID, safe='')}",
        headers={**registry.header, "Accept": "application/json"},
    )
    assert reply["error_code"] == "406001"


# --- Amazon Q in Connect: a plain boto3 client, botocore's qconnect model ------------------------------
KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"


def test_qconnect_operations_round_trip_through_botocore(qconnect):
    """Every operation the provider uses (and the two a user checks a knowledge base with) parse
    against botocore's model; ``validate_response`` style checks come from botocore's parser."""
    from botocore.exceptions import ClientError

    qconnect.configure(clock="steps")
    qc = boto3.client(
        "qconnect",
        endpoint_url=qconnect.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    model = qc.meta.service_model
    kb = qc.get_knowledge_base(knowledgeBaseId=KB)["knowledgeBase"]
    required = model.shape_for("KnowledgeBaseData").required_members
    assert set(required) <= set(kb) and kb["knowledgeBaseType"] == "QUICK_RESPONSES"

    upload = qc.start_content_upload(knowledgeBaseId=KB, contentType="text/csv", presignedUrlTimeToLive=5)
    assert set(model.operation_model("StartContentUpload").output_shape.required_members) <= set(upload)
    body = b"name,content\nreset,Reset your password\n"
    assert (
        requests.put(upload["url"], data=body, headers=upload["headersToInclude"], timeout=5).status_code
        == 200
    )
    ids = []
    for token in ("a", "b", "c"):
        job = qc.start_import_job(
            knowledgeBaseId=KB,
            importJobType="QUICK_RESPONSES",
            uploadId=upload["uploadId"],
            clientToken=token,
        )["importJob"]
        assert set(model.shape_for("ImportJobData").required_members) <= set(job)
        ids.append(job["importJobId"])
    qconnect.advance(ids[0])
    assert qc.get_import_job(knowledgeBaseId=KB, importJobId=ids[0])["importJob"]["status"] == "COMPLETE"

    first = qc.list_import_jobs(knowledgeBaseId=KB, maxResults=2)
    summary_required = set(model.shape_for("ImportJobSummary").required_members)
    assert all(summary_required <= set(s) for s in first["importJobSummaries"])
    rest = qc.list_import_jobs(knowledgeBaseId=KB, maxResults=2, nextToken=first["nextToken"])
    assert [s["importJobId"] for s in first["importJobSummaries"] + rest["importJobSummaries"]] == ids
    assert "nextToken" not in rest
    paged = [
        s["importJobId"]
        for page in qc.get_paginator("list_import_jobs").paginate(
            knowledgeBaseId=KB, PaginationConfig={"PageSize": 1}
        )
        for s in page["importJobSummaries"]
    ]
    assert paged == ids

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        qc.get_knowledge_base(knowledgeBaseId="00000000-0000-4000-8000-000000000000")
    with pytest.raises(ClientError, match="ValidationException"):
        qc.list_import_jobs(knowledgeBaseId=KB, nextToken="page-x")
