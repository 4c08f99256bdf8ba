#!/usr/bin/env bash
# A local raftlock cluster on loopback, for trying things out, tests and benchmarks.
#
#   scripts/cluster.sh start [N]    start N nodes (default 3): clients on 127.0.0.1:7001..,
#                                   Raft on 127.0.0.1:8001.., data in $CLUSTER_DIR/nI
#   scripts/cluster.sh stop         stop every node (SIGTERM, by PID)
#   scripts/cluster.sh status       each node's pid, role and leader
#   scripts/cluster.sh kill I       SIGKILL node I
#   scripts/cluster.sh restart I    start node I again on its data dir
#
# Environment: CLUSTER_DIR (default ./cluster-data), CLIENT_BASE (7000), RAFT_BASE (8000),
# RAFTLOCK (the binary; default target/release/raftlock, built if missing), RAFTLOCK_ARGS
# (more `serve` flags for every node, e.g. "--threads 1").
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${CLUSTER_DIR:-cluster-data}
client_base=${CLIENT_BASE:-7000}
raft_base=${RAFT_BASE:-8000}
bin=${RAFTLOCK:-target/release/raftlock}

nodes() { cat "$dir/nodes" 2>/dev/null || echo 3; }

members() {
  local n=$1 list=""
  for i in $(seq 1 "$n"); do
    list+="${list:+,}$i=127.0.0.1:$((client_base + i))/127.0.0.1:$((raft_base + i))"
  done
  echo "$list"
}

start_node() {
  local i=$1 n
  n=$(nodes)
  mkdir -p "$dir"
  "$bin" serve --id "$i" --listen "127.0.0.1:$((client_base + i))" \
    --raft-listen "127.0.0.1:$((raft_base + i))" --data-dir "$dir/n$i" \
    --initial-cluster "$(members "$n")" ${RAFTLOCK_ARGS:-} >>"$dir/n$i.log" 2>&1 &
  echo $! >"$dir/n$i.pid"
}

alive() { [ -f "$dir/n$1.pid" ] && kill -0 "$(cat "$dir/n$1.pid")" 2>/dev/null; }

case "${1:-}" in
  start)
    n=${2:-3}
    [ -x "$bin" ] || cargo build --release
    mkdir -p "$dir"
    echo "$n" >"$dir/nodes"
    for i in $(seq 1 "$n"); do alive "$i" || start_node "$i"; done
    for _ in $(seq 1 100); do
      if "$0" status 2>/dev/null | grep -q 'role=master'; then break; fi
      sleep 0.1
    done
    "$0" status
    ;;
  stop)
    for i in $(seq 1 "$(nodes)"); do
      if alive "$i"; then kill "$(cat "$dir/n$i.pid")"; fi
      rm -f "$dir/n$i.pid"
    done
    ;;
  status)
    for i in $(seq 1 "$(nodes)"); do
      port=$((client_base + i))
      if alive "$i"; then
        role=$(redis-cli -p "$port" --no-raw ROLE 2>/dev/null | head -n 1 | tr -d '"' | sed 's/^1) //')
        leader=$(redis-cli -p "$port" INFO raft 2>/dev/null | tr -d '\r' | sed -n 's/^raft_leader_id://p')
        echo "node $i pid=$(cat "$dir/n$i.pid") port=$port role=${role:-?} leader=${leader:-?}"
      else
        echo "node $i down port=$port"
      fi
    done
    ;;
  kill)
    i=${2:?node number}
    alive "$i" && kill -9 "$(cat "$dir/n$i.pid")"
    rm -f "$dir/n$i.pid"
    ;;
  restart)
    i=${2:?node number}
    if alive "$i"; then kill -9 "$(cat "$dir/n$i.pid")"; sleep 0.2; fi
    start_node "$i"
    ;;
  *)
    sed -n '2,13p' "$0"
    exit 2
    ;;
esac
