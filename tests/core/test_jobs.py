"""The one wait pattern (airflow_provider_ingest.jobs): status tables, snapshots and their trigger
events, the wait loops and their absolute deadlines, and the start ledger on task_state_store.

Pure code: called directly. A job is read through a scripted reader (the input of the wait), never
by replacing the code under test."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from datetime import UTC, datetime

import pytest

from airflow_provider_ingest.exceptions import IngestJobFailed, IngestJobTimeout
from airflow_provider_ingest.jobs import (
    JobSnapshot,
    JobState,
    JobWatch,
    StartLedger,
    StatusTable,
    await_job,
    describe_job,
    snapshot_from_event,
    spec_digest,
    wait_for_job,
)
from airflow_provider_ingest.testing import TaskStateStore


def vendor_table() -> StatusTable:
    """Built inside each test: a table built at import would be built before mutmut's switch."""
    return StatusTable.of(succeeded={"Done", "OK"}, failed={"ERROR"}, running={"Queued", "busy"})


def running(status: str = "busy", **kw) -> JobSnapshot:
    return JobSnapshot("j-1", status, JobState.RUNNING, **kw)


def succeeded(**kw) -> JobSnapshot:
    return JobSnapshot("j-1", "done", JobState.SUCCEEDED, **kw)


class Reader:
    """A job read through ``job_snapshot``: the scripted snapshots in order, then an error (a wait
    that reads past the end of the script is a failed test, not a hang)."""

    service = "Svc"

    def __init__(self, *snapshots: JobSnapshot):
        self.script = list(snapshots)
        self.reads: list[object] = []

    def job_snapshot(self, job_id):
        self.reads.append(job_id)
        assert self.script, "the wait read the job again after its last scripted state"
        return self.script.pop(0)

    async def fetch(self):
        return self.job_snapshot("j-1")


@pytest.fixture
def frozen_clock(monkeypatch):
    """The wall clock held at one instant (the environment, not the code under test)."""
    now = 1_700_000_000.0
    monkeypatch.setattr(time, "time", lambda: now)
    return now


# --- StatusTable -----------------------------------------------------------------------------------
def test_status_table_of_sorts_values_lowercased():
    table = vendor_table()
    assert table == StatusTable(
        succeeded=frozenset({"done", "ok"}),
        failed=frozenset({"error"}),
        running=frozenset({"queued", "busy"}),
    )
    assert isinstance(table.succeeded, frozenset) and isinstance(table.running, frozenset)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("done", JobState.SUCCEEDED),
        ("DONE", JobState.SUCCEEDED),
        ("Ok", JobState.SUCCEEDED),
        ("error", JobState.FAILED),
        ("Error", JobState.FAILED),
        ("QUEUED", JobState.RUNNING),
        ("busy", JobState.RUNNING),
        ("paused", None),
        ("", None),
        (None, None),
    ],
)
def test_state_of_is_case_insensitive_and_unknown_is_none(status, state):
    assert vendor_table().state_of(status) is state


def test_state_of_reads_a_missing_status_as_the_empty_one():
    table = StatusTable.of(succeeded=set(), failed=set(), running={""})
    assert table.state_of(None) is JobState.RUNNING
    assert table.state_of("") is JobState.RUNNING


def test_job_state_values():
    assert [s.value for s in JobState] == ["running", "succeeded", "failed"]


# --- JobSnapshot and events ---------------------------------------------------------------------
def test_snapshot_event_round_trip():
    snap = JobSnapshot("j-9", "Done", JobState.SUCCEEDED, "why", "3/4", "careful", {"rows": 3})
    event = snap.to_event()
    assert event == {
        "job_id": "j-9",
        "status": "Done",
        "state": "succeeded",
        "reason": "why",
        "progress": "3/4",
        "warning": "careful",
        "details": {"rows": 3},
    }
    assert JobSnapshot.from_event(event) == snap


def test_snapshot_event_without_state_or_details():
    snap = JobSnapshot("j-9", "weird", None)
    event = snap.to_event()
    assert event["state"] is None and event["details"] == {}
    back = JobSnapshot.from_event({"job_id": "j-9", "status": "weird", "state": None, "details": None})
    assert back == snap and back.details == {}
    assert JobSnapshot.from_event({"job_id": "j-9", "status": "weird"}) == snap


def test_snapshot_from_event_success_failure_and_timeout():
    snap = succeeded(details={"rows": 1})
    assert snapshot_from_event({"status": "success", "job": snap.to_event()}) == snap
    with pytest.raises(IngestJobFailed, match=r"^boom$"):
        snapshot_from_event({"status": "error", "message": "boom"})
    with pytest.raises(IngestJobTimeout, match=r"^too late$"):
        snapshot_from_event({"status": "timeout", "message": "too late"})
    with pytest.raises(IngestJobFailed, match=r"^wait failed: \{'status': 'odd'\}$") as raised:
        snapshot_from_event({"status": "odd"})
    assert not isinstance(raised.value, IngestJobTimeout)
    with pytest.raises(IngestJobFailed, match=r"^wait failed: \{'status': 'error', 'message': ''\}$"):
        snapshot_from_event({"status": "error", "message": ""})


@pytest.mark.parametrize("event", [None, {}])
def test_snapshot_from_an_empty_event_fails(event):
    with pytest.raises(IngestJobFailed, match=r"^the trigger fired without an event payload$"):
        snapshot_from_event(event)


# --- describe_job ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("job_id", "text"),
    [
        ("abc", "abc"),
        (42, "42"),
        (["d1", "d2", "d3"], "of 3 documents (d1, ...)"),
        ([], "of 0 documents"),
        ({"ingestion_job_id": "ij-1", "documents": 7}, "ij-1 (7 documents)"),
        ({"ingestion_job_id": "ij-1"}, "ij-1 (None documents)"),
        ({"other": 1}, "{'other': 1}"),
    ],
)
def test_describe_job(job_id, text):
    assert describe_job(job_id) == text


# --- JobWatch ------------------------------------------------------------------------------------
def test_watch_done_only_on_success():
    watch = JobWatch("Svc", "j-1")
    assert watch.done(running()) is False
    assert watch.done(JobSnapshot("j-1", "mystery", None)) is False
    assert watch.done(succeeded()) is True


def test_watch_failure_names_service_job_status_and_reason():
    watch = JobWatch("Svc", ["a", "b"])
    with pytest.raises(
        IngestJobFailed, match=r"^Svc job of 2 documents \(a, \.\.\.\) ended ERROR: disk full$"
    ):
        watch.done(JobSnapshot("x", "ERROR", JobState.FAILED, reason="disk full"))
    with pytest.raises(
        IngestJobFailed, match=r"^Svc job of 2 documents \(a, \.\.\.\) ended ERROR: no reason given$"
    ):
        watch.done(JobSnapshot("x", "ERROR", JobState.FAILED))


def test_watch_failure_reason_is_redacted():
    signed = "https://b.s3.amazonaws.com/k?X-Amz-Signature=deadbeef0123&X-Amz-Credential=AKIAX"
    watch = JobWatch("Svc", "j-1")
    with pytest.raises(IngestJobFailed, match=r"ended failed: cannot read") as raised:
        watch.done(JobSnapshot("j-1", "failed", JobState.FAILED, reason=f"cannot read {signed}"))
    assert "deadbeef0123" not in str(raised.value)


def test_watch_deadline_defaults_to_never():
    watch = JobWatch("Svc", "j-1")
    assert watch.deadline == math.inf
    assert watch.next_sleep(5.0) == 5.0


def test_next_sleep_is_the_interval_or_what_is_left(frozen_clock):
    watch = JobWatch("Svc", "j-1", frozen_clock + 2.5)
    assert watch.seconds_left() == 2.5
    assert watch.next_sleep(10.0) == 2.5
    assert watch.next_sleep(1.0) == 1.0
    almost = JobWatch("Svc", "j-1", frozen_clock + 0.25)  # under a second left: still a sleep
    assert almost.next_sleep(10.0) == 0.25


@pytest.mark.parametrize("past", [0.0, 0.5])
def test_next_sleep_at_or_past_the_deadline_times_out(frozen_clock, past):
    watch = JobWatch("Svc", {"ingestion_job_id": "ij", "documents": 2}, frozen_clock - past)
    message = (
        r"^Svc job ij \(2 documents\) did not finish before the wait's deadline \(last status 'unknown'\); "
        r"the job was left running$"
    )
    with pytest.raises(IngestJobTimeout, match=message):
        watch.next_sleep(1.0)


def test_timeout_names_the_last_status_seen(frozen_clock):
    watch = JobWatch("Svc", "j-1", frozen_clock)
    watch.done(running("queued"))
    watch.done(running("busy", progress="1/2"))
    with pytest.raises(IngestJobTimeout, match=r"\(last status 'busy'\)"):
        watch.next_sleep(1.0)


def test_watch_logs_each_change_once_and_warnings_once(caplog):
    log = logging.getLogger("tests.core.watch")
    watch = JobWatch("Svc", "j-1", log=log)
    with caplog.at_level(logging.INFO, logger="tests.core.watch"):
        for snap in (
            running("busy"),
            running("busy"),
            running("busy", progress="1/2"),
            running("busy", progress="1/2", warning="slow"),
            running("busy", progress="1/2", warning="slower"),
            JobSnapshot("j-1", "odd", None),
            JobSnapshot("j-1", "odd", None),
            JobSnapshot("j-1", "odder", None),
        ):
            watch.done(snap)
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert {name for name, _, _ in lines} == {"tests.core.watch"}
    assert [(level, msg) for _, level, msg in lines] == [
        ("INFO", "Svc job j-1 is busy"),
        ("INFO", "Svc job j-1 is busy (1/2)"),
        ("WARNING", "Svc job j-1: slow"),
        ("INFO", "Svc job j-1 is odd"),
        ("WARNING", "Svc job j-1 reports an unexpected status 'odd'; still waiting"),
        ("INFO", "Svc job j-1 is odder"),
        ("WARNING", "Svc job j-1 reports an unexpected status 'odder'; still waiting"),
    ]


def test_watch_without_a_log_uses_the_module_logger(caplog):
    watch = JobWatch("Svc", "j-1")
    with caplog.at_level(logging.INFO, logger="airflow_provider_ingest.jobs"):
        watch.done(running("busy"))
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("airflow_provider_ingest.jobs", "Svc job j-1 is busy")
    ]


# --- wait_for_job / await_job --------------------------------------------------------------------
def test_wait_for_job_polls_until_success():
    reader = Reader(running(), running(), succeeded(details={"n": 1}))
    assert wait_for_job(reader, "j-1", poll_interval=0.001) == succeeded(details={"n": 1})
    assert reader.reads == ["j-1", "j-1", "j-1"]


def test_wait_for_job_raises_the_failure():
    reader = Reader(running(), JobSnapshot("j-1", "ERROR", JobState.FAILED, reason="bad row"))
    with pytest.raises(IngestJobFailed, match=r"^Svc job j-1 ended ERROR: bad row$"):
        wait_for_job(reader, "j-1", poll_interval=0.001, timeout=60)
    assert len(reader.reads) == 2


def test_wait_for_job_times_out_after_timeout():
    reader = Reader(running("queued"))
    with pytest.raises(IngestJobTimeout, match=r"^Svc job j-1 did not finish .*\(last status 'queued'\)"):
        wait_for_job(reader, "j-1", poll_interval=0.001, timeout=0)
    assert len(reader.reads) == 1


def test_wait_for_job_deadline_wins_over_timeout():
    reader = Reader(running())
    with pytest.raises(IngestJobTimeout, match=r"did not finish before the wait's deadline"):
        wait_for_job(reader, "j-1", poll_interval=0.001, timeout=3600, deadline=time.time() - 1)
    reader = Reader(running(), succeeded())
    assert (
        wait_for_job(reader, "j-1", poll_interval=0.001, timeout=0, deadline=time.time() + 3600)
        == succeeded()
    )


def test_wait_for_job_logs_to_the_given_log(caplog):
    log = logging.getLogger("tests.core.wait")
    with caplog.at_level(logging.INFO, logger="tests.core.wait"):
        wait_for_job(Reader(succeeded()), "j-1", poll_interval=0.001, log=log)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("tests.core.wait", "Svc job j-1 is done")]


def test_await_job_polls_until_success_and_logs_to_the_given_log(caplog):
    reader = Reader(running(), running(), succeeded())
    log = logging.getLogger("tests.core.await")
    with caplog.at_level(logging.INFO, logger="tests.core.await"):
        got = asyncio.run(
            await_job("Svc", "j-1", reader.fetch, poll_interval=0.001, deadline=time.time() + 3600, log=log)
        )
    assert got == succeeded() and len(reader.reads) == 3
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("tests.core.await", "Svc job j-1 is busy"),
        ("tests.core.await", "Svc job j-1 is done"),
    ]


def test_await_job_failure_and_deadline():
    reader = Reader(JobSnapshot("j-1", "ERROR", JobState.FAILED, reason="nope"))
    with pytest.raises(IngestJobFailed, match=r"^Svc job j-1 ended ERROR: nope$"):
        asyncio.run(await_job("Svc", "j-1", reader.fetch, poll_interval=0.001, deadline=time.time() + 3600))
    reader = Reader(running("queued"))
    with pytest.raises(IngestJobTimeout, match=r"^Svc job j-1 did not finish .*\(last status 'queued'\)"):
        asyncio.run(await_job("Svc", "j-1", reader.fetch, poll_interval=0.001, deadline=time.time() - 1))
    assert len(reader.reads) == 1


# --- spec_digest ---------------------------------------------------------------------------------
def test_spec_digest_is_sha256_of_canonical_json():
    spec = {"b": [1, 2], "a": {"y": "é", "x": None}}
    canonical = '{"a":{"x":null,"y":"\\u00e9"},"b":[1,2]}'
    assert spec_digest(spec) == hashlib.sha256(canonical.encode()).hexdigest()[:32]
    assert spec_digest({"a": {"x": None, "y": "é"}, "b": [1, 2]}) == spec_digest(spec)
    assert len(spec_digest(spec)) == 32
    assert spec_digest({"b": [2, 1], "a": {"y": "é", "x": None}}) != spec_digest(spec)


def test_spec_digest_names_non_json_values_by_their_text():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    expected = hashlib.sha256(f'{{"at":"{when}"}}'.encode()).hexdigest()[:32]
    assert spec_digest({"at": when}) == expected


# --- StartLedger -----------------------------------------------------------------------------------
def test_ledger_records_intent_then_id_and_deadline(frozen_clock):
    store = TaskStateStore()
    ledger = StartLedger(store, "job")
    assert ledger.job_id() is None and ledger.pending() is None
    intent = ledger.begin("d1", path="s3://b/k")
    assert intent == {"at": frozen_clock, "digest": "d1", "replaces": None, "path": "s3://b/k"}
    assert store == {"job.intent": intent}
    assert ledger.pending() == intent
    ledger.started("id-1", timeout=600)
    assert store == {"job": "id-1", "job.deadline": frozen_clock + 600}
    assert ledger.job_id() == "id-1" and ledger.pending() is None
    assert ledger.deadline(5) == frozen_clock + 600


def test_ledger_a_retry_replacing_a_job_is_pending_until_its_id_is_stored(frozen_clock):
    store = TaskStateStore()
    ledger = StartLedger(store, "job")
    ledger.started("id-1", timeout=60)
    intent = ledger.begin("d2")
    assert intent["replaces"] == "id-1" and store["job.intent"]["replaces"] == "id-1"
    assert StartLedger(store, "job").pending() == intent  # a later try sees the unknown outcome
    ledger.started("id-2", timeout=60)
    assert ledger.pending() is None and ledger.job_id() == "id-2"


def test_ledger_intent_whose_id_was_stored_is_not_pending():
    store = TaskStateStore()
    store.set("job", "id-2")
    store.set("job.intent", {"at": 1.0, "digest": "d", "replaces": "id-1"})
    assert StartLedger(store, "job").pending() is None
    store.set("job.intent", "garbage")
    assert StartLedger(store, "job").pending() is None


def test_ledger_not_started_removes_the_intent():
    store = TaskStateStore()
    ledger = StartLedger(store, "job")
    ledger.begin("d1")
    ledger.not_started()
    assert store == {} and ledger.pending() is None


def test_ledger_deadline_is_stored_once(frozen_clock):
    store = TaskStateStore()
    ledger = StartLedger(store, "job")
    assert ledger.deadline(120) == frozen_clock + 120
    assert store == {"job.deadline": frozen_clock + 120}
    assert ledger.deadline(5) == frozen_clock + 120
    store.set("job.deadline", 17)
    got = ledger.deadline(5)
    assert got == 17.0 and isinstance(got, float)
    store.set("job.deadline", "soon")  # not a number: replaced by a fresh deadline
    assert ledger.deadline(30) == frozen_clock + 30 and store["job.deadline"] == frozen_clock + 30


def test_ledger_delete_removes_a_key_and_ignores_a_missing_one():
    store = TaskStateStore()
    ledger = StartLedger(store, "job")
    store.set("job", "id-1")
    ledger.delete("job")
    ledger.delete("job")
    assert store == {}


def test_ledger_without_a_store_keeps_values_in_memory_with_airflows_rules(frozen_clock):
    ledger = StartLedger(None, "job")
    assert ledger.pending() is None
    intent = ledger.begin("d1")
    assert ledger.pending() == intent
    ledger.started("id-1", timeout=10)
    assert ledger.job_id() == "id-1" and ledger.deadline(1) == frozen_clock + 10 and ledger.pending() is None
    with pytest.raises(ValueError, match=r"^Cannot set value as None$"):
        ledger.store.set("job", None)
    assert ledger.job_id() == "id-1"
    ledger.delete("job")
    ledger.delete("job")
    assert ledger.job_id() is None
    other = StartLedger(None, "job")
    assert other.job_id() is None  # each ledger without a store has its own memory


def test_the_in_memory_store_keeps_airflows_json_rules():
    """Outside a task the ledger keeps its values in memory by the rules of Airflow's
    task_state_store: what is read back is the JSON round trip, and what is not JSON is refused."""
    ledger = StartLedger(None, "job")
    ledger.store.set("job.extra", ("a", 1))
    assert ledger.store.get("job.extra") == ["a", 1]
    with pytest.raises(TypeError, match="not JSON serializable"):
        ledger.store.set("job.extra", {"a"})
    with pytest.raises(ValueError, match=r"^Cannot set value as None$"):
        ledger.store.set("job.extra", None)
    ledger.store.delete("job.extra")
    ledger.store.delete("job.extra")  # a missing key: harmless
    assert "job.extra" not in ledger.store
