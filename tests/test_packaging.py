"""The provider metadata Airflow reads (``get_provider_info``) and the package metadata around it."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import tomllib
from pathlib import Path

import airflow
import jsonschema
import pytest
from airflow.providers.amazon.get_provider_info import get_provider_info as amazon_provider_info
from airflow.sdk import BaseOperator

from airflow_provider_ingest.get_provider_info import TRANSFER_OPERATORS, get_provider_info

ROOT = Path(__file__).resolve().parent.parent
INFO = get_provider_info()


def test_provider_info_matches_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(INFO, schema)


def test_provider_info_version_is_the_package_version():
    assert INFO["versions"][0] == importlib.metadata.version("airflow-provider-ingest")


def test_entry_point_names_get_provider_info():
    (entry_point,) = [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_ingest.")
    ]
    assert entry_point.load()() == INFO


@pytest.mark.parametrize("integration", INFO["integrations"], ids=lambda i: i["integration-name"])
def test_each_integration_has_a_doc_url_and_an_existing_how_to_guide(integration):
    assert integration["external-doc-url"].startswith("https://")
    assert integration["how-to-guide"]
    for guide in integration["how-to-guide"]:
        assert guide.startswith("/docs/")
        assert (ROOT / guide.lstrip("/")).is_file(), guide


def test_transfers_are_s3_to_each_integration_and_name_importable_operators():
    s3 = "Amazon Simple Storage Service (S3)"
    assert s3 in {i["integration-name"] for i in amazon_provider_info()["integrations"]}
    ours = {i["integration-name"] for i in INFO["integrations"]}
    transfers = INFO["transfers"]
    assert {t["target-integration-name"] for t in transfers} == ours
    assert len(transfers) == len(ours) == len(TRANSFER_OPERATORS)
    for transfer in transfers:
        assert transfer["source-integration-name"] == s3
        assert (ROOT / transfer["how-to-guide"].lstrip("/")).is_file()
        module = importlib.import_module(transfer["python-module"])
        operator = getattr(module, TRANSFER_OPERATORS[transfer["python-module"].rsplit(".", 1)[1]])
        assert issubclass(operator, BaseOperator)
        assert operator.__module__ == module.__name__


@pytest.mark.parametrize("kind", ["hooks", "operators", "sensors", "triggers"])
def test_every_listed_module_imports(kind):
    names = {i["integration-name"] for i in INFO["integrations"]}
    for entry in INFO[kind]:
        assert entry["integration-name"] in names
        for module in entry["python-modules"]:
            importlib.import_module(module)


def test_connection_hook_classes_import_and_match_their_type():
    for connection in INFO["connection-types"]:
        module, _, name = connection["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == connection["connection-type"]


def test_build_check_installs_the_wheel_on_every_declared_python():
    """scripts/build-check.sh installs the wheel on exactly the Python versions pyproject declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    prefix = "Programming Language :: Python :: "
    declared = sorted(
        c.removeprefix(prefix)
        for c in project["classifiers"]
        if re.fullmatch(r"3\.\d+", c.removeprefix(prefix))
    )
    (line,) = [
        line
        for line in (ROOT / "scripts/build-check.sh").read_text().splitlines()
        if line.startswith("VERSIONS=(")
    ]
    checked = sorted(line.removeprefix("VERSIONS=(").removesuffix(")").split())
    assert checked == declared == ["3.11", "3.12", "3.13"]
