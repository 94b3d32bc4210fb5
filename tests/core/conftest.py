"""What every test in tests/core gets: its own asgiref worker thread.

Airflow reads connections in async code (``aget_connection``: hooks' async calls, triggers)
through asgiref's ``sync_to_async``, which runs the lookup on a class-level single-thread
executor. mutmut forks each mutant's test run from a process whose executor already started its
worker thread; the fork inherits the executor without the thread, and the lookup waits forever.
A fresh executor of the same kind (one worker) per test holds under the fork and changes nothing
else. This is the one place for it: tests need no workaround of their own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import SyncToAsync


@pytest.fixture(autouse=True)
def _own_asgiref_executor(monkeypatch):
    executor = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(SyncToAsync, "single_thread_executor", executor)
    yield
    executor.shutdown(wait=False)
