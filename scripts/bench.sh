#!/usr/bin/env bash
# raftlock against redis-server on this machine, in one run: starts a raftlock single node,
# a 3-node raftlock cluster, redis-server without persistence and with appendfsync always
# (all on loopback, in a temp dir, stopped by PID at the end, on Ctrl-C and on error), runs
# the same `raftlock bench` workloads and redis-benchmark against each, interleaving the
# systems, and prints a table and one `RATIO workload raftlock-X/redis-Y = 0.00` line per
# comparison. Writes bench-results.md and refreshes docs/PERFORMANCE.md's results section.
#
# This machine is shared and noisy: compare the ratios of one run, not absolute figures.
# The whole comparison runs BENCH_ROUNDS times; each ratio is taken within a round (the
# systems ran minutes apart at most) and the median of the rounds is reported, with every
# round's value beside it. Fairness is checked against the worst round.
#
# Environment (all optional):
#   RAFTLOCK_BIN       the raftlock binary [target/release/raftlock, built if missing]
#   BENCH_DURATION     seconds per raftlock-bench workload and system [5]
#   BENCH_ROUNDS       rounds of the whole comparison [5]
#   BENCH_CLIENTS      connections [64]
#   BENCH_RESOURCES    resources shared in the contended workloads [8]
#   BENCH_RB_REQUESTS  requests per redis-benchmark test [100000]
#   BENCH_PORT_BASE    first loopback port used (the next 6, and these + 100) [17400]
#   BENCH_OUT          the results file [bench-results.md; docs/PERFORMANCE.md shows its ratios]
#   BENCH_TMPDIR       where the servers keep their data [$TMPDIR or /tmp]; not a tmpfs
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-5}
CLIENTS=${BENCH_CLIENTS:-64}
RESOURCES=${BENCH_RESOURCES:-8}
RB_REQUESTS=${BENCH_RB_REQUESTS:-100000}
PORT_BASE=${BENCH_PORT_BASE:-17400}
OUT=${BENCH_OUT:-bench-results.md}
BIN=${RAFTLOCK_BIN:-${CARGO_TARGET_DIR:-target}/release/raftlock}
RB_CLIENTS=50

say() { echo "== $*" >&2; }

# --- what the run needs -----------------------------------------------------------------

if [ ! -x "$BIN" ] || ! "$BIN" bench --help >/dev/null 2>&1; then
  say "building the release binary ($BIN)"
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/raftlock
fi

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench.sh: needs ${need_apt[*]} (apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
  say "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/raftlock-bench.XXXXXX")
if [ "$(stat -f -c %T "$TMP")" = tmpfs ]; then
  echo "bench.sh: $TMP is on tmpfs, where fsync costs nothing; set BENCH_TMPDIR to a disk" >&2
  rm -rf "$TMP"
  exit 1
fi

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

SINGLE=$PORT_BASE
NODES=($((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)))
REDIS_NONE=$((PORT_BASE + 4))
REDIS_ALWAYS=$((PORT_BASE + 5))
for port in "$SINGLE" "${NODES[@]}" "$REDIS_NONE" "$REDIS_ALWAYS"; do
  for p in "$port" $((port + 100)); do
    if port_in_use "$p"; then
      echo "bench.sh: port $p is in use; set BENCH_PORT_BASE" >&2
      exit 1
    fi
  done
done

# --- the servers -------------------------------------------------------------------------

say "starting raftlock (single node, 3-node cluster) and redis-server (none, always) in $TMP"
"$BIN" serve --id 1 --listen "127.0.0.1:$SINGLE" --raft-listen "127.0.0.1:$((SINGLE + 100))" \
  --data-dir "$TMP/single" --log-level warn 2>"$TMP/single.log" &
PIDS+=($!)

# The nodes are started by the command-line contract (README, "Cluster") directly, so the run
# does not depend on how scripts/cluster.sh is driven.
cluster=""
for i in 1 2 3; do
  port=${NODES[$((i - 1))]}
  cluster+="${cluster:+,}$i=127.0.0.1:$port/127.0.0.1:$((port + 100))"
done
for i in 1 2 3; do
  port=${NODES[$((i - 1))]}
  "$BIN" serve --id "$i" --listen "127.0.0.1:$port" --raft-listen "127.0.0.1:$((port + 100))" \
    --data-dir "$TMP/node$i" --initial-cluster "$cluster" --log-level warn \
    2>"$TMP/node$i.log" &
  PIDS+=($!)
done

redis-server --port "$REDIS_NONE" --bind 127.0.0.1 --dir "$TMP" --dbfilename none.rdb \
  --save '' --appendonly no --logfile "$TMP/redis-none.log" &
PIDS+=($!)
mkdir -p "$TMP/redis-always"
redis-server --port "$REDIS_ALWAYS" --bind 127.0.0.1 --dir "$TMP/redis-always" \
  --save '' --appendonly yes --appendfsync always --logfile "$TMP/redis-always.log" &
PIDS+=($!)

# Waits until a write succeeds on the port (raftlock: the node has a leader).
wait_writable() {
  local port=$1 deadline=$((SECONDS + 30))
  until [ "$(redis-cli -p "$port" SET __bench_ready 1 2>/dev/null)" = OK ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "bench.sh: the server on port $port did not accept a write within 30 s" >&2
      tail -n 20 "$TMP"/*.log >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  redis-cli -p "$port" DEL __bench_ready >/dev/null
}

# Prints the client port of the cluster's leader (`role:master` in INFO replication).
cluster_leader() {
  local deadline=$((SECONDS + 30)) port
  while [ $SECONDS -lt $deadline ]; do
    for port in "${NODES[@]}"; do
      if redis-cli -p "$port" INFO replication 2>/dev/null | grep -q '^role:master'; then
        echo "$port"
        return 0
      fi
    done
    sleep 0.2
  done
  return 1
}

wait_writable "$SINGLE"
wait_writable "$REDIS_NONE"
wait_writable "$REDIS_ALWAYS"
if ! LEADER=$(cluster_leader); then
  echo "bench.sh: the 3-node cluster elected no leader within 30 s" >&2
  tail -n 20 "$TMP"/node*.log >&2 || true
  exit 1
fi
wait_writable "$LEADER"
say "cluster leader on port $LEADER"

# In this order every compared pair runs back to back within a workload (single against
# both redis-servers, the cluster against redis-always): this machine's speed drifts over
# tens of seconds, and a pair that ran further apart measured the drift as well.
SYSTEMS=(redis-none raftlock-single redis-always raftlock-cluster)
declare -A PORT=(
  [raftlock-single]=$SINGLE [raftlock-cluster]=$LEADER
  [redis-none]=$REDIS_NONE [redis-always]=$REDIS_ALWAYS
)

# --- raftlock bench: workload by workload, each against every system in turn ----------------

# Round R's rows: results.R.csv (system,workload,clients,pipeline,ops,seconds,ops_per_sec,
# ...) and rb.R.csv (system,test,rps,p50_ms,p99_ms).
FAILED=()
bench() {
  local system=$1 workload=$2 rows
  say "raftlock bench -t $workload against $system"
  if rows=$("$BIN" bench -p "${PORT[$system]}" -c "$CLIENTS" --duration "$DURATION" \
    --resources "$RESOURCES" -t "$workload" --csv 2>>"$TMP/bench.err"); then
    :
  else
    FAILED+=("$workload on $system (exit $?)")
  fi
  printf '%s\n' "$rows" | tail -n +2 | tr -d '"' | sed "s/^/$system,/" >>"$RESULTS"
}

redis_benchmark() {
  local system=$1 name=$2
  shift 2
  say "redis-benchmark ${name:-set,get} against $system"
  redis-benchmark -p "${PORT[$system]}" -c "$RB_CLIENTS" -n "$RB_REQUESTS" --csv "$@" 2>/dev/null |
    tail -n +2 | tr -d '"' |
    awk -F, -v sys="$system" -v name="$name" '{
      test = (name == "" ? tolower($1) : name)
      printf "%s,%s,%s,%s,%s\n", sys, test, $2, $5, $7
    }' >>"$RB" || FAILED+=("redis-benchmark $name on $system")
}

for round in $(seq 1 "$ROUNDS"); do
  say "round $round of $ROUNDS"
  RESULTS=$TMP/results.$round.csv
  RB=$TMP/rb.$round.csv
  : >"$RESULTS"
  : >"$RB"
  for workload in setnx lock lock-contended setnx-contended get; do
    for system in "${SYSTEMS[@]}"; do
      case "$system:$workload" in
        redis-*:lock | redis-*:lock-contended) continue ;;
      esac
      bench "$system" "$workload"
    done
  done
  for system in "${SYSTEMS[@]}"; do redis_benchmark "$system" "" -t set,get; done
  for pipeline in 1 16; do
    for system in "${SYSTEMS[@]}"; do
      redis_benchmark "$system" "setnx-P$pipeline" -P "$pipeline" -r 1000000 \
        SET 'lock:__rand_int__' token NX PX 10000
    done
  done
  # Every server starts the next round empty. The SET NX PX keys above (about 190,000 a
  # server) expire 10 s later, which would be during the next round's first workloads:
  # each server's expiry would run beside another system's measurement, and which system
  # it slowed depended only on the order (it was raftlock-single's setnx, behind the
  # cluster's expiry).
  for system in "${SYSTEMS[@]}"; do
    [ "$(redis-cli -p "${PORT[$system]}" FLUSHALL 2>&1)" = OK ] || FAILED+=("FLUSHALL on $system")
  done
done

# --- report ---------------------------------------------------------------------------------

# A field of one round's row: value KIND ROUND SYSTEM WORKLOAD FIELD (KIND: results or rb).
value() {
  awk -F, -v s="$3" -v w="$4" -v f="$5" '$1 == s && $2 == w { print $f }' "$TMP/$1.$2.csv"
}
# The median of numbers on stdin, one per line ("" if none).
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR) printf "%s\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

RATIOS=$TMP/ratios.txt
: >"$RATIOS"
# ratio NAME KIND RAFTLOCK-SYSTEM RAFTLOCK-WORKLOAD REDIS-SYSTEM REDIS-WORKLOAD: the median
# over the rounds of the ratio within each round, then each round's ratio.
ratio() {
  local name=$1 kind=$2 round a b each=()
  for round in $(seq 1 "$ROUNDS"); do
    a=$(value "$kind" "$round" "$3" "$4" 7)
    b=$(value "$kind" "$round" "$5" "$6" 7)
    [ "$kind" = rb ] && a=$(value rb "$round" "$3" "$4" 3) && b=$(value rb "$round" "$5" "$6" 3)
    if [ -n "$a" ] && [ -n "$b" ]; then
      each+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')")
    fi
  done
  if [ ${#each[@]} -gt 0 ]; then
    echo "RATIO $name $3/$5 = $(printf '%s\n' "${each[@]}" | median | xargs printf '%.2f') (rounds: ${each[*]})" >>"$RATIOS"
  else
    echo "RATIO $name $3/$5 = n/a" >>"$RATIOS"
  fi
}
for pair in "raftlock-single redis-always" "raftlock-single redis-none" \
  "raftlock-cluster redis-always"; do
  read -r ours theirs <<<"$pair"
  ratio setnx results "$ours" setnx "$theirs" setnx
  ratio lock-vs-setnx results "$ours" lock "$theirs" setnx
  ratio contended results "$ours" lock-contended "$theirs" setnx-contended
  ratio setnx-contended results "$ours" setnx-contended "$theirs" setnx-contended
  ratio get results "$ours" get "$theirs" get
  ratio rb-set rb "$ours" set "$theirs" set
  ratio rb-get rb "$ours" get "$theirs" get
  ratio rb-setnx-P1 rb "$ours" setnx-P1 "$theirs" setnx-P1
  ratio rb-setnx-P16 rb "$ours" setnx-P16 "$theirs" setnx-P16
done

bench_table() {
  echo "| round | system | workload | ops/s | p50 ms | p99 ms | p99.9 ms | max ms | jain | min/max per client | errors | notes |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for round in $(seq 1 "$ROUNDS"); do
    awk -F, -v r="$round" '{ printf "| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s/%s | %s | %s |\n",
      r, $1, $2, $7, $8, $9, $10, $11, $13, $14, $15, $12, $16 }' "$TMP/results.$round.csv"
  done
}
rb_table() {
  echo "| round | system | test | requests/s | p50 ms | p99 ms |"
  echo "|---|---|---|---:|---:|---:|"
  for round in $(seq 1 "$ROUNDS"); do
    awk -F, -v r="$round" '{ printf "| %s | %s | %s | %.0f | %s | %s |\n", r, $1, $2, $3, $4, $5 }' \
      "$TMP/rb.$round.csv"
  done
}

# Issue 6's targets, checked against this run.
targets() {
  local r
  check() { # check TEXT VALUE OP LIMIT
    awk -v t="$1" -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
      if (v == "" || v == "n/a") { printf "- n/a %s\n", t; exit }
      ok = (op == ">=" ? v + 0 >= l + 0 : v + 0 < l + 0)
      printf "- %s %s: %s (target %s %s)\n", (ok ? "PASS" : "FAIL"), t, v, op, l }'
  }
  ratio_of() { awk -v n="$1 $2 " 'index($0, "RATIO " n) == 1 { print $5 }' "$RATIOS"; }
  # A field of every round's row, one per line.
  rounds_of() {
    local round
    for round in $(seq 1 "$ROUNDS"); do value results "$round" "$1" "$2" "$3"; done
  }
  field() { rounds_of "$@" | median; }
  worst() { rounds_of "$@" | sort -g | head -n 1; }
  check "setnx single/redis-always" "$(ratio_of setnx raftlock-single/redis-always)" ">=" 1.0
  check "setnx single/redis-none" "$(ratio_of setnx raftlock-single/redis-none)" ">=" 0.5
  check "lock single/redis-always setnx" "$(ratio_of lock-vs-setnx raftlock-single/redis-always)" ">=" 1.0
  check "lock single/redis-none setnx" "$(ratio_of lock-vs-setnx raftlock-single/redis-none)" ">=" 0.5
  check "contended single/redis-always" "$(ratio_of contended raftlock-single/redis-always)" ">=" 2.0
  check "contended jain, single (worst round)" "$(worst raftlock-single lock-contended 13)" ">=" 0.99
  check "contended fewest grants of a client, single (worst round)" "$(worst raftlock-single lock-contended 14)" ">=" 1
  check "cluster setnx/redis-always" "$(ratio_of setnx raftlock-cluster/redis-always)" ">=" 0.5
  check "cluster lock/redis-always setnx" "$(ratio_of lock-vs-setnx raftlock-cluster/redis-always)" ">=" 0.5
  # The target is the latency of a LOCK; the table's p99 is of the LOCK + UNLOCK pair.
  acquire_p99() { rounds_of "$1" lock 16 | sed -n 's/.*acquire_p99_ms=\([0-9.]*\).*/\1/p' | median; }
  check "LOCK p99 ms, single" "$(acquire_p99 raftlock-single)" "<" 3
  check "LOCK p99 ms, cluster" "$(acquire_p99 raftlock-cluster)" "<" 5
  echo "- info: LOCK + UNLOCK pair p99 ms (median of rounds): single $(field raftlock-single lock 9), cluster $(field raftlock-cluster lock 9)"
  check "redis-benchmark SET NX PX -P 16 single/redis-always" "$(ratio_of rb-setnx-P16 raftlock-single/redis-always)" ">=" 0.5
  r=$(ratio_of rb-setnx-P16 raftlock-cluster/redis-always)
  echo "- info: redis-benchmark SET NX PX -P 16 cluster/redis-always: ${r:-n/a}"
}

MACHINE="$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
VERSIONS="raftlock $(git describe --always --dirty 2>/dev/null || echo '?'), $(redis-server --version | awk '{ print $1, $2, $3 }')"
SETUP="$CLIENTS clients, $DURATION s per workload and system, $RESOURCES resources in the contended workloads; redis-benchmark: $RB_CLIENTS clients, $RB_REQUESTS requests"
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')

{
  echo "# raftlock benchmark results"
  echo
  echo "Written by \`scripts/bench.sh\` on $DATE. Machine: $MACHINE. $VERSIONS."
  echo "$SETUP. Systems: \`raftlock-single\` (one node, fsync on), \`raftlock-cluster\` (3 nodes"
  echo "on this machine, the bench talks to the leader), \`redis-none\` (\`--save '' --appendonly no\`),"
  echo "\`redis-always\` (\`--appendonly yes --appendfsync always\`). $ROUNDS rounds, systems interleaved"
  echo "in each, every server flushed at the end of a round; a ratio is taken within each round and the median of the rounds is shown, each"
  echo "round's value in parentheses. The machine is shared and noisy, so read the ratios, not the absolute figures. Load"
  echo "average before the run: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "## Ratios"
  echo
  echo "\`lock-vs-setnx\` is raftlock's LOCK/UNLOCK against Redis's SET NX PX + release;"
  echo "\`contended\` is raftlock's LOCK WAIT (server-side FIFO queue) against clients retrying"
  echo "SET NX PX after a 1 ms sleep; \`rb-*\` come from redis-benchmark."
  echo
  echo '```'
  cat "$RATIOS"
  echo '```'
  echo
  echo "## Issue 6 targets"
  echo
  targets
  echo
  echo "## raftlock bench"
  echo
  echo "One op = acquire + release (setnx, lock), a read (get), or one grant (contended; the"
  echo "latency is then the wait for the grant). Jain's index and min/max count ops per client."
  echo
  bench_table
  echo
  echo "## redis-benchmark"
  echo
  echo "\`set\`, \`get\`: \`-t set,get\`; \`setnx-P1\`, \`setnx-P16\`: \`SET lock:__rand_int__ token NX PX 10000\` with -P 1 and -P 16."
  echo
  rb_table
} >"$OUT"

# docs/PERFORMANCE.md shows the ratios between these markers (only for the default
# results file).
if [ "$OUT" = bench-results.md ] && grep -q '<!-- bench-results:start -->' docs/PERFORMANCE.md 2>/dev/null; then
  {
    echo "Measured on $DATE, $MACHINE ($VERSIONS); full tables in [bench-results.md](../$OUT)."
    echo
    echo '```'
    cat "$RATIOS"
    echo '```'
  } >"$TMP/readme-section"
  awk -v section="$TMP/readme-section" '
    /<!-- bench-results:start -->/ { print; while ((getline line < section) > 0) print line; skip = 1; next }
    /<!-- bench-results:end -->/ { skip = 0 }
    !skip { print }' docs/PERFORMANCE.md >"$TMP/PERFORMANCE.md"
  cat "$TMP/PERFORMANCE.md" >docs/PERFORMANCE.md
fi

# A markdown table as aligned plain text.
plain() { grep -v '^|---' | sed 's/^| //; s/ |$//; s/ | /\t/g' | column -t -s $'\t'; }
echo
bench_table | plain
echo
rb_table | plain
echo
cat "$RATIOS"
echo
targets
echo
echo "results written to $OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "bench.sh: some runs reported errors or failed:" >&2
  printf '  %s\n' "${FAILED[@]}" >&2
  sed -n '1,20p' "$TMP/bench.err" >&2
  exit 1
fi
