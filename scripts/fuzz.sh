#!/usr/bin/env bash
# Fuzzes raftlock with cargo-fuzz (fuzz/): builds every target once, then runs each for
# FUZZ_SECONDS (default 60) from its corpus in fuzz/corpus/<target>. Exits non-zero if any
# target crashed, hung or ran out of memory, and says where the input that did it is.
#
#   scripts/fuzz.sh [target ...]        run all targets (or the ones named)
#   FUZZ_SECONDS=900 scripts/fuzz.sh    a longer run
#   scripts/fuzz.sh --build             only build the targets (and install cargo-fuzz)
#   scripts/fuzz.sh --seeds             rewrite the seed inputs (fuzz/corpus/*/seed-*)
#   scripts/fuzz.sh --cmin [target ...] merge what runs found into fuzz/corpus, minimized
#                                       (the seeds are written again after)
#
# New inputs a run finds go to $FUZZ_TARGET_DIR/corpus/<target> (kept between local runs,
# never committed); --cmin folds them into the committed corpus. Crash inputs go to
# fuzz/artifacts/<target>/. Reproduce one with: scripts/fuzz.sh --repro <target> <file>.
#
# The stable toolchain builds the targets: cargo-fuzz passes nightly flags
# (-Zsanitizer=address), which RUSTC_BOOTSTRAP=1 lets stable rustc accept. ASan works
# this way. FUZZ_SANITIZER=none would build without it (no malloc limit then; untried).
# FUZZ_TARGET_DIR (default fuzz/target) is the one build directory every run reuses.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(resp_request resp_reply command_args lua_script snapshot_decode raft_wire raft_handshake)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}
FUZZ_TARGET_DIR=$(realpath -m "${FUZZ_TARGET_DIR:-fuzz/target}")
export RUSTC_BOOTSTRAP=1
BIN_DIR="$FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release"

# The largest single allocation (MB) each target may make: a length prefix or a count
# must never size one. Scripts may build strings up to the Lua heap limit (64 MiB);
# a Raft frame may be 64 MiB.
declare -A MALLOC_LIMIT_MB=(
  [resp_request]=64 [resp_reply]=64 [command_args]=256
  [lua_script]=256 [snapshot_decode]=64 [raft_wire]=128 [raft_handshake]=64
)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

build() {
  echo "fuzz.sh: building the fuzz targets (release, debug assertions, sanitizer $FUZZ_SANITIZER)" >&2
  local start=$SECONDS log="$FUZZ_TARGET_DIR/logs/build.log"
  mkdir -p "$(dirname "$log")"
  if ! nice -n 10 cargo fuzz build --debug-assertions --sanitizer "$FUZZ_SANITIZER" \
    --target-dir "$FUZZ_TARGET_DIR" >"$log" 2>&1; then
    tail -60 "$log" >&2
    echo "fuzz.sh: the build failed (all of it in $log)" >&2
    exit 1
  fi
  echo "fuzz.sh: built in $((SECONDS - start)) s" >&2
}

# Options every libFuzzer run gets for `target`.
libfuzzer_options() {
  local target=$1
  local options=(-timeout=10 -rss_limit_mb=2048 "-artifact_prefix=fuzz/artifacts/$target/")
  if [[ $FUZZ_SANITIZER == address ]]; then
    options+=("-malloc_limit_mb=${MALLOC_LIMIT_MB[$target]}")
  fi
  if [[ -f fuzz/dicts/$target.dict ]]; then
    options+=("-dict=fuzz/dicts/$target.dict")
  fi
  echo "${options[@]}"
}

case "${1:-}" in
  --build)
    build
    exit 0
    ;;
  --seeds)
    build
    "$BIN_DIR/make_seeds" fuzz/corpus
    exit 0
    ;;
  --repro)
    [[ $# -eq 3 ]] || { echo "usage: scripts/fuzz.sh --repro <target> <input>" >&2; exit 2; }
    build
    # shellcheck disable=SC2046
    exec "$BIN_DIR/$2" $(libfuzzer_options "$2") "$3"
    ;;
  --cmin)
    shift
    [[ $# -gt 0 ]] || set -- "${ALL_TARGETS[@]}"
    build
    for target in "$@"; do
      found="$FUZZ_TARGET_DIR/corpus/$target"
      merged="$FUZZ_TARGET_DIR/corpus-merged/$target"
      mkdir -p "$found" "fuzz/corpus/$target"
      rm -rf "$merged" && mkdir -p "$merged"
      # The smallest set of inputs that covers every edge any of them covers (hit counts
      # left out, which keeps the committed corpus to a few hundred KB in all).
      # shellcheck disable=SC2046
      nice -n 10 "$BIN_DIR/$target" $(libfuzzer_options "$target") -set_cover_merge=1 -use_counters=0 \
        "$merged" "fuzz/corpus/$target" "$found"
      rm -rf "fuzz/corpus/$target" && mv "$merged" "fuzz/corpus/$target"
    done
    # The seeds stay, readable examples of each target's input, whatever they cover.
    "$BIN_DIR/make_seeds" fuzz/corpus
    for target in "$@"; do
      echo "fuzz.sh: fuzz/corpus/$target: $(find "fuzz/corpus/$target" -type f | wc -l) inputs, $(du -sk --apparent-size "fuzz/corpus/$target" | cut -f1) KB"
    done
    exit 0
    ;;
esac

[[ $# -gt 0 ]] || set -- "${ALL_TARGETS[@]}"
targets=("$@")
build
failed=()
summary=()
run_start=$SECONDS
for target in "${targets[@]}"; do
  found="$FUZZ_TARGET_DIR/corpus/$target"
  log="$FUZZ_TARGET_DIR/logs/$target.log"
  mkdir -p "$found" "fuzz/corpus/$target" "fuzz/artifacts/$target" "$(dirname "$log")"
  echo "fuzz.sh: $target for ${FUZZ_SECONDS} s" >&2
  status=0
  # New inputs go to the first directory; the committed corpus is only read.
  # shellcheck disable=SC2046
  nice -n 10 "$BIN_DIR/$target" $(libfuzzer_options "$target") \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
    "$found" "fuzz/corpus/$target" >"$log" 2>&1 || status=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs_per_s=$(grep -oE 'average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' <<<"$done_line" || echo "cov: ? ft: ?")
  if [[ $status -eq 0 ]]; then
    summary+=("$(printf '%-16s ok     %6s exec/s  %s' "$target" "$execs_per_s" "$cov")")
  else
    failed+=("$target")
    input=$(grep -oE 'Test unit written to [^ ]+' "$log" | awk '{print $NF}' | tail -1 || true)
    summary+=("$(printf '%-16s FAILED (exit %s) input: %s' "$target" "$status" "${input:-none written}")")
    echo "fuzz.sh: $target failed; the end of its log ($log):" >&2
    grep -vE '^#[0-9]+ ' "$log" | tail -40 >&2
    if [[ -n $input ]]; then
      echo "fuzz.sh: reproduce with: scripts/fuzz.sh --repro $target $input" >&2
    fi
  fi
done
echo "fuzz.sh: ran ${#targets[@]} targets in $((SECONDS - run_start)) s:"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
