#!/usr/bin/env bash
# soak.sh BUILD - the long runs of `make soak`, then the figures of
# docs/reliability.md regenerated from their output (scripts/reliability.sh).
#   BUILD        (plain)      fsx, 1,000,000 operations per cache mode, and
#                             the fault matrix with its larger amounts
#                             (CTest label "soak"); 16 threads as below,
#                             where the bound is on the resident set
#   BUILD-asan   (ASan+UBSan) 16 threads of mixed operations for 10 minutes
#   BUILD-tsan   (TSan)       against ufuse-memfs and passthrough_ll each
#                             (label "soak-san"; the bound is on the heap
#                             and the cache's pages, tests/faults/test-soak.c)
# UFUSE_FSX_OPS, UFUSE_SOAK_SECONDS, UFUSE_FAULT_ROUNDS, UFUSE_FAULT_OPS
# override the amounts.  Prints one closing line; exit 1 if a test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
export UFUSE_SOAK=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp
start=$(date +%s)
rc=0
echo "== $B: fsx, the fault matrix and 16 threads"
ctest --test-dir "$B" --output-on-failure -j 2 -L '^soak(-san)?$' || rc=1
echo "== $B-asan: 16 threads, ASan+UBSan"
ctest --test-dir "$B-asan" --output-on-failure -j 2 -L '^soak-san$' || rc=1
echo "== $B-tsan: 16 threads, TSan"
ctest --test-dir "$B-tsan" --output-on-failure -j 2 -L '^soak-san$' || rc=1
./scripts/reliability.sh docs/reliability.md "$B/Testing/Temporary/LastTest.log" \
    "$B-asan/Testing/Temporary/LastTest.log" "$B-tsan/Testing/Temporary/LastTest.log"
echo "soak: $([ $rc = 0 ] && echo passed || echo FAILED) in $(( ($(date +%s) - start) / 60 )) minutes"
exit $rc
