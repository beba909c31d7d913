/*
 * check.h - assertion helpers shared by the tests that drive real servers
 * through the API (tests/integration, tests/interop).  Include after
 * <cmocka.h>.  Each macro fails the current cmocka test with the call's
 * text and the error it returned.
 */
#ifndef UFUSE_TESTS_CHECK_H
#define UFUSE_TESTS_CHECK_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline const char *errstr(long long r)
{
    return r < 0 ? strerror((int)-r) : "no error";
}

/* e must be 0 */
#define OK(e)                                                                \
    do {                                                                     \
        long long r_ = (long long)(e);                                       \
        if (r_ != 0)                                                         \
            fail_msg("%s = %lld (%s)", #e, r_, errstr(r_));                  \
    } while (0)

/* e must be -want */
#define ERR(e, want)                                                         \
    do {                                                                     \
        long long r_ = (long long)(e);                                       \
        if (r_ != -(long long)(want))                                        \
            fail_msg("%s = %lld (%s), expected -%s", #e, r_, errstr(r_),     \
                     #want);                                                 \
    } while (0)

/* e must be -a or -b (POSIX lets the implementation pick) */
#define ERR2(e, a, b)                                                        \
    do {                                                                     \
        long long r_ = (long long)(e);                                       \
        if (r_ != -(long long)(a) && r_ != -(long long)(b))                  \
            fail_msg("%s = %lld (%s), expected -%s or -%s", #e, r_,          \
                     errstr(r_), #a, #b);                                    \
    } while (0)

/* e must be >= 0; yields it */
#define NN(e)                                                                \
    ({                                                                       \
        long long r_ = (long long)(e);                                       \
        if (r_ < 0)                                                          \
            fail_msg("%s = %lld (%s)", #e, r_, errstr(r_));                  \
        r_;                                                                  \
    })

/* e (a libc call) must not fail */
#define SYS(e)                                                               \
    do {                                                                     \
        if ((e) == -1)                                                       \
            fail_msg("%s: %s", #e, strerror(errno));                         \
    } while (0)

/* printf into one of 16 rotating buffers: for immediate use only (a result
 * kept across other calls is copied into the caller's own array) */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2), unused));
static const char *fmt(const char *f, ...)
{
    static char bufs[16][PATH_MAX];
    static int i;
    char *b = bufs[i++ % 16];
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(b, PATH_MAX, f, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX) {
        fprintf(stderr, "fmt: path too long\n");
        abort();
    }
    return b;
}

#endif
