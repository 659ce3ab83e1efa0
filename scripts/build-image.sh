#!/usr/bin/env bash
# Builds the container task's OCI image without a container daemon or a base image: the
# statically linked (musl) backup, stream and verify binaries, the `backstop` CLI (from
# scripts/build-cli.sh, at /backstop: `--entrypoint /backstop` runs it), the CA certificates
# and an empty /tmp on an empty base, entrypoint /backup. One image per architecture, each written as
# an OCI archive: target/image/backstop-<arch>.oci.tar (IMAGE_ARCHES, default "arm64 amd64").
# The arm64 binaries are the ones in `make build`'s Lambda zips (target/lambda/<name>/
# bootstrap.zip, run `make build` first); amd64 is built here.
#
# Push one to ECR with skopeo, e.g.:
#   skopeo copy oci-archive:target/image/backstop-arm64.oci.tar \
#     docker://<account>.dkr.ecr.<region>.amazonaws.com/backstop:<version>
set -euo pipefail
cd "$(dirname "$0")/.."

ARCHES="${IMAGE_ARCHES:-arm64 amd64}"
BINARIES=(backup stream verify)
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"

for tool in umoci skopeo unzip; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing; run scripts/install-infra-deps.sh" >&2; exit 1; }
done
[ -s "$CA_BUNDLE" ] || { echo "build-image: $CA_BUNDLE is missing; install Debian's ca-certificates" >&2; exit 1; }

mkdir -p target/image
for arch in $ARCHES; do
  binaries="target/image/$arch/bin"
  rm -rf "$binaries" && mkdir -p "$binaries"
  case "$arch" in
    arm64)
      for binary in "${BINARIES[@]}"; do
        zip="target/lambda/$binary/bootstrap.zip"
        [ -s "$zip" ] || { echo "build-image: $zip is missing; run make build first" >&2; exit 1; }
        unzip -p "$zip" bootstrap > "$binaries/$binary"
      done
      ;;
    amd64)
      echo "build-image: building ${BINARIES[*]} for x86_64-unknown-linux-musl"
      PATH="$PWD/.venv-tools/bin:$PATH" cargo lambda build --release --locked \
        --target x86_64-unknown-linux-musl \
        --lambda-dir "target/image/amd64/lambda" $(printf -- '-p %s ' "${BINARIES[@]}")
      for binary in "${BINARIES[@]}"; do
        cp "target/image/amd64/lambda/$binary/bootstrap" "$binaries/$binary"
      done
      ;;
    *) echo "build-image: unknown architecture $arch (arm64 or amd64)" >&2; exit 1 ;;
  esac

  layout="target/image/$arch/layout"
  bundle="target/image/$arch/bundle"
  rm -rf "$layout" "$bundle"
  umoci init --layout "$layout"
  umoci new --image "$layout:backstop"
  umoci unpack --rootless --image "$layout:backstop" "$bundle"
  rootfs="$bundle/rootfs"
  for binary in "${BINARIES[@]}"; do
    install -m 0755 "$binaries/$binary" "$rootfs/$binary"
  done
  cli="target/cli/backstop-linux-$arch"
  [ -s "$cli" ] || { echo "build-image: $cli is missing; run make cli (CLI_ARCHES=$arch)" >&2; exit 1; }
  install -m 0755 "$cli" "$rootfs/backstop"
  install -D -m 0644 "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  install -d -m 1777 "$rootfs/tmp"
  umoci repack --image "$layout:backstop" "$bundle"
  umoci config --image "$layout:backstop" \
    --os linux --architecture "$arch" \
    --config.entrypoint /backup \
    --config.workingdir / \
    --config.user 65534:65534 \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.env TMPDIR=/tmp \
    --config.label "org.opencontainers.image.title=backstop" \
    --config.label "org.opencontainers.image.version=$VERSION" \
    --config.label "org.opencontainers.image.description=Backstop's backup, stream and verify jobs (BACKSTOP_JOB), and the backstop CLI at /backstop"
  umoci gc --layout "$layout"
  rm -f "target/image/backstop-$arch.oci.tar"
  skopeo copy --quiet "oci:$layout:backstop" "oci-archive:target/image/backstop-$arch.oci.tar:backstop:$VERSION"
  rm -rf "$bundle"
  ls -l "target/image/backstop-$arch.oci.tar" | awk '{printf "  %-32s %6.1f MB\n", $9, $5 / 1048576}'
done
