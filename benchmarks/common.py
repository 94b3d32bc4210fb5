"""Shared benchmark set-up: the fake stack in its own process, its connections in this one."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
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


BENCHMARKS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def command_line() -> str:
    """The command that ran this benchmark, as one would type it from the repository root."""
    root = BENCHMARKS_PAGE.parent.parent
    python = Path(sys.executable)
    try:
        python_text = str(python.relative_to(root))
    except ValueError:
        python_text = "python"
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(root))
    except ValueError:
        script_text = sys.argv[0]
    return shlex.join([python_text, script_text, *sys.argv[1:]])


def write_table(
    name: str, rows_markdown: str, command: str | None = None, page: Path = BENCHMARKS_PAGE
) -> None:
    """Put a benchmark's result table into its section of docs/benchmarks.md, between
    ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->``, with the date (UTC), this
    machine's core count and the exact command, so no number there is ever typed by hand.

    ``command`` defaults to this process's own command line. The section must exist."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = page.read_text()
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{page}: expected one '{start}' ... '{end}' section")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"Measured {when} on a machine with {os.cpu_count()} CPU cores by\n\n"
        f"```bash\n{command or command_line()}\n```\n\n{rows_markdown.strip()}\n"
    )
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    page.write_text(f"{before}{start}\n{body}{end}{after}")
    print(f"wrote the {name} table to {page}", flush=True)
