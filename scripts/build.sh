#!/usr/bin/env bash
# Configures (once) and builds berth and its tests into ./build. Extra arguments go to CMake's
# configure step, e.g. scripts/build.sh -DCMAKE_BUILD_TYPE=Debug.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# ccache keys on paths relative to the checkout, so that another clone of it (CI's) finds the
# objects this one compiled.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
cmake -S . -B build -G Ninja -DBERTH_WERROR=ON "$@" >/dev/null
cmake --build build --parallel "$jobs"
