#!/usr/bin/env bash
# The installable CLI: `backstop` statically linked (musl: no glibc, no OpenSSL; it runs on any
# Linux of its architecture), one per architecture (CLI_ARCHES, default "amd64 arm64"):
# target/cli/backstop-linux-<arch>. With them, when this host can run one, its shell
# completions and man pages: target/cli/completions/ and target/cli/man/.
#
# Install one, e.g. on an Amazon Linux bastion:
#   install -m 0755 backstop-linux-arm64 /usr/local/bin/backstop
set -euo pipefail
cd "$(dirname "$0")/.."

ARCHES="${CLI_ARCHES:-amd64 arm64}"
mkdir -p target/cli
for arch in $ARCHES; do
  case "$arch" in
    amd64) triple=x86_64-unknown-linux-musl ;;
    arm64) triple=aarch64-unknown-linux-musl ;;
    *) echo "build-cli: unknown architecture $arch (amd64 or arm64)" >&2; exit 1 ;;
  esac
  echo "build-cli: building backstop for $triple"
  if [ "$arch" = arm64 ]; then
    # Built with the Lambda zips, in one feature resolution (nothing to do when they are fresh).
    scripts/build-lambda.sh >/dev/null
    unzip -p target/lambda/backstop/bootstrap.zip bootstrap > "target/cli/backstop-linux-$arch"
    chmod 0755 "target/cli/backstop-linux-$arch"
  else
    PATH="$PWD/.venv-tools/bin:$PATH" cargo lambda build --release --locked \
      --target "$triple" -p backstop-cli --lambda-dir "target/cli/$arch"
    install -m 0755 "target/cli/$arch/backstop/bootstrap" "target/cli/backstop-linux-$arch"
  fi
  ls -l "target/cli/backstop-linux-$arch" | awk '{printf "  %-32s %6.1f MB\n", $9, $5 / 1048576}'
done

# Completions and man pages, from whichever binary runs here.
for candidate in target/cli/backstop-linux-*; do
  if "$candidate" --version >/dev/null 2>&1; then
    rm -rf target/cli/completions target/cli/man
    mkdir -p target/cli/completions target/cli/man
    "$candidate" completions bash > target/cli/completions/backstop.bash
    "$candidate" completions zsh > target/cli/completions/_backstop
    "$candidate" completions fish > target/cli/completions/backstop.fish
    "$candidate" manpages target/cli/man
    echo "build-cli: completions and $(ls target/cli/man | wc -l) man pages in target/cli"
    break
  fi
done
