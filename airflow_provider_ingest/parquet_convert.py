"""Stream CSV and JSON-lines objects into Parquet files with bounded memory, and check Arrow
schemas against an XDM schema (Adobe Experience Platform datasets take Parquet whose columns are
a subset of the dataset's schema)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pyarrow is imported where used: DAG files import this module at parse time
    import pyarrow as pa

# pyarrow's streaming readers read ahead on their IO thread, up to 32 blocks whatever use_threads
# says (measured: ~140 MB live at 4 MiB blocks, ~35 MB at 1 MiB), so the block size bounds memory.
BLOCK_SIZE = 1024 * 1024  # bytes of input per read and per record batch
# Batches are gathered into row groups of about this much Arrow data: measured, 16 MiB groups make
# the Parquet ~20% smaller than one group per 1 MiB block, and conversion no slower.
ROW_GROUP_BYTES = 16 * 1024 * 1024


class Readable(Protocol):
    """What the converter reads from: an open file, botocore's StreamingBody, a wrapper of one."""

    def read(self, size: int = -1, /) -> bytes: ...


class ReadOnlyStream(io.RawIOBase):
    """Any object with ``read(n)`` (botocore's StreamingBody) as a proper binary stream."""

    def __init__(self, source: Readable):
        self.source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def record_batches(source: Readable, input_format: str, block_size: int = BLOCK_SIZE):
    """A streaming reader over ``source``; parsing runs on pyarrow's threads (measured faster, and
    memory is bounded by the readahead anyway)."""
    import pyarrow as pa

    stream = pa.PythonFile(io.BufferedReader(ReadOnlyStream(source), 1 << 20), mode="r")
    if input_format == "csv":
        import pyarrow.csv as pcsv

        return pcsv.open_csv(stream, read_options=pcsv.ReadOptions(block_size=block_size))
    if input_format == "json":
        import pyarrow.json as pjson

        # use_threads=False: threaded JSON parsing made the readahead's peak vary with thread
        # timing (the flat-memory test failed 1 in ~10); only CSV was measured faster threaded
        options = pjson.ReadOptions(block_size=block_size, use_threads=False)
        return pjson.open_json(stream, read_options=options)
    raise ValueError(f"input_format: cannot stream-convert {input_format!r}")


def convert_to_parquet(
    source: Readable,
    input_format: str,
    sink: Any,
    block_size: int = BLOCK_SIZE,
    row_group_bytes: int = ROW_GROUP_BYTES,
) -> int:
    """Write ``source`` (CSV or JSON lines) to ``sink`` as Parquet, in row groups of about
    ``row_group_bytes``. Returns the row count. Memory is bounded by the block and row group
    sizes, not the input size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = record_batches(source, input_format, block_size)
    rows = 0
    with pq.ParquetWriter(sink, reader.schema) as writer:
        group: list[pa.RecordBatch] = []
        group_bytes = 0

        def flush() -> None:
            writer.write_table(pa.Table.from_batches(group, reader.schema), row_group_size=1 << 30)
            group.clear()

        for batch in reader:
            group.append(batch)
            rows += batch.num_rows
            group_bytes += batch.nbytes
            if group_bytes >= row_group_bytes:
                flush()
                group_bytes = 0
        if group:
            flush()
    return rows


def _fits(arrow_type: pa.DataType, prop: dict[str, Any]) -> bool:
    import pyarrow as pa

    xdm_type = prop.get("type")
    if pa.types.is_null(arrow_type):
        return True
    if xdm_type == "string":
        temporal = prop.get("format") in ("date-time", "date") and pa.types.is_temporal(arrow_type)
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or temporal
    if xdm_type == "integer":
        return pa.types.is_integer(arrow_type)
    if xdm_type == "number":
        return (
            pa.types.is_integer(arrow_type)
            or pa.types.is_floating(arrow_type)
            or pa.types.is_decimal(arrow_type)
        )
    if xdm_type == "boolean":
        return pa.types.is_boolean(arrow_type)
    if xdm_type == "object":
        if not pa.types.is_struct(arrow_type):
            return False
        children = prop.get("properties") or {}
        return all(
            arrow_type.field(i).name in children
            and _fits(arrow_type.field(i).type, children[arrow_type.field(i).name])
            for i in range(arrow_type.num_fields)
        )
    if xdm_type == "array":
        return pa.types.is_list(arrow_type) and _fits(arrow_type.value_type, prop.get("items") or {})
    return False


def check_xdm_subset(arrow_schema: pa.Schema, xdm_schema: dict[str, Any], source: str) -> None:
    """Raise ``ValueError`` naming the first column of ``source`` that is not in the XDM schema or
    whose type cannot fit it."""
    properties = xdm_schema.get("properties") or {}
    for field in arrow_schema:
        prop = properties.get(field.name)
        if prop is None:
            raise ValueError(f"{source}: column {field.name!r} is not in the dataset's XDM schema")
        if not _fits(field.type, prop):
            raise ValueError(
                f"{source}: column {field.name!r} is {field.type}, which cannot fit XDM type "
                f"{prop.get('type')!r}"
            )
