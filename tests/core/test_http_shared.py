"""What triggers share per event loop: aiohttp sessions per origin and network settings, and other
clients opened once (``shared_async_client``), all closed when the loop ends or when asked."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from airflow_provider_ingest.http import (
    AsyncApiClient,
    NetworkSettings,
    RetryPolicy,
    close_shared_sessions,
    shared_async_client,
)
from airflow_provider_ingest.testing.server import FakeService

FAST = RetryPolicy(attempts=3, backoff=0.001, backoff_max=0.001)


class PingFake(FakeService):
    conn_id = None

    def install_routes(self, app: FastAPI) -> None:
        @app.get("/ping")
        async def ping() -> JSONResponse:
            return JSONResponse({"pong": True})


@pytest.fixture(scope="module")
def fake():
    with PingFake() as running:
        yield running


class Opener:
    """Opens numbered clients (``client-1``, ...); ``fail`` makes the next opening raise."""

    def __init__(self):
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.fail = False

    async def open(self) -> str:
        await asyncio.sleep(0)  # callers arrive while it is opening
        if self.fail:
            self.fail = False
            raise ConnectionError("cannot open")
        self.opened.append(f"client-{len(self.opened) + 1}")
        return self.opened[-1]

    async def close(self, client: str) -> None:
        self.closed.append(client)


def test_many_callers_share_one_opening_and_it_is_closed_at_the_end():
    opener = Opener()

    async def scenario():
        clients = await asyncio.gather(
            *(shared_async_client("k", opener.open, opener.close) for _ in range(20))
        )
        again = await shared_async_client("k", opener.open, opener.close)
        other = await shared_async_client("other", opener.open, opener.close)
        return clients, again, other

    clients, again, other = asyncio.run(scenario())
    assert set(clients) == {"client-1"} and again == "client-1" and other == "client-2"
    assert sorted(opener.closed) == ["client-1", "client-2"]  # closed when the loop ended


def test_a_failed_opening_is_retried_by_the_next_caller():
    opener = Opener()
    opener.fail = True

    async def scenario():
        with pytest.raises(ConnectionError, match="cannot open"):
            await shared_async_client("k", opener.open, opener.close)
        client = await shared_async_client("k", opener.open, opener.close)
        await close_shared_sessions()
        return client

    assert asyncio.run(scenario()) == "client-1"
    assert opener.closed == ["client-1"]


def test_max_age_opens_a_fresh_value_after_it_and_keeps_it_before():
    opener = Opener()

    async def scenario():
        first = await shared_async_client("k", opener.open, max_age=3600)
        kept = await shared_async_client("k", opener.open, max_age=3600)
        # older than the monotonic clock itself: nothing opened since it started is that old
        assert await shared_async_client("k", opener.open, max_age=time.monotonic()) == "client-1"
        fresh = await shared_async_client("k", opener.open, max_age=-1)
        return first, kept, fresh

    assert asyncio.run(scenario()) == ("client-1", "client-1", "client-2")
    assert opener.closed == []  # no close_client: values are only dropped


def test_closing_skips_clients_without_close_and_openings_that_failed():
    opener, failing = Opener(), Opener()
    failing.fail = True

    async def scenario():
        await shared_async_client("plain", opener.open)  # no close_client
        with pytest.raises(ConnectionError):
            await shared_async_client("failing", failing.open, failing.close)
        await shared_async_client("closable", opener.open, opener.close)
        await close_shared_sessions()
        closed_first = list(opener.closed)
        await close_shared_sessions()  # nothing left: closing twice closes nothing twice
        return closed_first

    assert asyncio.run(scenario()) == ["client-2"]
    assert opener.closed == ["client-2"] and failing.closed == []


def test_a_caller_that_stops_waiting_does_not_cancel_the_opening_for_others():
    opener = Opener()

    async def scenario():
        impatient = asyncio.ensure_future(shared_async_client("k", opener.open, opener.close))
        await asyncio.sleep(0)
        impatient.cancel()
        return await shared_async_client("k", opener.open, opener.close)

    assert asyncio.run(scenario()) == "client-1"
    assert opener.opened == ["client-1"] and opener.closed == ["client-1"]


def test_each_loop_has_its_own_clients():
    opener = Opener()
    assert asyncio.run(shared_async_client("k", opener.open)) == "client-1"
    assert asyncio.run(shared_async_client("k", opener.open)) == "client-2"


# --- sessions ------------------------------------------------------------------------------------------
def test_clients_of_one_origin_and_settings_share_a_session(fake):
    async def scenario():
        a = AsyncApiClient("A", fake.url, retry=FAST)
        b = AsyncApiClient("B", f"{fake.url}/other/base", retry=FAST)
        c = AsyncApiClient("C", fake.url, retry=FAST, network=NetworkSettings(verify=False))
        assert await a.json("GET", "ping") == {"pong": True}
        assert a.session is b.session and a.session is not c.session
        first = a.session
        await close_shared_sessions()
        assert first.closed
        assert await b.json("GET", f"{fake.url}/ping") == {"pong": True}  # a closed session is replaced
        assert b.session is not first and not b.session.closed
        return b.session

    session = asyncio.run(scenario())
    assert session.closed  # closed when the loop ended


def test_sessions_close_when_the_loop_ends_even_when_the_first_call_is_not_a_request(fake):
    opener = Opener()

    async def scenario():
        await shared_async_client("k", opener.open, opener.close)  # installs the loop's guard
        client = AsyncApiClient("A", fake.url, retry=FAST)
        assert await client.json("GET", "ping") == {"pong": True}
        return client.session

    assert asyncio.run(scenario()).closed and opener.closed == ["client-1"]


def test_the_first_request_of_a_process_that_never_loaded_aiohttp_works(fake, monkeypatch):
    """DAG parsing never imports aiohttp, so a triggerer's first request imports it (in a thread,
    off the loop every other wait shares). Here aiohttp's top module is forgotten to get there."""
    import sys

    monkeypatch.delitem(sys.modules, "aiohttp", raising=False)  # loaded by an earlier test, or not

    async def scenario():
        try:
            return await AsyncApiClient("A", fake.url, retry=FAST).json("GET", "ping")
        finally:
            await close_shared_sessions()

    assert asyncio.run(scenario()) == {"pong": True}
    assert "aiohttp" in sys.modules


def test_an_opening_that_fails_after_its_only_caller_stopped_waiting_is_not_closed():
    opener = Opener()
    opener.fail = True

    async def scenario():
        impatient = asyncio.ensure_future(shared_async_client("k", opener.open, opener.close))
        await asyncio.sleep(0)  # the opening has started
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        await close_shared_sessions()  # waits for the opening, which fails: nothing to close

    asyncio.run(scenario())
    assert opener.opened == [] and opener.closed == []
