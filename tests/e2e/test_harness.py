"""The e2e harness's own process helpers (no deployment is started for these)."""

from __future__ import annotations

import os
import subprocess
import sys

from e2e.conftest import session_of


def test_session_of_a_running_process_and_of_one_that_is_gone():
    """Killing a stack process lists /proc and reads each entry's stat; an entry can vanish in
    between (its process exited), which must read as "in no session", not fail the kill."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    assert session_of(child.pid) == os.getsid(child.pid)
    child.communicate(b"")  # the child exits and is reaped: its /proc entry is gone
    assert session_of(child.pid) is None
