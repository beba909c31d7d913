/*
 * util.c - clocks, logging, size parsing and iovec copies (see util.h).
 * No state beyond the per-session struct ulog; no locks.
 */
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t ufuse_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ufuse_valid_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ulog_init(struct ulog *lg, FILE *fp, const char *name)
{
    lg->fp = fp ? fp : stderr;
    snprintf(lg->name, sizeof lg->name, "%s", name ? name : "");
    atomic_init(&lg->once, 0);
}

static void ulog_v(struct ulog *lg, const char *fmt, va_list ap)
{
    if (!lg)
        return;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    FILE *fp = lg->fp ? lg->fp : stderr;
    if (lg->name[0])
        fprintf(fp, "ufuse: %s: %s\n", lg->name, buf);
    else
        fprintf(fp, "ufuse: %s\n", buf);
    fflush(fp);
}

void ulog_msg(struct ulog *lg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ulog_v(lg, fmt, ap);
    va_end(ap);
}

void ulog_once(struct ulog *lg, unsigned bit, const char *fmt, ...)
{
    uint64_t mask = (uint64_t)1 << (bit & 63);
    if (atomic_fetch_or(&lg->once, mask) & mask)
        return;
    va_list ap;
    va_start(ap, fmt);
    ulog_v(lg, fmt, ap);
    va_end(ap);
}

int ufuse_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end)
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

size_t iov_copy_in(const struct iovec *dst, int cnt, size_t off,
                   const void *src, size_t len)
{
    const char *p = src;
    size_t done = 0;
    for (int i = 0; i < cnt && done < len; i++) {
        if (off >= dst[i].iov_len) {
            off -= dst[i].iov_len;
            continue;
        }
        size_t n = UFUSE_MIN(dst[i].iov_len - off, len - done);
        if (p)
            memcpy((char *)dst[i].iov_base + off, p + done, n);
        else
            memset((char *)dst[i].iov_base + off, 0, n);
        done += n;
        off = 0;
    }
    return done;
}

size_t iov_copy_out(void *dst, const struct iovec *src, int cnt, size_t off,
                    size_t len)
{
    char *p = dst;
    size_t done = 0;
    for (int i = 0; i < cnt && done < len; i++) {
        if (off >= src[i].iov_len) {
            off -= src[i].iov_len;
            continue;
        }
        size_t n = UFUSE_MIN(src[i].iov_len - off, len - done);
        memcpy(p + done, (const char *)src[i].iov_base + off, n);
        done += n;
        off = 0;
    }
    return done;
}
