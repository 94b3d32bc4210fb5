"""The base of every sensor that waits on one remote job, by poking or by deferring."""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk import BaseSensorOperator, Context

from airflow_provider_ingest.jobs import JobWatch, snapshot_from_event
from airflow_provider_ingest.operators.base import default_deferrable

# Keeps the serialized deadline a plain finite float even for a sensor with an infinite timeout.
MAX_WAIT_SECONDS = 365 * 86400.0


class IngestJobSensor(BaseSensorOperator):
    """Wait for one remote job, by poking or in the triggerer; never cancels the job.

    Subclasses set ``hook_class`` and ``trigger_class``; ``job_id`` is templated. The wait lasts
    at most ``timeout`` (Airflow's sensor argument); the task returns the job's final details.

    :param job_id: The id of the job to wait for (templated).
    :param conn_id: The Airflow connection of the service (subclasses take it as
        ``<service>_conn_id`` with the service's default connection id).
    :param deferrable: Wait in the triggerer instead of holding a worker slot. The default is
        Airflow's ``[operators] default_deferrable`` setting (``False`` unless configured).
    :param poll_interval: Seconds between two status reads (also the sensor's ``poke_interval``).
    """

    hook_class: ClassVar[type]
    trigger_class: ClassVar[type]
    template_fields = ("job_id",)

    def __init__(
        self,
        *,
        job_id: Any,
        conn_id: str,
        deferrable: bool = default_deferrable(),
        poll_interval: float = 30.0,
        **kwargs: Any,
    ):
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.job_id = job_id
        self.conn_id = conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self._watch: JobWatch | None = None

    @cached_property
    def hook(self) -> Any:
        return self.hook_class(self.conn_id)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=self.trigger_class(
                job_id=self.job_id,
                conn_id=self.conn_id,
                deadline=time.time() + min(self.timeout, MAX_WAIT_SECONDS),
                poll_interval=self.poll_interval,
                cancel_on_kill=False,  # the sensor did not start the job; it must not stop it
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> bool:
        if self._watch is None:
            self._watch = JobWatch(self.hook.service, self.job_id, log=self.log)
        return self._watch.done(self.hook.job_snapshot(self.job_id))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        return snapshot_from_event(event).details
