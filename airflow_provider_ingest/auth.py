"""OAuth 2.0 client-credentials tokens, cached once per process for every hook and trigger.

Thousands of deferred waits on one connection share one token: the cache is keyed by token URL,
client id and scope, renewed shortly before expiry, and dropped on a 401 so the request is
retried once with a fresh token (see ``RetryBudget``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_ingest.http import (
    ApiClient,
    AsyncApiClient,
    Auth,
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
_async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], asyncio.Lock]] = (
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

    def _token_client(self, client_class: type, api: ApiClient | AsyncApiClient) -> Any:
        # the token endpoint is reached through the API connection's proxies and TLS settings
        return client_class(
            self.service, self.token_url, StaticAuth(), self.retry, self.timeouts, api.network
        )

    def _bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def headers(self, client: ApiClient, method: str = "GET", url: str = "") -> dict[str, str]:
        with _sync_lock:
            token = self._cached()
            if token is None:
                # Asking twice for a token is harmless, so a lost reply may be retried.
                reply = self._token_client(ApiClient, client).json(
                    "POST", "", data=self.form, idempotent=True
                )
                token = self._store(reply)
        return self._bearer(token)

    async def aheaders(self, client: AsyncApiClient, method: str = "GET", url: str = "") -> dict[str, str]:
        token = self._cached()
        if token is not None:
            return self._bearer(token)
        locks = _async_locks.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault(self.key, asyncio.Lock()):  # one fetch however many waiters
            token = self._cached()
            if token is None:
                client_ = self._token_client(AsyncApiClient, client)
                token = self._store(await client_.json("POST", "", data=self.form, idempotent=True))
        return self._bearer(token)

    def invalidate(self) -> bool:
        _tokens.pop(self.key, None)
        return True


class WithHeaders:
    """Another auth plus fixed headers on every call (Adobe's x-api-key, org and sandbox)."""

    def __init__(self, inner: Auth, fixed: dict[str, str]):
        self.inner = inner
        self.fixed = fixed

    def headers(self, client: ApiClient, method: str = "GET", url: str = "") -> dict[str, str]:
        return {**self.inner.headers(client, method, url), **self.fixed}

    async def aheaders(self, client: AsyncApiClient, method: str = "GET", url: str = "") -> dict[str, str]:
        return {**await self.inner.aheaders(client, method, url), **self.fixed}

    def invalidate(self) -> bool:
        return self.inner.invalidate()


class AwsSigV4:
    """Signs each try of a bodiless request with AWS Signature V4, so an AWS REST-JSON API can be
    polled through the shared aiohttp pool instead of a botocore client, whose per-call machinery
    (events, user agent, parsing) costs ~2 ms CPU (see benchmarks/triggers.py).

    botocore's ``SigV4Auth`` costs ~110 us a request (it re-derives the signing key and re-parses
    the URL each time); this keeps the day's key and signs in ~20 us: that, with no botocore
    client per poll, is why it exists. Tests check that it produces botocore's ``Authorization``
    header for encoded paths, query strings, session tokens and non-default ports.
    ``credentials`` are aiobotocore's (refreshable for assumed roles). Async only: workers call
    AWS through boto3.
    """

    EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

    def __init__(self, credentials: Any, signing_name: str, region: str):
        self.credentials = credentials
        self.signing_name = signing_name
        self.region = region
        self._key: tuple[tuple[str, str], bytes] | None = None  # ((secret, day), signing key)
        self._masked: tuple[str, str | None] | None = None

    def headers(self, client: ApiClient, method: str = "GET", url: str = "") -> dict[str, str]:
        raise NotImplementedError("AwsSigV4 signs async requests only; use a boto3 client in a worker")

    async def aheaders(self, client: AsyncApiClient, method: str = "GET", url: str = "") -> dict[str, str]:
        frozen = await self.credentials.get_frozen_credentials()  # renews expiring role credentials
        if self._masked != (frozen.secret_key, frozen.token):
            self._masked = (frozen.secret_key, frozen.token)
            mask(frozen.secret_key, frozen.token)
        return self.sign(frozen, method, url, datetime.now(UTC))

    def signing_key(self, secret: str, day: str) -> bytes:
        if self._key is None or self._key[0] != (secret, day):
            key = f"AWS4{secret}".encode()
            for part in (day, self.region, self.signing_name, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key = ((secret, day), key)
        return self._key[1]

    def sign(self, frozen: Any, method: str, url: str, now: datetime) -> dict[str, str]:
        parts = urlsplit(url)
        # botocore's canonical query for a URL that carries its (already encoded) query: the
        # key=value pairs as sent, sorted. Give the query in ``url``, not as aiohttp ``params``.
        pairs = sorted(pair.partition("=")[::2] for pair in parts.query.split("&")) if parts.query else []
        query = "&".join(f"{key}={value}" for key, value in pairs)
        host = parts.hostname or ""
        if parts.port and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
            host = f"{host}:{parts.port}"
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": host, "x-amz-date": stamp}
        if frozen.token:
            headers["x-amz-security-token"] = frozen.token
        signed = ";".join(headers)  # already in sorted order
        canonical = "\n".join(
            [
                method.upper(),
                quote(parts.path or "/", safe="/~"),  # AWS encodes the encoded path once more
                query,
                *(f"{name}:{value}" for name, value in headers.items()),
                "",
                signed,
                self.EMPTY_SHA256,
            ]
        )
        scope = f"{stamp[:8]}/{self.region}/{self.signing_name}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self.signing_key(frozen.secret_key, stamp[:8]), to_sign.encode(), hashlib.sha256)
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature.hexdigest()}"
        )
        del headers["host"]  # aiohttp sends it
        return headers

    def invalidate(self) -> bool:
        return False  # a 401/403 with AWS credentials is not fixed by asking again
