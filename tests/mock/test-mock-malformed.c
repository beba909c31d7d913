/*
 * test-mock-malformed.c - replies the server gets wrong.  A bad reply fails
 * its call with -EIO and the session goes on; a datagram with an unknown
 * unique or shorter than a header is dropped and the call keeps waiting
 * for its good reply; a reply split over several datagrams is reassembled.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock/mockutil.h"

/* A raw reply buffer: header + payload. */
struct raw {
    unsigned char b[8192];
    size_t len;
};

static void raw_init(struct raw *r, int32_t error, const void *payload,
                     size_t len)
{
    struct fuse_out_header oh = {.len = (uint32_t)(16 + len), .error = error};
    memcpy(r->b, &oh, 16);
    if (len)
        memcpy(r->b + 16, payload, len);
    r->len = 16 + len;
}

static void raw_set_len(struct raw *r, uint32_t len)
{
    memcpy(r->b, &len, 4);
}

/* After a bad reply the session still works: a good LOOKUP of "ok". */
static void still_works(struct mock *m, ufuse_t *s)
{
    mu_expect_entry(m, 1, "ok", 40, S_IFREG | 0644, 1, 0, 0);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/ok", &st), 0);
    assert_int_equal(st.st_ino, 40);
}

/* stat("/a") answered with @r (its unique filled in) fails -EIO. */
static void lookup_gets(struct raw *r, int want)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mock_reply_raw(mock_expect_lookup(m, 1, "a"), r->b, r->len,
                   MOCK_RAW_FILL_UNIQUE);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), want);
    still_works(m, s);
    mu_finish(m, s);
}

static void t_error_out_of_range(void **state)
{
    struct raw r;
    raw_init(&r, -512, NULL, 0);
    lookup_gets(&r, -EIO);
    raw_init(&r, -100000, NULL, 0);
    lookup_gets(&r, -EIO);
    raw_init(&r, 5, NULL, 0);
    lookup_gets(&r, -EIO);
    /* The edges of the valid range pass through. */
    raw_init(&r, -511, NULL, 0);
    lookup_gets(&r, -511);
    raw_init(&r, -1, NULL, 0);
    lookup_gets(&r, -EPERM);
}

static void t_error_with_payload(void **state)
{
    struct fuse_entry_out eo = mock_entry(2, S_IFREG | 0644, 1, 1, 1);
    struct raw r;
    raw_init(&r, -ENOENT, &eo, sizeof(eo));
    lookup_gets(&r, -EIO);
}

/* Header len smaller than the datagram. */
static void t_len_mismatch(void **state)
{
    struct fuse_entry_out eo = mock_entry(2, S_IFREG | 0644, 1, 1, 1);
    struct raw r;
    raw_init(&r, 0, &eo, sizeof(eo));
    raw_set_len(&r, 16 + 100);
    lookup_gets(&r, -EIO);
    raw_init(&r, 0, &eo, sizeof(eo));
    raw_set_len(&r, 16);
    lookup_gets(&r, -EIO);
}

/* Fixed-size replies of the wrong size. */
static void t_wrong_size(void **state)
{
    unsigned char big[sizeof(struct fuse_entry_out) + 8];
    struct fuse_entry_out eo = mock_entry(2, S_IFREG | 0644, 1, 1, 1);
    memset(big, 0, sizeof(big));
    memcpy(big, &eo, sizeof(eo));
    struct raw r;
    raw_init(&r, 0, &eo, sizeof(eo) - 8);
    lookup_gets(&r, -EIO);
    raw_init(&r, 0, big, sizeof(big));
    lookup_gets(&r, -EIO);
    /* The 7.8 compat size is wrong at 7.38. */
    raw_init(&r, 0, &eo, FUSE_COMPAT_ENTRY_OUT_SIZE);
    lookup_gets(&r, -EIO);
    /* An empty success reply to a LOOKUP. */
    raw_init(&r, 0, NULL, 0);
    lookup_gets(&r, -EIO);

    /* GETATTR with a short attr_out. */
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct fuse_attr_out ao = mock_attr_out(1, S_IFDIR | 0755, 0, 0);
    mock_reply(mock_expect_getattr(m, 1), &ao, sizeof(ao) - 4);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/", &st), -EIO);
    still_works(m, s);
    mu_finish(m, s);
}

/* A READ reply longer than asked. */
static void t_read_too_long(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 0, 4096), 0, 4097);
    unsigned char buf[4096];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), -EIO);
    /* The same file reads fine afterwards. */
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 0, 4096), 0, 4096);
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), 4096);
    mu_close(m, f);
    mu_finish(m, s);
}

/* READDIR answered with @body: opendir works, readdir fails -EIO. */
static void readdir_gets(const void *body, size_t len)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mock_reply_open(mock_expect(m, FUSE_OPENDIR, 1), 3, 0);
    mock_reply(mock_expect(m, FUSE_READDIR, 1), body, len);
    ufuse_dir_t *d;
    assert_int_equal(ufuse_opendir(s, "/", &d), 0);
    struct ufuse_dirent ent;
    int rc = ufuse_readdir(d, &ent);
    /* Entries before the bad one may be returned first. */
    while (rc == 1)
        rc = ufuse_readdir(d, &ent);
    assert_int_equal(rc, -EIO);
    mock_reply_err(mock_expect(m, FUSE_RELEASEDIR, 1), 0);
    ufuse_closedir(d);
    still_works(m, s);
    mu_finish(m, s);
}

static void put_dirent(unsigned char *p, uint64_t ino, uint64_t off,
                       uint32_t namelen, const char *name, size_t namebytes)
{
    struct fuse_dirent d = {.ino = ino, .off = off, .namelen = namelen,
                            .type = DT_REG};
    memcpy(p, &d, FUSE_NAME_OFFSET);
    memcpy(p + FUSE_NAME_OFFSET, name, namebytes);
}

static void t_bad_dirents(void **state)
{
    unsigned char b[4096];

    /* namelen runs past the buffer. */
    memset(b, 0, sizeof(b));
    put_dirent(b, 5, 1, 50, "short", 5);
    readdir_gets(b, FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 5));


    /* namelen above 1024. */
    memset(b, 'n', sizeof(b));
    put_dirent(b, 5, 1, 2000, "", 0);
    readdir_gets(b, FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 2000));

    /* A '/' in a name. */
    memset(b, 0, sizeof(b));
    put_dirent(b, 5, 1, 3, "a/b", 3);
    readdir_gets(b, FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 3));

    /* A NUL inside a name. */
    memset(b, 0, sizeof(b));
    put_dirent(b, 5, 1, 3, "a\0b", 3);
    readdir_gets(b, FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 3));

    /* A READDIR reply larger than the 65536 bytes asked. */
    static unsigned char huge[65536 + 8192];
    size_t pos = 0;
    for (int i = 0; pos + 32 <= sizeof(huge); i++) {
        char name[8];
        snprintf(name, sizeof(name), "n%05d", i % 100000);
        put_dirent(huge + pos, 100 + (uint64_t)i, (uint64_t)i + 1, 6, name, 6);
        pos += FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 6);
    }
    readdir_gets(huge, pos);
}

/*
 * A good entry, then one cut off by the end of the reply (libfuse 2 answers
 * READDIR with slices of a prepared buffer): not an error, as in Linux.
 * The whole entry is returned and READDIR is asked again from its cookie.
 */
static void t_cut_dirent(void **state)
{
    unsigned char b[256];
    memset(b, 0, sizeof(b));
    put_dirent(b, 5, 1, 4, "good", 4);
    size_t first = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 4);
    put_dirent(b + first, 6, 2, 4, "next", 4);
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mock_reply_open(mock_expect(m, FUSE_OPENDIR, 1), 3, 0);
    mock_reply(mock_expect(m, FUSE_READDIR, 1), b, first + 12);
    struct mock_exp *again = mock_expect(m, FUSE_READDIR, 1);
    MOCK_MATCH(again, struct fuse_read_in, offset, 1);
    mock_reply(again, b + first, FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 4));
    struct mock_exp *end = mock_expect(m, FUSE_READDIR, 1);
    MOCK_MATCH(end, struct fuse_read_in, offset, 2);
    mock_reply(end, NULL, 0);
    ufuse_dir_t *d;
    struct ufuse_dirent ent;
    assert_int_equal(ufuse_opendir(s, "/", &d), 0);
    assert_int_equal(ufuse_readdir(d, &ent), 1);
    assert_string_equal(ent.name, "good");
    assert_int_equal(ufuse_readdir(d, &ent), 1);
    assert_string_equal(ent.name, "next");
    assert_int_equal(ufuse_readdir(d, &ent), 0);
    mock_reply_err(mock_expect(m, FUSE_RELEASEDIR, 1), 0);
    ufuse_closedir(d);
    mu_finish(m, s);
}

/* A datagram with a unique not in flight is dropped; the call waits for
 * its own reply. */
static void t_unknown_unique(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct fuse_entry_out eo = mock_entry(2, S_IFREG | 0644, 77, 0, 0);
    struct raw r;
    raw_init(&r, 0, &eo, sizeof(eo));
    struct fuse_out_header oh;
    memcpy(&oh, r.b, 16);
    oh.unique = 0x7777777700ULL;
    memcpy(r.b, &oh, 16);
    struct mock_exp *e = mock_expect_lookup(m, 1, "a");
    mock_reply_raw(e, r.b, r.len, 0);
    mock_reply_entry(e, &eo);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 77);
    still_works(m, s);
    mu_finish(m, s);
}

/* A datagram shorter than a header is dropped likewise. */
static void t_short_header(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct fuse_entry_out eo = mock_entry(2, S_IFREG | 0644, 78, 0, 0);
    unsigned char tiny[10] = {10};
    struct mock_exp *e = mock_expect_lookup(m, 1, "a");
    mock_reply_raw(e, tiny, sizeof(tiny), 0);
    mock_reply_raw(e, tiny, 1, 0);
    mock_reply_entry(e, &eo);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 78);
    still_works(m, s);
    mu_finish(m, s);
}

/* A 128 KiB READ reply in three datagrams (61424 + 65536 + rest), as a
 * splicing server sends it. */
static void t_split_reply(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct ufuse_conninfo ci;
    assert_int_equal(ufuse_conninfo(s, &ci), 0);
    assert_int_equal(ci.max_read, 131072);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    size_t n = 131072;
    unsigned char *data = malloc(n), *buf = malloc(n);
    mock_pattern(data, n, 65536);
    size_t sizes[3] = {61424, 65536, 16 + n - 61424 - 65536};
    mock_reply_split(mock_expect_read(m, MU_INO, MU_FH, 65536, (uint32_t)n), 0,
                     data, n, sizes, 3);
    assert_int_equal(ufuse_pread(f, buf, n, 65536), (ssize_t)n);
    assert_memory_equal(buf, data, n);

    /* A split reply shorter than asked (a short read). */
    size_t k = 100000;
    size_t sizes2[3] = {40000, 40000, 16 + k - 80000};
    mock_reply_split(mock_expect_read(m, MU_INO, MU_FH, 0, (uint32_t)n), 0,
                     data, k, sizes2, 3);
    assert_int_equal(ufuse_pread(f, buf, n, 0), (ssize_t)k);
    assert_memory_equal(buf, data, k);
    free(data);
    free(buf);
    mu_close(m, f);
    mu_finish(m, s);
}

/*
 * The head of a split reply, then a whole new reply to the same request
 * before the rest: the server restarted its answer.  The request fails
 * with -EIO; it took both payloads as one (200 bytes of a 100-byte file)
 * and, counting the bytes still owed as got - want, wrapped the count of
 * bytes to discard (fuzz-session).  A later split reply is still
 * reassembled.
 */
static void t_split_restarted(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    unsigned char a[100], b[100], buf[4096];
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    struct raw head;
    raw_init(&head, 0, a, sizeof(a));
    raw_set_len(&head, 16 + 116); /* 16 more bytes to come, which never do */
    struct mock_exp *e = mock_expect_read(m, MU_INO, MU_FH, 0, sizeof(buf));
    mock_reply_raw(e, head.b, head.len, MOCK_RAW_FILL_UNIQUE);
    mock_reply(e, b, sizeof(b));
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), -EIO);

    unsigned char *data = malloc(65536), *big = malloc(65536);
    mock_pattern(data, 65536, 0);
    size_t sizes[2] = {30000, 16 + 65536 - 30000};
    mock_reply_split(mock_expect_read(m, MU_INO, MU_FH, 0, 65536), 0, data, 65536,
                     sizes, 2);
    assert_int_equal(ufuse_pread(f, big, 65536, 0), 65536);
    assert_memory_equal(big, data, 65536);
    free(data);
    free(big);
    mu_close(m, f);
    mu_finish(m, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_error_out_of_range),
        cmocka_unit_test(t_error_with_payload),
        cmocka_unit_test(t_len_mismatch),
        cmocka_unit_test(t_wrong_size),
        cmocka_unit_test(t_read_too_long),
        cmocka_unit_test(t_bad_dirents),
        cmocka_unit_test(t_cut_dirent),
        cmocka_unit_test(t_unknown_unique),
        cmocka_unit_test(t_short_header),
        cmocka_unit_test(t_split_reply),
        cmocka_unit_test(t_split_restarted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
