#!/usr/bin/env bash
# Runs the whole suite and ends with one totals line over every test binary cargo ran.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
cargo test --workspace --locked "$@" 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.txt
exit "$status"
