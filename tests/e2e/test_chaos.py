"""Chaos on the real deployment (the e2e stack: two triggerers, two Celery workers): processes
killed with SIGKILL (their whole session, by the pid in the stack's pid files, as a crash would)
or stopped and restarted while waits are deferred. What must hold: every task succeeds, no remote
job or batch is made twice, and no wait starts its timeout again.

The Polaris fake holds its jobs where they are (its ``steps`` clock) until the test moves them on,
so each process dies while the waits are known to be deferred. Each test leaves the stack as it
found it (killed processes started again). They run after the other e2e tests (conftest.py), and
the last one takes the stack down.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time

import pytest
import redis

from airflow_provider_ingest.testing.stack import DEMO_BUCKET, sample_events, seed_demo_data
from e2e.conftest import FINISHED, Deployment, alive

# Deferred waits at once in the triggerer test. The issue asks ~100, but each wait costs two
# worker task runs (defer, resume) on this 2-core machine, so CI keeps it modest;
# E2E_CHAOS_WAITS=100 runs the full one.
WAITS = int(os.environ.get("E2E_CHAOS_WAITS", "16"))
AEP_ROWS = 1000  # one JSON-lines file, ~20 KB as Parquet: several 4 KiB chunks
AEP_CHUNK = 4096

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(autouse=True)
def quiet(deployment):
    """No run left from before (the DAGs' scheduled runs at start-up): what the fakes record from
    here on is the test's."""

    def no_active_runs():
        active = [
            deployment.api("GET", "dags/~/dagRuns", params={"state": state})["total_entries"]
            for state in ("queued", "running")
        ]
        return not any(active)

    deployment.wait(no_active_runs, "the runs started before the test")


@contextlib.contextmanager
def held(fake):
    """The fake's jobs stay in their state until ``fake.advance`` moves them on."""
    fake.configure(clock="steps")
    try:
        yield
    finally:
        fake.configure(clock="wall")  # what is left (a failed test) ends at its next poll


@contextlib.contextmanager
def restored(deployment: Deployment, *names: str):
    """Whatever the test kills or stops among ``names`` runs again afterwards."""
    try:
        yield
    finally:
        for name in names:
            if f"{name}: stopped" in deployment.stack_status().splitlines():
                deployment.script("start", name)


def seed_days(deployment: Deployment, first: dt.date, days: int) -> None:
    s3 = deployment.stack.s3_client()
    for n in range(days):
        seed_demo_data(s3, str(first + dt.timedelta(days=n)), files=1, rows=10)


def start_backfill(deployment: Deployment, first: dt.date, days: int) -> str:
    """An s3_backfill run of ``days`` mapped Polaris waits (its AEP branch off)."""
    conf = {"first_day": str(first), "days": days, "run_adobe": False}
    return deployment.trigger("s3_backfill", conf)


def waits(deployment: Deployment, run_id: str) -> list[dict]:
    return deployment.task_instances("s3_backfill", run_id, "polaris_ingest")


def all_deferred(deployment: Deployment, run_ids: list[str], count: int) -> list[dict] | None:
    """The ``count`` waits of the runs once each is deferred and a triggerer runs its trigger."""
    tis = [ti for run_id in run_ids for ti in waits(deployment, run_id)]
    deferred = [ti for ti in tis if ti["state"] == "deferred" and (ti["trigger"] or {}).get("triggerer_id")]
    return deferred if len(deferred) == count else None


def deadlines(deployment: Deployment, tis: list[dict]) -> dict[tuple[str, int], float]:
    """Each wait's absolute deadline as the provider stored it in ``task_state_store``."""
    return {
        (ti["dag_run_id"], ti["map_index"]): deployment.state_store(
            "s3_backfill", ti["dag_run_id"], "polaris_ingest", ti["map_index"]
        )["polaris_job_id.deadline"]
        for ti in tis
    }


def runs_finished(deployment: Deployment, dag_id: str, run_ids: list[str]) -> list[dict] | None:
    runs = [deployment.run(dag_id, run_id) for run_id in run_ids]
    return runs if all(run["state"] in FINISHED for run in runs) else None


def jobs_since(fake, since: float, event: str = "job_created") -> list[str]:
    return [entry["id"] for entry in fake.journal(event=event) if entry["ts"] >= since]


def polls_since(fake, job_ids: list[str], since: float) -> dict[str, int]:
    """Status reads of each job since ``since`` by a triggerer (aiohttp)."""
    counts = dict.fromkeys(job_ids, 0)
    for entry in fake.journal():
        if entry.get("method") == "GET" and entry["ts"] >= since and "aiohttp" in entry.get("agent", ""):
            job_id = entry["path"].rsplit("/", 1)[-1]
            if job_id in counts:
                counts[job_id] += 1
    return counts


def alive_triggerers(deployment: Deployment) -> set[int]:
    jobs = deployment.api("GET", "jobs", params={"job_type": "TriggererJob", "is_alive": True})["jobs"]
    return {job["id"] for job in jobs}


def assert_all_succeeded_on_their_first_try(deployment: Deployment, run_ids: list[str], count: int):
    tis = [ti for run_id in run_ids for ti in waits(deployment, run_id)]
    assert len(tis) == count
    assert {(ti["state"], ti["try_number"]) for ti in tis} == {("success", 1)}, [
        (ti["map_index"], ti["state"], ti["try_number"]) for ti in tis if ti["state"] != "success"
    ]
    for run_id in run_ids:
        assert deployment.run("s3_backfill", run_id)["state"] == "success"


def test_a_killed_triggerer_hands_every_wait_to_the_other(deployment):
    polaris = deployment.stack.fake("Polaris")
    first = dt.date(2025, 1, 1)
    seed_days(deployment, first, WAITS)
    with restored(deployment, "triggerer", "triggerer-2"), held(polaris):
        deployment.script("stop", "triggerer-2")  # so the first triggerer takes every wait
        since = time.time()
        run_id = start_backfill(deployment, first, WAITS)
        before = deployment.wait(lambda: all_deferred(deployment, [run_id], WAITS), f"{WAITS} deferred waits")
        (doomed,) = alive_triggerers(deployment)
        assert {ti["trigger"]["triggerer_id"] for ti in before} == {doomed}
        stored = deadlines(deployment, before)
        deployment.script("start", "triggerer-2")
        survivor = deployment.wait(
            lambda: next(iter(alive_triggerers(deployment) - {doomed}), None), "triggerer-2"
        )

        deployment.kill("triggerer")
        killed_at = time.time()

        def taken_over():
            tis = all_deferred(deployment, [run_id], WAITS)
            return tis if tis and {ti["trigger"]["triggerer_id"] for ti in tis} == {survivor} else None

        # after [triggerer] triggerer_health_check_threshold the survivor claims the dead one's triggers
        after = deployment.wait(taken_over, "the surviving triggerer to take every wait over", timeout=300)
        assert doomed not in alive_triggerers(deployment)
        # the same triggers (same rows, same kwargs and deadline), not new ones from a retried task
        assert {ti["map_index"]: ti["trigger"]["id"] for ti in after} == {
            ti["map_index"]: ti["trigger"]["id"] for ti in before
        }
        jobs = jobs_since(polaris, since)
        assert len(jobs) == WAITS
        deployment.wait(
            lambda: min(polls_since(polaris, jobs, killed_at).values()) >= 1,
            "the surviving triggerer to poll every job",
        )
        polaris.advance(steps=5)  # every job ends

    deployment.wait(
        lambda: runs_finished(deployment, "s3_backfill", [run_id]), "the backfill run", timeout=600
    )
    assert_all_succeeded_on_their_first_try(deployment, [run_id], WAITS)
    assert jobs_since(polaris, since) == jobs, "no job was started twice"
    assert sorted(deployment.result("s3_backfill", run_id)["polaris_jobs"]) == sorted(jobs)
    assert deadlines(deployment, before) == stored, "no wait's deadline moved"


def test_a_worker_killed_mid_upload_leaves_one_completed_batch_without_duplicate_rows(deployment):
    """docs/adobe_aep.md: a retry of an upload cut before COMPLETE aborts that batch and starts over."""
    aep = deployment.stack.fake("AdobeAep")
    day = "2025-06-01"
    deployment.stack.s3_client().put_object(
        Bucket=DEMO_BUCKET, Key=f"events/{day}/part-0000.json", Body=sample_events(day, AEP_ROWS, seed=7)
    )
    since = time.time()
    # the second chunk is held 30 s (the worker is killed meanwhile): the kill lands mid-upload
    aep.add_fault(action="delay", seconds=30, method="PATCH", path=r"/files/", after=1, times=1)
    conf = {
        "prefix": f"events/{day}/",
        "run_polaris": False,
        "aep_small_file_max_bytes": 1024,
        "aep_chunk_size": AEP_CHUNK,
    }
    run_id = deployment.trigger("s3_to_table", conf)

    def first_chunk_landed():  # the batch a chunk landed in (paths: .../batches/{id}/datasets/...)
        landed = [
            e["path"].split("/batches/")[1].split("/")[0]
            for e in aep.journal()
            if e.get("method") == "PATCH" and e["ts"] >= since and e["status"] == 200
        ]
        return landed[0] if landed else None

    with restored(deployment, "worker", "worker-2"):
        cut = deployment.wait(first_chunk_landed, "the first chunk of the upload")
        (ti,) = deployment.task_instances("s3_to_table", run_id, "adobe_ingest")
        assert ti["state"] == "running" and ti["try_number"] == 1, ti
        worker = deployment.process_of(ti["pid"], ["worker", "worker-2"])
        deployment.kill(worker)
        deployment.script("start", worker)
        # the scheduler fails the silent task after [scheduler] task_instance_heartbeat_timeout,
        # and Airflow retries it after the DAG's retry_delay
        (run,) = deployment.wait(
            lambda: runs_finished(deployment, "s3_to_table", [run_id]), "the retried upload", timeout=600
        )

    (ti,) = deployment.task_instances("s3_to_table", run_id, "adobe_ingest")
    assert run["state"] == "success" and (ti["state"], ti["try_number"]) == ("success", 2), (run, ti)
    batches = jobs_since(aep, since, "batch_created")
    assert len(batches) == 2 and batches[0] == cut, batches
    retried = batches[1]
    assert jobs_since(aep, since, "batch_aborted") == [cut]
    assert jobs_since(aep, since, "batch_completed") == [retried], "one completed batch"
    (finished,) = [e for e in aep.journal(event="batch_finished") if e["ts"] >= since]
    assert (finished["id"], finished["status"], finished["rows"]) == (retried, "success", AEP_ROWS)
    (upload,) = [e for e in aep.journal(event="file_uploaded") if e["batch"] == retried]
    chunks = upload["chunks"]
    assert upload["mode"] == "large" and len(chunks) >= 3, upload
    # each byte once: the chunks follow each other and end at the file's size
    assert [start for start, _ in chunks] == [0] + [end + 1 for _, end in chunks[:-1]]
    assert chunks[-1][1] + 1 == upload["bytes"]
    summary = deployment.result("s3_to_table", run_id)["adobe"]
    assert (summary["batch_id"], summary["rows"]) == (retried, AEP_ROWS), summary
    log = deployment.task_log("s3_to_table", run_id, "adobe_ingest", attempt=2)
    assert (
        f"Aborting AEP batch {cut} left by an earlier attempt (its uploads were cut before COMPLETE)" in log
    )


def test_runs_deferred_across_a_scheduler_restart_all_complete(deployment):
    polaris = deployment.stack.fake("Polaris")
    first, days = dt.date(2025, 2, 1), 3
    seed_days(deployment, first, days)
    with restored(deployment, "scheduler"), held(polaris):
        since = time.time()
        run_ids = [start_backfill(deployment, first, days) for _ in range(2)]
        deployment.wait(lambda: all_deferred(deployment, run_ids, 2 * days), "the deferred waits")
        deployment.script("stop", "scheduler")
        polaris.advance(steps=5)  # the jobs end while no scheduler runs

        def fired():  # the triggerer hands each event back; only a scheduler can queue the tasks
            tis = [ti for run_id in run_ids for ti in waits(deployment, run_id)]
            return all(ti["state"] == "scheduled" for ti in tis)

        deployment.wait(fired, "every wait's event without a scheduler")
        deployment.script("start", "scheduler")
        deployment.wait(lambda: runs_finished(deployment, "s3_backfill", run_ids), "the runs", timeout=600)

    assert_all_succeeded_on_their_first_try(deployment, run_ids, 2 * days)
    assert len(jobs_since(polaris, since)) == 2 * days


def test_an_api_server_restart_does_not_touch_the_waits(deployment):
    polaris = deployment.stack.fake("Polaris")
    first, days = dt.date(2025, 2, 10), 3
    seed_days(deployment, first, days)
    with restored(deployment, "api-server"), held(polaris):
        since = time.time()
        run_id = start_backfill(deployment, first, days)
        before = deployment.wait(lambda: all_deferred(deployment, [run_id], days), "the deferred waits")
        jobs = jobs_since(polaris, since)
        deployment.script("stop", "api-server")
        stopped_at = time.time()
        # the triggerers keep polling every job while the api-server is away
        deployment.wait(
            lambda: min(polls_since(polaris, jobs, stopped_at).values()) >= 2,
            "polls while the api-server is down",
        )
        deployment.script("start", "api-server")
        after = all_deferred(deployment, [run_id], days)
        assert after is not None, "every wait is still deferred"
        assert [(ti["trigger"]["id"], ti["try_number"]) for ti in after] == [
            (ti["trigger"]["id"], ti["try_number"]) for ti in before
        ]
        polaris.advance(steps=5)
        deployment.wait(lambda: runs_finished(deployment, "s3_backfill", [run_id]), "the run", timeout=600)

    assert_all_succeeded_on_their_first_try(deployment, [run_id], days)
    assert jobs_since(polaris, since) == jobs


def test_down_stops_every_process_and_leaves_nothing_in_the_redis_db(deployment):
    """Last: `local-stack.sh down` on the stack the other tests used."""
    components = (deployment.state / "components").read_text().split()
    assert "triggerer-2" in components and "worker-2" in components
    pids = [deployment.pid(name) for name in components]
    broker = redis.Redis.from_url(deployment.env["STACK_REDIS_URL"])
    assert broker.keys("_kombu.binding.*"), "Celery keeps its bindings in the stack's Redis db"
    deployment.script("down")
    assert [pid for pid in pids if alive(pid)] == []
    assert broker.keys("*") == []
