"""CSV / JSON-lines to Parquet for Adobe Experience Platform (parquet_convert.py), called directly.

What a caller sees: the Parquet written (rows, values, row groups), the row count returned, the
reads made on the source, and the errors naming the bad input.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_ingest.parquet_convert import (
    ReadOnlyStream,
    check_xdm_subset,
    convert_to_parquet,
    record_batches,
)

ROWS = 600
CSV = ("id,name,score\n" + "".join(f"{i},name-{i},{i * 0.5}\n" for i in range(ROWS))).encode()
JSONL = "".join(json.dumps({"id": i, "name": f"name-{i}", "tags": [i, i + 1]}) + "\n" for i in range(ROWS))
BLOCK = 2048  # small blocks: the inputs above make several record batches


class Body:
    """A botocore StreamingBody look-alike: ``read(n)`` only, short reads, a journal of sizes."""

    def __init__(self, data: bytes, most: int = 1000):
        self.data = io.BytesIO(data)
        self.most = most  # a body may return fewer bytes than asked for
        self.asked: list[int] = []

    def read(self, size: int = -1, /) -> bytes:
        self.asked.append(size)
        return self.data.read(min(size, self.most))


def convert(data: bytes, input_format: str, **kwargs) -> tuple[int, pq.ParquetFile]:
    sink = io.BytesIO()
    rows = convert_to_parquet(Body(data), input_format, sink, **kwargs)
    return rows, pq.ParquetFile(io.BytesIO(sink.getvalue()))


def batch_sizes(data: bytes, input_format: str, block_size: int) -> list[tuple[int, int]]:
    """(rows, nbytes) of each record batch the streaming reader makes of ``data``."""
    return [(b.num_rows, b.nbytes) for b in record_batches(Body(data), input_format, block_size)]


def group_rows(parquet: pq.ParquetFile) -> list[int]:
    return [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]


# --- the stream over a read(n)-only body ---------------------------------------------------------
def test_a_read_only_body_reads_as_a_buffered_binary_stream():
    body = Body(b"0123456789" * 50, most=7)
    stream = ReadOnlyStream(body)
    assert stream.readable()
    reader = io.BufferedReader(stream, 64)
    assert reader.read(100) == b"0123456789" * 10
    assert reader.read() == b"0123456789" * 40


def test_readinto_fills_the_front_of_the_buffer_and_counts_it():
    buffer = memoryview(bytearray(b"........"))
    stream = ReadOnlyStream(Body(b"abc"))
    assert stream.readinto(buffer) == 3
    assert bytes(buffer) == b"abc....."
    assert stream.readinto(buffer) == 0  # end of the body


# --- record batches ----------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "input_format"), [(CSV, "csv"), (JSONL.encode(), "json")])
def test_record_batches_stream_in_blocks_of_the_given_size(data, input_format):
    small = batch_sizes(data, input_format, BLOCK)
    assert len(small) >= len(data) // BLOCK  # one batch per block of input
    assert sum(rows for rows, _ in small) == ROWS
    assert len(batch_sizes(data, input_format, 1 << 20)) == 1  # the whole input fits one block


def test_record_batches_parse_each_format_into_its_columns():
    csv = record_batches(Body(CSV), "csv", BLOCK)
    assert csv.schema == pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.float64())])
    jsonl = record_batches(Body(JSONL.encode()), "json", BLOCK)
    assert jsonl.schema == pa.schema(
        [("id", pa.int64()), ("name", pa.string()), ("tags", pa.list_(pa.int64()))]
    )


def test_record_batches_refuse_a_format_they_cannot_stream():
    with pytest.raises(ValueError, match=r"^input_format: cannot stream-convert 'parquet'$"):
        record_batches(Body(b"PAR1"), "parquet", BLOCK)


# --- conversion --------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "input_format"), [(CSV, "csv"), (JSONL.encode(), "json")])
def test_conversion_keeps_every_row_and_value(data, input_format):
    rows, parquet = convert(data, input_format, block_size=BLOCK)
    assert rows == ROWS
    table = parquet.read()
    assert table.num_rows == ROWS
    assert table.column("id").to_pylist() == list(range(ROWS))
    assert table.column("name").to_pylist() == [f"name-{i}" for i in range(ROWS)]


def test_conversion_with_default_sizes_makes_one_row_group():
    rows, parquet = convert(CSV, "csv")
    assert rows == ROWS
    assert group_rows(parquet) == [ROWS]
    assert parquet.schema_arrow.field("score").type == pa.float64()


def test_batches_are_gathered_until_a_group_reaches_row_group_bytes():
    batches = batch_sizes(CSV, "csv", BLOCK)
    assert len(batches) >= 5
    # a group closes on the batch that brings it to the limit (exactly two batches here)
    limit = batches[0][1] + batches[1][1]
    _, parquet = convert(CSV, "csv", block_size=BLOCK, row_group_bytes=limit)
    sizes = group_rows(parquet)
    assert sizes[0] == batches[0][0] + batches[1][0]
    assert sum(sizes) == ROWS
    expected, group, group_bytes = [], 0, 0
    for rows, nbytes in batches:  # the rule as documented: close a group once it holds >= limit
        group, group_bytes = group + rows, group_bytes + nbytes
        if group_bytes >= limit:
            expected, group, group_bytes = [*expected, group], 0, 0
    assert sizes == expected + ([group] if group else [])


def test_a_group_closes_on_the_batch_that_reaches_the_limit_not_before():
    """Batches of equal size (fixed-width rows), the limit one byte over one batch: every group is
    exactly two batches, the first as the later ones (a group starts empty)."""
    fixed = "".join(f'{{"i":{i:6d},"n":"{i:012d}"}}\n' for i in range(ROWS)).encode()  # 32 bytes a line
    batches = batch_sizes(fixed, "json", BLOCK)
    full = batches[:-1]
    assert len(full) >= 6 and len(set(full)) == 1  # all but the last batch alike
    rows, nbytes = full[0]
    _, parquet = convert(fixed, "json", block_size=BLOCK, row_group_bytes=nbytes + 1)
    sizes = group_rows(parquet)
    assert sizes[: len(full) // 2] == [2 * rows] * (len(full) // 2)
    assert sum(sizes) == ROWS


def test_a_row_group_of_over_a_million_rows_is_not_split_and_the_body_is_read_in_mib():
    data = b"flag\n" + b"1\n" * 1_100_000  # 8.8 MB of Arrow data: under the 16 MiB row group
    body = Body(data, most=1 << 30)
    sink = io.BytesIO()
    assert convert_to_parquet(body, "csv", sink) == 1_100_000
    assert group_rows(pq.ParquetFile(io.BytesIO(sink.getvalue()))) == [1_100_000]
    assert set(body.asked) == {1 << 20}  # one read per MiB of the (network) body, not 8 KiB ones


def test_a_limit_below_one_batch_writes_each_batch_as_its_own_group_and_no_empty_one():
    batches = batch_sizes(CSV, "csv", BLOCK)
    _, parquet = convert(CSV, "csv", block_size=BLOCK, row_group_bytes=1)
    assert group_rows(parquet) == [rows for rows, _ in batches]


def test_a_limit_above_the_input_writes_one_group():
    _, parquet = convert(JSONL.encode(), "json", block_size=BLOCK, row_group_bytes=1 << 30)
    assert group_rows(parquet) == [ROWS]


def test_a_header_only_csv_converts_to_no_rows():
    rows, parquet = convert(b"id,name\n", "csv", block_size=BLOCK)
    assert rows == 0
    assert parquet.read().num_rows == 0
    assert parquet.schema_arrow.names == ["id", "name"]


def test_conversion_writes_to_a_path(tmp_path):
    out = tmp_path / "out.parquet"
    assert convert_to_parquet(Body(CSV), "csv", str(out), BLOCK) == ROWS
    assert pq.ParquetFile(out).metadata.num_rows == ROWS


# --- XDM schema checks -------------------------------------------------------------------------
def check(arrow_type: pa.DataType, prop: dict) -> None:
    check_xdm_subset(pa.schema([("col", arrow_type)]), {"properties": {"col": prop}}, "s3://b/k.csv")


STRUCT = pa.struct([("city", pa.string()), ("zip", pa.int32())])
ADDRESS = {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "integer"}}}

FITS = [
    (pa.null(), {"type": "integer"}),
    (pa.null(), {"type": "no-such-type"}),
    (pa.string(), {"type": "string"}),
    (pa.large_string(), {"type": "string"}),
    (pa.timestamp("ms"), {"type": "string", "format": "date-time"}),
    (pa.date32(), {"type": "string", "format": "date"}),
    (pa.int16(), {"type": "integer"}),
    (pa.int64(), {"type": "number"}),
    (pa.float32(), {"type": "number"}),
    (pa.decimal128(10, 2), {"type": "number"}),
    (pa.bool_(), {"type": "boolean"}),
    (STRUCT, ADDRESS),
    (pa.struct([]), {"type": "object"}),
    (pa.struct([("city", pa.string())]), ADDRESS),  # a subset of the object's fields
    (pa.list_(pa.int64()), {"type": "array", "items": {"type": "integer"}}),
    (pa.list_(pa.null()), {"type": "array"}),  # all-null items fit whatever the items are
    (pa.list_(STRUCT), {"type": "array", "items": ADDRESS}),
]

MISFITS = [
    (pa.int64(), {"type": "string"}),
    (pa.timestamp("ms"), {"type": "string"}),
    (pa.timestamp("ms"), {"type": "string", "format": "email"}),
    (pa.date32(), {"type": "string", "format": "uri"}),
    (pa.float64(), {"type": "integer"}),
    (pa.string(), {"type": "integer"}),
    (pa.string(), {"type": "number"}),
    (pa.bool_(), {"type": "number"}),
    (pa.int8(), {"type": "boolean"}),
    (pa.string(), {"type": "boolean"}),
    (pa.string(), ADDRESS),
    (pa.struct([("country", pa.string())]), ADDRESS),  # a field the object does not have
    (pa.struct([("zip", pa.string())]), ADDRESS),  # a field of the wrong type
    (pa.struct([("city", pa.string()), ("zip", pa.float64())]), ADDRESS),  # the second field is wrong
    (pa.struct([("city", pa.string())]), {"type": "object"}),  # an object with no fields listed
    (pa.list_(pa.string()), {"type": "array", "items": {"type": "integer"}}),
    (pa.list_(pa.int64()), {"type": "array"}),  # no items type: nothing fits
    (pa.int64(), {"type": "array", "items": {"type": "integer"}}),
    (pa.string(), {"type": "map"}),
    (pa.string(), {}),
]


@pytest.mark.parametrize(("arrow_type", "prop"), FITS, ids=[f"{t}-{p.get('type')}" for t, p in FITS])
def test_an_arrow_type_that_fits_its_xdm_field_passes(arrow_type, prop):
    check(arrow_type, prop)


@pytest.mark.parametrize(("arrow_type", "prop"), MISFITS, ids=[f"{t}-{p.get('type')}" for t, p in MISFITS])
def test_an_arrow_type_that_cannot_fit_its_xdm_field_is_named(arrow_type, prop):
    expected = f"s3://b/k.csv: column 'col' is {arrow_type}, which cannot fit XDM type {prop.get('type')!r}"
    with pytest.raises(ValueError) as raised:
        check(arrow_type, prop)
    assert str(raised.value) == expected


def test_a_column_missing_from_the_xdm_schema_is_named():
    schema = pa.schema([("id", pa.int64()), ("email", pa.string()), ("age", pa.string())])
    xdm = {"properties": {"id": {"type": "integer"}, "age": {"type": "integer"}}}
    with pytest.raises(
        ValueError, match=r"^s3://b/k.csv: column 'email' is not in the dataset's XDM schema$"
    ):
        check_xdm_subset(schema, xdm, "s3://b/k.csv")


def test_the_first_misfit_column_is_named():
    schema = pa.schema([("id", pa.int64()), ("age", pa.string()), ("score", pa.string())])
    xdm = {"properties": {"id": {"type": "integer"}, "age": {"type": "integer"}, "score": {"type": "number"}}}
    with pytest.raises(
        ValueError, match=r"^s3://b/k.csv: column 'age' is string, which cannot fit XDM type 'integer'$"
    ):
        check_xdm_subset(schema, xdm, "s3://b/k.csv")


def test_a_schema_without_properties_has_no_columns():
    with pytest.raises(ValueError, match=r"^src: column 'id' is not in the dataset's XDM schema$"):
        check_xdm_subset(pa.schema([("id", pa.int64())]), {"type": "object"}, "src")
    check_xdm_subset(pa.schema([]), {}, "src")  # nothing to check
