#!/usr/bin/env bash
# Instructions per purchase of flashsale against floor-redis (loadtest/bench/floor.rs), counted
# by callgrind and split by component (README, Benchmarks: where the service's instructions go).
# Instructions, unlike CPU time, do not move with a noisy VM, so a change to the purchase path
# can be judged on them run to run.
#
# Each target runs under `valgrind --tool=callgrind` twice, driven by `wrk -t1 -c8` with a new
# buyer per request for SHORT and then LONG seconds; the difference of the two profiles is the
# requests in between, with start-up, warm-up and shutdown cancelled out
# (loadtest/bench/instructions.py). flashsale runs with one HTTP worker (REDIS_POOL_SIZE=1),
# RATE_LIMIT_PER_SECOND=0 and JSON logs, as floors.sh runs it otherwise; floor-redis as
# floors.sh runs it. Callgrind counts a `rep stosb` once per byte: actix-http's request decoder
# zeroes a 3 KB array that way several times a request, which both targets pay alike.
# Needs valgrind (apt-get install valgrind) and python3. Appends the table to
# loadtest/bench/instructions.md and prints it.
#
# Knobs: SHORT (s, 3), LONG (s, 13), REDIS_PORT/SERVICE_PORT (16394/18094).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SHORT=${SHORT:-3}
LONG=${LONG:-13}
REDIS_PORT=${REDIS_PORT:-16394}
SERVICE_PORT=${SERVICE_PORT:-18094}
OUT=${OUT:-loadtest/bench/instructions.md}
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 2; }
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh
prepare_floor_bench
RUN=$(date +%s)

# One profile: target, seconds of load; writes $WORK/<name>.out and sets REQUESTS (answered) and
# BATCH (the mean batch so far, "–" for floor-redis).
profile() { # target name seconds
  local target=$1 name=$2 seconds=$3 env=() cmd out non_2xx
  case "$target" in
    floor-redis) cmd=("$FLOOR" redis "$SERVICE_PORT" "redis://127.0.0.1:$REDIS_PORT") ;;
    flashsale)
      # The environment goes before valgrind: callgrind does not follow `env`'s exec.
      env=(env -i PATH="$PATH" HOST=127.0.0.1 PORT="$SERVICE_PORT"
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SALE_ID="$name-$RUN" SALE_TOTAL_STOCK=2000000
        RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json REDIS_POOL_SIZE=1 REDIS_TIMEOUT_MS=20000)
      cmd=("$BIN") ;;
  esac
  "${env[@]}" valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.out" "${cmd[@]}" \
    >>"$WORK/$target.log" 2>&1 &
  SERVICE_PID=$!; PIDS+=("$SERVICE_PID")
  # Under callgrind start-up takes seconds.
  wait_port "$SERVICE_PORT" 60
  out=$(wrk -t1 -c8 -d"${seconds}s" -s loadtest/bench/purchase.lua \
    "http://127.0.0.1:$SERVICE_PORT" -- "$name-$RUN" | tail -1)
  BATCH=$(mean_batch)
  kill -INT "$SERVICE_PID"
  wait "$SERVICE_PID" 2>/dev/null || true
  REQUESTS=$(json_field requests <<<"$out")
  non_2xx=$(json_field non_2xx <<<"$out")
  if [ -z "$REQUESTS" ] || [ "${non_2xx:-1}" != 0 ] || [ ! -s "$WORK/$name.out" ]; then
    echo "$target: the run failed ($out); the log ends:" >&2
    tail -n 5 "$WORK/$target.log" >&2
    exit 1
  fi
}

ARGS=()
for target in floor-redis flashsale; do
  log "$target under callgrind: ${SHORT}s, then ${LONG}s"
  profile "$target" "$target-short" "$SHORT"
  short=$REQUESTS
  profile "$target" "$target-long" "$LONG"
  long=$REQUESTS
  ARGS+=("$target" "$WORK/$target-short.out" "$WORK/$target-long.out" "$short" "$long")
done
{
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ): instructions per request under callgrind (wrk -t1 -c8, every request a new buyer; a ${LONG}s run less a ${SHORT}s run), by component, in thousands; flashsale's mean batch in its ${LONG}s run: $BATCH."
  echo
} >>"$OUT"
python3 loadtest/bench/instructions.py "$OUT" "${ARGS[@]}"
