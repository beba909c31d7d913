#!/usr/bin/env bash
# run-fast: the fast path (tools/run/preload_fast.c, see fast.c): cached
# reads and fstat served in the program's process, coherent with other
# processes' writes, in each cache mode of ufuse-memfs; and, as the
# control, the same program with the fast path off (UFUSE_RUN_NOSHARE=1)
# and under cache=direct, where every call reaches the broker.
. "$(dirname "$0")/../cli/lib.sh"
PROG=$B/run-fast
W=$B/run-worker
for mode in writethrough writeback; do
    "$UFUSE" run -o "cache=$mode" -- sh -c "mkdir /ufuse/d && exec '$PROG' /ufuse/d '$W' fast" \
        >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    expect_rc 0 "cache=$mode: fast path"
    expect_match out '^fast: all checks passed$' "cache=$mode: all checks"
done
UFUSE_RUN_NOSHARE=1 "$UFUSE" run -- sh -c "mkdir /ufuse/d && exec '$PROG' /ufuse/d '$W' slow" \
    >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "fast path off: every call reaches the broker"
"$UFUSE" run -o cache=direct -- sh -c "mkdir /ufuse/d && exec '$PROG' /ufuse/d '$W' slow" \
    >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "cache=direct: no fast path"
finish
