"""Errors raised by the provider: one type for API failures, one for jobs that end badly."""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import AirflowFailException

# 4xx answers a retry cannot change: the request itself is wrong (validation, unknown resource,
# conflict) or the credentials are. 408, 425 and 429 are transient and retried by http.py.
FINAL_CLIENT_ERRORS = frozenset(range(400, 500)) - {408, 425, 429}


class IngestApiError(AirflowException):
    """An ingestion API answered with an error, or could not be reached within the retry budget.

    The text names the service, the HTTP method and endpoint (never its query string, which can
    carry a presigned signature), the status and the server's own message, so a task log says
    what failed without anyone opening the vendor's console.
    """

    def __init__(
        self,
        service: str,
        method: str,
        endpoint: str,
        status: int | None,
        message: str,
        code: str | None = None,
        sent: bool = True,
    ):
        self.service = service
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.server_message = message
        # False only when the request provably never left (connection refused, connect timeout)
        self.sent = sent
        status_text = f"HTTP {status}" if status is not None else "no HTTP response"
        code_text = f" [{code}]" if code else ""
        super().__init__(f"{service} {method} {endpoint} failed: {status_text}{code_text}: {message}")

    # keep the fields when pickled (trigger events, process pools)
    def __reduce__(self) -> tuple[type[IngestApiError], tuple[Any, ...]]:
        fields = (self.service, self.method, self.endpoint, self.status, self.server_message, self.code)
        return (type(self), (*fields, self.sent))

    @property
    def outcome_unknown(self) -> bool:
        """True when the server may have acted on the request although no usable reply came back:
        the reply was lost after sending, or a 2xx reply could not be read."""
        if self.status is None:
            return self.sent
        return self.status < 400

    @classmethod
    def of(cls, *args: Any, **kwargs: Any) -> IngestApiError:
        """The error for a reply with ``status``: :class:`IngestApiRejected` when a retry of the task
        cannot change the answer (so Airflow does not retry it), else :class:`IngestApiError`."""
        status = args[3] if len(args) > 3 else kwargs.get("status")
        kind = IngestApiRejected if status in FINAL_CLIENT_ERRORS else cls
        return kind(*args, **kwargs)


class IngestApiRejected(IngestApiError, AirflowFailException):
    """The API refused the request with a 4xx a retry cannot change (validation, not found,
    conflict, credentials): the task fails without Airflow's retries."""


class IngestInputError(AirflowFailException, ValueError):
    """An argument, a connection field or the input data is wrong: found before (or instead of) any
    remote work, and not retried. It is a ``ValueError`` too, so callers may catch either."""


class IngestStartUnknown(AirflowFailException):
    """A start call may have reached the service, the job it made cannot be found, and resending
    could start a second job: the task fails without retrying and says how to check."""


class IngestJobFailed(AirflowException):
    """A remote job ended in a failed, canceled or otherwise unsuccessful state."""


class IngestJobTimeout(AirflowException):
    """A remote job did not reach a terminal state before the wait's deadline."""
