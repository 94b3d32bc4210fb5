"""The shared start-and-wait operator (operators/base.py), driven directly over a job service
served over HTTP.

``RemoteJobOperator`` is a minimal service operator whose hook (``RemoteHook``, on the project's
HTTP core) talks to ``JobsFake`` (tests/core/jobs_fake.py), a fake on the shipped fake base. The
fake journals every request it answers, so ``remote.calls()`` is what the service saw (start,
find, status, cancel, result), and the outcome of a start call (lost reply, garbled reply, 400,
never sent) comes from what happened on the wire, classified by the core as in production.
``TaskStateStore`` stands in for Airflow's ``task_state_store``; a retry is simulated by running a
fresh operator with the same store, as Airflow does.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import TaskDeferralError, TaskDeferralTimeout, TaskDeferred

from airflow_provider_ingest.exceptions import (
    IngestApiError,
    IngestApiRejected,
    IngestInputError,
    IngestJobFailed,
    IngestJobTimeout,
    IngestStartUnknown,
)
from airflow_provider_ingest.jobs import JobSnapshot, spec_digest
from airflow_provider_ingest.operators.base import (
    IngestJobOperator,
    default_deferrable,
    fail_fast_on_bad_input,
)
from airflow_provider_ingest.testing import TaskStateStore

from .jobs_fake import STATUSES, JobsFake, RemoteHook
from .support import serving

KEY = "remote_job_id"  # where the id lives in task_state_store (the ResumableJobMixin default)
REQUEST = {"folder": "s3://bucket/in/", "mode": "append"}
RUN_ID = "scheduled__2026-12-03T00:00:00+00:00"
SENT = {**REQUEST, "label": RUN_ID}  # what the start call sends: the request, labelled with the run
CONN_ID = "remote_operator_base"
UNREACHABLE = "remote_operator_base_unreachable"  # a port nothing listens on: never sent
UNSIGNED = "remote_operator_base_unsigned"  # no signing key: the hook fails before sending


class RecordedTrigger:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class PlainRemoteOperator(IngestJobOperator):
    """A service operator that keeps the base's defaults (no find_started, no describe_start)."""

    hook_class = RemoteHook
    trigger_class = RecordedTrigger

    def __init__(self, *, request: dict[str, Any] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("task_id", "ingest")
        kwargs.setdefault("conn_id", CONN_ID)
        super().__init__(**kwargs)
        self.request = dict(REQUEST if request is None else request)

    def validate(self) -> None:
        if not self.request.get("folder"):
            raise ValueError("folder: must name an S3 folder")

    def submit(self, context: Any) -> Any:
        request = {**self.request, "label": context["run_id"]}
        return self.start_call(context, request, lambda: self.hook.start(request))

    def job_result(self, job_id: Any, snapshot: JobSnapshot | None, context: Any) -> Any:
        result = {
            **self.hook.result(job_id),
            "status": snapshot.status if snapshot is not None else None,
            "rows": snapshot.details.get("rows") if snapshot is not None else None,
        }
        if ti := context.get("ti"):
            ti.xcom_push(key="result", value=result)
        return result


class RemoteJobOperator(PlainRemoteOperator):
    """One whose API can find a job whose start reply was lost."""

    def find_started(self, intent: dict[str, Any], context: Any) -> Any:
        return self.hook.find(context["run_id"], intent)

    def describe_start(self) -> str:
        return f"folder {self.request['folder']}"


class IdempotentRemoteOperator(RemoteJobOperator):
    start_is_idempotent = True


class UncancelableRemoteOperator(RemoteJobOperator):
    can_cancel = False


@pytest.fixture(scope="module")
def service():
    """One fake for the module, as connection CONN_ID, plus two connections whose start calls
    provably send nothing: one to a port that refuses connections, one without a signing key."""
    with socket.socket() as refusing, serving(JobsFake(), CONN_ID) as (server, env):
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: every connect is refused
        host = f"http://127.0.0.1:{refusing.getsockname()[1]}"
        env.setenv(
            f"AIRFLOW_CONN_{UNREACHABLE.upper()}", json.dumps({**server.airflow_connection(), "host": host})
        )
        env.setenv(f"AIRFLOW_CONN_{UNSIGNED.upper()}", json.dumps(server.airflow_connection(key=None)))
        yield server


@pytest.fixture
def remote(service):
    service.reset()
    yield service
    service.reset()


def kill_on_read(op: IngestJobOperator, read: int | None = None) -> Any:
    """A status-read hook for the fake: kill the task (``on_kill``) on the ``read``-th status read
    (each read when None), while the operator waits for that read's reply."""
    reads: list[None] = []

    def on_status() -> None:
        reads.append(None)
        if read is None or len(reads) == read:
            op.on_kill()

    return on_status


class TaskInstance:
    """What an operator uses of the running task instance: XCom pushes."""

    stats_tags: dict[str, str] = {}

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def context(store: TaskStateStore | None, ti: TaskInstance | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"run_id": RUN_ID, "ti": ti or TaskInstance()}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def run(op: IngestJobOperator, store: TaskStateStore | None, ti: TaskInstance | None = None) -> Any:
    return op.execute(context(store, ti))


def fast(**kwargs: Any) -> RemoteJobOperator:
    """An operator that polls without sleeping."""
    return RemoteJobOperator(poll_interval=0, **kwargs)


def intent_time(intent: dict[str, Any]) -> str:
    return datetime.fromtimestamp(intent["at"], UTC).isoformat(timespec="seconds")


# --- default_deferrable ------------------------------------------------------------------------
@pytest.mark.parametrize("setting", [True, False])
def test_default_deferrable_reads_operators_default_deferrable(monkeypatch, setting):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(setting))
    assert default_deferrable() is setting


def test_default_deferrable_is_false_when_not_configured(monkeypatch):
    monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    assert default_deferrable() is False


# --- bad input ---------------------------------------------------------------------------------
def test_a_value_error_becomes_an_input_error_that_is_not_retried():
    cause = ValueError("folder: must name an S3 folder")
    with pytest.raises(IngestInputError, match=r"^folder: must name an S3 folder$") as raised:
        with fail_fast_on_bad_input():
            raise cause
    assert raised.value.__cause__ is cause


def test_an_input_error_and_other_errors_pass_unchanged():
    already = IngestInputError("timeout: must be positive")
    with pytest.raises(IngestInputError) as raised:
        with fail_fast_on_bad_input():
            raise already
    assert raised.value is already
    other = KeyError("folder")
    with pytest.raises(KeyError) as raised_other:
        with fail_fast_on_bad_input():
            raise other
    assert raised_other.value is other


def test_bad_input_fails_before_any_remote_call(remote):
    with pytest.raises(IngestInputError, match="folder: must name an S3 folder"):
        run(fast(request={"folder": ""}), TaskStateStore())
    assert remote.calls() == []


# --- a fresh start -----------------------------------------------------------------------------
def test_a_fresh_start_stores_the_id_and_deadline_then_waits_for_the_job(remote):
    store = TaskStateStore()
    seen: dict[str, Any] = {}
    op = fast(timeout=600.0)
    remote.on_start = lambda: seen.update(store)  # what task_state_store holds while the call is out
    before = datetime.now(UTC).timestamp()
    result = run(op, store)
    after = datetime.now(UTC).timestamp()

    assert result == {"job_id": "job-1", "status": "done", "rows": 7}
    assert remote.calls() == [("start", "ok"), ("status", "job-1"), ("status", "job-1"), ("result", "job-1")]
    assert remote.jobs["job-1"]["request"] == SENT
    intent = seen[f"{KEY}.intent"]
    assert intent["digest"] == spec_digest(SENT)
    assert before <= intent["at"] <= after
    assert KEY not in seen  # the id is stored after the call, never before
    assert set(store) == {KEY, f"{KEY}.deadline"}  # the intent is gone once the id is stored
    assert store[KEY] == "job-1"
    assert before + 600.0 <= store[f"{KEY}.deadline"] <= after + 600.0
    assert op.job_id == "job-1"


def test_without_a_store_the_job_still_starts_once_and_is_waited_for(remote):
    assert run(fast(), None)["job_id"] == "job-1"
    assert remote.calls("start") == ["ok"]


def test_without_a_store_an_unknown_start_still_names_when_the_call_was_made(remote):
    """Outside a task the intent is kept in memory, for the whole run of the operator."""
    remote.script_starts("lost")
    before = datetime.now(UTC).isoformat(timespec="seconds")
    with pytest.raises(IngestStartUnknown) as raised:
        run(fast(), None)
    after = datetime.now(UTC).isoformat(timespec="seconds")
    when = str(raised.value).split(" at ")[1].split(" (UTC)")[0]
    assert before <= when <= after


def test_a_failed_job_fails_the_task_with_its_status(remote):
    remote.script = ["running", "failed"]
    with pytest.raises(IngestJobFailed, match=r"^Remote job job-1 ended failed: no reason given$"):
        run(fast(), TaskStateStore())


def test_without_wait_for_completion_it_returns_right_after_the_start(remote):
    store = TaskStateStore()
    op = RemoteJobOperator(wait_for_completion=False, deferrable=True)
    assert run(op, store) == {"job_id": "job-1", "status": None, "rows": None}
    assert remote.calls() == [("start", "ok"), ("result", "job-1")]  # no status read, no deferral
    assert store[KEY] == "job-1"


def test_the_result_is_read_once_per_run_and_pushed_with_the_tasks_context(remote):
    ti = TaskInstance()
    result = run(fast(), TaskStateStore(), ti)
    assert remote.calls("result") == ["job-1"]
    assert ti.xcom["result"] == result


def test_the_waits_progress_goes_to_the_task_log(remote, capsys):
    op = fast()
    run(op, TaskStateStore())
    lines = [line for line in capsys.readouterr().out.splitlines() if "Remote job job-1 is done" in line]
    assert len(lines) == 1
    assert f"[airflow.task.operators.{type(op).__module__}.RemoteJobOperator]" in lines[0]


def test_the_defaults_wait_for_the_job_and_fail_an_unknown_start(remote):
    """Without arguments: wait for the job (blocking, as [operators] default_deferrable is unset
    here), cancel it on timeout and on kill, never resend an unknown start."""
    op = PlainRemoteOperator()
    op.poll_interval = 0  # only so the test does not sleep between status reads
    assert run(op, TaskStateStore())["status"] == "done"
    remote.script_starts("lost")
    with pytest.raises(IngestStartUnknown):
        run(PlainRemoteOperator(), TaskStateStore())
    assert remote.calls("start") == ["ok", "lost"]


def test_the_default_deadline_poll_interval_and_kill_rule_reach_the_trigger(remote):
    store = TaskStateStore()
    before = datetime.now(UTC).timestamp()
    with pytest.raises(TaskDeferred) as deferred:
        run(PlainRemoteOperator(deferrable=True), store)
    after = datetime.now(UTC).timestamp()
    kwargs = deferred.value.trigger.kwargs
    assert kwargs["poll_interval"] == 30.0
    assert kwargs["cancel_on_kill"] is True
    assert before + 6 * 3600 <= kwargs["deadline"] <= after + 6 * 3600


# --- deferral ----------------------------------------------------------------------------------
def test_deferral_hands_the_stored_job_and_deadline_to_the_trigger(remote):
    store = TaskStateStore()
    op = RemoteJobOperator(deferrable=True, poll_interval=12.5, timeout=900.0, cancel_on_kill=False)
    with pytest.raises(TaskDeferred) as deferred:
        run(op, store)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.trigger.kwargs == {
        "job_id": "job-1",
        "conn_id": CONN_ID,
        "deadline": store[f"{KEY}.deadline"],
        "poll_interval": 12.5,
        "cancel_on_kill": False,
    }
    assert store[KEY] == "job-1"  # stored before the deferral: a retry re-attaches
    assert remote.calls() == [("start", "ok")]


def test_execute_complete_returns_the_result_of_the_final_snapshot(remote):
    remote.add_job(["done"])
    op = fast()
    event = {"status": "success", "job": JobSnapshot("job-1", "done", STATUSES.state_of("done")).to_event()}
    ti = TaskInstance()
    result = op.resume_execution("execute_complete", {"event": event}, context(None, ti))
    assert result == {"job_id": "job-1", "status": "done", "rows": None}
    assert ti.xcom["result"] == result  # the resumed task's context reaches job_result
    assert op.final_snapshot.status == "done"
    op.on_kill()  # the task knows its job again after resuming
    assert remote.calls("cancel") == ["job-1"]


def test_execute_complete_on_timeout_cancels_the_job_named_by_the_event(remote):
    remote.add_job(["running"])
    event = {"status": "timeout", "job_id": "job-1", "message": "Remote job job-1 did not finish"}
    with pytest.raises(
        IngestJobTimeout, match=r"^Remote job job-1 did not finish; canceled it \(cancel_on_timeout=True\)$"
    ):
        fast().execute_complete({}, event)
    assert remote.calls("cancel") == ["job-1"]


def test_execute_complete_on_a_job_failure_does_not_cancel(remote):
    event = {"status": "error", "job_id": "job-1", "message": "Remote job job-1 ended failed: bad rows"}
    with pytest.raises(IngestJobFailed, match=r"^Remote job job-1 ended failed: bad rows$"):
        fast().execute_complete({}, event)
    assert remote.calls() == []


def test_execute_complete_timeout_without_a_job_id_cancels_nothing(remote):
    with pytest.raises(IngestJobTimeout, match=r"^wait ended$"):
        fast().execute_complete({}, {"status": "timeout", "message": "wait ended"})
    with pytest.raises(IngestJobFailed, match="the trigger fired without an event payload"):
        fast().execute_complete({}, None)
    assert remote.calls() == []


def test_execute_complete_with_an_unreadable_event_fails_without_retries(remote):
    event = {"status": "success", "job": {"job_id": "job-1", "status": "x", "state": "exploded"}}
    with pytest.raises(IngestInputError, match="'exploded' is not a valid JobState"):
        fast().execute_complete({}, event)


def trigger_timed_out() -> dict[str, Any]:
    return {"error": TriggerFailureReason.TRIGGER_TIMEOUT}


def test_execution_timeout_while_deferred_cancels_the_stored_job(remote):
    remote.add_job(["running"])
    store = TaskStateStore()
    store.set(KEY, "job-1")
    with pytest.raises(TaskDeferralTimeout):
        fast().resume_execution(TRIGGER_FAIL_REPR, trigger_timed_out(), {"task_state_store": store})
    assert remote.calls("cancel") == ["job-1"]


def test_execution_timeout_while_deferred_still_fails_when_the_cancel_fails(remote):
    remote.add_job(["running"])
    remote.fail_cancels()
    store = TaskStateStore()
    store.set(KEY, "job-1")
    with pytest.raises(TaskDeferralTimeout):
        fast().resume_execution(TRIGGER_FAIL_REPR, trigger_timed_out(), {"task_state_store": store})
    assert remote.calls("cancel") == ["job-1"]


def test_execution_timeout_while_deferred_keeps_the_job_when_told_to(remote):
    remote.add_job(["running"])
    store = TaskStateStore()
    store.set(KEY, "job-1")
    with pytest.raises(TaskDeferralTimeout):
        fast(cancel_on_kill=False).resume_execution(
            TRIGGER_FAIL_REPR, trigger_timed_out(), {"task_state_store": store}
        )
    with pytest.raises(TaskDeferralTimeout):
        fast().resume_execution(TRIGGER_FAIL_REPR, trigger_timed_out(), {})  # no store: no job known
    assert remote.calls() == []


def test_a_trigger_failure_other_than_timeout_does_not_cancel(remote):
    remote.add_job(["running"])
    store = TaskStateStore()
    store.set(KEY, "job-1")
    with pytest.raises(TaskDeferralError, match="trigger crashed"):
        fast().resume_execution(TRIGGER_FAIL_REPR, {"error": "trigger crashed"}, {"task_state_store": store})
    assert remote.calls() == []


# --- on_kill -----------------------------------------------------------------------------------
def test_killing_the_task_mid_wait_cancels_its_job(remote):
    op = fast()
    remote.on_status = kill_on_read(op, 2)
    with pytest.raises(IngestJobFailed, match="ended canceled"):
        run(op, TaskStateStore())
    assert remote.calls("cancel") == ["job-1"]


def test_killing_the_task_leaves_the_job_with_cancel_on_kill_false(remote):
    op = fast(cancel_on_kill=False)
    remote.on_status = kill_on_read(op)
    assert run(op, TaskStateStore())["status"] == "done"
    assert remote.calls("cancel") == []


def test_killing_a_task_before_its_start_cancels_nothing(remote):
    fast().on_kill()
    assert remote.calls() == []


# --- a retry re-attaches -----------------------------------------------------------------------
def test_a_retry_reattaches_to_the_running_job_and_keeps_its_deadline(remote):
    store = TaskStateStore()
    remote.script = ["running"]
    with pytest.raises(TaskDeferred):
        run(RemoteJobOperator(deferrable=True, timeout=-1.0), store)  # first try: deadline passed
    remote.forget_calls()
    with pytest.raises(IngestJobTimeout, match="did not finish before the wait's deadline"):
        run(fast(timeout=3600.0), store)  # the retry keeps the first try's deadline
    assert remote.calls("start") == []
    assert remote.calls("status") == ["job-1", "job-1"]  # the re-attach check, then the wait


def test_a_retry_reattaches_to_a_job_in_an_unknown_state(remote):
    job = remote.add_job(["validating", "done"])
    store = TaskStateStore()
    store.set(KEY, job)
    assert run(fast(), store)["status"] == "done"
    assert remote.calls("start") == []


def test_a_retry_after_the_job_succeeded_returns_its_result_without_waiting(remote):
    job = remote.add_job(["done"])
    store = TaskStateStore()
    store.set(KEY, job)
    assert run(fast(deferrable=True), store) == {"job_id": job, "status": None, "rows": None}
    assert remote.calls() == [("status", job), ("result", job)]


def test_a_retry_after_the_job_failed_starts_a_new_one(remote):
    old = remote.add_job(["failed"])
    store = TaskStateStore()
    store.set(KEY, old)
    assert run(fast(), store)["job_id"] == "job-2"
    assert remote.calls("start") == ["ok"]
    assert store[KEY] == "job-2"


# --- the three outcomes of a start call ----------------------------------------------------------
@pytest.mark.parametrize(
    ("outcome", "conn_id", "error", "message", "service_saw"),
    [
        ("refused", CONN_ID, IngestApiRejected, "HTTP 400: folder is not allowed", ["refused"]),
        ("unreachable", UNREACHABLE, IngestApiError, "no HTTP response: ConnectionError$", []),
        ("local", UNSIGNED, RuntimeError, "could not sign the request", []),
    ],
)
def test_a_start_that_provably_made_nothing_fails_and_clears_its_intent(
    remote, outcome, conn_id, error, message, service_saw
):
    store = TaskStateStore()
    if outcome == "refused":
        remote.script_starts("refused")
    with pytest.raises(error, match=message) as raised:
        run(fast(conn_id=conn_id), store)
    if outcome == "unreachable":
        assert raised.value.sent is False  # the core's verdict: the request never left
    assert store == {}  # no intent left: a retry starts afresh, without searching
    assert run(fast(), store)["job_id"] == "job-1"
    assert remote.calls("start") == [*service_saw, "ok"]  # unreachable, local: nothing arrived
    assert remote.calls("find") == []
    assert list(remote.jobs) == ["job-1"]


@pytest.mark.parametrize("outcome", ["lost", "garbled"])
def test_an_unknown_start_adopts_the_job_it_made(remote, outcome):
    store = TaskStateStore()
    remote.script_starts(outcome)
    remote.configure(listing="on")
    assert run(fast(), store)["job_id"] == "job-1"
    assert remote.calls("start") == [outcome]
    assert remote.calls("find") == [spec_digest(SENT)]
    assert set(store) == {KEY, f"{KEY}.deadline"}
    assert store[KEY] == "job-1"
    assert list(remote.jobs) == ["job-1"]  # the job the lost start made, and no other


def test_an_unknown_start_that_cannot_be_found_fails_without_resending(remote):
    store = TaskStateStore()
    remote.script_starts("lost")
    with pytest.raises(IngestStartUnknown) as raised:
        run(fast(), store)
    intent = store[f"{KEY}.intent"]  # kept: a retry must not resend either
    assert str(raised.value) == (
        f"Remote: the start call for folder s3://bucket/in/ at {intent_time(intent)} (UTC), in this "
        "try, may have reached Remote, and the job it made cannot be found. Resending could start a "
        "second job, so this task stops without retrying. Check the service's console for a job "
        "started at that time; to start one anyway, run the task with resubmit_on_unknown_start=True. "
        f"Cause: Remote POST {remote.url}/jobs failed: no HTTP response: ConnectionError"
    )
    assert isinstance(raised.value.__cause__, IngestApiError)
    assert remote.calls("start") == ["lost"]
    assert remote.calls("find") == [spec_digest(SENT)]  # searched: the service cannot list
    assert KEY not in store


def test_a_retry_after_an_unknown_start_searches_again_and_never_resends(remote):
    store = TaskStateStore()
    remote.script_starts("lost")
    with pytest.raises(IngestStartUnknown):
        run(fast(), store)
    intent = store[f"{KEY}.intent"]
    with pytest.raises(IngestStartUnknown) as raised:
        run(fast(), store)
    assert str(raised.value).startswith(
        f"Remote: the start call for folder s3://bucket/in/ at {intent_time(intent)} (UTC), in an "
        "earlier try, may have reached Remote"
    )
    assert str(raised.value).endswith("with resubmit_on_unknown_start=True.")  # no cause to name
    assert raised.value.__cause__ is None
    assert remote.calls("start") == ["lost"]
    assert remote.calls("find") == [spec_digest(SENT)] * 2
    remote.configure(listing="on")  # the job shows up at last: the next retry adopts it
    assert run(fast(), store)["job_id"] == "job-1"
    assert remote.calls("start") == ["lost"]


def test_the_failure_names_the_operator_and_no_request_where_the_service_says_neither(remote):
    class Anonymous:
        def __init__(self, conn_id: str) -> None:
            self.remote = RemoteHook(conn_id)

        def start(self, request):
            return self.remote.start(request)

    class AnonymousOperator(PlainRemoteOperator):
        hook_class = Anonymous  # type: ignore[assignment]

    store = TaskStateStore()
    store.set(f"{KEY}.intent", {"digest": "d", "replaces": None})  # no time recorded
    with pytest.raises(IngestStartUnknown) as raised:
        run(AnonymousOperator(poll_interval=0), store)
    assert str(raised.value).startswith(
        "AnonymousOperator: the start call at an unknown time (UTC), in an earlier try, may have "
        "reached AnonymousOperator, and the job it made cannot be found."
    )
    assert remote.calls() == []  # the base's find_started cannot tell; nothing is resent


def test_an_unknown_start_with_nothing_left_running_starts_again(remote):
    store = TaskStateStore()
    remote.script_starts("dropped")  # reached the service, which made nothing
    remote.configure(listing="on")  # ...as its listing shows
    assert run(fast(), store)["job_id"] == "job-1"
    assert remote.calls("start") == ["dropped", "ok"]
    assert remote.calls("find") == [spec_digest(SENT)]
    assert store[KEY] == "job-1"
    assert f"{KEY}.intent" not in store
    assert list(remote.jobs) == ["job-1"]


def test_a_resent_start_whose_outcome_is_unknown_again_fails_the_try_and_the_retry_searches(remote):
    store = TaskStateStore()
    remote.script_starts("dropped", "dropped")
    remote.configure(listing="on")
    cause = rf"^Remote POST {re.escape(remote.url)}/jobs failed: no HTTP response: ConnectionError$"
    with pytest.raises(IngestApiError, match=cause) as raised:
        run(fast(), store)
    # the call's own (public, retryable) error, not the base's private wrapper
    assert type(raised.value) is IngestApiError and raised.value.outcome_unknown
    assert f"{KEY}.intent" in store  # the second call's intent: the retry must search for it
    assert run(fast(), store)["job_id"] == "job-1"
    assert remote.calls("start") == ["dropped", "dropped", "ok"]
    assert remote.calls("find") == [spec_digest(SENT)] * 2
    assert list(remote.jobs) == ["job-1"]


def test_an_unknown_start_is_resent_when_the_dag_author_opted_in(remote):
    store = TaskStateStore()
    remote.script_starts("lost")
    assert run(fast(resubmit_on_unknown_start=True), store)["job_id"] == "job-2"
    assert remote.calls("start") == ["lost", "ok"]  # job-1, the lost start's, was made too
    assert remote.calls("find") == [spec_digest(SENT)]
    assert store[KEY] == "job-2"


def test_an_idempotent_start_is_resent_without_searching(remote):
    store = TaskStateStore()
    remote.script_starts("lost")
    assert run(IdempotentRemoteOperator(poll_interval=0), store)["job_id"] == "job-2"
    assert remote.calls("start") == ["lost", "ok"]
    assert remote.calls("find") == []


class DiesOnStoringTheId(TaskStateStore):
    """The worker is killed right after the start call returned, before the id is stored."""

    def set(self, key: str, value: Any) -> None:
        if key == KEY:
            raise SystemExit("worker killed")
        super().set(key, value)


def test_a_retry_after_a_kill_during_the_start_adopts_the_job_it_made(remote):
    store = DiesOnStoringTheId()
    with pytest.raises(SystemExit):
        run(fast(), store)
    retry = TaskStateStore(store)
    remote.configure(listing="on")
    assert run(fast(), retry)["job_id"] == "job-1"
    assert remote.calls("start") == ["ok"]
    assert remote.calls("find") == [spec_digest(SENT)]


class KilledWhileStoringTheId(TaskStateStore):
    """Airflow kills the task (calls ``on_kill``) while the id is being written to the store."""

    def __init__(self, op: IngestJobOperator) -> None:
        super().__init__()
        self.op = op
        self.writes = 0

    def set(self, key: str, value: Any) -> None:
        super().set(key, value)
        if key == KEY:
            self.writes += 1
            if self.writes == 2:  # ResumableJobMixin's own write, after submit_job returned
                self.op.on_kill()


def test_a_kill_right_after_the_start_cancels_the_job_it_made(remote):
    op = fast()
    with pytest.raises(IngestJobFailed, match="ended canceled"):
        run(op, KilledWhileStoringTheId(op))
    assert remote.calls("cancel") == ["job-1"]


def test_a_retry_after_a_kill_during_an_idempotent_start_sends_it_again(remote):
    store = DiesOnStoringTheId()
    with pytest.raises(SystemExit):
        run(IdempotentRemoteOperator(poll_interval=0), store)
    assert run(IdempotentRemoteOperator(poll_interval=0), TaskStateStore(store))["job_id"] == "job-2"
    assert remote.calls("start") == ["ok", "ok"]


# --- the wait's deadline -----------------------------------------------------------------------
def test_past_the_deadline_the_job_is_canceled_before_failing(remote):
    with pytest.raises(
        IngestJobTimeout,
        match=r"^Remote job job-1 did not finish before the wait's deadline \(last status 'running'\); "
        r"the job was left running; canceled it \(cancel_on_timeout=True\)$",
    ) as raised:
        run(fast(timeout=-1.0), TaskStateStore())
    assert remote.calls("cancel") == ["job-1"]
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    "op",
    [
        lambda: fast(timeout=-1.0, cancel_on_timeout=False),
        lambda: UncancelableRemoteOperator(poll_interval=0, timeout=-1.0),
    ],
)
def test_past_the_deadline_the_job_is_left_where_told_or_where_the_api_cannot_cancel(remote, op):
    with pytest.raises(IngestJobTimeout, match=r"\(last status 'running'\); the job was left running$"):
        run(op(), TaskStateStore())
    assert remote.calls("cancel") == []


def test_past_the_deadline_a_failed_cancel_reports_the_timeout(remote):
    remote.fail_cancels()
    with pytest.raises(IngestJobTimeout, match=r"the job was left running$") as raised:
        run(fast(timeout=-1.0), TaskStateStore())
    assert remote.calls("cancel") == ["job-1"]
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
