"""How long each example DAG file takes to parse, and whether parsing touches the network.

Each file is executed in a fresh interpreter that has already imported ``airflow.sdk`` (as the
dag-processor has), with every socket connect and DNS lookup refused and recorded. Prints one
JSON line per file: seconds, refused network calls, top-level modules the file pulled in.

    .venv/bin/python benchmarks/dag_parse.py [dags/*.py]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


def parse(dag_file: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file)], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    files = [Path(a) for a in argv] or sorted((ROOT / "dags").glob("*.py"))
    for dag_file in files:
        report = parse(dag_file)
        print(json.dumps({k: report[k] for k in ("file", "seconds", "network")}))


if __name__ == "__main__":
    main(sys.argv[1:])
