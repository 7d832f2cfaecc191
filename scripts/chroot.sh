#!/usr/bin/env bash
# Runs a command in a minimal chroot of another Debian release, to build, test and install berth
# there without a second machine (root; Debian's debootstrap, from the package archive).
#
#   scripts/chroot.sh [--release trixie] [--state NAME] [--src] [--bind HOST:GUEST[:ro]] [--env NAME=VALUE]
#                     -- COMMAND [ARG...]
#
# The release's base system is debootstrapped once and cached under $BERTH_CHROOT_CACHE
# (default /var/cache/berth-chroot/RELEASE/base). Every run sees it through an overlay, so the
# base stays clean: without --state the run's changes are thrown away at the end; with --state
# NAME they are kept in RELEASE/state-NAME for the next run with that name (installed packages, a
# build tree, ccache). Downloaded .debs are kept in RELEASE/apt-archives across runs.
# --src binds this checkout read-only at /src; --bind adds any other folder. The command starts
# with a clean environment (PATH, HOME, LANG, CI) plus each --env.
# The command runs in its own PID and mount namespace: every process it started is gone and every
# mount undone when it ends, however it ends. Exit status: the command's.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

release=trixie
state=
binds=()
envs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) release=$2; shift 2 ;;
    --state) state=$2; shift 2 ;;
    --src) binds+=("$here:/src:ro"); shift ;;
    --bind) binds+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "chroot: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "chroot: no command given: scripts/chroot.sh [options] -- COMMAND" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "chroot: needs root (debootstrap, mounts, chroot)" >&2; exit 1; }
case "$release$state" in *[!A-Za-z0-9_-]*) echo "chroot: release and state are plain names" >&2; exit 2 ;; esac

cache=${BERTH_CHROOT_CACHE:-/var/cache/berth-chroot}/$release
mirror=${BERTH_CHROOT_MIRROR:-http://deb.debian.org/debian}

# --- the cached base system: made once, complete or not at all ---
if [ ! -e "$cache/base/.berth-complete" ]; then
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v debootstrap >/dev/null; then apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; fi
  echo "chroot: debootstrapping $release into $cache/base (once; cached for later runs)"
  rm -rf "$cache/base.tmp"
  mkdir -p "$cache"
  debootstrap --variant=minbase "$release" "$cache/base.tmp" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log"; echo "chroot: debootstrap of $release from $mirror failed" >&2; exit 1; }
  cat > "$cache/base.tmp/etc/apt/sources.list" <<EOF
deb $mirror $release main
deb $mirror $release-updates main
deb http://deb.debian.org/debian-security $release-security main
EOF
  # No daemons start inside (invoke-rc.d asks policy-rc.d): the tests start what they need.
  printf '#!/bin/sh\nexit 101\n' > "$cache/base.tmp/usr/sbin/policy-rc.d"
  chmod 755 "$cache/base.tmp/usr/sbin/policy-rc.d"
  touch "$cache/base.tmp/.berth-complete"
  mv "$cache/base.tmp" "$cache/base"
fi

# --- the run: an overlay on the base, in namespaces of its own ---
if [ -n "$state" ]; then
  layer=$cache/state-$state
  mkdir -p "$layer/upper" "$layer/work"
  discard=
else
  layer=$(mktemp -d "$cache/run.XXXXXX")
  mkdir -p "$layer/upper" "$layer/work"
  discard=$layer
fi
mkdir -p "$cache/apt-archives/partial" "$layer/root"
rm -rf "$layer/tmp" && mkdir -m 1777 "$layer/tmp"
export BERTH_CHROOT_BINDS
BERTH_CHROOT_BINDS=$(printf '%s\n' "${binds[@]}")

status=0
unshare --mount --pid --fork --propagation private -- bash -s -- "$cache" "$layer" "${#envs[@]}" "${envs[@]}" "$@" <<'INNER' || status=$?
set -euo pipefail
cache=$1 layer=$2 count=$3; shift 3
envs=("${@:1:$count}"); shift "$count"
root=$layer/root
mount -t overlay overlay -o "lowerdir=$cache/base,upperdir=$layer/upper,workdir=$layer/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount --bind "$layer/tmp" "$root/tmp"
mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
while IFS=: read -r host guest mode; do
  [ -n "$host" ] || continue
  mkdir -p "$root$guest"
  mount --bind "$host" "$root$guest"
  [ "${mode:-}" != ro ] || mount -o remount,bind,ro "$root$guest"
done <<< "$BERTH_CHROOT_BINDS"
exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 CI="${CI:-}" "${envs[@]}" "$@"
INNER
[ -z "$discard" ] || rm -rf "$discard"
exit $status
