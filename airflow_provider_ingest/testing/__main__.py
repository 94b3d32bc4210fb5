"""``python -m airflow_provider_ingest.testing``: run moto S3 and every vendor fake until stopped.

Prints (and with ``--env-file`` writes) the ``AIRFLOW_CONN_*`` variables that point Airflow at them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import threading
from datetime import UTC, datetime, timedelta

from airflow_provider_ingest.testing.stack import DEMO_BUCKET, connection_env, seed_demo_data, start_stack


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--public-host", help="host name in the URLs handed out (default: --host)")
    parser.add_argument(
        "--env-file",
        help="write 'export NAME=value' lines here once everything is up (e.g. .local/fakes.env; "
        "it holds the fakes' credentials, so keep it out of the repository)",
    )
    parser.add_argument(
        "--seed-date",
        action="append",
        default=[],
        help=f"put sample data under s3://{DEMO_BUCKET}/{{events,knowledge}}/DATE/ (repeatable; "
        "DATE can be 'today' or 'yesterday', in UTC, what a daily schedule reads)",
    )
    args = parser.parse_args(argv)

    stack = start_stack(args.host, args.public_host)
    today = datetime.now(UTC).date()
    relative = {"today": str(today), "yesterday": str(today - timedelta(days=1))}
    for day in (relative.get(day, day) for day in args.seed_date):
        keys = seed_demo_data(stack.s3_client(), day)
        print(f"seeded {len(keys)} files for {day} in s3://{DEMO_BUCKET}/", flush=True)
    env = connection_env(stack.connections())
    lines = [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    if args.env_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.env_file)), exist_ok=True)  # e.g. .local/
        tmp = f"{args.env_file}.tmp"
        with open(tmp, "w") as env_file:
            env_file.write("\n".join(lines) + "\n")
        os.replace(tmp, args.env_file)  # appears whole: scripts wait for the file
        # The variables hold the fakes' credentials: name them, keep their values out of logs.
        print(f"wrote {', '.join(env)} to {args.env_file}", flush=True)
    else:
        print("\n".join(lines), flush=True)

    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    stack.stop()


if __name__ == "__main__":
    main()
