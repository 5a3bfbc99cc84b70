#!/usr/bin/env bash
# A few seconds of each goose scenario with small numbers against a local flashsale (embedded
# Redis, demo sale of 100 units; a second one with a waiting room), each checking the
# invariants, and five seconds of the Artillery drop with its verdict: keeps the load tools from
# rotting, proves their verdicts can fail (against loadtest/broken/oversell.py), and that they
# stay true on a correct service whose Redis freezes mid-run.
# Run by scripts/check (and so by CI). Usage: loadtest/smoke.sh [path/to/flashsale]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SERVICE=${1:-target/debug/flashsale}
[ -x "$SERVICE" ] || cargo build --quiet --bin flashsale
(cd loadtest/goose && cargo build --quiet --bins)
LOAD=loadtest/goose/target/debug/flashsale-load

# Every instance runs its scripts with the key check (README, Configuration).
PORT=$((20000 + RANDOM % 10000))
LOG=$(mktemp)
env -i PATH="$PATH" REDIS_SCRIPT_KEY_CHECK=true HOST=127.0.0.1 PORT="$PORT" RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json "$SERVICE" >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
# Polls a URL until it answers 2xx, for at most ten seconds.
wait_for() {
  for _ in $(seq 1 200); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
}
wait_for "http://127.0.0.1:$PORT/health/ready"
HOST="http://127.0.0.1:$PORT"

# The demo sale has 100 units: 40 go to the retry storm, the other 60 to the burst of 200
# buyers, and the steady pollers find it sold out. Each run exits non-zero unless every
# invariant holds.
passed=0 failed=0
scenario() {
  echo "== goose smoke: $*"
  if "$LOAD" "$@" --host "$HOST" >"$LOG.run" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
  sed -n '/=== flashsale invariants/,$p' "$LOG.run"
}
scenario retry-storm --buyers 40 --users 8
scenario flash-burst --buyers 200 --users 16
scenario steady --buyers 20 --users 10 --run-time 3
# A second instance whose demo sale (100 units) has a waiting room letting 20 buyers in a
# second: 150 buyers join, wait on the queue stream and buy when admitted; the buyers must be
# exactly the first places.
ROOM_PORT=$((PORT + 1))
env -i PATH="$PATH" REDIS_SCRIPT_KEY_CHECK=true HOST=127.0.0.1 PORT="$ROOM_PORT" RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json \
  SSE_MAX_STREAMS_PER_CLIENT=1000 \
  SALE_WAITING_ROOM_ADMIT_PER_SECOND=20 WAITING_ROOM_SECRET=smoke-waiting-room-secret-0123456789 \
  "$SERVICE" >"$LOG.room" 2>&1 &
ROOM_PID=$!
trap 'kill -TERM $PID $ROOM_PID 2>/dev/null || true; wait $PID $ROOM_PID 2>/dev/null || true; rm -f "$LOG" "$LOG.room"' EXIT
wait_for "http://127.0.0.1:$ROOM_PORT/health/ready"
HOST_WAS=$HOST; HOST="http://127.0.0.1:$ROOM_PORT"
scenario waiting-room --buyers 150 --users 32
HOST=$HOST_WAS
# The verdict must be able to fail: against a server that sells past its stock
# (loadtest/broken/oversell.py), a burst must end INVARIANTS VIOLATED and a non-zero exit.
BROKEN_PORT=$((PORT + 2))
python3 loadtest/broken/oversell.py "$BROKEN_PORT" 100 &
BROKEN_PID=$!
trap 'kill -TERM $PID $ROOM_PID $BROKEN_PID 2>/dev/null || true; wait $PID $ROOM_PID $BROKEN_PID 2>/dev/null || true; rm -f "$LOG" "$LOG.room"' EXIT
wait_for "http://127.0.0.1:$BROKEN_PORT/api/sale/status"
echo "== goose smoke: flash-burst against a server that oversells (must fail)"
if "$LOAD" flash-burst --buyers 200 --users 16 --host "http://127.0.0.1:$BROKEN_PORT" >"$LOG.run" 2>&1; then
  echo "the broken server passed: the verdict cannot fail"
  failed=$((failed + 1))
else
  passed=$((passed + 1))
fi
sed -n '/=== flashsale invariants/,$p' "$LOG.run"
# Artillery's drop, five seconds of it, with its verdict (loadtest/artillery/run.sh): correct on
# the service (an instance of its own, 50 units), wrong on the server that oversells,
# inconclusive when the per-IP limit refused most purchases (limit on, 50 units).
artillery() {
  local want=$1 target=$2
  echo "== artillery smoke: $target (must end $want)"
  local got=0
  bash loadtest/artillery/run.sh "$target" smoke >"$LOG.run" 2>&1 || got=$?
  sed -n '/flashsale verdict/,$p' "$LOG.run"
  if [ "$got" -eq "$want" ]; then passed=$((passed + 1)); else
    echo "(exit $got, wanted $want)"; cat "$LOG.run"; failed=$((failed + 1)); fi
}
ART_PORT=$((PORT + 3)) LIMITED_PORT=$((PORT + 4))
env -i PATH="$PATH" REDIS_SCRIPT_KEY_CHECK=true HOST=127.0.0.1 PORT="$ART_PORT" RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json \
  SALE_TOTAL_STOCK=50 "$SERVICE" >"$LOG.art" 2>&1 &
ART_PID=$!
env -i PATH="$PATH" REDIS_SCRIPT_KEY_CHECK=true HOST=127.0.0.1 PORT="$LIMITED_PORT" RATE_LIMIT_PER_SECOND=5 LOG_FORMAT=json \
  SALE_TOTAL_STOCK=50 "$SERVICE" >"$LOG.limited" 2>&1 &
LIMITED_PID=$!
trap 'kill -TERM $PID $ROOM_PID $BROKEN_PID $ART_PID $LIMITED_PID 2>/dev/null || true; wait $PID $ROOM_PID $BROKEN_PID $ART_PID $LIMITED_PID 2>/dev/null || true; rm -f "$LOG" "$LOG".*' EXIT
wait_for "http://127.0.0.1:$ART_PORT/health/ready"
wait_for "http://127.0.0.1:$LIMITED_PORT/health/ready"
artillery 0 "http://127.0.0.1:$ART_PORT"
artillery 1 "http://127.0.0.1:$BROKEN_PORT"
artillery 2 "http://127.0.0.1:$LIMITED_PORT"

# A correct service under a fault must still be judged correct. An instance whose embedded
# Redis is frozen (SIGSTOP) for 1.5 s once the drop is under way: with REDIS_TIMEOUT_MS=300 the
# purchases waiting on it are answered 503, and Redis decides them when it thaws, so units
# leave the stock that no buyer was told about. Each tool must count them as unknown outcomes
# (never a loss, never an oversell) and end CORRECT / INVARIANTS HOLD.
FAULT_PORT=$((PORT + 5))
env -i PATH="$PATH" REDIS_SCRIPT_KEY_CHECK=true HOST=127.0.0.1 PORT="$FAULT_PORT" RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json \
  REDIS_TIMEOUT_MS=300 SALE_TOTAL_STOCK=1000 "$SERVICE" >"$LOG.fault" 2>&1 &
FAULT_PID=$!
trap 'kill -CONT "${FROZEN:-0}" 2>/dev/null || true; kill -TERM $PID $ROOM_PID $BROKEN_PID $ART_PID $LIMITED_PID $FAULT_PID 2>/dev/null || true; wait $PID $ROOM_PID $BROKEN_PID $ART_PID $LIMITED_PID $FAULT_PID 2>/dev/null || true; rm -f "$LOG" "$LOG".*' EXIT
wait_for "http://127.0.0.1:$FAULT_PORT/health/ready"
FROZEN=$(grep -o '"redis_pid":[0-9]*' "$LOG.fault" | head -1 | cut -d: -f2)
# Waits (at most 10 s) until the sale's remaining stock is below $1, then freezes the
# instance's Redis for 1.5 s and thaws it.
freeze_when_below() {
  local remaining=""
  for _ in $(seq 1 400); do
    remaining=$(curl -fs "http://127.0.0.1:$FAULT_PORT/api/sale/status" \
      | grep -o '"remainingStock":[0-9]*' | cut -d: -f2) || true
    [ -n "$remaining" ] && [ "$remaining" -lt "$1" ] && break
    sleep 0.025
  done
  kill -STOP "$FROZEN"; sleep 1.5; kill -CONT "$FROZEN"
  echo "(froze Redis for 1.5 s at $remaining units left)"
}
# Passes when the run's output shows at least one purchase without an answer (the fault bit).
unknown_outcomes() {
  grep -Eq "$1" "$LOG.run" && return 0
  echo "(the freeze left no purchase without an answer: the fault was not exercised)"; return 1
}
echo "== artillery smoke: Redis frozen for 1.5 s mid-drop (must end 0, with purchases unanswered)"
freeze_when_below 990 >"$LOG.freeze" &
got=0
bash loadtest/artillery/run.sh "http://127.0.0.1:$FAULT_PORT" smoke >"$LOG.run" 2>&1 || got=$?
wait $! || true
cat "$LOG.freeze"; sed -n '/flashsale verdict/,$p' "$LOG.run"
if [ "$got" -eq 0 ] && unknown_outcomes 'no answer +[1-9]'; then passed=$((passed + 1)); else
  echo "(exit $got)"; cat "$LOG.run"; failed=$((failed + 1)); fi
echo "== goose smoke: flash-burst with Redis frozen for 1.5 s mid-burst (must hold, with buyers unanswered)"
before=$(curl -fs "http://127.0.0.1:$FAULT_PORT/api/sale/status" | grep -o '"remainingStock":[0-9]*' | cut -d: -f2)
freeze_when_below $((before - 10)) >"$LOG.freeze" &
got=0
"$LOAD" flash-burst --buyers 600 --users 16 --host "http://127.0.0.1:$FAULT_PORT" >"$LOG.run" 2>&1 || got=$?
wait $! || true
cat "$LOG.freeze"; sed -n '/=== flashsale invariants/,$p' "$LOG.run"
if [ "$got" -eq 0 ] && unknown_outcomes '[1-9][0-9]* buyers without an answer'; then passed=$((passed + 1)); else
  echo "(exit $got)"; failed=$((failed + 1)); fi
rm -f "$LOG.run" "$LOG.freeze"
# The open-loop generator of loadtest/bench: one second at 200 requests/s, every one answered.
echo "== openloop smoke"
out=$(loadtest/goose/target/debug/openloop "$HOST" 200 1 smoke-open 64)
echo "$out"
if echo "$out" | grep -q '"sent":200,"ok":200,"errors":0'; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "goose smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
