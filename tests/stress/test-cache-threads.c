/*
 * test-cache-threads.c - many threads through the page cache at once, with
 * a small cache (2 MiB) so that pages are evicted and written back while
 * the threads work.  Two workloads, each under cache=writeback,
 * cache=writethrough and cache=writeback with block_size=16k and a 1 s
 * dirty expiry (the flusher runs too):
 *  - one file (4 MiB, twice the cache) cut into unaligned stripes of
 *    12289 bytes, so neighbouring stripes share pages; 4 writers each own
 *    every 4th stripe and rewrite their stripes 3 times (each time a new
 *    generation of content), in pieces, through their own handles (one of
 *    them O_WRONLY: read-modify-write under write-back);
 *  - 24 files of 197 KiB + 1234 bytes (5 MiB in all), stripes of 20000
 *    bytes owned by the 4 writers in turn.
 * Meanwhile 3 readers read overlapping random ranges, an opener thread
 * opens, reads and closes the files (an open without keep_cache drops
 * cached pages, after writing back dirty ones), and a syncer calls fsync
 * and ufuse_sync.  Every byte read is checked against the writers'
 * bookkeeping: it must be the content of a generation between the last
 * one its writer finished before the read began and the last one it
 * started before the read ended (no lost, stale, torn-in-the-wrong-place or
 * foreign data).  At the end every stripe must hold its final generation,
 * read through a fresh handle and through O_DIRECT (the server's copy).
 * Content checks only, no timing.  Labelled tsan: TSan runs it too, in
 * "exclusive" mode (see below), where reads take per-stripe locks against
 * the writers and must then see exactly the last completed generation.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ufuse.h"

#define WRITERS 4
#define READERS 3
#define PASSES 3
#define MIN_READS 60      /* per reader, even if the writers finish first */
#define MIN_OPENS 20
#define MAXREAD (128 * 1024)
#define MAXFILES 24

struct region {
    int file;
    int64_t off, len;
    int owner;
    atomic_uint started;    /* generation being written (or last written) */
    atomic_uint completed;  /* generation whose write returned */
    pthread_rwlock_t lock;  /* exclusive mode: the writer's, against readers */
};

struct workload {
    const char *name;
    int nfiles;
    int64_t fsize;
    int64_t stripe;
};

static const struct workload one_file = {"one file", 1, 4 << 20, 12289};
static const struct workload many_files = {"many files", MAXFILES, 197 * 1024 + 1234, 20000};

static ufuse_t *S;
static const struct workload *WL;
static struct region *regions;
static int nregions, per_file;     /* regions per file */
static atomic_int writers_left;
static atomic_int failed;         /* someone failed: everyone stops */
/*
 * Exclusive mode: no read overlaps bytes being written (per-stripe
 * reader/writer locks in the test), so a read must see exactly the last
 * completed generation.  Default under TSan: the page cache copies into
 * and out of pages without a lock, as the kernel does, so a read racing a
 * write of the same bytes is a race TSan reports even when the cache is
 * right.  Free-running (readers racing writers) elsewhere.
 * UFUSE_THREADS_EXCLUSIVE=0/1 overrides.
 */
#if defined(__SANITIZE_THREAD__)
#define EXCLUSIVE_DEFAULT 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EXCLUSIVE_DEFAULT 1
#endif
#endif
#ifndef EXCLUSIVE_DEFAULT
#define EXCLUSIVE_DEFAULT 0
#endif
static int exclusive = EXCLUSIVE_DEFAULT;

struct thr {
    int id;
    pthread_t t;
    int failures;
    char msg[512];
    uint64_t rng;
    unsigned long ops;
    unsigned lo[MAXREAD / 4096 + 8], hi[MAXREAD / 4096 + 8];
    unsigned char *buf;      /* MAXREAD bytes */
};

static uint64_t rnd(struct thr *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

static void path_of(int f, char *out, size_t n)
{
    snprintf(out, n, "/f%02d", f);
}

/* Content of generation @g of the stripe owned by @w at @pos (0: never
 * written).  Generations that differ by less than 256 differ in every
 * byte (151 is odd). */
static unsigned char pat(int w, unsigned g, int64_t pos)
{
    if (!g)
        return 0;
    return (unsigned char)((((uint64_t)pos * 2654435761u) >> 9) + g * 151u + (unsigned)w * 37u);
}

#define T_FAIL(t, ...)                                                                    \
    do {                                                                                  \
        if (!(t)->failures++) {                                                           \
            int n_ = snprintf((t)->msg, sizeof (t)->msg, "thread %d: ", (t)->id);         \
            snprintf((t)->msg + n_, sizeof (t)->msg - (size_t)n_, __VA_ARGS__);           \
        }                                                                                 \
        atomic_store(&failed, 1);                                                         \
    } while (0)

/* Read [off, off+len) of file @f through @h and check every byte against
 * the generations its writer could have had there meanwhile. */
static int read_check(struct thr *t, ufuse_file_t *h, int f, int64_t off, int64_t len)
{
    unsigned *lo = t->lo, *hi = t->hi;
    unsigned char *buf = t->buf;
    int first = (int)(off / WL->stripe), last = (int)((off + len - 1) / WL->stripe);
    struct region *r = &regions[f * per_file];
    if (exclusive)   /* in index order; a writer holds one lock at a time */
        for (int k = first; k <= last; k++)
            pthread_rwlock_rdlock(&r[k].lock);
    for (int k = first; k <= last; k++)
        lo[k - first] = atomic_load(&r[k].completed);
    ssize_t n = ufuse_pread(h, buf, (size_t)len, off);
    for (int k = first; k <= last; k++)
        hi[k - first] = atomic_load(&r[k].started);
    if (exclusive)
        for (int k = first; k <= last; k++)
            pthread_rwlock_unlock(&r[k].lock);
    if (n != len) {
        T_FAIL(t, "pread(file %d, %" PRId64 " at %" PRId64 ") = %zd", f, len, off, n);
        return -1;
    }
    for (int64_t i = 0; i < len; i++) {
        int64_t pos = off + i;
        int k = (int)(pos / WL->stripe);
        unsigned a = lo[k - first], b = hi[k - first];
        int ok = 0;
        for (unsigned g = a; g <= b && !ok; g++)
            ok = buf[i] == pat(r[k].owner, g, pos);
        if (!ok) {
            int is = -1;
            for (unsigned g = 0; g <= PASSES && is < 0; g++)
                if (buf[i] == pat(r[k].owner, g, pos))
                    is = (int)g;
            /* how much is wrong, and is it some other place's data? */
            int64_t nbad = 0, lastbad = i;
            for (int64_t j = i; j < len; j++) {
                int64_t q = off + j;
                int kk = (int)(q / WL->stripe);
                int good = 0;
                for (unsigned g = lo[kk - first]; g <= hi[kk - first] && !good; g++)
                    good = buf[j] == pat(r[kk].owner, g, q);
                if (!good) {
                    nbad++;
                    lastbad = j;
                }
            }
            char from[96] = "";
            int64_t span = len - i < 16 ? len - i : 16;
            for (int64_t d = -(1 << 20); d <= (1 << 20) && !from[0]; d += 4096) {
                int64_t base = pos + d;
                if (d == 0 || base < 0 || base + span > WL->fsize)
                    continue;
                for (unsigned g = 0; g <= PASSES && !from[0]; g++) {
                    int64_t j = 0;
                    while (j < span &&
                           buf[i + j] == pat(r[(base + j) / WL->stripe].owner, g, base + j))
                        j++;
                    if (j == span)
                        snprintf(from, sizeof from, "; it is generation %u of offset %" PRId64
                                 " (%+" PRId64 ")", g, base, d);
                }
            }
            T_FAIL(t, "file %d offset %" PRId64 " (stripe %d of writer %d), read %" PRId64
                   " at %" PRId64 ": byte %02x is generation %d, not one in [%u, %u]; %" PRId64
                   " bad bytes up to offset %" PRId64 "%s", f, pos, k, r[k].owner, len, off,
                   buf[i], is, a, b, nbad, off + lastbad, from);
            return -1;
        }
    }
    return 0;
}

static ufuse_file_t *open_or_fail(struct thr *t, int f, int flags)
{
    char p[32];
    path_of(f, p, sizeof p);
    ufuse_file_t *h = NULL;
    int rc = ufuse_open(S, p, flags, 0644, &h);
    if (rc) {
        T_FAIL(t, "open %s: %s", p, strerror(-rc));
        return NULL;
    }
    return h;
}

static void close_or_fail(struct thr *t, ufuse_file_t *h)
{
    int rc = ufuse_close(h);
    if (rc)
        T_FAIL(t, "close: %s", strerror(-rc));
}

/* ---- writers ------------------------------------------------------------------------------- */

static void *writer(void *arg)
{
    struct thr *t = arg;
    int mode = t->id == 1 ? O_WRONLY : O_RDWR;
    ufuse_file_t *h[MAXFILES] = {0};
    unsigned char *buf = malloc((size_t)WL->stripe);
    int *mine = malloc(sizeof(int) * (size_t)nregions), n = 0;
    for (int i = 0; i < nregions; i++)
        if (regions[i].owner == t->id)
            mine[n++] = i;
    for (int f = 0; f < WL->nfiles && !t->failures; f++)
        h[f] = open_or_fail(t, f, mode);
    for (unsigned g = 1; g <= PASSES && !atomic_load(&failed); g++) {
        for (int i = n - 1; i > 0; i--) {   /* a new order each pass */
            int j = (int)(rnd(t) % (uint64_t)(i + 1)), x = mine[i];
            mine[i] = mine[j];
            mine[j] = x;
        }
        for (int i = 0; i < n && !atomic_load(&failed); i++) {
            struct region *r = &regions[mine[i]];
            for (int64_t k = 0; k < r->len; k++)
                buf[k] = pat(t->id, g, r->off + k);
            if (exclusive)
                pthread_rwlock_wrlock(&r->lock);
            atomic_store(&r->started, g);
            /* in one to three pieces, in a random order */
            int64_t cut[4] = {0, (int64_t)(rnd(t) % (uint64_t)r->len),
                              (int64_t)(rnd(t) % (uint64_t)r->len), r->len};
            if (cut[1] > cut[2]) {
                int64_t x = cut[1];
                cut[1] = cut[2];
                cut[2] = x;
            }
            int start = (int)(rnd(t) % 3);
            for (int p = 0; p < 3; p++) {
                int q = (start + p) % 3;
                int64_t a = cut[q], b = cut[q + 1];
                if (a == b)
                    continue;
                ssize_t w = ufuse_pwrite(h[r->file], buf + a, (size_t)(b - a), r->off + a);
                if (w != b - a) {
                    T_FAIL(t, "pwrite(file %d, %" PRId64 " at %" PRId64 ") = %zd", r->file,
                           b - a, r->off + a, w);
                    break;
                }
            }
            atomic_store(&r->completed, g);
            if (exclusive)
                pthread_rwlock_unlock(&r->lock);
            t->ops++;
            /* now and then: fsync, or close and reopen (write-back of
             * this file while the others keep writing it) */
            uint64_t x = rnd(t) % 32;
            if (x == 0) {
                int rc = ufuse_fsync(h[r->file]);
                if (rc)
                    T_FAIL(t, "fsync: %s", strerror(-rc));
            } else if (x == 1) {
                close_or_fail(t, h[r->file]);
                h[r->file] = open_or_fail(t, r->file, mode);
                if (!h[r->file])
                    break;
            }
        }
    }
    for (int f = 0; f < WL->nfiles; f++)
        if (h[f])
            close_or_fail(t, h[f]);
    free(buf);
    free(mine);
    atomic_fetch_sub(&writers_left, 1);
    return NULL;
}

/* ---- readers, opener, syncer --------------------------------------------------------------- */

static void random_read(struct thr *t, ufuse_file_t *h, int f)
{
    int64_t len = 1 + (int64_t)(rnd(t) % (rnd(t) % 4 ? 16384 : MAXREAD));
    if (len > WL->fsize)
        len = WL->fsize;
    int64_t off = (int64_t)(rnd(t) % (uint64_t)(WL->fsize - len + 1));
    read_check(t, h, f, off, len);
    t->ops++;
}

static void *reader(void *arg)
{
    struct thr *t = arg;
    ufuse_file_t *h[MAXFILES] = {0};
    for (int f = 0; f < WL->nfiles && !t->failures; f++)
        h[f] = open_or_fail(t, f, t->id % 2 ? O_RDWR : O_RDONLY);
    for (unsigned long i = 0; !atomic_load(&failed) &&
                              (i < MIN_READS || atomic_load(&writers_left) > 0); i++) {
        int f = (int)(rnd(t) % (uint64_t)WL->nfiles);
        /* sometimes a sequential run (readahead) */
        if (rnd(t) % 8 == 0) {
            int64_t off = (int64_t)(rnd(t) % (uint64_t)WL->fsize);
            for (int k = 0; k < 8 && off < WL->fsize && !t->failures; k++) {
                int64_t len = WL->fsize - off < 32768 ? WL->fsize - off : 32768;
                read_check(t, h[f], f, off, len);
                off += len;
            }
            t->ops++;
        } else {
            random_read(t, h[f], f);
        }
    }
    for (int f = 0; f < WL->nfiles; f++)
        if (h[f])
            close_or_fail(t, h[f]);
    return NULL;
}

static void *opener(void *arg)
{
    struct thr *t = arg;
    for (unsigned long i = 0; !atomic_load(&failed) &&
                              (i < MIN_OPENS || atomic_load(&writers_left) > 0); i++) {
        int f = (int)(rnd(t) % (uint64_t)WL->nfiles);
        ufuse_file_t *h = open_or_fail(t, f, i % 2 ? O_RDWR : O_RDONLY);
        if (!h)
            break;
        random_read(t, h, f);
        close_or_fail(t, h);
    }
    return NULL;
}

static void *syncer(void *arg)
{
    struct thr *t = arg;
    ufuse_file_t *h[MAXFILES] = {0};
    for (int f = 0; f < WL->nfiles && !t->failures; f++)
        h[f] = open_or_fail(t, f, O_RDWR);
    for (unsigned long i = 0; !atomic_load(&failed) &&
                              (i < MIN_OPENS || atomic_load(&writers_left) > 0); i++) {
        int rc;
        if (i % 4 == 3) {
            rc = ufuse_sync(S);
        } else {
            int f = (int)(rnd(t) % (uint64_t)WL->nfiles);
            rc = i % 2 ? ufuse_fsync(h[f]) : ufuse_fdatasync(h[f]);
        }
        if (rc)
            T_FAIL(t, "sync %lu: %s", i, strerror(-rc));
        t->ops++;
        if (i % 2) {
            int f = (int)(rnd(t) % (uint64_t)WL->nfiles);
            random_read(t, h[f], f);
        }
    }
    for (int f = 0; f < WL->nfiles; f++)
        if (h[f])
            close_or_fail(t, h[f]);
    return NULL;
}

/* ---- one run ------------------------------------------------------------------------------- */

static void final_check(int flags, const char *what)
{
    struct thr t = {.id = -1};
    unsigned char *buf = malloc((size_t)WL->fsize);
    for (int f = 0; f < WL->nfiles; f++) {
        ufuse_file_t *h = open_or_fail(&t, f, flags);
        if (!h)
            break;
        ssize_t n = ufuse_pread(h, buf, (size_t)WL->fsize, 0);
        if (n != WL->fsize) {
            T_FAIL(&t, "%s: file %d: pread = %zd, expected %" PRId64, what, f, n, WL->fsize);
            ufuse_close(h);
            break;
        }
        char extra;
        if (ufuse_pread(h, &extra, 1, WL->fsize) != 0)
            T_FAIL(&t, "%s: file %d: data past %" PRId64, what, f, WL->fsize);
        for (int64_t i = 0; i < WL->fsize && !t.failures; i++) {
            struct region *r = &regions[f * per_file + (int)(i / WL->stripe)];
            if (buf[i] != pat(r->owner, PASSES, i))
                T_FAIL(&t, "%s: file %d offset %" PRId64 ": %02x, final generation is %02x",
                       what, f, i, buf[i], pat(r->owner, PASSES, i));
        }
        close_or_fail(&t, h);
        if (t.failures)
            break;
    }
    free(buf);
    if (t.failures)
        fail_msg("%s", t.msg);
}

static void run(const struct workload *wl, const char *opts)
{
    WL = wl;
    atomic_store(&failed, 0);
    int rc = ufuse_mount(&S, NULL, opts);
    if (rc == -ENOENT) {
        fprintf(stderr, "ufuse-memfs not built\n");
        exit(77);
    }
    if (rc)
        fail_msg("ufuse_mount(-o %s) = %d (%s)", opts, rc, strerror(-rc));
    struct ufuse_cacheinfo ci;
    assert_int_equal(ufuse_cacheinfo(S, &ci), 0);
    assert_int_equal(ci.budget, 2u << 20);

    per_file = (int)((wl->fsize + wl->stripe - 1) / wl->stripe);
    nregions = per_file * wl->nfiles;
    regions = calloc((size_t)nregions, sizeof *regions);
    for (int f = 0; f < wl->nfiles; f++) {
        char p[32];
        path_of(f, p, sizeof p);
        ufuse_file_t *h;
        assert_int_equal(ufuse_open(S, p, O_CREAT | O_TRUNC | O_RDWR, 0644, &h), 0);
        assert_int_equal(ufuse_ftruncate(h, wl->fsize), 0);
        assert_int_equal(ufuse_close(h), 0);
        for (int k = 0; k < per_file; k++) {
            struct region *r = &regions[f * per_file + k];
            r->file = f;
            r->off = (int64_t)k * wl->stripe;
            r->len = wl->fsize - r->off < wl->stripe ? wl->fsize - r->off : wl->stripe;
            r->owner = (f * 7 + k) % WRITERS;
            atomic_init(&r->started, 0);
            atomic_init(&r->completed, 0);
            /* writers first, or busy readers could starve them */
            pthread_rwlockattr_t ra;
            pthread_rwlockattr_init(&ra);
            pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
            pthread_rwlock_init(&r->lock, &ra);
            pthread_rwlockattr_destroy(&ra);
        }
    }

    static struct thr th[WRITERS + READERS + 2];
    int nt = 0;
    atomic_store(&writers_left, WRITERS);
    for (int i = 0; i < WRITERS; i++, nt++) {
        th[nt] = (struct thr){.id = i, .rng = 0x9E3779B97F4A7C15ull * (uint64_t)(nt + 1),
                              .buf = malloc(MAXREAD)};
        pthread_create(&th[nt].t, NULL, writer, &th[nt]);
    }
    for (int i = 0; i < READERS; i++, nt++) {
        th[nt] = (struct thr){.id = nt, .rng = 0x9E3779B97F4A7C15ull * (uint64_t)(nt + 1),
                              .buf = malloc(MAXREAD)};
        pthread_create(&th[nt].t, NULL, reader, &th[nt]);
    }
    th[nt] = (struct thr){.id = nt, .rng = 0x9E3779B97F4A7C15ull * (uint64_t)(nt + 1),
                          .buf = malloc(MAXREAD)};
    pthread_create(&th[nt].t, NULL, opener, &th[nt]);
    nt++;
    th[nt] = (struct thr){.id = nt, .rng = 0x9E3779B97F4A7C15ull * (uint64_t)(nt + 1),
                          .buf = malloc(MAXREAD)};
    pthread_create(&th[nt].t, NULL, syncer, &th[nt]);
    nt++;
    /* every thread joined before anything can fail */
    for (int i = 0; i < nt; i++)
        pthread_join(th[i].t, NULL);
    for (int i = 0; i < nt; i++)
        free(th[i].buf);
    for (int i = 0; i < nt; i++)
        if (th[i].failures)
            fail_msg("%s, -o %s: %s", wl->name, opts, th[i].msg);

    final_check(O_RDONLY, "final read");
    final_check(O_RDONLY | O_DIRECT, "final O_DIRECT read");

    assert_int_equal(ufuse_cacheinfo(S, &ci), 0);
    fprintf(stderr, "%s, -o %s: ops w %lu %lu %lu %lu r %lu %lu %lu; pages_max %" PRIu64
            " hits %" PRIu64 " misses %" PRIu64 " evictions %" PRIu64 " writebacks %" PRIu64
            " throttled %" PRIu64 "\n", wl->name, opts, th[0].ops, th[1].ops, th[2].ops,
            th[3].ops, th[4].ops, th[5].ops, th[6].ops, ci.pages_max, ci.hits, ci.misses,
            ci.evictions, ci.writebacks, ci.throttled);
    /* the cache was in the path, and full enough to evict */
    assert_true(ci.hits > 0);
    assert_true(ci.evictions > 0);
    assert_true(ci.pages_max * ci.page_size <= ci.budget + ci.budget / 20);
    for (int i = 0; i < nregions; i++)
        pthread_rwlock_destroy(&regions[i].lock);
    free(regions);
    regions = NULL;
    assert_int_equal(ufuse_unmount(S), 0);
}

#define WB "cache=writeback,cache_size=2m"
#define WT "cache=writethrough,cache_size=2m"
#define WB16 "cache=writeback,cache_size=2m,block_size=16k,dirty_expire=1"

static void one_wb(void **s) { (void)s; run(&one_file, WB); }
static void one_wt(void **s) { (void)s; run(&one_file, WT); }
static void one_wb16(void **s) { (void)s; run(&one_file, WB16); }
static void many_wb(void **s) { (void)s; run(&many_files, WB); }
static void many_wt(void **s) { (void)s; run(&many_files, WT); }
static void many_wb16(void **s) { (void)s; run(&many_files, WB16); }

int main(void)
{
    const char *e = getenv("UFUSE_THREADS_EXCLUSIVE");
    if (e && *e)
        exclusive = *e != '0';
    fprintf(stderr, "cache-threads: %s mode\n",
            exclusive ? "exclusive (reads never overlap bytes being written)"
                      : "free-running (reads race writes of the same bytes)");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_wb),  cmocka_unit_test(one_wt),  cmocka_unit_test(one_wb16),
        cmocka_unit_test(many_wb), cmocka_unit_test(many_wt), cmocka_unit_test(many_wb16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
