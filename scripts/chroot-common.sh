# Shared by scripts/check-trixie.sh and scripts/check-quick-start.sh (sourced, not run): a
# Debian chroot made with debootstrap, entered with this machine's /proc, /sys, /dev, name
# resolution, local CAs and pip's configuration. Run as root. The caller sets `set -euo pipefail`.

step() { printf '\n== %s: %s\n' "${CHROOT_TOOL:-chroot}" "$*"; }

# chroot_host_tools: debootstrap and rsync on this machine.
chroot_host_tools() {
  local pkgs=()
  command -v debootstrap >/dev/null || pkgs+=(debootstrap)
  command -v rsync >/dev/null || pkgs+=(rsync)
  if [ ${#pkgs[@]} -gt 0 ]; then
    step "installing ${pkgs[*]} on this machine"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"
  fi
}

# chroot_complete ROOT: whether ROOT holds a finished Debian system.
chroot_complete() {
  [ -f "$1/etc/debian_version" ] && [ -x "$1/usr/bin/apt-get" ] &&
    chroot "$1" dpkg-query -W -f='${Status}' apt 2>/dev/null | grep -q "install ok installed"
}

# chroot_make SUITE ROOT MIRROR: `debootstrap --variant=minbase SUITE` into ROOT unless it already
# holds a finished system; an unfinished one (an interrupted debootstrap) is an error.
chroot_make() {
  local suite=$1 root=$2 mirror=$3
  if chroot_complete "$root"; then
    step "$root holds Debian $(cat "$root/etc/debian_version")"
    return
  fi
  if [ -e "$root" ] && [ -n "$(ls -A "$root" 2>/dev/null)" ]; then
    echo "${CHROOT_TOOL:-chroot}: $root exists but holds no complete $suite system (an" \
         "interrupted debootstrap?); remove it (nothing mounted under it) and run again" >&2
    exit 1
  fi
  step "debootstrap $suite into $root"
  mkdir -p "$root"
  nice -n 19 debootstrap --variant=minbase "$suite" "$root" "$mirror"
}

# chroot_enter ROOT: binds /proc, /sys, /dev and /dev/pts into ROOT (chroot_leave, which the
# caller's EXIT trap runs, unmounts those it mounted), copies /etc/resolv.conf, this machine's
# local CAs (/usr/local/share/ca-certificates) and /etc/pip.conf (which may name the CA bundle)
# so apt and pip reach their archives from inside as they do from here.
chroot_mounted=()
chroot_enter() {
  local root=$1 m
  for m in proc sys dev dev/pts; do
    mkdir -p "$root/$m"
    if ! mountpoint -q "$root/$m"; then
      mount --bind "/$m" "$root/$m"
      chroot_mounted+=("$root/$m")
    fi
  done
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  [ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$root/etc/pip.conf"
  local cas
  shopt -s nullglob
  cas=(/usr/local/share/ca-certificates/*.crt)
  shopt -u nullglob
  if [ ${#cas[@]} -gt 0 ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp "${cas[@]}" "$root/usr/local/share/ca-certificates/"
    if [ ! -x "$root/usr/sbin/update-ca-certificates" ]; then
      chroot_run "$root" "apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates"
    fi
    chroot_run "$root" "update-ca-certificates >/dev/null"
  fi
}
chroot_leave() {
  local i
  for ((i = ${#chroot_mounted[@]} - 1; i >= 0; i--)); do
    umount "${chroot_mounted[i]}" || umount -l "${chroot_mounted[i]}" || true
  done
  chroot_mounted=()
}

# chroot_run ROOT COMMAND: COMMAND in bash inside ROOT, as root.
chroot_run() { chroot "$1" env LC_ALL=C.UTF-8 HOME=/root bash -c "$2"; }
