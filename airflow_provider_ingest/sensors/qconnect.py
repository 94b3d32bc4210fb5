from __future__ import annotations

import time
from typing import Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk import Context

from airflow_provider_ingest.exceptions import IngestJobFailed
from airflow_provider_ingest.hooks.qconnect import IMPORT_JOB_STATUSES, QCONNECT_UI_COLOR, QConnectHook
from airflow_provider_ingest.jobs import JobState
from airflow_provider_ingest.lineage_aws import QConnectSensorLinks
from airflow_provider_ingest.operators.base import default_deferrable
from airflow_provider_ingest.sensors.base import MAX_WAIT_SECONDS, poke_interval_from
from airflow_provider_ingest.triggers.qconnect import QConnectImportJobTrigger


def check_import_job(hook: QConnectHook, job: dict[str, Any]) -> bool:
    """True when the job is COMPLETE, False while it runs or reports a status the waiter does not
    know; raises with the failed records when it failed."""
    state = IMPORT_JOB_STATUSES.state_of(job.get("status"))
    if state is JobState.FAILED:
        raise IngestJobFailed(f"Amazon Q in Connect {hook.failure_summary(job)}")
    return state is JobState.SUCCEEDED


class QConnectImportJobSensor(QConnectSensorLinks, AwsBaseSensor[QConnectHook]):
    """Waits for an import job to be COMPLETE; a FAILED job raises with its failed records.

    Takes what ``BaseSensorOperator`` takes (``poke_interval``, default 30 s; ``timeout``; ``mode``;
    ``soft_fail``; ``exponential_backoff``) and what ``AwsBaseSensor`` takes (``aws_conn_id``,
    ``region_name``, ``verify``, ``botocore_config``, all honoured by the deferred wait too).
    As for the amazon provider's waiters, ``waiter_delay`` (seconds between polls) and
    ``waiter_max_attempts`` may be given instead: they set ``poke_interval`` and
    ``timeout = waiter_delay * waiter_max_attempts``. ``poll_interval`` is a deprecated alias of
    ``poke_interval``.

    :param knowledge_base_id: The knowledge base the job imports into (templated).
    :param import_job_id: The import job id (templated), e.g. the operator's return value.
    :param deferrable: Wait in the triggerer instead of holding a worker slot. The default is
        Airflow's ``[operators] default_deferrable`` setting (``False`` unless configured).
    :param waiter_delay: Seconds between two status reads (the amazon provider's name); sets
        ``poke_interval``.
    :param waiter_max_attempts: Status reads at most; sets ``timeout = waiter_delay *
        waiter_max_attempts``.
    :param poll_interval: Deprecated: ``poke_interval``.
    """

    aws_hook_class = QConnectHook
    ui_color = QCONNECT_UI_COLOR
    template_fields = aws_template_fields("knowledge_base_id", "import_job_id")

    def __init__(
        self,
        *,
        knowledge_base_id: str,
        import_job_id: str,
        deferrable: bool = default_deferrable(),
        waiter_delay: float | None = None,
        waiter_max_attempts: int | None = None,
        poll_interval: float | None = None,
        **kwargs: Any,
    ):
        poke_interval_from(poll_interval, kwargs, type(self).__name__)
        if waiter_delay is not None:
            if "poke_interval" in kwargs:
                raise TypeError(f"{type(self).__name__}: give waiter_delay or poke_interval, not both")
            kwargs["poke_interval"] = waiter_delay
        kwargs.setdefault("poke_interval", 30.0)
        if waiter_max_attempts is not None:
            if "timeout" in kwargs:
                raise TypeError(f"{type(self).__name__}: give waiter_max_attempts or timeout, not both")
            kwargs["timeout"] = float(kwargs["poke_interval"]) * waiter_max_attempts
        super().__init__(**kwargs)
        self.knowledge_base_id = knowledge_base_id
        self.import_job_id = import_job_id
        self.deferrable = deferrable

    @property
    def poll_interval(self) -> float:
        """Deprecated: ``poke_interval``."""
        return float(self.poke_interval)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=QConnectImportJobTrigger(
                knowledge_base_id=self.knowledge_base_id,
                import_job_id=self.import_job_id,
                deadline=time.time() + min(self.timeout, MAX_WAIT_SECONDS),
                waiter_delay=float(self.poke_interval),
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> bool:
        job = self.hook.get_import_job(self.knowledge_base_id, self.import_job_id)
        return check_import_job(self.hook, job)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        job = self.hook.get_import_job(self.knowledge_base_id, self.import_job_id)
        if not check_import_job(self.hook, job):
            raise IngestJobFailed(f"wait ended without a result: {(event or {}).get('message')}")
        return self.import_job_id
