#!/usr/bin/env bash
# Detection on an RTSP camera (H.264, H.265 or MJPEG; decodebin picks the decoder).
#
# usage: pipelines/rtsp-camera.sh RTSP_URL [OUTPUT.mp4|-] [ssddetect property=value ...]
#   e.g. pipelines/rtsp-camera.sh rtsp://192.168.1.20:554/stream1
#        pipelines/rtsp-camera.sh rtsp://user:pass@cam/stream cam.mp4 interval=2
#        SSD_MODEL=traffic.safetensors pipelines/rtsp-camera.sh rtsp://cam/stream - classes=car,person
#          (JSON Lines on stdout, with a model of your own that knows cars and people)
#        pipelines/rtsp-camera.sh rtsp://cam/stream interval=2   (no OUTPUT: shown on the display)
# Without OUTPUT the annotated video is shown on the display; "-" prints the detections as
# JSON Lines instead. Stop with Ctrl-C. rtspsrc uses TCP interleaving (works through NAT).
# OUTPUT is written as OUTPUT.part and renamed when the recording ends well (Ctrl-C included).
# Environment: BUILD_DIR (default build/), SSD_MODEL (default the shipped model).
set -euo pipefail
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }   # the comment block above
case "${1:-}" in -h|--help) usage; exit 0 ;; -*) usage >&2; exit 2 ;; esac
if [ $# -lt 1 ]; then usage >&2; exit 2; fi
source "$(dirname "$0")/common.sh"
url=$1; shift
output=""
# OUTPUT may be left out: a property=value in its place is a property.
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then output=$1; shift; fi
head=(rtspsrc location="$url" protocols=tcp latency=200 ! decodebin ! videoconvert ! \
      queue max-size-buffers=2 leaky=downstream ! ssddetect "${model_prop[@]}" "$@")
if [ "$output" = "-" ]; then
  # -q: only the JSON Lines on stdout
  gst-launch-1.0 -q -e "${head[@]}" ! ssdexport ! fakesink
elif [ -n "$output" ]; then
  writes "$output"
  run "${head[@]}" ! ssdoverlay ! videoconvert ! x264enc tune=zerolatency speed-preset=veryfast ! \
    mp4mux ! filesink location="$output.part"
  keep_outputs
else
  need_display "OUTPUT.mp4, or - for the detections as JSON Lines"
  run "${head[@]}" ! ssdoverlay ! videoconvert ! "$(video_sink)"
fi
