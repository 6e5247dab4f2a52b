#!/usr/bin/env bash
# Detects objects in a video file and writes an annotated H.264/MP4 copy (and, optionally, the
# detections as JSON Lines).
#
# usage: pipelines/file-detect.sh INPUT OUTPUT.mp4 [DETECTIONS.jsonl] [ssddetect property=value ...]
#   e.g. pipelines/file-detect.sh in.mp4 out.mp4 det.jsonl threshold=0.4 interval=2
# Environment: BUILD_DIR (default build/), SSD_MODEL (default the shipped model).
# Pipeline: filesrc ! decodebin ! videoconvert ! ssddetect ! [ssdexport] ! ssdoverlay !
#           videoconvert ! x264enc ! mp4mux ! filesink
# OUTPUT and DETECTIONS are written as <name>.part and renamed when the pipeline succeeded, so a
# failure leaves any earlier file of that name as it was.
set -euo pipefail
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }   # the comment block above
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -lt 2 ]; then usage >&2; exit 2; fi
source "$(dirname "$0")/common.sh"
input=$1 output=$2; shift 2
detections=""
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then detections=$1; shift; fi
{ [ -f "$input" ] && [ -r "$input" ]; } || die "cannot read the input file $input"
same_file "$input" "$output" && die "OUTPUT $output is the input file"
[ "$output" != "$detections" ] || die "OUTPUT and DETECTIONS are the same file"
export_el=()
if [ -n "$detections" ]; then
  same_file "$input" "$detections" && die "DETECTIONS $detections is the input file"
  writes "$detections"
  export_el=(ssdexport location="$detections.part" !)
fi
writes "$output"
run filesrc location="$input" ! decodebin ! videoconvert ! \
  ssddetect "${model_prop[@]}" "$@" ! "${export_el[@]}" ssdoverlay ! videoconvert ! \
  x264enc speed-preset=veryfast ! mp4mux ! filesink location="$output.part"
keep_outputs
