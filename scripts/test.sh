#!/usr/bin/env bash
# Install and run every check: ruff, then the whole pytest suite (no tests collected = failure).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
status=0
.venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi
exit "$status"
