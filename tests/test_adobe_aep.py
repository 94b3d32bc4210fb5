"""Adobe Experience Platform over real HTTP against the fake and moto S3: uploads (small and
chunked, resumed), conversion in bounded memory, schema check, abort, wait, token renewal."""

from __future__ import annotations

import io
import json
import time
import tracemalloc

import pyarrow.parquet as pq
import pytest
from conftest import BUCKET, kill_while_running, run_trigger

from airflow_provider_ingest.exceptions import IngestJobFailed
from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook, batch_snapshot
from airflow_provider_ingest.jobs import JobState
from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.parquet_convert import convert_to_parquet
from airflow_provider_ingest.sensors.adobe_aep import AdobeAepBatchSensor
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID
from airflow_provider_ingest.triggers.adobe_aep import AdobeAepBatchTrigger


def csv_rows(n: int, extra: str = "") -> bytes:
    header = "timestamp,city,session,session_length,score,active" + (",unknown_col" if extra else "")
    lines = [header] + [
        f"2026-03-01T00:{i % 60:02d}:00Z,City{i % 7},s{i},{i},{i / 3:.3f},{'true' if i % 2 else 'false'}"
        + (",x" if extra else "")
        for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def jsonl_rows(n: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "timestamp": "2026-03-01T00:00:00Z",
                "city": f"C{i % 5}",
                "session": f"s{i}",
                "session_length": i,
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


@pytest.fixture
def inputs(s3):
    s3.put_object(Bucket=BUCKET, Key="aep/csv/a.csv", Body=csv_rows(50))
    s3.put_object(Bucket=BUCKET, Key="aep/csv/b.csv", Body=csv_rows(30))
    s3.put_object(Bucket=BUCKET, Key="aep/big/big.csv", Body=csv_rows(40_000))
    s3.put_object(Bucket=BUCKET, Key="aep/json/a.jsonl", Body=jsonl_rows(20_000))
    s3.put_object(Bucket=BUCKET, Key="aep/bad/extra.csv", Body=csv_rows(5, extra="yes"))


def aep_op(**kwargs):
    args = {
        "task_id": "aep",
        "dataset_id": DATASET_ID,
        "s3_prefix": f"s3://{BUCKET}/aep/csv/",
        "poll_interval": 0.1,
    }
    return S3ToAdobeAepOperator(**{**args, **kwargs})


def uploaded(adobe):
    return {e["name"]: e for e in adobe.journal(event="file_uploaded")}


def test_small_files_convert_upload_complete_and_succeed(adobe, inputs):
    result = aep_op().execute({})
    assert result["files"] == ["a.parquet", "b.parquet"] and result["rows"] == 80
    batch = adobe.batches[result["batch_id"]]
    assert batch["status"] == "success" and batch["rows"] == 80
    assert {e["mode"] for e in uploaded(adobe).values()} == {"small"}
    table = pq.read_table(io.BytesIO(bytes(batch["files"]["a.parquet"]["data"])))
    assert table.num_rows == 50 and table.column_names[:2] == ["timestamp", "city"]


def test_chunked_upload_is_byte_identical_with_correct_ranges(adobe, inputs, tmp_path):
    result = aep_op(
        s3_prefix=f"s3://{BUCKET}/aep/big/",
        small_file_max_bytes=64 * 1024,
        chunk_size=100 * 1024,
        block_size=256 * 1024,
    ).execute({})
    event = uploaded(adobe)["big.parquet"]
    size = event["bytes"]
    assert event["mode"] == "large" and size > 64 * 1024 and result["bytes"] == size
    expected = [[start, min(start + 100 * 1024, size) - 1] for start in range(0, size, 100 * 1024)]
    assert event["chunks"] == expected
    local = tmp_path / "big.parquet"
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    body = S3Hook().get_conn().get_object(Bucket=BUCKET, Key="aep/big/big.csv")["Body"]
    convert_to_parquet(body, "csv", str(local), 256 * 1024)
    assert bytes(adobe.batches[result["batch_id"]]["files"]["big.parquet"]["data"]) == local.read_bytes()
    assert adobe.batches[result["batch_id"]]["rows"] == 40_000


def test_a_503_mid_file_resumes_from_the_last_acknowledged_chunk(adobe, inputs):
    adobe.add_fault(action="status", status=503, method="PATCH", path="/files/", after=2, times=1)
    result = aep_op(
        s3_prefix=f"s3://{BUCKET}/aep/big/", small_file_max_bytes=64 * 1024, chunk_size=100 * 1024
    ).execute({})
    event = uploaded(adobe)["big.parquet"]
    patches = [r for r in adobe.journal() if r.get("method") == "PATCH"]
    assert len(patches) == len(event["chunks"]) + 1  # only the interrupted chunk was sent twice
    assert [p["status"] for p in patches][:4] == [200, 200, 503, 200]
    assert adobe.batches[result["batch_id"]]["status"] == "success"


@pytest.mark.parametrize("input_format", ["json", "csv"])
def test_conversion_memory_stays_flat_as_input_grows(s3, tmp_path, input_format):
    make = jsonl_rows if input_format == "json" else csv_rows
    peaks = []
    for n in (80_000, 320_000):
        data = make(n)
        s3.put_object(Bucket=BUCKET, Key=f"aep/mem/{n}", Body=data)
        body = s3.get_object(Bucket=BUCKET, Key=f"aep/mem/{n}")["Body"]
        del data
        tracemalloc.start()
        rows = convert_to_parquet(
            body,
            input_format,
            str(tmp_path / f"{n}.parquet"),
            block_size=256 * 1024,
            row_group_bytes=256 * 1024,
        )
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert rows == n
        assert pq.ParquetFile(tmp_path / f"{n}.parquet").metadata.num_row_groups > 4
    small, big = peaks
    assert big < small * 1.25 + 1_000_000, peaks  # four times the input, about the same peak
    assert big < len(make(320_000)) * 0.75, peaks  # and below the input size: never held whole


def test_schema_mismatch_fails_before_any_batch(adobe, inputs):
    with pytest.raises(ValueError, match="unknown_col"):
        aep_op(s3_prefix=f"s3://{BUCKET}/aep/bad/").execute({})
    assert adobe.journal(event="batch_created") == []


def test_batch_failure_surfaces_the_recorded_errors(adobe, inputs):
    with pytest.raises(IngestJobFailed, match="unknown_col"):
        aep_op(s3_prefix=f"s3://{BUCKET}/aep/bad/", validate_schema=False).execute({})


def test_failure_before_complete_aborts_the_batch(adobe, inputs):
    adobe.add_fault(action="status", status=400, method="PUT", path="/files/b.parquet")
    with pytest.raises(Exception, match="400"):
        aep_op().execute({})
    [created] = adobe.journal(event="batch_created")
    assert adobe.batches[created["id"]]["status"] == "aborted"


def test_a_later_file_failing_to_convert_aborts_the_batch(adobe, s3):
    # The second file is staged while the first uploads; its error still aborts the batch.
    s3.put_object(Bucket=BUCKET, Key="aep/mixed/a.csv", Body=csv_rows(50))
    s3.put_object(Bucket=BUCKET, Key="aep/mixed/b.csv", Body=csv_rows(5) + b"1,2\n")
    with pytest.raises(Exception, match="CSV parse error"):
        aep_op(s3_prefix=f"s3://{BUCKET}/aep/mixed/", validate_schema=False).execute({})
    [created] = adobe.journal(event="batch_created")
    assert adobe.batches[created["id"]]["status"] == "aborted"
    assert list(uploaded(adobe)) == ["a.parquet"]


def test_a_stopped_staging_fails_at_its_next_read(s3, tmp_path):
    import threading

    s3.put_object(Bucket=BUCKET, Key="aep/stop/a.csv", Body=csv_rows(50))
    stop = threading.Event()
    stop.set()
    with open(tmp_path / "a.parquet", "wb") as local, pytest.raises(Exception, match="staging stopped"):
        aep_op(s3_prefix=f"s3://{BUCKET}/aep/stop/").stage_parquet(BUCKET, "aep/stop/a.csv", local, stop)


def test_on_kill_aborts_the_batch(adobe, inputs):
    adobe.add_fault(action="delay", seconds=1.0, method="PUT", path="/files/")
    op = aep_op()
    kill_while_running(op)
    assert adobe.batches[op.job_id]["status"] == "aborted"
    assert adobe.journal(event="batch_completed") == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"s3_keys": [f"s3://{BUCKET}/aep/csv/a.csv"]}, "s3_prefix, s3_keys"),
        ({"input_format": "xlsx"}, "input_format"),
        ({"dataset_id": ""}, "dataset_id"),
        ({"file_name_template": "data.parquet"}, "file_name_template"),
        ({"chunk_size": 10}, "chunk_size"),
        ({"s3_prefix": "aep/csv/"}, "s3_prefix"),
    ],
)
def test_bad_input_fails_before_any_request(adobe, kwargs, field):
    with pytest.raises(ValueError, match=field):
        aep_op(**kwargs).execute({})
    assert adobe.journal() == []


def test_status_mapping_is_case_insensitive():
    for status, state in [
        ("success", JobState.SUCCEEDED),
        ("Active", JobState.SUCCEEDED),
        ("FAILED", JobState.FAILED),
        ("aborted", JobState.FAILED),
        ("abandoned", JobState.FAILED),
        ("inactive", JobState.FAILED),
        ("staging", JobState.RUNNING),
        ("Loading", JobState.RUNNING),
    ]:
        assert batch_snapshot("b", {"status": status}).state is state


def test_headers_are_required_like_the_service(adobe):
    hook = AdobeAepHook()
    hook.client.auth.fixed.pop("x-gw-ims-org-id")
    with pytest.raises(Exception, match="400"):
        hook.get_dataset(DATASET_ID)


def test_trigger_and_sensor_and_token_renewal_mid_wait(adobe, inputs):
    adobe.configure(staging_seconds=1.0)
    batch_id = aep_op(wait_for_completion=False).execute({})["batch_id"]
    adobe.expire_tokens()
    trigger = AdobeAepBatchTrigger(
        job_id=batch_id, conn_id="adobe_aep_default", deadline=time.time() + 30, poll_interval=0.1
    )
    rebuilt = AdobeAepBatchTrigger(**json.loads(json.dumps(trigger.serialize()[1])))
    assert rebuilt.serialize() == trigger.serialize()
    event = run_trigger(rebuilt)
    adobe.configure(staging_seconds=0.3)
    assert event["status"] == "success" and event["job"]["status"] == "success"
    assert len(adobe.journal(event="token_issued")) == 2  # renewed once after the 401
    assert AdobeAepBatchSensor(task_id="s", batch_id=batch_id).poke({}) is True
