#!/usr/bin/env bash
# run-programs: real programs through `ufuse run` give the same output as
# on a local directory.  tests/run/scenario.sh (coreutils, bash, sed -i,
# tar | gzip, O_APPEND from two processes, python3 with fcntl locks and
# mmap, gcc + make, sqlite3 in rollback and WAL modes) runs once on
# a local directory, then through `ufuse run` on the mount, for each server
# and cache mode below; the outputs must be identical line for line.
#   ufuse-memfs     direct, writethrough, writeback
#   passthrough_ll  direct, writethrough, writeback (over a local directory,
#                   whose content is compared with the mount's view too)
#   sshfs           direct, writethrough, writeback, over an sshd started
#                   here on 127.0.0.1; compared with the same scenario on a
#                   kernel sshfs mount (sftp has no link counts and refuses
#                   readlink here, on either client), which needs root and
#                   /dev/fuse
. "$(dirname "$0")/../cli/lib.sh"
SRC=${UFUSE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SCENARIO=$SRC/tests/run/scenario.sh
for tool in python3 gcc make tar gzip sed sqlite3; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (scripts/deps.sh installs it)" >&2; exit 77; }
done

mkdir "$T/local"
"$SCENARIO" "$T/local" >"$T/expected" 2>&1
if ! grep -q '^answer 42$' "$T/expected"; then
    echo "FAIL: the scenario does not run on a local directory:"; cat "$T/expected"; exit 1
fi

# through SERVER_DESC OPTS [-s SERVER]: the scenario on the mount, its
# output compared with $EXPECTED.
EXPECTED=$T/expected
through() {
    local desc=$1 opts=$2
    shift 2
    "$UFUSE" run "$@" -o "$opts,log=$T/server.log" -- bash -c "mkdir /ufuse/w && '$SCENARIO' /ufuse/w" \
        >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    expect_rc 0 "$desc: ufuse run"
    if diff "$EXPECTED" <(cat "$T/out" "$T/err") >"$T/diff"; then
        _pass
    else
        failures=$((failures + 1))
        echo "FAIL: $desc: output differs from the local run (< local, > ufuse run):"
        sed 's/^/  /' "$T/diff" | head -40
    fi
}

for mode in direct writethrough writeback; do
    through "ufuse-memfs cache=$mode" "cache=$mode"
done

# Extended attributes (ufuse-memfs has them; passthrough_ll does not).
"$UFUSE" run -- python3 -c '
import os
open("/ufuse/attrs", "w").close()
os.setxattr("/ufuse/attrs", "user.colour", b"blue")
print(os.getxattr("/ufuse/attrs", "user.colour"), os.listxattr("/ufuse/attrs"))
os.removexattr("/ufuse/attrs", "user.colour")
print(os.listxattr("/ufuse/attrs"))' >"$T/out" 2>"$T/err" </dev/null
rc=$?
expect_rc 0 "xattrs through ufuse run"
expect_out "b'blue' ['user.colour']
[]" "python3's xattr calls"

PT=$B/passthrough_ll
if [ -x "$PT" ]; then
    for mode in direct writethrough writeback; do
        rm -rf "$T/backing" && mkdir "$T/backing"
        through "passthrough_ll cache=$mode" "cache=$mode" -s "$PT -f -o source=$T/backing"
        check "passthrough_ll cache=$mode: the backing directory has the files" \
            cmp "$T/local/src/numbers" "$T/backing/w/src/numbers"
    done
else
    echo "note: $PT not built; passthrough_ll rows not run" >&2
fi

# sshfs over a private sshd (keys and config in $T, a free port).
sshfs_rows() {
    local port pid
    ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey" && ssh-keygen -q -t ed25519 -N '' -f "$T/userkey" &&
        cp "$T/userkey.pub" "$T/authorized_keys" || return 1
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" "HostKey $T/hostkey" "PidFile none" \
        "AuthorizedKeysFile $T/authorized_keys" "StrictModes no" \
        "PermitRootLogin prohibit-password" "PubkeyAuthentication yes" \
        "PasswordAuthentication no" "KbdInteractiveAuthentication no" "UsePAM no" \
        "Subsystem sftp internal-sftp" >"$T/sshd_config"
    mkdir -p /run/sshd "$T/remote" "$T/kmnt"
    /usr/sbin/sshd -D -e -f "$T/sshd_config" >"$T/sshd.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
        sleep 0.05
    done
    local sopt="-F /dev/null -oIdentityFile=$T/userkey,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR,port=$port"
    local url="root@127.0.0.1:$T/remote"
    # The kernel client's output is what ours must give.
    if sshfs $sopt "$url" "$T/kmnt"; then
        # (stdout then stderr, as through() reads them)
        mkdir "$T/kmnt/w" && "$SCENARIO" "$T/kmnt/w" >"$T/sshfs-expected" 2>"$T/sshfs-err"
        cat "$T/sshfs-err" >>"$T/sshfs-expected"
        fusermount3 -u "$T/kmnt"
        rm -rf "$T/remote/w"
        EXPECTED=$T/sshfs-expected
        for mode in direct writethrough writeback; do
            through "sshfs cache=$mode" "cache=$mode" -s "sshfs -f $sopt $url {}"
            rm -rf "$T/remote/w"
        done
        EXPECTED=$T/expected
    else
        echo "note: sshfs does not mount here; sshfs rows not run" >&2
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && command -v sshfs >/dev/null && [ -x /usr/sbin/sshd ]; then
    sshfs_rows
else
    echo "note: sshfs rows need root, /dev/fuse, sshfs and sshd (scripts/deps.sh); not run" >&2
fi
finish
