"""The fakes themselves, driven with plain HTTP: auth, validation, control endpoints, faults."""

from __future__ import annotations

import time

import pytest
import requests
from conftest import BUCKET

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
    with pytest.raises(requests.ConnectionError):
        session.get(f"{base}/jobs", timeout=5)

    faults(polaris, {"path": "/jobs$", "action": "malformed"})
    with pytest.raises(ValueError):
        session.get(f"{base}/jobs", timeout=5).json()

    faults(polaris, {"path": "/jobs$", "action": "delay", "seconds": 0.5})
    started = time.monotonic()
    session.get(f"{base}/jobs", timeout=5)
    assert time.monotonic() - started >= 0.5

    create_connection(session, base)
    faults(polaris, {"method": "POST", "path": "/jobs$", "action": "drop_after"})
    with pytest.raises(requests.ConnectionError):
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
    polaris.configure(pending_seconds=0.2)
    session, base = api
    create_connection(session, base)
    assert requests.post(f"{polaris.url}/_fake/reset", timeout=5).status_code == 200
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
