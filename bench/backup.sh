#!/usr/bin/env bash
# Backup side by side: berth's snapshots against restic (the registry's files) plus pgBackRest
# (the database), on the same data in one run. The data: a `berth serve` with PostgreSQL on, a
# registry of ~2 GiB (40 images x 5 gzip layers of random, incompressible data, pushed with
# skopeo) and a ~1 GiB database (`pgbench -i` into a berth database). Steps, each timed for both
# sides: a first backup; a second one after 5% new blobs (2 more images) and some database writes
# (pgbench transactions); verification that reads all the data back; a full restore into an
# empty folder. Prints seconds per step, berth / (restic + pgBackRest), and bytes on each backup
# volume. Not a test: numbers go into issue notes.
#
#   bench/backup.sh [REGISTRY_MIB] [DATABASE_MIB]     (after scripts/build.sh; defaults 2048 1024)
#
# A quick check of the script: bench/backup.sh 200 100.
#
# Settings of the reference tools (Debian's packages, their defaults otherwise):
# - restic: a local repository, password from a file, cache in the scratch folder; `backup` of
#   <primary>/registry (blobs and metadata), `check --read-data`, `restore latest`.
# - pgBackRest: one stanza on the cluster berth runs (as its OS user, over berth's Unix socket,
#   as berth's superuser through a pgpass file); repo1-path in the scratch folder; start-fast=y;
#   archive-check=n, because berth's cluster already has an archive_command (berth's own WAL
#   archive) and a second one would change what is measured, so pgBackRest's backups hold no WAL
#   archive (berth's base backup fetches the WAL it needs into the snapshot: berth does a bit more);
#   `backup --type=full`, then `--type=incr`; `verify` is not timed (it checks its checksums, not
#   comparable to restic's read-data); `restore` into an empty folder.
# Every tool reads the same files from the page cache (each side's first backup runs after the
# data is built); restores go to fresh folders on the same disk.
set -euo pipefail
cd "$(dirname "$0")/.."
registry_mib=${1:-2048}
database_mib=${2:-1024}
images=40 layers=5
layer_bytes=$(((registry_mib << 20) / (images * layers)))
new_images=$((images * 5 / 100))  # 5% new blobs for the second backup
pgbench_scale=$(((database_mib + 14) / 15))  # one scale unit is ~15 MiB with its index
berth=$PWD/build/bin/berth
[ -x "$berth" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
packages=(restic pgbackrest skopeo postgresql postgresql-contrib curl tar gzip coreutils python3)
missing=()
for tool in restic pgbackrest skopeo pgbench psql curl tar gzip sha256sum python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt-get install ${packages[*]})" >&2
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >/dev/null
fi

# shellcheck source=bench/lib.sh
source bench/lib.sh  # after the cd above: paths are relative to the repository
chmod o+x "$work"  # as root, the server runs as postgres and must enter the scratch dir
server_user=$(id -un)
[ "$(id -u)" -ne 0 ] || server_user=postgres
as_server_user() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
fail() { echo "FAILED: $*" >&2; exit 1; }
declare -A took  # "<side> <step>" -> seconds
timed() {  # timed SIDE STEP COMMAND...: runs it, records wall seconds, fails loudly
  local side=$1 step=$2 start
  shift 2
  start=$(now)
  "$@" >"$work/$side-$step.out" 2>&1 || { cat "$work/$side-$step.out" >&2; fail "$side $step"; }
  took["$side $step"]=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  echo "$side $step: ${took["$side $step"]} s" >&2
}
bytes_of() { du -sb "$@" 2>/dev/null | awk '{ n += $1 } END { printf "%.0f\n", n }'; }

# --- The data ------------------------------------------------------------------------------
# The same OCI layouts as lib.sh's make_image, written by one python process: gzip at level 0
# (stored blocks: random data does not compress anyway) keeps building 2 GiB well under a minute.
echo "building $((images + new_images)) images of $layers x $((layer_bytes >> 10)) KiB layers in $work ..." >&2
python3 - "$work/src" $((images + new_images)) "$layers" "$layer_bytes" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
root, image_count, layer_count, layer_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def add_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as out:
        out.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
for image_idx in range(image_count):
    layout = os.path.join(root, f"image-{image_idx}")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    with open(os.path.join(layout, "oci-layout"), "w") as out:
        out.write('{"imageLayoutVersion":"1.0.0"}')
    layers, diff_ids = [], []
    for layer_idx in range(layer_count):
        tar_bytes = io.BytesIO()
        with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(f"layer-{layer_idx}.bin")
            info.size, info.mtime = layer_bytes, 946684800
            tar.addfile(info, io.BytesIO(os.urandom(layer_bytes)))
        tar_data = tar_bytes.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(tar_data).hexdigest())
        layer = add_blob(layout, gzip.compress(tar_data, compresslevel=0, mtime=0))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer})
    config = add_blob(layout, json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                                          "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    manifest = add_blob(layout, json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                                            "layers": layers}).encode())
    with open(os.path.join(layout, "index.json"), "w") as out:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
                   "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, out)
PY

port=$(free_port)
cat >"$work/berth.yaml" <<YAML
log:
  level: warn
  access: false
volumes:
  primary: $work/var
  backup: $work/backup
server:
  listen: "127.0.0.1:$port"
databases:
  - name: bench
YAML
"$berth" --config "$work/berth.yaml" serve >"$work/serve.log" 2>&1 &
berth_pid=$!
pids+=("$berth_pid")
deadline=$((SECONDS + 120))
until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
  kill -0 "$berth_pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "berth serve exited"; }
  [ $SECONDS -lt $deadline ] || fail "berth serve not ready in 120 s"
  sleep 0.05
done
socket_dir=$work/var/run/postgres
password_file=$work/var/secrets/postgres-superuser
export HOME=$work/home  # skopeo's and pgbench's files stay in the scratch folder
mkdir -p "$HOME"
printf '*:*:*:berth:%s\n' "$(cat "$password_file")" >"$work/pgpass"
chmod 600 "$work/pgpass"
chown "$server_user" "$work/pgpass"
export PGPASSFILE=$work/pgpass PGHOST=$socket_dir PGUSER=berth

push_images() {  # push_images FIRST COUNT
  local image_idx
  for ((image_idx = $1; image_idx < $1 + $2; image_idx++)); do
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/src/image-$image_idx:latest" \
      "docker://127.0.0.1:$port/api/bench-$image_idx:v1" >/dev/null || fail "push of image $image_idx"
  done
}
echo "pushing $images images, pgbench -i -s $pgbench_scale ..." >&2
push_images 0 "$images"
pgbench -h "$socket_dir" -U berth -i -q -s "$pgbench_scale" bench \
  >"$work/pgbench-init.log" 2>&1 || { cat "$work/pgbench-init.log" >&2; fail "pgbench -i"; }
psql -X -q -d bench -c CHECKPOINT
registry_bytes=$(bytes_of "$work/var/registry")
database_bytes=$(psql -X -At -d bench -c "SELECT sum(pg_database_size(oid)) FROM pg_database")
echo "registry $((registry_bytes >> 20)) MiB, databases $((database_bytes >> 20)) MiB" >&2

# --- The reference tools' setup --------------------------------------------------------------
export RESTIC_REPOSITORY=$work/restic RESTIC_PASSWORD_FILE=$work/restic-password RESTIC_CACHE_DIR=$work/restic-cache
head -c 32 /dev/urandom | base64 >"$RESTIC_PASSWORD_FILE"
restic init -q >/dev/null || fail "restic init"

mkdir -p "$work/pgbackrest/repo" "$work/pgbackrest/log" "$work/pgbackrest/lock"
pg_port=$(psql -X -At -d postgres -c "SHOW port")
cat >"$work/pgbackrest/pgbackrest.conf" <<CONF
[global]
repo1-path=$work/pgbackrest/repo
log-path=$work/pgbackrest/log
lock-path=$work/pgbackrest/lock
log-level-console=warn
log-level-file=off
start-fast=y
archive-check=n

[bench]
pg1-path=$work/var/postgres
pg1-socket-path=$socket_dir
pg1-port=$pg_port
pg1-user=berth
CONF
chown -R "$server_user" "$work/pgbackrest"
run_pgbackrest() { as_server_user env PGPASSFILE="$PGPASSFILE" pgbackrest --config="$work/pgbackrest/pgbackrest.conf" --stanza=bench "$@"; }
run_pgbackrest stanza-create >"$work/stanza.log" 2>&1 || { cat "$work/stanza.log" >&2; fail "pgbackrest stanza-create"; }

# --- First backups ---------------------------------------------------------------------------
timed berth first "$berth" --config "$work/berth.yaml" backup run
timed restic first restic backup -q "$work/var/registry"
timed pgbackrest first run_pgbackrest backup --type=full

# --- The change: 5% new blobs, some database writes --------------------------------------------
echo "pushing $new_images new images, pgbench -t 1000 -c 4 ..." >&2
push_images "$images" "$new_images"
pgbench -h "$socket_dir" -U berth -c 4 -j 2 -t 1000 bench \
  >"$work/pgbench-run.log" 2>&1 || { cat "$work/pgbench-run.log" >&2; fail "pgbench -t"; }

timed berth second "$berth" --config "$work/berth.yaml" backup run
timed restic second restic backup -q "$work/var/registry"
timed pgbackrest second run_pgbackrest backup --type=incr

# --- Verify: read everything back ---------------------------------------------------------------
timed berth verify "$berth" --config "$work/berth.yaml" backup verify
timed restic verify restic check --read-data

# --- Full restore into empty folders -------------------------------------------------------------
snapshot=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["snapshot"])' \
  <"$work/berth-second.out")
timed berth restore "$berth" --config "$work/berth.yaml" backup restore "$snapshot" --to "$work/berth-restore"
timed restic restore restic restore -q latest --target "$work/restic-restore"
install -d -m 700 -o "$server_user" "$work/pgbackrest-restore"
timed pgbackrest restore run_pgbackrest restore --pg1-path="$work/pgbackrest-restore"

# The restores hold what was backed up.
restored_blobs=$(find "$work/berth-restore/registry/blobs" -type f | wc -l)
primary_blobs=$(find "$work/var/registry/blobs" -type f | wc -l)
[ "$restored_blobs" -eq "$primary_blobs" ] || fail "berth restored $restored_blobs blobs of $primary_blobs"
[ -f "$work/berth-restore/postgres/PG_VERSION" ] || fail "berth restored no database cluster"
[ "$(find "$work/restic-restore" -path '*/registry/blobs/*' -type f | wc -l)" -eq "$primary_blobs" ] ||
  fail "restic restored a different number of blobs"
[ -f "$work/pgbackrest-restore/PG_VERSION" ] || fail "pgBackRest restored no cluster"

# --- The table ------------------------------------------------------------------------------------
python3 - "$work/berth-second.out" <<'PY' >"$work/second-parts.txt"
import json, sys
summary = json.loads(open(sys.argv[1]).read().splitlines()[-1])
parts = summary.get("durations", {})
print(" ".join(f"{name}={seconds:.2f}" for name, seconds in parts.items()))
print(f"{parts.get('files', 0) + parts.get('blobs', 0):.2f}")
PY
second_parts=$(head -1 "$work/second-parts.txt")
second_registry=$(tail -1 "$work/second-parts.txt")
berth_bytes=$(bytes_of "$work/backup/pool" "$work/backup/snapshots")
wal_bytes=$(bytes_of "$work/backup/wal")
restic_bytes=$(bytes_of "$RESTIC_REPOSITORY")
pgbackrest_bytes=$(bytes_of "$work/pgbackrest/repo")

echo
printf 'data: registry %d MiB (%d images, %d new), databases %d MiB (pgbench scale %d)\n' \
  $((registry_bytes >> 20)) "$images" "$new_images" $((database_bytes >> 20)) "$pgbench_scale"
printf '%-14s %9s %9s %11s %16s %14s\n' step berth restic pgBackRest "restic+pgBackRest" "berth/(sum)"
for step in first second verify restore; do
  b=${took["berth $step"]} r=${took["restic $step"]} p=${took["pgbackrest $step"]:-}
  awk -v step="$step" -v b="$b" -v r="$r" -v p="$p" 'BEGIN {
    s = r + (p == "" ? 0 : p)
    printf "%-14s %8.2fs %8.2fs %10s %15.2fs %14.2f\n", step, b, r, (p == "" ? "-" : sprintf("%.2fs", p)), s, b / s }'
done
echo "berth second snapshot by part (s): $second_parts; registry part (files + blobs): ${second_registry} s"
printf 'bytes on the backup volume: berth %d MiB (pool + snapshots; its WAL archive another %d MiB), restic %d MiB, pgBackRest %d MiB (restic + pgBackRest %d MiB)\n' \
  $((berth_bytes >> 20)) $((wal_bytes >> 20)) $((restic_bytes >> 20)) $((pgbackrest_bytes >> 20)) \
  $(((restic_bytes + pgbackrest_bytes) >> 20))
echo "targets: first < restic+pgBackRest; second's registry part < 1 s; verify < restic check --read-data; restore < restic+pgBackRest"
awk -v f="${took[berth first]}" -v fr="${took[restic first]}" -v fp="${took[pgbackrest first]}" \
  -v sr="$second_registry" -v v="${took[berth verify]}" -v vr="${took[restic verify]}" \
  -v r="${took[berth restore]}" -v rr="${took[restic restore]}" -v rp="${took[pgbackrest restore]}" 'BEGIN {
  printf "  first %s, second registry %s, verify %s, restore %s\n", (f < fr + fp ? "met" : "MISSED"),
    (sr < 1 ? "met" : "MISSED"), (v < vr ? "met" : "MISSED"), (r < rr + rp ? "met" : "MISSED") }'
