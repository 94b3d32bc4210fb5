#!/usr/bin/env bash
# A real Airflow deployment on this machine, for the example DAGs: PostgreSQL as the metadata
# database, CeleryExecutor with Redis as the broker, and separate api-server, scheduler,
# dag-processor, triggerer and Celery worker processes, plus moto S3 and the vendor fakes.
#
#   docker/local-stack.sh up       install, create the database, start everything, wait until ready
#   docker/local-stack.sh status   which of the started processes are alive
#   docker/local-stack.sh down     stop every process it started, by pid (the database stays)
#   docker/local-stack.sh purge    down, then drop the database and the state folder
#
# Settings (environment): STACK_PORT (8080), STACK_DIR (.local/stack), STACK_DB (airflow_ingest),
# STACK_PG_URL (postgresql://postgres@127.0.0.1:5432), STACK_REDIS_URL (redis://127.0.0.1:6379/5),
# STACK_FAKES_ENV (a file of AIRFLOW_CONN_* exports for fakes already running: then none are started),
# STACK_HOST (127.0.0.1: the address the api-server listens on; every user is an admin, so any other
# address also needs STACK_ALLOW_REMOTE_ADMIN=yes).
# docker/docker-compose.yaml runs the same processes with the same AIRFLOW__* settings.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK_DIR=${STACK_DIR:-$ROOT/.local/stack}
STACK_PORT=${STACK_PORT:-8080}
STACK_HOST=${STACK_HOST:-127.0.0.1}
STACK_DB=${STACK_DB:-airflow_ingest}
STACK_PG_URL=${STACK_PG_URL:-postgresql://postgres@127.0.0.1:5432}
STACK_REDIS_URL=${STACK_REDIS_URL:-redis://127.0.0.1:6379/5}
PY=$ROOT/.venv/bin/python
BIN=$ROOT/.venv/bin
# Started in this order, stopped in reverse.
COMPONENTS=(fakes api-server scheduler dag-processor triggerer worker)

[[ $STACK_DB =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "STACK_DB: use lowercase letters, digits and _" >&2; exit 2; }
case $STACK_HOST in
127.* | localhost | ::1) ;;
*)
    if [ "${STACK_ALLOW_REMOTE_ADMIN:-}" != yes ]; then
        echo "STACK_HOST=$STACK_HOST: every user of this stack is an admin; set STACK_ALLOW_REMOTE_ADMIN=yes to listen there" >&2
        exit 2
    fi
    ;;
esac

airflow_env() {
    local pg=${STACK_PG_URL#postgresql://}
    export AIRFLOW_HOME=$STACK_DIR/home
    export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://$pg/$STACK_DB
    export AIRFLOW__CELERY__BROKER_URL=$STACK_REDIS_URL
    export AIRFLOW__CELERY__RESULT_BACKEND=db+postgresql+psycopg2://$pg/$STACK_DB
    export AIRFLOW__CELERY__WORKER_CONCURRENCY=6
    export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
    export AIRFLOW__CORE__LOAD_EXAMPLES=False
    # Active at once, so the daily schedule runs too (catchup is off: one run, for the latest day).
    export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
    export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$STACK_PORT/execution/
    export AIRFLOW__API__PORT=$STACK_PORT
    # Loopback only by default: with every user an admin, anyone who reaches the port owns it.
    export AIRFLOW__API__HOST=$STACK_HOST
    export AIRFLOW__API__WORKERS=1
    # Local only: everyone is admin, no login page (the UI and the REST API's /auth/token).
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
    # Every component must sign and check tokens with the same key.
    AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$STACK_DIR/jwt_secret")
    export AIRFLOW__API_AUTH__JWT_SECRET
    export AIRFLOW__LOGGING__BASE_LOG_FOLDER=$STACK_DIR/logs/tasks
    export AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY=$STACK_DIR/logs/dag-processor
}

start() {  # start NAME COMMAND...: in its own session, so `down` can stop its children too
    local name=$1
    shift
    setsid "$@" >"$STACK_DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STACK_DIR/pids/$name.pid"
}

alive() { [ -f "$STACK_DIR/pids/$1.pid" ] && kill -0 "$(cat "$STACK_DIR/pids/$1.pid")" 2>/dev/null; }

wait_for() {  # wait_for WHAT SECONDS COMMAND...
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq "$seconds"); do
        "$@" >/dev/null 2>&1 && return 0
        for name in "${COMPONENTS[@]}"; do
            if [ -f "$STACK_DIR/pids/$name.pid" ] && ! alive "$name"; then
                echo "$name exited; last lines of $STACK_DIR/logs/$name.log:" >&2
                tail -30 "$STACK_DIR/logs/$name.log" >&2
                return 1
            fi
        done
        sleep 1
    done
    echo "timed out waiting for $what" >&2
    return 1
}

healthy() {  # the api-server answers and reports every component healthy
    curl -sf "http://127.0.0.1:$STACK_PORT/api/v2/monitor/health" | "$PY" -c '
import json, sys
health = json.load(sys.stdin)
sys.exit(any(part.get("status") != "healthy" for part in health.values()))'
}

dags_parsed() {
    local token
    token=$(curl -sf "http://127.0.0.1:$STACK_PORT/auth/token" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$STACK_PORT/api/v2/dags?dag_id_pattern=s3_to" |
        "$PY" -c 'import json, sys; sys.exit(json.load(sys.stdin)["total_entries"] < 2)'
}

up() {
    for name in "${COMPONENTS[@]}"; do
        if alive "$name"; then echo "$name is running: docker/local-stack.sh down first" >&2; exit 1; fi
    done
    if curl -s -o /dev/null "http://127.0.0.1:$STACK_PORT/"; then
        echo "port $STACK_PORT is taken: set STACK_PORT" >&2
        exit 1
    fi
    [ -n "${STACK_SKIP_INSTALL:-}" ] || bash "$ROOT/scripts/install.sh"
    rm -rf "$STACK_DIR/logs" "$STACK_DIR/pids" "$STACK_DIR/home"
    trap 'echo "start failed: stopping what was started" >&2; down' ERR
    mkdir -p "$STACK_DIR/logs" "$STACK_DIR/pids" "$STACK_DIR/home"
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$STACK_DIR/jwt_secret")
    airflow_env

    echo "database $STACK_DB (recreated), broker $STACK_REDIS_URL (flushed)"
    "$PY" - "$STACK_PG_URL" "$STACK_DB" "$STACK_REDIS_URL" <<'EOF'
import sys

import psycopg2
import redis

pg_url, name, redis_url = sys.argv[1:]
conn = psycopg2.connect(f"{pg_url}/postgres")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    cur.execute(f'CREATE DATABASE "{name}"')
redis.Redis.from_url(redis_url).flushdb()  # no task messages left from an earlier stack
EOF

    local fakes_env=${STACK_FAKES_ENV:-$STACK_DIR/fakes.env}
    if [ -z "${STACK_FAKES_ENV:-}" ]; then
        rm -f "$fakes_env"
        start fakes "$PY" -m airflow_provider_ingest.testing --env-file "$fakes_env" \
            --seed-date yesterday --seed-date today
        wait_for "the fakes" 60 test -f "$fakes_env"
    fi
    # shellcheck disable=SC1090
    source "$fakes_env"  # AIRFLOW_CONN_* for every component

    echo "migrating the metadata database"
    if ! "$BIN/airflow" db migrate >"$STACK_DIR/logs/db-migrate.log" 2>&1; then
        tail -30 "$STACK_DIR/logs/db-migrate.log" >&2
        false
    fi
    start api-server "$BIN/airflow" api-server
    start scheduler "$BIN/airflow" scheduler
    start dag-processor "$BIN/airflow" dag-processor
    start triggerer "$BIN/airflow" triggerer
    start worker "$BIN/airflow" celery worker
    wait_for "a healthy deployment" 180 healthy
    wait_for "the example DAGs to be parsed" 180 dags_parsed
    trap - ERR
    echo "Airflow is up: http://127.0.0.1:$STACK_PORT (logs: $STACK_DIR/logs)"
}

down() {
    local name pid
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
        name=${COMPONENTS[i]}
        [ -f "$STACK_DIR/pids/$name.pid" ] || continue
        pid=$(cat "$STACK_DIR/pids/$name.pid")
        kill -TERM -- "-$pid" 2>/dev/null || true  # its whole session: workers' children too
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$STACK_DIR/pids/$name.pid"
        echo "stopped $name ($pid)"
    done
}

status() {
    for name in "${COMPONENTS[@]}"; do
        if alive "$name"; then echo "$name: running ($(cat "$STACK_DIR/pids/$name.pid"))"; else echo "$name: stopped"; fi
    done
}

purge() {
    down
    "$PY" -c '
import sys, psycopg2
conn = psycopg2.connect(f"{sys.argv[1]}/postgres"); conn.autocommit = True
conn.cursor().execute(f"DROP DATABASE IF EXISTS \"{sys.argv[2]}\" WITH (FORCE)")' "$STACK_PG_URL" "$STACK_DB"
    rm -rf "$STACK_DIR"
}

case "${1:-}" in
up | down | status | purge) "$1" ;;
*)
    echo "usage: $0 up|down|status|purge" >&2
    exit 2
    ;;
esac
