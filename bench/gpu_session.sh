#!/usr/bin/env bash
# Every GPU measurement the issues ask for, in a few device calls (../shared/gpu/README.md).
#
# On the development machine, once:   bash bench/gpu_session.sh prepare
#   (runs ../shared/gpu/prepare.sh and unpacks the safetensors wheel for the host's Python 3.12
#   into .gpu/py, which bench/reference_ssd.py needs there)
# On the GPU host (device tool, carry .gpu):
#   source .gpu/env.sh && bash bench/gpu_session.sh build test model
#   source .gpu/env.sh && bash bench/gpu_session.sh pipeline
#   source .gpu/env.sh && bash bench/gpu_session.sh train
# Stages:
#   build     meson setup build-gpu -Dtorch_dir=$TORCH_DIR (release) + ninja
#   test      the model, bench and elements suites (the CUDA tests run instead of skipping)
#   model     bench_model: tiny and resnet34 (the lessons' SSD: 224 px, grids 4,2,1, 189
#             anchors) x batch 1, 8, 64 x fp32, fp16 on CUDA, eager and as a CUDA graph, detector
#             rows on 1080p RGBx frames (CUDA graphs on, then off), pipelined with 2 batches in
#             flight; then reference_ssd.py bench (PyTorch eager) on
#             the same resnet34 file, batch 1 and 64, fp32 and fp16, 1080p
#   pipeline  bench_pipeline.sh at 1920x1080 (RGBx and NV12) with the shipped default model and
#             the resnet34 file, fp32 and fp16, batch-size 1 / in-flight 1, 1 / 2 and 16 / 2;
#             resnet34 fp16 batch 1 again with cuda-graphs=false
#   train     bench_train vs reference_train.py (same body, head, loss, batch, precision) for
#             the lessons' SSD, batch 64, fp32, bf16, fp16
# Results go to $OUT (the device tool's output folder) or out/gpu: one .md/.jsonl per stage with
# the date, the GPU (nvidia-smi) and the commands.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${OUT:-$root/out/gpu}
b=$root/build-gpu
mkdir -p "$out"
py=python3
[ -d "$root/.gpu/py" ] && export PYTHONPATH="$root/.gpu/py${PYTHONPATH:+:$PYTHONPATH}"

header() {   # stage -> file header with date, device and command
  {
    echo "# gpu_session.sh $1"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo none)"
    echo "- LibTorch: ${TORCH_DIR:-system}; commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo
  } > "$out/$1.md"
}
run() {   # stage, command...: logs the command and appends its output
  local stage=$1; shift
  printf '\n```\n$ %s\n' "$*" >> "$out/$stage.md"
  "$@" 2>&1 | tee -a "$out/$stage.md"
  printf '```\n' >> "$out/$stage.md"
}

for stage in "$@"; do
  case "$stage" in
    prepare)
      bash "$root/../shared/gpu/prepare.sh"
      tmp=$(mktemp -d)
      pip download safetensors==0.4.5 --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 -d "$tmp" >/dev/null
      rm -rf "$root/.gpu/py" && mkdir -p "$root/.gpu/py"
      (cd "$root/.gpu/py" && unzip -q "$tmp"/safetensors-*.whl)
      rm -rf "$tmp"
      echo "prepared .gpu (with .gpu/py)" ;;
    build)
      # CUDA graphs need the toolkit's headers: meson looks at $CUDA_PATH, else nvcc's toolkit.
      if [ -z "${CUDA_PATH:-}${CUDA_HOME:-}" ] && command -v nvcc >/dev/null; then
        CUDA_PATH=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"); export CUDA_PATH
      fi
      if [ ! -f "$b/build.ninja" ]; then
        meson setup "$b" -Dtorch_dir="$TORCH_DIR" --buildtype=release -Dtests=enabled -Dgraphs=enabled || {
          echo "WARNING: no CUDA runtime headers found: building WITHOUT CUDA graphs" >&2
          rm -rf "$b"
          meson setup "$b" -Dtorch_dir="$TORCH_DIR" --buildtype=release -Dtests=enabled -Dgraphs=disabled
        }
      fi
      ninja -C "$b" ;;
    test)
      header test
      run test meson test -C "$b" --print-errorlogs --num-processes 1 model bench elements
      run test "$b/tests/model/test_model" --gtest_filter='DetectorCuda.*:Detector*:CudaGraph.*:StaticGraph.*:GraphCache.*' ;;
    model)
      header model
      mkdir -p "$out/models"
      run model "$b/bench/bench_model" --bodies tiny,resnet34 --batches 1,8,64 --precisions fp32,fp16 \
        --devices cuda --frame 1920x1080 --seconds 2 --in-flight 2 --save-dir "$out/models"
      run model "$b/bench/bench_model" --bodies resnet34 --batches 1,8 --precisions fp32,fp16 \
        --devices cuda --frame 1920x1080 --seconds 2 --in-flight 2 --cuda-graphs false
      for prec in fp32 fp16; do
        for batch in 1 64; do
          run model "$py" bench/reference_ssd.py bench --model "$out/models/resnet34.safetensors" \
            --frame 1920x1080 --batch "$batch" --device cuda --precision "$prec" --seconds 3 --repeats 3
        done
      done ;;
    pipeline)
      header pipeline
      [ -f "$out/models/resnet34.safetensors" ] || "$b/bench/bench_model" --bodies resnet34 --batches 1 \
        --precisions fp32 --devices cuda --seconds 0.2 --in-flight 1 --save-dir "$out/models" >/dev/null
      for model in "$root/models/ssd-default.safetensors" "$out/models/resnet34.safetensors"; do
        for prec in fp32 fp16; do
          for bf in "1 1" "1 2" "16 2"; do
            set -- $bf
            for fmt in RGBx NV12; do
              run pipeline bash bench/bench_pipeline.sh --build "$b" --model "$model" --device cuda \
                --precision "$prec" --batch "$1" --in-flight "$2" --sizes 1920x1080 --format "$fmt" \
                --frames 2000 --repeats 3 --model-seconds 1
            done
          done
        done
      done
      for fmt in RGBx NV12; do
        run pipeline bash bench/bench_pipeline.sh --build "$b" --model "$out/models/resnet34.safetensors" \
          --device cuda --precision fp16 --batch 1 --in-flight 2 --sizes 1920x1080 --format "$fmt" \
          --frames 2000 --repeats 3 --model-seconds 1 --cuda-graphs false
      done ;;
    train)
      header train
      for prec in fp32 bf16 fp16; do
        run train "$b/bench/bench_train" --body resnet34 --head-channels 256 --input-size 224 --grids 4,2,1 --classes 20 \
          --batch 64 --device cuda --precision "$prec" --steps 10 --repeats 5
        run train "$py" bench/reference_train.py --body resnet34 --head-channels 256 --input-size 224 --grids 4,2,1 \
          --classes 20 --batch 64 --device cuda --precision "$prec" --loss batched --steps 10 --repeats 5
      done ;;
    *) echo "unknown stage $stage (prepare build test model pipeline train)" >&2; exit 2 ;;
  esac
done
