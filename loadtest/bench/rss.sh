#!/usr/bin/env bash
# The service's memory over a long run (README, Benchmarks: memory over a minute): each target
# (loadtest/bench/lib.sh, start_target) driven by wrk for DURATION seconds at each connection
# count, every request a new buyer, its resident memory (VmRSS) read before the load and every STEP seconds
# during it. floor-redis (actix-web and fred, holding no state) is the reference: what the
# stack's own buffers and allocator settle at under the same load. Per target: requests/s, RSS
# idle, at the first sample, at half time and at the end, the largest, and the growth over the
# second half in MiB and as a share of the RSS at half time. A target whose memory grows with
# the buyers it has seen keeps growing in the second half; one that is flat grows no more there
# than floor-redis does.
# Writes loadtest/bench/rss.md and prints it.
#
# Knobs: DURATION (s, 60), STEP (s, 5), CONNECTIONS ("64 256"), TARGETS ("floor-redis flashsale
# flashsale-holds flashsale-soldout"; flashsale-room needs admissions signed beforehand, a
# minute's worth of which is more than this script should write), STOCK (6000000: more than a
# minute sells here, so a purchase target's every request buys), REDIS_PORT/SERVICE_PORT
# (16395/18095).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-60}
STEP=${STEP:-5}
CONNECTIONS=${CONNECTIONS:-"64 256"}
TARGETS=${TARGETS:-"floor-redis flashsale flashsale-holds flashsale-soldout"}
STOCK=${STOCK:-6000000}
REDIS_PORT=${REDIS_PORT:-16395}
SERVICE_PORT=${SERVICE_PORT:-18095}
OUT=${OUT:-loadtest/bench/rss.md}
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh
need_two_steps "$DURATION" "$STEP"
prepare_floor_bench
RUN=$(date +%s)

ROWS=()
for C in $CONNECTIONS; do
  for T in $TARGETS; do
    sale="rss-$T-$C-$RUN"
    start_target "$T" "$sale"
    idle=$(rss_kb "$SERVICE_PID")
    log "$T: ${DURATION}s at $C connections, RSS every ${STEP}s"
    wrk -t2 -c"$C" -d"${DURATION}s" -s loadtest/bench/purchase.lua \
      "http://127.0.0.1:$SERVICE_PORT" -- "$sale" >"$WORK/wrk.out" &
    WRK_PID=$!
    samples=()
    for ((t = STEP; t <= DURATION; t += STEP)); do
      sleep "$STEP"
      samples+=("$(rss_kb "$SERVICE_PID")")
    done
    wait "$WRK_PID"
    kill -TERM "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true
    out=$(tail -1 "$WORK/wrk.out")
    requests=$(json_field requests <<<"$out")
    non_2xx=$(json_field non_2xx <<<"$out")
    # A purchase target's every request is a new buyer who buys: anything else (stock run out,
    # errors) would measure another load than the one named.
    if [ "$T" != flashsale-soldout ] && [ "${non_2xx:-0}" != 0 ]; then
      echo "$T: $non_2xx answers were not 2xx; raise STOCK or look at $WORK/*.log" >&2
      exit 1
    fi
    ROWS+=("| $T | $C | $(awk -v n="$requests" -v s="$DURATION" 'BEGIN { printf "%.0f", n / s }') | $(mib "$idle") | $(rss_cells "${samples[@]}") | $(mib_list "${samples[@]}")|")
  done
done

{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores: wrk -t2 for ${DURATION}s per target and connection count, every request a new buyer; RSS (VmRSS, MiB) before the load and every ${STEP}s during it; the second half is from $((STEP * (DURATION / STEP / 2)))s to $((STEP * (DURATION / STEP)))s."
  echo
  echo "| target | connections | requests/s | RSS idle | at ${STEP}s | at half time | at the end | largest | second half growth MiB | second half growth % | every sample |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$OUT"
