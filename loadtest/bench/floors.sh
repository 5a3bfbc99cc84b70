#!/usr/bin/env bash
# flashsale against the floor servers (loadtest/bench/floor.rs), side by side in one run on one
# machine (README, Benchmarks: against the floors):
#   - floor-http: actix-web 4 answering a purchase-sized JSON body;
#   - floor-redis: the same plus one EVALSHA of a one-command script (INCR) through fred 10;
#   - flashsale purchases (release build, RATE_LIMIT_PER_SECOND=0), batching on (the default)
#     and off (PURCHASE_BATCH_MAX=1), with checkout holds on (SALE_HOLD_SECONDS=600), with the
#     waiting room on (every buyer sends an admission signed beforehand by admissions.py, so
#     the service checks its HMAC and the script its expiry), and a request after sell-out (a
#     sale of one unit, every request a new buyer).
# wrk drives every target with the same script (a new buyer per request) at each connection
# count; per target: requests/s, the target's CPU and Redis's CPU per request (µs, from
# /proc), each also as a ratio to floor-redis measured in the same round; medians of ROUNDS
# interleaved rounds. For flashsale also the mean batch (its /metrics) and the purchases one
# Redis primary can decide per CPU-second (1 / Redis CPU per purchase).
# Writes loadtest/bench/floors.md and prints it.
#
# Knobs: DURATION (s per measurement, 10), ROUNDS (3), CONNECTIONS ("64 256"),
# REDIS_PORT/SERVICE_PORT (16390/18090), TARGETS (all of the above, space-separated names).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-"64 256"}
REDIS_PORT=${REDIS_PORT:-16390}
SERVICE_PORT=${SERVICE_PORT:-18090}
TARGETS=${TARGETS:-"floor-http floor-redis flashsale flashsale-batch1 flashsale-holds flashsale-room flashsale-soldout"}
OUT=${OUT:-loadtest/bench/floors.md}
case " $TARGETS " in
  *" floor-redis "*) ;;
  *) echo "TARGETS must include floor-redis: every figure is reported as a ratio to it" >&2; exit 2 ;;
esac
RUN=$(date +%s)
# Signs the room-on target's admissions (loadtest/bench/admissions.py); a bench secret only,
# given to every flashsale target (an instance refuses to start without it once a sale in its
# Redis has a room, and it costs nothing where no room is on).
ROOM_SECRET=bench-room-secret-$RUN-0123456789abcdef
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh
prepare_floor_bench

# One measurement: sets RPS CPU_US REDIS_US NON_2XX BATCH.
measure_target() { # name connections round
  local name=$1 c=$2 sale="$1-$RUN-$2-$3" out requests cpu0 rcpu0 cpu1 rcpu1
  local script=loadtest/bench/purchase.lua warm=() main=()
  if [ "$name" = flashsale-room ]; then
    # Every buyer comes with the admission the room would have given them, signed beforehand
    # (120,000 a second across wrk's two threads: room for this VM's fastest stretch, which
    # sold 50,000 a second; past them buyers repeat, answered 409, and the run stops).
    script=loadtest/bench/purchase_room.lua
    python3 loadtest/bench/admissions.py "$ROOM_SECRET" "$sale" "w$sale" 2 120000 "$WORK/warm"
    python3 loadtest/bench/admissions.py "$ROOM_SECRET" "$sale" "m$sale" 2 $((DURATION * 60000)) "$WORK/main"
    warm=("$WORK/warm") main=("$WORK/main")
  fi
  start_target "$name" "$sale"
  wrk -t2 -c"$c" -d2s -s "$script" "http://127.0.0.1:$SERVICE_PORT" -- "w$sale" "${warm[@]}" >/dev/null
  cpu0=$(cpu_ticks "$SERVICE_PID"); rcpu0=$(cpu_ticks "$REDIS_PID")
  out=$(wrk -t2 -c"$c" -d"${DURATION}s" -s "$script" "http://127.0.0.1:$SERVICE_PORT" -- "m$sale" "${main[@]}" | tail -1)
  cpu1=$(cpu_ticks "$SERVICE_PID"); rcpu1=$(cpu_ticks "$REDIS_PID")
  BATCH=$(mean_batch)
  kill -TERM "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true
  requests=$(echo "$out" | json_field requests)
  RPS=$(awk -v n="$requests" -v s="$DURATION" 'BEGIN { printf "%.0f", n / s }')
  CPU_US=$(awk -v t=$(( (cpu1 - cpu0) * TICK_US )) -v n="$requests" 'BEGIN { printf "%.1f", t / n }')
  REDIS_US=$(awk -v t=$(( (rcpu1 - rcpu0) * TICK_US )) -v n="$requests" 'BEGIN { printf "%.1f", t / n }')
  NON_2XX=$(echo "$out" | json_field non_2xx)
  # Every request of a purchase target is a new buyer who buys: an answer that is not 2xx (a
  # buyer repeated once the room's admissions ran out, an error) would put cheaper or failed
  # requests in its figures, so the run stops instead of reporting them.
  if [ "$name" != flashsale-soldout ] && [ "${NON_2XX:-0}" != 0 ]; then
    echo "$name at $c connections: $NON_2XX answers were not 2xx; its figures would not be purchases'" >&2
    exit 1
  fi
}

ROWS=()
for C in $CONNECTIONS; do
  declare -A V=()
  for R in $(seq 1 "$ROUNDS"); do
    for T in $TARGETS; do
      log "round $R/$ROUNDS, $C connections: $T"
      measure_target "$T" "$C" "$R"
      V[${T}_rps]+=" $RPS"; V[${T}_cpu]+=" $CPU_US"; V[${T}_redis]+=" $REDIS_US"
      V[${T}_batch]+=" $BATCH"; V[${T}_non2xx]+=" ${NON_2XX:-0}"
    done
  done
  m() { echo "${V[$1]:-}" | median; }
  FR_RPS=$(m floor-redis_rps); FR_CPU=$(m floor-redis_cpu); FR_REDIS=$(m floor-redis_redis)
  for T in $TARGETS; do
    redis_us=$(m "${T}_redis")
    per_sec=$(awk -v u="$redis_us" 'BEGIN { if (u > 0) printf "%.0f", 1000000 / u; else print "–" }')
    batch=$(echo "${V[${T}_batch]}" | tr ' ' '\n' | grep -v '^$' | grep -v '–' || true)
    [ -n "$batch" ] && batch=$(echo "$batch" | median)
    ROWS+=("| $T | $C | $(m "${T}_rps") | $(m "${T}_cpu") | $redis_us | $(ratio "$(m "${T}_rps")" "$FR_RPS") | $(ratio "$(m "${T}_cpu")" "$FR_CPU") | $(ratio "$redis_us" "$FR_REDIS") | $per_sec | ${batch:-–} |${V[${T}_non2xx]} |")
  done
  unset V
done

{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, load generator included: wrk -t2, ${DURATION}s per measurement after a 2 s warm-up, every request a new buyer; median of $ROUNDS interleaved rounds. Ratios are to floor-redis in the same run."
  echo
  echo "| target | connections | requests/s | service CPU µs/request | Redis CPU µs/request | requests/s vs floor-redis | service CPU vs floor-redis | Redis CPU vs floor-redis | requests per Redis CPU-second | mean batch | non-2xx per round |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$OUT"
