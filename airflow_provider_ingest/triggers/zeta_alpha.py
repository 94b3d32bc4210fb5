from __future__ import annotations

from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook
from airflow_provider_ingest.triggers.base import IngestJobTrigger


class ZetaAlphaDocumentsTrigger(IngestJobTrigger):
    """Waits in the triggerer until every document in ``job_id`` (a list of document ids) is
    indexed, checking statuses with filter calls of 100 ids each."""

    hook_class = ZetaAlphaHook
