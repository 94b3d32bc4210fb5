#!/usr/bin/env bash
# Build the wheel and sdist, check them (twine, contents), then, on each of Python 3.11, 3.12 and
# 3.13 (the machine's interpreters, never downloaded), install the wheel into a throwaway venv
# with the locked dependencies and check that Airflow lists the provider. Needs .venv (install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
WORK=$(mktemp -d -t build-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export UV_PYTHON_DOWNLOADS=never

"$UV" build --quiet --out-dir "$WORK/dist" .
WHEEL=$(ls "$WORK"/dist/*.whl)
SDIST=$(ls "$WORK"/dist/*.tar.gz)
.venv/bin/twine check --strict "$WHEEL" "$SDIST"

# Every file a release must carry, in the wheel and in the sdist.
.venv/bin/python - "$WHEEL" "$SDIST" <<'EOF'
import sys, tarfile, zipfile

wheel, sdist = sys.argv[1:]
in_wheel = set(zipfile.ZipFile(wheel).namelist())
with tarfile.open(sdist) as tar:
    in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
dist_info = next(n.split("/")[0] for n in in_wheel if n.split("/")[0].endswith(".dist-info"))
need = {
    "wheel": (in_wheel, [
        "airflow_provider_ingest/py.typed",
        "airflow_provider_ingest/waiters/qconnect.json",
        "airflow_provider_ingest/get_provider_info.py",
        f"{dist_info}/licenses/LICENSE",
        f"{dist_info}/licenses/NOTICE",
        f"{dist_info}/entry_points.txt",
    ]),
    "sdist": (in_sdist, [
        "airflow_provider_ingest/py.typed",
        "airflow_provider_ingest/waiters/qconnect.json",
        "LICENSE",
        "NOTICE",
        "CHANGELOG.md",
        "README.md",
        "pyproject.toml",
    ]),
}
missing = [f"{kind}: {name}" for kind, (have, names) in need.items() for name in names if name not in have]
if missing:
    sys.exit("missing from the built distributions:\n  " + "\n  ".join(missing))
print(f"contents ok: {len(in_wheel)} files in the wheel, {len(in_sdist)} in the sdist")
EOF

# The locked runtime dependencies (not the project, not dev tools) into a fresh venv per supported
# Python, then the built wheel on top; uv reuses its cache, so this is local and fast. One export
# serves every version: it is the lock's universal resolution with environment markers (e.g.
# `pyyaml-ft ; python_full_version >= '3.13'`), which the installer evaluates for each venv.
"$UV" export --quiet --frozen --no-dev --no-emit-project --no-hashes -o "$WORK/requirements.txt"

find_python() {  # an interpreter for version $1: on PATH, else pyenv's (its shims fail for a
    local v=$1 candidate  # version that is not pyenv's global one), else uv's discovery
    for candidate in "python$v" "$(pyenv root 2>/dev/null)"/versions/"$v"*/bin/"python$v"; do
        if "$candidate" -c 'import sys; print(sys.executable)' 2>/dev/null; then return; fi
    done
    "$UV" python find "$v"
}

check_python() {  # install the wheel on Python $1, check that Airflow lists the provider
    local v=$1 python venv start=$SECONDS
    python=$(find_python "$v") || { echo "no Python $v on this machine" >&2; return 1; }
    venv="$WORK/venv-$v"
    "$UV" venv --quiet --python "$python" "$venv"
    "$UV" pip install --quiet --python "$venv/bin/python" -r "$WORK/requirements.txt"
    "$UV" pip install --quiet --python "$venv/bin/python" --no-deps "$WHEEL"
    "$UV" pip check --quiet --python "$venv/bin/python"
    echo "Python $v: installed ($((SECONDS - start)) s)"
    (
        export AIRFLOW_HOME="$WORK/airflow-$v" AIRFLOW__CORE__LOAD_EXAMPLES=False
        cd "$WORK"  # not the repo: the provider must come from the installed wheel
        "$venv/bin/python" -c 'import airflow_provider_ingest, sys; assert "site-packages" in airflow_provider_ingest.__file__, airflow_provider_ingest.__file__'
        "$venv/bin/airflow" providers list --output json > "$WORK/providers-$v.json"
        "$venv/bin/python" - "$WORK/providers-$v.json" "$v" <<'EOF'
import json, sys

providers = {p["package_name"]: p for p in json.load(open(sys.argv[1]))}
assert "airflow-provider-ingest" in providers, sorted(providers)
version = "%d.%d" % sys.version_info[:2]
assert version == sys.argv[2], (version, sys.argv[2])
print(f"Python {version}: airflow providers list: airflow-provider-ingest", providers["airflow-provider-ingest"]["version"])
EOF
    )
    echo "Python $v: wheel installed and listed ($((SECONDS - start)) s)"
}

# Every Python the package declares (requires-python and the classifiers in pyproject.toml), side
# by side: each check is mostly one CPU-bound `airflow providers list` (~4 s of imports).
VERSIONS=(3.11 3.12 3.13)
declare -A PIDS
for v in "${VERSIONS[@]}"; do
    check_python "$v" > "$WORK/check-$v.log" 2>&1 &
    PIDS[$v]=$!
done
failed=()
for v in "${VERSIONS[@]}"; do
    wait "${PIDS[$v]}" || failed+=("$v")
    cat "$WORK/check-$v.log"
done
[ ${#failed[@]} -eq 0 ] || { echo "wheel check failed on Python ${failed[*]}" >&2; exit 1; }
echo "build check ok"
