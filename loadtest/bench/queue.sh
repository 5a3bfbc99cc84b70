#!/usr/bin/env bash
# What the waiting room costs (README, Waiting room): in one run against one Redis, the service
# and Redis CPU per purchase of a sale without a room (the reference) and of a sale with one
# (each purchase carrying a valid admission, checked by the service), and per join; then the
# medians and the ratios of the room's figures to the reference's.
#
#   bash loadtest/bench/queue.sh
#
# Knobs: ROUNDS (3), DURATION (s, 8), CONNECTIONS (64), REDIS_PORT/SERVICE_PORT (16381/18082).
# Takes about two minutes. wrk runs 2 threads, so each thread takes every other admission line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-64}
REDIS_PORT=${REDIS_PORT:-16381}
SERVICE_PORT=${SERVICE_PORT:-18082}
SECRET=bench-waiting-room-secret-0123456789abcdef
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh
work_dir
prepare_service_bench

start_redis "$WORK/redis.log"

SERVICE_PID=
start_service() { # saleId admitPerSecond (0 = no room)
  env -i PATH="$PATH" HOST=127.0.0.1 PORT="$SERVICE_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    SALE_ID="$1" SALE_TOTAL_STOCK=5000000 SALE_WAITING_ROOM_ADMIT_PER_SECOND="$2" \
    WAITING_ROOM_SECRET="$SECRET" RATE_LIMIT_PER_SECOND=0 USER_ATTEMPT_LIMIT=0 LOG_FORMAT=json \
    RUST_LOG=warn "$BIN" >>"$WORK/service.log" 2>&1 &
  SERVICE_PID=$!; PIDS+=("$SERVICE_PID")
  wait_ready "$SERVICE_PORT"
}
# Admissions as the service signs them (README, Waiting room): "<expiresMs>.<hex HMAC-SHA256 of
# admission\nsale\nuser\nexpiresMs>", valid for an hour; the bench holds the secret.
admissions() { # saleId count file
  python3 - "$1" "$2" "$3" "$SECRET" <<'PY'
import hashlib, hmac, sys, time
sale, count, path, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
expires = int(time.time() * 1000) + 3_600_000
with open(path, "w") as out:
    for n in range(count):
        user = f"a{n}"
        tag = hmac.new(secret, f"admission\n{sale}\n{user}\n{expires}".encode(), hashlib.sha256).hexdigest()
        out.write(f"{user} {expires}.{tag}\n")
PY
}

declare -A V=()
for R in $(seq 1 "$ROUNDS"); do
  off="off-$R-$RANDOM"; on="on-$R-$RANDOM"
  start_service "$off" 0
  measure "$off" purchase.lua sold "p$off"
  stop_service
  log "round $R purchase, no room: $RPS/s, service $CPU_US µs, Redis $REDIS_US µs"
  V[off_cpu]+=" $CPU_US"; V[off_redis]+=" $REDIS_US"; V[off_rps]+=" $RPS"

  # A room letting 100,000 a second in: every buyer below holds a valid admission.
  start_service "$on" 100000
  admissions "$on" 600000 "$WORK/admissions"
  measure "$on" queue.lua sold buy "$WORK/admissions"
  log "round $R purchase with the room on: $RPS/s, service $CPU_US µs, Redis $REDIS_US µs (non-2xx: $NON_2XX)"
  V[on_cpu]+=" $CPU_US"; V[on_redis]+=" $REDIS_US"; V[on_rps]+=" $RPS"
  measure "$on" queue.lua room/seq join "j$on"
  log "round $R join: $RPS/s, service $CPU_US µs, Redis $REDIS_US µs (non-2xx: $NON_2XX)"
  V[join_cpu]+=" $CPU_US"; V[join_redis]+=" $REDIS_US"; V[join_rps]+=" $RPS"
  stop_service
  rcli flushall >/dev/null
done

m() { echo "${V[$1]}" | median; }
echo
echo "Medians of $ROUNDS rounds, $CONNECTIONS connections, ${DURATION} s each, every request a new buyer:"
printf '| %-38s | %9s | %18s | %16s |\n' "" "per s" "service CPU µs/op" "Redis CPU µs/op"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..40})" "-----------" "--------------------" "------------------"
printf '| %-38s | %9s | %18s | %16s |\n' "purchase, no room (reference)" "$(m off_rps)" "$(m off_cpu)" "$(m off_redis)"
printf '| %-38s | %9s | %18s | %16s |\n' "purchase with an admission, room on" "$(m on_rps)" "$(m on_cpu)" "$(m on_redis)"
printf '| %-38s | %9s | %18s | %16s |\n' "join" "$(m join_rps)" "$(m join_cpu)" "$(m join_redis)"
echo
echo "room on / off: requests/s $(ratio "$(m on_rps)" "$(m off_rps)"), service CPU $(ratio "$(m on_cpu)" "$(m off_cpu)"), Redis CPU $(ratio "$(m on_redis)" "$(m off_redis)")"
echo "join / purchase (no room): service CPU $(ratio "$(m join_cpu)" "$(m off_cpu)"), Redis CPU $(ratio "$(m join_redis)" "$(m off_redis)")"
