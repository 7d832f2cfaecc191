#!/usr/bin/env bash
# Garbage collection side by side: berth's online `berth registry gc` (while skopeo pushes into the
# running server) and the CNCF distribution registry's offline `registry garbage-collect` (which
# needs the registry stopped or read-only), over the same synthetic registry written in each
# one's storage layout: MANIFESTS manifests in 100 repositories, each with a config and 4
# layers of 1 KiB (5 blobs per manifest, so 10,000 manifests give 50,000 blobs); half the
# manifests are tagged, the other half untagged, plus 10% orphan blobs; every file is two hours
# old, past the grace period. Both runs delete untagged manifests. Prints wall seconds, peak RSS
# and what each removed, and berth's ratios. Not a test: numbers go into issue notes.
#
#   bench/gc.sh [MANIFESTS]          (after scripts/build.sh; default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
manifests=${1:-10000}
berth=build/bin/berth
[ -x "$berth" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
for tool in docker-registry skopeo curl tar gzip sha256sum python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: apt-get install docker-registry skopeo curl tar gzip coreutils python3 time" >&2
    exit 1
  }
done
# shellcheck source=bench/lib.sh
source bench/lib.sh

echo "writing $manifests manifests in both layouts..." >&2
python3 - "$work" "$manifests" <<'EOF'
import hashlib, json, os, random, sys, time
work, count = sys.argv[1], int(sys.argv[2])
berth = os.path.join(work, "berth/var/registry")
dist = os.path.join(work, "dist/docker/registry/v2")
old = time.time() - 2 * 3600
random.seed(1)

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (old, old))

def blob(data, repo):
    hexd = hashlib.sha256(data).hexdigest()
    write(f"{berth}/blobs/sha256/{hexd[:2]}/{hexd}", data)
    write(f"{berth}/repositories/{repo}/_layers/sha256/{hexd}", b"")
    write(f"{dist}/blobs/sha256/{hexd[:2]}/{hexd}/data", data)
    write(f"{dist}/repositories/{repo}/_layers/sha256/{hexd}/link", f"sha256:{hexd}".encode())
    return hexd

for idx in range(count):
    repo = f"api/repo{idx % 100}"
    layers = [random.randbytes(1024) for _ in range(4)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": idx}).encode()
    config_hex = blob(config, repo)
    layer_hexes = [blob(layer, repo) for layer in layers]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + config_hex,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + h,
                    "size": 1024} for h in layer_hexes]}).encode()
    mhex = hashlib.sha256(manifest).hexdigest()
    write(f"{berth}/blobs/sha256/{mhex[:2]}/{mhex}", manifest)
    write(f"{berth}/repositories/{repo}/_manifests/revisions/sha256/{mhex}",
          b"application/vnd.oci.image.manifest.v1+json")
    write(f"{dist}/blobs/sha256/{mhex[:2]}/{mhex}/data", manifest)
    write(f"{dist}/repositories/{repo}/_manifests/revisions/sha256/{mhex}/link", f"sha256:{mhex}".encode())
    if (idx // 100) % 2 == 0:  # every repository holds tagged and untagged manifests
        tag = f"t{idx}"
        write(f"{berth}/repositories/{repo}/_manifests/tags/{tag}", f"sha256:{mhex}".encode())
        write(f"{dist}/repositories/{repo}/_manifests/tags/{tag}/current/link", f"sha256:{mhex}".encode())
        write(f"{dist}/repositories/{repo}/_manifests/tags/{tag}/index/sha256/{mhex}/link",
              f"sha256:{mhex}".encode())
    else:  # an orphan for every other manifest: 10% of the blobs
        blob(random.randbytes(1024), repo)
EOF
du -sh "$work/berth/var/registry" "$work/dist" | sed 's/^/  /' >&2

# distribution: offline, as its documentation requires.
cat >"$work/dist.yml" <<EOF
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/dist}
  delete: {enabled: true}
http: {addr: 127.0.0.1:0}
EOF
/usr/bin/time -f "%e %M" -o "$work/dist.time" docker-registry garbage-collect --delete-untagged "$work/dist.yml" \
  >"$work/dist.out" 2>&1 || { cat "$work/dist.out" >&2; exit 1; }
read -r dist_seconds dist_kib <"$work/dist.time"
dist_blobs_left=$(find "$work/dist/docker/registry/v2/blobs" -name data | wc -l)

# berth: online, with skopeo pushing into the running server all along.
port=$(free_port)
cat >"$work/berth.yaml" <<EOF
volumes: {primary: $work/berth/var, backup: $work/berth/backup}
postgres: {enabled: false}
log: {level: warn, access: false}
server: {listen: "127.0.0.1:$port"}
EOF
"$berth" --config "$work/berth.yaml" serve >"$work/berth.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$port/healthz"
make_image "$work/src" 2 65536
(
  pushes=0 failures=0
  while [ ! -e "$work/stop" ]; do
    if skopeo copy -q --dest-tls-verify=false "oci:$work/src:latest" \
      "docker://127.0.0.1:$port/api/pushed$pushes:latest" >/dev/null 2>>"$work/push.err"; then
      pushes=$((pushes + 1))
    else failures=$((failures + 1)); fi
  done
  echo "$pushes $failures" >"$work/pushes"
) &
pusher=$!
/usr/bin/time -f "%e %M" -o "$work/berth.time" "$berth" --config "$work/berth.yaml" registry gc --delete-untagged \
  >"$work/berth.out" 2>&1 || { cat "$work/berth.out" >&2; exit 1; }
touch "$work/stop"
wait "$pusher"
read -r berth_seconds berth_kib <"$work/berth.time"
read -r pushes push_failures <"$work/pushes"
berth_blobs_left=$(find "$work/berth/var/registry/blobs" -type f | wc -l)
fsck=$("$berth" --config "$work/berth.yaml" registry fsck | tail -1)

echo
printf '%-34s %12s %12s %8s\n' "" "berth" "distribution" "ratio"
printf '%-34s %12s %12s %8s\n' "gc wall seconds" "$berth_seconds" "$dist_seconds" \
  "$(python3 -c "print(f'{$berth_seconds/max($dist_seconds,0.01):.2f}')")"
printf '%-34s %12s %12s %8s\n' "gc peak RSS (MiB)" "$((berth_kib / 1024))" "$((dist_kib / 1024))" \
  "$(python3 -c "print(f'{$berth_kib/$dist_kib:.2f}')")"
printf '%-34s %12s %12s\n' "blob files left" "$berth_blobs_left" "$dist_blobs_left"
printf '%-34s %12s %12s\n' "pushes during gc (failed)" "$pushes ($push_failures)" "offline"
echo
echo "berth:        $(grep -m1 '^reclaimed' "$work/berth.out")"
echo "berth fsck:   $fsck"
echo "distribution: $(grep -c 'blob eligible for deletion' "$work/dist.out" || true) blobs eligible for deletion"
