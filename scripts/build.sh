#!/usr/bin/env bash
# Configures (once) and builds berth and its tests into ./build. Extra arguments go to CMake's
# configure step, e.g. scripts/build.sh -DCMAKE_BUILD_TYPE=Debug.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -G Ninja -DBERTH_WERROR=ON "$@" >/dev/null
cmake --build build --parallel "$jobs"
