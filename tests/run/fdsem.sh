#!/usr/bin/env bash
# run-fdsem: file-descriptor semantics inside a `ufuse run` tree (see
# fdsem.c), in each cache mode of ufuse-memfs.
. "$(dirname "$0")/../cli/lib.sh"
PROG=$B/run-fdsem
for mode in direct writethrough writeback; do
    "$UFUSE" run -o "cache=$mode" -- sh -c "mkdir /ufuse/d && exec '$PROG' /ufuse/d" \
        >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    expect_rc 0 "cache=$mode: fdsem"
    expect_match out '^fdsem: all checks passed$' "cache=$mode: all checks"
done
finish
