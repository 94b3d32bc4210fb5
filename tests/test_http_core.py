"""The shared HTTP core against a scripted local server: retries, Retry-After, errors, masking."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.http import (
    ApiClient,
    AsyncApiClient,
    RetryPolicy,
    StaticAuth,
    Timeouts,
    close_shared_sessions,
    mask,
    parse_retry_after,
)

FAST = RetryPolicy(attempts=4, backoff=0.01, backoff_max=0.05)


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next scripted reply: (status, body, headers), "drop", or
    ("hold", reply): that reply, sent only once ``released`` is set (or after 10 s)."""

    daemon_threads = True

    def __init__(self, bind_and_activate=True):
        super().__init__(("127.0.0.1", 0), _Handler, bind_and_activate=bind_and_activate)
        self.released = threading.Event()
        self.script: deque = deque()
        self.seen: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append((self.command, self.path))
        reply = self.server.script.popleft() if self.server.script else (200, {"ok": True}, {})
        if reply[0] == "hold":
            self.server.released.wait(10)
            reply = reply[1]
        if reply == "drop":
            self.close_connection = True
            self.connection.close()
            return
        status, body, headers = reply
        payload = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _reply


@pytest.fixture
def server():
    srv = Scripted()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.released.set()
    srv.shutdown()


def client(server, retry=FAST):
    return ApiClient("Test API", server.url, retry=retry)


def test_retries_503_then_succeeds(server):
    server.script.extend([(503, {}, {}), (502, {}, {})])
    assert client(server).json("GET", "things") == {"ok": True}
    assert len(server.seen) == 3


def test_honours_retry_after(server):
    server.script.append((429, {"message": "slow down"}, {"Retry-After": "1"}))
    started = time.monotonic()
    client(server).json("GET", "things")
    assert time.monotonic() - started >= 1.0
    assert len(server.seen) == 2


def test_no_retry_on_400_and_error_carries_status_and_message(server):
    server.script.append((400, {"code": "BadRequest", "message": "source.uris: bad"}, {}))
    with pytest.raises(IngestApiError) as info:
        client(server).json("POST", "jobs?sig=SECRETSIG", json={})
    assert len(server.seen) == 1
    err = info.value
    assert (err.status, err.code, err.server_message) == (400, "BadRequest", "source.uris: bad")
    assert "Test API POST" in str(err) and "/jobs" in str(err)
    assert "SECRETSIG" not in str(err)  # query strings (presigned signatures) never in errors


def test_gives_up_after_budget_naming_status_and_endpoint(server):
    server.script.extend([(503, {"message": "down"}, {})] * 10)
    with pytest.raises(IngestApiError) as info:
        client(server).json("GET", "jobs/1")
    assert len(server.seen) == FAST.attempts
    assert info.value.status == 503 and "/jobs/1" in str(info.value)


def test_dropped_connection_retried_for_get_not_for_post(server):
    server.script.extend(["drop", (200, {"n": 1}, {})])
    assert client(server).json("GET", "jobs") == {"n": 1}
    server.seen.clear()
    server.script.extend(["drop", (200, {"n": 2}, {})])
    with pytest.raises(IngestApiError) as info:
        client(server).json("POST", "jobs", json={})
    assert info.value.status is None
    assert len(server.seen) == 1  # never sent twice: the server may have acted on it


@pytest.mark.parametrize("side", ["sync", "async"])
def test_a_reply_slower_than_the_read_timeout_is_abandoned_and_retried(server, side):
    # The first reply is held back (until the test ends, or 10 s): a client without a read timeout
    # would wait for it and return it; one with a read timeout gives up and asks again.
    server.script.extend([("hold", (200, {"reply": "late"}, {})), (200, {"reply": "second"}, {})])
    timeouts = Timeouts(connect=5, read=0.3)
    if side == "sync":
        body = ApiClient("Test API", server.url, retry=FAST, timeouts=timeouts).json("GET", "jobs")
    else:

        async def scenario():
            try:
                return await AsyncApiClient("Test API", server.url, retry=FAST, timeouts=timeouts).json(
                    "GET", "jobs"
                )
            finally:
                await close_shared_sessions()

        body = asyncio.run(scenario())
    assert body == {"reply": "second"} and len(server.seen) == 2


@pytest.mark.parametrize("side", ["sync", "async"])
def test_a_post_to_a_refused_port_is_retried_because_it_never_left(side):
    """The port is bound but not listening, so the first try is refused; the auth (called once per
    try, before connecting) starts listening on the second try, which then reaches the server."""
    srv = Scripted(bind_and_activate=False)
    srv.server_bind()
    srv.script.append((201, {"created": 1}, {}))

    class ListenOnSecondTry(StaticAuth):
        tries = 0

        def _count(self):
            type(self).tries += 1
            if self.tries == 2:
                srv.server_activate()
                threading.Thread(target=srv.serve_forever, daemon=True).start()
            return {}

        def headers(self, client, method="GET", url=""):
            return self._count()

        async def aheaders(self, client, method="GET", url=""):
            return self._count()

    auth = ListenOnSecondTry()
    try:
        if side == "sync":
            body = ApiClient("Test API", srv.url, auth, FAST).json("POST", "jobs", json={})
        else:

            async def scenario():
                try:
                    return await AsyncApiClient("Test API", srv.url, auth, FAST).json("POST", "jobs", json={})
                finally:
                    await close_shared_sessions()

            body = asyncio.run(scenario())
    finally:
        srv.shutdown() if ListenOnSecondTry.tries >= 2 else srv.server_close()
    assert body == {"created": 1} and ListenOnSecondTry.tries == 2 and srv.seen == [("POST", "/jobs")]


def test_connection_refused_is_retried_then_fails():
    c = ApiClient("Test API", "http://127.0.0.1:9", retry=FAST)
    with pytest.raises(IngestApiError, match="no HTTP response"):
        c.json("POST", "jobs", json={})


def test_secret_in_server_message_is_redacted(server):
    mask("s3cr3t-api-key-value")
    server.script.append((403, {"message": "key s3cr3t-api-key-value is not allowed"}, {}))
    with pytest.raises(IngestApiError) as info:
        client(server).json("GET", "x")
    assert "s3cr3t-api-key-value" not in str(info.value)


def test_retry_after_http_date():
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after(future) <= 31
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("garbage") is None


def test_async_client_follows_the_same_rules(server):
    async def scenario():
        c = AsyncApiClient("Test API", server.url, retry=FAST)
        server.script.extend([(503, {}, {}), (429, {}, {"Retry-After": "0"})])
        assert await c.json("GET", "jobs") == {"ok": True}
        assert len(server.seen) == 3
        server.script.append((404, {"code": "NotFound", "message": "no job"}, {}))
        with pytest.raises(IngestApiError) as info:
            await c.json("GET", "jobs/9")
        assert info.value.status == 404 and len(server.seen) == 4
        server.script.extend(["drop"])
        with pytest.raises(IngestApiError):
            await c.json("POST", "jobs", json={})
        assert len(server.seen) == 5
        await close_shared_sessions()

    asyncio.run(scenario())


def test_shared_sessions_close_when_the_loop_ends_without_being_asked(server):
    """As ``dag.test`` runs a trigger: ``asyncio.run`` and no explicit close. A session left open
    warns "Unclosed client session" when collected, at the latest at the interpreter's exit, when
    logging's streams are closed (the "--- Logging error ---" tracebacks after pytest's summary)."""
    from airflow_provider_ingest.http import shared_async_client

    class Closable:
        closed = False

        async def close(self):
            self.closed = True

    async def scenario():
        client = AsyncApiClient("Test API", server.url, retry=FAST)
        assert await client.json("GET", "jobs") == {"ok": True}
        other = await shared_async_client("closable", lambda: asyncio.sleep(0, Closable()), Closable.close)
        return client.session, other

    session, other = asyncio.run(scenario())
    assert session.closed and other.closed


def test_a_request_that_must_not_be_sent_twice_goes_out_on_a_new_connection():
    """A server closes an idle kept-alive connection when its keep-alive timeout ends; a start call
    sent on it at that moment is reset after it left, and its outcome is unknown though the server
    never read it (benchmarks/keepalive_race.py). So a non-idempotent request never reuses one."""
    from airflow_provider_ingest.testing import PolarisFake

    with PolarisFake() as fake:  # uvicorn, which keeps connections alive
        fake.add_fault(path="/things$", action="body", body={"ok": True}, times=100)
        api = ApiClient("Test API", fake.url, retry=FAST)
        api.json("GET", "things")
        api.json("GET", "things")
        api.json("POST", "things", json={})  # a start call: not safe to send twice
        api.json("POST", "things", json={}, idempotent=True)
        api.json("PUT", "things", json={})
        ports = [entry["client_port"] for entry in fake.journal() if entry.get("path") == "/things"]
    assert len(ports) == 5 and None not in ports
    assert ports[1] == ports[0]  # pooled: the kept-alive connection is reused
    assert ports[2] not in ports[:2]  # the start call opened its own
    assert ports[3] == ports[4] == ports[2]  # requests safe to resend reuse it again
