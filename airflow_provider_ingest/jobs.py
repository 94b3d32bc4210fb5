"""What every remote job looks like to the provider, and how a wait turns job states into outcomes.

A service hook maps its vendor's status values through a :class:`StatusTable` into a
:class:`JobSnapshot`. :class:`JobWatch` then decides, identically for a poking sensor, a blocking
operator and a deferred trigger, whether to keep waiting, return, or raise with the vendor's reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from airflow_provider_ingest.exceptions import IngestJobFailed, IngestJobTimeout
from airflow_provider_ingest.http import redact


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


class JobReader(Protocol):
    """What ``wait_for_job`` reads: a hook, or any object that reads one kind of job."""

    service: str

    def job_snapshot(self, job_id: Any) -> JobSnapshot: ...


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
    if isinstance(job_id, dict) and "ingestion_job_id" in job_id:  # Zeta Alpha: a job of documents
        return f"{job_id['ingestion_job_id']} ({job_id.get('documents')} documents)"
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
            self.log.warning("%s job %s: %s", self.service, self.job_id, redact(snapshot.warning))
        if snapshot.state is JobState.FAILED:
            reason = redact(snapshot.reason or "no reason given")  # vendor text: may echo a URL
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
    hook: JobReader,
    job_id: Any,
    *,
    poll_interval: float,
    timeout: float | None = None,
    deadline: float | None = None,
    log: Any = None,
) -> JobSnapshot:
    """Block until the job ends or ``deadline`` (epoch seconds; else ``timeout`` from now) passes:
    the worker-side twin of :func:`await_job`."""
    if deadline is None:
        deadline = time.time() + (timeout if timeout is not None else math.inf)
    watch = JobWatch(hook.service, job_id, deadline, log)
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


def spec_digest(spec: Any) -> str:
    """A short, stable digest of what a start call asks for (canonical JSON): the intent record
    names the request without holding it, so task state stays small and free of secrets."""
    import hashlib
    import json

    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class StartLedger:
    """What ``task_state_store`` holds about one task's remote job, across its tries.

    - ``<key>``: the job id (the key ``ResumableJobMixin`` reads to re-attach);
    - ``<key>.intent``: written *before* the start call (when, a digest of the request, the job
      this try replaces) and removed once the id is stored: an intent still there on a later try
      means a start call whose outcome is unknown (lost reply, worker killed mid-call);
    - ``<key>.deadline``: the absolute end of the wait for that job, stored once with its id, so a
      retry that re-attaches keeps the deadline the job was first given.

    Without a store (an operator run outside a task) it keeps the values in memory.
    """

    def __init__(self, store: Any, key: str):
        self.store = store if store is not None else MemoryTaskStateStore()
        self.key = key

    def job_id(self) -> Any:
        return self.store.get(self.key)

    def pending(self) -> dict[str, Any] | None:
        """The intent of a start call whose job id was never stored, if any. An intent whose call
        did store an id (the worker died before the intent was removed) is not pending."""
        intent = self.store.get(f"{self.key}.intent")
        if not isinstance(intent, dict) or intent.get("replaces") != self.job_id():
            return None
        return intent

    def begin(self, digest: str, **facts: Any) -> dict[str, Any]:
        intent = {"at": time.time(), "digest": digest, "replaces": self.job_id(), **facts}
        self.store.set(f"{self.key}.intent", intent)
        return intent

    def not_started(self) -> None:
        """The start call provably made no job (refused before sending, or answered with an error)."""
        self.delete(f"{self.key}.intent")

    def started(self, job_id: Any, timeout: float) -> None:
        self.store.set(self.key, job_id)
        self.store.set(f"{self.key}.deadline", time.time() + timeout)
        self.delete(f"{self.key}.intent")

    def deadline(self, timeout: float) -> float:
        """The stored deadline of the current job, or one ``timeout`` from now (stored) if none."""
        stored = self.store.get(f"{self.key}.deadline")
        if isinstance(stored, int | float):
            return float(stored)
        deadline = time.time() + timeout
        self.store.set(f"{self.key}.deadline", deadline)
        return deadline

    def delete(self, key: str) -> None:
        """Remove ``key`` (Airflow's store refuses ``None`` as a value: a key is deleted, not blanked)."""
        self.store.delete(key)


class MemoryTaskStateStore(dict[str, Any]):
    """``task_state_store`` kept in memory, with the rules of Airflow 3.3's
    ``TaskStateStoreAccessor`` a provider can trip over: a value is JSON (stored as its JSON round
    trip, so a tuple comes back a list and a set is refused), ``None`` is refused (a key is
    deleted, not blanked), and ``delete`` of a missing key is harmless.

    The ledger's store where a context has none (an operator run outside a task); the tests'
    stand-in for the real one (``airflow_provider_ingest.testing.TaskStateStore``)."""

    def set(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")  # as TaskStateStoreAccessor.set
        self[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.pop(key, None)
