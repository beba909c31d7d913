#!/usr/bin/env bash
# demo.sh BUILD_DIR - ufuse's main job in under a minute.
#
# Part 1 (the CLI):
# Makes a small local tree (directories, small files with various modes, a
# 32 MiB file of random data, a symlink), copies it INTO the built-in FUSE
# server with `ufuse put -r`, lists it there, copies it back OUT with
# `get -r`, all in one ufuse session, then checks with sha256sum (and a
# manifest of types, modes and link targets) that what came out is what went
# in.  Prints the --stats table of the session.  Exits non-zero on any
# mismatch or failure; removes its temporary directory in every case.
#
# Part 2 (`ufuse run`): unmodified programs - bash, cp, ls, tar, gzip,
# sha256sum - work on the same kind of server at /ufuse, with no mount:
# a pipeline copies the tree in with cp -a, lists it, tars it back out and
# compares the checksums.
set -euo pipefail

BUILD=${1:-build}
UFUSE=$BUILD/ufuse
if [ ! -x "$UFUSE" ]; then
    echo "demo: $UFUSE not found; build first (make)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ufuse-demo.XXXXXX")
cleanup() { chmod -R u+rwx "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
in=$tmp/in
out=$tmp/out

# ---- the local tree ------------------------------------------------------
mkdir -p "$in/docs" "$in/src/lib" "$in/data" "$in/empty"
printf 'ufuse demo\nThis tree went into a FUSE server and came back.\n' \
    >"$in/docs/README.txt"
printf 'top secret\n' >"$in/docs/secret.txt"
printf '#!/bin/sh\necho built\n' >"$in/src/build.sh"
printf 'int answer(void) { return 42; }\n' >"$in/src/lib/answer.c"
: >"$in/src/lib/empty.h"
seq 1 5000 >"$in/data/numbers.txt"
head -c $((32 * 1024 * 1024)) /dev/urandom >"$in/data/random.bin"
ln -s docs/README.txt "$in/README"
chmod 0755 "$in/src/build.sh"
chmod 0600 "$in/docs/secret.txt"
chmod 0700 "$in/src"

nfiles=$(find "$in" -type f | wc -l)
ndirs=$(find "$in" -mindepth 1 -type d | wc -l)
nlinks=$(find "$in" -type l | wc -l)
bytes=$(find "$in" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

echo "== ufuse demo"
echo "ufuse is the kernel half of FUSE as a user-space library: it starts an"
echo "unmodified FUSE server and speaks the FUSE protocol to it over a socketpair,"
echo "with no /dev/fuse and no kernel mount.  The server here is the built-in"
echo "ufuse-memfs, an in-memory file system written on libfuse3's low-level API."
echo
echo "Local tree: $nfiles files ($bytes bytes, one of 32 MiB random data),"
echo "$ndirs directories, $nlinks symlink, various modes."
echo
echo "Copying it in, listing it and copying it back out, in one session:"
echo "\$ ufuse --stats -c info -c 'put -r IN /tree' -c 'ls -l /tree /tree/data' -c 'get -r /tree OUT'"
start=$(date +%s.%N)
"$UFUSE" --stats \
    -c "info" \
    -c "put -r '$in' /tree" \
    -c "ls -l /tree /tree/data" \
    -c "get -r /tree '$out'"
end=$(date +%s.%N)
echo

# ---- verify ----------------------------------------------------------------
manifest() { # type, mode, path and link target of everything under $1
    (cd "$1" && find . -mindepth 1 -printf '%y %m %p %l\n' | LC_ALL=C sort)
}
sums() { # sha256 of every regular file under $1
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
ok=1
if ! diff <(manifest "$in") <(manifest "$out") >"$tmp/manifest.diff"; then
    echo "MISMATCH in types, modes or symlinks (< in, > out):"
    cat "$tmp/manifest.diff"
    ok=0
fi
if ! diff <(sums "$in") <(sums "$out") >"$tmp/sums.diff"; then
    echo "MISMATCH in file contents (< in, > out):"
    cat "$tmp/sums.diff"
    ok=0
fi
big_in=$(sha256sum <"$in/data/random.bin" | cut -d' ' -f1)
big_out=$(sha256sum <"$out/data/random.bin" 2>/dev/null | cut -d' ' -f1 || true)
echo "sha256 of data/random.bin:"
echo "  in   $big_in"
echo "  out  ${big_out:-(missing)}"
if [ "$ok" = 1 ]; then
    printf 'OK: all %s files identical (sha256), modes and symlink kept; ' "$nfiles"
    awk -v s="$start" -v e="$end" 'BEGIN { printf "session took %.1f s.\n", e - s }'
    echo "(The per-opcode table above is the session's --stats: requests sent to"
    echo "the server, errors, payload bytes and mean/max round-trip latency.)"
else
    echo "FAILED: what came out of the server differs from what went in."
    exit 1
fi

# ---- part 2: unmodified programs through `ufuse run` --------------------
echo
echo "== ufuse run: unmodified programs on the server's file system"
echo "Every program started under \`ufuse run\` sees the server at /ufuse (no"
echo "mount, no root): here bash, cp, ls, tar, gzip and sha256sum."
script='set -e
cp -a "$IN" /ufuse/tree
ls -l /ufuse/tree /ufuse/tree/data
cd /ufuse && tar czf "$TMP/tree.tgz" tree
mkdir "$TMP/untar" && tar xzf "$TMP/tree.tgz" -C "$TMP/untar"
(cd /ufuse/tree && find . -type f | LC_ALL=C sort | xargs sha256sum) >"$TMP/sums.mount"'
echo "\$ ufuse run -- bash -c '$script'" | sed 's/^/  /; 1s/^  //'
IN=$in TMP=$tmp "$UFUSE" run -- bash -c "$script"
ok=1
if ! diff <(manifest "$in") <(manifest "$tmp/untar/tree") >"$tmp/manifest2.diff"; then
    echo "MISMATCH in types, modes or symlinks after tar (< in, > out):"
    cat "$tmp/manifest2.diff"
    ok=0
fi
if ! diff <(sums "$in") "$tmp/sums.mount" >"$tmp/sums2.diff" ||
   ! diff <(sums "$in") <(sums "$tmp/untar/tree") >>"$tmp/sums2.diff"; then
    echo "MISMATCH in file contents (< in, > out):"
    cat "$tmp/sums2.diff"
    ok=0
fi
if [ "$ok" = 1 ]; then
    echo "OK: sha256sum on the mount and after tar x agree with the local tree ($nfiles files)."
else
    echo "FAILED: ufuse run gave different bytes."
    exit 1
fi
