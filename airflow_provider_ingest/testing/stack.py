"""Start moto's S3 server and the vendor fakes together, and describe them as Airflow connections."""

from __future__ import annotations

import json
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

DEMO_BUCKET = "ingest-demo"


def start_moto_s3(host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """moto's S3 (and every other moto service) as a real HTTP server; returns (server, url)."""
    import logging

    from moto.server import ThreadedMotoServer

    # werkzeug logs every request line, query string included: presigned URLs carry signatures.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def aws_connection(
    s3_url: str,
    service_config: dict[str, Any] | None = None,
    key: tuple[str, str] = ("testing", "testing"),
) -> dict[str, Any]:
    """``aws_default`` for the stack: S3 at moto, services moto lacks routed to their fakes."""
    extra: dict[str, Any] = {"endpoint_url": s3_url, "region_name": "us-east-1"}
    if service_config:
        extra["service_config"] = service_config
    return {"conn_type": "aws", "login": key[0], "password": key[1], "extra": extra}


def fake_secrets(fake: Any) -> list[str]:
    """What must never reach a log: the credentials a fake accepts and the tokens it issued."""
    found = [getattr(fake, name, None) for name in ("api_key", "client_secret")]
    found += list(getattr(fake, "aws_keys", {}).values())
    found += list(getattr(fake, "tokens", {}))
    return [value for value in found if isinstance(value, str) and len(value) >= 8]


def connection_env(connections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``{conn_id: connection dict}`` -> the ``AIRFLOW_CONN_<ID>`` JSON env vars Airflow reads."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections.items()}


def sample_events(day: str, rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    lines = [
        json.dumps(
            {
                "timestamp": (start + timedelta(seconds=rng.randrange(86400))).isoformat(),
                "city": rng.choice(["Lisbon", "Osaka", "Quito", "Perth", "Oslo"]),
                "session": f"s{rng.randrange(10_000):05d}",
                "session_length": rng.randrange(1, 3600),
            }
        )
        for _ in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def seed_demo_data(
    s3_client: Any, day: str, bucket: str = DEMO_BUCKET, files: int = 3, rows: int = 100
) -> list[str]:
    """Date-partitioned sample data as the example DAGs expect: event files under
    ``events/<day>/`` and a knowledge content folder under ``knowledge/<day>/``."""
    try:
        s3_client.create_bucket(Bucket=bucket)
    except s3_client.exceptions.BucketAlreadyOwnedByYou:
        pass
    keys = []
    for n in range(files):
        key = f"events/{day}/part-{n:04d}.json"
        s3_client.put_object(Bucket=bucket, Key=key, Body=sample_events(day, rows, seed=n))
        keys.append(key)
    for name, title in [("reset-password", "Reset your password"), ("vpn", "Connect to the VPN")]:
        key = f"knowledge/{day}/articles/{name}.html"
        body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        s3_client.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="text/html")
        keys.append(key)
    key = f"knowledge/{day}/quick_responses.csv"
    quick_responses = (
        "Name,Content,Content Type,Shortcut Key\n"
        "Password reset,Use the self-service portal to reset your password.,text/plain,pwreset\n"
        "VPN,Install the VPN client and sign in with your badge number.,text/plain,vpn\n"
    )
    s3_client.put_object(Bucket=bucket, Key=key, Body=quick_responses.encode(), ContentType="text/csv")
    keys.append(key)
    return keys


class Stack:
    """moto S3 plus one running instance of every fake, on free ports of ``host``.

    ``public_host`` is the name other machines use to reach them (a compose service name), put
    into every URL handed out. The AWS key pair is random, as a real one would be: moto accepts
    any, the eGain fake only this one, and logs can be searched for its secret half.
    """

    def __init__(self, host: str = "127.0.0.1", public_host: str | None = None):
        from airflow_provider_ingest.testing import FAKES, EgainFake

        self.aws_key = (f"AKIA{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30))
        self.s3_server, self.s3_url = start_moto_s3(host)
        self.s3_url = self._public(self.s3_url, host, public_host)
        self.fakes = []
        for fake_class in FAKES:
            extra = {"aws_keys": dict([self.aws_key])} if fake_class is EgainFake else {}
            self.fakes.append(fake_class(s3_endpoint_url=self.s3_url, **extra))
        for fake in self.fakes:
            fake.url = self._public(fake.start(host), host, public_host)

    @staticmethod
    def _public(url: str, host: str, public_host: str | None) -> str:
        return url.replace(f"//{host}:", f"//{public_host}:", 1) if public_host else url

    def connections(self) -> dict[str, dict[str, Any]]:
        service_config: dict[str, Any] = {}
        for fake in self.fakes:
            service_config.update(fake.aws_service_config())
        conns = {"aws_default": aws_connection(self.s3_url, service_config, self.aws_key)}
        conns.update({fake.conn_id: fake.airflow_connection() for fake in self.fakes if fake.conn_id})
        return conns

    def fake(self, name: str) -> Any:
        """The running fake whose class name starts with ``name`` (``"Polaris"``, ``"Egain"``...)."""
        return next(fake for fake in self.fakes if type(fake).__name__.startswith(name))

    def secrets(self) -> list[str]:
        """Every secret handed out so far (tokens are issued as the DAGs run: call it late)."""
        return [self.aws_key[1], *(value for fake in self.fakes for value in fake_secrets(fake))]

    def s3_client(self) -> Any:
        from airflow_provider_ingest.testing.server import moto_s3_client

        return moto_s3_client(self.s3_url, self.aws_key)

    def stop(self) -> None:
        for fake in self.fakes:
            fake.stop()
        self.s3_server.stop()


def start_stack(host: str = "127.0.0.1", public_host: str | None = None) -> Stack:
    return Stack(host, public_host)
