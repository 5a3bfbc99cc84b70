#!/usr/bin/env bash
# The benchmark, in one command on one machine and in one run (SPEC §5):
#   - Redis, then flashsale (release build, default settings but RATE_LIMIT_PER_SECOND=0, since
#     all load comes from one address) and the Node/Express + ioredis peer (loadtest/baseline);
#   - purchases by unique buyers with wrk at each connection count (64 and 256 by default):
#     purchases/s, p50, p99;
#   - the Redis ceiling: redis-benchmark running the same purchase.lua by EVALSHA with the same
#     number of connections;
#   - ratios against both, measured side by side; Redis memory per buyer; the instance's RSS
#     before and after; and a burst of 100,000 distinct buyers at 1,000 units (goose
#     flash-burst), which must sell exactly 1,000.
# Writes a Markdown table to loadtest/bench/results.md and prints it.
#
# Knobs: DURATION (s per measurement, default 10), ROUNDS (3; medians are reported), CONNECTIONS ("64 256"), BURST_BUYERS (100000),
# BURST_STOCK (1000), REDIS_PORT/SERVICE_PORT/BASELINE_PORT (16379/18080/18081).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-"64 256"}
BURST_BUYERS=${BURST_BUYERS:-100000}
BURST_STOCK=${BURST_STOCK:-1000}
REDIS_PORT=${REDIS_PORT:-16379}
SERVICE_PORT=${SERVICE_PORT:-18080}
BASELINE_PORT=${BASELINE_PORT:-18081}
OUT=${OUT:-loadtest/bench/results.md}
RUN=$(date +%s)
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=loadtest/bench/lib.sh
. loadtest/bench/lib.sh


# ---- tools ---------------------------------------------------------------------------------
scripts/install-deps.sh
apt_install() {
  local sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}
command -v wrk >/dev/null || apt_install wrk
command -v node >/dev/null || apt_install nodejs npm
[ -d loadtest/baseline/node_modules ] || (cd loadtest/baseline && npm ci --no-audit --no-fund >&2)

log "building (release)"
cargo build --release --quiet --bin flashsale
(cd loadtest/goose && cargo build --release --quiet --bins)

# ---- helpers -------------------------------------------------------------------------------
# Units sold (both targets run the same scripts, so the same layout: lua/prelude.lua).
sold_of() { rcli hget "sale:{$1}:config" sold; } # sale
# Bytes Redis spends on a sale's buyer records: the sum over its buyer buckets.
buyer_memory() { # sale
  rcli eval "local total = 0
    for n = 0, tonumber(redis.call('HGET', KEYS[1], 'buyerBuckets')) - 1 do
      total = total + (redis.call('MEMORY', 'USAGE', ARGV[1] .. ':' .. n, 'SAMPLES', '0') or 0)
    end
    return total" 1 "sale:{$1}:config" "sale:{$1}:buyers"
}
used_memory() { rcli info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }

start_flashsale() { # sale stock [VAR=value ...]
  env -i PATH="$PATH" HOST=127.0.0.1 PORT="$SERVICE_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    SALE_ID="$1" SALE_TOTAL_STOCK="$2" RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json "${@:3}" \
    target/release/flashsale >>"$WORK/flashsale.log" 2>&1 &
  TARGET_PID=$!; PIDS+=("$TARGET_PID")
  wait_ready "$SERVICE_PORT"
}
start_baseline() { # sale stock
  env -i PATH="$PATH" PORT="$BASELINE_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    SALE_ID="$1" SALE_TOTAL_STOCK="$2" node loadtest/baseline/server.js >>"$WORK/baseline.log" 2>&1 &
  TARGET_PID=$!; PIDS+=("$TARGET_PID")
  wait_ready "$BASELINE_PORT"
}
stop_target() { kill -TERM "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true; }

# ---- Redis ---------------------------------------------------------------------------------
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --maxmemory-policy noeviction --loglevel warning >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
for _ in $(seq 1 100); do rcli ping >/dev/null 2>&1 && break; sleep 0.05; done
PURCHASE_SHA=$(rcli script load "$(lua_script purchase.lua)")
NOW_MS=$(($(date +%s) * 1000))
# Enough for any round here (~30,000 purchases/s for 12 s), and no more: flashsale sizes its
# buyer buckets to the stock (about 100 buyers each once sold out).
BIG_STOCK=${BIG_STOCK:-2000000}


# One measurement of a target: sets RPS P50 P99 CPU_US (CPU per purchase, all its processes)
# REDIS_US (Redis CPU per purchase) RSS_BEFORE RSS_AFTER MEM_PER_BUYER SOCKET_ERRORS NON_2XX.
measure() { # kind(flashsale|express) connections label
  local port sale="$1-$RUN-$2-$3"
  if [ "$1" = flashsale ]; then start_flashsale "$sale" "$BIG_STOCK"; port=$SERVICE_PORT
  else start_baseline "$sale" "$BIG_STOCK"; port=$BASELINE_PORT; fi
  wrk -t2 -c"$2" -d2s -s loadtest/bench/purchase.lua "http://127.0.0.1:$port" -- "w$sale" >/dev/null
  RSS_BEFORE=$(rss_kb "$TARGET_PID")
  local mem0 buyers0 cpu0 rcpu0 out
  mem0=$(used_memory); buyers0=$(sold_of "$sale")
  cpu0=$(cpu_ticks "$TARGET_PID"); rcpu0=$(cpu_ticks "$REDIS_PID")
  out=$(wrk -t2 -c"$2" -d"${DURATION}s" -s loadtest/bench/purchase.lua "http://127.0.0.1:$port" -- "m$sale" | tail -1)
  local cpu1 rcpu1 buyers
  cpu1=$(cpu_ticks "$TARGET_PID"); rcpu1=$(cpu_ticks "$REDIS_PID")
  RSS_AFTER=$(rss_kb "$TARGET_PID")
  sleep 1 # let Redis finish rehashing the buyers hash, so both tables are not counted
  buyers=$(( $(sold_of "$sale") - buyers0 ))
  MEM_PER_BUYER=$(awk -v a="$mem0" -v b="$(used_memory)" -v n="$buyers" 'BEGIN { printf "%.0f", (b - a) / n }')
  # The same split by key: the buyer records (one per buyer) and the order stream.
  local hlen xlen
  hlen=$(sold_of "$sale"); xlen=$(rcli xlen "sale:{$sale}:orders")
  RECORD_BYTES=$(awk -v m="$(buyer_memory "$sale")" -v n="$hlen" 'BEGIN { printf "%.0f", (n > 0) ? m / n : 0 }')
  ORDER_BYTES=$(awk -v m="$(rcli memory usage "sale:{$sale}:orders" samples 0)" -v n="$xlen" 'BEGIN { printf "%.0f", (n > 0) ? m / n : 0 }')
  stop_target
  RPS=$(echo "$out" | json_field rps); P50=$(echo "$out" | json_field p50_ms); P99=$(echo "$out" | json_field p99_ms)
  SOCKET_ERRORS=$(echo "$out" | json_field socket_errors); NON_2XX=$(echo "$out" | json_field non_2xx)
  CPU_US=$(awk -v t=$(( (cpu1 - cpu0) * TICK_US )) -v n="$buyers" 'BEGIN { printf "%.1f", t / n }')
  REDIS_US=$(awk -v t=$(( (rcpu1 - rcpu0) * TICK_US )) -v n="$buyers" 'BEGIN { printf "%.1f", t / n }')
}

ROUNDS=${ROUNDS:-3}
ROWS=()
EXTRA=()
for C in $CONNECTIONS; do
  declare -A V=()
  for R in $(seq 1 "$ROUNDS"); do
    # The ceiling: the same script, the same work per call (a new buyer each time), C connections.
    log "round $R/$ROUNDS, $C connections: redis ceiling"
    CEIL_SALE="ceil-$RUN-$C-$R"
    rcli eval "$(lua_script create_sale.lua)" 1 "sale:{$CEIL_SALE}:config" \
      ceiling "$BIG_STOCK" "$((NOW_MS - 60000))" "$((NOW_MS + 3600000))" >/dev/null
    # redis-benchmark cannot compute a buyer's bucket (SHA-1 of the userId), so the ceiling's
    # sale has one bucket: one large hash, whose HGET/HSET cost no more than a bucket's.
    rcli hset "sale:{$CEIL_SALE}:config" buyerBuckets 1 >/dev/null
    CEIL=$(redis-benchmark -p "$REDIS_PORT" -c "$C" -n "$((C * 3000))" -r 1000000000 --csv \
      evalsha "$PURCHASE_SHA" 9 "sale:{$CEIL_SALE}:config" \
      "sale:{$CEIL_SALE}:orders" "sale:{$CEIL_SALE}:refused" "sale:{$CEIL_SALE}:checkouts" \
      "sale:{$CEIL_SALE}:expiries" "sale:{$CEIL_SALE}:room" "sale:{$CEIL_SALE}:gate" \
      "sale:{$CEIL_SALE}:buyers:0" "sale:{$CEIL_SALE}:rl:u__rand_int__" \
      10 10000 "$CEIL_SALE" 0 1 \
      "$(ceiling_item ceiling)" 0123456789abcdef0123456789abcdef |
      tail -1 | tr -d '"')
    ceiling_sold 0 "$(sold_of "$CEIL_SALE")" "$((C * 3000))" "ceiling, $C connections"
    V[ceil_rps]+=" $(echo "$CEIL" | cut -d, -f2)"; V[ceil_p50]+=" $(echo "$CEIL" | cut -d, -f5)"
    V[ceil_p99]+=" $(echo "$CEIL" | cut -d, -f7)"
    for KIND in flashsale express; do
      log "round $R/$ROUNDS, $C connections: $KIND"
      measure "$KIND" "$C" "$R"
      for F in RPS P50 P99 CPU_US REDIS_US RSS_BEFORE RSS_AFTER MEM_PER_BUYER RECORD_BYTES ORDER_BYTES SOCKET_ERRORS NON_2XX; do
        V[${KIND}_$F]+=" ${!F}"
      done
    done
  done
  m() { echo "${V[$1]}" | median; }
  FS_RPS=$(m flashsale_RPS); EX_RPS=$(m express_RPS); CEIL_RPS=$(m ceil_rps)
  EX_MAX_FIRST=${EX_MAX_FIRST:-$EX_RPS}
  FIRST_FS_CPU=${FIRST_FS_CPU:-$(m flashsale_CPU_US)}; FIRST_EX_CPU=${FIRST_EX_CPU:-$(m express_CPU_US)}
  FIRST_FS_REDIS=${FIRST_FS_REDIS:-$(m flashsale_REDIS_US)}; FIRST_EX_REDIS=${FIRST_EX_REDIS:-$(m express_REDIS_US)}
  ROWS+=("| flashsale | $C | $(printf '%.0f' "$FS_RPS") | $(m flashsale_P50) | $(m flashsale_P99) | $(ratio "$FS_RPS" "$CEIL_RPS") | $(ratio "$FS_RPS" "$EX_RPS") | $(m flashsale_CPU_US) |")
  ROWS+=("| express + ioredis | $C | $(printf '%.0f' "$EX_RPS") | $(m express_P50) | $(m express_P99) | $(ratio "$EX_RPS" "$CEIL_RPS") | 1.00 | $(m express_CPU_US) |")
  ROWS+=("| redis-benchmark (ceiling) | $C | $(printf '%.0f' "$CEIL_RPS") | $(m ceil_p50) | $(m ceil_p99) | 1.00 | $(ratio "$CEIL_RPS" "$EX_RPS") | – |")
  EXTRA+=("- $C connections, per round — flashsale purchases/s:${V[flashsale_RPS]}; express:${V[express_RPS]}; ceiling:${V[ceil_rps]}")
  EXTRA+=("- $C connections: p99 flashsale/express = $(ratio "$(m flashsale_P99)" "$(m express_P99)"); Redis CPU per purchase $(m flashsale_REDIS_US) µs under flashsale, $(m express_REDIS_US) µs under express; socket errors:${V[flashsale_SOCKET_ERRORS]} /${V[express_SOCKET_ERRORS]}; non-2xx:${V[flashsale_NON_2XX]} /${V[express_NON_2XX]}")
  EXTRA+=("- $C connections: Redis memory per buyer $(m flashsale_MEM_PER_BUYER) bytes (MEMORY USAGE: buyer record $(m flashsale_RECORD_BYTES) bytes, order-stream entry $(m flashsale_ORDER_BYTES) bytes); RSS before → after a round: flashsale $(( $(m flashsale_RSS_BEFORE | cut -d. -f1) / 1024 )) → $(( $(m flashsale_RSS_AFTER | cut -d. -f1) / 1024 )) MiB, express (all workers) $(( $(m express_RSS_BEFORE | cut -d. -f1) / 1024 )) → $(( $(m express_RSS_AFTER | cut -d. -f1) / 1024 )) MiB")
  unset V
done

# ---- a request after sell-out, against a purchase (closed loop) ---------------------------------
# The purchases' wrk load at the first connection count, at a sale whose one unit is gone: every
# request is a new buyer answered SOLD_OUT. CPU per request of the target and of Redis, beside
# the purchase figures above; flashsale also with the per-user attempt limit off, since counting
# a refused attempt is that limit's write.
SOLDOUT_C=${CONNECTIONS%% *}
measure_soldout() { # label round
  local port sale="soldout-$RUN-$1-$2" requests cpu0 rcpu0 cpu1 rcpu1
  case "$1" in
    express) start_baseline "$sale" 1; port=$BASELINE_PORT ;;
    flashsale) start_flashsale "$sale" 1; port=$SERVICE_PORT ;;
    flashsale-nolimit) start_flashsale "$sale" 1 USER_ATTEMPT_LIMIT=0; port=$SERVICE_PORT ;;
  esac
  wrk -t2 -c"$SOLDOUT_C" -d2s -s loadtest/bench/purchase.lua "http://127.0.0.1:$port" -- "w$sale" >/dev/null
  cpu0=$(cpu_ticks "$TARGET_PID"); rcpu0=$(cpu_ticks "$REDIS_PID")
  requests=$(wrk -t2 -c"$SOLDOUT_C" -d"${DURATION}s" -s loadtest/bench/purchase.lua "http://127.0.0.1:$port" -- "m$sale" | tail -1 | json_field requests)
  cpu1=$(cpu_ticks "$TARGET_PID"); rcpu1=$(cpu_ticks "$REDIS_PID")
  stop_target
  SO_CPU=$(awk -v t=$(( (cpu1 - cpu0) * TICK_US )) -v n="$requests" 'BEGIN { printf "%.1f", t / n }')
  SO_REDIS=$(awk -v t=$(( (rcpu1 - rcpu0) * TICK_US )) -v n="$requests" 'BEGIN { printf "%.1f", t / n }')
}
declare -A S=()
for R in $(seq 1 "$ROUNDS"); do
  for LABEL in flashsale flashsale-nolimit express; do
    log "after sell-out, round $R/$ROUNDS, $SOLDOUT_C connections: $LABEL"
    measure_soldout "$LABEL" "$R"
    S[${LABEL}_cpu]+=" $SO_CPU"; S[${LABEL}_redis]+=" $SO_REDIS"
  done
done
sm() { echo "${S[$1]}" | median; }
SOLDOUT_ROWS=(
  "| flashsale | $FIRST_FS_CPU | $(sm flashsale_cpu) | $FIRST_FS_REDIS | $(sm flashsale_redis) |"
  "| flashsale, \`USER_ATTEMPT_LIMIT=0\` | – | $(sm flashsale-nolimit_cpu) | – | $(sm flashsale-nolimit_redis) |"
  "| express + ioredis | $FIRST_EX_CPU | $(sm express_cpu) | $FIRST_EX_REDIS | $(sm express_redis) |"
)

# ---- latency at a fixed offered load (open loop) ---------------------------------------------
# Both targets get the same schedule of new buyers at 50 % and 80 % of the Express peer's
# closed-loop maximum (its median purchases/s at the first connection count); latency counts
# from each request's scheduled send time (no coordinated omission), after 2 s of warm-up.
OPENLOOP=loadtest/goose/target/release/openloop
EX_MAX=${EX_MAX_FIRST:-0}
OPEN_ROWS=()
if [ "${EX_MAX%.*}" -gt 0 ]; then
  for PCT in 50 80; do
    RATE=$(awk -v m="$EX_MAX" -v p="$PCT" 'BEGIN { printf "%d", m * p / 100 }')
    declare -A O=()
    for R in $(seq 1 "$ROUNDS"); do
      for KIND in flashsale express; do
        log "open loop $PCT % ($RATE/s), round $R/$ROUNDS: $KIND"
        sale="open-$RUN-$PCT-$R-$KIND"
        if [ "$KIND" = flashsale ]; then start_flashsale "$sale" "$BIG_STOCK"; port=$SERVICE_PORT
        else start_baseline "$sale" "$BIG_STOCK"; port=$BASELINE_PORT; fi
        # The same schedule for 2 s first, discarded: both start warm (the peer's JIT too).
        "$OPENLOOP" "http://127.0.0.1:$port" "$RATE" 2 "w$sale" 512 >/dev/null
        out=$("$OPENLOOP" "http://127.0.0.1:$port" "$RATE" "$DURATION" "o$sale" 512)
        stop_target
        O[${KIND}_p50]+=" $(echo "$out" | json_field p50_ms)"; O[${KIND}_p99]+=" $(echo "$out" | json_field p99_ms)"
        O[${KIND}_errors]+=" $(echo "$out" | json_field errors)"
      done
    done
    om() { echo "${O[$1]}" | median; }
    OPEN_ROWS+=("| $PCT % ($RATE/s) | $(om flashsale_p50) | $(om flashsale_p99) | $(om express_p50) | $(om express_p99) | $(ratio "$(om flashsale_p99)" "$(om express_p99)") | ${O[flashsale_errors]} /${O[express_errors]} |")
    unset O
  done
fi

# ---- the sold-out flood ----------------------------------------------------------------------
# 100,000 distinct buyers for 1,000 units, sent as one burst (all scheduled within 2 s, 512 in
# flight): time to drain and p99; then a second burst of new buyers at the sold-out sale, for
# the CPU a request costs after sell-out (all its processes, and Redis).
FLOOD_ROWS=()
for KIND in flashsale express; do
  log "sold-out flood: $KIND"
  sale="flood-$RUN-$KIND"
  if [ "$KIND" = flashsale ]; then start_flashsale "$sale" "$BURST_STOCK"; port=$SERVICE_PORT
  else start_baseline "$sale" "$BURST_STOCK"; port=$BASELINE_PORT; fi
  RATE=$((BURST_BUYERS / 2))
  # No warm-up: a drop opens on a cold crowd (both targets alike).
  first=$("$OPENLOOP" "http://127.0.0.1:$port" "$RATE" 2 "f1$sale" 512)
  sold=$(sold_of "$sale")
  [ "$KIND" = flashsale ] && FLOOD_RECORD_BYTES=$(awk -v m="$(buyer_memory "$sale")" -v n="$sold" 'BEGIN { printf "%.0f", (n > 0) ? m / n : 0 }')
  cpu0=$(cpu_ticks "$TARGET_PID"); rcpu0=$(cpu_ticks "$REDIS_PID")
  second=$("$OPENLOOP" "http://127.0.0.1:$port" "$RATE" 2 "f2$sale" 512)
  cpu1=$(cpu_ticks "$TARGET_PID"); rcpu1=$(cpu_ticks "$REDIS_PID")
  stop_target
  per=$(awk -v t=$(( (cpu1 - cpu0) * TICK_US )) -v n="$BURST_BUYERS" 'BEGIN { printf "%.1f", t / n }')
  rper=$(awk -v t=$(( (rcpu1 - rcpu0) * TICK_US )) -v n="$BURST_BUYERS" 'BEGIN { printf "%.1f", t / n }')
  FLOOD_ROWS+=("| $KIND | $sold | $(echo "$first" | json_field drain_ms) | $(echo "$first" | json_field p50_ms) | $(echo "$first" | json_field p99_ms) | $(echo "$second" | json_field p99_ms) | $per | $rper | $(echo "$first" | json_field errors) / $(echo "$second" | json_field errors) |")
done

# ---- the burst -----------------------------------------------------------------------------
log "burst: $BURST_BUYERS distinct buyers at $BURST_STOCK units (goose flash-burst)"
BURST_SALE="burst-$RUN"
start_flashsale "$BURST_SALE" "$BURST_STOCK"
if loadtest/goose/target/release/flashsale-load flash-burst --host "http://127.0.0.1:$SERVICE_PORT" \
  --buyers "$BURST_BUYERS" --users 256 >"$WORK/burst.log" 2>&1; then BURST_OK=yes; else BURST_OK=NO; fi
stop_target
SOLD=$(sold_of "$BURST_SALE")
LEFT=$(( $(rcli hget "sale:{$BURST_SALE}:config" totalStock) - SOLD ))
EXTRA+=("- burst: $BURST_BUYERS distinct buyers at $BURST_STOCK units sold $SOLD (stock left $LEFT); goose invariant check: $BURST_OK")

{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load generator included: wrk -t2, ${DURATION}s per measurement after a 2 s warm-up, every request a new buyer; median of $ROUNDS interleaved rounds."
  echo
  echo "| target | connections | purchases/s | p50 ms | p99 ms | vs Redis ceiling | vs express | CPU µs per purchase |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  printf '%s\n' "${EXTRA[@]}"
  if [ "${#OPEN_ROWS[@]}" -gt 0 ]; then
    echo
    echo "Open loop (loadtest/goose openloop): new buyers on a fixed schedule at a share of the Express peer's closed-loop maximum, latency from the scheduled send time, ${DURATION}s, median of $ROUNDS rounds."
    echo
    echo "| offered load | flashsale p50 ms | flashsale p99 ms | express p50 ms | express p99 ms | p99 flashsale/express | errors (per round) |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${OPEN_ROWS[@]}"
  fi
  echo
  echo "A request after sell-out against a purchase: wrk at $SOLDOUT_C connections, every request a new buyer, at a sale whose one unit is gone (purchase figures from the table above), median of $ROUNDS rounds."
  echo
  echo "| target | CPU µs per purchase | CPU µs per request after sell-out | Redis CPU µs per purchase | Redis CPU µs per request after sell-out |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${SOLDOUT_ROWS[@]}"
  echo
  echo "Sold-out flood: $BURST_BUYERS distinct buyers for $BURST_STOCK units in one burst (scheduled within 2 s, 512 in flight), then $BURST_BUYERS more at the sold-out sale."
  echo
  echo "| target | units sold | time to drain ms | p50 ms | p99 ms | p99 after sell-out ms | CPU µs per request after sell-out | Redis CPU µs per request after sell-out | errors |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${FLOOD_ROWS[@]}"
  echo
  echo "Redis memory per buyer record at the flood's sold-out sale (its buyer buckets full, as in a drop that sold out; MEMORY USAGE): ${FLOOD_RECORD_BYTES:-n/a} bytes."
} | tee "$OUT"
[ "$BURST_OK" = yes ] && [ "$SOLD" = "$BURST_STOCK" ]
