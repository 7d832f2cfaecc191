#!/usr/bin/env bash
# What TLS costs: two berth instances side by side, one plain HTTP and one HTTPS with its own
# CA, same machine, same clients, one run. skopeo pushes and pulls a big image (4 x 128 MiB
# random layers) into each, verifying the certificate (--dest-cert-dir, never tls-verify off);
# wrk loads GET /v2/ and a 64 KiB blob GET over keep-alive connections (a TLS handshake per
# connection, not per request). Prints wall and server CPU seconds, requests/s, and
# HTTPS/HTTP ratios. Not a test: numbers go into issue notes.
#
#   bench/tls.sh [SECONDS] [CONNECTIONS]      (after scripts/build.sh)
#
# Smaller runs for a quick check: BIG_LAYER_MIB=16 bench/tls.sh 3
# PIN=1 puts the servers on CPU 0 (for the whole run) and wrk (one thread) on CPU 1, so that
# wrk's own TLS does not take the servers' CPU: requests/s then measure one core of server.
# Another build (say main's, to compare): BERTH=/path/to/berth bench/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
big_layers=4 big_layer_mib=${BIG_LAYER_MIB:-128}
pin_server=() pin_client=() wrk_threads=2
if [ -n "${PIN:-}" ]; then
  command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] || { echo "PIN=1 needs taskset and 2 CPUs" >&2; exit 1; }
  pin_server=(taskset -c 0) pin_client=(taskset -c 1) wrk_threads=1
fi
berth=${BERTH:-build/bin/berth}  # BERTH=/path/to/berth compares another build
[ -x "$berth" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
for tool in wrk skopeo curl tar gzip sha256sum python3; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: apt-get install wrk skopeo curl tar gzip coreutils python3" >&2
    exit 1
  }
done

# shellcheck source=bench/lib.sh
source bench/lib.sh  # after the cd above: paths are relative to the repository

echo "building source images in $work ..." >&2
make_image "$work/src/big" "$big_layers" $((big_layer_mib << 20))
big_manifest=$manifest_digest
make_image "$work/src/blob" 1 $((64 << 10))
blob_digest=$first_layer
blob_bytes=$(stat -c %s "$work/src/blob/blobs/sha256/${blob_digest#sha256:}")
big_mib=$(($(du -sm "$work/src/big/blobs" | cut -f1)))

# --- Servers: the same binary and settings, TLS on or off -----------------------------------
declare -A port pid scheme
servers=(http https)
port[http]=$(free_port)
port[https]=$(free_port)
scheme[http]=http scheme[https]=https
# PostgreSQL stays off: it is not what is measured, and two initdb runs on a loaded machine
# can outlast the readiness deadline.
cat >"$work/http.yaml" <<YAML
postgres:
  enabled: false
YAML
cat >"$work/https.yaml" <<YAML
postgres:
  enabled: false
server:
  tls:
    enabled: true
    dir: $work/tls
    hostnames: [127.0.0.1, localhost]
YAML
"${pin_server[@]}" "$berth" --config "$work/http.yaml" --log-level warn serve --listen "127.0.0.1:${port[http]}" --data "$work/http" \
  --backup "$work/http-backup" 2>"$work/http.log" &
pids+=($!); pid[http]=$!
"${pin_server[@]}" "$berth" --config "$work/https.yaml" --log-level warn serve --listen "127.0.0.1:${port[https]}" \
  --data "$work/https" --backup "$work/https-backup" 2>"$work/https.log" &
pids+=($!); pid[https]=$!

mkdir -p "$work/certs"
deadline=$((SECONDS + 30))
until [ -s "$work/tls/ca.crt" ]; do  # berth writes its CA before it listens
  [ $SECONDS -lt $deadline ] || { echo "no CA in $work/tls:" >&2; cat "$work/https.log" >&2; exit 1; }
  sleep 0.05
done
wait_ready "http://127.0.0.1:${port[http]}/v2/"
CURL_CA_BUNDLE=$work/tls/ca.crt wait_ready "https://127.0.0.1:${port[https]}/v2/"
cp "$work/tls/ca.crt" "$work/certs/ca.crt"
export CURL_CA_BUNDLE=$work/tls/ca.crt  # every curl below verifies the certificate

# --- Push and pull with skopeo, certificate verified ----------------------------------------
declare -A wall cpu
copy() {  # server op source destination [skopeo flags...]: records wall and server CPU seconds
  local server=$1 op=$2 from=$3 to=$4 t0 t1 c0 c1
  shift 4
  c0=$(cpu_ticks "${pid[$server]}")
  t0=$(now)
  if ! skopeo --insecure-policy copy -q "$@" "$from" "$to" >"$work/skopeo.log" 2>&1; then
    echo "$op on $server failed: skopeo copy $from $to" >&2
    cat "$work/skopeo.log" >&2
    exit 1
  fi
  t1=$(now)
  c1=$(cpu_ticks "${pid[$server]}")
  wall[$server:$op]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  cpu[$server:$op]=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
}
for server in "${servers[@]}"; do
  registry=docker://127.0.0.1:${port[$server]}
  if [ "$server" = https ]; then
    push_flags=(--dest-cert-dir "$work/certs") pull_flags=(--src-cert-dir "$work/certs")
  else
    push_flags=(--dest-tls-verify=false) pull_flags=(--src-tls-verify=false)
  fi
  echo "$server: push and pull big ..." >&2
  copy "$server" push "oci:$work/src/big:latest" "$registry/api/big:latest" "${push_flags[@]}"
  copy "$server" pull "$registry/api/big:latest" "dir:$work/pull" "${pull_flags[@]}"
  pulled=sha256:$(sha256sum "$work/pull/manifest.json" | cut -d' ' -f1)
  [ "$pulled" = "$big_manifest" ] || { echo "$server: pulled manifest $pulled, pushed $big_manifest" >&2; exit 1; }
  rm -rf "$work/pull"
  copy "$server" 'push blob' "oci:$work/src/blob:latest" "$registry/api/blob:latest" "${push_flags[@]}"
done

# --- GETs under wrk, keep-alive -------------------------------------------------------------
declare -A rps p50 p99 cpu_us
load() {  # key url server_pid: also server CPU microseconds per request
  local out errors c0 c1 requests
  c0=$(cpu_ticks "$3")
  out=$("${pin_client[@]}" wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" --latency "$2")
  c1=$(cpu_ticks "$3")
  errors=$(awk '/Non-2xx or 3xx responses|Socket errors/' <<<"$out")
  [ -z "$errors" ] || { echo "$1: $errors" >&2; exit 1; }
  rps[$1]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50[$1]=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99[$1]=$(awk '$1=="99%" {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu_us[$1]=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.1f", (b - a) / hz / n * 1e6 }')
}
for server in "${servers[@]}"; do
  base=${scheme[$server]}://127.0.0.1:${port[$server]}/v2
  got=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "$base/api/blob/blobs/$blob_digest")
  [ "$got" = "200 $blob_bytes" ] || { echo "$server: blob GET got '$got', want '200 $blob_bytes'" >&2; exit 1; }
  echo "$server: wrk ..." >&2
  load "$server:base" "$base/" "${pid[$server]}"
  load "$server:blob" "$base/api/blob/blobs/$blob_digest" "${pid[$server]}"
done

# --- Report ---------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
printf '\nskopeo push/pull of %d x %d MiB random layers (%d MiB), %s CPUs, CPU = server utime+stime\n' \
  "$big_layers" "$big_layer_mib" "$big_mib" "$(nproc)"
printf '%-10s %8s %8s %8s %8s %14s\n' operation 'http s' 'https s' 'http CPU' 'https CPU' 'https/http wall'
for op in push pull; do
  printf '%-10s %8s %8s %8s %8s %14s\n' "$op" "${wall[http:$op]}" "${wall[https:$op]}" "${cpu[http:$op]}" \
    "${cpu[https:$op]}" "$(ratio "${wall[https:$op]}" "${wall[http:$op]}")"
done
printf '\nGET under wrk -t%s -c%s -d%ss, keep-alive: base = GET /v2/, blob = %s bytes\n' \
  "$wrk_threads" "$connections" "$seconds" "$blob_bytes"
if [ -n "${PIN:-}" ]; then
  printf '(pinned: each server on CPU 0, wrk on CPU 1; the push and pull above ran with the servers pinned too)\n'
else
  printf '(wrk shares the CPUs and does its own TLS; server CPU per request isolates berth'"'"'s cost)\n'
fi
printf '%-6s %11s %11s %9s %9s %9s %9s %10s %10s %9s %9s\n' target 'http req/s' 'https req/s' 'http p50' \
  'https p50' 'http p99' 'https p99' 'http us/req' 'https us/req' 'req/s' 'us/req'
for target in base blob; do
  printf '%-6s %11s %11s %9s %9s %9s %9s %10s %10s %9s %9s\n' "$target" "${rps[http:$target]}" \
    "${rps[https:$target]}" "${p50[http:$target]}" "${p50[https:$target]}" "${p99[http:$target]}" \
    "${p99[https:$target]}" "${cpu_us[http:$target]}" "${cpu_us[https:$target]}" \
    "$(ratio "${rps[https:$target]}" "${rps[http:$target]}")" "$(ratio "${cpu_us[https:$target]}" "${cpu_us[http:$target]}")"
done
printf 'last two columns: https/http\n' 
printf '\n%-8s %14s\n' server 'peak RSS KiB'
for server in "${servers[@]}"; do printf '%-8s %14s\n' "$server" "$(status_kib "${pid[$server]}" VmHWM)"; done
