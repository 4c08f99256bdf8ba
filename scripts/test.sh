#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs
# formatting and lint checks, unit tests and integration tests against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "== note: ${need_apt[*]} missing and not root; tests that need them will skip"
  fi
fi

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
