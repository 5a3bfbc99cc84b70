#!/usr/bin/env bash
# What PURCHASE_WAIT_REPLICAS costs: a local primary with one replica, flashsale (release) with
# the setting off and on (PURCHASE_WAIT_TIMEOUT_MS=$WAIT_MS), wrk purchases by new buyers at
# $CONNECTIONS connections for $DURATION s each, $ROUNDS interleaved rounds; prints purchases/s
# and p50/p99 latency of each, medians, and the ratios on/off.
# Knobs: DURATION (5), ROUNDS (3), CONNECTIONS (64), WAIT_MS (100), ports 16390/16391/18090.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-5}; ROUNDS=${ROUNDS:-3}; CONNECTIONS=${CONNECTIONS:-64}; WAIT_MS=${WAIT_MS:-100}
PRIMARY=16390; REPLICA=16391; PORT=18090
WORK=$(mktemp -d); PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
scripts/install-deps.sh
command -v wrk >/dev/null || { sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo); "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2; }
cargo build --release --quiet --bin flashsale

for port in $PRIMARY $REPLICA; do
  args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning --repl-diskless-sync-delay 0)
  [ "$port" = "$REPLICA" ] && args+=(--replicaof 127.0.0.1 "$PRIMARY")
  redis-server "${args[@]}" >"$WORK/redis-$port.log" 2>&1 & PIDS+=($!)
done
for _ in $(seq 1 200); do
  redis-cli -p "$REPLICA" info replication 2>/dev/null | grep -q master_link_status:up && break; sleep 0.05
done

run() { # replicas label
  local sale="wait-$1-$2-$(date +%s%N)"
  env -i PATH="$PATH" HOST=127.0.0.1 PORT="$PORT" REDIS_URL="redis://127.0.0.1:$PRIMARY" \
    SALE_ID="$sale" SALE_TOTAL_STOCK=1000000000 RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json RUST_LOG=warn \
    PURCHASE_WAIT_REPLICAS="$1" PURCHASE_WAIT_TIMEOUT_MS="$WAIT_MS" \
    target/release/flashsale >>"$WORK/flashsale.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break; sleep 0.05; done
  wrk -t2 -c"$CONNECTIONS" -d2s -s loadtest/bench/purchase.lua "http://127.0.0.1:$PORT" -- "w$2" >/dev/null
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/bench/purchase.lua "http://127.0.0.1:$PORT" -- "m$2" | tail -1
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}
field() { grep -o "\"$1\":[0-9.]*" | cut -d: -f2; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: >"$WORK/off"; : >"$WORK/on"
for round in $(seq 1 "$ROUNDS"); do
  run 0 "off$round" >>"$WORK/off"
  run 1 "on$round" >>"$WORK/on"
done
printf '| PURCHASE_WAIT_REPLICAS | purchases/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|\n'
for mode in off on; do
  printf '| %s | %s | %s | %s | %s |\n' "$([ $mode = on ] && echo 1 || echo 0)" \
    "$(field rps <"$WORK/$mode" | median)" "$(field p50_ms <"$WORK/$mode" | median)" \
    "$(field p99_ms <"$WORK/$mode" | median)" "$(field non_2xx <"$WORK/$mode" | median)"
done
echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores: one local replica, wrk -t2 -c$CONNECTIONS, ${DURATION}s, medians of $ROUNDS rounds."
