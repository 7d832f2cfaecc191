#!/usr/bin/env bash
# Registry side by side: berth and the CNCF distribution registry (Debian's docker-registry),
# same machine, same clients, one run. skopeo pushes and pulls a big image (4 x 128 MiB random
# layers) and a many-layer image (200 x 64 KiB) into fresh repositories (wall and server CPU
# seconds); wrk loads a 64 KiB blob GET and a manifest GET, with nginx serving the same files
# from disk as the ceiling; idle and peak RSS. Prints the table and berth's ratios. Not a
# test: numbers go into issue notes.
#
#   bench/registry.sh [--only-reference] [SECONDS] [CONNECTIONS]     (after scripts/build.sh)
#
# --only-reference runs docker-registry and nginx alone (no berth). Smaller runs for a quick
# check: BIG_LAYER_MIB=8 SMALL_LAYERS=20 bench/registry.sh --only-reference 2
set -euo pipefail
cd "$(dirname "$0")/.."
only_reference=false
if [ "${1:-}" = --only-reference ]; then only_reference=true; shift; fi
seconds=${1:-10}
connections=${2:-32}
big_layers=4 big_layer_mib=${BIG_LAYER_MIB:-128}
small_layers=${SMALL_LAYERS:-200} small_layer_kib=64
berth=build/bin/berth
$only_reference || [ -x "$berth" ] || { echo "build first: scripts/build.sh (or --only-reference)" >&2; exit 1; }
for tool in wrk docker-registry skopeo curl tar gzip sha256sum python3; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: apt-get install wrk docker-registry skopeo curl tar gzip coreutils python3" >&2
    exit 1
  }
done
nginx=$(command -v nginx || true)
if [ -z "$nginx" ] && [ -x /usr/sbin/nginx ]; then nginx=/usr/sbin/nginx; fi
if [ -z "$nginx" ]; then
  echo "installing nginx (the ceiling for blob GETs)" >&2
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null
  nginx=/usr/sbin/nginx
fi

# shellcheck source=bench/lib.sh
source bench/lib.sh  # after the cd above: paths are relative to the repository

echo "building source images in $work ..." >&2
declare -A manifest
make_image "$work/src/big" "$big_layers" $((big_layer_mib << 20))
manifest[big]=$manifest_digest
make_image "$work/src/small" "$small_layers" $((small_layer_kib << 10))
manifest[small]=$manifest_digest
blob_digest=$first_layer
blob_file=$work/src/small/blobs/sha256/${blob_digest#sha256:}
blob_bytes=$(stat -c %s "$blob_file")
big_manifest_file=$work/src/big/blobs/sha256/${manifest[big]#sha256:}
big_mib=$(($(du -sm "$work/src/big/blobs" | cut -f1)))

# --- Servers ------------------------------------------------------------------------------
servers=()
declare -A port pid
if ! $only_reference; then
  port[berth]=$(free_port)
  # Registry only, like the others: no PostgreSQL cluster, and no access log (docker-registry's
  # and nginx's are off too).
  printf 'postgres:\n  enabled: false\nlog:\n  access: false\n' >"$work/berth.yaml"
  "$berth" --config "$work/berth.yaml" --log-level warn serve --listen "127.0.0.1:${port[berth]}" --data "$work/berth" \
    2>"$work/berth.log" &
  pids+=($!); pid[berth]=$!
  servers+=(berth)
fi

port[docker-registry]=$(free_port)
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:${port[docker-registry]}}
YAML
docker-registry serve "$work/registry.yml" 2>"$work/registry.log" &
pids+=($!); pid[docker-registry]=$!
servers+=(docker-registry)

# nginx: one worker, no access log, every path in the temp dir; the same blob and manifest
# files, so it is the ceiling for serving those bytes over HTTP/1.1 on this machine. Two of
# them: `nginx` with sendfile (the GET ceiling), `nginx-copy` with sendfile off (read and write
# through 32 KiB buffers, as docker-registry's Go server does). On loopback a client's recv
# copies a sendfile'd body out of page-cache pages, which costs skopeo more than copying bytes
# the server has just written: the copying server gives the faster pull.
mkdir -p "$work/www"
ln "$blob_file" "$work/www/blob"
ln "$big_manifest_file" "$work/www/manifest"
# The pulled images as static files at their registry paths: a pull from nginx is what skopeo
# itself can do at best (a server that costs nothing), the ceiling for the pull rows.
for image in big small; do
  repo=$work/www/v2/api/bench-$image-1
  mkdir -p "$repo/manifests" "$repo/blobs"
  ln "$work/src/$image/blobs/sha256/${manifest[$image]#sha256:}" "$repo/manifests/latest"
  for blob in "$work/src/$image/blobs/sha256/"*; do ln "$blob" "$repo/blobs/sha256:${blob##*/}"; done
done
nginx_user=""; [ "$(id -u)" -ne 0 ] || nginx_user="user root;"  # the worker reads the 0700 temp dir
start_nginx() {  # name sendfile(on|off)
  local name=$1 dir=$work/$1
  port[$name]=$(free_port)
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<NGINX
$nginx_user
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile $2;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:${port[$name]};
    root $work/www;
    location = /v2/ { default_type application/json; return 200 '{}'; }
    location ~ /manifests/ { types { } default_type application/vnd.oci.image.manifest.v1+json; }
  }
}
NGINX
  "$nginx" -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" &
  pids+=($!); pid[$name]=$!
}
start_nginx nginx on
start_nginx nginx-copy off

for server in "${servers[@]}"; do wait_ready "http://127.0.0.1:${port[$server]}/v2/"; done
for name in nginx nginx-copy; do
  wait_ready "http://127.0.0.1:${port[$name]}/blob"
  master=${pid[$name]}
  pid[$name]=$(awk '{print $1}' "/proc/$master/task/$master/children")  # the worker does the work
done
declare -A idle_rss
for server in "${servers[@]}"; do idle_rss[$server]=$(status_kib "${pid[$server]}" VmRSS); done

# --- Push and pull with skopeo ------------------------------------------------------------
declare -A wall cpu
copy() {  # server op source destination [skopeo flags...]: records wall and server CPU seconds
  local server=$1 op=$2 from=$3 to=$4 t0 t1 c0 c1
  shift 4
  c0=$(cpu_ticks "${pid[$server]}")
  t0=$(now)
  if ! skopeo --insecure-policy copy -q "$@" "$from" "$to" >"$work/skopeo.log" 2>&1; then
    echo "$op on $server failed: skopeo copy $from $to" >&2
    cat "$work/skopeo.log" >&2
    [ "$server" != berth ] || echo "HINT: does berth serve the OCI API yet? Try --only-reference." >&2
    exit 1
  fi
  t1=$(now)
  c1=$(cpu_ticks "${pid[$server]}")
  wall[$server:$op]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  cpu[$server:$op]=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
}
for server in "${servers[@]}"; do
  registry=docker://127.0.0.1:${port[$server]}
  for image in big small; do
    repo=api/bench-$image-1
    echo "$server: push and pull $image ..." >&2
    copy "$server" "push $image" "oci:$work/src/$image:latest" "$registry/$repo:latest" --dest-tls-verify=false
    copy "$server" "pull $image" "$registry/$repo:latest" "dir:$work/pull" --src-tls-verify=false
    pulled=sha256:$(sha256sum "$work/pull/manifest.json" | cut -d' ' -f1)
    [ "$pulled" = "${manifest[$image]}" ] || { echo "$server: pulled $image manifest $pulled, pushed ${manifest[$image]}" >&2; exit 1; }
    rm -rf "$work/pull"
  done
done
for name in nginx nginx-copy; do
  echo "$name: pull big and small ..." >&2
  for image in big small; do
    copy "$name" "pull $image" "docker://127.0.0.1:${port[$name]}/api/bench-$image-1:latest" "dir:$work/pull" \
      --src-tls-verify=false
    rm -rf "$work/pull"
  done
done

# --- GETs under wrk -------------------------------------------------------------------------
accept='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
declare -A rps p50 p99
check_get() {  # url expected_bytes [header]: one GET must return 200 and the right length
  local got header=()
  [ -z "${3:-}" ] || header=(-H "$3")
  got=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "${header[@]}" "$1")
  [ "$got" = "200 $2" ] || { echo "GET $1: got '$got', want '200 $2'" >&2; exit 1; }
}
load() {  # key url [header]
  local out errors header=()
  [ -z "${3:-}" ] || header=(-H "$3")
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency "${header[@]}" "$2")
  errors=$(awk '/Non-2xx or 3xx responses|Socket errors/' <<<"$out")
  [ -z "$errors" ] || { echo "$1: $errors" >&2; exit 1; }
  rps[$1]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50[$1]=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99[$1]=$(awk '$1=="99%" {print $2}' <<<"$out")
}
manifest_bytes=$(stat -c %s "$big_manifest_file")
for server in "${servers[@]}"; do
  base=http://127.0.0.1:${port[$server]}/v2
  echo "$server: wrk ..." >&2
  check_get "$base/api/bench-small-1/blobs/$blob_digest" "$blob_bytes"
  load "$server:blob" "$base/api/bench-small-1/blobs/$blob_digest"
  check_get "$base/api/bench-big-1/manifests/latest" "$manifest_bytes" "$accept"
  load "$server:manifest" "$base/api/bench-big-1/manifests/latest" "$accept"
done
echo "nginx: wrk ..." >&2
check_get "http://127.0.0.1:${port[nginx]}/blob" "$blob_bytes"
load nginx:blob "http://127.0.0.1:${port[nginx]}/blob"
check_get "http://127.0.0.1:${port[nginx]}/manifest" "$manifest_bytes"
load nginx:manifest "http://127.0.0.1:${port[nginx]}/manifest"

# --- Report ---------------------------------------------------------------------------------
printf '\nskopeo push/pull into fresh repositories, %s CPUs, CPU = server utime+stime\n' "$(nproc)"
printf '  big: %d x %d MiB random layers (%d MiB); small: %d x %d KiB layers\n' \
  "$big_layers" "$big_layer_mib" "$big_mib" "$small_layers" "$small_layer_kib"
printf '%-12s %-16s %10s %10s\n' operation server 'wall s' 'CPU s'
for op in 'push big' 'pull big' 'push small' 'pull small'; do
  for server in "${servers[@]}" nginx nginx-copy; do
    [ -n "${wall[$server:$op]:-}" ] || continue
    printf '%-12s %-16s %10s %10s\n' "$op" "$server" "${wall[$server:$op]}" "${cpu[$server:$op]}"
  done
done
printf '  (nginx: the same images as static files, warm in the page cache: the fastest pull skopeo can make;\n'
printf '   nginx-copy: the same without sendfile)\n'


printf '\nGET under wrk -t2 -c%s -d%ss: blob = %s bytes (%s), manifest = %s bytes\n' \
  "$connections" "$seconds" "$blob_bytes" "${blob_digest:0:19}" "$manifest_bytes"
printf '%-10s %-16s %12s %10s %10s\n' target server 'req/s' p50 p99
for target in blob manifest; do
  for server in "${servers[@]}" nginx; do
    printf '%-10s %-16s %12s %10s %10s\n' "$target" "$server" "${rps[$server:$target]}" \
      "${p50[$server:$target]}" "${p99[$server:$target]}"
  done
done

printf '\n%-16s %14s %14s\n' server 'idle RSS KiB' 'peak RSS KiB'
for server in "${servers[@]}"; do
  printf '%-16s %14s %14s\n' "$server" "${idle_rss[$server]}" "$(status_kib "${pid[$server]}" VmHWM)"
done
printf '%-16s %14s %14s\n' 'nginx (worker)' '-' "$(status_kib "${pid[nginx]}" VmHWM)"

if $only_reference; then
  printf '\n--only-reference: no berth, no ratios\n'
  exit 0
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "x%.2f", a / b; else printf "n/a" }'; }
r=docker-registry
printf '\nberth/docker-registry (speed: >1 is faster; CPU and RSS: <1 is leaner)\n'
for op in 'push big' 'pull big' 'push small' 'pull small'; do
  ceiling=""
  [ -z "${wall[nginx:$op]:-}" ] ||
    ceiling=" (nginx's static pull would be $(ratio "${wall[$r:$op]}" "${wall[nginx:$op]}"), without sendfile $(ratio "${wall[$r:$op]}" "${wall[nginx-copy:$op]}"))"
  printf '  %-10s speed %s, CPU %s%s\n' "$op" "$(ratio "${wall[$r:$op]}" "${wall[berth:$op]}")" \
    "$(ratio "${cpu[berth:$op]}" "${cpu[$r:$op]}")" "$ceiling"
done
printf '  blob GET   req/s %s (vs nginx %s)\n' "$(ratio "${rps[berth:blob]}" "${rps[$r:blob]}")" \
  "$(ratio "${rps[berth:blob]}" "${rps[nginx:blob]}")"
printf '  manifest   req/s %s (vs nginx %s)\n' "$(ratio "${rps[berth:manifest]}" "${rps[$r:manifest]}")" \
  "$(ratio "${rps[berth:manifest]}" "${rps[nginx:manifest]}")"
printf '  RSS        idle %s, peak %s\n' "$(ratio "${idle_rss[berth]}" "${idle_rss[$r]}")" \
  "$(ratio "$(status_kib "${pid[berth]}" VmHWM)" "$(status_kib "${pid[$r]}" VmHWM)")"
