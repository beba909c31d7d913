#!/bin/sh
# Install the Debian packages ufuse needs to build and test, if any is missing.
# Idempotent and quiet when everything is there.  Run as root (or via sudo).
set -e
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
      libfuse3-dev fuse3 libfuse2 libfuse-dev libelf-dev linux-libc-dev
      bindfs python3 libcmocka-dev
      sshfs openssh-server openssh-client squashfuse squashfs-tools fuse-overlayfs fuse-zip archivemount gocryptfs
      moosefs-master moosefs-chunkserver moosefs-client glusterfs-server glusterfs-client iproute2
      gnuplot-nox
      groff-base"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
