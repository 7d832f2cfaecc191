#!/usr/bin/env bash
# Builds the Debian package dist/berth_<version>_<arch>.deb from the build tree the tests use
# (./build, or BERTH_BUILD_DIR), then runs lintian on it (errors fail the script). Installs
# debhelper and lintian when missing.
#
# The package installs the binary of that build tree (debian/rules with BERTH_PREBUILT) rather than
# compiling everything a second time: the tests ran on exactly what ships. The tree must be the
# shipping configuration (RelWithDebInfo, BERTH_PORTABLE, BERTH_HARDENING, prefix /usr), which is
# what scripts/build.sh makes; anything else is refused, naming the setting.
# Build on the oldest release the package supports (Debian 12): the binary then runs on all newer
# ones (glibc and libstdc++ keep their old symbols).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
missing=()
for package in debhelper lintian fakeroot dpkg-dev build-essential; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# systemd.pc (the unit directory) is in systemd-dev since systemd 253, in systemd before.
if ! pkg-config --exists systemd; then
  if apt-cache show systemd-dev >/dev/null 2>&1; then missing+=(systemd-dev); else missing+=(systemd); fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

started=$(date +%s)
build=$(realpath "${BERTH_BUILD_DIR:-build}")
[ -f "$build/CMakeCache.txt" ] || scripts/build.sh
setting() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
for expected in CMAKE_BUILD_TYPE=RelWithDebInfo BERTH_PORTABLE=ON BERTH_HARDENING=ON CMAKE_INSTALL_PREFIX=/usr; do
  name=${expected%%=*}
  [ "$(setting "$name")" = "${expected#*=}" ] || {
    echo "package: $build has $name=$(setting "$name"), the package needs $expected:" \
      "run scripts/build.sh -D$expected (or set BERTH_BUILD_DIR to a tree configured so)" >&2
    exit 1
  }
done
cmake --build "$build" --target berth

# debian/ from packaging/, in a folder of its own (dpkg-buildpackage writes beside it).
work=$build/package
rm -rf "$work"
mkdir -p "$work/berth"
cp -r packaging/debian "$work/berth/debian"
(cd "$work/berth" && BERTH_PREBUILT=$build DEB_BUILD_OPTIONS="nocheck" dpkg-buildpackage -b -us -uc)
mkdir -p dist
cp "$work"/berth_*.deb dist/
echo "package built in $(($(date +%s) - started))s"
deb=$(ls -t dist/berth_*.deb | head -1)
echo "package: $deb ($(du -k "$deb" | cut -f1) KiB)"
echo "depends: $(dpkg-deb -f "$deb" Depends)"
# Errors fail; warnings are printed for the notes.
lintian --fail-on error --suppress-tags dir-or-file-in-srv "$deb"
