"""One deferrable wait for every service: poll a job until it ends or an absolute deadline passes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_ingest.exceptions import IngestApiError, IngestJobFailed, IngestJobTimeout
from airflow_provider_ingest.jobs import JobSnapshot, await_job, describe_job

if TYPE_CHECKING:
    from airflow_provider_ingest.hooks.base import IngestHttpHook


async def wait_event(
    service: str,
    job_id: Any,
    fetch: Callable[[], Awaitable[JobSnapshot]],
    *,
    poll_interval: float,
    deadline: float,
    log: Any,
    tag: dict[str, Any] | None = None,
) -> TriggerEvent:
    """The event a trigger fires once the job ends, fails, or its deadline passes; every event
    also carries ``tag`` (what the deferred task resumes from, when not the snapshot)."""
    try:
        snapshot = await await_job(
            service, job_id, fetch, poll_interval=poll_interval, deadline=deadline, log=log
        )
    except IngestJobTimeout as exc:
        return TriggerEvent({"status": "timeout", "job_id": job_id, "message": str(exc), **(tag or {})})
    except (IngestApiError, IngestJobFailed) as exc:
        return TriggerEvent({"status": "error", "job_id": job_id, "message": str(exc), **(tag or {})})
    return TriggerEvent({"status": "success", "job": snapshot.to_event(), **(tag or {})})


class IngestJobTrigger(BaseTrigger):
    """Subclasses only name their hook class.

    The trigger carries the connection id, never a secret; the hook reads the connection with
    ``aget_connection`` and polls through the shared async client, so nothing here blocks.
    ``deadline`` is epoch seconds: a triggerer restart rebuilds the trigger with the same deadline.

    Operators and sensors build their trigger themselves; a DAG author rarely needs one directly.
    The trigger fires one event: ``{"status": "success", "job": ...}``, or ``"error"`` /
    ``"timeout"`` with a ``message``.

    :param job_id: The id of the job to wait for.
    :param conn_id: The Airflow connection of the service; read in the triggerer with
        ``aget_connection``, so no secret travels in the trigger.
    :param deadline: When the wait ends, in epoch seconds (absolute, so a restart keeps it).
    :param poll_interval: Seconds between two status reads.
    :param cancel_on_kill: Cancel the job when a user kills the deferred task.
    """

    hook_class: ClassVar[type[IngestHttpHook]]

    def __init__(
        self,
        *,
        job_id: Any,
        conn_id: str,
        deadline: float,
        poll_interval: float = 30.0,
        cancel_on_kill: bool = True,
    ):
        super().__init__()
        self.job_id = job_id
        self.conn_id = conn_id
        self.deadline = deadline
        self.poll_interval = poll_interval
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "conn_id": self.conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    def hook(self) -> Any:
        return self.hook_class(self.conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self.hook()
        yield await wait_event(
            hook.service,
            self.job_id,
            lambda: hook.ajob_snapshot(self.job_id),
            poll_interval=self.poll_interval,
            deadline=self.deadline,
            log=self.log,
        )

    async def on_kill(self) -> None:
        """A user killed the deferred task (mark failed, clear): stop the remote work too."""
        if self.cancel_on_kill:
            self.log.info("Canceling %s job %s", self.hook_class.service, describe_job(self.job_id))
            await self.hook().acancel_job(self.job_id)
