#!/usr/bin/env bash
# The README's run command: install what is missing, build, and start berth in the foreground on
# its dev defaults (berth.dev.yaml: data under ./var, plain HTTP on 127.0.0.1:5000). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec build/bin/berth --config berth.dev.yaml serve "$@"
