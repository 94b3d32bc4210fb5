#!/usr/bin/env bash
# The fast unit tests and one `airflow dags test` of each example DAG on the Python versions the
# whole suite does not run on (it runs on 3.11: scripts/test.sh). Each version gets .venv-3.X,
# made from uv.lock. Usage: scripts/test-other-pythons.sh [3.12 3.13]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || bash scripts/install.sh
export UV_PYTHON_DOWNLOADS=never  # use the machine's interpreters, never fetch one
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.12 3.13)
UNIT_TESTS=(tests/test_http_core.py tests/test_fakes.py tests/reliability/test_bad_input.py tests/test_packaging.py)

find_python() {  # an interpreter for version $1: on PATH, else pyenv's, else uv's discovery
    local v=$1 candidate
    for candidate in "python$v" "$(pyenv root 2>/dev/null)"/versions/"$v"*/bin/"python$v"; do
        if "$candidate" -c 'import sys; print(sys.executable)' 2>/dev/null; then return; fi
    done
    .venv/bin/uv python find "$v"
}

for v in "${VERSIONS[@]}"; do
    start=$SECONDS
    python=$(find_python "$v") || { echo "no Python $v on this machine" >&2; exit 1; }
    echo "== Python $v ($python)"
    # --compile-bytecode: every Airflow process below would otherwise compile its imports anew
    # (PYTHONDONTWRITEBYTECODE is set on these machines).
    UV_PROJECT_ENVIRONMENT=".venv-$v" .venv/bin/uv sync --quiet --frozen --compile-bytecode --python "$python"
    ".venv-$v/bin/python" -m pytest -p no:cacheprovider -q "${UNIT_TESTS[@]}"
    mkdir -p .local
    VENV=".venv-$v" DEMO_STATE="$PWD/.local/demo-$v" bash scripts/demo.sh | tee ".local/demo-$v.out"
    [ "$(grep -c '^state=success$' ".local/demo-$v.out")" -eq 2 ] || { echo "an example DAG did not succeed on $v" >&2; exit 1; }
    echo "== Python $v: $((SECONDS - start)) s"
done
