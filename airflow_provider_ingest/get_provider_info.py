"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Connection forms are described here as data (``conn-fields`` JSON schema and
``ui-field-behaviour``) so the UI builds them without importing any hook.
"""

from __future__ import annotations

from typing import Any

PACKAGE = "airflow_provider_ingest"

CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": "imply_polaris",
        "hook-class-name": f"{PACKAGE}.hooks.polaris.PolarisHook",
        "hook-name": "Imply Polaris",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port"],
            "relabeling": {"host": "API base URL", "password": "API key"},
            "placeholders": {
                "host": "https://ORGANIZATION.REGION.CLOUD.api.imply.io",
                "password": "pok_...",
            },
        },
        "conn-fields": {
            "project_id": {
                "label": "Project ID",
                "description": "Polaris project id; every URL is /v1/projects/PROJECT_ID/...",
                "schema": {"type": "string"},
            },
        },
    },
]

HOOKS = [{"integration-name": "Imply Polaris", "python-modules": [f"{PACKAGE}.hooks.polaris"]}]
OPERATORS = [{"integration-name": "Imply Polaris", "python-modules": [f"{PACKAGE}.operators.polaris"]}]
SENSORS = [{"integration-name": "Imply Polaris", "python-modules": [f"{PACKAGE}.sensors.polaris"]}]
TRIGGERS = [{"integration-name": "Imply Polaris", "python-modules": [f"{PACKAGE}.triggers.polaris"]}]


def connection_type(conn_type: str) -> dict[str, Any]:
    return next(c for c in CONNECTION_TYPES if c["connection-type"] == conn_type)


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-ingest",
        "name": "Ingest (S3 to ingestion services)",
        "description": "Move content from Amazon S3 into Imply Polaris, eGain AI Knowledge Hub, "
        "Amazon Q in Connect, Adobe Experience Platform and Zeta Alpha.",
        "versions": ["0.1.0"],
        "integrations": [
            {"integration-name": "Imply Polaris", "external-doc-url": "https://docs.imply.io/polaris/"},
        ],
        "connection-types": CONNECTION_TYPES,
        "hooks": HOOKS,
        "operators": OPERATORS,
        "sensors": SENSORS,
        "triggers": TRIGGERS,
    }
