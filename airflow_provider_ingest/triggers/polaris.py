from __future__ import annotations

from airflow_provider_ingest.hooks.polaris import PolarisHook
from airflow_provider_ingest.triggers.base import IngestJobTrigger


class PolarisJobTrigger(IngestJobTrigger):
    """Waits in the triggerer for a Polaris job's ``executionStatus`` to become terminal."""

    hook_class = PolarisHook
