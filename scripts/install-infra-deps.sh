#!/usr/bin/env bash
# Installs what `make build` and `make infra-check` need, skipping what is there: the aarch64
# Rust target, and a tools venv (.venv-tools) with cargo-lambda (which brings zig) and checkov.
# terraform and the hashicorp/aws provider mirror come with the machine image (DESIGN.md).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LAMBDA_VERSION="1.9.2"
CHECKOV_VERSION="3.3.30"

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "install-infra-deps: adding the aarch64-unknown-linux-gnu Rust target"
  rustup target add aarch64-unknown-linux-gnu
fi

if [ ! -x .venv-tools/bin/python ]; then
  python3 -m venv .venv-tools
fi
if ! .venv-tools/bin/cargo-lambda lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
  echo "install-infra-deps: installing cargo-lambda==$CARGO_LAMBDA_VERSION into .venv-tools"
  .venv-tools/bin/pip install -q --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi
if ! .venv-tools/bin/checkov --version 2>/dev/null | grep -q "$CHECKOV_VERSION"; then
  echo "install-infra-deps: installing checkov==$CHECKOV_VERSION into .venv-tools"
  .venv-tools/bin/pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
command -v terraform >/dev/null || { echo "install-infra-deps: terraform is not on PATH (it comes with the machine image)" >&2; exit 1; }
