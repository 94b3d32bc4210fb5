"""The base of every REST hook: reads the Airflow connection, builds the shared HTTP clients."""

from __future__ import annotations

from functools import cached_property, partial
from typing import Any

from airflow.sdk import BaseHook, Connection

from airflow_provider_ingest.http import (
    ApiClient,
    AsyncApiClient,
    Auth,
    RetryPolicy,
    Timeouts,
    mask,
    shared_async_client,
)

# Triggers on one connection read it once per CONNECTION_TTL per event loop, not once per wait:
# each aget_connection is a round trip to the triggerer's supervisor (~0.75 ms of the loop even
# from an env var), and thousands of waits share a few connections. An edited connection reaches
# new waits within the TTL.
CONNECTION_TTL = 60.0


class IngestHttpHook(BaseHook):
    """Subclasses set the class attributes and implement :meth:`client_settings`.

    The sync client is built from ``get_connection`` in a worker; the async one from
    ``aget_connection`` inside a trigger, so a trigger carries only the connection id.

    :param conn_id: The Airflow connection to read; the hook's ``default_conn_name`` when None.
    :param retry: How failed requests are retried (``airflow_provider_ingest.http.RetryPolicy``);
        the default retries 429, 502, 503, 504 and connection errors up to 5 tries with
        exponential backoff, honouring ``Retry-After``.
    :param timeouts: Connect and read timeouts (``airflow_provider_ingest.http.Timeouts``); the
        default is 10 s to connect and 60 s to read.
    """

    conn_name_attr = "conn_id"
    default_conn_name: str
    conn_type: str
    hook_name: str
    service: str  # human name used in log lines and errors

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
    ):
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self.retry = retry
        self.timeouts = timeouts
        self._async_client: AsyncApiClient | None = None

    def client_settings(self, conn: Connection) -> tuple[str, Auth]:
        """Return ``(base_url, auth)`` for this connection."""
        raise NotImplementedError

    @staticmethod
    def base_url_of(conn: Connection) -> str:
        host = (conn.host or "").rstrip("/")
        if not host:
            raise ValueError(f"connection {conn.conn_id!r}: the host (API base URL) is empty")
        if "://" not in host:
            host = f"https://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
        return host

    @staticmethod
    def extra_of(conn: Connection) -> dict[str, Any]:
        return conn.extra_dejson or {}

    def _settings(self, conn: Connection) -> tuple[str, Auth]:
        mask(conn.password)
        return self.client_settings(conn)

    @cached_property
    def client(self) -> ApiClient:
        base_url, auth = self._settings(self.get_connection(self.conn_id))
        return ApiClient(self.service, base_url, auth, self.retry, self.timeouts)

    async def aclient(self) -> AsyncApiClient:
        if self._async_client is None:
            read = partial(self.aget_connection, self.conn_id)
            conn = await shared_async_client(("connection", self.conn_id), read, max_age=CONNECTION_TTL)
            base_url, auth = self._settings(conn)
            self._async_client = AsyncApiClient(self.service, base_url, auth, self.retry, self.timeouts)
        return self._async_client

    def get_conn(self) -> ApiClient:
        return self.client

    def probe(self) -> str:
        """One cheap authenticated call for ``test_connection``; returns what it proved."""
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        try:
            return True, self.probe()
        except Exception as exc:  # the UI shows the message; it never carries the secret
            return False, str(exc)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        # Single source: the provider info the UI reads without importing hooks.
        from airflow_provider_ingest.get_provider_info import connection_type

        return connection_type(cls.conn_type)["ui-field-behaviour"]
