#!/usr/bin/env bash
# fresh-machine.sh - check a release from a brand-new machine: build a
# Debian bookworm minbase root file system with debootstrap, give it only
# the toolchain a stock image ships (gcc, make, cmake, git, clang, python3,
# pkg-config: no libfuse, nothing else), clone this repository into it, and
# run the README's first command, `make demo`, in a chroot; with --check,
# `make check` after it.  Exits with the first failing command's status.
#
#   scripts/fresh-machine.sh [--check] [--cache DIR] [--root DIR] [--keep] [SOURCE]
#
#   SOURCE       a git repository (its HEAD is cloned) or a commit of the
#                repository this script is in [that repository's HEAD].
#                Only committed work is checked: the clone is clean.
#   --check      run `make check` after `make demo` (adds the test packages,
#                three builds and the whole suite: tens of minutes).
#   --cache DIR  keep the stock root (minbase + toolchain, before anything of
#                ufuse) as DIR/bookworm-minbase-toolchain.tar and start
#                from it next time: a rerun skips debootstrap and the
#                toolchain's download.
#   --root DIR   build the root in DIR (empty or missing; kept afterwards)
#                [a new directory under /var/tmp, removed at the end].
#   --keep       keep the root even when it was a temporary one.
#
# Needs root (debootstrap, mount, chroot) and the network to Debian's
# mirror; installs debootstrap with apt-get if it is missing.  /dev (and
# /dev/pts), /proc and /sys are bound into the root, with the host's
# resolv.conf and apt sources so that apt works there, and the root is bound
# onto itself (so that / is a mount point in the chroot, as on a real
# machine); every mount is undone on every way out (trap), before anything
# is removed.
set -euo pipefail

SUITE=bookworm
TOOLCHAIN="gcc make cmake git clang python3 pkg-config"
here=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    sed -n '/^#   scripts/,/^#   --keep/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
check=0 cache="" root="" keep=0 source=""
while [ $# -gt 0 ]; do
    case "$1" in
    --check) check=1 ;;
    --cache) cache=${2:?--cache needs a directory}; shift ;;
    --root) root=${2:?--root needs a directory}; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage ;;
    -*) echo "fresh-machine: unknown option $1" >&2; usage ;;
    *) [ -z "$source" ] || usage; source=$1 ;;
    esac
    shift
done
if [ "$(id -u)" -ne 0 ]; then
    echo "fresh-machine: needs root (debootstrap, mount, chroot)" >&2
    exit 1
fi

# What to clone: a repository's HEAD, or a commit of ours.
if [ -z "$source" ]; then
    repo=$here commit=$(git -C "$here" rev-parse HEAD)
elif [ -d "$source" ]; then
    repo=$(cd "$source" && pwd) commit=$(git -C "$source" rev-parse HEAD)
else
    repo=$here commit=$(git -C "$here" rev-parse --verify "$source^{commit}")
fi

t0=$(date +%s)
phase() { printf '== fresh-machine [%4ss] %s\n' $(($(date +%s) - t0)) "$*"; }

if [ -z "$root" ]; then
    root=$(mktemp -d /var/tmp/ufuse-fresh.XXXXXX)
    chmod 0755 "$root"    # a root file system: other users (_apt, tests) walk it
    own_root=1
else
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
    own_root=0
    if [ -n "$(ls -A "$root")" ]; then
        echo "fresh-machine: $root is not empty" >&2
        exit 1
    fi
fi

# Mounts, innermost last; cleanup undoes them in reverse order.
mounts=()
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM HUP
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" ||
            echo "fresh-machine: could not unmount ${mounts[i]}" >&2
    done
    # Never remove a tree that still has something mounted in it.
    if findmnt -rn -o TARGET | awk -v r="$root" '$0 == r || index($0, r "/") == 1 { f = 1 }
                                                END { exit !f }'; then
        echo "fresh-machine: mounts left under $root; not removing it" >&2
    elif [ "$own_root" = 1 ] && [ "$keep" = 0 ]; then
        rm -rf --one-file-system "$root"
    else
        echo "fresh-machine: root kept in $root"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

bind() { # SRC DST [ro]: a directory or a file
    if [ -d "$1" ]; then mkdir -p "$2"; else touch "$2"; fi
    mount --bind "$1" "$2"
    mounts+=("$2")
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
enter() { # COMMAND: run a shell command in the root, with a clean environment
    env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        chroot "$root" /bin/bash -c "$1"
}
mount_all() {
    # The root a mount point of its own, as on a real machine: tests that
    # make their mount namespace private (mount --make-rprivate /) need it.
    bind "$root" "$root"
    bind /dev "$root/dev"
    bind /dev/pts "$root/dev/pts"
    mkdir -p "$root/proc"
    mount -t proc proc "$root/proc"
    mounts+=("$root/proc")
    bind /sys "$root/sys"
    # apt needs names resolved and the host's mirror: the host's files,
    # read-only, in place of the root's own.
    bind /etc/resolv.conf "$root/etc/resolv.conf" ro
    if [ -d /etc/apt/sources.list.d ]; then
        bind /etc/apt/sources.list.d "$root/etc/apt/sources.list.d" ro
        if [ -s /etc/apt/sources.list ]; then
            bind /etc/apt/sources.list "$root/etc/apt/sources.list" ro
        else
            : >"$root/etc/apt/sources.list"
        fi
    fi
}

# ---- the stock root: minbase + the toolchain --------------------------------
tarball=${cache:+$cache/$SUITE-minbase-toolchain.tar}
if [ -n "$tarball" ] && [ -s "$tarball" ]; then
    phase "unpacking the cached stock root $tarball into $root"
    tar -xpf "$tarball" -C "$root"
    chmod 0755 "$root"
    mount_all
else
    if ! command -v debootstrap >/dev/null; then
        phase "installing debootstrap"
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
    fi
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    phase "debootstrap --variant=minbase $SUITE $root $mirror"
    debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
        { tail -20 "$root.debootstrap.log" >&2; rm -f "$root.debootstrap.log"; exit 1; }
    rm -f "$root.debootstrap.log"
    mount_all
    phase "installing the stock toolchain: $TOOLCHAIN"
    enter "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >/dev/null &&
           apt-get install -y -qq --no-install-recommends $TOOLCHAIN >/dev/null && apt-get clean"
    if [ -n "$tarball" ]; then
        phase "saving the stock root as $tarball"
        mkdir -p "$cache"
        tar -cpf "$tarball.tmp" -C "$root" --one-file-system \
            --exclude=./dev --exclude=./proc --exclude=./sys . &&
            mv "$tarball.tmp" "$tarball"
    fi
fi

# ---- a clean clone, and the newcomer's first command ------------------------
phase "cloning $repo at $commit"
git clone -q --no-hardlinks "$repo" "$root/root/ufuse"
git -C "$root/root/ufuse" checkout -q --detach "$commit"

phase "make demo (the first command)"
enter 'cd /root/ufuse && make demo'
phase "make demo passed"
if [ "$check" = 1 ]; then
    phase "make check"
    enter 'cd /root/ufuse && make check'
    phase "make check passed"
fi
phase "done: $(git -C "$repo" log -1 --format='%h %s' "$commit")"
