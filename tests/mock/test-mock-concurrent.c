/*
 * test-mock-concurrent.c - many calls in flight at once, answered out of
 * order: each call must get its own reply (data, inode), whatever order
 * the replies come in.  Run under TSan too (label tsan).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock/mockutil.h"

#define NT 8
#define CHUNK 4096

struct rd {
    ufuse_file_t *f;
    uint64_t off;
    ssize_t rc;
    unsigned char buf[CHUNK];
};

static void *rd_main(void *arg)
{
    struct rd *r = arg;
    r->rc = ufuse_pread(r->f, r->buf, CHUNK, (off_t)r->off);
    return NULL;
}

/* NT READs held by the mock until all arrived, then answered in a
 * scrambled order, round after round. */
static void t_reads_out_of_order(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    static const int order[NT] = {5, 2, 7, 0, 3, 6, 1, 4};
    for (int round = 0; round < 10; round++) {
        struct mock_exp *e[NT];
        struct rd *r = calloc(NT, sizeof(*r));
        void *args[NT];
        mock_unordered_begin(m);
        for (int i = 0; i < NT; i++) {
            uint64_t off = ((uint64_t)round * NT + (uint64_t)i) * CHUNK;
            e[i] = mock_expect_read(m, MU_INO, MU_FH, off, CHUNK);
            mock_no_reply(e[i]);
            r[i].f = f;
            r[i].off = off;
            args[i] = &r[i];
        }
        mock_unordered_end(m);
        pthread_t t[NT];
        for (int i = 0; i < NT; i++)
            assert_int_equal(pthread_create(&t[i], NULL, rd_main, args[i]), 0);
        for (int i = 0; i < NT; i++)
            assert_true(mock_wait(m, e[i], MOCK_WAIT_MS));
        for (int k = 0; k < NT; k++) {
            int i = order[(k + round) % NT];
            unsigned char data[CHUNK];
            mock_pattern(data, CHUNK, r[i].off);
            assert_int_equal(mock_respond(m, e[i], 0, data, CHUNK), 0);
        }
        for (int i = 0; i < NT; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < NT; i++) {
            unsigned char want[CHUNK];
            mock_pattern(want, CHUNK, r[i].off);
            assert_int_equal(r[i].rc, CHUNK);
            assert_memory_equal(r[i].buf, want, CHUNK);
        }
        free(r);
    }
    mu_close(m, f);
    mu_finish(m, s);
}

struct st {
    ufuse_t *s;
    int idx;
    int iters;
    int bad;
};

static void *st_main(void *arg)
{
    struct st *a = arg;
    char path[32];
    snprintf(path, sizeof(path), "/n%d", a->idx);
    for (int k = 0; k < a->iters; k++) {
        struct stat sb;
        int rc = ufuse_stat(a->s, path, &sb);
        if (rc != 0 || sb.st_ino != 100 + (ino_t)a->idx ||
            sb.st_size != 1000 + (off_t)a->idx)
            a->bad++;
    }
    return NULL;
}

/* NT threads stat their own uncached name in a loop; the mock answers as
 * the LOOKUPs come, interleaved across threads. */
static void t_stat_storm(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    const int iters = 40;
    struct st a[NT];
    void *args[NT];
    mock_unordered_begin(m);
    for (int i = 0; i < NT; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        struct mock_exp *e = mu_expect_entry(m, 1, name, 100 + (uint64_t)i,
                                             S_IFREG | 0644,
                                             1000 + (uint64_t)i, 0, 0);
        mock_times(e, iters);
        a[i] = (struct st){.s = s, .idx = i, .iters = iters};
        args[i] = &a[i];
    }
    mock_unordered_end(m);
    mu_parallel(NT, st_main, args);
    for (int i = 0; i < NT; i++)
        assert_int_equal(a[i].bad, 0);
    assert_int_equal(mock_log_count(m, FUSE_LOOKUP), NT * iters);
    mu_finish(m, s);
}

/* One reply answering the others: the last READ to arrive triggers the
 * replies to all, newest first. */
struct reply_all {
    struct mock_exp *e[NT];
    uint64_t off[NT];
};

static void reply_all_fn(struct mock *m, const struct mock_req *req, void *arg)
{
    struct reply_all *ra = arg;
    for (int i = NT - 1; i >= 0; i--) {
        if (mock_exp_count(m, ra->e[i]) == 0)
            continue;
        unsigned char data[CHUNK];
        mock_pattern(data, CHUNK, ra->off[i]);
        mock_respond(m, ra->e[i], 0, data, CHUNK);
    }
}

static void t_reply_burst(void **state)
{
    ufuse_t *s;
    struct mock *m = mu_mount(&s, NULL, NULL);
    ufuse_file_t *f = mu_open(m, s, O_RDONLY, 1 << 20, 3600, 0);
    struct reply_all ra;
    struct rd *r = calloc(NT, sizeof(*r));
    void *args[NT];
    mock_unordered_begin(m);
    for (int i = 0; i < NT; i++) {
        ra.off[i] = (uint64_t)i * CHUNK * 3;
        ra.e[i] = mock_expect_read(m, MU_INO, MU_FH, ra.off[i], CHUNK);
        mock_no_reply(ra.e[i]);
        r[i].f = f;
        r[i].off = ra.off[i];
        args[i] = &r[i];
    }
    mock_unordered_end(m);
    /* A barrier request after all READs: it releases them. */
    pthread_t t[NT];
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_create(&t[i], NULL, rd_main, args[i]), 0);
    for (int i = 0; i < NT; i++)
        assert_true(mock_wait(m, ra.e[i], MOCK_WAIT_MS));
    struct mock_exp *b = mock_expect(m, FUSE_STATFS, MOCK_ANY_NODE);
    mock_act_call(b, reply_all_fn, &ra);
    struct fuse_kstatfs kst = {.blocks = 1, .bsize = 4096};
    mock_reply_statfs(b, &kst);
    struct statvfs vst;
    assert_int_equal(ufuse_statfs(s, "/", &vst), 0);
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NT; i++) {
        unsigned char want[CHUNK];
        mock_pattern(want, CHUNK, r[i].off);
        assert_int_equal(r[i].rc, CHUNK);
        assert_memory_equal(r[i].buf, want, CHUNK);
    }
    free(r);
    mu_close(m, f);
    mu_finish(m, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_reads_out_of_order),
        cmocka_unit_test(t_stat_storm),
        cmocka_unit_test(t_reply_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
