#!/usr/bin/env bash
# Run the test suites of `make check` and print one closing line.
set -uo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp
rc=0
echo "== plain build"
ctest --test-dir build --output-on-failure -j 2 -LE soak || rc=1
echo "== ASan+UBSan build"
ctest --test-dir build-asan --output-on-failure -j 2 -LE 'soak|nosan' || rc=1
echo "== TSan build"
ctest --test-dir build-tsan --output-on-failure -j 2 -L tsan || rc=1
exit $rc
