/*
 * harness.c - ufuse-bench: the same workloads through ufuse and through the
 * Linux kernel's FUSE client, on the same server binary with the same
 * options, in the same run (issue 4).
 *
 * usage: ufuse-bench [--quick] [--out DIR] [--bin DIR] [--only SERVER] [--work IDS]
 *
 * For every server (ufuse-memfs; libfuse3's passthrough_ll over a tmpfs
 * directory) and every cache mode of modes[] (direct, writethrough,
 * writeback: ufuse's cache= option against the kernel client in the same
 * mode), every workload of workloads[] runs on a "kernel" side (plain POSIX
 * calls on a kernel FUSE mount) and a "ufuse" side (the C API), attached at
 * the same time, each as a warm-up run then P.runs measured runs (median,
 * min, max), the runs interleaved: warm-up kernel, warm-up ufuse, then
 * kernel, ufuse, kernel, ufuse, ... so that a machine whose speed drifts
 * (other load, thermal, the host) moves both sides alike.  Cold workloads
 * start every run on a fresh session of their side: the kernel side
 * remounts the server and drops the page cache (drop_caches), the ufuse
 * side unmounts and mounts again (an empty page cache); the other side
 * stays attached and idle.  Hot workloads first read their region through
 * the handle they time (untimed).  The files read are seeded by the server
 * (memfs seed_file and seed_sparse) or written into the tmpfs directory
 * before the first run (passthrough_ll): /big of P.big bytes, and /sparse
 * of P.sparse bytes holding SPARSE_EXTENTS extents of P.sparse_ext bytes
 * spread evenly, the rest holes (1 GiB with 16 MiB of data).  Each workload
 * also runs straight on the tmpfs directory (the server-side ceiling);
 * memcpy gives one core's copy bandwidth.  A round-trip probe times single
 * uncached GETATTRs (attribute timeout 0) on both sides, in alternating
 * blocks, and counts ufuse's wake-ups per request (ufuse_conninfo(); also
 * reported for every ufuse workload, as are the page cache's hits, misses,
 * readahead and write-back counters from ufuse_cacheinfo(), over the timed
 * part of each run).  RLIMIT_NOFILE is raised (inherited by the servers):
 * passthrough_ll holds a descriptor per inode it knows.
 *
 * Outputs: a progress line per workload and server mode on stderr (both
 * sides and their ratio), the table on stdout, and in --out DIR:
 * latest.json, latest.md (the README table), latest.dat (gnuplot input of
 * bench/plot.gp, run by scripts/bench.sh).  The latest.json found there at
 * the start is the previous run (if of the same kind, quick or full): every
 * ratio is shown with its previous value and change, "0.71 (prev 0.65,
 * +9%)", and that file becomes previous.json when the new one is written.
 * Exit status: 0, or 1 if any workload failed on any side (the failure is
 * printed; the other results are still written).  Never judges a time.
 *
 * Locks: the main thread does everything except the worker threads of the
 * multi-threaded workloads, which share one open file handle (pread only)
 * and write only their own struct worker.
 * Invariants:
 *  1. At most one kernel side is mounted at a time, and kern_side points at
 *     it, so that a signal can unmount it; ufuse sides need no teardown (a
 *     session ends with the process, and its server with the socket).
 *  2. The sides of passthrough_ll share the tmpfs directory: a workload
 *     that creates files names them after its side (or uniquely).  Both
 *     sides write only /big among the files they share (the random write),
 *     whose content no workload checks, and every open drops what a side
 *     had cached of a file (no FOPEN_KEEP_CACHE, modes[]).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024L
#define MIB (1024L * 1024)
#define MAXRUNS 8
#define SPARSE_EXTENTS 16   /* data extents of /sparse, spread evenly */

/* ------------------------------------------------------------------ */
/* Parameters                                                          */

struct params {
    bool quick;
    int runs;               /* measured runs after one warm-up */
    off_t big;              /* the big file /big */
    off_t sparse;           /* the sparse file /sparse: its size, */
    off_t sparse_ext;       /* ... SPARSE_EXTENTS extents of this many bytes */
    off_t seqw;             /* bytes of the sequential write */
    off_t hot;              /* hot region of /big (first bytes) */
    long rand_ops;          /* random I/O per run, at most */
    long stat_ops;
    long rtt_ops;
    int nfiles;             /* readdir's entries; the most files created per run */
    int threads;
    double cap;             /* seconds a capped run may last */
    double seq_cap;         /* ... a sequential one */
};

static struct params P;

static void set_params(bool quick)
{
    P.quick = quick;
    P.runs = 3;
    P.threads = 4;
    if (!quick) {
        P.big = 1024 * MIB;
        P.sparse = 1024 * MIB;
        P.sparse_ext = MIB;
        P.seqw = 256 * MIB;
        P.hot = 16 * MIB;
        P.rand_ops = 40000;
        P.stat_ops = 400000;
        P.rtt_ops = 20000;
        P.nfiles = 10000;
        P.cap = 0.5;            /* make bench within 10 minutes (issue 10) */
        P.seq_cap = 4.0;
    } else {
        P.big = 32 * MIB;
        P.sparse = 64 * MIB;
        P.sparse_ext = 64 * KIB;
        P.seqw = 8 * MIB;
        P.hot = 4 * MIB;
        P.rand_ops = 2000;
        P.stat_ops = 5000;
        P.rtt_ops = 2000;
        P.nfiles = 300;
        P.cap = 0.1;
        P.seq_cap = 0.5;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static unsigned uniq_counter;

/* ------------------------------------------------------------------ */
/* Workloads                                                           */

struct ctx {
    struct side *sd;
    int run;                 /* -1 for the warm-up */
    unsigned char *buf;      /* 1 MiB, filled */
    char dir[64];            /* readdir: the directory its setup made */
    /* ufuse side: the counters where the timed part began */
    struct ufuse_conninfo ci0;
    struct ufuse_cacheinfo ca0;
};

#define DRV(c) ((c)->sd->drv)

/* The timed part starts: counters of the ufuse side are taken from here
 * (run_workload() takes them before the run; a workload with an untimed
 * prelude calls this after it). */
static void timed_start(struct ctx *c)
{
    if (c->sd->s) {
        ufuse_conninfo(c->sd->s, &c->ci0);
        ufuse_cacheinfo(c->sd->s, &c->ca0);
    }
}

/* Read @path of @size bytes from the start in 1 MiB calls (at most
 * P.seq_cap seconds). */
static int seq_read(struct ctx *c, const char *path, off_t size, double *rate)
{
    void *fh;
    int r = DRV(c)->open(c->sd, path, O_RDONLY, 0, &fh);
    if (r < 0)
        return r;
    off_t off = 0;
    double t0 = now_s(), t1 = t0;
    while (off < size && t1 - t0 < P.seq_cap) {
        ssize_t n = DRV(c)->pread(fh, c->buf, MIB, off);
        if (n <= 0) {
            r = n < 0 ? (int)n : -EIO;    /* the file is @size bytes long */
            break;
        }
        off += n;
        t1 = now_s();
    }
    DRV(c)->close(c->sd, fh);
    *rate = (double)off / MIB / (t1 - t0);
    return r;
}

static int w_seqread(struct ctx *c, double *rate)
{
    return seq_read(c, "/big", P.big, rate);
}

/* /sparse: P.sparse bytes, of which SPARSE_EXTENTS extents of P.sparse_ext
 * hold data (1/64 of the file), the rest holes. */
static int w_sparseread(struct ctx *c, double *rate)
{
    return seq_read(c, "/sparse", P.sparse, rate);
}

/* A file of the side's own: passthrough_ll's two sides serve one directory. */
static int w_seqwrite(struct ctx *c, double *rate)
{
    void *fh;
    char path[64];
    snprintf(path, sizeof(path), "/seqw-%s", c->sd->label);
    int r = DRV(c)->open(c->sd, path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &fh);
    if (r < 0)
        return r;
    off_t off = 0;
    double t0 = now_s();
    while (off < P.seqw && now_s() - t0 < P.seq_cap) {
        ssize_t n = DRV(c)->pwrite(fh, c->buf, MIB, off);
        if (n <= 0) {
            r = n < 0 ? (int)n : -EIO;
            break;
        }
        off += n;
    }
    if (r == 0)
        r = DRV(c)->fsync(fh);
    double t1 = now_s();
    int r2 = DRV(c)->close(c->sd, fh);
    *rate = (double)off / MIB / (t1 - t0);
    return r ? r : r2;
}

/* Read the first @len bytes of the open /big sequentially (untimed): the
 * hot workloads warm the handle they then time, because an open without
 * FOPEN_KEEP_CACHE drops the file's cached pages, on both sides (the kernel
 * in fuse_finish_open(), ufuse likewise), so warming through another open
 * would leave nothing hot. */
static int warm_fh(struct ctx *c, void *fh, off_t len)
{
    for (off_t off = 0; off < len; off += MIB) {
        ssize_t n = DRV(c)->pread(fh, c->buf, MIB, off);
        if (n <= 0)
            return n < 0 ? (int)n : -EIO;
    }
    return 0;
}

/* 4 KiB random reads (or writes) within the first @region bytes of /big;
 * @hot: warm that region through the same handle first (untimed). */
static int rand_io(struct ctx *c, off_t region, bool write, bool hot, double *rate)
{
    void *fh;
    int r = DRV(c)->open(c->sd, "/big", write ? O_WRONLY : O_RDONLY, 0, &fh);
    if (r < 0)
        return r;
    if (hot && (r = warm_fh(c, fh, region)) < 0) {
        DRV(c)->close(c->sd, fh);
        return r;
    }
    timed_start(c);
    uint64_t x = 0x9e3779b97f4a7c15ULL + (uint64_t)(c->run + 2) * 7919;
    uint64_t blocks = (uint64_t)region / 4096;
    long ops = 0;
    double t0 = now_s();
    while (ops < P.rand_ops && now_s() - t0 < P.cap) {
        off_t off = (off_t)(rng_next(&x) % blocks) * 4096;
        ssize_t n = write ? DRV(c)->pwrite(fh, c->buf, 4096, off)
                          : DRV(c)->pread(fh, c->buf, 4096, off);
        if (n != 4096) {
            r = n < 0 ? (int)n : -EIO;
            break;
        }
        ops++;
    }
    if (write && r == 0)
        r = DRV(c)->fsync(fh);
    double t1 = now_s();
    DRV(c)->close(c->sd, fh);
    *rate = ops / (t1 - t0);
    return r;
}

static int w_randread_cold(struct ctx *c, double *rate)
{
    return rand_io(c, P.big, false, false, rate);
}

static int w_randread_hot(struct ctx *c, double *rate)
{
    return rand_io(c, P.hot, false, true, rate);
}

/* Write-through or write-back is the mode's: ufuse's cache= option, the
 * server's writeback option for the kernel. */
static int w_randwrite(struct ctx *c, double *rate)
{
    return rand_io(c, P.big, true, false, rate);
}

static int w_stat(struct ctx *c, double *rate)
{
    struct stat st;
    long ops = 0;
    int r = 0;
    double t0 = now_s();
    while (ops < P.stat_ops && now_s() - t0 < P.cap) {
        r = DRV(c)->stat(c->sd, "/big", &st);
        if (r < 0)
            break;
        ops++;
    }
    *rate = ops / (now_s() - t0);
    return r;
}

/* Create @n files of @size bytes in a new directory (its name in @dir), or
 * as many as @cap seconds allow if @cap > 0: @return how many, or -errno. */
static int make_files(struct ctx *c, int n, size_t size, double cap, char *dir, size_t dsize)
{
    snprintf(dir, dsize, "/d%u", uniq_counter++);
    int r = DRV(c)->mkdir(c->sd, dir, 0755);
    if (r < 0)
        return r;
    double t0 = now_s();
    int i;
    for (i = 0; i < n && (cap <= 0 || now_s() - t0 < cap); i++) {
        char p[PATH_MAX];
        void *fh;
        snprintf(p, sizeof(p), "%s/f%06d", dir, i);
        r = DRV(c)->open(c->sd, p, O_WRONLY | O_CREAT | O_EXCL, 0644, &fh);
        if (r < 0)
            return r;
        if (size) {
            ssize_t w = DRV(c)->pwrite(fh, c->buf, size, 0);
            if (w != (ssize_t)size) {
                DRV(c)->close(c->sd, fh);
                return w < 0 ? (int)w : -EIO;
            }
        }
        r = DRV(c)->close(c->sd, fh);
        if (r < 0)
            return r;
    }
    return i;
}

/* Remove what make_files() made (untimed): passthrough_ll holds a
 * descriptor per inode it has been asked about, and 4 runs x 10,000 files
 * would pass the descriptor limit. */
static int remove_files(struct ctx *c, int n, const char *dir)
{
    for (int i = 0; i < n; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/f%06d", dir, i);
        int r = DRV(c)->unlink(c->sd, p);
        if (r < 0)
            return r;
    }
    return DRV(c)->rmdir(c->sd, dir);
}

/* At most P.nfiles files, at most P.cap seconds. */
static int w_create(struct ctx *c, double *rate)
{
    char dir[64];
    double t0 = now_s();
    int n = make_files(c, P.nfiles, 4096, P.cap, dir, sizeof(dir));
    *rate = n / (now_s() - t0);
    return n < 0 ? n : remove_files(c, n, dir);
}

static int setup_readdir(struct ctx *c)
{
    int n = make_files(c, P.nfiles, 0, 0, c->dir, sizeof(c->dir));
    return n < 0 ? n : 0;
}

static int w_readdir(struct ctx *c, double *rate)
{
    double t0 = now_s();
    long n = DRV(c)->listdir(c->sd, c->dir);
    double t1 = now_s();
    if (n < 0)
        return (int)n;
    if (n < P.nfiles) {
        fprintf(stderr, "bench: readdir %s listed %ld entries, expected %d + . and ..\n",
                c->dir, n, P.nfiles);
        return -EIO;
    }
    *rate = n / (t1 - t0);
    return 0;
}

struct worker {
    struct ctx *c;
    void *fh;
    int idx;
    off_t region;
    pthread_barrier_t *bar;
    long ops;
    int err;
    double t0, t1;          /* this worker's timed span */
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned char buf[4096];
    uint64_t x = 0x2545f4914f6cdd1dULL + (uint64_t)(w->c->run + 2) * 104729 + (uint64_t)w->idx;
    uint64_t blocks = (uint64_t)w->region / 4096;
    long max = P.rand_ops / P.threads;
    pthread_barrier_wait(w->bar);
    double t0 = now_s();
    w->t0 = t0;
    while (w->ops < max && now_s() - t0 < P.cap) {
        off_t off = (off_t)(rng_next(&x) % blocks) * 4096;
        ssize_t n = DRV(w->c)->pread(w->fh, buf, sizeof(buf), off);
        if (n != 4096) {
            w->err = n < 0 ? (int)n : -EIO;
            break;
        }
        w->ops++;
    }
    w->t1 = now_s();
    return NULL;
}

static int threaded_read(struct ctx *c, off_t region, bool hot, double *rate)
{
    void *fh;
    int r = DRV(c)->open(c->sd, "/big", O_RDONLY, 0, &fh);
    if (r < 0)
        return r;
    if (hot && (r = warm_fh(c, fh, region)) < 0) {
        DRV(c)->close(c->sd, fh);
        return r;
    }
    timed_start(c);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)P.threads + 1);
    struct worker w[16];
    pthread_t t[16];
    for (int i = 0; i < P.threads; i++) {
        w[i] = (struct worker){.c = c, .fh = fh, .idx = i, .region = region, .bar = &bar};
        if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "bench: pthread_create failed\n");
            abort();
        }
    }
    pthread_barrier_wait(&bar);
    /* The span from the first worker's start to the last one's end: the
     * main thread may be scheduled after short runs are over. */
    double t0 = 0, t1 = 0;
    long ops = 0;
    for (int i = 0; i < P.threads; i++) {
        pthread_join(t[i], NULL);
        ops += w[i].ops;
        if (w[i].err && !r)
            r = w[i].err;
        if (i == 0 || w[i].t0 < t0)
            t0 = w[i].t0;
        if (i == 0 || w[i].t1 > t1)
            t1 = w[i].t1;
    }
    pthread_barrier_destroy(&bar);
    DRV(c)->close(c->sd, fh);
    *rate = ops / (t1 - t0);
    return r;
}

static int w_threads_cold(struct ctx *c, double *rate)
{
    return threaded_read(c, P.big, false, rate);
}

static int w_threads_hot(struct ctx *c, double *rate)
{
    return threaded_read(c, P.hot, true, rate);
}

struct workload {
    const char *id;
    const char *title;
    const char *unit;
    bool cold;                              /* remount + drop caches per run */
    int (*setup)(struct ctx *);             /* once per side, untimed */
    int (*run)(struct ctx *, double *rate);
};

/* Cold workloads have no setup: a remount of ufuse-memfs loses all but the
 * seeded /big. */
static const struct workload workloads[] = {
    {"seqread_cold", "seq read 1 MiB, 1 GiB file, cold", "MiB/s", true, NULL, w_seqread},
    {"seqwrite_fsync", "seq write 1 MiB + fsync", "MiB/s", false, NULL, w_seqwrite},
    {"randread_cold", "4 KiB random read, cold", "ops/s", true, NULL, w_randread_cold},
    {"randread_hot", "4 KiB random read, hot", "ops/s", false, NULL, w_randread_hot},
    {"randwrite_fsync", "4 KiB random write + fsync", "ops/s", false, NULL, w_randwrite},
    {"stat_cached", "stat of a cached path", "ops/s", false, NULL, w_stat},
    {"create_small", "create+write 4 KiB+close", "files/s", false, NULL, w_create},
    {"readdir", "readdir, 10k-entry directory", "entries/s", false, setup_readdir, w_readdir},
    {"threads4_cold", "4 threads x 4 KiB random read, cold", "ops/s", true, NULL, w_threads_cold},
    {"threads4_hot", "4 threads x 4 KiB random read, hot", "ops/s", false, NULL, w_threads_hot},
    {"sparse_cold", "sparse 1 GiB file (16 MiB data), cold", "MiB/s", true, NULL, w_sparseread},
};
#define NWORK ((int)(sizeof(workloads) / sizeof(workloads[0])))

/* ------------------------------------------------------------------ */
/* Servers and cache modes                                             */

struct server {
    const char *name;
    const char *bin;            /* file name in --bin DIR */
    bool backing;               /* serves a tmpfs source directory */
    const char *rtt_opts;       /* attribute timeout 0 */
};

static const struct server servers[] = {
    {"memfs", "ufuse-memfs", false, "attr_timeout=0"},
    {"passthrough_ll", "passthrough_ll", true, "timeout=0"},
};
#define NSRV ((int)(sizeof(servers) / sizeof(servers[0])))

/* A cache mode: ufuse's cache= option against the kernel client in the same
 * mode, set through the server's options (the same on both sides):
 *   direct        ufuse cache=direct; the kernel with direct I/O (memfs
 *                 -o direct_io, passthrough_ll -o cache=never)
 *   writethrough  ufuse cache=writethrough; the kernel's default cached mode
 *                 (page cache, writes sent at once: no writeback cache)
 *   writeback     ufuse cache=writeback; the kernel's writeback cache, which
 *                 the server asks for at INIT (-o writeback on both servers;
 *                 ufuse then has the grant too)
 * Neither server sets FOPEN_KEEP_CACHE in these modes, so every open drops
 * the file's cached pages on both sides. */
struct mode {
    const char *name;
    const char *ufuse_opts;
    const char *srv_opts[NSRV];
};

static const struct mode modes[] = {
    {"direct", "cache=direct", {"direct_io", "cache=never"}},
    {"writethrough", "cache=writethrough", {"", ""}},
    {"writeback", "cache=writeback", {"writeback", "writeback"}},
};
#define NMODE ((int)(sizeof(modes) / sizeof(modes[0])))

/* ------------------------------------------------------------------ */
/* Results                                                             */

struct result {
    int n;
    double v[MAXRUNS];
    double med, min, max;
    int err;                    /* first error (-errno), 0 */
    bool done;
    uint64_t requests, wakeups; /* ufuse side: sums over the measured runs */
    struct ufuse_cacheinfo cache;  /* ufuse side: counters summed over the
                                    * measured runs (their timed parts);
                                    * pages_max the largest */
};

enum { K = 0, U = 1 };
static struct result R[NSRV][NMODE][NWORK][2];
static struct result CEIL[NWORK];
static struct result MEMCPY;

struct rtt {
    bool done;
    int err;
    double mean_us, p99_us;
    double req_per_call, wake_per_req;
};
static struct rtt RTT[NSRV][2];
static double PREV[NSRV][NMODE][NWORK];     /* the previous run's ratios, NAN: none */
static char prev_date[64];                  /* "": no previous run */

static bool srv_ok[NSRV];
static const char *kernel_why;        /* NULL: the kernel side runs */
static char bindir[1024], outdir[1024];
static char tmpbase[256], shmbase[300], srcdir[320];
static int progress_i, progress_n;
static int failures;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void summarize(struct result *r)
{
    r->done = true;
    if (r->n == 0)
        return;
    double s[MAXRUNS];
    memcpy(s, r->v, sizeof(double) * (size_t)r->n);
    qsort(s, (size_t)r->n, sizeof(double), cmp_double);
    r->min = s[0];
    r->max = s[r->n - 1];
    r->med = r->n % 2 ? s[r->n / 2] : (s[r->n / 2 - 1] + s[r->n / 2]) / 2;
}

/* A number in at most 7 characters. */
static const char *num(double v, char *b, size_t n)
{
    if (v >= 1e7)
        snprintf(b, n, "%.2fM", v / 1e6);
    else if (v >= 1e5)
        snprintf(b, n, "%.0fk", v / 1e3);
    else if (v >= 1e4)
        snprintf(b, n, "%.1fk", v / 1e3);
    else if (v >= 100)
        snprintf(b, n, "%.0f", v);
    else
        snprintf(b, n, "%.1f", v);
    return b;
}

/* "median [min-max]" or the error */
static const char *cell(const struct result *r, char *b, size_t n)
{
    char x[3][16];
    if (!r->done)
        snprintf(b, n, "-");
    else if (r->err)
        snprintf(b, n, "error: %s", strerror(-r->err));
    else if (r->n == 0)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%s [%s-%s]", num(r->med, x[0], 16), num(r->min, x[1], 16),
                 num(r->max, x[2], 16));
    return b;
}

static bool valid(const struct result *r)
{
    return r->done && !r->err && r->n > 0;
}

/* Add the counters' change from @a to @z to @sum (budget and sizes are
 * copied; pages_max is the largest seen). */
static void cache_add(struct ufuse_cacheinfo *sum, const struct ufuse_cacheinfo *a,
                      const struct ufuse_cacheinfo *z)
{
    sum->budget = z->budget;
    sum->page_size = z->page_size;
    sum->block_size = z->block_size;
    if (z->pages_max > sum->pages_max)
        sum->pages_max = z->pages_max;
    sum->hits += z->hits - a->hits;
    sum->misses += z->misses - a->misses;
    sum->readahead += z->readahead - a->readahead;
    sum->evictions += z->evictions - a->evictions;
    sum->written_back += z->written_back - a->written_back;
    sum->writebacks += z->writebacks - a->writebacks;
    sum->throttled += z->throttled - a->throttled;
}

/* The pages found by reads, as a percentage of those looked up; false when
 * no read looked a page up. */
static bool hit_pct(const struct ufuse_cacheinfo *c, char *b, size_t n)
{
    uint64_t looked = c->hits + c->misses;
    if (!looked)
        return false;
    snprintf(b, n, "%.1f%%", 100.0 * (double)c->hits / (double)looked);
    return true;
}

/* ------------------------------------------------------------------ */
/* Running                                                             */

/* The kernel side attached now, if any: a signal unmounts it. */
static struct side *kern_side;
static const char *work_filter;       /* --work: the workload ids to run */

static bool selected(int wi)
{
    return !work_filter || strstr(work_filter, workloads[wi].id) != NULL;
}

static void on_signal(int sig)
{
    /* best effort: leave no kernel mount behind (a ufuse session ends with
     * the process: its server sees the socket close) */
    if (kern_side && kern_side->up) {
        umount2(kern_side->root, MNT_DETACH);
        kill(kern_side->pid, SIGTERM);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static double ratio_of(const struct result *k, const struct result *u)
{
    return valid(k) && valid(u) && k->med > 0 ? u->med / k->med : NAN;
}

/* "0.71 (prev 0.65, +9%)": the ratio @q and its change from @prev (NAN:
 * none); "-" without a ratio. */
static const char *ratio_str(double q, double prev, char *b, size_t n)
{
    if (isnan(q))
        snprintf(b, n, "-");
    else if (isnan(prev) || prev <= 0)
        snprintf(b, n, "%.2f", q);
    else
        snprintf(b, n, "%.2f (prev %.2f, %+.0f%%)", q, prev, (q / prev - 1) * 100);
    return b;
}

/* One run of @W on @c's side (c->run -1: the warm-up), after a remount if
 * @W is cold; a measured run's rate and ufuse counters go into @res. */
static int run_once(struct ctx *c, const struct workload *W, struct result *res)
{
    struct side *sd = c->sd;
    int r;
    if (W->cold && (r = side_remount(sd)) < 0)
        return r;
    double rate = 0;
    struct ufuse_conninfo z = {0};
    struct ufuse_cacheinfo cz = {0};
    timed_start(c);
    r = W->run(c, &rate);
    if (sd->s) {
        ufuse_conninfo(sd->s, &z);
        ufuse_cacheinfo(sd->s, &cz);
    }
    if (r == 0 && c->run >= 0) {
        res->v[res->n++] = rate;
        res->requests += z.requests - c->ci0.requests;
        res->wakeups += z.wakeups - c->ci0.wakeups;
        cache_add(&res->cache, &c->ca0, &cz);
    }
    return r;
}

/* Workload @wi on the @n attached sides @sds (kernel then ufuse, or one
 * side alone), results into @res[]: the setup on each side, each side's
 * warm-up, then measured run i on every side in turn (kernel, ufuse,
 * kernel, ufuse, ...), so that a machine whose speed drifts slows both
 * sides alike.  A side stops at its first error; the others go on.
 * @prev: the previous run's ratio (NAN: none). */
static void run_workload(struct side *const *sds, struct result *const *res, int n,
                         const char *what, int wi, unsigned char *buf, double prev)
{
    const struct workload *W = &workloads[wi];
    if (!selected(wi))
        return;
    struct ctx c[2];
    for (int k = 0; k < n; k++) {
        c[k] = (struct ctx){.sd = sds[k], .buf = buf, .run = -1};
        res[k]->err = sds[k]->up ? 0 : -ENOTCONN;
        if (res[k]->err == 0 && W->setup)       /* cold workloads have none */
            res[k]->err = W->setup(&c[k]);
    }
    for (int i = -1; i < P.runs; i++)
        for (int k = 0; k < n; k++)
            if (res[k]->err == 0) {
                c[k].run = i;
                res[k]->err = run_once(&c[k], W, res[k]);
            }
    char line[512], b[64];
    int len = snprintf(line, sizeof(line), "%s", n > 1 ? "" : " ");
    for (int k = 0; k < n; k++) {
        summarize(res[k]);
        if (n > 1)
            len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%s ", k ? ", " : "",
                            sds[k]->label);
        len += snprintf(line + len, sizeof(line) - (size_t)len, "%s", cell(res[k], b, sizeof(b)));
    }
    const struct result *u = res[n - 1];
    char wk[48] = "", hr[16], ch[64] = "", q[64] = "";
    if (sds[n - 1]->kind == SIDE_UFUSE && u->requests)
        snprintf(wk, sizeof(wk), ", %.2f wake-ups/request",
                 (double)u->wakeups / (double)u->requests);
    if (sds[n - 1]->kind == SIDE_UFUSE && u->cache.budget && hit_pct(&u->cache, hr, sizeof(hr)))
        snprintf(ch, sizeof(ch), ", cache hits %s", hr);
    if (n > 1 && !isnan(ratio_of(res[0], u)))
        snprintf(q, sizeof(q), ": ratio %s",
                 ratio_str(ratio_of(res[0], u), prev, b, sizeof(b)));
    fprintf(stderr, "[%3d/%d] %-27s %-38s%s %s%s%s%s\n", ++progress_i, progress_n, what,
            W->title, line, W->unit, q, wk, ch);
    for (int k = 0; k < n; k++)
        if (res[k]->err) {
            failures++;
            fprintf(stderr, "bench: %s %s: %s failed: %s\n", what, sds[k]->label, W->id,
                    strerror(-res[k]->err));
        }
}

static void cmd_add(struct server_cmd *cmd, const char *w)
{
    snprintf(cmd->store[cmd->argc], PATH_MAX, "%s", w);
    cmd->argv[cmd->argc] = cmd->store[cmd->argc];
    cmd->argc++;
    cmd->argv[cmd->argc] = NULL;
}

/* The server's command line: @opts are the mode's server options. */
static void build_cmd(struct server_cmd *cmd, int si, const char *opts)
{
    char b[2048];
    memset(cmd, 0, sizeof(*cmd));
    snprintf(b, sizeof(b), "%s/%s", bindir, servers[si].bin);
    cmd_add(cmd, b);
    if (servers[si].backing) {
        cmd_add(cmd, "-f");
        cmd_add(cmd, "-o");
        snprintf(b, sizeof(b), "source=%s%s%s", srcdir, *opts ? "," : "", opts);
        cmd_add(cmd, b);
    } else {
        cmd_add(cmd, "-o");
        snprintf(b, sizeof(b), "%s%sseed_file=/big:%lld,seed_sparse=/sparse:%lld:%d:%lld", opts,
                 *opts ? "," : "", (long long)P.big, (long long)P.sparse, SPARSE_EXTENTS,
                 (long long)P.sparse_ext);
        cmd_add(cmd, b);
    }
    cmd_add(cmd, "{}");
}

static void side_init(struct side *sd, enum side_kind kind, int si, const char *srv_opts,
                      const char *ufuse_opts)
{
    memset(sd, 0, sizeof(*sd));
    sd->kind = kind;
    sd->drv = kind == SIDE_UFUSE ? &ufuse_driver : &posix_driver;
    sd->label = kind == SIDE_UFUSE ? "ufuse" : kind == SIDE_KERNEL ? "kernel" : "tmpfs";
    snprintf(sd->log, sizeof(sd->log), "%s/server.log", tmpbase);
    if (kind == SIDE_TMPFS) {
        snprintf(sd->root, sizeof(sd->root), "%s", srcdir);
        return;
    }
    build_cmd(&sd->cmd, si, srv_opts);
    snprintf(sd->root, sizeof(sd->root), "%s/mnt", tmpbase);
    /* UFUSE_BENCH_OPTS: options added to every ufuse side (to measure an
     * option against its default, e.g. spin=0). */
    const char *extra = getenv("UFUSE_BENCH_OPTS");
    snprintf(sd->ufuse_opts, sizeof(sd->ufuse_opts), "%s,log=%s%s%s", ufuse_opts, sd->log,
             extra && *extra ? "," : "", extra && *extra ? extra : "");
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    if (f->level > 0)
        remove(p);
    return 0;
}

/* The files of the tmpfs source directory that the workloads read. */
static const char *const seeded[] = {"big", "sparse"};
#define NSEEDED ((int)(sizeof(seeded) / sizeof(seeded[0])))

/* Empty the tmpfs source directory but its seeded files. */
static void clean_src(void)
{
    char p[NSEEDED][PATH_MAX + 16], keep[NSEEDED][PATH_MAX + 16];
    for (int i = 0; i < NSEEDED; i++) {
        snprintf(p[i], sizeof(p[i]), "%s/%s", srcdir, seeded[i]);
        snprintf(keep[i], sizeof(keep[i]), "%s.%s", srcdir, seeded[i]);
        rename(p[i], keep[i]);
    }
    nftw(srcdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    for (int i = 0; i < NSEEDED; i++)
        rename(keep[i], p[i]);
}

static void rm_tree(const char *dir)
{
    if (!*dir)
        return;
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    rmdir(dir);
}

#define RTT_BLOCKS 4

/* The round-trip probe: P.rtt_ops stats of /big with attributes never
 * cached, on both sides (or ufuse alone) attached at once: a warm-up on
 * each, then RTT_BLOCKS blocks of P.rtt_ops / RTT_BLOCKS stats alternating
 * between the sides; per-call latency, and for ufuse requests and
 * wake-ups. */
static void run_rtt(int si)
{
    const int first = kernel_why ? U : K;
    struct side sd[2];
    double *lat[2] = {NULL, NULL}, sum[2] = {0, 0};
    int r[2] = {0, 0};
    struct ufuse_conninfo a = {0}, b = {0};
    struct stat st;
    const long per = P.rtt_ops / RTT_BLOCKS;
    for (int w = first; w <= U; w++) {
        side_init(&sd[w], w == K ? SIDE_KERNEL : SIDE_UFUSE, si, servers[si].rtt_opts,
                  "cache=direct");
        if (w == K)
            kern_side = &sd[K];
        r[w] = side_attach(&sd[w]);
        lat[w] = calloc((size_t)(per * RTT_BLOCKS), sizeof(double));
        if (!lat[w] && !r[w])
            r[w] = -ENOMEM;
        for (long i = 0; r[w] == 0 && i < P.rtt_ops / 10; i++)    /* warm-up */
            r[w] = sd[w].drv->stat(&sd[w], "/big", &st);
    }
    if (r[U] == 0)
        ufuse_conninfo(sd[U].s, &a);
    for (int blk = 0; blk < RTT_BLOCKS; blk++)
        for (int w = first; w <= U; w++)
            for (long i = blk * per; r[w] == 0 && i < (blk + 1) * per; i++) {
                double t0 = now_s();
                r[w] = sd[w].drv->stat(&sd[w], "/big", &st);
                lat[w][i] = now_s() - t0;
                sum[w] += lat[w][i];
            }
    if (r[U] == 0)
        ufuse_conninfo(sd[U].s, &b);
    for (int w = first; w <= U; w++) {
        side_detach(&sd[w]);
        if (w == K)
            kern_side = NULL;
        struct rtt *out = &RTT[si][w];
        out->done = true;
        out->err = r[w];
        long n = per * RTT_BLOCKS;
        if (r[w] == 0) {
            qsort(lat[w], (size_t)n, sizeof(double), cmp_double);
            out->mean_us = sum[w] / (double)n * 1e6;
            out->p99_us = lat[w][n * 99 / 100] * 1e6;
            if (w == U) {
                double req = (double)(b.requests - a.requests);
                out->req_per_call = req / (double)n;
                out->wake_per_req = req > 0 ? (double)(b.wakeups - a.wakeups) / req : 0;
            }
        } else {
            failures++;
        }
        free(lat[w]);
        char what[96];
        snprintf(what, sizeof(what), "%s %s", servers[si].name, w == K ? "kernel" : "ufuse");
        fprintf(stderr, "[%3d/%d] %-27s %-38s ", ++progress_i, progress_n, what,
                "round trip: stat, attr timeout 0");
        if (r[w])
            fprintf(stderr, "error: %s\n", strerror(-r[w]));
        else if (w == U)
            fprintf(stderr, "mean %.1f us, p99 %.1f us, %.2f req/call, %.2f wake-ups/req\n",
                    out->mean_us, out->p99_us, out->req_per_call, out->wake_per_req);
        else
            fprintf(stderr, "mean %.1f us, p99 %.1f us\n", out->mean_us, out->p99_us);
    }
}

static void run_memcpy(void)
{
    size_t n = (P.quick ? 16 : 64) * MIB;
    unsigned char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        MEMCPY.err = -ENOMEM;
        summarize(&MEMCPY);
        free(a);
        free(b);
        return;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    for (int run = -1; run < P.runs; run++) {
        int reps = P.quick ? 4 : 16;
        double t0 = now_s();
        for (int i = 0; i < reps; i++) {
            memcpy(i & 1 ? a : b, i & 1 ? b : a, n);
            __asm__ volatile("" : : "r"(a), "r"(b) : "memory");
        }
        double t1 = now_s();
        if (run >= 0)
            MEMCPY.v[MEMCPY.n++] = (double)n * reps / MIB / (t1 - t0);
    }
    summarize(&MEMCPY);
    free(a);
    free(b);
    char c[64];
    fprintf(stderr, "[%3d/%d] %-27s %-38s %s MiB/s\n", ++progress_i, progress_n, "ceiling",
            "memcpy, one core", cell(&MEMCPY, c, sizeof(c)));
}

/* Write @name into the tmpfs source directory: @size bytes, of which
 * @extents extents of @ext bytes spread evenly hold @buf's 1 MiB (repeated),
 * the rest holes.  ufuse-memfs seeds the same files itself (build_cmd). */
static int make_seeded(const char *name, off_t size, int extents, off_t ext, unsigned char *buf)
{
    char p[PATH_MAX + 8];
    snprintf(p, sizeof(p), "%s/%s", srcdir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int r = ftruncate(fd, size) < 0 ? -errno : 0;
    for (int i = 0; r == 0 && i < extents; i++)
        for (off_t off = 0; r == 0 && off < ext; off += MIB) {
            size_t n = ext - off < MIB ? (size_t)(ext - off) : (size_t)MIB;
            if (pwrite(fd, buf, n, i * (size / extents) + off) != (ssize_t)n)
                r = -EIO;
        }
    close(fd);
    return r;
}

/* ------------------------------------------------------------------ */
/* The previous run                                                    */

/* The string value of "@key": "..." in [@p, @end) into @b. */
static bool json_str(const char *p, const char *end, const char *key, char *b, size_t n)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\": \"", key);
    const char *v = strstr(p, k);
    if (!v || v >= end)
        return false;
    v += strlen(k);
    const char *q = strchr(v, '"');
    if (!q || q >= end || (size_t)(q - v) >= n)
        return false;
    memcpy(b, v, (size_t)(q - v));
    b[q - v] = 0;
    return true;
}

/* The number value of "@key": N in [@p, @end). */
static bool json_num(const char *p, const char *end, const char *key, double *x)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\": ", key);
    const char *v = strstr(p, k);
    if (!v || v >= end)
        return false;
    v += strlen(k);
    char *e;
    *x = strtod(v, &e);
    return e != v && e <= end;
}

/* The ratios of the run before this one, from @outdir/latest.json as this
 * harness writes it (write_outputs(); only that layout is understood, and
 * what does not parse is left out), if it was of the same kind (quick or
 * full).  write_outputs() then renames that file previous.json. */
static void load_previous(void)
{
    for (int si = 0; si < NSRV; si++)
        for (int mi = 0; mi < NMODE; mi++)
            for (int wi = 0; wi < NWORK; wi++)
                PREV[si][mi][wi] = NAN;
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/latest.json", outdir);
    FILE *f = fopen(p, "r");
    if (!f)
        return;
    const size_t cap = 4 * MIB;
    char *buf = malloc(cap);
    size_t n = buf ? fread(buf, 1, cap - 1, f) : 0;
    fclose(f);
    if (!buf)
        return;
    buf[n] = 0;
    const char *end = buf + n;
    if (!strstr(buf, P.quick ? "\"quick\": true" : "\"quick\": false") ||
        !json_str(buf, end, "date", prev_date, sizeof(prev_date))) {
        prev_date[0] = 0;
        free(buf);
        return;
    }
    static const char key[] = "{\"server\": \"";
    for (const char *o = strstr(buf, key); o;) {
        const char *next = strstr(o + 1, key), *e = next ? next : end;
        char srv[64], mode[64], work[64];
        double q;
        if (json_str(o, e, "server", srv, sizeof(srv)) &&
            json_str(o, e, "mode", mode, sizeof(mode)) &&
            json_str(o, e, "workload", work, sizeof(work)) && json_num(o, e, "ratio", &q)) {
            int si = NSRV - 1, mi = NMODE - 1, wi = NWORK - 1;
            while (si >= 0 && strcmp(servers[si].name, srv) != 0)
                si--;
            while (mi >= 0 && strcmp(modes[mi].name, mode) != 0)
                mi--;
            while (wi >= 0 && strcmp(workloads[wi].id, work) != 0)
                wi--;
            if (si >= 0 && mi >= 0 && wi >= 0)
                PREV[si][mi][wi] = q;
        }
        o = next;
    }
    free(buf);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */

static char machine[512], date_str[64];

static void describe_machine(void)
{
    struct utsname u;
    uname(&u);
    char os[128] = "Linux", cpu[128] = "?", line[256];
    FILE *f = fopen("/etc/os-release", "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "PRETTY_NAME=\"%127[^\"]\"", os) == 1)
            break;
    if (f)
        fclose(f);
    long memkb = 0;
    f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "model name : %127[^\n]", cpu) == 1)
            break;
    if (f)
        fclose(f);
    f = fopen("/proc/meminfo", "r");
    if (f) {
        if (fscanf(f, "MemTotal: %ld kB", &memkb) != 1)
            memkb = 0;
        fclose(f);
    }
    snprintf(machine, sizeof(machine), "%s, Linux %s, %ld x %s, %.0f GiB RAM", os, u.release,
             sysconf(_SC_NPROCESSORS_ONLN), cpu, memkb / 1048576.0);
    time_t t = time(NULL);
    strftime(date_str, sizeof(date_str), "%Y-%m-%d %H:%M UTC", gmtime(&t));
}

static double ratio(int si, int mi, int wi)
{
    return ratio_of(&R[si][mi][wi][K], &R[si][mi][wi][U]);
}

static void mode_desc(int si, int mi, char *b, size_t n)
{
    const char *o = modes[mi].srv_opts[si];
    snprintf(b, n, "server %s%s; ufuse -o %s", *o ? "-o " : "default options", o,
             modes[mi].ufuse_opts);
}

static void print_tables(FILE *f, bool md)
{
    char b[4][64], d[256];
    if (*prev_date)
        fprintf(f, md ? "\nEvery ratio with the previous run's (%s, previous.json) and the "
                        "change: \"0.71 (prev 0.65, +9%%)\".\n"
                      : "\nratio (prev, change): against the previous run of %s\n",
                prev_date);
    for (int si = 0; si < NSRV; si++) {
        if (!srv_ok[si])
            continue;
        for (int mi = 0; mi < NMODE; mi++) {
            mode_desc(si, mi, d, sizeof(d));
            if (md) {
                fprintf(f, "\n**%s, %s** (%s)\n\n", servers[si].name, modes[mi].name, d);
                fprintf(f, "| workload | unit | kernel | ufuse | ratio | ceiling (tmpfs) | ufuse wake-ups/req | ufuse cache hits |\n");
                fprintf(f, "|---|---|---|---|---|---|---|---|\n");
            } else {
                fprintf(f, "\n%s, %s (%s)\n", servers[si].name, modes[mi].name, d);
                fprintf(f, "%-38s %-9s %-24s %-24s %-25s %-8s %-8s %s\n", "workload", "unit",
                        "kernel", "ufuse", "ratio", "ceiling", "wake/req", "hits");
            }
            for (int wi = 0; wi < NWORK; wi++) {
                char rs[64];
                ratio_str(ratio(si, mi, wi), PREV[si][mi][wi], rs, sizeof(rs));
                char ceil_s[64];
                if (valid(&CEIL[wi]))
                    num(CEIL[wi].med, ceil_s, sizeof(ceil_s));
                else
                    snprintf(ceil_s, sizeof(ceil_s), "-");
                const struct result *u = &R[si][mi][wi][U];
                char wk[16] = "-";
                if (valid(u) && u->requests)
                    snprintf(wk, sizeof(wk), "%.2f", (double)u->wakeups / (double)u->requests);
                char hr[16] = "-";
                if (valid(u) && u->cache.budget)
                    hit_pct(&u->cache, hr, sizeof(hr));
                const char *k = cell(&R[si][mi][wi][K], b[0], 64);
                if (kernel_why)
                    k = "n/a";
                if (md)
                    fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
                            workloads[wi].title, workloads[wi].unit, k, cell(u, b[1], 64), rs,
                            ceil_s, wk, hr);
                else
                    fprintf(f, "%-38s %-9s %-24s %-24s %-25s %-8s %-8s %s\n",
                            workloads[wi].title, workloads[wi].unit, k, cell(u, b[1], 64), rs,
                            ceil_s, wk, hr);
            }
        }
    }
    if (md) {
        fprintf(f, "\n**Round trip** (one uncached stat: GETATTR with attribute timeout 0)\n\n");
        fprintf(f, "| server | kernel mean / p99 (us) | ufuse mean / p99 (us) | ufuse requests/call | ufuse wake-ups/request |\n");
        fprintf(f, "|---|---|---|---|---|\n");
    } else {
        fprintf(f, "\nround trip (one uncached stat, attribute timeout 0)\n");
        fprintf(f, "%-16s %-22s %-22s %-14s %s\n", "server", "kernel mean/p99 us",
                "ufuse mean/p99 us", "req/call", "wake-ups/req");
    }
    for (int si = 0; si < NSRV; si++) {
        if (!srv_ok[si])
            continue;
        char k[64] = "n/a", u[64] = "-", rq[32] = "-", wk[32] = "-";
        const struct rtt *rk = &RTT[si][K], *ru = &RTT[si][U];
        if (rk->done && !rk->err)
            snprintf(k, sizeof(k), "%.1f / %.1f", rk->mean_us, rk->p99_us);
        else if (rk->done)
            snprintf(k, sizeof(k), "error: %s", strerror(-rk->err));
        if (ru->done && !ru->err) {
            snprintf(u, sizeof(u), "%.1f / %.1f", ru->mean_us, ru->p99_us);
            snprintf(rq, sizeof(rq), "%.2f", ru->req_per_call);
            snprintf(wk, sizeof(wk), "%.2f", ru->wake_per_req);
        } else if (ru->done) {
            snprintf(u, sizeof(u), "error: %s", strerror(-ru->err));
        }
        if (md)
            fprintf(f, "| %s | %s | %s | %s | %s |\n", servers[si].name, k, u, rq, wk);
        else
            fprintf(f, "%-16s %-22s %-22s %-14s %s\n", servers[si].name, k, u, rq, wk);
    }
    char m[3][16];
    if (valid(&MEMCPY)) {
        if (md)
            fprintf(f, "\nmemcpy, one core: %s MiB/s (%s-%s)\n", num(MEMCPY.med, m[0], 16),
                    num(MEMCPY.min, m[1], 16), num(MEMCPY.max, m[2], 16));
        else
            fprintf(f, "\nceiling: memcpy, one core %s MiB/s [%s-%s]\n",
                    num(MEMCPY.med, m[0], 16), num(MEMCPY.min, m[1], 16),
                    num(MEMCPY.max, m[2], 16));
    }
}

static void json_result(FILE *f, const struct result *r)
{
    if (!r->done) {
        fprintf(f, "null");
        return;
    }
    if (r->err || r->n == 0) {
        fprintf(f, "{\"error\": \"%s\"}", strerror(-r->err));
        return;
    }
    fprintf(f, "{\"median\": %.3f, \"min\": %.3f, \"max\": %.3f, \"runs\": [", r->med, r->min,
            r->max);
    for (int i = 0; i < r->n; i++)
        fprintf(f, "%s%.3f", i ? ", " : "", r->v[i]);
    fprintf(f, "]");
    if (r->requests)
        fprintf(f, ", \"requests\": %llu, \"wakeups\": %llu, \"wakeups_per_request\": %.3f",
                (unsigned long long)r->requests, (unsigned long long)r->wakeups,
                (double)r->wakeups / (double)r->requests);
    const struct ufuse_cacheinfo *c = &r->cache;
    if (c->budget)      /* a ufuse run with the page cache (budget 0: cache=direct) */
        fprintf(f, ",\n       \"cache\": {\"hits\": %llu, \"misses\": %llu, \"readahead\": %llu, "
                   "\"evictions\": %llu, \"written_back\": %llu, \"writebacks\": %llu, "
                   "\"throttled\": %llu, \"pages_max\": %llu, \"budget\": %llu, "
                   "\"page_size\": %u, \"block_size\": %u}",
                (unsigned long long)c->hits, (unsigned long long)c->misses,
                (unsigned long long)c->readahead, (unsigned long long)c->evictions,
                (unsigned long long)c->written_back, (unsigned long long)c->writebacks,
                (unsigned long long)c->throttled, (unsigned long long)c->pages_max,
                (unsigned long long)c->budget, c->page_size, c->block_size);
    fprintf(f, "}");
}

static FILE *out_file(const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", outdir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        fprintf(stderr, "bench: %s: %s\n", p, strerror(errno));
    return f;
}

static void write_outputs(void)
{
    char cur[PATH_MAX + 64], old[PATH_MAX + 64];
    snprintf(cur, sizeof(cur), "%s/latest.json", outdir);
    snprintf(old, sizeof(old), "%s/previous.json", outdir);
    if (rename(cur, old) < 0 && errno != ENOENT)
        fprintf(stderr, "bench: %s: %s\n", old, strerror(errno));
    FILE *f = out_file("latest.json");
    if (f) {
        fprintf(f, "{\n  \"date\": \"%s\",\n  \"machine\": \"%s\",\n  \"quick\": %s,\n", date_str,
                machine, P.quick ? "true" : "false");
        fprintf(f, "  \"runs\": %d,\n  \"kernel_side\": %s%s%s,\n", P.runs,
                kernel_why ? "\"" : "", kernel_why ? kernel_why : "true",
                kernel_why ? "\"" : "");
        fprintf(f, "  \"params\": {\"big_bytes\": %lld, \"seq_write_bytes\": %lld, "
                   "\"hot_bytes\": %lld, \"rand_ops_max\": %ld, \"stat_ops_max\": %ld, "
                   "\"rtt_ops\": %ld, \"files\": %d, \"threads\": %d, \"cap_s\": %.2f, "
                   "\"seq_cap_s\": %.2f},\n",
                (long long)P.big, (long long)P.seqw, (long long)P.hot, P.rand_ops, P.stat_ops,
                P.rtt_ops, P.nfiles, P.threads, P.cap, P.seq_cap);
        fprintf(f, "  \"memcpy_mib_s\": ");
        json_result(f, &MEMCPY);
        fprintf(f, ",\n  \"results\": [\n");
        bool first = true;
        for (int si = 0; si < NSRV; si++)
            for (int mi = 0; si < NSRV && srv_ok[si] && mi < NMODE; mi++)
                for (int wi = 0; wi < NWORK; wi++) {
                    fprintf(f, "%s    {\"server\": \"%s\", \"mode\": \"%s\", \"server_opts\": \"%s\", "
                               "\"ufuse_opts\": \"%s\", \"workload\": \"%s\", \"title\": \"%s\", "
                               "\"unit\": \"%s\",\n     \"kernel\": ",
                            first ? "" : ",\n", servers[si].name, modes[mi].name,
                            modes[mi].srv_opts[si], modes[mi].ufuse_opts, workloads[wi].id,
                            workloads[wi].title, workloads[wi].unit);
                    first = false;
                    json_result(f, &R[si][mi][wi][K]);
                    fprintf(f, ",\n     \"ufuse\": ");
                    json_result(f, &R[si][mi][wi][U]);
                    double q = ratio(si, mi, wi);
                    if (isnan(q))
                        fprintf(f, ",\n     \"ratio\": null");
                    else
                        fprintf(f, ",\n     \"ratio\": %.3f", q);
                    fprintf(f, ",\n     \"ceiling\": ");
                    json_result(f, &CEIL[wi]);
                    fprintf(f, "}");
                }
        fprintf(f, "\n  ],\n  \"round_trip\": [");
        first = true;
        for (int si = 0; si < NSRV; si++) {
            if (!srv_ok[si])
                continue;
            for (int w = 0; w < 2; w++) {
                const struct rtt *t = &RTT[si][w];
                if (!t->done)
                    continue;
                fprintf(f, "%s\n    {\"server\": \"%s\", \"side\": \"%s\", \"server_opts\": \"%s\", ",
                        first ? "" : ",", servers[si].name, w == K ? "kernel" : "ufuse",
                        servers[si].rtt_opts);
                first = false;
                if (t->err)
                    fprintf(f, "\"error\": \"%s\"}", strerror(-t->err));
                else
                    fprintf(f, "\"mean_us\": %.2f, \"p99_us\": %.2f, \"requests_per_call\": %.3f, "
                               "\"wakeups_per_request\": %.3f}",
                            t->mean_us, t->p99_us, t->req_per_call, t->wake_per_req);
            }
        }
        fprintf(f, "\n  ]\n}\n");
        fclose(f);
    }
    f = out_file("latest.md");
    if (f) {
        fprintf(f, "Measured %s on %s%s; median of %d runs after a warm-up, [min-max], "
                   "kernel and ufuse runs interleaved; "
                   "ratio = ufuse / kernel (higher is better for ufuse).\n",
                date_str, machine, P.quick ? " (QUICK smoke run: sizes scaled down)" : "",
                P.runs);
        if (kernel_why)
            fprintf(f, "\nThe kernel side did not run: %s.\n", kernel_why);
        print_tables(f, true);
        fclose(f);
    }
    f = out_file("latest.dat");
    if (f) {
        fprintf(f, "\"workload\"");
        for (int si = 0; si < NSRV; si++)
            for (int mi = 0; mi < NMODE; mi++)
                fprintf(f, " \"%s %s\"", servers[si].name, modes[mi].name);
        fprintf(f, "\n");
        for (int wi = 0; wi < NWORK; wi++) {
            fprintf(f, "\"%s\"", workloads[wi].title);
            for (int si = 0; si < NSRV; si++)
                for (int mi = 0; mi < NMODE; mi++) {
                    double q = srv_ok[si] ? ratio(si, mi, wi) : NAN;
                    if (isnan(q))
                        fprintf(f, " -");
                    else
                        fprintf(f, " %.4f", q);
                }
            fprintf(f, "\n");
        }
        fclose(f);
    }
}

/* ------------------------------------------------------------------ */

/* passthrough_ll keeps an O_PATH descriptor open for every inode the client
 * knows (until FORGET): the 10,000-file workloads need more than the usual
 * limit, on both sides alike.  The servers inherit ours. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = 1 << 18;
    if (rl.rlim_cur >= want)
        return;
    struct rlimit up = {want, rl.rlim_max > want ? rl.rlim_max : want};
    if (setrlimit(RLIMIT_NOFILE, &up) != 0) {       /* not root: up to the hard limit */
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(const char *prog)
{
    printf("usage: %s [--quick] [--out DIR] [--bin DIR] [--only SERVER] [--work IDS]\n"
           "Benchmarks ufuse against the Linux kernel FUSE client on the same servers.\n"
           "  --quick      scaled-down smoke run (also QUICK=1 in the environment)\n"
           "  --out DIR    where latest.json, latest.md, latest.dat go (default .)\n"
           "  --bin DIR    where ufuse-memfs and passthrough_ll are (default: beside us)\n"
           "  --only NAME  one server: memfs or passthrough_ll\n"
           "  --work IDS   only the workloads whose ids are in IDS (comma-separated):\n"
           "               seqread_cold seqwrite_fsync randread_cold randread_hot\n"
           "               randwrite_fsync stat_cached create_small readdir threads4_cold\n"
           "               threads4_hot sparse_cold\n",
           prog);
}

int main(int argc, char **argv)
{
    bool quick = getenv("QUICK") && strcmp(getenv("QUICK"), "1") == 0;
    const char *only = NULL;
    snprintf(outdir, sizeof(outdir), ".");
    ssize_t l = readlink("/proc/self/exe", bindir, sizeof(bindir) - 1);
    if (l > 0) {
        bindir[l] = 0;
        char *sl = strrchr(bindir, '/');
        if (sl)
            *sl = 0;
    }
    static const struct option lopts[] = {
        {"quick", no_argument, NULL, 'q'}, {"out", required_argument, NULL, 'o'},
        {"bin", required_argument, NULL, 'b'}, {"only", required_argument, NULL, 's'},
        {"work", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "qo:b:s:w:h", lopts, NULL)) != -1) {
        switch (opt) {
        case 'q': quick = true; break;
        case 'o': snprintf(outdir, sizeof(outdir), "%s", optarg); break;
        case 'b': snprintf(bindir, sizeof(bindir), "%s", optarg); break;
        case 's': only = optarg; break;
        case 'w': work_filter = optarg; break;
        case 'h': usage(argv[0]); return 0;
        default: usage(argv[0]); return 2;
        }
    }
    set_params(quick);
    load_previous();
    describe_machine();
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    snprintf(tmpbase, sizeof(tmpbase), "/tmp/ufuse-bench-XXXXXX");
    if (!mkdtemp(tmpbase)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(shmbase, sizeof(shmbase), "/dev/shm/ufuse-bench-XXXXXX");
    if (!mkdtemp(shmbase)) {
        fprintf(stderr, "bench: no /dev/shm (%s): the source directory goes to /tmp\n",
                strerror(errno));
        snprintf(shmbase, sizeof(shmbase), "%s/shm", tmpbase);
        mkdir(shmbase, 0755);
    }
    snprintf(srcdir, sizeof(srcdir), "%s/src", shmbase);
    char mnt[PATH_MAX + 8];
    snprintf(mnt, sizeof(mnt), "%s/mnt", tmpbase);
    if (mkdir(srcdir, 0755) < 0 || mkdir(mnt, 0755) < 0) {
        perror("mkdir");
        return 1;
    }

    unsigned char *buf = aligned_alloc(4096, MIB);
    if (!buf)
        return 1;
    for (size_t i = 0; i < MIB; i++)
        buf[i] = (unsigned char)((i * 2654435761u) >> 13);

    kernel_why = kernel_unavailable();
    if (kernel_why)
        fprintf(stderr, "bench: the kernel side cannot run (%s): running ufuse alone\n",
                kernel_why);
    for (int si = 0; si < NSRV; si++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s/%s", bindir, servers[si].bin);
        srv_ok[si] = access(p, X_OK) == 0 && (!only || strcmp(only, servers[si].name) == 0);
        if (access(p, X_OK) != 0)
            fprintf(stderr, "bench: %s not found: %s skipped\n", p, servers[si].name);
    }
    if (!kernel_why) {
        /* root with /dev/fuse may still be refused a mount (a container) */
        struct side probe;
        int first = srv_ok[0] ? 0 : 1;
        side_init(&probe, SIDE_KERNEL, first, "", "");
        kern_side = &probe;
        if (srv_ok[first] && side_attach(&probe) < 0)
            kernel_why = "a kernel FUSE mount failed";
        side_detach(&probe);
        kern_side = NULL;
        if (kernel_why)
            fprintf(stderr, "bench: the kernel side cannot run (%s): running ufuse alone\n",
                    kernel_why);
    }
    int nsides = kernel_why ? 1 : 2, nsrv = 0;
    for (int si = 0; si < NSRV; si++)
        nsrv += srv_ok[si];
    int nwork = 0;
    for (int wi = 0; wi < NWORK; wi++)
        nwork += selected(wi);
    progress_n = 1 + nwork + nsrv * (NMODE * nwork + nsides);
    fprintf(stderr, "bench: %s run, %d runs after a warm-up; /big is %lld MiB; work in %s, %s\n",
            quick ? "QUICK" : "full", P.runs, (long long)(P.big / MIB), tmpbase, shmbase);

    int r = make_seeded("big", P.big, 1, P.big, buf);
    if (r == 0)
        r = make_seeded("sparse", P.sparse, SPARSE_EXTENTS, P.sparse_ext, buf);
    if (r < 0) {
        fprintf(stderr, "bench: cannot write the files in %s: %s\n", srcdir, strerror(-r));
        return 1;
    }

    double t_start = now_s();
    run_memcpy();
    struct side sd[2];
    side_init(&sd[0], SIDE_TMPFS, 0, "", "");
    side_attach(&sd[0]);
    for (int wi = 0; wi < NWORK; wi++) {
        struct side *one[1] = {&sd[0]};
        struct result *res[1] = {&CEIL[wi]};
        run_workload(one, res, 1, "ceiling tmpfs", wi, buf, NAN);
    }
    clean_src();

    /* Both sides of a server and mode are attached at once, the kernel's
     * on the mountpoint, ufuse's in this process, so that the runs of
     * each workload interleave (run_workload()). */
    const int first = kernel_why ? U : K;
    for (int si = 0; si < NSRV; si++) {
        if (!srv_ok[si])
            continue;
        for (int mi = 0; mi < NMODE; mi++) {
            char what[128];
            snprintf(what, sizeof(what), "%s/%s", servers[si].name, modes[mi].name);
            struct side *sds[2] = {&sd[K], &sd[U]};
            for (int w = first; w <= U; w++) {
                side_init(&sd[w], w == K ? SIDE_KERNEL : SIDE_UFUSE, si,
                          modes[mi].srv_opts[si], modes[mi].ufuse_opts);
                if (w == K)
                    kern_side = &sd[K];
                side_attach(&sd[w]);
            }
            for (int wi = 0; wi < NWORK; wi++) {
                struct result *res[2] = {&R[si][mi][wi][K], &R[si][mi][wi][U]};
                run_workload(sds + first, res + first, U - first + 1, what, wi, buf,
                             PREV[si][mi][wi]);
            }
            for (int w = first; w <= U; w++)
                side_detach(&sd[w]);
            kern_side = NULL;
            clean_src();
        }
        run_rtt(si);
    }
    fprintf(stderr, "bench: done in %.0f s\n", now_s() - t_start);

    print_tables(stdout, false);
    write_outputs();
    free(buf);
    rm_tree(shmbase);
    rm_tree(tmpbase);
    if (failures)
        fprintf(stderr, "bench: %d workload(s) failed\n", failures);
    return failures ? 1 : 0;
}
