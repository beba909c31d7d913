#!/usr/bin/env bash
# scenario.sh DIR - real programs at work in DIR (an empty directory).
#
# Run once on a local directory and once through `ufuse run` on a mount;
# tests/run/programs.sh compares the two outputs line by line.  Everything
# printed is independent of the file system underneath: no times, inode
# numbers, block counts or directory sizes; DIR itself is printed as "DIR".
# Each step is one "== name" section, so a difference names the program.
set -uo pipefail
D=$1
cd "$D" || exit 1
say() { printf '== %s\n' "$*"; }
norm() { sed "s|$D|DIR|g"; }
filestat() { # type, mode, size (not of directories), path, link target
    find "$@" -printf '%y %m %s %p %l\n' | awk '$1 == "d" { $3 = "-" } { print }' | LC_ALL=C sort | norm
}

say "coreutils: make a tree"
mkdir -p src/a/b src/c empty
seq 1 20000 >src/numbers
printf 'alpha\nbeta\ngamma\n' >src/a/words
head -c 300000 /dev/zero | tr '\0' 'x' >src/a/b/xs
printf '#!/bin/sh\necho "script on the mount: $1"\n' >src/c/run.sh
chmod 755 src/c/run.sh
ln -s ../numbers src/a/numlink
ln src/a/words src/a/words.hard
touch -d '2001-02-03 04:05:06' src/a/words
filestat src
stat -c '%n %s %h %a %F' src/a/words src/a/words.hard src/a/numlink | norm
stat -c '%Y' src/a/words

say "cp -a, diff -r, cmp"
cp -a src copy
diff -r src copy && echo same
cmp src/numbers copy/numbers && echo cmp-same
stat -c '%Y %a' copy/a/words
stat -c '%a' copy/c/run.sh
readlink copy/a/numlink

say "ls -lR (no times)"
ls -lR --time-style=+ src | grep -v '^total' | awk '$1 ~ /^d/ { $2 = ""; $5 = "" } { $1 = $1; print }' | norm

say "find, du, wc, sort -o, tee, head, tail"
(cd src && find . -name '*s*' | LC_ALL=C sort)
du -s src >/dev/null && echo du-ok
wc -l src/numbers copy/numbers | norm
sort -rn -o sorted src/numbers
head -3 sorted; tail -2 sorted
printf 'tee line\n' | tee tee1 tee2 >/dev/null
cat tee1 tee2

say "dd, truncate, cat"
dd if=src/numbers of=dd.out bs=4096 count=5 skip=1 status=none
wc -c dd.out | norm
truncate -s 100 dd.out
wc -c dd.out | norm
truncate -s 10000 dd.out
od -An -c dd.out | tail -3
dd if=/dev/zero of=sparse bs=1 count=1 seek=1000000 status=none
stat -c '%s' sparse

say "mv, rm -r, rmdir, chmod, touch"
mv copy moved
mv moved/numbers moved/numbers2
ls moved
chmod 600 moved/numbers2
stat -c '%a' moved/numbers2
rm -r moved
rmdir empty
ls
touch newfile && stat -c '%s' newfile

say "bash: redirections, here-documents, globbing, cd"
echo one >redir
echo two >>redir
cat <redir
{ echo out; echo err >&2; } >both 2>&1
cat both
cat <<'HERE' >here
a here-document
  with two lines
HERE
cat here
x=$(cat src/a/words | tr '\n' ' ')
echo "substituted: $x"
echo src/a/w*
cd src/a && pwd | norm && cat words | head -1 && cd ../..
(cd src/c && ./run.sh relative)
src/c/run.sh by-path

say "sed -i, tar with gzip in a pipeline"
cp src/a/words edit
sed -i 's/beta/BETA/' edit
cat edit
tar czf - src | (mkdir untar && cd untar && tar xzf -)
diff -r src untar/src && echo tar-roundtrip-same
tar cf src.tar src && tar tf src.tar | LC_ALL=C sort | head -5

say "O_APPEND from two processes"
for p in 1 2; do (for i in $(seq 1 200); do echo "p$p line $i" >>appended; done) & done
wait
wc -l appended | norm
sort appended | uniq -d | wc -l

say "python3: os.walk, shutil, tempfile, seek/truncate, os.replace, mmap"
python3 - "$D" <<'PY'
import os, shutil, tempfile, mmap, sys
d = sys.argv[1]
for root, dirs, files in sorted(os.walk('src')):
    print(root, sorted(dirs), sorted(files))
shutil.copytree('src', 'pycopy', symlinks=True)
print(sorted(os.listdir('pycopy/a')))
shutil.rmtree('pycopy')
print(os.path.exists('pycopy'))
with tempfile.NamedTemporaryFile(dir='.', delete=False) as t:
    t.write(b'temporary')
    name = t.name
os.replace(name, 'replaced')
print(open('replaced').read())
with open('seek', 'w+b') as f:
    f.write(b'0123456789')
    f.seek(3)
    print(f.read(4))
    f.truncate(5)
    f.seek(0)
    print(f.read())
with open('src/numbers', 'rb') as f:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    print(len(m), m[:6], m[-6:])
    m.close()
print(os.path.realpath('src/a/numlink').replace(d, 'DIR'))
print(os.getcwd().replace(d, 'DIR'))
PY

say "gcc and make, sources and objects on the mount"
mkdir proj
cat >proj/main.c <<'C'
#include <stdio.h>
int answer(void);
int main(void) { printf("answer %d\n", answer()); return 0; }
C
echo 'int answer(void) { return 42; }' >proj/answer.c
printf 'prog: main.o answer.o\n\t$(CC) -o $@ $^\n' >proj/Makefile
make -s -C proj CC=gcc 2>&1 | norm
proj/prog
ls proj | LC_ALL=C sort

say "sqlite3: rollback journal and WAL"
sqlite3 rb.db "create table t(a, b); insert into t values (1, 2), (3, 4);" \
    "begin; insert into t values (5, 6); commit;" "select count(*), sum(a + b) from t;"
sqlite3 rb.db "pragma journal_mode;" "pragma integrity_check;"
sqlite3 wal.db "pragma journal_mode=wal;" "create table t(x);" \
    "insert into t select value from generate_series(1, 1000);" "select sum(x) from t;"
sqlite3 wal.db "select count(*) from t;" "pragma integrity_check;"

say "python3: fcntl locks between processes, mmap writes"
python3 - <<'PY'
import fcntl, mmap, os
f = open('locked', 'w')
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
fcntl.flock(f, fcntl.LOCK_SH)
pid = os.fork()
if pid == 0:
    g = open('locked', 'w')
    try:
        fcntl.lockf(g, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print('child: record lock granted')
    except OSError as e:
        print('child: record lock refused', e.errno)
    try:
        fcntl.flock(g, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print('child: flock granted')
    except OSError as e:
        print('child: flock refused', e.errno)
    fcntl.flock(g, fcntl.LOCK_SH | fcntl.LOCK_NB)
    print('child: shared flock granted')
    os._exit(0)
os.waitpid(pid, 0)
f.close()
with open('mapped', 'wb') as w:
    w.write(b'.' * 8192)
with open('mapped', 'r+b') as m:
    mm = mmap.mmap(m.fileno(), 0)
    mm[0:5] = b'HELLO'
    mm.flush()
    m.seek(0)
    print(m.read(5))
    m.seek(100)
    m.write(b'WRITE')
    m.flush()
    print(mm[100:105])
    mm.close()
print(open('mapped', 'rb').read()[:8], os.path.getsize('mapped'))
PY

say "python3: statvfs, subprocess, os.system, os.popen"
python3 - <<'PY'
import os, subprocess
open('attrs', 'w').close()
print(os.statvfs('.').f_bsize > 0)
print(subprocess.run(['sh', '-c', 'cat src/a/words | wc -l'], capture_output=True).stdout)
print(os.system('test -f attrs'), os.popen('ls src').read().split())
PY
stat -f . >/dev/null && echo statfs-ok
