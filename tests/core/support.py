"""What the direct tests in tests/core share: a fake served for one module under its own
connection id, and async hook calls run as a triggerer runs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_ingest.http import close_shared_sessions


@contextmanager
def serving(fake: Any, conn_id: str) -> Iterator[tuple[Any, pytest.MonkeyPatch]]:
    """``fake`` running, reachable as Airflow connection ``conn_id`` (an id of the module's own,
    so it does not clash with the suite's session fakes); the environment patch is handed over
    for more connections to the same fake."""
    with fake as server, pytest.MonkeyPatch.context() as env:
        env.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(server.airflow_connection()))
        yield server, env


def run(coro_fn):
    """Run an async hook call in a fresh event loop, as a triggerer would (the fork-safe asgiref
    executor it needs under mutmut comes from tests/core/conftest.py)."""

    async def scenario():
        try:
            return await coro_fn()
        finally:
            await close_shared_sessions()

    return asyncio.run(scenario())
