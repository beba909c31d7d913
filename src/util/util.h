/*
 * util.h - small helpers shared by every layer: clocks, logging, sizes.
 *
 * Logging: a session has one log sink (stderr or the log= file).  Messages
 * are prefixed "ufuse: " (and the server's name when one is known).  The
 * sink is set once at session start and never changes, so logging takes no
 * lock beyond stdio's own.
 */
#ifndef UFUSE_UTIL_H
#define UFUSE_UTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "util/probe.h"

#define UFUSE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define UFUSE_MAX(a, b) ((a) > (b) ? (a) : (b))
#define UFUSE_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock in nanoseconds. */
uint64_t ufuse_now_ns(void);
/* The clock cache validity (entry, attribute and size timeouts) is kept
 * on: CLOCK_MONOTONIC_COARSE, a tick behind at most (1-4 ms), as the
 * kernel FUSE client keeps them in jiffies.  A tenth of the cost of
 * ufuse_now_ns here (8-17 ns against 43-87), and a cached stat reads it
 * once per component.  Never mix the two in one comparison. */
uint64_t ufuse_valid_now_ns(void);

struct ulog {
    FILE *fp;               /* sink; stderr unless log=FILE */
    char name[64];          /* server name for messages, may be "" */
    atomic_uint_least64_t once; /* bits of ulog_once() kinds already logged */
};

void ulog_init(struct ulog *lg, FILE *fp, const char *name);
/* Log a message; a NULL @lg logs nothing (the caller reports otherwise). */
void ulog_msg(struct ulog *lg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Log a message of kind @bit (0..63) only the first time it happens. */
void ulog_once(struct ulog *lg, unsigned bit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parse "123", "0x1f", "4k", "1m", "2g" (powers of 1024).  0 or -EINVAL. */
int ufuse_parse_size(const char *s, uint64_t *out);

/* Total length of an iovec array. */
size_t iov_total(const struct iovec *iov, int cnt);
/*
 * Copy @len bytes from the flat buffer @src into the iovec array @dst,
 * starting @off bytes into it (@src NULL: zeros).  Returns the bytes
 * copied (less than @len when @dst is shorter).
 */
size_t iov_copy_in(const struct iovec *dst, int cnt, size_t off,
                   const void *src, size_t len);
/* Copy @len bytes out of @src (an iovec array), from @off, into @dst. */
size_t iov_copy_out(void *dst, const struct iovec *src, int cnt, size_t off,
                    size_t len);

#endif
