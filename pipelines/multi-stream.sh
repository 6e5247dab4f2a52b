#!/usr/bin/env bash
# Several cameras or files, one model: each stream gets its own ssddetect, and all of them share
# one model instance (model-instance-id), whose batches hold the frames of every stream.
#
# usage: pipelines/multi-stream.sh OUTDIR URI [URI ...] [-- ssddetect property=value ...]
#   e.g. pipelines/multi-stream.sh out rtsp://cam1/stream rtsp://cam2/stream
#        pipelines/multi-stream.sh out file://$PWD/a.mp4 file://$PWD/b.mp4 -- device=cuda precision=fp16
# URIs are anything uridecodebin plays (rtsp://, file://, http://...). For stream K (from 1) the
# detections, with ssdtrack's object ids, go to OUTDIR/streamK.jsonl (ssdexport's JSON Lines). batch-size defaults to the
# number of streams; properties after -- go to every ssddetect (the instance-wide ones, such as
# device, precision, batch-size, must be the same for all, which this script ensures). Live
# sources run until Ctrl-C (EOS, so the files are complete); files end by themselves. All streams
# are one pipeline: one that fails (a camera that cannot be reached) ends them all, and the
# streamK.jsonl files of an earlier run are then left as they were; where streams must outlive
# each other, run the script once per camera (a model instance each).
# Environment: BUILD_DIR (default build/), SSD_MODEL (default the shipped model).
set -euo pipefail
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }   # the comment block above
case "${1:-}" in -h|--help) usage; exit 0 ;; -*) usage >&2; exit 2 ;; esac
if [ $# -lt 2 ]; then usage >&2; exit 2; fi
source "$(dirname "$0")/common.sh"
outdir=$1
shift
uris=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    *=*) [[ "$1" == *://* ]] || die "'$1' is not a URI: put ssddetect properties after --" ;;
  esac
  uris+=("$1"); shift
done
[ $# -gt 0 ] && shift   # the --
[ ${#uris[@]} -gt 0 ] || { echo "error: no URI given" >&2; exit 2; }
mkdir -p -- "$outdir"
props=(model-instance-id=multi-stream batch-size=${#uris[@]} "${model_prop[@]}" "$@")
desc=()
for k in "${!uris[@]}"; do
  n=$(( k + 1 ))
  # A leaky queue per live stream: when inference falls behind, old frames go, not latency up.
  leaky=""
  case "${uris[$k]}" in rtsp://*|http://*|https://*) leaky="leaky=downstream" ;; esac
  desc+=(uridecodebin uri="${uris[$k]}" ! videoconvert ! queue max-size-buffers=4 $leaky ! \
         ssddetect name=detect$n "${props[@]}" ! ssdtrack ! ssdexport location="$outdir/stream$n.jsonl.part" ! fakesink sync=false)
  writes "$outdir/stream$n.jsonl"
done
run "${desc[@]}"
keep_outputs
for k in "${!uris[@]}"; do
  n=$(( k + 1 ))
  echo "stream $n (${uris[$k]}): $(wc -l < "$outdir/stream$n.jsonl") frames, $(grep -o '"label"' "$outdir/stream$n.jsonl" | wc -l) detections -> $outdir/stream$n.jsonl"
done
