"""How long each example DAG file takes to parse, and whether parsing touches the network.

Each file is executed in a fresh interpreter that has already imported ``airflow.sdk`` (as the
dag-processor has), with every socket connect and DNS lookup refused and recorded. Two timings:

- *bytecode cached*: ``.pyc`` files exist, as after ``pip install`` (which compiles them). The
  bytecode goes to a private ``PYTHONPYCACHEPREFIX`` filled by a warm-up run, so the tree and the
  venv are left as they are.
- *no bytecode*: every module compiled from source on import, as with ``PYTHONDONTWRITEBYTECODE=1``
  over a venv installed without ``--compile-bytecode`` (uv's default).

Each is the median of ``--runs`` parses (min and max shown too: the machine is shared). Prints
one JSON line per file and, unless ``--no-write`` or ``--check`` (one parse per file, no
timing table), replaces the table between the
``dag_parse`` markers in docs/benchmarks.md.

    .venv/bin/python benchmarks/dag_parse.py [--runs 5] [--no-write] [dags/*.py]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:dag_parse:start -->", "<!-- bench:dag_parse:end -->"

PROBE = r"""
import importlib.util, json, socket, sys, time
import airflow.sdk  # noqa: F401 - loaded in the dag-processor before any DAG file

refused = []

def refuse(*args, **kwargs):
    refused.append(repr(args[:2]))
    raise OSError("network access while parsing a DAG file")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.getaddrinfo = socket.create_connection = refuse
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
seconds = time.perf_counter() - start
modules = sorted({name.split(".")[0] for name in set(sys.modules) - before if not name.startswith("_")})
print(json.dumps({"file": sys.argv[1], "seconds": round(seconds, 3), "network": refused, "modules": modules}))
"""


def parse(dag_file: Path, env: dict[str, str] | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def timings(dag_file: Path, runs: int, env: dict[str, str]) -> tuple[list[float], list[str]]:
    reports = [parse(dag_file, env) for _ in range(runs)]
    return [r["seconds"] for r in reports], sorted({n for r in reports for n in r["network"]})


def summary(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.3f} ({min(seconds):.3f}-{max(seconds):.3f})"


def write_doc(rows: list[dict], runs: int, command: str) -> None:
    table = [
        START,
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs (`nproc`: "
        f"{len(os.sched_getaffinity(0))}), Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.2f}, {runs} runs each; seconds to execute the DAG file after "
        "`import airflow.sdk`, median (min-max).",
        "",
        f"    {command}",
        "",
        "| DAG file | bytecode cached | no bytecode | network calls while parsing |",
        "|---|---|---|---|",
    ]
    for row in rows:
        table.append(
            f"| `{row['file']}` | {summary(row['warm'])} | {summary(row['cold'])} | "
            f"{', '.join(row['network']) or 'none'} |"
        )
    table.append(END)
    block = "\n".join(table)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## DAG parse time: `benchmarks/dag_parse.py`\n\n" + block + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md")
    parser.add_argument("--check", action="store_true", help="one parse per file, no table (for tests)")
    args = parser.parse_args(argv)
    files = args.files or sorted((ROOT / "dags").glob("*.py"))
    if args.check:
        for dag_file in files:
            report = parse(dag_file)
            print(json.dumps({k: report[k] for k in ("file", "seconds", "network")}))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="dag-parse-pyc-") as pyc:
        warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        warm["PYTHONPYCACHEPREFIX"] = pyc
        cold = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": pyc + "-empty"}
        for dag_file in files:
            parse(dag_file, warm)  # writes the bytecode
            warm_s, network = timings(dag_file, args.runs, warm)
            cold_s, cold_network = timings(dag_file, args.runs, cold)
            name = os.path.relpath(dag_file.resolve(), ROOT)
            row = {"file": name, "warm": warm_s, "cold": cold_s, "network": sorted({*network, *cold_network})}
            rows.append(row)
            print(json.dumps(row))
    if not args.no_write:
        command = shlex.join([".venv/bin/python", "benchmarks/dag_parse.py", *argv])
        write_doc(rows, args.runs, command)
        print(f"wrote {os.path.relpath(DOC, ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
