#!/usr/bin/env bash
# The README's run command: install what is missing, build, and start berth in the foreground on
# its dev defaults (berth.dev.yaml: data under ./var, plain HTTP on 127.0.0.1:5000). Ctrl-C stops it.
# The configuration is found as every berth command finds it: --config FILE among the arguments,
# else $BERTH_CONFIG, else ./berth.local.yaml (your own, untracked), else ./berth.dev.yaml.
# Other arguments go to `berth serve` (e.g. --listen 127.0.0.1:5001 --data ./var2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec build/bin/berth serve "$@"
