#!/usr/bin/env bash
# Runs tests (the whole suite by default) with each test's time, and ends with one totals line
# over every test binary cargo ran and the slowest tests (scripts/test-times.sh).
#   scripts/run-tests.sh [--output FILE] [cargo test arguments] [-- test binary arguments]
# The times come from libtest's --report-time, an unstable option of the test binaries that
# RUSTC_BOOTSTRAP=1 unlocks. It is set for the test processes only, through cargo's target
# runner: set for cargo, it would rebuild every crate whose build script looks at it.
set -uo pipefail
cd "$(dirname "$0")/.."
output=target/test-output.txt
if [ "${1:-}" = "--output" ]; then
  output=$2
  shift 2
fi
cargo_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  cargo_args+=("$1")
  shift
done
[ "${1:-}" = "--" ] && shift
if [ "${#cargo_args[@]}" -eq 0 ]; then
  cargo_args=(--workspace)
fi
mkdir -p "$(dirname "$output")"
host="$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')"
export "CARGO_TARGET_${host}_RUNNER=env RUSTC_BOOTSTRAP=1"
cargo test --locked "${cargo_args[@]}" -- -Z unstable-options --report-time "$@" \
  2>&1 | tee "$output"
status=${PIPESTATUS[0]}
scripts/test-times.sh "$output" totals
exit "$status"
