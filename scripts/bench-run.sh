#!/usr/bin/env bash
# bench-run.sh BUILD - the `ufuse run` row group of `make bench` (issue 8):
# the same commands (bench/run-rows.sh: cat of a 1 GiB file cold and hot,
# tar x of a ~5,000-file tree, cp -r of it out, find | xargs stat, du -s,
# grep -r) through `ufuse run` and on a kernel FUSE mount of the same
# server binary in the same mode, kernel and ufuse interleaved.  Servers:
# ufuse-memfs and passthrough_ll (over /dev/shm); modes: writethrough and
# writeback (bench/harness.c's mode table).  Needs root and /dev/fuse for
# the kernel side (else skipped).  Writes bench/results/run-latest.md; the
# one it replaces becomes run-previous.md, and every ratio is shown with the
# previous run's and the change, "0.71 (prev 0.65, +9%)".
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
UFUSE=$B/ufuse
# The cached-call rows of bench/run-rows.sh.
[ -x "$B/run-sysloop-dyn" ] && export SYSLOOP="$(cd "$B" && pwd)/run-sysloop-dyn"
[ "$(id -u)" = 0 ] && [ -c /dev/fuse ] || { echo "bench-run: needs root and /dev/fuse; skipped" >&2; exit 0; }
tmp=$(mktemp -d /dev/shm/ufuse-bench-run.XXXXXX)
cleanup() {
    mountpoint -q "$tmp/kmnt" 2>/dev/null && fusermount3 -u "$tmp/kmnt"
    rm -rf "$tmp"
}
trap cleanup EXIT
# The tree: 5,000 files of 1-4 KiB in 100 directories, one word to find.
mkdir -p "$tmp/tree"
python3 - "$tmp/tree" <<'PY'
import os, random, sys
random.seed(7)
root = sys.argv[1]
for d in range(100):
    os.mkdir(f"{root}/d{d:03}")
    for f in range(50):
        with open(f"{root}/d{d:03}/f{f:02}.txt", "w") as fp:
            n = random.randint(1024, 4096)
            body = "".join(random.choice("abcdefghij \n") for _ in range(n))
            fp.write(body + ("needle\n" if (d * 50 + f) % 97 == 0 else ""))
PY
tar czf "$tmp/tree.tgz" -C "$tmp/tree" .
GIB=1073741824
out=bench/results/run-latest.md
prev=bench/results/run-previous.md
[ -s "$out" ] && cp "$out" "$tmp/prev.md"
{
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, Linux $(uname -r | cut -d- -f1), commit $(git rev-parse --short HEAD);"
    echo "single runs, kernel and ufuse interleaved. Ratio = kernel time / ufuse run time (> 1: ufuse faster)."
    [ -s "$tmp/prev.md" ] && echo "Every ratio with the previous run's ($(sed -n '1s/^Measured \([^;]*\) on .*/\1/p' "$tmp/prev.md"), run-previous.md) and the change."
    echo
    echo "| server, mode | row | kernel mount (ms) | ufuse run (ms) | ratio |"
    echo "|---|---|---|---|---|"
} >"$out.tmp"

# server_cmd SERVER MODE MOUNTPOINT: the server's command line.
server_cmd() {
    local srv=$1 mode=$2 mnt=$3 opt=""
    [ "$mode" = writeback ] && opt=writeback
    case $srv in
    memfs) echo "$B/ufuse-memfs -o seed_file=/big:$GIB${opt:+,$opt} $mnt" ;;
    passthrough_ll) echo "$B/passthrough_ll -f -o source=$tmp/backing${opt:+,$opt} $mnt" ;;
    esac
}

# wait_mount DIR PID: until DIR is a mount point, false if the server PID
# exits first or 120 s pass (ufuse-memfs seeds 1 GiB before it mounts: over
# a minute was seen on a loaded machine).
wait_mount() {
    for _ in $(seq 1200); do
        mountpoint -q "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

rc=0
for srv in memfs passthrough_ll; do
    [ -x "$B/$( [ $srv = memfs ] && echo ufuse-memfs || echo passthrough_ll)" ] || continue
    for mode in writethrough writeback; do
        for side in kernel ufuse; do
            rm -rf "$tmp/backing" "$tmp/out" && mkdir -p "$tmp/backing" "$tmp/out" "$tmp/kmnt"
            [ $srv = passthrough_ll ] && head -c $GIB /dev/zero >"$tmp/backing/big"
            sync
            echo 3 >/proc/sys/vm/drop_caches
            if [ $side = kernel ]; then
                $(server_cmd $srv $mode "$tmp/kmnt") >"$tmp/server.log" 2>&1 &
                spid=$!
                if wait_mount "$tmp/kmnt" $spid; then
                    bench/run-rows.sh "$tmp/kmnt" "$tmp/tree.tgz" "$tmp/out" >"$tmp/$side" 2>&1
                    fusermount3 -u "$tmp/kmnt"
                else
                    echo "bench-run: $srv ($mode) did not mount; its log:" >&2
                    cat "$tmp/server.log" >&2
                    kill $spid 2>/dev/null
                    : >"$tmp/$side"
                    rc=1
                fi
                wait $spid
            else
                s=$(server_cmd $srv $mode "{}")
                "$UFUSE" run -s "$s" -o "cache=$mode,log=$tmp/server.log" -m /ufuse-bench -- \
                    bench/run-rows.sh /ufuse-bench "$tmp/tree.tgz" "$tmp/out" >"$tmp/$side" 2>&1
            fi
        done
        while read -r row k; do
            u=$(awk -v r="$row" '$1 == r { print $2 }' "$tmp/ufuse")
            [ -n "$u" ] && [ "$u" -gt 0 ] || continue
            # the previous ratio of this row: its 6th |-field, up to a blank
            p=$(awk -F' *[|] *' -v s="$srv, $mode" -v r="$row" \
                '$2 == s && $3 == r { split($6, a, " "); print a[1] }' "$tmp/prev.md" 2>/dev/null)
            awk -v s="$srv, $mode" -v r="$row" -v k="$k" -v u="$u" -v p="$p" 'BEGIN {
                q = k / u; c = ""
                if (p + 0 > 0)
                    c = sprintf(" (prev %.2f, %+.0f%%)", p, (q / p - 1) * 100)
                printf "| %s | %s | %.1f | %.1f | %.2f%s |\n", s, r, k / 1000, u / 1000, q, c }'
        done <"$tmp/kernel" | tee -a "$out.tmp"
    done
done
[ -s "$tmp/prev.md" ] && mv "$out" "$prev"
mv "$out.tmp" "$out"
echo "bench-run: table in $out"
exit $rc
