"""Adobe Experience Platform over real HTTP against the fake and moto S3: uploads (small and
chunked, resumed), conversion in bounded memory, schema check, abort, wait, token renewal."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from conftest import BUCKET, kill_while_running, run_trigger

from airflow_provider_ingest.exceptions import (
    IngestApiError,
    IngestApiRejected,
    IngestInputError,
    IngestJobFailed,
)
from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook, batch_snapshot
from airflow_provider_ingest.http import RetryPolicy
from airflow_provider_ingest.jobs import JobState
from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.parquet_convert import convert_to_parquet
from airflow_provider_ingest.sensors.adobe_aep import AdobeAepBatchSensor
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID
from airflow_provider_ingest.testing.state import TaskStateStore
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


MEASURE_CONVERSION = """
import json, sys, tracemalloc
import pyarrow as pa
import pyarrow.csv, pyarrow.json, pyarrow.parquet  # imported before measuring: not the conversion
from airflow_provider_ingest.parquet_convert import convert_to_parquet

path, input_format, out, block, group = sys.argv[1:]
tracemalloc.start()
with open(path, "rb") as source:
    rows = convert_to_parquet(source, input_format, out, block_size=int(block), row_group_bytes=int(group))
print(json.dumps({"rows": rows, "python_peak": tracemalloc.get_traced_memory()[1],
                  "arrow_peak": pa.default_memory_pool().max_memory()}))
"""


@pytest.mark.parametrize("input_format", ["json", "csv"])
def test_conversion_memory_stays_flat_as_input_grows(tmp_path, input_format):
    """Peak memory is bounded by the block and row-group sizes, not by the input: Arrow's own pool
    (which tracemalloc cannot see) and Python's heap, each measured in a fresh process that does
    nothing but convert. The bound holds however far pyarrow's reader gets ahead on a loaded
    machine: it reads ahead at most 32 blocks."""
    make = jsonl_rows if input_format == "json" else csv_rows
    block, group = 64 * 1024, 256 * 1024
    bound = 32 * block + 4 * group + 2 * 1024 * 1024
    for n in (80_000, 320_000):
        source = tmp_path / f"{n}.{input_format}"
        source.write_bytes(make(n))
        out = tmp_path / f"{n}.parquet"
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                MEASURE_CONVERSION,
                str(source),
                input_format,
                str(out),
                str(block),
                str(group),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        measured = json.loads(done.stdout)
        assert measured["rows"] == n
        assert pq.ParquetFile(out).metadata.num_row_groups > 4
        assert measured["arrow_peak"] < bound, (n, measured, bound)
        assert measured["python_peak"] < bound, (n, measured, bound)
    # Held whole, the larger input would not fit the bound: the test can tell streaming from not.
    assert pq.read_table(out).nbytes > 2 * bound


def test_schema_mismatch_fails_before_any_batch_without_retries(adobe, inputs):
    # IngestInputError is an AirflowFailException: Airflow does not retry it (issue 16, item 9)
    with pytest.raises(IngestInputError, match="unknown_col"):
        aep_op(s3_prefix=f"s3://{BUCKET}/aep/bad/").execute({})
    assert adobe.journal(event="batch_created") == []


def test_batch_failure_surfaces_the_recorded_errors(adobe, inputs):
    with pytest.raises(IngestJobFailed, match="unknown_col"):
        aep_op(s3_prefix=f"s3://{BUCKET}/aep/bad/", validate_schema=False).execute({})


def test_failure_before_complete_aborts_the_batch(adobe, inputs):
    adobe.add_fault(action="status", status=400, method="PUT", path="/files/b.parquet")
    with pytest.raises(IngestApiRejected, match="HTTP 400"):
        aep_op().execute({})
    [created] = adobe.journal(event="batch_created")
    assert adobe.batches[created["id"]]["status"] == "aborted"


def test_a_later_file_failing_to_convert_aborts_the_batch(adobe, s3):
    # The second file is staged while the first uploads; its error still aborts the batch.
    s3.put_object(Bucket=BUCKET, Key="aep/mixed/a.csv", Body=csv_rows(50))
    s3.put_object(Bucket=BUCKET, Key="aep/mixed/b.csv", Body=csv_rows(5) + b"1,2\n")
    with pytest.raises(IngestInputError, match="CSV parse error"):  # bad data: no retry
        aep_op(s3_prefix=f"s3://{BUCKET}/aep/mixed/", validate_schema=False).execute({})
    [created] = adobe.journal(event="batch_created")
    assert adobe.batches[created["id"]]["status"] == "aborted"
    assert list(uploaded(adobe)) == ["a.parquet"]


def test_a_stopped_staging_fails_at_its_next_read(s3, tmp_path):
    import threading

    s3.put_object(Bucket=BUCKET, Key="aep/stop/a.csv", Body=csv_rows(50))
    stop = threading.Event()
    stop.set()
    stopped = pytest.raises(InterruptedError, match="staging stopped")
    with open(tmp_path / "a.parquet", "wb") as local, stopped:
        aep_op(s3_prefix=f"s3://{BUCKET}/aep/stop/").stage_parquet(BUCKET, "aep/stop/a.csv", local, stop)


def test_on_kill_aborts_the_batch(adobe, inputs):
    adobe.add_fault(action="hold", method="PUT", path="/files/")  # the first upload waits for the kill
    op = aep_op()

    def uploading(op) -> bool:
        return op.job_id is not None and bool(adobe.journal(event="held"))

    error = kill_while_running(op, started=uploading, after_kill=adobe.release)
    assert adobe.batches[op.job_id]["status"] == "aborted"
    assert adobe.journal(event="batch_completed") == []
    assert isinstance(error, IngestApiRejected) and "no longer loading" in str(error), error


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


def test_trigger_and_sensor_and_token_renewal_mid_wait(adobe, inputs):
    batch_id = aep_op(wait_for_completion=False).execute({})["batch_id"]
    adobe.expire_tokens()
    trigger = AdobeAepBatchTrigger(
        job_id=batch_id, conn_id="adobe_aep_default", deadline=time.time() + 30, poll_interval=0.1
    )
    rebuilt = AdobeAepBatchTrigger(**json.loads(json.dumps(trigger.serialize()[1])))
    assert rebuilt.serialize() == trigger.serialize()
    event = run_trigger(rebuilt)
    assert event["status"] == "success" and event["job"]["status"] == "success"
    assert len(adobe.journal(event="token_issued")) == 2  # renewed once after the 401
    assert AdobeAepBatchSensor(task_id="s", batch_id=batch_id).poke({}) is True


# --- exactly once: lost replies, kills and retries (issue 16, item 2) ----------------------------
class WorkerKilled(BaseException):
    """The worker dies (SIGKILL) at this point of the try: nothing after it runs."""


class DiesWhenStoring(TaskStateStore):
    """The worker dies when ``key`` is written: just before it is stored, or just after."""

    def __init__(self, key, before):
        super().__init__()
        self.key, self.before = key, before

    def set(self, key, value):
        if key == self.key and not self.before:
            super().set(key, value)
        if key == self.key:
            raise WorkerKilled(key)
        super().set(key, value)


class DiesAfterALostStart(TaskStateStore):
    """The worker dies as soon as a start call's outcome turns out unknown: its intent is left
    without an id, as a SIGKILL during the call would leave it."""

    def get(self, key, default=None):
        if key.endswith(".intent") and self.get_raw(key):
            raise WorkerKilled(key)
        return super().get(key, default)

    def get_raw(self, key):
        return dict.get(self, key)


def batches(adobe):
    return [e["id"] for e in adobe.journal(event="batch_created")]


def settle(adobe, expect_result, aborted):
    """The only batch completed is the result; every other one was aborted; rows loaded once."""
    created = batches(adobe)
    assert [e["id"] for e in adobe.journal(event="batch_completed")] == [expect_result["batch_id"]]
    assert [b for b in created if adobe.batches[b]["status"] == "aborted"] == aborted
    assert adobe.batches[expect_result["batch_id"]]["status"] == "success"
    assert expect_result["rows"] == 80


def test_lost_create_reply_aborts_the_batch_it_made_and_makes_one(adobe, inputs):
    adobe.add_fault(action="drop_after", method="POST", path=r"/import/batches$")
    result = aep_op().execute({"task_state_store": TaskStateStore()})
    first, second = batches(adobe)
    assert result["batch_id"] == second
    settle(adobe, result, aborted=[first])


def test_garbled_create_reply_is_an_unknown_outcome_not_a_failure(adobe, inputs):
    adobe.add_fault(action="malformed_after", method="POST", path=r"/import/batches$")
    result = aep_op().execute({"task_state_store": TaskStateStore()})
    first, second = batches(adobe)
    settle(adobe, result, aborted=[first])


def test_create_reply_cut_before_the_server_acted_makes_one_batch(adobe, inputs):
    adobe.add_fault(action="drop", method="POST", path=r"/import/batches$")
    result = aep_op().execute({"task_state_store": TaskStateStore()})
    assert batches(adobe) == [result["batch_id"]]
    settle(adobe, result, aborted=[])


def test_worker_killed_during_the_create_call_retry_aborts_that_batch(adobe, inputs):
    store = DiesAfterALostStart()
    adobe.add_fault(action="drop_after", method="POST", path=r"/import/batches$")
    with pytest.raises(WorkerKilled):
        aep_op().execute({"task_state_store": store})
    [lost] = batches(adobe)
    assert adobe.batches[lost]["status"] == "loading"
    result = aep_op().execute({"task_state_store": TaskStateStore(store)})  # the retry
    settle(adobe, result, aborted=[lost])


def test_retry_after_uploads_were_cut_aborts_that_batch_before_making_one(adobe, inputs):
    store = TaskStateStore()
    # try 1 loses the worker mid-upload: neither the file nor the abort gets through
    adobe.add_fault(
        action="status", status=503, retry_after="0", method="PUT", path="/files/b.parquet", times=5
    )
    adobe.add_fault(
        action="status", status=503, retry_after="0", method="POST", path=r"/batches/\w+$", times=5
    )
    with pytest.raises(IngestApiError, match="503"):
        aep_op().execute({"task_state_store": store})
    [cut] = batches(adobe)
    assert adobe.batches[cut]["status"] == "loading" and list(adobe.batches[cut]["files"]) == ["a.parquet"]
    result = aep_op().execute({"task_state_store": store})  # the retry
    settle(adobe, result, aborted=[cut])


@pytest.mark.parametrize("before", [True, False], ids=["before-the-id-is-stored", "after-the-id-is-stored"])
def test_retry_after_complete_was_sent_waits_for_that_batch(adobe, inputs, before):
    """Catalog still says "loading" for a while after COMPLETE: the retry must wait for the batch,
    not take it for dead and load the data a second time."""
    # Catalog says "loading" for the first two reads after COMPLETE (each stage lasts 3 reads): this
    # test's own, then the retry's first look
    adobe.configure(catalog_lag_seconds=1.0, reads_per_step=3)
    store = DiesWhenStoring(aep_op().external_id_key, before=before)
    with pytest.raises(WorkerKilled):
        aep_op().execute({"task_state_store": store})
    [batch] = batches(adobe)
    assert AdobeAepHook().get_batch(batch)["status"] == "loading"  # COMPLETE sent, Catalog lags
    result = aep_op().execute({"task_state_store": TaskStateStore(store)})  # the retry
    assert batches(adobe) == [batch] and result["batch_id"] == batch
    settle(adobe, result, aborted=[])


def test_catalog_lists_batches_by_dataset_status_and_creation(adobe, inputs):
    hook = AdobeAepHook()
    first = hook.create_batch(DATASET_ID)
    mark = adobe.batches[first]["created"]
    second = hook.create_batch(DATASET_ID)
    hook.abort_batch(first)
    assert [b["id"] for b in hook.list_batches(DATASET_ID)] == [second, first]  # newest created first
    assert [b["id"] for b in hook.list_batches(DATASET_ID, status="loading")] == [second]
    assert [b["id"] for b in hook.list_batches(DATASET_ID, created_after_ms=mark - 1)] == [second, first]
    assert hook.list_batches("another-dataset") == []
    assert [b["id"] for b in hook.list_batches(DATASET_ID, limit=1, start=1)] == [first]
    assert hook.list_batches(DATASET_ID)[0]["createdClient"] == hook.client_id
    with pytest.raises(IngestApiError, match="limit"):
        hook.client.json("GET", "data/foundation/catalog/batches", params={"limit": 500})


@pytest.mark.parametrize(
    ("body", "missing"),
    [(None, "got null"), ([], "got list"), ({"error_code": "500", "message": "busy"}, "has no batch")],
)
def test_a_2xx_status_reply_that_is_not_the_batch_fails_clearly(adobe, inputs, body, missing):
    """Issue 16, item 8: a clear error naming service, endpoint and what was missing, after a
    bounded number of tries; not a wait on status '' until the deadline."""
    batch = AdobeAepHook().create_batch(DATASET_ID)
    adobe.add_fault(action="body", body=body, method="GET", path=rf"/catalog/batches/{batch}$", times=100)
    hook = AdobeAepHook(retry=RetryPolicy(attempts=3, backoff=0.01))
    endpoint = f"/data/foundation/catalog/batches/{batch}"
    with pytest.raises(IngestApiError, match=rf"Adobe Experience Platform GET \S+{endpoint} .*{missing}"):
        hook.job_snapshot(batch)
    assert len([r for r in adobe.journal() if r.get("path") == endpoint]) == 3
