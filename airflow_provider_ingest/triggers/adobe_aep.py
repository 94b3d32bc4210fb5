from __future__ import annotations

from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook
from airflow_provider_ingest.triggers.base import IngestJobTrigger


class AdobeAepBatchTrigger(IngestJobTrigger):
    """Waits in the triggerer for an AEP batch's Catalog status to become terminal; a killed
    deferred task aborts the batch."""

    hook_class = AdobeAepHook
