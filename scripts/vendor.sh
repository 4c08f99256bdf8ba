#!/usr/bin/env bash
# Rebuilds vendor/openraft and vendor/fjall from the crates as published on crates.io (the
# versions and the registry's sha256 checksums pinned below) and raftlock's patches to them
# in vendor/patches/<crate>/, applied in the order of their numbers (docs/VENDOR.md).
#
#   scripts/vendor.sh           rebuild vendor/<crate> in place (its PATCHES.md is kept)
#   scripts/vendor.sh --check   rebuild into a temporary directory and fail, with a summary
#                               of the differences, if vendor/ is not the same
#   scripts/vendor.sh --test    run the vendored crates' own unit tests: openraft's whole
#                               lib (engine, config, core, ...) and fjall's journal module,
#                               with each crate's own Cargo.lock (about 2 minutes of CPU to
#                               build from nothing, seconds to run; docs/VENDOR.md)
#
# Needs bash, tar, sha256sum, git (for `git apply`; GNU patch if git is missing) and curl
# or cargo to fetch a .crate that is not in cargo's cache (target/vendor-crates keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

# name, version, sha256 of the .crate (the "cksum" of that version in the crates.io index).
CRATES=(
  "openraft 0.9.25 a97014fb78acb77be3a40ac2da305f6dd3a6b243f3a908ace87d29b3972eaafd"
  "fjall 3.1.13 6e98f7212d748b723dcfbd43d5f166958945ad2c05ad4537fb99bcda42ad8a96"
)
# What cargo adds to a .crate when it packages it: not part of the vendored tree.
PACKAGING=(.cargo_vcs_info.json Cargo.toml.orig)
# raftlock's own files in vendor/<crate>/: kept on a rebuild, left out of the comparison.
OWN=(PATCHES.md)

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  --test)
    # In place, each crate with its own Cargo.lock (--locked), built where the main build
    # is (not in vendor/<crate>/target), with the features raftlock uses.
    target="${CARGO_TARGET_DIR:-$PWD/target}"
    echo "== openraft's own unit tests (features serde, storage-v2, as raftlock uses it)"
    cargo test --locked --quiet --manifest-path vendor/openraft/Cargo.toml --target-dir "$target" \
      --lib --features serde,storage-v2
    echo "== fjall's own unit tests of its journal (journal::)"
    cargo test --locked --quiet --manifest-path vendor/fjall/Cargo.toml --target-dir "$target" \
      --lib journal::
    exit 0
    ;;
  *)
    echo "usage: scripts/vendor.sh [--check | --test]" >&2
    exit 2
    ;;
esac

die() {
  echo "vendor.sh: $*" >&2
  exit 1
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/raftlock-vendor.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cache="target/vendor-crates"

# Puts <name>-<version>.crate, checked against its sha256, at $tmp/<name>.crate.
fetch_crate() {
  local name=$1 version=$2 sum=$3 file="$name-$version.crate" out="$tmp/$name.crate" f
  local cargo_cache="${CARGO_HOME:-$HOME/.cargo}/registry/cache"
  # Where a checked copy may already be: ours, then cargo's.
  for f in "$cache/$file" "$cargo_cache"/*/"$file"; do
    if [ -f "$f" ] && echo "$sum  $f" | sha256sum --check --status; then
      cp "$f" "$out"
      return
    fi
  done
  if command -v curl >/dev/null 2>&1 \
    && curl -sSfL --retry 3 -o "$out" "https://static.crates.io/crates/$name/$file"; then
    :
  else
    # Through cargo and whatever registry it is configured with: `cargo info` downloads
    # the crate into cargo's cache (run outside this package, which patches the crate).
    echo "vendor.sh: fetching $name $version with cargo" >&2
    (cd "$tmp" && cargo info --quiet "$name@$version" >/dev/null) \
      || die "cannot download $file (curl and cargo failed)"
    for f in "$cargo_cache"/*/"$file"; do
      [ -f "$f" ] && cp "$f" "$out"
    done
    [ -f "$out" ] || die "cargo info did not leave $file in $cargo_cache"
  fi
  echo "$sum  $out" | sha256sum --check --status \
    || die "$file: sha256 $(sha256sum "$out" | cut -d' ' -f1), expected $sum (the registry's)"
  mkdir -p "$cache"
  cp "$out" "$cache/$file"
}

# Applies one patch file inside directory $1.
apply_patch() {
  local dir=$1 patch=$2
  if command -v git >/dev/null 2>&1; then
    # GIT_CEILING_DIRECTORIES: $dir is a plain directory, whatever repository is around it.
    (cd "$dir" && GIT_CEILING_DIRECTORIES="$(dirname "$dir")" \
      git apply -p1 --whitespace=nowarn "$patch")
  else
    patch -d "$dir" -p1 --forward --quiet --no-backup-if-mismatch <"$patch"
  fi
}

# Builds the vendored tree of one crate at $tmp/build/<name>.
build_crate() {
  local name=$1 version=$2 dest="$tmp/build/$1" f p
  mkdir -p "$tmp/unpack" "$tmp/build"
  # -m: files get the time of the rebuild, not the crate's, so cargo sees what changed.
  tar -xzmf "$tmp/$name.crate" -C "$tmp/unpack"
  [ -d "$tmp/unpack/$name-$version" ] || die "$name.crate has no $name-$version/"
  mv "$tmp/unpack/$name-$version" "$dest"
  for f in "${PACKAGING[@]}"; do
    rm -f "$dest/$f"
  done
  for p in vendor/patches/"$name"/[0-9][0-9][0-9][0-9]-*.patch; do
    [ -f "$p" ] || continue
    apply_patch "$dest" "$PWD/$p" || die "$p does not apply to $name $version (after the ones before it)"
  done
}

# The version Cargo.lock resolves a crate to (the vendored one, through [patch.crates-io]).
locked_version() {
  awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

status=0
for spec in "${CRATES[@]}"; do
  read -r name version sum <<<"$spec"
  locked="$(locked_version "$name")"
  if [ "$locked" != "$version" ]; then
    # After a change of the pinned version the next cargo build updates Cargo.lock.
    [ "$check" = 1 ] || echo "vendor.sh: note: Cargo.lock has $name ${locked:-(none)}, until cargo builds"
    [ "$check" = 0 ] || die "Cargo.lock has $name ${locked:-(none)}, scripts/vendor.sh pins $version"
  fi
  fetch_crate "$name" "$version" "$sum"
  build_crate "$name" "$version"
  built="$tmp/build/$name"
  if [ "$check" = 1 ]; then
    excludes=()
    for f in "${OWN[@]}"; do
      excludes+=(--exclude="$f")
    done
    if ! diff -rq "${excludes[@]}" "vendor/$name" "$built" >"$tmp/summary"; then
      status=1
      echo "vendor.sh --check: vendor/$name is not $name $version with vendor/patches/$name/*:"
      sed -e "s|$built|(rebuilt)|g" "$tmp/summary"
      diff -ru "${excludes[@]}" "vendor/$name" "$built" | grep -v -e "^diff -ru " -e "^Only in " | sed -e "s|$built|(rebuilt)|g" \
        | head -n 60 || true
    else
      echo "vendor.sh --check: vendor/$name is $name $version with $(ls vendor/patches/"$name"/*.patch 2>/dev/null | wc -l) patches"
    fi
  else
    for f in "${OWN[@]}"; do
      if [ -f "vendor/$name/$f" ]; then cp "vendor/$name/$f" "$built/$f"; fi
    done
    # Only the files that differ are written (so cargo rebuilds only if something changed),
    # and the ones the rebuild has not are removed.
    mkdir -p "vendor/$name"
    (cd "$built" && find . -type f) | while IFS= read -r f; do
      if ! cmp -s "$built/$f" "vendor/$name/$f"; then
        mkdir -p "$(dirname "vendor/$name/$f")"
        cp "$built/$f" "vendor/$name/$f"
      fi
    done
    (cd "vendor/$name" && find . -type f) | while IFS= read -r f; do
      if [ ! -e "$built/$f" ]; then rm -f "vendor/$name/$f"; fi
    done
    find "vendor/$name" -depth -type d -empty -delete
    echo "vendor.sh: vendor/$name rebuilt: $name $version with $(ls vendor/patches/"$name"/*.patch 2>/dev/null | wc -l) patches"
  fi
done

if [ "$status" -ne 0 ]; then
  echo "vendor.sh --check: failed. A change to a vendored crate belongs in a patch in" \
    "vendor/patches/<crate>/ (docs/VENDOR.md); scripts/vendor.sh rebuilds vendor/ from them." >&2
fi
exit "$status"
