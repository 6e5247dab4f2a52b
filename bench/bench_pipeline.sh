#!/usr/bin/env bash
# ssddetect throughput in a GStreamer pipeline, next to the source alone and the model alone.
#
#   bench/bench_pipeline.sh [--model PATH] [--device cpu|cuda|auto] [--precision fp32|fp16]
#                           [--threads N] [--sizes 640x480,1280x720,1920x1080] [--format RGBx]
#                           [--batch 1] [--in-flight 1] [--cuda-graphs true|false]
#                           [--frames 300] [--repeats 3] [--warmup 100] [--pattern smpte] [--queue]
#                           [--source test|still]
#                           [--build DIR] [--model-seconds 3] [--no-model]
#
# For each frame size it measures, with bench_element (one process per pipeline, fakesink
# sync=false: as fast as possible; --warmup buffers first, so model load, cuDNN autotuning and
# CUDA graph capture are behind, then --repeats windows of --frames buffers, medians over them):
#   source:    videotestsrc pattern=P ! video/x-raw,format=F,width=W,height=H ! fakesink
#   pipeline:  videotestsrc ... ! [queue !] ssddetect model=M device=D precision=P threads=T
#              batch-size=B in-flight=F cuda-graphs=G ! fakesink
# --source still makes the source bench_element's --still appsrc: one prepared frame pushed
# again and again without writing its pixels (videotestsrc copies its cached pattern into every
# frame, ~1 ms at 1080p RGBx, which would cap a fast element), copied once into buffers of the
# pool ssddetect offers (page-locked memory on CUDA), as a source writing into it would.
# with wall time and the process's CPU time (all threads) per frame. Then bench_model (same
# build) times the model alone ("model": forward on a ready
# 1x3xSxS tensor) and ssd::Detector on raw RGBx frames of the same size ("detector": upload,
# convert, resize, normalise, forward, decode, NMS, download; RGBx frames whatever --format is)
# with the same threads and batch size as the element (--batch; 1 = one frame at a time; with
# --in-flight > 1 the pipelined detector row, on CUDA the one with frames in page-locked memory);
# on CUDA with CUDA graphs on, "model" is the forward replayed as a CUDA graph ("model graph").
#
# Columns: fps of each; ms/frame; element ms = pipeline ms - source ms (what ssddetect adds:
# detector + GStreamer mapping/meta overhead); pipeline/model = pipeline fps / model fps;
# CPU ms/frame of the whole process (2 cores: CPU ms can exceed wall ms); load average before.
#
# The default model is models/ssd-default.safetensors; when it does not exist, a random-weights
# model of the default architecture (tiny body, 160 px, grids 10,5,3,2,1, 128 head channels,
# 5 classes) is written with bench/reference_ssd.py random and used instead (said so in the
# output). --device cuda / fp16 are written for the GPU host and untested (no GPU here).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
model="$root/models/ssd-default.safetensors"
device=cpu
precision=fp32
threads=0
batch=1
in_flight=1
cuda_graphs=true
sizes=640x480,1280x720,1920x1080
format=RGBx
frames=300
repeats=3
warmup=100
pattern=smpte
source=test
queue=0
build="$root/build-bench"
model_seconds=3
run_model=1
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --in-flight) in_flight=$2; shift 2 ;;
    --cuda-graphs) cuda_graphs=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --format) format=$2; shift 2 ;;
    --frames) frames=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --pattern) pattern=$2; shift 2 ;;
    --queue) queue=1; shift ;;
    --source) source=$2; shift 2 ;;
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --model-seconds) model_seconds=$2; shift 2 ;;
    --no-model) run_model=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage 2 ;;
  esac
done

plugin_dir="$build/gst-plugin"
bench_model="$build/bench/bench_model"
bench_element="$build/bench/bench_element"
[ -f "$plugin_dir/libgstssd.so" ] || { echo "no $plugin_dir/libgstssd.so: build it (ninja -C $build gst-plugin/libgstssd.so)" >&2; exit 2; }
[ -x "$bench_element" ] || { echo "no $bench_element: build it (ninja -C $build bench/bench_element)" >&2; exit 2; }
if [ "$run_model" = 1 ] && [ ! -x "$bench_model" ]; then
  echo "no $bench_model: build it (ninja -C $build bench/bench_model) or pass --no-model" >&2; exit 2
fi
# Held frames (batch-size x in-flight) and the first batches (eager, then captured) are behind
# the warm-up too.
min_warmup=$(( 4 * batch * in_flight ))
[ "$warmup" -ge "$min_warmup" ] || warmup=$min_warmup

tmp=$(mktemp -d /tmp/ssd-bench-pipeline.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export GST_PLUGIN_PATH="$plugin_dir"
export GST_REGISTRY="$tmp/registry.bin"
gst-inspect-1.0 ssddetect >/dev/null   # builds the registry once, outside the timings

model_note="$model"
if [ ! -f "$model" ]; then
  model_note="RANDOM WEIGHTS (default architecture; $model does not exist yet)"
  model="$tmp/random-default.safetensors"
  "$python" "$here/reference_ssd.py" random --out "$model" --body tiny --input-size 160 \
    --grids 10,5,3,2,1 --head-channels 128 --labels ellipse,rectangle,triangle,star,cross
fi

# Steady-state "wall cpu" seconds per frame of a pipeline description (bench_element's medians);
# the still source's caps first ("" for none).
per_frame() {
  local still=$1 out; shift
  local args=(--warmup "$warmup" --frames "$frames" --windows "$repeats")
  [ -n "$still" ] && args+=(--still "$still")
  # shellcheck disable=SC2086
  out=$("$bench_element" "${args[@]}" -- $* 2>"$tmp/err") || {
    echo "pipeline failed: $*" >&2; cat "$tmp/err" >&2; exit 1; }
  grep '^source:' <<<"$out" > "$tmp/source" || true
  awk '$1 == "RESULT" { for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
                        printf "%.8f %.8f\n", 1 / v["fps"], v["cpu_ms"] / 1000 }' <<<"$out"
}

bench_model_row() {   # size -> "model_fps detector_fps"
  local dev=$device
  case "$dev" in
    cuda:*) dev=cuda ;;
    auto) if nvidia-smi -L >/dev/null 2>&1; then dev=cuda; else dev=cpu; fi ;;
  esac
  local args=(--bodies "" --model "$model" --batches "$batch" --devices "$dev" --seconds "$model_seconds"
              --frame "$1" --cuda-graphs "$cuda_graphs" --in-flight "$in_flight")
  [ "$threads" -gt 0 ] && args+=(--threads "$threads")
  args+=(--precisions "$precision")
  # The output stage the element uses: the fixed-shape one on CUDA, the dynamic one on the CPU.
  local pp=" postprocess " model_row=" model "
  [ "$dev" = cuda ] && pp=" postprocess fixed "
  [ "$dev" = cuda ] && [ "$cuda_graphs" = true ] && model_row=" model graph "
  local rows rc=0
  rows=$("$bench_model" "${args[@]}") || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "bench_model exited with status $rc: $bench_model ${args[*]}" >&2
    : > "$tmp/failed"
  fi
  # A value missing (bench_model failed, or printed no graph row) is "-"; the plain model row
  # stands in for a missing graph row.
  awk -F'|' -v pp="$pp" -v mr="$model_row" '
    function num(x) { gsub(/ /, "", x); return x ~ /^[0-9.]+$/ && x + 0 > 0 ? x : "-" }
    $2 == mr { m = $7 } $2 == " model " { m0 = $7 } $2 ~ /^ detector / { d = $7 } $2 == pp { p = $7 }
    END { m = num(m); if (m == "-") m = num(m0); print m, num(d), num(p) }' <<<"$rows"
}

q=""
[ "$queue" = 1 ] && q="queue !"
echo "# ssddetect pipeline benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(nproc) CPUs, $(uname -sr)"
echo "- model: $model_note"
echo "- device=$device precision=$precision threads=$threads (0: LibTorch default with in-flight 1, else the CPUs shared among the workers) batch-size=$batch in-flight=$in_flight cuda-graphs=$cuda_graphs format=$format source=$source pattern=$pattern queue=$queue"
echo "- bench_element: $warmup warm-up frames, then $repeats windows of $frames frames (medians)"
echo
echo "| frame | source fps | pipeline fps | pipeline ms | element ms | CPU ms/frame (source / pipeline) | model fps | detector fps (RGBx) | postprocess ms | pipeline / model | load avg (1 min) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a size_list <<<"$sizes"
for size in "${size_list[@]}"; do
  w=${size%x*}; h=${size#*x}
  load=$(cut -d' ' -f1 /proc/loadavg)
  caps="video/x-raw,format=$format,width=$w,height=$h,framerate=30/1"
  det="ssddetect model=$model device=$device precision=$precision threads=$threads batch-size=$batch in-flight=$in_flight cuda-graphs=$cuda_graphs"
  s_wall="" p_wall=""
  case "$source" in
    test)
      src="videotestsrc pattern=$pattern ! $caps"
      read -r s_wall s_cpu < <(per_frame "" "$src") || true
      read -r p_wall p_cpu < <(per_frame "" "$src ! $q $det") || true ;;
    still)
      read -r s_wall s_cpu < <(per_frame "$caps") || true
      read -r p_wall p_cpu < <(per_frame "$caps" "$q $det") || true
      sed 's/^/  /' "$tmp/source" >&2 2>/dev/null || true ;;
    *) echo "--source: test or still" >&2; exit 2 ;;
  esac
  if [ -z "${s_wall:-}" ] || [ -z "${p_wall:-}" ]; then   # per_frame said why on stderr
    echo "| $size | failed | | | | | | | | | $load |"
    : > "$tmp/failed"
    continue
  fi
  m_fps="-"; d_fps="-"; pp_ms="-"; ratio="-"
  if [ "$run_model" = 1 ]; then
    read -r m_fps d_fps pp_fps < <(bench_model_row "$size") || true
    [ "$pp_fps" = - ] || pp_ms=$(awk -v f="$pp_fps" 'BEGIN { printf "%.2f", 1000 / f }')
    [ "$m_fps" = - ] || ratio=$(awk -v p="$p_wall" -v m="$m_fps" 'BEGIN { printf "%.2f", (1 / p) / m }')
  fi
  awk -v size="$size" -v sw="$s_wall" -v sc="$s_cpu" -v pw="$p_wall" -v pc="$p_cpu" \
      -v m="$m_fps" -v d="$d_fps" -v pp="$pp_ms" -v r="$ratio" -v l="$load" 'BEGIN {
    printf "| %s | %.1f | %.1f | %.2f | %.2f | %.2f / %.2f | %s | %s | %s | %s | %s |\n",
      size, 1 / sw, 1 / pw, pw * 1000, (pw - sw) * 1000, sc * 1000, pc * 1000, m, d, pp, r, l }'
done
# A failed measurement fails the script, after the rows that were measured.
[ ! -e "$tmp/failed" ] || exit 1
