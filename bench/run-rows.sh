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
t "cat-1g-cold" cat "$root/big"
t "cat-1g-hot" cat "$root/big"
mkdir "$root/t"
t "tar-x" tar xzf "$tgz" -C "$root/t"
t "cp-r-out" cp -r "$root/t" "$out/copy"
t "find-xargs-stat" sh -c "find '$root/t' -type f | xargs stat"
t "du-s" du -s "$root/t"
t "grep-r" grep -r -l needle "$root/t"
