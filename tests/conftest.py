"""Test harness: an isolated AIRFLOW_HOME on SQLite, moto's S3 server and the vendor fakes.

Airflow reads its configuration at import, so the environment is set here before anything
imports airflow. Connections reach Airflow as AIRFLOW_CONN_* env vars, as users give them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-ingest-tests-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "tests" / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)

from airflow_provider_ingest.auth import clear_token_cache  # noqa: E402
from airflow_provider_ingest.testing import (  # noqa: E402
    AdobeAepFake,
    EgainFake,
    PolarisFake,
    QConnectFake,
    ZetaAlphaFake,
)
from airflow_provider_ingest.testing.stack import aws_connection, start_moto_s3  # noqa: E402

BUCKET = "ingest-test"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB, for tests that run DAGs with ``dag.test``."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=300
    )
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def moto_s3():
    """moto's S3 server on a free port, reachable through the ``aws_default`` connection."""
    server, url = start_moto_s3()
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(aws_connection(url))
    yield url
    server.stop()


@pytest.fixture(scope="session")
def s3(moto_s3):
    import boto3

    client = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def fake_fixtures(name: str, make):
    """A session-scoped running fake ``<name>_server`` whose Airflow connection is in the
    environment, and a per-test ``<name>`` fixture that hands it over fresh (no state, faults or
    cached tokens)."""

    @pytest.fixture(scope="session", name=f"{name}_server")
    def server(moto_s3):
        with make(moto_s3) as fake:
            if fake.conn_id:
                os.environ[f"AIRFLOW_CONN_{fake.conn_id.upper()}"] = json.dumps(fake.airflow_connection())
            if service_config := fake.aws_service_config():  # an AWS service: via aws_default
                os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(aws_connection(moto_s3, service_config))
            yield fake

    @pytest.fixture(name=name)
    def fresh(request):
        fake = request.getfixturevalue(f"{name}_server")
        fake.reset()
        clear_token_cache()
        yield fake
        fake.clear_faults()

    return server, fresh


# A distinctive AWS key pair for services that receive AWS keys (eGain): masking tests grep for it.
EGAIN_AWS_KEY = ("AKIAEGAINTEST0000001", "egainSecret/Key+0123456789abcdefXYZ")


def make_egain(moto_s3):
    os.environ["AIRFLOW_CONN_AWS_EGAIN"] = json.dumps(
        {
            "conn_type": "aws",
            "login": EGAIN_AWS_KEY[0],
            "password": EGAIN_AWS_KEY[1],
            "extra": {"endpoint_url": moto_s3, "region_name": "us-east-1"},
        }
    )
    aws_keys = dict([EGAIN_AWS_KEY, ("testing", "testing")])  # the second is aws_default's
    return EgainFake(s3_endpoint_url=moto_s3, aws_keys=aws_keys, clock="polls")


# Every fake moves its jobs on by status reads (``clock="polls"``), never by wall time: a test sees
# the same states in the same order on an idle laptop and on a loaded 2-core runner. A test that
# needs a job to stay put until it acts sets ``clock="steps"`` and calls ``advance()``.
# (``reset()`` between tests puts these settings back.)
polaris_server, polaris = fake_fixtures("polaris", lambda s3: PolarisFake(s3_endpoint_url=s3, clock="polls"))
egain_server, egain = fake_fixtures("egain", make_egain)
qconnect_server, qconnect = fake_fixtures(
    "qconnect", lambda s3: QConnectFake(s3_endpoint_url=s3, clock="polls")
)
zeta_server, zeta = fake_fixtures("zeta", lambda s3: ZetaAlphaFake(s3_endpoint_url=s3, clock="polls"))
adobe_server, adobe = fake_fixtures("adobe", lambda s3: AdobeAepFake(s3_endpoint_url=s3, clock="polls"))


@pytest.fixture(scope="session")
def proxy_server():
    """A local forward proxy that journals what it forwarded (``testing.proxy.ForwardProxy``)."""
    from airflow_provider_ingest.testing.proxy import ForwardProxy

    with ForwardProxy() as proxy:
        yield proxy


@pytest.fixture
def proxy(proxy_server):
    """The forward proxy with an empty journal."""
    proxy_server.clear()
    return proxy_server


def qconnect_client(qconnect):
    """A plain boto3 ``qconnect`` client on the Q in Connect fake (what a user's own code would use)."""
    import boto3

    return boto3.client(
        "qconnect",
        endpoint_url=qconnect.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


# How long a test waits for something that must happen (a job started, a poll made) before it
# fails: a guard against hangs only, never a timing the test depends on.
HANG_GUARD = 60.0


def run_dag(dag_id: str, conf: dict | None = None):
    """Run a DAG from tests/dags in-process as ``airflow dags test`` does; return (run, {task: ti})."""
    from airflow.utils.cli import get_bagged_dag
    from airflow.utils.session import create_session

    dag = get_bagged_dag(bundle_names=None, dag_id=dag_id)
    run = dag.test(run_conf=conf or {})
    from airflow.models import TaskInstance

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        return run, {ti.task_id: ti for ti in tis}


def wait_until(condition, what: str, timeout: float = HANG_GUARD) -> None:
    """Wait until ``condition()`` holds (a job id set, a journal entry written); fail naming
    ``what`` if it has not after ``timeout`` seconds, which only guards against a hang."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def run_trigger(trigger, kill_when=None) -> dict:
    """Run a trigger to its first event in a fresh event loop, as the triggerer would. With
    ``kill_when`` (a condition, e.g. "the fake has answered a poll"), call ``on_kill`` as soon as it
    holds while the trigger waits. Returns the event payload."""
    import asyncio
    import time

    from airflow_provider_ingest.http import close_shared_sessions

    async def scenario():
        waiting = asyncio.create_task(anext(trigger.run()))
        if kill_when is not None:
            deadline = time.monotonic() + HANG_GUARD
            while not kill_when():
                assert not waiting.done(), f"the trigger ended before it could be killed: {waiting.result()}"
                assert time.monotonic() < deadline, "the kill condition never held"
                await asyncio.sleep(0.01)
            await trigger.on_kill()
        event = await waiting
        await close_shared_sessions()
        return event.payload

    return asyncio.run(scenario())


def kill_while_running(operator, started=lambda op: op.job_id is not None, after_kill=None) -> BaseException:
    """Run ``operator.execute`` in a worker thread, call ``on_kill`` (as Airflow does when a task is
    killed) once ``started(operator)`` holds (by default: it knows its job's id), then
    ``after_kill()`` if given, and return what ``execute`` raised. The test fails if the task ends
    before it could be killed, or does not end after it; the waits are bounded only against hangs."""
    import threading

    raised: list[BaseException] = []

    def work():
        try:
            operator.execute({})
        except BaseException as exc:  # handed to the test, which asserts on it
            raised.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()

    def ready() -> bool:
        assert worker.is_alive() or started(operator), f"the task ended before it started: {raised}"
        return started(operator)

    wait_until(ready, "the task started its job")
    operator.on_kill()
    if after_kill is not None:
        after_kill()
    worker.join(HANG_GUARD)
    assert not worker.is_alive(), "the task kept running after on_kill"
    assert raised, "the killed task returned as if it had succeeded"
    return raised[0]
