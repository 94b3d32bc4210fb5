"""Asset URI schemes for the five destinations, registered in ``get_provider_info()["asset-uris"]``.

One scheme per destination; each has a sanitizing handler (Airflow calls it on every
``Asset("<scheme>://...")``, in DAG files too), a factory (``create_asset(**kwargs)``, used by the
hook-lineage collector) and an OpenLineage converter (namespace ``<scheme>://<authority>``, name
the path without its leading slash, as the amazon provider does for ``s3``):

==================  ===========================================================================
scheme              form and example
==================  ===========================================================================
``imply-polaris``   ``imply-polaris://<org>.<region>.<cloud>/<project-id>/<table>``
                    ``imply-polaris://acme.us-east-1.aws/0b5c.../events``
``adobe-aep``       ``adobe-aep://<ims-org-id>/<sandbox>/<dataset-id>``
                    ``adobe-aep://0123456789ABCDEF01234567@AdobeOrg/prod/5f0c1e2d3a4b5c6d7e8f9a0b``
``egain``           ``egain://<api-host>/<tenant>``  ``egain://api.egain.cloud/acme``
``qconnect``        ``qconnect://<region>/<knowledge-base-id>``
                    ``qconnect://us-east-1/6f8b1c2e-0000-4000-8000-000000000001``
``zeta-alpha``      ``zeta-alpha://<host>/<tenant>/<index-id or "default">``
                    ``zeta-alpha://api.zeta-alpha.com/acme/default``
==================  ===========================================================================

The authority comes from the connection's host (or, for AEP, the IMS org id in its extra), never
from a secret. The ``*_asset`` helpers build the same URIs for a DAG that schedules on a
destination; the ``*_destination`` functions derive them from a connection at run time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

from airflow.sdk import Asset

if TYPE_CHECKING:
    from airflow.sdk import Connection

POLARIS = "imply-polaris"
AEP = "adobe-aep"
EGAIN = "egain"
QCONNECT = "qconnect"
ZETA_ALPHA = "zeta-alpha"
SCHEMES = (POLARIS, AEP, EGAIN, QCONNECT, ZETA_ALPHA)

POLARIS_API_SUFFIX = ".api.imply.io"
ZETA_DEFAULT_INDEX = "default"
EGAIN_DEFAULT_TENANT = "default"
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A host (a DNS name or an IPv4 address) with an optional port: what may stand as an authority.
HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$")
IMS_ORG = re.compile(r"^[A-Za-z0-9]+@AdobeOrg$")


# --- shared pieces ----------------------------------------------------------------------------------
def _segments(uri: SplitResult, count: int, names: str) -> list[str]:
    parts = [unquote(p) for p in uri.path.strip("/").split("/")] if uri.path.strip("/") else []
    if len(parts) != count or not all(parts):
        raise ValueError(f"URI format {uri.scheme}:// must be {uri.scheme}://{names}, got {uri.geturl()!r}")
    return parts


def _path(*segments: str) -> str:
    return "/" + "/".join(quote(s, safe="@") for s in segments)


def _host(uri: SplitResult) -> str:
    netloc = uri.netloc.lower()
    if not HOST.match(netloc):
        raise ValueError(f"URI format {uri.scheme}:// needs a host name as its authority, got {uri.netloc!r}")
    return netloc


def _no_query(uri: SplitResult) -> None:
    if uri.query:
        raise ValueError(f"URI format {uri.scheme}:// takes no query, got {uri.query!r}")


def host_of(conn: Connection) -> str:
    """The connection's API host (``host[:port]``), lower-cased, whether the host field holds a
    URL or a bare name."""
    host = (conn.host or "").strip()
    if not host:
        raise ValueError(f"connection {conn.conn_id!r}: the host is empty; it names the asset")
    parsed = urlsplit(host if "://" in host else f"https://{host}")
    port = conn.port or parsed.port
    name = (parsed.hostname or "").lower()
    return f"{name}:{port}" if port else name


# --- Imply Polaris --------------------------------------------------------------------------------
def polaris_organization(api_host: str) -> str:
    """``acme.us-east-1.aws.api.imply.io`` -> ``acme.us-east-1.aws``; any other host (a proxy, a
    private endpoint, a fake) stands as it is."""
    host = api_host.lower()
    return host[: -len(POLARIS_API_SUFFIX)] if host.endswith(POLARIS_API_SUFFIX) else host


def sanitize_polaris_uri(uri: SplitResult) -> SplitResult:
    _no_query(uri)
    organization = polaris_organization(_host(uri))
    project, table = _segments(uri, 2, "<org>.<region>.<cloud>/<project-id>/<table>")
    return uri._replace(netloc=organization, path=_path(project, table))


def create_polaris_asset(*, organization: str, project_id: str, table: str, extra=None) -> Asset:
    return Asset(uri=f"{POLARIS}://{organization}{_path(project_id, table)}", extra=extra)


def polaris_table_asset(organization: str, project_id: str, table: str) -> Asset:
    """The asset of a Polaris table, for a DAG scheduled on it: ``organization`` is
    ``<org>.<region>.<cloud>`` as in the API host (the full API host works too)."""
    return create_polaris_asset(organization=organization, project_id=project_id, table=table)


def polaris_destination(conn: Connection, table: str) -> Asset:
    extra = conn.extra_dejson or {}
    organization = extra.get("organization") or polaris_organization(host_of(conn))
    return create_polaris_asset(organization=organization, project_id=extra["project_id"], table=table)


# --- Adobe Experience Platform --------------------------------------------------------------------
def sanitize_aep_uri(uri: SplitResult) -> SplitResult:
    _no_query(uri)
    if not IMS_ORG.match(uri.netloc):
        raise ValueError(
            f"URI format {AEP}:// needs the IMS org id (<id>@AdobeOrg) as its authority, got {uri.netloc!r}"
        )
    sandbox, dataset = _segments(uri, 2, "<ims-org-id>/<sandbox>/<dataset-id>")
    return uri._replace(path=_path(sandbox.lower(), dataset))


def create_aep_asset(*, ims_org_id: str, sandbox: str, dataset_id: str, extra=None) -> Asset:
    return Asset(uri=f"{AEP}://{ims_org_id}{_path(sandbox, dataset_id)}", extra=extra)


def aep_dataset_asset(ims_org_id: str, sandbox: str, dataset_id: str) -> Asset:
    return create_aep_asset(ims_org_id=ims_org_id, sandbox=sandbox, dataset_id=dataset_id)


def aep_destination(conn: Connection, dataset_id: str) -> Asset:
    extra = conn.extra_dejson or {}
    sandbox = extra.get("sandbox_name") or "prod"
    return create_aep_asset(ims_org_id=extra["ims_org_id"], sandbox=sandbox, dataset_id=dataset_id)


# --- eGain ----------------------------------------------------------------------------------------
def sanitize_egain_uri(uri: SplitResult) -> SplitResult:
    _no_query(uri)
    (tenant,) = _segments(uri, 1, "<api-host>/<tenant>")
    return uri._replace(netloc=_host(uri), path=_path(tenant))


def create_egain_asset(*, host: str, tenant: str = EGAIN_DEFAULT_TENANT, extra=None) -> Asset:
    return Asset(uri=f"{EGAIN}://{host}{_path(tenant)}", extra=extra)


def egain_knowledge_base_asset(host: str, tenant: str = EGAIN_DEFAULT_TENANT) -> Asset:
    return create_egain_asset(host=host, tenant=tenant)


def egain_destination(conn: Connection) -> Asset:
    tenant = (conn.extra_dejson or {}).get("tenant") or EGAIN_DEFAULT_TENANT
    return create_egain_asset(host=host_of(conn), tenant=tenant)


# --- Amazon Q in Connect --------------------------------------------------------------------------
KB_ARN = re.compile(r"^arn:[a-z-]+:wisdom:([a-z0-9-]+):\d{12}:knowledge-base/([0-9a-fA-F-]{36})$")


def sanitize_qconnect_uri(uri: SplitResult) -> SplitResult:
    _no_query(uri)
    region = uri.netloc.lower()
    if not REGION.match(region):
        raise ValueError(f"URI format {QCONNECT}:// needs an AWS region as its authority, got {uri.netloc!r}")
    (knowledge_base,) = _segments(uri, 1, "<region>/<knowledge-base-id>")
    if not UUID.match(knowledge_base.lower()):
        raise ValueError(f"URI format {QCONNECT}://: {knowledge_base!r} is not a knowledge base id (a UUID)")
    return uri._replace(netloc=region, path=_path(knowledge_base.lower()))


def create_qconnect_asset(*, region: str, knowledge_base_id: str, extra=None) -> Asset:
    if match := KB_ARN.match(knowledge_base_id):  # an ARN names its own region
        region, knowledge_base_id = match.groups()
    return Asset(uri=f"{QCONNECT}://{region}{_path(knowledge_base_id)}", extra=extra)


def qconnect_knowledge_base_asset(region: str, knowledge_base_id: str) -> Asset:
    return create_qconnect_asset(region=region, knowledge_base_id=knowledge_base_id)


# --- Zeta Alpha -----------------------------------------------------------------------------------
def sanitize_zeta_alpha_uri(uri: SplitResult) -> SplitResult:
    _no_query(uri)
    tenant, index = _segments(uri, 2, "<host>/<tenant>/<index-id>")
    return uri._replace(netloc=_host(uri), path=_path(tenant, index))


def create_zeta_alpha_asset(*, host: str, tenant: str, index_id: str | None = None, extra=None) -> Asset:
    return Asset(uri=f"{ZETA_ALPHA}://{host}{_path(tenant, index_id or ZETA_DEFAULT_INDEX)}", extra=extra)


def zeta_alpha_index_asset(host: str, tenant: str, index_id: str | None = None) -> Asset:
    return create_zeta_alpha_asset(host=host, tenant=tenant, index_id=index_id)


def zeta_alpha_destination(conn: Connection) -> Asset:
    extra = conn.extra_dejson or {}
    return create_zeta_alpha_asset(host=host_of(conn), tenant=extra["tenant"], index_id=extra.get("index_id"))


# --- OpenLineage ----------------------------------------------------------------------------------
def convert_asset_to_openlineage(asset: Asset, lineage_context: Any = None):
    """Any of the five schemes -> an OpenLineage ``Dataset``: namespace ``<scheme>://<authority>``,
    name the path without its leading slash (``<project-id>/<table>``, ``<sandbox>/<dataset-id>``...)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parsed = urlsplit(asset.uri)
    return Dataset(namespace=f"{parsed.scheme}://{parsed.netloc}", name=unquote(parsed.path.lstrip("/")))


HANDLERS: dict[str, Callable[[SplitResult], SplitResult]] = {
    POLARIS: sanitize_polaris_uri,
    AEP: sanitize_aep_uri,
    EGAIN: sanitize_egain_uri,
    QCONNECT: sanitize_qconnect_uri,
    ZETA_ALPHA: sanitize_zeta_alpha_uri,
}
FACTORIES = {
    POLARIS: create_polaris_asset,
    AEP: create_aep_asset,
    EGAIN: create_egain_asset,
    QCONNECT: create_qconnect_asset,
    ZETA_ALPHA: create_zeta_alpha_asset,
}
