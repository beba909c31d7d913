# shellcheck shell=bash
# lib.sh - helpers for the CLI tests (sourced, not run).
#
# Each test script sources this, calls `run ...` to run build/ufuse with its
# stdout, stderr and exit status captured, checks them with the expect_*
# helpers (which count failures and go on), and ends with `finish`, which
# exits 0 or 1.  Environment: UFUSE_BUILD_DIR (set by ctest), where the
# ufuse binary and the built-in server are.
set -u

if [ -z "${UFUSE_BUILD_DIR:-}" ]; then
    echo "UFUSE_BUILD_DIR is not set (run through ctest)" >&2
    exit 1
fi
B=$UFUSE_BUILD_DIR
UFUSE=$B/ufuse
if [ ! -x "$UFUSE" ]; then
    echo "FAIL: $UFUSE does not exist (build the ufuse target)" >&2
    exit 1
fi
export TZ=UTC LC_ALL=C
T=$(mktemp -d "${TMPDIR:-/tmp}/ufuse-cli-test.XXXXXX")
trap 'chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T"' EXIT
failures=0
checks=0
rc=0

# run ARGS...: run ufuse with stdin from /dev/null.
run() {
    "$UFUSE" "$@" <"${RUN_STDIN:-/dev/null}" >"$T/out" 2>"$T/err"
    rc=$?
}

# run_stdin TEXT ARGS...: run ufuse with TEXT on stdin (a pipe).
run_stdin() {
    local text=$1
    shift
    printf '%s' "$text" >"$T/stdin"
    RUN_STDIN=$T/stdin run "$@"
}

_fail() {
    failures=$((failures + 1))
    echo "FAIL: $*"
    echo "  --- exit status $rc; stdout:"
    sed 's/^/  | /' "$T/out" | head -40
    echo "  --- stderr:"
    sed 's/^/  | /' "$T/err" | head -40
}

_pass() {
    checks=$((checks + 1))
}

# expect_rc N DESC
expect_rc() {
    if [ "$rc" -eq "$1" ]; then _pass; else _fail "$2: exit status $rc, want $1"; fi
}

# expect_out TEXT DESC: stdout is exactly TEXT (a trailing newline added).
expect_out() {
    if [ "$(cat "$T/out")" = "$1" ]; then _pass; else
        _fail "$2: stdout differs; want:"
        printf '%s\n' "$1" | sed 's/^/  > /'
    fi
}

# expect_err TEXT DESC: stderr is exactly TEXT.
expect_err() {
    if [ "$(cat "$T/err")" = "$1" ]; then _pass; else
        _fail "$2: stderr differs; want:"
        printf '%s\n' "$1" | sed 's/^/  > /'
    fi
}

# expect_line FILE(out|err) LINE DESC: FILE has LINE as a whole line.
expect_line() {
    if grep -qFx -- "$2" "$T/$1"; then _pass; else _fail "$3: no line '$2' in std$1"; fi
}

# expect_no_line FILE LINE DESC
expect_no_line() {
    if grep -qFx -- "$2" "$T/$1"; then _fail "$3: unexpected line '$2' in std$1"; else _pass; fi
}

# expect_match FILE ERE DESC: some line of FILE matches the extended regex.
expect_match() {
    if grep -qE -- "$2" "$T/$1"; then _pass; else _fail "$3: nothing matches /$2/ in std$1"; fi
}

# expect_empty FILE DESC
expect_empty() {
    if [ ! -s "$T/$1" ]; then _pass; else _fail "$2: std$1 is not empty"; fi
}

# check DESC COMMAND...: COMMAND must succeed.
check() {
    local desc=$1
    shift
    if "$@"; then _pass; else _fail "$desc"; fi
}

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$(basename "$0"): $failures of $((checks + failures)) checks FAILED"
        exit 1
    fi
    echo "$(basename "$0"): all $checks checks passed"
    exit 0
}
