"""The shared trigger (airflow_provider_ingest.triggers.base): the event each wait ends with, the
absolute deadline, serialization, and on_kill cancelling only a job the trigger owns.

Driven with asyncio as the triggerer would, over real HTTP against the shipped AEP fake (no S3:
a batch is created, filled and completed through the hook); ``wait_event`` is also driven with a
scripted fetch, its input."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_trigger

from airflow_provider_ingest.auth import clear_token_cache
from airflow_provider_ingest.exceptions import IngestApiError, IngestJobFailed
from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook
from airflow_provider_ingest.http import close_shared_sessions
from airflow_provider_ingest.jobs import JobSnapshot, JobState
from airflow_provider_ingest.testing import AdobeAepFake
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID
from airflow_provider_ingest.triggers.adobe_aep import AdobeAepBatchTrigger
from airflow_provider_ingest.triggers.base import wait_event

CONN = "aep_core_wait"  # an id of its own: the suite's session fake owns adobe_aep_default
SERVICE = "Adobe Experience Platform"


@pytest.fixture(scope="session")
def aep_core_server():
    with AdobeAepFake(clock="polls") as fake:  # no S3: batches are filled through the hook
        yield fake


@pytest.fixture
def aep(aep_core_server, monkeypatch):
    """The fake, fresh, reachable as connection ``CONN`` (the fork-safe asgiref executor a trigger
    needs under mutmut comes from tests/core/conftest.py)."""
    aep_core_server.reset()
    clear_token_cache()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(aep_core_server.airflow_connection()))
    yield aep_core_server
    aep_core_server.clear_faults()
    clear_token_cache()


def parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"city": ["Oslo", "Lima"], "session": ["s1", "s2"]}), sink)
    return sink.getvalue()


def new_batch(*, files: bool = True, complete: bool = True) -> str:
    """A batch: still loading (``complete=False``), or completed with a valid file (it will
    succeed) or with none (it will fail)."""
    hook = AdobeAepHook(CONN)
    batch_id = hook.create_batch(DATASET_ID)
    if files:
        data = parquet_bytes()
        hook.upload_file(batch_id, DATASET_ID, "a.parquet", len(data), lambda: io.BytesIO(data))
    if complete:
        hook.complete_batch(batch_id)
    return batch_id


def requests_to(fake, batch_id: str, method: str | None = None) -> list[dict]:
    return [
        r
        for r in fake.journal()
        if batch_id in str(r.get("path", "")) and (method is None or r.get("method") == method)
    ]


def status_reads(fake, batch_id: str) -> list[dict]:
    return [r for r in requests_to(fake, batch_id, "GET") if "/catalog/batches/" in r["path"]]


def trigger(batch_id: str, **kwargs) -> AdobeAepBatchTrigger:
    kwargs.setdefault("deadline", time.time() + 60)
    kwargs.setdefault("poll_interval", 0.01)
    return AdobeAepBatchTrigger(job_id=batch_id, conn_id=CONN, **kwargs)


def kill(t: AdobeAepBatchTrigger) -> None:
    """``on_kill`` in a fresh loop, as the triggerer calls it for a task killed while deferred."""

    async def scenario():
        await t.on_kill()
        await close_shared_sessions()

    asyncio.run(scenario())


# --- serialization ---------------------------------------------------------------------------------
def test_serialize_names_the_class_and_every_argument():
    t = AdobeAepBatchTrigger(job_id="b-1", conn_id=CONN, deadline=1234.5)
    assert t.serialize() == (
        "airflow_provider_ingest.triggers.adobe_aep.AdobeAepBatchTrigger",
        {"job_id": "b-1", "conn_id": CONN, "deadline": 1234.5, "poll_interval": 30.0, "cancel_on_kill": True},
    )
    given = AdobeAepBatchTrigger(
        job_id="b-2", conn_id="c", deadline=9.0, poll_interval=2.0, cancel_on_kill=False
    )
    path, kwargs = given.serialize()
    assert kwargs == {
        "job_id": "b-2",
        "conn_id": "c",
        "deadline": 9.0,
        "poll_interval": 2.0,
        "cancel_on_kill": False,
    }
    rebuilt = AdobeAepBatchTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)


def test_hook_reads_the_triggers_connection():
    hook = trigger("b-1").hook()
    assert isinstance(hook, AdobeAepHook) and hook.adobe_aep_conn_id == CONN


# --- run -------------------------------------------------------------------------------------------
def test_run_polls_until_the_batch_succeeds(aep):
    aep.configure(reads_per_step=2)  # staging for one read, then success
    batch_id = new_batch()
    event = run_trigger(trigger(batch_id))
    assert set(event) == {"status", "job"}
    assert event["status"] == "success"
    job = event["job"]
    assert (job["job_id"], job["status"], job["state"]) == (batch_id, "success", "succeeded")
    assert job["details"]["metrics"]["recordsWritten"] == 2
    reads = status_reads(aep, batch_id)
    assert len(reads) == 2 and all("aiohttp" in r["agent"] for r in reads)


def test_run_reports_the_batch_failure_with_its_reason(aep):
    batch_id = new_batch(files=False)
    event = run_trigger(trigger(batch_id))
    assert event == {
        "status": "error",
        "job_id": batch_id,
        "message": f"{SERVICE} job {batch_id} ended failed: INGEST-1212-400: the batch has no files",
    }


def test_run_reports_an_api_error(aep):
    event = run_trigger(trigger("nosuchbatch"))
    assert event["status"] == "error" and event["job_id"] == "nosuchbatch"
    assert "HTTP 404" in event["message"] and "nosuchbatch not found" in event["message"]


def test_run_times_out_at_the_absolute_deadline(aep):
    batch_id = new_batch(complete=False)  # stays loading
    event = run_trigger(trigger(batch_id, deadline=time.time() - 1))
    assert event == {
        "status": "timeout",
        "job_id": batch_id,
        "message": f"{SERVICE} job {batch_id} did not finish before the wait's deadline "
        "(last status 'loading'); the job was left running",
    }
    assert len(status_reads(aep, batch_id)) == 1
    assert aep.batches[batch_id]["status"] == "loading"


# --- on_kill -----------------------------------------------------------------------------------------
def test_on_kill_while_waiting_aborts_the_batch(aep):
    batch_id = new_batch(complete=False)
    event = run_trigger(trigger(batch_id), kill_when=lambda: bool(status_reads(aep, batch_id)))
    assert aep.batches[batch_id]["status"] == "aborted"
    assert event["status"] == "error" and event["message"].endswith("ended aborted: no reason given")


def test_on_kill_cancels_the_job_it_owns(aep):
    batch_id = new_batch(complete=False)
    kill(trigger(batch_id))
    aborts = requests_to(aep, batch_id, "POST")
    assert [r["path"] for r in aborts][-1].endswith(f"/batches/{batch_id}")
    assert aep.batches[batch_id]["status"] == "aborted"
    assert "aiohttp" in aborts[-1]["agent"]


def test_on_kill_leaves_a_job_it_does_not_own(aep):
    batch_id = new_batch(complete=False)
    before = len(aep.journal())
    kill(trigger(batch_id, cancel_on_kill=False))
    assert aep.journal()[before:] == []
    assert aep.batches[batch_id]["status"] == "loading"


# --- wait_event ------------------------------------------------------------------------------------
class Fetch:
    """The job's snapshots in order; an exception in the script is raised by that read."""

    def __init__(self, *script):
        self.script = list(script)

    async def __call__(self):
        assert self.script, "read past the script"
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


RUNNING = JobSnapshot("j", "busy", JobState.RUNNING)
DONE = JobSnapshot("j", "done", JobState.SUCCEEDED, details={"rows": 4})


def event_of(fetch, deadline_in: float = 60, tag=None) -> dict:
    return asyncio.run(
        wait_event(
            "Svc", "j", fetch, poll_interval=0.001, deadline=time.time() + deadline_in, log=None, tag=tag
        )
    ).payload


def test_wait_event_success_carries_the_snapshot_and_the_tag():
    assert event_of(Fetch(RUNNING, DONE)) == {"status": "success", "job": DONE.to_event()}
    tagged = event_of(Fetch(DONE), tag={"key": "k", "part": 2})
    assert tagged == {"status": "success", "job": DONE.to_event(), "key": "k", "part": 2}


def test_wait_event_timeout_carries_the_tag():
    event = event_of(Fetch(RUNNING), deadline_in=-1, tag={"key": "k"})
    assert event == {
        "status": "timeout",
        "job_id": "j",
        "message": "Svc job j did not finish before the wait's deadline (last status 'busy'); "
        "the job was left running",
        "key": "k",
    }
    assert set(event_of(Fetch(RUNNING), deadline_in=-1)) == {"status", "job_id", "message"}


def test_wait_event_job_failure_and_api_error_are_error_events():
    failed = JobSnapshot("j", "ERROR", JobState.FAILED, reason="bad")
    assert event_of(Fetch(failed), tag={"key": "k"}) == {
        "status": "error",
        "job_id": "j",
        "message": "Svc job j ended ERROR: bad",
        "key": "k",
    }
    api = IngestApiError("Svc", "GET", "/jobs/j", 500, "server down")
    assert event_of(Fetch(RUNNING, api)) == {"status": "error", "job_id": "j", "message": str(api)}
    refused = IngestJobFailed("refused")
    assert event_of(Fetch(refused)) == {"status": "error", "job_id": "j", "message": "refused"}


def test_wait_event_lets_other_errors_through():
    with pytest.raises(ZeroDivisionError, match="boom"):
        event_of(Fetch(ZeroDivisionError("boom")))


def test_wait_event_logs_to_the_given_log(caplog):
    log = logging.getLogger("tests.core.trigger")
    with caplog.at_level(logging.INFO):
        asyncio.run(
            wait_event("Svc", "j", Fetch(DONE), poll_interval=0.001, deadline=time.time() + 60, log=log)
        )
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("tests.core.trigger", "Svc job j is done")]


def test_run_logs_the_status_to_the_triggers_log(aep, caplog, capfd):
    """The status lines go to the trigger's log (shown in the deferred task's log), not to the
    provider's module logger (the triggerer's own log)."""
    batch_id = new_batch()
    t = trigger(batch_id)
    with caplog.at_level(logging.INFO, logger="airflow_provider_ingest.jobs"):
        assert run_trigger(t)["status"] == "success"
    assert [r for r in caplog.records if r.name == "airflow_provider_ingest.jobs"] == []
    lines = [line for line in capfd.readouterr().out.splitlines() if f"job {batch_id} is success" in line]
    assert len(lines) == 1 and f"[{t.log.name}]" in lines[0]
