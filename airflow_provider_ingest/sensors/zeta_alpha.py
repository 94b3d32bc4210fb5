from __future__ import annotations

from typing import Any

from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook
from airflow_provider_ingest.lineage import ZetaAlphaSensorLinks
from airflow_provider_ingest.sensors.base import IngestJobSensor
from airflow_provider_ingest.triggers.zeta_alpha import ZetaAlphaDocumentsTrigger


class ZetaAlphaDocumentsSensor(ZetaAlphaSensorLinks, IngestJobSensor):
    """Waits until every document in ``document_ids`` reaches a terminal status.

    ``indexed`` and ``indexed_update`` succeed (and ``ingested`` for a document that is not
    indexable); ``failed``, ``quarantined``, ``quarantine_failed`` and ``not_found`` fail, naming
    the documents and their error codes, once no document is still in progress.

    :param document_ids: The document ids to wait for (templated).
    :param zeta_alpha_conn_id: The Airflow connection to Zeta Alpha.
    """

    hook_class = ZetaAlphaHook
    trigger_class = ZetaAlphaDocumentsTrigger
    template_fields = ("job_id",)

    def __init__(
        self, *, document_ids: list[str], zeta_alpha_conn_id: str = "zeta_alpha_default", **kwargs: Any
    ):
        super().__init__(job_id=document_ids, conn_id=zeta_alpha_conn_id, **kwargs)
