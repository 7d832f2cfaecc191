# Shared by the bench scripts (source it): a scratch directory and background servers that are
# cleaned up on exit, free ports, readiness polling with a deadline, process CPU and memory,
# and the random OCI images the registry benchmarks push.
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {  # poll with a deadline, never a fixed sleep
  local url=$1 deadline=$((SECONDS + 30))
  until curl -fsS -o /dev/null "$url"; do
    [ $SECONDS -lt $deadline ] || { echo "not ready: $url" >&2; exit 1; }
    sleep 0.05
  done
}
hz=$(getconf CLK_TCK)
cpu_ticks() {  # utime+stime of pid; fields counted after "(comm)", which may hold spaces
  local stat
  stat=$(<"/proc/$1/stat")
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}
now() { date +%s.%N; }
status_kib() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }  # pid VmRSS|VmHWM

# Source images: OCI layouts built with tar, gzip and sha256sum.
# make_image LAYOUT LAYERS BYTES: random layers, a config whose diff_ids match, a manifest
# tagged `latest`. Sets first_layer (digest) and manifest_digest.
add_blob() {  # layout file -> "sha256:<hex> <size>", file moved to its digest's name
  local hex size
  hex=$(sha256sum "$2" | cut -d' ' -f1)
  size=$(stat -c %s "$2")
  mv "$2" "$1/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}
make_image() {
  local layout=$1 count=$2 bytes=$3 scratch=$work/scratch layer_idx digest size
  local layers=() diff_ids=()
  mkdir -p "$layout/blobs/sha256" "$scratch"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  for ((layer_idx = 0; layer_idx < count; layer_idx++)); do
    head -c "$bytes" /dev/urandom >"$scratch/layer-$layer_idx.bin"
    tar -C "$scratch" --mtime=@946684800 --owner=0 --group=0 --numeric-owner -cf "$scratch/layer.tar" \
      "layer-$layer_idx.bin"
    rm "$scratch/layer-$layer_idx.bin"
    diff_ids+=("\"sha256:$(sha256sum <"$scratch/layer.tar" | cut -d' ' -f1)\"")
    gzip -1 -n <"$scratch/layer.tar" >"$scratch/layer.tar.gz"  # random data: level 1 is as small
    read -r digest size < <(add_blob "$layout" "$scratch/layer.tar.gz")
    [ "$layer_idx" -ne 0 ] || first_layer=$digest
    layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$digest\",\"size\":$size}")
  done
  rm -f "$scratch/layer.tar"
  (
    IFS=,
    printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
      "${diff_ids[*]}"
  ) >"$scratch/config.json"
  read -r digest size < <(add_blob "$layout" "$scratch/config.json")
  (
    IFS=,
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
      "$digest" "$size" "${layers[*]}"
  ) >"$scratch/manifest.json"
  read -r manifest_digest size < <(add_blob "$layout" "$scratch/manifest.json")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest_digest" "$size" >"$layout/index.json"
}
