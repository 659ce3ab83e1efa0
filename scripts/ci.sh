#!/usr/bin/env bash
# Everything CI runs (`make test`, `.ci/run`), in order, each step timed; at the end (or at the
# first failure) a table of the steps' wall times, the suite's totals and its slowest tests.
#
# Each thing is built once: the dev profile of the workspace for clippy-free targets, tests and
# binaries in one `cargo build --all-targets`; the arm64 release build in the Lambda zips,
# which the image repacks with the static CLI (scripts/build-cli.sh). What is slow to make
# lives in the cache of scripts/cache.sh.
# IMAGE_ARCHES (default arm64 here: the architecture the module deploys) picks the images.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/cache.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export IMAGE_ARCHES="${IMAGE_ARCHES:-arm64}"
TIMES="$(mktemp)"
trap 'rm -f "$TIMES"' EXIT
RUN_START=$(date +%s.%N)

summary() {
  local status=$1
  echo
  echo "== CI steps (wall time) =="
  awk -F'\t' '{ printf "  %-12s %8.1f s  %s\n", $1, $2, $3; total += $2 }
              END { printf "  %-12s %8.1f s\n", "steps", total }' "$TIMES"
  awk -v start="$RUN_START" -v now="$(date +%s.%N)" 'BEGIN { printf "  %-12s %8.1f s (%.1f min)\n", "run", now - start, (now - start) / 60 }'
  for output in target/test-output-infra.txt target/test-output.txt; do
    [ -f "$output" ] && scripts/test-times.sh "$output"
  done
  if [ "$status" -eq 0 ]; then echo "CI passed"; else echo "CI failed"; fi
}

# step NAME COMMAND...: runs COMMAND, records its wall time; the first failure ends the run.
step() {
  local name=$1 start end status
  shift
  echo "== $name: $*"
  start=$(date +%s.%N)
  "$@" 9>&- # the lock stays with this script, not with servers a step starts
  status=$?
  end=$(date +%s.%N)
  printf '%s\t%s\t%s\n' "$name" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
    "$([ "$status" -eq 0 ] && echo ok || echo "FAILED ($status)")" >> "$TIMES"
  if [ "$status" -ne 0 ]; then
    summary "$status"
    exit "$status"
  fi
}

# One run at a time per cache: runs share its target directory (binaries at fixed paths)
# and its tools.
if [ "$BACKSTOP_CACHE_DIR" != off ]; then
  mkdir -p "$BACKSTOP_CACHE_DIR"
  exec 9>"$BACKSTOP_CACHE_DIR/.lock"
  if ! flock -n 9; then
    echo "ci: another run holds $BACKSTOP_CACHE_DIR/.lock; waiting for it (up to 90 minutes)"
    flock -w 5400 9 || { echo "ci: $BACKSTOP_CACHE_DIR/.lock is still held; is another run stuck?" >&2; exit 1; }
  fi
fi
cache_link_target
rm -f target/test-output.txt target/test-output-infra.txt
step deps bash -c 'scripts/install-deps.sh && scripts/install-pg-versions.sh'
step infra-deps scripts/install-infra-deps.sh
step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
step build cargo build --workspace --all-targets --locked
step lambda-zips scripts/build-lambda.sh
# The CLI for the image's architectures, and for amd64, which the static-binary test runs here.
export CLI_ARCHES="$(printf '%s\n' amd64 $IMAGE_ARCHES | sort -u | xargs)"
step cli scripts/build-cli.sh
step image scripts/build-image.sh
step infra-check scripts/infra-check.sh
# --workspace, not -p backstop-tests: the features of the whole workspace, as the build step
# resolved them, so the test binary it built is the one that runs (-p resolves fewer features
# and compiles the functions and the tests again).
step infra-tests scripts/run-tests.sh --output target/test-output-infra.txt \
  --workspace --test it -- --ignored infra::
step suite scripts/run-tests.sh -- --skip infra::
summary 0
