"""The documentation cannot drift from the code: generated sections, :param: lines, links, examples.

The generated sections of docs/ are rebuilt in memory by scripts/gen_docs.py and compared with
the pages; a parameter added, removed or renamed without rerunning the generator, or without a
``:param:`` line, fails here. So do a broken relative link or anchor in README.md or docs/.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gen_docs = load("gen_docs", ROOT / "scripts" / "gen_docs.py")
bench_common = load("bench_common", ROOT / "benchmarks" / "common.py")


# --- the pages against the code -----------------------------------------------------------------
def test_generated_sections_match_the_code():
    results, problems = gen_docs.generate()
    drift = [str(path.relative_to(ROOT)) for path, (current, new) in results.items() if current != new]
    assert problems == [], "\n".join(problems)
    assert drift == [], f"{drift} differ from the code: run .venv/bin/python scripts/gen_docs.py"


def test_every_public_class_documents_every_parameter():
    problems = [p for cls in gen_docs.public_classes() for p in gen_docs.class_doc(cls).problems]
    assert problems == []
    # the base parameters are documented once, in the base, and reach every operator's table
    polaris = gen_docs.class_doc(
        sys.modules["airflow_provider_ingest.operators.polaris"].PolarisStartIngestionJobOperator
    )
    names = [p.name for p in polaris.params]
    for base_param in ("wait_for_completion", "deferrable", "poll_interval", "timeout", "cancel_on_kill"):
        assert base_param in names
    assert "conn_id" not in names  # filled in by the subclass from polaris_conn_id


def test_check_mode_exits_non_zero_on_drift(tmp_path, capsys):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    for top in ROOT.glob("*.md"):  # README and the pages it links to (CHANGELOG...)
        shutil.copy(top, tmp_path / top.name)
    assert gen_docs.main(["--check", "--root", str(tmp_path)]) == 0
    page = docs / "polaris.md"
    text = page.read_text()
    # a parameter renamed in the code without regenerating looks, to the page, like this edit
    assert "| `time_column` |" in text
    page.write_text(text.replace("| `time_column` |", "| `timestamp_column` |", 1))
    results, problems = gen_docs.generate(docs)
    assert [path.name for path, (current, new) in results.items() if current != new] == ["polaris.md"]
    assert problems == []
    assert gen_docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert "drift: docs/polaris.md differs from the code" in capsys.readouterr().err
    assert gen_docs.main(["--root", str(tmp_path)]) == 0  # rewrites the page
    assert page.read_text() == text
    # a section removed from a page is reported by name
    page.write_text(re.sub(r"<!-- params:PolarisJobSensor:start -->.*?:end -->\n", "", text, flags=re.S))
    _, problems = gen_docs.generate(docs)
    assert problems == [
        "docs/polaris.md: no section for params:PolarisJobSensor; add "
        "'<!-- params:PolarisJobSensor:start -->' and '<!-- params:PolarisJobSensor:end -->' "
        "lines where it belongs"
    ]


def test_an_undocumented_or_stale_parameter_is_a_problem():
    from airflow_provider_ingest.operators.base import IngestJobOperator

    class DocumentedOperator(IngestJobOperator):
        """An operator.

        :param table: Where rows go.
        :param retired: A parameter the signature no longer has.
        """

        def __init__(self, *, table: str, batch_rows: int = 4 * 1000, service_conn_id: str = "x", **kwargs):
            super().__init__(conn_id=service_conn_id, **kwargs)

    doc = gen_docs.class_doc(DocumentedOperator, own=(gen_docs.PACKAGE, __name__))
    assert doc.problems == [
        "DocumentedOperator: parameter 'batch_rows' (declared by DocumentedOperator) has no "
        "':param batch_rows:' line in DocumentedOperator's docstring",
        "DocumentedOperator: parameter 'service_conn_id' (declared by DocumentedOperator) has no "
        "':param service_conn_id:' line in DocumentedOperator's docstring",
        "DocumentedOperator: ':param retired:' documents a parameter its __init__ does not have",
    ]
    rows = {p.name: p for p in doc.params}
    assert (rows["table"].type, rows["table"].default, rows["table"].doc) == (
        "`str`",
        "required",
        "Where rows go.",
    )
    assert rows["batch_rows"].default == "`4 * 1000` (`4000`)"
    assert rows["deferrable"].default == "`default_deferrable()`"  # not the value of this machine's config
    assert rows["timeout"].owner == "IngestJobOperator"
    assert "conn_id" not in rows


def test_status_tables_come_from_the_hooks():
    from airflow_provider_ingest.hooks.polaris import POLARIS_STATUSES

    table = gen_docs.status_table_markdown(POLARIS_STATUSES)
    assert "| `completed` | the task succeeds |" in table
    assert "| `canceled` | the task fails, with the vendor's reason |" in table
    assert "| `suspended` | the task keeps waiting |" in table
    names = set(gen_docs.status_tables())
    assert {"POLARIS_STATUSES", "EGAIN_STATUSES", "IMPORT_JOB_STATUSES", "BATCH_STATUSES"} <= names


# --- connection examples ------------------------------------------------------------------------
@pytest.mark.parametrize("conn_id", sorted(set(gen_docs.EXAMPLE_CONNECTIONS) - {"aws_default"}))
def test_connection_examples_are_read_alike_by_the_hook(conn_id):
    """The JSON and URI forms on the service page give the hook the same settings."""
    from airflow.sdk import Connection

    spec = gen_docs.EXAMPLE_CONNECTIONS[conn_id]
    from_json = Connection.from_json(json.dumps(spec), conn_id=conn_id)
    from_uri = Connection.from_uri(gen_docs.connection_uri(conn_id, spec), conn_id=conn_id)
    hook_class = next(
        cls for cls in gen_docs.public_classes() if getattr(cls, "default_conn_name", None) == conn_id
    )
    base_json, _ = hook_class(conn_id).client_settings(from_json)
    base_uri, _ = hook_class(conn_id).client_settings(from_uri)
    assert base_json == base_uri and base_json.startswith(spec["host"])
    assert (from_uri.conn_type, from_uri.login or None, from_uri.password, from_uri.extra_dejson) == (
        spec["conn_type"],
        spec.get("login"),
        spec.get("password"),
        spec["extra"],
    )


def test_aws_connection_example_round_trips():
    from airflow.sdk import Connection

    spec = gen_docs.EXAMPLE_CONNECTIONS["aws_default"]
    conn = Connection.from_uri(gen_docs.connection_uri("aws_default", spec), conn_id="aws_default")
    assert (conn.conn_type, conn.login, conn.password, conn.extra_dejson) == (
        "aws",
        spec["login"],
        spec["password"],
        spec["extra"],
    )


# --- links ----------------------------------------------------------------------------------------
def test_every_relative_link_and_anchor_resolves():
    assert gen_docs.broken_links() == []


def test_the_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "# Page\n\n## Imply Polaris — `polaris_default`, type `imply_polaris`\n\n## Setup\n\n## Setup\n\n"
        "```bash\n# not a heading\n[not a link](nowhere.md)\n```\n"
    )
    (tmp_path / "README.md").write_text(
        "[ok](docs/page.md#imply-polaris--polaris_default-type-imply_polaris) [ok](docs/page.md#setup-1)\n"
        "[ok](#readme) `[code](gone.md)` [web](https://example.com/x.md)\n"
        "# README\n"
        "[gone](docs/gone.md) [bad anchor](docs/page.md#setup-2) [also](docs/page.md#not-a-heading)\n"
        "[ref]: docs/missing.md\n"
    )
    assert gen_docs.broken_links(root=tmp_path) == [
        "README.md: link 'docs/gone.md': docs/gone.md does not exist",
        "README.md: link 'docs/page.md#setup-2': no heading or anchor #setup-2 in docs/page.md",
        "README.md: link 'docs/page.md#not-a-heading': no heading or anchor #not-a-heading in docs/page.md",
        "README.md: link 'docs/missing.md': docs/missing.md does not exist",
    ]


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("docker/local-stack.sh", "dockerlocal-stacksh"),
        ("Waiting, retries and kills", "waiting-retries-and-kills"),
        ("Operators, sensor, trigger, hook", "operators-sensor-trigger-hook"),
        ("Local fakes (`airflow_provider_ingest.testing`)", "local-fakes-airflow_provider_ingesttesting"),
        ("A [linked](x.md) title", "a-linked-title"),
    ],
)
def test_github_slugs(heading, slug):
    assert gen_docs.github_slug(heading) == slug


# --- README and benchmarks ------------------------------------------------------------------------
def test_readme_is_short_and_its_dag_example_builds():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "with DAG(" in b)
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)  # builds the DAG; no task runs
    (task,) = namespace["dag"].tasks
    assert type(task).__name__ == "S3ToZetaAlphaOperator"


def test_every_benchmark_has_a_section():
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    scripts = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "common")
    for name in scripts:
        assert page.count(f"<!-- bench:{name}:start -->") == 1, name
        assert page.count(f"<!-- bench:{name}:end -->") == 1, name


def test_write_table_fills_only_its_section(tmp_path):
    page = tmp_path / "benchmarks.md"
    original = (ROOT / "docs" / "benchmarks.md").read_text()
    page.write_text(original)
    bench_common.write_table(
        "triggers", "| a | b |\n|---|---|\n| 1 | 2 |", "python benchmarks/triggers.py --quick", page
    )
    text = page.read_text()
    section = text.split("<!-- bench:triggers:start -->\n")[1].split("<!-- bench:triggers:end -->")[0]
    assert re.fullmatch(
        r"Measured \d{4}-\d\d-\d\d \d\d:\d\d UTC on a machine with \d+ CPU cores by\n\n"
        r"```bash\npython benchmarks/triggers.py --quick\n```\n\n\| a \| b \|\n\|---\|---\|\n\| 1 \| 2 \|\n",
        section,
    )

    # everything outside the section is as it was
    def outside(t: str) -> str:
        return re.sub(r"<!-- bench:triggers:start -->.*<!-- bench:triggers:end -->", "", t, flags=re.S)

    assert outside(text) == outside(original)
    with pytest.raises(ValueError, match=r"expected one '<!-- bench:nope:start -->'"):
        bench_common.write_table("nope", "| x |", "cmd", page)


def test_the_documented_fakes_command_writes_its_env_file_into_a_new_folder(tmp_path):
    """docs/fakes.md: ``airflow-ingest-fakes --env-file .local/fakes.env &`` in a fresh clone,
    where ``.local/`` does not exist yet."""
    import subprocess

    env_file = tmp_path / ".local" / "fakes.env"
    script = Path(sys.executable).parent / "airflow-ingest-fakes"
    proc = subprocess.Popen(
        [str(script), "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = []
        for line in proc.stdout:  # the command announces the file once it is written
            output.append(line)
            if line.startswith("wrote "):
                break
        assert output and output[-1].startswith("wrote "), "".join(output)
        names = {line.split("=", 1)[0] for line in env_file.read_text().splitlines()}
        assert {
            "export AIRFLOW_CONN_AWS_DEFAULT",
            "export AIRFLOW_CONN_POLARIS_DEFAULT",
            "export AIRFLOW_CONN_EGAIN_DEFAULT",
            "export AIRFLOW_CONN_ZETA_ALPHA_DEFAULT",
            "export AIRFLOW_CONN_ADOBE_AEP_DEFAULT",
        } <= names
    finally:
        proc.terminate()
        proc.wait(30)
