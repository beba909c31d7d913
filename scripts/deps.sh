#!/bin/sh
# deps.sh [build|check|tidy] - install the Debian packages ufuse needs, if
# any is missing.  Idempotent, quick (one dpkg-query) and quiet when
# everything is there.  Run as root, or as a user who has sudo.
#   build  what building ufuse and running `make demo` need (every make
#          target that builds runs this first); systemtap-sdt-dev gives
#          <sys/sdt.h>, for the USDT probes (docs/tracing.md)
#   check  (default) build, plus what the tests and benchmarks run: the
#          sanitizer runtimes and llvm-symbolizer (package llvm: without it
#          sanitizer reports have no function names), the real FUSE servers,
#          bpftrace (tests/trace runs tools/ufuse.bt)...
#   tidy   build, plus clang-tidy
set -e
BUILD_PKGS="build-essential cmake pkg-config
            libfuse3-dev libelf-dev libcmocka-dev linux-libc-dev
            systemtap-sdt-dev"
CHECK_PKGS="clang libclang-rt-14-dev llvm
            fuse3 libfuse2 libfuse-dev
            bindfs python3 sqlite3 busybox-static golang-go
            sshfs openssh-server openssh-client squashfuse squashfs-tools fuse-overlayfs fuse-zip archivemount gocryptfs
            moosefs-master moosefs-chunkserver moosefs-client glusterfs-server glusterfs-client iproute2
            gnuplot-nox
            groff-base
            bpftrace"
case "${1:-check}" in
build) PKGS=$BUILD_PKGS ;;
check) PKGS="$BUILD_PKGS $CHECK_PKGS" ;;
tidy)  PKGS="$BUILD_PKGS clang-tidy" ;;
*) echo "usage: $0 [build|check|tidy]" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086
missing=$(dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null |
          awk '$NF == "installed" { ok[$1] = 1 }
               END { n = split(want, w, " "); for (i = 1; i <= n; i++) if (!(w[i] in ok)) printf " %s", w[i] }' \
              want="$PKGS")
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps: these Debian packages are missing:$missing" >&2
        echo "deps: installing them needs root, and sudo is not installed:" >&2
        echo "deps: run the same make command as root, or as root: apt-get install$missing" >&2
        exit 1
    fi
    SUDO="sudo"
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: missing$missing, and no apt-get here (ufuse builds on Debian and derivatives)" >&2
    exit 1
fi
echo "deps: installing$missing" >&2
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"
$APT update -qq >/dev/null
# shellcheck disable=SC2086
$APT install -y -qq --no-install-recommends $missing >/dev/null
