#!/bin/sh
# tests/fuzz/run.sh SECONDS [BUILD_DIR] -- build (build.sh) and run the
# differential fuzzer for SECONDS on every backend built, starting from the
# seed corpus and the regression reproducers.  New inputs go to
# BUILD_DIR/corpus, a finding to BUILD_DIR/crash-*; exit status 1 on a finding.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
b=${2:-$top/_build-fuzz}
"$top/tests/fuzz/build.sh" "$b" >/dev/null
mkdir -p "$b/corpus"
ALOOP_MODULE_PATH="$b/.libs"; export ALOOP_MODULE_PATH
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}; export ASAN_OPTIONS
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}; export UBSAN_OPTIONS
exec "$b/fuzz_loop" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len=1024 \
    -print_final_stats=1 -artifact_prefix="$b/" "$b/corpus" \
    "$top/tests/fuzz/corpus" "$top/tests/fuzz/regress"
