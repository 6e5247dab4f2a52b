# Sourced by the pipelines/*.sh scripts: finds the build tree and points GStreamer at the
# `ssd` plugin in it, with a private registry file (the system registry is left alone).
#   BUILD_DIR   build directory (default: <repo>/build); built by `meson setup` + `ninja`
#   SSD_MODEL   weights file for ssddetect (default: the shipped models/ssd-default.safetensors)
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$repo_root/build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$PWD/$BUILD_DIR ;; esac
if [ ! -e "$BUILD_DIR/gst-plugin/libgstssd.so" ]; then
  echo "error: $BUILD_DIR/gst-plugin/libgstssd.so not found; build first:" >&2
  echo "  meson setup build && ninja -C build   (or set BUILD_DIR)" >&2
  exit 1
fi
export GST_PLUGIN_PATH="$BUILD_DIR/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
export GST_REGISTRY_1_0="$BUILD_DIR/gst-registry.bin"
model_prop=()
if [ -n "${SSD_MODEL:-}" ]; then model_prop=(model="$SSD_MODEL"); fi
# The display sink, or nothing when there is no display (autovideosink would then try
# dfbvideosink, which crashes on a machine without one).
video_sink() {
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then echo "autovideosink"; else echo ""; fi
}
die() { echo "error: $*" >&2; exit 1; }
# The display sink, or an error that says what to give instead ($1) when there is no display.
need_display() {
  [ -n "$(video_sink)" ] || die "no display (DISPLAY and WAYLAND_DISPLAY are unset): give $1"
}
# Whether two paths name the same existing file.
same_file() { [ -e "$1" ] && [ -e "$2" ] && [ "$1" -ef "$2" ]; }
# The files a pipeline writes (filesink, ssdexport) go to "<name>.part" (writes NAME...) and are
# moved into place when it succeeded (keep_outputs): a pipeline that fails (an unreadable input,
# a camera out of reach) leaves what was there before instead of an empty file.
partial_outputs=()
writes() { partial_outputs+=("$@"); }
keep_outputs() { for f in "${partial_outputs[@]}"; do mv -f -- "$f.part" "$f"; done; partial_outputs=(); }
trap 'for f in "${partial_outputs[@]}"; do rm -f -- "$f.part"; done' EXIT
run() {
  echo "+ gst-launch-1.0 $*" >&2
  gst-launch-1.0 -e "$@"
}
