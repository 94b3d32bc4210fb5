#!/usr/bin/env bash
# Mutation testing of the core with mutmut: which deliberate small changes to the provider the
# fast tests fail on. What is mutated: scripts/mutation_scope.txt (mutant-name globs); the tests
# and mutmut's settings: [tool.mutmut] in pyproject.toml. The score per module, the date and every
# surviving mutant with its reason go into docs/mutation.md (scripts/mutation_report.py; reasons
# in scripts/mutation_accepted/*.txt).
#
#   scripts/mutation.sh               a fresh run of every mutant in scope
#   scripts/mutation.sh --resume      go on from mutants/: only the mutants with no result yet
#   scripts/mutation.sh --only GLOB.. rerun these mutants (e.g. 'airflow_provider_ingest.jobs.*')
#                                     and print their score; docs/mutation.md is left alone
#   scripts/mutation.sh --report      only rewrite docs/mutation.md from mutants/
#
# Environment: JOBS (mutants run at once, default: the number of CPUs).
# Not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || bash scripts/install.sh
.venv/bin/uv sync --quiet --frozen --inexact --group mutation
JOBS=${JOBS:-$(nproc)}
mapfile -t scope < <(grep -v '^\s*#' scripts/mutation_scope.txt | grep -v '^\s*$')
run() { .venv/bin/mutmut run --max-children "$JOBS" "$@"; }
started=$(date +%s)
case ${1:-} in
--report) ;;
--resume)
    mapfile -t pending < <(.venv/bin/python scripts/mutation_report.py --pending)
    [ ${#pending[@]} -eq 0 ] || run "${pending[@]}"
    ;;
--only)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 --only GLOB..." >&2; exit 2; }
    run "$@"
    exec .venv/bin/python scripts/mutation_report.py --only "$@"
    ;;
"")
    rm -rf mutants
    run "${scope[@]}"
    ;;
*) echo "usage: $0 [--resume|--only GLOB...|--report]" >&2; exit 2 ;;
esac
echo "mutation run: $(( $(date +%s) - started )) s wall"
.venv/bin/python scripts/mutation_report.py --command "scripts/mutation.sh ${1:-} ($(( $(date +%s) - started )) s wall, JOBS=$JOBS, $(nproc) CPUs)"
