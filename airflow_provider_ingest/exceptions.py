"""Errors raised by the provider: one type for API failures, one for jobs that end badly."""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowException


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
    ):
        self.service = service
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.server_message = message
        status_text = f"HTTP {status}" if status is not None else "no HTTP response"
        code_text = f" [{code}]" if code else ""
        super().__init__(f"{service} {method} {endpoint} failed: {status_text}{code_text}: {message}")

    # keep the fields when pickled (trigger events, process pools)
    def __reduce__(self) -> tuple[type[IngestApiError], tuple[Any, ...]]:
        return (
            type(self),
            (self.service, self.method, self.endpoint, self.status, self.server_message, self.code),
        )


class IngestJobFailed(AirflowException):
    """A remote job ended in a failed, canceled or otherwise unsuccessful state."""


class IngestJobTimeout(AirflowException):
    """A remote job did not reach a terminal state before the wait's deadline."""
