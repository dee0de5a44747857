#!/usr/bin/env bash
# The emulated Raspberry Pi userland for tests/pi: a Debian Bullseye armhf root (what Raspberry
# Pi OS Bullseye 32-bit is built on: Python 3.9.2, numpy 1.19.5, OpenCV 4.5.1), built once with
# debootstrap and run through qemu-user (binfmt), cached outside the clone and reused:
#   ${PI_ROOT_CACHE:-/var/cache/edge-vision/bullseye-armhf-<hash of apt-packages.txt>.tar.zst}
# `pi-root.sh --path` prints that path and does nothing else (tests/pi finds the root with it).
# Needs root (debootstrap, chroot, binfmt). Called by scripts/setup.sh; safe to run on its own.
set -euo pipefail
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packages_hash="$(sha256sum "$REPO/deploy/pi/apt-packages.txt" | cut -c1-12)"
CACHE="${PI_ROOT_CACHE:-/var/cache/edge-vision/bullseye-armhf-$packages_hash.tar.zst}"
if [ "${1:-}" = "--path" ]; then echo "$CACHE"; exit 0; fi

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { echo "pi-root.sh: error: needs root (debootstrap, chroot)" >&2; exit 1; }

need=()
for pkg in debootstrap qemu-user-static binfmt-support zstd; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  log "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# binfmt_misc runs armhf binaries through qemu-arm-static (F flag: no copy inside the root)
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-arm ] || update-binfmts --enable qemu-arm
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-arm || {
  echo "pi-root.sh: error: binfmt for qemu-arm is not enabled" >&2; exit 1; }

if [ -s "$CACHE" ]; then
  log "emulated Pi root: $CACHE (cached)"
  exit 0
fi
log "building the emulated Pi root (debootstrap bullseye armhf under qemu, a few minutes)"
build="$(mktemp -d)"
# (|| true: proc is normally unmounted by then, and under set -e a failing umount in the trap
# would become the script's exit status — a fresh build then failed setup after succeeding)
trap 'umount "$build/root/proc" 2>/dev/null || true; rm -rf "$build"' EXIT
started=$SECONDS
debootstrap --arch=armhf --variant=minbase bullseye "$build/root" "$MIRROR" >"$build/log" 2>&1 \
  || { tail -n 20 "$build/log" >&2; echo "pi-root.sh: error: debootstrap failed" >&2; exit 1; }
# the packages install.sh needs, preinstalled: dpkg under qemu-user takes 15+ minutes for
# python3-opencv's ~270 dependencies, more than CI can spend on every run. install.sh still runs
# its apt step for real: it installs apt-build-packages.txt (gcc, a minute or two), and
# uninstall.sh --purge removes them again.
cp /etc/resolv.conf "$build/root/etc/resolv.conf"
mount -t proc proc "$build/root/proc"
mapfile -t packages < <(grep -v '^#' "$REPO/deploy/pi/apt-packages.txt")
status=0
chroot "$build/root" /bin/bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends ${packages[*]}" >>"$build/log" 2>&1 || status=$?
umount "$build/root/proc"
[ "$status" -eq 0 ] || { tail -n 20 "$build/log" >&2; echo "pi-root.sh: error: apt in the root failed" >&2; exit 1; }
chroot "$build/root" apt-get clean
rm -f "$build/root/etc/resolv.conf"
mkdir -p "$(dirname "$CACHE")"
tar -C "$build/root" -cf - . | zstd -q -T0 -o "$CACHE.tmp" -f
mv "$CACHE.tmp" "$CACHE"
log "emulated Pi root cached in $CACHE ($((SECONDS - started)) s, $(du -h "$CACHE" | cut -f1))"
