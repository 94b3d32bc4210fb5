from __future__ import annotations

from typing import Any

from airflow_provider_ingest.hooks.polaris import PolarisHook
from airflow_provider_ingest.lineage import PolarisSensorLinks
from airflow_provider_ingest.sensors.base import IngestJobSensor
from airflow_provider_ingest.triggers.polaris import PolarisJobTrigger


class PolarisJobSensor(PolarisSensorLinks, IngestJobSensor):
    """Waits for a Polaris job (``job_id``) to complete; fails with the job's health message.

    :param job_id: The Polaris job id (templated), e.g. the start operator's return value.
    :param polaris_conn_id: The Airflow connection to Polaris.
    """

    hook_class = PolarisHook
    trigger_class = PolarisJobTrigger

    def __init__(self, *, job_id: str, polaris_conn_id: str = "polaris_default", **kwargs: Any):
        super().__init__(job_id=job_id, conn_id=polaris_conn_id, **kwargs)
