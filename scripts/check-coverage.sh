#!/usr/bin/env bash
# Line coverage of the product code (model/, training/, gst-plugin/, caption/) by the test suites:
# a debug build with gcov's counters (meson's b_coverage) in build-coverage/, the suites run, then
# gcovr's table (lines, lines run, share, the lines never run) printed and written with an HTML
# report under build-coverage/coverage/. Not part of CI (.ci/run): on the 2-core development
# machine the build took about 8 min and the suites 16 min (2026-12-07).
#
#   bash scripts/check-coverage.sh                  build, then every suite
#   bash scripts/check-coverage.sh elements model   build, then only the named suites
#
# gcovr comes from PyPI into the project's .venv (scripts/setup.sh makes it) when it is not there.
# What the figures leave out:
# - Code run only in a process that a signal ends counts as never run: gcov writes a process's
#   counters when it exits. ssd-train's interrupt tests end the tool by SIGINT and SIGTERM, so
#   what it does on them (training/remove_on_interrupt.cpp) reads as not run. (The processes the
#   tests start and that exit, ssd-train's and gst-launch's, add their counts.)
# - CUDA code runs only on a GPU host; there gcov's counters would need this build there.
# SSD_COVERAGE_BUILD names the build folder (default build-coverage).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
b=${SSD_COVERAGE_BUILD:-$root/build-coverage}
cd "$root"
py=$root/.venv/bin/python
[ -x "$py" ] || { echo "check-coverage: no $root/.venv: run scripts/setup.sh first" >&2; exit 1; }
"$py" -m gcovr --version > /dev/null 2>&1 || "$py" -m pip install --quiet gcovr
opts=(-Dbuildtype=debug -Db_coverage=true)
if [ -f "$b/build.ninja" ]; then meson configure "$b" "${opts[@]}"; else meson setup "$b" "${opts[@]}"; fi
ninja -C "$b"
find "$b" -name '*.gcda' -delete   # (counts of an earlier run)
suites=("$@")
start=$SECONDS
status=0
SSD_REQUIRE_REFERENCES=1 meson test -C "$b" --num-processes 1 --timeout-multiplier 4 "${suites[@]}" || status=$?
echo "check-coverage: tests took $(( SECONDS - start )) s; log: $b/meson-logs/testlog.txt"
[ "$status" -eq 0 ] || echo "check-coverage: some tests failed; the figures below are of the runs as they went" >&2
mkdir -p "$b/coverage"
# (gcov flags a few counts of tight pixel loops as suspiciously high; they are real.)
"$py" -m gcovr --root "$root" "$b" \
  --filter "$root/model/" --filter "$root/training/" --filter "$root/gst-plugin/" --filter "$root/caption/" \
  --gcov-ignore-parse-errors=suspicious_hits.warn_once_per_file \
  --txt "$b/coverage/coverage.txt" --html-details "$b/coverage/index.html" --print-summary
cat "$b/coverage/coverage.txt"
echo "check-coverage: $b/coverage/coverage.txt, $b/coverage/index.html"
exit "$status"
