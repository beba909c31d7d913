#!/usr/bin/env bash
# test-prev.sh BENCH BINDIR - the CTest test bench-prev: a second run into the
# same --out directory keeps the first run's latest.json as previous.json and
# shows every ratio's change against it, on the terminal and in latest.md;
# the first run, with nothing before it, shows none.  One cheap workload on
# one server (never judges a time).  Needs the kernel side (root and
# /dev/fuse) for ratios, else skipped.
set -uo pipefail
bench=$1 bin=$2
[ "$(id -u)" = 0 ] && [ -c /dev/fuse ] ||
    { echo "bench-prev: needs root and /dev/fuse for the kernel side; skipped" >&2; exit 77; }
out=$(mktemp -d "${TMPDIR:-/tmp}/bench-prev.XXXXXX")
trap 'rm -rf "$out"' EXIT
fail() { echo "bench-prev: $*" >&2; exit 1; }
run() { "$bench" --quick --only memfs --work stat_cached --out "$out" --bin "$bin" >"$out/$1" 2>"$out/$1.err" ||
            { cat "$out/$1.err" >&2; fail "run $1 failed"; }; }
run first
grep -q "(prev " "$out/first" "$out/latest.md" && fail "the first run shows changes from no run"
[ -e "$out/previous.json" ] && fail "the first run made a previous.json"
cp "$out/latest.json" "$out/first.json"
run second
cmp -s "$out/first.json" "$out/previous.json" || fail "previous.json is not the first run's latest.json"
for f in second second.err latest.md; do
    # one row per mode: "16.43 (prev 36.73, -55%)"
    n=$(grep -cE '[0-9]+\.[0-9]{2} \(prev [0-9]+\.[0-9]{2}, [-+][0-9]+%\)' "$out/$f")
    [ "$n" -ge 3 ] || { cat "$out/$f" >&2; fail "$f shows $n changes, expected one per mode"; }
done
grep -q "previous run" "$out/latest.md" || fail "latest.md does not say what it compares with"
echo "bench-prev: ok"
