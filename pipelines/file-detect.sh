#!/usr/bin/env bash
# Detects objects in a video file and writes an annotated H.264/MP4 copy (and, optionally, the
# detections as JSON Lines).
#
# usage: pipelines/file-detect.sh INPUT OUTPUT.mp4 [DETECTIONS.jsonl] [ssddetect property=value ...]
#   e.g. pipelines/file-detect.sh in.mp4 out.mp4 det.jsonl threshold=0.4 interval=2
# Environment: BUILD_DIR (default build/), SSD_MODEL (default the shipped model).
# Pipeline: filesrc ! decodebin ! videoconvert ! ssddetect ! [ssdexport] ! ssdoverlay !
#           videoconvert ! x264enc ! mp4mux ! filesink
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
source "$(dirname "$0")/common.sh"
input=$1 output=$2; shift 2
export_el=()
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then export_el=(ssdexport location="$1" !); shift; fi
run filesrc location="$input" ! decodebin ! videoconvert ! \
  ssddetect "${model_prop[@]}" "$@" ! "${export_el[@]}" ssdoverlay ! videoconvert ! \
  x264enc speed-preset=veryfast ! mp4mux ! filesink location="$output"
