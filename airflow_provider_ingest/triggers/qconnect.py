from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import quote

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from airflow.triggers.base import TriggerEvent

from airflow_provider_ingest.auth import AwsSigV4
from airflow_provider_ingest.hooks.qconnect import (
    IMPORT_JOB_STATUSES,
    SERVICE,
    QConnectHook,
    aws_network,
    max_attempts,
)
from airflow_provider_ingest.http import AsyncApiClient, RetryPolicy, Timeouts, needs, shared_async_client
from airflow_provider_ingest.jobs import JobSnapshot
from airflow_provider_ingest.triggers.base import wait_event


async def open_status_client(hook: QConnectHook) -> AsyncApiClient:
    """A signed REST client for ``GetImportJob`` on the shared aiohttp pool, configured from the
    connection's own aiobotocore client (endpoint, region, signing name, timeouts, attempts,
    proxies, client certificate) and the hook's ``verify``, as botocore would use them.

    Why not the botocore client itself: each of its calls costs ~2 ms of the triggerer's loop
    (events, user agent, parsing), 3x a plain signed GET (see benchmarks/triggers.py)."""
    async with await hook.get_async_conn() as client:
        meta = client.meta
        endpoint, region = meta.endpoint_url, meta.region_name
        signing_name = meta.service_model.signing_name
        timeouts = Timeouts(connect=meta.config.connect_timeout, read=meta.config.read_timeout)
        attempts = max_attempts(client)
        config = meta.config
    # Both may read the connection (a blocking call), so not on the triggerer's loop.
    session = await asyncio.to_thread(hook.get_session, region, True)
    verify = await asyncio.to_thread(lambda: hook.verify)
    credentials = await session.get_credentials()
    if credentials is None:
        raise ValueError(f"aws_conn_id {hook.aws_conn_id!r}: no AWS credentials found")
    auth = AwsSigV4(credentials, signing_name, region)
    network = aws_network(verify, config)
    return AsyncApiClient(SERVICE, endpoint, auth, RetryPolicy(attempts=attempts), timeouts, network)


# A status reply without the job's status (``null``, a list, an error object in a 2xx) is a
# malformed reply: read again within the request budget, then a clear error naming what was missing.
IMPORT_JOB_REPLY = needs("status", within=lambda body: body.get("importJob"))


class QConnectImportJobTrigger(AwsBaseWaiterTrigger):
    """Waits for a Q in Connect import job, judged by the package's ``import_job_complete`` waiter
    acceptors (:data:`IMPORT_JOB_STATUSES`); a status the waiter does not know keeps waiting.

    ``deadline`` (epoch seconds) is serialized, so a triggerer restart continues the same wait
    instead of granting a new one. Connection handling (region, role, endpoint, verify, botocore
    config) is the amazon provider's, and its polls honour the same ``verify``, botocore
    ``proxies`` (else the environment's) and ``client_cert`` botocore would; every wait on one
    connection and configuration shares one signed client.

    :param knowledge_base_id: The knowledge base the job imports into.
    :param import_job_id: The import job id.
    :param deadline: When the wait ends, in epoch seconds (absolute, so a restart keeps it).
    :param waiter_delay: Seconds between two status reads.
    :param waiter_max_attempts: Ignored (kept for the amazon provider's trigger interface): the
        number of reads follows from ``deadline``.
    :param aws_conn_id: The Airflow AWS connection (credentials, role, region, endpoint).
    :param region_name: The AWS region; the connection's when None.
    :param verify: TLS verification: ``False``, a CA bundle path, or None for the default.
    :param botocore_config: botocore ``Config`` settings (timeouts, retries) as a dict.
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
            # amazon annotates int; the delay only reaches asyncio.sleep, which takes a float
            waiter_delay=waiter_delay,  # type: ignore[arg-type]
            waiter_max_attempts=waiter_max_attempts or 1,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
        self.knowledge_base_id = knowledge_base_id
        self.import_job_id = import_job_id
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, params = super().serialize()
        params.pop("waiter_max_attempts", None)  # derived from the deadline, never frozen
        return path, params

    def status_path(self) -> str:
        kb, job_id = quote(self.knowledge_base_id, safe=""), quote(self.import_job_id, safe="")
        return f"knowledgeBases/{kb}/importJobs/{job_id}"

    async def snapshot(self, client: AsyncApiClient, path: str) -> JobSnapshot:
        job = (await client.json("GET", path, shape=IMPORT_JOB_REPLY))["importJob"]
        status = str(job.get("status") or "")
        return JobSnapshot(self.import_job_id, status, IMPORT_JOB_STATUSES.state_of(status))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = cast(QConnectHook, self.hook())  # built from aws_hook_class
        key = (QConnectHook, self.aws_conn_id, self.region_name, self.verify, repr(self.botocore_config))
        client = await shared_async_client(key, lambda: open_status_client(hook))
        path = self.status_path()  # the same for every poll
        yield await wait_event(
            SERVICE,
            self.import_job_id,
            lambda: self.snapshot(client, path),
            poll_interval=self.waiter_delay,
            deadline=self.deadline,
            log=self.log,
            tag={self.return_key: self.return_value},
        )
