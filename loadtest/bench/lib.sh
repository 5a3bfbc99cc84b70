# Helpers the bench scripts share (sourced, not run): REDIS_PORT must be set first.
log() { printf '== %s\n' "$*" >&2; }
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
json_field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }
wait_ready() { # port
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$1/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "service on :$1 did not become ready" >&2; return 1
}
# Scripts run as the service sends them: the shared prelude, a newline, then the script.
lua_script() { printf '%s\n%s' "$(cat lua/prelude.lua)" "$(cat "lua/$1")"; }
# purchase.lua's purchase item for redis-benchmark (src/store/scripts/sale.rs, put_decide_item):
# the userId u__rand_int__ (13 characters once redis-benchmark puts in its 12 digits), a token,
# the request id $1 (1 to 127 characters, none of them a NUL: redis-benchmark takes C strings), each behind its length byte; one unit; admission '0'.
ceiling_item() {
  printf '\x0du__rand_int__\x100123456789abcdef'
  printf "\\x$(printf %02x "${#1}")"
  printf '%s\x01\x010' "$1"
}
# Fails the run unless a ceiling's redis-benchmark calls bought: redis-benchmark counts an error
# reply as a request like any other, so a call the script refused whole would flatter the
# ceiling. A few calls buy nothing (-r draws a userId twice now and then).
ceiling_sold() { # units-sold-before units-sold-after calls label
  local sold=$(($2 - $1))
  if ((sold * 100 < $3 * 99)); then
    echo "$4: $sold units sold by $3 calls: the ceiling's calls failed" >&2
    exit 1
  fi
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
cpu_ticks() { # utime + stime of a process and its children, in clock ticks
  local total=0 pid
  for pid in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
rss_kb() { # resident memory (KiB) of a process and its children (the Node peer is a cluster of processes)
  local total=0 pid
  for pid in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
need_wrk() { # installs wrk from the distribution when it is missing
  command -v wrk >/dev/null && return 0
  local sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2
}
start_redis() { # logfile: a throw-away redis-server on REDIS_PORT; sets REDIS_PID and waits for it
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --maxmemory-policy noeviction --loglevel warning >"$1" 2>&1 &
  REDIS_PID=$!; PIDS+=("$REDIS_PID")
  for _ in $(seq 1 100); do rcli ping >/dev/null 2>&1 && break; sleep 0.05; done
}
# A scratch directory WORK and a list PIDS of processes to stop, both cleaned up on exit.
work_dir() {
  WORK=$(mktemp -d); PIDS=()
  trap 'for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
}
# What a single-service bench needs: redis-server, wrk, and the release build as BIN.
prepare_service_bench() {
  scripts/install-deps.sh
  need_wrk
  log "building the service (release)"
  cargo build --release --quiet --bin flashsale
  BIN=target/release/flashsale
}
stop_service() { kill -TERM "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true; }
field() { # saleId [hash/]field: a counter of the sale's config, or of another of its hashes
  local hash=config name=$2
  case $2 in */*) hash=${2%%/*}; name=${2#*/} ;; esac
  rcli hget "sale:{$1}:$hash" "$name"
}
# One wrk run against SERVICE_PORT: sets RPS (what `counter` of the sale moved, a second),
# CPU_US and REDIS_US (CPU of SERVICE_PID and REDIS_PID per counted operation) and NON_2XX.
measure() { # saleId wrk-script [hash/]counter wrk-args…
  local sale=$1 script=$2 counter=$3 cpu0 rcpu0 cpu1 rcpu1 c0 n out
  shift 3
  c0=$(field "$sale" "$counter"); c0=${c0:-0}
  cpu0=$(cpu_ticks "$SERVICE_PID"); rcpu0=$(cpu_ticks "$REDIS_PID")
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "loadtest/bench/$script" \
    "http://127.0.0.1:$SERVICE_PORT" -- "$@" | tail -1)
  cpu1=$(cpu_ticks "$SERVICE_PID"); rcpu1=$(cpu_ticks "$REDIS_PID")
  n=$(( $(field "$sale" "$counter") - c0 ))
  RPS=$(awk -v n="$n" -v s="$DURATION" 'BEGIN { printf "%.0f", n / s }')
  CPU_US=$(awk -v t=$(( (cpu1 - cpu0) * TICK_US )) -v n="$n" 'BEGIN { printf "%.1f", t / n }')
  REDIS_US=$(awk -v t=$(( (rcpu1 - rcpu0) * TICK_US )) -v n="$n" 'BEGIN { printf "%.1f", t / n }')
  NON_2XX=$(echo "$out" | json_field non_2xx)
}
wait_port() { # port [seconds]: until something answers HTTP there (at most 10 s unless told)
  for _ in $(seq 1 $((${2:-10} * 20))); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  echo "nothing answers on :$1; the logs end:" >&2; tail -n 5 "$WORK"/*.log >&2; return 1
}
# The mean batch of the flashsale instance on SERVICE_PORT so far (its /metrics), "–" for a
# server without them (the floors).
mean_batch() {
  curl -s "http://127.0.0.1:$SERVICE_PORT/metrics" 2>/dev/null | awk '
    /^flashsale_purchase_batches_total[{ ]/ { b += $NF } /^flashsale_purchase_batched_total[{ ]/ { n += $NF }
    END { if (b > 0) printf "%.1f", n / b; else print "–" }'
}
# The floor servers (loadtest/bench/floor.rs), release; sets FLOOR.
build_floor() {
  log "building the floor servers (release)"
  cargo build --release --quiet --example floor
  FLOOR=target/release/examples/floor
}
# Starts a bench target on SERVICE_PORT (README, Benchmarks: against the floors) and waits for
# it; sets SERVICE_PID. floor-http and floor-redis need FLOOR; flashsale (release, BIN) with
# RATE_LIMIT_PER_SECOND=0 and JSON logs, a sale of STOCK units (2,000,000 unless set), and:
# -batch1 batching off, -holds checkout holds on, -room the waiting room on (WAITING_ROOM_SECRET
# is ROOM_SECRET), -soldout a sale of one unit.
start_target() { # name sale
  local name=$1 sale=$2 extra=()
  case "$name" in
    floor-http) "$FLOOR" http "$SERVICE_PORT" >>"$WORK/floor.log" 2>&1 & ;;
    floor-redis) "$FLOOR" redis "$SERVICE_PORT" "redis://127.0.0.1:$REDIS_PORT" >>"$WORK/floor.log" 2>&1 & ;;
    flashsale*)
      case "$name" in
        flashsale-batch1) extra=(PURCHASE_BATCH_MAX=1) ;;
        flashsale-holds) extra=(SALE_HOLD_SECONDS=600) ;;
        flashsale-room) extra=(SALE_WAITING_ROOM_ADMIT_PER_SECOND=100000) ;;
      esac
      [ -n "${ROOM_SECRET:-}" ] && extra+=(WAITING_ROOM_SECRET="$ROOM_SECRET")
      local stock=${STOCK:-2000000}
      [ "$name" = flashsale-soldout ] && stock=1
      env -i PATH="$PATH" HOST=127.0.0.1 PORT="$SERVICE_PORT" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
        SALE_ID="$sale" SALE_TOTAL_STOCK="$stock" RATE_LIMIT_PER_SECOND=0 LOG_FORMAT=json \
        "${extra[@]}" "$BIN" >>"$WORK/flashsale.log" 2>&1 &
      ;;
    *) echo "no such target: $name" >&2; return 2 ;;
  esac
  SERVICE_PID=$!; PIDS+=("$SERVICE_PID")
  wait_port "$SERVICE_PORT"
}
# What a bench against the floors needs: WORK and PIDS, the service (BIN) and the floor servers
# (FLOOR) built, and a throw-away Redis on REDIS_PORT (REDIS_PID).
prepare_floor_bench() {
  work_dir
  prepare_service_bench
  build_floor
  start_redis "$WORK/redis.log"
}
# Memory over a run (rss.sh, soak.sh): KiB as MiB; the DURATION/STEP check; and the columns
# from RSS samples (KiB, one every STEP): at the first sample, at half time, at the end, the
# largest, and the growth over the second half in MiB and as a share of the RSS at half time.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mib_list() { local s; for s in "$@"; do printf '%s ' "$(mib "$s")"; done; }
need_two_steps() { # duration step
  if (($1 < 2 * $2)); then
    echo "DURATION must be at least two STEPs: the second half is measured from a sample" >&2
    exit 2
  fi
}
rss_cells() { # samples…: "first | half | end | largest | growth MiB | growth %"
  local n=$# samples=("$@") half last largest growth
  half=${samples[$((n / 2 - 1))]}
  last=${samples[$((n - 1))]}
  largest=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
  growth=$((last - half))
  printf '%s | %s | %s | %s | %s | %s' "$(mib "${samples[0]}")" "$(mib "$half")" "$(mib "$last")" \
    "$(mib "$largest")" "$(mib "$growth")" "$(awk -v g="$growth" -v h="$half" 'BEGIN { printf "%.1f", 100 * g / h }')"
}
