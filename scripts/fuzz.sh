#!/usr/bin/env bash
# make fuzz: run the libFuzzer targets of build dir $1 (clang, see
# tests/fuzz/CMakeLists.txt) for FUZZ_TIME seconds in all (default 1800):
# fuzz-reply for a tenth of it (at least 10 s), fuzz-session for the rest,
# each with FUZZ_JOBS processes (-fork; default 2, one per core: the
# session target is mostly waiting on thread hand-offs, so on a busy
# machine more jobs than cores can pay).  The corpora persist in
# $1/fuzz-corpus/ (seeded from tests/fuzz/), crashes go to
# $1/fuzz-artifacts/.  Prints the executions done, and records the run in
# the figures block of docs/reliability.md (scripts/fuzz_figures.py).
# Exit status: 0, or 1 if a target found a crash, hang or leak.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
total=${FUZZ_TIME:-1800}
jobs=${FUZZ_JOBS:-2}
reply_time=$(( total / 10 < 10 ? 10 : total / 10 ))
session_time=$(( total - reply_time < 10 ? 10 : total - reply_time ))
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src include tests/fuzz 2>/dev/null || commit="$commit+dirty"
mkdir -p "$build/fuzz-corpus/reply" "$build/fuzz-corpus/session" "$build/fuzz-artifacts"
rc=0

# run NAME SECONDS SEEDS [extra libFuzzer flags...]
run() {
    local name=$1 secs=$2 seeds=$3
    shift 3
    local log="$build/fuzz-artifacts/$name.log"
    echo "== fuzz-$name: $secs s, $jobs jobs (log: $log)"
    local start=$SECONDS
    "$build/fuzz-$name" -fork="$jobs" -max_total_time="$secs" -timeout=30 \
        -rss_limit_mb=2048 -artifact_prefix="$build/fuzz-artifacts/" "$@" \
        "$build/fuzz-corpus/$name" "$seeds" >"$log" 2>&1
    local st=$? elapsed=$(( SECONDS - start ))
    # Fork mode's status lines: "#<executions>: cov: ... corp: <n> ...".
    local execs corp
    execs=$(grep -oE '^#[0-9]+:' "$log" | tail -1 | tr -d '#:')
    corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    local result=ok
    if [ "$st" -ne 0 ]; then
        result="FAILED (exit $st; see $log)"
        grep -E 'ERROR|SUMMARY|fuzz-session: step|Test unit written' "$log" | head -20
        rc=1
    fi
    printf '   %s executions in %s s (%s exec/s), corpus %s: %s\n' "${execs:-0}" "$elapsed" \
        "$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))" "${corp:-?}" "$result"
    python3 scripts/fuzz_figures.py docs/reliability.md "fuzz-$name" "$commit" "$jobs" \
        "$elapsed" "${execs:-0}" "${corp:-0}" "$result"
}

run reply "$reply_time" tests/fuzz/seeds
# -close_fd_mask=2: the library's messages about the fuzzer's replies would
# flood the log (sanitizer and libFuzzer reports still show).
# FUZZ_SESSION_INPUTS: a session serves up to that many inputs of the same
# config (tests/fuzz/fuzz-session.c: mount and unmount cost more than a
# short input's calls).
FUZZ_SESSION_INPUTS=${FUZZ_SESSION_INPUTS:-256} \
run session "$session_time" tests/fuzz/session-seeds -close_fd_mask=2 \
    -dict=tests/fuzz/session.dict
exit $rc
