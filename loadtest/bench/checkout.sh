#!/usr/bin/env bash
# What checkout holds cost (README, Checkout): in one run against one Redis, the service and
# Redis CPU per purchase of a sale without holds (the reference), per reservation of a sale with
# holds, per confirm, and per sweep call that releases 1,000 expired holds; then a drop of
# 1,000 units where 30 % of the holds are never paid, checked at the end: every unit confirmed,
# none twice.
#
#   bash loadtest/bench/checkout.sh
#
# Knobs: ROUNDS (3), DURATION (s, 8), CONNECTIONS (64), REDIS_PORT/SERVICE_PORT (16380/18081).
# Takes about two minutes plus 2 × 30 s of waiting for holds to expire.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-64}
REDIS_PORT=${REDIS_PORT:-16380}
SERVICE_PORT=${SERVICE_PORT:-18081}
TOKEN=bench-admin-token-0123456789
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh
work_dir
prepare_service_bench

start_redis "$WORK/redis.log"

SERVICE_PID=
start_service() { # saleId holdSeconds stock
  env -i PATH="$PATH" HOST=127.0.0.1 PORT="$SERVICE_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    SALE_ID="$1" SALE_HOLD_SECONDS="$2" SALE_TOTAL_STOCK="$3" ADMIN_TOKEN="$TOKEN" \
    RATE_LIMIT_PER_SECOND=0 USER_ATTEMPT_LIMIT=0 LOG_FORMAT=json RUST_LOG=warn \
    "$BIN" >>"$WORK/service.log" 2>&1 &
  SERVICE_PID=$!; PIDS+=("$SERVICE_PID")
  wait_ready "$SERVICE_PORT"
}

declare -A V=()
for R in $(seq 1 "$ROUNDS"); do
  plain="plain-$R-$RANDOM"; held="held-$R-$RANDOM"
  start_service "$plain" 0 5000000
  measure "$plain" purchase.lua sold "p$plain"
  stop_service
  log "round $R plain purchase: $RPS/s, service $CPU_US µs, Redis $REDIS_US µs"
  V[plain_cpu]+=" $CPU_US"; V[plain_redis]+=" $REDIS_US"; V[plain_rps]+=" $RPS"

  start_service "$held" 3600 5000000
  measure "$held" purchase.lua held "h$held"
  log "round $R reservation: $RPS/s, service $CPU_US µs, Redis $REDIS_US µs"
  V[hold_cpu]+=" $CPU_US"; V[hold_redis]+=" $REDIS_US"; V[hold_rps]+=" $RPS"
  # Confirm for half as long as the reservations ran, so every confirm finds an order.
  DURATION_WAS=$DURATION; DURATION=$(( DURATION / 2 ))
  measure "$held" confirm.lua confirmed "$held" "$TOKEN" 2
  DURATION=$DURATION_WAS
  log "round $R confirm: $RPS/s, service $CPU_US µs, Redis $REDIS_US µs (non-2xx: $NON_2XX)"
  V[confirm_cpu]+=" $CPU_US"; V[confirm_redis]+=" $REDIS_US"; V[confirm_rps]+=" $RPS"
  stop_service
  rcli flushall >/dev/null
done

# One sweep call releasing 1,000 expired holds, timed by Redis itself (INFO commandstats):
# 1,000 holds placed, the service stopped (so no sweeper runs), 31 s waited, one EVALSHA.
swept="swept-$RANDOM"
start_service "$swept" 30 1000
seq 1 1000 | xargs -P 16 -I{} curl -s -o /dev/null -X POST "http://127.0.0.1:$SERVICE_PORT/api/sale/purchase" \
  -H 'Content-Type: application/json' -d '{"userId":"sweep-{}"}'
stop_service
log "1,000 holds placed ($(field "$swept" held) held); waiting 31 s for them to expire"
sleep 31
SWEEP_SHA=$(lua_script sweep.lua | rcli -x script load)
rcli config resetstat >/dev/null
released=$(rcli evalsha "$SWEEP_SHA" 4 "sale:{$swept}:config" \
  "sale:{$swept}:checkouts" "sale:{$swept}:expiries" "sale:{$swept}:orders" "$swept" 1000 | head -1)
SWEEP_US=$(rcli info commandstats | tr -d '\r' | grep '^cmdstat_evalsha:' | grep -o 'usec=[0-9]*' | cut -d= -f2)
log "one sweep released $released units in $SWEEP_US µs of Redis time"

# A drop of 1,000 units: every unit reserved, 70 % paid, 30 % never; the crowd buys what comes back.
drop="drop-$RANDOM"
start_service "$drop" 30 1000
buy() { curl -s -X POST "http://127.0.0.1:$SERVICE_PORT/api/sale/purchase" -H 'Content-Type: application/json' -d "{\"userId\":\"$1\"}"; }
export -f buy; export SERVICE_PORT
seq 1 1000 | xargs -P 16 -I{} bash -c 'buy first-{}' | grep -o '"orderNumber":[0-9]*' | cut -d: -f2 | sort -n > "$WORK/orders"
head -700 "$WORK/orders" | xargs -P 16 -I{} curl -s -o /dev/null -X POST \
  "http://127.0.0.1:$SERVICE_PORT/api/admin/sales/$drop/orders/{}/confirm" -H "Authorization: Bearer $TOKEN"
log "drop: $(wc -l < "$WORK/orders") reserved, 700 paid; waiting for the other 300 to expire"
sleep 31
# 600 more buyers try until what came back is gone (each tries up to 5 times).
for attempt in 1 2 3 4 5; do
  seq 1 600 | xargs -P 32 -I{} bash -c "buy crowd-{}-try-$attempt" | grep -o '"code":"RESERVED","[^}]*"orderNumber":[0-9]*' \
    | grep -o 'orderNumber":[0-9]*' | cut -d: -f2 >> "$WORK/second" || true
  [ "$(field "$drop" sold)" -ge 1000 ] && break
  sleep 1
done
xargs -P 16 -I{} curl -s -o /dev/null -X POST "http://127.0.0.1:$SERVICE_PORT/api/admin/sales/$drop/orders/{}/confirm" \
  -H "Authorization: Bearer $TOKEN" < "$WORK/second"
stop_service
DROP_CONFIRMED=$(field "$drop" confirmed); DROP_RELEASED=$(field "$drop" released)
DROP_HELD=$(field "$drop" held); DROP_SOLD=$(field "$drop" sold)
DROP_RESOLD=$(wc -l < "$WORK/second")

m() { echo "${V[$1]}" | median; }
echo "checkout costs, $CONNECTIONS connections, ${DURATION} s, medians of $ROUNDS rounds (one Redis, one run)"
echo
echo "| | per second | service CPU µs | Redis CPU µs | service vs purchase | Redis vs purchase |"
echo "|---|---|---|---|---|---|"
echo "| purchase, sale without holds | $(m plain_rps) | $(m plain_cpu) | $(m plain_redis) | 1.00 | 1.00 |"
echo "| reservation, sale with holds | $(m hold_rps) | $(m hold_cpu) | $(m hold_redis) | $(ratio "$(m hold_cpu)" "$(m plain_cpu)") | $(ratio "$(m hold_redis)" "$(m plain_redis)") |"
echo "| confirm (admin API) | $(m confirm_rps) | $(m confirm_cpu) | $(m confirm_redis) | $(ratio "$(m confirm_cpu)" "$(m plain_cpu)") | $(ratio "$(m confirm_redis)" "$(m plain_redis)") |"
echo
echo "one sweep call releasing $released expired holds: $SWEEP_US µs of Redis time ($(awk -v u="$SWEEP_US" -v n="$released" 'BEGIN { printf "%.1f", u / n }') µs per hold)"
echo "drop of 1,000 units, 300 holds never paid: $DROP_RELEASED units released, $DROP_RESOLD resold, $DROP_CONFIRMED confirmed, $DROP_HELD held, $DROP_SOLD sold in the end"
[ "$DROP_CONFIRMED" -eq 1000 ] && [ "$DROP_SOLD" -eq 1000 ] && [ "$DROP_HELD" -eq 0 ] \
  || { echo "the drop did not end with every unit confirmed once" >&2; exit 1; }
