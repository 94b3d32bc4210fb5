"""Adobe Experience Platform: S3 objects into a dataset as Parquet, in one batch."""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from functools import cached_property
from typing import Any

from airflow.sdk import Context

from airflow_provider_ingest.hooks.adobe_aep import ADOBE_AEP_UI_COLOR, DEFAULT_CHUNK, AdobeAepHook
from airflow_provider_ingest.jobs import JobSnapshot, spec_digest
from airflow_provider_ingest.lineage import AdobeAepLineage
from airflow_provider_ingest.operators.base import NOTHING_STARTED, IngestJobOperator
from airflow_provider_ingest.parquet_convert import BLOCK_SIZE, check_xdm_subset, convert_to_parquet
from airflow_provider_ingest.schema_inference import sample_schema
from airflow_provider_ingest.triggers.adobe_aep import AdobeAepBatchTrigger
from airflow_provider_ingest.validation import (
    check_choice,
    check_int,
    check_path_segment,
    check_type,
    exactly_one,
    parse_s3_object_uri,
    parse_s3_uri,
    require,
)


class _Stoppable:
    """An S3 body whose reads fail once ``stop`` is set."""

    def __init__(self, body: Any, stop: threading.Event):
        self.body = body
        self.stop = stop

    def read(self, size: int = -1) -> bytes:
        if self.stop.is_set():
            raise InterruptedError("staging stopped: the batch failed or the task was killed")
        return self.body.read(size)


INPUT_FORMATS = {"csv": "csv", "json": "nd-json", "parquet": "parquet"}  # ours -> schema sampler's
BATCH_KEY = "aep_batch_id"
# The task's latest batch: {"batch_id", "complete_sent", "summary"}, written when it is created and
# again before COMPLETE is sent. Its id becomes the task's job (re-attached to by a retry) only
# once COMPLETE was sent; the summary (at most the 1,500 file names of an AEP batch) is the
# result a retry that re-attaches returns.
LOADING_KEY = f"{BATCH_KEY}.loading"
# A Catalog tag on each batch: the digest of the request that made it (see find_started).
INTENT_TAG = "airflow_ingest_request"


class S3ToAdobeAepOperator(AdobeAepLineage, IngestJobOperator):
    """Load S3 objects into the AEP dataset ``dataset_id`` as one batch, then wait for it.

    ``s3_prefix`` (every object under it) or ``s3_keys`` (``s3://`` URIs) select the input;
    ``input_format`` is ``csv``, ``json`` (JSON lines) or ``parquet``. CSV and JSON lines are
    read in blocks of ``block_size`` bytes and converted to Parquet (row groups of about 16 MiB)
    into a temporary file, so memory stays flat however large the input; Parquet passes through
    unchanged. Each file is staged in a thread one file ahead of the uploads. With
    ``validate_schema`` every file's columns are checked against the dataset's XDM schema before
    the batch is created. Files up to ``small_file_max_bytes`` go in one PUT, larger ones through
    the large-file API in ``chunk_size`` pieces. Any failure before COMPLETE, and ``on_kill``,
    abort the batch, so nothing half-written is promoted.

    Retries and kills: the batch is recorded in ``task_state_store`` when created, and "COMPLETE
    sent" before COMPLETE is sent. A retry after COMPLETE waits for that batch (Catalog may say
    ``loading`` for a while); a retry before it aborts the batch and starts over. When the create
    call's reply is lost, the batch it made is found in Catalog's list and aborted before a new one
    is made (see ``find_started``). A file outside the dataset's XDM schema fails without retries.

    Returns ``{"batch_id", "files", "rows", "bytes"}``.

    :param dataset_id: The AEP dataset to load (templated).
    :param s3_prefix: ``s3://bucket/prefix``: every object under it is loaded (templated). Give
        exactly one of ``s3_prefix`` and ``s3_keys``.
    :param s3_keys: ``s3://bucket/key`` URIs of the objects to load (templated).
    :param input_format: ``csv``, ``json`` (JSON lines) or ``parquet`` (templated).
    :param file_name_template: The name of each uploaded file, with ``{stem}`` (the key's base
        name without extension) and/or ``{index}`` (its position) (templated).
    :param validate_schema: Check every file's columns against the dataset's XDM schema before
        the batch is created.
    :param small_file_max_bytes: Files up to this size go in one PUT; larger ones through the
        large-file API.
    :param chunk_size: Bytes per chunk of the large-file API (one chunk is held in memory).
    :param block_size: Bytes pyarrow reads per block when converting CSV or JSON lines; bounds
        the worker's memory.
    :param adobe_aep_conn_id: The Airflow connection to Adobe Experience Platform.
    :param aws_conn_id: The Airflow AWS connection used to read the objects.
    """

    hook_class = AdobeAepHook
    trigger_class = AdobeAepBatchTrigger
    external_id_key = BATCH_KEY
    how_to_check = "Experience Platform's dataset activity (the dataset's batches, status loading)"
    start_clock_skew = 60.0  # seconds between worker and Catalog clocks allowed when listing batches
    template_fields = (
        "s3_prefix",
        "s3_keys",
        "dataset_id",
        "input_format",
        "file_name_template",
        "small_file_max_bytes",
        "chunk_size",
        "conn_id",
        "aws_conn_id",
    )
    template_fields_renderers = {"s3_keys": "json"}
    ui_color = ADOBE_AEP_UI_COLOR

    def __init__(
        self,
        *,
        dataset_id: str,
        s3_prefix: str | None = None,
        s3_keys: list[str] | None = None,
        input_format: str = "csv",
        file_name_template: str = "{stem}.parquet",
        validate_schema: bool = True,
        small_file_max_bytes: int = 256 * 1024 * 1024,
        chunk_size: int = DEFAULT_CHUNK,
        block_size: int = BLOCK_SIZE,
        adobe_aep_conn_id: str = "adobe_aep_default",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ):
        super().__init__(conn_id=adobe_aep_conn_id, **kwargs)
        self.dataset_id = dataset_id
        self.s3_prefix = s3_prefix
        self.s3_keys = s3_keys
        self.input_format = input_format
        self.file_name_template = file_name_template
        self.validate_schema = validate_schema
        self.small_file_max_bytes = small_file_max_bytes
        self.chunk_size = chunk_size
        self.block_size = block_size
        self.aws_conn_id = aws_conn_id
        self.summary: dict[str, Any] = {}

    @cached_property
    def s3(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    def validate(self) -> None:
        check_path_segment(
            check_type(require(self.dataset_id, "dataset_id"), str, "dataset_id"), "dataset_id"
        )
        chosen = exactly_one({"s3_prefix": self.s3_prefix, "s3_keys": self.s3_keys})
        if chosen == "s3_prefix":
            parse_s3_uri(self.s3_prefix, "s3_prefix")
        else:
            for uri in check_type(self.s3_keys, list, "s3_keys"):
                parse_s3_object_uri(uri, "s3_keys")  # a folder or bare bucket would fail at S3
        check_choice(self.input_format, INPUT_FORMATS, "input_format")
        template = check_type(
            require(self.file_name_template, "file_name_template"), str, "file_name_template"
        )
        if "{stem}" not in template and "{index}" not in template:
            raise ValueError(
                "file_name_template: must contain {stem} or {index}, or every file gets one name"
            )
        try:  # an unknown placeholder would only fail in submit, after the Catalog calls
            check_path_segment(template.format(stem="stem", index=0), "file_name_template")
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            raise ValueError(
                f"file_name_template: {template!r} is not a template of {{stem}} and {{index}} ({exc!r})"
            ) from None
        check_type(self.validate_schema, bool, "validate_schema")
        check_int(self.small_file_max_bytes, "small_file_max_bytes", 1)
        check_int(self.chunk_size, "chunk_size", 1024)
        check_int(self.block_size, "block_size", 1024)

    def objects(self) -> list[tuple[str, str]]:
        if self.s3_keys:
            return [parse_s3_object_uri(uri, "s3_keys") for uri in self.s3_keys]
        bucket, prefix = parse_s3_uri(self.s3_prefix, "s3_prefix")
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        found = [
            (bucket, o["Key"]) for p in pages for o in p.get("Contents", []) if not o["Key"].endswith("/")
        ]
        if not found:
            raise ValueError(f"s3_prefix: no objects under {self.s3_prefix}")
        return found

    def file_name(self, index: int, key: str) -> str:
        stem = posixpath.splitext(posixpath.basename(key))[0]
        return self.file_name_template.format(stem=stem, index=index)

    def check_schemas(self, objects: list[tuple[str, str]]) -> None:
        xdm = self.hook.get_dataset_schema(self.dataset_id)
        for bucket, key in objects:
            schema = sample_schema(self.s3, bucket, key, INPUT_FORMATS[self.input_format])
            check_xdm_subset(schema, xdm, f"s3://{bucket}/{key}")

    def stage_parquet(self, bucket: str, key: str, local: Any, stop: threading.Event) -> int:
        """Write the object as Parquet into ``local`` (a temporary file); returns its rows. Fails
        at its next read once ``stop`` is set."""
        body = _Stoppable(self.s3.get_object(Bucket=bucket, Key=key)["Body"], stop)
        if self.input_format == "parquet":
            shutil.copyfileobj(body, local, self.block_size)
            local.flush()
            import pyarrow.parquet as pq

            return pq.ParquetFile(local.name).metadata.num_rows
        return convert_to_parquet(body, self.input_format, local.name, self.block_size)

    # --- IngestJobOperator -------------------------------------------------------------------------
    def submit(self, context: Context) -> str:
        objects = self.objects()
        names = [self.file_name(i, key) for i, (_, key) in enumerate(objects)]
        if len(set(names)) != len(names):
            raise ValueError("file_name_template: two objects map to the same file name; add {index}")
        self.s3  # noqa: B018 - built here once; the staging thread shares it (boto3 clients are thread-safe)
        # Staging (S3 -> a temporary Parquet file) is local work, so it runs one file ahead in a
        # thread: the first file while the schemas are checked and the batch is created, each next
        # one while the previous uploads. Uploads stay in order, one at a time; at most two
        # temporary files exist. A failure or kill sets the stop, and staging ends at its next read.
        stop = self._stop_staging = threading.Event()
        store = self.ledger(context).store
        batch_id = None
        rows = size = 0
        # Exit order matters: the pool (waiting for the staging thread) before the files close.
        with ExitStack() as files, ThreadPoolExecutor(1, thread_name_prefix="aep-stage") as pool:

            def stage(index: int) -> tuple[Any, Future[int]]:
                local = files.enter_context(tempfile.NamedTemporaryFile(suffix=".parquet"))
                return local, pool.submit(self.stage_parquet, *objects[index], local, stop)

            try:
                ahead = stage(0)
                if self.validate_schema:
                    self.check_schemas(objects)  # before the batch exists: nothing to clean up on a mismatch
                # The intent stays pending until the batch id is stored as the task's job (after
                # COMPLETE): a try that dies before that leaves it, and the retry's find_started
                # settles the batch (wait for it after COMPLETE, abort it before).
                request = {"datasetId": self.dataset_id, "files": names}
                # The request's digest rides on the batch as a tag, so a lost reply's batch is told
                # apart from those of other tasks loading the same dataset (mapped siblings).
                tags = {INTENT_TAG: [spec_digest(request)]}
                create = lambda: self.hook.create_batch(self.dataset_id, tags=tags)  # noqa: E731
                batch_id = self.start_call(context, request, create)
                self.job_id = batch_id
                store.set(LOADING_KEY, {"batch_id": batch_id, "complete_sent": False})
                self.log.info("Created AEP batch %s for dataset %s", batch_id, self.dataset_id)
                for index, ((bucket, key), name) in enumerate(zip(objects, names, strict=True)):
                    local, staged = ahead
                    rows_in_file = staged.result()
                    if index + 1 < len(objects):
                        ahead = stage(index + 1)
                    file_size = os.path.getsize(local.name)
                    self.hook.upload_file(
                        batch_id,
                        self.dataset_id,
                        name,
                        file_size,
                        lambda path=local.name: open(path, "rb"),
                        self.small_file_max_bytes,
                        self.chunk_size,
                    )
                    local.close()
                    rows += rows_in_file
                    size += file_size
                    self.log.info(
                        "Uploaded s3://%s/%s as %s (%d rows, %d bytes)",
                        bucket,
                        key,
                        name,
                        rows_in_file,
                        file_size,
                    )
                self.summary = {"batch_id": batch_id, "files": names, "rows": rows, "bytes": size}
                # Recorded before it is sent: a retry after this waits for the batch (Catalog may
                # show "loading" for a while) instead of loading the data again.
                store.set(LOADING_KEY, {"batch_id": batch_id, "complete_sent": True, "summary": self.summary})
                self.hook.complete_batch(batch_id)
            except BaseException:
                stop.set()
                if batch_id is not None:
                    self.log.warning("Aborting AEP batch %s: it failed before COMPLETE", batch_id)
                    self.hook.abort_batch(batch_id)
                raise
        if ti := context.get("ti"):
            ti.xcom_push(key="upload_summary", value=self.summary)
        return batch_id

    def find_started(self, intent: dict[str, Any], context: Context) -> Any:
        """Settle a batch an earlier try (or this one, when the create reply was lost) left behind.

        - The batch is known (its create answered) and COMPLETE was sent: adopt it and wait.
        - Known, COMPLETE not sent: it will never be completed; abort it and start over.
        - Unknown (the create's reply was lost, or the worker died during the call): Catalog lists
          this dataset's ``loading`` batches created since the call by this client and tagged
          with this request's digest (``INTENT_TAG``), less the one a retry replaces: batches of
          other tasks loading the same dataset, mapped siblings included, carry other digests.
          One: that call's batch; it is aborted and a new one made (adopting it would need to know
          it is empty, which Catalog does not show for a batch still loading). None: nothing of
          that call is left. Several (the same request sent twice since the intent, which this
          operator never does): which one is ours cannot be told, so none is touched and the task
          fails without retrying (``resubmit_on_unknown_start=True`` starts a new batch anyway).
        """
        store = self.ledger(context).store
        record = store.get(LOADING_KEY)
        if isinstance(record, dict) and record.get("batch_id") not in (None, intent.get("replaces")):
            batch_id = record["batch_id"]
            if record.get("complete_sent"):
                self.summary = record.get("summary") or {}
                self.log.warning("AEP batch %s was signaled COMPLETE before the worker stopped", batch_id)
                return batch_id
            self.abort_left_behind(batch_id, "its uploads were cut before COMPLETE")
            self.ledger(context).delete(LOADING_KEY)
            return NOTHING_STARTED
        if not isinstance(intent.get("at"), int | float):
            return None
        since_ms = int((intent["at"] - self.start_clock_skew) * 1000)
        client_id = self.hook.client_id
        lost = [
            batch
            for batch in self.hook.list_batches(self.dataset_id, created_after_ms=since_ms, status="loading")
            if batch["id"] != intent.get("replaces")
            and batch.get("createdClient") in (None, client_id)
            and intent.get("digest") in ((batch.get("tags") or {}).get(INTENT_TAG) or [])
        ]
        if len(lost) > 1:
            self.log.warning(
                "AEP batches %s of dataset %s are all loading since the lost call; not touching any",
                ", ".join(b["id"] for b in lost),
                self.dataset_id,
            )
            return None
        for batch in lost:
            self.abort_left_behind(batch["id"], "the reply that named it was lost")
        return NOTHING_STARTED

    def abort_left_behind(self, batch_id: str, why: str) -> None:
        self.log.warning("Aborting AEP batch %s left by an earlier attempt (%s)", batch_id, why)
        self.hook.abort_batch(batch_id)

    def on_kill(self) -> None:
        if stop := getattr(self, "_stop_staging", None):
            stop.set()
        super().on_kill()

    def job_result(self, job_id: Any, snapshot: JobSnapshot | None, context: Context) -> Any:
        summary: dict[str, Any] | None = self.summary
        if not summary:  # resumed after deferral, or a retry re-attached: recorded before COMPLETE
            record = self.ledger(context).store.get(LOADING_KEY) or {}
            summary = record.get("summary") if record.get("batch_id") == job_id else None
        if not summary and (ti := context.get("ti")):
            # this map index's own summary (a mapped task's pull would otherwise get every index's)
            summary = ti.xcom_pull(task_ids=ti.task_id, key="upload_summary", map_indexes=ti.map_index) or {}
        summary = summary or {}
        return {"batch_id": job_id, **{k: summary.get(k) for k in ("files", "rows", "bytes")}}
