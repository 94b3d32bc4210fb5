"""The shared sensor (airflow_provider_ingest.sensors.base): poke, deferrable mode, poke_interval
and its deprecated alias, and the id check before any remote call.

Pokes go over real HTTP to the shipped AEP fake (no S3), reached as its own connection."""

from __future__ import annotations

import logging
import re
import time
import warnings
from datetime import timedelta
from typing import Any

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning, AirflowRescheduleException
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_ingest.exceptions import IngestJobFailed, IngestJobTimeout
from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook
from airflow_provider_ingest.jobs import JobSnapshot, JobState
from airflow_provider_ingest.sensors.adobe_aep import AdobeAepBatchSensor
from airflow_provider_ingest.sensors.base import MAX_WAIT_SECONDS, IngestJobSensor, poke_interval_from
from airflow_provider_ingest.sensors.polaris import PolarisJobSensor
from airflow_provider_ingest.sensors.qconnect import QConnectImportJobSensor
from airflow_provider_ingest.sensors.zeta_alpha import ZetaAlphaDocumentsSensor
from airflow_provider_ingest.triggers.adobe_aep import AdobeAepBatchTrigger

from .test_trigger_base import CONN, SERVICE, aep, aep_core_server, new_batch, status_reads  # noqa: F401


@pytest.fixture
def fake(request):
    """test_trigger_base's ``aep`` fixture: the AEP fake, fresh, reachable as connection ``CONN``."""
    return request.getfixturevalue("aep")


def sensor(batch_id: str, **kwargs) -> AdobeAepBatchSensor:
    kwargs.setdefault("poke_interval", 0.01)
    kwargs.setdefault("deferrable", False)
    return AdobeAepBatchSensor(task_id="wait", batch_id=batch_id, adobe_aep_conn_id=CONN, **kwargs)


# --- construction ------------------------------------------------------------------------------------
def test_defaults_and_arguments():
    s = AdobeAepBatchSensor(task_id="wait", batch_id="b-1", adobe_aep_conn_id=CONN, deferrable=True)
    assert (s.job_id, s.conn_id, s.deferrable) == ("b-1", CONN, True)
    assert s.poke_interval == 30.0 and s.poll_interval == 30.0
    assert IngestJobSensor.template_fields == ("job_id", "conn_id")
    given = sensor("b-1", poke_interval=7)
    assert given.poke_interval == 7 and given.poll_interval == 7.0 and isinstance(given.poll_interval, float)
    assert given.deferrable is False


def test_hook_is_the_services_hook_on_the_sensors_connection():
    s = sensor("b-1")
    assert isinstance(s.hook, AdobeAepHook) and s.hook.adobe_aep_conn_id == CONN
    assert s.hook is s.hook  # one hook (one client) for every poke


def test_poll_interval_is_a_deprecated_alias():
    with pytest.warns(
        AirflowProviderDeprecationWarning,
        match=r"^AdobeAepBatchSensor: poll_interval is deprecated, use poke_interval$",
    ):
        s = AdobeAepBatchSensor(task_id="wait", batch_id="b-1", adobe_aep_conn_id=CONN, poll_interval=4)
    assert s.poke_interval == 4 and s.poll_interval == 4.0


@pytest.mark.parametrize(
    "call",
    [
        "AdobeAepBatchSensor(task_id='wait', batch_id='b-1', adobe_aep_conn_id=CONN, poll_interval=4)",
        "PolarisJobSensor(task_id='wait', job_id='j-1', poll_interval=4)",  # no __init__ of its own
        "QConnectImportJobSensor(task_id='wait', knowledge_base_id='kb', import_job_id='j', poll_interval=4)",
    ],
)
@pytest.mark.parametrize("module", ["dags.nightly", None], ids=["module", "no-module-name"])
def test_the_deprecation_warning_points_at_the_dag_line_that_used_the_alias(call, module):
    """Airflow's operator metaclass wraps every ``__init__``: a fixed stacklevel points into it.
    The call runs as a DAG file's line 3 (also from globals without ``__name__``, as bare ``exec``
    code has)."""
    code = compile(f"\n\n{call}\n", "/dags/nightly.py", "exec")
    names = {
        "AdobeAepBatchSensor": AdobeAepBatchSensor,
        "PolarisJobSensor": PolarisJobSensor,
        "QConnectImportJobSensor": QConnectImportJobSensor,
        "CONN": CONN,
    }
    if module is not None:
        names["__name__"] = module
    with pytest.warns(AirflowProviderDeprecationWarning, match="poll_interval is deprecated") as caught:
        exec(code, names)
    assert [(w.filename, w.lineno) for w in caught] == [("/dags/nightly.py", 3)]


@pytest.mark.parametrize("module", ["dags.nightly", None], ids=["module", "no-module-name"])
def test_the_deprecation_warning_is_filtered_and_shown_once_like_any_other(module):
    """Under the "default" action a warning shows once per line (the module's registry); a
    filter naming the DAG's module silences it (code without ``__name__`` is "<string>")."""
    code = compile(
        "for _ in range(2):\n    PolarisJobSensor(task_id='wait', job_id='j-1', poll_interval=4)\n",
        "/dags/nightly.py",
        "exec",
    )

    def warnings_of(action: str, **ignore: Any) -> list[tuple[str, int]]:
        names: dict[str, Any] = {"PolarisJobSensor": PolarisJobSensor}
        if module is not None:
            names["__name__"] = module
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter(action)
            if ignore:
                warnings.filterwarnings("ignore", category=AirflowProviderDeprecationWarning, **ignore)
            exec(code, names)
        return [(w.filename, w.lineno) for w in caught if "poll_interval" in str(w.message)]

    assert warnings_of("always") == [("/dags/nightly.py", 2)] * 2
    assert warnings_of("default") == [("/dags/nightly.py", 2)]  # the loop's second sensor: same line
    assert warnings_of("always", module=re.escape(module or "<string>") + "$") == []
    assert warnings_of("always", module="elsewhere") == [("/dags/nightly.py", 2)] * 2


def test_poll_interval_and_poke_interval_together_are_refused():
    with pytest.raises(
        TypeError,
        match=r"^AdobeAepBatchSensor: give poke_interval, not also its deprecated alias poll_interval$",
    ):
        AdobeAepBatchSensor(task_id="wait", batch_id="b-1", poll_interval=4, poke_interval=5)


def test_poke_interval_from_leaves_kwargs_alone_without_the_alias():
    kwargs = {"poke_interval": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        poke_interval_from(None, kwargs, "X")
    assert kwargs == {"poke_interval": 3}
    with pytest.warns(AirflowProviderDeprecationWarning, match=r"^X: poll_interval is deprecated"):
        poke_interval_from(2.5, kwargs := {}, "X")
    assert kwargs == {"poke_interval": 2.5}


# --- the id check ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PolarisJobSensor(task_id="w", job_id="a/b"), r"^job_id: 'a/b' cannot be a URL path segment"),
        (lambda: PolarisJobSensor(task_id="w", job_id=""), r"^job_id: expected a non-empty string, got ''$"),
        (lambda: sensor(".."), r"^batch_id: '\.\.' cannot be a URL path segment"),
        (
            lambda: ZetaAlphaDocumentsSensor(task_id="w", document_ids=["ok", "x/../y"]),
            r"^document_ids\[\]: 'x/\.\./y' cannot be a URL path segment",
        ),
        (
            lambda: ZetaAlphaDocumentsSensor(task_id="w", ingestion_job_id="j/1", documents=2),
            r"^ingestion_job_id: 'j/1' cannot be a URL path segment",
        ),
    ],
)
def test_an_id_that_is_not_one_path_segment_is_refused_before_any_call(make, message):
    s = make()
    with pytest.raises(ValueError, match=message):
        s.check_job_id()
    with pytest.raises(ValueError, match=message):
        s.poke({})
    deferring = make()
    deferring.deferrable = True
    with pytest.raises(ValueError, match=message):
        deferring.execute({})


def test_good_ids_pass_the_check():
    PolarisJobSensor(task_id="w", job_id="0a1b-2c").check_job_id()
    ZetaAlphaDocumentsSensor(task_id="w", document_ids=["d1", "d2"]).check_job_id()
    ZetaAlphaDocumentsSensor(task_id="w", ingestion_job_id="j1", documents=2).check_job_id()


# --- poke --------------------------------------------------------------------------------------------
def test_poke_reads_the_batch_until_it_succeeds(fake):
    fake.configure(reads_per_step=2)
    batch_id = new_batch()
    s = sensor(batch_id)
    assert [s.poke({}), s.poke({})] == [False, True]
    reads = status_reads(fake, batch_id)
    assert len(reads) == 2 and not any("aiohttp" in r["agent"] for r in reads)


def test_poke_logs_the_status_to_the_tasks_log(fake, caplog, capfd):
    """The status lines go to the sensor's task log, not to the provider's module logger."""
    batch_id = new_batch()
    s = sensor(batch_id)
    with caplog.at_level(logging.INFO, logger="airflow_provider_ingest.jobs"):
        assert s.poke({}) is True
    assert [r for r in caplog.records if r.name == "airflow_provider_ingest.jobs"] == []
    lines = [line for line in capfd.readouterr().out.splitlines() if f"job {batch_id} is success" in line]
    assert len(lines) == 1 and f"[{s.log.name}]" in lines[0]


def test_reschedule_mode_hands_the_context_to_airflows_loop(fake):
    """In reschedule mode Airflow's loop reads the task instance from the context: a running batch
    frees the worker slot until the next poke, a finished one ends the task."""

    class FirstTry:  # the task instance, as far as the reschedule loop reads it
        def get_first_reschedule_date(self, context):
            return None

    fake.configure(reads_per_step=2)
    batch_id = new_batch()
    s = sensor(batch_id, mode="reschedule", poke_interval=60)
    with pytest.raises(AirflowRescheduleException):
        s.execute({"ti": FirstTry()})
    assert sensor(batch_id, mode="reschedule", poke_interval=60).execute({"ti": FirstTry()}) is None


def test_poke_raises_the_batch_failure(fake):
    batch_id = new_batch(files=False)
    with pytest.raises(IngestJobFailed, match=rf"^{SERVICE} job {batch_id} ended failed: INGEST-1212-400"):
        sensor(batch_id).poke({})


def test_execute_pokes_until_done_when_not_deferrable(fake):
    fake.configure(reads_per_step=3)
    batch_id = new_batch()
    assert sensor(batch_id, timeout=60).execute({}) is None
    assert len(status_reads(fake, batch_id)) == 3


# --- deferrable ------------------------------------------------------------------------------------------
def test_deferrable_execute_hands_the_wait_to_a_trigger_that_never_cancels(monkeypatch):
    s = sensor("b-1", deferrable=True, poke_interval=5, timeout=120)
    now = 1_700_000_000.0
    monkeypatch.setattr(time, "time", lambda: now)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, AdobeAepBatchTrigger)
    assert trigger.serialize()[1] == {
        "job_id": "b-1",
        "conn_id": CONN,
        "deadline": now + 120,
        "poll_interval": 5.0,
        "cancel_on_kill": False,
    }
    assert isinstance(trigger.poll_interval, float)
    assert deferred.value.method_name == "execute_complete"


def test_deferrable_with_a_timeout_over_a_year_waits_a_year(monkeypatch):
    s = sensor("b-1", deferrable=True, timeout=timedelta(days=1000))
    now = 1_700_000_000.0
    monkeypatch.setattr(time, "time", lambda: now)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute({})
    assert deferred.value.trigger.deadline == now + MAX_WAIT_SECONDS == now + 365 * 86400.0


def test_execute_complete_returns_the_details_or_raises():
    s = sensor("b-1", deferrable=True)
    done = JobSnapshot("b-1", "success", JobState.SUCCEEDED, details={"batch_id": "b-1", "rows": 2})
    assert s.execute_complete({}, {"status": "success", "job": done.to_event()}) == {
        "batch_id": "b-1",
        "rows": 2,
    }
    with pytest.raises(IngestJobFailed, match=r"^ended failed$"):
        s.execute_complete({}, {"status": "error", "message": "ended failed"})
    with pytest.raises(IngestJobTimeout, match=r"^late$"):
        s.execute_complete({}, {"status": "timeout", "message": "late"})
    with pytest.raises(IngestJobFailed, match=r"without an event payload"):
        s.execute_complete({})
