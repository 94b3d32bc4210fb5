"""The shared OAuth client-credentials auth against a real token endpoint (the eGain fake's), the
process-wide token cache, renewal before expiry, what is registered with Airflow's secrets masker,
the fixed-header wrapper and the SigV4 signer (checked against botocore's)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

import pytest
import requests
from conftest import HANG_GUARD, wait_until

from airflow_provider_ingest.auth import AwsSigV4, OAuthClientCredentials, WithHeaders, clear_token_cache
from airflow_provider_ingest.exceptions import IngestApiError, IngestApiRejected
from airflow_provider_ingest.http import (
    ApiClient,
    AsyncApiClient,
    NetworkSettings,
    RetryPolicy,
    StaticAuth,
    Timeouts,
    redact,
)
from airflow_provider_ingest.testing import EgainFake
from airflow_provider_ingest.testing.egain import API, SCOPE

from . import support

FAST = RetryPolicy(attempts=3, backoff=0.001, backoff_max=0.002)
ONCE = RetryPolicy(attempts=1)
T0 = 1_000_000.0  # a clock the test moves; exact in binary, so boundaries are exact


@pytest.fixture(scope="module")
def egain_server():
    with EgainFake(clock="polls") as fake:  # only its token endpoint and auth checks: no S3
        yield fake


@pytest.fixture
def fake(egain_server):
    egain_server.reset()
    clear_token_cache()
    # A fresh secret per test: Airflow's masker and the provider register a secret once per
    # process, so a secret another test registered would hide a missing registration here.
    # '/', '+', ' ' and '=' make it differ raw, quote()d and quote_plus()ed.
    egain_server.client_secret = f"s3cr/et+{uuid.uuid4().hex} =="
    yield egain_server
    egain_server.release()
    egain_server.clear_faults()
    clear_token_cache()


@pytest.fixture
def clock(monkeypatch):
    """Wall-clock time (``time.time``, read by the auth and by the fake's token expiry) frozen at
    ``T0`` and moved only by the test: ``clock[0] = ...``."""
    now = [T0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def token_url(fake) -> str:
    return f"{fake.url}/oauth2/token"


def oauth(fake, scope: str = SCOPE, **kwargs) -> OAuthClientCredentials:
    kwargs.setdefault("retry", FAST)
    return OAuthClientCredentials(
        kwargs.pop("service", "eGain"),
        kwargs.pop("url", None) or token_url(fake),
        kwargs.pop("client_id", fake.client_id),
        kwargs.pop("client_secret", fake.client_secret),
        scope,
        **kwargs,
    )


def api(fake, auth=None, **kwargs) -> ApiClient:
    return ApiClient("eGain", fake.url, auth, FAST, **kwargs)


def issued(fake) -> int:
    return len(fake.journal(event="token_issued"))


def token_requests(fake) -> list[dict]:
    return [r for r in fake.journal() if r.get("path") == "/oauth2/token" and "event" not in r]


def api_status(fake, headers: dict[str, str]) -> int:
    """What the fake's API answers a status read with these headers: 404 (no such job) when the
    token is good and has the scope, 401 when the token is unknown or expired, 403 without scope."""
    return requests.get(
        f"{fake.url}{API}/import/content/no-job/status", headers=headers, timeout=10
    ).status_code


def secret_forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret)}


# --- fetching and sending a token ----------------------------------------------------------------
def test_a_token_is_fetched_once_and_sent_as_a_bearer_token(fake):
    auth = oauth(fake)
    client = api(fake)
    first = auth.headers(client)
    assert set(first) == {"Authorization"} and first["Authorization"].startswith("Bearer ")
    token = first["Authorization"].removeprefix("Bearer ")
    assert token in fake.tokens and api_status(fake, first) == 404
    assert auth.headers(client, "POST", f"{fake.url}/x") == first
    assert issued(fake) == 1
    assert [(r["method"], r["status"]) for r in token_requests(fake)] == [("POST", 200)]


def test_the_token_request_is_a_client_credentials_form(fake):
    """What the endpoint receives, as a vendor echoing the request shows it; the secret travels in
    the form (the fake checks it) but the error shows it in no form."""
    fake.add_fault(action="echo", path="/oauth2/token$")
    with pytest.raises(
        IngestApiRejected, match=r"^eGain token endpoint POST .*/oauth2/token failed: HTTP 400"
    ) as info:
        oauth(fake).headers(api(fake))
    message = str(info.value)
    for field in ("grant_type=client_credentials", "client_id=egain-test-client", f"scope={SCOPE}"):
        assert field in message
    assert "client_secret=***" in message
    assert not any(form in message for form in secret_forms(fake.client_secret))
    assert issued(fake) == 0


def test_no_scope_is_sent_when_none_is_given(fake):
    for auth in (
        oauth(fake, scope=""),
        OAuthClientCredentials("eGain", token_url(fake), fake.client_id, fake.client_secret, retry=FAST),
    ):
        fake.add_fault(action="echo", path="/oauth2/token$")
        with pytest.raises(IngestApiRejected, match="grant_type=client_credentials") as info:
            auth.headers(api(fake))
        assert "scope" not in str(info.value)
    # the fake issues a token without scopes: the API refuses it for lack of the scope
    header = oauth(fake, scope="").headers(api(fake))
    assert api_status(fake, header) == 403


def test_each_scope_has_its_own_token(fake):
    client = api(fake)
    scoped = oauth(fake).headers(client)
    other = oauth(fake, scope="other.scope").headers(client)
    assert scoped != other and issued(fake) == 2
    assert (api_status(fake, scoped), api_status(fake, other)) == (404, 403)


def test_the_cache_is_shared_by_every_auth_with_the_same_credentials(fake):
    client = api(fake)
    assert oauth(fake).headers(client) == oauth(fake, service="other name").headers(client)
    assert issued(fake) == 1


def test_a_wrong_secret_does_not_reuse_a_good_token(fake):
    client = api(fake)
    oauth(fake).headers(client)
    with pytest.raises(
        IngestApiRejected, match="eGain token endpoint POST .*HTTP 401.*client authentication failed"
    ):
        oauth(fake, client_secret="wrong secret").headers(client)
    assert [r["status"] for r in token_requests(fake)] == [200, 401]


def test_another_client_id_does_not_reuse_a_token(fake):
    client = api(fake)
    oauth(fake).headers(client)
    with pytest.raises(IngestApiRejected, match="HTTP 401"):
        oauth(fake, client_id="another-client").headers(client)
    assert [r["status"] for r in token_requests(fake)] == [200, 401]


def test_another_token_url_does_not_reuse_a_token(fake):
    client = api(fake)
    first = oauth(fake).headers(client)
    second = oauth(fake, url=token_url(fake).replace("127.0.0.1", "localhost")).headers(client)
    assert first != second and issued(fake) == 2


def test_a_non_string_token_is_sent_as_text(fake):
    fake.add_fault(action="body", path="/oauth2/token$", body={"access_token": 12345, "expires_in": 3600})
    assert oauth(fake).headers(api(fake)) == {"Authorization": "Bearer 12345"}


@pytest.mark.parametrize(
    "body",
    [None, [], ["access_token"], {}, {"token_type": "Bearer"}, {"access_token": ""}, {"access_token": None}],
    ids=["null", "list", "list-of-name", "empty", "no-token", "empty-token", "null-token"],
)
def test_a_reply_without_a_token_is_an_error_and_is_not_cached(fake, body):
    fake.add_fault(action="body", path="/oauth2/token$", body=body)
    auth, client = oauth(fake), api(fake)
    with pytest.raises(ValueError, match=r"^eGain token endpoint replied without an access_token$"):
        auth.headers(client)
    assert api_status(fake, auth.headers(client)) == 404  # the next call asks again
    assert len(token_requests(fake)) == 2


# --- how the token endpoint is reached: retries, timeouts, the connection's network --------------
def test_a_lost_token_reply_is_asked_again(fake):
    fake.add_fault(action="drop_after", path="/oauth2/token$")
    header = oauth(fake).headers(api(fake))
    assert api_status(fake, header) == 404 and issued(fake) == 2


def test_the_auth_retry_policy_applies_to_the_token_endpoint(fake):
    fake.add_fault(action="status", status=503, path="/oauth2/token$")
    with pytest.raises(IngestApiError, match="^eGain token endpoint POST .*HTTP 503"):
        oauth(fake, retry=ONCE).headers(api(fake))
    fake.add_fault(action="status", status=503, path="/oauth2/token$")
    assert api_status(fake, oauth(fake, retry=FAST).headers(api(fake))) == 404
    assert [r["status"] for r in token_requests(fake)] == [503, 503, 200]


def test_the_auth_timeouts_apply_to_the_token_endpoint(fake):
    fake.add_fault(action="hold", path="/oauth2/token$", seconds=30)
    with pytest.raises(IngestApiError, match="^eGain token endpoint POST .*ReadTimeout"):
        oauth(fake, retry=ONCE, timeouts=Timeouts(connect=5, read=0.2)).headers(api(fake))
    fake.release()  # the held request goes on, finds its client gone, and is journaled: not in a later test
    wait_until(lambda: token_requests(fake), "the released token request to end")
    assert issued(fake) == 0


def test_the_token_endpoint_is_reached_through_the_connection_proxy(fake, proxy):
    client = api(fake, network=NetworkSettings(proxies=(("http", proxy.url),)))
    oauth(fake).headers(client)
    assert [(r["method"], r["target"]) for r in proxy.journal()] == [("POST", token_url(fake))]


# --- expiry and renewal --------------------------------------------------------------------------
def test_a_token_is_renewed_a_minute_before_it_expires(fake, clock):
    auth, client = oauth(fake), api(fake)  # the fake's tokens live 3600 s
    first = auth.headers(client)
    clock[0] = T0 + 3540 - 0.5
    assert auth.headers(client) == first and issued(fake) == 1
    clock[0] = T0 + 3540  # 60 s before expiry: renewed
    second = auth.headers(client)
    assert second != first and issued(fake) == 2
    assert api_status(fake, second) == 404


def test_renew_before_sets_the_margin(fake, clock):
    auth, client = oauth(fake, renew_before=0), api(fake)
    first = auth.headers(client)
    clock[0] = T0 + 3600 - 0.5
    assert auth.headers(client) == first
    clock[0] = T0 + 3600
    assert auth.headers(client) != first and issued(fake) == 2


def test_the_lifetime_comes_from_expires_in(fake, clock):
    fake.add_fault(
        action="body",
        path="/oauth2/token$",
        body={"access_token": "fixed-expiry-test-token", "expires_in": "120"},
    )
    auth, client = oauth(fake), api(fake)
    assert auth.headers(client) == {"Authorization": "Bearer fixed-expiry-test-token"}
    clock[0] = T0 + 59.5
    assert auth.headers(client) == {"Authorization": "Bearer fixed-expiry-test-token"}
    clock[0] = T0 + 60
    assert auth.headers(client) != {"Authorization": "Bearer fixed-expiry-test-token"} and issued(fake) == 1


@pytest.mark.parametrize("expires_in", [None, 0, ""], ids=["absent", "zero", "empty"])
def test_a_token_without_a_lifetime_is_taken_to_live_an_hour(fake, clock, expires_in):
    body = (
        {"access_token": "fixed-expiry-test-token"}
        if expires_in is None
        else {"access_token": "fixed-expiry-test-token", "expires_in": expires_in}
    )
    fake.add_fault(action="body", path="/oauth2/token$", body=body)
    auth, client = oauth(fake), api(fake)
    auth.headers(client)
    clock[0] = T0 + 3540 - 0.5
    assert auth.headers(client) == {"Authorization": "Bearer fixed-expiry-test-token"}
    clock[0] = T0 + 3540
    assert auth.headers(client) != {"Authorization": "Bearer fixed-expiry-test-token"}


def test_an_expired_token_is_dropped_on_a_401_and_the_request_sent_again(fake):
    auth = oauth(fake)
    client = api(fake, auth)
    first = auth.headers(client)
    fake.expire_tokens()  # the server ends the token early: the cache still holds it
    with pytest.raises(IngestApiRejected, match="HTTP 404"):  # a good token reached the API
        client.json("GET", f"{API}/import/content/no-job/status")
    api_calls = [r["status"] for r in fake.journal() if r.get("path", "").startswith(API)]
    assert api_calls == [401, 404] and issued(fake) == 2
    assert auth.headers(client) != first


def test_invalidate_drops_the_cached_token(fake):
    auth, client = oauth(fake), api(fake)
    assert auth.invalidate() is True  # nothing cached yet: still fine
    first = auth.headers(client)
    assert auth.invalidate() is True
    assert auth.headers(client) != first and issued(fake) == 2
    assert oauth(fake).headers(client) != first  # for every auth sharing the cache


def test_clear_token_cache_forgets_every_token(fake):
    auth, client = oauth(fake), api(fake)
    first = auth.headers(client)
    clear_token_cache()
    assert auth.headers(client) != first and issued(fake) == 2


# --- masking ---------------------------------------------------------------------------------------
def test_the_client_secret_is_masked_from_the_start_in_every_encoding(fake):
    secret = f"cl1ent/secret+{uuid.uuid4().hex} &=?"
    oauth(fake, client_secret=secret)  # no request yet
    text = " | ".join(f"[{form}]" for form in secret_forms(secret))
    assert redact(text) == " | ".join("[***]" for _ in secret_forms(secret))


def test_the_token_is_masked_once_fetched(fake):
    header = oauth(fake).headers(api(fake))
    token = header["Authorization"].removeprefix("Bearer ")
    assert redact(f"Authorization: Bearer {token};") == "Authorization: Bearer ***;"


# --- async: the triggerer's path ----------------------------------------------------------------
def run(coro):
    return support.run(lambda: coro)


def aclient(fake, auth=None, **kwargs) -> AsyncApiClient:
    return AsyncApiClient("eGain", fake.url, auth, FAST, **kwargs)


def test_aheaders_fetches_masks_and_caches_a_token(fake):
    auth = oauth(fake)
    first = run(auth.aheaders(aclient(fake)))
    token = first["Authorization"].removeprefix("Bearer ")
    assert set(first) == {"Authorization"} and api_status(fake, first) == 404
    assert redact(f"<{token}>") == "<***>"
    assert run(auth.aheaders(aclient(fake), "POST", fake.url)) == first
    assert auth.headers(api(fake)) == first  # one cache for workers and triggers
    assert issued(fake) == 1


def test_aheaders_uses_a_token_a_worker_fetched(fake):
    auth = oauth(fake)
    first = auth.headers(api(fake))
    assert run(auth.aheaders(aclient(fake))) == first and issued(fake) == 1


def test_concurrent_waits_share_one_token_fetch(fake):
    auth = oauth(fake)

    async def many():
        client = aclient(fake)
        return await asyncio.gather(*(auth.aheaders(client) for _ in range(20)))

    headers = run(many())
    assert len({h["Authorization"] for h in headers}) == 1 and issued(fake) == 1
    # another event loop (a new asyncio.run) has its own locks and finds the cached token
    assert run(auth.aheaders(aclient(fake))) == headers[0] and issued(fake) == 1


async def until(condition, what: str) -> None:
    """Wait on the loop until ``condition()`` holds; fail naming ``what`` after HANG_GUARD (a guard
    against a hang, never a timing the test depends on)."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.005)


def test_a_slow_token_fetch_holds_up_only_waits_on_the_same_credentials(fake):
    """One connection's token endpoint hanging must not stall every other connection's triggers
    on the triggerer's loop: the fetch lock is per credentials."""
    fake.add_fault(action="hold", path="/oauth2/token$", seconds=HANG_GUARD / 2)  # the first fetch
    slow, other = oauth(fake), oauth(fake, scope="other.scope")

    async def both():
        client = aclient(fake)
        held = asyncio.create_task(slow.aheaders(client))
        same = asyncio.create_task(oauth(fake).aheaders(client))  # waits for the held fetch
        await until(lambda: fake.journal(event="held"), "the token request to be held")
        answered = await other.aheaders(client)
        assert not held.done() and not same.done()
        fake.release()
        return answered, await held, await same

    answered, held, same = run(both())
    assert held == same != answered and issued(fake) == 2
    assert (api_status(fake, held), api_status(fake, answered)) == (404, 403)


def test_aheaders_renews_before_expiry(fake, clock):
    auth = oauth(fake)
    first = run(auth.aheaders(aclient(fake)))
    clock[0] = T0 + 3540 - 0.5
    assert run(auth.aheaders(aclient(fake))) == first
    clock[0] = T0 + 3540
    assert run(auth.aheaders(aclient(fake))) != first and issued(fake) == 2


def test_aheaders_reaches_the_endpoint_with_the_auth_settings_and_network(fake, proxy):
    fake.add_fault(action="status", status=503, path="/oauth2/token$")
    with pytest.raises(IngestApiError, match="^eGain token endpoint POST .*HTTP 503"):
        run(oauth(fake, retry=ONCE).aheaders(aclient(fake)))
    fake.add_fault(action="drop_after", path="/oauth2/token$")  # a lost reply: asked again
    assert api_status(fake, run(oauth(fake).aheaders(aclient(fake)))) == 404
    clear_token_cache()
    client = aclient(fake, network=NetworkSettings(proxies=(("http", proxy.url),)))
    run(oauth(fake).aheaders(client))
    assert [(r["method"], r["target"]) for r in proxy.journal()] == [("POST", token_url(fake))]


def test_aheaders_refuses_a_reply_without_a_token(fake):
    fake.add_fault(action="body", path="/oauth2/token$", body={"token_type": "Bearer"})
    with pytest.raises(ValueError, match="^eGain token endpoint replied without an access_token$"):
        run(oauth(fake).aheaders(aclient(fake)))


# --- WithHeaders -----------------------------------------------------------------------------------
def test_with_headers_adds_fixed_headers_to_the_inner_auth(fake):
    auth = WithHeaders(oauth(fake), {"x-api-key": "key-1", "x-sandbox-name": "prod"})
    headers = auth.headers(api(fake))
    assert set(headers) == {"Authorization", "x-api-key", "x-sandbox-name"}
    assert headers["x-api-key"] == "key-1" and api_status(fake, headers) == 404
    assert run(auth.aheaders(aclient(fake))) == headers
    assert auth.invalidate() is True  # the OAuth token is dropped: a 401 is worth a retry
    assert auth.headers(api(fake)) != headers and issued(fake) == 2


class Recording:
    """An inner auth that answers with what it was asked for (defaults of its own, to tell a
    dropped argument from a passed one)."""

    def headers(self, client, method=None, url=None):
        return {"asked": f"{method} {url}", "client": repr(client)}

    async def aheaders(self, client, method=None, url=None):
        return {"asked": f"async {method} {url}", "client": repr(client)}

    def invalidate(self):
        return True


def test_with_headers_passes_the_request_on_to_the_inner_auth():
    auth = WithHeaders(Recording(), {"x-api-key": "k"})
    assert auth.headers("client-1", "PUT", "http://h/p") == {
        "asked": "PUT http://h/p",
        "client": "'client-1'",
        "x-api-key": "k",
    }
    assert auth.headers("client-1") == {"asked": "GET ", "client": "'client-1'", "x-api-key": "k"}
    assert run(auth.aheaders("client-2", "DELETE", "http://h/q")) == {
        "asked": "async DELETE http://h/q",
        "client": "'client-2'",
        "x-api-key": "k",
    }
    assert run(auth.aheaders("client-2")) == {"asked": "async GET ", "client": "'client-2'", "x-api-key": "k"}
    assert auth.invalidate() is True


def test_with_headers_fetches_an_oauth_token_on_the_async_path(fake):
    auth = WithHeaders(oauth(fake), {"x-api-key": "key-1"})
    headers = run(auth.aheaders(aclient(fake)))
    assert headers["x-api-key"] == "key-1" and api_status(fake, headers) == 404 and issued(fake) == 1


def test_with_headers_fixed_values_win_and_static_auth_is_final():
    auth = WithHeaders(StaticAuth({"x-api-key": "inner", "a": "1"}), {"x-api-key": "fixed"})
    assert auth.headers(None) == {"x-api-key": "fixed", "a": "1"}
    assert run(auth.aheaders(None)) == {"x-api-key": "fixed", "a": "1"}
    assert auth.invalidate() is False


# --- AwsSigV4 --------------------------------------------------------------------------------------
KEY = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def frozen(secret: str = KEY[1], token: str | None = None, access: str = KEY[0]):
    from botocore.credentials import Credentials

    return Credentials(access, secret, token).get_frozen_credentials()


def botocore_headers(creds, method, url, region="eu-west-2", name="wisdom", when: datetime | None = None):
    """botocore's SigV4 headers for the request, signed now or at ``when``."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url)
    signer = botocore.auth.SigV4Auth(creds, name, region)
    if when is None:
        signer.add_auth(request)
        return request.headers
    with pytest.MonkeyPatch.context() as patch:  # botocore's clock, not the provider's
        patch.setattr(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None))
        signer.add_auth(request)
    return request.headers


def when_of(headers) -> datetime:
    return datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases/kb-1/importJobs/j-1"),
        ("get", "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases"),
        ("DELETE", "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases/a%2Fb/x~y%20z"),
        ("GET", "https://wisdom.eu-west-2.amazonaws.com"),
        ("GET", "https://wisdom.eu-west-2.amazonaws.com/"),
        ("GET", "https://wisdom.eu-west-2.amazonaws.com:443/knowledgeBases"),
        ("GET", "https://wisdom.eu-west-2.amazonaws.com:8443/knowledgeBases"),
        ("GET", "http://127.0.0.1:80/knowledgeBases"),
        ("GET", "http://127.0.0.1:4566/knowledgeBases"),
        ("GET", "http://127.0.0.1:443/knowledgeBases"),
        ("GET", "https://wisdom.eu-west-2.amazonaws.com/kb?z=1&a=2&a=1&empty=&flag"),
        ("GET", "https://wisdom.eu-west-2.amazonaws.com/kb?maxResults=10"),
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLE/token+=="], ids=["no-token", "session-token"])
def test_sigv4_signs_as_botocore_does(method, url, token):
    creds = frozen(token=token)
    reference = botocore_headers(creds, method, url)
    ours = AwsSigV4(None, "wisdom", "eu-west-2").sign(creds, method, url, when_of(reference))
    expected = {"x-amz-date": reference["X-Amz-Date"], "Authorization": reference["Authorization"]}
    if token:
        expected["x-amz-security-token"] = token
    assert ours == expected  # no Host header: aiohttp sends its own


def test_sigv4_signing_key_follows_the_secret_the_day_and_the_scope():
    signer = AwsSigV4(None, "wisdom", "eu-west-2")
    url = "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases"
    for creds, region, name in [
        (frozen(), "eu-west-2", "wisdom"),
        (frozen(), "eu-west-2", "wisdom"),  # the day's key reused
        (frozen(secret="another/secret+key"), "eu-west-2", "wisdom"),  # rotated secret
    ]:
        reference = botocore_headers(creds, "GET", url, region, name)
        assert (
            signer.sign(creds, "GET", url, when_of(reference))["Authorization"] == reference["Authorization"]
        )
    creds = frozen()
    for day in ("20260101T235959Z", "20260102T000000Z", "20260101T120000Z"):  # a new key each day
        when = datetime.strptime(day, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        reference = botocore_headers(creds, "GET", url, when=when)
        assert reference["X-Amz-Date"] == day
        assert signer.sign(creds, "GET", url, when)["Authorization"] == reference["Authorization"]
    other = AwsSigV4(None, "s3", "us-east-1")
    reference = botocore_headers(creds, "GET", url, "us-east-1", "s3")
    assert other.sign(creds, "GET", url, when_of(reference))["Authorization"] == reference["Authorization"]


class Credentials:
    """aiobotocore's refreshable credentials as the trigger holds them: each call may renew."""

    def __init__(self, *frozen_credentials):
        self.queue = list(frozen_credentials)

    async def get_frozen_credentials(self):
        return self.queue.pop(0) if len(self.queue) > 1 else self.queue[0]


def test_sigv4_aheaders_signs_now_in_utc_and_masks_the_credentials(monkeypatch):
    monkeypatch.setenv("TZ", "Etc/GMT-5")  # local time five hours ahead of UTC
    time.tzset()
    try:
        first = frozen(secret=f"aws/secret+{uuid.uuid4().hex}", token=f"session/{uuid.uuid4().hex}+")
        renewed = frozen(secret=f"aws/renewed+{uuid.uuid4().hex}", token=f"session/{uuid.uuid4().hex}=")
        auth = AwsSigV4(Credentials(first, first, renewed), "wisdom", "eu-west-2")
        url = "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases?maxResults=5"
        for creds in (first, first, renewed):
            headers = run(auth.aheaders(None, "GET", url))
            signed_at = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            assert abs((signed_at - datetime.now(UTC)).total_seconds()) < 3600  # UTC, not local time
            reference = AwsSigV4(None, "wisdom", "eu-west-2").sign(creds, "GET", url, signed_at)
            assert headers == reference
            assert headers["x-amz-security-token"] == creds.token
            assert redact(f"{creds.secret_key} {creds.token}") == "*** ***"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_sigv4_method_and_url_decide_the_signature():
    creds = frozen()
    auth = AwsSigV4(Credentials(creds), "wisdom", "eu-west-2")
    wrapped = WithHeaders(auth, {"x-extra": "1"})
    url = "https://wisdom.eu-west-2.amazonaws.com/knowledgeBases/kb-1"
    headers = run(wrapped.aheaders(None, "DELETE", url))
    when = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert headers == {**auth.sign(creds, "DELETE", url, when), "x-extra": "1"}
    assert headers["Authorization"] != auth.sign(creds, "GET", url, when)["Authorization"]


def test_sigv4_is_async_only_and_a_401_is_final():
    auth = AwsSigV4(None, "wisdom", "eu-west-2")
    with pytest.raises(
        NotImplementedError, match="^AwsSigV4 signs async requests only; use a boto3 client in a worker$"
    ):
        auth.headers(None)
    assert auth.invalidate() is False
