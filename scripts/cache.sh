#!/usr/bin/env bash
# Sourced by the scripts that install and build: keeps what is slow to make, and the same for
# every clone, in a cache outside the checkout, so that a second run on the same machine
# reuses it. BACKSTOP_CACHE_DIR (default /var/cache/backstop as root, where the postgres user
# the harness runs the servers as can reach the PostgreSQL builds; ~/.cache/backstop
# otherwise) holds:
#   target-<toolchain>/  cargo's target directory, one per rustc version (cargo's fingerprints
#                        decide what a changed Cargo.lock or source rebuilds)
#   pg/                  the PostgreSQL 13-18 matrix and the 18 client tools, checked against
#                        the pinned versions by install-pg-versions.sh
#   venv/                moto's server, checked against its pinned version by install-deps.sh
#   venv-tools/          cargo-lambda and checkov, checked by install-infra-deps.sh
# Each is linked into the checkout (target, .local/pg, .venv, .venv-tools) unless the
# checkout already has a directory of that name, which is then used as it is. With
# BACKSTOP_CACHE_DIR=off nothing is linked: everything lives in the checkout, as on a machine
# that never ran the suite. An empty cache is a fresh machine: everything is made again.
# The venvs are created at their real path (not through the link), so their scripts keep
# working from any clone.

if [ -z "${BACKSTOP_CACHE_DIR:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    BACKSTOP_CACHE_DIR=/var/cache/backstop
  else
    BACKSTOP_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/backstop"
  fi
fi
# The target directory is dropped whole when it grows past this (cargo never deletes old
# artifacts by itself).
BACKSTOP_CACHE_TARGET_MAX_GIB="${BACKSTOP_CACHE_TARGET_MAX_GIB:-40}"

# cache_link NAME DIR: NAME in the checkout points at DIR in the cache.
cache_link() {
  local name=$1 dir=$2
  [ "$BACKSTOP_CACHE_DIR" = off ] && return 0
  if [ -e "$name" ] && [ ! -L "$name" ]; then
    return 0 # a directory of the checkout's own: used as it is
  fi
  mkdir -p "$dir" "$(dirname "$name")"
  if [ "$(readlink "$name" 2>/dev/null)" != "$dir" ]; then
    ln -sfn "$dir" "$name"
  fi
}

# cache_path NAME: where NAME really lives (the cache directory it links to, or itself).
cache_path() {
  if [ -L "$1" ]; then readlink "$1"; else printf '%s/%s\n' "$PWD" "$1"; fi
}

# cache_link_target: target -> target-<toolchain> in the cache, trimmed when too big.
cache_link_target() {
  [ "$BACKSTOP_CACHE_DIR" = off ] && return 0
  local toolchain key dir size_kib
  toolchain="$(rustc -V 2>/dev/null)" || return 0 # no toolchain: nothing to key, nothing removed
  key="$(printf '%s' "$toolchain" | sha256sum | cut -c1-12)"
  dir="$BACKSTOP_CACHE_DIR/target-$key"
  if [ -d "$dir" ]; then
    size_kib="$(du -sk "$dir" 2>/dev/null | cut -f1)"
    if [ "${size_kib:-0}" -gt $((BACKSTOP_CACHE_TARGET_MAX_GIB * 1024 * 1024)) ]; then
      echo "cache: $dir passed ${BACKSTOP_CACHE_TARGET_MAX_GIB} GiB; starting it again"
      rm -rf "$dir"
    fi
  fi
  # Target directories of other toolchains are of no use to this one.
  for other in "$BACKSTOP_CACHE_DIR"/target-*; do
    [ -d "$other" ] && [ "$other" != "$dir" ] && rm -rf "$other"
  done
  cache_link target "$dir"
}
