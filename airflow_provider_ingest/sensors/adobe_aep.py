from __future__ import annotations

from typing import Any

from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook
from airflow_provider_ingest.lineage import AdobeAepSensorLinks
from airflow_provider_ingest.sensors.base import IngestJobSensor
from airflow_provider_ingest.triggers.adobe_aep import AdobeAepBatchTrigger


class AdobeAepBatchSensor(AdobeAepSensorLinks, IngestJobSensor):
    """Waits for an AEP batch: ``success``/``active`` succeed; ``failed``, ``aborted``,
    ``abandoned``, ``inactive`` fail with the batch's recorded errors.

    :param batch_id: The batch id (templated), e.g. from the operator's ``batch_id``.
    :param adobe_aep_conn_id: The Airflow connection to Adobe Experience Platform.
    """

    hook_class = AdobeAepHook
    trigger_class = AdobeAepBatchTrigger

    def __init__(self, *, batch_id: str, adobe_aep_conn_id: str = "adobe_aep_default", **kwargs: Any):
        super().__init__(job_id=batch_id, conn_id=adobe_aep_conn_id, **kwargs)
