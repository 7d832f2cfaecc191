#!/usr/bin/env bash
# Builds the Debian package from the committed tree: dist/berth_<version>_<arch>.deb, then runs
# lintian on it (errors fail the script). Installs debhelper and lintian when missing.
# BERTH_PACKAGE_JOBS=N limits the compile jobs (default: one per CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
missing=()
for package in debhelper lintian fakeroot dpkg-dev; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

started=$(date +%s)
# The committed tree only (no build/, var/), with packaging/debian as the package's debian/. The
# build folder has a fixed path so that ccache finds the objects of the previous package build.
work=$PWD/build-package
rm -rf "$work"
mkdir -p "$work"
git archive --format=tar --prefix=berth/ HEAD | tar -x -C "$work"
cp -r "$work/berth/packaging/debian" "$work/berth/debian"
if command -v ccache >/dev/null; then
  # debhelper points HOME elsewhere while building: name ccache's cache and settings explicitly.
  CCACHE_DIR=${CCACHE_DIR:-$(ccache -k cache_dir)}
  export CCACHE_DIR CCACHE_NOHASHDIR=1
  base_dir=$(ccache -k base_dir)
  [ -z "$base_dir" ] || export CCACHE_BASEDIR="$base_dir"
fi
(cd "$work/berth" && DEB_BUILD_OPTIONS="parallel=${BERTH_PACKAGE_JOBS:-$(nproc)} nocheck" dpkg-buildpackage -b -us -uc)
mkdir -p dist
cp "$work"/berth_*.deb dist/
echo "package built in $(($(date +%s) - started))s"
deb=$(ls -t dist/berth_*.deb | head -1)
echo "package: $deb"
# Errors fail; warnings are printed for the notes.
lintian --fail-on error --suppress-tags dir-or-file-in-srv "$deb"
