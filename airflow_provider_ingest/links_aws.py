"""The Amazon Q in Connect console link, on the amazon provider's ``BaseAwsLink``.

Apart from ``links.py`` so that importing a non-AWS operator does not load botocore (the amazon
provider's links module imports it): DAG parse cost, see ``tests/test_import_cost.py``.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class QConnectKnowledgeBaseLink(BaseAwsLink):
    """The knowledge base (and its import job) in the AWS console, as the amazon provider's links
    are built: the partition's console domain and the connection's region."""

    name = "Amazon Q in Connect knowledge base"
    key = "qconnect_knowledge_base_link"
    format_str = (
        BASE_AWS_CONSOLE_LINK
        + "/connect/v2/app/knowledge-bases/{knowledge_base_id}/import-jobs/{import_job_id}"
        + "?region={region_name}"
    )
