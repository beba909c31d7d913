/*
 * test-cache-memory.c - the page cache keeps to its memory budget.  With
 * cache_size=8m, a 32 MiB file (4x the budget) is read sequentially, then
 * at random, then sequentially again (cache=writethrough), and 32 MiB are
 * written sequentially and overwritten at random under cache=writeback and
 * cache=writethrough.  Throughout, a sampler thread (and the test itself
 * after every call) checks the cache's own accounting, ufuse_cacheinfo:
 * pages * page_size and pages_max * page_size never exceed the budget
 * + 5 %; and the process's resident memory (/proc/self/statm) never grows
 * by more than the budget + 5 % + SLACK over what it was right after the
 * mount.  Every byte read back is checked.  At the end the cache must have
 * been used (pages_max at least half the budget) and must have evicted,
 * so the bound was really exercised, not met by caching nothing.
 *
 * SLACK (16 MiB) is the session's memory besides the cache's pages: the
 * request and reply buffers of transfers in flight (readahead READs of up
 * to max_read = 128 KiB, with the window capped at cache_size/8 = 1 MiB;
 * write-back WRITEs of up to max_write = 1 MiB from the flusher and from
 * throttled writers), the touched part of the stacks of the reader,
 * flusher and readahead threads, glibc's per-thread malloc arenas and
 * their fragmentation, and the page table (hash, page headers: a few
 * hundred KiB for 2048 pages).  A cache that kept freed pages or ignored
 * the budget would grow by the 24 MiB it read or wrote beyond the budget.
 *
 * RSS means nothing under ASan (shadow memory, quarantine): label nosan.
 * The figures (RSS growth peak, pages_max) are printed for the record.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ufuse.h"

#define MIB (1024 * 1024)
#define BUDGET (8 * MIB)
#define FILESZ (32 * MIB)
#define SLACK (16 * MIB)
#define LIMIT_PAGES_BYTES ((uint64_t)BUDGET + BUDGET / 20)
#define LIMIT_RSS_GROWTH ((int64_t)BUDGET + BUDGET / 20 + SLACK)

static ufuse_t *S;
static unsigned char *shadow;   /* what the written file holds */
static unsigned char *rbuf;     /* read buffer, 1 MiB */

/* What the sampler and the samples saw. */
static int64_t rss_base;
static _Atomic int64_t rss_peak;          /* largest growth over rss_base */
static _Atomic uint64_t pages_seen_max;   /* largest pages sample */
static _Atomic uint64_t bad_pages;        /* a pages sample over the limit (0: none) */
static _Atomic uint64_t bad_pages_max;
static _Atomic int sampler_stop;
static _Atomic unsigned long samples;

static int64_t rss_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long long vsz, res;
    int n = fscanf(f, "%lld %lld", &vsz, &res);
    fclose(f);
    return n == 2 ? res * (int64_t)sysconf(_SC_PAGESIZE) : -1;
}

/* One sample of both measures; records what was over the limits. */
static void sample(void)
{
    struct ufuse_cacheinfo ci;
    if (ufuse_cacheinfo(S, &ci) == 0) {
        uint64_t b = ci.pages * ci.page_size, bm = ci.pages_max * ci.page_size;
        if (b > LIMIT_PAGES_BYTES && !atomic_load(&bad_pages))
            atomic_store(&bad_pages, b);
        if (bm > LIMIT_PAGES_BYTES && !atomic_load(&bad_pages_max))
            atomic_store(&bad_pages_max, bm);
        uint64_t old = atomic_load(&pages_seen_max);
        while (ci.pages > old && !atomic_compare_exchange_weak(&pages_seen_max, &old, ci.pages))
            ;
    }
    int64_t g = rss_now() - rss_base;
    int64_t old = atomic_load(&rss_peak);
    while (g > old && !atomic_compare_exchange_weak(&rss_peak, &old, g))
        ;
    atomic_fetch_add(&samples, 1);
}

static void *sampler(void *arg)
{
    (void)arg;
    struct timespec ms = {0, 1000000};
    while (!atomic_load(&sampler_stop)) {
        sample();
        nanosleep(&ms, NULL);
    }
    return NULL;
}

/* The limits hold so far (checked after every call). */
static void check_limits(const char *where)
{
    sample();
    if (atomic_load(&bad_pages))
        fail_msg("%s: cache held %" PRIu64 " bytes of pages, budget %d + 5 %%", where,
                 atomic_load(&bad_pages), BUDGET);
    if (atomic_load(&bad_pages_max))
        fail_msg("%s: pages_max %" PRIu64 " bytes, budget %d + 5 %%", where,
                 atomic_load(&bad_pages_max), BUDGET);
    if (atomic_load(&rss_peak) > LIMIT_RSS_GROWTH)
        fail_msg("%s: RSS grew by %" PRId64 " bytes, limit %" PRId64, where,
                 atomic_load(&rss_peak), LIMIT_RSS_GROWTH);
}

/* ufuse-memfs's seed_file pattern. */
static unsigned char seedbyte(uint64_t o)
{
    return (unsigned char)((o * 2654435761ull) >> 13);
}

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static pthread_t sampler_thread;
static int sampler_running;

static void stop_sampler(void)
{
    if (sampler_running) {
        atomic_store(&sampler_stop, 1);
        pthread_join(sampler_thread, NULL);
        sampler_running = 0;
    }
}

static void start(const char *opts)
{
    stop_sampler();   /* left running by a test that failed */
    const char *dir = getenv("UFUSE_BUILD_DIR");
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/ufuse-memfs", dir ? dir : ".");
    char *argv[] = {exe, "-o", "seed_file=/big:32m", NULL};
    int rc = ufuse_mount(&S, argv, opts);
    if (rc == -ENOENT) {
        fprintf(stderr, "%s not built\n", exe);
        exit(77);
    }
    if (rc)
        fail_msg("ufuse_mount(-o %s) = %d (%s)", opts, rc, strerror(-rc));
    struct ufuse_cacheinfo ci;
    assert_int_equal(ufuse_cacheinfo(S, &ci), 0);
    assert_int_equal(ci.budget, BUDGET);
    assert_int_equal(ci.page_size, 4096);
    /* Buffers touched, session up: the baseline. */
    memset(rbuf, 0, MIB);
    memset(shadow, 0, FILESZ);
    rss_base = rss_now();
    assert_true(rss_base > 0);
    atomic_store(&rss_peak, 0);
    atomic_store(&pages_seen_max, 0);
    atomic_store(&bad_pages, 0);
    atomic_store(&bad_pages_max, 0);
    atomic_store(&sampler_stop, 0);
    atomic_store(&samples, 0);
    pthread_create(&sampler_thread, NULL, sampler, NULL);
    sampler_running = 1;
}

static void finish(const char *name)
{
    stop_sampler();
    check_limits(name);
    struct ufuse_cacheinfo ci;
    assert_int_equal(ufuse_cacheinfo(S, &ci), 0);
    fprintf(stderr,
            "%s: RSS base %.1f MiB, growth peak %.1f MiB (limit %.1f); pages_max %" PRIu64
            " (%.2f MiB of %d MiB budget), evictions %" PRIu64 ", written_back %" PRIu64
            ", writebacks %" PRIu64 ", throttled %" PRIu64 ", readahead %" PRIu64
            ", hits %" PRIu64 ", misses %" PRIu64 "; %lu samples\n",
            name, rss_base / (double)MIB, atomic_load(&rss_peak) / (double)MIB,
            LIMIT_RSS_GROWTH / (double)MIB, ci.pages_max,
            ci.pages_max * ci.page_size / (double)MIB, BUDGET / MIB, ci.evictions,
            ci.written_back, ci.writebacks, ci.throttled, ci.readahead, ci.hits, ci.misses,
            atomic_load(&samples));
    /* The budget was reached and eviction made room: the bound above was
     * tested, not met by caching nothing. */
    assert_true(ci.pages_max * ci.page_size >= BUDGET / 2);
    assert_true(ci.evictions > 0);
    assert_int_equal(ufuse_unmount(S), 0);
}

static void read_check(ufuse_file_t *f, uint64_t off, size_t n,
                       unsigned char (*want)(uint64_t), const char *what)
{
    ssize_t r = ufuse_pread(f, rbuf, n, (off_t)off);
    uint64_t exp = off >= FILESZ ? 0 : FILESZ - off < n ? FILESZ - off : n;
    if (r < 0 || (uint64_t)r != exp)
        fail_msg("%s: pread(%zu at %" PRIu64 ") = %zd, expected %" PRIu64, what, n, off, r, exp);
    for (size_t i = 0; i < (size_t)r; i++) {
        unsigned char w = want ? want(off + i) : shadow[off + i];
        if (rbuf[i] != w)
            fail_msg("%s: byte at %" PRIu64 " is %02x, expected %02x", what, off + i, rbuf[i], w);
    }
}

static void test_read_4x_budget(void **state)
{
    (void)state;
    start("cache=writethrough,cache_size=8m");
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(S, "/big", O_RDONLY, 0, &f), 0);
    /* sequential (readahead ramps up), twice */
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t off = 0; off < FILESZ; off += 65536) {
            read_check(f, off, 65536, seedbyte, "sequential read");
            check_limits("sequential read");
        }
    }
    /* random, 1 byte .. 128 KiB */
    for (int i = 0; i < 2000; i++) {
        size_t n = 1 + rnd() % (128 * 1024);
        uint64_t off = rnd() % FILESZ;
        read_check(f, off, n, seedbyte, "random read");
        check_limits("random read");
    }
    assert_int_equal(ufuse_close(f), 0);
    finish("read 4x budget (writethrough)");
}

static unsigned char wbyte(uint64_t o, unsigned gen)
{
    return (unsigned char)(((o + gen * 7919u) * 0x9E3779B1u) >> 15);
}

static void write_4x_budget(const char *opts, const char *name)
{
    start(opts);
    ufuse_file_t *f;
    assert_int_equal(ufuse_open(S, "/w", O_CREAT | O_TRUNC | O_RDWR, 0644, &f), 0);
    /* sequential, 256 KiB at a time */
    for (uint64_t off = 0; off < FILESZ; off += 256 * 1024) {
        for (uint64_t i = 0; i < 256 * 1024; i++)
            shadow[off + i] = wbyte(off + i, 0);
        ssize_t r = ufuse_pwrite(f, shadow + off, 256 * 1024, (off_t)off);
        if (r != 256 * 1024)
            fail_msg("sequential write at %" PRIu64 " = %zd", off, r);
        check_limits("sequential write");
    }
    /* random overwrites, 1 byte .. 64 KiB, unaligned (partial pages of
     * evicted data are read back first) */
    for (unsigned g = 1; g <= 3000; g++) {
        size_t n = 1 + rnd() % 65536;
        uint64_t off = rnd() % (FILESZ - n);
        for (size_t i = 0; i < n; i++)
            shadow[off + i] = wbyte(off + i, g);
        ssize_t r = ufuse_pwrite(f, shadow + off, n, (off_t)off);
        if (r != (ssize_t)n)
            fail_msg("random write %zu at %" PRIu64 " = %zd", n, off, r);
        check_limits("random write");
        if (g % 8 == 0) {
            n = 1 + rnd() % 65536;
            off = rnd() % FILESZ;
            read_check(f, off, n, NULL, "read between writes");
        }
    }
    assert_int_equal(ufuse_fsync(f), 0);
    check_limits("fsync");
    /* everything back, through the cache and through O_DIRECT (the server) */
    for (uint64_t off = 0; off < FILESZ; off += MIB) {
        read_check(f, off, MIB, NULL, "read back");
        check_limits("read back");
    }
    assert_int_equal(ufuse_close(f), 0);
    assert_int_equal(ufuse_open(S, "/w", O_RDONLY | O_DIRECT, 0, &f), 0);
    for (uint64_t off = 0; off < FILESZ; off += MIB)
        read_check(f, off, MIB, NULL, "O_DIRECT read back");
    assert_int_equal(ufuse_close(f), 0);
    finish(name);
}

static void test_write_4x_budget_writeback(void **state)
{
    (void)state;
    write_4x_budget("cache=writeback,cache_size=8m", "write 4x budget (writeback)");
}

static void test_write_4x_budget_writethrough(void **state)
{
    (void)state;
    write_4x_budget("cache=writethrough,cache_size=8m", "write 4x budget (writethrough)");
}

int main(void)
{
    shadow = malloc(FILESZ);
    rbuf = malloc(MIB);
    if (!shadow || !rbuf)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_4x_budget),
        cmocka_unit_test(test_write_4x_budget_writeback),
        cmocka_unit_test(test_write_4x_budget_writethrough),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    stop_sampler();
    free(shadow);
    free(rbuf);
    return rc;
}
