#!/usr/bin/env bash
# cli-session: how commands reach a session - -c order, the trailing
# command, shell-like splitting, standard input (pipe and terminal), the
# first failing command, exit codes, -s SERVER splitting and {}, -o joining,
# and the --stats table.
# shellcheck disable=SC2016  # single quotes keep $ and \ for ufuse to see
# shellcheck disable=SC2317  # functions called through check
. "$(dirname "$0")/lib.sh"
umask 022
printf 'hello world\n' >"$T/hello"

# -c commands run in order, in one session (state carries over).
run -c "mkdir /a" -c "put $T/hello /a/h" -c "ls /a" -c "cat /a/h" -c "cd /a" -c pwd
expect_rc 0 "-c sequence"
expect_out "h
hello world
/a" "-c commands run in order in one session"
expect_empty err "-c sequence: no messages"

# The trailing command runs after every -c, and is not split again.
run -c "mkdir '/x y'" -c "cd '/x y'" stat "/x y"
expect_rc 0 "trailing command"
expect_line out "  File: /x y" "trailing command runs last, its words kept whole"
run -c "mkdir /t" ls /
expect_out "t" "trailing command after -c"
run mkdir /only
expect_rc 0 "a trailing command alone"
expect_empty out "a trailing command alone: no output"

# Shell-like splitting: single and double quotes, backslashes, comments.
run -c 'mkdir "/a b" /c\ d '"'/e\"f'"' "/g\$h" "/i\\j"' -c 'ls / # a comment' -c '' -c '# only a comment'
expect_rc 0 "splitting"
expect_out 'a b
c d
e"f
g$h
i\j' "quotes and backslashes split like a shell"

# Commands from standard input (a pipe): no prompt; blank lines and # lines
# are skipped; leading blanks are fine.
run_stdin $'mkdir /s\n\n# a comment\n   \n  ls /\npwd\n'
expect_rc 0 "stdin"
expect_out "s
/" "stdin commands, blanks and comments skipped, no prompt"
expect_empty err "stdin: no messages"
run_stdin $'pwd\nquit\npwd\n'
expect_rc 0 "quit"
expect_out "/" "quit ends the session"
run_stdin $'pwd\nexit\npwd\n'
expect_out "/" "exit ends the session"
run_stdin 'pwd'
expect_out "/" "a last line without a newline still runs"

# The first failing command prints "ufuse: CMD: ARG: strerror", ends the
# session (the rest does not run) and ufuse exits 1.
run -c pwd -c "cat /nope" -c pwd
expect_rc 1 "failing -c"
expect_out "/" "commands after the failing one do not run"
expect_err "ufuse: cat: /nope: No such file or directory" "error message format"
run -c "mkdir /d" -c "cd /d" -c "cat nope"
expect_err "ufuse: cat: nope: No such file or directory" "ARG is the path as written"
run cat /nope
expect_rc 1 "failing trailing command"
expect_err "ufuse: cat: /nope: No such file or directory" "failing trailing command message"
run_stdin $'pwd\ncat /nope\npwd\n'
expect_rc 1 "failing stdin command"
expect_out "/" "stdin: the session ends at the first failure"
expect_err "ufuse: cat: /nope: No such file or directory" "stdin failure message"
run_stdin $'pwd\nfrobnicate\npwd\n'
expect_rc 2 "unknown command on stdin is a usage error"
expect_out "/" "stdin: the session ends at a usage error"
expect_err "ufuse: frobnicate: unknown command (try: help)" "unknown command message"
run_stdin $'pwd\nmv a\npwd\n'
expect_rc 2 "wrong operand count on stdin"
expect_err "ufuse: mv: usage: mv FROM TO" "operand count message"
run_stdin $'cat "x\npwd\n'
expect_rc 2 "bad quoting on stdin"
expect_err "ufuse: unterminated double quote" "bad quoting message"

# At a terminal: a prompt, and errors do not end the session (exit 1 at
# the end).  script(1) (util-linux) provides the terminal.
if command -v script >/dev/null; then
    printf 'cat /nope\nmkdir /tty\nls /\n' >"$T/tty-in"
    timeout 60 script -qec "$UFUSE" /dev/null <"$T/tty-in" >"$T/out" 2>"$T/err"
    rc=$?
    tr -d '\r' <"$T/out" >"$T/out.txt" && mv "$T/out.txt" "$T/out"
    expect_rc 1 "terminal session with a failure"
    expect_match out '^ufuse> ' "prompt at a terminal"
    expect_match out 'ufuse: cat: /nope: No such file or directory' "error shown at a terminal"
    expect_match out '(^|ufuse> )tty$' "the session went on after the error"
else
    echo "note: script(1) missing, terminal checks not run"
fi

# -s SERVER is split like a shell; the mountpoint replaces {} or is
# appended.  The "server" is a script (its name has a space) recording its
# argv, then running the built-in server on the mountpoint argument.
if [ -x "$B/ufuse-memfs" ]; then
    cat >"$T/my server" <<EOF
#!/bin/sh
printf '[%s]\n' "\$@" >"$T/argv"
exec "$B/ufuse-memfs" "\$4"
EOF
    chmod +x "$T/my server"
    run -s "'$T/my server' 'a b' c\\ d \"e\\\"f\" {} -x" -c "mkdir /via-s" -c "ls /"
    expect_rc 0 "-s with quoting and {}"
    expect_out "via-s" "-s: the session works through the given server"
    check "-s: words split like a shell, {} replaced by the mountpoint" \
        grep -qzE '^\[a b\]
\[c d\]
\[e"f\]
\[[^]]+\]
\[-x\]
$' "$T/argv"
    cat >"$T/appended" <<EOF
#!/bin/sh
printf '[%s]\n' "\$@" >"$T/argv"
for last; do :; done
exec "$B/ufuse-memfs" "\$last"
EOF
    chmod +x "$T/appended"
    run -s "$T/appended one two" -c pwd
    expect_rc 0 "-s without {}"
    check "-s: the mountpoint is appended without {}" \
        grep -qzE '^\[one\]
\[two\]
\[[^]]+\]
$' "$T/argv"
    run -s "$B/ufuse-memfs" -c "mkdir /m" -c "ls /"
    expect_out "m" "-s naming the built-in server explicitly"
else
    _fail "$B/ufuse-memfs is missing: -s checks not run"
fi

# Several -o are joined with commas and all reach ufuse_mount().
run -o cache=direct -o timeout=30 -c pwd
expect_rc 0 "two valid -o"
expect_out "/" "two valid -o"
run -o cache=direct -o no_such_option=1 -c pwd
expect_rc 1 "the second -o reaches ufuse_mount()"
expect_err "ufuse: unknown option 'no_such_option' (ufuse -o help lists them)" "bad second -o"

# --stats: a table on stderr at exit; stdout keeps only command output.
head -c 65536 /dev/urandom >"$T/64k"
run --stats -c "put $T/64k /f" -c "open /f" -c "pread 0 64k" -c pwd
expect_rc 0 "--stats"
expect_out "read 65536/65536 bytes at offset 0
/" "--stats leaves stdout alone"
expect_match err '^opcode +count +errors +bytes +mean\(us\) +p99\(us\) +max\(us\)$' "--stats header"
# row NAME CONDITION: the table's row NAME ($2 count, $3 errors, $4 bytes)
# satisfies the awk CONDITION.
row() { awk -v n="$1" '$1 == n { found = 1; if (!('"$2"')) bad = 1 }
                       END { exit !(found && !bad) }' "$T/err"; }
check "--stats WRITE row: sent, no errors, >= 64 KiB of payload" row WRITE '$2 > 0 && $3 == 0 && $4 >= 65536'
check "--stats READ row: sent, no errors, >= 64 KiB of payload" row READ '$2 > 0 && $3 == 0 && $4 >= 65536'
# put's check of its destination ("/f" does not exist yet) is a LOOKUP
# answered with ENOENT: an error in the table.
check "--stats LOOKUP row counts the ENOENT" row LOOKUP '$2 > 0 && $3 > 0'
check "--stats rows have a mean, a p99 no larger than the max, and a max latency" \
    awk '$1 == "WRITE" { ok = ($5 ~ /^[0-9]+\.[0-9]$/ && $6 ~ /^[0-9]+\.[0-9]$/ &&
                               $7 ~ /^[0-9]+\.[0-9]$/ && $6 + 0 <= $7 + 0) } END { exit !ok }' "$T/err"
expect_match err '^thread wake-ups: [0-9]+ \([0-9.]+ per request\)$' "--stats wake-ups line"
expect_match err '^total +[1-9][0-9]* +[1-9][0-9]* +[1-9][0-9]*$' "--stats total row"
check "--stats total equals the sum of the rows" \
    awk '$1 != "opcode" && $1 != "total" { n += $2 } $1 == "total" { t = $2 }
         END { exit !(n == t && t > 0) }' "$T/err"
run -c pwd
expect_empty err "no table without --stats"

# --stats with the page cache: "cache WORD:" lines after the table, from
# ufuse_cacheinfo().  The open drops the pages put left (ufuse-memfs sets no
# keep_cache), the first pread misses, the second finds all 16 pages.
run -o cache=writethrough --stats -c "put $T/64k /f" -c "open -r /f" -c "pread 0 64k" \
    -c "pread 0 64k"
expect_rc 0 "--stats, cache=writethrough"
expect_line err "cache budget: 256 MiB (65536 pages of 4 KiB), 4 KiB blocks" \
    "--stats cache budget line: the defaults"
check "--stats cache reads: the second pread hit every page, the first missed" \
    awk '/^cache reads: / { ok = ($3 >= 16 && $6 >= 1) } END { exit !ok }' "$T/err"
expect_match err '^cache memory: at most [1-9][0-9]* of 65536 pages held, [0-9]+ evicted; now [0-9]+ held, 0 dirty, 0 under write-back$' \
    "--stats cache memory line"
# Write-back: put's 16 dirty pages go out when its file is closed, every
# WRITE of the session is a write-back WRITE.
run -o cache=writeback,cache_size=1m,block_size=16k --stats -c "put $T/64k /f"
expect_rc 0 "--stats, cache=writeback"
expect_line err "cache budget: 1 MiB (256 pages of 4 KiB), 16 KiB blocks" \
    "--stats cache budget line: cache_size= and block_size="
check "--stats cache writes: 16 pages written back, in as many WRITEs as the WRITE row" \
    awk '$1 == "WRITE" { w = $2 } /^cache writes: / { p = $3; n = $8 }
         END { exit !(p == 16 && n >= 1 && n == w) }' "$T/err"
run -o cache=direct --stats -c pwd
check "--stats: no cache lines under cache=direct" \
    awk '/^cache / { bad = 1 } END { exit bad }' "$T/err"

# -o log=FILE: the server's stderr and ufuse's own messages go to the file,
# not to our stderr.  A server that rejects its options says so there, and
# the mount's message (ours, on stderr) quotes it.
rm -f "$T/server.log"
run -o "log=$T/server.log" -s "$B/ufuse-memfs -o no_such_memfs_option" -c pwd
expect_rc 1 "log=: the server fails to start"
if grep -q "no_such_memfs_option" "$T/server.log" 2>/dev/null; then
    _pass "log=: the server's complaint is in the log file"
else
    _fail "log=: the server's complaint is in the log file"
fi
expect_err "ufuse: server 'ufuse-memfs' exited with status 2 before answering INIT; its last lines of stderr:
  fuse: unknown option(s): \`-o no_such_memfs_option'" \
    "log=: the server's complaint is quoted by the mount's message only"

# A failure that is the server's fault names the server and the request:
# here it dies after answering INIT and one more request.
run -s "$B/ufuse-memfs -o die_after=2" -c "ls /"
expect_rc 1 "a dying server fails the command"
expect_match err '^ufuse: ufuse-memfs: [A-Z]+ /: Transport endpoint is not connected$' \
    "the server at fault is named, with the request that failed"
# An ordinary error stays in the command's words.
run -c "cat /nope"
expect_match err '^ufuse: cat: /nope: No such file or directory$' "an ordinary error names the command"

# A caller with its stdout and stderr closed: the server's socket and its
# stderr pipe must not land on fds 1 or 2 (the spawn sets the server's 2;
# the server would then wait for requests on its stderr pipe: a hang).
timeout 60 "$UFUSE" -c "mkdir /closed-stdio" -c "rmdir /closed-stdio" </dev/null >&- 2>&-
rc=$?
expect_rc 0 "a session with stdout and stderr closed"

finish
