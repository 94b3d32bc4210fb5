"""The fault matrix: every service's operator (and, for waits, its trigger) against its running fake
over real HTTP, with one fault injected per case, asserting the outcome and that no secret leaks.

One adapter per service says how to build a quick job, which calls start and poll it, how the
remote job is made to fail or is canceled, and which secrets to look for. ``CASES`` pairs each
service with the faults that apply to it; every case ends in the same secret check over the
captured logs, the XComs, return values, trigger events and exception texts.

Airflow's machinery is played by hand, faithfully to 3.3: ``execute`` with a context holding a
``task_state_store`` (the mixin's) and a task instance; a deferral runs its trigger in a fresh event
loop as the triggerer would, and a fresh operator resumes with ``execute_complete`` or, when the
deferral timed out, with ``resume_execution("__fail__", ...)`` as the task runner does.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import logging
import re
import sys
import threading
import time
import traceback
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from airflow.exceptions import AirflowException
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import AirflowFailException, TaskDeferralTimeout, TaskDeferred
from conftest import BUCKET, EGAIN_AWS_KEY, HANG_GUARD, wait_until

from airflow_provider_ingest.exceptions import IngestJobFailed, IngestStartUnknown
from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook
from airflow_provider_ingest.hooks.egain import EgainHook
from airflow_provider_ingest.hooks.polaris import PolarisHook
from airflow_provider_ingest.hooks.qconnect import QConnectHook
from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook
from airflow_provider_ingest.http import Timeouts, close_shared_sessions
from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.operators.egain import EgainStartImportOperator
from airflow_provider_ingest.operators.polaris import (
    PolarisEnsureS3ConnectionOperator,
    PolarisStartIngestionJobOperator,
)
from airflow_provider_ingest.operators.qconnect import QConnectImportQuickResponsesOperator
from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID
from airflow_provider_ingest.testing.stack import sample_events
from airflow_provider_ingest.testing.state import TaskStateStore

RETRY_AFTER = 1.0  # seconds, sent as the Retry-After header
POLL = 0.1
READ_TIMEOUT = 0.5  # the read timeout given to the waiting client in the slow-reply row
PREFIX = "fault-matrix"
KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
QC_AWS_KEY = ("AKIAFAULTMATRIX00001", "qcFaultMatrixSecret/Key+0123456789abcd")


# --- Airflow's side of a task run -------------------------------------------------------------------
class WorkerKilled(BaseException):
    """The worker process dies (SIGKILL): nothing after this point of the try runs."""


class DyingStore(TaskStateStore):
    """Dies right after the mixin persisted the job id: the worker is killed after the start call."""

    def __init__(self, die_on: str):
        super().__init__()
        self.die_on = die_on

    def set(self, key: str, value: Any) -> None:
        super().set(key, value)
        if key == self.die_on:
            raise WorkerKilled(key)


class DiesBeforeStoring(TaskStateStore):
    """Dies when the job id is about to be stored: the start call reached the service, the worker was
    killed before recording the id; only the intent written before the call is left."""

    def __init__(self, die_on: str):
        super().__init__()
        self.die_on = die_on

    def set(self, key: str, value: Any) -> None:
        if key == self.die_on:
            raise WorkerKilled(key)
        super().set(key, value)


class TaskInstance:
    """What the operators read from ``context["ti"]``; XComs are kept to be checked for secrets."""

    dag_id, run_id, task_id, map_index = "fault_matrix", "manual__fm", "ingest", -1

    def __init__(self, try_number: int = 1):
        self.try_number = try_number
        self.stats_tags: dict[str, str] = {}
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", map_indexes: Any = None) -> Any:
        return self.xcoms.get(key)


# --- service adapters --------------------------------------------------------------------------------
class Service:
    """How the matrix drives one service. ``start`` / ``status``: regexes of the start call's (POST)
    and the status call's (GET) paths; ``label``: how the service names itself in errors."""

    fixture: ClassVar[str]
    label: ClassVar[str]
    start: ClassVar[str]
    status: ClassVar[str]
    start_endpoint: ClassVar[str]  # a fragment of the start call's endpoint, as errors name it
    job_event: ClassVar[str] = "job_created"
    jobs_per_run: ClassVar[int] = 1  # what one successful start creates (Zeta Alpha: a document per object)
    failure_reason: ClassVar[str]  # the vendor's reason for the failing variant
    unexpected: ClassVar[str]  # a status value the service never documented
    hook_class: ClassVar[type] = type(None)
    can_cancel: ClassVar[bool] = True  # the API can cancel a started job
    token_auth: ClassVar[bool] = False  # OAuth tokens that expire

    def prepare(self, case: Case) -> None:
        """Per-test setup before any operator runs (the fake was just reset)."""

    def operator(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def failing(self, case: Case) -> dict[str, Any]:
        """Arrange for the next job to end failed; returns operator kwargs for it."""
        return {}

    def jobs(self, fake: Any) -> list[str]:
        return [e["id"] for e in fake.journal(event=self.job_event)]

    def live_jobs(self, fake: Any) -> list[str]:
        """The jobs that can still land data (AEP: not aborted)."""
        return self.jobs(fake)

    def cancel_remotely(self, fake: Any, job_id: Any) -> None:
        self.hook_class().cancel_job(job_id)

    def canceled(self, fake: Any, job_id: Any) -> bool:
        raise NotImplementedError

    def status_body(self, job_id: Any) -> Any:
        """A status reply carrying ``unexpected``."""
        raise NotImplementedError

    def secrets(self, fake: Any) -> list[str]:
        raise NotImplementedError

    def with_read_timeout(self, op: Any, read: float) -> None:
        op.hook = self.hook_class(op.conn_id, timeouts=Timeouts(connect=5.0, read=read))


class Polaris(Service):
    fixture, label = "polaris", "Imply Polaris"
    start, status, start_endpoint = r"/jobs$", r"/jobs/[^/]+$", "/v1/projects/test-project/jobs"
    failure_reason, unexpected = "table is locked by a compaction", "reindexing"
    hook_class = PolarisHook

    def prepare(self, case: Case) -> None:
        PolarisEnsureS3ConnectionOperator(
            task_id="conn", name="fm-conn", bucket=BUCKET, aws_assumed_role_arn=ROLE
        ).execute({})

    def operator(self, **kwargs: Any) -> Any:
        args = dict(
            task_id="ingest",
            table_name="events",
            connection_name="fm-conn",
            prefixes=[f"{PREFIX}/polaris/"],
            input_schema=[{"name": "timestamp", "dataType": "string"}],
            poll_interval=POLL,
        )
        return PolarisStartIngestionJobOperator(**{**args, **kwargs})

    def failing(self, case: Case) -> dict[str, Any]:
        case.fake.fail_next_job(self.failure_reason)
        return {}

    def canceled(self, fake: Any, job_id: Any) -> bool:
        return fake.jobs[job_id]["executionStatus"] == "canceled"

    def status_body(self, job_id: Any) -> Any:
        return {"id": job_id, "executionStatus": self.unexpected, "health": {"status": "ok"}}

    def secrets(self, fake: Any) -> list[str]:
        return [fake.api_key, base64.b64encode(f"{fake.api_key}:".encode()).decode()]


class Egain(Service):
    fixture, label = "egain", "eGain"
    start, status, start_endpoint = (
        r"/import/content$",
        r"/status$",
        "/knowledge/contentmgr/v4/import/content",
    )
    failure_reason, unexpected = "AccessDenied", "Paused"
    hook_class = EgainHook
    token_auth = True

    def prepare(self, case: Case) -> None:
        wrong = {"conn_type": "aws", "login": "AKIAWRONGWRONG000001", "password": "wrong-secret-wrong-1"}
        wrong["extra"] = {"endpoint_url": case.moto_s3, "region_name": "us-east-1"}
        case.monkeypatch.setenv("AIRFLOW_CONN_AWS_FM_WRONG", json.dumps(wrong))

    def operator(self, **kwargs: Any) -> Any:
        args = dict(
            task_id="ingest",
            s3_path=f"s3://{BUCKET}/{PREFIX}/egain/",
            aws_conn_id="aws_egain",
            poll_interval=POLL,
        )
        return EgainStartImportOperator(**{**args, **kwargs})

    def failing(self, case: Case) -> dict[str, Any]:
        return {"aws_conn_id": "aws_fm_wrong"}  # keys eGain may not read the folder with

    def canceled(self, fake: Any, job_id: Any) -> bool:
        return fake.jobs[job_id]["cancelled"]

    def status_body(self, job_id: Any) -> Any:
        return {"jobId": job_id, "jobType": "Import", "status": self.unexpected, "results": {}}

    def secrets(self, fake: Any) -> list[str]:
        return [fake.client_secret, *EGAIN_AWS_KEY, *fake.tokens]


class QConnect(Service):
    fixture, label = "qconnect", "Amazon Q in Connect"
    start, status, start_endpoint = r"/importJobs$", r"/importJobs/[^/]+$", "/importJobs"
    failure_reason, unexpected = "missing name", "QUEUED_FOR_REVIEW"
    hook_class = QConnectHook
    can_cancel = False  # import jobs cannot be canceled through the API (README)

    def prepare(self, case: Case) -> None:
        # Its own AWS connection: a distinctive key pair to look for, and a short read timeout.
        conn = {
            "conn_type": "aws",
            "login": QC_AWS_KEY[0],
            "password": QC_AWS_KEY[1],
            "extra": {
                "endpoint_url": case.moto_s3,
                "region_name": "us-east-1",
                "service_config": {"qconnect": {"endpoint_url": case.fake.url}},
                "config_kwargs": {"read_timeout": READ_TIMEOUT * 2, "connect_timeout": 5},
            },
        }
        case.monkeypatch.setenv("AIRFLOW_CONN_AWS_FM_QCONNECT", json.dumps(conn))

    def operator(self, **kwargs: Any) -> Any:
        args = dict(
            task_id="ingest",
            s3_key=f"s3://{BUCKET}/{PREFIX}/qconnect/good.csv",
            knowledge_base_id=KB,
            aws_conn_id="aws_fm_qconnect",
            poll_interval=POLL,
        )
        return QConnectImportQuickResponsesOperator(**{**args, **kwargs})

    def failing(self, case: Case) -> dict[str, Any]:
        return {"s3_key": f"s3://{BUCKET}/{PREFIX}/qconnect/bad.csv"}

    def canceled(self, fake: Any, job_id: Any) -> bool:
        return fake.jobs[job_id]["status"] not in ("START_IN_PROGRESS", "COMPLETE")

    def status_body(self, job_id: Any) -> Any:
        return {"importJob": {"importJobId": job_id, "knowledgeBaseId": KB, "status": self.unexpected}}

    def secrets(self, fake: Any) -> list[str]:
        signatures = [u["sig"] for u in fake.uploads.values()] + [j["_sig"] for j in fake.jobs.values()]
        return [*QC_AWS_KEY, "X-Amz-Signature", *signatures]

    def with_read_timeout(self, op: Any, read: float) -> None:
        pass  # the connection's config_kwargs already set botocore's read timeout


class Zeta(Service):
    """A "job" is the set of documents sent; "canceled remotely" is their deletion by someone else
    (indexing itself cannot be canceled)."""

    fixture, label = "zeta", "Zeta Alpha"
    start, status, start_endpoint = r"/document-batches$", r"/documents$", "/documents/document-batches"
    failure_reason, unexpected = "content_parse_error", "re_embedding"
    hook_class = ZetaAlphaHook
    jobs_per_run = 2  # every input folder holds two objects
    can_cancel = False  # indexing cannot be canceled (README); deleting documents is not canceling

    def operator(self, **kwargs: Any) -> Any:
        args = dict(
            task_id="ingest",
            s3_prefix=f"s3://{BUCKET}/{PREFIX}/zeta/good/",
            allow_access_rights=[{"name": "public"}],
            poll_interval=POLL,
        )
        return S3ToZetaAlphaOperator(**{**args, **kwargs})

    def failing(self, case: Case) -> dict[str, Any]:
        return {"s3_prefix": f"s3://{BUCKET}/{PREFIX}/zeta/corrupt/"}

    def jobs(self, fake: Any) -> list[str]:
        return sorted({key[2] for key in fake.documents})  # one document per object, whatever was resent

    def documents(self, fake: Any, job_id: Any) -> list[str]:
        """The documents of the job: those of its content ingestion job (the job id names no ids)."""
        job = job_id["ingestion_job_id"]
        return sorted(k[2] for k, d in fake.documents.items() if d.get("content_ingestion_job_id") == job)

    def cancel_remotely(self, fake: Any, job_id: Any) -> None:
        ZetaAlphaHook().delete_documents(self.documents(fake, job_id))

    def canceled(self, fake: Any, job_id: Any) -> bool:
        return any(fake.documents[("acme", "default", d)]["deleted"] for d in self.documents(fake, job_id))

    def status_body(self, job_id: Any) -> Any:
        from airflow_provider_ingest.hooks.zeta_alpha import s3_document_id

        names = ("a.txt", "b.md")  # the good folder's objects
        ids = [s3_document_id(BUCKET, f"{PREFIX}/zeta/good/{n}") for n in names]
        results = [{"document_id": d, "status": self.unexpected} for d in ids]
        return {"count": len(results), "page": 1, "page_size": 100, "results": results}

    def secrets(self, fake: Any) -> list[str]:
        return [fake.api_key]


class Adobe(Service):
    fixture, label = "adobe", "Adobe Experience Platform"
    start, status, start_endpoint = (
        r"/import/batches$",
        r"/catalog/batches/",
        "/data/foundation/import/batches",
    )
    job_event = "batch_created"
    failure_reason, unexpected = "unknown_col", "replicating"
    hook_class = AdobeAepHook
    token_auth = True

    def operator(self, **kwargs: Any) -> Any:
        args = dict(
            task_id="ingest",
            dataset_id=DATASET_ID,
            s3_prefix=f"s3://{BUCKET}/{PREFIX}/adobe/good/",
            poll_interval=POLL,
        )
        return S3ToAdobeAepOperator(**{**args, **kwargs})

    def failing(self, case: Case) -> dict[str, Any]:
        return {"s3_prefix": f"s3://{BUCKET}/{PREFIX}/adobe/bad/", "validate_schema": False}

    def canceled(self, fake: Any, job_id: Any) -> bool:
        return fake.batches[job_id]["status"] == "aborted"

    def live_jobs(self, fake: Any) -> list[str]:
        return [b for b in self.jobs(fake) if fake.batches[b]["status"] != "aborted"]

    def cancel_remotely(self, fake: Any, job_id: Any) -> None:
        AdobeAepHook().abort_batch(job_id)

    def status_body(self, job_id: Any) -> Any:
        return {job_id: {"id": job_id, "status": self.unexpected, "errors": []}}

    def secrets(self, fake: Any) -> list[str]:
        return [fake.client_secret, *fake.tokens]


ROLE = "arn:aws:iam::123456789012:role/fault-matrix"
SERVICES: dict[str, Service] = {s.fixture: s for s in (Polaris(), Egain(), QConnect(), Zeta(), Adobe())}


@pytest.fixture(scope="module")
def inputs(s3):
    """Small inputs for every service, written once."""
    csv_header = "timestamp,city,session,session_length,score,active"
    csv_rows = "\n".join(f"2026-03-01T00:0{i}:00Z,Oslo,s{i},{i},{i / 2},true" for i in range(5))
    objects = {
        "polaris/a.json": sample_events("2026-03-01", 10, seed=1),
        "egain/a.html": b"<p>reset your password</p>",
        "egain/b.md": b"# VPN",
        "qconnect/good.csv": b"name,content\nreset,Reset your password here\nvpn,Use the VPN\n",
        "qconnect/bad.csv": b"name,content\nok,fine\n,no name here\n",
        "zeta/good/a.txt": b"alpha notes",
        "zeta/good/b.md": b"# beta",
        "zeta/corrupt/a.txt": b"fine",
        "zeta/corrupt/b.txt": b"CORRUPT bytes",
        "adobe/good/a.csv": f"{csv_header}\n{csv_rows}\n".encode(),
        "adobe/bad/a.csv": f"{csv_header},unknown_col\n2026-03-01T00:00:00Z,Oslo,s,1,1.0,true,x\n".encode(),
    }
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=body)


# --- one case ----------------------------------------------------------------------------------------
class Case:
    """One (service, fault) run: the fake, Airflow's stand-ins, and every text that must hold no secret."""

    def __init__(self, service: Service, fake: Any, moto_s3: str, monkeypatch: Any, caplog: Any, capfd: Any):
        self.service, self.fake, self.moto_s3, self.monkeypatch = service, fake, moto_s3, monkeypatch
        self.caplog, self.capfd = caplog, capfd
        self.output = ""  # what the task printed: Airflow's structlog loggers write there, not to caplog
        self.kwargs: dict[str, Any] = {}
        self.store = TaskStateStore()
        self.ti = TaskInstance()
        self.texts: list[str] = []  # results, exceptions, events, XComs: checked for secrets
        self.trigger: Any = None
        self.loop_watch: LoopWatch | None = None  # see drive()

    # context and operators
    def context(self) -> dict[str, Any]:
        return {"ti": self.ti, "task_state_store": self.store}

    def op(self, **kwargs: Any) -> Any:
        return self.service.operator(**{**self.kwargs, **kwargs})

    def record(self, value: Any) -> None:
        if isinstance(value, BaseException):
            self.texts.append("".join(traceback.format_exception(value)))
        else:
            self.texts.append(json.dumps(value, default=str))

    # the fake
    def add_fault(self, call: str, **rule: Any) -> None:
        method, path = ("POST", self.service.start) if call == "start" else ("GET", self.service.status)
        self.fake.add_fault(method=method, path=path, **rule)

    def requests(self, call: str, since: int = 0) -> list[dict[str, Any]]:
        method, path = ("POST", self.service.start) if call == "start" else ("GET", self.service.status)
        return [
            r
            for r in self.fake.journal()[since:]
            if r.get("method") == method and re.search(path, r.get("path", ""))
        ]

    def jobs(self) -> list[str]:
        return self.service.jobs(self.fake)

    # when jobs move on: the fixtures' fakes move a job one state on per status read (``polls``);
    # a case that must act while the job still runs holds every job until it lets them finish
    def hold_jobs(self) -> None:
        self.fake.configure(clock="steps")

    def finish_jobs(self) -> None:
        self.fake.advance(steps=2)  # no fake has more than two states before the end

    def job_id(self) -> Any:
        """The job this task started, as the mixin stored it."""
        return self.store[self.op().external_id_key]

    # running
    def run(self, mode: str = "poke", during: Any = None, **kwargs: Any) -> Any:
        """Run the task once; ``deferred``: run its trigger (``during`` acts meanwhile) and resume
        it in a fresh operator, as the worker after the triggerer would."""
        op = self.op(deferrable=mode == "deferred", **kwargs)
        if mode == "slow-replies":
            self.service.with_read_timeout(op, READ_TIMEOUT)
        try:
            result = op.execute(self.context())
        except TaskDeferred as deferred:
            self.trigger = deferred.trigger
            event = self.drive(deferred.trigger, during)
            resumed = self.op(deferrable=True, **kwargs)
            result = getattr(resumed, deferred.method_name)(self.context(), event=event)
        self.record(result)
        return result

    def fails(self, mode: str = "poke", during: Any = None, **kwargs: Any) -> BaseException:
        # every failure the provider raises is an AirflowException (IngestInputError a ValueError
        # too); the callers assert the exact type and message
        with pytest.raises(AirflowException) as info:
            self.run(mode, during, **kwargs)
        self.record(info.value)
        return info.value

    def drive(self, trigger: Any, during: Any = None) -> dict[str, Any] | None:
        """Run a trigger to its first event in a fresh event loop, as the triggerer does. ``during``
        (async, given this case and the running task) may act meanwhile and may return a task that
        replaces the first; a trigger canceled on the way gives None. With ``loop_watch`` set, the
        blocking calls made on the loop's thread are recorded (see ``LoopWatch``)."""
        self.record(trigger.serialize())
        mark = len(self.fake.journal())

        async def scenario() -> dict[str, Any] | None:
            if self.loop_watch is not None:
                self.loop_watch.thread = threading.get_ident()
            task = asyncio.create_task(anext(trigger.run()))
            try:
                if during is not None:
                    task = await during(self, task, mark) or task
                return (await task).payload
            except asyncio.CancelledError:
                return None
            finally:
                await close_shared_sessions()

        try:
            event = asyncio.run(scenario())
        finally:
            if self.loop_watch is not None:
                self.loop_watch.thread = None
        self.record(event)
        return event

    async def polled(self, mark: int, count: int = 1) -> None:
        """Wait until the trigger has read the job's status ``count`` times since ``mark`` (bounded
        only against a hang)."""
        deadline = time.monotonic() + HANG_GUARD
        while len(self.requests("status", mark)) < count:
            assert time.monotonic() < deadline, "the trigger never polled"
            await asyncio.sleep(0.01)

    # logs
    def log_lines(self) -> list[tuple[str, str]]:
        """``(level, line)`` for every log line so far: stdlib records (caplog) and structlog's output."""
        captured = self.capfd.readouterr()
        self.output += captured.out + captured.err
        lines = [(r.levelname.lower(), r.getMessage()) for r in self.caplog.records]
        for line in self.output.splitlines():
            level = re.search(r"\[(debug|info|warning|error|critical)\s*\]", line)
            lines.append((level.group(1) if level else "", line))
        return lines

    # the secret check every case ends with
    def assert_no_secrets(self) -> None:
        logs = self.caplog.text + "\n".join(line for _, line in self.log_lines())
        texts = {
            "logs": logs,
            "xcoms": json.dumps(self.ti.xcoms, default=str),
            "results, events and errors": "\n".join(self.texts),
        }
        for secret in self.service.secrets(self.fake):
            for where, text in texts.items():
                assert secret not in text, f"a secret ({secret[:4]}...) reached the {where}"


# --- the faults ----------------------------------------------------------------------------------------
def throttled_twice(case: Case) -> None:
    """429 with Retry-After, twice, on the start call: succeeds after waiting each time; one job."""
    case.add_fault("start", action="status", status=429, retry_after=str(RETRY_AFTER), times=2)
    case.run()
    tries = case.requests("start")
    assert [t["status"] for t in tries[:2]] == [429, 429] and tries[2]["status"] < 300
    # When each try arrived, on the monotonic clock the client sleeps on (the fake runs in this
    # process): a lower bound only, which a busy machine can make longer, never shorter.
    gaps = [
        later["arrived"] - earlier["arrived"] for earlier, later in zip(tries[:2], tries[1:3], strict=True)
    ]
    assert all(gap >= RETRY_AFTER for gap in gaps), gaps
    assert len(case.jobs()) == case.service.jobs_per_run


def burst_5xx(case: Case) -> None:
    """503 then 502 on the start call, within the retry budget: succeeds; one job."""
    case.add_fault("start", action="status", status=503)
    case.add_fault("start", action="status", status=502)
    case.run()
    assert [t["status"] for t in case.requests("start")][:2] == [503, 502]
    assert len(case.jobs()) == case.service.jobs_per_run


def unavailable_beyond_budget(case: Case) -> None:
    """503 on every try of the start call: fails naming the service, the status and the endpoint.
    (A short Retry-After keeps the five tries quick; the budget is the default one.)"""
    case.add_fault("start", action="status", status=503, retry_after="0.1", times=100)
    error = case.fails()
    text = str(error)
    assert case.service.label in text and "503" in text and case.service.start_endpoint in text, text
    assert len(case.requests("start")) == 5  # the whole budget, then stop
    assert case.jobs() == []


def reset_on_start(case: Case) -> None:
    """The server acts on the start call, then closes the connection before replying."""
    case.add_fault("start", action="drop_after")
    service = case.service
    if isinstance(service, Egain):
        # No idempotency key and no job list: the POST is not resent, and the task fails without
        # Airflow's retries, naming the folder and the time; a retry fails the same way.
        error = case.fails()
        assert isinstance(error, IngestStartUnknown) and isinstance(error, AirflowFailException)
        assert service.label in str(error) and "s3://" in str(error) and "POST" in str(error), str(error)
        error = case.fails()
        assert isinstance(error, IngestStartUnknown) and "earlier try" in str(error)
        assert len(case.requests("start")) == 1 and len(case.jobs()) == 1
        return
    if isinstance(service, Adobe):
        # Catalog lists the dataset's batches: the one the lost reply named is found and aborted
        # (whether it is empty cannot be seen), then one new batch is made and completed.
        case.run()
        lost, made = case.jobs()
        assert case.fake.batches[lost]["status"] == "aborted" and case.job_id() == made
        assert len(case.requests("start")) == 2 and len(case.fake.journal(event="batch_completed")) == 1
        return
    case.run()
    assert len(case.jobs()) == service.jobs_per_run
    if isinstance(service, Polaris):  # no idempotency key: the job it created was found and adopted
        assert len(case.requests("start")) == 1
    else:  # resent: Q in Connect's clientToken returns the same job; Zeta's batches are upserts by id
        assert len(case.requests("start")) == 2


def slow_reply(case: Case) -> None:
    """A status reply slower than the read timeout: retried, then succeeds; one job."""
    case.add_fault("status", action="delay", seconds=READ_TIMEOUT * 3)
    case.run("slow-replies")
    # the delayed request is journaled once its delay is over
    wait_until(lambda: any(p["fault"] == "delay" for p in case.requests("status")), "a delayed status call")
    assert len(case.jobs()) == case.service.jobs_per_run


def token_expires_mid_wait(case: Case) -> None:
    """Every token expires while the trigger waits: renewed once, the wait goes on to success."""
    case.hold_jobs()

    async def expire(case: Case, task: Any, mark: int) -> None:
        await case.polled(mark)
        case.fake.expire_tokens()
        case.finish_jobs()

    case.run("deferred", during=expire)
    assert len(case.fake.journal(event="token_issued")) == 2  # the worker's, then one renewal
    assert len(case.jobs()) == 1


def job_fails(case: Case, mode: str) -> None:
    """The job ends failed: the task fails with the vendor's reason."""
    case.kwargs = case.service.failing(case)
    error = case.fails(mode)
    assert isinstance(error, IngestJobFailed) and case.service.failure_reason in str(error), str(error)
    assert len(case.jobs()) == case.service.jobs_per_run


def canceled_remotely(case: Case, mode: str) -> None:
    """Someone cancels the job (Zeta Alpha: deletes the documents) while the task waits: it fails."""
    service = case.service
    case.hold_jobs()  # the job runs until canceled
    case.kwargs = {"timeout": HANG_GUARD}  # the wait ends even if the cancel never comes
    if isinstance(service, Zeta):  # a deleted document fails the wait at once, not after the grace
        case.kwargs["not_found_grace"] = 0  # given to documents the index does not show yet

    def cancel() -> None:
        key = case.op().external_id_key  # the job id, not the intent written before the start call
        wait_until(lambda: case.store.get(key), "the task stored its job id")
        service.cancel_remotely(case.fake, case.job_id())

    if mode == "deferred":

        async def during(case: Case, task: Any, mark: int) -> None:
            await case.polled(mark)
            await asyncio.to_thread(cancel)

        error = case.fails(mode, during=during)
    else:
        failed: list[BaseException] = []

        def cancel_or_record() -> None:
            try:
                cancel()
            except BaseException as exc:  # re-raised below, in the test's thread
                failed.append(exc)

        canceller = threading.Thread(target=cancel_or_record)
        canceller.start()
        error = case.fails(mode)
        canceller.join()
        if failed:
            raise failed[0]
    assert isinstance(error, IngestJobFailed), error
    assert "did not finish" not in str(error), error  # ended by the cancel, not the guard's timeout
    assert service.canceled(case.fake, case.job_id())


def execution_timeout_while_deferred(case: Case) -> None:
    """``execution_timeout`` passes while deferred. Airflow 3.3: the scheduler fails the deferred task,
    the triggerer cancels the trigger *without* ``on_kill`` (that runs only on a user's action), and a
    worker resumes the task with ``__fail__``, which raises TaskDeferralTimeout. The job must be canceled
    where the API allows; Q in Connect import jobs and Zeta Alpha indexing cannot be: nothing is."""
    service = case.service
    case.hold_jobs()  # still running when the timeout fires
    op = case.op(deferrable=True, execution_timeout=timedelta(seconds=1))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(case.context())

    async def trigger_timeout(case: Case, task: Any, mark: int) -> None:
        await case.polled(mark)
        task.cancel()  # a timeout: the triggerer does not call on_kill

    assert case.drive(deferred.value.trigger, during=trigger_timeout) is None
    resumed = case.op(deferrable=True, execution_timeout=timedelta(seconds=1))
    next_kwargs = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(TaskDeferralTimeout) as info:
        resumed.resume_execution(TRIGGER_FAIL_REPR, next_kwargs, case.context())
    case.record(info.value)
    job_id = case.job_id()
    if service.can_cancel:
        assert service.canceled(case.fake, job_id)
    else:  # nothing to cancel through the API: the work is left to finish, and it does
        assert not service.canceled(case.fake, job_id)
        case.finish_jobs()
        case.kwargs = {}
        assert case.run() is not None  # a later run re-attaches to the finished job


def worker_killed_after_start(case: Case) -> None:
    """The worker dies right after the start call (the job id is stored); the retry re-attaches."""
    case.store = DyingStore(die_on=case.op().external_id_key)
    with pytest.raises(WorkerKilled):
        case.op().execute(case.context())
    first = case.jobs()
    case.store = TaskStateStore(case.store)  # what task_state_store holds for the next try
    case.ti = TaskInstance(try_number=2)  # a retry starts with its XComs cleared
    case.run()
    assert case.jobs() == first and len(first) == case.service.jobs_per_run


def triggerer_restarted(case: Case) -> None:
    """The triggerer restarts mid-wait: the trigger is rebuilt from its serialized form (classpath
    and kwargs through JSON) and continues the same job to success, with the same deadline."""
    case.hold_jobs()  # the job still runs when the triggerer restarts
    rebuilt: list[Any] = []

    async def restart(case: Case, task: Any, mark: int) -> Any:
        await case.polled(mark)
        task.cancel()  # the triggerer shuts down: no on_kill
        await asyncio.gather(task, return_exceptions=True)
        classpath, kwargs = case.trigger.serialize()
        module, name = classpath.rsplit(".", 1)
        trigger = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
        assert trigger.serialize() == (classpath, kwargs)  # same job, same absolute deadline
        rebuilt.append(trigger)
        case.finish_jobs()
        return asyncio.create_task(anext(trigger.run()))

    case.run("deferred", during=restart)
    assert rebuilt and len(case.jobs()) == case.service.jobs_per_run
    assert not case.service.canceled(case.fake, case.job_id())


def server_restarted(case: Case) -> None:
    """The vendor's server goes away mid-wait and comes back on the same port with its state: the
    trigger's wait survives the gap and ends in success."""
    case.hold_jobs()  # the job still runs while the server is away
    fake = case.fake
    port = int(fake.url.rsplit(":", 1)[1])

    def bounce() -> None:
        fake.stop()
        time.sleep(1.0)  # how long the server is away (not a synchronisation): polls meanwhile fail
        fake.start(port=port)

    async def during(case: Case, task: Any, mark: int) -> None:
        await case.polled(mark)
        await asyncio.to_thread(bounce)
        case.finish_jobs()

    case.run("deferred", during=during)
    assert fake.url.endswith(f":{port}")
    assert len(case.jobs()) == case.service.jobs_per_run


def malformed_status(case: Case, mode: str) -> None:
    """A status reply that is not JSON: the wait goes on (a GET is safe to repeat) and succeeds."""
    case.add_fault("status", action="malformed")
    case.run(mode)
    polls = case.requests("status")
    assert polls[0]["fault"] == "malformed" and len(polls) < 100  # no crash loop
    assert len(case.jobs()) == case.service.jobs_per_run


def unexpected_status(case: Case) -> None:
    """A status value the service never documented, twice: the wait goes on, naming it in one
    warning, then succeeds."""

    async def during(case: Case, task: Any, mark: int) -> None:
        case.add_fault("status", action="body", body=case.service.status_body(case.job_id()), times=2)

    case.run("deferred", during=during)
    assert [p["fault"] for p in case.requests("status")[:2]] == ["body", "body"]
    lines = [(level, line) for level, line in case.log_lines() if case.service.unexpected in line]
    assert len([line for level, line in lines if level == "warning"]) == 1, lines


def garbled_start_reply(case: Case) -> None:
    """The server acts on the start call, and its 2xx reply cannot be read: the job is found (Polaris,
    AEP: the lost batch aborted and one new one made) or the same request is sent again (Q in
    Connect's clientToken, Zeta Alpha's upserts); eGain, which can neither, fails without retrying.
    Never two live jobs."""
    case.add_fault("start", action="malformed_after")
    service = case.service
    if isinstance(service, Egain):
        error = case.fails()
        assert isinstance(error, IngestStartUnknown) and isinstance(error, AirflowFailException), error
        assert len(case.jobs()) == 1 and len(case.requests("start")) == 1
        return
    case.run()
    assert len(service.live_jobs(case.fake)) == service.jobs_per_run


def killed_during_start(case: Case) -> None:
    """The worker dies after the start call reached the service, before the job id was stored: the
    retry adopts the job or sends the same request again; eGain's retry fails without a second
    start. Never two live jobs."""
    service = case.service
    case.store = DiesBeforeStoring(die_on=case.op().external_id_key)
    with pytest.raises(WorkerKilled):
        case.op().execute(case.context())
    starts = len(case.requests("start"))
    case.store = TaskStateStore(case.store)  # what task_state_store holds for the next try
    case.ti = TaskInstance(try_number=2)
    if isinstance(service, Egain):
        error = case.fails()
        assert isinstance(error, IngestStartUnknown) and "earlier try" in str(error), error
        assert len(case.requests("start")) == starts and len(case.jobs()) == 1
        return
    case.run()
    assert len(service.live_jobs(case.fake)) == service.jobs_per_run


def status_not_an_object(case: Case, mode: str) -> None:
    """A 2xx status reply that is ``null``: a malformed reply, read again, and the wait goes on to
    success (never an unexpected status '' until the deadline, nor an AttributeError)."""
    case.add_fault("status", action="body", body=None)
    case.run(mode)
    assert case.requests("status")[0]["fault"] == "body"
    assert len(case.service.live_jobs(case.fake)) == case.service.jobs_per_run


FAULTS: dict[str, Any] = {
    "429-retry-after-x2": throttled_twice,
    "503-502-burst": burst_5xx,
    "503-beyond-budget": unavailable_beyond_budget,
    "reset-on-start": reset_on_start,
    "slow-reply": slow_reply,
    "token-expires-mid-wait": token_expires_mid_wait,
    "job-failed-poke": lambda case: job_fails(case, "poke"),
    "job-failed-deferred": lambda case: job_fails(case, "deferred"),
    "canceled-remotely-poke": lambda case: canceled_remotely(case, "poke"),
    "canceled-remotely-deferred": lambda case: canceled_remotely(case, "deferred"),
    "execution-timeout-deferred": execution_timeout_while_deferred,
    "worker-killed-after-start": worker_killed_after_start,
    "triggerer-restarted": triggerer_restarted,
    "server-restarted": server_restarted,
    "malformed-status-poke": lambda case: malformed_status(case, "poke"),
    "malformed-status-deferred": lambda case: malformed_status(case, "deferred"),
    "unexpected-status": unexpected_status,
    "garbled-start-reply": garbled_start_reply,
    "killed-during-start": killed_during_start,
    "status-null-poke": lambda case: status_not_an_object(case, "poke"),
    "status-null-deferred": lambda case: status_not_an_object(case, "deferred"),
}


def applies(service: Service, fault: str) -> bool:
    if fault == "token-expires-mid-wait":
        return service.token_auth
    if fault.startswith("canceled-remotely"):
        return not isinstance(service, QConnect)  # no cancel in the API, and nothing else ends a job
    return True


CASES = [(s, f) for s in SERVICES for f in FAULTS if applies(SERVICES[s], f)]


@pytest.mark.parametrize(("service", "fault"), CASES)
def test_fault(service, fault, request, inputs, moto_s3, monkeypatch, caplog, capfd):
    caplog.set_level(logging.INFO)  # Airflow's default task log level
    adapter = SERVICES[service]
    case = Case(adapter, request.getfixturevalue(adapter.fixture), moto_s3, monkeypatch, caplog, capfd)
    adapter.prepare(case)
    FAULTS[fault](case)
    case.assert_no_secrets()


class LoopWatch:
    """Records the blocking calls made on one thread (the event loop's) while armed: a file opened,
    a sleep, a blocking socket connected, a subprocess started. Python's audit hooks report each
    as it happens, so this is a count of calls, not a timing: it holds on a busy 2-core runner,
    where a wall-clock limit on each loop step (asyncio's slow-callback warning) did not."""

    BLOCKING = {"open", "time.sleep", "socket.connect", "subprocess.Popen", "os.system"}

    def __init__(self) -> None:
        self.thread: int | None = None
        self.calls: list[tuple[str, str]] = []

    def __call__(self, event: str, args: tuple) -> None:
        if self.thread is None or event not in self.BLOCKING or threading.get_ident() != self.thread:
            return
        if event == "socket.connect" and not args[0].getblocking():
            return  # the loop's own non-blocking connects
        if event == "time.sleep" and not args[0]:
            return  # sleep(0): a yield, not a wait
        if event == "open" and str(args[0]).startswith("/dev/"):
            return
        self.calls.append((event, repr(args[0])[:200]))


LOOP_WATCH = LoopWatch()
sys.addaudithook(LOOP_WATCH)  # audit hooks cannot be removed: it acts only while armed


@pytest.mark.parametrize("service", list(SERVICES))
def test_trigger_never_blocks_the_loop(service, request, inputs, moto_s3, monkeypatch, caplog, capfd):
    """Every trigger, from its connection lookup and token to the last poll, makes no blocking call
    on the event loop's thread (files, sleeps, blocking sockets, subprocesses): the triggerer
    shares its loop with thousands of other waits."""
    adapter = SERVICES[service]
    case = Case(adapter, request.getfixturevalue(adapter.fixture), moto_s3, monkeypatch, caplog, capfd)
    adapter.prepare(case)
    case.fake.configure(reads_per_step=2)  # each state lasts two polls: the trigger polls at least twice
    case.loop_watch = LOOP_WATCH
    LOOP_WATCH.calls.clear()
    case.run("deferred")
    assert case.trigger is not None and len(case.requests("status")) >= 2  # it waited, polling
    assert LOOP_WATCH.calls == [], "\n".join(map(str, LOOP_WATCH.calls))
    case.assert_no_secrets()


def test_first_aws_client_of_a_process_is_built_off_the_loop(qconnect):
    """In a fresh process (as a triggerer starts), the first aiobotocore client reads botocore's
    models from disk: that must happen in a thread, not on the event loop. Counted as files opened
    on the loop's thread (an audit hook), not timed: a slow-callback limit failed on a busy runner."""
    import subprocess
    import sys

    script = """
import asyncio, json, sys, threading
from airflow_provider_ingest.hooks.qconnect import QConnectHook

opened, watching = [], []

def watch(event, args):
    if watching and event == "open" and threading.get_ident() == watching[0]:
        if not str(args[0]).startswith("/dev/"):
            opened.append(str(args[0]))

sys.addaudithook(watch)

async def main():
    watching.append(threading.get_ident())
    try:
        async with await QConnectHook().get_async_conn() as client:
            print("client", client.meta.service_model.service_name)
    finally:
        watching.clear()

asyncio.run(main())
print("opened", json.dumps(opened))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "client qconnect" in done.stdout
    opened = json.loads(done.stdout.split("opened ", 1)[1])
    assert opened == [], opened[:20]
