/*
 * test-mock-cache.c - the entry and attribute caches against the mock:
 * entry_valid / attr_valid (0 = not cached), expiry, negative entries
 * (nodeid 0 with entry_valid, and ENOENT), multi-component walks, a stat
 * using the LOOKUP's attributes, fstat's GETATTR with the file handle.
 *
 * Expiry is tested only in the safe direction: sleeping well past a short
 * validity must make the client ask again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mock/mockutil.h"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* Entry and attributes valid: the second stat sends nothing. */
static void t_entry_cached(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "a", 2, S_IFREG | 0640, 4321, 3600, 3600);
    struct stat st;
    for (int i = 0; i < 3; i++) {
        memset(&st, 0, sizeof(st));
        assert_int_equal(ufuse_stat(s, "/a", &st), 0);
        assert_int_equal(st.st_ino, 2);
        assert_int_equal(st.st_size, 4321);
        assert_int_equal(st.st_mode, S_IFREG | 0640);
        assert_int_equal(st.st_nlink, 1);
    }
    assert_int_equal(mock_log_count(m, FUSE_LOOKUP), 1);
    assert_int_equal(mock_log_count(m, FUSE_GETATTR), 0);
    mu_finish(m, s);
}

/* Validity 0: every stat is a LOOKUP, whose attributes serve the stat. */
static void t_zero_validity(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "a", 2, S_IFREG | 0644, 1, 0, 0);
    mu_expect_entry(m, 1, "a", 2, S_IFREG | 0644, 2, 0, 0);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 1);
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 2);
    assert_int_equal(mock_log_count(m, FUSE_GETATTR), 0);
    mu_finish(m, s);
}

/* Entry valid, attributes not: the second stat is a GETATTR only. */
static void t_attr_expired(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "a", 2, S_IFREG | 0644, 1, 3600, 0);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    struct mock_exp *g = mock_expect_getattr(m, 2);
    mu_match_plain_getattr(g);
    struct fuse_attr_out ao = mock_attr_out(2, S_IFREG | 0600, 99, 3600);
    mock_reply_attr(g, &ao);
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 99);
    assert_int_equal(st.st_mode, S_IFREG | 0600);
    /* Now the GETATTR's attributes are valid for an hour. */
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 99);
    assert_int_equal(mock_log_count(m, FUSE_GETATTR), 1);
    mu_finish(m, s);
}

/* A validity of 20 ms (nsec only) has expired 200 ms later. */
static void t_nsec_expiry(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct fuse_entry_out eo = mock_entry(2, S_IFREG | 0644, 5, 0, 0);
    eo.entry_valid_nsec = 20000000;
    eo.attr_valid_nsec = 20000000;
    mock_reply_entry(mock_expect_lookup(m, 1, "a"), &eo);
    eo.attr.size = 6;
    mock_reply_entry(mock_expect_lookup(m, 1, "a"), &eo);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 5);
    sleep_ms(200);
    assert_int_equal(ufuse_stat(s, "/a", &st), 0);
    assert_int_equal(st.st_size, 6);
    mu_finish(m, s);
}

/* ENOENT is not cached: each stat asks. */
static void t_enoent_not_cached(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mock_reply_err(mock_expect_lookup(m, 1, "x"), -ENOENT);
    mock_reply_err(mock_expect_lookup(m, 1, "x"), -ENOENT);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/x", &st), -ENOENT);
    assert_int_equal(ufuse_stat(s, "/x", &st), -ENOENT);
    mu_finish(m, s);
}

/* nodeid 0 with entry_valid: a negative entry, cached; not a positive
 * one for O_CREAT (CREATE is sent). */
static void t_negative_cached(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct fuse_entry_out neg;
    memset(&neg, 0, sizeof(neg));
    neg.entry_valid = 3600;
    mock_reply_entry(mock_expect_lookup(m, 1, "x"), &neg);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/x", &st), -ENOENT);
    assert_int_equal(ufuse_stat(s, "/x", &st), -ENOENT);
    assert_int_equal(ufuse_lstat(s, "/x", &st), -ENOENT);
    assert_int_equal(mock_log_count(m, FUSE_LOOKUP), 1);

    struct mock_exp *c = mock_expect(m, FUSE_CREATE, 1);
    mock_match_name(c, 0, "x");
    struct fuse_entry_out eo = mock_entry(3, S_IFREG | 0600, 0, 3600, 3600);
    mock_reply_create(c, &eo, 11, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/x", O_CREAT | O_RDWR, 0600, &f), 0);
    mock_reply_err(mock_expect_flush(m, 3, 11), 0);
    mock_reply_err(mock_expect_release(m, 3, 11), 0);
    assert_int_equal(ufuse_close(f), 0);
    /* The created entry replaced the negative one. */
    assert_int_equal(ufuse_stat(s, "/x", &st), 0);
    assert_int_equal(st.st_ino, 3);
    mu_finish(m, s);
}

/* nodeid 0 with entry_valid 0: negative but not cached. */
static void t_negative_uncached(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct fuse_entry_out neg;
    memset(&neg, 0, sizeof(neg));
    mock_reply_entry(mock_expect_lookup(m, 1, "x"), &neg);
    mock_reply_entry(mock_expect_lookup(m, 1, "x"), &neg);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/x", &st), -ENOENT);
    assert_int_equal(ufuse_stat(s, "/x", &st), -ENOENT);
    mu_finish(m, s);
}

/* Each uncached component is a LOOKUP; cached directories are reused. */
static void t_walk(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    mu_expect_entry(m, 1, "d", 10, S_IFDIR | 0755, 0, 3600, 3600);
    mu_expect_entry(m, 10, "e", 11, S_IFDIR | 0755, 0, 3600, 3600);
    mu_expect_entry(m, 11, "f", 12, S_IFREG | 0644, 7, 3600, 3600);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/d/e/f", &st), 0);
    assert_int_equal(st.st_ino, 12);
    assert_int_equal(st.st_size, 7);
    mu_expect_entry(m, 11, "g", 13, S_IFREG | 0644, 8, 3600, 3600);
    assert_int_equal(ufuse_stat(s, "/d/e/g", &st), 0);
    assert_int_equal(st.st_ino, 13);
    /* A relative path is taken from the root. */
    assert_int_equal(ufuse_stat(s, "d/e/g", &st), 0);
    assert_int_equal(st.st_ino, 13);
    /* A missing component in the middle. */
    mock_reply_err(mock_expect_lookup(m, 10, "zz"), -ENOENT);
    assert_int_equal(ufuse_stat(s, "/d/zz/f", &st), -ENOENT);
    /* A file used as a directory. */
    assert_int_equal(ufuse_stat(s, "/d/e/f/x", &st), -ENOTDIR);
    assert_int_equal(mock_log_count(m, FUSE_LOOKUP), 5);
    mu_finish(m, s);
}

/* fstat: GETATTR(FUSE_GETATTR_FH, fh) when the attributes expired. */
static void t_fstat(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 10, 0, 0);
    struct mock_exp *g = mock_expect_getattr(m, MU_INO);
    MOCK_MATCH(g, struct fuse_getattr_in, getattr_flags, FUSE_GETATTR_FH);
    MOCK_MATCH(g, struct fuse_getattr_in, fh, MU_FH);
    struct fuse_attr_out ao = mock_attr_out(MU_INO, S_IFREG | 0644, 555, 3600);
    mock_reply_attr(g, &ao);
    struct stat st;
    assert_int_equal(ufuse_fstat(f, &st), 0);
    assert_int_equal(st.st_size, 555);
    assert_int_equal(ufuse_fstat(f, &st), 0);
    assert_int_equal(st.st_size, 555);
    assert_int_equal(mock_log_count(m, FUSE_GETATTR), 1);
    mu_close(m, f);
    mu_finish(m, s);
}

/* stat of the root: GETATTR(1, 0); cached per attr_valid. */
static void t_stat_root(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct mock_exp *g = mock_expect_getattr(m, FUSE_ROOT_ID);
    mu_match_plain_getattr(g);
    struct fuse_attr_out ao = mock_attr_out(1, S_IFDIR | 0711, 0, 3600);
    mock_reply_attr(g, &ao);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/", &st), 0);
    assert_int_equal(st.st_mode, S_IFDIR | 0711);
    assert_int_equal(ufuse_stat(s, "/", &st), 0);
    assert_int_equal(mock_log_count(m, FUSE_GETATTR), 1);
    mu_finish(m, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_entry_cached),
        cmocka_unit_test(t_zero_validity),
        cmocka_unit_test(t_attr_expired),
        cmocka_unit_test(t_nsec_expiry),
        cmocka_unit_test(t_enoent_not_cached),
        cmocka_unit_test(t_negative_cached),
        cmocka_unit_test(t_negative_uncached),
        cmocka_unit_test(t_walk),
        cmocka_unit_test(t_fstat),
        cmocka_unit_test(t_stat_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
