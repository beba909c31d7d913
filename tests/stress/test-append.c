/*
 * test-append.c - O_APPEND is atomic between handles of one session: two
 * threads, each with its own handle, append fixed-size records to one file
 * at once (the shape of two processes of a `ufuse run` tree doing
 * `echo >>log`).  No record may be lost or overwritten, in every cache mode.
 * Without the per-node append lock (io.c) both threads read the same size
 * and write over each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ufuse.h"

#define RECORDS 300
#define RECLEN 32

struct appender {
    ufuse_t *s;
    int id;
    int err;
};

static void *append_main(void *arg)
{
    struct appender *a = arg;
    ufuse_file_t *f;
    a->err = ufuse_open(a->s, "/log", O_WRONLY | O_APPEND | O_CREAT, 0644, &f);
    if (a->err)
        return NULL;
    for (int i = 0; i < RECORDS && !a->err; i++) {
        char rec[RECLEN + 1];
        snprintf(rec, sizeof rec, "thread %d record %05d .........\n", a->id, i);
        ssize_t n = ufuse_write(f, rec, RECLEN);
        if (n != RECLEN)
            a->err = n < 0 ? (int)n : -EIO;
    }
    int rc = ufuse_close(f);
    if (!a->err)
        a->err = rc;
    return NULL;
}

static void append_case(const char *opts)
{
    ufuse_t *s;
    int rc = ufuse_mount(&s, NULL, opts);
    if (rc == -ENOENT)
        skip();
    assert_int_equal(rc, 0);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(s, "/log", O_WRONLY | O_CREAT | O_TRUNC, 0644, &f), 0);
    assert_int_equal(ufuse_close(f), 0);
    pthread_t t[2];
    struct appender a[2] = { { s, 0, 0 }, { s, 1, 0 } };
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, append_main, &a[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(a[0].err, 0);
    assert_int_equal(a[1].err, 0);
    static char buf[2 * RECORDS * RECLEN + 1];
    assert_int_equal(ufuse_open(s, "/log", O_RDONLY, 0, &f), 0);
    ssize_t n = ufuse_pread(f, buf, sizeof buf, 0);
    assert_int_equal(ufuse_close(f), 0);
    if (n != 2 * RECORDS * RECLEN)
        fail_msg("-o %s: %zd bytes, want %d: appends were lost", opts, n, 2 * RECORDS * RECLEN);
    int seen[2][RECORDS] = { { 0 } };
    for (int r = 0; r < 2 * RECORDS; r++) {
        int id, i;
        if (sscanf(buf + r * RECLEN, "thread %d record %d", &id, &i) != 2 || id < 0 || id > 1 ||
            i < 0 || i >= RECORDS || buf[r * RECLEN + RECLEN - 1] != '\n')
            fail_msg("-o %s: record %d is damaged", opts, r);
        seen[id][i]++;
    }
    for (int id = 0; id < 2; id++)
        for (int i = 0; i < RECORDS; i++)
            if (seen[id][i] != 1)
                fail_msg("-o %s: record %d of thread %d seen %d times", opts, i, id, seen[id][i]);
    assert_int_equal(ufuse_unmount(s), 0);
}

static void t_append_direct(void **state) { append_case("cache=direct"); }
static void t_append_writethrough(void **state) { append_case("cache=writethrough"); }
static void t_append_writeback(void **state) { append_case("cache=writeback"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_append_direct),
        cmocka_unit_test(t_append_writethrough),
        cmocka_unit_test(t_append_writeback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
