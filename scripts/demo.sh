#!/usr/bin/env bash
# The gst-ssd demo (the README's main job):
#   1. builds the project (meson setup + ninja, only the targets the demo needs),
#   2. renders a synthetic shapes clip with known ground truth (ssd-clip render),
#   3. runs  multifilesrc ! jpegdec ! ssddetect ! ssdtrack ! ssdexport ! ssdoverlay ! tee
#              ├─ x264enc ! mp4mux   -> OUT/annotated.mp4
#              └─ jpegenc            -> OUT/annotated/*.jpg
#      with the shipped model models/ssd-default.safetensors,
#   4. tiles a few annotated frames into OUT/contact-sheet.png,
#   5. prints the objects found against the ground truth (IoU > 0.5: precision, recall).
#
# usage: scripts/demo.sh            (then look at out/demo/)
# Environment:
#   BUILD_DIR  build directory (default: build; created with `meson setup` if missing)
#   OUT        output directory (default: out/demo; emptied first, if it holds only an earlier
#              demo's outputs: another folder is refused)
#   SSD_MODEL  weights file (default: the shipped model)
#   SCENES, HOLD, FPS, WIDTH, HEIGHT, SEED   the clip (default 24 scenes x 3 frames at 6 fps, 320x240)
#   DETECT_PROPS  extra ssddetect properties, e.g. "device=cuda precision=fp16"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$PWD/$BUILD_DIR ;; esac   # (as pipelines/common.sh)
OUT=${OUT:-$root/out/demo}
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
SCENES=${SCENES:-24} HOLD=${HOLD:-3} FPS=${FPS:-6} WIDTH=${WIDTH:-320} HEIGHT=${HEIGHT:-240} SEED=${SEED:-2024}

step() { printf '\n== %s\n' "$*"; }

# OUT is emptied: only when all it holds is what an earlier demo wrote (or nothing).
if [ -e "$OUT" ]; then
  [ -d "$OUT" ] || { echo "error: OUT=$OUT is not a folder" >&2; exit 1; }
  for entry in "$OUT"/* "$OUT"/.[!.]*; do
    [ -e "$entry" ] || continue
    case "$(basename "$entry")" in
      annotated|annotated.mp4|clip|contact-sheet.png|detections.jsonl) ;;
      *) echo "error: OUT=$OUT holds $(basename "$entry"), which the demo did not write: give an empty or new folder" >&2
         exit 1 ;;
    esac
  done
fi

step "build ($BUILD_DIR)"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" "$root"
fi
ninja -C "$BUILD_DIR" gst-plugin/libgstssd.so gst-plugin/ssd-clip

export GST_PLUGIN_PATH="$BUILD_DIR/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
export GST_REGISTRY_1_0="$BUILD_DIR/gst-registry.bin"
clip_tool="$BUILD_DIR/gst-plugin/ssd-clip"
model_prop=()
if [ -n "${SSD_MODEL:-}" ]; then model_prop=(model="$SSD_MODEL"); fi
# shellcheck disable=SC2206
extra_props=(${DETECT_PROPS:-})
encoder=(x264enc speed-preset=medium)
gst-inspect-1.0 x264enc >/dev/null 2>&1 || encoder=(openh264enc)

step "render the synthetic clip"
rm -rf "$OUT"
mkdir -p "$OUT/annotated"
"$clip_tool" render --out "$OUT/clip" --scenes "$SCENES" --hold "$HOLD" --fps "$FPS" \
  --width "$WIDTH" --height "$HEIGHT" --seed "$SEED"

step "detect -> overlay -> encode"
# Both branches have unbounded queues: x264enc holds frames for its look-ahead before it
# outputs anything, so the JPEG branch, blocked in preroll, must not stall the tee meanwhile.
frames=$(( SCENES * HOLD ))
start=$(date +%s.%N)
set -x
gst-launch-1.0 -e -q \
  multifilesrc location="${OUT//%/%%}/clip/frames/%05d.jpg" caps="image/jpeg,framerate=$FPS/1" ! jpegdec ! videoconvert ! \
  ssddetect "${model_prop[@]}" "${extra_props[@]}" ! ssdtrack ! \
  ssdexport location="$OUT/detections.jsonl" ! \
  ssdoverlay ! tee name=t \
  t. ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=0 ! videoconvert ! "${encoder[@]}" ! h264parse ! mp4mux ! filesink location="$OUT/annotated.mp4" \
  t. ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=0 ! jpegenc quality=90 ! multifilesink location="${OUT//%/%%}/annotated/%05d.jpg"
{ set +x; } 2>/dev/null
end=$(date +%s.%N)
awk -v f="$frames" -v a="$start" -v b="$end" \
  'BEGIN { printf "%d frames in %.1f s (%.1f frames/s, decode + detect + overlay + encode)\n", f, b - a, f / (b - a) }'

step "contact sheet"
"$clip_tool" sheet --frames "$OUT/annotated" --out "$OUT/contact-sheet.png" --count 6 --columns 3

step "objects found vs ground truth (IoU > 0.5)"
"$clip_tool" score --truth "$OUT/clip/truth.json" --detections "$OUT/detections.jsonl"

step "outputs"
ls -l "$OUT/annotated.mp4" "$OUT/contact-sheet.png" "$OUT/detections.jsonl" "$OUT/clip/truth.json"
