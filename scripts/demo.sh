#!/usr/bin/env bash
# The main job on a fresh machine: install, start moto S3 and the vendor fakes, seed sample data,
# and run the example DAGs with `airflow dags test` on SQLite. Prints what landed.
# VENV=.venv-3.12 DEMO_STATE=dir: run with another venv (made by the caller) and state directory.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ "$VENV" = .venv ]; then bash scripts/install.sh; fi

DS=${DS:-$(date -u +%Y-%m-%d)}
STATE=${DEMO_STATE:-$PWD/.local/demo}
rm -rf "$STATE" && mkdir -p "$STATE"
export AIRFLOW_HOME="$STATE/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
mkdir -p "$AIRFLOW_HOME"

"$VENV"/bin/python -m airflow_provider_ingest.testing --env-file "$STATE/fakes.env" --seed-date "$DS" \
    > "$STATE/fakes.log" 2>&1 &
FAKES_PID=$!
trap 'kill "$FAKES_PID" 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -f "$STATE/fakes.env" ] && break; sleep 0.2; done  # a loaded machine: 2 min
[ -f "$STATE/fakes.env" ] || { cat "$STATE/fakes.log"; exit 1; }
# shellcheck disable=SC1091
source "$STATE/fakes.env"

"$VENV"/bin/airflow db migrate > "$STATE/db-migrate.log" 2>&1
for dag in s3_to_table s3_to_knowledge_base; do
    echo "== airflow dags test $dag $DS"
    "$VENV"/bin/airflow dags test "$dag" "$DS" > "$STATE/$dag.log" 2>&1 || { tail -50 "$STATE/$dag.log"; exit 1; }
    grep -o "Landed: .*" "$STATE/$dag.log" | head -1
    grep -o "DagRun Finished: dag_id=$dag.*state=[a-z]*" "$STATE/$dag.log" | grep -o "state=[a-z]*" | head -1
done
echo "logs: $STATE; the demo took ${SECONDS} s"
