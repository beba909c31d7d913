/*
 * fakesrv.c - see fakesrv.h.
 */
#include "fakesrv.h"

#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

struct init_args {
    int fd;
    uint32_t minor, max_write;
};

static void *fakesrv_init_thread(void *arg)
{
    struct init_args *a = arg;
    char buf[4096];
    ssize_t n = recv(a->fd, buf, sizeof buf, 0);
    if (n < (ssize_t)sizeof(struct fuse_in_header))
        return NULL;
    struct fuse_in_header *ih = (void *)buf;
    struct {
        struct fuse_out_header oh;
        struct fuse_init_out io;
    } r;
    memset(&r, 0, sizeof r);
    r.oh.len = sizeof r;
    r.oh.unique = ih->unique;
    r.io.major = 7;
    r.io.minor = a->minor;
    r.io.max_write = a->max_write;
    r.io.max_readahead = 65536;
    r.io.flags = FUSE_MAX_PAGES | FUSE_BIG_WRITES;
    r.io.max_pages = 256;
    /* Sized as a server of that minor sends it. */
    size_t len = sizeof r.oh + (a->minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof r.io);
    r.oh.len = (uint32_t)len;
    if (send(a->fd, &r, len, 0) < 0)
        return NULL;
    return (void *)1;
}

void fakesrv_start(struct fakesrv *f, uint32_t minor, uint32_t max_write,
                   uint64_t timeout_ns)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    f->fd = sv[1];
    ulog_init(&f->log, stderr, "fakesrv");
    struct chan ch;
    assert_int_equal(chan_attach_fd(&ch, sv[0]), 0);
    struct init_args a = {.fd = f->fd, .minor = minor, .max_write = max_write};
    pthread_t t;
    pthread_create(&t, NULL, fakesrv_init_thread, &a);
    struct conn_wants w = {.flags = FUSE_MAX_PAGES | FUSE_BIG_WRITES,
                           .max_read = 131072, .max_write = 1 << 20,
                           .max_readahead = 1 << 20, .timeout_ns = timeout_ns};
    int rc = conn_start(&f->conn, &ch, &f->log, &w);
    void *ok;
    pthread_join(t, &ok);
    assert_int_equal(rc, 0);
    assert_non_null(ok);
}

void fakesrv_stop(struct fakesrv *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    conn_drain(&f->conn, 100);
    close(f->conn.ch.fd);
    conn_destroy(&f->conn);
}

size_t fakesrv_read(struct fakesrv *f, void *buf, size_t cap)
{
    ssize_t n = recv(f->fd, buf, cap, 0);
    assert_true(n >= (ssize_t)sizeof(struct fuse_in_header));
    return (size_t)n;
}

void fakesrv_reply(struct fakesrv *f, uint64_t unique, int error, const void *p, size_t len)
{
    struct fuse_out_header oh = {.len = (uint32_t)(sizeof oh + len), .error = error,
                                 .unique = unique};
    struct iovec iov[2] = {{&oh, sizeof oh}, {(void *)p, len}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    assert_true(sendmsg(f->fd, &m, MSG_NOSIGNAL) >= 0);
}

void fakesrv_raw(struct fakesrv *f, const void *p, size_t len)
{
    assert_true(send(f->fd, p, len, MSG_NOSIGNAL) >= 0);
}

int fakesrv_pending(struct fakesrv *f, int ms)
{
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}
