#!/usr/bin/env bash
# Live detection on a V4L2 webcam, shown on the display (or recorded to a file).
#
# usage: pipelines/webcam.sh [DEVICE] [OUTPUT.mp4] [ssddetect property=value ...]
#   e.g. pipelines/webcam.sh interval=2                  (/dev/video0, shown on the display)
#        pipelines/webcam.sh /dev/video0 "" device=cuda precision=fp16
#        pipelines/webcam.sh /dev/video0 cam.mp4 interval=3
#        pipelines/webcam.sh /dev/video0 "" region=0,240,640,240 class-thresholds=star=0.6
#          (only the lower half of a 640x480 picture is analysed; stars need confidence > 0.6)
# DEVICE defaults to /dev/video0. Without OUTPUT the video is shown; stop with Ctrl-C (the
# file is finalised on Ctrl-C thanks to gst-launch -e).
# ssddetect has qos enabled: when inference cannot keep up with the camera, frames the
# display would drop as late are dropped before inference; interval=N analyses every N-th
# frame and keeps the boxes on the others.
# OUTPUT is written as OUTPUT.part and renamed when the recording ends well (Ctrl-C included).
# Environment: BUILD_DIR (default build/), SSD_MODEL (default the shipped model).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
source "$(dirname "$0")/common.sh"
# DEVICE and OUTPUT may be left out: a property=value in their place is a property.
device=/dev/video0 output=""
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then device=${1:-/dev/video0}; shift; fi
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then output=$1; shift; fi
[ -e "$device" ] || die "no camera at $device"
if [ -n "$output" ]; then
  writes "$output"
  tail=(videoconvert ! x264enc tune=zerolatency speed-preset=veryfast ! mp4mux ! filesink location="$output.part")
else
  need_display "OUTPUT.mp4 to record instead"
  tail=(videoconvert ! "$(video_sink)")
fi
run v4l2src device="$device" ! videoconvert ! queue max-size-buffers=2 leaky=downstream ! \
  ssddetect "${model_prop[@]}" "$@" ! ssdoverlay ! "${tail[@]}"
keep_outputs
