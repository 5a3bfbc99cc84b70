#!/usr/bin/env bash
# Redis's instructions per purchase, counted by callgrind (README, Benchmarks: what a hold costs
# Redis): redis-server runs under `valgrind --tool=callgrind`, the service natively, and wrk
# sends purchases by new buyers (`-t1 -c64`, batches of about 16). The counters are zeroed
# after a warm-up (script loading and the first calls excluded), then SECONDS of load are
# counted and divided by the purchases the sale's config counted in between.
#
# Usage: loadtest/bench/redis_instructions.sh [plain|holds ...]   (default: plain holds)
# Knobs: BIN (target/release/flashsale), SECONDS_OF_LOAD (5), REDIS_PORT/SERVICE_PORT
# (16395/18095). Needs valgrind, wrk, redis-server.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BIN=${BIN:-target/release/flashsale}
LOAD=${SECONDS_OF_LOAD:-5}
REDIS_PORT=${REDIS_PORT:-16395}
SERVICE_PORT=${SERVICE_PORT:-18095}
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
[ -x "$BIN" ] || { echo "build it first: cargo build --release" >&2; exit 2; }

wait_port() { # port seconds
  for _ in $(seq 1 $(($2 * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}
cli() { redis-cli -p "$REDIS_PORT" "$@"; }
sold() { cli hget "sale:{$1}:config" sold; }

valgrind --tool=callgrind --callgrind-out-file="$WORK/redis.%p" \
  redis-server --port "$REDIS_PORT" --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_port "$REDIS_PORT" 60

for kind in "${@:-plain holds}"; do
  for target in $kind; do
    sale="$target-$RANDOM"
    hold=0
    [ "$target" = holds ] && hold=600
    env -i PATH="$PATH" HOST=127.0.0.1 PORT="$SERVICE_PORT" \
      REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SALE_ID="$sale" SALE_TOTAL_STOCK=2000000 \
      SALE_HOLD_SECONDS="$hold" RATE_LIMIT_PER_SECOND=0 REDIS_TIMEOUT_MS=20000 \
      "$BIN" >"$WORK/service.log" 2>&1 &
    service=$!
    PIDS+=("$service")
    wait_port "$SERVICE_PORT" 60
    wrk -t1 -c64 -d2s -s loadtest/bench/purchase.lua "http://127.0.0.1:$SERVICE_PORT" -- "w$sale" \
      >/dev/null
    before=$(sold "$sale")
    callgrind_control -z "$REDIS_PID" >/dev/null 2>&1
    wrk -t1 -c64 -d"${LOAD}s" -s loadtest/bench/purchase.lua "http://127.0.0.1:$SERVICE_PORT" \
      -- "m$sale" >/dev/null
    callgrind_control -d "$REDIS_PID" >/dev/null 2>&1
    after=$(sold "$sale")
    kill -INT "$service"
    wait "$service" 2>/dev/null || true
    dump=$(ls -t "$WORK"/redis.* | head -1)
    total=$(grep -m1 '^summary:\|^totals:' "$dump" | awk '{print $2}')
    purchases=$((after - before))
    printf '%s: %d purchases, %.1fk Redis instructions per purchase\n' "$target" "$purchases" \
      "$(awk -v t="$total" -v n="$purchases" 'BEGIN { print t / n / 1000 }')"
    rm -f "$dump"
  done
done
