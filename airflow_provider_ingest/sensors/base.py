"""The base of every sensor that waits on one remote job, by poking or by deferring."""

from __future__ import annotations

import sys
import time
import warnings
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk import BaseSensorOperator, Context

from airflow_provider_ingest.jobs import JobWatch, snapshot_from_event
from airflow_provider_ingest.operators.base import default_deferrable
from airflow_provider_ingest.validation import check_path_segment

# Keeps the serialized deadline a plain finite float even for a sensor with an infinite timeout.
MAX_WAIT_SECONDS = 365 * 86400.0


def _warn_at_dag_code(message: str, category: type[Warning]) -> None:
    """Warn at the first frame outside Airflow and this package: the DAG code that made the call.

    ``warn_explicit`` with that frame, not a ``stacklevel``: Airflow's operator metaclass wraps
    every ``__init__`` in the class chain (sensors differ in how many they have), and it replaces
    the ``warnings`` module in an operator's module with one that adds to ``stacklevel``, so no
    count is right everywhere. (mutmut's trampolines, which wrap every function during mutation
    testing, are skipped the same way.)"""
    frame = sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__")).partition(".")[0] in _INTERNAL:
        frame = frame.f_back
    module_globals = frame.f_globals
    warnings.warn_explicit(
        message,
        category,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=module_globals.get("__name__") or "<string>",  # as warnings.warn names such code
        registry=module_globals.setdefault("__warningregistry__", {}),
        module_globals=module_globals,
    )


_INTERNAL = ("airflow", "airflow_provider_ingest", "mutmut")


def poke_interval_from(poll_interval: float | None, kwargs: dict[str, Any], owner: str) -> None:
    """Map the deprecated ``poll_interval`` onto ``BaseSensorOperator``'s ``poke_interval`` in
    ``kwargs`` (given both, a TypeError: they would disagree)."""
    if poll_interval is None:
        return
    if "poke_interval" in kwargs:
        raise TypeError(f"{owner}: give poke_interval, not also its deprecated alias poll_interval")
    from airflow.exceptions import AirflowProviderDeprecationWarning

    _warn_at_dag_code(
        f"{owner}: poll_interval is deprecated, use poke_interval", AirflowProviderDeprecationWarning
    )
    kwargs["poke_interval"] = poll_interval


class IngestJobSensor(BaseSensorOperator):
    """Subclasses set ``hook_class`` and ``trigger_class``; ``job_id`` and the connection id are
    templated.

    Everything ``BaseSensorOperator`` takes applies (``poke_interval``, default 30 s; ``timeout``;
    ``mode``; ``soft_fail``; ``exponential_backoff``...); deferred, the trigger polls every
    ``poke_interval`` until ``timeout``. ``poll_interval`` is a deprecated alias of
    ``poke_interval``.

    :param job_id: The id of the job to wait for (templated).
    :param conn_id: The Airflow connection of the service (subclasses take it as
        ``<service>_conn_id`` with the service's default connection id).
    :param deferrable: Wait in the triggerer instead of holding a worker slot. The default is
        Airflow's ``[operators] default_deferrable`` setting (``False`` unless configured).
    :param poll_interval: Deprecated: ``poke_interval``.
    """

    hook_class: ClassVar[type]
    trigger_class: ClassVar[type]
    job_id_field: ClassVar[str] = "job_id"  # the argument's name, for error messages
    template_fields: Any = ("job_id", "conn_id")

    def __init__(
        self,
        *,
        job_id: Any,
        conn_id: str,
        deferrable: bool = default_deferrable(),
        poll_interval: float | None = None,
        **kwargs: Any,
    ):
        poke_interval_from(poll_interval, kwargs, type(self).__name__)
        kwargs.setdefault("poke_interval", 30.0)
        super().__init__(**kwargs)
        self.job_id = job_id
        self.conn_id = conn_id
        self.deferrable = deferrable
        self._watch: JobWatch | None = None

    @property
    def poll_interval(self) -> float:
        """Deprecated: ``poke_interval``."""
        return float(self.poke_interval)

    @cached_property
    def hook(self) -> Any:
        return self.hook_class(self.conn_id)

    def check_job_id(self) -> None:
        """Refuse an id that could address another resource once put into a URL path (``/``,
        ``..``, control characters), before any remote call; a list is checked item by item."""
        if isinstance(self.job_id, list):
            for item in self.job_id:
                check_path_segment(item, f"{self.job_id_field}[]")
        elif isinstance(self.job_id, dict):  # a Zeta Alpha ingestion job: its id goes into a query
            check_path_segment(self.job_id.get("ingestion_job_id"), "ingestion_job_id")
        else:
            check_path_segment(self.job_id, self.job_id_field)

    def execute(self, context: Context) -> Any:
        self.check_job_id()
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=self.trigger_class(
                job_id=self.job_id,
                conn_id=self.conn_id,
                deadline=time.time() + min(self.timeout, MAX_WAIT_SECONDS),
                poll_interval=float(self.poke_interval),
                cancel_on_kill=False,  # the sensor did not start the job; it must not stop it
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> bool:
        if self._watch is None:
            self.check_job_id()
            self._watch = JobWatch(self.hook.service, self.job_id, log=self.log)
        return self._watch.done(self.hook.job_snapshot(self.job_id))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        return snapshot_from_event(event).details
