#!/usr/bin/env bash
# The deployable Lambda zips: target/lambda/<function>/bootstrap.zip, arm64, statically linked
# (musl) release builds; the container image takes its arm64 binaries from them
# (scripts/build-image.sh), so they are compiled once. The arm64 `backstop` CLI is built in the
# same invocation (target/lambda/backstop/bootstrap.zip, which scripts/build-cli.sh unpacks):
# one feature resolution, so the engine is compiled once for both.
set -euo pipefail
cd "$(dirname "$0")/.."

FUNCTIONS=(backup stream verify monitor retention notify-slack)

PATH="$PWD/.venv-tools/bin:$PATH" cargo lambda build --release --locked \
  --target aarch64-unknown-linux-musl --output-format zip \
  $(printf -- '-p %s ' "${FUNCTIONS[@]}") -p backstop-cli
for f in "${FUNCTIONS[@]}"; do
  ls -l "target/lambda/$f/bootstrap.zip" | awk -v f="$f" '{printf "  %-13s %6.1f MB\n", f, $5 / 1048576}'
done
