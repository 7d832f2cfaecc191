#!/usr/bin/env bash
# The package built here (on Debian 12) installed and run on another release: scripts/install-test.sh
# inside a minimal chroot of that release (default: Debian 13 "trixie", the library generation of
# Ubuntu 24.04 and 26.04), where apt must satisfy the package's Depends from the archive alone.
#
#   scripts/install-test-chroot.sh [RELEASE]       (root; BERTH_DEB=path skips the package build)
#
# The base system is debootstrapped once and cached (scripts/chroot.sh); every run starts from it
# afresh, and whatever the run installed or started is gone when it ends. Exit 77: skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:-trixie}
[ "$(id -u)" -eq 0 ] || { echo "SKIPPED: needs root (debootstrap, mounts, chroot)"; exit 77; }
if [ -n "${BERTH_INSTALL_TEST_FROM_CTEST:-}" ] && [ "${BERTH_INSTALL_TEST:-0}" != 1 ]; then
  echo "SKIPPED: set BERTH_INSTALL_TEST=1 to run it (scripts/test.sh does as root)"
  exit 77
fi
started=$(date +%s)
if [ -n "${BERTH_DEB:-}" ]; then
  deb=$(realpath "$BERTH_DEB")
else
  scripts/package.sh > /tmp/berth-package-chroot.log 2>&1 || { tail -50 /tmp/berth-package-chroot.log; exit 1; }
  deb=$(realpath "$(ls -t dist/berth_*.deb | head -1)")
fi
echo "== installing $(basename "$deb") in a $release chroot"
status=0
scripts/chroot.sh --release "$release" --src --bind "$(dirname "$deb"):/deb:ro" \
  --env "BERTH_DEB=/deb/$(basename "$deb")" --env BERTH_INSTALL_TEST_APT_UPDATE=1 \
  -- /src/scripts/install-test.sh || status=$?
echo "install test in $release: $([ $status -eq 0 ] && echo passed || echo "FAILED ($status)") in $(($(date +%s) - started))s"
exit $status
