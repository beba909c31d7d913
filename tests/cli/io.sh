#!/usr/bin/env bash
# cli-io: the xfs_io-like commands on "the open file" - open and its flags,
# pread (and -v), pwrite (and -S), fsync, fdatasync, ftruncate, fstat, close
# - with their exact output lines, and the number syntax (decimal, 0x,
# k/m/g suffixes) they share.
. "$(dirname "$0")/lib.sh"
umask 022

# The exact xfs_io lines; short reads at end of file.
run -c "open -c /f" -c "pwrite 0 4096" -c "pread 0 4096" -c "pread 4000 200" \
    -c "pread 8192 10" -c "pwrite 4096 0" -c "pread 0 0" -c "fsync" -c "fdatasync" -c "close"
expect_rc 0 "basic io"
expect_out "wrote 4096/4096 bytes at offset 0
read 4096/4096 bytes at offset 0
read 96/200 bytes at offset 4000
read 0/10 bytes at offset 8192
wrote 0/0 bytes at offset 4096
read 0/0 bytes at offset 0" "xfs_io output lines"
expect_empty err "basic io: no messages"

# pwrite's fill byte (default 0xcd, -S BYTE) and pread -v's dump.
run -c "open -c /f" -c "pwrite 0 32" -c "pwrite -S 0x41 4 8" -c "pwrite -S 97 12 3" \
    -c "pwrite -S0 15 1" -c "pread -v 0 40"
expect_rc 0 "fill bytes and dump"
expect_out "wrote 32/32 bytes at offset 0
wrote 8/8 bytes at offset 4
wrote 3/3 bytes at offset 12
wrote 1/1 bytes at offset 15
00000000:  cd cd cd cd 41 41 41 41 41 41 41 41 61 61 61 00  ....AAAAAAAAaaa.
00000010:  cd cd cd cd cd cd cd cd cd cd cd cd cd cd cd cd  ................
read 32/40 bytes at offset 0" "pwrite -S and pread -v"
run -c "open -c /f" -c "pwrite -S 0x30 0 20" -c "pread -v 18 2"
expect_out "wrote 20/20 bytes at offset 0
00000012:  30 30                                            00
read 2/2 bytes at offset 18" "pread -v: offsets are file offsets"

# Numbers: decimal, 0x hex, k/m/g (either case) are powers of 1024.
run -c "open -c /f" -c "pwrite 0x10 0x20" -c "pwrite 1k 1K" -c "pwrite 1m 16" \
    -c "pread 0 1g" -c "ftruncate 2M" -c "fstat" -c "ftruncate 0x1G" -c "fstat" \
    -c "pread 1g 1" -c "ftruncate 0" -c "pread 0 0x1000"
expect_rc 0 "numbers"
expect_line out "wrote 32/32 bytes at offset 16" "0x hex"
expect_line out "wrote 1024/1024 bytes at offset 1024" "k and K"
expect_line out "wrote 16/16 bytes at offset 1048576" "m"
expect_line out "read 1048592/1073741824 bytes at offset 0" "g, and a read stopping at EOF"
expect_line out "size 2097152" "ftruncate 2M"
expect_line out "size 1073741824" "ftruncate 0x1G"
expect_line out "read 0/1 bytes at offset 1073741824" "read at EOF"
expect_line out "read 0/4096 bytes at offset 0" "ftruncate 0"
bad_num() { # ARG MESSAGE
    run -c "open -c /f" -c "pread $1 1"
    expect_rc 2 "bad number '$1'"
    expect_err "ufuse: pread: $1: $2" "bad number '$1': message"
}
bad_num 12q "invalid number"
bad_num 0x "invalid number"
bad_num k "invalid number"
bad_num 1kk "invalid number"
bad_num 1t "invalid number"
bad_num 18446744073709551616 "number out of range"
bad_num 16777216t "invalid number"
bad_num 9223372036854775808 "number out of range"
bad_num 8589934592g "number out of range"
run -c "open -c /f" -c "pread 1 9223372036854775807"
expect_rc 2 "offset + length beyond the largest offset"
expect_err "ufuse: pread: 9223372036854775807: number out of range" "offset + length: message"
run -c "open -c /f" -c "pwrite -S 256 0 1"
expect_rc 2 "fill byte above 255"
expect_err "ufuse: pwrite: 256: number out of range" "fill byte above 255: message"
run -c "open -c /f" -c "pread -1 1"
expect_rc 2 "negative offset"
expect_err "ufuse: pread: -1: unknown option
ufuse: pread: usage: pread [-v] OFF LEN" "negative offset: message"

# fstat: key-value lines, including "size N".
run -c "open -c /f" -c "pwrite 0 100" -c "fstat"
expect_line out "path /f" "fstat path"
expect_line out "flags O_RDWR|O_CREAT" "fstat flags"
expect_line out "type regular file" "fstat type"
expect_line out "mode 0644 -rw-r--r--" "fstat mode (open -c makes 0644)"
expect_line out "size 100" "fstat size"
expect_line out "nlink 1" "fstat nlink"
expect_match out '^blocks [0-9]+$' "fstat blocks"
expect_match out '^mtime [0-9]{4}-' "fstat mtime"

# open flags: -t truncates, -a appends, -r is read-only, -d is O_DIRECT.
run -c "open -c /f" -c "pwrite 0 100" -c "open -t /f" -c "fstat" \
    -c "open -a /f" -c "pwrite 0 10" -c "pwrite 0 10" -c "fstat" -c "pread 0 100" \
    -c "open -d /f" -c "pwrite 0 4096" -c "pread 0 8192" -c fstat \
    -c "open -r /f" -c "pread -v 4090 10" -c fstat
expect_rc 0 "open flags"
expect_line out "flags O_RDWR|O_TRUNC" "open -t flags"
expect_line out "flags O_RDWR|O_APPEND" "open -a flags"
expect_line out "flags O_RDWR|O_DIRECT" "open -d flags"
expect_line out "flags O_RDONLY" "open -r flags"
check "open -t truncated to 0, open -a appended 10+10" \
    test "$(grep '^size ' "$T/out" | tr '\n' ' ')" = "size 0 size 20 size 4096 size 4096 "
expect_line out "read 20/100 bytes at offset 0" "append: both writes went to the end"
expect_line out "read 4096/8192 bytes at offset 0" "O_DIRECT read"
expect_line out "00000ffa:  cd cd cd cd cd cd                                ......" "O_DIRECT write landed"
expect_line out "read 6/10 bytes at offset 4090" "read-only open reads"

# Errors on the open file, and without one.
: >"$T/empty"
run -c "put $T/empty /f" -c "open -r /f" -c "pwrite 0 1"
expect_rc 1 "pwrite on a read-only open"
expect_err "ufuse: pwrite: /f: Bad file descriptor" "pwrite on a read-only open: message"
run -c "open /nope"
expect_rc 1 "open of a missing file without -c"
expect_err "ufuse: open: /nope: No such file or directory" "open of a missing file: message"
run -c "mkdir /d" -c "cd /d" -c "open -c rel" -c "fstat"
expect_line out "path /d/rel" "open takes paths relative to the session's directory"
for cmd in "pread 0 1" "pwrite 0 1" fsync fdatasync "ftruncate 0" fstat close; do
    run -c "$cmd"
    expect_rc 1 "$cmd without an open file"
    expect_err "ufuse: ${cmd%% *}: no open file (use: open PATH)" "$cmd without an open file: message"
done
run -c "open -c /a" -c "open -c /b" -c "fstat" -c close -c close
expect_rc 1 "close twice"
expect_line out "path /b" "open replaces the open file"
expect_err "ufuse: close: no open file (use: open PATH)" "close twice: message"
# A file left open is closed (and flushed) at the end of the session.
run -c "open -c /f" -c "pwrite 0 1m"
expect_rc 0 "file left open at exit"
expect_empty err "file left open at exit: no messages"

finish
