"""Local fakes of the vendor APIs, shipped so that users' tests can run without the vendors.

``python -m airflow_provider_ingest.testing`` starts moto S3 and every fake in ``FAKES``.
"""

from airflow_provider_ingest.testing.adobe_aep import AdobeAepFake
from airflow_provider_ingest.testing.egain import EgainFake
from airflow_provider_ingest.testing.polaris import PolarisFake
from airflow_provider_ingest.testing.qconnect import QConnectFake
from airflow_provider_ingest.testing.server import FakeService
from airflow_provider_ingest.testing.state import TaskStateStore
from airflow_provider_ingest.testing.zeta_alpha import ZetaAlphaFake

FAKES = [PolarisFake, EgainFake, QConnectFake, ZetaAlphaFake, AdobeAepFake]

__all__ = [
    "FAKES",
    "AdobeAepFake",
    "EgainFake",
    "FakeService",
    "PolarisFake",
    "QConnectFake",
    "TaskStateStore",
    "ZetaAlphaFake",
]
