#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs
# formatting and lint checks, unit tests and integration tests against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# vendor/openraft and vendor/fjall must be the published crates plus vendor/patches
# (docs/VENDOR.md); the crates' own unit tests run after raftlock's.
echo "== vendor/ is the published crates with vendor/patches (scripts/vendor.sh --check)"
scripts/vendor.sh --check

need_apt=()
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
# tests/differential.rs compares every reply with a real redis-server's.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# tests/clock.rs moves the nodes' wall clocks with Debian's libfaketime.
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || need_apt+=(faketime)
# tests/partition.rs puts nodes in network namespaces and cuts links with iptables;
# tests/sessions.rs drops a client's packets with it to silence the client.
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# tests/tls.rs makes its CA and certificates with the openssl command, and reads the
# certificate a server presents with `openssl s_client`.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The redis-py compatibility tests and the fault test run on python3; redis-py runs in a
# venv, which Debian's python3 needs python3-venv for.
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
# The redlock compatibility tests run on node (18 or newer) with packages from npm.
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# tests/metrics.rs loads the live page in Debian's headless chromium, driven by
# chromium-driver (selenium, pinned in tests/compat/requirements.txt).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: the tests need ${need_apt[*]}; run as root to install them, or install them first" >&2
    exit 1
  fi
  echo "== installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The third-party lock libraries that tests/compat.rs drives, at the versions pinned in
# tests/compat/requirements.txt and tests/compat/package-lock.json.
echo "== redis-py (tests/compat/requirements.txt)"
venv="$PWD/target/compat-venv"
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --disable-pip-version-check -q -r tests/compat/requirements.txt
export RAFTLOCK_COMPAT_PYTHON="$venv/bin/python"

echo "== redlock and ioredis (npm ci in tests/compat, node $(node --version))"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
  echo "error: the redlock compatibility tests need node 18 or newer, found $(node --version)" >&2
  exit 1
fi
(cd tests/compat && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo fmt --check"
cargo fmt --check

echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

echo "== tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi

# The patched crates' own unit tests: openraft's (the engine and core the patches
# change) and fjall's journal tests. About 2 minutes of CPU to build from nothing.
scripts/vendor.sh --test

# The fault test (docs/FAULT-TESTING.md): the checkers' self-tests, then a short run on
# 3 and on 5 nodes with kills, pauses, partitions and clock steps. It needs root and
# network namespaces, and fails (never skips) without them.
echo "== nemesis: checker self-tests"
python3 -m unittest tests.nemesis.test_checkers
echo "== nemesis: short fault runs (3 and 5 nodes, about 75 s each)"
cargo build --release --quiet
nemesis_status=0
RAFTLOCK_BIN=target/release/raftlock scripts/nemesis.sh --nodes 3 --duration 60 --seed 1 \
  --out target/nemesis/short-n3 || nemesis_status=1
RAFTLOCK_BIN=target/release/raftlock scripts/nemesis.sh --nodes 5 --duration 60 --seed 2 \
  --out target/nemesis/short-n5 || nemesis_status=1

# Fuzzing (docs/FAULT-TESTING.md): every cargo-fuzz target for 60 s from its corpus in
# fuzz/corpus, two at a time (one per core).
echo "== fuzzing: every target for 60 s"
fuzz_status=0
scripts/fuzz.sh --build
FUZZ_SECONDS=60 scripts/fuzz.sh resp_request resp_reply command_args \
  >target/fuzz-a.log 2>&1 &
fuzz_a=$!
FUZZ_SECONDS=60 scripts/fuzz.sh lua_script snapshot_decode raft_wire raft_handshake \
  >target/fuzz-b.log 2>&1 &
fuzz_b=$!
wait "$fuzz_a" || fuzz_status=1
wait "$fuzz_b" || fuzz_status=1
cat target/fuzz-a.log target/fuzz-b.log | grep -v '^#[0-9]'

if [ "$nemesis_status" -ne 0 ] || [ "$fuzz_status" -ne 0 ]; then
  echo "== the fault runs or the fuzzers failed (see above)"
  exit 1
fi
