#!/usr/bin/env bash
# Install and run every check: ruff, mypy, the package build check, the unit tests and example DAGs
# on Python 3.12 and 3.13, then the whole pytest suite on 3.11 (no tests collected = failure).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/mypy airflow_provider_ingest
bash scripts/build-check.sh
# The unit tests and one `airflow dags test` of each example DAG on Python 3.12 and 3.13; the whole
# suite below runs on 3.11 (.venv). Skipped with SKIP_OTHER_PYTHONS=1 (a local rerun).
[ -n "${SKIP_OTHER_PYTHONS:-}" ] || bash scripts/test-other-pythons.sh 3.12 3.13
status=0
.venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi
exit "$status"
