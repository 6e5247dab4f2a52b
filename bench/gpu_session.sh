#!/usr/bin/env bash
# Every GPU measurement the issues ask for, sized for one device call (15 minutes of device time
# a session, machine start included; ../shared/gpu/README.md).
#
# On the development machine, once:   bash bench/gpu_session.sh prepare
#   (runs ../shared/gpu/prepare.sh, without the x264 and libav plugins, which took the tarball
#   over the device tool's 64 MiB; packs the nlohmann-json, CLI11 and pugixml headers it leaves
#   out into .gpu/extra.tar.gz, unpacked on the host by this script; unpacks the safetensors
#   wheel for the host's Python 3.12 into .gpu/py, for bench/reference_ssd.py should the host's
#   own be missing; says how much a device call then carries: 61 MiB on 2026-12-05)
# On the GPU host (device tool, carry .gpu, timeout_s 600):
#   source .gpu/env.sh && bash bench/gpu_session.sh all
# `all` runs build (the measuring binaries first, then whether their libraries load), the model
# suite's CUDA tests, the pipeline rows of the issues' goals (the first six below), model,
# reference, train, the other pipeline rows, then the rest of the build and the elements suite:
# the most wanted figures first, as it stops starting steps once SSD_GPU_DEADLINE seconds
# (default 540; a dry run 1620) have passed since the script began; each step is also killed at that deadline,
# and a failing or killed step does not stop the others. Each stage can also be run alone
# (`... gpu_session.sh build pipeline`).
#   deps       whether every dependency the build in SSD_GPU_BUILD found is one the GPU host has:
#              packed by prepare, the host's own, or disabled there by build's options (Pango:
#              its headers are not packed); run by the dry run, so that a dependency added to
#              the project fails on the CPU, not in the few minutes of a device call
#   build      meson setup build-gpu -Dtorch_dir=$TORCH_DIR -Dgraphs=enabled -Dpango=disabled
#              (release) + ninja -k 0 of the measuring binaries, ldd and gst-inspect-1.0
#              ssddetect (the CUDA runtime is looked for beside PyTorch's wheel, else in
#              $CUDA_PATH/lib64); each later stage runs when the binaries it uses were built
#   test       the CUDA tests (model suite's Cuda/Graph cases) and the elements suite, which on
#              the GPU host runs ssddetect on CUDA (device=auto)
#   pipeline   bench_pipeline.sh at 1920x1080, source "still" (one prepared frame pushed again
#              and again, no pixel copies) behind a queue: the lessons' SSD (resnet34 body,
#              224 px, grids 4,2,1, 189 anchors, random weights) in fp16 on NV12 and RGBx with
#              batch-size 1 / in-flight 2, NV12 with batch 16 / in-flight 2; 4 and 8 such 1080p
#              NV12 streams side by side whose ssddetect elements share one model instance
#              (model-instance-id, batch-size = streams, in-flight 2), total fps; the shipped
#              default model in fp16; then (the variants) the ResNet34 one in fp32, without CUDA
#              graphs, with in-flight 1 and RGBx batch 16, and the default model in fp32 RGBx
#   reference  bench/reference_ssd.py (PyTorch eager, same weights file) batch 1 and 64, fp32
#              and fp16, 1080p frames, beside bench_model's rows for the same model
#   train      bench_train vs reference_train.py (same body, head, loss, batch, precision) for
#              the lessons' SSD, batch 64, fp32, bf16, fp16
#   model      bench_model: tiny and resnet34 x batch 1, 8, 64 x fp32, fp16 on CUDA, eager and as
#              a CUDA graph, with the detector rows on 1080p RGBx frames
# Results: one Markdown file per stage in $OUT (the device tool's output folder) or out/gpu,
# each with the date, the GPU, the commit and every command; summary.md lists each step's exit
# status and seconds. The script exits 1 when a step failed or was skipped.
# Dry run, SSD_GPU_DRY_RUN=1 (the `bench` suite's gpu-session test does this on the CPU, so a
# broken command is found before the few minutes of a device call): every step of the stages
# asked for on the CPU instead, with a handful of frames, steps and seconds, batches of at most 2
# (the fp16 training and PyTorch reference rows, which need CUDA, left out); it says whether each
# command runs, not how fast. SSD_GPU_BUILD names the build folder (default build-gpu),
# SSD_PYTHON the Python with PyTorch (default python3).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
out=${OUT:-$root/out/gpu}
b=${SSD_GPU_BUILD:-$root/build-gpu}
models=${SSD_GPU_MODELS:-/tmp/ssd-gpu-models}   # weights files (too big to come back in $OUT)
# A dry run's steps run on the CPU, maybe a busy one: each may take 3 times its GPU-host limit,
# and the whole run 3 times the deadline (the limits keep the GPU host's steps within its device
# call, not a dry run's).
limit_scale=1
[ "${SSD_GPU_DRY_RUN:-0}" = 1 ] && limit_scale=3
deadline=$(( SECONDS + ${SSD_GPU_DEADLINE:-$(( 540 * limit_scale ))} ))
mkdir -p "$out" "$models" || exit 1
py=${SSD_PYTHON:-python3}
# Sizes of the measurements: on the GPU host, and in a dry run (CPU, checks only that each runs).
dev=cuda pipe_frames=500 pipe_batch_frames=64 pipe_repeats=3 pipe_warmup=100 model_s=0.5
stream_warmup=400 stream_frames=2000 stream_windows=3 ref_s=1 ref_repeats=3 ref_batches="1 64"
ref_precs="fp16 fp32" pipe_max_batch=1024
train_batch=64 train_steps=10 train_repeats=3 train_precs="bf16 fp16 fp32" model_batches=1,8,64
if [ "${SSD_GPU_DRY_RUN:-0}" = 1 ]; then
  dev=cpu pipe_frames=4 pipe_batch_frames=2 pipe_repeats=1 pipe_warmup=2 model_s=0.05
  stream_warmup=4 stream_frames=8 stream_windows=1 ref_s=0.05 ref_repeats=1 ref_batches="1 2"
  ref_precs=fp32 pipe_max_batch=2
  train_batch=2 train_steps=1 train_repeats=1 train_precs="bf16 fp32" model_batches=1,2
fi
failed=0
# Debian's libexpat (packed for GStreamer's GL libraries) would shadow the host's newer one on
# LD_LIBRARY_PATH, which the host's own Python may need (CPython 3.12.3+ uses the expat 2.6 API;
# meson is Python too): where the host has a libexpat, it serves both, and PyTorch's folder is
# looked up again should .gpu/env.sh have failed to.
if [ -d /opt/gpudeps ] && ldconfig -p 2>/dev/null | grep -q 'libexpat\.so\.1 '; then
  rm -f /opt/gpudeps/usr/lib/x86_64-linux-gnu/libexpat.so.1*
  [ -n "${TORCH_DIR:-}" ] || TORCH_DIR=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
  [ -n "${TORCH_DIR:-}" ] && export TORCH_DIR
fi
# prepare's extra headers, beside what .gpu/env.sh unpacked into /opt/gpudeps (the GPU host).
if [ -f "$root/.gpu/extra.tar.gz" ] && [ -d /opt/gpudeps ] && [ ! -e /opt/gpudeps/usr/include/nlohmann ]; then
  tar -C /opt/gpudeps -xzf "$root/.gpu/extra.tar.gz" || echo "could not unpack .gpu/extra.tar.gz" >&2
fi
# The packed safetensors (for the host's Python 3.12) only where the Python has none: another
# Python's own (this machine's venv, a dry run) must not be shadowed by it.
if [ -d "$root/.gpu/py" ] && ! "$py" -c 'import safetensors' 2>/dev/null; then
  export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root/.gpu/py"
fi
r34=$models/resnet34.safetensors
default_model=$root/models/ssd-default.safetensors
# The CUDA runtime that the CUDA-graphs code links (libcudart.so.N): the one PyTorch's wheel
# brings and libtorch_cuda loads (meson puts its folder in the binaries' RUNPATH too), else the
# toolkit's, so that it is found whether or not the host's loader cache knows the toolkit.
cudart_dir=
for d in "${TORCH_DIR:-/nonexistent}"/../nvidia/*/lib "${CUDA_PATH:-/nonexistent}"/lib64; do
  if compgen -G "$d/libcudart.so.*" >/dev/null; then cudart_dir=$(readlink -f "$d"); break; fi
done
[ -n "$cudart_dir" ] && export LD_LIBRARY_PATH=$cudart_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# What the host-built binaries should be measured from: the commit prepare recorded (the copy
# of the tree on the host has no .git).
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || cat "$root/.gpu/commit" 2>/dev/null || echo '?')

header() {   # stage -> file header with date, device and commit
  [ -f "$out/$1.md" ] && return
  {
    echo "# gpu_session.sh $1"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo none)"
    echo "- host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "- LibTorch: ${TORCH_DIR:-system}; commit: $commit; CUDA runtime: ${cudart_dir:-loader default}"
    echo
  } > "$out/$1.md"
}

# Adds ROW to summary.md, which starts with the table's header.
summary_row() {
  [ -f "$out/summary.md" ] || printf '| stage | exit status | seconds | command |\n|---|---|---:|---|\n' > "$out/summary.md"
  echo "$1" >> "$out/summary.md"
}

# step STAGE LIMIT COMMAND...: runs COMMAND for at most LIMIT seconds (less if the deadline is
# nearer), logging it and its output to STAGE.md and its status to summary.md. Returns its status.
step() {
  local stage=$1 limit=$(( $2 * limit_scale )); shift 2
  local left=$(( deadline - SECONDS ))
  header "$stage"
  if [ "$left" -lt 15 ]; then
    summary_row "| $stage | skipped (deadline) | 0 | \`$*\` |"
    failed=1
    return 124
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$SECONDS rc
  printf '\n```\n$ %s\n' "$*" >> "$out/$stage.md"
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$out/$stage.md"
  rc=${PIPESTATUS[0]}
  printf '```\n' >> "$out/$stage.md"
  [ "$rc" -ne 0 ] && printf '(exit status %s%s)\n' "$rc" "$( [ "$rc" -ge 124 ] && echo ': killed at its time limit')" >> "$out/$stage.md"
  summary_row "| $stage | $rc | $(( SECONDS - t0 )) | \`$*\` |"
  [ "$rc" -ne 0 ] && failed=1
  return "$rc"
}

# What each stage needs built: the model benchmarks (model, reference, train), the model suite
# (the CUDA tests), the plugin and its benchmark (pipeline, the elements suite).
have_model_bench() { [ -x "$b/bench/bench_model" ] && [ -x "$b/bench/bench_train" ]; }
have_model_tests() { [ -x "$b/tests/model/test_model" ]; }
have_plugin() { [ -f "$b/gst-plugin/libgstssd.so" ] && [ -x "$b/bench/bench_element" ] && [ -x "$b/bench/bench_model" ]; }
# Runs stage_NAME when what it needs is built, else records it as skipped.
run_stage() {   # NAME CHECK
  if "$2"; then "stage_$1"; return; fi
  summary_row "| $1 | skipped (not built: $2) | 0 | |"
  echo "$1: skipped, its binaries were not built in $b ($2)" >&2
  failed=1
}

# The GPU host's dependencies. Packed by prepare (../shared/gpu/prepare.sh: GStreamer, GLib,
# OpenCV, GoogleTest; extra.tar.gz: the header-only ones and pugixml), the host's own, and those
# whose headers are not packed, each with the meson option that the build stage sets to disabled.
gpu_packed="gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0 gstreamer-check-1.0 gstreamer-app-1.0
  gstreamer-rtsp-server-1.0 gstreamer-analytics-1.0 opencv4 gtest gtest_main gmock nlohmann_json CLI11 pugixml"
gpu_host="threads cuda Torch"
gpu_disabled="pangocairo:pango"
gpu_setup_disabled=$(for d in $gpu_disabled; do printf ' -D%s=disabled' "${d#*:}"; done)

stage_deps() { step deps 30 bash "$root/bench/gpu_session.sh" deps-check "$b"; }
# deps-check BUILD_DIR: lists each dependency that BUILD_DIR's meson found, ok or UNKNOWN.
deps_check() {
  local names known n bad=0
  names=$(meson introspect "$1" --dependencies | python3 -c 'import json, sys; print(" ".join(d["name"] for d in json.load(sys.stdin)))') || return 1
  known=" $(echo $gpu_packed) $gpu_host $(for d in $gpu_disabled; do printf '%s ' "${d%%:*}"; done)"
  for n in $names; do
    case "$known" in
      *" $n "*) echo "ok: $n" ;;
      *) echo "UNKNOWN to the GPU host: $n (pack its headers and libraries in gpu_session.sh prepare, or make it optional and add it to gpu_disabled)"
         bad=1 ;;
    esac
  done
  return $bad
}

# The lessons' SSD with random weights (bench_model --save-dir writes it).
make_r34() {
  [ -f "$r34" ] || step pipeline 60 "$b/bench/bench_model" --bodies resnet34 --batches 1 --precisions fp32 \
    --devices "$dev" --seconds 0.1 --in-flight 1 --save-dir "$models"
}

pipe() {   # MODEL PRECISION FORMAT BATCH IN_FLIGHT [more bench_pipeline.sh options]
  local model=$1 prec=$2 fmt=$3 batch=$4 inflight=$5; shift 5
  [ "$batch" -gt "$pipe_max_batch" ] && batch=$pipe_max_batch
  local frames=$pipe_frames
  [ "$batch" -gt 1 ] && frames=$(( batch * pipe_batch_frames ))
  step pipeline 60 bash bench/bench_pipeline.sh --build "$b" --model "$model" --device "$dev" --precision "$prec" \
    --batch "$batch" --in-flight "$inflight" --sizes 1920x1080 --format "$fmt" --source still --queue \
    --frames "$frames" --repeats "$pipe_repeats" --warmup "$pipe_warmup" --model-seconds "$model_s" "$@"
}

streams() {   # MODEL N [ssddetect properties]: N 1080p NV12 still streams sharing one model instance
  local model=$1 n=$2; shift 2
  step pipeline 60 env GST_PLUGIN_PATH="$b/gst-plugin" "$b/bench/bench_element" --warmup "$stream_warmup" \
    --frames "$stream_frames" --windows "$stream_windows" --streams "$n" \
    --still video/x-raw,format=NV12,width=1920,height=1080,framerate=30/1 \
    queue ! ssddetect device="$dev" precision=fp16 model="$model" model-instance-id=streams "$@"
}
stage_build() {
  # CUDA graphs need the toolkit's headers: meson looks at $CUDA_PATH, else nvcc's toolkit.
  if [ -z "${CUDA_PATH:-}${CUDA_HOME:-}" ] && command -v nvcc >/dev/null; then
    CUDA_PATH=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"); export CUDA_PATH
  fi
  if [ -z "${TORCH_DIR:-}" ] && [ "${SSD_GPU_DRY_RUN:-0}" != 1 ]; then
    echo "no TORCH_DIR (source .gpu/env.sh: python3 -c 'import torch' must work)" | tee -a "$out/build.md" >&2
    failed=1
    return
  fi
  if [ ! -f "$b/build.ninja" ]; then
    local was=$failed
    step build 120 meson setup "$b" -Dtorch_dir="$TORCH_DIR" --buildtype=release -Dtests=enabled -Dgraphs=enabled \
        $gpu_setup_disabled || {
      # (When the setup without graphs works, the failure above was theirs: the run goes on.)
      echo "WARNING: meson setup with -Dgraphs=enabled failed (output above): trying WITHOUT CUDA graphs" | tee -a "$out/build.md" >&2
      rm -rf "$b"
      step build 120 meson setup "$b" -Dtorch_dir="$TORCH_DIR" --buildtype=release -Dtests=enabled -Dgraphs=disabled \
        $gpu_setup_disabled && failed=$was
    }
  fi
  # What the measurements need first (a failure elsewhere, say in a test or fuzz target, must not
  # leave them unbuilt, nor one of these the others: -k 0); the rest before the elements suite.
  # Only the last lines of a successful build are kept (the log is long).
  step build 400 bash -c "ninja -k 0 -C '$b' bench/bench_model bench/bench_train bench/bench_element \
    gst-plugin/libgstssd.so tests/model/test_model > '$out/ninja.log' 2>&1; rc=\$?; tail -n 30 '$out/ninja.log'; \
    [ \$rc -eq 0 ] && rm -f '$out/ninja.log'; exit \$rc"
  # Whether every library they load is found (a missing one fails every step after).
  step build 60 bash -c "ldd '$b/bench/bench_model' '$b/gst-plugin/libgstssd.so' | grep -B1000 'not found' && exit 1; \
    i=\$(GST_PLUGIN_PATH='$b/gst-plugin' gst-inspect-1.0 ssddetect 2>&1) || { echo \"\$i\"; exit 1; }; \
    echo \"\$i\" | head -n 12"
}

stage_test_cuda() {   # the model library's CUDA cases: quick, and they say whether the rest means much
  step test 60 "$b/tests/model/test_model" --gtest_filter='DetectorCuda.*:CudaGraph.*:StaticGraph.*:GraphCache.*'
}
stage_test_elements() {   # the elements suite, ssddetect on CUDA (device=auto)
  step build 200 bash -c "ninja -k 0 -C '$b' > '$out/ninja-rest.log' 2>&1; rc=\$?; tail -n 30 '$out/ninja-rest.log'; \
    [ \$rc -eq 0 ] && rm -f '$out/ninja-rest.log'; exit \$rc"
  step test 150 meson test -C "$b" --print-errorlogs --num-processes 1 --no-rebuild elements
}
stage_test() { stage_test_cuda; stage_test_elements; }

stage_pipeline_main() {   # the issues' goals: ResNet34 fp16 1080p, batched, several streams; the default model
  make_r34
  pipe "$r34" fp16 NV12 1 2
  pipe "$r34" fp16 RGBx 1 2
  pipe "$r34" fp16 NV12 16 2
  streams "$r34" 4 batch-size=4 in-flight=2
  streams "$r34" 8 batch-size=8 in-flight=2
  pipe "$default_model" fp16 NV12 1 2
}
stage_pipeline_more() {   # variants: fp32, without CUDA graphs, one batch in flight, RGBx batched
  make_r34
  pipe "$r34" fp32 NV12 1 2
  pipe "$r34" fp16 NV12 1 2 --cuda-graphs false
  pipe "$r34" fp16 NV12 1 1
  pipe "$default_model" fp32 RGBx 1 1
  pipe "$r34" fp16 RGBx 16 2
}
stage_pipeline() { stage_pipeline_main; stage_pipeline_more; }

stage_reference() {
  make_r34
  step reference 60 "$b/bench/bench_model" --bodies "" --model "$r34" --batches "${ref_batches/ /,}" \
    --precisions fp32,fp16 --devices "$dev" --frame 1920x1080 --seconds "$ref_s" --in-flight 2
  for prec in $ref_precs; do
    for batch in $ref_batches; do
      step reference 45 "$py" bench/reference_ssd.py bench --model "$r34" --frame 1920x1080 --batch "$batch" \
        --device "$dev" --precision "$prec" --seconds "$ref_s" --repeats "$ref_repeats"
    done
  done
}

stage_train() {
  for prec in $train_precs; do
    step train 45 "$b/bench/bench_train" --body resnet34 --head-channels 256 --input-size 224 --grids 4,2,1 \
      --classes 20 --batch "$train_batch" --device "$dev" --precision "$prec" --steps "$train_steps" \
      --repeats "$train_repeats"
    step train 45 "$py" bench/reference_train.py --body resnet34 --head-channels 256 --input-size 224 --grids 4,2,1 \
      --classes 20 --batch "$train_batch" --device "$dev" --precision "$prec" --loss batched \
      --steps "$train_steps" --repeats "$train_repeats"
  done
}

stage_model() {
  step model 150 "$b/bench/bench_model" --bodies tiny,resnet34 --batches "$model_batches" \
    --precisions fp32,fp16 --devices "$dev" --frame 1920x1080 --seconds "$model_s" --in-flight 2
}

[ $# -gt 0 ] || { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2; }
for stage in "$@"; do
  case "$stage" in
    prepare)
      # prepare.sh packs x264enc's and libav's plugins, with every library they load (x265,
      # codec2, ...), whenever they are installed, as scripts/setup.sh installs them: the tarball
      # was then 114 MB (2026-12-05), over the device tool's 64 MiB. Nothing the GPU host runs
      # needs them (tests that encode skip without them), so prepare.sh runs in a mount namespace
      # in which the plugin folder lacks them.
      plugdir=/usr/lib/x86_64-linux-gnu/gstreamer-1.0
      if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
        unshare -m bash -c 'set -e
          d=$(mktemp -d); trap "rm -rf \"$d\"" EXIT
          cp -al "$1"/. "$d"/ 2>/dev/null || cp -a "$1"/. "$d"/
          rm -f "$d"/libgstx264.so "$d"/libgstlibav.so
          mount --bind "$d" "$1"
          bash "$2"' _ "$plugdir" "$root/../shared/gpu/prepare.sh" || exit 1
      else
        echo "prepare: not root or no mount namespaces: x264enc and libav are packed too" >&2
        bash "$root/../shared/gpu/prepare.sh" || exit 1
      fi
      # Headers (and pugixml's library) of the header-only and small dependencies, whose
      # pkg-config files prepare.sh packs without them; unpacked into /opt/gpudeps below.
      tar -C / -czf "$root/.gpu/extra.tar.gz" usr/include/nlohmann usr/include/CLI usr/include/pugixml.hpp \
        usr/include/pugiconfig.hpp usr/lib/x86_64-linux-gnu/libpugixml.so usr/lib/x86_64-linux-gnu/libpugixml.so.1 \
        usr/lib/x86_64-linux-gnu/libpugixml.so.1.13 || exit 1
      tmp=$(mktemp -d)
      pip download safetensors==0.4.5 --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 -d "$tmp" >/dev/null || exit 1
      rm -rf "$root/.gpu/py" && mkdir -p "$root/.gpu/py"
      (cd "$root/.gpu/py" && unzip -q "$tmp"/safetensors-*.whl)
      rm -rf "$tmp"
      # The commit measured (the tree's copy on the GPU host has no .git).
      { git -C "$root" rev-parse --short HEAD; git -C "$root" status --short; } > "$root/.gpu/commit"
      # What a device call carries: .gpu and the working tree, 64 MiB in all.
      kib=$(( $(du -sk "$root/.gpu" | cut -f1) + $(cd "$root" && git ls-files -z | du -ck --files0-from=- | tail -1 | cut -f1) ))
      echo "prepared .gpu (with .gpu/py): $(( kib / 1024 )) MiB with the working tree"
      [ "$kib" -lt $(( 64 * 1024 )) ] || { echo "prepare: the device tool takes 64 MiB at most" >&2; exit 1; } ;;
    all)
      # The most wanted first, as the deadline may cut the end off: the CUDA unit tests (a
      # minute at most), the goals' pipeline rows, the model table, the PyTorch references,
      # training, the pipeline variants, then the rest of the build and the elements suite.
      stage_build
      run_stage test_cuda have_model_tests; run_stage pipeline_main have_plugin; run_stage model have_model_bench
      run_stage reference have_model_bench; run_stage train have_model_bench; run_stage pipeline_more have_plugin
      run_stage test_elements have_plugin ;;
    build|deps) "stage_$stage" ;;
    deps-check) deps_check "${2:?deps-check BUILD_DIR}"; exit ;;
    test) run_stage test_cuda have_model_tests; run_stage test_elements have_plugin ;;
    pipeline) run_stage pipeline have_plugin ;;
    reference|train|model) run_stage "$stage" have_model_bench ;;
    *) echo "unknown stage $stage (prepare all deps build test pipeline reference train model)" >&2; exit 2 ;;
  esac
done
[ -f "$out/summary.md" ] && cat "$out/summary.md"
exit "$failed"
