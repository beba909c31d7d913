#!/usr/bin/env bash
# run-mount: `ufuse mount` starts a session in the background for programs
# started later by the shell that evals its output; `ufuse umount` ends it
# (writing back first) and prints the lines that take it out of the
# environment again.  The shell that evals the output is not served itself
# (only the programs it starts), so `mount` leaves the mount point
# uncreated: a builtin redirection there fails instead of writing into a
# real directory.
. "$(dirname "$0")/../cli/lib.sh"
M=$T/mnt
cat >"$T/session.sh" <<SH
set -e
out=\$("$UFUSE" mount -m "$M" -o cache=writeback,log="$T/server.log")
echo "\$out"
eval "\$out"
if echo builtin 2>/dev/null >"$M/y"; then echo "a builtin wrote under the mount point"; fi
sh -c 'echo written >"$M/x"'
cat "$M/x"
ls "$M"
sh -c 'cd "$M" && pwd'
undo=\$("$UFUSE" umount "$M")
echo "\$undo"
eval "\$undo"
echo "after: \${UFUSE_RUN-none} \${LD_PRELOAD-none}"
ls "$M" 2>&1 || true
SH
bash "$T/session.sh" >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "mount, use, umount"
expect_match out "^export UFUSE_RUN='$M=ufuse-run-" "mount prints the environment"
expect_match out '^written$' "a program started later writes and reads on the mount"
expect_match out "^$M\$" "cd into the mount"
expect_match out '^unset UFUSE_RUN$' "umount prints the lines that undo the environment"
expect_match out '^after: none none$' "the environment is clean after eval"
expect_match out "No such file or directory" "the mount point is not there after umount"
check "the shell's own redirection failed (no real directory)" sh -c "! grep -q 'a builtin wrote' '$T/out'"
check "the broker has exited" sh -c "! pgrep -f '[u]fuse mount -m $M' >/dev/null"
finish
