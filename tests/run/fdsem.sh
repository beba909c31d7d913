#!/usr/bin/env bash
# run-fdsem: file-descriptor semantics inside a `ufuse run` tree (see
# fdsem.c), in each cache mode of ufuse-memfs.
. "$(dirname "$0")/../cli/lib.sh"
PROG=$B/run-fdsem
for mode in direct writethrough writeback; do
    "$UFUSE" run -o "cache=$mode" -- sh -c "mkdir /ufuse/d && exec '$PROG' /ufuse/d" \
        >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    expect_rc 0 "cache=$mode: fdsem"
    expect_match out '^fdsem: all checks passed$' "cache=$mode: all checks"
done
# posix_spawn file actions opening mount paths (stdin and stdout of cat).
"$UFUSE" run -- sh -c "echo hello >/ufuse/in && '$B/run-spawn' /ufuse/in /ufuse/out /ufuse/missing && cat /ufuse/out" \
    >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "posix_spawn with file actions on the mount"
expect_out "spawn: ok
hello
hello" "the actions opened the mount files at each spawn, and a missing one failed it"
# Who is asking: requests carry the process's ids, also after it changes
# them (ufuse-memfs makes a new file owned by the request's uid).
if [ "$(id -u)" = 0 ]; then
    "$UFUSE" run -- python3 -c '
import os
os.mkdir("/ufuse/pub"); os.chmod("/ufuse/pub", 0o777)
open("/ufuse/pub/by-root", "w").close()
os.setgid(65534); os.setuid(65534)
open("/ufuse/pub/by-nobody", "w").close()
print("owners", os.stat("/ufuse/pub/by-root").st_uid, os.stat("/ufuse/pub/by-nobody").st_uid)
' >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    expect_rc 0 "setuid inside the tree"
    expect_out "owners 0 65534" "a file made after setuid belongs to the new uid"
    # -o default_permissions: the session checks the program's ids and groups.
    "$UFUSE" run -o default_permissions -- python3 -c '
import os
open("/ufuse/secret", "w").write("s"); os.chmod("/ufuse/secret", 0o600)
open("/ufuse/pub", "w").write("p"); os.chmod("/ufuse/pub", 0o644)
os.setgroups([]); os.setgid(65534); os.setuid(65534)
try:
    open("/ufuse/secret").read(); print("secret read")
except PermissionError:
    print("secret refused")
print(open("/ufuse/pub").read(), os.access("/ufuse/pub", os.W_OK), os.access("/ufuse/pub", os.R_OK))
' >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    expect_rc 0 "default_permissions inside the tree"
    expect_out "secret refused
p False True" "default_permissions: a 0600 file of root refused to nobody, a 0644 one readable"
else
    echo "note: not root; the setuid check is not run" >&2
fi
finish
