"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Connection forms are described here as data (``conn-fields`` JSON schema and
``ui-field-behaviour``) so the UI builds them without importing any hook.
"""

from __future__ import annotations

from typing import Any

PACKAGE = "airflow_provider_ingest"

# Every REST connection's network extras (see http.NetworkSettings), applied alike by the sync
# (requests) and deferred (aiohttp) clients. Text fields in the form; in a connection's JSON they
# may also be given as an object, a boolean and a [cert, key] list.
NETWORK_FIELDS: dict[str, Any] = {
    "proxies": {
        "label": "Proxies",
        "description": 'JSON, as requests takes it: {"https": "http://proxy:3128"}; '
        "empty: HTTPS_PROXY / NO_PROXY from the environment",
        "schema": {"type": ["string", "null"]},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true (default), false, or the path of a CA bundle on the workers and triggerers",
        "schema": {"type": ["string", "null"]},
    },
    "cert": {
        "label": "Client certificate",
        "description": "path of a PEM holding certificate and key (JSON: [cert path, key path])",
        "schema": {"type": ["string", "null"]},
    },
}

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
            "organization": {
                "label": "Organization",
                "description": "ORGANIZATION.REGION.CLOUD naming the asset (imply-polaris://...); "
                "empty: taken from an *.api.imply.io host. Set it for a proxy or private endpoint",
                "schema": {"type": ["string", "null"]},
            },
            "console_url": {
                "label": "Console URL",
                "description": "Polaris UI for the task's job link; empty: https://ORGANIZATION.app.imply.io",
                "schema": {"type": ["string", "null"]},
            },
        },
    },
    {
        "connection-type": "egain",
        "hook-class-name": f"{PACKAGE}.hooks.egain.EgainHook",
        "hook-name": "eGain AI Knowledge Hub",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": {"host": "API base URL", "login": "Client ID", "password": "Client secret"},
            "placeholders": {"host": "https://API_DOMAIN"},
        },
        "conn-fields": {
            "auth_url": {
                "label": "Auth URL",
                "description": "OAuth 2.0 token endpoint (client credentials grant); "
                "replaces the deprecated token_url",
                "schema": {"type": "string", "format": "uri"},
            },
            "scope": {
                "label": "Scope",
                "description": "OAuth scope; default knowledge.contentmgr.manage",
                "schema": {"type": ["string", "null"], "default": "knowledge.contentmgr.manage"},
            },
            "tenant": {
                "label": "Tenant",
                "description": "eGain tenant whose knowledge base the imports fill; names the asset "
                "egain://HOST/TENANT (default: default)",
                "schema": {"type": ["string", "null"]},
            },
        },
    },
]

CONNECTION_TYPES.append(
    {
        "connection-type": "zeta_alpha",
        "hook-class-name": f"{PACKAGE}.hooks.zeta_alpha.ZetaAlphaHook",
        "hook-name": "Zeta Alpha",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port"],
            "relabeling": {"host": "Base URL", "password": "API key or bearer token"},
            "placeholders": {"host": "https://api.zeta-alpha.com"},
        },
        "conn-fields": {
            "tenant": {
                "label": "Tenant",
                "description": "Tenant that owns the documents",
                "schema": {"type": "string"},
            },
            "index_id": {
                "label": "Index ID",
                "description": "Index to use; empty for the tenant's default index",
                "schema": {"type": ["string", "null"]},
            },
            "auth_type": {
                "label": "Auth type",
                "description": "api_key: the password goes in X-Auth; bearer: in Authorization",
                "schema": {"type": "string", "enum": ["api_key", "bearer"], "default": "api_key"},
            },
        },
    }
)

CONNECTION_TYPES.append(
    {
        "connection-type": "adobe_aep",
        "hook-class-name": f"{PACKAGE}.hooks.adobe_aep.AdobeAepHook",
        "hook-name": "Adobe Experience Platform",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": {
                "host": "Platform URL",
                "login": "Client ID (API key)",
                "password": "Client secret",
            },
            "placeholders": {"host": "https://platform.adobe.io"},
        },
        "conn-fields": {
            "ims_org_id": {
                "label": "IMS org ID",
                "description": "x-gw-ims-org-id",
                "schema": {"type": "string"},
            },
            "sandbox_name": {
                "label": "Sandbox",
                "description": "x-sandbox-name; default prod",
                "schema": {"type": ["string", "null"], "default": "prod"},
            },
            "auth_url": {
                "label": "Auth URL",
                "description": "Adobe IMS token endpoint (replaces the deprecated token_url); "
                "default https://ims-na1.adobelogin.com/ims/token/v3",
                "schema": {"type": ["string", "null"]},
            },
            "scopes": {
                "label": "Scopes",
                "description": "comma-separated OAuth scopes",
                "schema": {"type": ["string", "null"]},
            },
            "console_url": {
                "label": "Console URL",
                "description": "Experience Platform UI for the batch link; default https://experience.adobe.com",
                "schema": {"type": ["string", "null"]},
            },
        },
    }
)

for _connection_type in CONNECTION_TYPES:
    _connection_type["conn-fields"].update(NETWORK_FIELDS)

# One integration per service: (name, module suffix, what the service is); how-to: docs/<module>.md.
# The module suffix names its hook, operator, sensor and trigger modules.
INTEGRATIONS = [
    ("Imply Polaris", "polaris", "https://docs.imply.io/polaris/"),
    ("eGain AI Knowledge Hub", "egain", "https://www.egain.com/products/knowledge-management-software/"),
    # Q in Connect uses the amazon provider's aws connection type.
    (
        "Amazon Q in Connect",
        "qconnect",
        "https://docs.aws.amazon.com/connect/latest/adminguide/amazon-q-connect.html",
    ),
    ("Zeta Alpha", "zeta_alpha", "https://www.zeta-alpha.com/"),
    (
        "Adobe Experience Platform",
        "adobe_aep",
        "https://experienceleague.adobe.com/en/docs/experience-platform/ingestion/batch/overview",
    ),
]

# The amazon provider's integration name for S3, so Airflow's docs link both ends of a transfer.
S3_INTEGRATION = "Amazon Simple Storage Service (S3)"

# The S3-to-service operator of each integration (tests/test_packaging.py imports each one).
TRANSFER_OPERATORS = {
    "polaris": "PolarisStartIngestionJobOperator",
    "egain": "EgainStartImportOperator",
    "qconnect": "QConnectImportQuickResponsesOperator",
    "zeta_alpha": "S3ToZetaAlphaOperator",
    "adobe_aep": "S3ToAdobeAepOperator",
}


def how_to_guide(module: str) -> str:
    """The service's page in docs/ (connection, operators, statuses, troubleshooting)."""
    return f"/docs/{module}.md"


def _modules(kind: str) -> list[dict[str, Any]]:
    return [
        {"integration-name": name, "python-modules": [f"{PACKAGE}.{kind}.{module}"]}
        for name, module, _ in INTEGRATIONS
    ]


# One URI scheme per destination (see assets.py): a sanitizing handler, a factory and an
# OpenLineage converter each. Written out as strings: Airflow imports them only when needed.
ASSET_SCHEMES = [
    ("imply-polaris", "polaris"),
    ("adobe-aep", "aep"),
    ("egain", "egain"),
    ("qconnect", "qconnect"),
    ("zeta-alpha", "zeta_alpha"),
]
ASSET_URIS: list[dict[str, Any]] = [
    {
        "schemes": [scheme],
        "handler": f"{PACKAGE}.assets.sanitize_{name}_uri",
        "factory": f"{PACKAGE}.assets.create_{name}_asset",
        "to_openlineage_converter": f"{PACKAGE}.assets.convert_asset_to_openlineage",
    }
    for scheme, name in ASSET_SCHEMES
]
# Operator extra links to each vendor's console (see links.py).
EXTRA_LINKS = [
    *(
        f"{PACKAGE}.links.{name}"
        for name in ("PolarisJobLink", "AdobeAepBatchLink", "EgainImportJobLink", "ZetaAlphaDocumentsLink")
    ),
    f"{PACKAGE}.links_aws.QConnectKnowledgeBaseLink",
]


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
            {
                "integration-name": name,
                "external-doc-url": url,
                "how-to-guide": [how_to_guide(module)],
                "tags": ["aws", "service"] if module == "qconnect" else ["service"],
            }
            for name, module, url in INTEGRATIONS
        ],
        "connection-types": CONNECTION_TYPES,
        "hooks": _modules("hooks"),
        "operators": _modules("operators"),
        "sensors": _modules("sensors"),
        "triggers": _modules("triggers"),
        "transfers": [
            {
                "source-integration-name": S3_INTEGRATION,
                "target-integration-name": name,
                "how-to-guide": how_to_guide(module),
                "python-module": f"{PACKAGE}.operators.{module}",
            }
            for name, module, _ in INTEGRATIONS
        ],
        "asset-uris": ASSET_URIS,
        "extra-links": EXTRA_LINKS,
    }
