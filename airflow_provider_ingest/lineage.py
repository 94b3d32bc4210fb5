"""What each operator tells Airflow and OpenLineage about what it moved, and where to see it.

The operators take these mixins as their first base class, so the logic lives here and an
operator module only names its mixin:

- **Outlet.** The destination's asset URI needs the connection's host (see ``assets.py``), and a
  DAG file must not read a connection while it is parsed; the table or dataset is often a
  template too. So each operator declares, at parse time, the ``AssetAlias`` named after its
  scheme (``imply-polaris``, ``adobe-aep``, ``egain``, ``qconnect``, ``zeta-alpha``), and once
  the data has landed it resolves the alias at run time to the concrete asset, with an event
  ``extra`` saying what landed. Airflow then records an event for that asset (creating it if no
  DAG named it yet) and runs every DAG scheduled on the asset, or on the alias. Nothing is emitted
  when the task fails, or when it does not wait for the job (nothing has landed yet).
- **Links.** As soon as the job, batch or import id is known (before waiting), the ids and the
  console's base URL go to XCom for the operator extra links in ``links.py``.
- **OpenLineage.** ``get_openlineage_facets_on_start`` / ``_on_complete``: inputs are the S3
  objects or prefixes (namespace ``s3://<bucket>``, name the key or prefix, as the amazon provider
  names them); the output is the destination asset as an OpenLineage dataset, with a schema facet
  where the provider knows the schema and output statistics where the vendor reports them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar, cast

from airflow.sdk import Asset, AssetAlias

from airflow_provider_ingest import assets
from airflow_provider_ingest.links import (
    AdobeAepBatchLink,
    EgainImportJobLink,
    PolarisJobLink,
    ZetaAlphaDocumentsLink,
    aep_console,
    api_base,
    polaris_console,
)
from airflow_provider_ingest.validation import parse_s3_uri

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.links.base_aws import BaseAwsLink
    from airflow.sdk import BaseOperator, Connection, Context
    from openlineage.client.generated.base import OutputDatasetFacet

    from airflow_provider_ingest.links import IngestConsoleLink

    # The mixins are only ever mixed into an operator or sensor (they come first among its bases):
    # for the type checker they are one, so ``log``, ``outlets`` and the rest are known. At run time
    # they stay plain classes.
    _OperatorBase = BaseOperator
else:
    _OperatorBase = object


def destination_alias(scheme: str) -> AssetAlias:
    """The alias an operator writing to ``scheme`` declares as its outlet."""
    return AssetAlias(name=scheme)


# --- OpenLineage building blocks ------------------------------------------------------------------
def s3_dataset(bucket: str, name: str, schema: list[tuple[str, str]] | None = None):
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return Dataset(namespace=f"s3://{bucket}", name=name or "/", facets=schema_facets(schema))


def schema_facets(schema: list[tuple[str, str]] | None) -> dict[str, Any]:
    if not schema:
        return {}
    from airflow.providers.common.compat.openlineage.facet import (
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    return {
        "schema": SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in schema])
    }


def output_dataset(
    asset: Asset,
    schema: list[tuple[str, str]] | None = None,
    rows: int | None = None,
    size: int | None = None,
    files: int | None = None,
):
    from airflow.providers.common.compat.openlineage.facet import (
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    dataset = assets.convert_asset_to_openlineage(asset)
    statistics: dict[str, OutputDatasetFacet] = {}
    if rows is not None or size is not None:
        statistics["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
            rowCount=rows, size=size, fileCount=files
        )
    return OutputDataset(
        namespace=dataset.namespace, name=dataset.name, facets=schema_facets(schema), outputFacets=statistics
    )


def operator_lineage(inputs: list[Any], outputs: list[Any]):
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=inputs, outputs=outputs)


# --- the shared mixin -----------------------------------------------------------------------------
class HookedMixin(_OperatorBase):
    """An operator class may define a method itself, and a mixin's method of that name would then
    never run; so each class taking this mixin gets the methods in ``lineage_hooks`` wrapped when it
    is created: ``{method: hook}``, the hook called as ``hook(original, *args, **kwargs)``."""

    lineage_hooks: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        for name, hook in cls.lineage_hooks.items():
            original = getattr(cls, name, None)
            if original is not None and getattr(original, "_lineage_hook", None) != hook:
                setattr(cls, name, _hooked(original, hook))


class IngestLineageMixin(HookedMixin):
    """Subclasses set ``scheme`` and ``operator_extra_links`` and implement ``destination``,
    ``link_params``, ``landed`` and ``inputs``."""

    scheme: ClassVar[str]
    link_class: ClassVar[type[IngestConsoleLink] | type[BaseAwsLink]]
    landing: dict[str, Any] | None = None
    _link_persisted = False

    # set by the operator's __init__
    conn_id: str
    wait_for_completion: bool

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        alias = destination_alias(self.scheme)
        if alias not in self.outlets:
            self.outlets = [*self.outlets, alias]

    # what a service provides ------------------------------------------------------------------
    def connection(self) -> Connection:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(self.conn_id)

    def destination(self) -> Asset:
        raise NotImplementedError

    def link_params(self, job_id: Any) -> dict[str, Any]:
        raise NotImplementedError

    def landed(self, result: Any, context: Context) -> dict[str, Any]:
        """The asset event's ``extra``: ids, counts, bytes and the S3 source of what landed."""
        raise NotImplementedError

    def inputs(self, known_only: bool = False) -> list[Any]:
        """Input datasets; with ``known_only``, only those known without a remote call."""
        raise NotImplementedError

    def output_facets(self) -> dict[str, Any]:
        """``output_dataset`` keyword arguments (schema, rows, size, files) from ``landing``."""
        return {}

    def _landed_extra(self) -> dict[str, Any]:
        """``landing``, for ``output_facets`` (only called once the data has landed)."""
        if self.landing is None:
            raise RuntimeError("output facets asked for before the data landed")
        return self.landing

    # hooks into the operator's run ---------------------------------------------------------------
    lineage_hooks = {
        "execute": "_hook_execute",
        "execute_complete": "_hook_execute",
        "poll_until_complete": "_hook_poll",
    }

    def persist_link(self, context: Context, job_id: Any) -> None:
        if self._link_persisted or job_id is None:
            return
        try:
            self.link_class.persist(context, **self.link_params(job_id))
            self._link_persisted = True
        except Exception:  # a link is a convenience: it never fails the task
            self.log.warning("Could not record the console link for %s", job_id, exc_info=True)

    def _hook_poll(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        external_id, context = _args(args, kwargs, "external_id", "context")
        self.persist_link(context, external_id)
        return original(self, *args, **kwargs)

    def _hook_execute(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        (context,) = _args(args, kwargs, "context")
        return self._after_landing(original(self, *args, **kwargs), context)

    def _after_landing(self, result: Any, context: Context) -> Any:
        if not self.wait_for_completion or self.landing is not None:
            return result  # the job runs on (nothing has landed yet), or this was recorded already
        self.landing = self.landed(result, context)
        self.persist_link(context, self.landing.get("job_id") or self.landing.get("batch_id"))
        asset = self.destination()
        events = context.get("outlet_events") if hasattr(context, "get") else None
        if events is not None:
            events[destination_alias(self.scheme)].add(asset, extra=self.landing)
        self.log.info("Landed in %s: %s", asset.uri, self.landing)
        return result

    # OpenLineage ------------------------------------------------------------------------------
    def get_openlineage_facets_on_start(self):
        return operator_lineage(self.inputs(known_only=True), [output_dataset(self.destination())])

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        facets = self.output_facets() if self.landing else {}
        return operator_lineage(self.inputs(), [output_dataset(self.destination(), **facets)])


def _args(args: tuple, kwargs: dict[str, Any], *names: str) -> list[Any]:
    """The named leading arguments of a call, given by position or by keyword."""
    return [args[i] if i < len(args) else kwargs.get(name) for i, name in enumerate(names)]


def _hooked(original: Any, hook: str) -> Any:
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, hook)(original, *args, **kwargs)

    cast(Any, method)._lineage_hook = hook
    return method


def _metric(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


# --- Imply Polaris --------------------------------------------------------------------------------
class PolarisLineage(IngestLineageMixin):
    scheme = assets.POLARIS
    link_class = PolarisJobLink
    operator_extra_links = (PolarisJobLink(),)

    # set by the operator's __init__; ``hook`` is the operator's
    table_name: str
    connection_name: str
    uris: list[str] | None
    prefixes: list[str] | None
    objects: list[str] | None
    pattern: str | None
    input_schema: list[dict[str, str]] | None
    hook: Any

    def destination(self) -> Asset:
        return assets.polaris_destination(self.connection(), self.table_name)

    def link_params(self, job_id: Any) -> dict[str, Any]:
        conn = self.connection()
        project_id = (conn.extra_dejson or {}).get("project_id")
        return {"console": polaris_console(conn), "project_id": project_id, "job_id": job_id}

    def _bucket(self) -> tuple[str, str]:
        connection = self.hook.get_s3_connection(self.connection_name) or {}
        return connection.get("bucket", ""), connection.get("prefix") or ""

    def landed(self, result: Any, context: Context) -> dict[str, Any]:
        job = self.hook.get_job(result)
        ti = context.get("ti") if hasattr(context, "get") else None
        pulled = ti.xcom_pull(task_ids=ti.task_id, key="metrics", map_indexes=ti.map_index) if ti else None
        metrics = pulled or {}
        if not metrics:
            metrics = self.hook.get_job_metrics(result)
        source = job.get("source") or {}
        self._input_schema = [
            (c["name"], c.get("dataType", "string")) for c in source.get("inputSchema") or []
        ]
        return {
            "job_id": result,
            "table": self.table_name,
            "rows": _metric(metrics.get("numRowsPersisted")),
            "rows_processed": _metric(metrics.get("numRowsProcessed")),
            "bytes": _metric(metrics.get("numBytesProcessed")),
            "s3": [f"s3://{d.namespace[5:]}/{d.name.lstrip('/')}" for d in self.inputs()],
        }

    def inputs(self, known_only: bool = False) -> list[Any]:
        schema = getattr(self, "_input_schema", None) or [
            (c["name"], c.get("dataType", "string")) for c in self.input_schema or []
        ]
        if self.uris:
            return [s3_dataset(*parse_s3_uri(uri, "uris"), schema) for uri in self.uris]
        if known_only:
            return []  # the bucket is the Polaris connection's: a remote call
        bucket, connection_prefix = self._bucket()
        names = self.objects or self.prefixes or [self.pattern or connection_prefix]
        return [s3_dataset(bucket, name, schema) for name in names]

    def output_facets(self) -> dict[str, Any]:
        landing = self._landed_extra()
        return {"rows": landing.get("rows"), "size": landing.get("bytes")}


# --- Adobe Experience Platform --------------------------------------------------------------------
PARQUET_SCHEMA_KEY = "aep_parquet_schema"


class AdobeAepLineage(IngestLineageMixin):
    scheme = assets.AEP
    link_class = AdobeAepBatchLink
    operator_extra_links = (AdobeAepBatchLink(),)
    _parquet_schema: list[tuple[str, str]] | None = None

    # set by the operator's __init__
    dataset_id: str
    s3_prefix: str | None
    s3_keys: list[str] | None

    def destination(self) -> Asset:
        return assets.aep_destination(self.connection(), self.dataset_id)

    def link_params(self, job_id: Any) -> dict[str, Any]:
        conn = self.connection()
        extra = conn.extra_dejson or {}
        return {
            "console": aep_console(conn),
            "sandbox": extra.get("sandbox_name") or "prod",
            "ims_org": extra.get("ims_org_id"),
            "dataset_id": self.dataset_id,
            "batch_id": job_id,
        }

    lineage_hooks = {
        **IngestLineageMixin.lineage_hooks,
        "stage_parquet": "_hook_stage_parquet",
        "submit": "_hook_submit",
    }

    def _hook_stage_parquet(self, original: Any, *args: Any, **kwargs: Any) -> int:
        rows = original(self, *args, **kwargs)
        (local,) = _args(args[2:], kwargs, "local")
        if self._parquet_schema is None:  # the schema of what is uploaded: the first staged file's
            import pyarrow.parquet as pq

            self._parquet_schema = [(f.name, str(f.type)) for f in pq.read_schema(local.name)]
        return rows

    def _hook_submit(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        batch_id = original(self, *args, **kwargs)
        (context,) = _args(args, kwargs, "context")
        if self._parquet_schema and hasattr(context, "get") and (ti := context.get("ti")):
            ti.xcom_push(key=PARQUET_SCHEMA_KEY, value=[list(f) for f in self._parquet_schema])
        return batch_id

    def landed(self, result: Any, context: Context) -> dict[str, Any]:
        if self._parquet_schema is None and (ti := context.get("ti")):  # resumed after deferral
            pushed = ti.xcom_pull(task_ids=ti.task_id, key=PARQUET_SCHEMA_KEY, map_indexes=ti.map_index)
            self._parquet_schema = [tuple(f) for f in pushed] if pushed else None
        files = result.get("files") or []
        return {
            "batch_id": result.get("batch_id"),
            "dataset_id": self.dataset_id,
            "rows": result.get("rows"),
            "bytes": result.get("bytes"),
            "files": len(files),
            "s3": self.s3_prefix or list(self.s3_keys or []),
        }

    def inputs(self, known_only: bool = False) -> list[Any]:
        uris = [self.s3_prefix] if self.s3_prefix else list(self.s3_keys or [])
        return [s3_dataset(*parse_s3_uri(uri, "s3")) for uri in uris]

    def output_facets(self) -> dict[str, Any]:
        landing = self._landed_extra()
        return {
            "schema": self._parquet_schema,
            "rows": landing.get("rows"),
            "size": landing.get("bytes"),
            "files": landing.get("files"),
        }


# --- eGain ----------------------------------------------------------------------------------------
class EgainLineage(IngestLineageMixin):
    scheme = assets.EGAIN
    link_class = EgainImportJobLink
    operator_extra_links = (EgainImportJobLink(),)

    s3_path: str  # set by the operator's __init__

    def destination(self) -> Asset:
        return assets.egain_destination(self.connection())

    def link_params(self, job_id: Any) -> dict[str, Any]:
        return {"console": api_base(self.connection()), "job_id": job_id}

    def landed(self, result: Any, context: Context) -> dict[str, Any]:
        results = result.get("results") or {}
        return {
            "job_id": result.get("job_id"),
            "documents": results.get("successful"),
            "errors": results.get("errors"),
            "s3": self.s3_path,
        }

    def inputs(self, known_only: bool = False) -> list[Any]:
        return [s3_dataset(*parse_s3_uri(self.s3_path, "s3_path"))]

    def output_facets(self) -> dict[str, Any]:
        landing = self._landed_extra()
        return {"rows": landing.get("documents")}


# --- Zeta Alpha -----------------------------------------------------------------------------------
class ZetaAlphaLineage(IngestLineageMixin):
    scheme = assets.ZETA_ALPHA
    link_class = ZetaAlphaDocumentsLink
    operator_extra_links = (ZetaAlphaDocumentsLink(),)

    # set by the operator's __init__
    s3_prefix: str
    content_source_id: str | None

    def destination(self) -> Asset:
        return assets.zeta_alpha_destination(self.connection())

    def link_params(self, job_id: Any) -> dict[str, Any]:
        conn = self.connection()
        return {
            "console": api_base(conn),
            "tenant": (conn.extra_dejson or {}).get("tenant"),
            "content_source_id": self.content_source_id,
        }

    def landed(self, result: Any, context: Context) -> dict[str, Any]:
        return {
            "documents": result.get("sent"),
            "skipped": result.get("skipped"),
            "deleted": result.get("deleted"),
            "content_source_id": self.content_source_id,
            "s3": self.s3_prefix,
        }

    def inputs(self, known_only: bool = False) -> list[Any]:
        return [s3_dataset(*parse_s3_uri(self.s3_prefix, "s3_prefix"))]

    def output_facets(self) -> dict[str, Any]:
        landing = self._landed_extra()
        return {"rows": landing.get("documents")}


# --- sensors: links only --------------------------------------------------------------------------
class SensorLinkMixin(HookedMixin):
    """Records the console link of the job the sensor waits for, before it waits."""

    link_class: ClassVar[type[IngestConsoleLink]]
    lineage_hooks = {"execute": "_hook_sensor_execute"}

    # set by the sensor's __init__
    conn_id: str
    job_id: Any

    def link_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def persist_sensor_link(self, context: Context) -> None:
        self.link_class.persist(context, **self.link_params())

    def _hook_sensor_execute(self, original: Any, *args: Any, **kwargs: Any) -> Any:
        (context,) = _args(args, kwargs, "context")
        try:
            self.persist_sensor_link(context)
        except Exception:  # a link is a convenience: it never fails the task
            self.log.warning("Could not record the console link", exc_info=True)
        return original(self, *args, **kwargs)

    def connection(self) -> Connection:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(self.conn_id)


class PolarisSensorLinks(SensorLinkMixin):
    link_class = PolarisJobLink
    operator_extra_links = (PolarisJobLink(),)

    def link_params(self) -> dict[str, Any]:
        return PolarisLineage.link_params(cast(PolarisLineage, self), self.job_id)


class AdobeAepSensorLinks(SensorLinkMixin):
    link_class = AdobeAepBatchLink
    operator_extra_links = (AdobeAepBatchLink(),)
    dataset_id = None

    def link_params(self) -> dict[str, Any]:
        return AdobeAepLineage.link_params(cast(AdobeAepLineage, self), self.job_id)


class EgainSensorLinks(SensorLinkMixin):
    link_class = EgainImportJobLink
    operator_extra_links = (EgainImportJobLink(),)

    def link_params(self) -> dict[str, Any]:
        from airflow_provider_ingest.hooks.egain import job_id_from_location

        job_id = job_id_from_location(self.job_id) if "/" in str(self.job_id) else self.job_id
        return {"console": api_base(self.connection()), "job_id": job_id}


class ZetaAlphaSensorLinks(SensorLinkMixin):
    link_class = ZetaAlphaDocumentsLink
    operator_extra_links = (ZetaAlphaDocumentsLink(),)
    content_source_id = None

    def link_params(self) -> dict[str, Any]:
        return ZetaAlphaLineage.link_params(cast(ZetaAlphaLineage, self), self.job_id)
