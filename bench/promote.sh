#!/usr/bin/env bash
# Promotion side by side: `berth promote` of a ~512 MiB image (4 x 128 MiB random layers) from a
# source berth to a target berth, against `skopeo copy` of the same image from the same source
# to an identical fresh target, in one run; then a re-promotion of the unchanged image (only
# HEADs). Plain HTTP on loopback for both tools, so the numbers compare the copy logic rather
# than TLS. Prints wall seconds and berth's ratio to skopeo. Not a test: numbers go into issue
# notes.
#
#   bench/promote.sh [LAYER_MIB] [LAYERS]     (after scripts/build.sh; defaults 128 and 4)
set -euo pipefail
cd "$(dirname "$0")/.."
layer_mib=${1:-128}
layers=${2:-4}
berth=$PWD/build/bin/berth
[ -x "$berth" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
for tool in skopeo curl tar gzip sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install skopeo curl tar gzip coreutils python3" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
source bench/lib.sh  # after the cd above: paths are relative to the repository
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }

echo "building a ${layers} x ${layer_mib} MiB image in $work ..." >&2
make_image "$work/layout" "$layers" $((layer_mib << 20))
image_mib=$(du -sm "$work/layout/blobs" | cut -f1)

# Three registries: the source, and one fresh target per tool (same configuration).
declare -A port
for name in source promote-target skopeo-target; do
  mkdir -p "$work/$name"
  printf 'postgres:\n  enabled: false\nlog:\n  level: warn\n  access: false\nvolumes:\n  primary: %s\n  backup: %s\n' \
    "$work/$name/data" "$work/$name/backup" >"$work/$name/berth.yaml"
  port[$name]=$(free_port)
  "$berth" --config "$work/$name/berth.yaml" serve --listen "127.0.0.1:${port[$name]}" 2>"$work/$name/serve.log" &
  pids+=($!)
done
for name in source promote-target skopeo-target; do wait_ready "http://127.0.0.1:${port[$name]}/v2/"; done

export HOME=$work/home  # skopeo's blob-info cache starts empty, so it cannot mount or skip
mkdir -p "$HOME"
skopeo --insecure-policy copy --dest-tls-verify=false "oci:$work/layout:latest" \
  "docker://127.0.0.1:${port[source]}/api/bench:v1" >/dev/null

# Flush dirty pages before each timed copy: otherwise the first one (berth's) also pays for the
# kernel writing back the 512 MiB just pushed to the source, which the targets' fsyncs wait
# behind (measured: 1.1 to 1.2 times slower when first, 2 to 3 times faster when second).
sync
start=$(now)
"$berth" --config "$work/source/berth.yaml" promote api/bench:v1 \
  --to-registry "http://127.0.0.1:${port[promote-target]}" >"$work/promote.json"
promote_seconds=$(seconds_since "$start")

sync
start=$(now)
skopeo --insecure-policy copy --src-tls-verify=false --dest-tls-verify=false \
  "docker://127.0.0.1:${port[source]}/api/bench:v1" "docker://127.0.0.1:${port[skopeo-target]}/api/bench:v1" >/dev/null
skopeo_seconds=$(seconds_since "$start")

start=$(now)
"$berth" --config "$work/source/berth.yaml" promote api/bench:v1 \
  --to-registry "http://127.0.0.1:${port[promote-target]}" >"$work/again.json"
again_seconds=$(seconds_since "$start")

# Same digest at both targets, and the re-promotion sent nothing.
promoted=$(curl -fsSI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://127.0.0.1:${port[promote-target]}/v2/api/bench/manifests/v1" | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' | tr -d '\r')
[ "$promoted" = "$manifest_digest" ] || { echo "digest differs at the target: $promoted vs $manifest_digest" >&2; exit 1; }
grep -q '"bytes_sent":0' "$work/again.json" || { echo "re-promotion sent content: $(cat "$work/again.json")" >&2; exit 1; }

printf '%-28s %10s\n' "image" "${image_mib} MiB (${layers} layers)"
printf '%-28s %9ss\n' "berth promote" "$promote_seconds"
printf '%-28s %9ss\n' "skopeo copy" "$skopeo_seconds"
printf '%-28s %9ss\n' "berth promote (unchanged)" "$again_seconds"
awk -v b="$promote_seconds" -v s="$skopeo_seconds" 'BEGIN { printf "berth / skopeo: %.2f (below 1: berth is faster)\n", b / s }'
