"""Polaris hook, operators, sensor and trigger over real HTTP against the fake and moto S3."""

from __future__ import annotations

import importlib
import json
import time

import pytest
from conftest import BUCKET, kill_while_running, run_dag, run_trigger

from airflow_provider_ingest.exceptions import (
    IngestApiError,
    IngestApiRejected,
    IngestJobFailed,
    IngestStartUnknown,
)
from airflow_provider_ingest.hooks.polaris import PolarisHook
from airflow_provider_ingest.http import RetryPolicy
from airflow_provider_ingest.jobs import JobState, StartLedger, spec_digest
from airflow_provider_ingest.operators.polaris import (
    PolarisEnsureS3ConnectionOperator,
    PolarisStartIngestionJobOperator,
)
from airflow_provider_ingest.sensors.polaris import PolarisJobSensor
from airflow_provider_ingest.testing.stack import sample_events
from airflow_provider_ingest.testing.state import TaskStateStore
from airflow_provider_ingest.triggers.polaris import PolarisJobTrigger

ROLE = "arn:aws:iam::123456789012:role/polaris"
DAY = "2026-03-01"
PREFIX = f"polaris/{DAY}/"


@pytest.fixture
def data(s3):
    keys = []
    for n in range(2):
        key = f"{PREFIX}part-{n}.json"
        s3.put_object(Bucket=BUCKET, Key=key, Body=sample_events(DAY, 25, seed=n))
        keys.append(key)
    s3.put_object(
        Bucket=BUCKET, Key="polaris-csv/a.csv", Body=b"timestamp,city,n\n2026-03-01T00:00:00Z,Oslo,3\n"
    )
    return keys


def ensure(polaris, name="test-conn"):
    op = PolarisEnsureS3ConnectionOperator(
        task_id="ensure", name=name, bucket=BUCKET, aws_assumed_role_arn=ROLE
    )
    return op.execute({})


def ingest_op(**kwargs):
    args = {"task_id": "ingest", "table_name": "events", "connection_name": "test-conn", "poll_interval": 0.1}
    return PolarisStartIngestionJobOperator(**{**args, **kwargs})


def requests_to(polaris, path_part):
    return [r for r in polaris.journal() if path_part in r.get("path", "")]


# --- hook ---------------------------------------------------------------------------------------
def test_hook_connections_and_job_lifecycle(polaris, data):
    hook = PolarisHook()
    assert hook.get_s3_connection("test-conn") is None
    ensure(polaris)
    assert hook.get_s3_connection("test-conn")["bucket"] == BUCKET
    spec = ingest_op(prefixes=[PREFIX], input_schema=[{"name": "timestamp", "dataType": "string"}]).job_spec()
    polaris.configure(clock="steps")
    job = hook.create_job(spec)
    assert hook.job_snapshot(job["id"]).status == "pending"
    assert [j["id"] for j in hook.list_jobs()[0]] == [job["id"]]
    polaris.advance(job["id"])
    assert (hook.job_snapshot(job["id"]).status, hook.job_snapshot(job["id"]).state) == (
        "running",
        JobState.RUNNING,
    )
    polaris.advance(job["id"])
    assert hook.job_snapshot(job["id"]).state is JobState.SUCCEEDED
    assert hook.get_job_metrics(job["id"])["numRowsPersisted"] == 50


def test_test_connection_reports_bad_key_without_leaking_it(polaris, monkeypatch):
    assert PolarisHook().test_connection()[0] is True
    conn = polaris.airflow_connection()
    conn["password"] = "wrong-key-0123456789"
    monkeypatch.setenv("AIRFLOW_CONN_POLARIS_BAD", json.dumps(conn))
    ok, message = PolarisHook("polaris_bad").test_connection()
    assert not ok and "401" in message and "wrong-key-0123456789" not in message


# --- ensure connection --------------------------------------------------------------------------
def test_ensure_connection_is_idempotent_and_rejects_conflicts(polaris):
    assert ensure(polaris) == "test-conn"
    assert ensure(polaris) == "test-conn"
    assert len([r for r in polaris.journal() if r.get("method") == "POST"]) == 1
    op = PolarisEnsureS3ConnectionOperator(
        task_id="ensure", name="test-conn", bucket="other-bucket", aws_assumed_role_arn=ROLE
    )
    with pytest.raises(ValueError, match="bucket"):
        op.execute({})


# --- bad input: fails before any request -------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"uris": [f"s3://{BUCKET}/a.json"], "prefixes": ["x/"]}, "uris, prefixes"),
        ({"prefixes": ["x/"], "table_name": ""}, "table_name"),
        ({"prefixes": ["x/"], "format_settings": {"format": "xlsx"}}, "format_settings.format"),
        ({}, "exactly one of uris"),
        ({"uris": ["https://not-s3/a.json"]}, "uris"),
        ({"prefixes": ["x/"], "ingestion_mode": "upsert"}, "ingestion_mode"),
        ({"prefixes": "x/"}, "prefixes"),
    ],
)
def test_bad_input_fails_before_any_request(polaris, kwargs, field):
    with pytest.raises(ValueError, match=field):
        ingest_op(**kwargs).execute({})
    assert polaris.journal() == []


def test_ensure_connection_bad_role_fails_before_any_request(polaris):
    op = PolarisEnsureS3ConnectionOperator(task_id="e", name="c", bucket=BUCKET, aws_assumed_role_arn="role")
    with pytest.raises(ValueError, match="aws_assumed_role_arn"):
        op.execute({})
    assert polaris.journal() == []


# --- operator, blocking path --------------------------------------------------------------------
def test_infers_schema_from_csv_and_ingests(polaris, data):
    ensure(polaris)
    op = ingest_op(prefixes=["polaris-csv/"], format_settings={"format": "csv"}, wait_for_completion=False)
    spec = op.job_spec()
    assert spec["source"]["inputSchema"] == [
        {"name": "timestamp", "dataType": "string"},
        {"name": "city", "dataType": "string"},
        {"name": "n", "dataType": "long"},
    ]
    assert spec["mappings"][0] == {"columnName": "__time", "expression": 'TIME_PARSE("timestamp")'}


def test_failed_job_raises_with_vendor_reason(polaris, data):
    ensure(polaris)
    polaris.fail_next_job("table is locked by a compaction")
    with pytest.raises(IngestJobFailed, match="table is locked by a compaction"):
        ingest_op(prefixes=[PREFIX]).execute({})


def test_zero_rows_is_a_failure(polaris, s3):
    s3.put_object(Bucket=BUCKET, Key="polaris-empty/a.json", Body=b"")
    ensure(polaris)
    op = ingest_op(prefixes=["polaris-empty/"], input_schema=[{"name": "timestamp", "dataType": "string"}])
    with pytest.raises(IngestJobFailed, match="no_rows_ingested"):
        op.execute({})


def test_lost_reply_on_start_adopts_the_job_instead_of_starting_another(polaris, data):
    ensure(polaris)
    polaris.add_fault(action="drop_after", method="POST", path=r"/jobs$")
    job_id = ingest_op(prefixes=[PREFIX]).execute({})
    assert [e["id"] for e in polaris.journal(event="job_created")] == [job_id]
    assert PolarisHook().get_job(job_id)["executionStatus"] == "completed"


SCHEMA = [{"name": "timestamp", "dataType": "string"}]


def created_jobs(polaris):
    return [e["id"] for e in polaris.journal(event="job_created")]


def test_jobs_list_sorts_filters_and_pages_like_the_api(polaris, data):
    ensure(polaris)
    hook = PolarisHook()
    polaris.configure(clock="steps")  # nothing moves on by itself: only the cancel updates
    spec = ingest_op(prefixes=[PREFIX], input_schema=SCHEMA).job_spec()
    older = hook.create_job(spec)["id"]
    polaris.backdate_job(older, 600)
    other_table = hook.create_job({**spec, "target": {"type": "table", "tableName": "other"}})["id"]
    newest = hook.create_job(spec)["id"]
    hook.cancel_job(older)  # an update: the older job is now the most recently updated one
    # no sort given: newest *updated* first, as polaris-sdk's default (last_updated_date_time DESC)
    assert [j["id"] for j in hook.list_jobs()[0]] == [older, newest, other_table]
    by_created = hook.list_jobs(sort_column="created_date_time")[0]
    assert [j["id"] for j in by_created] == [newest, other_table, older]
    assert [j["id"] for j in hook.list_jobs(table_name="events", sort_column="created_date_time")[0]] == [
        newest,
        older,
    ]
    assert hook.list_jobs(job_type="streaming")[0] == []
    page, more = hook.list_jobs(sort_column="created_date_time", limit=1, offset=1)
    assert [j["id"] for j in page] == [other_table] and more
    assert not hook.list_jobs(sort_column="created_date_time", limit=1, offset=2)[1]
    # a summary names the source's connection, not the objects it reads
    assert by_created[0]["source"] == {"type": "s3", "connectionName": "test-conn"}
    since = time.time() - 60  # paged by creation until an older job shows
    assert [j["id"] for j in hook.jobs_created_since("events", since)] == [newest]
    with pytest.raises(IngestApiRejected, match="sortColumn"):
        hook.client.json("GET", "jobs", params={"sortColumn": "size"})


def test_lost_start_found_by_creation_even_when_an_older_job_was_updated_since(polaris, data):
    """Issue 16, 5(a): without a sort the list is newest *updated* first, and an old job updated
    after the lost call came first and ended the search before the new job."""
    ensure(polaris)
    hook = PolarisHook()
    polaris.configure(clock="steps")
    op = ingest_op(prefixes=[PREFIX], input_schema=SCHEMA, wait_for_completion=False)
    spec = op.job_spec()
    older = hook.create_job(spec)["id"]
    polaris.backdate_job(older, 600)
    store = TaskStateStore()
    StartLedger(store, op.external_id_key).begin(spec_digest(spec))  # a try killed during its call...
    made = hook.create_job(spec)["id"]  # ...which had reached Polaris
    hook.cancel_job(older)
    assert op.execute({"task_state_store": store}) == made
    assert created_jobs(polaris) == [older, made]
    assert store[op.external_id_key] == made and not store.get(f"{op.external_id_key}.intent")


def test_garbled_start_reply_adopts_the_job_it_made(polaris, data):
    """Issue 16, 5(c): a 2xx start reply without a readable id is an unknown outcome, not a failure
    (and not a reason to start a second job)."""
    ensure(polaris)
    polaris.add_fault(action="malformed_after", method="POST", path=r"/jobs$")
    job_id = ingest_op(prefixes=[PREFIX]).execute({"task_state_store": TaskStateStore()})
    assert created_jobs(polaris) == [job_id]
    assert len([r for r in requests_to(polaris, "/jobs") if r["method"] == "POST"]) == 1
    assert PolarisHook().get_job(job_id)["executionStatus"] == "completed"


def test_retry_after_a_failed_job_never_adopts_it_when_the_start_never_arrived(polaris, data):
    """Issue 16, 5(b): the retry's start call is cut before Polaris acts on it; the only job with
    this spec is the failed one the retry replaces: not adopted, and no second job either."""
    ensure(polaris)
    store = TaskStateStore()
    polaris.fail_next_job("table is locked by a compaction")
    with pytest.raises(IngestJobFailed, match="locked"):
        ingest_op(prefixes=[PREFIX]).execute({"task_state_store": store})
    [failed] = created_jobs(polaris)
    polaris.add_fault(action="drop", method="POST", path=r"/jobs$")
    with pytest.raises(IngestStartUnknown, match="batch job into table 'events'") as info:
        ingest_op(prefixes=[PREFIX]).execute({"task_state_store": store})
    assert "resubmit_on_unknown_start=True" in str(info.value)
    assert created_jobs(polaris) == [failed]
    assert store[ingest_op().external_id_key] == failed  # still the failed one: nothing adopted


def test_lost_start_never_adopts_an_identical_job_that_failed_just_before_the_call(polaris, data):
    """Within the clock-skew window before the call, a failed job cannot be the one the call made."""
    ensure(polaris)
    polaris.configure(pending_seconds=0, running_seconds=0)  # a job ends at its first read
    hook = PolarisHook()
    spec = ingest_op(prefixes=[PREFIX], input_schema=SCHEMA).job_spec()
    polaris.fail_next_job("someone else's job")
    earlier = hook.create_job(spec)["id"]
    assert hook.get_job(earlier)["executionStatus"] == "failed"
    polaris.add_fault(action="drop", method="POST", path=r"/jobs$")  # cut before Polaris acts
    with pytest.raises(IngestStartUnknown, match="batch job into table 'events'"):
        ingest_op(prefixes=[PREFIX], input_schema=SCHEMA).execute({"task_state_store": TaskStateStore()})
    assert created_jobs(polaris) == [earlier]


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        (None, "got null"),
        ([], "got list"),
        ({"code": "Oops", "message": "busy"}, "no 'id', 'executionStatus'"),
    ],
)
def test_a_2xx_status_reply_that_is_not_a_job_fails_clearly_after_bounded_retries(
    polaris, data, body, missing
):
    """Issue 16, item 8: not an unexpected status '' until the deadline, nor an AttributeError."""
    job_id = start_job(polaris, data)
    polaris.add_fault(action="body", body=body, method="GET", path=rf"/jobs/{job_id}$", times=100)
    hook = PolarisHook(retry=RetryPolicy(attempts=3, backoff=0.01))
    endpoint = f"/v1/projects/test-project/jobs/{job_id}"
    with pytest.raises(IngestApiError, match=rf"Imply Polaris GET http://\S+{endpoint} .*{missing}"):
        hook.job_snapshot(job_id)
    assert len(requests_to(polaris, f"/jobs/{job_id}")) == 3
    polaris.clear_faults()
    assert hook.job_snapshot(job_id).job_id == job_id


def test_on_kill_cancels_the_running_job(polaris, data):
    ensure(polaris)
    polaris.configure(clock="steps")  # the job stays pending until killed
    op = ingest_op(prefixes=[PREFIX])
    error = kill_while_running(op)
    assert PolarisHook().get_job(op.job_id)["executionStatus"] == "canceled"
    assert "canceled" in str(error)


# --- full Airflow runs: retries re-attach, deferral ---------------------------------------------
@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_dag_run_ingests_once_and_reports_metrics(airflow_db, polaris, data, mode):
    ensure(polaris)
    run, tis = run_dag(f"test_polaris_{mode}", {"prefixes": [PREFIX]})
    assert run.state == "success"
    job_id = tis["ingest"].xcom_pull(task_ids="ingest")
    assert PolarisHook().get_job(job_id)["executionStatus"] == "completed"
    assert tis["ingest"].xcom_pull(task_ids="ingest", key="metrics")["numRowsPersisted"] == 50
    assert len(polaris.journal(event="job_created")) == 1
    polled_by_trigger = any("aiohttp" in r["agent"] for r in polaris.journal() if r.get("method") == "GET")
    assert polled_by_trigger == (mode == "deferred")


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_retry_reattaches_to_the_first_tries_job(airflow_db, polaris, data, mode):
    ensure(polaris)
    # The first status polls after submission fail beyond the request budget, failing try 1 after
    # the job started; a transient 503, since a 400 would be final (no retry).
    unavailable = {"action": "status", "status": 503, "retry_after": "0"}
    polaris.add_fault(method="GET", path=r"/jobs/[^/]+$", times=5, **unavailable)
    run, tis = run_dag(f"test_polaris_{mode}", {"prefixes": [PREFIX]})
    assert run.state == "success"
    assert tis["ingest"].try_number == 2
    assert len(polaris.journal(event="job_created")) == 1


# --- sensor and trigger -------------------------------------------------------------------------
def start_job(polaris, data):
    ensure(polaris)
    op = ingest_op(prefixes=[PREFIX], input_schema=[{"name": "timestamp", "dataType": "string"}])
    return PolarisHook().create_job(op.job_spec())["id"]


def test_sensor_pokes_until_completed(polaris, data):
    job_id = start_job(polaris, data)
    sensor = PolarisJobSensor(task_id="wait", job_id=job_id, poll_interval=0.1, timeout=20)
    pokes = [sensor.poke({}) for _ in range(3)]  # each status read moves the job one state on
    assert pokes == [False, True, True]  # running, then completed (and stays so)
    assert PolarisHook().get_job(job_id)["executionStatus"] == "completed"


def test_trigger_serialize_round_trip_and_success(polaris, data):
    job_id = start_job(polaris, data)
    trigger = PolarisJobTrigger(
        job_id=job_id, conn_id="polaris_default", deadline=time.time() + 30, poll_interval=0.1
    )
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)
    assert "password" not in json.dumps(kwargs) and polaris.api_key not in json.dumps(kwargs)
    event = run_trigger(rebuilt)
    assert event["status"] == "success" and event["job"]["status"] == "completed"


def test_trigger_reports_failure_reason_and_timeout(polaris, data):
    polaris.fail_next_job("bad partition spec")
    job_id = start_job(polaris, data)
    event = run_trigger(
        PolarisJobTrigger(
            job_id=job_id, conn_id="polaris_default", deadline=time.time() + 30, poll_interval=0.1
        )
    )
    assert event["status"] == "error" and "bad partition spec" in event["message"]
    job_id = start_job(polaris, data)
    event = run_trigger(PolarisJobTrigger(job_id=job_id, conn_id="polaris_default", deadline=time.time() - 1))
    assert event["status"] == "timeout" and "deadline" in event["message"]


def test_trigger_on_kill_cancels_the_job(polaris, data):
    polaris.configure(clock="steps")  # the job stays pending until killed
    job_id = start_job(polaris, data)
    trigger = PolarisJobTrigger(
        job_id=job_id, conn_id="polaris_default", deadline=time.time() + 30, poll_interval=0.1
    )

    def polled() -> bool:
        return any(r.get("method") == "GET" and "aiohttp" in r["agent"] for r in requests_to(polaris, job_id))

    event = run_trigger(trigger, kill_when=polled)
    assert PolarisHook().get_job(job_id)["executionStatus"] == "canceled"
    assert event["status"] == "error" and "canceled" in event["message"]


def test_trigger_surfaces_api_errors(polaris):
    trigger = PolarisJobTrigger(job_id="no-such-job", conn_id="polaris_default", deadline=time.time() + 5)
    event = run_trigger(trigger)
    assert event["status"] == "error" and "404" in event["message"]


def test_many_triggers_on_one_connection_read_it_once(polaris, monkeypatch):
    """200 deferred waits on one connection in one triggerer loop: one connection lookup (each is
    a round trip to the supervisor in a triggerer), one shared pool, every wait answered."""
    import asyncio

    from airflow.sdk import BaseHook

    from airflow_provider_ingest.http import close_shared_sessions
    from airflow_provider_ingest.triggers.polaris import PolarisJobTrigger

    lookups = []
    real = BaseHook.aget_connection.__func__

    async def counting(cls, conn_id):
        lookups.append(conn_id)
        return await real(cls, conn_id)

    monkeypatch.setattr(BaseHook, "aget_connection", classmethod(counting))
    deadline = time.time() + 30

    async def scenario():
        triggers = [
            PolarisJobTrigger(job_id=f"missing-{i}", conn_id="polaris_default", deadline=deadline)
            for i in range(200)
        ]
        events = await asyncio.gather(*(anext(t.run()) for t in triggers))
        await close_shared_sessions()
        return events

    events = asyncio.run(scenario())
    assert lookups == ["polaris_default"]
    assert all(e.payload["status"] == "error" and "404" in e.payload["message"] for e in events)
    assert len([r for r in polaris.journal() if r.get("method") == "GET"]) >= 200
