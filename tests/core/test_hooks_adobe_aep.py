"""Adobe Experience Platform hook: the batch id a create reply carries, the Catalog status reply
and snapshot, and the batch list a lost create is looked for in, called directly or over HTTP
against AdobeAepFake (no S3: batches are created, completed or aborted without files)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from airflow_provider_ingest.auth import clear_token_cache
from airflow_provider_ingest.exceptions import IngestApiError, IngestApiRejected
from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook, batch_reply, batch_snapshot
from airflow_provider_ingest.http import RetryPolicy
from airflow_provider_ingest.jobs import JobSnapshot, JobState
from airflow_provider_ingest.testing import AdobeAepFake
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID

from .support import run, serving

CONN_ID = "adobe_aep_core_hooks"
FAST = RetryPolicy(attempts=2, backoff=0.001, backoff_max=0.002)
IMPORT = "/data/foundation/import/batches"
CATALOG = "/data/foundation/catalog/batches"


@pytest.fixture(scope="module")
def fake():
    with serving(AdobeAepFake(clock="steps"), CONN_ID) as (server, _):
        yield server


@pytest.fixture
def adobe(fake):
    fake.reset()
    fake.configure(clock="steps")
    clear_token_cache()
    yield fake
    fake.clear_faults()


def hook() -> AdobeAepHook:
    return AdobeAepHook(adobe_aep_conn_id=CONN_ID, retry=FAST)


def requests_to(fake, path: str) -> list[tuple[str, dict[str, str], int | None]]:
    return [
        (r["method"], dict(parse_qsl(r["query"])), r["status"])
        for r in fake.journal()
        if r.get("path") == path
    ]


# --- batch_reply: the shape of a Catalog batch reply --------------------------------------------
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (None, "expected a JSON object, got null"),
        ([], "expected a JSON object, got list"),
        ("B1", "expected a JSON object, got str"),
        ({}, "the reply has no batch 'B1'"),
        ({"B2": {"status": "success"}}, "the reply has no batch 'B1'"),
        ({"B1": "success"}, "the reply has no batch 'B1'"),
        ({"B1": None}, "the reply has no batch 'B1'"),
        ({"B1": {}}, "the reply has no 'status'"),
        ({"B1": {"status": ""}}, "the reply has no 'status'"),
        ({"B1": {"status": "loading"}}, None),
        ({"B1": {"status": "success"}, "B2": []}, None),
    ],
)
def test_batch_reply_shape(body, problem):
    assert batch_reply("B1")(body) == problem


# --- batch_snapshot -----------------------------------------------------------------------------
def test_snapshot_of_a_loading_batch():
    batch = {"status": "loading", "errors": [], "metrics": {"inputFileCount": 0}, "created": 1}
    assert batch_snapshot("B1", batch) == JobSnapshot(
        "B1",
        "loading",
        JobState.RUNNING,
        None,
        details={"batch_id": "B1", "status": "loading", "errors": [], "metrics": {"inputFileCount": 0}},
    )


def test_snapshot_of_a_bare_batch():
    assert batch_snapshot("B1", {"status": None, "errors": None, "metrics": None}) == JobSnapshot(
        "B1", "", None, None, details={"batch_id": "B1", "status": "", "errors": [], "metrics": {}}
    )


def test_failed_batch_reason_names_its_first_five_errors():
    errors = [{"code": f"E{n}", "description": f"bad file {n}"} for n in range(25)]
    snap = batch_snapshot("B1", {"status": "failed", "errors": errors})
    assert snap.state is JobState.FAILED
    assert snap.reason == "; ".join(f"E{n}: bad file {n}" for n in range(5))
    assert snap.details["errors"] == errors[:20]


@pytest.mark.parametrize(
    ("error", "text"),
    [
        ({"code": "C", "description": "d", "message": "m"}, "C: d"),
        ({"code": "C", "description": "", "message": "m"}, "C: m"),
        ({"description": "d"}, "?: d"),
        ({"code": "C"}, "C: {'code': 'C'}"),
    ],
)
def test_failed_batch_reason_text(error, text):
    assert batch_snapshot("B1", {"status": "failed", "errors": [error]}).reason == text


# Batch statuses: the vendor document's list (Active, Loaded, Loading, Staged, Staging, Failed,
# Abandoned, Aborted, Inactive) plus Catalog's success / processing / queued / retrying.
@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Active", JobState.SUCCEEDED),
        ("success", JobState.SUCCEEDED),
        ("Loaded", JobState.RUNNING),
        ("Loading", JobState.RUNNING),
        ("Staged", JobState.RUNNING),
        ("Staging", JobState.RUNNING),
        ("processing", JobState.RUNNING),
        ("queued", JobState.RUNNING),
        ("retrying", JobState.RUNNING),
        ("Failed", JobState.FAILED),
        ("Abandoned", JobState.FAILED),
        ("Aborted", JobState.FAILED),
        ("Inactive", JobState.FAILED),
        ("deleted", None),
    ],
)
def test_status_table(status, state):
    assert batch_snapshot("B1", {"status": status}).state is state


# --- create_batch: the id in the reply ----------------------------------------------------------
def test_create_batch_returns_the_new_batchs_id(adobe):
    batch_id = hook().create_batch(DATASET_ID)
    assert list(adobe.batches) == [batch_id]
    assert adobe.batches[batch_id]["datasetId"] == DATASET_ID
    assert adobe.batches[batch_id]["tags"] == {}
    assert requests_to(adobe, IMPORT) == [("POST", {}, 201)]


def test_create_batch_sends_its_tags_and_format(adobe):
    tags = {"airflow_run": ["r1"], "source": ["s3://b/k"]}
    batch_id = hook().create_batch(DATASET_ID, tags=tags)
    assert adobe.batches[batch_id]["tags"] == tags
    with pytest.raises(IngestApiRejected, match=r"\[400303\]: inputFormat.format: this fake takes parquet"):
        hook().create_batch(DATASET_ID, input_format="json")
    with pytest.raises(IngestApiRejected, match=r"\[400301\]: datasetId: dataset 'nope' not found"):
        hook().create_batch("nope")


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"status": "loading"}, None])
def test_a_create_reply_without_an_id_is_malformed(adobe, body):
    adobe.add_fault(action="body", status=201, body=body, method="POST", path=f"{IMPORT}$")
    with pytest.raises(IngestApiError, match=r"HTTP 201 \[MalformedReply\]") as raised:
        hook().create_batch(DATASET_ID)
    assert raised.value.outcome_unknown
    assert len(requests_to(adobe, IMPORT)) == 1  # a create is not sent twice on a guess


# --- snapshots over HTTP ------------------------------------------------------------------------
def test_job_snapshot_reads_the_batch_in_catalog(adobe):
    batch_id = hook().create_batch(DATASET_ID)
    snap = hook().job_snapshot(batch_id)
    assert (snap.job_id, snap.status, snap.state, snap.details["batch_id"]) == (
        batch_id,
        "loading",
        JobState.RUNNING,
        batch_id,
    )
    hook().cancel_job(batch_id)
    snap = run(lambda: hook().ajob_snapshot(batch_id))
    assert (snap.job_id, snap.status, snap.state) == (batch_id, "aborted", JobState.FAILED)
    assert [(m, s) for m, _, s in requests_to(adobe, f"{CATALOG}/{batch_id}")] == [("GET", 200)] * 2


def test_snapshot_of_a_batch_that_failed_names_the_error(adobe):
    batch_id = hook().create_batch(DATASET_ID)
    hook().complete_batch(batch_id)
    adobe.advance(batch_id)
    snap = run(lambda: hook().ajob_snapshot(batch_id))
    assert (snap.status, snap.state, snap.reason) == (
        "failed",
        JobState.FAILED,
        "INGEST-1212-400: the batch has no files",
    )
    assert hook().job_snapshot(batch_id).reason == "INGEST-1212-400: the batch has no files"


@pytest.mark.parametrize("body", [{"OTHER": {"status": "success"}}, {"B1": {"errors": []}}, []])
def test_a_status_reply_not_about_the_batch_is_malformed(adobe, body):
    adobe.add_fault(action="body", body=body, method="GET", path=f"{CATALOG}/B1$", times=10)
    with pytest.raises(IngestApiError, match=r"HTTP 200 \[MalformedReply\]"):
        hook().job_snapshot("B1")
    with pytest.raises(IngestApiError, match=r"HTTP 200 \[MalformedReply\]"):
        run(lambda: hook().ajob_snapshot("B1"))


def test_snapshot_returns_the_named_batch_of_the_reply(adobe):
    body = {"OTHER": {"status": "failed"}, "B1": {"status": "success", "metrics": {"recordsWritten": 3}}}
    adobe.add_fault(action="body", body=body, method="GET", path=f"{CATALOG}/B1$", times=2)
    assert hook().job_snapshot("B1").details["metrics"] == {"recordsWritten": 3}
    snap = run(lambda: hook().ajob_snapshot("B1"))
    assert (snap.job_id, snap.state, snap.details["metrics"]) == (
        "B1",
        JobState.SUCCEEDED,
        {"recordsWritten": 3},
    )


def test_snapshot_batch_ids_are_one_path_segment(adobe):
    with pytest.raises(ValueError, match=r"^batch_id: 'a/b' cannot be a URL path segment"):
        hook().job_snapshot("a/b")
    with pytest.raises(ValueError, match=r"^job_id: 'a/b' cannot be a URL path segment"):
        run(lambda: hook().ajob_snapshot("a/b"))
    for call in (hook().job_snapshot, lambda j: run(lambda: hook().ajob_snapshot(j))):
        with pytest.raises(IngestApiRejected, match=r"\[404001\]: batch a\?b not found$"):
            call("a?b")


# --- list_batches: where a batch whose create reply was lost is found -------------------------
def test_list_batches_newest_first_with_their_ids(adobe):
    first = hook().create_batch(DATASET_ID)
    adobe.batches[first]["created"] -= 5000
    second = hook().create_batch(DATASET_ID)
    found = hook().list_batches(DATASET_ID)
    assert [b["id"] for b in found] == [second, first]
    assert found[0]["createdClient"] == adobe.client_id and found[0]["status"] == "loading"
    assert requests_to(adobe, CATALOG) == [
        ("GET", {"dataSet": DATASET_ID, "orderBy": "desc:created", "limit": "100"}, 200)
    ]


def test_list_batches_sends_its_filters(adobe):
    old = hook().create_batch(DATASET_ID)
    adobe.batches[old]["created"] -= 5000
    new = hook().create_batch(DATASET_ID)
    hook().cancel_job(new)
    since = adobe.batches[old]["created"]
    assert [b["id"] for b in hook().list_batches(DATASET_ID, created_after_ms=since)] == [new]
    assert [b["id"] for b in hook().list_batches(DATASET_ID, status="loading")] == [old]
    assert [b["id"] for b in hook().list_batches(DATASET_ID, limit=1, start=1)] == [old]
    assert [b["id"] for b in hook().list_batches(DATASET_ID, limit=1, start=0)] == [new]
    assert hook().list_batches("other-dataset") == []
    queries = [q for _, q, _ in requests_to(adobe, CATALOG)]
    base = {"dataSet": DATASET_ID, "orderBy": "desc:created"}
    assert queries == [
        {**base, "limit": "100", "createdAfter": str(since)},
        {**base, "limit": "100", "status": "loading"},
        {**base, "limit": "1", "start": "1"},
        {**base, "limit": "1"},
        {**base, "dataSet": "other-dataset", "limit": "100"},
    ]


def test_list_batches_sorts_the_map_and_skips_what_is_not_a_batch(adobe):
    body = {
        "b1": {"created": 1, "status": "success"},
        "junk": "x",
        "b3": {},
        "b2": {"created": 3},
        "none": None,
    }
    adobe.add_fault(action="body", body=body, method="GET", path=f"{CATALOG}$")
    assert hook().list_batches(DATASET_ID) == [
        {"created": 3, "id": "b2"},
        {"created": 1, "status": "success", "id": "b1"},
        {"id": "b3"},
    ]


def test_list_batches_without_a_creation_time_come_last(adobe):
    body = {"undated": {"status": "loading"}, "first": {"created": 1}}
    adobe.add_fault(action="body", body=body, method="GET", path=f"{CATALOG}$")
    assert [b["id"] for b in hook().list_batches(DATASET_ID)] == ["first", "undated"]


def test_list_batches_id_is_the_key(adobe):
    adobe.add_fault(
        action="body", body={"b1": {"id": "stale", "created": 1}}, method="GET", path=f"{CATALOG}$"
    )
    assert hook().list_batches(DATASET_ID) == [{"id": "b1", "created": 1}]


@pytest.mark.parametrize("body", [None, [], "x"])
def test_a_list_reply_that_is_not_a_map_is_malformed(adobe, body):
    adobe.add_fault(action="body", body=body, method="GET", path=f"{CATALOG}$", times=10)
    with pytest.raises(IngestApiError, match=r"HTTP 200 \[MalformedReply\]: expected a JSON object"):
        hook().list_batches(DATASET_ID)
