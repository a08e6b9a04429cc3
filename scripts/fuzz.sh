#!/usr/bin/env bash
# The fuzz targets in fuzz/ (cargo-fuzz, nightly).
#   scripts/fuzz.sh              build every target, run each FUZZ_SECONDS (30)
#                                from the committed corpus; fails on a crash
#   scripts/fuzz.sh TARGET...    only these targets
#   scripts/fuzz.sh seeds        rewrite the seed corpus (fuzz/corpus/)
# New corpus entries and crash artifacts go to a temporary directory (kept
# and printed on a crash), never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH=${FUZZ_SECONDS:-30}
TARGETS=(codec decimal snapshot journal_segment rest_request)
# The pinned toolchain (rust-toolchain.toml) is stable; libFuzzer needs nightly.
NIGHTLY=${FUZZ_TOOLCHAIN:-nightly}

install() {
  if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$NIGHTLY" --profile minimal
  fi
  if cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    return 0
  fi
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
}

build() {
  local start=$SECONDS
  cargo "+$NIGHTLY" fuzz build
  echo "== fuzz targets built in $((SECONDS - start)) s"
}

seeds() {
  build
  local bin=fuzz/target/x86_64-unknown-linux-gnu/release/seeds
  rm -rf fuzz/corpus
  "$bin" fuzz/corpus
  find fuzz/corpus -type f | sort
}

run() {
  local work
  work=$(mktemp -d)
  for t in "$@"; do
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    echo "== fuzz $t for $SECONDS_EACH s"
    # The first corpus directory receives new inputs: the temporary one.
    if ! cargo "+$NIGHTLY" fuzz run "$t" "$work/$t/corpus" "fuzz/corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -artifact_prefix="$work/$t/artifacts/" \
        -print_final_stats=1 2>"$work/$t/log"; then
      tail -n 40 "$work/$t/log" >&2
      echo "fuzz target $t crashed; input and log in $work/$t" >&2
      return 1
    fi
    grep -E "^stat::number_of_executed_units|^Done" "$work/$t/log" || true
  done
  rm -rf "$work"
}

install
case "${1:-}" in
  seeds) seeds ;;
  "") build && run "${TARGETS[@]}" ;;
  *) build && run "$@" ;;
esac
