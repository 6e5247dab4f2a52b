#!/usr/bin/env bash
# Runs the README's quick start, command for command, on a fresh Debian 12 (bookworm) system in a
# chroot, as a user with sudo: what someone with a new machine and this repository does. Not part
# of CI (.ci/run, which runs on a machine already set up).
#
#   sudo bash scripts/check-quick-start.sh                  setup, demo, then every test suite
#   sudo bash scripts/check-quick-start.sh --suite model    arguments go to scripts/test.sh
#
# Steps:
#   1. $QUICK_BASE (default /srv/bookworm): `debootstrap --variant=minbase bookworm` from
#      $QUICK_MIRROR (default http://deb.debian.org/debian), made once and never changed after.
#   2. $QUICK_ROOT (default /srv/bookworm-quick): removed and copied afresh from the base, so
#      every run starts from a system that has none of the project's packages; its sources get
#      bookworm-updates and bookworm-security, as an installed Debian 12 has; sudo (which a
#      minbase lacks and an installed Debian with a user account has) and the user `dev`, who
#      may sudo, are added. /proc, /sys, /dev, name resolution and the local CAs as in
#      scripts/check-trixie.sh (scripts/chroot-common.sh).
#   3. `git clone` of this repository's HEAD (committed work only, as a user would get it) into
#      /home/dev/gst-ssd.
#   4. As dev, in the clone, the README's commands, each timed:
#        sudo bash scripts/setup.sh;  bash scripts/demo.sh;  bash scripts/test.sh [ARGS]
# Each command must succeed; the script stops at the first that fails and exits with its
# status. $QUICK_ROOT stays afterwards for a look (rm -rf it once nothing is mounted under it);
# the demo's output is in $QUICK_ROOT/home/dev/gst-ssd/out/demo, the test log in
# $QUICK_ROOT/home/dev/gst-ssd/build/meson-logs/testlog.txt.
set -euo pipefail
BASE=${QUICK_BASE:-/srv/bookworm}
ROOT=${QUICK_ROOT:-/srv/bookworm-quick}
MIRROR=${QUICK_MIRROR:-http://deb.debian.org/debian}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "check-quick-start: run as root (debootstrap, mount, chroot)" >&2; exit 1; }

CHROOT_TOOL=check-quick-start
. "$src/scripts/chroot-common.sh"
chroot_host_tools

# 1. The pristine Debian 12 system.
chroot_make bookworm "$BASE" "$MIRROR"

# 2. A fresh copy of it, with sudo and a user.
if [ -e "$ROOT" ]; then
  if grep -q " $ROOT/" /proc/mounts; then
    echo "check-quick-start: something is mounted under $ROOT; unmount it first" >&2
    exit 1
  fi
  step "removing the previous $ROOT"
  rm -rf "$ROOT"
fi
step "copying $BASE to $ROOT"
cp -a "$BASE" "$ROOT"
cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
trap chroot_leave EXIT
chroot_enter "$ROOT"
step "sudo and the user dev"
chroot_run "$ROOT" "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo
  useradd --create-home --shell /bin/bash dev
  echo 'dev ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/dev && chmod 0440 /etc/sudoers.d/dev"

# 3. The clone.
step "git clone $(git -C "$src" rev-parse --short HEAD) into /home/dev/gst-ssd"
git clone -q --no-local "$src" "$ROOT/home/dev/gst-ssd"
chroot_run "$ROOT" "chown -R dev:dev /home/dev/gst-ssd"

# 4. The README's quick start.
as_dev() {
  chroot --userspec=dev:dev "$ROOT" env -i HOME=/home/dev USER=dev LOGNAME=dev SHELL=/bin/bash \
    LC_ALL=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin bash -c "cd ~/gst-ssd && $1"
}
args=""
[ $# -eq 0 ] || args=$(printf '%q ' "$@")
summary=()
for cmd in "sudo bash scripts/setup.sh" "bash scripts/demo.sh" "bash scripts/test.sh $args"; do
  step "dev\$ $cmd"
  start=$(date +%s)
  rc=0
  as_dev "$cmd" || rc=$?
  summary+=("$(printf '%-40s exit %d, %d s' "$cmd" "$rc" $(( $(date +%s) - start )))")
  if [ "$rc" != 0 ]; then
    printf '%s\n' "${summary[@]}"
    exit "$rc"
  fi
done
step "the quick start passed"
printf '%s\n' "${summary[@]}"
