#!/usr/bin/env bash
# bpftrace.sh - tools/ufuse.bt reads the probes of live clients.  bpftrace
# attaches the script to build/ufuse (the CLI links the library
# statically); once it is tracing, three CLI sessions run against
# ufuse-memfs:
#   1. write-through (memfs's default): put a 200 KB file, read its first
#      64 KiB twice through one open file (misses, then hits), then the
#      next 64 KiB (sequential: readahead), stat it and a missing name;
#   2. write-back (-o writeback): write 64 KiB, fsync (a write-back cluster);
#   3. direct_io and WRITEs acknowledged 1 KiB at a time (short writes),
#      a read past the 8 KiB written (a short read).
# Then Ctrl-C (SIGINT), and the summary must show pages hit (> 0), the
# latency of LOOKUP and READ, and a count for every other probe.
# Exit 77 (skip, saying why) where bpftrace cannot run here: not root, no
# BPF or uprobes in the kernel, bpftrace not installed.
# Environment (from tests/trace/CMakeLists.txt): UFUSE_BUILD_DIR, UFUSE_SOURCE_DIR.
set -u
B=${UFUSE_BUILD_DIR:?run through ctest}
S=${UFUSE_SOURCE_DIR:?run through ctest}
UFUSE=$B/ufuse
skip() { echo "SKIP: $*" >&2; exit 77; }

command -v bpftrace >/dev/null || skip "bpftrace is not installed (scripts/deps.sh check installs it)"
[ "$(id -u)" -eq 0 ] || skip "bpftrace needs root"
[ -e /sys/bus/event_source/devices/uprobe ] || skip "the kernel has no uprobes (CONFIG_UPROBE_EVENTS)"
T=$(mktemp -d "${TMPDIR:-/tmp}/ufuse-trace.XXXXXX")
bp=
cleanup() {
    [ -n "$bp" ] && kill "$bp" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
if ! timeout 120 bpftrace -e 'BEGIN { exit(); }' >"$T/probe.out" 2>&1; then
    skip "bpftrace cannot load a BPF program here: $(grep -m1 ERROR "$T/probe.out" | grep -v RLIMIT)"
fi

bpftrace "$S/tools/ufuse.bt" "$UFUSE" >"$T/out" 2>"$T/err" &
bp=$!
# Loading takes seconds, more on a loaded machine.
for _ in $(seq 600); do
    grep -q '^ufuse.bt: tracing' "$T/out" && break
    kill -0 "$bp" 2>/dev/null || break
    sleep 0.3
done
if ! grep -q '^ufuse.bt: tracing' "$T/out"; then
    echo "FAIL: tools/ufuse.bt did not start"
    cat "$T/out" "$T/err"
    exit 1
fi

fail=0
session() {
    if ! "$UFUSE" "$@" >"$T/session" 2>&1; then
        echo "FAIL: ufuse $*"
        cat "$T/session"
        fail=1
    fi
}
head -c 200000 /dev/urandom >"$T/file"
session -c "put $T/file /f" -c "open -r /f" -c "pread 0 64k" -c "pread 0 64k" \
        -c "pread 64k 64k" -c "close" -c "stat /f"
"$UFUSE" -c "stat /missing" >/dev/null 2>&1 # a LOOKUP answered ENOENT
session -s "$B/ufuse-memfs -o writeback" -c "open -c /w" -c "pwrite 0 64k" -c "fsync" -c "close"
session -s "$B/ufuse-memfs -o direct_io,short_write=1k" -c "open -c /w" -c "pwrite 0 8k" \
        -c "pread 0 64k" -c "close"

kill -INT "$bp"
for _ in $(seq 200); do
    kill -0 "$bp" 2>/dev/null || break
    sleep 0.3
done
if kill -0 "$bp" 2>/dev/null; then
    echo "FAIL: bpftrace did not end within 60 s of SIGINT"
    fail=1
fi
wait "$bp"
bp=

out=$T/out
check() { # check DESCRIPTION EXTENDED-REGEX: a line of the summary matches
    if ! grep -Eq "$2" "$out"; then
        echo "FAIL: the summary shows no $1 (/$2/)"
        fail=1
    fi
}
check "pages hit"                 '^cache: [1-9][0-9]* pages hit, [1-9][0-9]* missed, hit ratio '
check "LOOKUP latency histogram"  '^@latency_us\[LOOKUP\]:'
check "READ latency histogram"    '^@latency_us\[READ\]:'
check "READ latency stats"        '^@request_us\[READ\]: count [1-9]'
check "LOOKUP error"              '^@errors\[LOOKUP, -2\]: [1-9]'
check "readahead window"          '^@readahead_window_kib:'
check "write-back cluster"        '^@writeback_cluster_pages:'
check "whole-file invalidation"   '^@invalidate_whole_file: [1-9]'
check "buffered read"             '^@reads_buffered: [1-9]'
check "direct read"               '^@reads_direct: [1-9]'
check "write-through write"       '^@writes_writethrough: [1-9]'
check "write-back write"          '^@writes_writeback: [1-9]'
check "direct write"              '^@writes_direct: [1-9]'
check "short read"                '^@short_reads: [1-9]'
check "short write"               '^@short_writes: [1-9]'
if [ $fail -ne 0 ]; then
    echo "--- bpftrace's output:"
    cat "$T/out" "$T/err"
else
    grep -E '^(cache:|@request_us\[(LOOKUP|READ)\])' "$out"
fi
exit $fail
