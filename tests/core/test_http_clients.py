"""The sync and async clients over real HTTP, against a small fake on the shared fake base
(testing/server.py): what each try sends (method, URL, headers, body), what comes back, and the
retry rules for statuses, Retry-After, lost and malformed replies, alike on both sides."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from airflow_provider_ingest.exceptions import IngestApiError, IngestApiRejected
from airflow_provider_ingest.http import (
    ApiClient,
    AsyncApiClient,
    RetryPolicy,
    StaticAuth,
    Timeouts,
    close_shared_sessions,
    needs,
)
from airflow_provider_ingest.testing.server import FakeService

FAST = RetryPolicy(attempts=3, backoff=0.001, backoff_max=0.001)
HANG_GUARD = 10.0  # seconds: only against a hang (e.g. a client without timeouts), never a timing
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


class EchoFake(FakeService):
    """``/echo/...`` answers what it received; ``/text`` answers ``?body=`` as plain text with
    ``?status=``; ``/empty`` answers 204. Faults (status, drop, malformed, hold...) come on top."""

    conn_id = None

    def install_routes(self, app: FastAPI) -> None:
        @app.api_route("/echo/{rest:path}", methods=METHODS)
        async def echo(request: Request, rest: str) -> JSONResponse:
            return JSONResponse(
                {
                    "method": request.method,
                    "raw_path": request.scope["raw_path"].decode(),
                    "query": request.url.query,
                    "headers": dict(request.headers),
                    "body": (await request.body()).decode(errors="replace"),
                }
            )

        @app.api_route("/text", methods=METHODS)
        async def text(request: Request) -> PlainTextResponse:
            params = request.query_params
            return PlainTextResponse(params.get("body", ""), status_code=int(params.get("status", "200")))

        @app.get("/empty")
        async def empty() -> Response:
            return Response(status_code=204)


@pytest.fixture(scope="module")
def echo_server():
    with EchoFake() as fake:
        yield fake


@pytest.fixture
def fake(echo_server):
    echo_server.reset()
    yield echo_server
    echo_server.reset()


def requests_to(fake, path: str) -> list[dict[str, Any]]:
    return [e for e in fake.journal() if e.get("path") == path]


class Side:
    """One client interface for both sides: ``side.json(...)`` / ``side.request(...)`` run the sync
    client, or the async one in a fresh event loop (closing its shared sessions after)."""

    def __init__(self, name: str, fake: EchoFake, **kwargs: Any):
        self.name = name
        self.client = (ApiClient if name == "sync" else AsyncApiClient)(
            "Echo API", fake.url, **{"retry": FAST, **kwargs}
        )

    def _run(self, call):
        if self.name == "sync":
            return call()

        async def scenario():
            try:
                return await asyncio.wait_for(call(), HANG_GUARD)
            finally:
                await close_shared_sessions()

        return asyncio.run(scenario())

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._run(lambda: self.client.json(method, path, **kwargs))

    def status_and_body(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, JSON or None) as each side reports a plain request."""
        if self.name == "sync":
            response = self.client.request(method, path, **kwargs)
            return response.status_code, (response.json() if response.text else None)
        return self._run(lambda: self.client.request(method, path, **kwargs))


@pytest.fixture(params=["sync", "async"])
def side(request, fake):
    return lambda **kwargs: Side(request.param, fake, **kwargs)


class SigningAuth(StaticAuth):
    """Signs each try: the method and the URL it is told go into a header, with a try counter."""

    def __init__(self):
        super().__init__({"Authorization": "Bearer t0ken", "X-Shared": "from-auth"})
        object.__setattr__(self, "calls", [])

    def _headers(self, client, method, url):
        self.calls.append((client, method, url))
        return {**self.fixed, "X-Signed": f"{method} {url}", "X-Try": str(len(self.calls))}

    def headers(self, client, method="GET", url=""):
        return self._headers(client, method, url)

    async def aheaders(self, client, method="GET", url=""):
        return self._headers(client, method, url)


# --- what a request carries -------------------------------------------------------------------------
def test_a_request_carries_the_auths_headers_and_the_callers_on_top(side):
    auth = SigningAuth()
    s = side(auth=auth)
    echoed = s.json("post", "/echo/jobs?x=1", headers={"X-Shared": "from-call", "X-Call": "c"}, json={"a": 1})
    url = f"{s.client.base_url}/echo/jobs?x=1"
    assert echoed["method"] == "POST" and echoed["raw_path"] == "/echo/jobs" and echoed["query"] == "x=1"
    assert echoed["body"] == '{"a": 1}' or echoed["body"] == '{"a":1}'
    headers = echoed["headers"]
    assert headers["authorization"] == "Bearer t0ken"
    assert (headers["x-shared"], headers["x-call"]) == ("from-call", "c")
    assert headers["x-signed"] == f"post {url}"
    assert auth.calls == [(s.client, "post", url)]


def test_a_request_without_extra_headers_sends_the_auths(side):
    s = side(auth=StaticAuth({"X-Api-Key": "k1"}))
    assert s.json("GET", "echo/a")["headers"]["x-api-key"] == "k1"


def test_paths_join_the_base_url_and_absolute_urls_go_as_they_are(side, fake):
    s = side()
    assert s.json("GET", "echo/a%2Fb/c")["raw_path"] == "/echo/a%2Fb/c"  # a quoted segment stays one
    assert s.json("GET", f"{fake.url}/echo/abs?q=2")["query"] == "q=2"


# --- what comes back ----------------------------------------------------------------------------------
def test_json_returns_the_parsed_reply_and_none_for_an_empty_one(side):
    s = side()
    assert s.json("GET", "echo/x")["method"] == "GET"
    assert s.json("GET", "empty") is None
    assert s.json("GET", "text?body=null") is None


def test_a_plain_request_returns_a_non_json_reply_without_retrying(side, fake):
    s = side()
    assert s.status_and_body("GET", "empty") == (204, None)
    assert s.status_and_body("POST", "echo/p")[1]["method"] == "POST"
    if s.name == "async":  # the async client parses JSON when there is some, else None
        assert s.status_and_body("GET", "text?body=plain") == (200, None)
    else:
        assert s.client.request("GET", "text?body=plain").text == "plain"
    assert s.status_and_body("PUT", "echo/k", json={"k": 1})[1]["body"] in ('{"k": 1}', '{"k":1}')
    fake.add_fault(path="^/echo/m$", action="malformed")
    s.status_and_body("GET", "echo/m") if s.name == "async" else s.client.request("GET", "echo/m")
    assert len(requests_to(fake, "/echo/m")) == 1  # not expected to be JSON: nothing is wrong
    fake.add_fault(path="^/echo/s$", action="body", body={})
    assert s.status_and_body("GET", "echo/s", shape=needs("id")) == (200, {})  # a shape is for json()


def test_a_garbled_reply_is_retried_when_resending_is_safe(side, fake):
    fake.add_fault(path="^/echo/g$", action="malformed")
    assert side().json("GET", "echo/g")["method"] == "GET"
    assert [e["fault"] for e in requests_to(fake, "/echo/g")] == ["malformed", None]


def test_a_garbled_reply_to_a_start_call_is_an_error_naming_it(side, fake):
    fake.add_fault(path="^/echo/g$", action="malformed")
    s = side()
    with pytest.raises(IngestApiError) as info:
        s.json("POST", "echo/g?sig=SECRET", json={})
    err = info.value
    assert (err.method, err.endpoint, err.status, err.code) == (
        "POST",
        f"{fake.url}/echo/g",
        200,
        "MalformedReply",
    )
    assert err.server_message == "the reply is not valid JSON: '{not json'" and err.outcome_unknown
    assert len(requests_to(fake, "/echo/g")) == 1


def test_a_garbled_reply_is_quoted_up_to_200_characters(side, fake):
    garbled = "<html>" + "x" * 300
    with pytest.raises(IngestApiError) as info:
        side().json("POST", f"text?body={garbled}")
    assert info.value.server_message == f"the reply is not valid JSON: {garbled[:200]!r}"


def test_a_reply_without_what_the_call_needs_is_retried_then_named(side, fake):
    fake.add_fault(path="^/echo/s$", action="body", body={"other": 1}, times=5)
    s = side()
    with pytest.raises(IngestApiError) as info:
        s.json("GET", "echo/s", shape=needs("id"))
    assert info.value.server_message == "the reply has no 'id'" and info.value.status == 200
    assert len(requests_to(fake, "/echo/s")) == FAST.attempts
    fake.add_fault(path="^/echo/t$", action="body", body={"id": "j-1"})
    assert s.json("GET", "echo/t", shape=needs("id")) == {"id": "j-1"}


# --- statuses -----------------------------------------------------------------------------------------
def test_retryable_statuses_are_retried_until_the_reply_is_good(side, fake):
    fake.add_fault(path="^/echo/r$", action="status", status=503)
    fake.add_fault(path="^/echo/r$", action="status", status=429)
    assert side().json("GET", "echo/r")["method"] == "GET"
    assert [e["status"] for e in requests_to(fake, "/echo/r")] == [503, 429, 200]


def test_a_retryable_status_that_lasts_ends_in_its_error(side, fake):
    fake.add_fault(path="^/echo/r$", action="status", status=502, times=10)
    with pytest.raises(IngestApiError) as info:
        side().json("POST", "echo/r", json={})
    err = info.value
    assert type(err) is IngestApiError and err.status == 502 and err.code == "Injected"
    assert str(err) == f"Echo API POST {fake.url}/echo/r failed: HTTP 502 [Injected]: injected fault"
    assert len(requests_to(fake, "/echo/r")) == FAST.attempts  # a status reply: the POST did nothing


def test_retry_after_is_waited_for(side, fake):
    fake.add_fault(path="^/echo/r$", action="status", status=429, retry_after="0.2")
    side().json("GET", "echo/r")
    first, second = requests_to(fake, "/echo/r")
    assert second["arrived"] - first["arrived"] >= 0.2


@pytest.mark.parametrize("status", [400, 404, 500])
def test_other_error_statuses_are_final_and_say_what_the_server_said(side, fake, status):
    fake.add_fault(path="^/echo/f$", action="status", status=status)
    with pytest.raises(IngestApiError) as info:
        side().json("get", "echo/f?X-Amz-Signature=abc")
    err = info.value
    assert type(err) is (IngestApiRejected if status < 500 else IngestApiError)
    assert str(err) == f"Echo API GET {fake.url}/echo/f failed: HTTP {status} [Injected]: injected fault"
    assert len(requests_to(fake, "/echo/f")) == 1


def test_an_error_reply_in_plain_text_is_quoted(side):
    with pytest.raises(IngestApiRejected, match=r"HTTP 418: I am a teapot$"):
        side().json("GET", "text?status=418&body=I%20am%20a%20teapot")


class Refreshing(StaticAuth):
    """A token auth: each token is used until ``invalidate``, which the fake's first 401 causes."""

    def __init__(self):
        super().__init__()
        object.__setattr__(self, "token", 1)

    def headers(self, client, method="GET", url=""):
        return {"Authorization": f"Bearer token-{self.token}"}

    async def aheaders(self, client, method="GET", url=""):
        return self.headers(client, method, url)

    def invalidate(self) -> bool:
        object.__setattr__(self, "token", self.token + 1)
        return True


def test_a_401_is_retried_once_with_a_fresh_token(side, fake):
    fake.add_fault(path="^/echo/a$", action="status", status=401)
    assert (
        side(auth=Refreshing()).json("POST", "echo/a", json={})["headers"]["authorization"]
        == "Bearer token-2"
    )
    fake.add_fault(path="^/echo/b$", action="status", status=401, times=5)
    with pytest.raises(IngestApiRejected, match="HTTP 401"):
        side(auth=Refreshing()).json("GET", "echo/b")
    assert len(requests_to(fake, "/echo/b")) == 2


# --- lost replies ------------------------------------------------------------------------------------------
def transport_error(side_name: str, sync: str, asynchronous: str) -> str:
    return sync if side_name == "sync" else asynchronous


def test_a_dropped_connection_is_retried_for_a_get_but_not_for_a_post(side, fake):
    fake.add_fault(path="^/echo/d$", action="drop")
    assert side().json("GET", "echo/d")["method"] == "GET"
    assert len(requests_to(fake, "/echo/d")) == 2
    fake.add_fault(path="^/echo/p$", action="drop")
    s = side()
    with pytest.raises(IngestApiError) as info:
        s.json("POST", "echo/p?token=SECRET", json={})
    err = info.value
    assert type(err) is IngestApiError and err.status is None and err.sent and err.outcome_unknown
    reason = transport_error(s.name, "ConnectionError", "ServerDisconnectedError")
    assert str(err) == f"Echo API POST {fake.url}/echo/p failed: no HTTP response: {reason}"
    assert len(requests_to(fake, "/echo/p")) == 1
    fake.add_fault(path="^/echo/i$", action="drop")
    assert s.json("POST", "echo/i", json={}, idempotent=True)["method"] == "POST"  # told it is safe


def test_a_reply_slower_than_the_read_timeout_is_a_lost_reply(side, fake):
    # held for 3 s at most (a guard): the client must give up long before, after 0.2 s
    fake.add_fault(path="^/echo/h$", action="hold", seconds=3)
    s = side(timeouts=Timeouts(connect=5, read=0.2))
    with pytest.raises(IngestApiError) as info:
        s.json("POST", "echo/h", json={})
    err = info.value
    assert err.status is None and err.sent and err.outcome_unknown
    assert err.server_message == transport_error(s.name, "ReadTimeout", "SocketTimeoutError")


def refused_url() -> str:
    import socket

    with socket.socket() as sock:  # a port nobody listens on (bound, then released)
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_refused_connection_is_retried_for_any_method_then_named(side, fake):
    auth = SigningAuth()
    s = side(auth=auth)
    url = refused_url()
    with pytest.raises(IngestApiError) as info:
        s.json("POST", f"{url}/jobs", json={})
    err = info.value
    assert len(auth.calls) == FAST.attempts  # each try signed again: the request never left
    assert err.status is None and err.sent is False and not err.outcome_unknown
    reason = transport_error(s.name, "ConnectionError", "ClientConnectorError")
    assert str(err) == f"Echo API POST {url}/jobs failed: no HTTP response: {reason}"


# --- bodies --------------------------------------------------------------------------------------------
def test_a_streamed_body_is_made_afresh_for_each_try(fake):
    fake.add_fault(path="^/echo/u$", action="status", status=503)
    made = []

    def body():
        made.append(1)
        return io.BytesIO(b"line 1\nline 2\n")

    echoed = ApiClient("Echo API", fake.url, retry=FAST).json("PUT", "echo/u", data=body)
    assert echoed["body"] == "line 1\nline 2\n" and len(made) == 2
    assert ApiClient("Echo API", fake.url, retry=FAST).json("PUT", "echo/v", data=b"raw")["body"] == "raw"


# --- connections -----------------------------------------------------------------------------------------
def test_without_a_netrc_lookup_the_auths_authorization_header_is_sent(side, fake, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-pass\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    s = side(auth=StaticAuth({"Authorization": "Bearer from-auth"}))
    assert s.json("GET", "echo/n")["headers"]["authorization"] == "Bearer from-auth"
    assert "authorization" not in side().json("GET", "echo/n")["headers"]


@pytest.fixture
def unanswered_port():
    """A port whose accept queue is full: a connect to it is never answered (SYNs are dropped)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}"
    for sock in (*fillers, server):
        sock.close()


def test_a_connect_timeout_is_retried_for_any_method_then_named(side, unanswered_port):
    auth = SigningAuth()
    two_tries = RetryPolicy(attempts=2, backoff=0.001, backoff_max=0.001)
    s = side(auth=auth, retry=two_tries, timeouts=Timeouts(connect=0.1, read=5))
    with pytest.raises(IngestApiError) as info:
        s.json("POST", f"{unanswered_port}/jobs", json={})
    err = info.value
    assert len(auth.calls) == 2 and err.sent is False and err.status is None
    assert err.server_message == transport_error(s.name, "ConnectTimeout", "ConnectionTimeoutError")
