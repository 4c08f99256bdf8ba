#!/usr/bin/env bash
# How much memory held locks take: starts a release raftlock single node on loopback (data
# in a temp dir; stopped by PID at the end, on Ctrl-C and on error), fills it with about N
# held locks with redis-benchmark (random resources, one owner, a one-hour lease), then
# reports the RSS (INFO memory used_memory_rss and /proc/PID/status VmRSS) while running
# and after a restart on the same data dir, and the bytes per lock of each.
#
#   scripts/memory.sh [N]      N: requests sent (default 1000000; random resources out of
#                              100M, so about 0.5% of them repeat a resource)
#
# Environment (all optional):
#   RAFTLOCK_BIN     the raftlock binary [$CARGO_TARGET_DIR or target, /release/raftlock;
#                    built if missing]
#   MEMORY_PORT      the loopback port for clients (the Raft port is this + 10000) [17600]
#   MEMORY_TMPDIR    where the node keeps its data [$TMPDIR or /tmp]
#   MEMORY_SETTLE_S  seconds to let the node settle (flushes, snapshot) before reading [5]
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000000}
PORT=${MEMORY_PORT:-17600}
SETTLE=${MEMORY_SETTLE_S:-5}
BIN=${RAFTLOCK_BIN:-${CARGO_TARGET_DIR:-target}/release/raftlock}

say() { echo "== $*" >&2; }

if [ ! -x "$BIN" ]; then
  say "building the release binary ($BIN)"
  cargo build --release --quiet
fi
if ! command -v redis-benchmark >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "memory.sh: needs redis-benchmark and redis-cli (apt-get install redis-tools)" >&2
    exit 1
  fi
  say "installing redis-tools"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null
fi

TMP=$(mktemp -d "${MEMORY_TMPDIR:-${TMPDIR:-/tmp}}/raftlock-memory.XXXXXX")
PID=
stop_node() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
  fi
}
cleanup() {
  stop_node
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_node() {
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" --log-level warn \
    >>"$TMP/node.log" 2>&1 &
  PID=$!
  local i
  for i in $(seq 1 600); do
    if redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then
      return 0
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
      cat "$TMP/node.log" >&2
      echo "memory.sh: the node exited" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "memory.sh: the node did not answer PING within 60 s" >&2
  exit 1
}

# Prints "INFO-rss-bytes VmRSS-bytes keys".
measure() {
  local info vmrss keys
  info=$(redis-cli -p "$PORT" info memory | tr -d '\r' | sed -n 's/^used_memory_rss://p')
  vmrss=$(($(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status") * 1024))
  keys=$(redis-cli -p "$PORT" dbsize | tr -d '\r')
  echo "$info $vmrss $keys"
}

report() {
  local label=$1 info=$2 vmrss=$3 keys=$4
  awk -v l="$label" -v i="$info" -v v="$vmrss" -v k="$keys" 'BEGIN {
    printf "%-16s locks=%d  used_memory_rss=%.1f MB  VmRSS=%.1f MB  bytes/lock=%.0f\n",
      l, k, i / 1e6, v / 1e6, (k > 0 ? v / k : 0)
  }'
}

say "starting raftlock on 127.0.0.1:$PORT (data in $TMP)"
start_node
read -r _ idle_rss _ <<<"$(measure)"
say "idle VmRSS $((idle_rss / 1000000)) MB; filling $N LOCK requests"
redis-benchmark -p "$PORT" -n "$N" -r 100000000 -P 64 -c 16 -q \
  lock 'res:__rand_int__' owner-1 3600000 >&2
sleep "$SETTLE"
read -r run_info run_vmrss run_keys <<<"$(measure)"
say "restarting on the same data dir"
stop_node
start_node
sleep "$SETTLE"
read -r re_info re_vmrss re_keys <<<"$(measure)"
if [ "$re_keys" != "$run_keys" ]; then
  echo "memory.sh: $run_keys keys before the restart, $re_keys after" >&2
  exit 1
fi

echo "idle             VmRSS=$(awk -v v="$idle_rss" 'BEGIN { printf "%.1f", v / 1e6 }') MB"
report running "$run_info" "$run_vmrss" "$run_keys"
report restarted "$re_info" "$re_vmrss" "$re_keys"
# Bytes per lock above the idle node's RSS, the part that grows with the locks.
awk -v a="$run_vmrss" -v b="$re_vmrss" -v i="$idle_rss" -v k="$run_keys" 'BEGIN {
  printf "above idle       running=%.0f bytes/lock  restarted=%.0f bytes/lock\n",
    (a - i) / k, (b - i) / k
}'
