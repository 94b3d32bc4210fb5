from __future__ import annotations

from typing import Any

from airflow_provider_ingest.hooks.zeta_alpha import ZETA_ALPHA_UI_COLOR, ZetaAlphaHook, ingestion_job
from airflow_provider_ingest.lineage import ZetaAlphaSensorLinks
from airflow_provider_ingest.sensors.base import IngestJobSensor
from airflow_provider_ingest.triggers.zeta_alpha import ZetaAlphaDocumentsTrigger


class ZetaAlphaDocumentsSensor(ZetaAlphaSensorLinks, IngestJobSensor):
    """Waits until every document in ``document_ids``, or every document of an ingestion job
    (``ingestion_job_id`` and ``documents``, as ``S3ToZetaAlphaOperator`` returns them), reaches a
    terminal status.

    ``indexed`` and ``indexed_update`` succeed (and ``ingested`` for a document that is not
    indexable); ``failed``, ``quarantined``, ``quarantine_failed`` and ``not_found`` fail, naming
    the documents and their error codes, once no document is still in progress.

    :param document_ids: The document ids to wait for (templated); or give ``ingestion_job_id``.
    :param ingestion_job_id: The content ingestion job whose documents to wait for (templated), e.g.
        ``{{ ti.xcom_pull('ingest')['ingestion_job_id'] }}``; the state stays small whatever the
        number of documents.
    :param documents: With ``ingestion_job_id``: how many documents the job sent (the operator's
        ``sent``), so a document not visible yet is waited for (templated).
    :param zeta_alpha_conn_id: The Airflow connection to Zeta Alpha.
    """

    hook_class = ZetaAlphaHook
    ui_color = ZETA_ALPHA_UI_COLOR
    trigger_class = ZetaAlphaDocumentsTrigger
    template_fields = ("job_id", "conn_id")
    template_fields_renderers = {"job_id": "json"}
    job_id_field = "document_ids"

    def __init__(
        self,
        *,
        document_ids: list[str] | None = None,
        ingestion_job_id: str | None = None,
        documents: int | str | None = None,
        zeta_alpha_conn_id: str = "zeta_alpha_default",
        **kwargs: Any,
    ):
        if (document_ids is None) == (ingestion_job_id is None):
            raise TypeError("ZetaAlphaDocumentsSensor: give document_ids or ingestion_job_id, not both")
        job_id: Any = document_ids
        if ingestion_job_id is not None:
            # a job sensed after the fact: no grace for documents still invisible
            job_id = ingestion_job(ingestion_job_id, documents, sent_at=0.0, grace=0.0)
        super().__init__(job_id=job_id, conn_id=zeta_alpha_conn_id, **kwargs)
