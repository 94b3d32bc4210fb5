"""Defaults read from Airflow's configuration when a DAG file is parsed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import inspect
from airflow_provider_ingest.operators.base import IngestJobOperator
from airflow_provider_ingest.operators.qconnect import QConnectImportQuickResponsesOperator
from airflow_provider_ingest.sensors.base import IngestJobSensor
from airflow_provider_ingest.sensors.qconnect import QConnectImportJobSensor
classes = (IngestJobOperator, QConnectImportQuickResponsesOperator, IngestJobSensor, QConnectImportJobSensor)
print(*(inspect.signature(cls.__init__).parameters["deferrable"].default for cls in classes))
"""


@pytest.mark.parametrize("setting", ["True", "False"])
def test_deferrable_defaults_to_operators_default_deferrable(setting):
    """Like the amazon provider's operators: ``[operators] default_deferrable`` decides."""
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": setting}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [setting] * 4, out.stdout + out.stderr[-2000:]
