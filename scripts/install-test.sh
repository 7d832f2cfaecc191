#!/usr/bin/env bash
# The package as a user meets it, on this machine (root; no systemd as PID 1 needed):
#   build the .deb (scripts/package.sh, lintian errors fail it), install it with apt, check files,
#   owners, modes and the berth user, verify the units with systemd-analyze (and rate berth.service's
#   exposure with systemd-analyze security), run the installed `berth serve` as user berth with the
#   packaged config (TLS from its own CA, admin password from /root/berth-admin-password), push and
#   pull with skopeo, create a database and migrate it on the distribution's PostgreSQL, take and
#   verify a snapshot, upgrade to a second version, check the image, the database, the edited
#   conffile and the password survive, remove (data and config stay), purge, and check the backup
#   volume is untouched.
# scripts/install-test-chroot.sh runs this same script in a minimal Debian 13 chroot
# (BERTH_INSTALL_TEST_APT_UPDATE=1: the package's Depends come from the archive there).
# The second version is the first .deb repacked with a higher version and a changed default config
# (dpkg-deb -R / -b): it tests the upgrade path of the maintainer scripts and dpkg's conffile
# handling, not a rebuilt binary.
# Leaves the machine as it found it (it refuses to run over an existing berth installation), so it
# can run again. BERTH_DEB=path skips the package build. Exit 77: skipped (ctest's convention).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $* ($(($(date +%s) - started))s)"; }
started=$(date +%s)

[ "$(id -u)" -eq 0 ] || skip "needs root: it installs the berth package system-wide (dpkg -i, a system user)"
if [ -n "${BERTH_INSTALL_TEST_FROM_CTEST:-}" ] && [ "${BERTH_INSTALL_TEST:-0}" != 1 ]; then
  skip "set BERTH_INSTALL_TEST=1 to run it (scripts/test.sh does as root): it installs the package system-wide"
fi
if dpkg-query -W -f='${Status}' berth 2>/dev/null | grep -q "installed"; then
  skip "berth is already installed on this machine; this test does not touch a real installation"
fi
[ ! -e /etc/berth ] && [ ! -e /var/lib/berth ] || skip "/etc/berth or /var/lib/berth exists: not a clean machine"

user_existed=no; getent passwd berth >/dev/null && user_existed=yes
backup_existed=no; [ -e /srv/berth-backup ] && backup_existed=yes
scratch=$(mktemp -d)
serve_pid=
stop_serve() {
  [ -n "$serve_pid" ] || return 0
  kill -TERM "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=
}
cleanup() {
  local status=$?
  stop_serve
  if dpkg-query -W -f='${Status}' berth 2>/dev/null | grep -q "install ok\|deinstall ok"; then
    dpkg --purge berth >/dev/null 2>&1 || true
  fi
  [ "$backup_existed" = yes ] || rm -rf /srv/berth-backup
  [ "$user_existed" = yes ] || { deluser --quiet berth >/dev/null 2>&1 || true; }
  getent group berth >/dev/null && [ "$user_existed" = no ] && { delgroup --quiet berth >/dev/null 2>&1 || true; }
  rm -rf "$scratch"
  echo "install test: $([ $status -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - started))s"
}
trap cleanup EXIT
# Killed (a ctest timeout, ^C): clean up and say so, rather than exit 0 from the trap.
trap 'exit 143' TERM
trap 'exit 130' INT

export DEBIAN_FRONTEND=noninteractive
[ "${BERTH_INSTALL_TEST_APT_UPDATE:-0}" != 1 ] || apt-get update -qq
for tool in skopeo openssl; do
  command -v "$tool" >/dev/null || apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
done
if ! command -v systemd-analyze >/dev/null; then
  apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# --- build (lintian errors fail package.sh) ---
if [ -n "${BERTH_DEB:-}" ]; then
  deb=$(realpath "$BERTH_DEB")
else
  step "building the package"
  scripts/package.sh > "$scratch/package.log" 2>&1 || { tail -50 "$scratch/package.log"; fail "package build"; }
  grep "package built in" "$scratch/package.log"
  grep -E "^(W|E): " "$scratch/package.log" || true
  deb=$(ls -t "$root"/dist/berth_*.deb | head -1)
fi
version=$(dpkg-deb -f "$deb" Version)
step "installing $deb (version $version)"
apt-get install -y -qq "$deb" > "$scratch/install.log" 2>&1 || { cat "$scratch/install.log"; fail "apt-get install"; }
grep "berth:" "$scratch/install.log" || true

# --- files, owners, modes, user ---
step "checking files, owners and modes"
expect_stat() {  # PATH OWNER:GROUP MODE
  local actual
  actual=$(stat -c '%U:%G %a' "$1") || fail "$1 is missing"
  [ "$actual" = "$2 $3" ] || fail "$1 is $actual, expected $2 $3"
}
getent passwd berth | grep -q ":/var/lib/berth:" || fail "user berth missing or with another home: $(getent passwd berth)"
id -Gn berth | grep -qw berth || fail "user berth is not in group berth"
[ "$(getent passwd berth | cut -d: -f7)" != /bin/bash ] || fail "user berth has a login shell"
expect_stat /usr/bin/berth root:root 755
expect_stat /etc/berth root:berth 750
expect_stat /etc/berth/berth.yaml root:root 644
expect_stat /etc/berth/htpasswd root:berth 640
expect_stat /etc/berth/tls berth:berth 700
expect_stat /var/lib/berth berth:berth 750
expect_stat /srv/berth-backup berth:berth 750
expect_stat /root/berth-admin-password root:root 600
unit_dir=$(dirname "$(dpkg -L berth | grep '/berth.service$')")
for unit in berth.service berth-backup.service berth-backup.timer berth-drill.service berth-drill.timer; do expect_stat "$unit_dir/$unit" root:root 644; done
for file in /usr/share/man/man1/berth.1.gz /usr/share/bash-completion/completions/berth /usr/share/doc/berth/copyright; do
  [ -f "$file" ] || fail "$file is missing"
done
dpkg-query -W -f='${Conffiles}\n' berth | grep -q "/etc/berth/berth.yaml" || fail "berth.yaml is not a conffile"
/usr/bin/berth --version | grep -q "^berth " || fail "berth --version"
password=$(sed -n 's/^berth admin password (user admin): //p' /root/berth-admin-password)
[ ${#password} -ge 16 ] || fail "no admin password in /root/berth-admin-password"
grep -qF "with the password $password" "$scratch/install.log" || fail "the install did not print the admin password once"
# The TLS material comes from the postinst, before any start, owned by the service user.
expect_stat /etc/berth/tls/ca.key berth:berth 600
expect_stat /etc/berth/tls/server.key berth:berth 600
/usr/bin/berth --config /etc/berth/berth.yaml tls ca | grep -q "BEGIN CERTIFICATE" || fail "berth tls ca before the first start"

step "systemd-analyze verify"
# --man=no: the man page lookup needs man-db's index, which a minimal machine lacks.
systemd-analyze verify --man=no "$unit_dir/berth.service" "$unit_dir/berth-backup.service" \
  "$unit_dir/berth-backup.timer" "$unit_dir/berth-drill.service" "$unit_dir/berth-drill.timer" > "$scratch/verify.log" 2>&1 || { cat "$scratch/verify.log"; fail "systemd-analyze verify"; }
if grep -v "^$" "$scratch/verify.log"; then fail "systemd-analyze verify printed warnings"; fi
# The exposure score of the service's sandboxing (0 = locked down, 10 = none); "OK" is below 3.0.
systemd-analyze security --offline=true --no-pager "$unit_dir/berth.service" > "$scratch/security.log" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for berth.service: \([0-9.]*\).*/\1/p' "$scratch/security.log")
[ -n "$exposure" ] || { cat "$scratch/security.log"; fail "systemd-analyze security printed no exposure level"; }
echo "berth.service exposure: $exposure ($(systemd-analyze --version | head -1))"
awk -v e="$exposure" 'BEGIN { exit !(e < 3.0) }' || { grep "✗" "$scratch/security.log"; fail "berth.service exposure $exposure is not below 3.0"; }

# --- run it as the service would, edit the conffile ---
# Port 0 (the packaged 127.0.0.1:5000 may be taken on a CI machine; berth logs the port it got):
# an operator's edit of the conffile, which the upgrade must keep.
sed -i 's/^  listen: "127.0.0.1:5000"/  listen: "127.0.0.1:0"/' /etc/berth/berth.yaml
grep -q 'listen: "127.0.0.1:0"' /etc/berth/berth.yaml || fail "could not edit server.listen"

berth_as_service() {
  setpriv --reuid=berth --regid=berth --init-groups -- /usr/bin/berth --config /etc/berth/berth.yaml "$@"
}
start_serve() {  # LOG
  # setpriv execs berth itself (runuser would stay in between and SIGKILL berth 2 s after a SIGTERM).
  (cd /var/lib/berth && exec env HOME=/var/lib/berth setpriv --reuid=berth --regid=berth --init-groups -- \
    /usr/bin/berth --config /etc/berth/berth.yaml serve) > "$1" 2>&1 &
  serve_pid=$!
  local deadline=$(($(date +%s) + 120))
  until grep -q "listening address=" "$1"; do
    kill -0 "$serve_pid" 2>/dev/null || { cat "$1"; fail "berth serve exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$1"; fail "berth serve did not listen within 120s"; }
    sleep 0.2
  done
  port=$(sed -n 's/.*listening address=127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -1)
  registry=127.0.0.1:$port
  # READY (PostgreSQL up) comes after the listener: wait until berth status sees PostgreSQL.
  until berth_as_service status > "$scratch/status.txt" 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$scratch/status.txt" "$1"; fail "PostgreSQL not ready within 120s"; }
    sleep 0.5
  done
}
step "berth serve as user berth"
ca_before_start=$(sha256sum /etc/berth/tls/ca.crt)
start_serve "$scratch/serve-1.log"
[ "$(sha256sum /etc/berth/tls/ca.crt)" = "$ca_before_start" ] || fail "serve replaced the CA the install made"
expect_stat /var/lib/berth/postgres berth:berth 700
certs=$scratch/certs
mkdir -p "$certs"
cp /etc/berth/tls/ca.crt "$certs/ca.crt"

# A one-layer OCI image made by hand (no Docker here).
image=$scratch/image
mkdir -p "$image/blobs/sha256" "$scratch/rootfs"
echo "installed by the berth install test $(date -u +%s%N)" > "$scratch/rootfs/hello.txt"
tar -C "$scratch/rootfs" -cf "$scratch/layer.tar" hello.txt
diff_id=$(sha256sum "$scratch/layer.tar" | cut -d' ' -f1)
gzip -n -c "$scratch/layer.tar" > "$scratch/layer.tar.gz"
blob() { local digest; digest=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$image/blobs/sha256/$digest"; echo "$digest"; }
layer=$(blob "$scratch/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff_id" > "$scratch/config.json"
config=$(blob "$scratch/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$config" "$(stat -c %s "$scratch/config.json")" "$layer" "$(stat -c %s "$scratch/layer.tar.gz")" > "$scratch/manifest.json"
manifest=$(blob "$scratch/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
  "$manifest" "$(stat -c %s "$scratch/manifest.json")" > "$image/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$image/oci-layout"

step "skopeo push and pull over TLS as admin"
skopeo copy -q --dest-cert-dir "$certs" --dest-creds "admin:$password" "oci:$image:v1" \
  "docker://$registry/api/install-test:v1" || fail "skopeo push"
pull_and_compare() {
  rm -rf "$scratch/pulled"
  skopeo copy -q --src-cert-dir "$certs" --src-creds "admin:$password" "docker://$registry/api/install-test:v1" \
    "oci:$scratch/pulled:v1" || fail "skopeo pull"
  local pulled
  pulled=$(skopeo inspect --raw "oci:$scratch/pulled:v1" | sha256sum | cut -d' ' -f1)
  [ "$pulled" = "$manifest" ] || fail "pulled manifest sha256:$pulled, pushed sha256:$manifest"
  cmp -s "$scratch/pulled/blobs/sha256/$layer" "$scratch/layer.tar.gz" || fail "pulled layer differs"
}
pull_and_compare
# Without credentials (or with wrong ones) the registry refuses.
if skopeo inspect --cert-dir "$certs" --creds "admin:wrong" "docker://$registry/api/install-test:v1" >/dev/null 2>&1; then
  fail "a wrong password was accepted"
fi

step "a database and a migration, a snapshot and berth doctor"
berth_as_service db create installtest > "$scratch/db-create.txt" 2>&1 || { cat "$scratch/db-create.txt"; fail "berth db create"; }
migrations=$scratch/migrations
mkdir -p "$migrations"
printf 'CREATE TABLE visits (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());\n' > "$migrations/V1__visits.sql"
printf 'INSERT INTO visits DEFAULT VALUES;\n' > "$migrations/V2__first_visit.sql"
chmod 755 "$scratch" "$migrations"
chmod 644 "$migrations"/*.sql
berth_as_service db migrate installtest --location "$migrations" > "$scratch/migrate.txt" 2>&1 ||
  { cat "$scratch/migrate.txt"; fail "berth db migrate"; }
berth_as_service db info installtest --location "$migrations" > "$scratch/info.txt" 2>&1 || { cat "$scratch/info.txt"; fail "berth db info"; }
[ "$(grep -c "Success" "$scratch/info.txt")" -eq 2 ] || { cat "$scratch/info.txt"; fail "db info does not show both migrations applied"; }
berth_as_service backup run > "$scratch/backup.txt" 2>&1 || { cat "$scratch/backup.txt"; fail "berth backup run"; }
berth_as_service backup list | grep -q "^[0-9]\{8\}T" || fail "no snapshot listed"
berth_as_service backup verify > "$scratch/verify-backup.txt" 2>&1 || { cat "$scratch/verify-backup.txt"; fail "berth backup verify"; }
/usr/bin/berth --config /etc/berth/berth.yaml doctor > "$scratch/doctor.txt" 2>&1 || {
  cat "$scratch/doctor.txt"
  fail "berth doctor reports errors on a fresh installation"
}
cat "$scratch/doctor.txt"
[ "$(grep -c "^ok *platform .*: supported" "$scratch/doctor.txt")" -eq 2 ] ||
  fail "berth doctor does not report this release and its PostgreSQL as supported"
stop_serve

# --- upgrade to a second version ---
step "upgrading to a repacked second version"
repack=$scratch/repack
dpkg-deb -R "$deb" "$repack"
new_version="$version+upgradetest1"
sed -i "s/^Version: .*/Version: $new_version/" "$repack/DEBIAN/control"
# A changed default config: dpkg must keep the operator's edited file (--force-confold stands
# in for answering the conffile prompt) and leave the new default beside it.
echo "# new in $new_version" >> "$repack/etc/berth/berth.yaml"
(cd "$repack" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
upgraded=$scratch/berth_${new_version}_$(dpkg-deb -f "$deb" Architecture).deb
dpkg-deb --root-owner-group -b "$repack" "$upgraded" > /dev/null
hash_before=$(sha256sum /etc/berth/htpasswd /root/berth-admin-password /etc/berth/tls/ca.crt)
dpkg --force-confold -i "$upgraded" > "$scratch/upgrade.log" 2>&1 || { cat "$scratch/upgrade.log"; fail "upgrade"; }
[ "$(dpkg-query -W -f='${Version}' berth)" = "$new_version" ] || fail "version after upgrade"
grep -q 'listen: "127.0.0.1:0"' /etc/berth/berth.yaml || fail "the edited conffile was replaced"
grep -q "# new in $new_version" /etc/berth/berth.yaml.dpkg-dist || fail "no berth.yaml.dpkg-dist with the new default"
[ "$(sha256sum /etc/berth/htpasswd /root/berth-admin-password /etc/berth/tls/ca.crt)" = "$hash_before" ] ||
  fail "the admin password or the CA changed on upgrade"
if grep -q "created the registry user" "$scratch/upgrade.log"; then fail "the upgrade made a new admin user"; fi

step "after the upgrade: same image, same database, same password"
start_serve "$scratch/serve-2.log"
pull_and_compare
berth_as_service db list | grep -q "^installtest " || fail "database installtest lost on upgrade"
stop_serve

# --- remove keeps data and configuration; purge keeps the backup volume ---
step "remove"
backup_listing() { (cd /srv/berth-backup && find . -printf '%p %s %U %m\n' | sort); }
before=$(backup_listing)
[ -n "$(ls /srv/berth-backup)" ] || fail "the backup volume is empty before the removal"
dpkg --remove berth > "$scratch/remove.log" 2>&1 || { cat "$scratch/remove.log"; fail "dpkg --remove"; }
[ ! -e /usr/bin/berth ] || fail "/usr/bin/berth still exists after the removal"
for kept in /etc/berth/berth.yaml /etc/berth/htpasswd /etc/berth/tls/ca.key /var/lib/berth/postgres/PG_VERSION; do
  [ -e "$kept" ] || fail "$kept was lost by the removal (only a purge removes it)"
done
step "purge"
dpkg --purge berth > "$scratch/purge.log" 2>&1 || { cat "$scratch/purge.log"; fail "dpkg --purge"; }
[ "$(backup_listing)" = "$before" ] || fail "the purge changed the backup volume"
for gone in /etc/berth /var/lib/berth /root/berth-admin-password /usr/bin/berth; do
  [ ! -e "$gone" ] || fail "$gone still exists after the purge"
done
