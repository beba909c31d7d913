#!/usr/bin/env bash
# cli-copy: get and put of files and whole trees - contents (sha256), modes,
# symlinks, empty files and directories, read-only trees, a multi-chunk file,
# cp-like destination rules, errors, and the progress bar (only when stderr
# is a terminal).
# shellcheck disable=SC2317  # functions called through check
. "$(dirname "$0")/lib.sh"
umask 022

in=$T/in
mkdir -p "$in/docs" "$in/bin" "$in/ro/inner" "$in/empty dir" "$in/deep/a/b/c"
printf 'hello\n' >"$in/docs/hello.txt"
printf 'secret\n' >"$in/docs/secret"
printf '#!/bin/sh\n' >"$in/bin/tool"
: >"$in/empty file"
printf 'inside\n' >"$in/ro/inner/file"
printf 'deep\n' >"$in/deep/a/b/c/leaf"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$in/big.bin"
ln -s docs/hello.txt "$in/link"
ln -s /no/such/target "$in/dangling"
ln -s ../docs "$in/bin/dirlink"
chmod 0755 "$in/bin/tool"
chmod 0600 "$in/docs/secret"
chmod 0444 "$in/ro/inner/file"
chmod 0555 "$in/ro/inner" "$in/ro"
chmod 0711 "$in/deep"
chmod 4750 "$in/bin"

manifest() { (cd "$1" && find . -mindepth 1 -printf '%y %m %s %p %l\n' | LC_ALL=C sort); }
sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }
same_tree() { # A B: same types, modes, sizes, link targets and contents
    diff <(manifest "$1") <(manifest "$2") && diff <(sums "$1") <(sums "$2")
}

# A whole tree in and back out, in one session; it also lists fine inside.
run -c "put -r '$in' /tree" -c "ls -l /tree/bin /tree/ro/inner" -c "get -r /tree '$T/back'"
expect_rc 0 "put -r / get -r"
expect_empty err "put -r / get -r: no messages (stderr is not a terminal: no progress bar)"
check "the tree came back identical: types, modes, sizes, symlinks, sha256" same_tree "$in" "$T/back"
expect_match out '^lrwxrwxrwx .* dirlink -> \.\./docs$' "a symlink inside the server"
expect_match out '^-rwxr-xr-x .* tool$' "a mode inside the server"
expect_match out '^-r--r--r-- .* file$' "a read-only file inside a read-only directory"

# Into an existing directory: the source's name is kept (cp semantics);
# "/" merges into the destination.
mkdir -p "$T/dl" "$T/merge"
run -c "mkdir /d" -c "put '$in/docs/hello.txt' /d" -c "put -r '$in/docs' /d" \
    -c "cd /d" -c "put '$in/big.bin'" -c "ls /d /d/docs" -c "get /d/hello.txt '$T/dl'" \
    -c "get -r /d/docs '$T/dl'" -c "get -r / '$T/merge'"
expect_rc 0 "copies into existing directories"
expect_out "/d:
big.bin
docs
hello.txt

/d/docs:
hello.txt
secret" "put into a directory keeps the name; default REMOTE is the session's directory"
check "get into a local directory" cmp "$in/docs/hello.txt" "$T/dl/hello.txt"
check "get -r into a local directory" same_tree "$in/docs" "$T/dl/docs"
check "get -r / merges the root into the destination" test -f "$T/merge/d/big.bin"
check "the multi-chunk file through put and get -r /" cmp "$in/big.bin" "$T/merge/d/big.bin"

# Default LOCAL is the current directory; an existing file is overwritten.
mkdir -p "$T/cwd"
printf 'old content that is longer\n' >"$T/cwd/hello.txt"
printf 'v2\n' >"$T/v2"
(cd "$T/cwd" && run -c "put '$in/docs/hello.txt' /x" -c "put '$in/docs/secret' /x" \
    -c "get /x hello.txt" -c "put '$T/v2' /x" -c "get /x" -c "cat /x")
expect_rc 0 "overwrites"
expect_out "v2" "put over an existing remote file"
check "get over an existing local file, by default into the current directory" \
    test "$(cat "$T/cwd/x")" = "v2" -a "$(cat "$T/cwd/hello.txt")" = "secret"
check "an overwritten file takes the source's mode" test "$(stat -c %a "$T/cwd/hello.txt")" = 600

# Symlinks: followed without -r, copied as links with -r.
run -c "put -r '$in' /t" -c "get /t/link '$T/followed'" -c "get -r /t/link '$T/aslink'" \
    -c "put '$in/link' /pf" -c "put -r '$in/link' /pl" -c "ls -l /pf /pl"
expect_rc 0 "symlink operands"
check "get without -r follows a symlink" test -f "$T/followed" -a ! -L "$T/followed"
check "get -r copies a symlink as a symlink" test "$(readlink "$T/aslink")" = "docs/hello.txt"
expect_match out '^-rw-r--r-- .* /pf$' "put without -r follows a symlink"
expect_match out '^lrwxrwxrwx .* /pl -> docs/hello.txt$' "put -r copies a symlink as a symlink"

# Errors.
run -c "put '$in/docs' /d"
expect_rc 1 "put of a directory without -r"
expect_err "ufuse: put: $in/docs: Is a directory" "put of a directory without -r: message"
run -c "mkdir /d" -c "get /d '$T'"
expect_rc 1 "get of a directory without -r"
expect_err "ufuse: get: /d: Is a directory" "get of a directory without -r: message"
run -c "get /nope '$T'"
expect_rc 1 "get of a missing file"
expect_err "ufuse: get: /nope: No such file or directory" "get of a missing file: message"
run -c "put '$T/nope' /x"
expect_rc 1 "put of a missing file"
expect_err "ufuse: put: $T/nope: No such file or directory" "put of a missing file: message"
run -c "put '$in/docs/hello.txt' /no/such/dir/x"
expect_rc 1 "put into a missing directory"
expect_err "ufuse: put: /no/such/dir/x: No such file or directory" "put into a missing directory: message"
run -c "put '$in/docs/hello.txt' /x" -c "get /x '$T/no/such/dir/x'"
expect_rc 1 "get into a missing local directory"
expect_err "ufuse: get: $T/no/such/dir/x: No such file or directory" "get into a missing local directory: message"
run -c "put /dev/null /x"
expect_rc 1 "put of a device"
expect_err "ufuse: put: /dev/null: not a regular file, directory or symlink" "put of a device: message"
mkfifo "$T/fifo-tree/fifo" 2>/dev/null || { mkdir -p "$T/fifo-tree" && mkfifo "$T/fifo-tree/fifo"; }
printf 'x\n' >"$T/fifo-tree/file"
run -c "put -r '$T/fifo-tree' /ft" -c "ls /ft"
expect_rc 0 "a fifo inside a tree"
expect_out "file" "a fifo inside a tree is skipped"
expect_err "ufuse: put: $T/fifo-tree/fifo: skipped (fifo)" "a fifo inside a tree: warning"

# Progress bar: shown for files >= 1 MiB when stderr is a terminal, with
# bytes, percent, rate and ETA; never for small files.  script(1) gives the
# terminal (stdout and stderr both go to it).
if command -v script >/dev/null; then
    timeout 60 script -qec "'$UFUSE' -c \"put '$in/big.bin' /big\" -c \"get /big '$T/big.tty'\"" \
        /dev/null </dev/null >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 0 "copies at a terminal"
    expect_match out '\[#{20}\] +3\.0MiB/3\.0MiB +100% +[0-9.]+[KMG]?i?B/s in [0-9.]+s' "progress bar: bytes, percent, rate, time"
    expect_match out 'big\.tty +\[' "progress bar names the file"
    expect_match out 'ETA ([0-9]+:[0-9]{2}|--:--)' "progress bar: ETA while running"
    check "the copy at a terminal is right" cmp "$in/big.bin" "$T/big.tty"
    timeout 60 script -qec "'$UFUSE' -c \"put '$in/docs/hello.txt' /small\" -c \"get /small '$T/small.tty'\"" \
        /dev/null </dev/null >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 0 "small copies at a terminal"
    expect_empty out "no progress bar for small files"
else
    echo "note: script(1) missing, progress bar checks not run"
fi

finish
