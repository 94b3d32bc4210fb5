"""The example DAGs on a real deployment: ``docker/local-stack.sh`` (PostgreSQL metadata database,
CeleryExecutor on Redis, separate scheduler, dag-processor, triggerers, api-server and workers),
started once for the directory by the ``deployment`` fixture (tests/e2e/conftest.py).

Runs are started through the REST API as the UI's trigger button does. The fakes run in this
process so the test can read their journals and inject faults; the script is told to use them.
"""

from __future__ import annotations

import pytest

from e2e.conftest import FAULT_DAY, FINISHED, TRIGGERED_DAY

DAGS = ("s3_to_table", "s3_to_knowledge_base")
DEFERRABLE_TASKS = {
    "s3_to_table": ("polaris_ingest", "adobe_ingest"),
    "s3_to_knowledge_base": ("egain_import", "qconnect_import", "zeta_alpha_ingest"),
}

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
    assert_no_secret_in_logs(deployment)


def assert_no_secret_in_logs(deployment):
    secrets = [*deployment.stack.secrets(), "X-Amz-Signature"]
    logs = [path for path in (deployment.state / "logs").rglob("*") if path.is_file()]
    assert len(logs) > 20, "the deployment wrote its logs where the test looks"
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [secret[:4] + "..." for secret in secrets if secret in text]
        assert not leaked, f"{path} contains {leaked}"


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
