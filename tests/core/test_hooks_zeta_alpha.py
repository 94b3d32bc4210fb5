"""Zeta Alpha hook: document ids, document states, the snapshot of an ingestion job (by its id
and document count) or of a list of document ids (status queries in chunks), called directly or
over HTTP against ZetaAlphaFake (plain-text documents: no S3)."""

from __future__ import annotations

import json
from hashlib import sha1
from urllib.parse import parse_qsl

import pytest

from airflow_provider_ingest.hooks.zeta_alpha import (
    STATUS_CHUNK,
    STATUS_PAGE,
    ZetaAlphaHook,
    compute_document_id,
    document_state,
    documents_snapshot,
    ingestion_job,
    ingestion_snapshot,
    s3_document_id,
)
from airflow_provider_ingest.http import RetryPolicy
from airflow_provider_ingest.jobs import JobSnapshot, JobState
from airflow_provider_ingest.testing import ZetaAlphaFake

from .support import run, serving

CONN_ID = "zeta_core_hooks"
INDEXED_CONN_ID = "zeta_core_hooks_index"
FAST = RetryPolicy(attempts=2, backoff=0.001, backoff_max=0.002)
API = "/v0/service/ingestion/documents"
RUNNING, SUCCEEDED, FAILED = JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED


@pytest.fixture(scope="module")
def fake():
    with serving(ZetaAlphaFake(clock="steps"), CONN_ID) as (server, env):
        conn = server.airflow_connection()
        indexed = {**conn, "extra": {**conn["extra"], "index_id": "idx-1"}}
        env.setenv(f"AIRFLOW_CONN_{INDEXED_CONN_ID.upper()}", json.dumps(indexed))
        yield server


@pytest.fixture
def zeta(fake):
    fake.reset()
    fake.configure(clock="steps")
    yield fake
    fake.clear_faults()


def hook(conn_id: str = CONN_ID) -> ZetaAlphaHook:
    return ZetaAlphaHook(zeta_alpha_conn_id=conn_id, retry=FAST)


def both(call, conn_id: str = CONN_ID):
    """``call(hook, asynchronous)`` through job_snapshot and through ajob_snapshot: the same snapshot."""
    sync = call(hook(conn_id), False)
    assert run(lambda: call(hook(conn_id), True)) == sync
    return sync


def filter_queries(fake) -> list[list[tuple[str, str]]]:
    return [
        parse_qsl(r["query"]) for r in fake.journal() if r.get("method") == "GET" and r.get("path") == API
    ]


def send(conn_id: str = CONN_ID, *names: str, job: str | None = None) -> list[str]:
    ids = [compute_document_id(name) for name in names]
    docs = [
        {"document_id": d, "document_content": {"from_": {"plain_text_string": f"text {d}"}}} for d in ids
    ]
    hook(conn_id).ingest_documents(docs, content_ingestion_job_id=job)
    return ids


def doc(status=None, **more):
    return {"status": status, **more} if status is not None else dict(more)


# --- document ids -------------------------------------------------------------------------------
def test_document_id_is_the_sha1_hex_of_the_internal_id():
    assert compute_document_id("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert compute_document_id("é") == sha1(b"\xc3\xa9").hexdigest()  # UTF-8


def test_s3_document_id_is_the_objects_uri():
    assert s3_document_id("bucket", "folder/a b.pdf") == sha1(b"s3://bucket/folder/a b.pdf").hexdigest()
    assert s3_document_id("b", "k") != s3_document_id("b", "k/")


# --- document_state: the vendor document's statuses ----------------------------------------------
@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("ingesting", RUNNING),
        ("indexing", RUNNING),
        ("indexing_update", RUNNING),
        ("marked_for_deletion", RUNNING),
        ("marked_for_quarantine", RUNNING),
        ("ingested", RUNNING),
        ("indexed", SUCCEEDED),
        ("indexed_update", SUCCEEDED),
        ("quarantined", FAILED),
        ("quarantine_failed", FAILED),
        ("failed", FAILED),
        ("not_found", FAILED),
        ("reticulating", None),
        (None, None),
    ],
)
def test_document_state(status, state):
    assert document_state({"status": status}) is state


def test_an_ingested_document_that_is_not_indexable_is_done():
    assert document_state({"status": "ingested", "is_indexable": False}) is SUCCEEDED
    assert document_state({"status": "ingested", "is_indexable": True}) is RUNNING
    assert document_state({"status": "ingested", "is_indexable": None}) is RUNNING
    assert document_state({"status": "indexing", "is_indexable": False}) is RUNNING


def test_ingestion_job():
    assert ingestion_job("job-1", 3, 100.0, 30.0) == {
        "ingestion_job_id": "job-1",
        "documents": 3,
        "sent_at": 100.0,
        "not_found_grace": 30.0,
    }


# --- ingestion_snapshot: a job's documents as the filter returned them --------------------------
JOB = ingestion_job("job-1", 3, 1000.0, 60.0)


def details(statuses, count=3, job_id="job-1"):
    return {"document_count": count, "statuses": statuses, "ingestion_job_id": job_id}


def test_job_indexed():
    found = {"a": doc("indexed"), "b": doc("indexed_update"), "c": doc("ingested", is_indexable=False)}
    assert ingestion_snapshot(JOB, found, 2000.0) == JobSnapshot(
        "documents",
        "indexed",
        SUCCEEDED,
        progress="3 of 3 indexed",
        details=details({"indexed": 1, "indexed_update": 1, "ingested": 1}),
    )


def test_job_in_progress_names_unknown_statuses_once():
    found = {"a": doc("indexed"), "b": doc("zeta"), "c": doc("alpha"), "d": doc("zeta"), "e": doc("failed")}
    snap = ingestion_snapshot(ingestion_job("job-1", 5, 1000.0, 60.0), found, 2000.0)
    assert snap == JobSnapshot(
        "documents",
        "in progress",
        RUNNING,
        progress="1 of 5 indexed",
        warning="unexpected document status alpha, zeta; still waiting",
        details=details({"indexed": 1, "zeta": 2, "alpha": 1, "failed": 1}, count=5),
    )


def test_job_in_progress_without_unknown_statuses_has_no_warning():
    snap = ingestion_snapshot(JOB, {"a": doc("indexing"), "b": doc("indexed"), "c": doc("indexed")}, 2000.0)
    assert (snap.state, snap.status, snap.progress, snap.warning) == (
        RUNNING,
        "in progress",
        "2 of 3 indexed",
        None,
    )


def test_job_failed_names_each_failed_document():
    found = {
        "a": doc("failed", error_codes=["download_failed", "too_big"]),
        "b": doc("quarantined"),
        "c": doc("indexed"),
    }
    assert ingestion_snapshot(JOB, found, 2000.0) == JobSnapshot(
        "documents",
        "failed",
        FAILED,
        "2 of 3 document(s) failed: a (failed: download_failed,too_big), b (quarantined: no error code)",
        "1 of 3 indexed",
        details=details({"failed": 1, "quarantined": 1, "indexed": 1}),
    )


def test_job_failed_names_twenty_and_counts_the_rest():
    found = {f"d{n:02}": doc("failed", error_codes=["x"]) for n in range(23)}
    snap = ingestion_snapshot(ingestion_job("j", 23, 0.0, 0.0), found, 1.0)
    named = ", ".join(f"d{n:02} (failed: x)" for n in range(20))
    assert snap.reason == f"23 of 23 document(s) failed: {named} and 3 more"


def test_job_failed_with_exactly_twenty_has_no_more():
    found = {f"d{n:02}": doc("failed") for n in range(20)}
    snap = ingestion_snapshot(ingestion_job("j", 20, 0.0, 0.0), found, 1.0)
    assert snap.reason.endswith("d19 (failed: no error code)")


def test_a_document_not_visible_within_the_grace_is_waited_for():
    found = {"a": doc("not_found"), "b": doc(), "c": doc("indexed")}
    snap = ingestion_snapshot(JOB, found, 1059.0)
    assert (snap.state, snap.progress, snap.warning) == (RUNNING, "1 of 3 indexed", None)
    assert snap.details == details({"not_found": 2, "indexed": 1})


def test_a_document_not_visible_after_the_grace_failed():
    found = {"a": doc("not_found"), "c": doc("indexed"), "d": doc("indexed")}
    snap = ingestion_snapshot(JOB, found, 1060.0)  # the grace ends at sent_at + grace
    assert (snap.state, snap.reason) == (FAILED, "1 of 3 document(s) failed: a (not_found: no error code)")


def test_a_document_without_a_status_after_the_grace_is_waited_for():
    # no status at all: counted as not visible, but its state is unknown, so it keeps the job waiting
    snap = ingestion_snapshot(JOB, {"a": doc(), "b": doc("indexed"), "c": doc("indexed")}, 2000.0)
    assert (snap.state, snap.warning, snap.details["statuses"]) == (
        RUNNING,
        "unexpected document status not_found; still waiting",
        {"not_found": 1, "indexed": 2},
    )


def test_documents_the_filter_does_not_return_are_waited_for_within_the_grace():
    snap = ingestion_snapshot(JOB, {"a": doc("indexed")}, 1000.0)
    assert (snap.state, snap.progress) == (RUNNING, "1 of 3 indexed")
    assert snap.details == details({"indexed": 1, "not_found": 2})


def test_documents_that_never_became_visible_fail_the_job_after_the_grace():
    snap = ingestion_snapshot(JOB, {"a": doc("indexed")}, 1060.0)
    assert snap == JobSnapshot(
        "documents",
        "failed",
        FAILED,
        "2 of 3 document(s) failed: 2 never became visible (not_found 60.0s after sending)",
        "1 of 3 indexed",
        details=details({"indexed": 1, "not_found": 2}),
    )


def test_failed_and_invisible_documents_are_both_named():
    snap = ingestion_snapshot(JOB, {"a": doc("failed", error_codes=["e"])}, 1060.0)
    assert snap.reason == (
        "3 of 3 document(s) failed: a (failed: e); and 2 never became visible (not_found 60.0s after sending)"
    )


def test_one_document_pending_and_one_running_keep_the_job_waiting():
    found = {"a": doc("not_found"), "b": doc("indexing"), "c": doc("indexed")}
    assert ingestion_snapshot(JOB, found, 1001.0).state is RUNNING
    assert (
        ingestion_snapshot(ingestion_job("job-1", 2, 1000.0, 60.0), {"b": doc("indexing")}, 1001.0).state
        is RUNNING
    )
    assert ingestion_snapshot(JOB, {"a": doc("not_found"), "b": doc("indexing")}, 1001.0).state is RUNNING


def test_invisible_documents_are_counted_together():
    snap = ingestion_snapshot(JOB, {"a": doc("not_found"), "b": doc("indexed")}, 1060.0)
    assert snap.details["statuses"] == {"not_found": 2, "indexed": 1}
    assert snap.reason == (
        "2 of 3 document(s) failed: a (not_found: no error code); and 1 never became visible "
        "(not_found 60.0s after sending)"
    )


def test_a_job_without_a_send_time_or_grace():
    no_send_time = {"ingestion_job_id": "j", "documents": 1, "sent_at": None, "not_found_grace": 1.0}
    assert ingestion_snapshot(no_send_time, {}, 0.5).state is RUNNING
    assert ingestion_snapshot(no_send_time, {}, 1.5).state is FAILED
    no_grace = {"ingestion_job_id": "j", "documents": 1, "sent_at": 0.0, "not_found_grace": None}
    assert ingestion_snapshot(no_grace, {}, 0.5).state is FAILED


def test_job_failed_with_twenty_one_names_one_more():
    found = {f"d{n:02}": doc("failed") for n in range(21)}
    snap = ingestion_snapshot(ingestion_job("j", 21, 0.0, 0.0), found, 1.0)
    assert snap.reason.endswith("d19 (failed: no error code) and 1 more")


def test_a_job_of_no_documents_is_done():
    job = {"ingestion_job_id": None, "documents": None, "sent_at": None, "not_found_grace": None}
    assert ingestion_snapshot(job, {}, 5.0) == JobSnapshot(
        "documents",
        "indexed",
        SUCCEEDED,
        progress="0 of 0 indexed",
        details={"document_count": 0, "statuses": {}, "ingestion_job_id": None},
    )


def test_a_job_with_counts_as_text():
    job = {"ingestion_job_id": "j", "documents": "2", "sent_at": "10", "not_found_grace": "5"}
    assert ingestion_snapshot(job, {"a": doc("indexed")}, 14.0).state is RUNNING
    assert ingestion_snapshot(job, {"a": doc("indexed")}, 15.0).state is FAILED


def test_more_documents_found_than_expected():
    snap = ingestion_snapshot(
        ingestion_job("j", 1, 0.0, 0.0), {"a": doc("indexed"), "b": doc("indexed")}, 1.0
    )
    assert (snap.state, snap.progress, snap.details["statuses"]) == (
        SUCCEEDED,
        "2 of 1 indexed",
        {"indexed": 2},
    )


# --- documents_snapshot: a list of document ids ---------------------------------------------------
def test_documents_indexed():
    found = {"a": doc("indexed"), "b": doc("ingested", is_indexable=False), "x": doc("failed")}
    assert documents_snapshot(["a", "b"], found) == JobSnapshot(
        "documents",
        "indexed",
        SUCCEEDED,
        progress="2 of 2 indexed",
        details={"document_count": 2, "statuses": {"indexed": 1, "ingested": 1}},
    )


def test_documents_in_progress():
    found = {
        "a": doc("indexed"),
        "b": doc("indexing"),
        "c": doc("failed"),
        "d": doc("what"),
        "e": doc("huh"),
        "f": doc("what"),
    }
    assert documents_snapshot(["a", "b", "c", "d", "e", "f"], found) == JobSnapshot(
        "documents",
        "in progress",
        RUNNING,
        progress="1 of 6 indexed",
        warning="unexpected document status huh, what; still waiting",
        details={
            "document_count": 6,
            "statuses": {"indexed": 1, "indexing": 1, "failed": 1, "what": 2, "huh": 1},
        },
    )


def test_documents_in_progress_without_unknown_statuses_has_no_warning():
    snap = documents_snapshot(["a", "b"], {"a": doc("indexed"), "b": doc("ingesting")})
    assert (snap.state, snap.warning, snap.progress) == (RUNNING, None, "1 of 2 indexed")


def test_documents_failed_names_them():
    found = {"a": doc("failed", error_codes=["e1", "e2"]), "b": doc("indexed"), "c": doc("quarantine_failed")}
    assert documents_snapshot(["a", "b", "c", "d"], found) == JobSnapshot(
        "documents",
        "failed",
        FAILED,
        "3 of 4 document(s) failed: a (failed: e1,e2), c (quarantine_failed: no error code), "
        "d (not_found: no error code)",
        "1 of 4 indexed",
        details={
            "document_count": 4,
            "statuses": {"failed": 1, "indexed": 1, "quarantine_failed": 1, "not_found": 1},
        },
    )


def test_documents_failed_names_twenty_and_counts_the_rest():
    ids = [f"d{n:02}" for n in range(21)]
    snap = documents_snapshot(ids, {})
    named = ", ".join(f"{d} (not_found: no error code)" for d in ids[:20])
    assert snap.reason == f"21 of 21 document(s) failed: {named} and 1 more"
    assert snap.details["statuses"] == {"not_found": 21}
    assert documents_snapshot(ids[:20], {}).reason.endswith("d19 (not_found: no error code)")
    assert documents_snapshot(ids + ["d21"], {}).reason.endswith(" and 2 more")


def test_a_document_without_a_status_keeps_the_set_waiting():
    snap = documents_snapshot(["a"], {"a": {"document_id": "a"}})
    assert (snap.state, snap.warning, snap.details["statuses"]) == (
        RUNNING,
        "unexpected document status None; still waiting",
        {"not_found": 1},
    )


def test_no_documents_is_done():
    assert documents_snapshot([], {}) == JobSnapshot(
        "documents",
        "indexed",
        SUCCEEDED,
        progress="0 of 0 indexed",
        details={"document_count": 0, "statuses": {}},
    )


def test_a_document_listed_twice_counts_twice():
    snap = documents_snapshot(["a", "a"], {"a": doc("indexed")})
    assert (snap.progress, snap.details) == (
        "2 of 2 indexed",
        {"document_count": 2, "statuses": {"indexed": 2}},
    )


# --- over HTTP: an ingestion job ---------------------------------------------------------------
def test_ingestion_job_snapshot_follows_its_documents(zeta):
    ids = send(CONN_ID, "a", "b", job="job-7")
    send(CONN_ID, "other")  # another job's document: not counted
    job = ingestion_job("job-7", 2, 0.0, 0.0)
    first = both(lambda h, a: h.ajob_snapshot(job) if a else h.job_snapshot(job))
    assert (first.state, first.details) == (
        RUNNING,
        {"document_count": 2, "statuses": {"ingesting": 2}, "ingestion_job_id": "job-7"},
    )
    zeta.advance(steps=2)
    done = both(lambda h, a: h.ajob_snapshot(job) if a else h.job_snapshot(job))
    assert (done.state, done.progress, done.details["statuses"]) == (
        SUCCEEDED,
        "2 of 2 indexed",
        {"indexed": 2},
    )
    assert len(ids) == 2
    query = [
        ("tenant", "acme"),
        ("content_ingestion_job_id", "job-7"),
        ("include_document_status", "true"),
        ("page", "1"),
        ("page_size", str(STATUS_PAGE)),
    ]
    assert filter_queries(zeta) == [query] * 4
    assert STATUS_PAGE == 1000


def test_ingestion_job_snapshot_names_the_index(zeta):
    send(INDEXED_CONN_ID, "a", job="job-8")
    job = ingestion_job("job-8", 1, 0.0, 0.0)
    snap = both(lambda h, a: h.ajob_snapshot(job) if a else h.job_snapshot(job), INDEXED_CONN_ID)
    assert snap.details["statuses"] == {"ingesting": 1}
    queries = filter_queries(zeta)
    assert queries and all(q[:2] == [("tenant", "acme"), ("index_id", "idx-1")] for q in queries)


def test_ingestion_job_snapshot_reads_every_page(zeta):
    pages = [
        {"results": [{"document_id": "a", "status": "indexed"}], "next": {"page": 2, "page_size": 1000}},
        {"results": [{"document_id": "b", "status": "failed"}], "next": {"page": 3}},
        {"results": [{"document_id": "a", "status": "indexed"}]},
    ]
    for asynchronous in (False, True):
        for body in pages:
            zeta.add_fault(action="body", body=body, method="GET", path=f"{API}$")
        job = ingestion_job("job-9", 2, 0.0, 0.0)
        snap = run(lambda job=job: hook().ajob_snapshot(job)) if asynchronous else hook().job_snapshot(job)
        assert (snap.state, snap.reason) == (FAILED, "1 of 2 document(s) failed: b (failed: no error code)")
    assert [dict(q)["page"] for q in filter_queries(zeta)] == ["1", "2", "3"] * 2


@pytest.mark.parametrize("body", [None, {}, {"results": []}])
def test_ingestion_job_snapshot_of_an_empty_reply(zeta, body):
    zeta.add_fault(action="body", body=body, method="GET", path=f"{API}$", times=2)
    job = ingestion_job("job-1", 1, 0.0, 0.0)
    snap = both(lambda h, a: h.ajob_snapshot(job) if a else h.job_snapshot(job))
    assert (snap.state, snap.reason) == (
        FAILED,
        "1 of 1 document(s) failed: 1 never became visible (not_found 0.0s after sending)",
    )
    assert len(filter_queries(zeta)) == 2


@pytest.mark.parametrize(("job_id", "documents"), [(None, 2), ("job-1", 0), ("", 2), ("job-1", None)])
def test_a_job_without_an_id_or_documents_reads_nothing(zeta, job_id, documents):
    job = ingestion_job(job_id, documents, 0.0, 0.0)
    snap = both(lambda h, a: h.ajob_snapshot(job) if a else h.job_snapshot(job))
    assert snap.state is (FAILED if documents else SUCCEEDED)
    assert filter_queries(zeta) == []


def test_a_job_within_its_grace_keeps_waiting_for_unseen_documents(zeta):
    import time

    job = ingestion_job("job-unseen", 1, time.time(), 3600.0)
    snap = both(lambda h, a: h.ajob_snapshot(job) if a else h.job_snapshot(job))
    assert (snap.state, snap.details["statuses"]) == (RUNNING, {"not_found": 1})


# --- over HTTP: a list of document ids, in chunks ------------------------------------------------
def test_documents_snapshot_follows_the_documents(zeta):
    ids = send(CONN_ID, "a", "b")
    first = both(lambda h, a: h.ajob_snapshot(ids) if a else h.job_snapshot(ids))
    assert (first.state, first.details["statuses"]) == (RUNNING, {"ingesting": 2})
    zeta.advance(steps=2)
    done = both(lambda h, a: h.ajob_snapshot(ids) if a else h.job_snapshot(ids))
    assert (done.state, done.progress) == (SUCCEEDED, "2 of 2 indexed")
    query = [
        ("tenant", "acme"),
        *[("document_id_in", d) for d in ids],
        ("include_document_status", "true"),
        ("page_size", "2"),
    ]
    assert filter_queries(zeta) == [query] * 4


def test_documents_snapshot_queries_in_chunks_of_a_hundred(zeta):
    ids = (
        send(CONN_ID, "first")
        + [compute_document_id(f"doc-{n}") for n in range(2 * STATUS_CHUNK)]
        + send(CONN_ID, "last")
    )
    zeta.advance(steps=2)
    snap = both(lambda h, a: h.ajob_snapshot(ids) if a else h.job_snapshot(ids))
    assert snap.state is FAILED and snap.progress == f"2 of {len(ids)} indexed"
    assert snap.details["statuses"] == {"indexed": 2, "not_found": 2 * STATUS_CHUNK}
    queries = filter_queries(zeta)
    chunks = [[v for k, v in q if k == "document_id_in"] for q in queries]
    assert chunks == [ids[:100], ids[100:200], ids[200:]] * 2
    assert [dict(q)["page_size"] for q in queries] == ["100", "100", "2"] * 2
    assert STATUS_CHUNK == 100


def test_documents_snapshot_names_the_index(zeta):
    ids = send(INDEXED_CONN_ID, "a")
    snap = both(lambda h, a: h.ajob_snapshot(ids) if a else h.job_snapshot(ids), INDEXED_CONN_ID)
    assert snap.details["statuses"] == {"ingesting": 1}
    assert all(q[:2] == [("tenant", "acme"), ("index_id", "idx-1")] for q in filter_queries(zeta))
    assert both(lambda h, a: h.ajob_snapshot(ids) if a else h.job_snapshot(ids)).details["statuses"] == {
        "not_found": 1
    }  # the default index does not hold it


@pytest.mark.parametrize("body", [None, {}, {"results": []}])
def test_documents_snapshot_of_an_empty_reply(zeta, body):
    zeta.add_fault(action="body", body=body, method="GET", path=f"{API}$", times=2)
    snap = both(lambda h, a: h.ajob_snapshot(["a"]) if a else h.job_snapshot(["a"]))
    assert (snap.state, snap.details["statuses"]) == (FAILED, {"not_found": 1})


def test_no_document_ids_read_nothing(zeta):
    snap = both(lambda h, a: h.ajob_snapshot([]) if a else h.job_snapshot([]))
    assert (snap.state, snap.progress) == (SUCCEEDED, "0 of 0 indexed")
    assert filter_queries(zeta) == []
