#!/usr/bin/env bash
# HTTP core side by side: GET /v2/ on berth and on the CNCF distribution registry (Debian's
# docker-registry), same machine, same load generator (wrk), one run. Prints requests/s,
# latency and RSS of each, and berth's ratios. Not a test: numbers go into issue notes.
#
#   bench/http_base.sh [SECONDS] [CONNECTIONS]      (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
berth=build/bin/berth
[ -x "$berth" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
for tool in wrk docker-registry curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install wrk docker-registry curl" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
source bench/lib.sh  # after the cd above: paths are relative to the repository

berth_port=$(free_port)
"$berth" --config /dev/null --log-level warn serve --listen "127.0.0.1:$berth_port" --data "$work/berth" \
  2>"$work/berth.log" &
pids+=($!); berth_pid=$!

registry_port=$(free_port)
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$registry_port}
YAML
docker-registry serve "$work/registry.yml" 2>"$work/registry.log" &
pids+=($!); registry_pid=$!

wait_ready "http://127.0.0.1:$berth_port/v2/"
wait_ready "http://127.0.0.1:$registry_port/v2/"

measure() {  # name url pid -> "rps p50 p99 rss"
  local out
  out=$(wrk -t1 -c"$connections" -d"${seconds}s" --latency "$2")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $p50 $p99 $(status_kib "$3" VmRSS)"
}

read -r b_rps b_p50 b_p99 b_rss < <(measure berth "http://127.0.0.1:$berth_port/v2/" "$berth_pid")
read -r r_rps r_p50 r_p99 r_rss < <(measure registry "http://127.0.0.1:$registry_port/v2/" "$registry_pid")

printf '\nGET /v2/, %s connections, %ss each, wrk 1 thread, %s CPUs\n' "$connections" "$seconds" "$(nproc)"
printf '%-16s %12s %10s %10s %10s\n' server 'req/s' p50 p99 'RSS KiB'
printf '%-16s %12s %10s %10s %10s\n' berth "$b_rps" "$b_p50" "$b_p99" "$b_rss"
printf '%-16s %12s %10s %10s %10s\n' docker-registry "$r_rps" "$r_p50" "$r_p99" "$r_rss"
awk -v b="$b_rps" -v r="$r_rps" -v bm="$b_rss" -v rm="$r_rss" \
  'BEGIN { printf "berth/docker-registry: throughput x%.2f, RSS x%.2f\n", b / r, bm / rm }'
