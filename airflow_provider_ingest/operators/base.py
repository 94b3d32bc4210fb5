"""The base of every operator that starts one remote job and (by default) waits for it."""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, Context, ResumableJobMixin, conf

from airflow_provider_ingest.jobs import (
    JobSnapshot,
    JobState,
    describe_job,
    snapshot_from_event,
    wait_for_job,
)


def default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


class IngestJobOperator(ResumableJobMixin, BaseOperator):
    """Start a job, record its id in ``task_state_store``, then poke or defer until it ends.

    ``ResumableJobMixin`` does the bookkeeping: a retried task reads the id the first try stored
    and re-attaches to a job that is still running (or returns the result of one that succeeded)
    instead of starting a second one. Deferral happens inside ``poll_until_complete``, which the
    mixin calls only after the id is stored, so the deferrable path is just as safe.

    Subclasses set ``hook_class`` / ``trigger_class`` and implement ``validate`` and ``submit``.
    """

    hook_class: ClassVar[type]
    trigger_class: ClassVar[type]
    external_id_key = "remote_job_id"

    def __init__(
        self,
        *,
        conn_id: str,
        wait_for_completion: bool = True,
        deferrable: bool = default_deferrable(),
        poll_interval: float = 30.0,
        timeout: float = 6 * 3600.0,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.cancel_on_kill = cancel_on_kill
        self.job_id: Any = None
        self.final_snapshot: JobSnapshot | None = None

    @cached_property
    def hook(self) -> Any:
        return self.hook_class(self.conn_id)

    # --- what a service operator provides -------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field; runs before any remote call."""

    def submit(self, context: Context) -> Any:
        """Start the remote job and return its id (JSON-able)."""
        raise NotImplementedError

    def job_result(self, job_id: Any, snapshot: JobSnapshot | None, context: Context) -> Any:
        """The task's return value (an XCom): the job id unless a subclass reports more."""
        return job_id

    # --- ResumableJobMixin ----------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self.validate()
        return self.execute_resumable(context)

    def submit_job(self, context: Context) -> Any:
        self.job_id = self.submit(context)
        self.log.info("Started %s job %s", self.hook.service, describe_job(self.job_id))
        return self.job_id

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
        if self.deferrable:
            self.defer(
                trigger=self.trigger_class(
                    job_id=external_id,
                    conn_id=self.conn_id,
                    deadline=time.time() + self.timeout,
                    poll_interval=self.poll_interval,
                    cancel_on_kill=self.cancel_on_kill,
                ),
                method_name="execute_complete",
            )
        self.final_snapshot = wait_for_job(
            self.hook, external_id, poll_interval=self.poll_interval, timeout=self.timeout, log=self.log
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
                self.log.exception("Could not cancel %s job %s", self.hook.service, describe_job(self.job_id))
            raise

    def on_kill(self) -> None:
        if self.cancel_on_kill and self.job_id is not None:
            self.log.info("Canceling %s job %s", self.hook.service, describe_job(self.job_id))
            self.hook.cancel_job(self.job_id)
