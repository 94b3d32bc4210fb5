"""docker/ cannot run here (no Docker engine): check that its files parse and describe the same
deployment as docker/local-stack.sh, which the e2e test runs."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
import tomllib
from pathlib import Path

import yaml
from conftest import ROOT

from airflow_provider_ingest.testing.__main__ import write_env_file

DOCKER = ROOT / "docker"
SCRIPT = (DOCKER / "local-stack.sh").read_text()
AIRFLOW_PROCESSES = {"api-server", "scheduler", "dag-processor", "triggerer", "worker"}


def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())


def script_processes() -> dict[str, list[str]]:
    """The script's ``NAME) start NAME "$BIN/airflow" ARGS ;;`` lines -> {NAME: ARGS}."""
    found = re.findall(r'^\s*([\w-]+)\) start \1 "\$BIN/airflow" (.+?) ;;$', SCRIPT, re.MULTILINE)
    return {name: args.split() for name, args in found}


def script_extra_processes() -> dict[str, list[str]]:
    """How it starts the extra ``triggerer-N`` and ``worker-N`` (``up --triggerers/--workers``)."""
    found = re.findall(
        r'^\s*(\w+)-\*\) with_log_port "\$1" start "\$1" "\$BIN/airflow" (.+?) ;;$', SCRIPT, re.MULTILINE
    )
    return {kind: args.split() for kind, args in found}


def script_settings() -> dict[str, str]:
    return dict(re.findall(r"export (AIRFLOW__\w+)=(\S+)", SCRIPT)) | dict(
        re.findall(r"^\s*(AIRFLOW__\w+)=(\S+)", SCRIPT, re.MULTILINE)
    )


def test_the_script_is_valid_bash_and_starts_every_airflow_process():
    subprocess.run(["bash", "-n", str(DOCKER / "local-stack.sh")], check=True)
    assert set(script_processes()) == AIRFLOW_PROCESSES
    # extra triggerers and workers run the first one's command (a worker with a node name of its own)
    extras = script_extra_processes()
    assert extras == {
        "triggerer": script_processes()["triggerer"],
        "worker": [*script_processes()["worker"], "--celery-hostname", '"$1@%h"'],
    }


# Should a change let `up` get past what a test expects it to refuse, it still starts nothing nor
# touches a real stack: no Redis answers there, no fakes file exists, the database is the test's.
HARMLESS = {
    "STACK_SKIP_INSTALL": "1",
    "STACK_PORT": "1",  # nothing listens there
    "STACK_REDIS_URL": "redis://127.0.0.1:1/0",
    "STACK_DB": "airflow_ingest_docker_test",
}


def run_script(tmp_path, *args, **env):
    harmless = {**HARMLESS, "STACK_FAKES_ENV": str(tmp_path / "no-fakes.env")}
    return subprocess.run(
        ["bash", str(DOCKER / "local-stack.sh"), *args],
        env={**os.environ, "STACK_DIR": str(tmp_path), **harmless, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_up_takes_a_number_of_triggerers_and_workers_and_refuses_anything_else(tmp_path):
    for args, message in [
        (["--triggerers", "0"], "--triggerers and --workers take a number from 1 to 9"),
        (["--workers", "two"], "--triggerers and --workers take a number from 1 to 9"),
        (["--workers"], "--workers needs a number"),
        (["--schedulers", "2"], "unknown option --schedulers"),
    ]:
        done = run_script(tmp_path, "up", *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    assert not (tmp_path / "components").exists(), "refused before anything was made"


def test_status_start_and_stop_know_the_extra_processes(tmp_path):
    (tmp_path / "components").write_text(
        "api-server scheduler triggerer triggerer-2 worker worker-2 worker-3\n"
    )
    done = run_script(tmp_path, "status")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        f"{name}: stopped"
        for name in ("api-server", "scheduler", "triggerer", "triggerer-2", "worker", "worker-2", "worker-3")
    ]
    refused = run_script(tmp_path, "start", "worker-4")
    assert refused.returncode == 2 and "no Airflow process named 'worker-4'" in refused.stderr
    assert run_script(tmp_path, "stop").returncode == 2


def test_a_killed_process_nobody_reaped_yet_is_stopped(tmp_path):
    """A process killed by a test stays a zombie until its parent reaps it: `status` and `start`
    must see it as stopped (the chaos tests start what they killed again at once)."""
    zombie = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.05)
    try:
        (tmp_path / "components").write_text("api-server worker\n")
        (tmp_path / "pids").mkdir()
        (tmp_path / "pids" / "worker.pid").write_text(f"{zombie.pid}\n")
        done = run_script(tmp_path, "status")
        assert done.stdout.splitlines() == ["api-server: stopped", "worker: stopped"]
    finally:
        zombie.wait()


def test_up_refuses_a_redis_db_another_stack_holds(tmp_path):
    """A Redis db claimed by another stack (the key `up` sets) is neither used nor cleaned."""
    import redis

    for db in range(1, 16):
        client = redis.Redis(db=db)
        if client.dbsize() == 0 and client.set("airflow-ingest-stack:owner", "/elsewhere", nx=True):
            break
    else:
        raise AssertionError("no empty Redis db to test with")
    try:
        client.sadd("_kombu.binding.default", b"default\x06\x16\x06\x16default")
        client.rpush("default", "a task message of the other stack")
        env = {"STACK_REDIS_URL": f"redis://127.0.0.1:6379/{db}"}
        done = run_script(tmp_path, "up", **env)
        assert done.returncode != 0
        assert f"redis://127.0.0.1:6379/{db} is the broker of the stack in /elsewhere" in done.stderr
        assert client.llen("default") == 1 and client.get("airflow-ingest-stack:owner") == b"/elsewhere"
    finally:
        client.delete("_kombu.binding.default", "default", "airflow-ingest-stack:owner")
        run_script(tmp_path, "purge", **env)  # drops the database, should `up` have gone that far


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
