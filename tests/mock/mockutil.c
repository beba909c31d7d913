/*
 * mockutil.c - shared steps of the mock-scenario tests (see mockutil.h).
 * No state of its own.
 */
#include "mock/mockutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct mock *mu_mount(ufuse_t **s, const struct mock_init_cfg *cfg,
                      const char *opts)
{
    struct mock *m = mock_new(cfg);
    *s = NULL;
    /* The scenarios written for the direct path script every READ and
     * WRITE: they run uncached unless they ask for a cache mode. */
    int rc = ufuse_mount_fd(s, mock_client_fd(m), opts ? opts : "cache=direct");
    if (rc != 0) {
        mock_log_dump(m, stderr);
        fail_msg("ufuse_mount_fd: %d (%s)", rc, strerror(-rc));
    }
    assert_non_null(*s);
    return m;
}

void mu_finish(struct mock *m, ufuse_t *s)
{
    if (s)
        ufuse_unmount(s);
    mock_verify(m);
    mock_free(m);
}

struct mock_exp *mu_expect_entry(struct mock *m, uint64_t parent,
                                 const char *name, uint64_t nodeid,
                                 uint32_t mode, uint64_t size,
                                 uint64_t entry_valid, uint64_t attr_valid)
{
    struct mock_exp *e = mock_expect_lookup(m, parent, name);
    struct fuse_entry_out eo = mock_entry(nodeid, mode, size, entry_valid,
                                          attr_valid);
    mock_reply_entry(e, &eo);
    return e;
}

ufuse_file_t *mu_open(struct mock *m, ufuse_t *s, int flags, uint64_t size,
                      uint64_t valid, uint32_t open_flags)
{
    mu_expect_entry(m, FUSE_ROOT_ID, "f", MU_INO, S_IFREG | 0644, size,
                    valid, valid);
    struct mock_exp *o = mock_expect_open(m, MU_INO, (uint32_t)flags);
    mock_reply_open(o, MU_FH, open_flags);
    ufuse_file_t *f = NULL;
    int rc = ufuse_open(s, "/f", flags, 0, &f);
    assert_int_equal(rc, 0);
    assert_non_null(f);
    return f;
}

void mu_close(struct mock *m, ufuse_file_t *f)
{
    mock_reply_err(mock_expect_flush(m, MU_INO, MU_FH), 0);
    struct mock_exp *r = mock_expect_release(m, MU_INO, MU_FH);
    mock_reply_err(r, 0);
    assert_int_equal(ufuse_close(f), 0);
    assert_true(mock_wait(m, r, MOCK_WAIT_MS));
}

void mu_parallel(int n, void *(*fn)(void *), void **args)
{
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    assert_non_null(t);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fn, args[i]), 0);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
}

void mu_match_plain_getattr(struct mock_exp *e)
{
    MOCK_MATCH(e, struct fuse_getattr_in, getattr_flags, 0);
}
