"""Shared benchmark set-up: the fake stack in its own process, its connections in this one."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def fake_stack():
    """Start ``python -m airflow_provider_ingest.testing`` in a subprocess (so the servers do not
    share this process's GIL) and load its AIRFLOW_CONN_* variables; yields the env dict."""
    home = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    env_file = home / "fakes.env"
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_ingest.testing", "--env-file", str(env_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while not env_file.exists():
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("the fake stack did not start")
            time.sleep(0.1)
        env = {}
        for line in env_file.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value.strip("'")
        os.environ.update(env)
        yield env
    finally:
        proc.terminate()
        proc.wait(10)
