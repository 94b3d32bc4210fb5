"""Operator extra links to the job, batch or knowledge base in each vendor's console.

Every link is built from one XCom only (``key``), which the task pushes as soon as it knows the
ids (before it waits, so a failed or still-running job has its link too): a dict of ids and the
console's base URL, derived from the connection's host. Airflow 3 calls ``get_link`` on the worker
when the task ends and stores the URL under the link's own XCom key (``_link_<class name>``),
which the UI shows. Registered in ``get_provider_info()["extra-links"]``.

The console URL shapes are not part of the vendor API documents this provider follows; where a
deployment's console lives elsewhere, the connection extra ``console_url`` replaces the derived
base (Polaris, AEP).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.sdk import Connection, Context

AEP_CONSOLE = "https://experience.adobe.com"


def _q(value: Any) -> str:
    return quote(str(value), safe="")


def api_base(conn: Connection) -> str:
    """``scheme://host[:port]`` of the connection's API URL (never its path, login or password)."""
    host = (conn.host or "").strip()
    parsed = urlsplit(host if "://" in host else f"https://{host}")
    port = conn.port or parsed.port
    return f"{parsed.scheme}://{parsed.hostname}" + (f":{port}" if port else "")


class IngestConsoleLink(BaseOperatorLink):
    """A link whose URL is ``url(**params)`` with ``params`` the XCom ``key`` of the task."""

    name: ClassVar[str]
    key: ClassVar[str]

    def url(self, *args: Any, **params: Any) -> str:  # `...`: each link names the params it reads
        raise NotImplementedError

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        params = XCom.get_value(key=self.key, ti_key=ti_key)
        return self.url(**params) if params else ""

    @classmethod
    def persist(cls, context: Context, **params: Any) -> None:
        if (ti := context.get("ti")) is not None:
            ti.xcom_push(key=cls.key, value=params)


class PolarisJobLink(IngestConsoleLink):
    name = "Imply Polaris job"
    key = "polaris_job_link"

    def url(self, *, console: str, project_id: str, job_id: str, **_: Any) -> str:
        return f"{console}/projects/{_q(project_id)}/jobs/{_q(job_id)}"


def polaris_console(conn: Connection) -> str:
    """``https://<org>.app.imply.io`` for an ``<org>.<region>.<cloud>.api.imply.io`` API host, the
    API's own base otherwise; the extra ``console_url`` wins."""
    extra = conn.extra_dejson or {}
    if extra.get("console_url"):
        return str(extra["console_url"]).rstrip("/")
    base = api_base(conn)
    host = urlsplit(base).hostname or ""
    if host.endswith(".api.imply.io"):
        return f"https://{host.split('.', 1)[0]}.app.imply.io"
    return base


class AdobeAepBatchLink(IngestConsoleLink):
    name = "AEP batch"
    key = "aep_batch_link"

    def url(self, *, console: str, sandbox: str, batch_id: str, **_: Any) -> str:
        return f"{console}/#/sname:{_q(sandbox)}/platform/monitoring/batches/{_q(batch_id)}"


def aep_console(conn: Connection) -> str:
    return str((conn.extra_dejson or {}).get("console_url") or AEP_CONSOLE).rstrip("/")


class EgainImportJobLink(IngestConsoleLink):
    """eGain documents no console page per import job: the link is the job's status resource."""

    name = "eGain import job"
    key = "egain_import_job_link"

    def url(self, *, console: str, job_id: str, **_: Any) -> str:
        return f"{console}/knowledge/contentmgr/v4/import/content/{_q(job_id)}/status"


class ZetaAlphaDocumentsLink(IngestConsoleLink):
    """The tenant's documents (of the content source, when there is one) on the API host."""

    name = "Zeta Alpha documents"
    key = "zeta_alpha_documents_link"

    def url(self, *, console: str, tenant: str, content_source_id: str | None = None, **_: Any) -> str:
        query = {"tenant": tenant, **({"content_source_id": content_source_id} if content_source_id else {})}
        return f"{console}/v0/service/ingestion/documents?{urlencode(query)}"


LINKS = (
    PolarisJobLink,
    AdobeAepBatchLink,
    EgainImportJobLink,
    ZetaAlphaDocumentsLink,
)
