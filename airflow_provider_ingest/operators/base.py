"""The base of every operator that starts one remote job and (by default) waits for it.

Exactly once, across retries, kills, timeouts and lost replies (``ExactlyOnceJobMixin``):

- the intent of a start call is written to ``task_state_store`` *before* the call and the job id
  right after (:class:`~airflow_provider_ingest.jobs.StartLedger`);
- a start call ends started (id known), not started (refused before it left, or answered with an
  error) or *unknown* (the reply was lost after sending, or a 2xx reply could not be read). For
  unknown, the service's ``find_started`` looks for the job (listing, idempotency token); when it
  cannot be found the task fails without retrying (``IngestStartUnknown``) unless the DAG author
  opted in with ``resubmit_on_unknown_start=True``;
- a retry that finds an intent without a job id (lost reply, worker killed mid-call) takes the
  same path, so a retry never silently makes a second job;
- the wait's deadline is stored with the job id: a retry that re-attaches keeps it, so ``timeout``
  means what it says; past it the job is canceled (``cancel_on_timeout``) where the API can;
- wrong input and final 4xx answers fail without Airflow's retries (``AirflowFailException``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from airflow.sdk import BaseOperator, Context, ResumableJobMixin, conf
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ingest.exceptions import (
    IngestApiError,
    IngestInputError,
    IngestJobTimeout,
    IngestStartUnknown,
)
from airflow_provider_ingest.jobs import (
    JobSnapshot,
    JobState,
    StartLedger,
    describe_job,
    snapshot_from_event,
    spec_digest,
    wait_for_job,
)

T = TypeVar("T")


def default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


@contextlib.contextmanager
def fail_fast_on_bad_input() -> Iterator[None]:
    """Turn a ``ValueError`` (a check naming the bad field) into :class:`IngestInputError`, which
    Airflow does not retry: a retry cannot fix an argument, a connection field or the data."""
    try:
        yield
    except ValueError as exc:
        if isinstance(exc, AirflowFailException):
            raise
        raise IngestInputError(str(exc)) from exc


# What ``find_started`` returns when it resolved an unknown start without a job to adopt: the API
# showed that nothing the call made is left running (none was made, or the service found it and
# canceled it), so starting again cannot make a second job. ``None`` means "cannot tell".
NOTHING_STARTED: Any = object()


class _StartOutcomeUnknown(Exception):
    """Raised inside a try when the start call's outcome is unknown; ``submit_job`` recovers."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


class ExactlyOnceJobMixin(ResumableJobMixin):
    """The exactly-once bookkeeping shared by every start operator (REST and AWS alike).

    A subclass implements ``submit`` (which calls :meth:`start_call` around the one remote call
    that starts the job) and, where the API can find a job whose start reply was lost,
    ``find_started``. Services whose start call is idempotent (a client token, upserts by id) set
    ``start_is_idempotent``: an unknown outcome is then resolved by sending the same request again.
    """

    external_id_key = "remote_job_id"
    start_is_idempotent: ClassVar[bool] = False
    can_cancel: ClassVar[bool] = True  # the API can stop a started job
    # How a user checks by hand for a job whose start reply was lost (named in the failure).
    how_to_check: ClassVar[str] = "the service's console"

    # set by subclasses' __init__ (operators hold these as arguments; ``timeout`` may be a property)
    if TYPE_CHECKING:

        @property
        def timeout(self) -> float: ...

    resubmit_on_unknown_start: bool
    cancel_on_timeout: bool
    job_id: Any

    # --- what a service operator provides -------------------------------------------------
    def submit(self, context: Context) -> Any:
        """Start the remote job and return its id (JSON-able); call ``start_call`` for the call."""
        raise NotImplementedError

    def find_started(self, intent: dict[str, Any], context: Context) -> Any:
        """The id of the job a start call with ``intent`` made, if the API can tell; else None, or
        ``NOTHING_STARTED`` when the API shows nothing of that call is left running."""
        return None

    def describe_start(self) -> str:
        """What the start call asks for, in the words of a failure message (e.g. the folder)."""
        return ""

    def cancel_remote(self, job_id: Any) -> None:
        raise NotImplementedError

    # --- the start call ----------------------------------------------------------------------
    def ledger(self, context: Context) -> StartLedger:
        ledger = getattr(self, "_ledger", None)
        if ledger is None:
            ledger = self._ledger = StartLedger(context.get("task_state_store"), self.external_id_key)
        return ledger

    def start_call(self, context: Context, request: Any, call: Callable[[], T]) -> T:
        """Run ``call``, the one request that starts the job, with its intent recorded before it.

        An error that proves nothing started clears the intent; an unknown outcome leaves it and
        lets :meth:`submit_job` find the job (or fail without resending)."""
        ledger = self.ledger(context)
        ledger.begin(spec_digest(request))
        try:
            return call()
        except IngestApiError as exc:
            if not exc.outcome_unknown:
                ledger.not_started()
                raise
            self.log.warning("The start call's outcome is unknown (%s); looking for its job", exc)
            raise _StartOutcomeUnknown(exc) from exc
        except Exception:
            # Anything else raised by the call (an SDK error with a status, a local failure) is
            # treated like the server's answer: nothing started. The services whose calls raise
            # other errors (Q in Connect's botocore, Zeta Alpha's batches) are idempotent, so a
            # start that did reach the server is found again by sending the same request.
            ledger.not_started()
            raise

    def submit_job(self, context: Context) -> Any:
        ledger = self.ledger(context)
        intent = ledger.pending()
        if intent is not None:
            job_id = self._recover(intent, context, during="an earlier try")
        else:
            try:
                job_id = self.submit(context)
            except _StartOutcomeUnknown as unknown:
                intent = ledger.pending() or {"at": None}
                job_id = self._recover(intent, context, during="this try", cause=unknown.cause)
        ledger.started(job_id, self.timeout)
        self.job_id = job_id
        self.log.info("Started %s job %s", self.service_name, describe_job(job_id))
        return job_id

    def _recover(
        self, intent: dict[str, Any], context: Context, during: str, cause: BaseException | None = None
    ) -> Any:
        ledger = self.ledger(context)
        if self.start_is_idempotent:
            self.log.warning("A start call of %s had no known outcome; sending it again", during)
            ledger.not_started()
            return self._submit_again(context)
        job_id = self.find_started(intent, context)
        if job_id is NOTHING_STARTED:
            self.log.warning(
                "A start call of %s had no known outcome; nothing it made is left running, starting again",
                during,
            )
            ledger.not_started()
            return self._submit_again(context)
        if job_id is not None:
            self.log.warning(
                "A start call of %s lost its reply; adopting %s job %s",
                during,
                self.service_name,
                describe_job(job_id),
            )
            return job_id
        if self.resubmit_on_unknown_start:
            self.log.warning(
                "A start call of %s may have started a job that cannot be found; starting again "
                "because resubmit_on_unknown_start=True",
                during,
            )
            ledger.not_started()
            return self._submit_again(context)
        when = (
            datetime.fromtimestamp(intent["at"], UTC).isoformat(timespec="seconds")
            if isinstance(intent.get("at"), int | float)
            else "an unknown time"
        )
        what = self.describe_start()
        raise IngestStartUnknown(
            f"{self.service_name}: the start call{f' for {what}' if what else ''} at {when} (UTC), "
            f"in {during}, may have reached {self.service_name}, and the job it made cannot be found. "
            f"Resending could start a second job, so this task stops without retrying. Check "
            f"{self.how_to_check} for a job started at that time; to start one anyway, run the task "
            f"with resubmit_on_unknown_start=True." + (f" Cause: {cause}" if cause is not None else "")
        ) from cause

    def _submit_again(self, context: Context) -> Any:
        """``submit`` once more, after an unknown outcome was resolved as safe to resend. If this
        call's outcome is unknown too, its intent stays recorded (the next try looks for its job)
        and the try fails with the call's own error, which the shared rules retry."""
        try:
            return self.submit(context)
        except _StartOutcomeUnknown as unknown:
            cause = unknown.cause
        raise cause  # outside the handler: the error keeps its own cause, not the private wrapper

    @property
    def service_name(self) -> str:
        hook = cast(Any, self).hook  # the operator's (a cached property, or the AWS mixin's)
        return str(getattr(hook, "service", type(self).__name__))

    # --- timeouts ----------------------------------------------------------------------------
    def deadline(self, context: Context) -> float:
        return self.ledger(context).deadline(self.timeout)

    @contextlib.contextmanager
    def cancel_when_timed_out(self, job_id: Any) -> Iterator[None]:
        """Past the wait's deadline, cancel the job (``cancel_on_timeout``) before failing."""
        try:
            yield
        except IngestJobTimeout as exc:
            if self.cancel_on_timeout and self.can_cancel and job_id is not None:
                self.log.warning("Canceling %s job %s: %s", self.service_name, describe_job(job_id), exc)
                try:
                    self.cancel_remote(job_id)
                except Exception:
                    self.log.exception("Could not cancel %s job %s", self.service_name, describe_job(job_id))
                    raise exc from None
                raise IngestJobTimeout(f"{exc}; canceled it (cancel_on_timeout=True)") from None
            raise


class IngestJobOperator(ExactlyOnceJobMixin, BaseOperator):
    """Start a job, record its id in ``task_state_store``, then poke or defer until it ends.

    ``ResumableJobMixin`` does the re-attach: a retried task reads the id the first try stored and
    re-attaches to a job that is still running (or returns the result of one that succeeded)
    instead of starting a second one; ``ExactlyOnceJobMixin`` closes the window of a lost reply or
    a kill during the start call. Deferral happens inside ``poll_until_complete``, which runs only
    after the id is stored, so the deferrable path is just as safe.

    Subclasses set ``hook_class`` / ``trigger_class`` and implement ``validate`` and ``submit``.

    :param conn_id: The Airflow connection of the service (subclasses take it as
        ``<service>_conn_id`` with the service's default connection id).
    :param wait_for_completion: Wait until the remote job ends, and fail the task when the job
        fails. With ``False`` the task returns right after the start call (the job id is stored
        all the same, so a retry re-attaches instead of starting a second job).
    :param deferrable: Wait in the triggerer instead of holding a worker slot. The default is
        Airflow's ``[operators] default_deferrable`` setting (``False`` unless configured).
    :param poll_interval: Seconds between two status reads while waiting.
    :param timeout: Seconds the wait may last, counted from the job's start and kept across
        retries (a retry that re-attaches does not get a fresh timeout). Past it the task fails
        with ``IngestJobTimeout``.
    :param cancel_on_kill: Cancel the remote job when the task is killed (marked failed, cleared,
        ``execution_timeout``), also while deferred. Services whose API cannot cancel leave it.
    :param cancel_on_timeout: Cancel the remote job when ``timeout`` passes, before failing, where
        the API can cancel; ``False`` leaves it running.
    :param resubmit_on_unknown_start: When the start call's reply was lost and the job it may have
        made cannot be found, start the job again instead of failing without retrying
        (``IngestStartUnknown``). Only for jobs where a duplicate does no harm.
    """

    hook_class: ClassVar[type]
    trigger_class: ClassVar[type]
    timeout: float  # an argument here (the mixin only reads it)

    def __init__(
        self,
        *,
        conn_id: str,
        wait_for_completion: bool = True,
        deferrable: bool = default_deferrable(),
        poll_interval: float = 30.0,
        timeout: float = 6 * 3600.0,
        cancel_on_kill: bool = True,
        cancel_on_timeout: bool = True,
        resubmit_on_unknown_start: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.cancel_on_kill = cancel_on_kill
        self.cancel_on_timeout = cancel_on_timeout
        self.resubmit_on_unknown_start = resubmit_on_unknown_start
        self.job_id: Any = None
        self.final_snapshot: JobSnapshot | None = None

    @cached_property
    def hook(self) -> Any:
        return self.hook_class(self.conn_id)

    # --- what a service operator provides -------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field; runs before any remote call."""

    def job_result(self, job_id: Any, snapshot: JobSnapshot | None, context: Context) -> Any:
        """The task's return value (an XCom): the job id unless a subclass reports more."""
        return job_id

    def cancel_remote(self, job_id: Any) -> None:
        self.hook.cancel_job(job_id)

    # --- ResumableJobMixin ----------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        with fail_fast_on_bad_input():
            self.validate()
            return self.execute_resumable(context)

    def get_job_status(self, external_id: Any, context: Context) -> str:
        snapshot = self.hook.job_snapshot(external_id)
        return (snapshot.state or JobState.RUNNING).value

    def is_job_active(self, status: str) -> bool:
        return status == JobState.RUNNING.value

    def is_job_succeeded(self, status: str) -> bool:
        return status == JobState.SUCCEEDED.value

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        self.job_id = external_id
        if not self.wait_for_completion:
            return self.get_job_result(external_id, context)
        deadline = self.deadline(context)
        if self.deferrable:
            self.defer(
                trigger=self.trigger_class(
                    job_id=external_id,
                    conn_id=self.conn_id,
                    deadline=deadline,
                    poll_interval=self.poll_interval,
                    cancel_on_kill=self.cancel_on_kill,
                ),
                method_name="execute_complete",
            )
        with self.cancel_when_timed_out(external_id):
            self.final_snapshot = wait_for_job(
                self.hook, external_id, poll_interval=self.poll_interval, deadline=deadline, log=self.log
            )
        # The mixin returns this method's value when it re-attaches, and calls get_job_result
        # after a fresh submission: compute the result once, here, for both.
        return self.get_job_result(external_id, context)

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        if not hasattr(self, "_result"):
            self._result = self.job_result(external_id, self.final_snapshot, context)
        return self._result

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        self.job_id = (event or {}).get("job_id") or ((event or {}).get("job") or {}).get("job_id")
        with fail_fast_on_bad_input(), self.cancel_when_timed_out(self.job_id):
            snapshot = snapshot_from_event(event)
            self.final_snapshot = snapshot
            return self.job_result(snapshot.job_id, snapshot, context)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        from airflow.sdk.exceptions import TaskDeferralTimeout

        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout:
            # execution_timeout fired while deferred. Airflow 3.3 then cancels the trigger without
            # its on_kill (that runs only on a user's action) and fails the task here, in a fresh
            # worker, without the operator's on_kill either: cancel the job as on_kill would, or it
            # runs on unowned (found by tests/reliability/test_fault_matrix.py).
            store = context.get("task_state_store")
            self.job_id = store.get(self.external_id_key) if store is not None else None
            try:
                self.on_kill()
            except Exception:
                self.log.exception("Could not cancel %s job %s", self.service_name, describe_job(self.job_id))
            raise

    def on_kill(self) -> None:
        if self.cancel_on_kill and self.job_id is not None:
            self.log.info("Canceling %s job %s", self.service_name, describe_job(self.job_id))
            self.hook.cancel_job(self.job_id)
