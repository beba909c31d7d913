#!/usr/bin/env bash
# run-kill: programs of a `ufuse run` tree killed (SIGKILL) at random
# moments while they hold open files, record locks and flock locks and are
# mid-request: the session stays whole.  After every round of kills the
# survivors go on; at the end the broker's tables are empty again (no
# description, lock or watched process left), a new process gets a
# whole-file lock at once, every record is whole, and `ufuse run` exits
# with the command's status and unmounts cleanly.
#   UFUSE_KILLS=N  rounds of kills (default 40; `make soak` runs more)
. "$(dirname "$0")/../cli/lib.sh"
W=$B/run-worker
KILLS=${UFUSE_KILLS:-40}
cat >"$T/tree.sh" <<SH
W=$W
mkdir /ufuse/k || exit 1
pids=()
for i in 0 1 2 3 4 5; do \$W work /ufuse/k \$i & pids[\$i]=\$!; done
for round in \$(seq 1 $KILLS); do
    sleep 0.0\$((RANDOM % 9 + 1))
    i=\$((RANDOM % 6))
    kill -9 \${pids[\$i]} 2>/dev/null
    wait \${pids[\$i]} 2>/dev/null
    \$W work /ufuse/k \$((round + 10)) & pids[\$i]=\$!
done
kill -9 \${pids[@]} 2>/dev/null
wait 2>/dev/null
for try in \$(seq 1 600); do
    s=\$(\$W stats)
    case "\$s" in "descs 0 locks 0 procs 0 "*) break ;; esac
    sleep 0.05
done
echo "tables: \$s"
\$W check /ufuse/k || exit 3
ls /ufuse/k | grep -c own
exit 7
SH
"$UFUSE" run -o log="$T/server.log" -- bash "$T/tree.sh" >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 7 "ufuse run exits with the command's status"
expect_match out '^tables: descs 0 locks 0 procs 0 ' "the broker's tables are empty after the kills"
expect_match out '^records: [0-9]+ valid, 0 damaged$' "every record is whole"
expect_match out '^[0-9]+$' "the workers' own files are listed"
check "no error from ufuse itself" sh -c "! grep -q ^ufuse: $T/err"
if [ "$failures" = 0 ]; then
    echo "reliability: ufuse run, programs killed at random | $KILLS SIGKILLs of 6 workers" \
         "holding files, record locks and flocks mid-request; $(sed -n 's/^records: \([0-9]*\) valid.*/\1 records whole/p' "$T/out"), broker tables empty after"
fi
finish
