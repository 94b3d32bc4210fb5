"""OAuth 2.0 client-credentials tokens, cached once per process for every hook and trigger.

Thousands of deferred waits on one connection share one token: the cache is keyed by token URL,
client id and scope, renewed shortly before expiry, and dropped on a 401 so the request is
retried once with a fresh token (see ``RetryBudget``).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from airflow_provider_ingest.http import (
    ApiClient,
    AsyncApiClient,
    RetryPolicy,
    StaticAuth,
    Timeouts,
    mask,
)


@dataclass
class _Token:
    value: str
    expires_at: float


_tokens: dict[tuple[str, ...], _Token] = {}
_sync_lock = threading.Lock()
_async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def clear_token_cache() -> None:
    """Forget every cached token (tests; a process that rotated a client secret)."""
    _tokens.clear()


class OAuthClientCredentials:
    """An :class:`~airflow_provider_ingest.http.Auth` that sends ``Authorization: Bearer <token>``."""

    def __init__(
        self,
        service: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        *,
        renew_before: float = 60.0,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
    ):
        mask(client_secret)
        self.service = f"{service} token endpoint"
        self.token_url = token_url
        self.form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            **({"scope": scope} if scope else {}),
        }
        # The secret's digest is part of the key: a wrong secret must not reuse a good token.
        self.key = (token_url, client_id, scope, hashlib.sha256(client_secret.encode()).hexdigest())
        self.renew_before = renew_before
        self.retry = retry
        self.timeouts = timeouts

    def _cached(self) -> str | None:
        token = _tokens.get(self.key)
        if token and token.expires_at - self.renew_before > time.time():
            return token.value
        return None

    def _store(self, reply: Any) -> str:
        if not isinstance(reply, dict) or not reply.get("access_token"):
            raise ValueError(f"{self.service} replied without an access_token")
        value = str(reply["access_token"])
        mask(value)
        expires_in = float(reply.get("expires_in") or 3600)
        _tokens[self.key] = _Token(value, time.time() + expires_in)
        return value

    def _token_client(self, client_class: type) -> Any:
        return client_class(self.service, self.token_url, StaticAuth(), self.retry, self.timeouts)

    def _bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def headers(self, client: ApiClient) -> dict[str, str]:
        with _sync_lock:
            token = self._cached()
            if token is None:
                # Asking twice for a token is harmless, so a lost reply may be retried.
                reply = self._token_client(ApiClient).json("POST", "", data=self.form, idempotent=True)
                token = self._store(reply)
        return self._bearer(token)

    async def aheaders(self, client: AsyncApiClient) -> dict[str, str]:
        token = self._cached()
        if token is not None:
            return self._bearer(token)
        locks = _async_locks.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(self.key, asyncio.Lock()):  # one fetch however many waiters
            token = self._cached()
            if token is None:
                client_ = self._token_client(AsyncApiClient)
                token = self._store(await client_.json("POST", "", data=self.form, idempotent=True))
        return self._bearer(token)

    def invalidate(self) -> bool:
        _tokens.pop(self.key, None)
        return True


class WithHeaders:
    """Another auth plus fixed headers on every call (Adobe's x-api-key, org and sandbox)."""

    def __init__(self, inner: Any, fixed: dict[str, str]):
        self.inner = inner
        self.fixed = fixed

    def headers(self, client: ApiClient) -> dict[str, str]:
        return {**self.inner.headers(client), **self.fixed}

    async def aheaders(self, client: AsyncApiClient) -> dict[str, str]:
        return {**await self.inner.aheaders(client), **self.fixed}

    def invalidate(self) -> bool:
        return self.inner.invalidate()
