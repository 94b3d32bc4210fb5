"""Lineage, asset events and the console link of the Amazon Q in Connect operator and sensor.

Apart from ``lineage.py`` because the console link is the amazon provider's (botocore): a non-AWS
operator must not load it (DAG parse cost, see ``tests/test_import_cost.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_ingest import assets
from airflow_provider_ingest.lineage import IngestLineageMixin, SensorLinkMixin, s3_dataset
from airflow_provider_ingest.links_aws import QConnectKnowledgeBaseLink

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context


# --- Amazon Q in Connect --------------------------------------------------------------------------
class QConnectLineage(IngestLineageMixin):
    scheme = assets.QCONNECT
    link_class = QConnectKnowledgeBaseLink
    operator_extra_links = (QConnectKnowledgeBaseLink(),)

    def destination(self) -> Asset:
        return assets.create_qconnect_asset(
            region=self.hook.conn_region_name, knowledge_base_id=self.knowledge_base_id
        )

    def persist_link(self, context: Context, job_id: Any) -> None:
        if self._link_persisted or job_id is None:
            return
        QConnectKnowledgeBaseLink.persist(
            context=context,
            operator=self,
            region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition,
            knowledge_base_id=self.knowledge_base_id,
            import_job_id=job_id,
        )
        self._link_persisted = True

    def landed(self, result: Any, context: Context) -> dict[str, Any]:
        bucket, key = self.s3_location()
        size = self.s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        return {"import_job_id": result, "bytes": size, "s3": f"s3://{bucket}/{key}"}

    def inputs(self, known_only: bool = False) -> list[Any]:
        return [s3_dataset(*self.s3_location())]

    def output_facets(self) -> dict[str, Any]:
        return {"size": self.landing.get("bytes")}


class QConnectSensorLinks(SensorLinkMixin):
    operator_extra_links = (QConnectKnowledgeBaseLink(),)

    def persist_sensor_link(self, context: Context) -> None:
        QConnectKnowledgeBaseLink.persist(
            context=context,
            operator=self,
            region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition,
            knowledge_base_id=self.knowledge_base_id,
            import_job_id=self.import_job_id,
        )
