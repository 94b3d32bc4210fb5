"""The example DAGs: they import cleanly, have no cycles, and run end to end against the fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from airflow_provider_ingest.testing.stack import seed_demo_data

EXAMPLE_DAGS = ROOT / "dags"


def test_example_dags_import_without_errors_or_cycles():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert {"s3_to_table", "s3_to_knowledge_base"} <= set(bag.dag_ids)
    for dag in bag.dags.values():
        dag.topological_sort()  # raises on a cycle
        assert dag.doc_md and dag.params, dag.dag_id
        assert all(p.description for p in dag.params.values()), dag.dag_id


def airflow_dags_test(dag_id: str, logical_date: str, airflow_db: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS)}
    return subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id, logical_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_airflow_dags_test_s3_to_table(airflow_db, polaris, adobe, s3):
    day = "2026-02-03"
    seed_demo_data(s3, day)
    result = airflow_dags_test("s3_to_table", day, airflow_db)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "state=success" in output
    assert "'rows_ingested': 300" in output
    assert len(polaris.journal(event="job_created")) == 1
    assert polaris.api_key not in output
    assert deferred(polaris), "the wait must go through the trigger (aiohttp), not a worker poll"
    assert "'rows': 300" in output and len(adobe.journal(event="batch_created")) == 1
    assert [b["status"] for b in adobe.batches.values()] == ["success"] and deferred(adobe)
    assert adobe.client_secret not in output


def test_airflow_dags_test_s3_to_knowledge_base(airflow_db, egain, qconnect, zeta, s3):
    day = "2026-02-04"
    seed_demo_data(s3, day)
    result = airflow_dags_test("s3_to_knowledge_base", day, airflow_db)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "state=success" in output
    assert "'status': 'Successful'" in output and "'successful': 2" in output
    assert len(egain.journal(event="job_created")) == 1
    assert deferred(egain)
    assert len(qconnect.journal(event="job_created")) == 1
    assert len(qconnect.journal(event="upload_received")) == 1
    assert deferred(qconnect), "the wait must go through the trigger's signed aiohttp polls"
    assert "X-Amz-Signature" not in output  # the presigned upload URL never reaches a log
    assert "'zeta_alpha': {'sent': 2, 'skipped': 0, 'deleted': 0, 'statuses': {'indexed': 2}}" in output
    assert deferred(zeta) and zeta.api_key not in output
    for secret in (egain.client_secret, *egain.tokens):
        assert secret not in output


def deferred(fake) -> bool:
    """Whether a status poll came from the async client, i.e. from a trigger."""
    return any("aiohttp" in r.get("agent", "") for r in fake.journal() if r.get("method") == "GET")


def test_parsing_a_dag_file_touches_no_network():
    """benchmarks/dag_parse.py runs each file with sockets refused (and reports the parse time)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dag_parse.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert {Path(r["file"]).name for r in reports} == {"s3_to_table.py", "s3_to_knowledge_base.py"}
    for report in reports:
        assert report["network"] == [], report
