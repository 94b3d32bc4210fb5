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
    from airflow.providers.amazon.aws.utils.mixins import AwsBaseHookMixin
    from airflow.sdk import Asset, Context

    from airflow_provider_ingest.hooks.qconnect import QConnectHook


if TYPE_CHECKING:  # mixed into an AwsBaseOperator: its ``hook`` is final

    class _QConnectLineageBase(IngestLineageMixin, AwsBaseHookMixin[QConnectHook]): ...
else:
    _QConnectLineageBase = IngestLineageMixin


class QConnectLineage(_QConnectLineageBase):
    scheme = assets.QCONNECT
    link_class = QConnectKnowledgeBaseLink
    operator_extra_links = (QConnectKnowledgeBaseLink(),)

    # the operator's
    knowledge_base_id: str
    s3_client: Any

    if TYPE_CHECKING:

        def s3_location(self) -> tuple[str, str]: ...

    def destination(self) -> Asset:
        return assets.create_qconnect_asset(
            region=self.hook.conn_region_name, knowledge_base_id=self.knowledge_base_id
        )

    def persist_link(self, context: Context, job_id: Any) -> None:
        if self._link_persisted or job_id is None:
            return
        persist_link(self, context, job_id)
        self._link_persisted = True

    def landed(self, result: Any, context: Context) -> dict[str, Any]:
        bucket, key = self.s3_location()
        size = self.s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        return {"import_job_id": result, "bytes": size, "s3": f"s3://{bucket}/{key}"}

    def inputs(self, known_only: bool = False) -> list[Any]:
        return [s3_dataset(*self.s3_location())]

    def output_facets(self) -> dict[str, Any]:
        landing = self._landed_extra()
        return {"size": landing.get("bytes")}


if TYPE_CHECKING:  # mixed into an AwsBaseSensor: its ``hook`` is final

    class _QConnectSensorLinksBase(SensorLinkMixin, AwsBaseHookMixin[QConnectHook]): ...
else:
    _QConnectSensorLinksBase = SensorLinkMixin


class QConnectSensorLinks(_QConnectSensorLinksBase):
    operator_extra_links = (QConnectKnowledgeBaseLink(),)

    # set by the sensor's __init__
    knowledge_base_id: str
    import_job_id: str

    def persist_sensor_link(self, context: Context) -> None:
        persist_link(self, context, self.import_job_id)


def persist_link(task: Any, context: Context, import_job_id: Any) -> None:
    """Record the console link of ``import_job_id`` for the operator or sensor ``task``: the
    region and partition of its AWS connection, and its knowledge base."""
    QConnectKnowledgeBaseLink.persist(
        context=context,
        operator=task,
        region_name=task.hook.conn_region_name,
        aws_partition=task.hook.conn_partition,
        knowledge_base_id=task.knowledge_base_id,
        import_job_id=import_job_id,
    )
