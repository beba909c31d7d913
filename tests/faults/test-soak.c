/*
 * test-soak.c - the long mixed run (issue 11): 16 threads of mixed
 * operations on one session for a set time, against ufuse-memfs or
 * passthrough_ll (argv[1]: memfs | passthrough-ll), cache=writeback with a
 * 16 MiB budget.  Each thread owns a directory of 6 files of up to 256 KiB
 * and a stripe of one shared file, keeps a shadow copy of all of them and
 * checks every read, size and listing against it; operations: pwrite,
 * pread, ftruncate, fsync, close and reopen (sometimes O_TRUNC), rename
 * (swapping two files), unlink and re-create, stat, readdir, mkdir/rmdir,
 * its stripe of the shared file.  The resident memory is sampled every
 * second: after the warm-up (a tenth of the run, at least 2 s) it must stay
 * within the cache budget + 5 % + SLACK of what it was right after the
 * mount, and grow by at most FLAT between the end of the warm-up and the
 * end (no leak), beside the cache frames first used after the warm-up
 * (the cache touches a frame when its peak occupancy first needs it).
 * Under a sanitizer the memory measured is the heap the program holds
 * plus the cache's pages (mem_bytes: the resident set also holds the
 * sanitizer's own state, which TSan grows with every operation run).  At the end the whole tree is compared with the shadow:
 * through a fresh handle, and as the server holds it (passthrough_ll's
 * backing directory read directly; memfs through O_DIRECT).
 *
 * Duration: UFUSE_SOAK_SECONDS, else 3 s (make check, plain and TSan) or
 * 600 s under UFUSE_SOAK=1 (make soak runs it under TSan and under ASan).
 * UFUSE_FAULT_SEED replays the random choices (the threads' interleaving
 * is not replayed).
 */
#include <dirent.h>
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "faults/common.h"

#if defined(SAN_ASAN) || defined(SAN_TSAN)
#include <sanitizer/allocator_interface.h>
#endif

#define MIB (1024 * 1024)
#define NTHREADS 16
#define NFILES 6
#define MAXF (256 * 1024)
#define MAXIO (64 * 1024)
#define STRIPE (64 * 1024)
#define BUDGET (16 * (int64_t)MIB)

#if defined(SAN_ASAN) || defined(SAN_TSAN)
/* shadow memory and allocator caches of the sanitizers */
#define SLACK (96 * (int64_t)MIB)
#else
#define SLACK (48 * (int64_t)MIB)
#endif
#define FLAT (24 * (int64_t)MIB)

static struct srv V;
static ufuse_t *S;
static enum srv_kind kind;
static uint64_t seed;
static atomic_int stop_all;
static ufuse_file_t *shared;

struct file {
    char name[64];              /* "/t3/f2" */
    ufuse_file_t *h;            /* open O_RDWR, or NULL */
    unsigned char *data;        /* the shadow (MAXF bytes, zero past size) */
    int64_t size;
};

struct thr {
    int id;
    pthread_t t;
    uint64_t rng;
    unsigned long ops;
    struct file f[NFILES];
    unsigned char *buf;
    unsigned char stripe[STRIPE];
    char err[512];
    int subdir;                 /* /t<i>/sub exists */
    struct { char op; char name[16]; int64_t a, b, size; } ring[64];   /* last steps */
    unsigned nring;
};

/* Remember a step of @t (printed when the thread fails). */
static void note(struct thr *t, char op, const struct file *f, int64_t a, int64_t b)
{
    unsigned i = t->nring++ % 64;
    t->ring[i].op = op;
    const char *name = f ? f->name : "-";
    size_t l = strnlen(name, sizeof t->ring[i].name - 1);
    memcpy(t->ring[i].name, name, l);
    t->ring[i].name[l] = 0;
    t->ring[i].a = a;
    t->ring[i].b = b;
    t->ring[i].size = f ? f->size : -1;
}

static struct thr T[NTHREADS];

static uint64_t rn(struct thr *t, uint64_t n)
{
    return n ? rnd64(&t->rng) % n : 0;
}

#define T_FAIL(t, ...)                                                                   \
    do {                                                                                 \
        snprintf((t)->err, sizeof (t)->err, __VA_ARGS__);                                \
        atomic_store(&stop_all, 1);                                                      \
        return -1;                                                                       \
    } while (0)

static int t_open(struct thr *t, struct file *f, int flags)
{
    int rc = ufuse_open(S, f->name, O_RDWR | flags, 0644, &f->h);
    if (rc)
        T_FAIL(t, "open %s: %s", f->name, strerror(-rc));
    if (flags & O_TRUNC) {
        memset(f->data, 0, MAXF);
        f->size = 0;
    }
    return 0;
}

static int t_close(struct thr *t, struct file *f)
{
    ufuse_file_t *h = f->h;
    f->h = NULL;
    int rc = h ? ufuse_close(h) : 0;
    if (rc)
        T_FAIL(t, "close %s: %s", f->name, strerror(-rc));
    return 0;
}

static int t_check(struct thr *t, struct file *f, int64_t off, int64_t len, ssize_t got,
                   const char *what)
{
    int64_t want = off >= f->size ? 0 : (f->size - off < len ? f->size - off : len);
    if (got != want)
        T_FAIL(t, "%s %s at %" PRId64 " len %" PRId64 ": %zd, expected %" PRId64 " (%s)", what,
               f->name, off, len, got, want, got < 0 ? strerror((int)-got) : "");
    if (memcmp(t->buf, f->data + off, (size_t)want) != 0)
        T_FAIL(t, "%s %s at %" PRId64 ": WRONG DATA", what, f->name, off);
    return 0;
}

static int step(struct thr *t)
{
    struct file *f = &t->f[rn(t, NFILES)];
    uint64_t r = rn(t, 100);
    int rc;
    if (!f->h && r < 75) {
        if (t_open(t, f, 0))
            return -1;
        note(t, 'o', f, 0, 0);
    }
    if (r < 28) {                                   /* pwrite */
        int64_t len = 1 + (int64_t)rn(t, MAXIO), off = (int64_t)rn(t, MAXF - (uint64_t)len);
        for (int64_t i = 0; i < len; i++)
            t->buf[i] = (unsigned char)rnd64(&t->rng);
        ssize_t w = ufuse_pwrite(f->h, t->buf, (size_t)len, off);
        if (w != len)
            T_FAIL(t, "pwrite %s %" PRId64 "@%" PRId64 ": %zd", f->name, len, off, w);
        memcpy(f->data + off, t->buf, (size_t)len);
        if (off + len > f->size)
            f->size = off + len;
        note(t, 'w', f, off, len);
    } else if (r < 56) {                            /* pread */
        int64_t len = 1 + (int64_t)rn(t, MAXIO), off = (int64_t)rn(t, MAXF);
        ssize_t got = ufuse_pread(f->h, t->buf, (size_t)len, off);
        note(t, 'r', f, off, len);
        if (t_check(t, f, off, len, got, "pread"))
            return -1;
    } else if (r < 61) {                            /* ftruncate */
        int64_t n = (int64_t)rn(t, MAXF);
        if ((rc = ufuse_ftruncate(f->h, n)) != 0)
            T_FAIL(t, "ftruncate %s: %s", f->name, strerror(-rc));
        if (n < f->size)
            memset(f->data + n, 0, (size_t)(f->size - n));
        f->size = n;
        note(t, 't', f, n, 0);
    } else if (r < 65) {
        note(t, 'F', f, 0, 0);                            /* fsync */
        if ((rc = ufuse_fsync(f->h)) != 0)
            T_FAIL(t, "fsync %s: %s", f->name, strerror(-rc));
    } else if (r < 70) {                            /* stat */
        note(t, 's', f, 0, 0);
        struct stat st;
        if ((rc = ufuse_stat(S, f->name, &st)) != 0)
            T_FAIL(t, "stat %s: %s", f->name, strerror(-rc));
        if (st.st_size != f->size)
            T_FAIL(t, "stat %s: size %lld, expected %" PRId64, f->name,
                   (long long)st.st_size, f->size);
    } else if (r < 75) {                            /* close, reopen */
        int tr = rn(t, 4) ? 0 : O_TRUNC;
        if (t_close(t, f) || t_open(t, f, tr))
            return -1;
        note(t, tr ? 'T' : 'o', f, 0, 0);
    } else if (r < 80) {                            /* swap two files by renames */
        struct file *g = &t->f[rn(t, NFILES)];
        if (g == f)
            return 0;
        char tmp[64];
        snprintf(tmp, sizeof tmp, "/t%d/tmp", t->id);
        if ((rc = ufuse_rename(S, f->name, tmp, 0)) || (rc = ufuse_rename(S, g->name, f->name, 0)) ||
            (rc = ufuse_rename(S, tmp, g->name, 0)))
            T_FAIL(t, "rename %s <-> %s: %s", f->name, g->name, strerror(-rc));
        /* contents and handles swapped names */
        struct file x = *f;
        *f = *g;
        *g = x;
        memcpy(tmp, f->name, sizeof tmp);
        memcpy(f->name, g->name, sizeof f->name);
        memcpy(g->name, tmp, sizeof g->name);
        note(t, 'm', f, 0, 0);
        note(t, 'm', g, 0, 0);
    } else if (r < 84) {                            /* unlink, re-create */
        if (t_close(t, f))
            return -1;
        if ((rc = ufuse_unlink(S, f->name)) != 0)
            T_FAIL(t, "unlink %s: %s", f->name, strerror(-rc));
        memset(f->data, 0, MAXF);
        f->size = 0;
        if ((rc = ufuse_open(S, f->name, O_CREAT | O_EXCL | O_RDWR, 0644, &f->h)) != 0)
            T_FAIL(t, "create %s: %s", f->name, strerror(-rc));
        note(t, 'u', f, 0, 0);
    } else if (r < 89) {                            /* readdir */
        char dir[32];
        snprintf(dir, sizeof dir, "/t%d", t->id);
        ufuse_dir_t *d;
        struct ufuse_dirent e;
        if ((rc = ufuse_opendir(S, dir, &d)) != 0)
            T_FAIL(t, "opendir %s: %s", dir, strerror(-rc));
        int n = 0;
        while ((rc = ufuse_readdir(d, &e)) > 0)
            n++;
        ufuse_closedir(d);
        if (rc < 0 || n != NFILES + 2 + t->subdir)
            T_FAIL(t, "readdir %s: %d entries (rc %d), expected %d", dir, n, rc,
                   NFILES + 2 + t->subdir);
    } else if (r < 93) {                            /* mkdir / rmdir */
        char sub[32];
        snprintf(sub, sizeof sub, "/t%d/sub", t->id);
        rc = t->subdir ? ufuse_rmdir(S, sub) : ufuse_mkdir(S, sub, 0755);
        if (rc)
            T_FAIL(t, "%s %s: %s", t->subdir ? "rmdir" : "mkdir", sub, strerror(-rc));
        t->subdir = !t->subdir;
    } else {                                        /* my stripe of the shared file */
        off_t off = (off_t)t->id * STRIPE;
        if (rn(t, 2)) {
            int64_t len = 1 + (int64_t)rn(t, STRIPE), at = (int64_t)rn(t, STRIPE - (uint64_t)len + 1);
            for (int64_t i = 0; i < len; i++)
                t->stripe[at + i] = (unsigned char)rnd64(&t->rng);
            ssize_t w = ufuse_pwrite(shared, t->stripe + at, (size_t)len, off + at);
            if (w != len)
                T_FAIL(t, "pwrite /shared: %zd", w);
        } else {
            ssize_t got = ufuse_pread(shared, t->buf, STRIPE, off);
            if (got != STRIPE || memcmp(t->buf, t->stripe, STRIPE) != 0)
                T_FAIL(t, "pread /shared stripe %d: %zd, %s", t->id, got,
                       got == STRIPE ? "WRONG DATA" : "short");
        }
    }
    return 0;
}

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    while (!atomic_load(&stop_all)) {
        if (step(t))
            break;
        t->ops++;
    }
    return NULL;
}

/* ---- memory --------------------------------------------------------------- */

/*
 * The memory the bounds apply to.  Without a sanitizer: the resident set.
 * Under one, the resident set also holds the sanitizer's shadow and state,
 * and TSan's grows with the operations run: 10 minutes under TSan (1.5
 * million operations) grew 24 MiB after the warm-up where the plain build
 * (1.1 million in 2 minutes) grew 1.7 MiB.  There it is the heap the
 * program holds (the sanitizer allocator's count) plus the cache's pages;
 * the plain build's runs (make soak runs them too) bound the rest.
 */
static int64_t mem_bytes(void)
{
#if defined(SAN_ASAN) || defined(SAN_TSAN)
#define MEM_WHAT "heap + cache pages"
    struct ufuse_cacheinfo ci;
    OK(ufuse_cacheinfo(S, &ci));
    return (int64_t)__sanitizer_get_current_allocated_bytes() +
           (int64_t)(ci.pages * ci.page_size);
#else
#define MEM_WHAT "RSS"
    return rss_bytes();
#endif
}

static int64_t mem_mount, mem_warm, mem_max_after_warm, mem_last;
static long samples;

static int setup_tree(void)
{
    ufuse_file_t *f;
    OK(ufuse_open(S, "/shared", O_CREAT | O_RDWR | O_TRUNC, 0644, &shared));
    for (int i = 0; i < NTHREADS; i++) {
        struct thr *t = &T[i];
        memset(t, 0, sizeof *t);
        t->id = i;
        t->rng = seed * 1000003u + (uint64_t)i;
        t->buf = malloc(MAXIO > STRIPE ? MAXIO : STRIPE);
        memset(t->buf, 0, MAXIO > STRIPE ? MAXIO : STRIPE);
        OK(ufuse_mkdir(S, fmt("/t%d", i), 0755));
        for (int k = 0; k < NFILES; k++) {
            snprintf(t->f[k].name, sizeof t->f[k].name, "/t%d/f%d", i, k);
            t->f[k].data = malloc(MAXF);
            memset(t->f[k].data, 0, MAXF);     /* resident before the baseline */
            OK(ufuse_open(S, t->f[k].name, O_CREAT | O_EXCL | O_RDWR, 0644, &f));
            OK(ufuse_close(f));
        }
        assert_int_equal(ufuse_pwrite(shared, t->stripe, STRIPE, (off_t)i * STRIPE), STRIPE);
    }
    return 0;
}

/* The tree against the shadow: through fresh handles, then the server. */
static void verify_tree(void)
{
    unsigned char *b = malloc(MAXF + 1);
    for (int i = 0; i < NTHREADS; i++) {
        struct thr *t = &T[i];
        for (int k = 0; k < NFILES; k++) {
            struct file *f = &t->f[k];
            for (int pass = 0; pass < 2; pass++) {
                ssize_t n;
                if (pass == 1 && kind == SRV_PTLL) {
                    int fd = open(fmt("%s%s", V.src, f->name), O_RDONLY);
                    assert_true(fd >= 0);
                    n = read(fd, b, MAXF + 1);
                    close(fd);
                } else {
                    ufuse_file_t *h;
                    OK(ufuse_open(S, f->name, O_RDONLY | (pass ? O_DIRECT : 0), 0, &h));
                    n = ufuse_pread(h, b, MAXF + 1, 0);
                    OK(ufuse_close(h));
                }
                if (n != f->size || memcmp(b, f->data, (size_t)f->size) != 0)
                    fail_msg("final tree: %s (%s) differs from the shadow: %zd bytes, "
                             "expected %" PRId64, f->name, pass ? "server" : "cache", n,
                             f->size);
            }
        }
        assert_int_equal(ufuse_pread(shared, b, STRIPE, (off_t)i * STRIPE), STRIPE);
        if (memcmp(b, t->stripe, STRIPE) != 0)
            fail_msg("final tree: /shared stripe %d differs", i);
    }
    free(b);
}

static void soak(void **state)
{
    (void)state;
    long secs = amount("UFUSE_SOAK_SECONDS", 3, 600);
    long warm = secs / 10 > 2 ? secs / 10 : 2;
    S = srv_mount(&V, kind, NULL, "cache=writeback,cache_size=16m");
    setup_tree();
    mem_mount = mem_bytes();
    long long t0 = now_ms();
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&T[i].t, NULL, thr_main, &T[i]), 0);
    int over = 0;
    uint64_t frames_warm = 0;
    for (long s = 1; s <= secs && !atomic_load(&stop_all); s++) {
        msleep(1000);
        mem_last = mem_bytes();
        samples++;
        if (s == warm) {
            mem_warm = mem_last;
            struct ufuse_cacheinfo wi;
            OK(ufuse_cacheinfo(S, &wi));
            frames_warm = wi.pages_max;
        }
        if (s >= warm) {
            if (mem_last > mem_max_after_warm)
                mem_max_after_warm = mem_last;
            if (mem_last - mem_mount > BUDGET + BUDGET / 20 + SLACK && !over) {
                over = 1;
                fprintf(stderr, "soak: " MEM_WHAT " %.1f MiB over the mount's %.1f MiB at %ld s\n",
                        (mem_last - mem_mount) / (double)MIB, mem_mount / (double)MIB, s);
            }
        }
    }
    atomic_store(&stop_all, 1);
    hang_guard(120, "the threads' last operations");
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(T[i].t, NULL);
    hang_guard_off();
    long long ms = now_ms() - t0;
    unsigned long ops = 0;
    for (int i = 0; i < NTHREADS; i++) {
        if (T[i].err[0]) {
            fprintf(stderr, "thread %d's last steps (w write off len, r read, t truncate, "
                    "F fsync, s stat, o open, T open O_TRUNC, m renamed, u re-created; size "
                    "after):\n", i);
            for (unsigned k = T[i].nring > 64 ? T[i].nring - 64 : 0; k < T[i].nring; k++)
                fprintf(stderr, "  %c %s %" PRId64 " %" PRId64 " -> %" PRId64 "\n",
                        T[i].ring[k % 64].op, T[i].ring[k % 64].name, T[i].ring[k % 64].a,
                        T[i].ring[k % 64].b, T[i].ring[k % 64].size);
        }
        if (T[i].err[0])
            fail_msg("thread %d: %s (seed %" PRIu64 ")", i, T[i].err, seed);
        ops += T[i].ops;
    }
    for (int i = 0; i < NTHREADS; i++)
        for (int k = 0; k < NFILES; k++)
            if (T[i].f[k].h)
                OK(ufuse_close(T[i].f[k].h));
    OK(ufuse_sync(S));
    verify_tree();
    OK(ufuse_close(shared));
    struct ufuse_cacheinfo ci;
    OK(ufuse_cacheinfo(S, &ci));
    assert_true(ci.pages_max * ci.page_size <= (uint64_t)(BUDGET + BUDGET / 20));
    int64_t peak = mem_max_after_warm - mem_mount, growth = mem_max_after_warm - mem_warm;
    int64_t new_frames = ci.pages_max > frames_warm ? (int64_t)(ci.pages_max - frames_warm) : 0;
    int64_t flat = FLAT + new_frames * (int64_t)ci.page_size;
    fprintf(stderr, "soak: %lu operations in %lld ms; " MEM_WHAT " at mount %.1f MiB, after warm-up "
            "+%.1f, peak +%.1f, end +%.1f MiB; %ld samples\n", ops, ms,
            mem_mount / (double)MIB, (mem_warm - mem_mount) / (double)MIB, peak / (double)MIB,
            (mem_last - mem_mount) / (double)MIB, samples);
    assert_false(over);
    assert_true(growth <= flat);
    srv_unmount(S, &V, 5000);
    S = NULL;
    reliability(fmt("16 threads of mixed operations, %s (%s)",
                    kind == SRV_MEMFS ? "ufuse-memfs" : "passthrough_ll", SANITIZER),
                "%ld s, %lu operations, every result checked, final tree = shadow; " MEM_WHAT " sampled "
                "every s: peak +%.1f MiB over the mount (limit %.0f), growth after warm-up "
                "%.1f MiB (limit %.1f: %.0f + %" PRId64 " frames first used since); "
                "pages_max %" PRIu64 " of %" PRId64 "; %" PRIu64
                " write-back WRITEs, %" PRIu64 " evictions",
                secs, ops, peak / (double)MIB, (BUDGET + BUDGET / 20 + SLACK) / (double)MIB,
                growth / (double)MIB, flat / (double)MIB, FLAT / (double)MIB, new_frames,
                ci.pages_max, BUDGET / 4096,
                ci.writebacks, ci.evictions);
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "memfs") && strcmp(argv[1], "passthrough-ll"))) {
        fprintf(stderr, "usage: %s memfs|passthrough-ll\n", argv[0]);
        return 2;
    }
    kind = strcmp(argv[1], "memfs") ? SRV_PTLL : SRV_MEMFS;
    const char *e = getenv("UFUSE_FAULT_SEED");
    seed = e && *e ? strtoull(e, NULL, 0) : (uint64_t)now_ms() ^ ((uint64_t)getpid() << 20);
    fprintf(stderr, "soak: seed %" PRIu64 " (UFUSE_FAULT_SEED replays it), %s\n", seed,
            SANITIZER);
    const struct CMUnitTest tests[] = {cmocka_unit_test(soak)};
    int rc = cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
    return rc;
}
