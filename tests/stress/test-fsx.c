/*
 * test-fsx.c - an fsx-style randomized test of the data path (after
 * xfstests' fsx): one file on the built-in ufuse-memfs, driven by a seeded
 * random sequence of preads/preadvs, pwrites/pwritevs (1 byte .. 256 KiB,
 * unaligned, anywhere below 4 MiB), ftruncate/truncate up and down,
 * fallocate (allocate, zero range, punch hole), copy_file_range from a
 * second file, fsync/fdatasync/ufuse_sync, fstat/stat, close and reopen
 * (sometimes O_TRUNC), and up to three handles open at once: the main
 * O_RDWR one, a second one that is O_RDONLY, O_WRONLY, O_RDWR or O_APPEND,
 * and an O_DIRECT one.  Every read and every size is compared with a
 * shadow copy kept in memory; the whole file is compared now and then, and
 * at the end through a fresh handle and through an O_DIRECT handle (what
 * the server holds).  It proves that no cache mode loses, reorders or
 * invents data whatever the mix of cached and direct transfers: direct,
 * writethrough, writeback, auto (with and without the server's
 * WRITEBACK_CACHE grant, with FOPEN_KEEP_CACHE), and small budgets
 * (cache_size=1m: eviction, throttling) with block_size=64k and a 1 s
 * dirty expiry (the flusher runs while the test does).  It also checks
 * that the cached modes did go through the cache (ufuse_cacheinfo).
 * The odirect-* modes (write-through and write-back) stress
 * genfs_directio's alignment rule (issue 10): an O_RDWR|O_DIRECT handle
 * is open from the start and takes half of the transfers, and after every
 * operation that changes data the range around it (a page either side) is
 * read back through a random handle and compared; every O_DIRECT read
 * must have gone through the cache exactly when it has an unaligned head
 * or tail inside EOF (ufuse_cacheinfo's hits + misses).
 *
 * Environment: UFUSE_FSX_SEED=N (default: from the clock; always printed),
 * UFUSE_FSX_OPS=N operations per mode (default 3000; `--ops N` on the
 * command line too, which the soak run uses: 1,000,000; the variable wins), UFUSE_FSX_MODE=NAME runs one
 * mode only, UFUSE_FSX_VERBOSE=1 prints every operation,
 * UFUSE_FSX_SKIP=fallocate,copy,direct,... leaves operations out (by the
 * names the log uses; "direct": no O_DIRECT handle), to narrow a failure.  A failure prints
 * the seed, the mode, the failing operation and the last operations, with a
 * command line that replays it.  A watchdog prints the same if no
 * operation completes for 60 s (a hang), without failing the test itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ufuse.h"

#include <linux/falloc.h>

#define MAXLEN (4u << 20)      /* largest file size */
#define MAXOP (256u << 10)     /* largest single transfer */
#define SRCLEN (1u << 20)      /* copy_file_range source file */
#define LOGN 256               /* operations remembered */
#define LOGSHOW 60             /* ... and shown on failure */
#define STALL_S 60             /* watchdog: seconds without progress */
#define PATH "/fsx"
#define SRCPATH "/fsx.src"

struct mode {
    const char *name;
    const char *server;        /* ufuse-memfs -o options, or NULL */
    const char *opts;          /* ufuse mount options */
    int cached;                /* the page cache must be used */
    int odirect;               /* O_DIRECT takes half the transfers; check after each op */
};

static const struct mode modes[] = {
    {"direct", NULL, "cache=direct", 0, 0},
    {"writethrough", NULL, "cache=writethrough", 1, 0},
    {"writeback", NULL, "cache=writeback", 1, 0},
    /* the server grants FUSE_WRITEBACK_CACHE: auto is write-back */
    {"auto-grant", "writeback", "cache=auto", 1, 0},
    /* no grant: auto is write-through; FOPEN_KEEP_CACHE on every open */
    {"auto-keep", "keep_cache", "cache=auto", 1, 0},
    {"writeback-1m-64k", NULL, "cache=writeback,cache_size=1m,block_size=64k", 1, 0},
    {"writeback-1m-expire", "keep_cache", "cache=writeback,cache_size=1m,dirty_expire=1", 1, 0},
    {"writethrough-1m-64k", NULL, "cache=writethrough,cache_size=1m,block_size=64k", 1, 0},
    {"odirect-writethrough", NULL, "cache=writethrough", 1, 1},
    {"odirect-writeback", NULL, "cache=writeback", 1, 1},
};

enum op {
    OP_READ, OP_WRITE, OP_READRUN, OP_WRITERUN, OP_TRUNC, OP_FALLOC, OP_COPY, OP_FSYNC,
    OP_STAT, OP_REOPEN, OP_SLOT, OP_SYNC, OP_VERIFY,
};
static const char *const op_names[] = {
    "read", "write", "readrun", "writerun", "truncate", "fallocate", "copy", "fsync",
    "stat", "reopen", "slot", "sync", "verify",
};

struct logent {
    unsigned long no;
    enum op op;
    int slot;                  /* handle used, -1: by path / session */
    int flags;                 /* open flags, fallocate mode, iovec count ... */
    int64_t off, len, aux;     /* aux: copy source offset, new size, run chunk */
    int aux2;                  /* runs: through ufuse_read/ufuse_write */
    int64_t size_before;
    int64_t result;
    int done;
};

/* ---- state of one run ------------------------------------------------------------------- */

static uint64_t rng;
static unsigned long opno;
static const struct mode *M;
static unsigned long long seed_base, seed;
static unsigned long nops = 3000;
static int verbose;
static const char *skip_ops;    /* UFUSE_FSX_SKIP: op names (and "direct") left out */

static int skipped(const char *name)
{
    if (!skip_ops)
        return 0;
    size_t n = strlen(name);
    for (const char *p = skip_ops; (p = strstr(p, name)) != NULL; p += n)
        if ((p == skip_ops || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

static ufuse_t *S;
static ufuse_file_t *slot[3];   /* 0: main O_RDWR, 1: other, 2: O_DIRECT */
static int slot_flags[3];
static ufuse_file_t *src;       /* SRCPATH, O_RDONLY */
static unsigned char *good;     /* the shadow: MAXLEN bytes, zero past size */
static unsigned char *srcdata;  /* SRCPATH's contents */
static unsigned char *buf;
static int64_t size;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct logent oplog[LOGN];
static unsigned long logged;     /* entries ever added */
static unsigned long progress;   /* operations completed (under log_mu) */

static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rndn(uint64_t n)
{
    return n ? rnd() % n : 0;
}

/* The byte operation @no writes at file offset @pos: a write's data can
 * be told from another's, and from itself shifted. */
static unsigned char pat(unsigned long no, uint64_t pos)
{
    return (unsigned char)((((pos ^ ((uint64_t)no << 22)) + no) * 2654435761u) >> 13);
}

/* ---- the operation log -------------------------------------------------------------------- */

static struct logent *log_begin(enum op op, int s)
{
    pthread_mutex_lock(&log_mu);
    struct logent *e = &oplog[logged++ % LOGN];
    *e = (struct logent){.no = opno, .op = op, .slot = s, .size_before = size};
    pthread_mutex_unlock(&log_mu);
    return e;
}

static void log_flagstr(int fl, char *out, size_t n)
{
    snprintf(out, n, "%s%s%s%s%s",
             (fl & O_ACCMODE) == O_RDONLY ? "O_RDONLY" : (fl & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                                                                       : "O_RDWR",
             fl & O_DIRECT ? "|O_DIRECT" : "", fl & O_APPEND ? "|O_APPEND" : "",
             fl & O_TRUNC ? "|O_TRUNC" : "", fl & O_CREAT ? "|O_CREAT" : "");
}

static void log_print_one(FILE *o, const struct logent *e)
{
    char fl[96];
    fprintf(o, "  #%-7lu %-9s", e->no, op_names[e->op]);
    if (e->slot >= 0)
        fprintf(o, " h%d", e->slot);
    else
        fprintf(o, " --");
    switch (e->op) {
    case OP_READ:
    case OP_WRITE:
        fprintf(o, " off=%" PRId64 " len=%" PRId64 " (end %" PRId64 ")%s", e->off, e->len,
                e->off + e->len, e->flags > 1 ? " iov" : "");
        break;
    case OP_READRUN:
    case OP_WRITERUN:
        fprintf(o, " off=%" PRId64 " %d x %" PRId64 " (end %" PRId64 ")%s", e->off, e->flags,
                e->aux, e->off + e->len, e->aux2 ? " at the position" : "");
        break;
    case OP_TRUNC:
        fprintf(o, " to %" PRId64 "%s", e->aux, e->flags ? " (by path)" : "");
        break;
    case OP_FALLOC:
        fprintf(o, " mode=%s%s%s off=%" PRId64 " len=%" PRId64,
                e->flags & FALLOC_FL_PUNCH_HOLE ? "PUNCH|" : "",
                e->flags & FALLOC_FL_ZERO_RANGE ? "ZERO|" : "",
                e->flags & FALLOC_FL_KEEP_SIZE ? "KEEP" : "0", e->off, e->len);
        break;
    case OP_COPY:
        fprintf(o, " src+%" PRId64 " -> off=%" PRId64 " len=%" PRId64, e->aux, e->off, e->len);
        break;
    case OP_FSYNC:
        fprintf(o, " %s", e->flags ? "fdatasync" : "fsync");
        break;
    case OP_REOPEN:
    case OP_SLOT:
        if (e->flags < 0) {
            fprintf(o, " close");
        } else {
            log_flagstr(e->flags, fl, sizeof fl);
            fprintf(o, " open %s", fl);
        }
        break;
    default:
        break;
    }
    fprintf(o, "  [size %" PRId64 "]", e->size_before);
    if (e->done)
        fprintf(o, " = %" PRId64 "%s%s\n", e->result, e->result < 0 ? " " : "",
                e->result < 0 ? strerror((int)-e->result) : "");
    else
        fprintf(o, " (in progress)\n");
}

static void log_print(FILE *o, unsigned show)
{
    pthread_mutex_lock(&log_mu);
    unsigned long n = logged < show ? logged : show;
    fprintf(o, "last %lu operations (oldest first):\n", n);
    for (unsigned long i = logged - n; i < logged; i++)
        log_print_one(o, &oplog[i % LOGN]);
    pthread_mutex_unlock(&log_mu);
}

static void log_end(struct logent *e, int64_t result)
{
    pthread_mutex_lock(&log_mu);
    e->result = result;
    e->done = 1;
    progress++;
    pthread_mutex_unlock(&log_mu);
    if (verbose)
        log_print_one(stderr, e);
}

static void replay_hint(void)
{
    fprintf(stderr, "fsx: mode %s (server -o %s, client -o %s), seed %llu, op #%lu of %lu\n",
            M->name, M->server ? M->server : "-", M->opts, seed_base, opno, nops);
    fprintf(stderr, "fsx: replay: UFUSE_FSX_SEED=%llu UFUSE_FSX_MODE=%s UFUSE_FSX_OPS=%lu%s%s "
            "test-fsx\n", seed_base, M->name, nops, skip_ops ? " UFUSE_FSX_SKIP=" : "",
            skip_ops ? skip_ops : "");
}

/* Which logged operations could have put @pos's bytes there. */
static void explain(int64_t pos, unsigned char got)
{
    pthread_mutex_lock(&log_mu);
    unsigned long n = logged < LOGN ? logged : LOGN;
    for (unsigned long i = logged - n; i < logged; i++) {
        const struct logent *e = &oplog[i % LOGN];
        int64_t lo = e->off, hi = e->off + e->len;
        if (e->op == OP_TRUNC) {
            lo = e->aux < e->size_before ? e->aux : e->size_before;
            hi = e->aux > e->size_before ? e->aux : e->size_before;
        }
        if ((e->op == OP_WRITE || e->op == OP_WRITERUN || e->op == OP_TRUNC || e->op == OP_FALLOC || e->op == OP_COPY) &&
            pos >= lo && pos < hi) {
            fprintf(stderr, "  offset %" PRId64 " touched by #%lu %s", pos, e->no,
                    op_names[e->op]);
            if ((e->op == OP_WRITE || e->op == OP_WRITERUN) && got == pat(e->no, (uint64_t)pos))
                fprintf(stderr, " (the byte read is what this write wrote)");
            fprintf(stderr, "\n");
        }
    }
    pthread_mutex_unlock(&log_mu);
}

#define FAIL(...)                                                                           \
    do {                                                                                    \
        fprintf(stderr, "fsx: FAILED: ");                                                   \
        fprintf(stderr, __VA_ARGS__);                                                       \
        fprintf(stderr, "\n");                                                              \
        replay_hint();                                                                      \
        log_print(stderr, LOGSHOW);                                                         \
        fail_msg("fsx %s seed %llu op #%lu failed (see above)", M->name, seed_base, opno);   \
    } while (0)

static void *watchdog(void *arg)
{
    (void)arg;
    unsigned long last = (unsigned long)-1;
    int still = 0, told = 0;
    for (;;) {
        sleep(1);
        pthread_mutex_lock(&log_mu);
        unsigned long p = progress;
        pthread_mutex_unlock(&log_mu);
        if (p != last) {
            last = p;
            still = told = 0;
        } else if (++still >= STALL_S && !told) {
            told = 1;
            fprintf(stderr, "fsx: no operation completed for %d s: hung?\n", STALL_S);
            replay_hint();
            log_print(stderr, LOGSHOW);
        }
    }
    return NULL;
}

/* ---- checks -------------------------------------------------------------------------------- */

static void compare(const unsigned char *got, int64_t off, int64_t n, const char *what)
{
    if (memcmp(got, good + off, (size_t)n) == 0)
        return;
    int64_t i = 0;
    while (got[i] == good[off + i])
        i++;
    int64_t bad = 0;
    for (int64_t j = i; j < n; j++)
        bad += got[j] != good[off + j];
    fprintf(stderr, "fsx: %s: %" PRId64 " bytes differ in [%" PRId64 ", %" PRId64
            "), first at offset %" PRId64 " (size %" PRId64 ")\n",
            what, bad, off, off + n, off + i, size);
    fprintf(stderr, "  offset      expected got\n");
    for (int64_t j = i; j < n && j < i + 16; j++)
        fprintf(stderr, "  %-11" PRId64 " %02x       %02x%s\n", off + j, good[off + j], got[j],
                got[j] != good[off + j] ? "  <-" : "");
    explain(off + i, got[i]);
    FAIL("%s: data differs from the shadow at offset %" PRId64, what, off + i);
}

/* Pages the cache's readers looked up so far (hits + misses). */
static uint64_t cache_lookups(void)
{
    struct ufuse_cacheinfo ci;
    if (ufuse_cacheinfo(S, &ci))
        fail_msg("ufuse_cacheinfo failed");
    return ci.hits + ci.misses;
}

/* Read [off, off+len) through slot @s (a random iovec split) and check it. */
static void do_read(int s, int64_t off, int64_t len)
{
    int cnt = 1;
    struct iovec iov[3];
    iov[0] = (struct iovec){buf, (size_t)len};
    if (len > 2 && rndn(4) == 0) {
        size_t a = 1 + rndn((uint64_t)len - 2), b = a + rndn((uint64_t)len - a);
        iov[0].iov_len = a;
        iov[1] = (struct iovec){buf + a, b - a};
        iov[2] = (struct iovec){buf + b, (size_t)len - b};
        cnt = 3;
    }
    struct logent *e = log_begin(OP_READ, s);
    e->off = off;
    e->len = len;
    e->flags = cnt;
    memset(buf, 0xa5, (size_t)len);
    uint64_t looked = M->odirect ? cache_lookups() : 0;
    ssize_t r = cnt == 1 ? ufuse_pread(slot[s], buf, (size_t)len, off)
                         : ufuse_preadv(slot[s], iov, cnt, off);
    log_end(e, r);
    int64_t want = off >= size ? 0 : (size - off < len ? size - off : len);
    if (r != want)
        FAIL("read h%d off %" PRId64 " len %" PRId64 " returned %zd, expected %" PRId64, s, off,
             len, r, want);
    compare(buf, off, want, "read");
    if (M->odirect && (slot_flags[s] & O_DIRECT)) {
        /* The alignment rule: the cache serves a head or tail inside EOF
         * (or the whole read when it holds no whole page), nothing else. */
        int64_t end = off + want, lo = (off + 4095) & ~(int64_t)4095, hi = end & ~(int64_t)4095;
        int cached = want > 0 && (off != lo || end != hi || lo >= hi);
        uint64_t n = cache_lookups() - looked;
        if (cached != (n > 0))
            FAIL("O_DIRECT read h%d off %" PRId64 " len %" PRId64 ": %" PRIu64
                 " page lookups in the cache, expected %s", s, off, len, n,
                 cached ? "some (an unaligned head or tail)" : "none (whole pages only)");
    }
}

static void check_size(int s, const char *how)
{
    struct stat st;
    int rc = s >= 0 ? ufuse_fstat(slot[s], &st) : ufuse_stat(S, PATH, &st);
    if (rc)
        FAIL("%s: %s", how, strerror(-rc));
    if (st.st_size != size)
        FAIL("%s: st_size %lld, expected %" PRId64, how, (long long)st.st_size, size);
}

/* Read the whole file through slot @s in random chunks and compare. */
static void verify_all(int s, const char *what)
{
    struct logent *e = log_begin(OP_VERIFY, s);
    int64_t off = 0;
    while (off < size + 1) {
        int64_t n = 1 + (int64_t)rndn(MAXOP);
        ssize_t r = ufuse_pread(slot[s], buf, (size_t)n, off);
        int64_t want = off >= size ? 0 : (size - off < n ? size - off : n);
        if (r != want) {
            log_end(e, r);
            FAIL("%s: read h%d off %" PRId64 " len %" PRId64 " returned %zd, expected %" PRId64,
                 what, s, off, n, r, want);
        }
        compare(buf, off, want, what);
        if (!r)
            break;
        off += r;
    }
    log_end(e, 0);
}

/* ---- handles ------------------------------------------------------------------------------- */

static int can_read(int s)
{
    return slot[s] && (slot_flags[s] & O_ACCMODE) != O_WRONLY;
}

static int can_write(int s)
{
    return slot[s] && (slot_flags[s] & O_ACCMODE) != O_RDONLY;
}

/* A random open slot for which ok() holds, or -1. */
static int pick(int (*ok)(int))
{
    if (M->odirect && ok(2) && rndn(2) == 0)
        return 2;
    int c[3], n = 0;
    for (int s = 0; s < 3; s++)
        if (ok(s))
            c[n++] = s;
    return n ? c[rndn((uint64_t)n)] : -1;
}

static int can_write_noappend(int s)
{
    return can_write(s) && !(slot_flags[s] & O_APPEND);
}

static void close_slot(int s, enum op op)
{
    struct logent *e = log_begin(op, s);
    e->flags = -1;
    int rc = ufuse_close(slot[s]);
    slot[s] = NULL;
    log_end(e, rc);
    if (rc)
        FAIL("close h%d: %s", s, strerror(-rc));
}

static void open_slot(int s, int flags, enum op op)
{
    struct logent *e = log_begin(op, s);
    e->flags = flags;
    int rc = ufuse_open(S, PATH, flags, 0644, &slot[s]);
    log_end(e, rc);
    if (rc) {
        slot[s] = NULL;
        FAIL("open h%d: %s", s, strerror(-rc));
    }
    slot_flags[s] = flags;
    if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
        memset(good, 0, (size_t)size);
        size = 0;
    }
}

/* ---- operations ---------------------------------------------------------------------------- */

/* Transfer length: mostly small, sometimes large, sometimes whole pages. */
static int64_t rand_len(int64_t max)
{
    unsigned r = (unsigned)rndn(100);
    int64_t n = r < 40 ? 1 + (int64_t)rndn(4096) : r < 75 ? 1 + (int64_t)rndn(65536)
                                                           : 1 + (int64_t)rndn(MAXOP);
    if (rndn(8) == 0)
        n = (n + 4095) & ~(int64_t)4095;
    return n > max ? max : n;
}

static int64_t rand_off(int64_t limit)
{
    unsigned r = (unsigned)rndn(100);
    int64_t o;
    if (r < 15 && size > 0)                /* around EOF */
        o = size - 65536 + (int64_t)rndn(2 * 65536);
    else
        o = (int64_t)rndn((uint64_t)limit + 1);
    if (rndn(8) == 0)
        o &= ~(int64_t)4095;
    if (o < 0)
        o = 0;
    return o > limit ? limit : o;
}

static void op_read(void)
{
    int s = pick(can_read);
    if (s < 0)
        return;
    int64_t off = rand_off(size + 8192);
    do_read(s, off, rand_len(MAXOP));
}

static void op_write(void)
{
    int s = pick(can_write);
    if (s < 0)
        return;
    int append = slot_flags[s] & O_APPEND;
    int64_t len = rand_len(MAXOP);
    int64_t off;
    if (append) {
        if (size + len > MAXLEN)
            return;
        off = size;
    } else {
        off = rand_off(MAXLEN - len);
    }
    for (int64_t i = 0; i < len; i++)
        buf[i] = pat(opno, (uint64_t)(off + i));
    int cnt = 1;
    struct iovec iov[2] = {{buf, (size_t)len}};
    if (len > 1 && rndn(4) == 0) {
        size_t a = 1 + rndn((uint64_t)len - 1);
        iov[0].iov_len = a;
        iov[1] = (struct iovec){buf + a, (size_t)len - a};
        cnt = 2;
    }
    struct logent *e = log_begin(OP_WRITE, s);
    e->off = off;
    e->len = len;
    e->flags = cnt;
    /* an O_APPEND handle writes at the size whatever offset is given */
    off_t at = append ? (off_t)rndn(MAXLEN) : off;
    ssize_t r = cnt == 1 ? ufuse_pwrite(slot[s], buf, (size_t)len, at)
                         : ufuse_pwritev(slot[s], iov, cnt, at);
    log_end(e, r);
    if (r != len)
        FAIL("write h%d off %" PRId64 " len %" PRId64 " returned %zd", s, off, len, r);
    memcpy(good + off, buf, (size_t)len);
    if (off + len > size)
        size = off + len;
}

/* Sequential reads (readahead): @count chunks from a random offset,
 * by pread or by ufuse_read from the handle's position. */
static void op_readrun(void)
{
    int s = pick(can_read);
    if (s < 0)
        return;
    int64_t off = rand_off(size), chunk = rand_len(65536);
    int count = 2 + (int)rndn(15), bypos = (int)rndn(2);
    struct logent *e = log_begin(OP_READRUN, s);
    e->off = off;
    e->aux = chunk;
    e->flags = count;
    e->aux2 = bypos;
    e->len = chunk * count;
    if (bypos) {
        off_t p = ufuse_lseek(slot[s], off, SEEK_SET);
        if (p != off) {
            log_end(e, p);
            FAIL("lseek h%d to %" PRId64 " = %lld", s, off, (long long)p);
        }
    }
    for (int i = 0; i < count; i++) {
        int64_t at = off + i * chunk;
        memset(buf, 0xa5, (size_t)chunk);
        ssize_t r = bypos ? ufuse_read(slot[s], buf, (size_t)chunk)
                          : ufuse_pread(slot[s], buf, (size_t)chunk, at);
        int64_t want = at >= size ? 0 : (size - at < chunk ? size - at : chunk);
        if (r != want) {
            log_end(e, r);
            FAIL("readrun h%d: read %d of %" PRId64 " at %" PRId64 " returned %zd, expected %"
                 PRId64, s, i, chunk, at, r, want);
        }
        compare(buf, at, want, "readrun");
        if (r < chunk)
            break;
    }
    log_end(e, 0);
}

/* Sequential writes (clustered write-back): by pwrite, or by ufuse_write
 * at the position (O_APPEND handles: at the end, whatever the position). */
static void op_writerun(void)
{
    int s = pick(can_write);
    if (s < 0)
        return;
    int append = slot_flags[s] & O_APPEND;
    int64_t chunk = rand_len(65536);
    int count = 2 + (int)rndn(15), bypos = append ? 1 : (int)rndn(2);
    int64_t off = append ? size : rand_off(MAXLEN - chunk * count);
    if (off + chunk * count > MAXLEN)
        return;
    struct logent *e = log_begin(OP_WRITERUN, s);
    e->off = off;
    e->aux = chunk;
    e->flags = count;
    e->aux2 = bypos;
    e->len = chunk * count;
    if (bypos) {
        off_t want = append ? (off_t)rndn(MAXLEN) : off;
        off_t p = ufuse_lseek(slot[s], want, SEEK_SET);
        if (p != want) {
            log_end(e, p);
            FAIL("lseek h%d to %lld = %lld", s, (long long)want, (long long)p);
        }
    }
    for (int i = 0; i < count; i++) {
        int64_t at = off + i * chunk;
        for (int64_t k = 0; k < chunk; k++)
            buf[k] = pat(opno, (uint64_t)(at + k));
        ssize_t r = bypos ? ufuse_write(slot[s], buf, (size_t)chunk)
                          : ufuse_pwrite(slot[s], buf, (size_t)chunk, at);
        if (r != chunk) {
            log_end(e, r);
            FAIL("writerun h%d: write %d of %" PRId64 " at %" PRId64 " returned %zd", s, i,
                 chunk, at, r);
        }
        memcpy(good + at, buf, (size_t)chunk);
        if (at + chunk > size)
            size = at + chunk;
    }
    if (bypos) {
        off_t p = ufuse_lseek(slot[s], 0, SEEK_CUR);
        if (p != off + chunk * count) {
            log_end(e, p);
            FAIL("writerun h%d: position %lld after the run, expected %" PRId64, s,
                 (long long)p, off + chunk * count);
        }
    }
    log_end(e, 0);
}

static void set_size(int64_t n)
{
    if (n < size)
        memset(good + n, 0, (size_t)(size - n));
    size = n;
}

static void op_truncate(void)
{
    int s = pick(can_write);
    int bypath = s < 0 || rndn(6) == 0;
    int64_t n = rndn(2) ? (int64_t)rndn((uint64_t)size + 1) : (int64_t)rndn(MAXLEN + 1);
    if (rndn(8) == 0)
        n &= ~(int64_t)4095;
    struct logent *e = log_begin(OP_TRUNC, bypath ? -1 : s);
    e->aux = n;
    e->flags = bypath;
    int rc = bypath ? ufuse_truncate(S, PATH, n) : ufuse_ftruncate(slot[s], n);
    log_end(e, rc);
    if (rc)
        FAIL("truncate to %" PRId64 ": %s", n, strerror(-rc));
    set_size(n);
}

static void op_fallocate(void)
{
    int s = pick(can_write_noappend);
    if (s < 0)
        return;
    static const int fmodes[] = {
        0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
    };
    int fm = fmodes[rndn(5)];
    int64_t len = rand_len(MAXOP);
    int64_t off = rand_off(MAXLEN - len);
    struct logent *e = log_begin(OP_FALLOC, s);
    e->flags = fm;
    e->off = off;
    e->len = len;
    int rc = ufuse_fallocate(slot[s], fm, off, len);
    log_end(e, rc);
    if (rc)
        FAIL("fallocate h%d mode 0x%x off %" PRId64 " len %" PRId64 ": %s", s, fm, off, len,
             strerror(-rc));
    int64_t end = off + len;
    if (fm & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
        int64_t zend = (fm & FALLOC_FL_KEEP_SIZE) && end > size ? size : end;
        if (zend > off)
            memset(good + off, 0, (size_t)(zend - off));
    }
    if (!(fm & FALLOC_FL_KEEP_SIZE) && end > size)
        size = end;
}

static void op_copy(void)
{
    int s = pick(can_write_noappend);
    if (s < 0)
        return;
    int64_t len = rand_len(MAXOP);
    int64_t in = (int64_t)rndn(SRCLEN);
    int64_t off = rand_off(MAXLEN - len);
    off_t oi = in, oo = off;
    struct logent *e = log_begin(OP_COPY, s);
    e->aux = in;
    e->off = off;
    e->len = len;
    ssize_t r = ufuse_copy_file_range(src, &oi, slot[s], &oo, (size_t)len, 0);
    log_end(e, r);
    int64_t avail = SRCLEN - in < len ? SRCLEN - in : len;
    if (r <= 0 || r > avail)
        FAIL("copy_file_range src+%" PRId64 " -> h%d off %" PRId64 " len %" PRId64
             " returned %zd (at most %" PRId64 " expected)", in, s, off, len, r, avail);
    if (oi != in + r || oo != off + r)
        FAIL("copy_file_range moved the offsets to %lld, %lld", (long long)oi, (long long)oo);
    memcpy(good + off, srcdata + in, (size_t)r);
    if (off + r > size)
        size = off + r;
}

static int any_open(int s)
{
    return slot[s] != NULL;
}

static void op_fsync(void)
{
    int s = pick(any_open);
    int data = (int)rndn(2);
    struct logent *e = log_begin(OP_FSYNC, s);
    e->flags = data;
    int rc = data ? ufuse_fdatasync(slot[s]) : ufuse_fsync(slot[s]);
    log_end(e, rc);
    if (rc)
        FAIL("%s h%d: %s", data ? "fdatasync" : "fsync", s, strerror(-rc));
}

static void op_stat(void)
{
    int s = rndn(3) ? pick(any_open) : -1;
    struct logent *e = log_begin(OP_STAT, s);
    check_size(s, s >= 0 ? "fstat" : "stat");
    log_end(e, 0);
}

static void op_reopen(void)
{
    close_slot(0, OP_REOPEN);
    open_slot(0, O_RDWR | (rndn(4) == 0 ? O_TRUNC : 0) | (rndn(4) == 0 ? O_CREAT : 0), OP_REOPEN);
}

static void op_slot(void)
{
    int s = 1 + (int)rndn(2);
    if (slot[s]) {
        close_slot(s, OP_SLOT);
        return;
    }
    static const int other[] = {O_RDONLY, O_WRONLY, O_RDWR, O_WRONLY | O_APPEND,
                                O_RDWR | O_APPEND};
    static const int direct[] = {O_RDWR | O_DIRECT, O_RDONLY | O_DIRECT, O_WRONLY | O_DIRECT};
    if (s == 2 && skipped("direct"))
        return;
    int fl = s == 1 ? other[rndn(5)] : direct[rndn(3)];
    if (rndn(20) == 0 && (fl & O_ACCMODE) != O_RDONLY)
        fl |= O_TRUNC;
    open_slot(s, fl, OP_SLOT);
}

static void op_sync(void)
{
    struct logent *e = log_begin(OP_SYNC, -1);
    int rc = ufuse_sync(S);
    log_end(e, rc);
    if (rc)
        FAIL("ufuse_sync: %s", strerror(-rc));
}

static void op_verify(void)
{
    int s = pick(can_read);
    if (s >= 0)
        verify_all(s, "whole-file verify");
}

/* odirect modes: read the bytes around what the step's operation changed
 * (a page either side) back through a random handle.  @from: the log
 * count before the step. */
static void check_changed(unsigned long from)
{
    pthread_mutex_lock(&log_mu);
    struct logent e = oplog[(logged - 1) % LOGN];
    int fresh = logged > from;
    pthread_mutex_unlock(&log_mu);
    int64_t lo, hi;
    if (!fresh)
        return;
    switch (e.op) {
    case OP_WRITE:
    case OP_WRITERUN:
    case OP_FALLOC:
    case OP_COPY:
        lo = e.off;
        hi = e.off + e.len;
        break;
    case OP_TRUNC:
        lo = hi = e.aux;
        break;
    default:
        return;
    }
    int s = pick(can_read);
    if (s < 0)
        return;
    lo = lo > 4096 ? lo - 4096 : 0;
    hi = hi + 4096 - lo > (int64_t)MAXOP ? lo + MAXOP : hi + 4096;
    do_read(s, lo, hi - lo);
}

static void step(void)
{
    static const struct {
        void (*fn)(void);
        unsigned weight;
        enum op op;
    } ops[] = {
        {op_read, 26, OP_READ}, {op_write, 26, OP_WRITE}, {op_readrun, 5, OP_READRUN},
        {op_writerun, 5, OP_WRITERUN}, {op_truncate, 6, OP_TRUNC}, {op_fallocate, 4, OP_FALLOC},
        {op_copy, 3, OP_COPY}, {op_fsync, 4, OP_FSYNC}, {op_stat, 5, OP_STAT},
        {op_reopen, 2, OP_REOPEN}, {op_slot, 5, OP_SLOT}, {op_sync, 1, OP_SYNC},
        {op_verify, 1, OP_VERIFY},
    };
    unsigned total = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        total += skipped(op_names[ops[i].op]) ? 0 : ops[i].weight;
    unsigned r = (unsigned)rndn(total);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        unsigned w = skipped(op_names[ops[i].op]) ? 0 : ops[i].weight;
        if (r < w) {
            pthread_mutex_lock(&log_mu);
            unsigned long from = logged;
            pthread_mutex_unlock(&log_mu);
            ops[i].fn();
            if (M->odirect)
                check_changed(from);
            return;
        }
        r -= w;
    }
}

/* ---- one mode ------------------------------------------------------------------------------ */

static void mount_mode(void)
{
    const char *dir = getenv("UFUSE_BUILD_DIR");
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/ufuse-memfs", dir ? dir : ".");
    char *argv[] = {exe, "-o", (char *)(M->server ? M->server : "attr_timeout=1"), NULL};
    int rc = ufuse_mount(&S, argv, M->opts);
    if (rc == -ENOENT) {
        fprintf(stderr, "%s not built\n", exe);
        exit(77);
    }
    if (rc)
        fail_msg("ufuse_mount(-o %s) = %d (%s)", M->opts, rc, strerror(-rc));
}

static void run_mode(void **state)
{
    M = *state;
    const char *only = getenv("UFUSE_FSX_MODE");
    if (only && *only && strcmp(only, M->name) != 0)
        skip();
    /* each mode its own stream, so that one mode replays alone */
    seed = seed_base * 1000003ull + (unsigned long long)(M - modes);
    rng = seed;
    opno = 0;
    size = 0;
    memset(good, 0, MAXLEN);
    memset(slot, 0, sizeof slot);
    pthread_mutex_lock(&log_mu);
    logged = 0;
    progress++;
    pthread_mutex_unlock(&log_mu);
    fprintf(stderr, "fsx: mode %s: seed %llu, %lu operations\n", M->name, seed_base, nops);

    mount_mode();

    /* The copy_file_range source, left open (cached, maybe dirty). */
    for (uint32_t i = 0; i < SRCLEN; i++)
        srcdata[i] = (unsigned char)rnd();
    ufuse_file_t *w;
    if (ufuse_open(S, SRCPATH, O_CREAT | O_TRUNC | O_RDWR, 0644, &w) ||
        ufuse_pwrite(w, srcdata, SRCLEN, 0) != SRCLEN)
        fail_msg("cannot create %s", SRCPATH);
    if (ufuse_open(S, SRCPATH, O_RDONLY, 0, &src))
        fail_msg("cannot open %s", SRCPATH);
    open_slot(0, O_RDWR | O_CREAT | O_TRUNC, OP_REOPEN);
    if (M->odirect && !skipped("direct"))
        open_slot(2, O_RDWR | O_DIRECT, OP_SLOT);
    if (ufuse_close(w))
        fail_msg("close %s", SRCPATH);

    for (opno = 1; opno <= nops; opno++)
        step();

    /* The end: every handle closed (dirty data written back), then the
     * whole file through a fresh handle and through O_DIRECT (what the
     * server holds). */
    opno = nops + 1;
    for (int s = 0; s < 3; s++)
        if (slot[s])
            close_slot(s, OP_SLOT);
    open_slot(0, O_RDONLY, OP_REOPEN);
    check_size(0, "final fstat");
    check_size(-1, "final stat");
    verify_all(0, "final verify");
    close_slot(0, OP_SLOT);
    open_slot(2, O_RDONLY | O_DIRECT, OP_SLOT);
    verify_all(2, "final O_DIRECT verify");
    close_slot(2, OP_SLOT);
    assert_int_equal(ufuse_close(src), 0);

    struct ufuse_cacheinfo ci;
    assert_int_equal(ufuse_cacheinfo(S, &ci), 0);
    fprintf(stderr,
            "fsx: mode %s ok: pages_max %" PRIu64 " hits %" PRIu64 " misses %" PRIu64
            " readahead %" PRIu64 " evictions %" PRIu64 " writebacks %" PRIu64
            " throttled %" PRIu64 "\n",
            M->name, ci.pages_max, ci.hits, ci.misses, ci.readahead, ci.evictions,
            ci.writebacks, ci.throttled);
    if (M->cached) {
        /* the cache was in the path: reads were served from it */
        assert_true(ci.hits > 0);
        assert_true(ci.pages_max > 0);
        /* the budget held (with 1m: eviction did its job) */
        assert_true(ci.pages_max * ci.page_size <= ci.budget + ci.budget / 20);
    } else {
        assert_int_equal(ci.pages_max, 0);
    }
    assert_int_equal(ufuse_unmount(S), 0);
    /* the line scripts/reliability.sh collects into docs/reliability.md */
    printf("reliability: fsx, cache mode %s (client -o %s%s%s) | %lu operations against a "
           "shadow, every read and size checked, seed %llu; hits %" PRIu64 ", evictions %"
           PRIu64 ", write-back WRITEs %" PRIu64 "\n", M->name, M->opts,
           M->server ? ", memfs -o " : "", M->server ? M->server : "", nops, seed_base,
           ci.hits, ci.evictions, ci.writebacks);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--ops") == 0)
            nops = strtoul(argv[++i], NULL, 0);
    const char *e = getenv("UFUSE_FSX_OPS");    /* overrides --ops (make soak UFUSE_FSX_OPS=) */
    if (e && *e)
        nops = strtoul(e, NULL, 0);
    e = getenv("UFUSE_FSX_SEED");
    if (e && *e) {
        seed_base = strtoull(e, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed_base = ((unsigned long long)ts.tv_sec * 1000003ull ^ (unsigned long long)ts.tv_nsec ^
                     (unsigned long long)getpid() << 16) % 1000000000000ull;
    }
    skip_ops = getenv("UFUSE_FSX_SKIP");
    if (skip_ops)
        fprintf(stderr, "fsx: UFUSE_FSX_SKIP=%s: those operations left out\n", skip_ops);
    e = getenv("UFUSE_FSX_VERBOSE");
    verbose = e && *e && *e != '0';
    fprintf(stderr, "fsx: seed %llu (UFUSE_FSX_SEED=%llu replays it), %lu operations per mode\n",
            seed_base, seed_base, nops);
    good = malloc(MAXLEN);
    srcdata = malloc(SRCLEN);
    buf = malloc(MAXOP + 4096);
    if (!good || !srcdata || !buf)
        return 1;
    /* one watchdog for the whole process (a failed mode leaves by longjmp) */
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_detach(wd);

    struct CMUnitTest tests[sizeof modes / sizeof modes[0]];
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        tests[i] = (struct CMUnitTest){.name = modes[i].name, .test_func = run_mode,
                                       .initial_state = (void *)&modes[i]};
    int rc = cmocka_run_group_tests_name("fsx", tests, NULL, NULL);
    /* the watchdog may still read the log: leave the buffers to exit */
    return rc;
}
