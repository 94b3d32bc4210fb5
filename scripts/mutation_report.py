"""Write mutmut's results (mutants/**/*.meta) into docs/mutation.md: the score per module, the
date, the command, and every mutant that no test killed, each with its diff and its reason.

Only the mutants scripts/mutation_scope.txt names are counted (mutant-name globs, one per line).
Reasons come from scripts/mutation_accepted/*.txt: one ``<glob> <reason>`` per line, the glob
matched against the mutant's name (``airflow_provider_ingest.http.x_mask__mutmut_3``); the first
match wins. A survivor no line explains is listed as "not explained" and ``--strict`` exits 1.

    .venv/bin/python scripts/mutation_report.py [--command "..."] [--strict] [--no-write]
        [--only GLOB ...]      count only these mutants (a part of the scope)
        [--pending]            print the in-scope mutants with no result yet, one per line
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import fnmatch
import functools
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mutation.md"
REASONS = ROOT / "scripts" / "mutation_accepted"
SCOPE = ROOT / "scripts" / "mutation_scope.txt"
START, END = "<!-- mutation:start -->", "<!-- mutation:end -->"

# mutmut's exit codes (mutmut/stats.py): what counts as caught.
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}


def _lines(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def load_scope() -> list[str]:
    return _lines(SCOPE)


def load_reasons() -> list[tuple[str, str]]:
    reasons = []
    for path in sorted(REASONS.glob("*.txt")):
        for line in _lines(path):
            pattern, _, reason = line.partition(" ")
            reasons.append((pattern, reason.strip()))
    return reasons


def in_scope(name: str, scope: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in scope)


def reason_for(name: str, reasons: list[tuple[str, str]]) -> str | None:
    return next((reason for pattern, reason in reasons if fnmatch.fnmatchcase(name, pattern)), None)


@functools.cache
def _mutants_module(path: str):
    from mutmut.mutation.diff_apply import read_mutants_module

    return read_mutants_module(path)


def changed_lines(name: str, path: str) -> str:
    """The mutant's changed lines, ``-old`` / ``+new``, from mutmut's own diff."""
    import libcst as cst
    from mutmut.mutation.diff_apply import read_mutant_function, read_original_function

    module = _mutants_module(path)
    before, after = (
        cst.Module([f]).code.strip().split("\n")
        for f in (read_original_function(module, name), read_mutant_function(module, name))
    )
    import difflib

    lines = [
        line
        for line in difflib.unified_diff(before, after, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return " / ".join(re.sub(r"\s+", " ", line).strip() for line in lines)[:300]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default="scripts/mutation.sh")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a survivor has no reason, or a reason names no survivor",
    )
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--only", nargs="+", metavar="GLOB", help="count only these mutants")
    parser.add_argument("--pending", action="store_true", help="print in-scope mutants not run yet")
    args = parser.parse_args()
    scope = args.only or load_scope()
    if args.only:
        args.no_write = True

    from mutmut.stats import status_by_exit_code

    reasons = load_reasons()
    by_module: dict[str, collections.Counter] = {}
    survivors: list[tuple[str, str, str]] = []
    timeouts: list[str] = []
    unchecked = 0
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        source = str(meta.relative_to(ROOT / "mutants"))[: -len(".meta")]
        codes = {
            name: code
            for name, code in json.loads(meta.read_text())["exit_code_by_key"].items()
            if in_scope(name, scope)
        }
        if args.pending:
            for name, code in sorted(codes.items()):
                if code is None:
                    print(name)  # one per line, no blank ones: mutation.sh --resume passes each to mutmut
            continue
        if not codes:
            continue
        counts = by_module.setdefault(source, collections.Counter())
        for name, code in sorted(codes.items()):
            status = status_by_exit_code[code]
            counts[status] += 1
            if status == "not checked":
                unchecked += 1
            elif status == "timeout":
                timeouts.append(name)
            elif status not in CAUGHT:
                survivors.append((name, status, source))
    if args.pending:
        return 0
    if not by_module:
        sys.exit("no mutmut results in mutants/: run scripts/mutation.sh first")

    rows = [
        "| module | mutants | killed | timeout | survived | no test ran it | score |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    total = collections.Counter()
    for source, counts in by_module.items():
        total.update(counts)
        rows.append(row(source, counts))
    rows.append(row("**all**", total))

    unexplained = 0
    lines = []
    current = None
    for name, status, path in survivors:
        module = name.split(".x", 1)[0].split(".xǁ", 1)[0]
        if module != current:
            current = module
            lines.append(f"\n**{module}**\n")
        reason = reason_for(name, reasons)
        if reason is None:
            unexplained += 1
            reason = "**not explained**"
        lines.append(f"- `{name.split('.', 2)[-1]}` ({status}): `{changed_lines(name, path)}` — {reason}")

    # A reason naming no survivor is stale: the mutant is killed now, or the function changed and
    # mutmut's numbering moved, so the name may point at a different change than the reason says.
    stale = (
        []
        if args.only
        else [
            pattern
            for pattern, _ in reasons
            if not any(fnmatch.fnmatchcase(name, pattern) for name, _, _ in survivors)
        ]
    )

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    import mutmut

    body = [
        f"Measured {now} with mutmut {mutmut.__version__}: `{args.command}`.",
        "",
        *rows,
        "",
        f"Score = (killed + timeout) / mutants. Of the {sum(total.values()) - unchecked} mutants run, "
        f"{100 * sum(total[c] for c in CAUGHT) / max(1, sum(total.values()) - unchecked):.1f}% were caught. "
        f"{unchecked} mutants not run"
        + (" (the run was stopped: the score is incomplete)." if unchecked else "."),
        f"{len(survivors)} survivors; {unexplained} without a reason in scripts/mutation_accepted/; "
        f"{len(stale)} reasons there that name no survivor.",
        "",
        "Timed out (counted as caught; mutmut stops a mutant's tests after a multiple of their "
        "traced time): " + (", ".join(f"`{name.split('.', 2)[-1]}`" for name in timeouts) or "none") + ".",
        "",
        "### Survivors",
        *lines,
    ]
    text = "\n".join(body)
    print("\n".join(rows))
    print(f"survivors: {len(survivors)}, not explained: {unexplained}, not run: {unchecked}")
    for pattern in stale:
        print(f"stale reason (names no survivor): {pattern}")
    if not args.no_write:
        doc = DOC.read_text()
        head, _, rest = doc.partition(START)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    return 1 if args.strict and (unexplained or stale) else 0


def row(source: str, counts: collections.Counter) -> str:
    n = sum(counts.values())
    caught = sum(counts[s] for s in CAUGHT)
    timeouts = counts["timeout"] + counts["segfault"]
    score = f"{100 * caught / n:.1f}%" if n else "-"
    return (
        f"| {source} | {n} | {counts['killed'] + counts['caught by type check']} | {timeouts} | "
        f"{counts['survived']} | {counts['no tests']} | {score} |"
    )


if __name__ == "__main__":
    sys.exit(main())
