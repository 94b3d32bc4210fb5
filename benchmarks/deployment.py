"""The real deployment under load (issue 18 item 2): N mapped Polaris waits on
``docker/local-stack.sh up --triggerers 2 --workers 2`` (PostgreSQL, CeleryExecutor on Redis), side
by side, in the same run and with the same N, with what a user would write instead: a mapped
``PythonOperator`` that starts the job over the REST API and polls it in a ``time.sleep`` loop
(``benchmarks/dags/polaris_sleep_loop.py``).

    .venv/bin/python benchmarks/deployment.py [--n 200] [--job-seconds 60]
    .venv/bin/python benchmarks/deployment.py --n 20          # a check run, about 10 minutes

How it measures:
- The stack runs in a DAG folder of its own (a temporary one holding ``dags/s3_backfill.py`` and
  the peer DAG), with its own port, database and Redis db; moto S3 and the fakes run in this
  process, so their CPU is not the stack's and their journals are at hand. Every Polaris job takes
  ``--job-seconds`` of wall time from its creation (the fake's clock), so a job's end is its
  ``job_created`` journal time plus that.
- The deferrable side is one ``s3_backfill`` run of N day-folders (its AEP branch off: N Polaris
  waits, each deferred to a triggerer); then the peer side, one ``polaris_sleep_loop`` run of the
  same N folders. ``[core] max_active_tasks_per_dag`` is raised so only the workers' slots
  (2 workers x ``--worker-concurrency``) limit the peer. Both poll every 5 s.
- Every 2 s during a side: the task instances in state ``running`` (each holds a worker slot), and
  the RSS of the triggerers' processes. "Slots held per running job" is the sum of running task
  instances over the sum of remote jobs running at those moments.
- Per wait, from the API and the journal: job end -> task instance end (p50/p99), and the last
  job end -> the last task success. Remote jobs created: the fake's ``job_created`` events.
- CPU: utime + stime of every process in each component's session, plus what their reaped
  children used (task processes), read from /proc before and after each side; the triggerers'
  includes their idle loops (the sleep-loop side shows that floor). Triggerer RSS per wait:
  (peak while the side ran - before it) / N, both triggerers summed. A short deferrable run of 6
  waits goes first, not measured, so one-time imports and pools are not counted per wait.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from common import write_table

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docker" / "local-stack.sh"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
REDIS_OWNER_KEY = "airflow-ingest-stack:owner"  # as in docker/local-stack.sh
FIRST_DAY = dt.date(2024, 1, 1)
SIDES = {
    "deferrable": ("s3_backfill", "polaris_ingest", {"run_adobe": False}),
    "sleep_loop": ("polaris_sleep_loop", "load_day", {}),
}
TITLES = {"deferrable": "deferrable (this provider)", "sleep_loop": "PythonOperator + sleep loop"}


# --- the stack ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def claim_redis_db(owner: str) -> str:
    import redis

    for db in range(1, 16):
        client = redis.Redis(db=db)
        if db != 5 and client.dbsize() == 0 and client.set(REDIS_OWNER_KEY, owner, nx=True):
            return f"redis://127.0.0.1:6379/{db}"
    raise RuntimeError("no empty Redis db (1-15) for the benchmark stack")


class Stack:
    def __init__(self, state: Path, env: dict[str, str], fakes: Any):
        self.state, self.env, self.fakes = state, env, fakes
        self.url = f"http://127.0.0.1:{env['STACK_PORT']}"
        self.session = requests.Session()

    def script(self, *args: str) -> None:
        done = subprocess.run(["bash", SCRIPT, *args], env=self.env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"local-stack.sh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def login(self) -> None:
        token = self.session.get(f"{self.url}/auth/token", timeout=30).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}/api/v2/{path}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def components(self) -> dict[str, int]:
        names = (self.state / "components").read_text().split()
        return {name: int((self.state / "pids" / f"{name}.pid").read_text()) for name in names}


def session_usage(session: int) -> tuple[float, int]:
    """CPU seconds (own and reaped children's) and RSS bytes of every process in a session."""
    cpu, rss = 0.0, 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) != session:
            continue
        cpu += sum(int(value) for value in fields[11:15]) / TICKS
        rss += int(fields[21]) * PAGE
    return cpu, rss


def usage(stack: Stack) -> dict[str, tuple[float, int]]:
    """{component kind: (CPU s, RSS bytes)}, triggerers and workers summed."""
    totals: dict[str, list[float]] = {}
    for name, pid in stack.components().items():
        kind = name.split("-")[0] if name.startswith(("triggerer", "worker")) else name
        cpu, rss = session_usage(pid)
        total = totals.setdefault(kind, [0.0, 0])
        total[0] += cpu
        total[1] += rss
    return {kind: (cpu, int(rss)) for kind, (cpu, rss) in totals.items()}


# --- one side -----------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def run_side(stack: Stack, side: str, n: int, job_seconds: float, timeout: float) -> dict[str, Any]:
    dag_id, task_id, extra = SIDES[side]
    polaris = stack.fakes.fake("Polaris")
    before = usage(stack)
    started = time.time()
    conf = {"first_day": str(FIRST_DAY), "days": n, **extra}
    body = {"logical_date": dt.datetime.now(dt.UTC).isoformat(), "conf": conf}
    run_id = stack.api("POST", f"dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
    print(f"{side}: triggered {dag_id} with {n} waits", flush=True)
    samples: list[tuple[float, int]] = []
    peak_triggerer_rss = before["triggerer"][1]
    deadline = started + timeout
    while True:
        tis = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        running = stack.api("GET", tis, params={"state": "running", "task_id_pattern": task_id, "limit": 1})
        samples.append((time.time(), running["total_entries"]))
        peak_triggerer_rss = max(peak_triggerer_rss, usage(stack)["triggerer"][1])
        state = stack.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            break
        if time.time() > deadline:
            raise RuntimeError(f"{side}: the run did not finish in {timeout:.0f} s")
        time.sleep(2)
    ended = time.time()
    after = usage(stack)
    print(f"{side}: run {state} after {ended - started:.0f} s", flush=True)
    if state != "success":
        report_failures(stack, dag_id, run_id)

    instances = []
    offset = 0
    while True:
        page = stack.api(
            "GET",
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"task_id_pattern": task_id, "limit": 100, "offset": offset},
        )
        instances += [ti for ti in page["task_instances"] if ti["task_id"] == task_id]
        offset += len(page["task_instances"])
        if not page["task_instances"] or offset >= page["total_entries"]:
            break
    created = {e["id"]: e["ts"] for e in polaris.journal(event="job_created") if started <= e["ts"] <= ended}
    latencies = []
    for ti in instances:
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        job_id = stack.api("GET", path, params={"map_index": ti["map_index"]})["value"]
        job_end = created[job_id] + job_seconds
        task_end = dt.datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00")).timestamp()
        latencies.append(task_end - job_end)
    ends = [ts + job_seconds for ts in created.values()]
    last_success = max(
        dt.datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00")).timestamp() for ti in instances
    )
    jobs_running = [sum(1 for ts in created.values() if ts <= t < ts + job_seconds) for t, _ in samples]
    held = sum(count for (_, count), jobs in zip(samples, jobs_running, strict=True) if jobs)
    # while every job of the side runs at once (never, when the slots run out first)
    all_running = [count for (_, count), jobs in zip(samples, jobs_running, strict=True) if jobs == n]
    events = sorted([(ts, 1) for ts in created.values()] + [(end, -1) for end in ends])
    peak_jobs = running_now = 0
    for _, step in events:
        running_now += step
        peak_jobs = max(peak_jobs, running_now)
    return {
        "state": state,
        "succeeded": sum(ti["state"] == "success" for ti in instances),
        "jobs": len(created),
        "wall": last_success - started,
        "peak_jobs": peak_jobs,
        "slots_per_job": held / max(1, sum(jobs_running)),
        "slots_max": max(count for _, count in samples),
        "slots_all_running": statistics.mean(all_running) if all_running else None,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "tail": last_success - max(ends),
        "triggerer_cpu": after["triggerer"][0] - before["triggerer"][0],
        "triggerer_rss": (peak_triggerer_rss - before["triggerer"][1]) / n,
        "scheduler_cpu": after["scheduler"][0] - before["scheduler"][0],
        "worker_cpu": after["worker"][0] - before["worker"][0],
    }


def report_failures(stack: Stack, dag_id: str, run_id: str) -> None:
    """Which task instances failed and the error lines of their logs: a failed run is to be
    explained, not rerun (the stack's folder is kept; see main)."""
    page = stack.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
    failed = [ti for ti in page["task_instances"] if ti["state"] in ("failed", "upstream_failed")]
    for ti in failed:
        print(f"  {ti['state']}: {ti['task_id']}[{ti['map_index']}] try {ti['try_number']}", flush=True)
        folder = (
            stack.state
            / "logs"
            / "tasks"
            / f"dag_id={dag_id}"
            / f"run_id={run_id}"
            / f"task_id={ti['task_id']}"
        )
        if ti["map_index"] >= 0:
            folder /= f"map_index={ti['map_index']}"
        for log in sorted(folder.glob("attempt=*.log*")):
            for line in log.read_text(errors="replace").splitlines():
                if '"level":"error"' in line.replace(" ", "") or "Error" in line:
                    print(f"    {log.name}: {line[:400]}", flush=True)


def warm_up(stack: Stack, polaris: Any) -> None:
    """A short deferrable run first, not measured: the triggerers import the provider's trigger
    code and open their HTTP pools once, which is not a per-wait cost."""
    polaris.configure(running_seconds=1)
    body = {"logical_date": dt.datetime.now(dt.UTC).isoformat(), "conf": {"days": 6, "run_adobe": False}}
    body["conf"]["first_day"] = str(FIRST_DAY)
    run_id = stack.api("POST", "dags/s3_backfill/dagRuns", json=body)["dag_run_id"]
    deadline = time.time() + 600
    while stack.api("GET", f"dags/s3_backfill/dagRuns/{run_id}")["state"] not in ("success", "failed"):
        if time.time() > deadline:
            raise RuntimeError("the warm-up run did not finish in 600 s")
        time.sleep(2)
    print("warmed up", flush=True)


def table(results: dict[str, dict[str, Any]], n: int, slots: int, job_seconds: float) -> str:
    rows = [
        ("task instances succeeded", lambda r: f"{r['succeeded']} of {n}"),
        (f"remote jobs created (expected {n})", lambda r: str(r["jobs"])),
        ("first trigger -> last task success", lambda r: f"{r['wall']:.0f} s"),
        ("remote jobs running at once, peak", lambda r: str(r["peak_jobs"])),
        ("worker slots held per running job", lambda r: f"{r['slots_per_job']:.2f}"),
        (
            f"worker slots held while all {n} jobs run, mean",
            lambda r: (
                "never all at once" if r["slots_all_running"] is None else f"{r['slots_all_running']:.2f}"
            ),
        ),
        (f"worker slots held, peak (of {slots})", lambda r: str(r["slots_max"])),
        ("job end -> task success, p50 / p99", lambda r: f"{r['p50']:.1f} s / {r['p99']:.1f} s"),
        ("last job end -> last task success", lambda r: f"{r['tail']:.1f} s"),
        (
            "triggerer CPU (per wait)",
            lambda r: f"{r['triggerer_cpu']:.1f} s ({r['triggerer_cpu'] / n * 1000:.0f} ms)",
        ),
        ("triggerer RSS per wait", lambda r: f"{r['triggerer_rss'] / 1024:.0f} KiB"),
        ("scheduler CPU", lambda r: f"{r['scheduler_cpu']:.1f} s"),
        ("worker CPU (task processes included)", lambda r: f"{r['worker_cpu']:.1f} s"),
    ]
    lines = [
        f"N = {n} mapped Polaris waits, jobs of {job_seconds:.0f} s, 2 triggerers, 2 Celery workers "
        f"({slots} slots).",
        "",
        f"| | {' | '.join(TITLES[side] for side in results)} |",
        f"|---|{'---|' * len(results)}",
    ]
    for label, cell in rows:
        lines.append(f"| {label} | {' | '.join(cell(result) for result in results.values())} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="mapped waits per side")
    parser.add_argument("--job-seconds", type=float, default=60.0, help="how long each Polaris job runs")
    parser.add_argument("--worker-concurrency", type=int, default=6, help="task slots per Celery worker")
    parser.add_argument("--sides", nargs="+", choices=list(SIDES), default=list(SIDES))
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder (logs) afterwards")
    args = parser.parse_args()

    from airflow_provider_ingest.testing.stack import Stack as Fakes
    from airflow_provider_ingest.testing.stack import connection_env, seed_demo_data

    state = Path(tempfile.mkdtemp(prefix="ingest-bench-stack-"))
    dags = state / "dags"
    dags.mkdir()
    (dags / "s3_backfill.py").symlink_to(ROOT / "dags" / "s3_backfill.py")
    (dags / "polaris_sleep_loop.py").symlink_to(ROOT / "benchmarks" / "dags" / "polaris_sleep_loop.py")
    fakes = Fakes()
    polaris = fakes.fake("Polaris")
    polaris.configure(pending_seconds=0)
    s3 = fakes.s3_client()
    for day in range(args.n):
        seed_demo_data(s3, str(FIRST_DAY + dt.timedelta(days=day)), files=1, rows=10)
    fakes_env = state / "fakes.env"
    lines = [f"export {k}={shlex.quote(v)}" for k, v in connection_env(fakes.connections()).items()]
    fakes_env.write_text("\n".join(lines) + "\n")
    fakes_env.chmod(0o600)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "STACK_DIR": str(state / "stack"),
        "STACK_PORT": str(port),
        "STACK_DB": f"airflow_ingest_bench_{port}",
        "STACK_FAKES_ENV": str(fakes_env),
        "STACK_DAGS_FOLDER": str(dags),
        "STACK_WORKER_CONCURRENCY": str(args.worker_concurrency),
        "STACK_SKIP_INSTALL": "1",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "10000",
    }
    env["STACK_REDIS_URL"] = claim_redis_db(env["STACK_DIR"])
    stack = Stack(state / "stack", env, fakes)
    slots = 2 * args.worker_concurrency
    results: dict[str, dict[str, Any]] = {}
    try:
        print(f"starting the stack on port {port} (2 triggerers, 2 workers)", flush=True)
        stack.script("up", "--triggerers", "2", "--workers", "2")
        stack.login()
        warm_up(stack, polaris)
        polaris.configure(running_seconds=args.job_seconds)
        for side in args.sides:
            waves = math.ceil(args.n / slots) if side == "sleep_loop" else 1
            timeout = 900 + args.n * 10 + waves * (args.job_seconds + 60)
            results[side] = run_side(stack, side, args.n, args.job_seconds, timeout)
            if results[side]["state"] != "success":
                args.keep = True  # its logs explain it
    except BaseException:
        args.keep = True
        raise
    finally:
        stack.script("down")
        import psycopg2

        conn = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{env["STACK_DB"]}" WITH (FORCE)')
        conn.close()
        fakes.stop()
        if args.keep:
            print(f"kept {state}", flush=True)
        else:
            shutil.rmtree(state, ignore_errors=True)
    text = table(results, args.n, slots, args.job_seconds)
    print(text, flush=True)
    if not args.no_write:
        write_table("deployment", text)
        write_table("deployment", text, page=ROOT / "README.md")  # issue 18: the table is in the README too
    if any(r["state"] != "success" or r["jobs"] != args.n for r in results.values()):
        sys.exit("a run failed, or a side did not create exactly N jobs")


if __name__ == "__main__":
    main()
