#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine, skipping what is there:
# PostgreSQL (server, contrib, client, PostGIS for 15), PgBouncer, jq, zstd and age (the runbook
# restores an encrypted set by hand with them), a C compiler (the test security label provider
# is built against the 18 client tools' server headers), faketime (the clock fault tests),
# Chromium and its WebDriver (the status page is opened in a headless browser) and a
# project venv (.venv, kept in the cache of scripts/cache.sh) with moto's server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cache.sh

MOTO_VERSION="5.1.22"   # 5.2.x answers GetBucketVersioning in a shape the Rust SDK rejects
APT_PACKAGES=(postgresql postgresql-contrib postgresql-client postgresql-15-postgis-3 pgbouncer jq zstd age openssl python3-venv unzip gcc libc6-dev faketime chromium chromium-driver fonts-dejavu-core)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install-deps: need root for: $*; run as root or install sudo" >&2; exit 1
  fi
}

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cache_link .venv "$BACKSTOP_CACHE_DIR/venv"
if ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  venv="$(cache_path .venv)"
  echo "install-deps: installing moto[server]==$MOTO_VERSION into $venv"
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
