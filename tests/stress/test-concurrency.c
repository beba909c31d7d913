/*
 * test-concurrency.c - 8 threads doing mixed operations on one session
 * (the built-in ufuse-memfs), each checking every result, plus all
 * threads writing disjoint stripes of one shared file that is verified
 * at the end.  Run plain, under ASan and under TSan.
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

#define NTHREADS 8
#define ROUNDS 40
#define STRIPE 65536

static ufuse_t *S;
static ufuse_file_t *shared;

struct worker {
    int id;
    int failures;
    char msg[256];
    pthread_t t;
};

#define W_CHECK(w, cond)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            if (!(w)->failures++)                                                   \
                snprintf((w)->msg, sizeof (w)->msg, "thread %d line %d: %s", (w)->id, \
                         __LINE__, #cond);                                          \
            return;                                                                 \
        }                                                                           \
    } while (0)

static void fill(char *b, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)((i * 131 + (size_t)seed * 17) >> 3);
}

static void round_ops(struct worker *w, int r, char *buf, char *back)
{
    char dir[64], a[96], b[96], l[96];
    snprintf(dir, sizeof dir, "/t%d", w->id);
    snprintf(a, sizeof a, "%s/f%d", dir, r);
    snprintf(b, sizeof b, "%s/g%d", dir, r);
    snprintf(l, sizeof l, "%s/l%d", dir, r);
    size_t n = 1000 + (size_t)r * 997 % 50000;
    fill(buf, n, w->id * 1000 + r);

    ufuse_file_t *f;
    W_CHECK(w, ufuse_open(S, a, O_CREAT | O_EXCL | O_RDWR, 0600, &f) == 0);
    W_CHECK(w, ufuse_pwrite(f, buf, n, 0) == (ssize_t)n);
    memset(back, 0, n);
    W_CHECK(w, ufuse_pread(f, back, n + 100, 0) == (ssize_t)n);
    W_CHECK(w, memcmp(buf, back, n) == 0);
    struct stat st;
    W_CHECK(w, ufuse_fstat(f, &st) == 0 && st.st_size == (off_t)n);
    W_CHECK(w, ufuse_ftruncate(f, (off_t)n / 2) == 0);
    W_CHECK(w, ufuse_close(f) == 0);
    W_CHECK(w, ufuse_stat(S, a, &st) == 0 && st.st_size == (off_t)n / 2);
    W_CHECK(w, ufuse_rename(S, a, b, 0) == 0);
    W_CHECK(w, ufuse_stat(S, a, &st) == -ENOENT);
    W_CHECK(w, ufuse_symlink(S, b, l) == 0);
    char t[128];
    W_CHECK(w, ufuse_readlink(S, l, t, sizeof t) == (ssize_t)strlen(b));
    W_CHECK(w, ufuse_stat(S, l, &st) == 0 && st.st_size == (off_t)n / 2);
    W_CHECK(w, ufuse_setxattr(S, b, "user.k", "v1", 2, 0) == 0);
    W_CHECK(w, ufuse_getxattr(S, b, "user.k", t, sizeof t) == 2 && memcmp(t, "v1", 2) == 0);
    /* The directory holds exactly this round's two names (plus . ..). */
    ufuse_dir_t *d;
    struct ufuse_dirent e;
    int count = 0, rc;
    W_CHECK(w, ufuse_opendir(S, dir, &d) == 0);
    while ((rc = ufuse_readdir(d, &e)) > 0)
        if (strcmp(e.name, ".") && strcmp(e.name, ".."))
            count++;
    W_CHECK(w, rc == 0);
    W_CHECK(w, ufuse_closedir(d) == 0);
    W_CHECK(w, count == 2);
    W_CHECK(w, ufuse_unlink(S, l) == 0);
    W_CHECK(w, ufuse_unlink(S, b) == 0);
    W_CHECK(w, ufuse_unlink(S, b) == -ENOENT);

    /* My stripe of the shared file. */
    fill(buf, STRIPE, w->id);
    W_CHECK(w, ufuse_pwrite(shared, buf, STRIPE, (off_t)w->id * STRIPE) == STRIPE);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char dir[64];
    snprintf(dir, sizeof dir, "/t%d", w->id);
    char *buf = malloc(65536), *back = malloc(65536 + 100);
    if (ufuse_mkdir(S, dir, 0755) != 0) {
        w->failures++;
        snprintf(w->msg, sizeof w->msg, "mkdir %s", dir);
    }
    for (int r = 0; r < ROUNDS && !w->failures; r++)
        round_ops(w, r, buf, back);
    if (!w->failures && ufuse_rmdir(S, dir) != 0) {
        w->failures++;
        snprintf(w->msg, sizeof w->msg, "rmdir %s", dir);
    }
    free(buf);
    free(back);
    return NULL;
}

static void test_mixed_threads(void **state)
{
    int rc = ufuse_mount(&S, NULL, NULL);
    if (rc == -ENOENT) {
        fprintf(stderr, "ufuse-memfs not built\n");
        exit(77);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(ufuse_open(S, "/shared", O_CREAT | O_RDWR, 0644, &shared), 0);
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.id = i};
        pthread_create(&w[i].t, NULL, worker_main, &w[i]);
    }
    /* Join every worker before failing: fail_msg leaves this frame, and
     * the workers' state lives in it. */
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(w[i].t, NULL);
    for (int i = 0; i < NTHREADS; i++)
        if (w[i].failures)
            fail_msg("%s", w[i].msg);
    char *buf = malloc(STRIPE), *back = malloc(STRIPE);
    for (int i = 0; i < NTHREADS; i++) {
        fill(buf, STRIPE, i);
        assert_int_equal(ufuse_pread(shared, back, STRIPE, (off_t)i * STRIPE), STRIPE);
        assert_memory_equal(buf, back, STRIPE);
    }
    free(buf);
    free(back);
    assert_int_equal(ufuse_close(shared), 0);
    struct ufuse_opstat os[64];
    int k = ufuse_stats(S, os, 64);
    assert_true(k > 10);
    assert_int_equal(ufuse_unmount(S), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_mixed_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
