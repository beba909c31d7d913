#!/usr/bin/env bash
# probes.sh - every ufuse:* USDT probe docs/tracing.md lists is in
# libufuse.so and in the CLI (which links the library statically), with its
# number of arguments: `readelf -n` prints each stapsdt note's provider,
# name and argument locations.  Fails on a build without <sys/sdt.h> (the
# probes are then compiled out), a probe gone, renamed or changed arity.
# Environment (from tests/trace/CMakeLists.txt): UFUSE_BUILD_DIR.
set -u
B=${UFUSE_BUILD_DIR:?run through ctest}

# name:arguments, as docs/tracing.md and tools/ufuse.bt use them
want="request_send:4 request_reply:5 read_backend:4 write_backend:4
      short_read:4 short_write:4 cache_hit:3 cache_miss:3 readahead:4
      writeback_cluster:4 invalidate:4"

fail=0
for f in "$B/libufuse.so" "$B/ufuse"; do
    if [ ! -e "$f" ]; then
        echo "FAIL: $f is not built"
        fail=1
        continue
    fi
    # One "name:arity" line per ufuse probe site (a probe inlined twice has
    # two sites; the same arity at each).
    have=$(readelf -n "$f" | awk '
        /^ *Provider:/  { prov = $2 }
        /^ *Name:/      { name = $2 }
        /^ *Arguments:/ { if (prov == "ufuse") print name ":" NF - 1 }' | sort -u)
    for w in $want; do
        if ! grep -qx "$w" <<<"$have"; then
            echo "FAIL: $f: no probe ufuse:${w%%:*} with ${w##*:} arguments"
            fail=1
        fi
    done
    # And no probe the list does not know (the docs would be behind).
    for h in $have; do
        case " $(tr -s " \n" "  " <<<"$want") " in
        *" $h "*) ;;
        *) echo "FAIL: $f: probe ufuse:${h%%:*} with ${h##*:} arguments is not in the list"; fail=1 ;;
        esac
    done
done
[ $fail -eq 0 ] && echo "ok: $(wc -w <<<"$want") probes in libufuse.so and the CLI"
exit $fail
