"""Zeta Alpha: an S3 folder as documents (optionally mirrored), access-rights updates."""

from __future__ import annotations

import base64
import math
import mimetypes
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_provider_ingest.exceptions import IngestInputError, IngestJobFailed
from airflow_provider_ingest.hooks.zeta_alpha import (
    ZETA_ALPHA_UI_COLOR,
    ZetaAlphaHook,
    ingestion_job,
    s3_document_id,
)
from airflow_provider_ingest.http import redact
from airflow_provider_ingest.jobs import JobSnapshot
from airflow_provider_ingest.lineage import ZetaAlphaLineage
from airflow_provider_ingest.operators.base import IngestJobOperator, fail_fast_on_bad_input
from airflow_provider_ingest.triggers.zeta_alpha import ZetaAlphaDocumentsTrigger
from airflow_provider_ingest.validation import (
    check_choice,
    check_int,
    check_type,
    exactly_one,
    parse_s3_uri,
    require,
)

CONTENT_MODES = {"inline", "url"}
TEXT_TYPES = {"application/json", "application/xml", "application/x-ndjson", "application/javascript"}
GENERIC_TYPES = {None, "", "binary/octet-stream", "application/octet-stream"}
MAX_ERRORS_SHOWN = 20
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs last at most 7 days
SHA1_HEX = re.compile(r"^[0-9a-f]{40}$")  # the doc's footnote: the only document_id format


def parse_s3_timestamp(value: Any) -> datetime:
    """S3 sends ISO 8601 in listings (``2026-12-03T07:00:00.000Z``) and RFC 822 in headers
    (``Last-Modified``); the standard library reads both several times faster than botocore's
    dateutil-based default, which still reads anything else (epoch numbers, times without a
    zone). What that is worth: ``benchmarks/s3_listing.py`` (docs/benchmarks.md)."""
    if isinstance(value, str):
        for parse in (datetime.fromisoformat, parsedate_to_datetime):
            try:
                parsed = parse(value)
            except (TypeError, ValueError):
                continue
            if parsed.tzinfo is not None:
                return parsed
    from botocore.parsers import DEFAULT_TIMESTAMP_PARSER  # where used: keeps DAG parsing light

    return DEFAULT_TIMESTAMP_PARSER(value)


def with_fast_timestamps(client: Any) -> Any:
    """``client`` parsing timestamps with :func:`parse_s3_timestamp`, no other client touched.

    botocore builds a response parser per request from its endpoint's factory (the private
    ``_endpoint._response_parser_factory``, shared by every client of a botocore session);
    giving this client's endpoint a factory of its own keeps its credentials, role and endpoint
    as they are and leaves the session's other clients alone. A botocore without that
    attribute keeps its default parser."""
    endpoint: Any = getattr(client, "_endpoint", None)
    if hasattr(endpoint, "_response_parser_factory"):
        from botocore.parsers import ResponseParserFactory

        factory = ResponseParserFactory()
        factory.set_parser_defaults(timestamp_parser=parse_s3_timestamp)
        endpoint._response_parser_factory = factory
    return client


def is_text(content_type: str) -> bool:
    return content_type.startswith("text/") or content_type in TEXT_TYPES


def check_document_id(document_id: Any, field: str) -> str:
    if not isinstance(document_id, str) or not SHA1_HEX.match(document_id):
        raise ValueError(f"{field}: {document_id!r} is not a document id (40 lowercase hex, sha1)")
    return document_id


def check_access_rights(rights: Any, field: str) -> list[dict[str, Any]]:
    for right in check_type(rights, list, field):
        check_type(right, dict, field)
        require(right.get("name"), f"{field}[].name")
    return rights


def check_batch_limits(max_documents: Any, max_bytes: Any = 1024, in_flight: Any = 1) -> None:
    check_int(max_documents, "batch_max_documents", 1)
    check_int(max_bytes, "batch_max_bytes", 1024)
    check_int(in_flight, "max_in_flight", 1)


def send_batches(
    batches: Iterable[list[Any]],
    send: Callable[[list[Any]], dict[str, Any]],
    ids_of: Callable[[list[Any]], list[str]],
    max_in_flight: int,
) -> tuple[list[str], list[dict[str, str]]]:
    """Send every batch with up to ``max_in_flight`` in flight; never stop at a failed one.

    Returns the ids the API accepted and the per-document errors (the reply's ``errors``, or the
    whole batch when the request itself failed). At most ``2 * max_in_flight`` batches are built
    ahead, so memory stays bounded however large the folder.
    """
    accepted: list[str] = []
    errors: list[dict[str, str]] = []

    def settle(future: Future, batch: list[Any]) -> None:
        ids = ids_of(batch)
        try:
            reply = future.result() or {}
        except Exception as exc:  # the batch as a whole failed: every document in it did
            errors.extend({"document_id": i, "error_message": str(exc)} for i in ids)
            return
        failed = {e.get("document_id"): e.get("error_message", "") for e in reply.get("errors") or []}
        errors.extend({"document_id": i, "error_message": m} for i, m in failed.items())
        accepted.extend(i for i in ids if i not in failed)

    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="zeta-alpha") as pool:
        pending: dict[Future, list[Any]] = {}
        for batch in batches:
            pending[pool.submit(send, batch)] = batch
            if len(pending) >= 2 * max_in_flight:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    settle(future, pending.pop(future))
        for future in list(pending):
            settle(future, pending.pop(future))
    return accepted, errors


def raise_for_errors(what: str, errors: list[dict[str, str]], total: int) -> None:
    if not errors:
        return
    shown = "; ".join(f"{e['document_id']}: {e['error_message']}" for e in errors[:MAX_ERRORS_SHOWN])
    more = f"; and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
    # the vendor's messages may echo a document, and with it a presigned URL
    raise IngestJobFailed(redact(f"Zeta Alpha rejected {len(errors)} of {total} {what}: {shown}{more}"))


def read_ahead(items: Iterator[Any]) -> Iterator[Any]:
    """``items``, the next one fetched in a thread while this one is used (so at most one ahead):
    a listing page is requested while the previous page's batches are built and sent, not only
    once they are. Errors re-raise here."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zeta-alpha-list") as pool:
        done = object()
        ahead = pool.submit(next, items, done)
        while (item := ahead.result()) is not done:
            ahead = pool.submit(next, items, done)
            yield item


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class S3ToZetaAlphaOperator(ZetaAlphaLineage, IngestJobOperator):
    """Ingest every object under ``s3_prefix`` as one Zeta Alpha document, then wait until indexed.

    ``document_id`` is the sha1 of the object's ``s3://bucket/key`` URI (the API's only format), so
    re-runs update the same documents. ``content_mode="inline"`` sends the bytes (text as
    ``plain_text_string``, anything else as ``base64_string``); ``"url"`` sends a presigned S3 URL
    so large files never pass through the worker. Batches are bounded by ``batch_max_documents``
    and ``batch_max_bytes`` and sent ``max_in_flight`` at a time; documents the API rejects fail
    the task at the end, after every other batch was sent.

    With ``sync=True`` (requires ``content_source_id``) the index mirrors the folder: objects whose
    ETag (``custom_metadata[etag_metadata_key]``) or last-modified time is unchanged are skipped,
    and documents of the content source whose object is gone are deleted. Like rsync's
    ``--max-delete``, a sync never deletes more than ``max_deletes`` documents (a count, or a float
    fraction of the content source's documents; default 100, a count, so a small source keeps its
    ordinary deletions while a wrong prefix on a large one stops): above it, or when the listing is
    empty (unless ``allow_empty_sync=True``), the task fails before any delete, naming the counts.
    It logs how many documents it deletes before it does.

    ``custom_metadata`` keys are defined by the index configuration. Sync writes the object's ETag
    to ``custom_metadata[etag_metadata_key]`` (``"s3_etag"``); an index with a custom schema must
    define that key (a string), or the documents are refused and the task fails naming the key.
    With ``etag_metadata_key=None`` objects are compared by ``last_updated_at``, which an index with
    a custom schema does not keep: every object is then sent again on every run.

    Every document of one run joins one content ingestion job (the first batch's reply names it),
    and the wait selects the documents by that job, so the task's state, its trigger and its XCom
    stay small whatever the folder size. A document sent but not visible yet (``not_found``) counts
    as pending for ``not_found_grace`` seconds after sending, then as failed. Document batches are
    upserts by id: the start is idempotent, and indexing cannot be canceled.

    Returns ``{"ingestion_job_id", "sent", "skipped", "deleted", "statuses"}``.

    :param s3_prefix: ``s3://bucket/prefix``: every object under it becomes one document (templated).
    :param content_source_id: The content source the documents belong to (templated); required
        with ``sync=True``, where it scopes what may be deleted.
    :param allow_access_rights: Access rights of every document, e.g. ``[{"name": "public"}]``
        (templated).
    :param custom_metadata: Metadata added to every document (templated).
    :param content_mode: ``inline`` sends the bytes (text as ``plain_text_string``, other types as
        ``base64_string``); ``url`` sends a presigned S3 GET URL (templated).
    :param sync: Mirror the folder: skip unchanged objects and delete the content source's
        documents whose object is gone.
    :param batch_max_documents: Documents per batch request.
    :param batch_max_bytes: Estimated request bytes per batch (at least 1024); an object larger
        than one batch fails as a document error (use ``url`` mode for it).
    :param max_in_flight: Batch requests sent concurrently.
    :param url_expires_in: Seconds a presigned URL stays valid in ``url`` mode (at most 7 days).
    :param etag_metadata_key: The ``custom_metadata`` key that records the object's ETag, which
        ``sync`` compares; ``None`` for an index whose schema does not declare it (then
        ``last_updated_at`` is compared).
    :param zeta_alpha_conn_id: The Airflow connection to Zeta Alpha.
    :param allow_empty_sync: With ``sync=True``, accept an empty listing (and so delete every
        document of the content source, within ``max_deletes``); otherwise an empty listing fails
        before any delete (a wrong prefix or a moved folder).
    :param max_deletes: With ``sync=True``, the most documents one run may delete: a count (int) or
        a fraction of the content source's documents (float below 1). More fails before any
        delete, naming both counts.
    :param not_found_grace: Seconds after sending during which a document the index does not show
        yet (``not_found``) counts as pending rather than failed.
    :param aws_conn_id: The Airflow AWS connection used to list and read the objects (and presign
        their URLs).
    """

    hook_class = ZetaAlphaHook
    trigger_class = ZetaAlphaDocumentsTrigger
    external_id_key = "zeta_alpha_document_ids"
    start_is_idempotent = True  # document batches are upserts keyed by document id
    can_cancel = False  # indexing cannot be canceled; sent documents stay
    list_page_size = 1000  # keys per listing request; 1000 is S3's maximum
    template_fields = (
        "s3_prefix",
        "content_source_id",
        "allow_access_rights",
        "custom_metadata",
        "content_mode",
        "conn_id",
        "aws_conn_id",
    )
    template_fields_renderers = {"allow_access_rights": "json", "custom_metadata": "json"}
    ui_color = ZETA_ALPHA_UI_COLOR

    def __init__(
        self,
        *,
        s3_prefix: str,
        content_source_id: str | None = None,
        allow_access_rights: list[dict[str, Any]] | None = None,
        custom_metadata: dict[str, Any] | None = None,
        content_mode: str = "inline",
        sync: bool = False,
        batch_max_documents: int = 100,
        batch_max_bytes: int = 4 * 1024 * 1024,
        max_in_flight: int = 4,
        url_expires_in: int = 12 * 3600,
        etag_metadata_key: str | None = "s3_etag",
        allow_empty_sync: bool = False,
        max_deletes: int | float = 100,
        not_found_grace: float = 60.0,
        zeta_alpha_conn_id: str = "zeta_alpha_default",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ):
        super().__init__(conn_id=zeta_alpha_conn_id, **kwargs)
        self.s3_prefix = s3_prefix
        self.content_source_id = content_source_id
        self.allow_access_rights = allow_access_rights
        self.custom_metadata = custom_metadata
        self.content_mode = content_mode
        self.sync = sync
        self.batch_max_documents = batch_max_documents
        self.batch_max_bytes = batch_max_bytes
        self.max_in_flight = max_in_flight
        self.url_expires_in = url_expires_in
        self.etag_metadata_key = etag_metadata_key
        self.allow_empty_sync = allow_empty_sync
        self.max_deletes = max_deletes
        self.not_found_grace = not_found_grace
        self.aws_conn_id = aws_conn_id
        self.summary: dict[str, Any] = {}

    def validate(self) -> None:
        parse_s3_uri(self.s3_prefix, "s3_prefix")
        check_choice(self.content_mode, CONTENT_MODES, "content_mode")
        if self.allow_access_rights is not None:
            check_access_rights(self.allow_access_rights, "allow_access_rights")
        check_type(self.custom_metadata or {}, dict, "custom_metadata")
        check_batch_limits(self.batch_max_documents, self.batch_max_bytes, self.max_in_flight)
        # wrong types here would be sent as they are, or (sync="no") be truthy
        check_type(self.sync, bool, "sync")
        if self.content_source_id is not None:
            check_type(self.content_source_id, str, "content_source_id")
        if self.etag_metadata_key is not None:
            check_type(self.etag_metadata_key, str, "etag_metadata_key")
        check_int(self.url_expires_in, "url_expires_in", 1, MAX_PRESIGN_SECONDS)
        check_type(self.allow_empty_sync, bool, "allow_empty_sync")
        if isinstance(self.max_deletes, bool) or not isinstance(self.max_deletes, int | float):
            raise ValueError(f"max_deletes: a count (int) or a fraction (float), not {self.max_deletes!r}")
        if isinstance(self.max_deletes, float) and not 0 <= self.max_deletes <= 1:
            raise ValueError(f"max_deletes: a fraction must be within 0.0 and 1.0, not {self.max_deletes}")
        if self.max_deletes < 0:
            raise ValueError(f"max_deletes: must not be negative, not {self.max_deletes}")
        if isinstance(self.not_found_grace, bool) or not isinstance(self.not_found_grace, int | float):
            raise ValueError(f"not_found_grace: seconds (a number), not {self.not_found_grace!r}")
        if self.not_found_grace < 0:
            raise ValueError(f"not_found_grace: must not be negative, not {self.not_found_grace}")
        if self.sync and not self.content_source_id:
            raise ValueError("content_source_id: required with sync=True (it scopes what may be deleted)")

    @cached_property
    def s3(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return with_fast_timestamps(S3Hook(aws_conn_id=self.aws_conn_id).get_conn())

    # --- building documents ----------------------------------------------------------------------
    def list_objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        """The objects under ``prefix``, page by page as S3 lists them (not folder markers)."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.list_page_size}
        )
        for page in read_ahead(iter(pages)):
            yield from (o for o in page.get("Contents", []) if not o["Key"].endswith("/"))

    def unchanged(self, obj: dict[str, Any], existing: dict[str, Any] | None) -> bool:
        if existing is None:
            return False
        if self.etag_metadata_key:
            return (existing.get("custom_metadata") or {}).get(self.etag_metadata_key) == obj["ETag"].strip(
                '"'
            )
        return existing.get("last_updated_at") == obj["LastModified"].isoformat()

    def estimated_bytes(self, obj: dict[str, Any]) -> int:
        return 1024 + (0 if self.content_mode == "url" else obj["Size"] * 4 // 3)

    def document(self, bucket: str, obj: dict[str, Any]) -> dict[str, Any]:
        key = obj["Key"]
        guessed = mimetypes.guess_type(key)[0] or "application/octet-stream"
        if self.content_mode == "url":
            url = self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.url_expires_in
            )
            content = {"content_type": guessed, "from_": {"url": url}}
        else:
            reply = self.s3.get_object(Bucket=bucket, Key=key)
            data = reply["Body"].read()
            content_type = guessed if reply.get("ContentType") in GENERIC_TYPES else reply["ContentType"]
            content_type = content_type.split(";")[0].strip()
            try:
                source = {"plain_text_string": data.decode("utf-8")} if is_text(content_type) else None
            except UnicodeDecodeError:
                source = None
            content = {
                "content_type": content_type,
                "from_": source or {"base64_string": base64.b64encode(data).decode()},
            }
        metadata = dict(self.custom_metadata or {})
        if self.etag_metadata_key:
            metadata[self.etag_metadata_key] = obj["ETag"].strip('"')
        document = {
            "document_id": s3_document_id(bucket, key),
            "uri": f"s3://{bucket}/{key}",
            "document_content": content,
            "last_updated_at": obj["LastModified"].isoformat(),
        }
        optional = {
            "content_source_id": self.content_source_id,
            "allow_access_rights": self.allow_access_rights,
            "custom_metadata": metadata,
        }
        document.update({k: v for k, v in optional.items() if v})
        return document

    def object_batches(self, objects: Iterable[dict[str, Any]], oversize: list[dict[str, str]], bucket: str):
        """Objects grouped by count and estimated request bytes; an object alone over the byte
        bound is reported in ``oversize`` rather than sent."""
        batch: list[dict[str, Any]] = []
        size = 0
        for obj in objects:
            weight = self.estimated_bytes(obj)
            if weight > self.batch_max_bytes:
                oversize.append(
                    {
                        "document_id": s3_document_id(bucket, obj["Key"]),
                        "error_message": f"{obj['Key']} exceeds batch_max_bytes; use content_mode='url'",
                    }
                )
                continue
            if batch and (len(batch) >= self.batch_max_documents or size + weight > self.batch_max_bytes):
                yield batch
                batch, size = [], 0
            batch.append(obj)
            size += weight
        if batch:
            yield batch

    # --- IngestJobOperator -------------------------------------------------------------------------
    def delete_limit(self, existing: int) -> int:
        """How many documents one sync may delete: ``max_deletes`` as a count, or as a fraction
        (a float) of the content source's documents."""
        if isinstance(self.max_deletes, float):
            return math.floor(self.max_deletes * existing)
        return int(self.max_deletes)

    def check_custom_metadata(self, errors: list[dict[str, str]]) -> None:
        """Fail, naming the key and the fix, when the index refused ``etag_metadata_key``."""
        key = self.etag_metadata_key
        if not key:
            return
        # the index names the key as custom_metadata's ("custom_metadata: key 's3_etag' is not
        # defined"); a message that merely quotes a document, as JSON ('"custom_metadata":
        # {"s3_etag": ...}') or URL-encoded, is some other refusal
        names_the_key = re.compile(r"custom_metadata[^{}%\"]{0,40}?" + re.escape(key))
        refused = [e for e in errors if names_the_key.search(e.get("error_message") or "")]
        if not refused:
            return
        raise IngestInputError(
            f"etag_metadata_key: Zeta Alpha refused custom_metadata key {key!r} for {len(refused)} "
            f"document(s) ({redact(refused[0]['error_message'])}). The index has a custom schema that does "
            f"not define it: add {key!r} (a string) to the index configuration's custom_metadata "
            "keys, or set etag_metadata_key to a string key the index defines. (etag_metadata_key="
            "None compares last_updated_at instead, which an index with a custom schema does not "
            "keep: every object would be sent again on every run.)"
        )

    def submit(self, context: Context) -> dict[str, Any]:
        request = {
            "s3_prefix": self.s3_prefix,
            "content_source_id": self.content_source_id,
            "sync": self.sync,
            "content_mode": self.content_mode,
        }
        # Batches are upserts keyed by document id: sending them again after a lost reply, a kill
        # or a timeout changes nothing (start_is_idempotent), so the whole send is the "start".
        return self.start_call(context, request, lambda: self.send_folder(context))

    def send_folder(self, context: Context) -> dict[str, Any]:
        bucket, prefix = parse_s3_uri(self.s3_prefix, "s3_prefix")
        existing = (
            {
                d["document_id"]: d
                for d in self.hook.filter_documents(content_source_id=self.content_source_id)
            }
            if self.sync
            else {}
        )
        listed = {"objects": 0, "skipped": 0}
        current: set[str] = set()  # sync only: what may not be deleted

        def to_send() -> Iterator[dict[str, Any]]:
            # Consumed as batches are built, so the first batch goes out after the first listing
            # page and memory holds a few batches, not the folder.
            for obj in self.list_objects(bucket, prefix):
                listed["objects"] += 1
                doc_id = s3_document_id(bucket, obj["Key"])
                if self.sync:
                    current.add(doc_id)
                if self.unchanged(obj, existing.get(doc_id)):
                    listed["skipped"] += 1
                else:
                    yield obj

        job: dict[str, Any] = {"id": None}

        def send(batch: list[dict[str, Any]]) -> dict[str, Any]:
            reply = self.hook.ingest_documents([self.document(bucket, o) for o in batch], job["id"])
            if job["id"] is None:
                named = [d.get("content_ingestion_job_id") for d in (reply or {}).get("documents") or []]
                job["id"] = next((n for n in named if n), None)
            return reply

        def ids_of(batch: list[dict[str, Any]]) -> list[str]:
            return [s3_document_id(bucket, o["Key"]) for o in batch]

        errors: list[dict[str, str]] = []
        sent_at = time.time()
        batches = iter(self.object_batches(to_send(), errors, bucket))
        sent: list[str] = []
        # One batch at a time until a reply names the ingestion job the platform made for it; the
        # rest join that job, in parallel, so the wait can select them all by its id.
        for batch in batches:
            accepted, batch_errors = send_batches([batch], send, ids_of, 1)
            sent += accepted
            errors += batch_errors
            self.check_custom_metadata(batch_errors)
            if accepted and job["id"] is None:  # no id in the reply: name the job ourselves
                job["id"] = f"airflow-{uuid.uuid4()}"
                errors += send_batches([batch], send, ids_of, 1)[1]  # the same documents, upserted
            if job["id"] is not None:
                break
        accepted, batch_errors = send_batches(batches, send, ids_of, self.max_in_flight)
        sent += accepted
        errors += batch_errors
        self.check_custom_metadata(errors)
        deleted: list[str] = []
        if self.sync:  # the listing is complete once every batch was sent
            stale = [doc_id for doc_id in existing if doc_id not in current]
            self.check_deletions(listed["objects"], len(existing), len(stale))
            if stale:
                self.log.info(
                    "Sync: deleting %d of the %d documents of content source %s whose objects are "
                    "gone from %s",
                    len(stale),
                    len(existing),
                    self.content_source_id,
                    self.s3_prefix,
                )
            deleted, delete_errors = send_batches(
                chunks(stale, self.batch_max_documents),
                lambda ids: self.hook.delete_documents(ids, self.content_source_id),
                lambda ids: ids,
                self.max_in_flight,
            )
            errors += delete_errors
        self.summary = {
            "objects": listed["objects"],
            "sent": len(sent),
            "skipped": listed["skipped"],
            "deleted": len(deleted),
            "failed": len(errors),
        }
        self.log.info("Zeta Alpha ingestion of %s: %s", self.s3_prefix, self.summary)
        if ti := context.get("ti"):
            ti.xcom_push(key="ingest_summary", value=self.summary)
        raise_for_errors("documents", errors, listed["objects"] - listed["skipped"] + len(deleted))
        return ingestion_job(job["id"], len(sent), sent_at, self.not_found_grace)

    def check_deletions(self, objects: int, existing: int, stale: int) -> None:
        """Refuse, before any delete, a sync that would empty or gut the content source."""
        where = f"content source {self.content_source_id!r}"
        if objects == 0 and existing:
            if self.allow_empty_sync:
                return  # asked for: the prefix is meant to be empty
            raise IngestInputError(
                f"s3_prefix: {self.s3_prefix} lists no objects, and sync=True would delete all "
                f"{existing} documents of {where}; nothing was deleted. Check the prefix (a typo, a "
                "moved folder), or set allow_empty_sync=True to empty the content source."
            )
        limit = self.delete_limit(existing)
        if stale > limit:
            raise IngestInputError(
                f"max_deletes: sync would delete {stale} of the {existing} documents of {where} "
                f"(objects gone from {self.s3_prefix}), more than max_deletes={self.max_deletes!r} "
                f"allows ({limit}); nothing was deleted. Raise max_deletes if that is intended."
            )

    def job_result(self, job_id: Any, snapshot: JobSnapshot | None, context: Context) -> Any:
        summary = self.summary
        if not summary and (ti := context.get("ti")):  # resumed after deferral: pushed before
            summary = ti.xcom_pull(task_ids=ti.task_id, key="ingest_summary", map_indexes=ti.map_index) or {}
        # resumed after deferral, the job arrives as the snapshot's details, not as the id
        job = job_id if isinstance(job_id, dict) else (snapshot.details if snapshot else {})
        return {
            "ingestion_job_id": job.get("ingestion_job_id"),
            **{k: summary.get(k) for k in ("sent", "skipped", "deleted")},
            "statuses": (snapshot.details if snapshot else {}).get("statuses"),
        }


class ZetaAlphaUpdateAccessRightsOperator(BaseOperator):
    """Replace the access rights of existing documents, in batches.

    Give either ``documents`` (``[{"document_id", "allow_access_rights"}]``) or ``document_ids``
    with one ``allow_access_rights`` list for all of them. Documents the API rejects fail the
    task at the end, after every batch was sent. Returns ``{"updated": n}``.

    :param documents: ``[{"document_id", "allow_access_rights"}]``, each with its own rights
        (templated).
    :param document_ids: Document ids (sha1 hex) that all get ``allow_access_rights`` (templated).
    :param allow_access_rights: The rights for every id in ``document_ids`` (templated); not
        allowed with ``documents``.
    :param content_source_id: The content source of the documents (templated).
    :param batch_max_documents: Documents per batch request.
    :param max_in_flight: Batch requests sent concurrently.
    :param zeta_alpha_conn_id: The Airflow connection to Zeta Alpha.
    """

    template_fields = (
        "documents",
        "document_ids",
        "allow_access_rights",
        "content_source_id",
        "zeta_alpha_conn_id",
    )
    template_fields_renderers = {"documents": "json", "document_ids": "json", "allow_access_rights": "json"}
    ui_color = ZETA_ALPHA_UI_COLOR

    def __init__(
        self,
        *,
        documents: list[dict[str, Any]] | None = None,
        document_ids: list[str] | None = None,
        allow_access_rights: list[dict[str, Any]] | None = None,
        content_source_id: str | None = None,
        batch_max_documents: int = 100,
        max_in_flight: int = 4,
        zeta_alpha_conn_id: str = "zeta_alpha_default",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.documents = documents
        self.document_ids = document_ids
        self.allow_access_rights = allow_access_rights
        self.content_source_id = content_source_id
        self.batch_max_documents = batch_max_documents
        self.max_in_flight = max_in_flight
        self.zeta_alpha_conn_id = zeta_alpha_conn_id

    def updates(self) -> list[dict[str, Any]]:
        check_batch_limits(self.batch_max_documents, in_flight=self.max_in_flight)
        # an empty list counts as not given: it would silently update nothing
        chosen = exactly_one({"documents": self.documents, "document_ids": self.document_ids})
        if self.content_source_id is not None:
            check_type(self.content_source_id, str, "content_source_id")
        if chosen == "document_ids":
            rights = check_access_rights(
                require(self.allow_access_rights, "allow_access_rights"), "allow_access_rights"
            )
            # ids not in the footnote's format can only come back as per-document errors
            return [
                {"document_id": check_document_id(d, "document_ids"), "allow_access_rights": rights}
                for d in check_type(self.document_ids, list, "document_ids")
            ]
        if self.allow_access_rights is not None:  # it would be silently ignored
            raise ValueError(
                "allow_access_rights: give it with document_ids; with documents, each carries its own"
            )
        documents: list[dict[str, Any]] = check_type(self.documents, list, "documents")
        for document in documents:
            check_type(document, dict, "documents")
            check_document_id(
                require(document.get("document_id"), "documents[].document_id"), "documents[].document_id"
            )
            check_access_rights(document.get("allow_access_rights") or [], "documents[].allow_access_rights")
        return documents

    def execute(self, context: Context) -> dict[str, int]:
        with fail_fast_on_bad_input():
            updates = self.updates()
        hook = ZetaAlphaHook(self.zeta_alpha_conn_id)
        updated, errors = send_batches(
            chunks(updates, self.batch_max_documents),
            lambda batch: hook.update_access_rights(batch, self.content_source_id),
            lambda batch: [d["document_id"] for d in batch],
            self.max_in_flight,
        )
        raise_for_errors("access-rights updates", errors, len(updates))
        return {"updated": len(updated)}
