from __future__ import annotations

from typing import Any

from airflow_provider_ingest.hooks.egain import EgainHook, job_id_from_location
from airflow_provider_ingest.lineage import EgainSensorLinks
from airflow_provider_ingest.sensors.base import IngestJobSensor
from airflow_provider_ingest.triggers.egain import EgainImportJobTrigger


class EgainImportJobSensor(EgainSensorLinks, IngestJobSensor):
    """Waits for an eGain import job, given its id or the ``location`` the start call returned.

    :param job_id: The import job id, or the ``location`` path the start call returned (templated).
    :param egain_conn_id: The Airflow connection to eGain.
    """

    hook_class = EgainHook
    trigger_class = EgainImportJobTrigger

    def __init__(self, *, job_id: str, egain_conn_id: str = "egain_default", **kwargs: Any):
        super().__init__(job_id=job_id, conn_id=egain_conn_id, **kwargs)

    def execute(self, context: Any) -> Any:
        if "/" in str(self.job_id):  # rendered templates may hand us the location header
            self.job_id = job_id_from_location(self.job_id)
        return super().execute(context)
