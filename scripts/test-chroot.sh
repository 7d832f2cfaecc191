#!/usr/bin/env bash
# The README's test command on another Debian release, in a chroot of it (root): how berth is
# checked on Debian 13 "trixie" (g++ 14, Boost 1.83, libpqxx 7.10, yaml-cpp 0.8, PostgreSQL 17),
# the library generation of Ubuntu 24.04 and 26.04.
#
#   scripts/test-chroot.sh [RELEASE] [CTEST ARGS...]      e.g. scripts/test-chroot.sh trixie -L unit
#
# The working tree (less build/, dist/, var/) is synced into /opt/berth in the chroot (only files
# whose content changed get a new time, so the build there stays incremental), where
# scripts/test.sh installs the packages it needs, builds and runs every test. The chroot's state
# "test" keeps the installed packages, the build folder and ccache for the next run
# (scripts/chroot.sh). The package install tests are left out here: scripts/install-test-chroot.sh
# installs the real .deb instead.
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:-trixie}
[ $# -eq 0 ] || shift
exec scripts/chroot.sh --release "$release" --state test --src --env BERTH_INSTALL_TEST=0 -- bash -c '
  set -euo pipefail
  # Not under /root: PostgreSQL runs as its own user and must reach the binary (mode 0755 path).
  tree=/opt/berth incoming=/opt/berth.incoming
  rm -rf "$incoming" && mkdir -p "$incoming" "$tree"
  tar -C /src --exclude=./build --exclude=./build-package --exclude=./dist --exclude=./var -cf - . |
    tar -C "$incoming" -xf -
  (cd "$incoming" && find . -type f -print0) | while IFS= read -r -d "" file; do
    cmp -s "$incoming/$file" "$tree/$file" || { mkdir -p "$(dirname "$tree/$file")"; cp -p "$incoming/$file" "$tree/$file"; touch "$tree/$file"; }
  done
  (cd "$tree" && find . -path ./build -prune -o -type f -print0) | while IFS= read -r -d "" file; do
    [ -e "$incoming/$file" ] || rm -f "$tree/$file"
  done
  rm -rf "$incoming"
  cd "$tree"
  exec scripts/test.sh "$@"' test-chroot "$@"
