/*
 * common.h - what the fault-matrix and long-run tests share: starting a
 * real server (ufuse-memfs or libfuse's passthrough_ll) as a child of the
 * test on one end of a socketpair and attaching ufuse to the other end
 * with ufuse_mount_fd(), so that the test holds the server's pid (to
 * SIGKILL, SIGSTOP, SIGCONT it) and a duplicate of its socket end (to see
 * requests waiting for it); waiting for conditions with a bound; counting
 * requests through ufuse_stats(); the resident memory; and the result
 * line that scripts/reliability.sh collects into docs/reliability.md:
 *
 *   reliability: <row> | <what was done, how much> | <outcome>
 *
 * printed only once the test's assertions have passed.
 */
#ifndef UFUSE_TESTS_FAULTS_COMMON_H
#define UFUSE_TESTS_FAULTS_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ufuse.h"
#include "memfs/harness.h"   /* memfs_bin, pattern_fill, now_ms */

/* The sanitizer this test is built with: SANITIZER names it; SAN_ASAN or
 * SAN_TSAN is defined (ASan's quarantine and both sanitizers' shadow
 * memory make RSS say less about ufuse). */
#if defined(__SANITIZE_ADDRESS__)
#define SAN_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define SAN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAN_ASAN 1
#elif __has_feature(thread_sanitizer)
#define SAN_TSAN 1
#endif
#endif
#if defined(SAN_ASAN)
#define SANITIZER "ASan"
#elif defined(SAN_TSAN)
#define SANITIZER "TSan"
#else
#define SANITIZER "no sanitizer"
#endif

enum srv_kind { SRV_MEMFS, SRV_PTLL };

struct srv {
    enum srv_kind kind;
    pid_t pid;            /* the server, 0 once reaped */
    int status;           /* its wait status once reaped */
    int sock;             /* our duplicate of the server's end, or -1 */
    char tmp[64];         /* temporary directory (removed by srv_stop) */
    char src[128];        /* passthrough_ll's source directory: tmp/src */
};

/* Start a server with "-o @sopts" (may be NULL) on one end of a new
 * SOCK_SEQPACKET socketpair; @stopped: the child stops itself (SIGSTOP)
 * before it executes the server, and is seen stopped before this returns.
 * @return the other end for ufuse_mount_fd(), or -1 (then the test is
 * skipped: exit 77 with the reason, when the server is not built).
 * For SRV_PTLL, v->src is created first (srv_prepare) unless it exists. */
int srv_spawn(struct srv *v, enum srv_kind kind, const char *sopts, bool stopped);
/* Create v->tmp and v->src (before srv_spawn, to fill the source). */
void srv_prepare(struct srv *v);
/* Start and attach with ufuse options @copts.  @return the session. */
ufuse_t *srv_mount(struct srv *v, enum srv_kind kind, const char *sopts, const char *copts);
/* Reap the server (SIGKILL after @grace_ms if still running), close the
 * duplicate, remove the temporary directory.  @return the wait status. */
int srv_stop(struct srv *v, int grace_ms);
void srv_signal(struct srv *v, int sig);
/* ufuse_unmount(@s) (bounded: a hang fails the test), then srv_stop. */
void srv_unmount(ufuse_t *s, struct srv *v, int grace_ms);
/* SIGSTOP, and wait until every thread of the server is stopped. */
void srv_pause(struct srv *v);

/* Requests of opcode @name ("READ") sent on @s so far (answered or not),
 * and replies with an error. */
uint64_t op_count(ufuse_t *s, const char *name);
uint64_t op_errors(ufuse_t *s, const char *name);

/* Poll @cond(@arg) every 5 ms for up to @ms.  @return whether it held. */
bool wait_until(bool (*cond)(void *), void *arg, int ms);
void msleep(int ms);

/* Resident set size of this process in bytes, or -1. */
int64_t rss_bytes(void);

/* A watchdog for calls that may hang: if not disarmed within @seconds,
 * print @what and exit the process with status 1 (a hang is a failure,
 * not something to wait out). */
void hang_guard(int seconds, const char *what);
void hang_guard_off(void);

/* The result line (see above). */
void reliability(const char *row, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* How many: @check in `make check`, @soak under UFUSE_SOAK=1 (make soak);
 * the environment variable @env overrides both. */
long amount(const char *env, long check, long soak);

/* splitmix64 */
uint64_t rnd64(uint64_t *state);

#endif
