#!/usr/bin/env bash
# Install the project and its pinned dependencies (uv.lock) into .venv. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8
PYTHON=$(command -v python3.11 || command -v python3)
if [ ! -x .venv/bin/uv ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
# --frozen: install exactly what uv.lock pins; --inexact: keep uv itself in .venv.
.venv/bin/uv sync --quiet --frozen --inexact --python .venv/bin/python
