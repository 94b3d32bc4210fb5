"""docker/ cannot run here (no Docker engine): check that its files parse and describe the same
deployment as docker/local-stack.sh, which the e2e test runs."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tomllib

import yaml
from conftest import ROOT

from airflow_provider_ingest.testing.__main__ import write_env_file

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


def test_the_api_server_listens_on_loopback_unless_told_otherwise(tmp_path):
    assert re.search(r"^STACK_HOST=\$\{STACK_HOST:-127\.0\.0\.1\}$", SCRIPT, re.MULTILINE)
    assert script_settings()["AIRFLOW__API__HOST"] == "$STACK_HOST"
    env = {**os.environ, "STACK_DIR": str(tmp_path)}
    script = str(DOCKER / "local-stack.sh")
    # every user is an admin: another address needs an explicit opt-in, checked before anything runs
    refused = subprocess.run(
        ["bash", script, "status"], env={**env, "STACK_HOST": "0.0.0.0"}, capture_output=True
    )
    assert refused.returncode == 2 and b"STACK_ALLOW_REMOTE_ADMIN=yes" in refused.stderr
    for extra in ({}, {"STACK_HOST": "0.0.0.0", "STACK_ALLOW_REMOTE_ADMIN": "yes"}):
        done = subprocess.run(["bash", script, "status"], env={**env, **extra}, capture_output=True)
        assert done.returncode == 0 and b"api-server: stopped" in done.stdout
    # compose: all interfaces inside the container, published on the host's loopback only
    assert compose()["services"]["api-server"]["ports"] == ["127.0.0.1:8080:8080"]


def test_the_fakes_env_file_is_owner_only_whatever_the_umask(tmp_path):
    path = tmp_path / "fakes.env"
    (tmp_path / "fakes.env.tmp").write_text("stale")
    (tmp_path / "fakes.env.tmp").chmod(0o644)  # a leftover must not lend its mode
    old = os.umask(0)
    try:
        write_env_file(str(path), ["export AIRFLOW_CONN_X=secret"])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "export AIRFLOW_CONN_X=secret\n"
    assert not (tmp_path / "fakes.env.tmp").exists()
