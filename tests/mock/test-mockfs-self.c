/*
 * test-mockfs-self.c - proves the mock server with a raw client: requests
 * are written by hand into the client end of the socketpair and the
 * replies read back, without the ufuse library.
 *
 * No shared state between tests; each makes and frees its own mock.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mock/mockfs.h"

#define OFFERED (FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | \
                 FUSE_DO_READDIRPLUS | FUSE_INIT_EXT)

/* Send one request: header plus up to three body parts. */
static void send_req(int fd, uint32_t opcode, uint64_t unique,
                     uint64_t nodeid, const void *a, size_t alen,
                     const void *b, size_t blen)
{
    unsigned char buf[65536];
    struct fuse_in_header h = {.opcode = opcode, .unique = unique,
                               .nodeid = nodeid};
    size_t len = sizeof(h) + alen + blen;
    assert_true(len <= sizeof(buf));
    h.len = (uint32_t)len;
    memcpy(buf, &h, sizeof(h));
    if (alen)
        memcpy(buf + sizeof(h), a, alen);
    if (blen)
        memcpy(buf + sizeof(h) + alen, b, blen);
    assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Receive one datagram (bounded wait).  @return its size, 0 at EOF. */
static ssize_t recv_msg(int fd, void *buf, size_t cap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = poll(&p, 1, MOCK_WAIT_MS);
    assert_true(rc == 1);
    ssize_t n = recv(fd, buf, cap, 0);
    assert_true(n >= 0);
    return n;
}

/* Nothing arrives within a short while (used only for "no reply"). */
static bool quiet(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

static void do_init(struct mock *m, int fd, unsigned char *reply,
                    size_t cap, ssize_t *n)
{
    struct fuse_init_in in = {.major = 7, .minor = 38,
                              .max_readahead = 1 << 20,
                              .flags = (uint32_t)OFFERED,
                              .flags2 = (uint32_t)(FUSE_SECURITY_CTX >> 32)};
    send_req(fd, FUSE_INIT, 2, 0, &in, sizeof(in), NULL, 0);
    *n = recv_msg(fd, reply, cap);
    (void)m;
}

static int mount_raw(struct mock *m)
{
    int fd = mock_client_fd(m);
    unsigned char r[256];
    ssize_t n;
    do_init(m, fd, r, sizeof(r), &n);
    assert_int_equal(n, 16 + sizeof(struct fuse_init_out));
    return fd;
}

static void t_init_default(void **state)
{
    struct mock *m = mock_new(NULL);
    int fd = mock_client_fd(m);
    unsigned char r[256];
    ssize_t n;
    do_init(m, fd, r, sizeof(r), &n);
    assert_int_equal(n, 16 + sizeof(struct fuse_init_out));
    struct fuse_out_header oh;
    struct fuse_init_out io;
    memcpy(&oh, r, sizeof(oh));
    memcpy(&io, r + 16, sizeof(io));
    assert_int_equal(oh.len, n);
    assert_int_equal(oh.error, 0);
    assert_int_equal(oh.unique, 2);
    assert_int_equal(io.major, 7);
    assert_int_equal(io.minor, 38);
    /* Defaults granted, ANDed with what was offered. */
    assert_int_equal(io.flags, FUSE_ASYNC_READ | FUSE_BIG_WRITES |
                                   FUSE_MAX_PAGES | FUSE_INIT_EXT);
    assert_int_equal(io.flags2, 0);
    assert_int_equal(io.max_write, 131072);
    assert_int_equal(io.max_pages, 32);
    assert_int_equal(io.max_readahead, 1 << 20);

    struct fuse_init_in got;
    size_t len;
    assert_true(mock_init_request(m, &got, &len));
    assert_int_equal(len, sizeof(got));
    assert_int_equal(got.flags, (uint32_t)OFFERED);
    assert_int_equal(got.flags2, 1);
    assert_int_equal(mock_minor(m), 38);
    close(fd);
    mock_verify(m);
    mock_free(m);
}

static void t_init_variants(void **state)
{
    struct mock_init_cfg cfg;
    unsigned char r[256];
    ssize_t n;
    struct fuse_out_header oh;

    /* 7.19: the 24-byte INIT reply of protocols before 7.23. */
    mock_init_defaults(&cfg);
    cfg.minor = 19;
    struct mock *m = mock_new(&cfg);
    int fd = mock_client_fd(m);
    do_init(m, fd, r, sizeof(r), &n);
    assert_int_equal(n, 16 + FUSE_COMPAT_22_INIT_OUT_SIZE);
    assert_int_equal(mock_minor(m), 19);
    close(fd);
    mock_verify(m);
    mock_free(m);

    /* An INIT error. */
    mock_init_defaults(&cfg);
    cfg.error = -EPROTO;
    m = mock_new(&cfg);
    fd = mock_client_fd(m);
    do_init(m, fd, r, sizeof(r), &n);
    assert_int_equal(n, 16);
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.error, -EPROTO);
    close(fd);
    mock_verify(m);
    mock_free(m);

    /* Raw flags: granted even if not offered; high flags in flags2. */
    mock_init_defaults(&cfg);
    cfg.raw_flags = true;
    cfg.flags = FUSE_POSIX_ACL | FUSE_INIT_EXT | FUSE_HAS_INODE_DAX;
    cfg.major = 8;
    m = mock_new(&cfg);
    fd = mock_client_fd(m);
    do_init(m, fd, r, sizeof(r), &n);
    struct fuse_init_out io;
    memcpy(&io, r + 16, sizeof(io));
    assert_int_equal(io.major, 8);
    assert_int_equal(io.flags, FUSE_POSIX_ACL | FUSE_INIT_EXT);
    assert_int_equal(io.flags2, FUSE_HAS_INODE_DAX >> 32);
    close(fd);
    mock_verify(m);
    mock_free(m);

    /* Death at INIT: the client sees EOF. */
    mock_init_defaults(&cfg);
    cfg.action = MOCK_INIT_DIE;
    m = mock_new(&cfg);
    fd = mock_client_fd(m);
    do_init(m, fd, r, sizeof(r), &n);
    assert_int_equal(n, 0);
    close(fd);
    mock_verify(m);
    mock_free(m);
}

static void t_ordered_replies(void **state)
{
    struct mock *m = mock_new(NULL);
    int fd = mount_raw(m);
    unsigned char r[8192];

    struct fuse_entry_out eo = mock_entry(5, S_IFREG | 0644, 100, 10, 20);
    mock_reply_entry(mock_expect_lookup(m, 1, "a"), &eo);
    struct fuse_attr_out ao = mock_attr_out(5, S_IFREG | 0600, 200, 1);
    struct mock_exp *g = mock_expect_getattr(m, 5);
    MOCK_MATCH(g, struct fuse_getattr_in, getattr_flags, FUSE_GETATTR_FH);
    MOCK_MATCH(g, struct fuse_getattr_in, fh, 9);
    mock_reply_attr(g, &ao);
    struct mock_exp *rd = mock_expect_read(m, 5, 9, 4096, 100);
    mock_act_delay(rd, 5);
    mock_reply_pattern(rd, 4096, 100);

    send_req(fd, FUSE_LOOKUP, 4, 1, "a", 2, NULL, 0);
    ssize_t n = recv_msg(fd, r, sizeof(r));
    assert_int_equal(n, 16 + sizeof(eo));
    assert_memory_equal(r + 16, &eo, sizeof(eo));

    struct fuse_getattr_in gi = {.getattr_flags = FUSE_GETATTR_FH, .fh = 9};
    send_req(fd, FUSE_GETATTR, 6, 5, &gi, sizeof(gi), NULL, 0);
    n = recv_msg(fd, r, sizeof(r));
    assert_int_equal(n, 16 + sizeof(ao));
    assert_memory_equal(r + 16, &ao, sizeof(ao));

    struct fuse_read_in ri = {.fh = 9, .offset = 4096, .size = 100};
    send_req(fd, FUSE_READ, 8, 5, &ri, sizeof(ri), NULL, 0);
    n = recv_msg(fd, r, sizeof(r));
    assert_int_equal(n, 116);
    unsigned char want[100];
    mock_pattern(want, 100, 4096);
    assert_memory_equal(r + 16, want, 100);
    struct fuse_out_header oh;
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.unique, 8);

    close(fd);
    mock_verify(m);
    assert_int_equal(mock_log_count(m, 0), 4);
    assert_int_equal(mock_log_count(m, FUSE_READ), 1);
    struct mock_req q;
    assert_int_equal(mock_log_find(m, FUSE_GETATTR, 0, &q), 2);
    assert_int_equal(q.h.unique, 6);
    assert_int_equal(mock_log_find(m, FUSE_WRITE, 0, NULL), (size_t)-1);
    struct mock_req a, b;
    assert_true(mock_log_get(m, 1, &a));
    assert_true(mock_log_get(m, 3, &b));
    assert_true(b.t_ns >= a.t_ns);
    assert_string_equal(mock_req_name(m, &a, 0), "a");
    assert_false(mock_log_get(m, 4, NULL));
    mock_free(m);
}

/* Order matters, and a request out of order is a problem with a dump. */
static void t_unexpected(void **state)
{
    struct mock *m = mock_new(NULL);
    int fd = mount_raw(m);
    unsigned char r[256];

    struct fuse_entry_out eo = mock_entry(5, S_IFREG | 0644, 0, 0, 0);
    mock_reply_entry(mock_expect_lookup(m, 1, "first"), &eo);
    mock_reply_entry(mock_expect_lookup(m, 1, "second"), &eo);

    send_req(fd, FUSE_LOOKUP, 4, 1, "second", 7, NULL, 0);
    ssize_t n = recv_msg(fd, r, sizeof(r));
    struct fuse_out_header oh;
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(n, 16);
    assert_int_equal(oh.error, -EIO);

    send_req(fd, FUSE_LOOKUP, 6, 1, "first", 6, NULL, 0);
    n = recv_msg(fd, r, sizeof(r));
    assert_int_equal(n, 16 + sizeof(eo));
    send_req(fd, FUSE_LOOKUP, 8, 1, "second", 7, NULL, 0);
    n = recv_msg(fd, r, sizeof(r));
    assert_int_equal(n, 16 + sizeof(eo));
    close(fd);
    char text[4096];
    assert_int_equal(mock_check(m, text, sizeof(text)), 1);
    assert_non_null(strstr(text, "unexpected request"));
    assert_non_null(strstr(text, "LOOKUP"));
    assert_non_null(strstr(text, "\"second\""));
    assert_non_null(strstr(text, "next expected: exp 1: LOOKUP"));
    mock_clear_problems(m);
    mock_verify(m);
    mock_free(m);
}

static void t_unordered(void **state)
{
    struct mock *m = mock_new(NULL);
    int fd = mount_raw(m);
    unsigned char r[256];

    mock_unordered_begin(m);
    mock_reply_pattern(mock_expect_read(m, 2, 1, 0, 10), 0, 10);
    mock_reply_pattern(mock_expect_read(m, 2, 1, 10, 10), 10, 10);
    mock_reply_pattern(mock_expect_read(m, 2, 1, 20, 10), 20, 10);
    mock_unordered_end(m);
    mock_reply_err(mock_expect(m, FUSE_FLUSH, 2), 0);

    uint64_t offs[3] = {20, 0, 10};
    for (int i = 0; i < 3; i++) {
        struct fuse_read_in ri = {.fh = 1, .offset = offs[i], .size = 10};
        send_req(fd, FUSE_READ, 10 + 2 * (uint64_t)i, 2, &ri, sizeof(ri),
                 NULL, 0);
        ssize_t n = recv_msg(fd, r, sizeof(r));
        assert_int_equal(n, 26);
        unsigned char want[10];
        mock_pattern(want, 10, offs[i]);
        assert_memory_equal(r + 16, want, 10);
    }
    struct fuse_flush_in fi = {.fh = 1};
    send_req(fd, FUSE_FLUSH, 20, 2, &fi, sizeof(fi), NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16);
    close(fd);
    mock_verify(m);
    mock_free(m);
}

static void t_raw_split_notify(void **state)
{
    struct mock *m = mock_new(NULL);
    int fd = mount_raw(m);
    static unsigned char r[200000];

    /* RAW with the unique filled in. */
    unsigned char raw[24] = {0};
    uint32_t bogus_len = 99;
    memcpy(raw, &bogus_len, 4);
    mock_reply_raw(mock_expect(m, FUSE_STATFS, 1), raw, sizeof(raw),
                   MOCK_RAW_FILL_UNIQUE);
    send_req(fd, FUSE_STATFS, 30, 1, NULL, 0, NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 24);
    struct fuse_out_header oh;
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.len, 99);
    assert_int_equal(oh.unique, 30);

    /* A reply split over three datagrams. */
    size_t total = 135184, sizes[3] = {61424, 65536, 8224};
    unsigned char *data = malloc(total - 16);
    mock_pattern(data, total - 16, 0);
    struct mock_exp *e = mock_expect_read(m, 2, 1, 0, 135168);
    mock_reply_split(e, 0, data, total - 16, sizes, 3);
    struct fuse_read_in ri = {.fh = 1, .offset = 0, .size = 135168};
    send_req(fd, FUSE_READ, 32, 2, &ri, sizeof(ri), NULL, 0);
    size_t pos = 0;
    for (int i = 0; i < 3; i++) {
        ssize_t n = recv_msg(fd, r + pos, sizeof(r) - pos);
        assert_int_equal(n, sizes[i]);
        pos += (size_t)n;
    }
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.len, total);
    assert_memory_equal(r + 16, data, total - 16);
    free(data);

    /* A notification before the reply, then one on demand. */
    unsigned char nb[64];
    size_t nl = mock_build_inval_entry(nb, sizeof(nb), 1, "x");
    assert_int_equal(nl, sizeof(struct fuse_notify_inval_entry_out) + 2);
    e = mock_expect(m, FUSE_STATFS, 1);
    mock_act_notify(e, FUSE_NOTIFY_INVAL_ENTRY, nb, nl);
    struct fuse_kstatfs st = {.blocks = 10, .bsize = 4096};
    mock_reply_statfs(e, &st);
    send_req(fd, FUSE_STATFS, 34, 1, NULL, 0, NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16 + nl);
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.unique, 0);
    assert_int_equal(oh.error, FUSE_NOTIFY_INVAL_ENTRY);
    assert_int_equal(recv_msg(fd, r, sizeof(r)),
                     16 + sizeof(struct fuse_statfs_out));
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.unique, 34);

    struct fuse_notify_inval_inode_out ii = {.ino = 7, .off = 0, .len = -1};
    assert_int_equal(mock_notify(m, FUSE_NOTIFY_INVAL_INODE, &ii, sizeof(ii)), 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16 + sizeof(ii));
    assert_memory_equal(r + 16, &ii, sizeof(ii));

    /* NOTIFY_REPLY is allowed and logged; its data can be matched. */
    struct fuse_notify_retrieve_in nr = {.offset = 0, .size = 3};
    e = mock_expect(m, FUSE_NOTIFY_REPLY, 7);
    mock_match_data(e, "abc", 3);
    send_req(fd, FUSE_NOTIFY_REPLY, 77, 7, &nr, sizeof(nr), "abc", 3);
    assert_true(mock_wait(m, e, MOCK_WAIT_MS));
    send_req(fd, FUSE_NOTIFY_REPLY, 78, 7, &nr, sizeof(nr), "xyz", 3);
    assert_true(mock_wait_log(m, FUSE_NOTIFY_REPLY, 2, MOCK_WAIT_MS));
    assert_true(quiet(fd, 50));
    close(fd);
    mock_verify(m);
    mock_free(m);
}

static void t_deferred_and_interrupt(void **state)
{
    struct mock *m = mock_new(NULL);
    int fd = mount_raw(m);
    unsigned char r[256];

    struct mock_exp *rd = mock_expect_read(m, 2, 1, 0, 4096);
    mock_no_reply(rd);
    struct mock_exp *in1 = mock_expect(m, FUSE_INTERRUPT, MOCK_ANY_NODE);
    mock_match_interrupt_of(in1, rd);
    mock_reply_err(in1, -EAGAIN);
    struct mock_exp *in2 = mock_expect(m, FUSE_INTERRUPT, MOCK_ANY_NODE);
    mock_match_interrupt_of(in2, rd);
    mock_act_reply_to(in2, rd, -EINTR, NULL, 0);

    struct fuse_read_in ri = {.fh = 1, .offset = 0, .size = 4096};
    send_req(fd, FUSE_READ, 40, 2, &ri, sizeof(ri), NULL, 0);
    assert_true(mock_wait(m, rd, MOCK_WAIT_MS));
    assert_int_equal(mock_exp_unique(m, rd), 40);
    assert_true(quiet(fd, 20));

    struct fuse_interrupt_in ii = {.unique = 40};
    send_req(fd, FUSE_INTERRUPT, 41, 0, &ii, sizeof(ii), NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16);
    struct fuse_out_header oh;
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.unique, 41);
    assert_int_equal(oh.error, -EAGAIN);

    send_req(fd, FUSE_INTERRUPT, 41, 0, &ii, sizeof(ii), NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16);
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.unique, 40);
    assert_int_equal(oh.error, -EINTR);

    /* A reply sent later from the test thread. */
    struct mock_exp *rd2 = mock_expect_read(m, 2, 1, 8192, 10);
    send_req(fd, FUSE_READ, 42, 2,
             &(struct fuse_read_in){.fh = 1, .offset = 8192, .size = 10},
             sizeof(ri), NULL, 0);
    assert_true(mock_wait(m, rd2, MOCK_WAIT_MS));
    assert_int_equal(mock_exp_count(m, rd2), 1);
    assert_int_equal(mock_respond(m, rd2, 0, "0123456789", 10), 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 26);
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.unique, 42);
    assert_memory_equal(r + 16, "0123456789", 10);

    /* An INTERRUPT whose unique lacks the bit is flagged. */
    mock_clear_problems(m);
    struct mock_exp *in3 = mock_expect(m, FUSE_INTERRUPT, MOCK_ANY_NODE);
    mock_match_interrupt_of(in3, rd2);
    send_req(fd, FUSE_INTERRUPT, 44, 0,
             &(struct fuse_interrupt_in){.unique = 42}, 8, NULL, 0);
    assert_true(mock_wait_log(m, FUSE_INTERRUPT, 3, MOCK_WAIT_MS));
    close(fd);
    char text[2048];
    assert_int_equal(mock_check(m, text, sizeof(text)), 3);
    assert_non_null(strstr(text, "FUSE_INT_REQ_BIT"));
    assert_non_null(strstr(text, "unexpected request"));
    assert_non_null(strstr(text, "unmet expectation: exp 5: INTERRUPT"));
    mock_free(m);
}

static void t_death_and_eof(void **state)
{
    struct mock *m = mock_new(NULL);
    int fd = mount_raw(m);
    unsigned char r[256];

    struct mock_exp *e = mock_expect(m, FUSE_STATFS, 1);
    mock_act_die(e);
    mock_reply_err(e, 0); /* skipped: dead */
    send_req(fd, FUSE_STATFS, 50, 1, NULL, 0, NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 0);
    assert_true(mock_wait(m, e, MOCK_WAIT_MS));
    /* Sending to a dead server fails with EPIPE. */
    unsigned char h[40] = {40};
    assert_int_equal(send(fd, h, sizeof(h), MSG_NOSIGNAL), -1);
    assert_int_equal(errno, EPIPE);
    close(fd);
    mock_verify(m);
    mock_free(m);

    /* mock_kill from the test thread. */
    m = mock_new(NULL);
    fd = mount_raw(m);
    mock_kill(m);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 0);
    close(fd);
    mock_verify(m);
    mock_free(m);

    /* A client that never takes its end: mock_free closes both. */
    m = mock_new(NULL);
    mock_free(m);
}

static void t_request_checks(void **state)
{
    struct mock *m = mock_new(NULL);
    int fd = mount_raw(m);
    unsigned char r[256];

    /* write_in.size disagrees with the data. */
    struct mock_exp *w = mock_expect(m, FUSE_WRITE, 2);
    mock_reply_write(w, 4);
    struct fuse_write_in wi = {.fh = 1, .offset = 0, .size = 5};
    send_req(fd, FUSE_WRITE, 60, 2, &wi, sizeof(wi), "abcd", 4);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16 + 8);
    /* A READ body of the wrong size. */
    mock_reply_err(mock_expect(m, FUSE_READ, 2), -EIO);
    send_req(fd, FUSE_READ, 62, 2, &wi, 16, NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16);
    /* A LOOKUP name without NUL. */
    mock_reply_err(mock_expect(m, FUSE_LOOKUP, 1), -ENOENT);
    send_req(fd, FUSE_LOOKUP, 64, 1, "abc", 3, NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16);
    /* FORGET is allowed silently, DESTROY answered 0. */
    struct fuse_forget_in fo = {.nlookup = 1};
    send_req(fd, FUSE_FORGET, 66, 5, &fo, sizeof(fo), NULL, 0);
    send_req(fd, FUSE_DESTROY, 68, 0, NULL, 0, NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16);
    struct fuse_out_header oh;
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.unique, 68);
    assert_int_equal(oh.error, 0);
    /* Allow an opcode with an error. */
    mock_allow(m, FUSE_ACCESS, -ENOSYS);
    send_req(fd, FUSE_ACCESS, 70, 1,
             &(struct fuse_access_in){.mask = 4}, 8, NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16);
    memcpy(&oh, r, sizeof(oh));
    assert_int_equal(oh.error, -ENOSYS);
    /* times(): the same exp three times. */
    struct mock_exp *t = mock_expect(m, FUSE_GETATTR, 1);
    mock_times(t, 3);
    struct fuse_attr_out ao = mock_attr_out(1, S_IFDIR | 0755, 0, 0);
    mock_reply_attr(t, &ao);
    for (int i = 0; i < 3; i++) {
        send_req(fd, FUSE_GETATTR, 72 + 2 * (uint64_t)i, 1,
                 &(struct fuse_getattr_in){0}, 16, NULL, 0);
        assert_int_equal(recv_msg(fd, r, sizeof(r)), 16 + sizeof(ao));
    }
    assert_int_equal(mock_exp_count(m, t), 3);
    close(fd);
    char text[4096];
    assert_int_equal(mock_check(m, text, sizeof(text)), 3);
    assert_non_null(strstr(text, "write_in.size 5 but 4 data bytes"));
    assert_non_null(strstr(text, "body of 16 bytes, expected 40"));
    assert_non_null(strstr(text, "not NUL-terminated"));
    mock_free(m);
}

/* The old-protocol layouts: compat entry size and WRITE header at 7.8. */
static void t_old_minor_layout(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.minor = 8;
    struct mock *m = mock_new(&cfg);
    int fd = mock_client_fd(m);
    unsigned char r[512];
    ssize_t n;
    do_init(m, fd, r, sizeof(r), &n);
    assert_int_equal(n, 16 + FUSE_COMPAT_22_INIT_OUT_SIZE);

    struct fuse_entry_out eo = mock_entry(5, S_IFREG | 0644, 1, 1, 1);
    mock_reply_entry(mock_expect_lookup(m, 1, "a"), &eo);
    struct mock_exp *w = mock_expect_write(m, 5, 3, 0, "hello", 5);
    mock_reply_write(w, 5);
    struct mock_exp *mk = mock_expect(m, FUSE_MKNOD, 1);
    mock_match_name(mk, 0, "dev");
    mock_reply_entry(mk, &eo);

    send_req(fd, FUSE_LOOKUP, 4, 1, "a", 2, NULL, 0);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16 + FUSE_COMPAT_ENTRY_OUT_SIZE);
    struct fuse_write_in wi = {.fh = 3, .offset = 0, .size = 5};
    send_req(fd, FUSE_WRITE, 6, 5, &wi, FUSE_COMPAT_WRITE_IN_SIZE, "hello", 5);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16 + 8);
    struct fuse_mknod_in mi = {.mode = S_IFCHR | 0600};
    send_req(fd, FUSE_MKNOD, 8, 1, &mi, FUSE_COMPAT_MKNOD_IN_SIZE, "dev", 4);
    assert_int_equal(recv_msg(fd, r, sizeof(r)), 16 + FUSE_COMPAT_ENTRY_OUT_SIZE);
    close(fd);
    mock_verify(m);
    mock_free(m);
}

static void t_dirbuf(void **state)
{
    struct mock_dirbuf b = {0};
    mock_dirbuf_add(&b, 1, 1, 4, ".");
    mock_dirbuf_add(&b, 7, 2, 8, "file.txt");
    assert_int_equal(b.len, 32 + 32);
    struct fuse_dirent d;
    memcpy(&d, b.buf + 32, sizeof(d));
    assert_int_equal(d.ino, 7);
    assert_int_equal(d.off, 2);
    assert_int_equal(d.namelen, 8);
    assert_memory_equal(b.buf + 32 + FUSE_NAME_OFFSET, "file.txt", 8);
    mock_dirbuf_free(&b);
    struct fuse_entry_out eo = mock_entry(9, S_IFREG | 0644, 3, 1, 1);
    mock_dirbuf_addplus(&b, &eo, 1, 8, "abc");
    assert_int_equal(b.len, FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + 3));
    mock_dirbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_init_default),
        cmocka_unit_test(t_init_variants),
        cmocka_unit_test(t_ordered_replies),
        cmocka_unit_test(t_unexpected),
        cmocka_unit_test(t_unordered),
        cmocka_unit_test(t_raw_split_notify),
        cmocka_unit_test(t_deferred_and_interrupt),
        cmocka_unit_test(t_death_and_eof),
        cmocka_unit_test(t_request_checks),
        cmocka_unit_test(t_old_minor_layout),
        cmocka_unit_test(t_dirbuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
