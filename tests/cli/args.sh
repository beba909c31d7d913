#!/usr/bin/env bash
# cli-args: ufuse's own arguments - --help, --version, -o help, usage errors
# (exit 2, before any server is started) and mount errors (exit 1).
. "$(dirname "$0")/lib.sh"
SRC=${UFUSE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

# --version prints UFUSE_VERSION_STRING from the public header.
version=$(sed -n 's/^#define UFUSE_VERSION_STRING "\(.*\)"/\1/p' "$SRC/include/ufuse.h")
check "version string found in ufuse.h" test -n "$version"
run --version
expect_rc 0 "--version"
expect_out "ufuse $version" "--version"
run -V
expect_out "ufuse $version" "-V"

# --help: usage line, every option, every command of the spec.
run --help
expect_rc 0 "--help"
expect_match out '^Usage: ufuse \[-s SERVER\] \[-o OPT\[,OPT\.\.\.\]\]\.\.\. \[--stats\] \[-c CMD\]\.\.\. \[CMD \[ARG\.\.\.\]\]$' "--help usage line"
for opt in '-s SERVER' '-o OPT\[,OPT\]' '-c CMD' '--stats' '-h, --help' '-V, --version'; do
    expect_match out "^  $opt " "--help lists $opt"
done
for cmd in 'ls \[-l\]' 'cd ' 'pwd' 'stat PATH' 'cat PATH' 'get \[-r\] REMOTE \[LOCAL\]' \
           'put \[-r\] LOCAL \[REMOTE\]' 'mkdir \[-p\] PATH' 'rmdir PATH' 'rm \[-r\] PATH' \
           'mv FROM TO' 'ln \[-s\] TARGET LINK' 'readlink PATH' 'chmod MODE PATH' \
           'truncate SIZE PATH' 'df \[PATH\]' 'help' \
           'open \[-r\] \[-c\] \[-t\] \[-a\] \[-d\] PATH' 'pread \[-v\] OFF LEN' \
           'pwrite \[-S BYTE\] OFF LEN' 'fsync' 'fdatasync' 'ftruncate SIZE' 'fstat' 'close'; do
    expect_match out "^  $cmd" "--help lists '$cmd'"
done
expect_empty err "--help writes nothing to stderr"
run -h
expect_rc 0 "-h"
expect_match out '^Usage: ufuse' "-h"

# -o help: every mount option of ufuse_mount() with its default.
run -o help
expect_rc 0 "-o help"
expect_match out '^  cache=direct\|writethrough\|writeback\|auto' "-o help: cache"
expect_match out 'caching mode \[auto\]' "-o help: cache default"
expect_match out '^  cache_size=SIZE ' "-o help: cache_size"
expect_match out '\[256m\]$' "-o help: cache_size default"
expect_match out '^  block_size=SIZE ' "-o help: block_size"
expect_match out 'to max_read \[4k\]$' "-o help: block_size default"
expect_match out '^  readahead=SIZE ' "-o help: readahead"
expect_match out '0 = none \[4m\]$' "-o help: readahead default"
expect_match out '^  dirty_expire=SECONDS' "-o help: dirty_expire"
expect_match out 'back \[30\]$' "-o help: dirty_expire default"
expect_match out '^  timeout=SECONDS .*\[0\]' "-o help: timeout and default"
expect_match out '^  max_read=SIZE .*\[128k\]$' "-o help: max_read and default"
expect_match out '^  max_write=SIZE .*\[1m\]$' "-o help: max_write and default"
expect_match out '^  splice, nosplice ' "-o help: splice"
expect_match out '^  log=FILE' "-o help: log"
expect_match out '^  attach=auto\|devfd\|hook' "-o help: attach"
expect_match out 'libfuse.so.2 \[auto\]' "-o help: attach default"
expect_match out '^  server_name=NAME' "-o help: server_name"
run -o cache=direct,help
expect_rc 0 "-o help among other options"
expect_match out '^  log=FILE' "-o cache=direct,help prints the option help"

# Usage errors exit 2 and start no server: the server below would leave a
# marker file if it were run.
cat >"$T/server.sh" <<EOF
#!/bin/sh
touch "$T/started"
exit 1
EOF
chmod +x "$T/server.sh"
usage_case() { # DESC EXPECTED-STDERR-ERE ARGS...
    local desc=$1 ere=$2
    shift 2
    rm -f "$T/started"
    run -s "$T/server.sh" "$@"
    expect_rc 2 "$desc"
    expect_match err "$ere" "$desc: message"
    check "$desc: no server started" test ! -e "$T/started"
    expect_empty out "$desc: nothing on stdout"
}
usage_case "unknown option" "invalid option" -Z
usage_case "-c without a value" "requires an argument" -c
usage_case "-s given twice" "^ufuse: -s given twice$" -s x -c pwd
usage_case "unterminated quote in -c" "^ufuse: -c: cat 'x: unterminated single quote$" -c "cat 'x"
usage_case "unterminated double quote in -c" 'unterminated double quote$' -c 'cat "x'
usage_case "unknown command" '^ufuse: frobnicate: unknown command \(try: help\)$' -c pwd -c frobnicate
usage_case "unknown trailing command" '^ufuse: frobnicate: unknown command' frobnicate x
usage_case "too few operands" '^ufuse: mv: usage: mv FROM TO$' -c "mv a"
usage_case "too many operands" '^ufuse: pwd: usage: pwd$' -c "pwd x"
usage_case "unknown command option" '^ufuse: ls: -x: unknown option$' -c "ls -x /"
usage_case "option without its value" '^ufuse: pwrite: -S: option needs a value$' -c "pwrite -S"
usage_case "options after operands are operands" '^ufuse: pwrite: usage: ' -c "pwrite 0 1 -S 1"
run -s "'x" -c pwd
expect_rc 2 "bad -s quoting"
expect_match err "^ufuse: -s: 'x: unterminated single quote$" "bad -s quoting: message"

# The same server, with valid commands: it IS started (so the checks above
# were meaningful), and a server that exits before INIT fails the mount,
# after attach=auto tried it once more with the hook (as it would a server
# refusing /dev/fd/N), saying how it ended.
rm -f "$T/started"
run -s "$T/server.sh" -c pwd
expect_rc 1 "server exiting before INIT"
expect_err "ufuse: server.sh: the server ended before INIT with /dev/fd/N as its mountpoint; starting it again with attach=hook
ufuse: server 'server.sh' exited with status 1 before answering INIT" \
    "server exiting before INIT: the retry, then how it ended"
check "the server was started" test -e "$T/started"
expect_empty out "no command ran after a failed mount"

# A server that says why before it exits: everything it writes reaches our
# stderr as it comes, and the mount's message quotes its last 5 lines.
cat >"$T/talker" <<'EOF2'
#!/bin/sh
for i in 1 2 3 4 5 6; do echo "talker: line $i" >&2; done
printf '\n\ntalker: cannot open /srv: No such file\n' >&2
exit 3
EOF2
chmod +x "$T/talker"
run -s "$T/talker" -c pwd
expect_rc 1 "server failing with a message"
# (attach=auto starts it a second time with the hook: chan.c, A3.)
talk='talker: line 1
talker: line 2
talker: line 3
talker: line 4
talker: line 5
talker: line 6


talker: cannot open /srv: No such file'
expect_err "$talk
ufuse: talker: the server ended before INIT with /dev/fd/N as its mountpoint; starting it again with attach=hook
$talk
ufuse: server 'talker' exited with status 3 before answering INIT; its last lines of stderr:
  talker: line 3
  talker: line 4
  talker: line 5
  talker: line 6
  talker: cannot open /srv: No such file" "server failing with a message: relayed, then quoted"
printf '#!/bin/sh\nkill -SEGV $$\n' >"$T/crasher"
chmod +x "$T/crasher"
run -s "$T/crasher" -c pwd
expect_err "ufuse: crasher: the server ended before INIT with /dev/fd/N as its mountpoint; starting it again with attach=hook
ufuse: server 'crasher' was killed by signal 11 (Segmentation fault) before answering INIT" \
    "server killed before INIT"

# A server that cannot be started: what, and why.
mkdir -p "$T/bin" "$T/bin/adir"
printf '#!/bin/sh\n' >"$T/bin/notexec"
chmod 0644 "$T/bin/notexec"
printf '#!/no/such/interpreter\n' >"$T/bin/badinterp"
chmod 0755 "$T/bin/badinterp"
PATH=$T/bin:$PATH run -s "ufuse-no-such-server -f" -c pwd
expect_rc 1 "server not in PATH"
expect_err "ufuse: cannot start server 'ufuse-no-such-server': not found in PATH" \
    "server not in PATH: message"
PATH=$T/bin:$PATH run -s notexec -c pwd
expect_rc 1 "server in PATH not executable"
expect_err "ufuse: cannot start server 'notexec': $T/bin/notexec is not executable" \
    "server in PATH not executable: message"
PATH=$T/bin:$PATH run -s adir -c pwd
expect_err "ufuse: cannot start server 'adir': $T/bin/adir is a directory" \
    "a directory in PATH: message"
run -s "$T/no-such-server {}" -c pwd
expect_rc 1 "missing server"
expect_err "ufuse: cannot start server '$T/no-such-server': no such file" "missing server message"
run -s "$T/bin/notexec" -c pwd
expect_err "ufuse: cannot start server '$T/bin/notexec': not executable (permission denied)" \
    "server not executable: message"
run -s "$T/bin" -c pwd
expect_err "ufuse: cannot start server '$T/bin': is a directory" "server is a directory: message"
run -s "$T/bin/badinterp" -c pwd
expect_err "ufuse: cannot start server '$T/bin/badinterp': exec failed: No such file or directory (a missing #! interpreter or ELF loader?)" \
    "server with a missing interpreter: message"

# Bad mount options: the option, and what it takes.  No server is started.
opt_case() { # OPTIONS EXPECTED-STDERR
    rm -f "$T/started"
    run -s "$T/server.sh" -o "$1" -c pwd
    expect_rc 1 "-o $1"
    expect_err "$2" "-o $1: message"
    check "-o $1: no server started" test ! -e "$T/started"
}
opt_case no_such_option=1 "ufuse: unknown option 'no_such_option' (ufuse -o help lists them)"
opt_case foo "ufuse: unknown option 'foo' (ufuse -o help lists them)"
opt_case cache=bogus "ufuse: option cache=bogus: expected auto, writethrough, writeback or direct"
opt_case cache "ufuse: option cache: expected auto, writethrough, writeback or direct"
opt_case attach=x "ufuse: option attach=x: expected auto, devfd or hook"
opt_case cache_size=1k "ufuse: option cache_size=1k: out of range (1m to 1t)"
opt_case cache_size=lots "ufuse: option cache_size=lots: not a size (a number with an optional k, m, g or t suffix)"
opt_case max_read= "ufuse: option max_read=: needs a size from 4k to 1m"
opt_case block_size=12k "ufuse: option block_size=12k: not a power of two (4k to 1m)"
opt_case timeout=soon "ufuse: option timeout=soon: expected seconds from 0 to 86400"
opt_case dirty_expire=99999 "ufuse: option dirty_expire=99999: expected seconds from 0 to 86400"
opt_case splice=yes "ufuse: option splice=yes: takes no value"
opt_case nosplice=yes "ufuse: option nosplice=yes: takes no value"
opt_case log= "ufuse: option log=: needs a value (a file name)"
opt_case "log=$T/no/such/dir/log" "ufuse: option log=$T/no/such/dir/log: cannot open it: No such file or directory"

finish
