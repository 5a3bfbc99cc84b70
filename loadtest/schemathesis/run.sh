#!/usr/bin/env bash
# Fuzzes the whole API (public and admin routes) against its own OpenAPI document with
# schemathesis, for at most MAX_TIME seconds: no 5xx, every answer conforming to the document.
# Usage: loadtest/schemathesis/run.sh [path/to/flashsale [schemathesis options]]
#        (default target/debug/flashsale); SERVICE_LOG=info logs every request to the log file.
# The event streams are left out: they never end, and a fuzzer waits for a whole answer.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/target/debug/flashsale}
shift $(( $# > 0 ? 1 : 0 )) # the rest goes to schemathesis (e.g. --seed N)
MAX_TIME=${MAX_TIME:-110}
PORT=${PORT:-18095}
TOKEN=schemathesis-admin-token-$RANDOM$RANDOM
# The service's warnings and errors go here, and are printed if the run fails.
LOG=${LOG:-$ROOT/target/schemathesis-service.log}

# schemathesis from PyPI into a virtual environment of the repository's (Debian's own pip refuses
# to install into the system Python), unless one is on PATH already.
if command -v st >/dev/null 2>&1; then
  ST=$(command -v st)
else
  VENV=$ROOT/target/py-venv
  [ -x "$VENV/bin/st" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet \
    --disable-pip-version-check schemathesis==4.32.5; }
  ST=$VENV/bin/st
fi

# Local mode: the service starts its own redis-server, with a demo sale (with checkout holds and
# up to three units per buyer, so the checkout routes have orders to find).
# The waiting-room secret lets the fuzzer create sales with a room and join their queues.
# Every script checks its keys are in KEYS (a 500 would fail the fuzz).
# The limits are off: all the fuzzer's requests come from one address, and its auth checks
# send wrong tokens on purpose.
REDIS_SCRIPT_KEY_CHECK=true HOST=127.0.0.1 PORT=$PORT ADMIN_TOKEN=$TOKEN STRIPE_WEBHOOK_SECRET=whsec_schemathesis_0123456789 WAITING_ROOM_SECRET=schemathesis-waiting-room-secret-0123456789 SALE_HOLD_SECONDS=60 SALE_MAX_PER_BUYER=3 RATE_LIMIT_PER_SECOND=0 TOKEN_FAILURES_PER_MINUTE=0 LOG_FORMAT=json \
  RUST_LOG=${SERVICE_LOG:-warn} "$BIN" >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

cd "$(dirname "$0")" # schemathesis.toml
status=0
$ST run "http://127.0.0.1:$PORT/api/openapi.json" --checks all \
  -H "Authorization: Bearer $TOKEN" --max-examples 25 --max-time "$MAX_TIME" \
  --request-timeout 5 --exclude-path-regex 'events$' --no-color "$@" || status=$?
if [ "$status" != 0 ]; then
  # The 4xx answers the fuzzer provokes are logged as warnings too: left out here.
  echo "--- the service's errors and other warnings ($LOG):"
  grep -v '"level":"WARN","message":"Error encountered while processing the incoming HTTP request' \
    "$LOG" | tail -n 50
fi
exit "$status"
