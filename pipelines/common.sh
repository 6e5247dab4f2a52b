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
# The display sink, or a message when there is no display.
video_sink() {
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then echo "autovideosink"; else echo ""; fi
}
run() {
  echo "+ gst-launch-1.0 $*" >&2
  gst-launch-1.0 -e "$@"
}
