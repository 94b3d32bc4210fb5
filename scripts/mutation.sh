#!/usr/bin/env bash
# Mutation testing of the core with mutmut: which deliberate small changes to the provider the
# fast tests fail on. The modules and the tests are in pyproject.toml ([tool.mutmut]); the score
# per module, the date and every surviving mutant with its reason go into docs/mutation.md
# (scripts/mutation_report.py; reasons in scripts/mutation_accepted.txt).
#
#   scripts/mutation.sh            a fresh run of every mutant (about 45 min on 2 cores)
#   scripts/mutation.sh --resume   go on from mutants/ (a stopped run, or after new tests)
#   scripts/mutation.sh --report   only rewrite docs/mutation.md from mutants/
#
# Environment: JOBS (parallel mutants, default: the number of CPUs).
# Not part of .ci/run: it takes most of an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || bash scripts/install.sh
.venv/bin/uv sync --quiet --frozen --inexact --group mutation
JOBS=${JOBS:-$(nproc)}
case ${1:-} in
--report) ;;
--resume) .venv/bin/mutmut run --max-children "$JOBS" ;;
"")
    rm -rf mutants
    .venv/bin/mutmut run --max-children "$JOBS"
    ;;
*) echo "usage: $0 [--resume|--report]" >&2; exit 2 ;;
esac
.venv/bin/python scripts/mutation_report.py --command "scripts/mutation.sh ${1:-}"
