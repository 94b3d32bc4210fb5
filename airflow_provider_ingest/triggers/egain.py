from __future__ import annotations

from airflow_provider_ingest.hooks.egain import EgainHook
from airflow_provider_ingest.triggers.base import IngestJobTrigger


class EgainImportJobTrigger(IngestJobTrigger):
    """Waits in the triggerer for an eGain import or validation job to end."""

    hook_class = EgainHook
