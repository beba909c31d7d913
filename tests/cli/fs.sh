#!/usr/bin/env bash
# cli-fs: the sftp-like commands - ls, cd, pwd, stat, cat, mkdir, rmdir, rm,
# mv, ln, readlink, chmod, truncate, df, info, help - their output and their
# errors.  Each run is a fresh server, so each sets up what it needs.
. "$(dirname "$0")/lib.sh"
umask 022
printf 'hello world\n' >"$T/hello"
TIME='[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}'
FULLTIME='[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9} \+0000'

# mkdir, mkdir -p, ls (sorted, dot files hidden unless -a), cd, pwd, cat.
run -c "mkdir /d /e" -c "mkdir -p /d/x/y /d/x /e" -c "put $T/hello /d/hello" \
    -c "put $T/hello /d/.hidden" -c "ls /" -c "cd /d" -c pwd -c ls -c "ls -a" \
    -c "cat hello" -c "cd x/y" -c pwd -c "cd ../.." -c pwd -c "cd ./x/../x/." -c pwd \
    -c "cd" -c pwd -c "ls d/x d/hello"
expect_rc 0 "namespace session"
expect_out "d
e
/d
hello
x
.hidden
hello
x
hello world
/d/x/y
/d
/d/x
/
d/hello

d/x:
y" "mkdir, ls, ls -a, cd, pwd, cat"
expect_empty err "namespace session: no messages"

# cat of several files concatenates them; cat of an empty file is empty.
: >"$T/empty"
run -c "put $T/hello /a" -c "put $T/empty /b" -c "cat /a /b /a"
expect_out "hello world
hello world" "cat concatenates"

# ls -l: mode string, links, uid, gid, size, mtime, name, -> target.
run -c "mkdir /d" -c "put $T/hello /d/f" -c "chmod 640 /d/f" -c "ln -s f /d/sl" \
    -c "ln /d/f /d/hard" -c "ls -l /d" -c "ls -l /d/sl" -c "ls /d/sl"
expect_rc 0 "ls -l session"
expect_match out "^-rw-r----- 2 [0-9]+ [0-9]+ 12 $TIME f$" "ls -l of a file"
expect_match out "^-rw-r----- 2 [0-9]+ [0-9]+ 12 $TIME hard$" "ls -l of a hard link (2 links)"
expect_match out "^lrwxrwxrwx 1 [0-9]+ [0-9]+ +1 $TIME sl -> f$" "ls -l of a symlink"
expect_match out "^lrwxrwxrwx 1 [0-9]+ [0-9]+ 1 $TIME /d/sl -> f$" "ls -l of a symlink operand shows the link"
expect_line out "/d/sl" "plain ls of a symlink operand follows it to a file"
check "ls -l lists 3 entries, then the operand" test "$(wc -l <"$T/out")" -eq 5
run -c "mkdir /sub" -c "ls -l /"
expect_match out "^drwxr-xr-x +[0-9]+ [0-9]+ [0-9]+ +[0-9]+ $TIME sub$" "ls -l of a directory (mkdir honours umask 022)"

# stat: like stat(1).
run -c "mkdir /d" -c "put $T/hello /d/f" -c "chmod 604 /d/f" -c "ln -s d/f /sl" \
    -c "put $T/empty /e" -c "stat /d/f" -c "stat /sl /d /e"
expect_rc 0 "stat"
expect_line out "  File: /d/f" "stat: File"
expect_match out '^  Size: 12 +Blocks: [0-9]+ +IO Block: [0-9]+ +regular file$' "stat: size and type"
expect_match out '^ Inode: [0-9]+ +Links: 1$' "stat: inode and links"
expect_match out '^Access: \(0604/-rw----r--\)  Uid: [0-9]+  Gid: [0-9]+$' "stat: mode, uid, gid"
expect_match out "^Access: $FULLTIME$" "stat: atime"
expect_match out "^Modify: $FULLTIME$" "stat: mtime"
expect_match out "^Change: $FULLTIME$" "stat: ctime"
expect_line out "  File: /sl -> d/f" "stat of a symlink names its target"
expect_match out '^  Size: 3 +Blocks: [0-9]+ +IO Block: [0-9]+ +symbolic link$' "stat does not follow symlinks"
expect_match out '^  Size: [0-9]+ +Blocks: [0-9]+ +IO Block: [0-9]+ +directory$' "stat of a directory"
expect_match out '^Access: \(0755/drwxr-xr-x\)' "stat of a directory: mode"
expect_match out '^  Size: 0 +Blocks: [0-9]+ +IO Block: [0-9]+ +regular empty file$' "stat of an empty file"
check "stat printed 4 blocks of 7 lines" test "$(wc -l <"$T/out")" -eq 28

# mv (rename; into a directory), ln (hard, -s, into a directory), readlink.
run -c "mkdir /d /e" -c "put $T/hello /d/f" -c "mv /d/f /d/g" -c "mv /d/g /e" \
    -c "ln /e/g /d/hard" -c "ln -s ../e/g /d/soft" -c "ln -s /abs/target /e" \
    -c "ls /d /e" -c "readlink /d/soft /e/target" -c "cat /d/soft" -c "cd /d" -c "mv hard h2" -c "ls"
expect_rc 0 "mv/ln/readlink"
expect_out "/d:
hard
soft

/e:
g
target
../e/g
/abs/target
hello world
h2
soft" "mv, ln, ln -s, readlink"

# chmod (octal, several paths), truncate (number syntax).
run -c "put $T/hello /a" -c "put $T/hello /b" -c "chmod 4751 /a /b" -c "truncate 2k /a" \
    -c "truncate 0x3 /b" -c "ls -l /a /b" -c "cat /b" -c "chmod 0 /a" -c "stat /a"
expect_rc 0 "chmod/truncate"
expect_match out "^-rwsr-x--x 1 [0-9]+ [0-9]+ 2048 $TIME /a$" "chmod 4751 and truncate 2k"
expect_match out "^-rwsr-x--x 1 [0-9]+ [0-9]+    3 $TIME /b$" "chmod on a second path and truncate 0x3"
expect_line out "hel  File: /a" "cat of the file truncated to 3 bytes"
expect_match out '^Access: \(0000/----------\)' "chmod 0"

# rm, rm -r, rmdir.
run -c "mkdir -p /r/a/b/c /keep" -c "put $T/hello /r/a/f" -c "put $T/hello /r/a/b/c/g" \
    -c "ln -s nowhere /r/a/b/dangling" -c "put $T/hello /x" -c "rm /x" -c "rm -r /r" \
    -c "rmdir /keep" -c "mkdir /k2" -c "ls /"
expect_rc 0 "rm/rmdir"
expect_out "k2" "rm, rm -r of a tree with a dangling symlink, rmdir"

# df and info.
run -c "df" -c "df /" -c info
expect_rc 0 "df/info"
expect_match out '^ +1K-blocks +Used +Available +Use% +Inodes +IUsed +IFree$' "df header"
expect_match out '^ +[0-9]+ +[0-9]+ +[0-9]+ +([0-9]+%|-) +[0-9]+ +[0-9]+ +[0-9]+$' "df totals"
expect_match out '^block size [0-9]+, fragment size [0-9]+, name max [1-9][0-9]*$' "df sizes"
expect_line out "server         ufuse-memfs (built-in)" "info: server"
expect_match out '^protocol +7\.[0-9]+$' "info: protocol"
expect_match out '^max_write +[1-9][0-9]*$' "info: max_write"
expect_match out '^max_read +57344$' "info: the command offers splice: READs of 56k"
run -o nosplice -c info
expect_match out '^max_read +131072$' "info: -o nosplice: READs of max_read"

# help.
run -c help
expect_rc 0 "help"
check "help lists every command" test "$(grep -c '^  [a-z]' "$T/out")" -eq 28
run -c "help ls"
expect_out "ls [-l] [-a] [PATH...]
    list directories or files (-l long format, -a dot files too)" "help ls"
run -c "help nope"
expect_rc 2 "help of an unknown command"
expect_err "ufuse: help: nope: unknown command" "help of an unknown command: message"

# Errors: "ufuse: CMD: ARG: strerror", exit 1, at the first failure.
err_case() { # EXPECTED-STDERR COMMANDS...
    local want=$1
    shift
    local args=(-c "mkdir /d" -c "put $T/hello /f" -c "mkdir /d/sub")
    for cmd; do args+=(-c "$cmd"); done
    run "${args[@]}" -c "pwd"
    expect_rc 1 "error case '$*'"
    expect_err "$want" "error case '$*'"
    expect_empty out "error case '$*': the session stopped"
}
err_case "ufuse: ls: /nope: No such file or directory" "ls /nope"
err_case "ufuse: cd: /f: Not a directory" "cd /f"
err_case "ufuse: cd: nope: No such file or directory" "cd nope"
err_case "ufuse: stat: /nope: No such file or directory" "stat /nope"
err_case "ufuse: cat: /d: Is a directory" "cat /d"
err_case "ufuse: mkdir: /d: File exists" "mkdir /d"
err_case "ufuse: mkdir: /n/o: No such file or directory" "mkdir /n/o"
err_case "ufuse: mkdir: /f/x: Not a directory" "mkdir -p /f/x"
err_case "ufuse: mkdir: /f: File exists" "mkdir -p /f"
err_case "ufuse: rmdir: /d: Directory not empty" "rmdir /d"
err_case "ufuse: rmdir: /f: Not a directory" "rmdir /f"
err_case "ufuse: rm: /nope: No such file or directory" "rm /nope"
err_case "ufuse: rm: /: refusing to remove the root directory" "rm -r /"
err_case "ufuse: mv: /nope: No such file or directory" "mv /nope /x"
err_case "ufuse: ln: /f: File exists" "ln -s x /f"
err_case "ufuse: readlink: /f: Invalid argument" "readlink /f"
err_case "ufuse: truncate: /nope: No such file or directory" "truncate 0 /nope"
err_case "ufuse: chmod: /nope: No such file or directory" "chmod 644 /nope"
err_case "ufuse: df: /nope: No such file or directory" "df /nope"
run -c "put $T/hello /d" -c "rm /d" -c "mkdir /d" -c "rm /d"
expect_rc 1 "rm of a directory without -r"
expect_match err '^ufuse: rm: /d: (Is a directory|Operation not permitted)$' "rm of a directory without -r: message"
# Usage errors of commands: exit 2.
run -c "put $T/hello /f" -c "chmod 8 /f"
expect_rc 2 "chmod with a bad mode"
expect_err "ufuse: chmod: 8: invalid octal mode" "chmod with a bad mode: message"
run -c "put $T/hello /f" -c "truncate 1x /f"
expect_rc 2 "truncate with a bad size"
expect_err "ufuse: truncate: 1x: invalid number" "truncate with a bad size: message"

finish
