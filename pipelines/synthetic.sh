#!/usr/bin/env bash
# Runs the detector on synthetic video: the shapes clip the model was trained on (rendered by
# ssd-clip, with ground truth) or GStreamer's videotestsrc.
#
# usage: pipelines/synthetic.sh [clip|videotestsrc] [OUTPUT.mp4]
#   clip (default): renders 12 scenes of coloured shapes with ssd-clip, then
#       multifilesrc ! jpegdec ! ssddetect ! ssdoverlay ! sink, and scores the detections
#   videotestsrc:   videotestsrc pattern=ball ! ssddetect ! ssdoverlay ! sink
#   With OUTPUT.mp4 the annotated video is encoded to it, else shown on the display (or, with
#   no display, the detections are printed as JSON Lines).
# Environment: BUILD_DIR (default build/), SSD_MODEL (default the shipped model).
set -euo pipefail
source "$(dirname "$0")/common.sh"
mode=${1:-clip}
output=${2:-}
sink() {
  if [ -n "$output" ]; then echo "videoconvert ! x264enc speed-preset=veryfast ! mp4mux ! filesink location=$output"
  elif [ -n "$(video_sink)" ]; then echo "videoconvert ! $(video_sink)"
  else echo "fakesink"; fi
}
export_el="ssdexport location=/dev/stdout !"
if [ -n "$output" ] || [ -n "$(video_sink)" ]; then export_el=""; fi
case "$mode" in
  clip)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$BUILD_DIR/gst-plugin/ssd-clip" render --out "$work" --scenes 12 --hold 5 --fps 10
    # shellcheck disable=SC2046
    run multifilesrc location="$work/frames/%05d.jpg" caps="image/jpeg,framerate=10/1" ! jpegdec ! \
      videoconvert ! ssddetect "${model_prop[@]}" ! ssdexport location="$work/det.jsonl" ! $export_el \
      ssdoverlay ! $(sink)
    "$BUILD_DIR/gst-plugin/ssd-clip" score --truth "$work/truth.json" --detections "$work/det.jsonl"
    ;;
  videotestsrc)
    # shellcheck disable=SC2046
    run videotestsrc pattern=ball num-buffers=100 ! video/x-raw,width=640,height=480,framerate=25/1 ! \
      videoconvert ! ssddetect "${model_prop[@]}" ! $export_el ssdoverlay ! $(sink)
    ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
