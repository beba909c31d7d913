#!/usr/bin/env bash
# reliability.sh DOC LOG... - regenerate the figures of docs/reliability.md
# from the tests' own output.
#
# Each LOG is a CTest log (BUILD/Testing/Temporary/LastTest.log) of a `make
# soak` phase, or NAME=FILE for a copy of one kept elsewhere (NAME: the
# build); its tests print "reliability: <row> | <figures>" once their
# assertions have passed.  The table between the markers
#   <!-- soak:begin -->  and  <!-- soak:end -->
# in DOC is replaced by one row per such line (the test, its result, its
# time), with the date and the commit it was run on.  A test that failed
# gets a row saying so.  Nothing outside the markers is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

doc=$1
shift
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src include tests tools 2>/dev/null || commit="$commit + local changes"

table=$(mktemp)
trap 'rm -f "$table"' EXIT
{
    echo "Run of \`make soak\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit," \
         "$(nproc) CPUs ($(uname -m), Linux $(uname -r | cut -d- -f1))."
    echo
    echo "| test (build) | what | how much, and what came out | result | time |"
    echo "|---|---|---|---|---|"
} >"$table"

for log in "$@"; do
    if [[ $log == *=* ]]; then
        build=${log%%=*}
        log=${log#*=}
    else
        build=$(basename "$(dirname "$(dirname "$(dirname "$log")")")")
    fi
    [ -f "$log" ] || { echo "reliability: no log $log" >&2; continue; }
    # One test's output lies between "N/M Test: name" and "Test Passed."
    # or "Test Failed."; its rows are printed when its end is seen.
    awk -v build="$build" '
        function flush(result,   i) {
            if (name == "") return
            if (n == 0)
                printf "| %s (%s) | - | no figures printed | %s | %s |\n", name, build, result, secs
            for (i = 1; i <= n; i++)
                printf "| %s (%s) | %s | %s | %s | %s |\n", name, build, what[i], figs[i], result, secs
            name = ""; n = 0
        }
        /^[0-9]+\/[0-9]+ Test: / { name = $3; n = 0; secs = ""; next }
        /^reliability: / && name != "" {
            line = substr($0, 14)
            k = index(line, " | ")
            n++
            what[n] = substr(line, 1, k - 1)
            figs[n] = substr(line, k + 3)
            next
        }
        /^Test time = / { secs = $4 " s"; next }
        /^Test Passed\./ { flush("pass"); next }
        /^Test Failed\./ || /^Test Fail/ { flush("**FAIL**"); next }
    ' "$log" >>"$table"
done

python3 - "$doc" "$table" <<'EOF'
import sys
doc, table = sys.argv[1], sys.argv[2]
begin, end = "<!-- soak:begin -->", "<!-- soak:end -->"
text = open(doc).read()
a, b = text.index(begin) + len(begin), text.index(end)
text = text[:a] + "\n" + open(table).read() + text[b:]
open(doc, "w").write(text)
EOF
echo "reliability: $doc regenerated"
