#!/usr/bin/env bash
# Fuzzes the parsers of the files users hand the plugin and ssd-train, with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer (clang from Debian: clang, libclang-rt-14-dev
# for the fuzzer runtime):
#   bash fuzz/run.sh [TARGET...] [-- LIBFUZZER OPTIONS]     (default: all targets, 60 s each)
# Targets: coco (training/coco.cpp), voc (training/voc.cpp), config (model/config.cpp: the
# architecture JSON in a weights file), safetensors (model/safetensors.cpp: the weights file),
# class-filter (model/class_filter.cpp: ssddetect's classes/class-thresholds, predict's options).
# Builds into build-fuzz/ (the sources compiled directly, so the sanitizers and coverage
# instrumentation reach them), fuzzes from fuzz/corpus/TARGET (kept there: new inputs go to
# build-fuzz/corpus-TARGET) and writes crashing inputs to build-fuzz/TARGET-crash-*; add a fixed
# one to fuzz/corpus/TARGET so the replay tests (`meson test --suite fuzz`) keep it fixed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
targets=() opts=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; opts=("$@"); break; fi
  targets+=("$1"); shift
done
[ ${#targets[@]} -gt 0 ] || targets=(coco voc config safetensors class-filter)
[ ${#opts[@]} -gt 0 ] || opts=(-max_total_time=60)
out=$root/build-fuzz
mkdir -p "$out"
cxx=${CXX_FUZZ:-clang++}
flags=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Imodel -Itraining -Ifuzz)
torch_flags=(-isystem /usr/include/torch/csrc/api/include)
build() {   # TARGET
  case "$1" in
    coco) "$cxx" "${flags[@]}" fuzz/fuzz_coco.cpp training/coco.cpp training/dataset.cpp training/atomic_file.cpp model/text.cpp -o "$out/fuzz_coco" ;;
    voc) "$cxx" "${flags[@]}" fuzz/fuzz_voc.cpp training/voc.cpp training/dataset.cpp model/text.cpp -lpugixml -o "$out/fuzz_voc" ;;
    config) "$cxx" "${flags[@]}" fuzz/fuzz_config.cpp model/config.cpp model/class_filter.cpp model/text.cpp -o "$out/fuzz_config" ;;
    class-filter) "$cxx" "${flags[@]}" fuzz/fuzz_class_filter.cpp model/class_filter.cpp model/text.cpp -o "$out/fuzz_class-filter" ;;
    safetensors) "$cxx" "${flags[@]}" "${torch_flags[@]}" fuzz/fuzz_safetensors.cpp model/safetensors.cpp model/safetensors_header.cpp \
                   -ltorch -ltorch_cpu -lc10 -o "$out/fuzz_safetensors" ;;
    *) echo "unknown target $1 (coco voc config safetensors class-filter)" >&2; exit 2 ;;
  esac
}
status=0
for t in "${targets[@]}"; do
  echo "== $t: building"
  build "$t"
  mkdir -p "$out/corpus-$t"
  echo "== $t: fuzzing (${opts[*]})"
  if ! "$out/fuzz_$t" -max_len=4096 -artifact_prefix="$out/$t-" "${opts[@]}" "$out/corpus-$t" "fuzz/corpus/$t" \
       > "$out/$t.log" 2>&1; then
    status=1
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$out/$t.log" >&2 || tail -20 "$out/$t.log" >&2
  fi
  tail -n 1 "$out/$t.log"
done
exit "$status"
