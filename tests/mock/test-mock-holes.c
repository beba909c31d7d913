/*
 * test-mock-holes.c - holes without I/O (issue 10): a cached read of a
 * sparse file learns the server's holes with LSEEK and zero-fills them
 * without READs, forgets them with the data, and never takes a doubtful
 * answer.  Exact request scripts against the mock server; each test fails
 * without the behaviour it names:
 *
 *   a long missing run asks SEEK_HOLE / SEEK_DATA once, READs only the
 *   data, and later reads of the hole (small ones too) send nothing;
 *   a write into the hole, a truncate below it and an INVAL_INODE forget
 *   what was learned (the next read READs); an open without KEEP_CACHE
 *   does too; LSEEK answered ENOSYS: plain READs, LSEEK never asked again;
 *   bad answers (an error, a malformed reply, a hole before the offset
 *   asked or past EOF, data not after the hole or at/past EOF) are not
 *   taken: the run is READ and the data is the server's.
 *
 * The file is 1 MiB with data in [0, 64 KiB) and [960 KiB, 1 MiB) and
 * reports st_blocks 0 (sparse: a file whose blocks cover its size is never
 * asked about, which every other mock test relies on).  readahead=0 keeps
 * the requests the caller's own (one getpages run per 128 KiB READ).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "mock/mockutil.h"

#define KIB 1024u
#define FSIZE (1024u * KIB)
#define DATA2 (960u * KIB)       /* the second data extent's start */
#define OPTS "cache=writethrough,readahead=0"

static unsigned char buf[FSIZE], want[FSIZE];

/* The server's file: the mock pattern in the data extents, zeros between. */
static void expected(unsigned char *b, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t o = off + i;
        if (o < 64 * KIB || o >= DATA2)
            mock_pattern(b + i, 1, o);
        else
            b[i] = 0;
    }
}

/* LOOKUP("/f") -> MU_INO, 1 MiB, st_blocks 0, valid for an hour. */
static void script_lookup(struct mock *m)
{
    struct mock_exp *e = mock_expect_lookup(m, FUSE_ROOT_ID, "f");
    struct fuse_entry_out eo = mock_entry(MU_INO, S_IFREG | 0644, FSIZE, 3600, 3600);
    eo.attr.blocks = 0;
    mock_reply_entry(e, &eo);
}

static ufuse_file_t *open_f(struct mock *m, ufuse_t *s, int flags, uint32_t open_flags)
{
    mock_reply_open(mock_expect_open(m, MU_INO, (uint32_t)flags), MU_FH, open_flags);
    ufuse_file_t *f = NULL;
    assert_int_equal(ufuse_open(s, "/f", flags, 0, &f), 0);
    return f;
}

static struct mock_exp *expect_lseek(struct mock *m, uint64_t off, uint32_t whence)
{
    struct mock_exp *e = mock_expect(m, FUSE_LSEEK, MU_INO);
    MOCK_MATCH(e, struct fuse_lseek_in, fh, MU_FH);
    MOCK_MATCH(e, struct fuse_lseek_in, offset, off);
    MOCK_MATCH(e, struct fuse_lseek_in, whence, whence);
    return e;
}

static void lseek_answer(struct mock *m, uint64_t off, uint32_t whence, uint64_t res)
{
    struct fuse_lseek_out lo = {.offset = res};
    mock_reply(expect_lseek(m, off, whence), &lo, sizeof lo);
}

/* READ(off, size) answered with the server's file. */
static void expect_read(struct mock *m, uint64_t off, uint32_t size)
{
    static unsigned char d[FSIZE];
    expected(d + off, off, size);
    mock_reply(mock_expect_read(m, MU_INO, MU_FH, off, size), d + off, size);
}

static void read_check(ufuse_file_t *f, uint64_t off, size_t len)
{
    memset(buf, 0xa5, len);
    assert_int_equal(ufuse_pread(f, buf, len, (off_t)off), (ssize_t)len);
    expected(want, off, len);
    assert_memory_equal(buf, want, len);
}

static void assert_nothing_sent(struct mock *m, size_t before)
{
    if (mock_log_count(m, 0) != before) {
        mock_log_dump(m, stderr);
        fail_msg("%zu request(s) sent where none was expected", mock_log_count(m, 0) - before);
    }
}

/* Read [0, 128 KiB): one round (SEEK_HOLE at 0 -> 64 KiB, SEEK_DATA
 * there -> 960 KiB), one READ of the data, the hole's pages zeroed. */
static void learn(struct mock *m, ufuse_file_t *f)
{
    lseek_answer(m, 0, SEEK_HOLE, 64 * KIB);
    lseek_answer(m, 64 * KIB, SEEK_DATA, DATA2);
    expect_read(m, 0, 64 * KIB);
    read_check(f, 0, 128 * KIB);
}

/* ------------------------------------------------------------------ */

static void t_hole_read_without_io(void **state)
{
    (void)state;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, OPTS);
    script_lookup(m);
    ufuse_file_t *f = open_f(m, s, O_RDONLY, FOPEN_KEEP_CACHE);
    learn(m, f);
    /* The rest of the hole, in a big read and in small ones: nothing. */
    size_t before = mock_log_count(m, 0);
    read_check(f, 128 * KIB, 512 * KIB);
    read_check(f, 700 * KIB, 4 * KIB);
    read_check(f, 900 * KIB + 5, 20 * KIB);
    assert_nothing_sent(m, before);
    /* Up to the second extent: asked at 960 KiB (data to EOF), READ. */
    lseek_answer(m, DATA2, SEEK_HOLE, FSIZE);
    expect_read(m, DATA2, 64 * KIB);
    read_check(f, 896 * KIB, 128 * KIB);
    /* All of it again: cached. */
    before = mock_log_count(m, 0);
    read_check(f, 0, FSIZE);
    assert_nothing_sent(m, before);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_READ), 2);
    assert_int_equal(mock_log_count(m, FUSE_LSEEK), 3);
    mu_finish(m, s);
}

/* A write-through write into the hole: that page is READ again (the
 * server has data there now); the rest of the hole stays known. */
static void t_hole_forgotten_by_write(void **state)
{
    (void)state;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, OPTS);
    script_lookup(m);
    ufuse_file_t *f = open_f(m, s, O_RDWR, FOPEN_KEEP_CACHE);
    learn(m, f);
    unsigned char d[100];
    memset(d, 0x5a, sizeof d);
    mock_reply_write(mock_expect_write(m, MU_INO, MU_FH, 512 * KIB + 10, d, sizeof d),
                     sizeof d);
    assert_int_equal(ufuse_pwrite(f, d, sizeof d, 512 * KIB + 10), (ssize_t)sizeof d);
    static unsigned char page[4 * KIB];
    memcpy(page + 10, d, sizeof d);
    mock_reply(mock_expect_read(m, MU_INO, MU_FH, 512 * KIB, sizeof page), page, sizeof page);
    memset(buf, 0xa5, sizeof page);
    assert_int_equal(ufuse_pread(f, buf, sizeof page, 512 * KIB), (ssize_t)sizeof page);
    assert_memory_equal(buf, page, sizeof page);
    size_t before = mock_log_count(m, 0);
    read_check(f, 600 * KIB, 4 * KIB);
    assert_nothing_sent(m, before);
    mu_close(m, f);
    mu_finish(m, s);
}

static bool setattr_size(const struct mock_req *r, void *arg)
{
    struct fuse_setattr_in in;
    if (r->bodylen < sizeof in)
        return false;
    memcpy(&in, r->body, sizeof in);
    return (in.valid & FATTR_SIZE) && in.size == (uint64_t)(uintptr_t)arg;
}

static void expect_truncate(struct mock *m, uint64_t size)
{
    struct mock_exp *e = mock_expect(m, FUSE_SETATTR, MU_INO);
    mock_match_custom(e, setattr_size, (void *)(uintptr_t)size, "FATTR_SIZE, size");
    struct fuse_attr_out ao = mock_attr_out(MU_INO, S_IFREG | 0644, size, 3600);
    ao.attr.blocks = 0;
    mock_reply_attr(e, &ao);
}

/* Truncate to 256 KiB and back to 1 MiB: past 256 KiB nothing learned
 * is known any more (a page there is READ); below it the hole stays. */
static void t_hole_forgotten_by_truncate(void **state)
{
    (void)state;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, OPTS);
    script_lookup(m);
    ufuse_file_t *f = open_f(m, s, O_RDWR, FOPEN_KEEP_CACHE);
    learn(m, f);
    expect_truncate(m, 256 * KIB);
    assert_int_equal(ufuse_ftruncate(f, 256 * KIB), 0);
    expect_truncate(m, FSIZE);
    assert_int_equal(ufuse_ftruncate(f, FSIZE), 0);
    expect_read(m, 512 * KIB, 4 * KIB);
    read_check(f, 512 * KIB, 4 * KIB);
    size_t before = mock_log_count(m, 0);
    read_check(f, 200 * KIB, 4 * KIB);
    assert_nothing_sent(m, before);
    mu_close(m, f);
    mu_finish(m, s);
}

/* INVAL_INODE of the whole file (delivered before a STATFS reply): the
 * attributes are asked again and the hole is READ. */
static void t_hole_forgotten_by_inval(void **state)
{
    (void)state;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, OPTS);
    script_lookup(m);
    ufuse_file_t *f = open_f(m, s, O_RDONLY, FOPEN_KEEP_CACHE);
    learn(m, f);
    struct fuse_notify_inval_inode_out ii = {.ino = MU_INO, .off = 0, .len = 0};
    struct mock_exp *b = mock_expect(m, FUSE_STATFS, MOCK_ANY_NODE);
    mock_act_notify(b, FUSE_NOTIFY_INVAL_INODE, &ii, sizeof ii);
    struct fuse_kstatfs kst = {.blocks = 100, .bsize = 4096, .frsize = 4096, .namelen = 255};
    mock_reply_statfs(b, &kst);
    struct statvfs vst;
    assert_int_equal(ufuse_statfs(s, "/", &vst), 0);
    struct fuse_attr_out ao = mock_attr_out(MU_INO, S_IFREG | 0644, FSIZE, 3600);
    ao.attr.blocks = 0;
    mock_reply_attr(mock_expect_getattr(m, MU_INO), &ao);
    expect_read(m, 512 * KIB, 4 * KIB);
    read_check(f, 512 * KIB, 4 * KIB);
    mu_close(m, f);
    mu_finish(m, s);
}

/* An open without FOPEN_KEEP_CACHE drops the data, and the holes. */
static void t_hole_forgotten_by_open(void **state)
{
    (void)state;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, OPTS);
    script_lookup(m);
    ufuse_file_t *f = open_f(m, s, O_RDONLY, FOPEN_KEEP_CACHE);
    learn(m, f);
    ufuse_file_t *g = NULL;
    mock_reply_open(mock_expect_open(m, MU_INO, O_RDONLY), MU_FH + 1, 0);
    assert_int_equal(ufuse_open(s, "/f", O_RDONLY, 0, &g), 0);
    expect_read(m, 512 * KIB, 4 * KIB);
    read_check(f, 512 * KIB, 4 * KIB);
    mock_reply_err(mock_expect_flush(m, MU_INO, MU_FH + 1), 0);
    struct mock_exp *r = mock_expect_release(m, MU_INO, MU_FH + 1);
    mock_reply_err(r, 0);
    assert_int_equal(ufuse_close(g), 0);
    assert_true(mock_wait(m, r, MOCK_WAIT_MS));
    mu_close(m, f);
    mu_finish(m, s);
}

/* LSEEK answered ENOSYS: the run is READ whole, and no later run asks. */
static void t_lseek_enosys(void **state)
{
    (void)state;
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, OPTS);
    script_lookup(m);
    ufuse_file_t *f = open_f(m, s, O_RDONLY, FOPEN_KEEP_CACHE);
    mock_reply_err(expect_lseek(m, 0, SEEK_HOLE), -ENOSYS);
    expect_read(m, 0, 128 * KIB);
    read_check(f, 0, 128 * KIB);
    for (uint32_t off = 128 * KIB; off < FSIZE; off += 128 * KIB)
        expect_read(m, off, 128 * KIB);
    read_check(f, 128 * KIB, FSIZE - 128 * KIB);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_LSEEK), 1);
    mu_finish(m, s);
}

/* ------------------------------------------------------------------ */
/* bad answers: the run [at, at + 128 KiB) is READ whole                */

enum bad { ERR, SHORT, HOLE_BEFORE, HOLE_PAST_EOF, DATA_NOT_AFTER, DATA_PAST_EOF, DATA_AT_EOF };

static void script_bad(struct mock *m, enum bad how, uint64_t at)
{
    switch (how) {
    case ERR:
        mock_reply_err(expect_lseek(m, at, SEEK_HOLE), -EIO);
        break;
    case SHORT: {
        /* 4 bytes of an 8-byte fuse_lseek_out. */
        struct {
            struct fuse_out_header h;
            uint32_t half;
        } raw = {{sizeof raw, 0, 0}, 0};
        mock_reply_raw(expect_lseek(m, at, SEEK_HOLE), &raw, sizeof raw,
                       MOCK_RAW_FILL_UNIQUE);
        break;
    }
    case HOLE_BEFORE:
        lseek_answer(m, at, SEEK_HOLE, at - 4 * KIB);
        break;
    case HOLE_PAST_EOF:
        lseek_answer(m, at, SEEK_HOLE, 2 * FSIZE);
        break;
    case DATA_NOT_AFTER:
        lseek_answer(m, at, SEEK_HOLE, at);
        lseek_answer(m, at, SEEK_DATA, at);
        break;
    case DATA_PAST_EOF:
        lseek_answer(m, at, SEEK_HOLE, at);
        lseek_answer(m, at, SEEK_DATA, 2 * FSIZE);
        break;
    case DATA_AT_EOF:
        lseek_answer(m, at, SEEK_HOLE, at);
        lseek_answer(m, at, SEEK_DATA, FSIZE);
        break;
    }
}

static void t_lseek_bad_answers(void **state)
{
    (void)state;
    static const enum bad cases[] = {ERR, SHORT, HOLE_BEFORE, HOLE_PAST_EOF,
                                     DATA_NOT_AFTER, DATA_PAST_EOF, DATA_AT_EOF};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ufuse_t *s;
        struct mock *m = mu_mount(&s, NULL, OPTS);
        script_lookup(m);
        ufuse_file_t *f = open_f(m, s, O_RDONLY, FOPEN_KEEP_CACHE);
        /* In the hole, where taking a bad answer would matter least
         * visibly: the server's bytes there are the pattern. */
        uint64_t at = 256 * KIB;
        script_bad(m, cases[i], at);
        static unsigned char d[128 * KIB];
        mock_pattern(d, sizeof d, at);
        mock_reply(mock_expect_read(m, MU_INO, MU_FH, at, sizeof d), d, sizeof d);
        memset(buf, 0, sizeof d);
        assert_int_equal(ufuse_pread(f, buf, sizeof d, (off_t)at), (ssize_t)sizeof d);
        assert_memory_equal(buf, d, sizeof d);
        mu_close(m, f);
        mu_finish(m, s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_hole_read_without_io),
        cmocka_unit_test(t_hole_forgotten_by_write),
        cmocka_unit_test(t_hole_forgotten_by_truncate),
        cmocka_unit_test(t_hole_forgotten_by_inval),
        cmocka_unit_test(t_hole_forgotten_by_open),
        cmocka_unit_test(t_lseek_enosys),
        cmocka_unit_test(t_lseek_bad_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
