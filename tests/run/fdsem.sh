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
# posix_spawn file actions opening mount paths (stdin and stdout of cat),
# and changing into a mount directory (addchdir_np, addfchdir_np).
"$UFUSE" run -- sh -c "mkdir /ufuse/sub && echo hello >/ufuse/sub/in &&
    '$B/run-spawn' /ufuse/sub/in /ufuse/out /ufuse/missing && cat /ufuse/out" \
    >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "posix_spawn with file actions on the mount"
expect_out "hello
/ufuse/sub
hello
/ufuse/sub
spawn: ok
hello
hello" "the actions opened the mount files and changed into a mount directory at each spawn; a missing file or directory failed it"
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
# Symbolic links on the mount that lead out of it resolve as on a kernel
# mount: an absolute target from the real root, ".." above the mount root
# to the mount point's parent, an absolute target back into the mount;
# through open, stat, opendir, fopen, chdir, O_CREAT, readlink, symlink,
# xattrs; a loop is ELOOP.
mkdir -p "$T/real" && echo realdata >"$T/real/f" && ln -s f "$T/real/rl"
"$UFUSE" run -- sh -c '
cd /ufuse && mkdir d && echo inside >d/g
ln -s "$1/real/f" abs; ln -s "$1/real" dirlink; ln -s /ufuse/d back
ln -s "../..$1/real/f" d/up; ln -s /ufuse/loop loop
cat abs d/up back/g dirlink/f
stat -L -c %s abs; stat -c %F abs
ls dirlink; echo made >dirlink/new; cat "$1/real/new"
readlink dirlink/rl; ln -s x dirlink/madelink; readlink "$1/real/madelink"
python3 -c "import os; print(sorted(os.listdir(\"/ufuse/dirlink\")), open(\"/ufuse/abs\").read().strip())"
python3 -c "import os, sys; os.setxattr(\"/ufuse/dirlink/f\", \"user.k\", b\"v\"); print(os.getxattr(sys.argv[1] + \"/real/f\", \"user.k\"))" "$1"
cat loop 2>&1 | sed "s/.*: //"
cd dirlink && cat f && pwd -P' sh "$T" >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "links leaving the mount"
expect_out "realdata
realdata
inside
realdata
9
symbolic link
f
rl
made
f
x
['f', 'madelink', 'new', 'rl'] realdata
b'v'
Too many levels of symbolic links
realdata
$T/real" "links leaving the mount resolve outside it, as on a kernel mount"
# An exec'd image that inherited no description asks the broker nothing at
# start-up (identity pipes are told from other pipes by their size): 20
# runs of /bin/true cost no request, where each used to say RUN_HELLO.
"$UFUSE" run -- sh -c '"$1" stats; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    /bin/true; done; "$1" stats' sh "$B/run-worker" >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "execs for the start-up count"
hellos=$(sed -n 's/.*requests \([0-9]*\).*/\1/p' "$T/out" | awk 'NR == 1 { a = $1 } NR == 2 { print $1 - a }')
if [ -n "$hellos" ] && [ "$hellos" -lt 10 ]; then
    _pass
else
    _fail "20 execs of /bin/true cost ${hellos:-?} broker requests (want fewer than 10)"
fi

# FLUSH as on a kernel mount: one per close(2) of a copy (the program's
# pid), none more from the broker at the release when the last close sent
# one; a writer that exits without closing leaves its FLUSH to the
# release (the broker's pid, that of the RELEASE).
"$UFUSE" run -s "$B/ufuse-memfs -d {}" -o "log=$T/memfs.log" -- sh -c '
exec 3>/ufuse/closed; echo a >&3; exec 3>&-
sh -c "exec >/ufuse/exited; echo b"; cat /ufuse/closed /ufuse/exited' >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "writes for the FLUSH count"
# (the shell moves what holds fd 3 before it opens the file there: the
# library's own connection must not be there, nor be closed for it)
expect_out "a
b" "a shell's exec 3>FILE and >&3 on the mount"
# release_flushes INO: FLUSHes of INO up to its first RELEASE (the writer's
# handle; the cat's comes later) sent by the process that RELEASEd it
release_flushes() {
    awk -v ino="ino=$1" '$1 == "memfs:" && $3 == ino && !rel {
            if ($2 == "RELEASE") rel = $NF; else if ($2 == "FLUSH") pid[NR] = $NF }
        END { n = 0; for (i in pid) if (pid[i] == rel) n++; print n }' "$T/memfs.log"
}
n_closed=$(release_flushes 2) n_exited=$(release_flushes 3)
if [ "$n_closed" = 0 ] && [ "$n_exited" = 1 ]; then
    _pass
else
    _fail "FLUSHes at release: closed file $n_closed (want 0), writer that exited $n_exited (want 1)"
fi
finish
