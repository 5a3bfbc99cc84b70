#!/usr/bin/env bash
# A/B of the purchase path: the build of a git revision (A) against the working tree (B), run
# alternately against one Redis, so both see the same machine noise. Per round and build: wrk at
# CONNECTIONS, every request a new buyer (loadtest/bench/purchase.lua); reports purchases/s and
# the CPU per purchase of the service and of Redis, medians over ROUNDS, and B/A.
#
#   bash loadtest/bench/ab.sh [REV]        # REV defaults to HEAD~1
#
# Knobs: ROUNDS (5), DURATION (s, 8), CONNECTIONS (64), REDIS_PORT/SERVICE_PORT (16379/18080).
# A's build is kept in target/ab/ between runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
REV=${1:-HEAD~1}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-64}
REDIS_PORT=${REDIS_PORT:-16379}
SERVICE_PORT=${SERVICE_PORT:-18080}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  git worktree remove --force "$WORK/a-src" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh

scripts/install-deps.sh
need_wrk

log "building B: the working tree (release)"
cargo build --release --quiet --bin flashsale
cp target/release/flashsale "$WORK/b"
log "building A: $REV (release, in target/ab)"
git worktree add --quiet --detach "$WORK/a-src" "$REV"
(cd "$WORK/a-src" && CARGO_TARGET_DIR="$ROOT/target/ab" cargo build --release --quiet --bin flashsale)
cp target/ab/release/flashsale "$WORK/a"

start_redis "$WORK/redis.log"

# One measurement of one build: sets RPS, CPU_US and REDIS_US.
measure() { # build round
  local sale="ab-$1-$2-$RANDOM" pid out cpu0 rcpu0 cpu1 rcpu1 sold0 sold
  env -i PATH="$PATH" HOST=127.0.0.1 PORT="$SERVICE_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    SALE_ID="$sale" SALE_TOTAL_STOCK=2000000 RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json \
    "$WORK/$1" >>"$WORK/$1.log" 2>&1 &
  pid=$!; PIDS+=("$pid")
  wait_ready "$SERVICE_PORT"
  wrk -t2 -c"$CONNECTIONS" -d2s -s loadtest/bench/purchase.lua "http://127.0.0.1:$SERVICE_PORT" -- "w$sale" >/dev/null
  sold0=$(rcli hget "sale:{$sale}:config" sold)
  cpu0=$(cpu_ticks "$pid"); rcpu0=$(cpu_ticks "$REDIS_PID")
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/bench/purchase.lua "http://127.0.0.1:$SERVICE_PORT" -- "m$sale" | tail -1)
  cpu1=$(cpu_ticks "$pid"); rcpu1=$(cpu_ticks "$REDIS_PID")
  sold=$(( $(rcli hget "sale:{$sale}:config" sold) - sold0 ))
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  RPS=$(echo "$out" | json_field rps)
  CPU_US=$(awk -v t=$(( (cpu1 - cpu0) * TICK_US )) -v n="$sold" 'BEGIN { printf "%.1f", t / n }')
  REDIS_US=$(awk -v t=$(( (rcpu1 - rcpu0) * TICK_US )) -v n="$sold" 'BEGIN { printf "%.1f", t / n }')
}

declare -A V=()
for R in $(seq 1 "$ROUNDS"); do
  for BUILD in a b; do
    measure "$BUILD" "$R"
    log "round $R/$ROUNDS $BUILD: $RPS purchases/s, service $CPU_US µs, Redis $REDIS_US µs per purchase"
    V[${BUILD}_rps]+=" $RPS"; V[${BUILD}_cpu]+=" $CPU_US"; V[${BUILD}_redis]+=" $REDIS_US"
  done
done
m() { echo "${V[$1]}" | median; }
echo "A = $REV ($(git rev-parse --short "$REV")), B = the working tree; $CONNECTIONS connections, ${DURATION} s, medians of $ROUNDS alternating rounds"
echo
echo "| | A | B | B/A |"
echo "|---|---|---|---|"
echo "| purchases/s | $(m a_rps) | $(m b_rps) | $(ratio "$(m b_rps)" "$(m a_rps)") |"
echo "| service CPU µs per purchase | $(m a_cpu) | $(m b_cpu) | $(ratio "$(m b_cpu)" "$(m a_cpu)") |"
echo "| Redis CPU µs per purchase | $(m a_redis) | $(m b_redis) | $(ratio "$(m b_redis)" "$(m a_redis)") |"
echo
echo "per round — A service:${V[a_cpu]}; B service:${V[b_cpu]}; A Redis:${V[a_redis]}; B Redis:${V[b_redis]}"
