/*
 * test-mock-timeout.c - option timeout=1: an unanswered request is
 * interrupted (FUSE_INTERRUPT with unique | FUSE_INT_REQ_BIT), then given
 * up with -ETIMEDOUT; the server's answers to the INTERRUPT (none, ENOSYS,
 * EAGAIN, an EINTR or a real reply to the request) and a late reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock/mockutil.h"

static struct mock_exp *expect_interrupt(struct mock *m, struct mock_exp *of)
{
    struct mock_exp *e = mock_expect(m, FUSE_INTERRUPT, MOCK_ANY_NODE);
    mock_match_interrupt_of(e, of);
    return e;
}

/* Nobody answers: INTERRUPT, then -ETIMEDOUT; the late reply is dropped. */
static void t_silent(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,timeout=1");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    struct mock_exp *rd = mock_expect_read(m, MU_INO, MU_FH, 0, 10);
    mock_no_reply(rd);
    mock_no_reply(expect_interrupt(m, rd));
    char buf[10];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), -ETIMEDOUT);

    /* The abandoned READ's reply arrives late: dropped, and the next READ
     * gets its own data. */
    assert_int_equal(mock_respond(m, rd, 0, "LATE-LATE!", 10), 0);
    mock_reply_pattern(mock_expect_read(m, MU_INO, MU_FH, 0, 10), 0, 10);
    char want[10];
    mock_pattern(want, sizeof(want), 0);
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), 10);
    assert_memory_equal(buf, want, sizeof(want));
    mu_close(m, f);
    mu_finish(m, s);
}

/* INTERRUPT answered ENOSYS: -ETIMEDOUT at once, and later timeouts send
 * no INTERRUPT. */
static void t_interrupt_enosys(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,timeout=1");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    struct mock_exp *rd = mock_expect_read(m, MU_INO, MU_FH, 0, 10);
    mock_no_reply(rd);
    mock_reply_err(expect_interrupt(m, rd), -ENOSYS);
    char buf[10];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), -ETIMEDOUT);

    mock_no_reply(mock_expect_read(m, MU_INO, MU_FH, 100, 10));
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 100), -ETIMEDOUT);
    assert_int_equal(mock_log_count(m, FUSE_INTERRUPT), 1);
    mu_close(m, f);
    mu_finish(m, s);
}

/* INTERRUPT answered EAGAIN is resent; the server then answers the
 * request with EINTR: -ETIMEDOUT. */
static void t_interrupt_eagain(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,timeout=1");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    struct mock_exp *rd = mock_expect_read(m, MU_INO, MU_FH, 0, 10);
    mock_no_reply(rd);
    mock_reply_err(expect_interrupt(m, rd), -EAGAIN);
    mock_act_reply_to(expect_interrupt(m, rd), rd, -EINTR, NULL, 0);
    char buf[10];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), -ETIMEDOUT);
    assert_int_equal(mock_log_count(m, FUSE_INTERRUPT), 2);
    mu_close(m, f);
    mu_finish(m, s);
}

/* The server finishes the request after the INTERRUPT: its reply wins. */
static void t_reply_after_interrupt(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,timeout=1");
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    struct mock_exp *rd = mock_expect_read(m, MU_INO, MU_FH, 0, 10);
    mock_no_reply(rd);
    mock_act_reply_to(expect_interrupt(m, rd), rd, 0, "0123456789", 10);
    char buf[10];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), 10);
    assert_memory_equal(buf, "0123456789", 10);
    mu_close(m, f);
    mu_finish(m, s);
}

/* A timed-out LOOKUP: the path call fails -ETIMEDOUT, nothing is cached. */
static void t_lookup_timeout(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, "cache=direct,timeout=1");
    struct mock_exp *lk = mock_expect_lookup(m, 1, "slow");
    mock_no_reply(lk);
    mock_reply_err(expect_interrupt(m, lk), -ENOSYS);
    struct stat st;
    assert_int_equal(ufuse_stat(s, "/slow", &st), -ETIMEDOUT);
    mu_expect_entry(m, 1, "slow", 5, S_IFREG | 0644, 3, 3600, 3600);
    assert_int_equal(ufuse_stat(s, "/slow", &st), 0);
    assert_int_equal(st.st_ino, 5);
    mu_finish(m, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_silent),
        cmocka_unit_test(t_interrupt_enosys),
        cmocka_unit_test(t_interrupt_eagain),
        cmocka_unit_test(t_reply_after_interrupt),
        cmocka_unit_test(t_lookup_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
