/*
 * fakesrv.h - a minimal raw-protocol peer for unit tests of the ticket
 * and node layers: answers INIT, then lets the test read requests and
 * write replies by hand.  (The scripted mock server in tests/mock/ is for
 * whole-client scenarios.)
 */
#ifndef FAKESRV_H
#define FAKESRV_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/ipc.h"

struct fakesrv {
    int fd;              /* server end */
    struct conn conn;    /* the client side under test */
    struct ulog log;
};

/* socketpair, answer INIT (@minor, @max_write) from a thread while
 * conn_start runs.  Asserts success. */
void fakesrv_start(struct fakesrv *f, uint32_t minor, uint32_t max_write,
                   uint64_t timeout_ns);
void fakesrv_stop(struct fakesrv *f);
/* Read one request into @buf (cap @cap); returns its length; asserts > 0. */
size_t fakesrv_read(struct fakesrv *f, void *buf, size_t cap);
/* Reply to @unique with @error and @len payload bytes. */
void fakesrv_reply(struct fakesrv *f, uint64_t unique, int error, const void *p, size_t len);
/* Write raw bytes as one datagram. */
void fakesrv_raw(struct fakesrv *f, const void *p, size_t len);
/* Is a request waiting (within @ms)? */
int fakesrv_pending(struct fakesrv *f, int ms);

#endif
