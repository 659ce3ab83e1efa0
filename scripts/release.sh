#!/usr/bin/env bash
# A release, ready to upload: target/dist/backstop-<version>/ (RELEASE_DIR overrides) from what
# `make build cli image` left, with SHA256SUMS over every file:
#   lambda/<architecture>/<function>.zip   the functions (the module's lambda_artifacts.s3_prefix
#                                          points at the release folder)
#   image/backstop-<arch>.oci.tar          the container task's image (skopeo copy to ECR)
#   cli/backstop-linux-<arch>              the CLI, with completions/ and man/
#   VERSION
# With RELEASE_S3_URI=s3://bucket/prefix it then uploads the folder to
# s3://bucket/prefix/backstop-<version>/ (scripts/release-upload.py: each object with its
# SHA-256 checksum, none replaced). Nothing is built here: a missing artifact is named, with the
# make target that makes it.
set -euo pipefail
cd "$(dirname "$0")/.."

FUNCTIONS=(backup stream verify monitor retention notify-slack)
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
[ -n "$VERSION" ] || { echo "release: no version in Cargo.toml's [workspace.package]" >&2; exit 1; }
DIST="${RELEASE_DIR:-target/dist}/backstop-$VERSION"
IMAGE_ARCHES="${IMAGE_ARCHES:-arm64 amd64}"
CLI_ARCHES="${CLI_ARCHES:-amd64 arm64}"

missing=()
for f in "${FUNCTIONS[@]}"; do
  [ -f "target/lambda/$f/bootstrap.zip" ] || missing+=("target/lambda/$f/bootstrap.zip (make build)")
done
for arch in $IMAGE_ARCHES; do
  [ -f "target/image/backstop-$arch.oci.tar" ] || missing+=("target/image/backstop-$arch.oci.tar (make image)")
done
for arch in $CLI_ARCHES; do
  [ -f "target/cli/backstop-linux-$arch" ] || missing+=("target/cli/backstop-linux-$arch (make cli)")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "release: missing ${missing[*]}; run \`make release\`, which builds them first" >&2
  exit 1
fi

rm -rf "$DIST"
mkdir -p "$DIST/lambda/arm64" "$DIST/image" "$DIST/cli"
for f in "${FUNCTIONS[@]}"; do
  cp "target/lambda/$f/bootstrap.zip" "$DIST/lambda/arm64/$f.zip"
done
for arch in $IMAGE_ARCHES; do
  cp "target/image/backstop-$arch.oci.tar" "$DIST/image/"
done
for arch in $CLI_ARCHES; do
  cp "target/cli/backstop-linux-$arch" "$DIST/cli/"
done
for extra in completions man; do
  [ -d "target/cli/$extra" ] && cp -r "target/cli/$extra" "$DIST/cli/"
done
echo "$VERSION" > "$DIST/VERSION"
(cd "$DIST" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
echo "release: $DIST ($(du -sh "$DIST" | cut -f1), $(wc -l < "$DIST/SHA256SUMS") files in SHA256SUMS)"

if [ -n "${RELEASE_S3_URI:-}" ]; then
  .venv/bin/python scripts/release-upload.py "$DIST" "${RELEASE_S3_URI%/}/backstop-$VERSION"
fi
