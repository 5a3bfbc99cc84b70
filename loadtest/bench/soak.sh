#!/usr/bin/env bash
# A soak of everything that runs beside the purchase path (README, Benchmarks: a soak with
# holds, webhooks and live streams): one instance with checkout holds of HOLD seconds and order
# webhooks to a local receiver (loadtest/bench/receiver.py, which checks every signature), sent
# new buyers by `openloop` at RATE a second for DURATION seconds, while STREAMS clients at a
# time open the sale's live status stream, hold it 1 to 3 seconds and go. So holds are placed,
# expire and are swept, every order event is delivered, and watchers start and stop all run
# long. The service's resident memory (VmRSS) and Redis's are read every STEP seconds; the
# service's growth over the second half is the measure, as in rss.sh (Redis keeps every order
# by design, so its memory grows with them).
#
# The run fails unless, at the end: every purchase was answered, and each a new order
# (orderSeq = requests sent); every hold expired and was released within HOLD + 30 seconds of
# the load's end (none is confirmed: released = orderSeq, held = sold = 0), and no order lost
# or counted twice; every event of the order stream was then delivered (the receiver's
# distinct event ids = the stream's length, within 60 s more), each correctly signed; and live
# streams were served.
# With FREEZE set, Redis is frozen (SIGSTOP) for that many seconds a third into the run, then
# thawed (so the second half shows whether the service settles again):
# purchases sent meanwhile may be answered 503 (their outcome unknown: Redis runs a script it
# already read once thawed), so then every purchase answered 2xx must have its order and no more
# orders than purchases may exist, and the purchases after the thaw must succeed again (at most
# RATE x (FREEZE + 5) answers not 2xx); the rest is checked as above, on the same instance,
# never restarted.
# Writes loadtest/bench/soak.md and prints it.
#
# Knobs: DURATION (s, 300), STEP (s, 15), RATE (purchases/s, 1000), HOLD (s, 30: the shortest
# hold a sale takes), STREAMS (8), FREEZE (s, 0), REDIS_PORT/SERVICE_PORT/RECEIVER_PORT
# (16396/18096/18097).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-300}
STEP=${STEP:-15}
RATE=${RATE:-1000}
HOLD=${HOLD:-30}
STREAMS=${STREAMS:-8}
FREEZE=${FREEZE:-0}
REDIS_PORT=${REDIS_PORT:-16396}
SERVICE_PORT=${SERVICE_PORT:-18096}
RECEIVER_PORT=${RECEIVER_PORT:-18097}
OUT=${OUT:-loadtest/bench/soak.md}
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh
need_two_steps "$DURATION" "$STEP"
work_dir
prepare_service_bench
log "building openloop (release)"
(cd loadtest/goose && cargo build --release --quiet --bin openloop)
start_redis "$WORK/redis.log"
redis_kb() { rcli info memory | awk -F: '/^used_memory:/ { printf "%d", $2 / 1024 }'; }
fail() { echo "soak: $*" >&2; exit 1; }

SECRET=soak-webhook-secret-$RANDOM$RANDOM
python3 loadtest/bench/receiver.py "$RECEIVER_PORT" "$SECRET" >"$WORK/receiver.log" 2>&1 &
PIDS+=("$!")
received() { curl -fs "http://127.0.0.1:$RECEIVER_PORT/" || echo "0 0 0"; }
SALE=soak-$(date +%s)
env -i PATH="$PATH" HOST=127.0.0.1 PORT="$SERVICE_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
  SALE_ID="$SALE" SALE_TOTAL_STOCK=$((RATE * DURATION * 2)) SALE_HOLD_SECONDS="$HOLD" \
  RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json ORDER_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/hook" \
  ORDER_WEBHOOK_SECRET="$SECRET" target/release/flashsale >"$WORK/flashsale.log" 2>&1 &
SERVICE_PID=$!; PIDS+=("$SERVICE_PID")
wait_ready "$SERVICE_PORT"
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$RECEIVER_PORT/" >/dev/null && break; sleep 0.1; done

log "soak: ${DURATION}s of $RATE purchases/s, holds of ${HOLD}s, webhooks, $STREAMS live streams at a time"
idle=$(rss_kb "$SERVICE_PID")
loadtest/goose/target/release/openloop "http://127.0.0.1:$SERVICE_PORT" "$RATE" "$DURATION" "$SALE" \
  >"$WORK/openloop.json" 2>"$WORK/openloop.err" &
LOAD_PID=$!
# Live streams: STREAMS at a time, each held 1 to 3 seconds; each one's output kept to count
# the streams that were sent the sale's status.
mkdir -p "$WORK/streams"
(
  end=$((SECONDS + DURATION)); round=0
  while ((SECONDS < end)); do
    round=$((round + 1))
    for i in $(seq 1 "$STREAMS"); do
      curl -s -N --max-time $((1 + i % 3)) "http://127.0.0.1:$SERVICE_PORT/api/sale/events" \
        >"$WORK/streams/$round-$i" 2>/dev/null &
    done
    wait
  done
) &
CHURN_PID=$!; PIDS+=("$CHURN_PID")
if ((FREEZE > 0)); then
  (sleep $((DURATION / 3)); log "Redis frozen for ${FREEZE}s"; kill -STOP "$REDIS_PID"
    sleep "$FREEZE"; kill -CONT "$REDIS_PID"; log "Redis thawed") &
  PIDS+=("$!")
fi

SAMPLES=(); REDIS_SAMPLES=()
for ((t = STEP; t <= DURATION; t += STEP)); do
  sleep "$STEP"
  SAMPLES+=("$(rss_kb "$SERVICE_PID")")
  REDIS_SAMPLES+=("$(redis_kb)")
  log "${t}s: service $(mib "${SAMPLES[-1]}") MiB, Redis $(mib "${REDIS_SAMPLES[-1]}") MiB, delivered (distinct, all, refused) $(received)"
done
wait "$LOAD_PID" || fail "openloop failed: $(cat "$WORK/openloop.err")"
wait "$CHURN_PID" || true
load=$(cat "$WORK/openloop.json")
sent=$(json_field sent <<<"$load"); ok=$(json_field ok <<<"$load"); errors=$(json_field errors <<<"$load")

# No order is confirmed, so every hold expires: within HOLD seconds (and a sweep) of the load's
# end none is held, and no event is added to the order stream after that.
for _ in $(seq 1 $(((HOLD + 30) * 2))); do
  [ "$(field "$SALE" held)" = 0 ] && break
  sleep 0.5
done
# Every event delivered: the receiver's distinct ids reach the stream's length.
events=$(rcli xlen "sale:{$SALE}:orders")
for _ in $(seq 1 120); do
  read -r distinct deliveries refused <<<"$(received)"
  ((distinct >= events)) && break
  sleep 0.5
done
read -r distinct deliveries refused <<<"$(received)"
read -r sold held confirmed released orders <<<"$(rcli hmget "sale:{$SALE}:config" sold held confirmed released orderSeq | tr '\n' ' ')"
streams=$(find "$WORK/streams" -type f | wc -l)
served=$(grep -l '^event: status' "$WORK/streams"/* 2>/dev/null | wc -l)
end_rss=$(rss_kb "$SERVICE_PID")
stop_service

if ((FREEZE == 0)); then
  ((errors == 0 && ok == sent)) || fail "$errors of $sent purchases failed"
  ((orders == sent)) || fail "$orders orders for $sent new buyers"
else
  ((ok + errors == sent && errors <= RATE * (FREEZE + 5))) ||
    fail "$errors of $sent purchases failed around a ${FREEZE}s freeze"
  ((orders >= ok && orders <= sent)) || fail "$orders orders for $ok purchases answered 2xx of $sent"
fi
((held == 0 && released == orders && sold == 0 && confirmed == 0)) ||
  fail "orders do not add up: held $held, released $released, sold $sold, confirmed $confirmed, orders $orders"
((distinct == events)) || fail "$distinct of $events order events delivered"
((refused == 0)) || fail "the receiver refused $refused deliveries: their signatures did not match"
((served > 0 && served * 10 >= streams * 9)) || fail "only $served of $streams live streams were sent a status"

n=${#SAMPLES[@]}
{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores: one instance, \`openloop\` at $RATE new buyers a second for ${DURATION}s$( ((FREEZE > 0)) && echo ", Redis frozen for ${FREEZE}s at a third of the run"), holds of ${HOLD}s, order webhooks to loadtest/bench/receiver.py, $STREAMS live status streams at a time held 1 to 3 s; RSS (VmRSS, MiB) every ${STEP}s; the second half is from $((STEP * (n / 2)))s to $((STEP * n))s."
  echo
  echo "| purchases | not 2xx | orders | p99 ms | holds released (expired) | order events delivered (distinct / deliveries) | live streams served | RSS idle | at ${STEP}s | at half time | at the end | largest | second half growth MiB | second half growth % | Redis used memory at the end MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  echo "| $sent | $errors | $orders | $(json_field p99_ms <<<"$load") | $released | $distinct / $deliveries of $events | $served of $streams | $(mib "$idle") | $(rss_cells "${SAMPLES[@]}") | $(mib "${REDIS_SAMPLES[-1]}") |"
  echo
  echo "Service RSS every ${STEP}s: $(mib_list "${SAMPLES[@]}")(after the load and its deliveries: $(mib "$end_rss"))."
} | tee "$OUT"
