"""docker/ cannot run here (no Docker engine): check that its files parse and describe the same
deployment as docker/local-stack.sh, which the e2e test runs."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml
from conftest import ROOT

DOCKER = ROOT / "docker"
SCRIPT = (DOCKER / "local-stack.sh").read_text()
AIRFLOW_PROCESSES = {"api-server", "scheduler", "dag-processor", "triggerer", "worker"}


def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())


def script_processes() -> dict[str, list[str]]:
    """``start NAME "$BIN/airflow" ARGS`` lines of the script -> {NAME: ARGS}."""
    return {name: args.split() for name, args in re.findall(r'start (\S+) "\$BIN/airflow" (.+)', SCRIPT)}


def script_settings() -> dict[str, str]:
    return dict(re.findall(r"export (AIRFLOW__\w+)=(\S+)", SCRIPT)) | dict(
        re.findall(r"^\s*(AIRFLOW__\w+)=(\S+)", SCRIPT, re.MULTILINE)
    )


def test_the_script_is_valid_bash_and_starts_every_airflow_process():
    subprocess.run(["bash", "-n", str(DOCKER / "local-stack.sh")], check=True)
    assert set(script_processes()) == AIRFLOW_PROCESSES


def test_compose_runs_the_same_processes_as_the_script():
    services = compose()["services"]
    assert {"postgres", "redis", "fakes", "airflow-init"} | AIRFLOW_PROCESSES == set(services)
    for name, args in script_processes().items():
        assert services[name]["command"] == args, name
    fakes = services["fakes"]["entrypoint"]
    assert fakes[:3] == ["python", "-m", "airflow_provider_ingest.testing"]
    assert "--public-host=fakes" in fakes and "--env-file=/opt/airflow/shared/fakes.env" in fakes


def test_compose_sets_the_same_airflow_settings_as_the_script():
    settings = script_settings()
    common = compose()["x-airflow-common"]
    env = common["environment"]
    # The JWT secret is made per deployment: a file in the script, jwt.env on a volume in compose.
    assert set(env) | {"AIRFLOW__API_AUTH__JWT_SECRET"} == set(settings)
    for name, value in settings.items():
        if "$" not in value:  # host-independent values must match exactly
            assert env[name] == value, name
    assert "source /opt/airflow/shared/fakes.env" in common["entrypoint"][2]
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in compose()["services"]["airflow-init"]["entrypoint"][2]


def test_the_image_is_the_locked_airflow_version_with_this_package():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    airflow = next(p["version"] for p in lock["package"] if p["name"] == "apache-airflow")
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(rf"^FROM apache/airflow:{re.escape(airflow)}-python3\.11$", dockerfile, re.MULTILINE)
    assert '"/opt/airflow-provider-ingest[testing,deploy]"' in dockerfile
    assert "COPY --chown=airflow:root dags /opt/airflow/dags" in dockerfile
