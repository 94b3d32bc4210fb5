"""Asset URI schemes, asset events, OpenLineage facets and console links, over real runs against the
fakes (moto S3 and the five vendor fakes)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import BUCKET, EGAIN_AWS_KEY, run_dag

from airflow_provider_ingest import assets
from airflow_provider_ingest.operators.adobe_aep import S3ToAdobeAepOperator
from airflow_provider_ingest.operators.egain import EgainStartImportOperator
from airflow_provider_ingest.operators.polaris import (
    PolarisEnsureS3ConnectionOperator,
    PolarisStartIngestionJobOperator,
)
from airflow_provider_ingest.operators.qconnect import QConnectImportQuickResponsesOperator
from airflow_provider_ingest.operators.zeta_alpha import S3ToZetaAlphaOperator
from airflow_provider_ingest.testing.adobe_aep import DATASET_ID
from airflow_provider_ingest.testing.stack import sample_events, seed_demo_data

ROLE = "arn:aws:iam::123456789012:role/polaris"
KB = "1b0c5d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
QUICK_RESPONSES = b"Name,Content\nreset,Reset your password here\nvpn,Use the VPN\n"
CSV = b"".join([b"city,session_length,score\n", *(f"c{i},{i},{i * 1.5}\n".encode() for i in range(40))])


# --- asset URI schemes --------------------------------------------------------------------------
GOOD = {
    "imply-polaris://ACME.us-east-1.aws.api.imply.io/proj-1/events/": (
        "imply-polaris://acme.us-east-1.aws/proj-1/events"
    ),
    "adobe-aep://ACME0123@AdobeOrg/Prod/5f0c1e2d": "adobe-aep://ACME0123@AdobeOrg/prod/5f0c1e2d",
    "egain://API.eGain.cloud/acme": "egain://api.egain.cloud/acme",
    "qconnect://US-EAST-1/1B0C5D2E-3F4A-4B5C-8D6E-7F8091A2B3C4": f"qconnect://us-east-1/{KB}",
    "zeta-alpha://Api.Zeta-Alpha.com/acme/default#x": "zeta-alpha://api.zeta-alpha.com/acme/default",
}
BAD = [
    ("imply-polaris://acme.us-east-1.aws/proj-1", "must be imply-polaris://<org>.<region>.<cloud>/"),
    ("imply-polaris://acme.us-east-1.aws/p/t?x=1", "takes no query"),
    ("adobe-aep://ACME0123/prod/ds", r"needs the IMS org id \(<id>@AdobeOrg\)"),
    ("adobe-aep://ACME0123@AdobeOrg/prod", "must be adobe-aep://<ims-org-id>/<sandbox>/<dataset-id>"),
    ("egain://api.egain.cloud/", "must be egain://<api-host>/<tenant>"),
    ("egain://bad_host!/acme", "needs a host name"),
    ("qconnect://mars-1/" + KB, "needs an AWS region"),
    ("qconnect://us-east-1/kb-1", "is not a knowledge base id"),
    ("zeta-alpha://api.zeta-alpha.com/acme", "must be zeta-alpha://<host>/<tenant>/<index-id>"),
]


def test_schemes_are_registered_through_the_providers_manager():
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    runtime = ProvidersManagerTaskRuntime()
    for scheme, handler in assets.HANDLERS.items():
        assert runtime.asset_uri_handlers[scheme] is handler
        assert runtime.asset_factories[scheme] is assets.FACTORIES[scheme]
        assert runtime.asset_to_openlineage_converters[scheme] is assets.convert_asset_to_openlineage


@pytest.mark.parametrize("uri, normalized", GOOD.items())
def test_asset_uris_are_normalized_by_the_registered_handler(uri, normalized):
    from airflow.sdk import Asset

    assert Asset(uri).uri == normalized


@pytest.mark.parametrize("uri, message", BAD)
def test_bad_asset_uris_are_rejected(uri, message):
    from airflow.sdk import Asset

    with pytest.raises(ValueError, match=message):
        Asset(uri)


def test_assets_in_a_dag_file_resolve_and_bad_ones_are_import_errors(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    uris = list(GOOD)
    (tmp_path / "uses_assets.py").write_text(
        textwrap.dedent(
            f"""
            import datetime as dt
            from airflow.sdk import DAG, Asset
            from airflow.providers.standard.operators.empty import EmptyOperator
            with DAG("uses_assets", schedule=[Asset({uris[0]!r})], start_date=dt.datetime(2026, 1, 1)):
                EmptyOperator(task_id="t", outlets=[Asset(u) for u in {uris[1:]!r}])
            """
        )
    )
    (tmp_path / "bad_asset.py").write_text(
        "import datetime as dt\nfrom airflow.sdk import DAG, Asset\n"
        "DAG('bad_asset', schedule=[Asset('qconnect://us-east-1/kb-1')],\n"
        "    start_date=dt.datetime(2026, 1, 1))\n"
    )
    bag = DagBag(dag_folder=str(tmp_path))
    dag = bag.dags["uses_assets"]
    scheduled = [asset.uri for asset in dag.timetable.asset_condition.objects]
    assert scheduled == [GOOD[uris[0]]]
    assert [o.uri for o in dag.get_task("t").outlets] == [GOOD[u] for u in uris[1:]]
    (error,) = bag.import_errors.values()
    assert "is not a knowledge base id" in error


def test_destinations_derive_from_connections_not_secrets():
    from airflow.sdk import Connection

    polaris = Connection(
        conn_id="p",
        conn_type="imply_polaris",
        host="https://Acme.us-east-1.aws.api.imply.io",
        password="pok_secret",
        extra=json.dumps({"project_id": "proj-1"}),
    )
    assert (
        assets.polaris_destination(polaris, "events").uri
        == "imply-polaris://acme.us-east-1.aws/proj-1/events"
    )
    assert "pok_secret" not in assets.polaris_destination(polaris, "events").uri
    egain = Connection(conn_id="e", conn_type="egain", host="api.egain.cloud", login="id", password="s")
    assert assets.egain_destination(egain).uri == "egain://api.egain.cloud/default"
    zeta = Connection(
        conn_id="z", conn_type="zeta_alpha", host="https://api.zeta-alpha.com", extra='{"tenant": "acme"}'
    )
    assert assets.zeta_alpha_destination(zeta).uri == "zeta-alpha://api.zeta-alpha.com/acme/default"
    arn = f"arn:aws:wisdom:eu-west-1:123456789012:knowledge-base/{KB}"
    assert assets.qconnect_knowledge_base_asset("us-east-1", arn).uri == f"qconnect://eu-west-1/{KB}"


# --- a real run of every start operator: asset extras and OpenLineage ---------------------------
@pytest.fixture
def lineage_data(s3):
    for n in range(2):
        s3.put_object(
            Bucket=BUCKET, Key=f"lineage/polaris/part-{n}.json", Body=sample_events("2026-03-01", 25, n)
        )
    s3.put_object(Bucket=BUCKET, Key="lineage/aep/a.csv", Body=CSV)
    for name, body in [("a.html", b"<p>reset your password</p>"), ("b.md", b"# VPN")]:
        s3.put_object(Bucket=BUCKET, Key=f"lineage/kb/{name}", Body=body)
    s3.put_object(Bucket=BUCKET, Key="lineage/qr.csv", Body=QUICK_RESPONSES)
    for name in ("a.txt", "b.txt", "c.txt"):
        s3.put_object(Bucket=BUCKET, Key=f"lineage/za/{name}", Body=name.encode())


def ensure_polaris_connection():
    PolarisEnsureS3ConnectionOperator(
        task_id="ensure", name="test-conn", bucket=BUCKET, aws_assumed_role_arn=ROLE
    ).execute({})


def facets(operator, on_start: bool = False):
    """What the openlineage provider's listener gets from the operator (its DefaultExtractor)."""
    from airflow.providers.openlineage.extractors.base import DefaultExtractor

    extractor = DefaultExtractor(operator)
    return extractor.extract() if on_start else extractor.extract_on_complete(None)


def one(datasets):
    (dataset,) = datasets
    return dataset


def test_polaris_facets_after_a_run(polaris, lineage_data):
    from airflow.providers.common.compat.openlineage.facet import (
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    ensure_polaris_connection()
    op = PolarisStartIngestionJobOperator(
        task_id="polaris",
        table_name="events",
        connection_name="test-conn",
        prefixes=["lineage/polaris/"],
        poll_interval=0.1,
    )
    start = facets(op, on_start=True)
    assert start.inputs == [] and one(start.outputs).name == "test-project/events"
    job_id = op.execute({})
    lineage = facets(op)
    source = one(lineage.inputs)
    assert (source.namespace, source.name) == (f"s3://{BUCKET}", "lineage/polaris/")
    assert source.facets["schema"] == SchemaDatasetFacet(
        fields=[
            SchemaDatasetFacetFields(name="timestamp", type="string"),
            SchemaDatasetFacetFields(name="city", type="string"),
            SchemaDatasetFacetFields(name="session", type="string"),
            SchemaDatasetFacetFields(name="session_length", type="long"),
        ]
    )
    table = one(lineage.outputs)
    assert (table.namespace, table.name) == ("imply-polaris://demo.us-east-1.aws", "test-project/events")
    metrics = polaris.jobs[job_id]["_metrics"]
    assert table.outputFacets["outputStatistics"] == OutputStatisticsOutputDatasetFacet(
        rowCount=50, size=metrics["numBytesProcessed"]
    )
    assert op.landing["job_id"] == job_id and op.landing["rows"] == 50
    assert op.landing["s3"] == [f"s3://{BUCKET}/lineage/polaris/"]


def test_adobe_aep_facets_carry_the_uploaded_parquet_schema(adobe, lineage_data):
    from airflow.providers.common.compat.openlineage.facet import OutputStatisticsOutputDatasetFacet

    op = S3ToAdobeAepOperator(
        task_id="adobe",
        dataset_id=DATASET_ID,
        s3_prefix=f"s3://{BUCKET}/lineage/aep/",
        poll_interval=0.1,
    )
    result = op.execute({})
    lineage = facets(op)
    source = one(lineage.inputs)
    assert (source.namespace, source.name) == (f"s3://{BUCKET}", "lineage/aep/")
    dataset = one(lineage.outputs)
    assert (dataset.namespace, dataset.name) == ("adobe-aep://ACME0123456789@AdobeOrg", f"prod/{DATASET_ID}")
    fields = [(f.name, f.type) for f in dataset.facets["schema"].fields]
    assert fields == [("city", "string"), ("session_length", "int64"), ("score", "double")]
    assert dataset.outputFacets["outputStatistics"] == OutputStatisticsOutputDatasetFacet(
        rowCount=40, size=result["bytes"], fileCount=1
    )
    assert op.landing == {
        "batch_id": result["batch_id"],
        "dataset_id": DATASET_ID,
        "rows": 40,
        "bytes": result["bytes"],
        "files": 1,
        "s3": f"s3://{BUCKET}/lineage/aep/",
    }


def test_egain_facets_after_a_run(egain, lineage_data):
    from airflow.providers.common.compat.openlineage.facet import OutputStatisticsOutputDatasetFacet

    op = EgainStartImportOperator(
        task_id="egain", s3_path=f"s3://{BUCKET}/lineage/kb/", aws_conn_id="aws_egain", poll_interval=0.1
    )
    start = facets(op, on_start=True)
    assert one(start.inputs).name == "lineage/kb/"
    result = op.execute({})
    lineage = facets(op)
    assert (one(lineage.inputs).namespace, one(lineage.inputs).name) == (f"s3://{BUCKET}", "lineage/kb/")
    host = egain.url.split("://", 1)[1]
    output = one(lineage.outputs)
    assert (output.namespace, output.name) == (f"egain://{host}", "default")
    assert output.outputFacets["outputStatistics"] == OutputStatisticsOutputDatasetFacet(rowCount=2)
    assert op.landing["job_id"] == result["job_id"] and op.landing["documents"] == 2
    for secret in EGAIN_AWS_KEY:
        assert secret not in json.dumps(op.landing)


def test_qconnect_facets_after_a_run(qconnect, lineage_data):
    from airflow.providers.common.compat.openlineage.facet import OutputStatisticsOutputDatasetFacet

    op = QConnectImportQuickResponsesOperator(
        task_id="qconnect", s3_key=f"s3://{BUCKET}/lineage/qr.csv", knowledge_base_id=KB, poll_interval=0.1
    )
    job_id = op.execute({})
    lineage = facets(op)
    assert (one(lineage.inputs).namespace, one(lineage.inputs).name) == (f"s3://{BUCKET}", "lineage/qr.csv")
    output = one(lineage.outputs)
    assert (output.namespace, output.name) == ("qconnect://us-east-1", KB)
    assert output.outputFacets["outputStatistics"] == OutputStatisticsOutputDatasetFacet(
        size=len(QUICK_RESPONSES)
    )
    assert op.landing == {
        "import_job_id": job_id,
        "bytes": len(QUICK_RESPONSES),
        "s3": f"s3://{BUCKET}/lineage/qr.csv",
    }


def test_zeta_alpha_facets_after_a_run(zeta, lineage_data):
    from airflow.providers.common.compat.openlineage.facet import OutputStatisticsOutputDatasetFacet

    op = S3ToZetaAlphaOperator(task_id="zeta", s3_prefix=f"s3://{BUCKET}/lineage/za/", poll_interval=0.1)
    op.execute({})
    lineage = facets(op)
    assert (one(lineage.inputs).namespace, one(lineage.inputs).name) == (f"s3://{BUCKET}", "lineage/za/")
    output = one(lineage.outputs)
    host = zeta.url.split("://", 1)[1]
    assert (output.namespace, output.name) == (f"zeta-alpha://{host}", "acme/default")
    assert output.outputFacets["outputStatistics"] == OutputStatisticsOutputDatasetFacet(rowCount=3)


# --- full Airflow runs: links, asset events, the downstream DAG ---------------------------------
def xcom(run, task_id: str, key: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key=key)
            .one()
        )
        return XComModel.deserialize_value(row)


def test_every_operator_and_sensor_links_to_its_console(
    airflow_db, polaris, adobe, egain, qconnect, zeta, lineage_data
):
    from airflow.providers_manager import ProvidersManager

    from airflow_provider_ingest.links import LINKS
    from airflow_provider_ingest.links_aws import QConnectKnowledgeBaseLink

    registered = ProvidersManager().extra_links_class_names
    every_link = [*LINKS, QConnectKnowledgeBaseLink]
    assert {f"{link.__module__}.{link.__name__}" for link in every_link} <= set(registered)
    ensure_polaris_connection()
    run, tis = run_dag("test_lineage_all")
    assert run.state == "success", {t: ti.state for t, ti in tis.items()}

    job = tis["polaris"].xcom_pull(task_ids="polaris")
    batch = tis["adobe"].xcom_pull(task_ids="adobe")["batch_id"]
    egain_job = tis["egain"].xcom_pull(task_ids="egain")["job_id"]
    import_job = tis["qconnect"].xcom_pull(task_ids="qconnect")
    expected = {
        ("polaris", "PolarisJobLink"): f"{polaris.url}/projects/test-project/jobs/{job}",
        (
            "adobe",
            "AdobeAepBatchLink",
        ): f"https://experience.adobe.com/#/sname:prod/platform/monitoring/batches/{batch}",
        (
            "egain",
            "EgainImportJobLink",
        ): f"{egain.url}/knowledge/contentmgr/v4/import/content/{egain_job}/status",
        ("qconnect", "QConnectKnowledgeBaseLink"): (
            f"https://console.aws.amazon.com/connect/v2/app/knowledge-bases/{KB}/import-jobs/{import_job}"
            "?region=us-east-1"
        ),
        (
            "zeta",
            "ZetaAlphaDocumentsLink",
        ): f"{zeta.url}/v0/service/ingestion/documents?tenant=acme&content_source_id=cs-1",
    }
    for (task_id, link), url in expected.items():
        assert xcom(run, task_id, f"_link_{link}") == url, task_id
        sensor_url = url.replace("&content_source_id=cs-1", "")
        assert xcom(run, f"{task_id}_sensor", f"_link_{link}") == sensor_url, f"{task_id}_sensor"


CONSOLE_LINKS = {
    "airflow_provider_ingest.links.PolarisJobLink",
    "airflow_provider_ingest.links.AdobeAepBatchLink",
    "airflow_provider_ingest.links.EgainImportJobLink",
    "airflow_provider_ingest.links.ZetaAlphaDocumentsLink",
    "airflow_provider_ingest.links_aws.QConnectKnowledgeBaseLink",
}


def test_airflow_providers_links_lists_the_five_console_links():
    """The command the issue names, as a user runs it: the venv's ``airflow`` script, which finds the
    provider through its entry point."""
    airflow = Path(sys.executable).with_name("airflow")
    listed = subprocess.run(
        [str(airflow), "providers", "links", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    names = {row["extra_link_class_name"] for row in json.loads(listed.stdout)}
    assert {name for name in names if name.startswith("airflow_provider_ingest.")} == CONSOLE_LINKS


def asset_events(run_id: str):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            (e.asset.uri, e.source_task_id, e.extra)
            for e in session.query(AssetEvent).filter_by(source_run_id=run_id)
        ]


def queued_for(dag_id: str) -> int:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter_by(target_dag_id=dag_id).count()


@pytest.fixture
def downstream_dag_active(airflow_db):
    """on_table_loaded known to the metadata DB and unpaused, with nothing queued for it yet."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.asset import AssetDagRunQueue
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from conftest import ROOT

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(ROOT / "tests" / "dags" / "lineage_jobs.py"))
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        session.query(DagModel).filter_by(dag_id="on_table_loaded").update({"is_paused": False})
        session.query(AssetDagRunQueue).filter_by(target_dag_id="on_table_loaded").delete()


def test_s3_to_table_emits_the_table_event_that_schedules_on_table_loaded(
    downstream_dag_active, polaris, adobe, s3
):
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("on_table_loaded", ROOT / "dags" / "on_table_loaded.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    seed_demo_data(s3, "2026-02-05")
    run, tis = run_dag("s3_to_table", {"prefix": "events/2026-02-05/"})
    assert run.state == "success"
    events = {uri: (task, extra) for uri, task, extra in asset_events(run.run_id)}
    job_id = tis["polaris_ingest"].xcom_pull(task_ids="polaris_ingest")
    task, extra = events[example.EVENTS_TABLE.uri]
    assert task == "polaris_ingest"
    assert extra["job_id"] == job_id and extra["rows"] == 300 and extra["table"] == "events"
    assert extra["s3"] == ["s3://ingest-demo/events/2026-02-05/"]
    batch = tis["adobe_ingest"].xcom_pull(task_ids="adobe_ingest")
    task, extra = events[f"adobe-aep://ACME0123456789@AdobeOrg/prod/{DATASET_ID}"]
    assert task == "adobe_ingest" and extra["batch_id"] == batch["batch_id"] and extra["rows"] == 300
    assert queued_for("on_table_loaded") == 1


def test_a_failed_ingestion_emits_no_event_and_schedules_nothing(downstream_dag_active, polaris, s3):
    seed_demo_data(s3, "2026-02-06")
    polaris.fail_next_job("table is locked by a compaction")
    run, tis = run_dag("s3_to_table", {"prefix": "events/2026-02-06/", "run_adobe": False})
    assert tis["polaris_ingest"].state == "failed"
    assert asset_events(run.run_id) == []
    assert queued_for("on_table_loaded") == 0
