"""A connection's network settings (proxies, CA bundle, client certificate): how the extras are
read and checked, which proxy a URL gets, and what both clients do with them against a fake served
over HTTPS by a throwaway CA, and through a local forward proxy that journals what it forwarded."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import uuid

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.http import (
    DIRECT,
    ApiClient,
    AsyncApiClient,
    NetworkSettings,
    RetryPolicy,
    StaticAuth,
    close_shared_sessions,
    redact,
)
from airflow_provider_ingest.testing.server import FakeService
from airflow_provider_ingest.testing.tls import make_test_ca

FAST = RetryPolicy(attempts=3, backoff=0.001, backoff_max=0.001)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
# verify=False on purpose in some tests: urllib3 warns each time
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
TLS_FAILED = (
    "TLS certificate verification failed (unable to get local issuer certificate); "
    "check the connection's 'verify' (CA bundle) and host"
)


@pytest.fixture(autouse=True)
def no_environment_proxies(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


# --- reading the extras ----------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    paths = {}
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("pem")
        paths[name] = str(tmp_path / name)
    return paths


def test_from_extra_without_settings_is_a_direct_connection():
    assert NetworkSettings.from_extra({}) == DIRECT == NetworkSettings((), True, None)
    assert NetworkSettings.from_extra({"proxies": None, "cert": ""}) == DIRECT


def test_from_extra_reads_proxies_ca_bundle_and_client_certificate(files):
    settings = NetworkSettings.from_extra(
        {
            "proxies": {"https": "http://p:3128", "http": "http://q:3128"},
            "verify": files["ca.pem"],
            "cert": [files["client.pem"], files["client.key"]],
        }
    )
    assert settings == NetworkSettings(
        (("http", "http://q:3128"), ("https", "http://p:3128")),
        files["ca.pem"],
        (files["client.pem"], files["client.key"]),
    )
    assert settings.requests_options() == {
        "proxies": {"http": "http://q:3128", "https": "http://p:3128"},
        "verify": files["ca.pem"],
        "cert": (files["client.pem"], files["client.key"]),
    }
    assert NetworkSettings.from_extra({"cert": files["client.pem"]}).cert == files["client.pem"]


def test_from_extra_takes_proxies_as_json_text_from_the_ui():
    assert NetworkSettings.from_extra({"proxies": '{"https": "http://p:1"}'}).proxies == (
        ("https", "http://p:1"),
    )


@pytest.mark.parametrize(
    ("verify", "expected"),
    [("true", True), (" FALSE ", False), ("False", False), ("", True), (True, True), (False, False)],
)
def test_from_extra_reads_verify_as_a_flag(verify, expected):
    assert NetworkSettings.from_extra({"verify": verify}).verify is expected


def test_from_extra_masks_a_proxy_password():
    password = f"proxy-pw-{uuid.uuid4().hex}"
    NetworkSettings.from_extra({"proxies": {"https": f"http://user:{password}@proxy:3128"}})
    assert redact(f"via {password}") == "via ***"


SCHEME_MESSAGE = (
    'conn-x: extra \'proxies\' must map a scheme to a proxy URL, e.g. {"https": "http://proxy:3128"}'
)
CERT_MESSAGE = "conn-x: extra 'cert' must be a path or [cert path, key path]"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"proxies": "{not json"}, "conn-x: extra 'proxies' must be a JSON object"),
        ({"proxies": ["http://p:1"]}, SCHEME_MESSAGE),
        ({"proxies": '"http://p:1"'}, SCHEME_MESSAGE),
        ({"proxies": {"https": 3128}}, SCHEME_MESSAGE),
        ({"proxies": {1: "http://p:1"}}, SCHEME_MESSAGE),
        ({"verify": "/nonexistent/ca.pem"}, "conn-x: extra 'verify': no CA bundle at '/nonexistent/ca.pem'"),
        ({"verify": 1}, "conn-x: extra 'verify' must be true, false or a CA bundle path"),
        ({"verify": None}, "conn-x: extra 'verify' must be true, false or a CA bundle path"),
        ({"cert": ["only-one"]}, CERT_MESSAGE),
        ({"cert": ["a", "b", "c"]}, CERT_MESSAGE),
        ({"cert": 5}, CERT_MESSAGE),
        ({"cert": "/nonexistent/c.pem"}, "conn-x: extra 'cert': no file at '/nonexistent/c.pem'"),
    ],
)
def test_from_extra_refuses_bad_settings_naming_them(extra, message):
    with pytest.raises(ValueError) as info:
        NetworkSettings.from_extra(extra, "conn-x")
    assert str(info.value) == message


def test_from_extra_checks_both_certificate_paths(files):
    with pytest.raises(ValueError) as info:
        NetworkSettings.from_extra({"cert": [files["client.pem"], "/nonexistent/k.pem"]}, "conn-x")
    assert str(info.value) == "conn-x: extra 'cert': no file at '/nonexistent/k.pem'"
    with pytest.raises(ValueError) as info:
        NetworkSettings.from_extra({"cert": [files["client.pem"], 7]}, "conn-x")
    assert str(info.value) == CERT_MESSAGE
    with pytest.raises(ValueError) as info:
        NetworkSettings.from_extra({"verify": "yes please"})
    assert str(info.value) == "connection: extra 'verify': no CA bundle at 'yes please'"


# --- which proxy a URL gets ---------------------------------------------------------------------------
def test_proxy_for_prefers_the_connections_proxies_then_the_environments(monkeypatch):
    url = "https://api.example/v1/jobs"
    assert DIRECT.proxy_for(url) is None
    own = NetworkSettings((("https", "http://own:1"),))
    assert own.proxy_for(url) == "http://own:1"
    assert own.proxy_for("http://api.example/") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://env:2")
    assert DIRECT.proxy_for(url) == "http://env:2"
    assert DIRECT.proxy_for("http://api.example/") is None
    assert own.proxy_for(url) == "http://own:1"
    host = NetworkSettings((("https://api.example", "http://host:3"),))
    assert (
        host.proxy_for(url) == "http://host:3" and host.proxy_for("https://other.example/") == "http://env:2"
    )


def test_proxy_for_uses_all_proxy_and_honours_no_proxy(monkeypatch):
    monkeypatch.setenv("ALL_PROXY", "http://all:4")
    assert DIRECT.proxy_for("https://api.example/x") == "http://all:4"
    monkeypatch.setenv("NO_PROXY", "api.example")
    assert DIRECT.proxy_for("https://api.example/x") is None
    monkeypatch.delenv("NO_PROXY")
    assert NetworkSettings((("no_proxy", "api.example"),)).proxy_for("https://api.example/x") is None
    assert NetworkSettings((("no_proxy", "api.example"),)).proxy_for("https://b.example/x") == "http://all:4"


# --- TLS contexts for aiohttp ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("other-ca"), name="Some Other CA")


def ca_names(context) -> list[str]:
    return [
        dict(item[0] for item in cert["subject"]).get("commonName", "") for cert in context.get_ca_certs()
    ]


def test_ssl_context_follows_verify_like_requests(ca, wrong_ca, monkeypatch):
    assert NetworkSettings(verify=False).ssl_context() is False
    assert ca_names(NetworkSettings(verify=ca.ca_cert).ssl_context()) == ["Ingest Test CA"]
    monkeypatch.setenv("CURL_CA_BUNDLE", wrong_ca.ca_cert)
    assert ca_names(DIRECT.ssl_context()) == ["Some Other CA"]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca.ca_cert)
    assert ca_names(DIRECT.ssl_context()) == ["Ingest Test CA"]
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE")
    names = ca_names(DIRECT.ssl_context())  # certifi's bundle
    assert len(names) > 50 and "Ingest Test CA" not in names


def test_ssl_context_without_verification_still_presents_a_client_certificate(ca, tmp_path):
    context = NetworkSettings(verify=False, cert=(ca.client_cert, ca.client_key)).ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert (context.check_hostname, context.verify_mode) == (False, ssl.CERT_NONE)
    with pytest.raises(FileNotFoundError):  # the certificate is loaded, not just named
        NetworkSettings(verify=False, cert=str(tmp_path / "missing.pem")).ssl_context()
    combined = tmp_path / "client-and-key.pem"
    combined.write_text(open(ca.client_cert).read() + open(ca.client_key).read())
    assert isinstance(NetworkSettings(cert=str(combined)).ssl_context(), ssl.SSLContext)


def hashed_ca_directory(ca, directory):
    """A CA directory as OpenSSL's ``capath`` reads it: the certificate under its subject hash."""
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", ca.ca_cert], check=True, capture_output=True, text=True
    ).stdout.strip()
    directory.mkdir()
    (directory / f"{subject_hash}.0").write_text(open(ca.ca_cert).read())
    return str(directory)


# --- both clients against a fake over HTTPS ------------------------------------------------------------
class PingFake(FakeService):
    conn_id = None

    def install_routes(self, app: FastAPI) -> None:
        @app.get("/ping")
        @app.get("/deep/er/ping")
        async def ping() -> JSONResponse:
            return JSONResponse({"pong": True})


@pytest.fixture(scope="module")
def https_fake(ca):
    fake = PingFake()
    fake.start(ssl_certfile=ca.server_cert, ssl_keyfile=ca.server_key)
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def mtls_fake(ca):
    """Requires a client certificate the test CA signed."""
    fake = PingFake()
    fake.start(ssl_certfile=ca.server_cert, ssl_keyfile=ca.server_key, ssl_ca_certs=ca.ca_cert)
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def http_fake():
    with PingFake() as fake:
        yield fake


class Counting(StaticAuth):
    def __init__(self):
        super().__init__()
        object.__setattr__(self, "tries", 0)

    def headers(self, client, method="GET", url=""):
        object.__setattr__(self, "tries", self.tries + 1)
        return {}

    async def aheaders(self, client, method="GET", url=""):
        return self.headers(client, method, url)


def ping(side: str, url: str, network: NetworkSettings, auth=None, path: str = "ping"):
    if side == "sync":
        return ApiClient("TLS API", url, auth, FAST, network=network).json("GET", path)

    async def scenario():
        try:
            return await AsyncApiClient("TLS API", url, auth, FAST, network=network).json("GET", path)
        finally:
            await close_shared_sessions()

    return asyncio.run(scenario())


SIDES = ["sync", "async"]


@pytest.mark.parametrize("side", SIDES)
def test_the_connections_ca_bundle_is_trusted(side, https_fake, ca, tmp_path):
    assert ping(side, https_fake.url, NetworkSettings(verify=ca.ca_cert)) == {"pong": True}
    capath = hashed_ca_directory(ca, tmp_path / "capath")
    assert ping(side, https_fake.url, NetworkSettings(verify=capath)) == {"pong": True}


@pytest.mark.parametrize("side", SIDES)
def test_a_certificate_another_ca_signed_fails_at_once_and_says_so(side, https_fake, wrong_ca):
    auth = Counting()
    with pytest.raises(IngestApiError) as info:
        ping(side, https_fake.url, NetworkSettings(verify=wrong_ca.ca_cert), auth)
    err = info.value
    assert err.server_message == TLS_FAILED and err.status is None
    assert err.sent is False and auth.tries == 1  # final, and nothing was sent
    assert ping(side, https_fake.url, NetworkSettings(verify=False)) == {"pong": True}


@pytest.mark.parametrize("side", SIDES)
def test_the_environments_ca_bundle_is_trusted_when_verify_is_on(side, https_fake, ca, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca.ca_cert)
    assert ping(side, https_fake.url, DIRECT) == {"pong": True}


@pytest.mark.parametrize("side", SIDES)
def test_a_client_certificate_is_presented(side, mtls_fake, ca):
    cert = (ca.client_cert, ca.client_key)
    assert ping(side, mtls_fake.url, NetworkSettings(verify=ca.ca_cert, cert=cert)) == {"pong": True}
    assert ping(side, mtls_fake.url, NetworkSettings(verify=False, cert=cert)) == {"pong": True}
    with pytest.raises(IngestApiError, match="no HTTP response"):
        ping(side, mtls_fake.url, NetworkSettings(verify=ca.ca_cert))


def test_a_plain_http_origin_never_loads_a_ca_bundle(http_fake, tmp_path):
    """A CA bundle costs the triggerer's loop tens of milliseconds to load; plain HTTP needs none."""
    unreadable = NetworkSettings(verify=str(tmp_path / "gone.pem"))  # checked at from_extra, gone since
    assert ping("async", http_fake.url, unreadable) == {"pong": True}


# --- both clients through a proxy ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
def test_requests_go_through_the_connections_proxy(side, http_fake, proxy):
    assert ping(side, http_fake.url, NetworkSettings((("http", proxy.url),))) == {"pong": True}
    assert [(e["method"], e["target"]) for e in proxy.journal()] == [("GET", f"{http_fake.url}/ping")]


@pytest.mark.parametrize("side", SIDES)
def test_https_through_a_proxy_is_tunnelled(side, https_fake, proxy, ca):
    network = NetworkSettings((("https", proxy.url),), verify=ca.ca_cert)
    assert ping(side, https_fake.url, network) == {"pong": True}
    assert [e["method"] for e in proxy.journal()] == ["CONNECT"]


def test_a_tls_failure_through_a_proxy_is_not_retried_by_urllib3_either(https_fake, proxy, wrong_ca):
    network = NetworkSettings((("https", proxy.url),), verify=wrong_ca.ca_cert)
    with pytest.raises(IngestApiError, match="TLS certificate verification failed"):
        ping("sync", https_fake.url, network)
    assert [e["method"] for e in proxy.journal()] == ["CONNECT"]  # one tunnel: one try


def test_the_async_client_resolves_each_origins_proxy_once(http_fake, proxy, monkeypatch):
    """Per origin, not per host name: ``localhost`` and ``127.0.0.1`` are two origins here, and the
    environment is read when an origin is first used (as the triggerer's clients live long)."""
    port = http_fake.url.rsplit(":", 1)[1]
    network = NetworkSettings((("http://localhost", proxy.url),))

    async def scenario():
        client = AsyncApiClient("Proxy API", http_fake.url, retry=FAST, network=network)
        try:
            await client.json("GET", "ping")  # 127.0.0.1: direct
            await client.json("GET", f"http://localhost:{port}/ping")  # through the proxy
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            await client.json("GET", f"{http_fake.url}/deep/er/ping")  # still direct: resolved once
        finally:
            await close_shared_sessions()

    asyncio.run(scenario())
    assert [e["target"] for e in proxy.journal()] == [f"http://localhost:{port}/ping"]


def test_sync_proxies_are_given_per_call_so_the_environment_cannot_override_them(
    http_fake, proxy, monkeypatch
):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    ApiClient("Proxy API", http_fake.url, retry=FAST, network=NetworkSettings((("http", proxy.url),))).json(
        "GET", "ping"
    )
    assert len(proxy.journal()) == 1


def test_a_start_call_over_https_opens_its_own_connection(https_fake, ca):
    """As over plain HTTP (tests/test_http_core.py): a request that must not be sent twice never
    goes out on a kept-alive connection the server may be closing."""
    https_fake.reset()
    https_fake.add_fault(path="^/ping$", action="body", body={"ok": True}, times=10)
    api = ApiClient("TLS API", https_fake.url, retry=FAST, network=NetworkSettings(verify=ca.ca_cert))
    for method in ("GET", "GET", "POST", "GET"):
        api.json(method, "ping")
    ports = [e["client_port"] for e in https_fake.journal() if e.get("path") == "/ping"]
    assert len(ports) == 4 and ports[1] == ports[0] and ports[2] != ports[0] and ports[3] == ports[2]
