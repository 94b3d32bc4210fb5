"""Airflow's names and habits: conn-id keywords, sensor arguments, waiter names, templated
connection ids, the unmasked auth_url, and a Test connection that reads the API."""

from __future__ import annotations

import json
import warnings

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_ingest.hooks.adobe_aep import AdobeAepHook
from airflow_provider_ingest.hooks.egain import EgainHook
from airflow_provider_ingest.hooks.polaris import PolarisHook
from airflow_provider_ingest.hooks.zeta_alpha import ZetaAlphaHook
from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.operators.egain import EgainStartImportOperator
from airflow_provider_ingest.operators.polaris import (
    PolarisEnsureS3ConnectionOperator,
    PolarisStartIngestionJobOperator,
)
from airflow_provider_ingest.operators.qconnect import QConnectImportQuickResponsesOperator
from airflow_provider_ingest.operators.zeta_alpha import (
    S3ToZetaAlphaOperator,
    ZetaAlphaUpdateAccessRightsOperator,
)
from airflow_provider_ingest.sensors.adobe_aep import AdobeAepBatchSensor
from airflow_provider_ingest.sensors.egain import EgainImportJobSensor
from airflow_provider_ingest.sensors.polaris import PolarisJobSensor
from airflow_provider_ingest.sensors.qconnect import QConnectImportJobSensor
from airflow_provider_ingest.sensors.zeta_alpha import ZetaAlphaDocumentsSensor

KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"


@pytest.mark.parametrize(
    "hook, name",
    [
        (PolarisHook, "polaris_conn_id"),
        (EgainHook, "egain_conn_id"),
        (AdobeAepHook, "adobe_aep_conn_id"),
        (ZetaAlphaHook, "zeta_alpha_conn_id"),
    ],
)
def test_hooks_take_their_service_conn_id_keyword_or_a_positional_id(hook, name):
    assert hook.conn_name_attr == name
    by_name = hook(**{name: "mine"})
    assert by_name.conn_id == getattr(by_name, name) == "mine"
    assert hook("mine").conn_id == "mine"
    assert hook().conn_id == hook.default_conn_name
    with pytest.raises(TypeError, match="give the connection id once"):
        hook("one", **{name: "other"})
    with pytest.raises(TypeError, match="unexpected argument"):
        hook(conn=1)


SENSORS = [
    (PolarisJobSensor, {"job_id": "j"}),
    (EgainImportJobSensor, {"job_id": "j"}),
    (AdobeAepBatchSensor, {"batch_id": "b"}),
    (ZetaAlphaDocumentsSensor, {"document_ids": ["d"]}),
    (QConnectImportJobSensor, {"knowledge_base_id": KB, "import_job_id": "j"}),
]


@pytest.mark.parametrize("sensor, args", SENSORS, ids=[s.__name__ for s, _ in SENSORS])
def test_sensors_take_base_sensor_arguments_and_poll_interval_is_an_alias(sensor, args):
    made = sensor(
        task_id="s",
        poke_interval=7,
        timeout=70,
        mode="reschedule",
        soft_fail=True,
        exponential_backoff=True,
        **args,
    )
    assert (made.poke_interval, made.timeout, made.mode, made.soft_fail, made.exponential_backoff) == (
        7,
        70,
        "reschedule",
        True,
        True,
    )
    with pytest.warns(AirflowProviderDeprecationWarning, match="poll_interval is deprecated"):
        assert sensor(task_id="s", poll_interval=3, **args).poke_interval == 3
    with pytest.raises(TypeError, match="not also its deprecated alias poll_interval"):
        sensor(task_id="s", poll_interval=3, poke_interval=4, **args)


def test_qconnect_sensor_takes_waiter_names():
    made = QConnectImportJobSensor(
        task_id="s", knowledge_base_id=KB, import_job_id="j", waiter_delay=2, waiter_max_attempts=5
    )
    assert (made.poke_interval, made.timeout) == (2, 10)


def test_qconnect_operator_takes_waiter_names_and_maps_its_old_ones():
    def op(**kwargs):
        return QConnectImportQuickResponsesOperator(
            task_id="q", s3_key="s3://b/k.csv", knowledge_base_id=KB, **kwargs
        )

    made = op(waiter_delay=2, waiter_max_attempts=3)
    assert (made.waiter_delay, made.waiter_max_attempts, made.wait_seconds) == (2, 3, 6)
    default = op()
    assert (default.waiter_delay, default.waiter_max_attempts) == (30, 720)  # six hours
    with pytest.warns(AirflowProviderDeprecationWarning, match="timeout is deprecated"):
        old = op(poll_interval=2, timeout=7)
    assert (old.waiter_delay, old.waiter_max_attempts) == (2, 4)  # ceil(7 / 2)
    with pytest.raises(TypeError, match="give waiter_delay, not also its deprecated alias poll_interval"):
        op(waiter_delay=2, poll_interval=2)
    with pytest.raises(ValueError, match="waiter_max_attempts: expected an integer >= 1"):
        op(waiter_max_attempts=0)


@pytest.mark.parametrize(
    "cls, conn_field",
    [
        (PolarisEnsureS3ConnectionOperator, "polaris_conn_id"),
        (PolarisStartIngestionJobOperator, "conn_id"),
        (EgainStartImportOperator, "conn_id"),
        (S3ToAdobeAepOperator, "conn_id"),
        (S3ToZetaAlphaOperator, "conn_id"),
        (ZetaAlphaUpdateAccessRightsOperator, "zeta_alpha_conn_id"),
        (QConnectImportQuickResponsesOperator, "aws_conn_id"),
        (PolarisJobSensor, "conn_id"),
        (EgainImportJobSensor, "conn_id"),
        (AdobeAepBatchSensor, "conn_id"),
        (ZetaAlphaDocumentsSensor, "conn_id"),
        (QConnectImportJobSensor, "aws_conn_id"),
    ],
)
def test_connection_ids_are_templated_and_each_family_has_its_colour(cls, conn_field):
    assert conn_field in cls.template_fields
    for field in getattr(cls, "template_fields_renderers", {}):
        assert field in cls.template_fields, field
    family = cls.__module__.rsplit(".", 1)[1]
    others = {
        c.ui_color
        for c in (
            PolarisJobSensor,
            EgainImportJobSensor,
            AdobeAepBatchSensor,
            ZetaAlphaDocumentsSensor,
            QConnectImportJobSensor,
        )
        if c.__module__.rsplit(".", 1)[1] != family
    }
    assert cls.ui_color not in others and cls.ui_color != "#fff"


def test_templated_connection_id_is_rendered_into_the_hook():
    sensor = PolarisJobSensor(task_id="s", job_id="j", polaris_conn_id="{{ params.conn }}")
    sensor.render_template_fields({"params": {"conn": "polaris_rendered"}})
    assert sensor.hook.conn_id == "polaris_rendered"


def test_auth_url_is_not_masked_and_token_url_still_works_with_a_warning(egain, monkeypatch):
    from airflow.sdk._shared.secrets_masker import should_hide_value_for_key

    assert should_hide_value_for_key("token_url") and not should_hide_value_for_key("auth_url")
    conn = egain.airflow_connection()
    conn["extra"] = {"token_url": conn["extra"].pop("auth_url"), **conn["extra"]}
    monkeypatch.setenv("AIRFLOW_CONN_EGAIN_OLD", json.dumps(conn))
    with pytest.warns(AirflowProviderDeprecationWarning, match="'token_url' is deprecated, use 'auth_url'"):
        ok, message = EgainHook(egain_conn_id="egain_old").test_connection()
    assert ok, message
    with warnings.catch_warnings():
        warnings.simplefilter("error", AirflowProviderDeprecationWarning)
        assert EgainHook().test_connection()[0]  # the fake's own connection uses auth_url


def test_egain_test_connection_reads_the_api_and_fails_on_a_wrong_host(egain, polaris, monkeypatch):
    ok, message = EgainHook().test_connection()
    assert ok and "Ingestion API" in message, message
    assert any(r.get("path", "").endswith("/status") for r in egain.journal())
    conn = egain.airflow_connection()
    conn["host"] = polaris.url  # another API: its token endpoint is right, its host is not eGain's
    monkeypatch.setenv("AIRFLOW_CONN_EGAIN_WRONG_HOST", json.dumps(conn))
    ok, message = EgainHook("egain_wrong_host").test_connection()
    assert not ok and "404" in message and "/status" in message, message


@pytest.mark.parametrize(
    "extra, status",
    [({"ims_org_id": "OTHER0000000000@AdobeOrg"}, "403"), ({"sandbox_name": "nosuch"}, "403")],
    ids=["wrong-org", "wrong-sandbox"],
)
def test_aep_test_connection_reads_catalog_in_the_org_and_sandbox(adobe, monkeypatch, extra, status):
    ok, message = AdobeAepHook().test_connection()
    assert ok and "'prod'" in message, message
    assert any(r.get("path", "").endswith("/catalog/dataSets") for r in adobe.journal())
    conn = adobe.airflow_connection()
    conn["extra"] = {**conn["extra"], **extra}
    monkeypatch.setenv("AIRFLOW_CONN_AEP_WRONG", json.dumps(conn))
    ok, message = AdobeAepHook("aep_wrong").test_connection()
    assert not ok and status in message and "dataSets" in message, message
