"""Polaris hook: the job snapshot, the Jobs v1 list, and finding the job a start whose reply was
lost made (same table, same source, created in the call's time window), called directly or over
HTTP against PolarisFake. No S3: the fake's clock is ``steps`` and no job is moved to its end (the
end reads the objects); a canceled job stands in for one that ended badly."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest

from airflow_provider_ingest.exceptions import IngestApiError, IngestApiRejected
from airflow_provider_ingest.hooks.polaris import (
    MAX_LIST_PAGES,
    PolarisHook,
    _same_source,
    created_at,
    polaris_snapshot,
)
from airflow_provider_ingest.http import RetryPolicy
from airflow_provider_ingest.jobs import JobSnapshot, JobState
from airflow_provider_ingest.testing import PolarisFake

from .support import run, serving

CONN_ID = "polaris_core_hooks"
FAST = RetryPolicy(attempts=2, backoff=0.001, backoff_max=0.002)
ROLE = "arn:aws:iam::123456789012:role/polaris"
BUCKET = "polaris-bucket"


@pytest.fixture(scope="module")
def fake():
    with serving(PolarisFake(clock="steps"), CONN_ID) as (server, _):
        yield server


@pytest.fixture
def polaris(fake):
    fake.reset()
    fake.configure(clock="steps")
    for name in ("conn-a", "conn-b"):
        body = {
            "type": "s3",
            "name": name,
            "bucket": BUCKET,
            "awsEndpoint": "s3.amazonaws.com",
            "awsAssumedRoleArn": ROLE,
        }
        hook().create_connection(body)
    yield fake
    fake.clear_faults()


def hook() -> PolarisHook:
    return PolarisHook(polaris_conn_id=CONN_ID, retry=FAST)


def spec(table="events", connection="conn-a", **source):
    source = source or {"uris": [f"s3://{BUCKET}/a.json"]}
    return {
        "type": "batch",
        "target": {"type": "table", "tableName": table},
        "createTableIfNotExists": True,
        "source": {
            "type": "s3",
            "connectionName": connection,
            "formatSettings": {"format": "nd-json"},
            "inputSchema": [{"name": "timestamp", "dataType": "string"}],
            **source,
        },
        "mappings": [{"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'}],
    }


def start(fake, job_spec, age: float = 0.0) -> str:
    """A job made ``age`` seconds ago (by the fake's clock)."""
    job_id = hook().create_job(job_spec)["id"]
    if age:
        fake.backdate_job(job_id, age)
    return job_id


def list_queries(fake) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(r["query"]))
        for r in fake.journal()
        if r.get("method") == "GET" and r.get("path", "").endswith("/jobs")
    ]


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- pure functions ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2022-10-28T21:36:36.547149211Z", 1666992996.547149),  # the doc's form: nanoseconds
        ("2022-10-28T21:36:36.5Z", 1666992996.5),
        ("2022-10-28T21:36:36", 1666992996.0),  # no zone: UTC
        ("2022-10-28T23:36:36+02:00", 1666992996.0),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_created_at(value, epoch):
    assert created_at({"createdTimestamp": value}) == epoch


def test_created_at_of_a_job_without_one():
    assert created_at({}) is None


@pytest.mark.parametrize("key", ["connectionName", "uris", "prefixes", "objects", "pattern"])
def test_same_source_compares_connection_and_objects(key):
    base = {
        "connectionName": "c",
        "uris": ["s3://b/x"],
        "prefixes": ["p/"],
        "objects": ["o"],
        "pattern": "*.json",
    }
    assert _same_source(base, dict(base))
    assert not _same_source(base, {**base, key: "other"})
    assert not _same_source({k: v for k, v in base.items() if k != key}, base)


def test_same_source_ignores_what_does_not_select_objects():
    a = {"connectionName": "c", "uris": ["s3://b/x"], "formatSettings": {"format": "csv"}, "type": "s3"}
    assert _same_source(a, {"connectionName": "c", "uris": ["s3://b/x"]})


def test_snapshot_of_a_running_job():
    job = {
        "id": "J",
        "executionStatus": "running",
        "health": {"status": "ok"},
        "target": {"type": "table", "tableName": "events"},
    }
    assert polaris_snapshot(job) == JobSnapshot(
        "J",
        "running",
        JobState.RUNNING,
        None,
        warning=None,
        details={"id": "J", "executionStatus": "running", "health": {"status": "ok"}, "tableName": "events"},
    )


def test_snapshot_of_a_bare_job():
    assert polaris_snapshot({"executionStatus": None, "health": None, "target": None}) == JobSnapshot(
        None, "", None, details={"id": None, "executionStatus": "", "health": {}, "tableName": None}
    )


def test_completed_with_health_error_is_a_failure_naming_it():
    health = {"status": "error", "code": "no_rows_ingested", "message": "No rows were ingested"}
    snap = polaris_snapshot({"id": "J", "executionStatus": "completed", "health": health})
    assert (snap.state, snap.reason, snap.warning) == (
        JobState.FAILED,
        "no_rows_ingested: No rows were ingested",
        None,
    )


@pytest.mark.parametrize(
    ("health", "text"),
    [
        ({"code": "c1"}, "c1"),
        ({"message": "m1"}, "m1"),
        ({"code": "", "message": "m1"}, "m1"),
        ({"code": 7, "message": 8}, "7: 8"),
    ],
)
def test_health_text(health, text):
    warn = polaris_snapshot({"executionStatus": "completed", "health": {"status": "warn", **health}})
    assert (warn.state, warn.warning, warn.reason) == (JobState.SUCCEEDED, text, None)
    error = polaris_snapshot({"executionStatus": "running", "health": {"status": "error", **health}})
    assert (error.state, error.reason, error.warning) == (JobState.RUNNING, text, None)


@pytest.mark.parametrize(("status", "health"), [("failed", {}), ("canceled", {"status": "error"})])
def test_a_failure_without_health_text_names_the_status(status, health):
    snap = polaris_snapshot({"executionStatus": status, "health": health})
    assert (snap.state, snap.reason) == (JobState.FAILED, f"executionStatus is {status}")


def test_a_warning_without_text_is_none():
    snap = polaris_snapshot({"executionStatus": "completed", "health": {"status": "warn"}})
    assert (snap.state, snap.warning, snap.reason) == (JobState.SUCCEEDED, None, None)


def test_a_failed_job_keeps_its_health_reason():
    health = {"status": "error", "code": "ingestion_failed", "message": "cannot read s3://b/k"}
    snap = polaris_snapshot({"executionStatus": "failed", "health": health})
    assert (snap.state, snap.reason) == (JobState.FAILED, "ingestion_failed: cannot read s3://b/k")


# The execution statuses of Polaris's Jobs v1 (the doc's job shows "pending"; the SDK's
# JobExecutionStatus lists the rest, as the fake does).
@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", JobState.RUNNING),
        ("running", JobState.RUNNING),
        ("idle", JobState.RUNNING),
        ("suspended", JobState.RUNNING),
        ("unknown", JobState.RUNNING),
        ("completed", JobState.SUCCEEDED),
        ("failed", JobState.FAILED),
        ("canceled", JobState.FAILED),
        ("COMPLETED", JobState.SUCCEEDED),
        ("exploded", None),
    ],
)
def test_status_table(status, state):
    assert polaris_snapshot({"executionStatus": status, "health": {"status": "ok"}}).state is state


# --- snapshots over HTTP -----------------------------------------------------------------------
def test_job_snapshot_reads_the_job(polaris):
    job_id = start(polaris, spec())
    snap = hook().job_snapshot(job_id)
    assert (snap.job_id, snap.status, snap.state, snap.details["tableName"]) == (
        job_id,
        "pending",
        JobState.RUNNING,
        "events",
    )
    hook().cancel_job(job_id)
    snap = run(lambda: hook().ajob_snapshot(job_id))
    assert (snap.job_id, snap.status, snap.state, snap.reason) == (
        job_id,
        "canceled",
        JobState.FAILED,
        "executionStatus is canceled",
    )
    gets = [(r["method"], r["path"]) for r in polaris.journal() if r.get("path", "").endswith(job_id)]
    path = f"/v1/projects/{polaris.project_id}/jobs/{job_id}"
    assert gets == [("GET", path), ("PUT", path), ("GET", path)]


@pytest.mark.parametrize("body", [None, {"id": "J"}, {"executionStatus": "running"}])
def test_a_status_reply_that_is_not_a_job_is_malformed(polaris, body):
    polaris.add_fault(action="body", body=body, method="GET", path=r"/jobs/J$", times=10)
    with pytest.raises(IngestApiError, match=r"HTTP 200 \[MalformedReply\]"):
        hook().job_snapshot("J")
    with pytest.raises(IngestApiError, match=r"HTTP 200 \[MalformedReply\]"):
        run(lambda: hook().ajob_snapshot("J"))


def test_snapshot_job_ids_are_one_path_segment(polaris):
    with pytest.raises(ValueError, match=r"^job_id: 'a/b' cannot be a URL path segment"):
        hook().job_snapshot("a/b")
    with pytest.raises(ValueError, match=r"^job_id: 'a/b' cannot be a URL path segment"):
        run(lambda: hook().ajob_snapshot("a/b"))
    for call in (hook().job_snapshot, lambda j: run(lambda: hook().ajob_snapshot(j))):
        with pytest.raises(IngestApiRejected, match=r"\[NotFound\]: job a\?b not found$"):
            call("a?b")


# --- the jobs list -----------------------------------------------------------------------------
def test_list_jobs_sends_the_sdks_parameters(polaris):
    first = start(polaris, spec(), age=10)
    start(polaris, spec())
    start(polaris, spec(table="other"))
    values, more = hook().list_jobs(
        table_name="events", job_type="batch", sort_column="created_date_time", sort_order="ASC", limit=1
    )
    assert ([v["id"] for v in values], more) == ([first], True)
    values, more = hook().list_jobs(table_name="events", sort_column="created_date_time", limit=1, offset=1)
    assert ([v["id"] for v in values], more) == ([first], False)  # newest created first: second, first
    assert hook().list_jobs() == (hook().list_jobs(limit=100, offset=0))
    assert list_queries(polaris)[:2] == [
        {
            "paginationLimit": "1",
            "paginationOffset": "0",
            "targetTableName": "events",
            "type": "batch",
            "sortColumn": "created_date_time",
            "sortOrder": "ASC",
        },
        {
            "paginationLimit": "1",
            "paginationOffset": "1",
            "targetTableName": "events",
            "sortColumn": "created_date_time",
            "sortOrder": "DESC",
        },
    ]
    assert list_queries(polaris)[2] == {"paginationLimit": "100", "paginationOffset": "0"}


def test_list_jobs_default_order_is_the_apis(polaris):
    older = start(polaris, spec(), age=100)
    newer = start(polaris, spec())
    hook().cancel_job(older)  # now the most recently updated
    values, more = hook().list_jobs()
    assert ([v["id"] for v in values], more) == ([older, newer], False)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"values": [], "moreResultsAvailable": True}, ([], True)),
        ({"values": [{"id": "x"}]}, ([{"id": "x"}], False)),
        ({"values": [], "moreResultsAvailable": None}, ([], False)),
    ],
)
def test_list_jobs_reads_values_and_more(polaris, reply, expected):
    polaris.add_fault(action="body", body=reply, method="GET", path=r"/jobs$")
    values, more = hook().list_jobs()
    assert (values, more) == expected and type(more) is bool


@pytest.mark.parametrize(
    "reply", [{"values": {"id": "x"}}, {"values": None}, {"moreResultsAvailable": False}]
)
def test_a_list_reply_without_a_list_of_values_is_malformed(polaris, reply):
    polaris.add_fault(action="body", body=reply, method="GET", path=r"/jobs$", times=10)
    with pytest.raises(IngestApiError, match=r"HTTP 200 \[MalformedReply\]") as raised:
        hook().list_jobs()
    error = raised.value
    assert (error.service, error.method, error.status, error.code) == (
        "Imply Polaris",
        "GET",
        200,
        "MalformedReply",
    )
    assert error.endpoint == f"{polaris.url}/v1/projects/{polaris.project_id}/jobs"
    if reply.get("values") is not None:
        assert error.server_message == "the reply's 'values' is not a list"


def test_jobs_created_since_pages_newest_first_until_an_older_one(polaris):
    now = float(int(time.time()))  # whole seconds: the stamps hold it exactly
    page = lambda ages, more: {  # noqa: E731
        "values": [{"id": f"j{age}", "createdTimestamp": stamp(now - age)} for age in ages],
        "moreResultsAvailable": more,
    }
    polaris.add_fault(action="body", body=page([1, 2, 3], True), method="GET", path=r"/jobs$")
    polaris.add_fault(action="body", body=page([4, 5, 6], True), method="GET", path=r"/jobs$")
    polaris.add_fault(action="body", body=page([7], True), method="GET", path=r"/jobs$")
    found = hook().jobs_created_since("events", now - 5)
    assert [j["id"] for j in found] == ["j1", "j2", "j3", "j4", "j5"]
    assert list_queries(polaris) == [
        {
            "paginationLimit": "100",
            "paginationOffset": str(offset),
            "targetTableName": "events",
            "type": "batch",
            "sortColumn": "created_date_time",
            "sortOrder": "DESC",
        }
        for offset in (0, 100)
    ]


def test_jobs_created_since_keeps_one_created_exactly_then_and_one_without_a_time(polaris):
    since = 1_700_000_000.0
    values = [
        {"id": "no-time"},
        {"id": "bad-time", "createdTimestamp": "?"},
        {"id": "at", "createdTimestamp": stamp(since)},
        {"id": "before", "createdTimestamp": stamp(since - 0.001)},
        {"id": "after-the-stop", "createdTimestamp": stamp(since + 1)},
    ]
    polaris.add_fault(
        action="body", body={"values": values, "moreResultsAvailable": True}, method="GET", path=r"/jobs$"
    )
    assert [j["id"] for j in hook().jobs_created_since("events", since)] == ["no-time", "bad-time", "at"]
    assert len(list_queries(polaris)) == 1


def test_jobs_created_since_stops_when_no_more_pages(polaris):
    recent = {"values": [{"id": "a", "createdTimestamp": stamp(time.time())}], "moreResultsAvailable": False}
    polaris.add_fault(action="body", body=recent, method="GET", path=r"/jobs$", times=5)
    assert [j["id"] for j in hook().jobs_created_since("events", 0)] == ["a"]
    assert len(list_queries(polaris)) == 1


def test_jobs_created_since_reads_at_most_max_pages(polaris):
    recent = {"values": [{"id": "a", "createdTimestamp": stamp(time.time())}], "moreResultsAvailable": True}
    polaris.add_fault(action="body", body=recent, method="GET", path=r"/jobs$", times=MAX_LIST_PAGES + 5)
    assert len(hook().jobs_created_since("events", 0)) == MAX_LIST_PAGES == 10
    assert [q["paginationOffset"] for q in list_queries(polaris)] == [str(100 * n) for n in range(10)]


def test_jobs_created_since_of_real_jobs(polaris):
    old = start(polaris, spec(), age=600)
    new = start(polaris, spec())
    start(polaris, spec(table="other"))
    assert [j["id"] for j in hook().jobs_created_since("events", time.time() - 60)] == [new]
    assert [j["id"] for j in hook().jobs_created_since("events", time.time() - 601)] == [new, old]


# --- find_started_job: adopting the job a lost start made ------------------------------------
def test_finds_the_job_the_call_made(polaris):
    called_at = time.time()
    made = start(polaris, spec())
    found = hook().find_started_job(spec(), called_at)
    assert found["id"] == made and found["source"]["uris"] == [f"s3://{BUCKET}/a.json"]


def test_nothing_to_find(polaris):
    assert hook().find_started_job(spec(), time.time()) is None


def test_the_first_job_made_after_the_call_wins(polaris):
    called_at = time.time() - 100
    first = start(polaris, spec(), age=50)
    start(polaris, spec(), age=10)
    start(polaris, spec(), age=30)
    assert hook().find_started_job(spec(), called_at)["id"] == first


def test_a_job_made_after_the_call_wins_over_one_just_before(polaris):
    called_at = time.time() - 100
    start(polaris, spec(), age=101)
    after = start(polaris, spec(), age=20)
    assert hook().find_started_job(spec(), called_at)["id"] == after


def test_within_the_skew_before_the_call_the_latest_job_wins(polaris):
    called_at = time.time() + 30  # the worker's clock is ahead of the API's
    start(polaris, spec(), age=20)
    latest = start(polaris, spec(), age=5)
    start(polaris, spec(), age=10)
    assert hook().find_started_job(spec(), called_at)["id"] == latest


def test_a_job_made_exactly_at_the_call_counts_as_after_it(polaris):
    job_id = start(polaris, spec())
    created = created_at(hook().get_job(job_id))
    earlier = start(polaris, spec(), age=1)
    assert hook().find_started_job(spec(), created)["id"] == job_id
    assert created_at(hook().get_job(earlier)) < created


def test_a_job_before_the_skew_window_is_not_adopted(polaris):
    called_at = time.time()
    start(polaris, spec(), age=90)
    assert hook().find_started_job(spec(), called_at) is None
    assert hook().find_started_job(spec(), called_at, clock_skew=120) is not None
    start_ = start(polaris, spec(), age=30)
    assert hook().find_started_job(spec(), called_at, clock_skew=10) is None
    assert hook().find_started_job(spec(), called_at)["id"] == start_
    queries = list_queries(polaris)
    assert queries and all(q["targetTableName"] == "events" for q in queries)


def test_a_job_that_ended_badly_before_the_call_is_not_adopted(polaris):
    called_at = time.time()
    ended = start(polaris, spec(), age=10)
    hook().cancel_job(ended)
    assert hook().find_started_job(spec(), called_at) is None
    running = start(polaris, spec(), age=20)
    assert hook().find_started_job(spec(), called_at)["id"] == running


def test_a_job_that_ended_badly_after_the_call_is_adopted(polaris):
    called_at = time.time() - 10
    made = start(polaris, spec())
    hook().cancel_job(made)
    assert hook().find_started_job(spec(), called_at)["id"] == made


def test_never_the_job_the_try_replaces(polaris):
    called_at = time.time() - 10
    replaced = start(polaris, spec())
    assert hook().find_started_job(spec(), called_at, replaces=replaced) is None
    other = start(polaris, spec())
    assert hook().find_started_job(spec(), called_at, replaces=replaced)["id"] == other


@pytest.mark.parametrize(
    "made",
    [
        spec(table="other"),
        spec(connection="conn-b"),
        spec(uris=[f"s3://{BUCKET}/b.json"]),
        spec(prefixes=["a/"]),
        spec(objects=["a.json"]),
        spec(pattern="*.json"),
    ],
)
def test_only_a_job_of_the_same_table_and_source_is_adopted(polaris, made):
    called_at = time.time() - 10
    start(polaris, made)
    assert hook().find_started_job(spec(), called_at) is None
    same = start(polaris, spec())
    assert hook().find_started_job(spec(), called_at)["id"] == same


def test_a_job_into_another_target_of_the_same_table_is_not_adopted(polaris):
    called_at = time.time() - 10
    start(polaris, {**spec(), "target": {"type": "table", "tableName": "events", "partitioning": "day"}})
    assert hook().find_started_job(spec(), called_at) is None


def test_only_candidates_are_read_one_by_one(polaris):
    called_at = time.time() - 10
    start(polaris, spec(connection="conn-b"))
    start(polaris, spec(table="other"))
    candidate = start(polaris, spec(uris=[f"s3://{BUCKET}/b.json"]))
    assert hook().find_started_job(spec(), called_at) is None
    reads = [
        r["path"] for r in polaris.journal() if r.get("method") == "GET" and "/jobs/" in r.get("path", "")
    ]
    assert reads == [f"/v1/projects/{polaris.project_id}/jobs/{candidate}"]


def test_a_summary_without_an_id_is_skipped(polaris):
    now = time.time()
    target = {"type": "table", "tableName": "events"}
    values = [{"createdTimestamp": stamp(now), "target": target, "source": {"connectionName": "conn-a"}}]
    polaris.add_fault(
        action="body", body={"values": values, "moreResultsAvailable": False}, method="GET", path=r"/jobs$"
    )
    assert hook().find_started_job(spec(), now - 1) is None


def test_created_at_without_a_zone_is_utc_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert created_at({"createdTimestamp": "2022-10-28T21:36:36"}) == 1666992996.0
        assert created_at({"createdTimestamp": "2022-10-28T21:36:36Z"}) == 1666992996.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_default_skew_is_sixty_seconds(polaris):
    job_id = start(polaris, spec())
    created = created_at(hook().get_job(job_id))
    assert hook().find_started_job(spec(), created + 59.5)["id"] == job_id
    assert hook().find_started_job(spec(), created + 60.5) is None


@pytest.mark.parametrize(
    "newer",
    [
        {**spec(), "target": {"type": "table", "tableName": "events", "partitioning": "day"}},
        spec(connection="conn-b"),
        spec(uris=[f"s3://{BUCKET}/b.json"]),
    ],
)
def test_a_newer_job_of_another_source_does_not_end_the_search(polaris, newer):
    called_at = time.time() - 10
    same = start(polaris, spec(), age=5)
    start(polaris, newer)
    assert hook().find_started_job(spec(), called_at)["id"] == same


def test_a_newer_replaced_job_does_not_end_the_search(polaris):
    called_at = time.time() - 10
    same = start(polaris, spec(), age=5)
    replaced = start(polaris, spec())
    assert hook().find_started_job(spec(), called_at, replaces=replaced)["id"] == same


def test_a_job_made_at_the_call_wins_over_a_later_one(polaris):
    at_call = start(polaris, spec(), age=5)
    start(polaris, spec())
    called_at = created_at(hook().get_job(at_call))
    assert hook().find_started_job(spec(), called_at)["id"] == at_call


def same_creation(fake, first: str, second: str) -> None:
    fake.backdate_job(second, fake.jobs[second]["_created"] - fake.jobs[first]["_created"])
    assert fake.jobs[first]["createdTimestamp"] == fake.jobs[second]["createdTimestamp"]


def test_jobs_made_at_the_same_time_after_the_call(polaris):
    called_at = time.time() - 10
    first, second = start(polaris, spec()), start(polaris, spec())
    same_creation(polaris, first, second)
    assert hook().find_started_job(spec(), called_at)["id"] in (first, second)


def test_jobs_made_at_the_same_time_before_the_call(polaris):
    first, second = start(polaris, spec(), age=5), start(polaris, spec(), age=5)
    same_creation(polaris, first, second)
    assert hook().find_started_job(spec(), time.time())["id"] in (first, second)


def test_a_job_without_a_creation_time_counts_as_made_before_the_call(polaris):
    undated = start(polaris, spec())
    dated = start(polaris, spec())
    job = {k: v for k, v in hook().get_job(undated).items() if k != "createdTimestamp"}
    polaris.add_fault(action="body", body=job, method="GET", path=f"/jobs/{undated}$")
    # called at 0.5 s after the epoch: the undated job (time 0) is before it, the dated one after
    assert hook().find_started_job(spec(), 0.5)["id"] == dated
