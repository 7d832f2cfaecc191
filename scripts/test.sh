#!/usr/bin/env bash
# The README's test command: install what is missing, build, and run every test (unit and
# integration). Exits non-zero on any failure. Extra arguments go to ctest (e.g. -L unit, -R Server).
# As root (CI) it also runs the package install test (label install: builds the .deb, installs,
# upgrades and purges it on this machine); BERTH_INSTALL_TEST=0 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/build.sh
if [ "$(id -u)" -eq 0 ]; then export BERTH_INSTALL_TEST=${BERTH_INSTALL_TEST:-1}; fi
ctest --test-dir build --output-on-failure --parallel "$(nproc)" --timeout 600 "$@"
