#!/usr/bin/env bash
# The README's test command: install what is missing, build, and run every test (unit and
# integration). Exits non-zero on any failure. Extra arguments go to ctest (e.g. -L unit, -R Server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "$(nproc)" --timeout 600 "$@"
