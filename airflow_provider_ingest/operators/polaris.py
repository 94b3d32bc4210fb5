"""Imply Polaris operators: ensure an S3 connection, start a batch ingestion job into a table."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_provider_ingest.hooks.polaris import POLARIS_UI_COLOR, PolarisHook
from airflow_provider_ingest.jobs import JobSnapshot
from airflow_provider_ingest.lineage import PolarisLineage
from airflow_provider_ingest.operators.base import IngestJobOperator, fail_fast_on_bad_input
from airflow_provider_ingest.schema_inference import default_mappings, infer_input_schema
from airflow_provider_ingest.triggers.polaris import PolarisJobTrigger
from airflow_provider_ingest.validation import (
    check_bucket,
    check_choice,
    check_path_segment,
    check_type,
    exactly_one,
    parse_s3_object_uri,
    parse_s3_uri,
    require,
)

# Polaris's batch DataFormat values. There is no "tsv": Polaris reads TSV as "csv" with a
# "delimiter" ("\t"), so "tsv" would only be refused by the API.
POLARIS_FORMATS = {"nd-json", "csv", "parquet", "orc", "avro_ocf"}
INGESTION_MODES = {"append", "replace"}
DATA_TYPES = {"string", "long", "double", "float", "json"}
INFERABLE_FORMATS = {"nd-json", "csv", "parquet"}  # what schema_inference reads
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
# Fields that identify an S3 connection; a same-named connection that differs in any is a conflict.
CONNECTION_FIELDS = ("bucket", "prefix", "awsEndpoint", "awsAssumedRoleArn")


class PolarisEnsureS3ConnectionOperator(BaseOperator):
    """Create the Polaris S3 connection ``name`` unless it already exists with the same settings.

    Idempotent: reruns reuse the connection; a same-named connection with other settings fails,
    naming the fields that differ, rather than ingesting from the wrong bucket. Returns the name.

    :param name: Name of the Polaris connection (templated); jobs refer to it as ``connection_name``.
    :param bucket: The S3 bucket Polaris reads (templated).
    :param aws_assumed_role_arn: The IAM role Polaris assumes to read the bucket,
        ``arn:aws:iam::<account>:role/<name>`` (templated).
    :param aws_endpoint: The S3 endpoint of the bucket's region (templated).
    :param prefix: Only keys under this prefix are readable through the connection (templated).
    :param polaris_conn_id: The Airflow connection to Polaris.
    """

    template_fields = ("name", "bucket", "prefix", "aws_endpoint", "aws_assumed_role_arn", "polaris_conn_id")
    ui_color = POLARIS_UI_COLOR

    def __init__(
        self,
        *,
        name: str,
        bucket: str,
        aws_assumed_role_arn: str,
        aws_endpoint: str = "s3.us-east-1.amazonaws.com",
        prefix: str | None = None,
        polaris_conn_id: str = "polaris_default",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.name = name
        self.bucket = bucket
        self.prefix = prefix
        self.aws_endpoint = aws_endpoint
        self.aws_assumed_role_arn = aws_assumed_role_arn
        self.polaris_conn_id = polaris_conn_id

    def spec(self) -> dict[str, Any]:
        check_path_segment(check_type(require(self.name, "name"), str, "name"), "name")
        check_bucket(self.bucket, "bucket")
        check_type(require(self.aws_endpoint, "aws_endpoint"), str, "aws_endpoint")
        if self.prefix is not None:  # else a non-string would be sent as the connection's prefix
            check_type(self.prefix, str, "prefix")
        if not ROLE_ARN.match(str(require(self.aws_assumed_role_arn, "aws_assumed_role_arn"))):
            raise ValueError("aws_assumed_role_arn: expected arn:aws:iam::<account>:role/<name>")
        spec = {
            "type": "s3",
            "name": self.name,
            "bucket": self.bucket,
            "awsEndpoint": self.aws_endpoint,
            "awsAssumedRoleArn": self.aws_assumed_role_arn,
        }
        if self.prefix:
            spec["prefix"] = self.prefix
        return spec

    def execute(self, context: Context) -> str:
        with fail_fast_on_bad_input():
            wanted = self.spec()
        hook = PolarisHook(self.polaris_conn_id)
        existing = hook.get_s3_connection(self.name)
        if existing is None:
            hook.create_connection(wanted)
            self.log.info("Created Polaris S3 connection %s for bucket %s", self.name, self.bucket)
            return self.name
        differing = [f for f in CONNECTION_FIELDS if (existing.get(f) or None) != (wanted.get(f) or None)]
        if existing.get("type", "s3") != "s3":
            differing.insert(0, "type")
        if differing:
            raise ValueError(
                f"Polaris connection {self.name!r} exists with other settings ({', '.join(differing)}); "
                "use another name or align the settings"
            )
        self.log.info("Reusing Polaris S3 connection %s", self.name)
        return self.name


class PolarisStartIngestionJobOperator(PolarisLineage, IngestJobOperator):
    """Start a Polaris batch ingestion job from S3 into ``table_name`` and, by default, wait for it.

    The source names exactly one of ``uris`` / ``prefixes`` / ``objects`` / ``pattern``. Without an
    ``input_schema`` the operator infers one from the first selected object (nd-json, csv, parquet)
    and, without ``mappings``, maps every column as itself and ``__time`` from ``time_column``.

    Polaris takes no idempotency key. When the start call's reply is lost or unreadable (or the
    worker dies during it), the job is looked for in the jobs list (newest created first, this
    table, batch jobs) and adopted if one reading the same source was created after the call;
    never the failed job a retry replaces. If none is found the task fails without retrying unless
    ``resubmit_on_unknown_start=True``.

    Returns the job id; the job's row totals are pushed as the XCom ``metrics``.

    :param table_name: The Polaris table to load (templated).
    :param connection_name: The Polaris S3 connection to read through (templated), e.g. the name
        ``PolarisEnsureS3ConnectionOperator`` returns.
    :param uris: ``s3://bucket/key`` URIs of the objects to read (templated). Give exactly one of
        ``uris``, ``prefixes``, ``objects`` and ``pattern``.
    :param prefixes: Key prefixes in the connection's bucket; every object under them is read
        (templated).
    :param objects: Keys in the connection's bucket (templated).
    :param pattern: A glob over the keys in the connection's bucket, e.g. ``events/*.json.gz``
        (templated).
    :param format_settings: Polaris ``formatSettings`` (templated): ``format`` is one of
        ``nd-json``, ``csv``, ``parquet``, ``orc``, ``avro_ocf``; TSV is ``csv`` with
        ``"delimiter": "\\t"``. ``None`` means ``{"format": "nd-json"}``.
    :param input_schema: The job's ``inputSchema``, a list of ``{"name", "dataType"}``
        (``string``, ``long``, ``double``, ``float``, ``json``) (templated). ``None`` infers it
        from the first selected object (``nd-json``, ``csv`` and ``parquet`` only; gzip is read).
    :param mappings: The job's ``mappings``, a list of ``{"columnName", "expression"}`` that must
        map ``__time`` (templated). ``None`` maps every input column as itself and ``__time`` from
        ``time_column``.
    :param ingestion_mode: ``append`` or ``replace`` (templated).
    :param create_table_if_not_exists: Let the job create ``table_name``.
    :param time_column: The input column ``__time`` is parsed from when ``mappings`` is ``None``:
        ``TIME_PARSE`` for strings, ``MILLIS_TO_TIMESTAMP`` for longs.
    :param polaris_conn_id: The Airflow connection to Polaris.
    :param aws_conn_id: The Airflow AWS connection used to read the sample object for schema
        inference (Polaris itself reads through its own connection's role).
    """

    hook_class = PolarisHook
    trigger_class = PolarisJobTrigger
    external_id_key = "polaris_job_id"
    how_to_check = "the Polaris jobs list (Jobs, filtered by the target table)"
    # seconds of clock difference between worker and Polaris allowed when matching a job's
    # createdTimestamp against the time of the start call
    start_clock_skew = 60.0
    template_fields = (
        "table_name",
        "connection_name",
        "uris",
        "prefixes",
        "objects",
        "pattern",
        "format_settings",
        "input_schema",
        "mappings",
        "ingestion_mode",
        "conn_id",
        "aws_conn_id",
    )
    template_fields_renderers = {
        "format_settings": "json",
        "input_schema": "json",
        "mappings": "json",
        "uris": "json",
        "prefixes": "json",
        "objects": "json",
    }
    ui_color = POLARIS_UI_COLOR

    def __init__(
        self,
        *,
        table_name: str,
        connection_name: str,
        uris: list[str] | None = None,
        prefixes: list[str] | None = None,
        objects: list[str] | None = None,
        pattern: str | None = None,
        format_settings: dict[str, Any] | None = None,
        input_schema: list[dict[str, str]] | None = None,
        mappings: list[dict[str, Any]] | None = None,
        ingestion_mode: str = "append",
        create_table_if_not_exists: bool = True,
        time_column: str = "timestamp",
        polaris_conn_id: str = "polaris_default",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ):
        super().__init__(conn_id=polaris_conn_id, **kwargs)
        self.table_name = table_name
        self.connection_name = connection_name
        self.uris = uris
        self.prefixes = prefixes
        self.objects = objects
        self.pattern = pattern
        self.format_settings = format_settings or {"format": "nd-json"}
        self.input_schema = input_schema
        self.mappings = mappings
        self.ingestion_mode = ingestion_mode
        self.create_table_if_not_exists = create_table_if_not_exists
        self.time_column = time_column
        self.aws_conn_id = aws_conn_id

    @property
    def descriptors(self) -> dict[str, Any]:
        return {
            "uris": self.uris,
            "prefixes": self.prefixes,
            "objects": self.objects,
            "pattern": self.pattern,
        }

    def validate(self) -> None:
        check_type(require(self.table_name, "table_name"), str, "table_name")
        check_type(require(self.connection_name, "connection_name"), str, "connection_name")
        chosen = exactly_one(self.descriptors)
        if chosen == "pattern":
            check_type(self.pattern, str, "pattern")
        else:
            for item in check_type(self.descriptors[chosen], list | tuple, chosen):
                check_type(item, str, chosen)
                # prefixes and objects are keys in the connection's bucket; a URI there (or an
                # empty object name) would only fail at Polaris
                if chosen == "objects":
                    require(item, "objects[]")
                if chosen != "uris" and item.startswith("s3://"):
                    raise ValueError(f"{chosen}: {item!r} is a URI; give keys here, or URIs as uris")
        for uri in self.uris or []:
            parse_s3_object_uri(uri, "uris")  # uris name objects: a folder or bucket is not one
        check_type(self.format_settings, dict, "format_settings")
        if self.format_settings.get("format") == "tsv":
            raise ValueError(
                "format_settings.format: 'tsv' is not a Polaris format; use csv with delimiter '\\t'"
            )
        check_choice(self.format_settings.get("format"), POLARIS_FORMATS, "format_settings.format")
        check_choice(self.ingestion_mode, INGESTION_MODES, "ingestion_mode")
        check_type(self.create_table_if_not_exists, bool, "create_table_if_not_exists")
        for column in check_type(self.input_schema or [], list, "input_schema"):
            check_type(column, dict, "input_schema")
            check_type(require(column.get("name"), "input_schema[].name"), str, "input_schema[].name")
            check_choice(column.get("dataType"), DATA_TYPES, "input_schema[].dataType")
        if not self.input_schema and self.format_settings["format"] not in INFERABLE_FORMATS:
            # inference would only fail after reading the connection from Polaris
            raise ValueError(
                f"input_schema: required for format {self.format_settings['format']!r} "
                f"(inferred only for {', '.join(sorted(INFERABLE_FORMATS))})"
            )
        for mapping in check_type(self.mappings or [], list, "mappings"):
            check_type(mapping, dict, "mappings")
            require(mapping.get("columnName"), "mappings[].columnName")
            require(mapping.get("expression"), "mappings[].expression")
        if self.mappings and "__time" not in {m["columnName"] for m in self.mappings}:
            # every Polaris table has __time: the job is refused without a mapping for it
            raise ValueError("mappings: a mapping with columnName '__time' is required")
        if not self.mappings:
            check_type(require(self.time_column, "time_column"), str, "time_column")
            names = {column["name"] for column in self.input_schema or []}
            if names and self.time_column not in names:
                raise ValueError(
                    f"time_column: {self.time_column!r} is not among the input_schema columns "
                    f"{sorted(names)}; give time_column or explicit mappings"
                )

    @cached_property
    def s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    def sample_object(self) -> tuple[str, str]:
        """``(bucket, key)`` of the first object the job will read, for schema inference."""
        if self.uris:
            return parse_s3_uri(self.uris[0], "uris")
        connection = self.hook.get_s3_connection(self.connection_name)
        if connection is None:
            raise ValueError(f"connection_name: Polaris connection {self.connection_name!r} does not exist")
        bucket = connection["bucket"]
        if self.objects:
            return bucket, self.objects[0]
        from fnmatch import fnmatch

        paginator = self.s3_client.get_paginator("list_objects_v2")
        for prefix in self.prefixes or [connection.get("prefix") or ""]:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    if self.pattern is None or fnmatch(obj["Key"], self.pattern):
                        return bucket, obj["Key"]
        raise ValueError(f"{exactly_one(self.descriptors)}: no S3 object in {bucket!r} matches")

    def job_spec(self) -> dict[str, Any]:
        input_schema = self.input_schema
        if not input_schema:
            bucket, key = self.sample_object()
            input_schema = infer_input_schema(self.s3_client, bucket, key, self.format_settings["format"])
            self.log.info("Inferred inputSchema from s3://%s/%s: %s", bucket, key, input_schema)
        source: dict[str, Any] = {
            "type": "s3",
            "connectionName": self.connection_name,
            "formatSettings": self.format_settings,
            "inputSchema": input_schema,
        }
        chosen = exactly_one(self.descriptors)
        source[chosen] = self.descriptors[chosen]
        return {
            "type": "batch",
            "target": {"type": "table", "tableName": self.table_name},
            "createTableIfNotExists": self.create_table_if_not_exists,
            "source": source,
            "mappings": self.mappings or default_mappings(input_schema, self.time_column),
            "ingestionMode": self.ingestion_mode,
        }

    def submit(self, context: Context) -> str:
        spec = self.job_spec()
        return self.start_call(context, spec, lambda: self.hook.create_job(spec)["id"])

    def describe_start(self) -> str:
        chosen = exactly_one(self.descriptors)
        return f"the batch job into table {self.table_name!r} from {chosen} {self.descriptors[chosen]!r}"

    def find_started(self, intent: dict[str, Any], context: Context) -> str | None:
        """Polaris takes no idempotency key: after a lost (or unreadable) start reply, look for the
        job in the list, created after the call (see ``PolarisHook.find_started_job``)."""
        if not isinstance(intent.get("at"), int | float):
            return None
        chosen = exactly_one(self.descriptors)
        # what identifies the job without re-reading S3 (the schema inference of job_spec)
        spec = {
            "target": {"type": "table", "tableName": self.table_name},
            "source": {"connectionName": self.connection_name, chosen: self.descriptors[chosen]},
        }
        job = self.hook.find_started_job(
            spec, intent["at"], replaces=intent.get("replaces"), clock_skew=self.start_clock_skew
        )
        return job["id"] if job else None

    def job_result(self, job_id: Any, snapshot: JobSnapshot | None, context: Context) -> Any:
        if self.wait_for_completion:
            metrics = self.hook.get_job_metrics(job_id)
            self.log.info(
                "Polaris job %s ingested %s rows into %s (%s processed)",
                job_id,
                metrics.get("numRowsPersisted"),
                self.table_name,
                metrics.get("numRowsProcessed"),
            )
            if ti := context.get("ti"):
                ti.xcom_push(key="metrics", value=metrics)
        return job_id
