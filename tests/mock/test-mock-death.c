/*
 * test-mock-death.c - the server dies (closes its socket): every call in
 * flight and every later call returns -ENOTCONN.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock/mockutil.h"

#define NTHREADS 4

struct reader {
    ufuse_file_t *f;
    uint64_t off;
    ssize_t rc;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char buf[4096];
    r->rc = ufuse_pread(r->f, buf, sizeof(buf), (off_t)r->off);
    return NULL;
}

static void after_death(ufuse_t *s, ufuse_file_t *f)
{
    struct stat st;
    char buf[16];
    assert_int_equal(ufuse_stat(s, "/other", &st), -ENOTCONN);
    assert_int_equal(ufuse_stat(s, "/", &st), -ENOTCONN);
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), -ENOTCONN);
    assert_int_equal(ufuse_pwrite(f, buf, sizeof(buf), 0), -ENOTCONN);
    assert_int_equal(ufuse_fsync(f), -ENOTCONN);
    ufuse_file_t *g;
    assert_int_equal(ufuse_open(s, "/f", O_RDONLY, 0, &g), -ENOTCONN);
    assert_int_equal(ufuse_mkdir(s, "/dir", 0755), -ENOTCONN);
    /* close reports the FLUSH's failure and frees the handle. */
    assert_int_equal(ufuse_close(f), -ENOTCONN);
}

/* Several threads blocked in READ when the server dies. */
static void t_death_with_calls_in_flight(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 1 << 20, 0, 0);
    struct mock_exp *e[NTHREADS];
    struct reader r[NTHREADS];
    void *args[NTHREADS];
    mock_unordered_begin(m);
    for (int i = 0; i < NTHREADS; i++) {
        e[i] = mock_expect_read(m, MU_INO, MU_FH, (uint64_t)i * 4096, 4096);
        mock_no_reply(e[i]);
        r[i] = (struct reader){.f = f, .off = (uint64_t)i * 4096, .rc = 1};
        args[i] = &r[i];
    }
    mock_unordered_end(m);

    /* The test thread kills the server once all READs arrived. */
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, args[i]), 0);
    for (int i = 0; i < NTHREADS; i++)
        assert_true(mock_wait(m, e[i], MOCK_WAIT_MS));
    mock_kill(m);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(r[i].rc, -ENOTCONN);
    after_death(s, f);
    ufuse_unmount(s);
    mock_verify(m);
    mock_free(m);
}

/* The server closes its socket instead of answering. */
static void t_death_on_request(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 1 << 20, 0, 0);
    mock_act_die(mock_expect_read(m, MU_INO, MU_FH, 0, 100));
    char buf[100];
    assert_int_equal(ufuse_pread(f, buf, sizeof(buf), 0), -ENOTCONN);
    after_death(s, f);
    ufuse_unmount(s);
    mock_verify(m);
    mock_free(m);
}

/* Death between calls: the next call finds it. */
static void t_death_idle(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 1 << 20, 0, 0);
    mock_kill(m);
    after_death(s, f);
    ufuse_unmount(s);
    mock_verify(m);
    mock_free(m);
}

/* A reply half sent (the first of three pieces) and then death. */
static void t_death_mid_reply(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDWR, 1 << 20, 0, 0);
    static unsigned char data[100000];
    size_t sizes[1] = {30000};
    struct mock_exp *e = mock_expect_read(m, MU_INO, MU_FH, 0, sizeof(data));
    mock_reply_split(e, 0, data, sizeof(data), sizes, 1);
    mock_act_die(e);
    assert_int_equal(ufuse_pread(f, data, sizeof(data), 0), -ENOTCONN);
    after_death(s, f);
    ufuse_unmount(s);
    mock_clear_problems(m); /* the split's pieces do not add up, on purpose */
    mock_verify(m);
    mock_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_death_with_calls_in_flight),
        cmocka_unit_test(t_death_on_request),
        cmocka_unit_test(t_death_idle),
        cmocka_unit_test(t_death_mid_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
