/*
 * fuzz-reply.c - libFuzzer target for everything that decodes what a
 * server sends: the ticket layer's datagram dispatch (headers, uniques,
 * errors, lengths, split replies, notifications), directory entries and
 * notification bodies.
 *
 * The input is a list of datagrams (2-byte little-endian length, then the
 * bytes).  Each datagram's unique is rewritten to be near the request
 * about to be sent, so that the fuzzer reaches real tickets; the harness
 * queues them on the server end of a socketpair, then makes one call
 * (READDIR or READDIRPLUS with a 4 KiB buffer) and, if it succeeds, walks
 * the entries.  A good reply is queued last so every call ends.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conn conn;
static int srv = -1;
static struct ulog lg;

static void fuzz_notify(void *ctx, int code, const void *body, size_t len)
{
    /* Bodies arrive validated: touch every byte so ASan checks the bounds. */
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= ((const uint8_t *)body)[i];
    (void)x;
    (void)ctx;
    (void)code;
}

static void fuzz_setup(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
        abort();
    srv = sv[1];
    int big = 4 << 20;
    setsockopt(srv, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    FILE *null = fopen("/dev/null", "w");
    ulog_init(&lg, null, "fuzz");
    /* Queue the INIT reply before INIT is sent: its unique is 2. */
    struct {
        struct fuse_out_header oh;
        struct fuse_init_out io;
    } r;
    memset(&r, 0, sizeof r);
    r.oh.len = sizeof r;
    r.oh.unique = 2;
    r.io.major = 7;
    r.io.minor = 38;
    r.io.max_write = 65536;
    if (send(srv, &r, sizeof r, 0) < 0)
        abort();
    struct chan ch;
    if (chan_attach_fd(&ch, sv[0]))
        abort();
    struct conn_wants w = {.max_read = 65536, .max_write = 65536, .max_readahead = 65536};
    if (conn_start(&conn, &ch, &lg, &w))
        abort();
    conn_set_notify(&conn, fuzz_notify, NULL);
    /* One thread only: no watcher competing for the datagrams. */
    conn_drain(&conn, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv < 0)
        fuzz_setup();
    if (size < 1)
        return 0;
    int plus = data[0] & 1;
    data++;
    size--;
    uint64_t next = conn.next_unique + 2; /* the call below gets this one */
    uint8_t dgram[65536];
    int count = 0;
    while (size >= 2 && count++ < 64) {
        size_t len = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        memcpy(dgram, data, len);
        if (len >= sizeof(struct fuse_out_header)) {
            struct fuse_out_header *oh = (void *)dgram;
            if (oh->unique != 0)
                oh->unique = next + (oh->unique & 7) - 4; /* near it, or interrupt bit */
        }
        if (send(srv, dgram, len, MSG_DONTWAIT) < 0)
            break;
        data += len;
        size -= len;
    }
    struct fuse_out_header end = {.len = sizeof end, .error = -EIO, .unique = next};
    if (send(srv, &end, sizeof end, MSG_DONTWAIT) < 0) {
        /* The socket is full: the call could never end.  Start over. */
        uint8_t sink[65536];
        while (recv(conn.ch.fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
            ;
        return 0;
    }

    static uint8_t buf[4096];
    uint64_t body[5] = {0};
    struct iovec in = {body, sizeof body}, out = {buf, sizeof buf};
    struct conn_req r = {.opcode = plus ? FUSE_READDIRPLUS : FUSE_READDIR, .nodeid = 1,
                         .in = &in, .incnt = 1, .out = &out, .outcnt = 1};
    if (conn_call(&conn, &r) == 0) {
        size_t pos = 0;
        struct proto_dirent de;
        while (proto_dirent_next(buf, r.outlen, &pos, plus, &de) > 0)
            ;
    }
    /* Drain what the call left unread (replies to nobody). */
    uint8_t sink[65536];
    while (recv(conn.ch.fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
        ;
    /* Requests the client sent (INTERRUPT, NOTIFY_REPLY) are discarded. */
    while (recv(srv, sink, sizeof sink, MSG_DONTWAIT) > 0)
        ;
    return 0;
}
