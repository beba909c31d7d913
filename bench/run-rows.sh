#!/usr/bin/env bash
# run-rows.sh ROOT TREE_TGZ OUT - the `ufuse run` benchmark rows, timed from
# inside the program tree (so the kernel mount and `ufuse run` are timed on
# the same commands, with no session start-up in either).  ROOT holds the
# server's /big (1 GiB, not yet read); TREE_TGZ is the ~5,000-file tree;
# OUT a local scratch directory.  Prints "row seconds" lines.
set -euo pipefail
root=$1 tgz=$2 out=$3
t() { # NAME CMD...: time one command
    local name=$1 s e
    shift
    s=$(date +%s%N)
    "$@" >/dev/null
    e=$(date +%s%N)
    echo "$name $(( (e - s) / 1000 ))"
}
# Cached calls in a loop (issue 9's goals: pread >= 2x, stat >= 5x), with
# run-sysloop-dyn (tests/run/sysloop.c) when $SYSLOOP names it: 4 MiB of
# /big read once, then 100,000 4 KiB preads of it (one thread, then four);
# 100,000 fstats; 100,000
# stats of a path three names deep.
if [ -n "${SYSLOOP:-}" ]; then
    mkdir -p "$root/s/a/b"
    head -c 4194304 "$root/big" >"$root/s/f"
    : >"$root/s/a/b/c"
    t "pread-4k-hot-100k" "$SYSLOOP" pread 100000 "$root/s/f"
    t "pread-4k-hot-4thr-100k" "$SYSLOOP" pread4 100000 "$root/s/f"
    t "fstat-100k" "$SYSLOOP" fstat 100000 "$root/s/f"
    t "stat-cached-100k" "$SYSLOOP" stat 100000 "$root/s/a/b/c"
fi
t "cat-1g-cold" cat "$root/big"
t "cat-1g-hot" cat "$root/big"
mkdir "$root/t"
t "tar-x" tar xzf "$tgz" -C "$root/t"
t "cp-r-out" cp -r "$root/t" "$out/copy"
t "find-xargs-stat" sh -c "find '$root/t' -type f | xargs stat"
t "du-s" du -s "$root/t"
t "grep-r" grep -r -l needle "$root/t"
