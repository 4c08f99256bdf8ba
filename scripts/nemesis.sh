#!/usr/bin/env bash
# raftlock's fault test (Jepsen-style): a cluster of real nodes, each in its own network
# namespace, under kills, pauses, partitions, clock steps and disk faults, while clients
# record every op; checkers then judge the history. See docs/FAULT-TESTING.md.
#
#   scripts/nemesis.sh [--nodes 3|5] [--duration SECS] [--faults LIST] [--seed N] [--out DIR]
#   scripts/nemesis.sh --check DIR      re-run the checkers on a saved history
#   scripts/nemesis.sh --help           every fault and group
#
# Needs root, iproute2, iptables and libfaketime (installed with apt-get when missing).
# RAFTLOCK_BIN names the binary (default target/release/raftlock, built if missing).
# Exit status: 0 no violation, 1 violations, 2 the harness could not run.
set -euo pipefail

# Paths given on the command line are the caller's; the harness runs from the repo root.
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out|--check)
      args+=("$1" "$(realpath -m -- "${2:?$1 needs a directory}")")
      shift 2
      ;;
    --out=*|--check=*)
      args+=("${1%%=*}" "$(realpath -m -- "${1#*=}")")
      shift
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done
if [ -n "${RAFTLOCK_BIN:-}" ]; then
  RAFTLOCK_BIN=$(realpath -m -- "$RAFTLOCK_BIN")
fi
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "nemesis: must run as root (network namespaces, iptables, mounts)" >&2
  exit 2
fi

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || need_apt+=(faketime)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== nemesis: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

bin=${RAFTLOCK_BIN:-target/release/raftlock}
if [ ! -x "$bin" ]; then
  if [ -n "${RAFTLOCK_BIN:-}" ]; then
    echo "nemesis: RAFTLOCK_BIN=$bin is not an executable" >&2
    exit 2
  fi
  echo "== nemesis: building $bin"
  cargo build --release --quiet
fi

exec python3 -m tests.nemesis --bin "$bin" ${args[@]+"${args[@]}"}
