"""What every remote job looks like to the provider, and how a wait turns job states into outcomes.

A service hook maps its vendor's status values through a :class:`StatusTable` into a
:class:`JobSnapshot`. :class:`JobWatch` then decides, identically for a poking sensor, a blocking
operator and a deferred trigger, whether to keep waiting, return, or raise with the vendor's reason.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from airflow_provider_ingest.exceptions import IngestJobFailed, IngestJobTimeout


class JobState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class StatusTable:
    """A vendor's status values sorted into terminal and non-terminal sets (case-insensitive)."""

    succeeded: frozenset[str]
    failed: frozenset[str]
    running: frozenset[str]

    @classmethod
    def of(cls, *, succeeded: set[str], failed: set[str], running: set[str]) -> StatusTable:
        def lower(values: set[str]) -> frozenset[str]:
            return frozenset(v.lower() for v in values)

        return cls(lower(succeeded), lower(failed), lower(running))

    def state_of(self, status: str | None) -> JobState | None:
        """The state for ``status``; None for a value the table does not know (keep waiting)."""
        value = (status or "").lower()
        if value in self.succeeded:
            return JobState.SUCCEEDED
        if value in self.failed:
            return JobState.FAILED
        if value in self.running:
            return JobState.RUNNING
        return None


@dataclass
class JobSnapshot:
    """One observation of a remote job. ``details`` must be JSON-able and free of secrets:
    it travels in trigger events and ends up in XComs."""

    job_id: Any
    status: str
    state: JobState | None
    reason: str | None = None
    progress: str | None = None
    warning: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_event(self) -> dict[str, Any]:
        event = asdict(self)
        event["state"] = self.state.value if self.state else None
        return event

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> JobSnapshot:
        keys = ("job_id", "status", "reason", "progress", "warning")
        fields: dict[str, Any] = {k: event.get(k) for k in keys}
        state = JobState(event["state"]) if event.get("state") else None
        return cls(state=state, details=event.get("details") or {}, **fields)


class JobHook(Protocol):
    """What a hook offers so the shared operator, sensor and trigger can wait on its jobs."""

    service: str

    def job_snapshot(self, job_id: Any) -> JobSnapshot: ...

    async def ajob_snapshot(self, job_id: Any) -> JobSnapshot: ...

    def cancel_job(self, job_id: Any) -> None: ...

    async def acancel_job(self, job_id: Any) -> None: ...


def describe_job(job_id: Any) -> str:
    """A job id for a log line; a set of ids (Zeta Alpha documents) is summarised, not listed."""
    if isinstance(job_id, list):
        return f"of {len(job_id)} documents" + (f" ({job_id[0]}, ...)" if job_id else "")
    return str(job_id)


class JobWatch:
    """Turns successive snapshots of one job into wait decisions.

    ``deadline`` is absolute (epoch seconds), so a wait rebuilt after a triggerer restart keeps the
    time it was first given instead of starting over.
    """

    def __init__(self, service: str, job_id: Any, deadline: float = math.inf, log: Any = None):
        self.service = service
        self.job_id = describe_job(job_id)  # only ever printed
        self.deadline = deadline
        self.log = log or logging.getLogger(__name__)
        self._last_seen: tuple[str, str | None] | None = None
        self._unknown_logged: set[str] = set()
        self._warning_logged = False

    def done(self, snapshot: JobSnapshot) -> bool:
        """True when the job succeeded; raises :class:`IngestJobFailed` when it failed."""
        seen = (snapshot.status, snapshot.progress)
        if seen != self._last_seen:
            self._last_seen = seen
            progress = f" ({snapshot.progress})" if snapshot.progress else ""
            self.log.info("%s job %s is %s%s", self.service, self.job_id, snapshot.status, progress)
        if snapshot.state is None and snapshot.status not in self._unknown_logged:
            self._unknown_logged.add(snapshot.status)
            self.log.warning(
                "%s job %s reports an unexpected status %r; still waiting",
                self.service,
                self.job_id,
                snapshot.status,
            )
        if snapshot.warning and not self._warning_logged:
            self._warning_logged = True
            self.log.warning("%s job %s: %s", self.service, self.job_id, snapshot.warning)
        if snapshot.state is JobState.FAILED:
            reason = snapshot.reason or "no reason given"
            raise IngestJobFailed(f"{self.service} job {self.job_id} ended {snapshot.status}: {reason}")
        return snapshot.state is JobState.SUCCEEDED

    def seconds_left(self) -> float:
        return self.deadline - time.time()

    def next_sleep(self, poll_interval: float) -> float:
        """Seconds to sleep before the next poll; raises :class:`IngestJobTimeout` past the deadline."""
        left = self.seconds_left()
        if left <= 0:
            last = self._last_seen[0] if self._last_seen else "unknown"
            raise IngestJobTimeout(
                f"{self.service} job {self.job_id} did not finish before the wait's deadline "
                f"(last status {last!r}); the job was left running"
            )
        return min(poll_interval, left)


def wait_for_job(
    hook: JobHook, job_id: Any, *, poll_interval: float, timeout: float, log: Any = None
) -> JobSnapshot:
    """Block until the job ends: the worker-side twin of :func:`await_job`."""
    watch = JobWatch(hook.service, job_id, time.time() + timeout, log)
    while True:
        snapshot = hook.job_snapshot(job_id)
        if watch.done(snapshot):
            return snapshot
        time.sleep(watch.next_sleep(poll_interval))


async def await_job(
    service: str,
    job_id: Any,
    fetch: Callable[[], Awaitable[JobSnapshot]],
    *,
    poll_interval: float,
    deadline: float,
    log: Any = None,
) -> JobSnapshot:
    """Poll ``fetch`` until the job ends or ``deadline`` (epoch seconds) passes: every trigger's wait."""
    watch = JobWatch(service, job_id, deadline, log)
    while True:
        snapshot = await fetch()
        if watch.done(snapshot):
            return snapshot
        await asyncio.sleep(watch.next_sleep(poll_interval))


def snapshot_from_event(event: dict[str, Any] | None) -> JobSnapshot:
    """Resume a deferred task: the final snapshot, or the error the trigger reported."""
    if not event:
        raise IngestJobFailed("the trigger fired without an event payload")
    if event.get("status") != "success":
        error = IngestJobTimeout if event.get("status") == "timeout" else IngestJobFailed
        raise error(event.get("message") or f"wait failed: {event!r}")
    return JobSnapshot.from_event(event["job"])
