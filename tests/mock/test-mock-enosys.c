/*
 * test-mock-enosys.c - ENOSYS memory: an opcode the server answers ENOSYS
 * is never sent again in that session, with the fallback each one has
 * (FLUSH and FSYNC succeed, CREATE becomes MKNOD + OPEN, FALLOCATE is
 * -EOPNOTSUPP, LSEEK the POSIX fallback).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mock/mockutil.h"

static void t_flush_enosys(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 10, 3600, 0);
    mock_reply_err(mock_expect_flush(m, MU_INO, MU_FH), -ENOSYS);
    struct mock_exp *r = mock_expect_release(m, MU_INO, MU_FH);
    mock_reply_err(r, 0);
    assert_int_equal(ufuse_close(f), 0);
    assert_true(mock_wait(m, r, MOCK_WAIT_MS));

    /* The entry is cached: OPEN only; the close sends RELEASE only. */
    for (uint64_t fh = 20; fh < 22; fh++) {
        mock_reply_open(mock_expect_open(m, MU_INO, O_RDONLY), fh, 0);
        assert_int_equal(ufuse_open(s, "/f", O_RDONLY, 0, &f), 0);
        r = mock_expect_release(m, MU_INO, fh);
        mock_reply_err(r, 0);
        assert_int_equal(ufuse_close(f), 0);
        assert_true(mock_wait(m, r, MOCK_WAIT_MS));
    }
    assert_int_equal(mock_log_count(m, FUSE_FLUSH), 1);
    mu_finish(m, s);
}

static void t_fsync_flags(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 10, 3600, 0);
    mock_reply_err(mock_expect_fsync(m, MU_INO, MU_FH, 0), 0);
    assert_int_equal(ufuse_fsync(f), 0);
    mock_reply_err(mock_expect_fsync(m, MU_INO, MU_FH, FUSE_FSYNC_FDATASYNC), 0);
    assert_int_equal(ufuse_fdatasync(f), 0);
    mock_reply_err(mock_expect_fsync(m, MU_INO, MU_FH, 0), -EIO);
    assert_int_equal(ufuse_fsync(f), -EIO);
    mu_close(m, f);
    mu_finish(m, s);
}

static void t_fsync_enosys(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 10, 3600, 0);
    mock_reply_err(mock_expect_fsync(m, MU_INO, MU_FH, 0), -ENOSYS);
    /* As Linux: a server without fsync makes fsync a successful no-op. */
    assert_int_equal(ufuse_fsync(f), 0);
    assert_int_equal(ufuse_fdatasync(f), 0);
    assert_int_equal(ufuse_fsync(f), 0);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_FSYNC), 1);
    mu_finish(m, s);
}

static bool create_mode_0640(const struct mock_req *r, void *arg)
{
    struct fuse_create_in c;
    if (r->bodylen < sizeof(c))
        return false;
    memcpy(&c, r->body, sizeof(c));
    uint32_t want = (uint32_t)(uintptr_t)arg;
    return (c.mode & 07777) == want &&
           ((c.mode & S_IFMT) == 0 || (c.mode & S_IFMT) == S_IFREG) &&
           (c.flags & O_ACCMODE) == O_WRONLY && c.umask == 0;
}

static void t_create_enosys(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);

    mock_reply_err(mock_expect_lookup(m, FUSE_ROOT_ID, "new"), -ENOENT);
    struct mock_exp *c = mock_expect(m, FUSE_CREATE, FUSE_ROOT_ID);
    mock_match_name(c, 0, "new");
    mock_match_custom(c, create_mode_0640, (void *)(uintptr_t)0640,
                      "mode 0640, O_WRONLY, umask 0");
    mock_reply_err(c, -ENOSYS);
    struct mock_exp *mk = mock_expect(m, FUSE_MKNOD, FUSE_ROOT_ID);
    mock_match_name(mk, 0, "new");
    MOCK_MATCH(mk, struct fuse_mknod_in, mode, S_IFREG | 0640);
    MOCK_MATCH(mk, struct fuse_mknod_in, rdev, 0);
    struct fuse_entry_out eo = mock_entry(3, S_IFREG | 0640, 0, 3600, 3600);
    mock_reply_entry(mk, &eo);
    mock_reply_open(mock_expect_open(m, 3, O_WRONLY), 9, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/new", O_CREAT | O_WRONLY, 0640, &f), 0);
    mock_reply_write(mock_expect_write(m, 3, 9, 0, "hi", 2), 2);
    assert_int_equal(ufuse_pwrite(f, "hi", 2, 0), 2);
    mock_reply_err(mock_expect_flush(m, 3, 9), 0);
    mock_reply_err(mock_expect_release(m, 3, 9), 0);
    assert_int_equal(ufuse_close(f), 0);

    /* CREATE is not tried again. */
    mock_reply_err(mock_expect_lookup(m, FUSE_ROOT_ID, "second"), -ENOENT);
    mk = mock_expect(m, FUSE_MKNOD, FUSE_ROOT_ID);
    mock_match_name(mk, 0, "second");
    MOCK_MATCH(mk, struct fuse_mknod_in, mode, S_IFREG | 0600);
    eo = mock_entry(4, S_IFREG | 0600, 0, 3600, 3600);
    mock_reply_entry(mk, &eo);
    mock_reply_open(mock_expect_open(m, 4, O_RDWR), 10, 0);
    assert_int_equal(ufuse_open(s, "/second", O_CREAT | O_RDWR, 0600, &f), 0);
    mock_reply_err(mock_expect_flush(m, 4, 10), 0);
    mock_reply_err(mock_expect_release(m, 4, 10), 0);
    assert_int_equal(ufuse_close(f), 0);
    assert_int_equal(mock_log_count(m, FUSE_CREATE), 1);
    mu_finish(m, s);
}

static void t_fallocate_enosys(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 10, 3600, 0);
    struct mock_exp *e = mock_expect(m, FUSE_FALLOCATE, MU_INO);
    MOCK_MATCH(e, struct fuse_fallocate_in, fh, MU_FH);
    MOCK_MATCH(e, struct fuse_fallocate_in, offset, 4096);
    MOCK_MATCH(e, struct fuse_fallocate_in, length, 8192);
    MOCK_MATCH(e, struct fuse_fallocate_in, mode, 0);
    mock_reply_err(e, -ENOSYS);
    assert_int_equal(ufuse_fallocate(f, 0, 4096, 8192), -EOPNOTSUPP);
    assert_int_equal(ufuse_fallocate(f, 0, 0, 100), -EOPNOTSUPP);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_FALLOCATE), 1);
    mu_finish(m, s);
}

/* LSEEK without server support: data everywhere, one hole at EOF. */
static void t_lseek_enosys(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1000, 3600, 0);
    struct mock_exp *e = mock_expect(m, FUSE_LSEEK, MU_INO);
    MOCK_MATCH(e, struct fuse_lseek_in, fh, MU_FH);
    MOCK_MATCH(e, struct fuse_lseek_in, offset, 10);
    MOCK_MATCH(e, struct fuse_lseek_in, whence, SEEK_DATA);
    mock_reply_err(e, -ENOSYS);
    assert_int_equal(ufuse_lseek(f, 10, SEEK_DATA), 10);
    assert_int_equal(ufuse_lseek(f, 10, SEEK_HOLE), 1000);
    assert_int_equal(ufuse_lseek(f, 20, SEEK_DATA), 20);
    mu_close(m, f);
    assert_int_equal(mock_log_count(m, FUSE_LSEEK), 1);
    mu_finish(m, s);
}

/* Any opcode: ACCESS and GETXATTR answered ENOSYS are not sent again. */
static void t_enosys_any(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    struct mock_exp *e = mock_expect(m, FUSE_ACCESS, FUSE_ROOT_ID);
    MOCK_MATCH(e, struct fuse_access_in, mask, R_OK);
    mock_reply_err(e, -ENOSYS);
    int a1 = ufuse_access(s, "/", R_OK);
    int a2 = ufuse_access(s, "/", R_OK);
    assert_int_equal(a1, a2);
    assert_int_equal(mock_log_count(m, FUSE_ACCESS), 1);

    e = mock_expect(m, FUSE_GETXATTR, FUSE_ROOT_ID);
    mock_match_name(e, 0, "user.x");
    mock_reply_err(e, -ENOSYS);
    char v[16];
    ssize_t g1 = ufuse_getxattr(s, "/", "user.x", v, sizeof(v));
    ssize_t g2 = ufuse_getxattr(s, "/", "user.y", v, sizeof(v));
    assert_true(g1 < 0);
    assert_int_equal(g1, g2);
    assert_int_equal(mock_log_count(m, FUSE_GETXATTR), 1);
    mu_finish(m, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_flush_enosys),
        cmocka_unit_test(t_fsync_flags),
        cmocka_unit_test(t_fsync_enosys),
        cmocka_unit_test(t_create_enosys),
        cmocka_unit_test(t_fallocate_enosys),
        cmocka_unit_test(t_lseek_enosys),
        cmocka_unit_test(t_enosys_any),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
