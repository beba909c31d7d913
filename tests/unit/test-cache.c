/*
 * test-cache.c - the page cache's lock-free hit path (cache_read_fast):
 * hits take neither the object's nor the session's lock, a reader racing
 * evictions never returns another page's bytes (the frame's seq catches
 * the recycling), the page holding a short READ's EOF is never served
 * without a lock nor to another reader, and the lock-free index stays exact (invariant 10,
 * checked by cache_sane_all) through churn.
 *
 * The cache runs over a pager whose READs fill every 8-byte word with
 * (nodeid << 40 | file offset), so any byte read says where it came from.
 */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "fakesrv.h"

#define FRAMES 16
#define PAGE CACHE_PAGE_SIZE

struct env {
    struct fakesrv srv;
    struct node_table nodes;
    struct cache c;
    struct cache_handle h[2]; /* one per object (a handle is on one list) */
    int nh;
    _Atomic uint64_t reads;  /* READs the pager served */
    uint64_t short_at;       /* the pager's file ends here (UINT64_MAX: no end) */
};

static uint64_t word_at(uint64_t nodeid, uint64_t off)
{
    return nodeid << 40 | off;
}

static ssize_t pager_read(struct cache *c, struct cache_obj *o, const struct cache_handle *h,
                          const struct iovec *iov, int cnt, uint64_t off)
{
    (void)h;
    struct env *e = c->ctx;
    atomic_fetch_add(&e->reads, 1);
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        for (size_t k = 0; k + 8 <= iov[i].iov_len; k += 8) {
            uint64_t at = off + total + k;
            if (at >= e->short_at)
                return (ssize_t)(total + k);
            uint64_t w = word_at(o->node->nodeid, at);
            memcpy((char *)iov[i].iov_base + k, &w, 8);
        }
        total += iov[i].iov_len;
    }
    return (ssize_t)total;
}

/* Write-back WRITEs end at once (the tests here never dirty a page). */
static int pager_write_start(struct cache *c, struct cache_obj *o, const struct cache_handle *h,
                             const struct iovec *iov, int cnt, uint64_t off,
                             struct conn_group *g, struct cache_cluster *cl)
{
    (void)c, (void)o, (void)h, (void)off, (void)g;
    cache_io_done(cl, (ssize_t)iov_total(iov, cnt));
    return 0;
}

static void pager_write_wait(struct cache *c, struct conn_group *g, unsigned max)
{
    (void)c, (void)g, (void)max;
}

static const struct cache_pager_ops pager = {
    .read = pager_read, .write_start = pager_write_start, .write_wait = pager_write_wait};

static void env_start(struct env *e)
{
    memset(e, 0, sizeof *e);
    e->short_at = UINT64_MAX;
    fakesrv_start(&e->srv, 38, 1 << 20, 0);
    assert_int_equal(node_table_init(&e->nodes, &e->srv.conn), 0);
    struct cache_params p = {.budget = FRAMES * PAGE, .block_size = PAGE,
                             .max_read = 32 * PAGE, .max_write = 32 * PAGE,
                             .dirty_expire_ns = 1000000000ull};
    assert_int_equal(cache_init(&e->c, &p, &pager, e, &e->nodes), 0);
}

static void env_stop(struct env *e)
{
    cache_destroy(&e->c);
    node_table_destroy(&e->nodes);
    fakesrv_stop(&e->srv);
}

static struct cache_obj *env_obj(struct env *e, uint64_t nodeid)
{
    struct fuse_entry_out ent;
    memset(&ent, 0, sizeof ent);
    ent.nodeid = nodeid;
    ent.attr.ino = nodeid;
    ent.attr.mode = S_IFREG | 0644;
    int err;
    struct node *n = node_from_entry(&e->nodes, &ent, node_attr_seq(&e->nodes), &err);
    assert_non_null(n);
    struct cache_obj *o = cache_obj_get(&e->c, n);
    assert_non_null(o);
    node_put(&e->nodes, n);
    assert_true(e->nh < 2);
    struct cache_handle *h = &e->h[e->nh++];
    h->fh = (uint64_t)e->nh;
    cache_handle_add(o, h);
    return o;
}

/* The handle env_obj registered on @o. */
static struct cache_handle *env_handle(struct env *e, struct cache_obj *o)
{
    for (int i = 0; i < e->nh; i++)
        for (struct cache_handle *h = o->handles; h; h = h->next)
            if (h == &e->h[i])
                return h;
    fail();
    return NULL;
}

static void env_obj_put(struct env *e, struct cache_obj *o)
{
    cache_handle_remove(o, env_handle(e, o));
    cache_obj_put(o);
}

/* Bring pages [first, first + n) of @o in through the locked path (as
 * its callers do, never past @fsize). */
static void fill(struct env *e, struct cache_obj *o, uint64_t first, int n, uint64_t fsize)
{
    if ((first + (uint64_t)n) * PAGE > fsize)
        n = (int)(fsize / PAGE - first);
    struct cache_page *pages[CACHE_MAX_HOLD];
    uint64_t eof;
    int got = cache_getpages(o, env_handle(e, o), first * PAGE, (size_t)n * PAGE, fsize, pages, &eof);
    assert_true(got > 0);
    cache_release(o, pages, got);
}

/* Does @buf hold what @len bytes of @nodeid at @off are? */
static int holds(const char *buf, uint64_t nodeid, uint64_t off, size_t len)
{
    for (size_t k = 0; k + 8 <= len; k += 8) {
        uint64_t w;
        memcpy(&w, buf + k, 8);
        if (w != word_at(nodeid, off + k))
            return 0;
    }
    return 1;
}

struct locked_read {
    struct cache_obj *o;
    char *buf;
    size_t len, got;
};

static void *read_fast_thread(void *arg)
{
    struct locked_read *r = arg;
    struct iovec v = {r->buf, r->len};
    r->got = cache_read_fast(r->o, 0, r->len, &v, 1, 0);
    return NULL;
}

static void test_hits_take_no_lock(void **state)
{
    (void)state;
    static struct env e;
    env_start(&e);
    struct cache_obj *o = env_obj(&e, 7);
    fill(&e, o, 0, 4, 4 * PAGE);
    uint64_t reads = atomic_load(&e.reads);
    /* Hold both locks a hit used to take; a hit must not need them. */
    static char buf[4 * PAGE];
    struct locked_read r = {o, buf, sizeof buf, 0};
    pthread_mutex_lock(&o->mu);
    pthread_mutex_lock(&e.c.mu);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_fast_thread, &r), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    int rc = pthread_timedjoin_np(t, NULL, &until);
    pthread_mutex_unlock(&e.c.mu);
    pthread_mutex_unlock(&o->mu);
    if (rc)
        pthread_join(t, NULL);
    assert_int_equal(rc, 0); /* else the hit waited for a lock */
    assert_int_equal(r.got, sizeof buf);
    assert_true(holds(buf, 7, 0, sizeof buf));
    assert_int_equal(atomic_load(&e.reads), reads); /* no READ for a hit */
    /* A page not resident is not a hit: the copy stops before it. */
    struct iovec v = {buf, 5 * PAGE};
    static char big[5 * PAGE];
    v.iov_base = big;
    assert_int_equal(cache_read_fast(o, 0, 5 * PAGE, &v, 1, 0), 4 * PAGE);
    /* An unaligned read inside the pages. */
    v = (struct iovec){big, PAGE};
    assert_int_equal(cache_read_fast(o, PAGE + 8, PAGE, &v, 1, 0), PAGE);
    assert_true(holds(big, 7, PAGE + 8, PAGE));
    assert_true(cache_sane_all(&e.c));
    env_obj_put(&e, o);
    env_stop(&e);
}

/* The client thinks @o is 4 pages; the server's file ends inside page 2.
 * Read it all: pages 0-2 come back held (page 2 made up past the EOF). */
static int read_short(struct env *e, struct cache_obj *o, struct cache_page **pages)
{
    e->short_at = 2 * PAGE + 64;
    uint64_t eof;
    int got = cache_getpages(o, env_handle(e, o), 0, 4 * PAGE, 4 * PAGE, pages, &eof);
    assert_int_equal(got, 3);
    assert_int_equal(eof, 2 * PAGE + 64);
    return got;
}

static void test_short_read_eof_page_not_published(void **state)
{
    (void)state;
    static struct env e;
    env_start(&e);
    struct cache_obj *o = env_obj(&e, 8);
    /* The zeros made up past the server's EOF must never be a lock-free hit. */
    struct cache_page *pages[CACHE_MAX_HOLD];
    int got = read_short(&e, o, pages);
    cache_release(o, pages, got);
    static char buf[3 * PAGE];
    struct iovec v = {buf, sizeof buf};
    assert_int_equal(cache_read_fast(o, 0, sizeof buf, &v, 1, 0), 2 * PAGE);
    assert_true(cache_sane_all(&e.c));
    env_obj_put(&e, o);
    env_stop(&e);
}

/* A second reader of the page holding a short READ's EOF, while the
 * first holds it: it must not copy the zeros the first made up. */
struct second_reader {
    struct env *e;
    struct cache_obj *o;
    char buf[PAGE];
    int got;
    atomic_int done;
};

static void *second_read(void *arg)
{
    struct second_reader *r = arg;
    struct cache_page *pages[CACHE_MAX_HOLD];
    uint64_t eof;
    r->got = cache_getpages(r->o, env_handle(r->e, r->o), 2 * PAGE, PAGE, 4 * PAGE, pages, &eof);
    if (r->got > 0) {
        memcpy(r->buf, pages[0]->data, PAGE);
        cache_release(r->o, pages, r->got);
    }
    atomic_store(&r->done, 1);
    return NULL;
}

static void test_short_read_eof_page_its_readers_only(void **state)
{
    (void)state;
    static struct env e;
    env_start(&e);
    struct cache_obj *o = env_obj(&e, 9);
    struct cache_page *pages[CACHE_MAX_HOLD];
    int got = read_short(&e, o, pages);
    /* The cut was a lie, or the file grew: the server has 4 pages now.  A
     * reader that took the size before the short READ asks for page 2
     * while the first reader still copies out of it. */
    e.short_at = UINT64_MAX;
    uint64_t reads = atomic_load(&e.reads);
    static struct second_reader r;
    r = (struct second_reader){.e = &e, .o = o};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second_read, &r), 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_false(atomic_load(&r.done)); /* it waits for the made-up page to go */
    cache_release(o, pages, got);
    pthread_join(t, NULL);
    assert_int_equal(r.got, 1);
    assert_true(holds(r.buf, 9, 2 * PAGE, PAGE)); /* its own READ's bytes, no zeros */
    assert_int_equal(atomic_load(&e.reads), reads + 1);
    assert_true(cache_sane_all(&e.c));
    env_obj_put(&e, o);
    env_stop(&e);
}

struct race {
    struct cache_obj *a, *b;
    _Atomic int stop;
    _Atomic uint64_t hit_bytes, bad;
};

static void *racing_reader(void *arg)
{
    struct race *r = arg;
    static _Thread_local char buf[8 * PAGE];
    uint64_t x = (uint64_t)(uintptr_t)&buf | 1;
    while (!atomic_load(&r->stop)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t off = (x % (8 * PAGE)) & ~7ull;
        size_t len = (size_t)UFUSE_MIN(8 * PAGE - off, 1 + (x >> 20) % (3 * PAGE));
        len &= ~(size_t)7;
        if (!len)
            continue;
        struct iovec v = {buf, len};
        size_t got = cache_read_fast(r->a, off, len, &v, 1, 0);
        if (!holds(buf, r->a->node->nodeid, off, got & ~(size_t)7))
            atomic_fetch_add(&r->bad, 1);
        atomic_fetch_add(&r->hit_bytes, got);
    }
    return NULL;
}

static void test_racing_evictions_never_return_other_bytes(void **state)
{
    (void)state;
    static struct env e;
    env_start(&e);
    static struct race r;
    memset(&r, 0, sizeof r);
    r.a = env_obj(&e, 100);
    r.b = env_obj(&e, 200);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racing_reader, &r), 0);
    /* Churn: B's pages (4 budgets' worth) evict A's, A comes back; the
     * frames under the readers change hands all the time. */
    uint64_t evictions0 = atomic_load(&e.c.st.evictions);
    for (int round = 0; round < 20000; round++) {
        fill(&e, r.a, (uint64_t)(round % 8), 1 + round % 4, 8 * PAGE);
        fill(&e, r.b, (uint64_t)(round * 7 % 64), 1 + round % 8, 64 * PAGE);
        if (round % 2000 == 0)
            assert_true(cache_sane_all(&e.c));
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&r.bad), 0);
    assert_true(atomic_load(&e.c.st.evictions) - evictions0 > 1000);
    assert_true(atomic_load(&r.hit_bytes) > 0);
    assert_true(cache_sane_all(&e.c));
    env_obj_put(&e, r.b);
    env_obj_put(&e, r.a);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_take_no_lock),
        cmocka_unit_test(test_short_read_eof_page_not_published),
        cmocka_unit_test(test_short_read_eof_page_its_readers_only),
        cmocka_unit_test(test_racing_evictions_never_return_other_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
