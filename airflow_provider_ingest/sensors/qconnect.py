from __future__ import annotations

import time
from typing import Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.sdk import Context

from airflow_provider_ingest.exceptions import IngestJobFailed
from airflow_provider_ingest.hooks.qconnect import IMPORT_JOB_STATUSES, QConnectHook
from airflow_provider_ingest.jobs import JobState
from airflow_provider_ingest.lineage import QConnectSensorLinks
from airflow_provider_ingest.operators.base import default_deferrable
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

    :param knowledge_base_id: The knowledge base the job imports into (templated).
    :param import_job_id: The import job id (templated), e.g. the operator's return value.
    :param deferrable: Wait in the triggerer instead of holding a worker slot. The default is
        Airflow's ``[operators] default_deferrable`` setting (``False`` unless configured).
    :param poll_interval: Seconds between two status reads (also the sensor's ``poke_interval``).
    """

    aws_hook_class = QConnectHook
    template_fields = ("knowledge_base_id", "import_job_id", "aws_conn_id", "region_name")

    def __init__(
        self,
        *,
        knowledge_base_id: str,
        import_job_id: str,
        deferrable: bool = default_deferrable(),
        poll_interval: float = 30,
        **kwargs: Any,
    ):
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.knowledge_base_id = knowledge_base_id
        self.import_job_id = import_job_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=QConnectImportJobTrigger(
                knowledge_base_id=self.knowledge_base_id,
                import_job_id=self.import_job_id,
                deadline=time.time() + min(self.timeout, 365 * 86400.0),
                waiter_delay=self.poll_interval,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
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
