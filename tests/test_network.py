"""Proxies, CA bundles and client certificates, alike on the poke path (requests, boto3) and the
deferred path (aiohttp): fakes served over HTTPS by a CA made here, reached through a real local
forward proxy that journals what it forwarded."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest
import requests
from airflow.sdk.exceptions import TaskDeferred
from conftest import run_trigger

from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.hooks.egain import EgainHook
from airflow_provider_ingest.hooks.polaris import PolarisHook
from airflow_provider_ingest.http import ApiClient, AsyncApiClient, NetworkSettings, close_shared_sessions
from airflow_provider_ingest.sensors.polaris import PolarisJobSensor
from airflow_provider_ingest.sensors.qconnect import QConnectImportJobSensor
from airflow_provider_ingest.testing import EgainFake, PolarisFake, QConnectFake
from airflow_provider_ingest.testing.proxy import ForwardProxy
from airflow_provider_ingest.testing.tls import make_test_ca

KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
TLS_FAILURE = "TLS certificate verification failed"
DONE = {"id": "job-1", "executionStatus": "completed", "health": {"status": "ok"}}


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("other-ca"), name="Some Other CA")


def https(fake, ca, **tls):
    fake.start(ssl_certfile=ca.server_cert, ssl_keyfile=ca.server_key, **tls)
    return fake


@pytest.fixture(scope="module")
def polaris_tls(ca):
    fake = https(PolarisFake(), ca)
    yield fake
    fake.stop()


@pytest.fixture
def polaris_conn(polaris_tls, monkeypatch):
    """``polaris_tls`` with the given extras; the fake answers every job read with a done job."""
    polaris_tls.reset()
    polaris_tls.add_fault(method="GET", path="/jobs/job-1$", action="body", body=DONE, times=1000)

    def set_extra(**extra):
        conn = polaris_tls.airflow_connection()
        conn["extra"] = {**conn["extra"], **extra}
        monkeypatch.setenv("AIRFLOW_CONN_POLARIS_TLS", json.dumps(conn))
        return "polaris_tls"

    return set_extra


def port_of(fake) -> str:
    return fake.url.rsplit(":", 1)[1]


MAX_POKES = 10


def wait_with(sensor, mode: str, proxy: ForwardProxy | None = None) -> list[dict]:
    """Poke the sensor until done, or defer it and run its trigger to the end as the triggerer
    would, then resume it with the event. Returns what ``proxy`` forwarded for the polls (when
    deferred: for the trigger's, not the resumed task's)."""
    if mode == "poke":
        # the fakes here end a job at its first or second read: a few pokes at most
        assert any(sensor.poke({}) for _ in range(MAX_POKES)), f"not done after {MAX_POKES} pokes"
        return proxy.journal() if proxy else []
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    event = run_trigger(deferred.value.trigger)
    forwarded = proxy.journal() if proxy else []
    if event["status"] != "success":
        raise IngestApiError("trigger", "GET", "", None, event["message"])
    sensor.execute_complete({}, event)
    return forwarded


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_rest_connection_goes_through_its_proxy_and_trusts_its_ca(polaris_tls, polaris_conn, proxy, ca, mode):
    conn_id = polaris_conn(proxies={"https": proxy.url}, verify=ca.ca_cert)
    sensor = PolarisJobSensor(
        task_id="wait",
        job_id="job-1",
        polaris_conn_id=conn_id,
        poke_interval=0.05,
        deferrable=mode == "deferred",
    )
    tunnels = [e for e in wait_with(sensor, mode, proxy) if e["method"] == "CONNECT"]
    assert tunnels and {e["target"] for e in tunnels} == {f"127.0.0.1:{port_of(polaris_tls)}"}
    agents = {
        r["agent"].split("/")[0] for r in polaris_tls.journal() if r.get("path", "").endswith("/jobs/job-1")
    }
    assert agents == {"python-requests" if mode == "poke" else "Python"}, (
        agents
    )  # aiohttp: Python/3.x aiohttp


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_wrong_ca_fails_at_once_naming_tls(polaris_tls, polaris_conn, wrong_ca, proxy, mode):
    conn_id = polaris_conn(verify=wrong_ca.ca_cert, proxies={"https": proxy.url})
    sensor = PolarisJobSensor(
        task_id="wait",
        job_id="job-1",
        polaris_conn_id=conn_id,
        poke_interval=0.05,
        deferrable=mode == "deferred",
    )
    with pytest.raises(IngestApiError, match=TLS_FAILURE) as raised:
        wait_with(sensor, mode)
    assert "verify" in str(raised.value)
    assert polaris_tls.journal() == []  # the handshake failed: no request reached the API
    # not retried: one tunnel, one handshake (a retry opens a new connection, so a new tunnel)
    assert [e["method"] for e in proxy.journal()] == ["CONNECT"]


def test_default_trust_store_rejects_a_private_ca_on_both_paths(polaris_tls):
    """Without ``verify``, neither client trusts the test CA (certifi's bundle, as requests)."""
    with pytest.raises(IngestApiError, match=TLS_FAILURE):
        ApiClient("Polaris", polaris_tls.url).json("GET", "/_fake/journal")

    async def deferred():
        try:
            await AsyncApiClient("Polaris", polaris_tls.url).json("GET", "/_fake/journal")
        finally:
            await close_shared_sessions()

    with pytest.raises(IngestApiError, match=TLS_FAILURE):
        asyncio.run(deferred())


def test_connections_to_one_host_with_different_tls_do_not_share_a_session(polaris_tls, ca, wrong_ca):
    good = NetworkSettings(verify=ca.ca_cert)
    bad = NetworkSettings(verify=wrong_ca.ca_cert)

    async def both(first, second):
        try:
            outcomes = []
            for network in (first, second):
                try:
                    await AsyncApiClient("Polaris", polaris_tls.url, network=network).json(
                        "GET", "/_fake/journal"
                    )
                    outcomes.append("ok")
                except IngestApiError as exc:
                    outcomes.append("tls" if TLS_FAILURE in str(exc) else str(exc))
            return outcomes
        finally:
            await close_shared_sessions()

    assert asyncio.run(both(good, bad)) == ["ok", "tls"]
    assert asyncio.run(both(bad, good)) == ["tls", "ok"]


@pytest.mark.parametrize("client_side", ["sync", "async"])
def test_environment_proxy_is_honoured_and_no_proxy_bypasses_it(
    polaris_tls, proxy, ca, monkeypatch, client_side
):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    network = NetworkSettings(verify=ca.ca_cert)

    def call():
        if client_side == "sync":
            return ApiClient("Polaris", polaris_tls.url, network=network).json("GET", "/_fake/journal")

        async def deferred():
            try:
                return await AsyncApiClient("Polaris", polaris_tls.url, network=network).json(
                    "GET", "/_fake/journal"
                )
            finally:
                await close_shared_sessions()

        return asyncio.run(deferred())

    call()
    assert [e["method"] for e in proxy.journal()] == ["CONNECT"]
    proxy.clear()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    call()
    assert proxy.journal() == []


def test_a_start_call_through_a_proxy_opens_its_own_tunnel(polaris_tls, ca, proxy):
    """A request that must not be sent twice goes out on a new connection (see
    tests/test_http_core.py), through a proxy too: a new CONNECT tunnel, not the pooled one."""
    polaris_tls.reset()
    polaris_tls.add_fault(path="/things$", action="body", body={"ok": True}, times=10)
    network = NetworkSettings(proxies=(("https", proxy.url),), verify=ca.ca_cert)
    api = ApiClient("Polaris", polaris_tls.url, network=network)
    api.json("GET", "things")
    api.json("GET", "things")
    assert [e["method"] for e in proxy.journal()] == ["CONNECT"]  # one tunnel, reused
    api.json("POST", "things", json={})
    assert [e["method"] for e in proxy.journal()] == ["CONNECT", "CONNECT"]
    api.json("GET", "things")
    assert len(proxy.journal()) == 2


def test_plain_http_through_the_proxy_uses_absolute_uris(proxy):
    with PolarisFake() as fake:  # plain HTTP
        network = NetworkSettings(proxies=(("http", proxy.url),))
        ApiClient("Polaris", fake.url, network=network).json("GET", "/_fake/journal")

        async def deferred():
            try:
                await AsyncApiClient("Polaris", fake.url, network=network).json("GET", "/_fake/journal")
            finally:
                await close_shared_sessions()

        asyncio.run(deferred())
    assert [(e["method"], e["target"]) for e in proxy.journal()] == [("GET", f"{fake.url}/_fake/journal")] * 2


@pytest.mark.parametrize("client_side", ["sync", "async"])
def test_client_certificate_is_presented(ca, client_side):
    fake = https(PolarisFake(), ca, ssl_ca_certs=ca.ca_cert)  # the server requires a client certificate
    try:
        with_cert = NetworkSettings(verify=ca.ca_cert, cert=(ca.client_cert, ca.client_key))
        without = NetworkSettings(verify=ca.ca_cert)
        outcomes = []
        for network in (with_cert, without):
            try:
                if client_side == "sync":
                    ApiClient("Polaris", fake.url, network=network, retry=None).json("GET", "/_fake/journal")
                else:

                    async def deferred(network=network):
                        try:
                            await AsyncApiClient("Polaris", fake.url, network=network).json(
                                "GET", "/_fake/journal"
                            )
                        finally:
                            await close_shared_sessions()

                    asyncio.run(deferred())
                outcomes.append("ok")
            except IngestApiError:
                outcomes.append("refused")
        assert outcomes == ["ok", "refused"]
    finally:
        fake.stop()


def test_network_extras_are_checked_before_any_request(tmp_path):
    with pytest.raises(ValueError, match="extra 'verify': no CA bundle at"):
        NetworkSettings.from_extra({"verify": str(tmp_path / "missing.pem")})
    with pytest.raises(ValueError, match="extra 'proxies' must map a scheme"):
        NetworkSettings.from_extra({"proxies": ["http://proxy:3128"]})
    with pytest.raises(ValueError, match=r"extra 'cert' must be a path or \[cert path, key path\]"):
        NetworkSettings.from_extra({"cert": ["a", "b", "c"]})
    # as the UI's text fields hand them over
    parsed = NetworkSettings.from_extra({"proxies": '{"https": "http://p:1"}', "verify": "false"})
    assert parsed == NetworkSettings(proxies=(("https", "http://p:1"),), verify=False)


def test_netrc_does_not_replace_the_authorization_header(
    polaris_tls, polaris_conn, ca, tmp_path, monkeypatch
):
    """A ~/.netrc ``default`` entry must not override the API key (requests would send it as
    Basic auth in place of ours)."""
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password elsewhere\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    conn_id = polaris_conn(verify=ca.ca_cert)
    assert PolarisHook(polaris_conn_id=conn_id).list_jobs() == ([], False)  # a 401 if the key were replaced


# --- OAuth: the token endpoint is reached with the connection's settings too --------------------
def test_egain_token_and_api_calls_use_the_connections_tls_and_proxy(ca, proxy, monkeypatch):
    fake = https(EgainFake(), ca)
    try:
        conn = fake.airflow_connection()
        conn["extra"] = {**conn["extra"], "verify": ca.ca_cert, "proxies": {"https": proxy.url}}
        monkeypatch.setenv("AIRFLOW_CONN_EGAIN_TLS", json.dumps(conn))
        ok, message = EgainHook(egain_conn_id="egain_tls").test_connection()
        assert ok, message
        paths = [r["path"] for r in fake.journal() if "path" in r]
        assert paths[0] == "/oauth2/token" and paths[1].endswith("/status")
        assert len([e for e in proxy.journal() if e["method"] == "CONNECT"]) >= 1
    finally:
        fake.stop()


# --- Q in Connect: boto3 when poked, signed aiohttp GETs when deferred ----------------------------
@pytest.fixture(scope="module")
def qconnect_tls(ca, moto_s3):
    fake = https(QConnectFake(s3_endpoint_url=moto_s3, clock="polls"), ca)
    yield fake
    fake.stop()


@pytest.fixture
def qconnect_job(qconnect_tls, ca, monkeypatch, moto_s3, proxy):
    qconnect_tls.reset()
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_TLS",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {
                    "region_name": "us-east-1",
                    "endpoint_url": moto_s3,
                    "service_config": {"qconnect": {"endpoint_url": qconnect_tls.url}},
                    "verify": ca.ca_cert,
                    "config_kwargs": {"proxies": {"https": proxy.url}},
                },
            }
        ),
    )
    qc = boto3.client(
        "qconnect",
        endpoint_url=qconnect_tls.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        verify=ca.ca_cert,
    )
    upload = qc.start_content_upload(knowledgeBaseId=KB, contentType="text/csv")
    requests.put(
        upload["url"],
        data=b"name,content\na,b\n",
        headers=upload["headersToInclude"],
        timeout=5,
        verify=ca.ca_cert,
    )
    job = qc.start_import_job(
        knowledgeBaseId=KB, importJobType="QUICK_RESPONSES", uploadId=upload["uploadId"], clientToken="tls"
    )["importJob"]["importJobId"]
    proxy.clear()
    return job


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_qconnect_polls_through_botocore_proxies_with_the_connections_ca(
    qconnect_tls, qconnect_job, proxy, mode
):
    sensor = QConnectImportJobSensor(
        task_id="wait",
        knowledge_base_id=KB,
        import_job_id=qconnect_job,
        aws_conn_id="aws_tls",
        poke_interval=0.05,
        deferrable=mode == "deferred",
    )
    tunnels = {e["target"] for e in wait_with(sensor, mode, proxy) if e["method"] == "CONNECT"}
    assert tunnels == {f"127.0.0.1:{port_of(qconnect_tls)}"}
    gets = [
        r for r in qconnect_tls.journal() if r.get("method") == "GET" and "/importJobs/" in r.get("path", "")
    ]
    expected = "Boto3" if mode == "poke" else "Python"
    assert any(r["agent"].split("/")[0] == expected for r in gets), [r["agent"] for r in gets]


def test_qconnect_deferral_carries_verify_and_botocore_config(qconnect_tls, qconnect_job, wrong_ca, proxy):
    config = {"proxies": {"https": proxy.url}, "retries": {"total_max_attempts": 2}}
    sensor = QConnectImportJobSensor(
        task_id="wait",
        knowledge_base_id=KB,
        import_job_id=qconnect_job,
        aws_conn_id="aws_tls",
        verify=wrong_ca.ca_cert,
        botocore_config=config,
        waiter_delay=0.05,
        deferrable=True,
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    _, params = trigger.serialize()
    assert params["verify"] == wrong_ca.ca_cert and params["botocore_config"] == config
    event = run_trigger(trigger)
    assert event["status"] == "error" and TLS_FAILURE in event["message"], event
