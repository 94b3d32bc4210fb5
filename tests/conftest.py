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
    return EgainFake(s3_endpoint_url=moto_s3, aws_keys=aws_keys)


polaris_server, polaris = fake_fixtures(
    "polaris", lambda s3: PolarisFake(s3_endpoint_url=s3, pending_seconds=0.2, running_seconds=0.4)
)
egain_server, egain = fake_fixtures("egain", make_egain)
qconnect_server, qconnect = fake_fixtures(
    "qconnect", lambda s3: QConnectFake(s3_endpoint_url=s3, processing_seconds=0.3)
)
zeta_server, zeta = fake_fixtures(
    "zeta", lambda s3: ZetaAlphaFake(s3_endpoint_url=s3, ingesting_seconds=0.1, indexing_seconds=0.2)
)
adobe_server, adobe = fake_fixtures("adobe", lambda s3: AdobeAepFake(s3_endpoint_url=s3, staging_seconds=0.3))


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


def run_trigger(trigger, on_kill_after: float | None = None) -> dict:
    """Run a trigger to its first event in a fresh event loop, as the triggerer would; optionally
    kill it (``on_kill``) after some seconds. Returns the event payload."""
    import asyncio

    from airflow_provider_ingest.http import close_shared_sessions

    async def scenario():
        waiting = asyncio.create_task(anext(trigger.run()))
        if on_kill_after is not None:
            await asyncio.sleep(on_kill_after)
            await trigger.on_kill()
        event = await waiting
        await close_shared_sessions()
        return event.payload

    return asyncio.run(scenario())


def kill_while_running(operator, started=lambda op: op.job_id is not None) -> Exception | None:
    """Run ``operator.execute`` in a worker thread, call ``on_kill`` once its job has started
    (``started(operator)``; as Airflow does when a task is killed), and return what ``execute``
    raised."""
    import threading
    import time

    raised: list[Exception] = []

    def work():
        try:
            operator.execute({})
        except Exception as exc:
            raised.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    deadline = time.time() + 10
    while not started(operator) and time.time() < deadline:
        time.sleep(0.05)
    operator.on_kill()
    worker.join(10)
    return raised[0] if raised else None
