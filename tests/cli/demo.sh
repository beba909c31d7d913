#!/usr/bin/env bash
# cli-demo: scripts/demo.sh (what `make demo` runs) succeeds against the
# built-in server, tells its story, prints the --stats table, cleans up -
# and fails when what comes out differs from what went in (checked with a
# ufuse wrapper that damages the copy after the real ufuse made it).
. "$(dirname "$0")/lib.sh"
SRC=${UFUSE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DEMO=$SRC/scripts/demo.sh
mkdir -p "$T/tmp"

demo() { # BUILD_DIR
    TMPDIR=$T/tmp "$DEMO" "$1" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
}

demo "$B"
expect_rc 0 "demo"
expect_match out 'built-in' "the story says what the server is"
expect_match out '^Local tree: 7 files \([0-9]+ bytes, one of 32 MiB random data\),$' "the story says what was copied"
expect_match out '^/tree/data:$' "the session's ls -l is shown"
expect_match out '^-rw-r--r-- .* 33554432 .* random\.bin$' "the 32 MiB file inside the server"
expect_match out '^OK: all 7 files identical \(sha256\)' "checksums OK"
expect_match err '^opcode +count +errors +bytes' "the --stats table"
expect_match err '^WRITE +[1-9]' "the --stats table has the writes"
expect_match out '^== ufuse run' "part 2 runs unmodified programs"
expect_match out '^-rw-r--r-- 1 .* 33554432 .* random\.bin$' "ls -l through ufuse run"
expect_match out '^OK: sha256sum on the mount and after tar x agree with the local tree \(7 files\)' \
    "ufuse run part: checksums OK"
check "demo removed its temporary directory" test -z "$(ls -A "$T/tmp")"

# A ufuse that damages one copied file: the demo must notice and fail.
# ("untar" damages what tar x of the ufuse run part produced.)
mkdir -p "$T/bad-content" "$T/bad-mode" "$T/bad-untar"
for kind in content mode untar; do
    cat >"$T/bad-$kind/ufuse" <<EOF
#!/bin/sh
"$UFUSE" "\$@" || exit
for f in "$T"/tmp/ufuse-demo.*/out/docs/README.txt "$T"/tmp/ufuse-demo.*/untar/tree/docs/README.txt; do
    [ -e "\$f" ] || continue
    case $kind in
    content) case "\$f" in */out/*) echo damaged >>"\$f" ;; esac ;;
    mode) case "\$f" in */out/*) chmod 0666 "\$f" ;; esac ;;
    untar) case "\$f" in */untar/*) echo damaged >>"\$f" ;; esac ;;
    esac
done
exit 0
EOF
    chmod +x "$T/bad-$kind/ufuse"
    demo "$T/bad-$kind"
    check "a damaged copy ($kind) fails the demo" test "$rc" -ne 0
    expect_match out '^MISMATCH' "a damaged copy ($kind) is reported"
    expect_match out 'README\.txt' "the damaged file ($kind) is named"
    check "demo cleaned up after a failure ($kind)" test -z "$(ls -A "$T/tmp")"
done

# No ufuse binary: a clear message, non-zero.
demo "$T/nowhere"
check "demo without a build fails" test "$rc" -ne 0
expect_match err 'not found' "demo without a build says why"

finish
