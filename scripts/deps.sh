#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages berth needs, if any are missing: `deps.sh` for building and
# running, `deps.sh test` adds what the tests drive (real clients). Idempotent and
# non-interactive; uses sudo when not run as root. Used by run.sh and test.sh.
set -euo pipefail

packages=(
  # toolchain
  g++ make cmake ninja-build pkg-config ccache
  # libraries (the distribution's default versions)
  libboost-dev libboost-filesystem-dev libcli11-dev libpqxx-dev libyaml-cpp-dev libssl-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libarchive-dev libcrypt-dev libgtest-dev
  # the PostgreSQL server berth runs its cluster with (any major the distribution ships)
  postgresql
)
if [ "${1:-}" = test ]; then
  # The real registry clients the tests push and pull with, openssl and curl for TLS checks,
  # Apache's htpasswd (its bcrypt files must stay interchangeable with berth's), and python3 for
  # the reverse proxy's test upstreams. A minimal system (a container, a chroot) has none of them.
  packages+=(skopeo podman openssl curl ca-certificates apache2-utils python3)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
