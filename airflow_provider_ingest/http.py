"""The HTTP core every REST hook uses: a sync client for workers and an async one for triggers.

Both clients share one retry decision (:class:`RetryBudget`), one error type
(:class:`~airflow_provider_ingest.exceptions.IngestApiError`) and one auth protocol, so the sync
and deferred halves of a task behave the same against a throttling or failing API.

Retry rules:
- 429/502/503/504 are retried with exponential backoff and jitter; ``Retry-After`` wins when given.
- A failure to connect is retried for every method: the request never reached the server.
- A failure after the request was sent (reset, server closed mid-reply, read timeout) is retried
  only for idempotent requests. A POST that starts a job is not sent twice on a guess; the caller
  re-attaches instead (see ``jobs.py``).
- A request that must not be sent twice goes out on a new connection, never on a pooled one: a
  server closes an idle kept-alive connection when its keep-alive timeout ends (uvicorn and
  Node 5 s, gunicorn 2 s), and a request sent on it at that moment fails with a reset after it
  left, so a start call would end "unknown" although the server never read it
  (``benchmarks/keepalive_race.py`` measures how often).
- Other 4xx are final. A 401 is retried once after the auth drops its cached token.
- A 2xx reply that should be JSON but is not (garbled or cut by a proxy), or is not the object the
  call expects (``shape``, e.g. ``null`` or a list for a status), counts as a lost reply: retried
  when resending is safe, otherwise an ``IngestApiError`` naming the call and what was missing.
- A final 4xx (see ``exceptions.FINAL_CLIENT_ERRORS``) raises ``IngestApiRejected``, which Airflow
  does not retry; an error after which the outcome of a POST is unknown says so
  (``IngestApiError.outcome_unknown``), and the caller finds the job instead of guessing.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib
import json
import logging
import os
import random
import re
import ssl
import sys
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, quote_plus, urlsplit

from airflow_provider_ingest.exceptions import IngestApiError
from airflow_provider_ingest.validation import check_path_segment

if TYPE_CHECKING:
    # Imported where used: a DAG file that only builds operators never loads an HTTP library
    # (the dag-processor re-imports the provider on every parse; see tests/test_import_cost.py).
    import aiohttp
    import requests

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def encoded_forms(secret: str) -> set[str]:
    """The forms a secret takes once URL-encoded (a form body, a query string, a vendor echoing
    either): ``quote`` with nothing safe and ``quote_plus``, where they differ from the secret."""
    return {quote(secret, safe=""), quote_plus(secret)} - {secret}


def mask(*secrets: str | None) -> None:
    """Register secrets with Airflow's masker so logs and task output show ``***`` instead, in the
    raw form and URL-encoded (a client secret travels form-encoded to the token endpoint, and an
    error that echoes the request echoes it that way)."""
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        # Each registration rebuilds the masker's pattern (time growing with every secret held);
        # hooks and triggers register the same few secrets again and again, on the triggerer's loop
        # too: register each once per process.
        if secret and secret not in _masked:
            for form in (secret, *encoded_forms(secret)):
                mask_secret(form)
            _masked.add(secret)


_masked: set[str] = set()
# (Airflow's replacer, the same secrets longest first): see _longest_first
_ordered: tuple[Any, re.Pattern[str] | None] = (None, None)


def _longest_first(masker: Any) -> re.Pattern[str] | None:
    """Airflow's masker's own secrets in one pattern, longer ones first.

    Airflow joins its secrets in set order: where one secret is a prefix of another (a token and
    a client secret can share a beginning) it may replace only the prefix and show the rest, by
    the hash seed. The same secrets, ordered, in one pass: every secret held (the provider's and
    those others registered, such as a session token the amazon provider masks) is matched where
    it starts, never cut by an earlier pass. Rebuilt when Airflow rebuilds its own."""
    global _ordered
    replacer = getattr(masker, "replacer", None)
    if replacer is None:
        return None
    if _ordered[0] is not replacer:
        _ordered = (replacer, re.compile("|".join(sorted(masker.patterns, key=len, reverse=True))))
    return _ordered[1]


# The signature and credentials of a presigned URL (SigV4 and SigV2, in a query string or an
# Authorization header), so the values are masked wherever a URL appears, without registering each
# URL with the masker. The name follows ``?``, ``&``, a separator or their URL/JSON encodings; the
# value ends at ``&`` (or its encodings), a quote, a backslash (JSON escapes) or white space.
_PRESIGNED = re.compile(
    r"(?i)(?:^|(?<=[?&;,\s\"'(\[{])|(?<=%26)|(?<=%3F)|(?<=%2526)|(?<=%253F)|(?<=u0026))"
    r"(x-amz-signature|x-amz-security-token|x-amz-credential|signature|awsaccesskeyid|security-token)"
    r"(=|%3D|%253D)"
    r"(.+?)(?=&|%26|%2526|[\s\"'\\<>,;]|$)",
    re.MULTILINE,
)


def mask_presigned(text: str) -> str:
    """``text`` with the signature, security token and credential of every presigned URL in it
    replaced by ``***`` (the rest of the URL is kept: it names the object)."""
    return _PRESIGNED.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def redact(text: str) -> str:
    """``text`` with every registered secret (raw or URL-encoded) and every presigned URL's
    signature and token replaced; used on anything the core puts into an exception or a log."""
    try:
        from airflow.sdk._shared.secrets_masker import _secrets_masker
        from airflow.sdk._shared.secrets_masker import redact as airflow_redact
    except ImportError:  # pragma: no cover - the masker moved; still mask the presigned URLs
        return mask_presigned(text)
    ordered = _longest_first(_secrets_masker())
    masked = ordered.sub("***", text) if ordered is not None else str(airflow_redact(text))
    return mask_presigned(masked)


def segment(value: Any, field: str) -> str:
    """``value`` as one URL path segment: checked (see :func:`check_path_segment`) and
    percent-encoded with nothing safe (``/``, ``?``, ``#``, ``%`` included), so an id or a file
    name put into a path can only ever name itself. Every hook builds its paths with it."""
    return quote(check_path_segment(value, field), safe="")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries a request gets and how long to wait between them."""

    attempts: int = 5
    backoff: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    statuses: frozenset[int] = RETRYABLE_STATUSES

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        honoured = parse_retry_after(retry_after)
        if honoured is not None:
            return min(honoured, self.retry_after_max)
        # "Equal jitter": never less than half the exponential step, so a burst of clients spreads
        # out without any of them hammering the server straight away.
        step: float = min(self.backoff_max, self.backoff * 2**attempt)
        return step / 2 + random.uniform(0, step / 2)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0


@dataclass(frozen=True)
class NetworkSettings:
    """One connection's proxies and TLS settings, applied alike by :class:`ApiClient` (requests)
    and :class:`AsyncApiClient` (aiohttp), so a task behaves the same poked or deferred.

    - ``proxies``: requests' mapping (``{"https": "http://proxy:3128"}``; keys ``http``, ``https``,
      ``all`` or ``scheme://host``). Without a match, ``HTTP(S)_PROXY`` / ``NO_PROXY`` from the
      environment apply, read by requests' own functions on both paths.
    - ``verify``: True (certifi's bundle, or ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` when set,
      as requests does), False, or the path of a CA bundle file or directory.
    - ``cert``: a client certificate: a PEM path holding cert and key, or ``(cert, key)`` paths.

    Frozen and hashable: it is part of the key of the shared aiohttp sessions, so two connections
    to one host with different TLS settings never share a pool.
    """

    proxies: tuple[tuple[str, str], ...] = ()
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], where: str = "connection") -> NetworkSettings:
        """Read and check the ``proxies``, ``verify`` and ``cert`` extras; a bad one raises a
        ``ValueError`` naming it before any request."""
        proxies = extra.get("proxies") or {}
        if isinstance(proxies, str):  # the UI's text field may hand over the JSON as a string
            try:
                proxies = json.loads(proxies)
            except ValueError:
                raise ValueError(f"{where}: extra 'proxies' must be a JSON object") from None
        if not isinstance(proxies, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in proxies.items()
        ):
            raise ValueError(
                f"{where}: extra 'proxies' must map a scheme to a proxy URL, e.g. "
                '{"https": "http://proxy:3128"}'
            )
        verify = extra.get("verify", True)
        if isinstance(verify, str) and verify.strip().lower() in ("true", "false", ""):
            verify = verify.strip().lower() != "false"
        if isinstance(verify, str):
            if not os.path.exists(verify):
                raise ValueError(f"{where}: extra 'verify': no CA bundle at {verify!r}")
        elif not isinstance(verify, bool):
            raise ValueError(f"{where}: extra 'verify' must be true, false or a CA bundle path")
        cert = extra.get("cert") or None
        if isinstance(cert, list | tuple):
            if len(cert) != 2 or not all(isinstance(c, str) for c in cert):
                raise ValueError(f"{where}: extra 'cert' must be a path or [cert path, key path]")
            cert = (cert[0], cert[1])
        elif cert is not None and not isinstance(cert, str):
            raise ValueError(f"{where}: extra 'cert' must be a path or [cert path, key path]")
        for path in (cert,) if isinstance(cert, str) else cert or ():
            if not os.path.exists(path):
                raise ValueError(f"{where}: extra 'cert': no file at {path!r}")
        for url in proxies.values():
            parts = urlsplit(url)
            mask(parts.password)  # a proxy password must not reach a log
        return cls(tuple(sorted(proxies.items())), verify, cert)

    def requests_options(self) -> dict[str, Any]:
        """``proxies``/``verify``/``cert`` for each ``requests`` call. Per call, not on the
        session: requests lets environment proxies override a session's own (psf/requests#2018)."""
        return {"proxies": dict(self.proxies), "verify": self.verify, "cert": self.cert}

    def proxy_for(self, url: str) -> str | None:
        """The proxy for ``url``, chosen as requests chooses: the connection's ``proxies``, else
        the environment's (unless ``NO_PROXY`` names the host)."""
        proxies = dict(self.proxies)
        from requests.utils import get_environ_proxies, select_proxy

        # requests.sessions.resolve_proxies, step by step
        scheme = urlsplit(url).scheme
        environ = get_environ_proxies(url, no_proxy=proxies.get("no_proxy"))  # {} under NO_PROXY
        if proxy := environ.get(scheme, environ.get("all")):
            proxies.setdefault(scheme, proxy)
        return select_proxy(url, proxies)

    def ssl_context(self) -> ssl.SSLContext | bool:
        """aiohttp's ``ssl`` argument with requests' meaning of ``verify`` and ``cert``."""
        if self.verify is False and self.cert is None:
            return False
        if self.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            bundle = (
                self.verify
                if isinstance(self.verify, str)
                else (
                    os.environ.get("REQUESTS_CA_BUNDLE")
                    or os.environ.get("CURL_CA_BUNDLE")
                    or __import__("certifi").where()
                )
            )
            if os.path.isdir(bundle):
                context = ssl.create_default_context(capath=bundle)
            else:
                context = ssl.create_default_context(cafile=bundle)
        if self.cert is not None:
            certfile, keyfile = (self.cert, None) if isinstance(self.cert, str) else self.cert
            context.load_cert_chain(certfile, keyfile)
        return context


DIRECT = NetworkSettings()


class Auth(Protocol):
    """Supplies auth headers for one try of a request; OAuth implementations cache a token and drop
    it on ``invalidate``. ``method`` and ``url`` are for auths that sign each request (SigV4)."""

    def headers(self, client: ApiClient, method: str = "GET", url: str = "") -> dict[str, str]: ...

    async def aheaders(
        self, client: AsyncApiClient, method: str = "GET", url: str = ""
    ) -> dict[str, str]: ...

    def invalidate(self) -> bool:
        """Forget cached credentials; return True when asking again may fix a 401."""
        ...


@dataclass(frozen=True)
class StaticAuth:
    """Fixed headers (API keys, basic auth): a 401 is final."""

    fixed: Mapping[str, str] = field(default_factory=dict)

    def headers(self, client: ApiClient, method: str = "GET", url: str = "") -> dict[str, str]:
        return dict(self.fixed)

    async def aheaders(self, client: AsyncApiClient, method: str = "GET", url: str = "") -> dict[str, str]:
        return dict(self.fixed)

    def invalidate(self) -> bool:
        return False


class RetryBudget:
    """One request's retry decisions, shared by the sync and async clients.

    Each ``after_*`` method returns the seconds to wait before the next try, or None to stop.
    """

    def __init__(self, policy: RetryPolicy, idempotent: bool, auth: Auth):
        self.policy = policy
        self.idempotent = idempotent
        self.auth = auth
        self.attempt = 0
        self.reauthenticated = False

    def _next(self, retry_after: str | None = None) -> float | None:
        if self.attempt + 1 >= self.policy.attempts:
            return None
        wait = self.policy.delay(self.attempt, retry_after)
        self.attempt += 1
        return wait

    def after_transport_error(self, request_was_sent: bool) -> float | None:
        if request_was_sent and not self.idempotent:
            return None
        return self._next()

    def after_status(self, status: int, retry_after: str | None) -> float | None:
        if status == 401 and not self.reauthenticated and self.auth.invalidate():
            self.reauthenticated = True
            return 0.0
        if status in self.policy.statuses:
            return self._next(retry_after)
        return None


def error_details(body: Any, fallback: str) -> tuple[str | None, str]:
    """Pull ``(code, message)`` out of the error bodies the five vendors use."""
    if isinstance(body, Mapping):
        nested = body.get("error")
        if isinstance(nested, Mapping):
            return error_details(nested, fallback)
        code = body.get("code") or body.get("error_code") or body.get("errorCode")
        for key in ("developerMessage", "message", "detail", "title", "error_description", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return (str(code) if code else None), value
            if isinstance(value, list) and value:  # FastAPI-style validation details
                return (str(code) if code else None), json.dumps(value)[:500]
        return (str(code) if code else None), fallback
    return None, fallback


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


_MALFORMED = object()


def _reply_body(text: str, expect_json: bool) -> Any:
    """The JSON of a 2xx reply, parsed once: None when it is empty, or not JSON and none was
    expected; ``_MALFORMED`` when JSON was expected and this is not it."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return _MALFORMED if expect_json else None


class _ClientBase:
    def __init__(
        self,
        service: str,
        base_url: str,
        auth: Auth | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        network: NetworkSettings | None = None,
    ):
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.auth: Auth = auth or StaticAuth()
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.network = network or DIRECT

    def url(self, path: str) -> str:
        if not path:
            return self.base_url
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    @staticmethod
    def endpoint(url: str) -> str:
        """The URL without its query string: presigned signatures live there."""
        return url.split("?", 1)[0]

    def budget(self, method: str, idempotent: bool | None) -> RetryBudget:
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        return RetryBudget(self.retry, idempotent, self.auth)

    def error(
        self, method: str, url: str, status: int | None, body_text: str, sent: bool = True
    ) -> IngestApiError:
        code, message = error_details(_json_or_text(body_text), body_text[:500] or "(empty body)")
        return IngestApiError.of(
            self.service, method.upper(), self.endpoint(url), status, redact(message), code, sent=sent
        )

    def after_malformed(self, budget: RetryBudget, method: str, url: str, status: int, problem: str) -> float:
        """A 2xx reply that is not what the call expects (not JSON, or not the object it should
        carry): wait and resend like a lost reply, or raise a clear error naming what was wrong.

        Without this, the sync client raised a bare JSONDecodeError and the async one returned None,
        which crashed a trigger with an AttributeError, and a ``null`` status reply made a wait log
        an unexpected status ``''`` until its deadline (found by tests/reliability).
        """
        wait = budget.after_transport_error(request_was_sent=True)
        if wait is None:
            raise IngestApiError(
                self.service, method.upper(), self.endpoint(url), status, redact(problem), "MalformedReply"
            )
        log.warning(
            "%s %s %s: %s; trying again", self.service, method.upper(), self.endpoint(url), redact(problem)
        )
        return wait


Shape = Callable[[Any], "str | None"]


def needs(*keys: str, within: Callable[[Any], Any] | None = None) -> Shape:
    """A reply check for ``json(..., shape=...)``: the reply (or ``within(reply)``) must be a JSON
    object holding ``keys``. Returns what is missing, or None when the reply has the expected shape."""

    def check(body: Any) -> str | None:
        if within is not None and isinstance(body, Mapping):
            body = within(body)
        if not isinstance(body, Mapping):
            return f"expected a JSON object, got {type(body).__name__ if body is not None else 'null'}"
        missing = [k for k in keys if body.get(k) in (None, "")]
        return f"the reply has no {', '.join(repr(k) for k in missing)}" if missing else None

    return check


def _problem(body: Any, text: str, shape: Shape | None) -> str | None:
    """What is wrong with a 2xx reply that should be JSON, or None."""
    if body is _MALFORMED:
        return f"the reply is not valid JSON: {text[:200]!r}"
    return shape(body) if shape is not None else None


def _keep_headers(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def _aiohttp_certificate_error() -> type[aiohttp.ClientConnectorCertificateError] | tuple[()]:
    """aiohttp's certificate error class when aiohttp is loaded (a sync-only worker never loads it:
    no aiohttp exception can then reach here)."""
    import sys

    module = sys.modules.get("aiohttp")
    return module.ClientConnectorCertificateError if module is not None else ()


def _tls_failure(exc: BaseException) -> str | None:
    """A reason naming the TLS problem when ``exc`` is a failed certificate check (final: trying
    again cannot fix a wrong CA bundle or host name), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _aiohttp_certificate_error()):  # also an SSL error
            current = current.certificate_error
            continue
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = getattr(current, "verify_message", None) or "certificate verify failed"
            return (
                f"TLS certificate verification failed ({detail}); check the connection's "
                "'verify' (CA bundle) and host"
            )
        args = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        current = (
            current.__cause__
            or current.__context__
            or (reason if isinstance(reason, BaseException) else (args[0] if args else None))
        )
    return None


def _sent_before_failure(exc: requests.RequestException) -> bool:
    """False when the request provably never left (connect refused or timed out)."""
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return not isinstance(reason, NewConnectionError)
    return True


class ApiClient(_ClientBase):
    """Blocking client for hooks running in a worker: one pooled ``requests.Session``."""

    def __init__(self, *args: Any, **kwargs: Any):
        import requests
        from requests.adapters import HTTPAdapter

        super().__init__(*args, **kwargs)
        self.session = requests.Session()
        # urllib3's own retries stay off: RetryBudget decides, so both clients follow one rule.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._adapter = adapter
        # trust_env stays on (environment proxies and CA bundle), but a ~/.netrc entry for the
        # host must not replace the Authorization header the auth sends: a session-level auth
        # that changes nothing stops requests from looking netrc up (aiohttp raised instead).
        self.session.auth = _keep_headers
        self._network_options = self.network.requests_options()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._send(method, path, expect_json=False, **kwargs)[0]

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, expect_json=True, **kwargs)[1]

    def _send(
        self,
        method: str,
        path: str,
        *,
        expect_json: bool,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        shape: Shape | None = None,
        **kwargs: Any,
    ) -> tuple[requests.Response, Any]:
        """The reply and, with ``expect_json``, its JSON (other replies, uploads', are not parsed)."""
        import requests

        url = self.url(path)
        budget = self.budget(method, idempotent)
        # A streamed body can be read once; a callable ``data`` gives a fresh stream per try.
        body_factory = kwargs.pop("data") if callable(kwargs.get("data")) else None
        while True:
            if body_factory is not None:
                kwargs["data"] = body_factory()
            if not budget.idempotent:
                self._close_pooled_connections(url)
            try:
                response = self.session.request(
                    method,
                    url,
                    headers={**self.auth.headers(self, method, url), **(headers or {})},
                    timeout=(self.timeouts.connect, self.timeouts.read),
                    **self._network_options,
                    **kwargs,
                )
            except requests.RequestException as exc:
                tls = _tls_failure(exc)
                sent = not tls and _sent_before_failure(exc)  # a failed handshake sent nothing
                wait = None if tls else budget.after_transport_error(sent)
                if wait is None:
                    raise self.error(method, url, None, tls or type(exc).__name__, sent=sent) from None
            else:
                if response.status_code < 400:
                    body = _reply_body(response.text, True) if expect_json else None
                    problem = _problem(body, response.text, shape) if expect_json else None
                    if problem is None:
                        return response, body
                    wait = self.after_malformed(budget, method, url, response.status_code, problem)
                else:
                    wait = budget.after_status(response.status_code, response.headers.get("Retry-After"))
                    if wait is None:
                        raise self.error(method, url, response.status_code, response.text)
            time.sleep(wait)

    def _close_pooled_connections(self, url: str) -> None:
        """Close the idle pooled connections (direct and through proxies), so the next request,
        to ``url``, opens a new one (see the module's retry rules)."""
        self._adapter.poolmanager.clear()
        for manager in self._adapter.proxy_manager.values():
            manager.clear()

    def close(self) -> None:
        self.session.close()


# One aiohttp session per event loop, origin and network settings: thousands of triggers polling
# the same API share a connection pool instead of opening a client each (see
# benchmarks/triggers.py), and two connections with different proxies or TLS settings do not.
_shared_sessions: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, NetworkSettings], aiohttp.ClientSession]
] = weakref.WeakKeyDictionary()


def _shared_session(origin: str, network: NetworkSettings = DIRECT) -> aiohttp.ClientSession:
    import aiohttp

    loop = asyncio.get_running_loop()
    per_loop = _shared_sessions.setdefault(loop, {})
    session = per_loop.get((origin, network))
    if session is None or session.closed:
        # trust_env stays off: NetworkSettings.proxy_for applies the environment's proxies as
        # requests does, once per origin. aiohttp's trust_env would cost two thread hops per
        # request (proxy and netrc look-ups), and a netrc entry for the host makes it refuse a
        # request that carries an Authorization header.
        # Loading a CA bundle takes tens of milliseconds of the loop: only an https origin needs it
        # (once per process, origin and settings); a plain-http origin never handshakes.
        tls = network.ssl_context() if origin.startswith("https://") else False
        connector = aiohttp.TCPConnector(limit=100, ssl=tls)
        session = aiohttp.ClientSession(connector=connector, trust_env=False)
        per_loop[(origin, network)] = session
    return session


# Other things triggers share the same way (Q in Connect's signed status client, connections read
# with aget_connection), opened on first use: (opening, close, opened at).
_shared_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop,
    dict[Hashable, tuple[asyncio.Future[Any], Callable[[Any], Awaitable[Any]] | None, float]],
] = weakref.WeakKeyDictionary()


async def shared_async_client(
    key: Hashable,
    open_client: Callable[[], Awaitable[Any]],
    close_client: Callable[[Any], Awaitable[Any]] | None = None,
    max_age: float | None = None,
) -> Any:
    """One client per event loop and ``key``, opened once even when thousands of triggers start
    together (they await the same opening); a failed opening is retried by the next caller.
    With ``max_age`` (seconds), a caller after that opens a fresh one (an old one is not closed:
    use it for values, such as connections, not for clients)."""
    loop = asyncio.get_running_loop()
    if loop not in _loop_guards:
        await close_at_loop_end()
    per_loop = _shared_clients.setdefault(loop, {})
    entry = per_loop.get(key)
    now = time.monotonic()
    if entry is None or (max_age is not None and now - entry[2] > max_age):
        entry = per_loop[key] = (asyncio.ensure_future(open_client()), close_client, now)
    try:
        return await asyncio.shield(entry[0])
    except Exception:
        if per_loop.get(key) is entry:
            del per_loop[key]
        raise


# Per loop, an async generator parked at its ``yield`` whose ``finally`` closes that loop's shared
# sessions and clients. ``asyncio.run`` (as Airflow's ``dag.test`` runs each trigger, and the
# triggerer its loop) closes every async generator started on a loop before closing the loop, so
# nothing is left for the interpreter's exit, where aiohttp's "Unclosed client session" warnings
# were logged to closed streams ("--- Logging error ---" after pytest's summary). Held strongly
# here: a loop tracks its generators weakly.
_loop_guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


async def _close_when_the_loop_ends() -> AsyncIterator[None]:
    try:
        yield
    finally:
        await close_shared_sessions()


async def close_at_loop_end() -> None:
    """Make sure this loop's shared sessions and clients are closed when the loop shuts down."""
    loop = asyncio.get_running_loop()
    if loop not in _loop_guards:
        guard = _loop_guards[loop] = _close_when_the_loop_ends()
        await anext(guard)


async def close_shared_sessions() -> None:
    """Close this loop's shared sessions and clients now (they are closed anyway when a loop run by
    ``asyncio.run`` ends; benchmarks call it to measure a clean end)."""
    loop = asyncio.get_running_loop()
    for session in _shared_sessions.pop(loop, {}).values():
        await session.close()
    for opening, close_client, _ in _shared_clients.pop(loop, {}).values():
        if close_client is None:
            continue
        await asyncio.wait([opening], timeout=30)  # one its first user stopped waiting for
        if opening.done() and not opening.cancelled() and opening.exception() is None:
            await close_client(opening.result())


class AsyncApiClient(_ClientBase):
    """Non-blocking client for triggers, with the same retry rules as :class:`ApiClient`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._proxies: dict[str, str | None] = {}  # origin -> proxy, resolved once

    @property
    def session(self) -> aiohttp.ClientSession:
        origin = "/".join(self.base_url.split("/", 3)[:3])
        return _shared_session(origin, self.network)

    def proxy_for(self, url: str) -> str | None:
        origin = "/".join(url.split("/", 3)[:3])
        if origin not in self._proxies:
            self._proxies[origin] = self.network.proxy_for(url)
        return self._proxies[origin]

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        expect_json: bool = False,
        shape: Shape | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        """Send a request and return ``(status, parsed JSON or None)``."""
        if asyncio.get_running_loop() not in _loop_guards:
            await close_at_loop_end()
        if "aiohttp" not in sys.modules:
            # aiohttp is imported where used (DAG parse cost); its first import reads ~60 files, which
            # must not happen on a triggerer's loop that every other wait shares
            await asyncio.to_thread(importlib.import_module, "aiohttp")
        import aiohttp

        url = self.url(path)
        budget = self.budget(method, idempotent)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeouts.connect, sock_read=self.timeouts.read
        )
        while True:
            try:
                async with self.session.request(
                    method,
                    url,
                    headers={**await self.auth.aheaders(self, method, url), **(headers or {})},
                    timeout=timeout,
                    proxy=self.proxy_for(url),
                    **kwargs,
                ) as response:
                    text = await response.text()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError) as exc:
                tls = _tls_failure(exc)  # a failed handshake sent nothing, like a refused connect
                never_sent = bool(tls) or isinstance(
                    exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
                )
                wait = None if tls else budget.after_transport_error(not never_sent)
                if wait is None:
                    reason = tls or type(exc).__name__
                    raise self.error(method, url, None, reason, sent=not never_sent) from None
            else:
                if status < 400:
                    body = _reply_body(text, expect_json)
                    problem = _problem(body, text, shape) if expect_json else None
                    if problem is None:
                        return status, body
                    wait = self.after_malformed(budget, method, url, status, problem)
                else:
                    wait = budget.after_status(status, retry_after)
                    if wait is None:
                        raise self.error(method, url, status, text)
            await asyncio.sleep(wait)

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        _, body = await self.request(method, path, expect_json=True, **kwargs)
        return body
