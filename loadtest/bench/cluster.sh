#!/usr/bin/env bash
# How sales scale over Redis Cluster primaries (README, Scaling), measured on this machine:
#   A. three sales on ONE Redis primary: three redis-benchmark runs at once, each running
#      lua/purchase.lua by EVALSHA for its own sale (a new buyer per call);
#   B. the same three sales on THREE primaries of a local Redis Cluster, one sale per primary.
# Prints purchases/s of each sale and in all, for A and B, and the ratio B/A, median of ROUNDS.
# Knobs: CONNECTIONS per sale (50), REQUESTS per sale and round (200000), ROUNDS (3),
# BASE_PORT (17100; uses BASE_PORT..BASE_PORT+3 and their +10000 cluster bus ports).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CONNECTIONS=${CONNECTIONS:-50}
REQUESTS=${REQUESTS:-200000}
ROUNDS=${ROUNDS:-3}
BASE_PORT=${BASE_PORT:-17100}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
scripts/install-deps.sh
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh

start_redis() { # port [extra args…] (its own: several Redis servers, some in a cluster)
  local port=$1; shift
  mkdir -p "$WORK/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/$port" \
    --maxmemory-policy noeviction --loglevel warning "$@" >"$WORK/$port.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "redis-server on $port did not start" >&2; exit 1
}
NOW_MS=$(($(date +%s) * 1000))
SINGLE=$BASE_PORT
CLUSTER=($((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)))

start_redis "$SINGLE"
for port in "${CLUSTER[@]}"; do start_redis "$port" --cluster-enabled yes; done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER[@]}") --cluster-replicas 0 \
  --cluster-yes >/dev/null
for _ in $(seq 1 100); do
  redis-cli -p "${CLUSTER[0]}" cluster info | grep -q cluster_state:ok && break; sleep 0.1
done

# The port of the primary serving a sale's slot.
owner() {
  local slot; slot=$(redis-cli -p "${CLUSTER[0]}" cluster keyslot "sale:{$1}:config")
  redis-cli -p "${CLUSTER[0]}" cluster nodes | awk -v s="$slot" '$3 ~ /master/ {
    for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1];
      if (s >= r[1] && s <= r[2]) { split($2, a, "[:@]"); print a[2] } } }'
}
# Three sales, one on each primary.
SALES=(); PORTS=()
for n in $(seq 0 200); do
  port=$(owner "scale-$n")
  if [[ ! " ${PORTS[*]} " =~ " $port " ]]; then SALES+=("scale-$n"); PORTS+=("$port"); fi
  [ "${#SALES[@]}" -eq 3 ] && break
done

bench_sales() { # label port-of-sale-0 port-of-sale-1 port-of-sale-2 → sets TOTAL, EACH
  local label=$1; shift
  local ports=("$@") i pids=() before=()
  for i in 0 1 2; do
    local sale="${SALES[$i]}" port=${ports[$i]} sha
    sha=$(redis-cli -p "$port" script load "$(lua_script purchase.lua)")
    redis-cli -p "$port" eval "$(lua_script create_sale.lua)" 1 "sale:{$sale}:config" \
      scale 2000000 "$((NOW_MS - 60000))" "$((NOW_MS + 3600000))" >/dev/null
    # One bucket: redis-benchmark cannot compute a buyer's (SHA-1 of the userId).
    redis-cli -p "$port" hset "sale:{$sale}:config" buyerBuckets 1 >/dev/null
    before+=("$(redis-cli -p "$port" hget "sale:{$sale}:config" sold)")
    redis-benchmark -p "$port" -c "$CONNECTIONS" -n "$REQUESTS" -r 1000000000 --csv \
      evalsha "$sha" 9 "sale:{$sale}:config" "sale:{$sale}:orders" \
      "sale:{$sale}:refused" "sale:{$sale}:checkouts" "sale:{$sale}:expiries" \
      "sale:{$sale}:room" "sale:{$sale}:gate" "sale:{$sale}:buyers:0" \
      "sale:{$sale}:rl:u__rand_int__" \
      10 10000 "$sale" 0 1 \
      "$(ceiling_item scale)" 0123456789abcdef0123456789abcdef \
      >"$WORK/$label-$i.csv" 2>/dev/null &
    pids+=("$!")
  done
  wait "${pids[@]}"
  EACH=""; TOTAL=0
  for i in 0 1 2; do
    ceiling_sold "${before[$i]}" "$(redis-cli -p "${ports[$i]}" hget "sale:{${SALES[$i]}}:config" sold)" \
      "$REQUESTS" "$label, sale $i"
    local rps; rps=$(tail -1 "$WORK/$label-$i.csv" | tr -d '"' | cut -d, -f2)
    EACH+=" $(printf '%.0f' "$rps")"; TOTAL=$(awk -v a="$TOTAL" -v b="$rps" 'BEGIN { print a + b }')
  done
}
ONE=""; THREE=""
for ROUND in $(seq 1 "$ROUNDS"); do
  bench_sales one "$SINGLE" "$SINGLE" "$SINGLE"; ONE+=" $TOTAL"
  echo "round $ROUND: one primary, purchases/s per sale:$EACH, total $(printf '%.0f' "$TOTAL")"
  bench_sales three "${PORTS[@]}"; THREE+=" $TOTAL"
  echo "round $ROUND: three primaries, purchases/s per sale:$EACH, total $(printf '%.0f' "$TOTAL")"
done
ONE_M=$(echo "$ONE" | median); THREE_M=$(echo "$THREE" | median)
echo "median total purchases/s: one primary $(printf '%.0f' "$ONE_M"), three primaries $(printf '%.0f' "$THREE_M"), ratio $(awk -v a="$THREE_M" -v b="$ONE_M" 'BEGIN { printf "%.2f", a / b }') on $(nproc) cores"
