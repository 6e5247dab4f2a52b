#!/usr/bin/env bash
# Runs the detector on synthetic video: the shapes clip the model was trained on (rendered by
# ssd-clip, with ground truth) or GStreamer's videotestsrc.
#
# usage: pipelines/synthetic.sh [clip|videotestsrc] [OUTPUT.mp4]
#   clip (default): renders 12 scenes of coloured shapes with ssd-clip, then
#       multifilesrc ! jpegdec ! ssddetect ! ssdoverlay ! sink, and scores the detections
#   videotestsrc:   videotestsrc pattern=ball ! ssddetect ! ssdoverlay ! sink
#   With OUTPUT.mp4 the annotated video is encoded to it, else shown on the display (or, with
#   no display, the detections are printed as JSON Lines on stdout, everything else on stderr).
# Environment: BUILD_DIR (default build/), SSD_MODEL (default the shipped model).
set -euo pipefail
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }   # the comment block above
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
source "$(dirname "$0")/common.sh"
mode=${1:-clip}
output=${2:-}
export_el=()
if [ -n "$output" ]; then
  tail=(videoconvert ! x264enc speed-preset=veryfast ! mp4mux ! filesink location="$output")
elif [ -n "$(video_sink)" ]; then
  tail=(videoconvert ! "$(video_sink)")
else
  tail=(fakesink)
  export_el=(ssdexport !)   # to stdout: gst-launch runs quiet, and the rest goes to stderr
fi
launch() {
  if [ ${#export_el[@]} -gt 0 ]; then
    echo "+ gst-launch-1.0 -q -e $*" >&2
    gst-launch-1.0 -q -e "$@"
  else
    run "$@"
  fi
}
case "$mode" in
  clip)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$BUILD_DIR/gst-plugin/ssd-clip" render --out "$work" --scenes 12 --hold 5 --fps 10 >&2
    launch multifilesrc location="${work//%/%%}/frames/%05d.jpg" caps="image/jpeg,framerate=10/1" ! jpegdec ! \
      videoconvert ! ssddetect "${model_prop[@]}" ! ssdexport location="$work/det.jsonl" ! "${export_el[@]}" \
      ssdoverlay ! "${tail[@]}"
    "$BUILD_DIR/gst-plugin/ssd-clip" score --truth "$work/truth.json" --detections "$work/det.jsonl" >&2
    ;;
  videotestsrc)
    launch videotestsrc pattern=ball num-buffers=100 ! video/x-raw,width=640,height=480,framerate=25/1 ! \
      videoconvert ! ssddetect "${model_prop[@]}" ! "${export_el[@]}" ssdoverlay ! "${tail[@]}"
    ;;
  *) echo "error: unknown mode '$mode' (clip or videotestsrc)" >&2; usage >&2; exit 2 ;;
esac
