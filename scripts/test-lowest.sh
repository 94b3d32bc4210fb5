#!/usr/bin/env bash
# The dependency floors in pyproject.toml, tested: resolve every direct dependency (runtime,
# extras and the dev group) to the lowest version its floor allows (uv --resolution
# lowest-direct), install that into .venv-lowest (uv.lock is not touched) and run the fast unit
# tests. A floor that fails here is wrong: raise it in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || bash scripts/install.sh
export UV_PYTHON_DOWNLOADS=never
VENV=.venv-lowest
UNIT_TESTS=(tests/test_http_core.py tests/test_fakes.py tests/reliability/test_bad_input.py tests/test_packaging.py)
REQ=.local/lowest
mkdir -p "$REQ"
# The dev group names the project itself with its extras; uv pip compile wants that as "-e .[...]".
.venv/bin/python - > "$REQ/requirements.in" <<'PY'
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))
name = project["project"]["name"]
print("-e .[" + ",".join(project["project"]["optional-dependencies"]) + "]")
for requirement in project["dependency-groups"]["dev"]:
    if not requirement.startswith(name):
        print(requirement)
PY
.venv/bin/uv pip compile --quiet "$REQ/requirements.in" --resolution lowest-direct \
    --python .venv/bin/python --no-header -o "$REQ/requirements.txt"
[ -x "$VENV/bin/python" ] || .venv/bin/uv venv --quiet --python .venv/bin/python "$VENV"
.venv/bin/uv pip sync --quiet --python "$VENV/bin/python" "$REQ/requirements.txt"
grep -E '^(apache-airflow|apache-airflow-providers-amazon|requests|aiohttp|pyarrow)==' "$REQ/requirements.txt"
"$VENV/bin/python" -m pytest -p no:cacheprovider -q "${UNIT_TESTS[@]}"
