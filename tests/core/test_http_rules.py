"""The HTTP core's pure rules, called directly: secret masking (raw, URL-encoded, presigned URLs),
path segments, Retry-After, backoff, the retry budget, vendor error bodies and reply shapes."""

from __future__ import annotations

import email.utils
import random
import ssl
import time
import uuid
from urllib.parse import quote, quote_plus

import pytest
import requests

from airflow_provider_ingest.exceptions import IngestApiError, IngestApiRejected
from airflow_provider_ingest.http import (
    ApiClient,
    RetryBudget,
    RetryPolicy,
    StaticAuth,
    _sent_before_failure,
    _tls_failure,
    encoded_forms,
    error_details,
    mask,
    mask_presigned,
    needs,
    parse_retry_after,
    redact,
    segment,
)


def unique(prefix: str) -> str:
    """A secret no other test registered (the masker is process-wide). Keep fixed secrets in other
    tests from being a prefix of these ("tok-1" was, for a uuid starting with 1): Airflow's masker
    builds its pattern from a set, so which of two overlapping secrets it replaces first depends
    on the process's hash seed, and the test failed one run in about 32."""
    return f"{prefix}-{uuid.uuid4().hex}"


# --- masking ----------------------------------------------------------------------------------------
def test_encoded_forms_are_the_quoted_and_plus_quoted_secret_without_the_raw_one():
    assert encoded_forms("a b/c+d") == {"a%20b%2Fc%2Bd", "a+b%2Fc%2Bd"}
    assert encoded_forms("a/b") == {"a%2Fb"}  # quote and quote_plus agree: one form
    assert encoded_forms("plain-Secret_1.~") == set()  # nothing to encode: only the raw form


def test_mask_hides_a_secret_raw_and_url_encoded():
    secret = unique("pw with space/slash+plus")
    mask(secret)
    encoded = secret.replace("+", "%2B").replace(" ", "%20").replace("/", "%2F")
    plus = secret.replace("+", "%2B").replace(" ", "+").replace("/", "%2F")
    text = f"raw {secret} quoted {encoded} form {plus} end"
    assert redact(text) == "raw *** quoted *** form *** end"


def test_mask_registers_every_form_with_airflows_masker_which_task_logs_go_through():
    """Task logs are masked by Airflow, not by ``redact``: the secret must be Airflow's to hide."""
    from airflow.sdk._shared.secrets_masker import redact as airflow_redact

    secret = unique("log secret/with+signs")
    mask(secret)
    forms = [secret, quote(secret, safe=""), quote_plus(secret)]
    assert airflow_redact(" | ".join(forms)) == "*** | *** | ***"


def test_mask_skips_empty_values_and_registers_each_secret_once():
    mask(None, "")  # a connection without a password: nothing registered, nothing fails
    assert redact("nothing to hide") == "nothing to hide"
    first, second = unique("first"), unique("second")
    mask(first)
    mask(first, second)  # the first again (already held) must not stop the second
    assert redact(f"{first} {second}") == "*** ***"


def test_mask_presigned_hides_signatures_tokens_and_credentials_only():
    url = (
        "https://b.s3.amazonaws.com/data/a.json?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=abc123&X-Amz-Security-Token=tok"
    )
    assert mask_presigned(f"see {url} now") == (
        "see https://b.s3.amazonaws.com/data/a.json?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=*** now"
    )
    assert mask_presigned("AWSAccessKeyId=AKIA1&Signature=s%2Bg&Expires=9") == (
        "AWSAccessKeyId=***&Signature=***&Expires=9"
    )


def test_redact_applies_the_masker_and_the_presigned_rule_together():
    secret = unique("tok")
    mask(secret)
    assert (
        redact(f"key {secret} url https://h/k?Signature=sig&a=1")
        == "key *** url https://h/k?Signature=***&a=1"
    )


def test_redact_hides_all_of_a_secret_another_secret_is_a_prefix_of():
    """A token and a client secret can share a beginning. Airflow's masker joins its secrets into
    one alternation in set order, so by the hash seed it may match the shorter one first and leave
    the longer one's tail showing. Twenty pairs: in some of them the short one comes first."""
    pairs = []
    for _ in range(20):
        short = unique("pfx")
        pairs.append((short, f"{short}-tail{uuid.uuid4().hex[:8]}"))
    for short, long in pairs:
        mask(short, long)
    text = " ".join(f"[{long}] [{short}]" for short, long in pairs)
    assert redact(text) == " ".join(["[***] [***]"] * 20)


def test_redact_hides_a_secret_only_airflow_holds_that_contains_one_of_the_providers():
    """The amazon provider registers a session token with Airflow's masker itself; a secret the
    provider registered may occur inside it (the CI failure: "12345" inside a token). Replacing
    the provider's secret first would cut the token, and Airflow's pass could no longer find it."""
    from airflow.sdk.log import mask_secret

    inner = unique("in")
    token = f"Fwo{uuid.uuid4().hex}{inner}{uuid.uuid4().hex}"
    mask(inner)
    mask_secret(token)  # not through the provider's mask()
    assert redact(f"token {token} and {inner}") == "token *** and ***"


def test_redact_before_any_secret_is_registered_returns_the_text_with_urls_masked(monkeypatch):
    """A task process starts with an empty masker (Airflow resets it in each new process), which
    has no pattern to order yet: redact() still returns the text, and still masks presigned URLs."""
    import airflow.sdk._shared.secrets_masker as masker_module
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    empty = SecretsMasker()
    monkeypatch.setattr(masker_module, "_secrets_masker", lambda: empty)
    text = "GET https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123&part=1 failed"
    assert redact(text) == "GET https://b.s3.amazonaws.com/k?X-Amz-Signature=***&part=1 failed"
    assert empty.replacer is None  # nothing was registered along the way


# --- path segments ----------------------------------------------------------------------------------
def test_segment_quotes_everything_that_could_leave_the_segment():
    assert segment("a b?c#d%e&f+g", "job_id") == "a%20b%3Fc%23d%25e%26f%2Bg"
    assert segment(42, "job_id") == "42"


@pytest.mark.parametrize("value", ["a/b", "..", ""])
def test_segment_refuses_what_a_server_could_normalise_naming_the_field(value):
    with pytest.raises(ValueError, match=r"^job_id: "):
        segment(value, "job_id")


# --- Retry-After and backoff --------------------------------------------------------------------------
def http_date(offset: float) -> str:
    return email.utils.formatdate(time.time() + offset, usegmt=True)


def test_parse_retry_after_seconds_and_dates():
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-3") == 0.0  # never a negative wait
    assert parse_retry_after("soon") is None
    assert parse_retry_after(http_date(-3600)) == 0.0  # a date in the past: go now
    assert 3000 < parse_retry_after(http_date(3600)) <= 3600


@pytest.fixture
def uniform(monkeypatch):
    """Makes random.uniform return its upper bound (``high``) or lower bound; records its calls."""
    calls: list[tuple[float, float]] = []
    pick = {"end": "high"}

    def fake(a, b):
        calls.append((a, b))
        return b if pick["end"] == "high" else a

    monkeypatch.setattr(random, "uniform", fake)
    return calls, pick


def test_delay_is_equal_jitter_over_a_capped_exponential_step(uniform):
    calls, pick = uniform
    policy = RetryPolicy(backoff=1.0, backoff_max=30.0)
    assert [policy.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert calls[3] == (0, 4.0)
    pick["end"] = "low"
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0]


def test_delay_honours_retry_after_up_to_its_cap(uniform):
    calls, _ = uniform
    policy = RetryPolicy(retry_after_max=300.0)
    assert policy.delay(4, "12") == 12.0
    assert policy.delay(0, "3600") == 300.0
    assert policy.delay(0, "0") == 0.0
    assert calls == []
    assert policy.delay(2, "garbage") == 4.0  # unreadable: the backoff applies


# --- the retry budget ---------------------------------------------------------------------------------
class Reauth(StaticAuth):
    """An auth whose cached token can be dropped (``refreshable``), counting the drops."""

    def __init__(self, refreshable: bool = True):
        super().__init__()
        object.__setattr__(self, "refreshable", refreshable)
        object.__setattr__(self, "drops", 0)

    def invalidate(self) -> bool:
        object.__setattr__(self, "drops", self.drops + 1)
        return self.refreshable


def budget(idempotent=True, auth=None, attempts=4):
    return RetryBudget(
        RetryPolicy(attempts=attempts, backoff=1.0, backoff_max=100.0), idempotent, auth or StaticAuth()
    )


def test_budget_waits_longer_each_try_until_its_attempts_are_spent(uniform):
    b = budget(attempts=4)
    assert [b.after_status(503, None) for _ in range(4)] == [1.0, 2.0, 4.0, None]
    b = budget(attempts=3)
    assert [b.after_status(429, "5"), b.after_status(429, "6"), b.after_status(429, "7")] == [5.0, 6.0, None]
    assert budget(attempts=1).after_status(502, None) is None


@pytest.mark.parametrize("status", [400, 404, 409, 500, 501])
def test_budget_never_retries_other_statuses(status):
    assert budget().after_status(status, "1") is None


def test_budget_retries_a_401_once_after_the_auth_drops_its_token(uniform):
    auth = Reauth()
    b = budget(auth=auth)
    assert b.after_status(401, None) == 0.0
    assert b.after_status(401, None) is None  # the fresh token was refused too: final
    assert auth.drops == 1
    assert b.after_status(503, None) == 1.0  # the re-authentication did not use up a try
    static = Reauth(refreshable=False)
    assert budget(auth=static).after_status(401, None) is None
    assert budget(auth=StaticAuth({"X-Api-Key": "k"})).after_status(401, None) is None  # a fixed key


def test_static_auth_sends_its_fixed_headers_and_cannot_refresh(api):
    auth = StaticAuth({"X-Api-Key": "k"})
    assert auth.headers(api, "POST", "https://h/x") == {"X-Api-Key": "k"}
    assert auth.invalidate() is False


def test_budget_after_a_transport_error_resends_only_what_is_safe(uniform):
    assert budget(idempotent=False).after_transport_error(True) is None
    assert budget(idempotent=False).after_transport_error(False) == 1.0  # never left: safe
    b = budget(idempotent=True, attempts=2)
    assert [b.after_transport_error(True), b.after_transport_error(True)] == [1.0, None]


# --- vendor error bodies --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"code": "Bad", "message": "m"}, ("Bad", "m")),
        ({"error_code": 400013, "message": "m"}, ("400013", "m")),
        ({"errorCode": "E1", "detail": "d"}, ("E1", "d")),
        ({"code": "", "error_code": "", "errorCode": "E2", "title": "t"}, ("E2", "t")),
        ({"developerMessage": "dev", "message": "m"}, (None, "dev")),
        ({"message": "", "detail": "d"}, (None, "d")),
        ({"title": "t", "error_description": "ed"}, (None, "t")),
        ({"error_description": "ed", "error": "invalid_client"}, (None, "ed")),
        ({"error": "invalid_client"}, (None, "invalid_client")),
        ({"error": {"code": "Inner", "message": "nested"}, "message": "outer"}, ("Inner", "nested")),
        ({"error": {"code": "Inner"}}, ("Inner", "fallback")),
        (
            {"detail": [{"loc": ["body", "x"], "msg": "required"}]},
            (None, '[{"loc": ["body", "x"], "msg": "required"}]'),
        ),
        ({"code": 7, "detail": [], "title": "t"}, ("7", "t")),
        ({"code": "Invalid", "detail": [{"msg": "x"}]}, ("Invalid", '[{"msg": "x"}]')),
        ({"code": "C", "message": 5}, ("C", "fallback")),
        ({"other": "x"}, (None, "fallback")),
        (["not", "a", "mapping"], (None, "fallback")),
        (None, (None, "fallback")),
    ],
)
def test_error_details_reads_the_vendors_error_bodies(body, expected):
    assert error_details(body, "fallback") == expected


def test_error_details_cuts_long_validation_lists():
    details = [{"msg": "x" * 100}] * 10
    _, message = error_details({"detail": details}, "fallback")
    assert len(message) == 500 and message.startswith('[{"msg": "xxx')


# --- reply shapes ------------------------------------------------------------------------------------
def test_needs_names_what_a_reply_lacks():
    check = needs("id", "state")
    assert check({"id": "1", "state": "done"}) is None
    assert check({"id": "1", "state": ""}) == "the reply has no 'state'"
    assert check({"other": 0}) == "the reply has no 'id', 'state'"
    assert check({"id": 0, "state": False}) is None  # falsy values that are there count
    assert check(None) == "expected a JSON object, got null"
    assert check([1]) == "expected a JSON object, got list"
    assert check("text") == "expected a JSON object, got str"


def test_needs_within_checks_the_part_of_the_reply_it_selects():
    check = needs("status", within=lambda body: body.get("job"))
    assert check({"job": {"status": "ok"}}) is None
    assert check({"job": {}}) == "the reply has no 'status'"
    assert check({"status": "ok"}) == "expected a JSON object, got null"
    assert check([{"job": {}}]) == "expected a JSON object, got list"  # not a mapping: not selected


# --- the error a client raises -------------------------------------------------------------------------
@pytest.fixture
def api():
    return ApiClient("Test API", "https://api.example/v1/")


def test_error_names_service_method_endpoint_status_code_and_message(api):
    err = api.error(
        "post",
        "https://api.example/v1/jobs?X-Amz-Signature=s3cret",
        409,
        '{"code": "Conflict", "message": "exists"}',
    )
    assert type(err) is IngestApiRejected
    assert (err.service, err.method, err.endpoint, err.status, err.code) == (
        "Test API",
        "POST",
        "https://api.example/v1/jobs",
        409,
        "Conflict",
    )
    assert err.server_message == "exists" and err.sent is True
    assert str(err) == "Test API POST https://api.example/v1/jobs failed: HTTP 409 [Conflict]: exists"


def test_error_without_a_reply_or_with_a_plain_body(api):
    err = api.error("get", "https://api.example/v1/x", None, "ConnectionError", sent=False)
    assert type(err) is IngestApiError and err.status is None and err.sent is False and err.code is None
    assert str(err) == "Test API GET https://api.example/v1/x failed: no HTTP response: ConnectionError"
    assert api.error("GET", "u", 503, "").server_message == "(empty body)"
    long = api.error("GET", "u", 500, "<html>" + "x" * 1000)
    assert long.server_message == ("<html>" + "x" * 1000)[:500] and type(long) is IngestApiError


def test_error_message_is_redacted(api):
    secret = unique("apikey")
    mask(secret)
    err = api.error("GET", "u", 403, f'{{"message": "key {secret} refused, see ?Signature=abc"}}')
    assert err.server_message == "key *** refused, see ?Signature=***"


def test_after_malformed_waits_when_resending_is_safe_and_names_the_problem_otherwise(uniform, api):
    idempotent = api.budget("GET", None)
    assert api.after_malformed(idempotent, "GET", "https://api.example/v1/x", 200, "bad") == 1.0
    secret = unique("leak")
    mask(secret)
    with pytest.raises(IngestApiError) as info:
        api.after_malformed(
            api.budget("POST", None), "post", "https://api.example/v1/jobs?sig=1", 201, f"not JSON: {secret}"
        )
    err = info.value
    assert type(err) is IngestApiError and err.outcome_unknown
    assert (err.method, err.endpoint, err.status, err.code, err.server_message) == (
        "POST",
        "https://api.example/v1/jobs",
        201,
        "MalformedReply",
        "not JSON: ***",
    )
    assert str(err).startswith("Test API POST https://api.example/v1/jobs failed: HTTP 201 [MalformedReply]")


def test_budget_follows_the_method_unless_told(api):
    assert api.budget("get", None).idempotent is True
    assert api.budget("DELETE", None).idempotent is True
    assert api.budget("post", None).idempotent is False
    assert api.budget("PATCH", None).idempotent is False
    assert api.budget("POST", True).idempotent is True
    assert api.budget("GET", False).idempotent is False


def test_url_joins_paths_to_the_base_and_keeps_absolute_urls(api):
    assert api.url("") == "https://api.example/v1"
    assert api.url("jobs/1") == "https://api.example/v1/jobs/1"
    assert api.url("//jobs") == "https://api.example/v1/jobs"
    assert api.url("X-jobs/X") == "https://api.example/v1/X-jobs/X"  # only slashes are stripped
    x_base = ApiClient("Test API", "https://api.example/X//")
    assert (x_base.base_url, x_base.url("X")) == ("https://api.example/X", "https://api.example/X/X")
    assert api.url("http://other/x?y=1") == "http://other/x?y=1"
    assert api.url("https://s3.example/b/k") == "https://s3.example/b/k"
    assert api.endpoint("https://h/p?a=1?b") == "https://h/p" and api.endpoint("https://h/p") == "https://h/p"


# --- what a transport error means ---------------------------------------------------------------------
def certificate_error(message: str | None = "self-signed certificate") -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]")
    err.verify_message = message
    return err


def tls_reason(detail: str) -> str:
    return (
        f"TLS certificate verification failed ({detail}); "
        "check the connection's 'verify' (CA bundle) and host"
    )


def chained(outer: BaseException, *, cause=None, context=None) -> BaseException:
    outer.__cause__, outer.__context__ = cause, context
    return outer


def test_tls_failure_is_found_wherever_the_certificate_error_hides():
    assert _tls_failure(certificate_error()) == tls_reason("self-signed certificate")
    assert _tls_failure(certificate_error(None)) == tls_reason("certificate verify failed")
    assert _tls_failure(chained(OSError("outer"), cause=certificate_error())) == tls_reason(
        "self-signed certificate"
    )
    assert _tls_failure(chained(OSError("outer"), context=certificate_error("ctx"))) == tls_reason("ctx")
    with_reason = OSError("max retries")
    with_reason.reason = certificate_error("reason")  # urllib3's MaxRetryError
    assert _tls_failure(with_reason) == tls_reason("reason")
    # requests' SSLError(MaxRetryError): the cause is the first exception among the args
    assert _tls_failure(OSError("text", certificate_error("arg"), ValueError("x"))) == tls_reason("arg")
    text_reason = OSError(certificate_error("arg0"))
    text_reason.reason = "just text"
    assert _tls_failure(text_reason) == tls_reason("arg0")


def test_tls_failure_without_a_verify_message_or_aiohttp_loaded(monkeypatch):
    """A sync-only worker never imports aiohttp; an error raised by hand has no verify_message."""
    import sys

    monkeypatch.delitem(sys.modules, "aiohttp", raising=False)
    bare = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]")
    assert _tls_failure(chained(OSError("outer"), cause=bare)) == tls_reason("certificate verify failed")


def test_tls_failure_is_none_for_other_errors_and_ends_on_cycles():
    assert _tls_failure(ConnectionResetError("reset")) is None
    assert _tls_failure(ssl.SSLError(1, "handshake failure")) is None
    a, b = OSError("a"), OSError("b")
    a.__context__, b.__context__ = b, a
    assert _tls_failure(a) is None
    first_cause = chained(OSError("outer"), cause=OSError("plain"), context=certificate_error("ctx"))
    assert _tls_failure(first_cause) is None  # the cause is followed, not the context


def test_an_aiohttp_certificate_error_is_read_through_its_certificate_error():
    import aiohttp
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("h", 443, True, True, None, None, None)
    err = aiohttp.ClientConnectorCertificateError(key, certificate_error("aiohttp"))
    assert _tls_failure(err) == tls_reason("aiohttp")
    err.args = ("connect failed",)  # found through ``certificate_error``, whatever its args hold
    assert _tls_failure(err) == tls_reason("aiohttp")


def test_only_a_refused_or_timed_out_connect_proves_the_request_never_left():
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

    refused = MaxRetryError(None, "/x", reason=NewConnectionError(None, "refused"))
    assert _sent_before_failure(requests.ConnectionError(refused)) is False
    assert _sent_before_failure(requests.ConnectTimeout("connect timed out")) is False
    reset = MaxRetryError(None, "/x", reason=ProtocolError("reset"))
    assert _sent_before_failure(requests.ConnectionError(reset)) is True
    assert _sent_before_failure(requests.ConnectionError(refused, "second")) is False
    assert _sent_before_failure(requests.ConnectionError()) is True
    assert _sent_before_failure(requests.ConnectionError("text")) is True
    assert _sent_before_failure(requests.ReadTimeout("read timed out")) is True
