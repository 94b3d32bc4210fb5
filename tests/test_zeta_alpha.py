"""Zeta Alpha hook, operators, sensor and trigger over real HTTP against the fake and moto S3."""

from __future__ import annotations

import json
import time
from datetime import UTC
from hashlib import sha1

import pytest
from botocore.utils import parse_timestamp
from conftest import BUCKET, run_trigger

from airflow_provider_ingest.exceptions import IngestInputError, IngestJobFailed
from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook, compute_document_id, s3_document_id
from airflow_provider_ingest.operators.zeta_alpha import (
    S3ToZetaAlphaOperator,
    ZetaAlphaUpdateAccessRightsOperator,
    parse_s3_timestamp,
    with_fast_timestamps,
)
from airflow_provider_ingest.sensors.zeta_alpha import ZetaAlphaDocumentsSensor
from airflow_provider_ingest.testing.state import TaskStateStore
from airflow_provider_ingest.triggers.zeta_alpha import ZetaAlphaDocumentsTrigger

PUBLIC = [{"name": "public"}]


def footnote_compute_document_id(internal_id: str) -> str:  # verbatim from the API doc's footnote
    internals = internal_id.encode("utf-8")
    return sha1(internals).hexdigest()


@pytest.fixture
def folder(s3):
    prefix = f"za/{time.time_ns()}/"
    files = {
        "a.txt": b"alpha notes",
        "b.md": b"# beta",
        "c.pdf": b"%PDF-1.4 binary \x00\x01",
        "d.html": b"<p>delta</p>",
        "e.txt": b"epsilon",
    }
    for name, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=body)
    return prefix, files


def ingest_op(prefix, **kwargs):
    args = {
        "task_id": "za",
        "s3_prefix": f"s3://{BUCKET}/{prefix}",
        "poll_interval": 0.1,
        "allow_access_rights": PUBLIC,
    }
    return S3ToZetaAlphaOperator(**{**args, **kwargs})


def batches(zeta):
    return [e["documents"] for e in zeta.journal(event="document_batch")]


def test_document_id_is_the_footnotes_function():
    for internal in ["s3://b/k.txt", "ünïcode/é", ""]:
        assert compute_document_id(internal) == footnote_compute_document_id(internal)
    assert s3_document_id("b", "k.txt") == footnote_compute_document_id("s3://b/k.txt")


def test_ingests_inline_with_content_types_and_waits_until_indexed(zeta, folder):
    prefix, files = folder
    result = ingest_op(prefix).execute({})
    assert result["sent"] == 5 and result["statuses"] == {"indexed": 5}
    hook = ZetaAlphaHook()
    doc = hook.get_document(s3_document_id(BUCKET, prefix + "c.pdf"), include_document_status=True)
    assert doc["uri"] == f"s3://{BUCKET}/{prefix}c.pdf" and doc["status"] == "indexed"
    assert doc["document_content"]["content_type"] == "application/pdf"
    stored = zeta.documents[("acme", "default", s3_document_id(BUCKET, prefix + "a.txt"))]
    assert stored["document_content"]["from_"] == {"plain_text_string": "alpha notes"}
    assert (
        "base64_string"
        in zeta.documents[("acme", "default", doc["document_id"])]["document_content"]["from_"]
    )
    assert hook.get_document_content(s3_document_id(BUCKET, prefix + "c.pdf")) == files["c.pdf"]


def test_url_mode_content_is_fetched_from_the_presigned_url(zeta, folder):
    prefix, files = folder
    ingest_op(prefix, content_mode="url").execute({})
    doc_id = s3_document_id(BUCKET, prefix + "b.md")
    source = zeta.documents[("acme", "default", doc_id)]["document_content"]["from_"]
    assert set(source) == {"url"} and "Signature" in source["url"]
    assert zeta.documents[("acme", "default", doc_id)]["_content"] == files["b.md"]
    assert ZetaAlphaHook().get_document_content(doc_id) == files["b.md"]  # follows the redirect


def test_batches_are_bounded_by_count_and_by_bytes(zeta, folder):
    prefix, _ = folder
    ingest_op(prefix, batch_max_documents=2, wait_for_completion=False).execute({})
    assert sorted(batches(zeta)) == [1, 2, 2]
    zeta.reset()
    # 1 KiB of envelope per document plus its content: two small documents fit in 2.1 KiB, not three
    ingest_op(prefix, batch_max_bytes=2150, wait_for_completion=False).execute({})
    assert sorted(batches(zeta)) == [1, 2, 2]


def test_rejected_documents_fail_the_task_after_every_batch_was_sent(zeta, folder):
    prefix, _ = folder
    bad = s3_document_id(BUCKET, prefix + "a.txt")
    zeta.reject(bad, "custom_metadata key not in index schema")
    with pytest.raises(IngestJobFailed) as info:
        ingest_op(prefix, batch_max_documents=1).execute({})
    assert bad in str(info.value) and "not in index schema" in str(info.value)
    assert sum(batches(zeta)) == 4  # every other document still went in


def test_failed_content_names_the_documents_and_error_codes(zeta, s3):
    s3.put_object(Bucket=BUCKET, Key="za-mixed/ok.txt", Body=b"fine")
    s3.put_object(Bucket=BUCKET, Key="za-mixed/bad.txt", Body=b"CORRUPT bytes")
    with pytest.raises(IngestJobFailed) as info:
        ingest_op("za-mixed/").execute({})
    text = str(info.value)
    assert "1 of 2 document(s) failed" in text and "content_parse_error" in text
    assert s3_document_id(BUCKET, "za-mixed/bad.txt") in text


def test_pagination_follows_next_over_more_than_three_pages(zeta, folder):
    prefix, _ = folder
    ingest_op(prefix, wait_for_completion=False).execute({})
    seen = list(ZetaAlphaHook().filter_documents(page_size=2))
    assert len(seen) == 5 and len({d["document_id"] for d in seen}) == 5
    pages = [r for r in zeta.journal() if r.get("path", "").endswith("/documents") and r["method"] == "GET"]
    assert len(pages) == 3
    seen = list(ZetaAlphaHook().filter_documents(page_size=1))
    assert len(seen) == 5  # five pages


def test_sync_deletes_removed_objects_and_skips_unchanged(zeta, folder, s3):
    prefix, _ = folder
    first = ingest_op(prefix, sync=True, content_source_id="kb-s3").execute({})
    assert (first["sent"], first["skipped"], first["deleted"]) == (5, 0, 0)
    s3.delete_object(Bucket=BUCKET, Key=prefix + "e.txt")
    s3.put_object(Bucket=BUCKET, Key=prefix + "a.txt", Body=b"alpha notes, revised")
    second = ingest_op(prefix, sync=True, content_source_id="kb-s3").execute({})
    assert (second["sent"], second["skipped"], second["deleted"]) == (1, 3, 1)
    remaining = {d["document_id"] for d in ZetaAlphaHook().filter_documents(content_source_id="kb-s3")}
    assert s3_document_id(BUCKET, prefix + "e.txt") not in remaining and len(remaining) == 4
    assert (
        zeta.documents[("acme", "default", s3_document_id(BUCKET, prefix + "a.txt"))]["status"]
        == "indexed_update"
    )


def test_sync_over_several_listing_pages_deletes_exactly_the_removed_objects(zeta, folder, s3):
    prefix, _ = folder
    op = ingest_op(prefix, sync=True, content_source_id="kb-pages", wait_for_completion=False)
    op.list_page_size = 2  # five objects: three listing pages
    assert op.execute({})["sent"] == 5
    for gone in ("a.txt", "e.txt"):  # on the first page and on the last
        s3.delete_object(Bucket=BUCKET, Key=prefix + gone)
    again = ingest_op(prefix, sync=True, content_source_id="kb-pages", wait_for_completion=False)
    again.list_page_size = 2
    result = again.execute({})
    assert (result["sent"], result["skipped"], result["deleted"]) == (0, 3, 2)
    remaining = {d["document_id"] for d in ZetaAlphaHook().filter_documents(content_source_id="kb-pages")}
    assert remaining == {s3_document_id(BUCKET, prefix + n) for n in ("b.md", "c.pdf", "d.html")}


def test_a_listing_error_fails_the_task_before_any_delete(zeta, folder, s3):
    prefix, _ = folder
    assert ingest_op(prefix, sync=True, content_source_id="kb-err").execute({})["sent"] == 5
    s3.delete_object(Bucket=BUCKET, Key=prefix + "e.txt")
    op = ingest_op(prefix, sync=True, content_source_id="kb-err")
    op.list_page_size = 2
    calls: list[int] = []

    def fail_the_second_page(**_):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("listing failed")

    op.s3.meta.events.register("before-call.s3.ListObjectsV2", fail_the_second_page)
    with pytest.raises(RuntimeError, match="listing failed"):
        op.execute({})
    assert not [r for r in zeta.journal() if r.get("path", "").endswith("/delete-document-batches")]
    assert len(list(ZetaAlphaHook().filter_documents(content_source_id="kb-err"))) == 5


def test_sending_starts_before_the_listing_ends(zeta, folder):
    prefix, _ = folder
    op = ingest_op(prefix, batch_max_documents=1, max_in_flight=1, wait_for_completion=False)
    op.list_page_size = 1
    listed: list[float] = []
    op.s3.meta.events.register("after-call.s3.ListObjectsV2", lambda **_: listed.append(time.time()))
    assert op.execute({})["sent"] == 5
    # two batches in flight at most, one page read ahead: the last page is requested only after
    # the first batch was answered
    assert len(listed) == 5 and zeta.journal(event="document_batch")[0]["ts"] < listed[-1]


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03T07:00:00.000Z",
        "2026-12-03T07:00:00.123Z",
        "2026-12-03T09:00:00+02:00",
        "Thu, 03 Dec 2026 07:00:00 GMT",
        "2026-12-03T07:00:00",  # no zone: botocore's default decides
        "1764745200",
    ],
)
def test_fast_timestamps_read_as_botocore_does(text):
    fast, default = parse_s3_timestamp(text), parse_timestamp(text)
    assert fast == default and fast.isoformat() == default.isoformat()


def test_fast_timestamps_are_the_operators_client_only(zeta, folder, s3):
    """The faster parser goes to the operator's own S3 client only: a client made before it, one
    made after it from the same Airflow connection, and a sibling from the same botocore session
    all keep botocore's parser (whose datetimes carry dateutil's zone, not ``datetime.UTC``)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    prefix, _ = folder
    op = ingest_op(prefix)
    listed = next(iter(op.list_objects(BUCKET, prefix)))
    assert listed["LastModified"].tzinfo is UTC  # read by fromisoformat
    head = op.s3.head_object(Bucket=BUCKET, Key=listed["Key"])["LastModified"]  # RFC 822 header
    assert head.tzinfo is UTC and head == listed["LastModified"]
    after = S3Hook(aws_conn_id=op.aws_conn_id).get_conn()
    for other in (s3, after):
        theirs = other.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"][0]["LastModified"]
        assert theirs.tzinfo is not UTC and theirs == listed["LastModified"]  # dateutil's, as before


def test_fast_timestamps_leave_sibling_clients_of_one_session_alone(s3):
    """Clients of one botocore session share its parser factory; patching one must not patch the
    others (the patch gives the client a factory of its own)."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    url = s3.meta.endpoint_url
    mine, sibling = (session.client("s3", endpoint_url=url, region_name="us-east-1") for _ in range(2))
    assert mine._endpoint._response_parser_factory is sibling._endpoint._response_parser_factory
    s3.put_object(Bucket=BUCKET, Key="za-sibling/a.txt", Body=b"a")
    assert with_fast_timestamps(mine) is mine
    ours, theirs = (
        c.list_objects_v2(Bucket=BUCKET, Prefix="za-sibling/")["Contents"][0]["LastModified"]
        for c in (mine, sibling)
    )
    assert ours.tzinfo is UTC and theirs.tzinfo is not UTC and ours == theirs


def test_fast_timestamps_leave_a_botocore_without_the_factory_alone(folder, s3):
    """The patch uses a private botocore attribute: a botocore without it keeps its own parser,
    and the client is returned as it was (nothing added, nothing raised)."""
    prefix, _ = folder
    endpoint = s3._endpoint
    factory = endpoint.__dict__.pop("_response_parser_factory")
    try:
        assert with_fast_timestamps(s3) is s3
        assert "_response_parser_factory" not in endpoint.__dict__
    finally:
        endpoint._response_parser_factory = factory
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"][0]["LastModified"].tzinfo is not UTC

    class Wrapped:  # a client without a botocore endpoint at all (a wrapper, another SDK)
        pass

    wrapped = Wrapped()
    assert with_fast_timestamps(wrapped) is wrapped and vars(wrapped) == {}


def test_access_rights_operator_updates_in_batches(zeta, folder):
    prefix, _ = folder
    ingest_op(prefix, wait_for_completion=False).execute({})
    ids = [s3_document_id(BUCKET, prefix + n) for n in ("a.txt", "b.md", "c.pdf")]
    rights = [{"name": "role-42", "type": "user_role_id"}]
    op = ZetaAlphaUpdateAccessRightsOperator(
        task_id="ar", document_ids=ids, allow_access_rights=rights, batch_max_documents=2
    )
    assert op.execute({}) == {"updated": 3}
    assert sorted(e["documents"] for e in zeta.journal(event="access_rights_batch")) == [1, 2]
    assert ZetaAlphaHook().get_document(ids[0])["allow_access_rights"] == rights
    missing = ZetaAlphaUpdateAccessRightsOperator(
        task_id="ar", document_ids=["0" * 40], allow_access_rights=rights
    )
    with pytest.raises(IngestJobFailed, match="0{40}: not found"):
        missing.execute({})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"allow_access_rights": [{"type": "user_uuid"}]}, r"allow_access_rights\[\].name"),
        ({"content_mode": "stream"}, "content_mode"),
        ({"s3_prefix": "za/"}, "s3_prefix"),
        ({"sync": True}, "content_source_id"),
        ({"batch_max_documents": 0}, "batch_max_documents"),
        ({"custom_metadata": ["x"]}, "custom_metadata"),
    ],
)
def test_bad_input_fails_before_any_request(zeta, kwargs, field):
    with pytest.raises(ValueError, match=field):
        ingest_op("za/", **kwargs).execute({})
    assert zeta.journal() == []


def test_access_rights_bad_input_fails_before_any_request(zeta):
    with pytest.raises(ValueError, match="name"):
        ZetaAlphaUpdateAccessRightsOperator(
            task_id="ar", document_ids=["a" * 40], allow_access_rights=[{}]
        ).execute({})
    with pytest.raises(ValueError, match="exactly one of"):
        ZetaAlphaUpdateAccessRightsOperator(task_id="ar").execute({})
    assert zeta.journal() == []


def test_sensor_on_a_mix_of_statuses(zeta, s3):
    for name, body in [("ok.txt", b"fine"), ("bad.txt", b"CORRUPT"), ("late.txt", b"slow")]:
        s3.put_object(Bucket=BUCKET, Key=f"za-sensor/{name}", Body=body)
    zeta.configure(clock="steps")  # the documents move on only when the test says so
    ingest_op("za-sensor/", wait_for_completion=False).execute({})
    ids = [s3_document_id(BUCKET, f"za-sensor/{n}") for n in ("ok.txt", "bad.txt", "late.txt")]
    sensor = ZetaAlphaDocumentsSensor(task_id="wait", document_ids=ids, poll_interval=0.05)
    assert sensor.poke({}) is False  # all still in progress
    zeta.advance(steps=2)  # every document to its end: ingesting -> indexing -> indexed or failed
    with pytest.raises(IngestJobFailed, match="content_parse_error"):
        sensor.poke({})
    good = [i for i in ids if i != s3_document_id(BUCKET, "za-sensor/bad.txt")]
    assert ZetaAlphaDocumentsSensor(task_id="wait", document_ids=good).poke({}) is True


def test_trigger_round_trip_checks_statuses_in_chunks(zeta, s3):
    for n in range(150):
        s3.put_object(Bucket=BUCKET, Key=f"za-many/{n:03d}.txt", Body=b"x")
    ingest_op("za-many/", wait_for_completion=False).execute({})
    ids = [s3_document_id(BUCKET, f"za-many/{n:03d}.txt") for n in range(150)]  # the sensor's form
    trigger = ZetaAlphaDocumentsTrigger(
        job_id=ids, conn_id="zeta_alpha_default", deadline=time.time() + 30, poll_interval=0.1
    )
    path, kwargs = trigger.serialize()
    rebuilt = ZetaAlphaDocumentsTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)
    event = run_trigger(rebuilt)
    assert event["status"] == "success" and event["job"]["details"]["statuses"] == {"indexed": 150}
    polls = [r for r in zeta.journal() if r.get("method") == "GET" and "aiohttp" in r.get("agent", "")]
    assert polls and len(polls) % 2 == 0  # 150 ids -> two filter calls per poll, never one per document


# --- issue 16: sync safety, bounded state, custom schemas, documents not visible yet -----------------
def delete_requests(zeta):
    return [r for r in zeta.journal() if r.get("path", "").endswith("/delete-document-batches")]


def test_sync_of_an_empty_listing_deletes_nothing_unless_allowed(zeta, folder, s3):
    """Item 6: a wrong or moved prefix must not empty the content source."""
    prefix, _ = folder
    assert ingest_op(prefix, sync=True, content_source_id="kb-empty").execute({})["sent"] == 5
    empty = f"za-nothing-here/{time.time_ns()}/"
    with pytest.raises(IngestInputError, match=r"lists no objects.*delete all 5 documents.*allow_empty_sync"):
        ingest_op(empty, sync=True, content_source_id="kb-empty").execute({})
    assert delete_requests(zeta) == []
    assert len(list(ZetaAlphaHook().filter_documents(content_source_id="kb-empty"))) == 5
    emptied = ingest_op(empty, sync=True, content_source_id="kb-empty", allow_empty_sync=True).execute({})
    assert emptied["deleted"] == 5
    assert list(ZetaAlphaHook().filter_documents(content_source_id="kb-empty")) == []


def test_sync_above_max_deletes_fails_before_any_delete(zeta, folder, s3, capfd):
    prefix, _ = folder
    assert ingest_op(prefix, sync=True, content_source_id="kb-max").execute({})["sent"] == 5
    for gone in ("a.txt", "b.md", "c.pdf"):
        s3.delete_object(Bucket=BUCKET, Key=prefix + gone)
    with pytest.raises(
        IngestInputError, match=r"would delete 3 of the 5 documents.*max_deletes=2 allows \(2\)"
    ):
        ingest_op(prefix, sync=True, content_source_id="kb-max", max_deletes=2).execute({})
    with pytest.raises(IngestInputError, match=r"max_deletes=0.4 allows \(2\)"):
        ingest_op(prefix, sync=True, content_source_id="kb-max", max_deletes=0.4).execute({})
    assert delete_requests(zeta) == []
    capfd.readouterr()
    done = ingest_op(prefix, sync=True, content_source_id="kb-max", max_deletes=0.6).execute({})
    assert done["deleted"] == 3 and len(delete_requests(zeta)) == 1
    assert "Sync: deleting 3 of the 5 documents of content source kb-max" in capfd.readouterr().out


class SyntheticFolder(S3ToZetaAlphaOperator):
    """The operator over a listing of ``count`` objects made up in memory, each sent as a small
    document: S3 and content building are not what is measured; the operator's state is, and it
    comes from the real path (send, ledger, trigger, XCom)."""

    count = 100_000

    def list_objects(self, bucket, prefix):
        from datetime import UTC, datetime

        stamp = datetime(2026, 1, 1, tzinfo=UTC)
        for n in range(self.count):
            yield {
                "Key": f"{prefix}doc-{n:06d}.txt",
                "ETag": f'"{n:032x}"',
                "Size": 10,
                "LastModified": stamp,
            }

    def document(self, bucket, obj):
        return {
            "document_id": s3_document_id(bucket, obj["Key"]),
            "uri": f"s3://{bucket}/{obj['Key']}",
            "document_content": {"content_type": "text/plain", "from_": {"plain_text_string": "x"}},
        }


def test_task_state_trigger_and_xcom_stay_under_16_kb_at_100000_documents(zeta):
    """Item 7: the job id is the ingestion job, not every document id."""
    from airflow.sdk.exceptions import TaskDeferred

    class TI:
        dag_id, run_id, task_id, map_index, try_number = "d", "r", "za", -1, 1
        stats_tags: dict = {}

        def __init__(self):
            self.xcoms = {}

        def xcom_push(self, key, value):
            self.xcoms[key] = value

        def xcom_pull(self, task_ids=None, key="return_value"):
            return self.xcoms.get(key)

    context = {"ti": TI(), "task_state_store": TaskStateStore()}
    op = SyntheticFolder(
        task_id="za",
        s3_prefix=f"s3://{BUCKET}/za-synthetic/",
        deferrable=True,
        content_mode="url",
        batch_max_documents=10_000,
        batch_max_bytes=64 * 1024 * 1024,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert sum(batches(zeta)) == 100_000
    _, trigger_kwargs = deferred.value.trigger.serialize()
    job = context["task_state_store"][op.external_id_key]
    assert job["documents"] == 100_000 and job["ingestion_job_id"]
    result = op.job_result(job, None, context)
    context["ti"].xcom_push("return_value", result)
    sizes = {
        "task_state_store": len(json.dumps(context["task_state_store"])),
        "trigger kwargs": len(json.dumps(trigger_kwargs)),
        "xcoms": len(json.dumps(context["ti"].xcoms)),
    }
    assert all(size < 16 * 1024 for size in sizes.values()), sizes


def test_an_index_with_a_custom_schema_refusing_the_etag_key_fails_naming_it(zeta, folder):
    """Item 14: the index's custom schema does not define ``s3_etag``."""
    prefix, _ = folder
    zeta.configure(custom_metadata_keys=["department"])
    with pytest.raises(
        IngestInputError, match=r"custom_metadata key 's3_etag'.*add 's3_etag'.*index configuration"
    ):
        ingest_op(prefix, sync=True, content_source_id="kb-schema", batch_max_documents=2).execute({})
    assert batches(zeta) == [0]  # the first batch told: nothing else was sent
    zeta.configure(custom_metadata_keys=["department", "s3_etag"])  # configured as the error says
    assert ingest_op(prefix, sync=True, content_source_id="kb-schema").execute({})["sent"] == 5
    again = ingest_op(prefix, sync=True, content_source_id="kb-schema").execute({})
    assert (again["sent"], again["skipped"]) == (0, 5)  # the ETag is kept: nothing is resent


def test_a_document_not_visible_yet_is_pending_within_the_grace(zeta, folder):
    """Item 14: right after sending, a document may not be visible yet (``not_found``)."""
    prefix, _ = folder
    zeta.configure(hide_for_polls=3)  # three status reads see nothing
    result = ingest_op(prefix).execute({})
    assert result["statuses"] == {"indexed": 5}
    zeta.reset()
    zeta.configure(hide_for_polls=3)
    with pytest.raises(IngestJobFailed, match="5 never became visible"):
        ingest_op(prefix, not_found_grace=0).execute({})
