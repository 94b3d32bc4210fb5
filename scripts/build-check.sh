#!/usr/bin/env bash
# Build the wheel and sdist, check them (twine, contents), install the wheel into a throwaway venv
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

# The locked runtime dependencies (not the project, not dev tools) into a fresh venv, then the
# built wheel on top; uv reuses its cache, so this is local and fast.
"$UV" export --quiet --frozen --no-dev --no-emit-project --no-hashes -o "$WORK/requirements.txt"
"$UV" venv --quiet --python .venv/bin/python "$WORK/venv"
"$UV" pip install --quiet --python "$WORK/venv/bin/python" -r "$WORK/requirements.txt"
"$UV" pip install --quiet --python "$WORK/venv/bin/python" --no-deps "$WHEEL"
"$UV" pip check --quiet --python "$WORK/venv/bin/python"
(
    export AIRFLOW_HOME="$WORK/airflow" AIRFLOW__CORE__LOAD_EXAMPLES=False
    cd "$WORK"  # not the repo: the provider must come from the installed wheel
    "$WORK/venv/bin/python" -c 'import airflow_provider_ingest, sys; assert "site-packages" in airflow_provider_ingest.__file__, airflow_provider_ingest.__file__'
    "$WORK/venv/bin/airflow" providers list --output json > "$WORK/providers.json"
    "$WORK/venv/bin/python" - "$WORK/providers.json" <<'EOF'
import json, sys

providers = {p["package_name"]: p for p in json.load(open(sys.argv[1]))}
assert "airflow-provider-ingest" in providers, sorted(providers)
print("airflow providers list:", "airflow-provider-ingest", providers["airflow-provider-ingest"]["version"])
EOF
)
echo "build check ok"
