#!/usr/bin/env bash
# Install and run every check: ruff, mypy, the package build check, then the whole pytest suite
# (no tests collected = failure).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/mypy airflow_provider_ingest
bash scripts/build-check.sh
status=0
.venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi
exit "$status"
