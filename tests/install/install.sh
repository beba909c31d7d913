#!/usr/bin/env bash
# install.sh - test the installed ufuse as its users get it.
#
# 1. `cmake --install` the build into a staging DESTDIR; check that every
#    file is where GNUInstallDirs says, that libufuse.so has the soname
#    libufuse.so.0 and exports exactly the functions of ufuse.h (nm -D), and
#    that libufuse.a defines them.
# 2. Compile examples/copyout.c against the staged library with
#    `pkg-config --cflags --libs ufuse` (PKG_CONFIG_PATH and
#    PKG_CONFIG_SYSROOT_DIR into the stage), and once more statically
#    against libufuse.a with `pkg-config --static`.
# 3. In a private mount namespace (so the host is not touched), overlay the
#    stage onto the real prefix, so that the paths compiled into the client
#    (bindir for ufuse-memfs, libdir/ufuse for the libfuse-2 hook) hold the
#    installed files, and hide the build and source trees under empty
#    tmpfs mounts: a client that picked the build tree's ufuse-memfs or hook
#    fails.  Then, with UFUSE_* unset and PATH without the build tree:
#      - the installed `ufuse` puts a file into bindfs (libfuse 2: needs the
#        installed hook) and copyout gets it back out (libufuse.so from the
#        stage, LD_LIBRARY_PATH); the bytes must match;
#      - the installed CLI round-trips a file through the built-in server;
#      - copyout reads a seeded file from `ufuse-memfs` found in PATH, and
#        with the built-in server found through its compiled-in path only.
# 4. The installed man pages render with groff without warnings.
#
# Environment (from tests/install/CMakeLists.txt): UFUSE_BUILD_DIR,
# UFUSE_SOURCE_DIR, UFUSE_VERSION, UFUSE_PREFIX and the full UFUSE_BINDIR,
# UFUSE_LIBDIR, UFUSE_INCLUDEDIR, UFUSE_MANDIR of the build's configuration.
# Exit: 0 pass, 1 fail, 77 skip (no private mount namespace: not root).
set -u
export LC_ALL=C
SELF=$(readlink -f "$0")

failures=0
checks=0
pass() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
# expect DESC CMD...: CMD must succeed (its output is shown when it fails).
expect() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass
    else
        fail "$desc (exit $?)"
        printf '%s\n' "$out" | sed 's/^/  | /' | head -40
    fi
}
finish() {
    echo "install: $checks checks, $failures failed"
    [ "$failures" -eq 0 ] && exit 0
    exit 1
}

# ---------------------------------------------------------------------
# Phase 3, run by the script itself inside `unshare -m`.
if [ "${1:-}" = "--in-namespace" ]; then
    set -e
    mount -t overlay ufuse-stage -o "lowerdir=$STAGE$OVER:$OVER" "$OVER"
    mount -t tmpfs ufuse-hide "$UFUSE_BUILD_DIR"
    mount -t tmpfs ufuse-hide "$UFUSE_SOURCE_DIR"
    set +e
    B=$UFUSE_BUILD_DIR
    unset UFUSE_BUILD_DIR UFUSE_SOURCE_DIR UFUSE_MEMFS UFUSE_FUSEHOOK LD_PRELOAD
    export PATH="$UFUSE_BINDIR:/usr/bin:/bin"
    cd "$W" || exit 1

    expect "the build tree is hidden" test ! -e "$B/ufuse-memfs"
    expect "the installed hook is at its compiled-in path" \
        test -f "$UFUSE_LIBDIR/ufuse/libufuse-fusehook.so"
    if [ "$(command -v ufuse)" = "$UFUSE_BINDIR/ufuse" ]; then pass; else
        fail "ufuse in PATH is $(command -v ufuse), not $UFUSE_BINDIR/ufuse"; fi
    run_copyout() { LD_LIBRARY_PATH="$STAGE$UFUSE_LIBDIR" ./copyout "$@"; }
    ldd_out=$(LD_LIBRARY_PATH="$STAGE$UFUSE_LIBDIR" ldd ./copyout)
    case $ldd_out in
    *"libufuse.so.0 => $STAGE$UFUSE_LIBDIR/libufuse.so.0 "*) pass ;;
    *) fail "copyout does not load the staged libufuse.so.0:"; echo "$ldd_out" ;;
    esac

    head -c 300001 /dev/urandom >data
    mkdir -p back
    # libfuse 2 (bindfs): the installed CLI and libufuse.so must each find
    # the installed hook; the file crosses from one session to the other
    # through bindfs's source directory.
    expect "installed ufuse puts a file into bindfs (hook)" \
        ufuse -s "bindfs -f $W/back" -c "put data /f"
    expect "it arrived in bindfs's directory" cmp data back/f
    rm -f out
    expect "copyout gets it back out of bindfs (hook)" \
        run_copyout -s "bindfs -f $W/back" /f out
    expect "copyout's copy is identical" cmp data out

    # The installed CLI with its built-in server (found next to itself).
    rm -f out
    expect "installed ufuse round-trips through the built-in server" \
        ufuse -c "put data /g" -c "get /g out"
    expect "the round trip is identical" cmp data out

    # copyout with ufuse-memfs named on its command line (found in PATH),
    # seeded with a file whose bytes are known.
    rm -f out
    expect "copyout from 'ufuse-memfs -o seed_file=...'" \
        run_copyout -s "ufuse-memfs -o seed_file=/s:300000" /s out
    python3 -c 'import sys; sys.stdout.buffer.write(bytes(((o * 2654435761) >> 13) & 0xff for o in range(300000)))' >seed
    expect "the seeded file is copied exactly" cmp seed out
    rm -f out
    expect "copyout-static (libufuse.a) copies it too" \
        ./copyout-static -s "ufuse-memfs -o seed_file=/s:300000" /s out
    expect "copyout-static's copy is exact" cmp seed out

    # The built-in server by default, with PATH not leading to it: the
    # library finds it at its compiled-in bindir (the file is not there:
    # only a started server answers ENOENT).
    err=$(PATH=/usr/bin:/bin run_copyout /missing out 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && [ "$err" = "copyout: /missing: No such file or directory" ]; then
        pass
    else
        fail "copyout with the built-in server found by its installed path: exit $rc, '$err'"
    fi
    finish
fi

# ---------------------------------------------------------------------
for v in UFUSE_BUILD_DIR UFUSE_SOURCE_DIR UFUSE_VERSION UFUSE_PREFIX UFUSE_BINDIR \
         UFUSE_LIBDIR UFUSE_INCLUDEDIR UFUSE_MANDIR; do
    if [ -z "${!v:-}" ]; then
        echo "$v is not set (run through ctest)" >&2
        exit 1
    fi
done
for tool in cmake cc pkg-config nm readelf ldd unshare bindfs python3 groff; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL: $tool is missing (make deps installs it)"
        exit 1
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/ufuse-install-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
STAGE=$T/stage
W=$T/work
mkdir -p "$W"
case "$T/" in
"$UFUSE_BUILD_DIR"/* | "$UFUSE_SOURCE_DIR"/*)
    echo "FAIL: the temporary directory $T is inside the build or source tree"
    exit 1 ;;
esac

# 1. The staged install.
if out=$(DESTDIR=$STAGE cmake --install "$UFUSE_BUILD_DIR" 2>&1); then pass; else
    fail "cmake --install"; echo "$out"; finish; fi
for f in "$UFUSE_BINDIR/ufuse" "$UFUSE_BINDIR/ufuse-memfs"; do
    expect "$f installed, executable" test -x "$STAGE$f"
done
L=$STAGE$UFUSE_LIBDIR
for f in "$L/libufuse.so.$UFUSE_VERSION" "$L/libufuse.a" "$L/ufuse/libufuse-fusehook.so" \
         "$L/pkgconfig/ufuse.pc" "$STAGE$UFUSE_INCLUDEDIR/ufuse.h" \
         "$STAGE$UFUSE_MANDIR/man1/ufuse.1" "$STAGE$UFUSE_MANDIR/man3/ufuse.3"; do
    expect "$f installed" test -f "$f"
done
expect "libufuse.so -> libufuse.so.0" test "$(readlink "$L/libufuse.so")" = libufuse.so.0
expect "libufuse.so.0 -> libufuse.so.$UFUSE_VERSION" \
    test "$(readlink "$L/libufuse.so.0")" = "libufuse.so.$UFUSE_VERSION"
expect "the installed header is include/ufuse.h" \
    cmp "$UFUSE_SOURCE_DIR/include/ufuse.h" "$STAGE$UFUSE_INCLUDEDIR/ufuse.h"
expect "the installed shared-cache header is include/ufuse_share.h" \
    cmp "$UFUSE_SOURCE_DIR/include/ufuse_share.h" "$STAGE$UFUSE_INCLUDEDIR/ufuse_share.h"

soname=$(readelf -d "$L/libufuse.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" = libufuse.so.0 ]; then pass; else fail "SONAME is '$soname', not libufuse.so.0"; fi

# Exported symbols: exactly the functions declared in the installed header.
# (The version node itself shows as an absolute symbol, type A.)
grep -oE '\bufuse_[a-z0-9_]+\(' "$STAGE$UFUSE_INCLUDEDIR/ufuse.h" | tr -d '(' | sort -u >"$T/api"
nm -D --defined-only "$L/libufuse.so" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' \
    | sort -u >"$T/exported"
if [ "$(wc -l <"$T/api")" -ge 40 ] && cmp -s "$T/api" "$T/exported"; then pass; else
    fail "libufuse.so's exports differ from ufuse.h's functions (< header, > library):"
    diff "$T/api" "$T/exported" | grep '^[<>]' | head -40
fi
if grep -qv '^ufuse_' "$T/exported"; then fail "non-ufuse_ exports:"; grep -v '^ufuse_' "$T/exported"; else pass; fi
nm -D --defined-only "$L/libufuse.so" | awk '$2 != "A" && $3 !~ /@@UFUSE_0$/ { print }' >"$T/unversioned"
if [ -s "$T/unversioned" ]; then fail "exports outside version UFUSE_0:"; cat "$T/unversioned"; else pass; fi
nm --defined-only "$L/libufuse.a" 2>/dev/null | awk '$2 == "T" && $3 ~ /^ufuse_/ { print $3 }' \
    | sort -u | comm -23 "$T/api" - >"$T/missing-static"
if [ -s "$T/missing-static" ]; then fail "libufuse.a lacks:"; cat "$T/missing-static"; else pass; fi

# 2. Build the example against the staged package.
export PKG_CONFIG_PATH=$L/pkgconfig PKG_CONFIG_SYSROOT_DIR=$STAGE
ver=$(pkg-config --modversion ufuse 2>&1)
if [ "$ver" = "$UFUSE_VERSION" ]; then pass; else fail "pkg-config --modversion ufuse: '$ver'"; fi
cp "$UFUSE_SOURCE_DIR/examples/copyout.c" "$W/"
cd "$W" || exit 1
# shellcheck disable=SC2046
expect "copyout.c compiles against the staged libufuse.so" \
    cc -std=gnu11 -Wall -Wextra -Werror -o copyout copyout.c $(pkg-config --cflags --libs ufuse)
# Statically: libufuse.a and its Libs.private / Requires.private.
# shellcheck disable=SC2046
expect "copyout.c links against the staged libufuse.a" \
    cc -std=gnu11 -Wall -Wextra -Werror -o copyout-static copyout.c \
    $(pkg-config --cflags ufuse) "$L/libufuse.a" $(pkg-config --static --libs ufuse | sed 's/-lufuse\b//')
if [ -x copyout-static ] && ! ldd copyout-static | grep -q libufuse; then pass; else
    fail "copyout-static is missing or loads libufuse.so"; fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

# 4. The man pages (before phase 3: finish exits there).
for page in "$STAGE$UFUSE_MANDIR/man1/ufuse.1" "$STAGE$UFUSE_MANDIR/man3/ufuse.3"; do
    warn=$(groff -man -Tascii -ww -z "$page" 2>&1)
    lines=$(groff -man -Tascii "$page" 2>/dev/null | wc -l)
    if [ -z "$warn" ] && [ "$lines" -gt 20 ]; then pass; else
        fail "$page: $lines lines rendered; groff says:"; echo "$warn" | head -20; fi
done

# 3. Use the installed tree in a private mount namespace.
if [ ! -x "$W/copyout" ]; then finish; fi
OVER=$UFUSE_PREFIX
while [ ! -d "$OVER" ]; do OVER=$(dirname "$OVER"); done
if [ "$OVER" = / ]; then
    fail "no existing directory above the prefix $UFUSE_PREFIX to overlay (other than /)"
    finish
fi
if ! unshare -m --propagation private true 2>/dev/null; then
    echo "install: $checks checks, $failures failed before the namespace phase"
    [ "$failures" -eq 0 ] || exit 1
    echo "SKIP: the installed-tree phase needs a private mount namespace (unshare -m: root)" >&2
    exit 77
fi
export STAGE W OVER
unshare -m --propagation private "$SELF" --in-namespace
ns_rc=$?
[ $ns_rc -eq 0 ] || fail "the installed-tree phase (in a mount namespace) exited $ns_rc"
finish
