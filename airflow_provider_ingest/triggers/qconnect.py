from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from airflow.providers.amazon.aws.utils.waiter_with_logging import async_wait
from airflow.providers.amazon.aws.waiters.base_waiter import BaseBotoWaiter
from airflow.triggers.base import TriggerEvent

from airflow_provider_ingest.hooks.qconnect import QConnectHook
from airflow_provider_ingest.http import shared_async_client


@cache
def waiter_model() -> dict[str, Any]:
    """The waiter JSON, read once per process (the base trigger reads the file twice per wait)."""
    return json.loads(QConnectHook().waiter_path.read_text())


async def _open_client(hook: QConnectHook, waiter_name: str) -> tuple[Any, Any]:
    """The shared client and its waiter: a waiter holds no state between ``wait`` calls, and
    building one per wait parses the waiter model again."""
    client = await (await hook.get_async_conn()).__aenter__()
    return client, BaseBotoWaiter(client, waiter_model(), deferrable=True).waiter(waiter_name)


async def _close_client(client_and_waiter: tuple[Any, Any]) -> None:
    await client_and_waiter[0].__aexit__(None, None, None)


class QConnectImportJobTrigger(AwsBaseWaiterTrigger):
    """Waits for a Q in Connect import job with the package's ``import_job_complete`` waiter.

    ``deadline`` (epoch seconds) is serialized and the waiter's attempts are recomputed from it at
    every start, so a triggerer restart continues the same wait instead of granting a new one.
    """

    aws_hook_class = QConnectHook

    def __init__(
        self,
        *,
        knowledge_base_id: str,
        import_job_id: str,
        deadline: float,
        waiter_delay: float = 30,
        waiter_max_attempts: int | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ):
        super().__init__(
            serialized_fields={
                "knowledge_base_id": knowledge_base_id,
                "import_job_id": import_job_id,
                "deadline": deadline,
            },
            waiter_name="import_job_complete",
            waiter_args={"knowledgeBaseId": knowledge_base_id, "importJobId": import_job_id},
            failure_message="Amazon Q in Connect import job failed",
            status_message="Import job status",
            status_queries=["importJob.status"],
            return_key="import_job_id",
            return_value=import_job_id,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts or 1,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, params = super().serialize()
        params.pop("waiter_max_attempts", None)  # derived from the deadline, never frozen
        return path, params

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """The base trigger's wait, with one aiobotocore client per connection in the triggerer
        (a client per wait costs ~0.4 MB and ~15 ms of the loop; see benchmarks/triggers.py)."""
        self.attempts = max(1, math.ceil((self.deadline - time.time()) / max(self.waiter_delay, 0.1)))
        hook = self.hook()
        key = (QConnectHook, self.aws_conn_id, self.region_name, self.verify, repr(self.botocore_config))
        _, waiter = await shared_async_client(
            (*key, self.waiter_name), lambda: _open_client(hook, self.waiter_name), _close_client
        )
        try:
            await async_wait(
                waiter,
                self.waiter_delay,
                self.attempts,
                self.waiter_args,
                self.failure_message,
                self.status_message,
                self.status_queries,
            )
        except AirflowException as error:
            yield self._event_from_exception(error)
        else:
            yield TriggerEvent({"status": "success", self.return_key: self.return_value})
