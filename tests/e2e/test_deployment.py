"""The example DAGs on a real deployment: ``docker/local-stack.sh`` (PostgreSQL metadata database,
CeleryExecutor on Redis, separate scheduler, dag-processor, triggerers, api-server and workers),
started once for the directory by the ``deployment`` fixture (tests/e2e/conftest.py).

Runs are started through the REST API as the UI's trigger button does. The fakes run in this
process so the test can read their journals and inject faults; the script is told to use them.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_ingest.testing.adobe_aep import DATASET_ID
from airflow_provider_ingest.testing.stack import DEMO_BUCKET
from e2e.conftest import FAULT_DAY, FINISHED, OPENLINEAGE_FILE, TRIGGERED_DAY

DAGS = ("s3_to_table", "s3_to_knowledge_base")
DEFERRABLE_TASKS = {
    "s3_to_table": ("polaris_ingest", "adobe_ingest"),
    "s3_to_knowledge_base": ("egain_import", "qconnect_import", "zeta_alpha_ingest"),
}
FOLDERS = {"s3_to_table": "events", "s3_to_knowledge_base": "knowledge"}  # `prefix` defaults
QCONNECT_KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"  # the DAG's default knowledge base

pytestmark = pytest.mark.timeout(900)


def test_scheduled_and_triggered_runs_succeed_through_the_triggerer(deployment):
    triggered = {
        "s3_to_table": deployment.trigger("s3_to_table", {"prefix": f"events/{TRIGGERED_DAY}/"}),
        "s3_to_knowledge_base": deployment.trigger(
            "s3_to_knowledge_base", {"prefix": f"knowledge/{TRIGGERED_DAY}/", "egain_operation": "import"}
        ),
    }

    def all_finished():
        runs = {dag_id: deployment.runs(dag_id) for dag_id in DAGS}
        done = all(run["state"] in FINISHED for dag_runs in runs.values() for run in dag_runs)
        return runs if done else None

    runs = deployment.wait(all_finished, "the scheduled and triggered runs")
    for dag_id, dag_runs in runs.items():
        # The DAGs are active from the start: the schedule made one run (catchup is off), the API another.
        assert sorted(r["run_type"] for r in dag_runs) == ["manual", "scheduled"], dag_runs
        assert triggered[dag_id] in {r["dag_run_id"] for r in dag_runs}
        for run in dag_runs:
            states = deployment.task_states(dag_id, run["dag_run_id"])
            assert run["state"] == "success", (dag_id, run["dag_run_id"], states)
            for task_id in DEFERRABLE_TASKS[dag_id]:  # every wait went through the triggerer
                assert "Pausing task as DEFERRED" in deployment.task_log(dag_id, run["dag_run_id"], task_id)

    table = [deployment.result("s3_to_table", r["dag_run_id"]) for r in runs["s3_to_table"]]
    knowledge = [
        deployment.result("s3_to_knowledge_base", r["dag_run_id"]) for r in runs["s3_to_knowledge_base"]
    ]
    assert all(summary["polaris"]["rows_ingested"] == 300 for summary in table), table
    assert all(summary["adobe"]["rows"] == 300 for summary in table), table
    assert all(summary["egain"]["status"] == "Successful" for summary in knowledge), knowledge
    for dag_id, dag_runs in runs.items():
        for run in dag_runs:
            # the folder the run read: the trigger's `prefix`, else the DAG's default for its `ds`
            folder = run["conf"].get("prefix") or f"{FOLDERS[dag_id]}/{run['logical_date'][:10]}/"
            assert_openlineage(deployment, dag_id, run["dag_run_id"], folder, DEFERRABLE_TASKS[dag_id])

    # Exactly one job or batch per branch per run: what the fakes made is what the runs report.
    stack = deployment.stack
    created = {
        name: {e["id"] for e in stack.fake(name).journal(event=event)}
        for name, event in (
            ("Polaris", "job_created"),
            ("Egain", "job_created"),
            ("QConnect", "job_created"),
            ("AdobeAep", "batch_created"),
        )
    }
    assert created["Polaris"] == {s["polaris"]["job_id"] for s in table}
    assert created["AdobeAep"] == {s["adobe"]["batch_id"] for s in table}
    assert created["Egain"] == {s["egain"]["job_id"] for s in knowledge}
    assert created["QConnect"] == {s["qconnect"]["import_job_id"] for s in knowledge}
    assert len(stack.fake("ZetaAlpha").journal(event="document_batch")) == 2
    for name in ("Polaris", "Egain", "QConnect", "ZetaAlpha", "AdobeAep"):  # polled by the triggerer
        assert any(
            "aiohttp" in r.get("agent", "") or "aiobotocore" in r.get("agent", "")
            for r in stack.fake(name).journal()
            if r.get("method") == "GET"
        ), name

    assert_no_secret_in_logs(deployment)


def test_a_failing_branch_reports_its_reason_and_the_others_succeed(deployment):
    egain = deployment.stack.fake("Egain")
    jobs_before = len(egain.journal(event="job_created"))
    egain.add_fault(action="status", status=400, method="POST", path=r"/import/content$", times=100)
    run_id = deployment.trigger("s3_to_knowledge_base", {"prefix": f"knowledge/{FAULT_DAY}/"})

    def settled():
        states = deployment.task_states("s3_to_knowledge_base", run_id)
        egain_done = states.get("egain_import") in ("up_for_retry", "failed")
        others_done = all(states.get(t) in FINISHED for t in ("qconnect_import", "zeta_alpha_ingest"))
        return states if egain_done and others_done else None

    states = deployment.wait(settled, "the faulted run's branches")
    assert states["qconnect_import"] == "success" and states["zeta_alpha_ingest"] == "success", states
    # a 400 is final: the task fails on its first try, without Airflow's retries
    assert states["egain_import"] == "failed", states
    log = deployment.task_log("s3_to_knowledge_base", run_id, "egain_import")
    reason = "/knowledge/contentmgr/v4/import/content failed: HTTP 400 [Injected]: injected fault"
    assert "eGain POST http://" in log and reason in log, log[-3000:]
    assert len(egain.journal(event="job_created")) == jobs_before, "the refused start made no job"
    assert_openlineage(
        deployment,
        "s3_to_knowledge_base",
        run_id,
        f"knowledge/{FAULT_DAY}/",
        succeeded=("qconnect_import", "zeta_alpha_ingest"),
        failed=("egain_import",),
    )
    assert_no_secret_in_logs(deployment)


def assert_no_secret_in_logs(deployment):
    secrets = [*deployment.stack.secrets(), "X-Amz-Signature"]
    logs = [path for path in (deployment.state / "logs").rglob("*") if path.is_file()]
    assert len(logs) > 20, "the deployment wrote its logs where the test looks"
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [secret[:4] + "..." for secret in secrets if secret in text]
        assert not leaked, f"{path} contains {leaked}"


def assert_openlineage(deployment, dag_id, run_id, folder, succeeded=(), failed=()):
    """The OpenLineage events of one run's ingestion tasks, as the file transport wrote them (issue 20).

    A task that succeeded has exactly one COMPLETE, a failed one a FAIL and no COMPLETE. Before it,
    START events of the same OpenLineage run: one per time the task ran on a worker (a deferred task
    runs again when it resumes, and the openlineage provider sends START again). The last event
    names the S3 input (namespace ``s3://<bucket>``, as the amazon provider names it) and the
    destination in the provider's scheme: the values tests/test_lineage.py expects of the operators.
    """
    host = {name: deployment.stack.fake(name).url.split("://", 1)[1] for name in ("Egain", "ZetaAlpha")}
    expected = {  # task: (S3 input name, (output namespace, output name))
        "polaris_ingest": (folder, ("imply-polaris://demo.us-east-1.aws", "test-project/events")),
        "adobe_ingest": (folder, ("adobe-aep://ACME0123456789@AdobeOrg", f"prod/{DATASET_ID}")),
        "egain_import": (f"{folder}articles/", (f"egain://{host['Egain']}", "default")),
        "qconnect_import": (f"{folder}quick_responses.csv", ("qconnect://us-east-1", QCONNECT_KB)),
        "zeta_alpha_ingest": (f"{folder}articles/", (f"zeta-alpha://{host['ZetaAlpha']}", "acme/default")),
    }
    outcome = {**dict.fromkeys(succeeded, "COMPLETE"), **dict.fromkeys(failed, "FAIL")}
    path = deployment.state / OPENLINEAGE_FILE

    def events_by_task():
        lines = path.read_text().splitlines() if path.exists() else []
        by_task: dict[str, list[dict]] = {task_id: [] for task_id in outcome}
        for event in map(json.loads, lines):
            task_id = event["job"]["name"].removeprefix(f"{dag_id}.")
            dag_run = event["run"]["facets"].get("airflow", {}).get("dagRun", {})
            if task_id in by_task and dag_run.get("run_id") == run_id:
                by_task[task_id].append(event)
        return by_task

    def ended():  # a task's process reports its state first and then sends its last event
        by_task = events_by_task()
        done = all(events and events[-1]["eventType"] != "START" for events in by_task.values())
        return by_task if done else None

    for task_id, events in deployment.wait(ended, f"OpenLineage events of {run_id}", timeout=60).items():
        *starts, last = events
        assert last["eventType"] == outcome[task_id], (task_id, [e["eventType"] for e in events])
        deferrals = deployment.task_log(dag_id, run_id, task_id).count("Pausing task as DEFERRED")
        assert [e["eventType"] for e in starts] == ["START"] * (1 + deferrals), (task_id, events)
        assert {e["run"]["runId"] for e in events} == {last["run"]["runId"]}, task_id
        source, destination = expected[task_id]
        datasets = {kind: [(d["namespace"], d["name"]) for d in last[kind]] for kind in ("inputs", "outputs")}
        assert datasets == {"inputs": [(f"s3://{DEMO_BUCKET}", source)], "outputs": [destination]}, task_id
    text = path.read_text()
    leaked = [secret[:4] + "..." for secret in deployment.stack.secrets() if secret in text]
    assert not leaked, f"the OpenLineage events contain {leaked}"


def asset_events(deployment, **filters) -> list[dict]:
    return deployment.api("GET", "assets/events", params=filters)["asset_events"]


def test_on_table_loaded_runs_after_a_load_and_not_after_a_failed_one(deployment):
    """The Polaris task's event on the table asset schedules on_table_loaded (issue 20)."""
    polaris = deployment.stack.fake("Polaris")
    loaded = deployment.trigger("s3_to_table", {"prefix": f"events/{TRIGGERED_DAY}/", "run_adobe": False})

    def downstream_done():
        states = deployment.task_states("s3_to_table", loaded)
        if states.get("summarize") not in FINISHED:
            return None
        runs = [r for r in deployment.runs("on_table_loaded") if r["run_type"] == "asset_triggered"]
        return runs if runs and all(r["state"] in FINISHED for r in runs) else None

    runs = deployment.wait(downstream_done, "on_table_loaded after s3_to_table")
    (event,) = asset_events(deployment, source_dag_id="s3_to_table", source_run_id=loaded)
    assert event["uri"].startswith("imply-polaris://demo.us-east-1.aws/test-project/events"), event
    assert event["extra"]["rows"] == 300 and event["extra"]["s3"] == [
        f"s3://ingest-demo/events/{TRIGGERED_DAY}/"
    ]
    assert all(r["state"] == "success" for r in runs), runs
    reported = [
        row for r in runs for row in deployment.result("on_table_loaded", r["dag_run_id"], "report_load")
    ]
    assert event["extra"]["job_id"] in {row["job_id"] for row in reported}
    assert_openlineage(deployment, "s3_to_table", loaded, f"events/{TRIGGERED_DAY}/", ["polaris_ingest"])

    before = len(deployment.runs("on_table_loaded"))
    polaris.add_fault(action="status", status=400, method="POST", path=r"/jobs$", times=100)
    failed = deployment.trigger("s3_to_table", {"prefix": f"events/{FAULT_DAY}/", "run_adobe": False})

    def failed_done():
        run = next(r for r in deployment.runs("s3_to_table") if r["dag_run_id"] == failed)
        return run if run["state"] in FINISHED else None

    assert deployment.wait(failed_done, "the failed s3_to_table run")["state"] == "failed"
    polaris.clear_faults()
    assert asset_events(deployment, source_dag_id="s3_to_table", source_run_id=failed) == []
    assert len(deployment.runs("on_table_loaded")) == before
    assert_openlineage(deployment, "s3_to_table", failed, f"events/{FAULT_DAY}/", failed=["polaris_ingest"])
