/*
 * probe.h - USDT (user-level statically defined tracing) probes, provider
 * "ufuse", at the points where FreeBSD's fuse_io.c fires its SDT probes
 * (backend chosen, short transfers, cache hits and misses, readahead,
 * write-back clusters, invalidation) and at request send and reply.  The
 * list, with each probe's arguments, is in docs/tracing.md;
 * tools/ufuse.bt reads them.
 *
 * A probe is one nop instruction plus an ELF note (.note.stapsdt) naming
 * it and saying where its arguments are: free when nothing is attached.
 * Its arguments are still computed, so they must be values at hand
 * (fields, locals, arithmetic), never a function call or a lock taken for
 * the probe.  No semaphores: a tracer needs no cooperation to attach.
 *
 * UFUSE_HAVE_SDT is defined by CMake when <sys/sdt.h> (Debian's
 * systemtap-sdt-dev) exists; without it the probes compile to nothing.
 */
#ifndef UFUSE_PROBE_H
#define UFUSE_PROBE_H

#ifdef UFUSE_HAVE_SDT
#include <sys/sdt.h>
#define UFUSE_PROBE3(name, a, b, c) STAP_PROBE3(ufuse, name, a, b, c)
#define UFUSE_PROBE4(name, a, b, c, d) STAP_PROBE4(ufuse, name, a, b, c, d)
#define UFUSE_PROBE5(name, a, b, c, d, e) STAP_PROBE5(ufuse, name, a, b, c, d, e)
#else
#define UFUSE_PROBE3(name, a, b, c) ((void)(a), (void)(b), (void)(c))
#define UFUSE_PROBE4(name, a, b, c, d) ((void)(a), (void)(b), (void)(c), (void)(d))
#define UFUSE_PROBE5(name, a, b, c, d, e) \
    ((void)(a), (void)(b), (void)(c), (void)(d), (void)(e))
#endif

#endif
