"""How often a start call ends "unknown" because the server closed its kept-alive connection
just as the call went out, with the HTTP core's rule (a request that must not be sent twice goes
out on a new connection) and without it.

A server closes a kept-alive connection that stays idle for its keep-alive timeout (uvicorn, the
fakes' server, and Node: 5 s; gunicorn: 2 s). A client that sends on that connection at that
moment has its request reset after it left: for a POST that starts a job the outcome is unknown,
the operator looks for the job, finds none (the server never read the request) and fails the task
without resending (the exactly-once rule). In ``s3_backfill`` each mapped Polaris task reads the
Polaris connection, infers the schema from S3 (seconds on a loaded machine), then starts the job on
the same kept-alive connection: the likely cause of issue 18's one failed N=200 run.

Each of ``--clients`` threads makes one request on its own ``ApiClient`` (a kept-alive
connection), waits about the server's keep-alive timeout (``--idle`` seconds, spread by
``--jitter``), then sends a non-idempotent POST, ``--rounds`` times. The fake is uvicorn in its own
process (``python -m airflow_provider_ingest.testing``), as in the real deployment.

    .venv/bin/python benchmarks/keepalive_race.py [--clients 40] [--rounds 4] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fake_stack, write_table  # noqa: E402

from airflow_provider_ingest.exceptions import IngestApiError  # noqa: E402
from airflow_provider_ingest.http import ApiClient, RetryPolicy  # noqa: E402


class WithoutTheRule(ApiClient):
    """The HTTP core as it was before the rule: a start call reuses the pooled connection."""

    def _close_pooled_connections(self, url: str) -> None:
        pass


def side(client_class: type[ApiClient], url: str, args: argparse.Namespace) -> Counter:
    outcomes: Counter = Counter()
    lock = threading.Lock()
    rng = random.Random(7)
    gaps = [
        [args.idle + rng.uniform(-args.jitter, args.jitter) for _ in range(args.rounds)]
        for _ in range(args.clients)
    ]

    def client(gaps_of_this_client: list[float]) -> None:
        api = client_class("Polaris", url, retry=RetryPolicy(attempts=1))
        for gap in gaps_of_this_client:
            api.request("GET", "_fake/journal", idempotent=True)  # not journaled, keeps the connection
            time.sleep(gap)  # idle, as a worker between two calls of one task
            try:
                api.request("POST", "bench/start", json={})
                outcome = "started"
            except IngestApiError as exc:
                outcome = "unknown" if exc.outcome_unknown else f"refused ({exc.status})"
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=client, args=(g,)) for g in gaps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--idle", type=float, default=5.0, help="the server's keep-alive timeout (uvicorn: 5 s)"
    )
    parser.add_argument("--jitter", type=float, default=0.03)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    with fake_stack() as env:
        url = _polaris_url(env)
        import requests

        # every POST to /bench/start answers 200 (a fault rule of the fake), so only the connection decides
        requests.post(
            f"{url}/_fake/faults",
            json={"path": "/bench/start$", "action": "body", "body": {"id": "job"}, "times": 1_000_000},
            timeout=10,
        ).raise_for_status()
        results = {}
        for name, cls in (
            ("pooled connection (before)", WithoutTheRule),
            ("new connection (the rule)", ApiClient),
        ):
            results[name] = side(cls, url, args)
            print(name, dict(results[name]), flush=True)

    n = args.clients * args.rounds
    rows = [
        f"{n} start calls, each after {args.idle:g} s ± {args.jitter:g} s idle (the fake's uvicorn "
        f"keep-alive timeout: 5 s), {args.clients} clients at once.",
        "",
        "| start call sent on | started | outcome unknown (the task fails) | other |",
        "|---|---:|---:|---:|",
    ]
    for name, outcomes in results.items():
        other = n - outcomes["started"] - outcomes["unknown"]
        rows.append(f"| {name} | {outcomes['started']} | {outcomes['unknown']} | {other} |")
    table = "\n".join(rows)
    print(table)
    if not args.no_write:
        write_table("keepalive_race", table)


def _polaris_url(env: dict[str, str]) -> str:
    """The Polaris fake's base URL, from its connection (the host is the whole URL)."""
    import json

    conns = [json.loads(value) for name, value in env.items() if name.startswith("AIRFLOW_CONN_")]
    return next(conn["host"] for conn in conns if conn.get("conn_type") == "imply_polaris")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
