"""One real deployment for every e2e test: ``docker/local-stack.sh up --triggerers 2 --workers 2``
(PostgreSQL metadata database, CeleryExecutor on Redis, separate api-server, scheduler,
dag-processor, two triggerers and two Celery workers), started once for the directory.

Each run has its own api-server port, log-server ports, database (named after the port) and Redis
db (the first empty one, claimed with a key the script checks), so two runs on one machine do not
collide. The fakes run in this process so tests can read their journals and inject faults; the
script is told to use them. The chaos tests (test_chaos.py) kill processes: they run last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests

from airflow_provider_ingest.testing.stack import Stack, connection_env, seed_demo_data

ROOT = Path(__file__).resolve().parents[2]
STACK_SCRIPT = ROOT / "docker" / "local-stack.sh"
TRIGGERED_DAY = "2026-01-15"  # a folder the UI's trigger form points at through `prefix`
FAULT_DAY = "2026-01-16"
FINISHED = {"success", "failed"}
OPENLINEAGE_FILE = "openlineage.jsonl"  # in the stack's state folder: every component appends to it
REDIS_HOST = "redis://127.0.0.1:6379"
REDIS_OWNER_KEY = "airflow-ingest-stack:owner"  # as in docker/local-stack.sh
DEFAULT_STACK_REDIS_DB = 5  # the script's default: a developer's own stack
# Settings the chaos tests need, low so they finish in seconds rather than minutes: a triggerer
# whose heartbeat is 15 s old is dead and its triggers are taken over; a task whose worker has not
# heartbeat for 30 s is failed (and retried).
STACK_SETTINGS = {
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
}
PAGE = 100  # the REST API's largest page ([api] maximum_page_limit)


def pytest_collection_modifyitems(items):
    """The chaos tests kill and restart the stack's processes: they come after the other e2e
    tests (which count what the fakes made), the rest of the suite keeps its order."""
    here = Path(__file__).parent
    e2e = [item for item in items if here in item.path.parents]
    if not e2e:
        return
    first = items.index(e2e[0])
    others = [item for item in items if here not in item.path.parents]
    chaos = [item for item in e2e if item.path.name == "test_chaos.py"]
    items[:] = others[:first] + [item for item in e2e if item not in chaos] + chaos + others[first:]


class Deployment:
    def __init__(self, stack: Stack, url: str, state: Path, env: dict[str, str]):
        self.stack = stack
        self.url = url
        self.state = state
        self.env = env
        self.session = requests.Session()
        token = self.session.get(f"{url}/auth/token", timeout=10).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def api(self, method: str, path: str, **kwargs):
        response = self.session.request(method, f"{self.url}/api/v2/{path}", timeout=30, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def api_all(self, path: str, key: str, **params) -> list[dict]:
        """Every entry of a paged list endpoint."""
        entries: list[dict] = []
        while True:
            page = self.api("GET", path, params={**params, "limit": PAGE, "offset": len(entries)})
            entries += page[key]
            if not page[key] or len(entries) >= page["total_entries"]:
                return entries

    def trigger(self, dag_id: str, conf: dict) -> str:
        """POST a DAG run with a conf, as the trigger form does; returns the run id."""
        body = {"logical_date": dt.datetime.now(dt.UTC).isoformat(), "conf": conf}
        return self.api("POST", f"dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"dags/{dag_id}/dagRuns")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        tis = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def task_instances(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every task instance of ``task_id`` in the run (each map index of a mapped task)."""
        tis = self.api_all(
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances", task_id_pattern=task_id
        )
        return sorted((ti for ti in tis if ti["task_id"] == task_id), key=lambda ti: ti["map_index"])

    def state_store(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict:
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store"
        entries = self.api("GET", path, params={"map_index": map_index})["task_state_store"]
        return {entry["key"]: entry["value"] for entry in entries}

    def result(self, dag_id: str, run_id: str, task_id: str = "summarize"):
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.api("GET", path)["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, attempt: int = 1, map_index: int = -1) -> str:
        folder = (
            self.state / "logs" / "tasks" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        )
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        return (folder / f"attempt={attempt}.log").read_text()

    def wait(self, condition, what: str, timeout: float = 420):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := condition():
                return value
            time.sleep(2)
        raise AssertionError(f"timed out waiting for {what}; processes: {self.stack_status()}")

    # --- the stack's processes ------------------------------------------------------------------
    def script(self, *args: str, timeout: float = 180) -> str:
        """Run ``docker/local-stack.sh ARGS`` on this stack; its output (it must succeed)."""
        done = subprocess.run(
            ["bash", STACK_SCRIPT, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"local-stack.sh {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def stack_status(self) -> str:
        return subprocess.run(
            ["bash", STACK_SCRIPT, "status"], env=self.env, capture_output=True, text=True
        ).stdout

    def pid(self, name: str) -> int:
        """The pid of a stack process, from its pid file (it leads its own session)."""
        return int((self.state / "pids" / f"{name}.pid").read_text())

    def kill(self, name: str) -> list[int]:
        """``kill -9`` a stack process and everything it started (its session: task processes
        sit in process groups of their own), as a crash of its machine would; returns once they
        are gone. Its pid file stays, as after a crash."""
        session = self.pid(name)
        pids = [pid for pid in all_pids() if session_of(pid) == session]
        assert session in pids, f"{name} ({session}) is not running"
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.wait(lambda: not any(map(alive, pids)), f"{name} ({session}) to die after SIGKILL", timeout=60)
        return pids

    def process_of(self, pid: int, names: list[str]) -> str:
        """Which of the stack processes ``names`` started ``pid`` (the one whose session it is in)."""
        session = proc_stat(pid)[3]
        return next(name for name in names if self.pid(name) == session)


def proc_stat(pid: int) -> list:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [fields[0], *map(int, fields[1:4])]


def session_of(pid: int) -> int | None:
    """The session ``pid`` is in, or None once it is gone: a process listed in /proc can exit
    before its stat is read (a task process did, while a worker was being killed under load)."""
    try:
        return proc_stat(pid)[3]
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie nobody reaped yet)."""
    try:
        return proc_stat(pid)[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def claim_redis_db(owner: str) -> int:
    """The first Redis db with no keys (not the script's default), claimed for ``owner`` with the
    key the script checks: a second run on the machine takes another one."""
    for db in range(1, 16):
        client = redis.Redis.from_url(f"{REDIS_HOST}/{db}")
        if (
            db != DEFAULT_STACK_REDIS_DB
            and client.dbsize() == 0
            and client.set(REDIS_OWNER_KEY, owner, nx=True)
        ):
            return db
    raise RuntimeError("no empty Redis db left for the e2e stack (dbs 1-15 all hold keys)")


def drop_database(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def script_env(state: Path, port: int, fakes_env: Path, redis_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "STACK_DIR": str(state),
        "STACK_PORT": str(port),
        "STACK_DB": f"airflow_ingest_e2e_{port}",
        "STACK_REDIS_URL": redis_url,
        "STACK_FAKES_ENV": str(fakes_env),
        "STACK_SKIP_INSTALL": "1",
        # The openlineage provider is installed (dev group); a transport is what enables it. The
        # file transport appends one JSON event per line; the workers' listeners and the
        # scheduler's (DAG run events) write to the same file.
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(state / OPENLINEAGE_FILE), "append": True}
        ),
        **STACK_SETTINGS,
    }


@pytest.fixture(scope="package")
def deployment(tmp_path_factory):
    state = tmp_path_factory.mktemp("stack")
    stack = Stack()
    today = dt.datetime.now(dt.UTC).date()
    for day in (today - dt.timedelta(days=1), today, TRIGGERED_DAY, FAULT_DAY):
        seed_demo_data(stack.s3_client(), str(day))
    fakes_env = state / "fakes.env"
    exports = [f"export {k}={shlex.quote(v)}" for k, v in connection_env(stack.connections()).items()]
    fakes_env.write_text("\n".join(exports) + "\n")
    port = free_port()
    redis_url = f"{REDIS_HOST}/{claim_redis_db(str(state))}"
    env = script_env(state, port, fakes_env, redis_url)
    try:
        started = subprocess.run(
            ["bash", STACK_SCRIPT, "up", "--triggerers", "2", "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        yield Deployment(stack, f"http://127.0.0.1:{port}", state, env)
    finally:
        # down, and the database dropped; the folder stays with pytest's other temporary folders
        # (the last three runs' are kept), for its logs
        subprocess.run(["bash", STACK_SCRIPT, "down"], env=env, capture_output=True, timeout=300)
        drop_database(env["STACK_DB"])
        client = redis.Redis.from_url(redis_url)
        if client.get(REDIS_OWNER_KEY) == str(state).encode():  # `up` failed before it took the db
            client.delete(REDIS_OWNER_KEY)
        stack.stop()
