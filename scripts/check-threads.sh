#!/usr/bin/env bash
# Builds the tree with ThreadSanitizer (meson's b_sanitize=thread, GCC) into build-tsan/ and runs
# the suites whose code runs on several threads under it, in process: the elements in GstHarness
# and in pipelines (ssddetect's output, loader and shared-instance threads, ssdtrack, ssdexport,
# ssdoverlay), the model library (SharedDetector's workers, Detector's CPU workers) and ssd-train's
# data loader. Not part of CI (.ci/run); like scripts/check-sanitizers.sh, for the 2-core
# development machine.
#
#   bash scripts/check-threads.sh                  build, then every suite below
#   bash scripts/check-threads.sh elements         build, then only the named suites (model,
#                                                  training-data, training-trainer, elements,
#                                                  elements-one-at-a-time)
#
# Reports are written to $SSD_TSAN_BUILD/tsan-logs/<suite>.<pid> (log_path) and counted at the
# end; the script fails when one names a frame of the project's code. What is left out, and why:
# - GLib, GStreamer, LibTorch, OpenBLAS/OpenMP, Pango and OpenCV are not instrumented. Their
#   accesses are not seen (ignore_noninstrumented_modules), nor the interceptor calls they make
#   (scripts/tsan.supp: called_from_lib). The happens-before that GLib's locks give is made
#   visible by scripts/glib-tsan-shim.c (LD_PRELOAD): GMutex, GRecMutex (a pad's stream lock),
#   GRWLock and GCond use futexes directly, which TSan does not see, so every state handed over
#   under GST_OBJECT_LOCK or GST_PAD_STREAM_LOCK was reported without it; the shim also orders
#   a GObject's or GstMiniObject's last unref after the others (their refcounts are atomics inside
#   GLib) and gst_element_call_async()'s function after its caller.
# - Processes the suites start that are not instrumented (gst-launch-1.0, gst-inspect-1.0,
#   Python) cannot load the instrumented plugin (the TSan runtime cannot be loaded by dlopen):
#   the tests that run them are left out (TSAN_GTEST_FILTER), and the registry is built in
#   process (GST_REGISTRY_FORK=no), as gst-plugin-scanner is one of them.
# - ExitGate.ClosingWaitsForThePassesHeldAndRefusesNewOnes (model) forks the multi-threaded test
#   process, and TSan's runtime cannot go on in a child that starts threads ("dup thread with used
#   id"); the two ssd-train tests under ulimit -v / -s (training-trainer) cannot run in the
#   address space TSan reserves, as under AddressSanitizer, which they skip; the bf16 training
#   test crashes inside oneDNN there (see the suite's filter below).
# - Timing tests (benchmarks, frame gaps against a 30 fps clock) are left out: TSan slows the
#   instrumented code 5-15x.
# The shim makes the run a regression net (0 reports on 2026-12-08), not a proof: TSan orders two
# accesses by any lock both threads took in between, and with GLib's locks visible that hides
# races behind unrelated locks (the latency query's, fixed on 2026-12-08, showed only without
# it). SSD_TSAN_SHIM=0 runs without it: some 200 reports then (elements suites), to be triaged by hand.
# SSD_TSAN_BUILD names the build folder (default build-tsan).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
b=${SSD_TSAN_BUILD:-$root/build-tsan}
cd "$root"
opts=(-Db_sanitize=thread -Db_lundef=false -Dbuildtype=debugoptimized)
if [ -f "$b/build.ninja" ]; then meson configure "$b" "${opts[@]}"; else meson setup "$b" "${opts[@]}"; fi
# Everything but the fuzz replays, which are compiled with AddressSanitizer (fuzz/meson.build), which
# GCC cannot combine with ThreadSanitizer.
# shellcheck disable=SC2046
ninja -C "$b" -j2 $(ninja -C "$b" -t targets all | awk -F: '$2 ~ /LINKER/ && $1 !~ /^fuzz\// {print $1}')
shim=$b/glib-tsan-shim.so
# shellcheck disable=SC2046
cc -O2 -fPIC -shared -o "$shim" scripts/glib-tsan-shim.c $(pkg-config --cflags glib-2.0 gobject-2.0 gstreamer-1.0) -ldl
[ "${SSD_TSAN_SHIM:-1}" != 0 ] || shim=
logs=$b/tsan-logs
rm -rf "$logs"
mkdir -p "$logs"
# detect_deadlocks=0: TSan's lock-order checker aborts (CHECK failed: n_all_locks_ < 64) once a thread
# has seen more than 64 locks taken in a row, which GLib's reader locks reach here.
tsan_common="halt_on_error=0 report_signal_unsafe=0 second_deadlock_stack=1 history_size=4 detect_deadlocks=0"
tsan_common+=" ignore_noninstrumented_modules=1 suppressions=$root/scripts/tsan.supp"
export GST_REGISTRY_FORK=no
# GSlice's magazines reuse GstBuffer, GstMeta and event memory without malloc()/free(), which TSan
# then takes for one object (a frame's meta written by one test's thread, read by the next test).
export G_SLICE=always-malloc
export TSAN_GTEST_FILTER=${TSAN_GTEST_FILTER:--Examples.*:Pipelines.*:GstAnalyticsInterop.*:Elements.APluginLoadedByARelativePathFindsItsBuildTreesModel:SsdRtsp.*}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(model training-data training-trainer elements elements-one-at-a-time)
start=$SECONDS
status=0
for s in "${suites[@]}"; do
  export TSAN_OPTIONS="$tsan_common log_path=$logs/$s"
  args=()
  preload=
  case $s in
    # The shim only where GLib runs: preloaded into the model suite's Python cross-checks it
    # crashed them, and those suites use no GLib.
    model) args=("--test-args=--gtest_filter=-ExitGate.ClosingWaitsForThePassesHeldAndRefusesNewOnes") ;;
    elements) args=("--test-args=--gtest_filter=$TSAN_GTEST_FILTER"); preload=$shim ;;
    elements-one-at-a-time) preload=$shim ;;
    # Thread and memory limits (ulimit -u, -v) that TSan's own threads and its terabytes of
    # reserved shadow memory run into before the tool does.
    # Trainer.Bf16TrainingLowersLossAndResumesExactly: oneDNN (libdnnl.so.2, uninstrumented),
    # creating a bf16 convolution for LibTorch's mkldnn_convolution, reads an unmapped page just
    # past a heap block as TSan's allocator lays the heap out after the suite's earlier tests
    # (SEGV at the same address in two runs, 2026-12-08); alone, and without TSan, it passes.
    training-trainer) args=("--test-args=--gtest_filter=-Cli.DataLoaderThreadsTheSystemRefusesAreAnErrorNotAnAbort:Cli.OutOfMemoryIsOneLine:Trainer.Bf16TrainingLowersLossAndResumesExactly") ;;
  esac
  LD_PRELOAD=$preload meson test -C "$b" --no-rebuild --print-errorlogs --num-processes 1 --timeout-multiplier 6 "${args[@]}" "$s" || status=1
done
echo "check-threads: tests took $(( SECONDS - start )) s; logs: $logs"
shopt -s nullglob
logfiles=("$logs"/*)
reports=0 ours=0
if [ ${#logfiles[@]} -gt 0 ]; then
  # (Races are WARNINGs; a crash in a process under TSan is an ERROR, e.g. "SEGV on unknown address".)
  reports=$(cat "${logfiles[@]}" | grep -Ec '^(WARNING|==[0-9]+==ERROR): ThreadSanitizer' || true)
  # (A report counts as the project's when a frame of either access is in its sources.)
  ours=$(awk '/^(WARNING|==[0-9]+==ERROR): ThreadSanitizer/{r=$0; p=0} /(gst-plugin|model|training|caption|tests\/[a-z]+)\/[a-z_]+\.(cpp|h|c)/{p=1} /^SUMMARY/{if(p) print r}' \
           "${logfiles[@]}" | wc -l)
fi
echo "check-threads: $reports report(s), $ours with a frame of the project's code"
[ "$ours" -eq 0 ] || status=1
exit $status
