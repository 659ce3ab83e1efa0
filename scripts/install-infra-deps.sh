#!/usr/bin/env bash
# Installs what `make build`, `make image` and `make infra-check` need, skipping what is there:
# the Rust targets, umoci and skopeo, and a tools venv (.venv-tools, kept in the cache of
# scripts/cache.sh) with cargo-lambda (which brings zig) and checkov.
# terraform and the hashicorp/aws provider mirror come with the machine image (DESIGN.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cache.sh

CARGO_LAMBDA_VERSION="1.9.2"
CHECKOV_VERSION="3.3.30"

# The Lambda zips and the arm64 image (static musl); the amd64 image's target only when
# IMAGE_ARCHES (default "arm64 amd64", as scripts/build-image.sh) asks for it.
targets=(aarch64-unknown-linux-musl)
case " ${IMAGE_ARCHES:-arm64 amd64} " in *" amd64 "*) targets+=(x86_64-unknown-linux-musl) ;; esac
for target in "${targets[@]}"; do
  if ! rustup target list --installed | grep -qx "$target"; then
    echo "install-infra-deps: adding the $target Rust target"
    rustup target add "$target"
  fi
done

# OCI images without a container daemon (make image), qemu's user-mode emulator, under
# which the infra tests run the arm64 image's job on an x86_64 host, and a static busybox,
# the only other thing in the userland the static CLI is run in.
missing=()
for package in umoci skopeo ca-certificates qemu-user-static busybox-static; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-infra-deps: installing ${missing[*]}"
  as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
      echo "install-infra-deps: need root for: $*; run as root or install sudo" >&2; exit 1
    fi
  }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cache_link .venv-tools "$BACKSTOP_CACHE_DIR/venv-tools"
venv="$(cache_path .venv-tools)"
if ! .venv-tools/bin/python -c "" 2>/dev/null; then
  python3 -m venv --clear "$venv"
fi
if ! .venv-tools/bin/cargo-lambda lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
  echo "install-infra-deps: installing cargo-lambda==$CARGO_LAMBDA_VERSION into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi
if ! .venv-tools/bin/checkov --version 2>/dev/null | grep -q "$CHECKOV_VERSION"; then
  echo "install-infra-deps: installing checkov==$CHECKOV_VERSION into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
command -v terraform >/dev/null || { echo "install-infra-deps: terraform is not on PATH (it comes with the machine image)" >&2; exit 1; }
