"""DAG parse cost: the dag-processor re-imports the provider for every parse of a DAG file, so an
operator module of a non-AWS service must not pull in an AWS SDK, an HTTP client or pyarrow at
import time (they are imported where used; see benchmarks/dag_parse.py for the timings)."""

from __future__ import annotations

import json
import subprocess
import sys

NON_AWS_OPERATOR_MODULES = [
    "airflow_provider_ingest.operators.polaris",
    "airflow_provider_ingest.operators.egain",
    "airflow_provider_ingest.operators.adobe_aep",
    "airflow_provider_ingest.operators.zeta_alpha",
]
HEAVY = [
    "botocore",
    "boto3",
    "aiobotocore",
    "pyarrow",
    "aiohttp",
    "requests",
    "urllib3",
    "airflow.providers.amazon.aws.hooks.base_aws",
]

PROBE = r"""
import importlib, json, sys
import airflow.sdk  # noqa: F401 - loaded in the dag-processor before any DAG file

heavy = json.loads(sys.argv[1])
report = {"preloaded": [m for m in heavy if m in sys.modules], "added": {}}
for module in json.loads(sys.argv[2]):
    importlib.import_module(module)
    report["added"][module] = [m for m in heavy if m in sys.modules and m not in report["preloaded"]]
print(json.dumps(report))
"""


def test_non_aws_operator_modules_import_no_heavy_library():
    # One interpreter for all modules: each one is checked right after its own import, so the
    # first module that pulls a library in is the one named.
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), json.dumps(NON_AWS_OPERATOR_MODULES)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Otherwise the check below would be vacuous: airflow.sdk itself must not have loaded them.
    assert report["preloaded"] == []
    assert report["added"] == {module: [] for module in NON_AWS_OPERATOR_MODULES}
