#!/usr/bin/env bash
# Run the benchmark harness (issue 4) and draw its chart.
#   scripts/bench.sh [BUILD_DIR]      full run: bench/results/latest.{json,md,dat,svg}
#   QUICK=1 scripts/bench.sh [BUILD]  1-minute smoke run into $TMPDIR/ufuse-bench-quick
#                                     (never overwrites the committed results)
# Kernel and ufuse runs alternate within each workload.  The latest.json a
# run finds in its directory becomes previous.json: every ratio is printed
# with the previous run's and the change, "0.71 (prev 0.65, +9%)" (a quick
# run compares with the previous quick run).
# The kernel side needs root and /dev/fuse; without them ufuse runs alone.
# After a full run, paste latest.md into README.md's "## Benchmark" section.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/ufuse-bench"
[ -x "$bin" ] || { echo "bench: $bin not built (make)" >&2; exit 1; }
if [ "${QUICK:-0}" = 1 ]; then
  out="${TMPDIR:-/tmp}/ufuse-bench-quick"
  args=(--quick)
else
  out=bench/results
  args=()
fi
mkdir -p "$out"
"$bin" "${args[@]}" --out "$out" --bin "$build"
rc=$?
if [ -s "$out/latest.dat" ]; then
  if command -v gnuplot >/dev/null; then
    sub=$(sed -n '1s/^Measured \(.*\) on \([^;]*\);.*/\1, \2/p' "$out/latest.md")
    gnuplot -e "dat='$out/latest.dat'; out='$out/latest.svg'; subtitle='${sub//\'/}'" bench/plot.gp \
      && echo "bench: chart in $out/latest.svg"
  else
    echo "bench: gnuplot missing (make deps installs gnuplot-nox): no chart" >&2
  fi
  echo "bench: results in $out/latest.json, README table in $out/latest.md"
fi
exit $rc
