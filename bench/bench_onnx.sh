#!/usr/bin/env bash
# ssddetect against GStreamer's own ONNX elements running the same model, on the CPU:
#
#   bench/bench_onnx.sh [--model PATH] [--sizes 640x480,1280x720,1920x1080] [--threads 0]
#                       [--frames 200] [--repeats 3] [--warmup 30] [--build DIR]
#                       [--optimization enable-all] [--props "in-flight=2"]
#
# Needs gst-plugins-bad's onnxinference and ssdobjectdetector (checked with GStreamer 1.26, where
# they are the onnx and tensordecoders plugins), e.g. Debian 13: run it in scripts/check-trixie.sh's chroot
# (`chroot /srv/trixie bash /src/bench/bench_onnx.sh`, build in /src/build). For each frame size
# the model is exported by scripts/export-onnx.py for frames of that size (the whole detector in
# one graph: resize, normalisation, network, decoding, NMS, top-k), and bench_element (one
# process per pipeline, fakesink sync=false, --still source: one prepared RGB frame pushed again
# and again) times, after --warmup frames, --repeats windows of --frames frames (medians):
#   source:  appsrc (RGB, WxH) ! fakesink
#   ours:    ... ! ssddetect model=M device=cpu threads=T [PROPS] ! fakesink  (--props PROPS,
#            e.g. --props in-flight=2 with --threads 1)
#   onnx:    ... ! onnxinference model-file=X optimization-level=O ! ssdobjectdetector ! fakesink
# Both give the same detections (test GstAnalyticsInterop.OnnxElementsRunTheExportedModel...).
# Threads: ssddetect threads=0 in-flight=0 (the defaults) are chosen for the machine (on 2 or more
# CPUs 2 frames in flight, the CPUs shared among their workers); onnxinference has no
# thread setting, so onnxruntime uses its default (one per physical core).
# Columns: fps, CPU ms per frame of the whole process (all threads) and ours / onnx.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
model="$root/models/ssd-default.safetensors"
sizes=640x480,1280x720,1920x1080
threads=0
frames=200
repeats=3
warmup=30
build="$root/build"
optimization=enable-all
props=""
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --frames) frames=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --optimization) optimization=$2; shift 2 ;;
    --props) props=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage 2 ;;
  esac
done

bench_element="$build/bench/bench_element"
[ -f "$build/gst-plugin/libgstssd.so" ] || { echo "no $build/gst-plugin/libgstssd.so: build it" >&2; exit 2; }
[ -x "$bench_element" ] || { echo "no $bench_element: build it (ninja -C $build bench/bench_element)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/ssd-bench-onnx.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export GST_PLUGIN_PATH="$build/gst-plugin"
export GST_REGISTRY="$tmp/registry.bin"
for f in ssddetect onnxinference ssdobjectdetector; do
  gst-inspect-1.0 "$f" >/dev/null 2>&1 || { echo "no GStreamer element $f here" >&2; exit 2; }
done

# "fps cpu_ms" of a pipeline description after the still source with caps $1.
measure() {
  local caps=$1 out; shift
  out=$("$bench_element" --warmup "$warmup" --frames "$frames" --windows "$repeats" --still "$caps" \
        -- "$@" 2>"$tmp/err") || { echo "pipeline failed: $*" >&2; cat "$tmp/err" >&2; exit 1; }
  awk '$1 == "RESULT" { for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
                        print v["fps"], v["cpu_ms"] }' <<<"$out"
}

echo "# ssddetect vs GStreamer's onnxinference + ssdobjectdetector (same model, CPU)"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(nproc) CPUs, $(uname -sr); GStreamer $(gst-inspect-1.0 --version | sed -n 2p | awk '{print $2}')"
echo "- model: $model; ssddetect threads=$threads (0: chosen with in-flight, 0 unless --props sets it) $props; onnxinference optimization-level=$optimization"
echo "- bench_element --still: $warmup warm-up frames, then $repeats windows of $frames frames (medians)"
echo
echo "| frame | source fps | ssddetect fps | ssddetect CPU ms/frame | onnx fps | onnx CPU ms/frame | ssddetect / onnx |"
echo "|---|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a size_list <<<"$sizes"
for size in "${size_list[@]}"; do
  w=${size%x*}; h=${size#*x}
  onnx="$tmp/ssd-$size.onnx"
  "$python" "$root/scripts/export-onnx.py" "$model" "$onnx" --frame "$size" >/dev/null
  caps="video/x-raw,format=RGB,width=$w,height=$h,framerate=30/1"
  read -r s_fps _ < <(measure "$caps")
  read -r o_fps o_cpu < <(measure "$caps" "ssddetect model=$model device=cpu threads=$threads $props")
  read -r x_fps x_cpu < <(measure "$caps" "onnxinference model-file=$onnx optimization-level=$optimization" \
                          "! ssdobjectdetector label-file=${onnx%.onnx}.labels score-threshold=0.3")
  awk -v size="$size" -v s="$s_fps" -v o="$o_fps" -v oc="$o_cpu" -v x="$x_fps" -v xc="$x_cpu" 'BEGIN {
    printf "| %s | %.1f | %.1f | %.2f | %.1f | %.2f | %.2f |\n", size, s, o, oc, x, xc, o / x }'
done
