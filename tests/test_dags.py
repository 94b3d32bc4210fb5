"""The example DAGs: they import cleanly, have no cycles, and run end to end against the fakes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from airflow_provider_ingest.testing.stack import seed_demo_data

EXAMPLE_DAGS = ROOT / "dags"


def test_example_dags_import_without_errors_or_cycles():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert {"s3_to_table", "s3_to_knowledge_base", "on_table_loaded"} <= set(bag.dag_ids)
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
    landed = re.search(r"'zeta_alpha': \{'ingestion_job_id': '[^']+', (.*?\}\})", output)
    assert landed, output[output.find("Landed:") :][:600]
    assert landed.group(1) == "'sent': 2, 'skipped': 0, 'deleted': 0, 'statuses': {'indexed': 2}}"
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
    assert {Path(r["file"]).name for r in reports} == {
        "s3_to_table.py",
        "s3_to_knowledge_base.py",
        "on_table_loaded.py",
        "s3_backfill.py",
    }
    for report in reports:
        assert report["network"] == [], report


def example_dag(dag_id: str):
    """An example DAG, parsed and serialized to the metadata DB as the dag-processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = BundleDagBag(dag_folder=str(EXAMPLE_DAGS), bundle_path=str(EXAMPLE_DAGS), bundle_name="dags-folder")
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags[dag_id]


def task_states(run) -> dict[str, list[str]]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        states: dict[str, list[str]] = {}
        for ti in sorted(tis, key=lambda ti: ti.map_index):
            states.setdefault(ti.task_id, []).append(str(ti.state))
        return states


SWITCHES = {
    "s3_to_table": {"polaris": ["polaris_ensure_connection", "polaris_ingest"], "adobe": ["adobe_ingest"]},
    "s3_to_knowledge_base": {
        "egain": ["egain_import"],
        "qconnect": ["qconnect_import"],
        "zeta_alpha": ["zeta_alpha_ingest"],
    },
}


@pytest.mark.parametrize("dag_id", list(SWITCHES))
def test_every_run_switch_skips_its_branch(airflow_db, dag_id):
    """Every ``run_<service>`` switch off: each branch is skipped, and the summary still runs."""
    switches = SWITCHES[dag_id]
    run = example_dag(dag_id).test(run_conf={f"run_{name}": False for name in switches})
    states = task_states(run)
    assert str(run.state) == "success", states
    for name, tasks in switches.items():
        assert states[f"{name}_enabled"] == ["success"]
        for task_id in tasks:
            assert states[task_id] == ["skipped"], (task_id, states)
    assert states["summarize"] == ["success"]


def test_form_settings_reach_the_services(airflow_db, polaris, adobe, zeta, s3):
    """Per-run settings from the trigger form arrive at the services: Polaris's ingestion mode, AEP's
    small-file limit and chunk size (1 KiB forces the chunked upload), Zeta Alpha's content mode
    and access rights."""
    day = "2026-02-20"
    seed_demo_data(s3, day)
    conf = {
        "prefix": f"events/{day}/",
        "polaris_ingestion_mode": "replace",
        "aep_small_file_max_bytes": 1024,
        "aep_chunk_size": 1024,
    }
    run = example_dag("s3_to_table").test(run_conf=conf)
    assert str(run.state) == "success", task_states(run)
    assert [j["ingestionMode"] for j in polaris.jobs.values()] == ["replace"]
    patches = [r for r in adobe.journal() if r.get("method") == "PATCH" and "/files/" in r["path"]]
    assert len(patches) > 3  # every file in 1 KiB chunks
    conf = {
        "prefix": f"knowledge/{day}/",
        "run_egain": False,
        "run_qconnect": False,
        "zeta_alpha_content_mode": "url",
        "zeta_alpha_access_rights": ["team-a", "team-b"],
    }
    run = example_dag("s3_to_knowledge_base").test(run_conf=conf)
    assert str(run.state) == "success", task_states(run)
    documents = list(zeta.documents.values())
    assert len(documents) == 2
    for document in documents:
        assert [r["name"] for r in document["allow_access_rights"]] == ["team-a", "team-b"]
        assert "url" in document["document_content"]["from_"]  # a presigned URL, not the bytes


def test_backfill_fans_out_one_job_per_day_and_each_index_owns_its_job(airflow_db, polaris, adobe, s3):
    """Three day-folders: three Polaris jobs and three AEP batches. The first start reply of each
    service is lost after the server acted: that map index adopts its own job (by its spec), never a
    sibling's, so there are still exactly three of each."""
    days = ["2026-02-10", "2026-02-11", "2026-02-12"]
    for day in days:
        seed_demo_data(s3, day)
    polaris.add_fault(action="drop_after", method="POST", path=r"/jobs$", times=1)
    adobe.add_fault(action="drop_after", method="POST", path=r"/import/batches$", times=1)
    run = example_dag("s3_backfill").test(run_conf={"first_day": days[0], "days": 3})
    states = task_states(run)
    assert str(run.state) == "success", states
    assert states["polaris_ingest"] == ["success"] * 3 and states["adobe_ingest"] == ["success"] * 3
    assert len(polaris.journal(event="job_created")) == 3
    prefixes = sorted(job["source"]["prefixes"][0] for job in polaris.jobs.values())
    assert prefixes == [f"events/{d}/" for d in days]
    # the lost create reply's batch is found by its request tag (not a sibling's) and aborted
    statuses = sorted(b["status"] for b in adobe.batches.values())
    assert statuses == ["aborted", "success", "success", "success"], statuses
