"""Thousands of deferred waits in one event loop (issue 9): N instances of each service's trigger
polling concurrently, as Airflow's triggerer runs them, side by side with a bare aiohttp loop over
one shared ClientSession (the floor) and a naive trigger that opens a ClientSession per poll.

    .venv/bin/python benchmarks/triggers.py [--n 1000 3000 10000] [--services polaris zeta_alpha]
    .venv/bin/python benchmarks/triggers.py --quick        # N=200 with short polls, about 30 s

How it measures:
- The fakes run in their own processes (``--fakes K``; wait i talks to process i % K), so their CPU
  is not counted here. Jobs go straight into the fakes' state with a duration that makes every wait
  poll ``--polls`` times at ``--poll-interval``; they settle without the fakes' S3 reads and
  Parquet checks, and Zeta Alpha's id filter is a dict lookup instead of a sort of every document
  (see ``bench_fakes``), so the fakes stay cheap status endpoints with the real routes and replies.
- Every measurement runs in a child forked from this process after the imports and one warm-up
  wait per service: one-time imports, model loading and the OAuth token are not per-wait costs.
- Starts are spread evenly over the first poll interval, as deferrals reach a triggerer over time.
- Memory per wait: (peak - baseline) RSS from /proc/self/statm / N. CPU per poll: the child's CPU
  time (trigger construction, connection lookup, polling, logging at INFO to /dev/null) / polls.
  Loop lag: the overshoot of a task sleeping 10 ms. Polls and connections are counted by the fake's
  server: every GET it journals for the service, and every TCP connection uvicorn accepts.

Targets (issue 9): 10,000 concurrent waits with loop lag p99 < 50 ms; CPU per poll at most 1.5x the
bare loop's; memory per wait < 20 KB; connections far below polls (here: at most a tenth).
"""

# No ``from __future__ import annotations``: FastAPI reads the bench route's annotations at runtime.
import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from hashlib import sha1
from pathlib import Path
from typing import Any

from common import write_table

SERVICES = ("polaris", "egain", "qconnect", "zeta_alpha", "adobe_aep")
VARIANTS = ("bare", "naive", "trigger")
# Diagnostic only (--variants client): the provider's client in a bare loop, without the trigger: the
# hook's AsyncApiClient, or for Q in Connect one aiobotocore client shared by every wait.
EXTRA_VARIANTS = ("client",)
KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"  # the Q in Connect fake's knowledge base
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
LAG_TARGET_MS, CPU_RATIO_TARGET, KB_TARGET, CONN_RATIO_TARGET = 50.0, 1.5, 20.0, 0.1


# --- the fakes' side (a subprocess: --serve) ------------------------------------------------------
def bench_fakes() -> dict[str, Any]:
    """The five fakes with a ``add_jobs(created, duration)`` that puts N jobs into their state.

    Jobs settle without work the benchmark does not measure: no S3 reads (Polaris, eGain), no
    Parquet check (AEP). Zeta Alpha's filter route sorts every document per call, which at 10,000
    documents would make the fake, not the trigger, the cost; ids-only filters get a dict lookup
    with the same reply."""
    from fastapi import FastAPI, Request, Response
    from fastapi.responses import JSONResponse

    from airflow_provider_ingest.testing import (
        AdobeAepFake,
        EgainFake,
        PolarisFake,
        QConnectFake,
        ZetaAlphaFake,
    )
    from airflow_provider_ingest.testing.adobe_aep import DATASET_ID
    from airflow_provider_ingest.testing.zeta_alpha import API as ZETA_API

    class Polaris(PolarisFake):
        def _ingest(self, job: dict[str, Any]) -> None:
            job.update(executionStatus="completed", health={"status": "ok"})

        def add_jobs(self, created: list[float], duration: float) -> list[Any]:
            self.jobs.clear()
            self.configure(pending_seconds=duration / 2, running_seconds=duration / 2)
            ids = []
            for at in created:
                job_id = str(uuid.uuid4())
                self.jobs[job_id] = {
                    "id": job_id,
                    "type": "batch",
                    "target": {"type": "table", "tableName": "bench"},
                    "executionStatus": "pending",
                    "desiredExecutionStatus": "running",
                    "health": {"status": "ok"},
                    "_created": at,
                    "_metrics": {},
                }
                ids.append(job_id)
            return ids

    class Egain(EgainFake):
        def add_jobs(self, created: list[float], duration: float) -> list[Any]:
            self.jobs.clear()
            self.configure(scheduled_seconds=duration / 2, in_progress_seconds=duration / 2)
            outcome = {"error": None, "files": [{"name": "a.html", "status": "successful", "message": None}]}
            ids = []
            for at in created:
                job_id = str(uuid.uuid4()).upper()
                self.jobs[job_id] = {
                    "id": job_id,
                    "jobType": "Import",
                    "dataSource": {},
                    "operation": "import",
                    "created": at,
                    "start_at": at,
                    "cancelled": False,
                    "outcome": outcome,  # settled up front: no S3 listing when it ends
                }
                ids.append(job_id)
            return ids

    class QConnect(QConnectFake):
        def add_jobs(self, created: list[float], duration: float) -> list[Any]:
            self.jobs.clear()
            self.configure(processing_seconds=duration)
            self.uploads["bench"] = {
                "body": b"Name,Content\nHello,Hello there\n",
                "sig": "-",
                "expiry": float("inf"),
                "headers": {},
                "kb": KB,
            }
            ids = []
            for at in created:
                job_id = str(uuid.uuid4())
                self.jobs[job_id] = {
                    "importJobId": job_id,
                    "knowledgeBaseId": KB,
                    "uploadId": "bench",
                    "importJobType": "QUICK_RESPONSES",
                    "status": "START_IN_PROGRESS",
                    "createdTime": at,
                    "lastModifiedTime": at,
                    "metadata": {},
                    "_sig": "-",
                }
                ids.append(job_id)
            return ids

    class Zeta(ZetaAlphaFake):
        def install_routes(self, app: FastAPI) -> None:
            @app.get(ZETA_API)
            async def filter_by_ids(request: Request) -> Response:
                query = request.query_params
                simple = {"tenant", "index_id", "document_id_in", "include_document_status", "page_size"}
                if not query.getlist("document_id_in") or set(query) - simple:
                    return await self._full_filter(request)
                scope = self._scope(request)
                if isinstance(scope, Response):
                    return scope
                include = query.get("include_document_status") == "true"
                with self.lock:
                    found = [
                        self.documents.get((*scope, d)) for d in sorted(set(query.getlist("document_id_in")))
                    ]
                    results = [self._view(d, include) for d in found if d is not None and not d["deleted"]]
                page_size = int(query.get("page_size", 100))
                body = {
                    "count": len(results),
                    "page": 1,
                    "page_size": page_size,
                    "results": results[:page_size],
                }
                if page_size < len(results):
                    body["next"] = {"page": 2, "page_size": page_size}
                return JSONResponse(body)

            super().install_routes(app)
            self._full_filter = next(
                r.endpoint
                for r in app.router.routes
                if getattr(r, "path", None) == ZETA_API
                and "GET" in r.methods
                and r.endpoint is not filter_by_ids
            )

        def add_jobs(self, created: list[float], duration: float) -> list[Any]:
            self.documents.clear()
            self.configure(ingesting_seconds=duration / 2, indexing_seconds=duration / 2)
            ids = []
            stamp = str(time.time())
            for n, at in enumerate(created):
                doc_id = sha1(f"bench-{stamp}-{n}".encode()).hexdigest()
                self.documents[(self.tenant, "default", doc_id)] = {
                    "document_id": doc_id,
                    "tenant": self.tenant,
                    "index_id": "default",
                    "deleted": False,
                    "version": 1,
                    "status": "ingesting",
                    "document_content": None,
                    "request_created_at": stamp,
                    "request_last_updated_at": stamp,
                    "_since": at,
                }
                ids.append([doc_id])  # the trigger's job id: a list of document ids
            return ids

    class Adobe(AdobeAepFake):
        def _validate_files(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
            return []

        def add_jobs(self, created: list[float], duration: float) -> list[Any]:
            self.batches.clear()
            self.configure(staging_seconds=duration)
            ids = []
            for at in created:
                batch_id = uuid.uuid4().hex[:24]
                self.batches[batch_id] = {
                    "id": batch_id,
                    "datasetId": DATASET_ID,
                    "status": "staging",
                    "created": int(at * 1000),
                    "completed_at": at,
                    "files": {},
                    "rows": 0,
                }
                ids.append(batch_id)
            return ids

    return {
        "polaris": Polaris(),
        "egain": Egain(),
        "qconnect": QConnect(),
        "zeta_alpha": Zeta(),
        "adobe_aep": Adobe(),
    }


def start_counting(fake: Any) -> list[int]:
    """Serve ``fake`` like ``FakeService.start``, with uvicorn's protocol counting accepted TCP
    connections; returns the counter."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    opened = [0]

    class Counting(HttpToolsProtocol):
        def connection_made(self, transport: Any) -> None:
            opened[0] += 1
            super().connection_made(transport)

    config = uvicorn.Config(
        fake.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", http=Counting, backlog=8192
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True, name=type(fake).__name__).start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError(f"{type(fake).__name__} did not start")
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    return opened


def serve() -> None:
    """Run the five fakes; answer JSON-line commands on stdin (``jobs``, ``stats``)."""
    from airflow_provider_ingest.testing.stack import aws_connection

    fakes = bench_fakes()
    opened = {name: start_counting(fake) for name, fake in fakes.items()}
    conns = {name: fake.airflow_connection() for name, fake in fakes.items() if fake.conn_id}
    conns["aws"] = aws_connection("http://127.0.0.1:9", fakes["qconnect"].aws_service_config())
    print(json.dumps({"connections": conns, "urls": {n: f.url for n, f in fakes.items()}}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "jobs":
            fake = fakes[command["service"]]
            with fake.lock:
                fake._journal.clear()
                reply: Any = fake.add_jobs(command["created"], command["duration"])
        else:  # stats
            reply = {
                name: {
                    "gets": sum(1 for e in fake.journal() if e.get("method") == "GET"),
                    "connections": opened[name][0],
                }
                for name, fake in fakes.items()
            }
        print(json.dumps(reply), flush=True)


class FakeProcess:
    """One ``--serve`` subprocess and its command pipe."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.info: dict[str, Any] = {}

    def ready(self) -> dict[str, Any]:
        self.info = json.loads(self.proc.stdout.readline())
        return self.info

    def ask(self, **command: Any) -> Any:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(10)


# --- the triggers' side ---------------------------------------------------------------------------
def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def conn_id(service: str, shard: int) -> str:
    return f"bench_{'aws' if service == 'qconnect' else service}_{shard}"


def make_trigger(service: str, job_id: Any, shard: int, deadline: float, interval: float) -> Any:
    if service == "qconnect":
        from airflow_provider_ingest.triggers.qconnect import QConnectImportJobTrigger

        return QConnectImportJobTrigger(
            knowledge_base_id=KB,
            import_job_id=job_id,
            deadline=deadline,
            waiter_delay=interval,
            aws_conn_id=conn_id(service, shard),
            region_name="us-east-1",
        )
    from airflow_provider_ingest.triggers.adobe_aep import AdobeAepBatchTrigger
    from airflow_provider_ingest.triggers.egain import EgainImportJobTrigger
    from airflow_provider_ingest.triggers.polaris import PolarisJobTrigger
    from airflow_provider_ingest.triggers.zeta_alpha import ZetaAlphaDocumentsTrigger

    trigger_class = {
        "polaris": PolarisJobTrigger,
        "egain": EgainImportJobTrigger,
        "zeta_alpha": ZetaAlphaDocumentsTrigger,
        "adobe_aep": AdobeAepBatchTrigger,
    }[service]
    return trigger_class(
        job_id=job_id, conn_id=conn_id(service, shard), deadline=deadline, poll_interval=interval
    )


async def run_trigger(trigger: Any) -> bool:
    """As the triggerer: run to the first event, then close the generator."""
    events = trigger.run()
    try:
        event = await anext(events)
    finally:
        await events.aclose()
    return event.payload.get("status") == "success"


def request_spec(service: str, shard: int, url: str) -> Callable[[Any], tuple[str, Any, dict, Callable]]:
    """For the bare and naive loops: ``job id -> (url, params, headers, done(body))`` with the same
    requests the service's trigger sends (Q in Connect: an unsigned look-alike of SigV4)."""
    if service == "qconnect":
        headers = {
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/wisdom/aws4_request"
        }
        return lambda job: (
            f"{url}/knowledgeBases/{KB}/importJobs/{job}",
            None,
            headers,
            lambda body: body["importJob"]["status"] in ("COMPLETE", "FAILED"),
        )
    from airflow_provider_ingest.hooks.adobe_aep import CATALOG, AdobeAepHook
    from airflow_provider_ingest.hooks.egain import EgainHook
    from airflow_provider_ingest.hooks.polaris import PolarisHook
    from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook

    hook_class = {
        "polaris": PolarisHook,
        "egain": EgainHook,
        "zeta_alpha": ZetaAlphaHook,
        "adobe_aep": AdobeAepHook,
    }[service]
    hook = hook_class(conn_id(service, shard))
    client = hook.client
    headers = client.auth.headers(client)  # eGain, AEP: the process-wide cached token
    if service == "polaris":
        return lambda job: (
            client.url(f"jobs/{job}"),
            None,
            headers,
            lambda b: b["executionStatus"] == "completed",
        )
    if service == "egain":
        return lambda job: (
            client.url(f"import/content/{job}/status"),
            None,
            headers,
            lambda b: b["status"] == "Successful",
        )
    if service == "zeta_alpha":
        return lambda job: (
            client.url("documents"),
            hook._status_query(job),
            headers,
            lambda b: bool(b["results"]) and all(d["status"] == "indexed" for d in b["results"]),
        )
    return lambda job: (
        client.url(f"{CATALOG}/batches/{job}"),
        None,
        headers,
        lambda b: b[job]["status"] == "success",
    )


async def drive(
    n: int, start_at: float, spacing: float, one: Callable[[int], Awaitable[bool]], timeout: float
) -> dict[str, Any]:
    """Start ``one(i)`` for i < n, spaced ``spacing`` apart from ``start_at``; measure until all end."""
    lags: list[float] = []
    peak = [0]
    stop = asyncio.Event()
    errors: list[str] = []
    finished: list[float] = []

    async def monitor() -> None:
        ticks = 0
        while not stop.is_set():
            began = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - began - 0.01)
            ticks += 1
            if ticks % 10 == 0:
                peak[0] = max(peak[0], rss())

    async def guarded(i: int) -> bool:
        try:
            return await one(i)
        except Exception as exc:  # noqa: BLE001 - counted and reported, never fatal
            if len(errors) < 3:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
            return False
        finally:
            finished.append(time.time())

    gc_pauses: list[float] = []
    gc_began = [0.0]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        else:
            gc_pauses.append(time.perf_counter() - gc_began[0])

    gc.collect()
    gc.callbacks.append(gc_timer)
    base = rss()
    peak[0] = base
    cpu0 = time.process_time()
    watcher = asyncio.create_task(monitor())
    tasks = []
    for i in range(n):
        delay = start_at + i * spacing - time.time()
        if delay > 0.001:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(guarded(i)))
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    cpu = time.process_time() - cpu0
    peak[0] = max(peak[0], rss())
    stop.set()
    await watcher
    gc.callbacks.remove(gc_timer)
    for task in pending:
        task.cancel()
    lags_ms = sorted(lag * 1000 for lag in lags)
    return {
        "ok": sum(1 for t in done if not t.cancelled() and t.result()),
        "timed_out": len(pending),
        "cpu_s": cpu,
        "rss_base": base,
        "rss_peak": peak[0],
        "lag_p99_ms": lags_ms[min(len(lags_ms) - 1, int(len(lags_ms) * 0.99))] if lags_ms else 0.0,
        "lag_max_ms": lags_ms[-1] if lags_ms else 0.0,
        "gc_max_ms": max(gc_pauses, default=0.0) * 1000,
        "gc_total_ms": sum(gc_pauses) * 1000,
        "wall_s": (max(finished) if finished else time.time()) - start_at,
        "errors": errors,
    }


def measure(
    service: str,
    variant: str,
    jobs: list[Any],
    fakes: list[FakeProcess],
    specs: list[Callable],
    start_at: float,
    interval: float,
    timeout: float,
    profile: bool = False,
) -> dict[str, Any]:
    """One variant for one service, in this (forked) process."""
    import aiohttp

    from airflow_provider_ingest.http import close_shared_sessions

    n = len(jobs)
    requests = [specs[i % len(fakes)](job) for i, job in enumerate(jobs)]

    async def scenario() -> dict[str, Any]:
        session = None
        if variant == "bare":
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100 * len(fakes)))

            async def one(i: int) -> bool:
                url, params, headers, done = requests[i]
                while True:
                    async with session.get(url, params=params, headers=headers) as response:
                        body = await response.json()
                    if done(body):
                        return True
                    await asyncio.sleep(interval)

        elif variant == "naive":

            async def one(i: int) -> bool:
                url, params, headers, done = requests[i]
                while True:
                    async with aiohttp.ClientSession() as per_poll:
                        async with per_poll.get(url, params=params, headers=headers) as response:
                            body = await response.json()
                    if done(body):
                        return True
                    await asyncio.sleep(interval)

        elif variant == "client" and service == "qconnect":
            hooks = [make_trigger(service, "-", shard, 0, interval).hook() for shard in range(len(fakes))]
            boto_clients = [await (await hook.get_async_conn()).__aenter__() for hook in hooks]

            async def one(i: int) -> bool:
                while True:
                    reply = await boto_clients[i % len(fakes)].get_import_job(
                        knowledgeBaseId=KB, importJobId=jobs[i]
                    )
                    if reply["importJob"]["status"] in ("COMPLETE", "FAILED"):
                        return True
                    await asyncio.sleep(interval)

        elif variant == "client":
            hooks = [make_trigger(service, "-", shard, 0, interval).hook() for shard in range(len(fakes))]
            clients = [await hook.aclient() for hook in hooks]

            async def one(i: int) -> bool:
                url, params, headers, done = requests[i]
                while True:
                    body = await clients[i % len(fakes)].json("GET", url, params=params)
                    if done(body):
                        return True
                    await asyncio.sleep(interval)

        else:
            deadline = start_at + timeout

            async def one(i: int) -> bool:
                shard = i % len(fakes)
                return await run_trigger(make_trigger(service, jobs[i], shard, deadline, interval))

        result = await drive(n, start_at, interval / n, one, timeout)
        if session is not None:
            await session.close()
        await close_shared_sessions()
        return result

    if not profile:
        return asyncio.run(scenario())
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    result = profiler.runcall(asyncio.run, scenario())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    result["profile"] = out.getvalue()
    return result


def in_child(work: Callable[[], dict[str, Any]], limit: float) -> dict[str, Any]:
    """Run ``work`` in a forked child (clean RSS and CPU accounting); its JSON result."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        try:
            # Trigger log lines (INFO, as in a triggerer) are formatted but not printed.
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            result = work()
        except BaseException as exc:  # noqa: BLE001
            result = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        with os.fdopen(write_end, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as inp:
        reader = threading.Thread(target=lambda: setattr(reader, "data", inp.read()), daemon=True)
        reader.data = ""
        reader.start()
        reader.join(limit)
        if reader.is_alive():
            os.kill(pid, 9)
            reader.join(5)
    os.waitpid(pid, 0)
    try:
        return json.loads(reader.data)
    except ValueError:
        return {"error": "the child died or timed out"}


def warm_up(fakes: list[FakeProcess], services: list[str]) -> None:
    """One finished wait per service and fake: imports, botocore's model, OAuth tokens."""
    from asgiref.sync import SyncToAsync

    from airflow_provider_ingest.http import close_shared_sessions

    jobs = {}
    for service in services:
        for shard, fake in enumerate(fakes):
            jobs[(service, shard)] = fake.ask(
                op="jobs", service=service, created=[time.time() - 60], duration=0
            )[0]

    async def all_once() -> None:
        deadline = time.time() + 60
        outcomes = await asyncio.gather(
            *(run_trigger(make_trigger(s, job, shard, deadline, 0.5)) for (s, shard), job in jobs.items())
        )
        await close_shared_sessions()
        if not all(outcomes):
            raise RuntimeError(f"warm-up waits failed: {dict(zip(jobs, outcomes, strict=True))}")

    asyncio.run(all_once())
    # asgiref's thread for sync_to_async (aget_connection, aiobotocore set-up) must not outlive
    # the warm-up: a forked child would inherit an executor whose thread does not exist.
    SyncToAsync.single_thread_executor.shutdown(wait=True)
    from concurrent.futures import ThreadPoolExecutor

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)


def run_one(
    service: str,
    variant: str,
    n: int,
    fakes: list[FakeProcess],
    specs: list[Callable],
    args: argparse.Namespace,
) -> dict[str, Any]:
    interval = n / args.rate if args.rate else args.poll_interval
    duration = (args.polls - 1.5) * interval  # poll k (from 0) at k*interval: done at poll polls-1
    start_at = time.time() + 0.4 + n / 5000  # room for the jobs and the fork
    spacing = interval / n
    jobs: list[Any] = [None] * n
    for shard, fake in enumerate(fakes):
        indexes = list(range(shard, n, len(fakes)))
        created = [start_at + i * spacing for i in indexes]
        for i, job in zip(
            indexes, fake.ask(op="jobs", service=service, created=created, duration=duration), strict=True
        ):
            jobs[i] = job
    before = [fake.ask(op="stats")[service] for fake in fakes]
    fake_cpu = sum(fake.cpu_seconds() for fake in fakes)
    timeout = args.polls * interval * 6 + 30
    result = in_child(
        lambda: measure(service, variant, jobs, fakes, specs, start_at, interval, timeout, args.profile),
        timeout + 60,
    )
    after = [fake.ask(op="stats")[service] for fake in fakes]
    result["fake_cpu_s"] = sum(fake.cpu_seconds() for fake in fakes) - fake_cpu
    result["polls"] = sum(a["gets"] - b["gets"] for a, b in zip(after, before, strict=True))
    result["connections"] = sum(
        a["connections"] - b["connections"] for a, b in zip(after, before, strict=True)
    )
    result.update(service=service, variant=variant, n=n)
    return result


def row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {r['service']} | {r['variant']} | {r['n']} | ERROR: {r['error']} |" + " |" * 10
    n, polls = r["n"], max(r["polls"], 1)
    cells = [
        r["service"],
        r["variant"],
        f"{n:,}",
        f"{r['ok']:,}",
        f"{r['polls'] / n:.2f}",
        f"{r['polls']:,}",
        f"{r['connections']:,}",
        f"{r['cpu_s'] * 1000 / polls:.3f}",
        f"{(r['rss_peak'] - r['rss_base']) / n / 1024:.1f}",
        f"{r['lag_p99_ms']:.1f}",
        f"{r['lag_max_ms']:.1f}",
        f"{r['gc_max_ms']:.0f}",
        f"{r['wall_s']:.1f}",
        f"{100 * r['fake_cpu_s'] / max(r['wall_s'], 0.1):.0f}%",
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| service | variant | N | succeeded | polls/wait | polls | TCP connections | CPU ms/poll | KB/wait "
    "| lag p99 ms | lag max ms | longest GC ms | wall s | fake CPU |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    by_key = {(r["service"], r["variant"], r["n"]): r for r in results}
    for r in results:
        if r["variant"] != "trigger":
            continue
        if "error" in r:
            lines.append(f"- {r['service']} N={r['n']:,}: FAIL (error: {r['error']})")
            continue
        n, polls = r["n"], max(r["polls"], 1)
        checks = [
            ("all waits succeeded", r["ok"] == n, f"{r['ok']:,}/{n:,}"),
            (
                f"lag p99 < {LAG_TARGET_MS:.0f} ms",
                r["lag_p99_ms"] < LAG_TARGET_MS,
                f"{r['lag_p99_ms']:.1f} ms",
            ),
        ]
        bare = by_key.get((r["service"], "bare", n))
        if bare and "error" not in bare:
            ratio = (r["cpu_s"] / polls) / (bare["cpu_s"] / max(bare["polls"], 1))
            checks.append(
                (f"CPU/poll <= {CPU_RATIO_TARGET}x bare", ratio <= CPU_RATIO_TARGET, f"{ratio:.2f}x")
            )
        per_wait = (r["rss_peak"] - r["rss_base"]) / n / 1024
        checks.append((f"memory < {KB_TARGET:.0f} KB/wait", per_wait < KB_TARGET, f"{per_wait:.1f} KB"))
        conn_ratio = r["connections"] / polls
        checks.append(
            (
                f"connections <= {CONN_RATIO_TARGET:.0%} of polls",
                conn_ratio <= CONN_RATIO_TARGET,
                f"{conn_ratio:.1%}",
            )
        )
        text = "; ".join(f"{name} {'PASS' if ok else 'FAIL'} ({value})" for name, ok, value in checks)
        lines.append(f"- {r['service']} N={n:,}: {text}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 3000, 10_000], help="concurrent waits")
    parser.add_argument("--services", nargs="+", choices=SERVICES, default=list(SERVICES))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS + EXTRA_VARIANTS, default=list(VARIANTS))
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument(
        "--rate",
        type=float,
        help="polls/s for every N instead of a fixed interval (interval = N / rate), e.g. 500: "
        "10,000 waits polling every 20 s, the load a triggerer sees; a fixed 2 s interval at "
        "10,000 waits is 5,000 polls/s, more than one Python loop can serve at any cost per poll",
    )
    parser.add_argument("--polls", type=int, default=5, help="polls each wait makes before its job ends")
    parser.add_argument("--fakes", type=int, default=1, help="fake processes (wait i uses fake i %% K)")
    parser.add_argument("--quick", action="store_true", help="N=200, 0.5 s interval, 3 polls")
    parser.add_argument("--profile", action="store_true", help="cProfile each child (slower; top 30)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.quick:
        args.n, args.poll_interval, args.polls = [200], 0.5, 3
    started = time.time()

    home = tempfile.mkdtemp(prefix="ingest-bench-triggers-")
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    fakes = [FakeProcess() for _ in range(args.fakes)]  # they start while this process imports
    try:
        import aiohttp  # noqa: F401

        from airflow_provider_ingest.testing.stack import connection_env

        for name in ("adobe_aep", "egain", "polaris", "qconnect", "zeta_alpha"):
            __import__(f"airflow_provider_ingest.triggers.{name}")
        for shard, fake in enumerate(fakes):
            info = fake.ready()
            conns = {f"bench_{service}_{shard}": conn for service, conn in info["connections"].items()}
            os.environ.update(connection_env(conns))
        warm_up(fakes, args.services)
        specs = {
            service: [
                request_spec(service, shard, fake.info["urls"][service]) for shard, fake in enumerate(fakes)
            ]
            for service in args.services
        }
        if threading.active_count() != 1:
            print(f"warning: threads alive before forking: {threading.enumerate()}", file=sys.stderr)
        print(
            f"# Triggers: {args.polls} polls per wait every "
            f"{f'N/{args.rate:g}' if args.rate else f'{args.poll_interval:g}'} s, starts spread over "
            f"one interval, {args.fakes} fake process(es), {os.cpu_count()} CPUs; "
            f"set-up {time.time() - started:.1f} s\n"
        )
        results = []
        tables = []
        for n in args.n:
            interval = n / args.rate if args.rate else args.poll_interval
            title = (
                f"N={n:,}: a poll every {interval:g} s per wait, {n / interval:,.0f} polls/s at steady state"
            )
            print(f"{title}\n\n{HEADER}", flush=True)
            tables.append(f"{title}\n\n{HEADER}")
            for service in args.services:
                for variant in args.variants:
                    result = run_one(service, variant, n, fakes, specs[service], args)
                    results.append(result)
                    print(row(result), flush=True)
                    tables[-1] += "\n" + row(result)
                    if result.get("errors"):
                        print(f"<!-- {service} {variant}: {result['errors']} -->", flush=True)
                    if "profile" in result:
                        print(f"```\n{result['profile']}```", flush=True)
            print()
        print("Targets (trigger rows):")
        print("\n".join(verdicts(results)))
        print(f"\ntotal {time.time() - started:.0f} s")
        write_table(
            "triggers",
            f"{args.polls} polls per wait, {args.fakes} fake process(es).\n\n"
            + "\n\n".join(tables)
            + "\n\nAgainst the targets (trigger rows):\n\n"
            + "\n".join(verdicts(results)),
        )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        for fake in fakes:
            fake.stop()


if __name__ == "__main__":
    main()
