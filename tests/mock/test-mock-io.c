/*
 * test-mock-io.c - the direct data path against the mock: READ/WRITE
 * chunking by max_read/max_write, short reads, short writes (resent, or
 * returned for direct_io), an over-long write acknowledgement, zero-length
 * I/O, O_APPEND, the cached size after an extending write, ftruncate;
 * with FUSE_ASYNC_DIO, the READs of one read sent together (not for a
 * stream), collected in order up to the first short one; polling for a
 * reply (spin=) and its rest when the server is slower than the window.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock/mockutil.h"

/* pread of @len at @off returns all of it, the mock's pattern. */
static void expect_pread_pattern(ufuse_file_t *f, size_t len, off_t off)
{
    static unsigned char buf[65536], want[65536];
    assert_true(len <= sizeof buf);
    assert_int_equal(ufuse_pread(f, buf, len, off), (ssize_t)len);
    mock_pattern(want, len, (uint64_t)off);
    assert_memory_equal(buf, want, len);
}

/* pread of 20000 bytes at 100 with max_read=8k: 8192 + 8192 + 3616. */
static void t_read_chunks(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,max_read=8k");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    uint64_t off = 100;
    uint32_t sizes[] = {8192, 8192, 3616};
    for (int i = 0; i < 3; i++) {
        mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, off, sizes[i]),
                           off, sizes[i]);
        off += sizes[i];
    }
    expect_pread_pattern(f, 20000, 100);
    mu_close(m, f);
    mu_finish(m, s);
}

/* pwrite of 20000 bytes with the server's max_write 8192. */
static void t_write_chunks(void **state)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.max_write = 8192;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, &cfg, NULL);
    ufuse_file_t *f = mu_open(m, s, O_WRONLY, 0, 3600, 0);
    unsigned char data[20000];
    mock_pattern(data, sizeof(data), 5000);
    uint32_t sizes[] = {8192, 8192, 3616};
    size_t pos = 0;
    for (int i = 0; i < 3; i++) {
        struct mock_exp *w = mock_expect_write(m, MU_INO, MU_FH, 5000 + pos,
                                               data + pos, sizes[i]);
        MOCK_MATCH(w, struct fuse_write_in, write_flags, 0);
        mock_reply_write(w, sizes[i]);
        pos += sizes[i];
    }
    assert_int_equal(ufuse_pwrite(f, data, sizeof(data), 5000), 20000);
    mu_close(m, f);
    mu_finish(m, s);
}

/* The mount option caps max_write below the server's. */
static void t_write_chunks_option(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,max_write=4k");
    ufuse_file_t *f = mu_open(m, s, O_WRONLY, 0, 3600, 0);
    unsigned char data[10000];
    mock_pattern(data, sizeof(data), 0);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 0, data, 4096), 4096);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 4096, data + 4096,
                                       4096), 4096);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 8192, data + 8192,
                                       1808), 1808);
    assert_int_equal(ufuse_pwrite(f, data, sizeof(data), 0), 10000);
    mu_close(m, f);
    mu_finish(m, s);
}

/* A READ answered short ends the read: bytes so far, no further READ. */
static void t_short_read(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,max_read=8k");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 0, 8192), 0, 8192);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 8192, 8192), 8192,
                       1000);
    unsigned char buf[30000], want[9192];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), 9192);
    mock_pattern(want, sizeof(want), 0);
    assert_memory_equal(buf, want, sizeof(want));

    /* At EOF: one READ answered empty gives 0. */
    mock_reply(mock_expect_read(m, MU_INO, MU_FH, 50000, 100), NULL, 0);
    assert_int_equal(ufuse_pread(f, buf, 100, 50000), 0);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_READ), 3);
    mu_finish(m, s);
}

/* A short write acknowledgement: the rest is resent from there. */
static void t_short_write_resend(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_WRONLY, 0, 3600, 0);
    unsigned char data[10000];
    mock_pattern(data, sizeof(data), 77);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 0, data, 10000), 4000);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 4000, data + 4000,
                                       6000), 1000);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 5000, data + 5000,
                                       5000), 5000);
    assert_int_equal(ufuse_pwrite(f, data, sizeof(data), 0), 10000);
    mu_close(m, f);
    mu_finish(m, s);
}

/* direct_io: the short count is returned, nothing resent. */
static void t_short_write_direct_io(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_WRONLY, 0, 3600, FOPEN_DIRECT_IO);
    unsigned char data[10000];
    mock_pattern(data, sizeof(data), 0);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 0, data, 10000), 4000);
    assert_int_equal(ufuse_pwrite(f, data, sizeof(data), 0), 4000);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_WRITE), 1);
    mu_finish(m, s);
}

/* A write acknowledged for more than was sent: -EINVAL, attrs dropped. */
static void t_write_overlong_ack(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 1000, 3600, 0);
    char data[100];
    memset(data, 'x', sizeof(data));
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 0, data, 100), 200);
    assert_int_equal(ufuse_pwrite(f, data, sizeof(data), 0), -EINVAL);

    /* The attributes (valid for an hour) were dropped: fstat asks. */
    struct mock_exp *g = mock_expect_getattr(m, MU_INO);
    MOCK_MATCH(g, struct fuse_getattr_in, getattr_flags, FUSE_GETATTR_FH);
    MOCK_MATCH(g, struct fuse_getattr_in, fh, MU_FH);
    struct fuse_attr_out ao = mock_attr_out(MU_INO, S_IFREG | 0644, 1000, 3600);
    mock_reply_attr(g, &ao);
    struct stat st;
    assert_int_equal(ufuse_fstat(f, &st), 0);
    assert_int_equal(st.st_size, 1000);
    mu_close(m, f);
    mu_finish(m, s);
}

/* Zero-length reads and writes send nothing. */
static void t_zero_length(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 1000, 3600, 0);
    char buf[1];
    assert_int_equal(ufuse_pread(f, buf, 0, 0), 0);
    assert_int_equal(ufuse_pread(f, buf, 0, 500), 0);
    assert_int_equal(ufuse_pwrite(f, buf, 0, 0), 0);
    assert_int_equal(ufuse_pwrite(f, buf, 0, 5000), 0);
    assert_int_equal(ufuse_read(f, buf, 0), 0);
    assert_int_equal(ufuse_write(f, buf, 0), 0);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_READ), 0);
    assert_int_equal(mock_log_count(m, FUSE_WRITE), 0);
    mu_finish(m, s);
}

/* O_APPEND writes go at the file size, with a GETATTR when it expired. */
static void t_append(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);

    /* Attributes valid: the size from the LOOKUP. */
    ufuse_file_t *f = mu_open(m, s, O_WRONLY | O_APPEND, 1000, 3600, 0);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 1000, "abc", 3), 3);
    assert_int_equal(ufuse_pwrite(f, "abc", 3, 0), 3);
    /* The cached size grew: the next append goes at 1003. */
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 1003, "de", 2), 2);
    assert_int_equal(ufuse_write(f, "de", 2), 2);
    mu_close(m, f);
    mu_finish(m, s);

    /* Attributes not cached: GETATTR first, then the WRITE at its size. */
    m = mu_mount(&s, NULL, NULL);
    f = mu_open(m, s, O_WRONLY | O_APPEND, 1000, 0, 0);
    struct fuse_attr_out ao = mock_attr_out(MU_INO, S_IFREG | 0644, 5000, 0);
    mock_reply_attr(mock_expect_getattr(m, MU_INO), &ao);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 5000, "abc", 3), 3);
    assert_int_equal(ufuse_pwrite(f, "abc", 3, 0), 3);
    mu_close(m, f);
    mu_finish(m, s);
}

/* An extending write updates the cached size; fstat needs no request. */
static void t_extending_write(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 100, 3600, 0);
    char data[50];
    memset(data, 'y', sizeof(data));
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 200, data, 50), 50);
    assert_int_equal(ufuse_pwrite(f, data, 50, 200), 50);
    struct stat st;
    assert_int_equal(ufuse_fstat(f, &st), 0);
    assert_int_equal(st.st_size, 250);
    /* A write inside the file leaves the size. */
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 0, data, 10), 10);
    assert_int_equal(ufuse_pwrite(f, data, 10, 0), 10);
    assert_int_equal(ufuse_fstat(f, &st), 0);
    assert_int_equal(st.st_size, 250);
    assert_int_equal(mock_log_count(m, FUSE_GETATTR), 0);
    mu_close(m, f);
    mu_finish(m, s);
}

/* ftruncate: SETATTR(FATTR_SIZE|FATTR_FH, size, fh). */
static void t_ftruncate(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 100, 3600, 0);
    struct mock_exp *e = mock_expect_setattr(m, MU_INO, FATTR_SIZE | FATTR_FH);
    MOCK_MATCH(e, struct fuse_setattr_in, size, 12345);
    MOCK_MATCH(e, struct fuse_setattr_in, fh, MU_FH);
    struct fuse_attr_out ao = mock_attr_out(MU_INO, S_IFREG | 0644, 12345, 3600);
    mock_reply_attr(e, &ao);
    assert_int_equal(ufuse_ftruncate(f, 12345), 0);
    mu_close(m, f);
    mu_finish(m, s);
}

/* Errors from the server come back as they are. */
static void t_read_error(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 100, 3600, 0);
    mock_reply_err(mock_expect_read(m, MU_INO, MU_FH, 0, 10), -EIO);
    char buf[10];
    assert_int_equal(ufuse_pread(f, buf, 10, 0), -EIO);
    mock_reply_err(mock_expect_read(m, MU_INO, MU_FH, 0, 10), -ENOSPC);
    assert_int_equal(ufuse_pread(f, buf, 10, 0), -ENOSPC);
    mu_close(m, f);
    mu_finish(m, s);
}

/* FOPEN_NONSEEKABLE: pread/pwrite/lseek are ESPIPE without a request;
 * read and write go on at the handle's position. */
static void t_nonseekable(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 100, 3600, FOPEN_NONSEEKABLE);
    char buf[8];
    size_t before = mock_log_count(m, 0);
    assert_int_equal(ufuse_pread(f, buf, sizeof buf, 0), -ESPIPE);
    assert_int_equal(ufuse_pwrite(f, buf, sizeof buf, 0), -ESPIPE);
    assert_int_equal(ufuse_lseek(f, 0, SEEK_SET), -ESPIPE);
    assert_int_equal(mock_log_count(m, 0), before);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 0, 8), 0, 8);
    assert_int_equal(ufuse_read(f, buf, 8), 8);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 8, 8), 8, 8);
    assert_int_equal(ufuse_read(f, buf, 8), 8);
    mu_close(m, f);
    mu_finish(m, s);
}

/* A session whose server grants FUSE_ASYNC_DIO. */
static struct mock *mount_async_dio(ufuse_t **s, const char *opts)
{
    struct mock_init_cfg cfg;
    mock_init_defaults(&cfg);
    cfg.flags |= FUSE_ASYNC_DIO;
    return mu_mount(s, &cfg, opts);
}

/* ASYNC_DIO: pread of 20000 at 100 with max_read=8k sends its three READs
 * before any is answered (the mock answers the first two only once the
 * third has come; one at a time, the first would time out). */
static void t_read_parallel(void **state)
{
    ufuse_t *s;
    struct mock *m = mount_async_dio(&s, "cache=direct,max_read=8k,timeout=5");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    static unsigned char a[8192], b[8192];
    mock_pattern(a, sizeof a, 100);
    mock_pattern(b, sizeof b, 100 + 8192);
    struct mock_exp *r0 = mock_expect_read(m, MU_INO, MU_FH, 100, 8192);
    mock_no_reply(r0);
    struct mock_exp *r1 = mock_expect_read(m, MU_INO, MU_FH, 100 + 8192, 8192);
    mock_no_reply(r1);
    struct mock_exp *r2 = mock_expect_read(m, MU_INO, MU_FH, 100 + 16384, 3616);
    mock_act_reply_to(r2, r1, 0, b, sizeof b);
    mock_act_reply_to(r2, r0, 0, a, sizeof a);
    mock_reply_pattern(r2, 100 + 16384, 3616);
    expect_pread_pattern(f, 20000, 100);
    mu_close(m, f);
    mu_finish(m, s);
}

/* ASYNC_DIO: the second of three READs answered short ends the read
 * there; what the third brought is not part of the result; an error in
 * the first READ is the result. */
static void t_read_parallel_short(void **state)
{
    ufuse_t *s;
    struct mock *m = mount_async_dio(&s, "cache=direct,max_read=8k");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 0, 8192), 0, 8192);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 8192, 8192), 8192, 1000);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 16384, 8192), 16384, 8192);
    unsigned char buf[24576], want[9192];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), 9192);
    mock_pattern(want, sizeof(want), 0);
    assert_memory_equal(buf, want, sizeof(want));
    mock_reply_err(mock_expect_read(m, MU_INO, MU_FH, 0, 8192), EIO);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 8192, 8192), 8192, 8192);
    assert_int_equal(ufuse_pread(f, buf, 16384, 0), -EIO);
    mu_close(m, f);
    mu_finish(m, s);
}

struct read_op {
    ufuse_file_t *f;
    ssize_t rc;
};

static void *read_op_run(void *arg)
{
    struct read_op *r = arg;
    static char buf[16384];
    r->rc = ufuse_read(r->f, buf, sizeof buf);
    return NULL;
}

/* ASYNC_DIO, but a FOPEN_NONSEEKABLE file (a stream: each READ takes what
 * comes next): no second READ while the first is unanswered. */
static void t_read_parallel_stream(void **state)
{
    ufuse_t *s;
    struct mock *m = mount_async_dio(&s, "cache=direct,max_read=8k");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, FOPEN_NONSEEKABLE);
    struct mock_exp *r0 = mock_expect_read(m, MU_INO, MU_FH, 0, 8192);
    mock_no_reply(r0);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 8192, 8192), 8192, 8192);
    struct read_op r = {.f = f};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_op_run, &r), 0);
    assert_true(mock_wait(m, r0, MOCK_WAIT_MS));
    assert_false(mock_wait_log(m, FUSE_READ, 2, 300));
    static unsigned char a[8192];
    mock_pattern(a, sizeof a, 0);
    assert_int_equal(mock_respond(m, r0, 0, a, sizeof a), 0);
    pthread_join(t, NULL);
    assert_int_equal(r.rc, 16384);
    mu_close(m, f);
    mu_finish(m, s);
}

/* @n READs of 10 bytes at 0, each answered (after @delay_ms). */
static void reads_answered(struct mock *m, ufuse_file_t *f, int n, unsigned delay_ms)
{
    char buf[10];
    for (int i = 0; i < n; i++) {
        struct mock_exp *rd = mock_expect_read(m, MU_INO, MU_FH, 0, 10);
        if (delay_ms)
            mock_act_delay(rd, delay_ms);
        mock_reply_pattern(rd, 0, 10);
        assert_int_equal(ufuse_pread(f, buf, sizeof buf, 0), 10);
    }
}

/* spin=: a waiting thread polls for its reply before it sleeps; spin=0
 * never polls. */
static void t_poll_for_reply(void **state)
{
    (void)state;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,spin=1000");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    reads_answered(m, f, 20, 0);
    struct ufuse_conninfo ci;
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_true(ci.polled > 0); /* the mock answers well within 1 ms */
    mu_close(m, f);
    mu_finish(m, s);

    m = mu_mount(&s, NULL, "cache=direct,spin=0");
    f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    reads_answered(m, f, 20, 0);
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.polled, 0);
    assert_int_equal(ci.poll_misses, 0);
    mu_close(m, f);
    mu_finish(m, s);
}

/* A server slower than the window: after 8 polls in a row that found
 * nothing, the next 64 waits do not poll. */
static void t_poll_rests_for_slow_server(void **state)
{
    (void)state;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,spin=100");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    struct ufuse_conninfo before, after;
    assert_int_equal(ufuse_conninfo(s, &before), 0);
    reads_answered(m, f, 30, 5);
    assert_int_equal(ufuse_conninfo(s, &after), 0);
    assert_true(after.poll_misses - before.poll_misses >= 1);
    assert_true(after.poll_misses - before.poll_misses <= 8);
    mu_close(m, f);
    mu_finish(m, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_nonseekable),
        cmocka_unit_test(t_poll_for_reply),
        cmocka_unit_test(t_poll_rests_for_slow_server),
        cmocka_unit_test(t_read_chunks),
        cmocka_unit_test(t_read_parallel),
        cmocka_unit_test(t_read_parallel_short),
        cmocka_unit_test(t_read_parallel_stream),
        cmocka_unit_test(t_write_chunks),
        cmocka_unit_test(t_write_chunks_option),
        cmocka_unit_test(t_short_read),
        cmocka_unit_test(t_short_write_resend),
        cmocka_unit_test(t_short_write_direct_io),
        cmocka_unit_test(t_write_overlong_ack),
        cmocka_unit_test(t_zero_length),
        cmocka_unit_test(t_append),
        cmocka_unit_test(t_extending_write),
        cmocka_unit_test(t_ftruncate),
        cmocka_unit_test(t_read_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
