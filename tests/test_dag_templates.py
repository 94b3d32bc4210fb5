"""The example DAGs' templated folders render for every kind of run: scheduled (a logical date),
and triggered from the UI or the REST API with no logical date, where Airflow 3 puts no ``ds`` in
the template context (only ``dag_run.run_after``)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import jinja2
import pytest
from conftest import ROOT

EXAMPLE_DAGS = ROOT / "dags"
RUN_AFTER = dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(EXAMPLE_DAGS)).dags


def folder_fields(dag):
    """Every templated S3 folder or prefix of the DAG's tasks, as the DAG file wrote it."""
    for task in dag.tasks:
        for field in task.template_fields:
            value = getattr(task, field, None)
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str) and "params.prefix" in text:
                    yield task.task_id, field, text


@pytest.mark.parametrize("dag_id", ["s3_to_table", "s3_to_knowledge_base"])
@pytest.mark.parametrize(
    "logical_date", [None, dt.datetime(2026, 3, 4, tzinfo=dt.UTC)], ids=["no-logical-date", "scheduled"]
)
def test_folders_render_with_and_without_a_logical_date(dags, dag_id, logical_date):
    dag = dags[dag_id]
    env = dag.get_template_env()
    assert env.undefined is jinja2.StrictUndefined  # an undefined name fails the task, not renders ""
    context = {
        "params": {**{k: dag.params[k] for k in dag.params}, "prefix": ""},
        "dag_run": SimpleNamespace(logical_date=logical_date, run_after=RUN_AFTER),
    }
    if logical_date is not None:  # what Airflow adds to the context only when the run has a logical date
        context["ds"] = logical_date.strftime("%Y-%m-%d")
    fields = list(folder_fields(dag))
    assert fields, dag_id
    for task_id, field, text in fields:
        rendered = env.from_string(text).render(**context)
        assert "/2026-03-04/" in rendered, (task_id, field, rendered)
