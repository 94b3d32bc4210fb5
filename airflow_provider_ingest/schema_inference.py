"""Infer a Polaris ``inputSchema`` from a sample of one S3 object, read with pyarrow."""

from __future__ import annotations

import gzip
import io
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pyarrow is imported where used: DAG files import this module at parse time
    import pyarrow as pa

SAMPLE_BYTES = 1 << 20  # row formats: the first MiB is plenty to see every column


def polaris_data_type(arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
        return "long"
    if pa.types.is_float32(arrow_type):
        return "float"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "double"
    if pa.types.is_struct(arrow_type) or pa.types.is_map(arrow_type) or pa.types.is_list(arrow_type):
        return "json"
    return "string"


def _row_sample(s3_client: Any, bucket: str, key: str) -> bytes:
    if key.endswith(".gz"):
        # gzip cannot start mid-stream: decompress from the start and stop after the sample.
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"]
        with gzip.GzipFile(fileobj=body) as unzipped:
            data = unzipped.read(SAMPLE_BYTES)
    else:
        data = s3_client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SAMPLE_BYTES - 1}")[
            "Body"
        ].read()
    if len(data) >= SAMPLE_BYTES:  # drop a partial last row
        data = data[: data.rfind(b"\n") + 1]
    return data


def sample_schema(s3_client: Any, bucket: str, key: str, data_format: str) -> pa.Schema:
    if data_format == "parquet":
        import pyarrow.parquet as pq

        with tempfile.TemporaryFile() as local:  # the footer needs a seekable file
            s3_client.download_fileobj(bucket, key, local)
            local.seek(0)
            return pq.read_schema(local)
    sample = io.BytesIO(_row_sample(s3_client, bucket, key))
    if data_format == "csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(sample).schema
    if data_format == "nd-json":
        import pyarrow.json as pjson

        return pjson.read_json(sample).schema
    raise ValueError(f"format_settings.format: cannot infer a schema from {data_format!r} files")


def infer_input_schema(s3_client: Any, bucket: str, key: str, data_format: str) -> list[dict[str, str]]:
    schema = sample_schema(s3_client, bucket, key, data_format)
    return [{"name": f.name, "dataType": polaris_data_type(f.type)} for f in schema]


def sql_identifier(name: str) -> str:
    """``name`` as a Druid SQL identifier: in double quotes, a double quote in it doubled. A column
    name read from a file header must not end the identifier early and inject SQL."""
    return '"' + name.replace('"', '""') + '"'


def default_mappings(input_schema: list[dict[str, str]], time_column: str) -> list[dict[str, str]]:
    """Every input column as itself, and ``__time`` parsed from ``time_column``."""
    by_name = {c["name"]: c["dataType"] for c in input_schema}
    if time_column not in by_name:
        raise ValueError(
            f"time_column: {time_column!r} is not among the input columns {sorted(by_name)}; "
            "give time_column or explicit mappings"
        )
    time_function = "MILLIS_TO_TIMESTAMP" if by_name[time_column] == "long" else "TIME_PARSE"
    mappings = [{"columnName": "__time", "expression": f"{time_function}({sql_identifier(time_column)})"}]
    mappings += [
        {"columnName": name, "expression": sql_identifier(name)} for name in by_name if name != time_column
    ]
    return mappings
