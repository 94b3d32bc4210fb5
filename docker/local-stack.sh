#!/usr/bin/env bash
# A real Airflow deployment on this machine, for the example DAGs: PostgreSQL as the metadata
# database, CeleryExecutor with Redis as the broker, and separate api-server, scheduler,
# dag-processor, triggerer and Celery worker processes, plus moto S3 and the vendor fakes.
#
#   docker/local-stack.sh up [--triggerers N] [--workers N]
#                                    install, create the database, start everything, wait until
#                                    ready; N triggerers and N Celery workers (default 1 each)
#   docker/local-stack.sh status     which of the started processes are alive
#   docker/local-stack.sh stop NAME  stop one process (api-server, scheduler, worker-2...) by pid
#   docker/local-stack.sh start NAME start it again (after stop, or after it died)
#   docker/local-stack.sh down       stop every process it started, by pid, and remove the Celery
#                                    keys from its Redis db (the database stays)
#   docker/local-stack.sh purge      down, then drop the database and the state folder
#
# Settings (environment): STACK_PORT (8080), STACK_DIR (.local/stack), STACK_DB (airflow_ingest),
# STACK_PG_URL (postgresql://postgres@127.0.0.1:5432), STACK_REDIS_URL (redis://127.0.0.1:6379/5),
# STACK_FAKES_ENV (a file of AIRFLOW_CONN_* exports for fakes already running: then none are started),
# STACK_HOST (127.0.0.1: the address the api-server listens on; every user is an admin, so any other
# address also needs STACK_ALLOW_REMOTE_ADMIN=yes), STACK_WORKER_CONCURRENCY (6 task slots per
# worker), STACK_DAGS_FOLDER (dags/). Other AIRFLOW__* variables given to `up` reach every process. `up` saves all of them in
# STACK_DIR/settings.env, and the other commands use the running stack's saved settings.
# docker/docker-compose.yaml runs the same processes with the same AIRFLOW__* settings.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK_DIR=${STACK_DIR:-$ROOT/.local/stack}
if [ "${1:-}" != up ] && [ -f "$STACK_DIR/settings.env" ]; then
    # shellcheck disable=SC1091
    source "$STACK_DIR/settings.env"
fi
STACK_PORT=${STACK_PORT:-8080}
STACK_HOST=${STACK_HOST:-127.0.0.1}
STACK_DB=${STACK_DB:-airflow_ingest}
STACK_PG_URL=${STACK_PG_URL:-postgresql://postgres@127.0.0.1:5432}
STACK_REDIS_URL=${STACK_REDIS_URL:-redis://127.0.0.1:6379/5}
STACK_WORKER_CONCURRENCY=${STACK_WORKER_CONCURRENCY:-6}
STACK_DAGS_FOLDER=${STACK_DAGS_FOLDER:-$ROOT/dags}
PY=$ROOT/.venv/bin/python
BIN=$ROOT/.venv/bin
# Started in this order (`down` stops them all at once). `up` writes the list it started, extra
# triggerer-N and worker-N included, to STACK_DIR/components.
COMPONENTS=(fakes api-server scheduler dag-processor triggerer worker)
if [ "${1:-}" != up ] && [ -f "$STACK_DIR/components" ]; then read -ra COMPONENTS <"$STACK_DIR/components"; fi
# While a stack runs, its Redis db holds this key (the stack's folder): no second stack takes it.
REDIS_OWNER_KEY=airflow-ingest-stack:owner

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
    export AIRFLOW__CELERY__WORKER_CONCURRENCY=$STACK_WORKER_CONCURRENCY
    export AIRFLOW__CORE__DAGS_FOLDER=$STACK_DAGS_FOLDER
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
    # Every worker and triggerer serves its logs on a port of its own, found free by `up` (two
    # stacks, or two workers of one stack, would otherwise both want 8793 and 8794). These are the
    # first worker's and triggerer's, which the api-server reads too; extra ones get theirs at start.
    AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$(log_port worker)
    AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$(log_port triggerer)
    export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT
    # shellcheck disable=SC1090
    source "${STACK_FAKES_ENV:-$STACK_DIR/fakes.env}"  # AIRFLOW_CONN_* for every component
}

log_port() { awk -v name="$1" '$1 == name { print $2 }' "$STACK_DIR/log-ports"; }

with_log_port() {  # with_log_port NAME COMMAND...: run COMMAND with NAME's own log server port
    local port
    port=$(log_port "$1")
    shift
    AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$port AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$port "$@"
}

free_ports() {  # free_ports N: N distinct ports nothing listens on now
    "$PY" -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for sock in socks:
    sock.bind(("127.0.0.1", 0))
print(" ".join(str(sock.getsockname()[1]) for sock in socks))' "$1"
}

redis_clean() {  # redis_clean claim|release: delete the Celery keys in the stack's Redis db
    # Only what Celery (kombu) makes there: its _kombu.* keys (exchange bindings and their
    # deadlines), the queues the bindings name (with their priority variants) and the
    # unacked-message bookkeeping. Then claim or release the db.
    "$PY" -c '
import sys

import redis

url, owner_key, owner, action = sys.argv[1:]
client = redis.Redis.from_url(url)
holder = client.get(owner_key)
if holder not in (None, owner.encode()):
    sys.exit(f"{url} is the broker of the stack in {holder.decode()}: stop it, or set STACK_REDIS_URL")
sep = b"\x06\x16"  # kombu: between the fields of a binding, and before a queue priority
keys = set(client.scan_iter(match="_kombu.*"))
for binding in [key for key in keys if client.type(key) == b"set"]:
    for member in client.smembers(binding):
        queue = member.split(sep)[-1]
        keys.update([queue, *(queue + sep + str(step).encode() for step in range(1, 10))])
keys.update(client.scan_iter(match="unacked*"))
if keys:
    client.delete(*keys)
if action == "claim":
    client.set(owner_key, owner)
else:
    client.delete(owner_key)' "$STACK_REDIS_URL" "$REDIS_OWNER_KEY" "$STACK_DIR" "$1"
}

start() {  # start NAME COMMAND...: in its own session, so `stop` can stop its children too
    local name=$1
    shift
    setsid "$@" >>"$STACK_DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STACK_DIR/pids/$name.pid"
}

launch() {  # launch NAME: start one Airflow process of the stack (airflow_env first)
    case $1 in
    api-server) start api-server "$BIN/airflow" api-server ;;
    scheduler) start scheduler "$BIN/airflow" scheduler ;;
    dag-processor) start dag-processor "$BIN/airflow" dag-processor ;;
    triggerer) start triggerer "$BIN/airflow" triggerer ;;
    worker) start worker "$BIN/airflow" celery worker ;;
    triggerer-*) with_log_port "$1" start "$1" "$BIN/airflow" triggerer ;;
    worker-*) with_log_port "$1" start "$1" "$BIN/airflow" celery worker --celery-hostname "$1@%h" ;;
    *)
        echo "no Airflow process named $1 in this stack (${COMPONENTS[*]})" >&2
        return 2
        ;;
    esac
}

alive() { [ -f "$STACK_DIR/pids/$1.pid" ] && running "$(cat "$STACK_DIR/pids/$1.pid")"; }

running() {  # running PID: the process exists and is not a zombie (a killed one nobody reaped yet)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }  # the fields after the command name, which may hold spaces
    [ "${stat%% *}" != Z ]
}

WATCHED=()  # what wait_for checks is still alive (default: every component)

wait_for() {  # wait_for WHAT SECONDS COMMAND...
    local what=$1 seconds=$2 name watched=("${COMPONENTS[@]}")
    shift 2
    [ ${#WATCHED[@]} -eq 0 ] || watched=("${WATCHED[@]}")
    for _ in $(seq "$seconds"); do
        "$@" >/dev/null 2>&1 && return 0
        for name in "${watched[@]}"; do
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

answers() { curl -sf -o /dev/null "http://127.0.0.1:$STACK_PORT/api/v2/monitor/health"; }

healthy() {  # the api-server answers and reports every component healthy
    curl -sf "http://127.0.0.1:$STACK_PORT/api/v2/monitor/health" | "$PY" -c '
import json, sys
health = json.load(sys.stdin)
sys.exit(any(part.get("status") != "healthy" for part in health.values()))'
}

dags_parsed() {  # every DAG file of the folder is parsed
    local token expected
    expected=$(grep -l "DAG(" "$STACK_DAGS_FOLDER"/*.py | wc -l)
    token=$(curl -sf "http://127.0.0.1:$STACK_PORT/auth/token" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$STACK_PORT/api/v2/dags?limit=100" |
        "$PY" -c 'import json, sys; sys.exit(json.load(sys.stdin)["total_entries"] < int(sys.argv[1]))' "$expected"
}

save_settings() {  # the settings of this `up`, for the commands that come after it
    local name
    for name in STACK_PORT STACK_HOST STACK_DB STACK_PG_URL STACK_REDIS_URL STACK_FAKES_ENV \
        STACK_ALLOW_REMOTE_ADMIN STACK_WORKER_CONCURRENCY STACK_DAGS_FOLDER $(compgen -e | grep '^AIRFLOW__' || true); do
        if [ -n "${!name:-}" ]; then printf 'export %s=%q\n' "$name" "${!name}"; fi
    done
}

up() {
    local triggerers=1 workers=1 pidfile n
    while [ $# -gt 0 ]; do
        case $1 in
        --triggerers) triggerers=${2:-} ;;
        --workers) workers=${2:-} ;;
        *)
            echo "up: unknown option $1 (--triggerers N, --workers N)" >&2
            exit 2
            ;;
        esac
        shift 2 || { echo "up: $1 needs a number" >&2; exit 2; }
    done
    if ! [[ $triggerers =~ ^[1-9]$ && $workers =~ ^[1-9]$ ]]; then
        echo "up: --triggerers and --workers take a number from 1 to 9" >&2
        exit 2
    fi
    for pidfile in "$STACK_DIR"/pids/*.pid; do
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "$(basename "$pidfile" .pid) is running: docker/local-stack.sh down first" >&2
            exit 1
        fi
    done
    if curl -s -o /dev/null "http://127.0.0.1:$STACK_PORT/"; then
        echo "port $STACK_PORT is taken: set STACK_PORT" >&2
        exit 1
    fi
    [ -n "${STACK_SKIP_INSTALL:-}" ] || bash "$ROOT/scripts/install.sh"
    COMPONENTS=(api-server scheduler dag-processor triggerer)
    for ((n = 2; n <= triggerers; n++)); do COMPONENTS+=("triggerer-$n"); done
    COMPONENTS+=(worker)
    for ((n = 2; n <= workers; n++)); do COMPONENTS+=("worker-$n"); done
    [ -n "${STACK_FAKES_ENV:-}" ] || COMPONENTS=(fakes "${COMPONENTS[@]}")
    rm -rf "$STACK_DIR/logs" "$STACK_DIR/pids" "$STACK_DIR/home"
    trap 'echo "start failed: stopping what was started" >&2; down' ERR
    mkdir -p "$STACK_DIR/logs" "$STACK_DIR/pids" "$STACK_DIR/home"
    echo "${COMPONENTS[*]}" >"$STACK_DIR/components"
    (umask 077 && save_settings >"$STACK_DIR/settings.env")
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$STACK_DIR/jwt_secret")
    local names=() ports
    for name in "${COMPONENTS[@]}"; do [[ $name != triggerer* && $name != worker* ]] || names+=("$name"); done
    read -ra ports <<<"$(free_ports ${#names[@]})"
    for ((n = 0; n < ${#names[@]}; n++)); do echo "${names[n]} ${ports[n]}"; done >"$STACK_DIR/log-ports"

    echo "database $STACK_DB (recreated), broker $STACK_REDIS_URL (its Celery keys removed)"
    redis_clean claim  # no task messages left from an earlier stack
    "$PY" - "$STACK_PG_URL" "$STACK_DB" <<'EOF'
import sys

import psycopg2

pg_url, name = sys.argv[1:]
conn = psycopg2.connect(f"{pg_url}/postgres")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    cur.execute(f'CREATE DATABASE "{name}"')
EOF

    if [ -z "${STACK_FAKES_ENV:-}" ]; then
        rm -f "$STACK_DIR/fakes.env"
        start fakes "$PY" -m airflow_provider_ingest.testing --env-file "$STACK_DIR/fakes.env" \
            --seed-date yesterday --seed-date today
        wait_for "the fakes" 60 test -f "$STACK_DIR/fakes.env"
    fi
    airflow_env

    echo "migrating the metadata database"
    if ! "$BIN/airflow" db migrate >"$STACK_DIR/logs/db-migrate.log" 2>&1; then
        tail -30 "$STACK_DIR/logs/db-migrate.log" >&2
        false
    fi
    for name in "${COMPONENTS[@]}"; do [ "$name" = fakes ] || launch "$name"; done
    wait_for "a healthy deployment" 180 healthy
    wait_for "the example DAGs to be parsed" 180 dags_parsed
    trap - ERR
    echo "Airflow is up: http://127.0.0.1:$STACK_PORT (${COMPONENTS[*]}; logs: $STACK_DIR/logs)"
}

known() {  # known NAME: NAME is an Airflow process of this stack
    local name
    for name in "${COMPONENTS[@]}"; do [ "$name" != "$1" ] || [ "$1" = fakes ] || return 0; done
    echo "no Airflow process named '$1' in this stack (${COMPONENTS[*]}; the fakes cannot restart)" >&2
    exit 2
}

start_one() {
    known "$1"
    if alive "$1"; then
        echo "$1 is running ($(cat "$STACK_DIR/pids/$1.pid"))" >&2
        exit 1
    fi
    airflow_env
    launch "$1"
    WATCHED=("$1")
    if [ "$1" = api-server ]; then wait_for "the api-server" 120 answers; fi
    echo "started $1 ($(cat "$STACK_DIR/pids/$1.pid"))"
}

stop_one() { stop "$1"; }

any_alive() {
    local pid
    for pid in "$@"; do if running "$pid"; then return 0; fi; done
    return 1
}

stop() {  # stop NAME...: SIGTERM their process groups, wait up to 30 s, SIGKILL what is left of their sessions
    local name pid pids=() left
    for name in "$@"; do
        [ -f "$STACK_DIR/pids/$name.pid" ] || continue
        pid=$(cat "$STACK_DIR/pids/$name.pid")
        kill -TERM -- "-$pid" 2>/dev/null || true
        pids+=("$pid")
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    for _ in $(seq 30); do any_alive "${pids[@]}" || break; sleep 1; done
    for pid in "${pids[@]}"; do
        # The session holds everything it started, task processes in process groups of their own too.
        left=$(ps -o pid= --sid "$pid" || true)
        # shellcheck disable=SC2086 # one pid a word
        if [ -n "$left" ]; then kill -KILL $left 2>/dev/null || true; fi
    done
    for name in "$@"; do
        [ -f "$STACK_DIR/pids/$name.pid" ] || continue
        echo "stopped $name ($(cat "$STACK_DIR/pids/$name.pid"))"
        rm -f "$STACK_DIR/pids/$name.pid"
    done
}

down() {
    local reversed=() i
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do reversed+=("${COMPONENTS[i]}"); done
    stop "${reversed[@]}"  # all at once: a worker's warm shutdown need not wait for the others
    if [ -f "$STACK_DIR/settings.env" ]; then  # a stack was started here: it used this Redis db
        redis_clean release || echo "could not remove the Celery keys from $STACK_REDIS_URL" >&2
    fi
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
up) up "${@:2}" ;;
down | status | purge) "$1" ;;
start | stop)
    [ $# -eq 2 ] || { echo "usage: $0 $1 NAME" >&2; exit 2; }
    "${1}_one" "$2"
    ;;
*)
    echo "usage: $0 up [--triggerers N] [--workers N] | status | stop NAME | start NAME | down | purge" >&2
    exit 2
    ;;
esac
