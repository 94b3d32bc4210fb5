#!/usr/bin/env bash
# The flake check of docs/testing.md: the whole pytest suite RUNS times in a row (default 5) on a
# fresh clone of this checkout's HEAD, with HOGS busy-loop processes (default 2) keeping every core
# of a 2-core machine busy. Prints one line per run and a summary, writes them into the
# bench:loaded_runs section of docs/testing.md (with the date, command and commit); exits 1 if any run
# failed.
#
#   scripts/loaded-runs.sh [RUNS] [HOGS]     (logs in .local/loaded-runs/)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
HOGS=${2:-2}
ORIGIN=$PWD
OUT=$PWD/.local/loaded-runs
CLONE=$(mktemp -d -t loaded-runs.XXXXXX)
mkdir -p "$OUT"
git clone --quiet "$PWD" "$CLONE/repo"
[ -d ../shared ] && ln -s "$(cd ../shared && pwd)" "$CLONE/shared"  # the vendor documents, as beside main
cd "$CLONE/repo"
bash scripts/install.sh
hogs=()
cleanup() { kill "${hogs[@]}" 2>/dev/null || true; rm -rf "$CLONE"; }
trap cleanup EXIT
for _ in $(seq "$HOGS"); do
    sh -c 'while :; do :; done' &
    hogs+=($!)
done
: >"$OUT/summary.txt"
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
say "commit $(git rev-parse --short HEAD), $RUNS runs, $HOGS CPU hogs, $(nproc) CPUs, started $(date -u +%FT%TZ)"
failed=0
for run in $(seq "$RUNS"); do
    start=$SECONDS
    if .venv/bin/python -m pytest -p no:cacheprovider -q --durations=15 >"$OUT/run-$run.log" 2>&1; then result=passed; else result=FAILED; failed=$((failed + 1)); fi
    say "run $run: $result in $((SECONDS - start)) s: $(tail -n 1 "$OUT/run-$run.log")"
done
say "$((RUNS - failed)) of $RUNS runs passed, finished $(date -u +%FT%TZ)"
(cd "$ORIGIN" && .venv/bin/python -c 'import sys; from pathlib import Path; from benchmarks.common import write_table
write_table("loaded_runs", "```text\n" + Path(sys.argv[1]).read_text() + "```", sys.argv[2], Path("docs/testing.md"))' \
    "$OUT/summary.txt" "scripts/loaded-runs.sh $RUNS $HOGS")
[ "$failed" -eq 0 ]
