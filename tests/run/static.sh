#!/usr/bin/env bash
# run-static: programs that bypass the preload library see the mount
# through the broker's seccomp supervisor (tools/run/supervise.c).
#   - busybox-static lists, reads, writes, copies, links, moves and removes
#     files, with absolute paths and relative ones (its working directory
#     inherited inside the mount), and runs dynamic programs (cat, ls, wc)
#     that read the mount too, by path and from an fd the static shell
#     opened: the same script on a local directory and on the mount must
#     print the same lines;
#   - a Go program (tests/run/gowalk, built here with CGO_ENABLED=0) writes,
#     copies, reads at offsets, truncates, walks and removes: same check;
#   - raw system calls from a static C program (run-sysloop raw);
#   - a dynamic program inside a static program's subtree pays no trap for
#     the calls the preload library makes itself (the trampoline); a static
#     program traps its file calls and not the others (getpid); a tree with
#     no static program installs no filter at all;
#   - run by an unprivileged user, the static program's subtree gets
#     no_new_privs (the filter needs it) and nothing else does.
. "$(dirname "$0")/../cli/lib.sh"
SRC=${UFUSE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BB=$(command -v busybox || true)
if [ -z "$BB" ] || head -c 8192 "$BB" | grep -q 'ld-linux'; then
    echo "SKIP: no statically linked busybox (Debian busybox-static; scripts/deps.sh installs it)" >&2
    exit 77
fi
command -v go >/dev/null || { echo "SKIP: go not installed (Debian golang-go; scripts/deps.sh installs it)" >&2; exit 77; }
SYSLOOP=$B/run-sysloop
W=$B/run-worker

# The Go program: a static binary built from tests/run/gowalk (the build
# cache lives in the build tree, so only the first run compiles the
# standard library).
mkdir -p "$B/go-cache"
if ! (cd "$SRC/tests/run/gowalk" && HOME=$T GOCACHE=$B/go-cache GOFLAGS=-mod=mod GOPROXY=off \
      CGO_ENABLED=0 go build -o "$T/gowalk" .) >"$T/gobuild" 2>&1; then
    echo "FAIL: building tests/run/gowalk:"; cat "$T/gobuild"; exit 1
fi

# The busybox script: run with its directory as $1, from inside it.
cat >"$T/bb.sh" <<'SH'
D=$1
cd "$D" || exit 1
bb=busybox
$bb mkdir d d/sub
$bb sh -c 'echo hello >d/a'
$bb echo "bash opened this for busybox" >d/r
$bb cat d/r
$bb rm d/r
printf 'line1\nline2\nline3\n' | $bb tee d/b >/dev/null
$bb cp d/a d/sub/c
$bb cp "$D/d/b" "$D/d/sub/b-abs"
$bb cat d/a d/sub/c
$bb md5sum d/a d/b d/sub/b-abs
$bb dd if=/dev/zero bs=65536 count=5 2>/dev/null | $bb tr '\0' 'z' | $bb dd of=d/big 2>/dev/null
$bb md5sum d/big
$bb wc -c d/big
$bb ls -l d | $bb grep '^-' | $bb awk '{print $1, $5, $NF}'
$bb ls -R d
$bb mv d/b d/sub/b2
$bb ln -s a d/link
$bb readlink d/link
$bb cat d/link
$bb stat -c '%n %s %F %a' d/a d/link
$bb stat -c '%n %F %a' d/sub
$bb chmod 600 d/a
$bb stat -c '%n %a' d/a
$bb truncate -s 3 d/sub/c
$bb cat d/sub/c; echo
$bb sh -c "cat $D/d/sub/b2"
$bb sh -c '/bin/cat d/a; /bin/ls d/sub'
$bb sh -c '/bin/cat <d/sub/b2; /bin/wc -c <d/big'
$bb find d | $bb sort
$bb rm d/a
$bb ls d
$bb test -e d/a || echo "d/a is gone"
$bb rm -r d
$bb ls
echo "raw: $($RUN_SYSLOOP raw "$D/raw")"
SH

run_local() {
    mkdir "$T/local"
    RUN_SYSLOOP=$SYSLOOP bash "$T/bb.sh" "$T/local" >"$T/bb-expected" 2>&1
    "$T/gowalk" "$T/local" >"$T/go-expected" 2>&1
}
run_local
if ! grep -q '^raw: write 10 lseek 4 read 6' "$T/bb-expected" || ! grep -q '^after RemoveAll: true' "$T/go-expected"; then
    echo "FAIL: the scripts do not run on a local directory:"; cat "$T/bb-expected" "$T/go-expected"; exit 1
fi

# compare DESC EXPECTED ACTUAL: the same lines.
compare() {
    if diff "$2" "$3" >"$T/diff"; then _pass; else
        failures=$((failures + 1))
        echo "FAIL: $1: output differs from the local run (< local, > ufuse run):"
        sed 's/^/  /' "$T/diff" | head -40
    fi
}

for mode in writethrough writeback; do
    "$UFUSE" run -o "cache=$mode,log=$T/server.log" -- env RUN_SYSLOOP="$SYSLOOP" \
        bash "$T/bb.sh" /ufuse >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    expect_rc 0 "busybox, cache=$mode"
    compare "busybox-static, cache=$mode" "$T/bb-expected" <(cat "$T/out" "$T/err")

    "$UFUSE" run -o "cache=$mode,log=$T/server.log" -- "$T/gowalk" /ufuse >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    expect_rc 0 "Go, cache=$mode"
    compare "a Go program, cache=$mode" "$T/go-expected" <(cat "$T/out" "$T/err")
done

# The preload library's own calls in a dynamic program under the filter
# do not trap: 2,000 stat calls cost no more traps than none.
cat >"$T/traps.sh" <<SH
echo x >/ufuse/f
busybox sh -c '$W stats; $B/run-sysloop-dyn stat 0 /ufuse/f; $W stats; $B/run-sysloop-dyn stat 2000 /ufuse/f; $W stats; $B/run-sysloop-dyn stat 2000 /etc/hostname; $W stats'
SH
"$UFUSE" run -- bash "$T/traps.sh" >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "stat loops inside a busybox subtree"
mapfile -t traps < <(sed -n 's/.* listeners [0-9]* traps \([0-9]*\) requests .*/\1/p' "$T/out")
if [ "${#traps[@]}" -eq 4 ]; then
    base=$((traps[1] - traps[0]))
    mount=$((traps[2] - traps[1]))
    real=$((traps[3] - traps[2]))
    echo "traps: start-up of a dynamic program $base, with 2000 stats on the mount $mount, on a real file $real"
    check "a dynamic program under the filter traps only at start-up (got $base)" test "$base" -gt 0
    check "2000 stats on the mount add no trap ($mount vs $base)" test "$mount" -le $((base + 20))
    check "2000 stats of a real file add no trap ($real vs $base)" test "$real" -le $((base + 20))
else
    _fail "the broker's trap counts (stats lines: ${#traps[@]})"
fi

# A static program traps the file calls it makes, not the others: 2,000
# getpid cost no trap, 2,000 fstat of a mount fd one each (all served).
cat >"$T/getpid.sh" <<SH
echo x >/ufuse/f
$W stats; $SYSLOOP getpid 0; $W stats; $SYSLOOP getpid 2000; $W stats; $SYSLOOP fstat 2000 /ufuse/f; $W stats
SH
"$UFUSE" run -- bash "$T/getpid.sh" >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "getpid and fstat loops in a static program"
mapfile -t traps < <(sed -n 's/.* listeners [0-9]* traps \([0-9]*\) requests .*/\1/p' "$T/out")
if [ "${#traps[@]}" -eq 4 ]; then
    base=$((traps[1] - traps[0]))
    getpid=$((traps[2] - traps[1]))
    fstat=$((traps[3] - traps[2]))
    echo "traps: static program start-up $base, with 2000 getpid $getpid, with 2000 fstat $fstat"
    check "2000 getpid add no trap ($getpid vs $base)" test "$getpid" -le $((base + 5))
    check "2000 fstat of a mount fd trap ($fstat vs $base)" test "$fstat" -ge $((base + 2000))
else
    _fail "the broker's trap counts (stats lines: ${#traps[@]})"
fi

# Without CAP_SYS_ADMIN the filter needs no_new_privs: set in the static
# program's subtree only, and the program is served all the same.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    U=$(mktemp -d "${TMPDIR:-/tmp}/ufuse-static-user.XXXXXX")
    chmod 755 "$U"
    chown 65534:65534 "$U"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$UFUSE" run -m "$U/m" -- bash -c \
        "echo hi >'$U/m/f'; busybox cat '$U/m/f'; grep NoNewPrivs /proc/self/status;
         busybox grep NoNewPrivs /proc/self/status" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    rm -rf "$U"
    expect_rc 0 "a static program run by an unprivileged user"
    expect_out "hi
NoNewPrivs:	0
NoNewPrivs:	1" "served, with no_new_privs in its subtree only"
fi

# A static program exec'd from a vfork child (Python's subprocess): the
# child connects after it installed the filter, with no call that traps.
timeout 120 "$UFUSE" run -- python3 -c '
import subprocess
open("/ufuse/hello", "w").write("hi\n")
print(subprocess.run(["busybox", "cat", "/ufuse/hello"], capture_output=True, text=True).stdout.strip())
' >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "busybox from a vfork child"
expect_out "hi" "busybox from a vfork child reads the mount"
# A tree without a static program installs no filter.
"$UFUSE" run -- "$W" stats >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "stats in a dynamic tree"
expect_match out ' listeners 0 traps 0 ' "no filter without a static program"
finish
