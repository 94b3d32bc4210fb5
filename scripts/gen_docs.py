"""Regenerate the parts of docs/ that the code owns, so a page cannot disagree with the code.

    .venv/bin/python scripts/gen_docs.py           # rewrite the generated sections in place
    .venv/bin/python scripts/gen_docs.py --check    # exit 1 when a page differs from the code

What is generated, each between HTML-comment markers a Markdown renderer does not show:

- ``<!-- params:ClassName:start -->`` / ``<!-- params:ClassName:end -->``: the parameter table
  of every public operator, sensor, trigger and hook. Names, types and defaults come from the
  ``__init__`` signatures (walking the MRO, so a base class's parameters appear once in the base
  class's docstring and in every subclass's table); the text comes from ``:param name:`` lines
  in the docstrings. A parameter without a ``:param:`` line is an error.
- ``<!-- statuses:NAME:start -->`` / ``...:end -->``: what each vendor status means to the task,
  from the hooks' :class:`~airflow_provider_ingest.jobs.StatusTable` objects.
- ``<!-- conn:CONN_ID:start -->`` / ``...:end -->``: an ``AIRFLOW_CONN_*`` example of each
  connection in JSON and in URI form (the URI built by Airflow's own ``Connection.get_uri``).
- ``<!-- fakes:tunables:start -->`` / ``...:end -->``: the local fakes' tunable timings.

Which page holds a class: the service module's page (``operators/polaris.py`` ->
``docs/polaris.md``); the shared bases (``*/base.py``) are on ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import pkgutil
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = "airflow_provider_ingest"
KINDS = ("operators", "sensors", "triggers", "hooks")
PAGES = {
    "polaris": "polaris.md",
    "egain": "egain.md",
    "qconnect": "qconnect.md",
    "zeta_alpha": "zeta_alpha.md",
    "adobe_aep": "adobe_aep.md",
    "base": "reliability.md",
}
# Bases whose parameters are documented by Airflow or the amazon provider, not here: the walk
# down the MRO stops at the first of them.
AIRFLOW_BASES = {
    "BaseOperator": "Airflow's `BaseOperator` arguments (`task_id`, `retries`, `retry_delay`, "
    "`execution_timeout`, `pool`, ...) are accepted too.",
    "BaseSensorOperator": "Airflow's `BaseSensorOperator` arguments (`timeout`, `mode`, `soft_fail`, "
    "`exponential_backoff`, ...) and `BaseOperator`'s (`task_id`, `retries`, ...) are accepted too.",
}
# Modules outside this package whose classes' parameters are merged (documented by their own
# docstrings): the amazon provider's AWS bases.
MERGED_FOREIGN = ("airflow.providers.amazon.",)
MARKER = re.compile(
    r"<!-- (?P<kind>params|statuses|conn|fakes):(?P<name>[\w.-]+):start -->\n"
    r"(?P<body>.*?)<!-- (?P=kind):(?P=name):end -->",
    re.S,
)

# One example per connection: the JSON and URI forms are generated from these, and
# tests/test_docs.py checks that the hook reads both to the same settings.
EXAMPLE_CONNECTIONS: dict[str, dict[str, Any]] = {
    "polaris_default": {
        "conn_type": "imply_polaris",
        "host": "https://acme.us-east-1.aws.api.imply.io",
        "password": "pok_example_key",
        "extra": {"project_id": "12375ffx-f7ad-4e9a-b1c4-81e2e2c62a1e"},
    },
    "egain_default": {
        "conn_type": "egain",
        "host": "https://api.example.egain.cloud",
        "login": "CLIENT_ID",
        "password": "CLIENT_SECRET",
        "extra": {"token_url": "https://login.example.egain.cloud/oauth2/token"},
    },
    "zeta_alpha_default": {
        "conn_type": "zeta_alpha",
        "host": "https://api.zeta-alpha.com",
        "password": "ZETA_API_KEY",
        "extra": {"tenant": "acme", "index_id": "docs-index"},
    },
    "adobe_aep_default": {
        "conn_type": "adobe_aep",
        "host": "https://platform.adobe.io",
        "login": "CLIENT_ID",
        "password": "CLIENT_SECRET",
        "extra": {"ims_org_id": "ABCDEF0123456789@AdobeOrg", "sandbox_name": "prod"},
    },
    "aws_default": {
        "conn_type": "aws",
        "login": "AKIAEXAMPLEKEYID",
        "password": "EXAMPLE_SECRET_ACCESS_KEY",
        "extra": {"region_name": "us-east-1"},
    },
}
CONNECTION_PAGES = {
    "polaris_default": "polaris.md",
    "egain_default": "egain.md",
    "zeta_alpha_default": "zeta_alpha.md",
    "adobe_aep_default": "adobe_aep.md",
    "aws_default": "qconnect.md",
}


# --- discovery --------------------------------------------------------------------------------
def public_classes() -> list[type]:
    """Every public class a user instantiates or subclasses, defined in the operators, sensors,
    triggers and hooks packages."""
    from airflow.sdk import BaseHook, BaseOperator
    from airflow.triggers.base import BaseTrigger

    found = []
    for kind in KINDS:
        package = importlib.import_module(f"{PACKAGE}.{kind}")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{PACKAGE}.{kind}.{info.name}")
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and obj.__module__ == module.__name__
                    and not name.startswith("_")
                    and issubclass(obj, BaseOperator | BaseTrigger | BaseHook)
                ):
                    found.append(obj)
    return found


def page_of(cls: type) -> str:
    return PAGES[cls.__module__.rsplit(".", 1)[-1]]


# --- parameters -------------------------------------------------------------------------------
@dataclass
class Param:
    name: str
    type: str
    default: str  # Markdown, "required" when there is none
    doc: str | None
    owner: str  # the class whose __init__ declares it


@dataclass
class ClassDoc:
    cls: type
    params: list[Param] = field(default_factory=list)
    footer: str = ""
    problems: list[str] = field(default_factory=list)


PARAM_LINE = re.compile(r"^(\s*):param\s+(?:[^:]+\s)?(\w+):\s?(.*)$")


def param_docs(cls: type) -> dict[str, str]:
    """``:param name: text`` entries of the class's own docstring and its ``__init__``'s;
    continuation lines are the indented lines that follow."""
    docs: dict[str, str] = {}
    init = cls.__dict__.get("__init__")
    for text in (cls.__dict__.get("__doc__"), getattr(init, "__doc__", None)):
        lines = textwrap.dedent(text or "").splitlines()
        current: str | None = None
        for line in lines:
            match = PARAM_LINE.match(line)
            if match:
                current = match.group(2)
                docs[current] = match.group(3).strip()
            elif current and line.strip() and not line.lstrip().startswith(":"):
                if line.startswith(" ") or not line.strip():
                    docs[current] += " " + line.strip()
                else:
                    current = None
            else:
                current = None
    return docs


def init_ast(init: Any) -> ast.FunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(init))
    except (OSError, TypeError):
        return None
    node = ast.parse(source).body[0]
    return node if isinstance(node, ast.FunctionDef) else None


def consumed_names(fn: ast.FunctionDef | None) -> set[str]:
    """Base-class parameters this ``__init__`` fills in itself: keywords of its
    ``super().__init__(...)`` call and ``kwargs["name"] = ...`` assignments."""
    names: set[str] = set()
    if fn is None:
        return names
    var_kw = fn.args.kwarg.arg if fn.args.kwarg else None
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
        ):
            names.update(kw.arg for kw in node.keywords if kw.arg)
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == var_kw
                    and isinstance(target.slice, ast.Constant)
                ):
                    names.add(target.slice.value)
    return names


def default_sources(fn: ast.FunctionDef | None) -> dict[str, ast.expr]:
    if fn is None:
        return {}
    args = fn.args
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
    return {a.arg: d for a, d in pairs}


def code(text: str) -> str:
    """An inline code span that survives a Markdown table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def render_default(value: Any, node: ast.expr | None) -> str:
    if value is inspect.Parameter.empty:
        return "required"
    if node is None or isinstance(node, ast.Constant):
        return code(repr(value))
    source = ast.unparse(node)
    if isinstance(node, ast.Call):
        return code(source)  # computed at import (e.g. from Airflow's configuration): the call says more
    if source == repr(value):
        return code(source)
    return f"{code(source)} ({code(repr(value))})"


def render_type(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return code(text)


def class_doc(cls: type, own: tuple[str, ...] = (PACKAGE,)) -> ClassDoc:
    """The parameter rows of ``cls``, and its documentation problems. ``own``: the modules whose
    classes must document every parameter (the rest of the MRO up to Airflow's bases is merged
    only where its docstrings document a parameter)."""
    doc = ClassDoc(cls)
    seen: set[str] = set()
    consumed: set[str] = set()
    for klass in cls.__mro__:
        ours = klass.__module__.startswith(own)
        foreign = klass.__module__.startswith(MERGED_FOREIGN)
        if not ours and not foreign:
            if klass.__name__ in AIRFLOW_BASES and not doc.footer:
                doc.footer = AIRFLOW_BASES[klass.__name__]
            if "__init__" in klass.__dict__ and klass.__name__ in AIRFLOW_BASES:
                break
            continue
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        signature = inspect.signature(init)
        fn = init_ast(init)
        defaults = default_sources(fn) if ours else {}
        texts = param_docs(klass)
        for name, parameter in signature.parameters.items():
            if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if name in seen or name in consumed:
                continue
            text = texts.get(name)
            if foreign and text is None:
                continue  # undocumented upstream (deprecated aliases): not offered here
            seen.add(name)
            doc.params.append(
                Param(
                    name,
                    render_type(parameter.annotation),
                    render_default(parameter.default, defaults.get(name)),
                    text,
                    klass.__name__,
                )
            )
            if text is None:
                doc.problems.append(
                    f"{cls.__name__}: parameter {name!r} (declared by {klass.__name__}) has no "
                    f"':param {name}:' line in {klass.__name__}'s docstring"
                )
        if ours:
            for name in sorted(set(texts) - set(signature.parameters)):
                doc.problems.append(
                    f"{klass.__name__}: ':param {name}:' documents a parameter its __init__ does not have"
                )
        consumed |= consumed_names(fn)
        if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            break  # nothing further up can be passed through this __init__
    return doc


def rst_to_markdown(text: str) -> str:
    text = re.sub(r":(?:[\w-]+:)+`~?([^`<]+?)(?:\s*<[^>]+>)?`", r"`\1`", text)  # :class:`X` -> `X`
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return text.replace("|", "\\|")


def params_table(doc: ClassDoc) -> str:
    cls = doc.cls
    lines = [f"`{cls.__module__}.{cls.__name__}`", ""]
    if not doc.params:
        lines.append("No parameters of its own.")
    else:
        lines += ["| parameter | type | default | what it does |", "|---|---|---|---|"]
        for p in doc.params:
            text = rst_to_markdown(p.doc or "**undocumented**")
            if p.owner != cls.__name__:
                text += f" *(from `{p.owner}`)*"
            lines.append(f"| `{p.name}` | {p.type} | {p.default} | {text} |")
    if doc.footer:
        lines += ["", doc.footer]
    return "\n".join(lines) + "\n"


# --- statuses ---------------------------------------------------------------------------------
def status_tables() -> dict[str, tuple[str, Any]]:
    """``{NAME: (module suffix, StatusTable)}`` for every StatusTable a hook module defines."""
    from airflow_provider_ingest.jobs import StatusTable

    package = importlib.import_module(f"{PACKAGE}.hooks")
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{PACKAGE}.hooks.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, StatusTable):
                found[name] = (info.name, obj)
    return found


def status_table_markdown(table: Any) -> str:
    rows = [
        ("succeeded", "the task succeeds"),
        ("failed", "the task fails, with the vendor's reason"),
        ("running", "the task keeps waiting"),
    ]
    lines = ["| status (case-insensitive) | what the task does |", "|---|---|"]
    for attr, meaning in rows:
        for value in sorted(getattr(table, attr)):
            lines.append(f"| `{value}` | {meaning} |")
    lines.append("| any other value | the task keeps waiting; a warning names the value once |")
    return "\n".join(lines) + "\n"


# --- connections ------------------------------------------------------------------------------
def connection_uri(conn_id: str, spec: dict[str, Any]) -> str:
    from airflow.sdk import Connection

    host = (spec.get("host") or "").removeprefix("https://") or None  # the hooks default to https
    conn = Connection(
        conn_id=conn_id,
        conn_type=spec["conn_type"],
        host=host,
        login=spec.get("login"),
        password=spec.get("password"),
        extra=json.dumps(spec.get("extra") or {}),
    )
    return conn.get_uri()


def connection_markdown(conn_id: str, spec: dict[str, Any]) -> str:
    var = f"AIRFLOW_CONN_{conn_id.upper()}"
    return (
        "As JSON:\n\n```bash\n"
        f"export {var}='{json.dumps(spec)}'\n```\n\n"
        "As a URI (Airflow's own `Connection.get_uri()` of the same connection"
        + ("; the hook adds `https://` to a host without a scheme" if spec.get("host") else "")
        + "):\n\n```bash\n"
        f"export {var}='{connection_uri(conn_id, spec)}'\n```\n"
    )


# --- fakes ------------------------------------------------------------------------------------
def fakes_markdown() -> str:
    """Each fake's connection id and tunable timings with their defaults, from the classes."""
    from airflow_provider_ingest.testing import FAKES

    lines = ["| fake | connection it answers | tunables (default) |", "|---|---|---|"]
    for fake in FAKES:
        defaults = vars(fake())  # building a fake starts no server
        seconds = {name for name in fake.tunables if name.endswith("_seconds") or name == "token_ttl"}
        tunables = ", ".join(
            f"`{name}` ({defaults.get(name)!r}{' s' if name in seconds else ''})" for name in fake.tunables
        )
        conn = f"`{fake.conn_id}`" if fake.conn_id else "`aws_default` (`service_config`)"
        lines.append(f"| `{fake.__name__}` | {conn} | {tunables or 'none'} |")
    return "\n".join(lines) + "\n"


# --- pages ------------------------------------------------------------------------------------
def expected_sections() -> tuple[dict[str, dict[tuple[str, str], str]], list[str]]:
    """``{page: {(kind, name): body}}`` of everything generated, and the problems found."""
    pages: dict[str, dict[tuple[str, str], str]] = {}
    problems: list[str] = []
    for cls in public_classes():
        doc = class_doc(cls)
        problems += [p for p in doc.problems if p not in problems]
        pages.setdefault(page_of(cls), {})[("params", cls.__name__)] = params_table(doc)
    for name, (module, table) in status_tables().items():
        pages.setdefault(PAGES[module], {})[("statuses", name)] = status_table_markdown(table)
    pages.setdefault("fakes.md", {})[("fakes", "tunables")] = fakes_markdown()
    for conn_id, spec in EXAMPLE_CONNECTIONS.items():
        pages.setdefault(CONNECTION_PAGES[conn_id], {})[("conn", conn_id)] = connection_markdown(
            conn_id, spec
        )
    return pages, problems


def render_page(text: str, sections: dict[tuple[str, str], str], page: str) -> tuple[str, list[str]]:
    """``text`` with every generated section replaced; problems for sections missing or unknown."""
    problems = []
    present = set()

    def replace(match: re.Match) -> str:
        key = (match["kind"], match["name"])
        present.add(key)
        if key not in sections:
            problems.append(f"docs/{page}: section {key[0]}:{key[1]} matches nothing in the code; remove it")
            return match.group(0)
        return f"<!-- {key[0]}:{key[1]}:start -->\n{sections[key]}<!-- {key[0]}:{key[1]}:end -->"

    new = MARKER.sub(replace, text)
    for kind, name in sorted(set(sections) - present):
        problems.append(
            f"docs/{page}: no section for {kind}:{name}; add "
            f"'<!-- {kind}:{name}:start -->' and '<!-- {kind}:{name}:end -->' lines where it belongs"
        )
    return new, problems


def generate(docs: Path = DOCS) -> tuple[dict[Path, tuple[str, str]], list[str]]:
    """``{path: (current text, generated text)}`` for every page with generated sections."""
    pages, problems = expected_sections()
    results = {}
    for page, sections in sorted(pages.items()):
        path = docs / page
        current = path.read_text() if path.exists() else ""
        if not path.exists():
            problems.append(f"docs/{page}: missing")
        new, page_problems = render_page(current, sections, page)
        problems += page_problems
        results[path] = (current, new)
    return results, problems


# --- links ------------------------------------------------------------------------------------
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.I)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped (letters,
    digits, ``_``, ``-`` and spaces stay), spaces turned into ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = "".join(c for c in text if c.isalnum() or c in "_- ")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor of a Markdown page: its headings' slugs (``-1``, ``-2``... for repeats) and
    explicit ``<a name|id="...">`` targets."""
    found: set[str] = set(HTML_ANCHOR.findall(text))
    counts: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = github_slug(heading)
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def link_targets(text: str) -> list[str]:
    body = INLINE_CODE.sub("", FENCE.sub("", text))
    return LINK.findall(body) + REFERENCE.findall(body)


def broken_links(files: list[Path] | None = None, root: Path = ROOT) -> list[str]:
    """Relative links and ``#anchors`` of README.md and docs/*.md that lead nowhere."""
    files = files if files is not None else [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    problems = []
    for source in files:
        text = source.read_text()
        for target in link_targets(text):
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http(s), mailto: not checked here
            path_part, _, anchor = target.partition("#")
            where = f"{source.relative_to(root)}: link {target!r}"
            dest = (source.parent / path_part).resolve() if path_part else source
            if not dest.exists():
                problems.append(f"{where}: {path_part} does not exist")
                continue
            if anchor:
                if dest.is_dir() or dest.suffix != ".md":
                    problems.append(f"{where}: an anchor into a file that is not Markdown")
                elif anchor not in anchors(dest.read_text()):
                    problems.append(f"{where}: no heading or anchor #{anchor} in {dest.relative_to(root)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on any drift")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (README.md, docs/)")
    args = parser.parse_args(argv)
    results, problems = generate(args.root / "docs")
    problems += broken_links(root=args.root)
    drift = [path for path, (current, new) in results.items() if current != new]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if args.check:
        for path in drift:
            print(
                f"drift: {path.relative_to(args.root)} differs from the code; run scripts/gen_docs.py",
                file=sys.stderr,
            )
        return 1 if drift or problems else 0
    for path in drift:
        path.write_text(results[path][1])
        print(f"rewrote {path.relative_to(args.root)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
