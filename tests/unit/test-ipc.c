/*
 * test-ipc.c - the ticket layer: many requests in flight answered out of
 * order, malformed replies, split replies, death, ENOSYS memory, timeout
 * with INTERRUPT.  The test thread plays the server over a raw socket.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakesrv.h"

/* A call made from its own thread. */
struct call {
    struct conn *c;
    uint32_t opcode;
    uint64_t nodeid;
    void *out;
    size_t outcap;
    int exact;
    int rc;
    size_t outlen;
    pthread_t t;
};

static void *call_thread(void *arg)
{
    struct call *k = arg;
    uint64_t body = k->nodeid;
    struct iovec in = {&body, sizeof body};
    struct iovec out = {k->out, k->outcap};
    struct conn_req r = {.opcode = k->opcode, .nodeid = k->nodeid, .in = &in, .incnt = 1,
                         .out = &out, .outcnt = k->outcap ? 1 : 0, .out_exact = k->exact};
    k->rc = conn_call(k->c, &r);
    k->outlen = r.outlen;
    return NULL;
}

static void call_start(struct call *k, struct conn *c, uint32_t op, uint64_t nodeid,
                       void *out, size_t cap, int exact)
{
    *k = (struct call){.c = c, .opcode = op, .nodeid = nodeid, .out = out, .outcap = cap,
                       .exact = exact};
    pthread_create(&k->t, NULL, call_thread, k);
}

static int call_join(struct call *k)
{
    pthread_join(k->t, NULL);
    return k->rc;
}

static uint64_t read_req(struct fakesrv *f, uint32_t *opcode, uint64_t *nodeid)
{
    char buf[8192];
    fakesrv_read(f, buf, sizeof buf);
    struct fuse_in_header *ih = (void *)buf;
    if (opcode)
        *opcode = ih->opcode;
    if (nodeid)
        *nodeid = ih->nodeid;
    return ih->unique;
}

#define NTHREADS 16

static void test_out_of_order(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct call k[NTHREADS];
    struct fuse_attr_out out[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        call_start(&k[i], &f.conn, FUSE_GETATTR, 100 + i, &out[i], sizeof out[i], 1);
    uint64_t uniq[NTHREADS], ids[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        uniq[i] = read_req(&f, NULL, &ids[i]);
    for (int i = NTHREADS - 1; i >= 0; i--) {
        struct fuse_attr_out a;
        memset(&a, 0, sizeof a);
        a.attr.ino = ids[i] * 7;
        fakesrv_reply(&f, uniq[i], 0, &a, sizeof a);
    }
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(call_join(&k[i]), 0);
        assert_int_equal(out[i].attr.ino, (100 + i) * 7);
    }
    /* Uniques are distinct and even (bit 0 marks interrupts). */
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(uniq[i] & 1, 0);
        for (int j = 0; j < i; j++)
            assert_true(uniq[i] != uniq[j]);
    }
    fakesrv_stop(&f);
}

static void test_garbage_dropped(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct call k;
    struct fuse_attr_out out;
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    uint64_t u = read_req(&f, NULL, NULL);
    fakesrv_raw(&f, "tiny", 4);                               /* shorter than a header */
    struct fuse_attr_out a;
    memset(&a, 0, sizeof a);
    a.attr.ino = 1;
    fakesrv_reply(&f, u + 1000, 0, &a, sizeof a);             /* unknown unique */
    a.attr.ino = 42;
    fakesrv_reply(&f, u, 0, &a, sizeof a);                    /* the real one */
    assert_int_equal(call_join(&k), 0);
    assert_int_equal(out.attr.ino, 42);
    fakesrv_stop(&f);
}

/* Each malformed reply fails its call with EIO. */
static void test_malformed_replies(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct call k;
    struct fuse_attr_out out, a;
    char buf[256];
    memset(&a, 0, sizeof a);

    /* error with a payload */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    fakesrv_reply(&f, read_req(&f, NULL, NULL), -ENOENT, &a, sizeof a);
    assert_int_equal(call_join(&k), -EIO);
    /* positive error */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    fakesrv_reply(&f, read_req(&f, NULL, NULL), 5, NULL, 0);
    assert_int_equal(call_join(&k), -EIO);
    /* error below -511 */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    fakesrv_reply(&f, read_req(&f, NULL, NULL), -4096, NULL, 0);
    assert_int_equal(call_join(&k), -EIO);
    /* payload larger than the request allows */
    static const char src[65];
    call_start(&k, &f.conn, FUSE_READ, 5, buf, 64, 0);
    fakesrv_reply(&f, read_req(&f, NULL, NULL), 0, src, sizeof src);
    assert_int_equal(call_join(&k), -EIO);
    /* fixed-size reply of the wrong size */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    fakesrv_reply(&f, read_req(&f, NULL, NULL), 0, &a, sizeof a - 8);
    assert_int_equal(call_join(&k), -EIO);
    /* header length shorter than the datagram */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    {
        struct {
            struct fuse_out_header oh;
            struct fuse_attr_out a;
        } r;
        memset(&r, 0, sizeof r);
        r.oh.unique = read_req(&f, NULL, NULL);
        r.oh.len = sizeof r - 4;
        fakesrv_raw(&f, &r, sizeof r);
    }
    assert_int_equal(call_join(&k), -EIO);
    /* A good reply still works after all that. */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    a.attr.ino = 9;
    fakesrv_reply(&f, read_req(&f, NULL, NULL), 0, &a, sizeof a);
    assert_int_equal(call_join(&k), 0);
    assert_int_equal(out.attr.ino, 9);
    fakesrv_stop(&f);
}

/* A reply split over three datagrams (a splicing server) is reassembled,
 * even with another reply arriving in between. */
static void test_split_reply(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    enum { LEN = 90000 };
    char *data = malloc(LEN), *got = calloc(1, LEN);
    for (int i = 0; i < LEN; i++)
        data[i] = (char)(i * 31 + 7);
    struct call k1, k2;
    struct fuse_attr_out out, a;
    call_start(&k1, &f.conn, FUSE_READ, 5, got, LEN, 0);
    uint64_t u1 = read_req(&f, NULL, NULL);
    call_start(&k2, &f.conn, FUSE_GETATTR, 6, &out, sizeof out, 1);
    uint64_t u2 = read_req(&f, NULL, NULL);
    struct fuse_out_header oh = {.len = sizeof oh + LEN, .unique = u1};
    char *first = malloc(sizeof oh + 30000);
    memcpy(first, &oh, sizeof oh);
    memcpy(first + sizeof oh, data, 30000);
    fakesrv_raw(&f, first, sizeof oh + 30000);
    memset(&a, 0, sizeof a);
    a.attr.ino = 66;
    fakesrv_reply(&f, u2, 0, &a, sizeof a);
    fakesrv_raw(&f, data + 30000, 30000);
    fakesrv_raw(&f, data + 60000, 30000);
    assert_int_equal(call_join(&k1), 0);
    assert_int_equal(k1.outlen, LEN);
    assert_memory_equal(got, data, LEN);
    assert_int_equal(call_join(&k2), 0);
    assert_int_equal(out.attr.ino, 66);
    free(first);
    free(data);
    free(got);
    fakesrv_stop(&f);
}

/* Two split replies interleaving cannot be reassembled: both fail with
 * EIO, their remaining pieces are dropped (not stored anywhere), and the
 * next reply is read correctly. */
static void test_split_interleaved(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    enum { LEN = 60000 };
    char *a = calloc(1, LEN), *b = calloc(1, LEN), *piece = malloc(LEN);
    memset(piece, 0x5a, LEN);
    struct call ka, kb, kc;
    call_start(&ka, &f.conn, FUSE_READ, 5, a, LEN, 0);
    uint64_t ua = read_req(&f, NULL, NULL);
    call_start(&kb, &f.conn, FUSE_READ, 6, b, LEN, 0);
    uint64_t ub = read_req(&f, NULL, NULL);
    struct fuse_out_header oh = {.len = sizeof oh + LEN};
    char *head = malloc(sizeof oh + 20000);
    oh.unique = ua;
    memcpy(head, &oh, sizeof oh);
    memcpy(head + sizeof oh, piece, 20000);
    fakesrv_raw(&f, head, sizeof oh + 20000);
    oh.unique = ub;
    memcpy(head, &oh, sizeof oh);
    fakesrv_raw(&f, head, sizeof oh + 20000);
    assert_int_equal(call_join(&ka), -EIO);
    assert_int_equal(call_join(&kb), -EIO);
    /* A third request is in flight while the leftovers arrive. */
    struct fuse_attr_out out, at;
    call_start(&kc, &f.conn, FUSE_GETATTR, 7, &out, sizeof out, 1);
    uint64_t uc = read_req(&f, NULL, NULL);
    for (int i = 0; i < 4; i++)
        fakesrv_raw(&f, piece, 20000); /* 2 x 40000 bytes still owed */
    memset(&at, 0, sizeof at);
    at.attr.ino = 77;
    fakesrv_reply(&f, uc, 0, &at, sizeof at);
    assert_int_equal(call_join(&kc), 0);
    assert_int_equal(out.attr.ino, 77);
    assert_int_equal(f.conn.discard, 0);
    free(head);
    free(piece);
    free(a);
    free(b);
    fakesrv_stop(&f);
}

static void test_death(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct call k[8];
    struct fuse_attr_out out[8];
    for (int i = 0; i < 8; i++)
        call_start(&k[i], &f.conn, FUSE_GETATTR, 10 + i, &out[i], sizeof out[i], 1);
    for (int i = 0; i < 8; i++)
        read_req(&f, NULL, NULL);
    close(f.fd);
    f.fd = -1;
    for (int i = 0; i < 8; i++)
        assert_int_equal(call_join(&k[i]), -ENOTCONN);
    assert_true(conn_dead(&f.conn));
    call_start(&k[0], &f.conn, FUSE_GETATTR, 1, &out[0], sizeof out[0], 1);
    assert_int_equal(call_join(&k[0]), -ENOTCONN);
    fakesrv_stop(&f);
}

static void test_enosys_remembered(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct call k;
    call_start(&k, &f.conn, FUSE_FLUSH, 5, NULL, 0, 0);
    uint32_t op;
    fakesrv_reply(&f, read_req(&f, &op, NULL), -ENOSYS, NULL, 0);
    assert_int_equal(op, FUSE_FLUSH);
    assert_int_equal(call_join(&k), -ENOSYS);
    assert_true(conn_enosys(&f.conn, FUSE_FLUSH));
    call_start(&k, &f.conn, FUSE_FLUSH, 5, NULL, 0, 0);
    assert_int_equal(call_join(&k), -ENOSYS);
    assert_false(fakesrv_pending(&f, 50)); /* not sent again */
    fakesrv_stop(&f);
}

static void test_timeout_interrupt(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 200000000ull); /* 0.2 s */
    struct call k;
    struct fuse_attr_out out, a;
    memset(&a, 0, sizeof a);
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    uint64_t u = read_req(&f, NULL, NULL);
    /* No answer: an INTERRUPT for it comes. */
    char buf[256];
    fakesrv_read(&f, buf, sizeof buf);
    struct fuse_in_header *ih = (void *)buf;
    struct fuse_interrupt_in *ii = (void *)(ih + 1);
    assert_int_equal(ih->opcode, FUSE_INTERRUPT);
    assert_int_equal(ih->unique, u | 1);
    assert_int_equal(ii->unique, u);
    /* Still no answer: the call gives up. */
    assert_int_equal(call_join(&k), -ETIMEDOUT);
    /* A late reply is dropped; the next call works. */
    fakesrv_reply(&f, u, 0, &a, sizeof a);
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    a.attr.ino = 3;
    fakesrv_reply(&f, read_req(&f, NULL, NULL), 0, &a, sizeof a);
    assert_int_equal(call_join(&k), 0);
    assert_int_equal(out.attr.ino, 3);
    fakesrv_stop(&f);
}

static void test_interrupt_answers(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 200000000ull);
    struct call k;
    struct fuse_attr_out out;
    char buf[256];
    struct fuse_in_header *ih = (void *)buf;

    /* EINTR to the interrupted request: the call reports the timeout. */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    uint64_t u = read_req(&f, NULL, NULL);
    fakesrv_read(&f, buf, sizeof buf);
    assert_int_equal(ih->opcode, FUSE_INTERRUPT);
    fakesrv_reply(&f, u, -EINTR, NULL, 0);
    assert_int_equal(call_join(&k), -ETIMEDOUT);

    /* EAGAIN to the INTERRUPT: it is sent again. */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    u = read_req(&f, NULL, NULL);
    fakesrv_read(&f, buf, sizeof buf);
    assert_int_equal(ih->opcode, FUSE_INTERRUPT);
    fakesrv_reply(&f, ih->unique, -EAGAIN, NULL, 0);
    fakesrv_read(&f, buf, sizeof buf);
    assert_int_equal(ih->opcode, FUSE_INTERRUPT);
    assert_int_equal(ih->unique, u | 1);
    /* ENOSYS to it: no more interrupts, the call gives up at once. */
    fakesrv_reply(&f, ih->unique, -ENOSYS, NULL, 0);
    assert_int_equal(call_join(&k), -ETIMEDOUT);
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    read_req(&f, NULL, NULL);
    assert_int_equal(call_join(&k), -ETIMEDOUT);
    assert_false(fakesrv_pending(&f, 50)); /* no INTERRUPT this time */
    fakesrv_stop(&f);
}

/* A caller's interrupt (no timeout): INTERRUPT goes out, an EINTR answer
 * ends the call with EINTR; ENOSYS to it leaves the call waiting for its
 * normal reply. */
static void test_user_interrupt(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct call k;
    struct fuse_attr_out out, a;
    memset(&a, 0, sizeof a);
    char buf[256];
    struct fuse_in_header *ih = (void *)buf;
    assert_int_equal(conn_interrupt(&f.conn, pthread_self()), 0); /* not waiting */
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    uint64_t u = read_req(&f, NULL, NULL);
    assert_int_equal(conn_interrupt(&f.conn, k.t), 1);
    fakesrv_read(&f, buf, sizeof buf);
    assert_int_equal(ih->opcode, FUSE_INTERRUPT);
    assert_int_equal(ih->unique, u | 1);
    fakesrv_reply(&f, u, -EINTR, NULL, 0);
    assert_int_equal(call_join(&k), -EINTR);

    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    u = read_req(&f, NULL, NULL);
    assert_int_equal(conn_interrupt(&f.conn, k.t), 1);
    fakesrv_read(&f, buf, sizeof buf);
    fakesrv_reply(&f, ih->unique, -ENOSYS, NULL, 0);
    assert_false(fakesrv_pending(&f, 100));
    a.attr.ino = 8;
    fakesrv_reply(&f, u, 0, &a, sizeof a);
    assert_int_equal(call_join(&k), 0);
    assert_int_equal(out.attr.ino, 8);
    assert_int_equal(conn_interrupt(&f.conn, k.t), -ENOSYS);
    fakesrv_stop(&f);
}

/* A failure is recorded for the thread that made the call only; the
 * latency percentiles come from the histogram and stay within the max. */
static void test_failure_is_per_thread_and_p99(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    struct conn_failure fl;
    struct fuse_attr_out out, a;
    memset(&a, 0, sizeof a);
    struct call k;
    call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
    fakesrv_reply(&f, read_req(&f, NULL, NULL), -ENOENT, NULL, 0);
    assert_int_equal(call_join(&k), -ENOENT);
    assert_int_equal(conn_last_failure(&f.conn, &fl), -ENOENT); /* not ours */
    for (int i = 0; i < 100; i++) {
        call_start(&k, &f.conn, FUSE_GETATTR, 5, &out, sizeof out, 1);
        fakesrv_reply(&f, read_req(&f, NULL, NULL), 0, &a, sizeof a);
        assert_int_equal(call_join(&k), 0);
    }
    struct conn_opstat st[PROTO_MAX_OPCODE];
    conn_get_stats(&f.conn, st, NULL);
    uint64_t p99 = conn_lat_percentile(&st[FUSE_GETATTR], 99.0);
    uint64_t p50 = conn_lat_percentile(&st[FUSE_GETATTR], 50.0);
    assert_true(p50 > 0);
    assert_true(p50 <= p99);
    assert_true(p99 <= st[FUSE_GETATTR].max_ns);
    fakesrv_stop(&f);
}

/* conn_last_failure from the calling thread's own calls. */
static void *own_calls(void *arg)
{
    struct fakesrv *f = arg;
    uint64_t body = 0;
    struct fuse_attr_out out;
    struct iovec in = {&body, sizeof body}, ov = {&out, sizeof out};
    struct conn_req r = {.opcode = FUSE_GETATTR, .nodeid = 1, .in = &in, .incnt = 1,
                         .out = &ov, .outcnt = 1, .out_exact = 1};
    struct conn_failure fl;
    if (conn_call(&f->conn, &r) != -EIO || conn_last_failure(&f->conn, &fl) != 0 ||
        fl.opcode != FUSE_GETATTR || fl.error != -EIO || !fl.server_fault)
        return (void *)1;
    r.opcode = FUSE_ACCESS;
    ov.iov_len = 0;
    r.outcnt = 0;
    if (conn_call(&f->conn, &r) != -EACCES || conn_last_failure(&f->conn, &fl) != 0 ||
        fl.opcode != FUSE_ACCESS || fl.server_fault)
        return (void *)2;
    return NULL;
}

static void test_failure_fault_kinds(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 1 << 20, 0);
    pthread_t t;
    pthread_create(&t, NULL, own_calls, &f);
    struct fuse_attr_out a;
    memset(&a, 0, sizeof a);
    fakesrv_reply(&f, read_req(&f, NULL, NULL), 0, &a, 8);          /* malformed */
    fakesrv_reply(&f, read_req(&f, NULL, NULL), -EACCES, NULL, 0);   /* ordinary */
    void *res;
    pthread_join(t, &res);
    assert_null(res);
    fakesrv_stop(&f);
}

static void test_async_and_too_big(void **state)
{
    struct fakesrv f;
    fakesrv_start(&f, 38, 4096, 0);
    uint64_t body = 0;
    struct iovec in = {&body, sizeof body};
    assert_int_equal(conn_call_async(&f.conn, FUSE_RELEASE, 7, &in, 1), 0);
    uint32_t op;
    uint64_t u = read_req(&f, &op, NULL);
    assert_int_equal(op, FUSE_RELEASE);
    fakesrv_reply(&f, u, 0, NULL, 0);
    /* A request larger than max_write + 4096 is refused locally. */
    static char big[16384];
    struct iovec bin = {big, sizeof big};
    struct conn_req r = {.opcode = FUSE_SETXATTR, .nodeid = 1, .in = &bin, .incnt = 1};
    assert_int_equal(conn_call(&f.conn, &r), -E2BIG);
    assert_int_equal(f.conn.p.max_write, 4096);
    fakesrv_stop(&f); /* drains the async reply; ASan checks nothing leaked */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_garbage_dropped),
        cmocka_unit_test(test_malformed_replies),
        cmocka_unit_test(test_split_reply),
        cmocka_unit_test(test_split_interleaved),
        cmocka_unit_test(test_death),
        cmocka_unit_test(test_enosys_remembered),
        cmocka_unit_test(test_timeout_interrupt),
        cmocka_unit_test(test_interrupt_answers),
        cmocka_unit_test(test_user_interrupt),
        cmocka_unit_test(test_failure_is_per_thread_and_p99),
        cmocka_unit_test(test_failure_fault_kinds),
        cmocka_unit_test(test_async_and_too_big),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
