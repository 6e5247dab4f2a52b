#!/usr/bin/env bash
# Builds and tests this working tree on Debian 13 (trixie) in a chroot: GStreamer 1.26 (with
# gstreamer-analytics-1.0, so the HAVE_GST_ANALYTICS code and its tests are compiled), LibTorch
# 2.6, OpenCV 4.10 and GCC 14, next to the Debian 12 machine (GStreamer 1.22, LibTorch 1.13)
# the project is developed and CI-tested on. Not part of CI (.ci/run).
#
#   sudo bash scripts/check-trixie.sh                   build, then every test suite
#   sudo bash scripts/check-trixie.sh elements          build, then only the named suites
#   sudo bash scripts/check-trixie.sh --list            arguments go to `meson test`
#
# Steps, each skipped when already done, so the script can be re-run at any time:
#   1. $TRIXIE_ROOT (default /srv/trixie): `debootstrap --variant=minbase trixie` from
#      $TRIXIE_MIRROR (default http://deb.debian.org/debian) when it holds no trixie system yet;
#      installs debootstrap (and rsync) on this machine first when missing.
#   2. binds /proc, /sys, /dev and /dev/pts into it (unmounted again on exit, also on errors) and
#      copies /etc/resolv.conf and this machine's local CAs (/usr/local/share/ca-certificates)
#      so apt and pip reach their archives from inside as they do from here.
#   3. copies the working tree (tracked files and untracked ones git does not ignore, as they
#      are now) to $TRIXIE_ROOT/src with rsync: unchanged files keep their time stamps so the
#      build is incremental; files gone from the tree are deleted there; build/ and .venv/ there
#      are kept.
#   4. runs scripts/setup.sh inside (the same Debian package names exist in trixie; it also
#      makes src/.venv with pycocotools and safetensors from PyPI for the test references).
#   5. `meson setup build --buildtype=release` (once) and `nice -n 19 ninja -j$JOBS` (default 1).
#   6. `meson test -C build --print-errorlogs --num-processes 1 [ARGS]`.
# The chroot stays afterwards (delete it with `rm -rf /srv/trixie` once nothing is mounted
# under it). Logs: $TRIXIE_ROOT/src/build/meson-logs/ (testlog.txt for the tests).
set -euo pipefail
ROOT=${TRIXIE_ROOT:-/srv/trixie}
MIRROR=${TRIXIE_MIRROR:-http://deb.debian.org/debian}
JOBS=${JOBS:-1}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "check-trixie: run as root (debootstrap, mount, chroot)" >&2; exit 1; }

CHROOT_TOOL=check-trixie
. "$src/scripts/chroot-common.sh"
chroot_host_tools

# 1. The trixie system.
chroot_make trixie "$ROOT" "$MIRROR"

# 2. Mounts (only ours are undone), name resolution and the local CAs.
trap chroot_leave EXIT
chroot_enter "$ROOT"
in_root() { chroot_run "$ROOT" "$1"; }

# 3. The working tree, as it is now.
step "copying $src to $ROOT/src"
stage=$(mktemp -d)
trap 'rm -rf "$stage"; chroot_leave' EXIT
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
   while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
   tar --null -T - -cf - | tar -xf - -C "$stage")
mkdir -p "$ROOT/src"
rsync -rlpc --delete --exclude=/build/ --exclude=/.venv/ "$stage/" "$ROOT/src/"

# 4. Packages and the test references' venv.
step "scripts/setup.sh inside the chroot"
in_root "cd /src && bash scripts/setup.sh"

# 5. Build.
step "build (nice -n 19 ninja -j$JOBS)"
in_root "cd /src && { [ -f build/build.ninja ] || meson setup build --buildtype=release; }"
start=$(date +%s)
in_root "cd /src && nice -n 19 ninja -C build -j$JOBS"
echo "check-trixie: build took $(( $(date +%s) - start )) s"

step "versions"
in_root "gst-launch-1.0 --version | sed -n 2p; g++ --version | head -1;
         dpkg-query -W -f='\${Package} \${Version}\n' libtorch-dev libopencv-dev \
           libgstreamer-plugins-bad1.0-dev g++ meson"

# 6. Tests.
step "meson test $*"
start=$(date +%s)
args=""
[ $# -eq 0 ] || args=$(printf '%q ' "$@")
rc=0
in_root "cd /src && meson test -C build --print-errorlogs --num-processes 1 $args" || rc=$?
echo "check-trixie: tests took $(( $(date +%s) - start )) s (exit $rc)"
echo "check-trixie: log $ROOT/src/build/meson-logs/testlog.txt"
exit $rc
