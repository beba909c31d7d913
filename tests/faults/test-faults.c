/*
 * test-faults.c - the fault matrix (issue 11): real servers (ufuse-memfs
 * and libfuse's passthrough_ll, children of this test, see common.h)
 * killed, stopped, failing writes, answering malformed replies, under
 * memory pressure, hanging on one node, changing a file under the cache.
 * One cmocka test per row; each asserts the outcome and then prints its
 * "reliability:" line.  Nothing is timed except "completes within a
 * generous bound" (a hang guard turns a hang into a failure).
 *
 * Amounts (rounds, operations) are small under `make check` and larger
 * under `make soak` (UFUSE_SOAK=1, the faults-soak test); UFUSE_FAULT_*
 * variables override them (see amount() calls).  UFUSE_FAULT_SEED replays
 * the random choices (always printed); UFUSE_FAULT_ONLY=NAME runs one row.
 *
 * Rows:
 *  kill_*         SIGKILL during INIT, readahead, write-back at fsync,
 *                 write-back by the flusher, readdir, with 8 threads in
 *                 flight: every call ends with ENOTCONN, fsync reports the
 *                 loss, unmount completes.  "During" is made certain by
 *                 stopping the server (SIGSTOP) first and waiting until the
 *                 requests are sent (ufuse_stats), then killing it.
 *  stop_*         SIGSTOP: with timeout= calls end with ETIMEDOUT; without,
 *                 ufuse_interrupt ends a waiting call with EINTR; after
 *                 SIGCONT the session goes on with correct data.
 *  wb_eio,        a WRITE failing during write-back (memfs eio_at; a full
 *  wb_enospc      tmpfs under passthrough_ll): reported once to every
 *                 handle at its next fsync or close, WRITEs not retried
 *                 forever, data of an earlier fsync on the server.
 *  bad_replies    short, over-long and malformed replies at random points
 *                 of a copy (a proxy between ufuse and passthrough_ll
 *                 corrupts the Nth reply): the copy fails cleanly or ends
 *                 with correct data, never wrong bytes.
 *  mem_pressure   1 MiB cache, 8 threads of mixed I/O on a 256 MiB file.
 *  hung_node      requests on one node never answered (memfs hang_ino).
 *  size_change    the file's size changes on the server under cached data.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "faults/common.h"

#define MIB (1024 * 1024)
/* Generous bounds: a call that should end at once, and the guard. */
#define PROMPT_MS 10000
#define GUARD_S 120

static struct srv V;
static ufuse_t *S;
static uint64_t seed;

static int teardown(void **state)
{
    (void)state;
    hang_guard(GUARD_S, "teardown");
    if (S) {
        srv_signal(&V, SIGCONT);
        ufuse_unmount(S);
        S = NULL;
    }
    srv_stop(&V, 2000);
    memset(&V, 0, sizeof V);
    hang_guard_off();
    return 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&V, 0, sizeof V);
    S = NULL;
    return 0;
}

/* Unmount must complete (bounded by the guard); the server is reaped. */
static void unmount_and_reap(int grace_ms)
{
    ufuse_t *s = S;
    S = NULL;
    srv_unmount(s, &V, grace_ms);
}

/* ---- calls made by another thread ------------------------------------- */

enum call_kind { C_PREAD, C_FSYNC, C_READDIR, C_STAT };

struct call {
    enum call_kind kind;
    ufuse_file_t *f;
    ufuse_dir_t *d;
    const char *path;
    off_t off;
    size_t len;
    int count;              /* C_PREAD: sequential reads of len */
    unsigned char *buf;
    pthread_t t;
    atomic_int done;
    long long rc;
    long long done_ms;
};

static void *call_main(void *arg)
{
    struct call *c = arg;
    long long rc = 0;
    struct stat st;
    struct ufuse_dirent e;
    switch (c->kind) {
    case C_PREAD:
        for (int i = 0; i < (c->count ? c->count : 1); i++) {
            rc = ufuse_pread(c->f, c->buf, c->len, c->off + (off_t)i * (off_t)c->len);
            if (rc < 0)
                break;
        }
        break;
    case C_FSYNC:
        rc = ufuse_fsync(c->f);
        break;
    case C_READDIR:
        while ((rc = ufuse_readdir(c->d, &e)) > 0)
            ;
        break;
    case C_STAT:
        rc = ufuse_stat(S, c->path, &st);
        break;
    }
    c->rc = rc;
    c->done_ms = now_ms();
    atomic_store(&c->done, 1);
    return NULL;
}

static void call_start(struct call *c)
{
    atomic_store(&c->done, 0);
    assert_int_equal(pthread_create(&c->t, NULL, call_main, c), 0);
}

/* Join @c, which must end within @ms; @return its result. */
static long long call_join(struct call *c, int ms, const char *what)
{
    hang_guard(ms / 1000 + GUARD_S, what);
    pthread_join(c->t, NULL);
    hang_guard_off();
    return c->rc;
}

struct opwait {
    const char *op;
    uint64_t want;
};

static bool op_reached(void *arg)
{
    struct opwait *w = arg;
    return op_count(S, w->op) >= w->want;
}

/* Wait (bounded) until @n more requests of @op than @base were sent. */
static void wait_sent(const char *op, uint64_t base, uint64_t n)
{
    struct opwait w = {op, base + n};
    if (!wait_until(op_reached, &w, 30000))
        fail_msg("no %" PRIu64 " %s requests sent after 30 s (%" PRIu64 " sent)", n, op,
                 op_count(S, op) - base);
}

static bool dir_reqs_reached(void *arg)
{
    return op_count(S, "READDIR") + op_count(S, "READDIRPLUS") >= *(uint64_t *)arg;
}

static uint64_t requests_sent(void)
{
    struct ufuse_conninfo ci;
    return ufuse_conninfo(S, &ci) == 0 ? ci.requests : 0;
}

static bool requests_reached(void *arg)
{
    return requests_sent() >= *(uint64_t *)arg;
}

static void wait_requests(uint64_t want)
{
    if (!wait_until(requests_reached, &want, 30000))
        fail_msg("requests sent: %" PRIu64 " after 30 s, expected %" PRIu64, requests_sent(),
                 want);
}

/* SIGKILL the server now; @return the time. */
static long long kill_server(void)
{
    long long t = now_ms();
    srv_signal(&V, SIGKILL);
    return t;
}

/* After the death: calls that must reach the server end with ENOTCONN
 * (a pread of @f at @off, a range not cached, when @f). */
static void after_death(ufuse_file_t *f, off_t off)
{
    struct stat st;
    char b[64];
    ufuse_file_t *g;
    ufuse_dir_t *d;
    ERR(ufuse_stat(S, "/nonexistent", &st), ENOTCONN);
    ERR(ufuse_open(S, "/new", O_CREAT | O_RDWR, 0644, &g), ENOTCONN);
    ERR(ufuse_mkdir(S, "/newdir", 0755), ENOTCONN);
    ERR(ufuse_opendir(S, "/", &d), ENOTCONN);
    if (f) {
        if (off >= 0)
            ERR(ufuse_pread(f, b, sizeof b, off), ENOTCONN);
        ERR(ufuse_fsync(f), ENOTCONN);
    }
}

/* ---- kill rows ------------------------------------------------------- */

struct mount_call {
    int fd;
    const char *opts;
    ufuse_t *s;
    int rc;
};

static void *mount_main(void *arg)
{
    struct mount_call *m = arg;
    m->rc = ufuse_mount_fd(&m->s, m->fd, m->opts);
    return NULL;
}

static bool init_pending(void *arg)
{
    (void)arg;
    int n = 0;
    return ioctl(V.sock, FIONREAD, &n) == 0 && n > 0;
}

/* Killed during INIT: the INIT request is in the server's socket, never
 * answered; ufuse_mount_fd fails with ENOTCONN at once. */
static void kill_init(void **state)
{
    (void)state;
    int fd = srv_spawn(&V, SRV_MEMFS, NULL, true);
    struct mount_call m = {.fd = fd, .opts = NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, mount_main, &m), 0);
    /* INIT is waiting in the server's socket. */
    assert_true(wait_until(init_pending, NULL, 30000));
    close(V.sock);
    V.sock = -1;
    long long k = kill_server();
    hang_guard(GUARD_S, "ufuse_mount_fd after the server died in INIT");
    pthread_join(t, NULL);
    hang_guard_off();
    long long ms = now_ms() - k;
    ERR(m.rc, ENOTCONN);
    assert_null(m.s);
    assert_true(ms < PROMPT_MS);
    srv_stop(&V, 1000);
    assert_true(WIFSIGNALED(V.status) && WTERMSIG(V.status) == SIGKILL);
    reliability("SIGKILL during INIT (ufuse-memfs)",
                "mount returned ENOTCONN %lld ms after the kill", ms);
}

/* Killed while readahead READs are in flight. */
static void kill_readahead(void **state)
{
    (void)state;
    S = srv_mount(&V, SRV_MEMFS, "seed_file=/big:64m", "cache=writethrough");
    ufuse_file_t *f;
    OK(ufuse_open(S, "/big", O_RDONLY, 0, &f));
    unsigned char *buf = malloc(128 * 1024), *want = malloc(128 * 1024);
    /* A sequential start: the readahead window opens. */
    for (off_t off = 0; off < 2 * MIB; off += 128 * 1024) {
        assert_int_equal(ufuse_pread(f, buf, 128 * 1024, off), 128 * 1024);
        pattern_fill(want, 128 * 1024, (uint64_t)off);
        assert_memory_equal(buf, want, 128 * 1024);
    }
    /* Let the readahead of that start finish (no READ sent for 300 ms):
     * the READs counted from here are new ones. */
    uint64_t base = op_count(S, "READ");
    for (long long still = now_ms(); now_ms() - still < 300; msleep(20)) {
        uint64_t n = op_count(S, "READ");
        if (n != base) {
            base = n;
            still = now_ms();
        }
    }
    srv_pause(&V);
    base = op_count(S, "READ");
    struct call c = {.kind = C_PREAD, .f = f, .off = 2 * MIB, .len = 128 * 1024,
                     .count = 256, .buf = buf};
    call_start(&c);
    /* The reader waits; readahead has READs of its own out (the reader
     * sends one at a time: any more are readahead's). */
    wait_sent("READ", base, 3);
    uint64_t inflight = op_count(S, "READ") - base;
    long long k = kill_server();
    long long rc = call_join(&c, PROMPT_MS, "pread after the kill");
    long long ms = c.done_ms - k;
    ERR(rc, ENOTCONN);
    assert_true(ms < PROMPT_MS);
    after_death(f, 60 * MIB);
    ERR(ufuse_close(f), ENOTCONN);
    unmount_and_reap(1000);
    free(buf);
    free(want);
    reliability("SIGKILL during readahead (ufuse-memfs)",
                "%" PRIu64 " READs in flight (one the reader's, the rest readahead's): "
                "pread ENOTCONN after %lld ms; later calls ENOTCONN; unmount completed",
                inflight, ms);
}

static void write_pattern(ufuse_file_t *f, off_t off, size_t len, unsigned gen)
{
    unsigned char *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(((uint64_t)(off + (off_t)i) * 131 + gen * 7) >> 3);
    assert_int_equal(ufuse_pwrite(f, b, len, off), (ssize_t)len);
    free(b);
}

/* Killed while fsync's write-back WRITEs are in flight: fsync reports it. */
static void kill_fsync(void **state)
{
    (void)state;
    S = srv_mount(&V, SRV_MEMFS, NULL, "cache=writeback");
    ufuse_file_t *f, *g;
    OK(ufuse_open(S, "/f", O_CREAT | O_RDWR, 0644, &f));
    OK(ufuse_open(S, "/f", O_RDWR, 0, &g));
    write_pattern(f, 0, 8 * MIB, 1);
    struct ufuse_cacheinfo ci;
    OK(ufuse_cacheinfo(S, &ci));
    assert_true(ci.dirty >= 8 * MIB / 4096 - 1);
    srv_pause(&V);
    uint64_t base = op_count(S, "WRITE");
    struct call c = {.kind = C_FSYNC, .f = f};
    call_start(&c);
    wait_sent("WRITE", base, 1);
    uint64_t inflight = op_count(S, "WRITE") - base;
    long long k = kill_server();
    long long rc = call_join(&c, PROMPT_MS, "fsync after the kill");
    long long ms = c.done_ms - k;
    ERR(rc, ENOTCONN);
    assert_true(ms < PROMPT_MS);
    /* The other handle hears of the loss too. */
    ERR(ufuse_fsync(g), ENOTCONN);
    after_death(f, -1);
    ERR(ufuse_close(g), ENOTCONN);
    ERR(ufuse_close(f), ENOTCONN);
    unmount_and_reap(1000);
    reliability("SIGKILL during write-back at fsync (ufuse-memfs, cache=writeback)",
                "8 MiB dirty, %" PRIu64 " WRITEs in flight: fsync ENOTCONN after %lld ms, "
                "second handle's fsync and both closes ENOTCONN; unmount completed",
                inflight, ms);
}

static bool writeback_done(void *arg)
{
    (void)arg;
    struct ufuse_cacheinfo ci;
    return ufuse_cacheinfo(S, &ci) == 0 && ci.writeback == 0;
}

/* Killed while the flusher's WRITEs are in flight: the next fsync and
 * close report the loss. */
static void kill_flusher(void **state)
{
    (void)state;
    S = srv_mount(&V, SRV_MEMFS, NULL, "cache=writeback,dirty_expire=1");
    ufuse_file_t *f;
    OK(ufuse_open(S, "/f", O_CREAT | O_RDWR, 0644, &f));
    srv_pause(&V);
    /* The CREATE was answered before the stop; the data is only cached. */
    uint64_t base = op_count(S, "WRITE");
    write_pattern(f, 0, 4 * MIB, 2);
    /* Nobody syncs: the flusher writes it back after dirty_expire. */
    wait_sent("WRITE", base, 1);
    uint64_t inflight = op_count(S, "WRITE") - base;
    long long k = kill_server();
    assert_true(wait_until(writeback_done, NULL, PROMPT_MS));
    long long ms = now_ms() - k;
    ERR(ufuse_fsync(f), ENOTCONN);
    after_death(f, -1);
    ERR(ufuse_close(f), ENOTCONN);
    unmount_and_reap(1000);
    reliability("SIGKILL during write-back by the flusher (ufuse-memfs, dirty_expire=1)",
                "4 MiB dirty, %" PRIu64 " flusher WRITEs in flight: write-back ended %lld ms "
                "after the kill; fsync and close ENOTCONN; unmount completed", inflight, ms);
}

/* Killed while a READDIRPLUS is in flight. */
static void kill_readdir(void **state)
{
    (void)state;
    S = srv_mount(&V, SRV_MEMFS, NULL, NULL);
    OK(ufuse_mkdir(S, "/d", 0755));
    int nent = 1500;       /* more than one 64 KiB batch */
    for (int i = 0; i < nent; i++) {
        ufuse_file_t *f;
        OK(ufuse_open(S, fmt("/d/a-rather-long-file-name-%05d", i), O_CREAT | O_WRONLY, 0644,
                      &f));
        OK(ufuse_close(f));
    }
    ufuse_dir_t *d;
    OK(ufuse_opendir(S, "/d", &d));
    struct ufuse_dirent e;
    assert_int_equal(ufuse_readdir(d, &e), 1);   /* the first batch */
    srv_pause(&V);
    /* READDIRPLUS_AUTO: the later batches are plain READDIRs. */
    uint64_t base = op_count(S, "READDIR") + op_count(S, "READDIRPLUS");
    struct call c = {.kind = C_READDIR, .d = d};
    call_start(&c);
    uint64_t want = base + 1;
    if (!wait_until(dir_reqs_reached, &want, 30000))
        fail_msg("no READDIR(PLUS) sent after 30 s");
    const char *op = op_count(S, "READDIR") ? "READDIR" : "READDIRPLUS";
    long long k = kill_server();
    long long rc = call_join(&c, PROMPT_MS, "readdir after the kill");
    long long ms = c.done_ms - k;
    ERR(rc, ENOTCONN);
    assert_true(ms < PROMPT_MS);
    after_death(NULL, -1);
    ufuse_closedir(d);
    unmount_and_reap(1000);
    reliability("SIGKILL during readdir (ufuse-memfs)",
                "%s of a %d-entry directory in flight: readdir ENOTCONN after %lld ms; "
                "unmount completed", op, nent, ms);
}

/* ---- 8 threads in flight ------------------------------------------------ */

#define NTHR 8

struct worker {
    int id;
    pthread_t t;
    atomic_ulong calls;          /* calls completed */
    atomic_int finished;
    long long first_err;         /* the first failure */
    char what[128];              /* ... in which call */
    long long err_ms;
};

#define W_DO(w, call)                                                                    \
    do {                                                                                 \
        long long r_ = (long long)(call);                                                \
        atomic_fetch_add(&(w)->calls, 1);                                                \
        if (r_ < 0) {                                                                    \
            (w)->first_err = r_;                                                         \
            (w)->err_ms = now_ms();                                                      \
            snprintf((w)->what, sizeof (w)->what, "%s", #call);                          \
            goto out;                                                                    \
        }                                                                                \
    } while (0)

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned char *buf = malloc(256 * 1024);
    char p[64], q[64];
    struct stat st;
    ufuse_file_t *f = NULL;
    ufuse_dir_t *d = NULL;
    struct ufuse_dirent e;
    memset(buf, w->id, 256 * 1024);
    for (unsigned r = 0;; r++) {
        snprintf(p, sizeof p, "/w%d-%u", w->id, r % 4);
        snprintf(q, sizeof q, "/w%d-x", w->id);
        W_DO(w, ufuse_open(S, p, O_CREAT | O_RDWR, 0644, &f));
        W_DO(w, ufuse_pwrite(f, buf, 64 * 1024 + r % 4096, (off_t)(r % 64) * 4096));
        W_DO(w, ufuse_pread(f, buf, 256 * 1024, 0));
        W_DO(w, ufuse_pread(f, buf, 4096, 8 * MIB));
        if (r % 4 == 0)
            W_DO(w, ufuse_fsync(f));
        W_DO(w, ufuse_fstat(f, &st));
        ufuse_file_t *ff = f;
        f = NULL;                /* freed whatever close returns */
        W_DO(w, ufuse_close(ff));
        W_DO(w, ufuse_stat(S, p, &st));
        W_DO(w, ufuse_rename(S, p, q, 0));
        W_DO(w, ufuse_unlink(S, q));
        W_DO(w, ufuse_opendir(S, "/", &d));
        while (ufuse_readdir(d, &e) > 0)
            ;
        ufuse_dir_t *dd = d;
        d = NULL;
        W_DO(w, ufuse_closedir(dd));
        W_DO(w, ufuse_mkdir(S, p, 0755));
        W_DO(w, ufuse_rmdir(S, p));
    }
out:
    if (f)
        ufuse_close(f);
    if (d)
        ufuse_closedir(d);
    free(buf);
    atomic_store(&w->finished, 1);
    return NULL;
}

static void kill_threads(void **state)
{
    (void)state;
    S = srv_mount(&V, SRV_MEMFS, "attr_timeout=0,entry_timeout=0",
                  "cache=writeback,dirty_expire=1");
    struct worker w[NTHR];
    for (int i = 0; i < NTHR; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        assert_int_equal(pthread_create(&w[i].t, NULL, worker_main, &w[i]), 0);
    }
    /* Let them run, then stop the server and wait until every thread is
     * stuck in a call (no call completes for 300 ms). */
    msleep(1000);
    for (int i = 0; i < NTHR; i++)
        if (atomic_load(&w[i].finished))
            fail_msg("thread %d failed before the kill: %s = %lld (%s)", i, w[i].what,
                     w[i].first_err, errstr(w[i].first_err));
    srv_pause(&V);
    unsigned long last[NTHR] = {0};
    long long still_since = now_ms();
    for (;;) {
        int moved = 0;
        for (int i = 0; i < NTHR; i++) {
            unsigned long c = atomic_load(&w[i].calls);
            moved |= c != last[i];
            last[i] = c;
        }
        if (moved)
            still_since = now_ms();
        else if (now_ms() - still_since > 300)
            break;
        msleep(20);
    }
    unsigned long calls = 0;
    for (int i = 0; i < NTHR; i++)
        calls += last[i];
    uint64_t sent = 0;
    struct ufuse_conninfo ci;
    OK(ufuse_conninfo(S, &ci));
    sent = ci.requests;
    long long k = kill_server();
    long long worst = 0;
    hang_guard(GUARD_S, "8 threads after the kill");
    for (int i = 0; i < NTHR; i++)
        pthread_join(w[i].t, NULL);
    hang_guard_off();
    for (int i = 0; i < NTHR; i++) {
        if (w[i].first_err != -ENOTCONN)
            fail_msg("thread %d: %s = %lld (%s), expected ENOTCONN", i, w[i].what,
                     w[i].first_err, errstr(w[i].first_err));
        if (w[i].err_ms - k > worst)
            worst = w[i].err_ms - k;
    }
    assert_true(worst < PROMPT_MS);
    after_death(NULL, -1);
    unmount_and_reap(1000);
    reliability("SIGKILL with 8 threads in flight (ufuse-memfs, cache=writeback)",
                "%lu calls done, %" PRIu64 " requests sent, then all 8 threads blocked: "
                "each ended with ENOTCONN within %lld ms of the kill; unmount completed",
                calls, sent, worst);
}


/* ---- stopped server ------------------------------------------------------ */

#define TIMEOUT_S 2
/* ETIMEDOUT comes at timeout (INTERRUPT) + 1 s; the bound is generous. */
#define TIMEOUT_BOUND_MS ((TIMEOUT_S + 1) * 1000 + PROMPT_MS)

static bool thread_waiting_interrupted(void *arg)
{
    struct call *c = arg;
    return ufuse_interrupt(S, c->t) >= 1;
}

static void check_pattern(ufuse_file_t *f, off_t off, size_t len)
{
    unsigned char *b = malloc(len), *w = malloc(len);
    assert_int_equal(ufuse_pread(f, b, len, off), (ssize_t)len);
    pattern_fill(w, len, (uint64_t)off);
    assert_memory_equal(b, w, len);
    free(b);
    free(w);
}

/* SIGSTOP with timeout=2: every call ends with ETIMEDOUT; SIGCONT: on. */
static void stop_timeout(void **state)
{
    (void)state;
    S = srv_mount(&V, SRV_MEMFS, "attr_timeout=0,entry_timeout=0,seed_file=/f:1m",
                  "cache=writethrough,timeout=2");
    ufuse_file_t *f;
    OK(ufuse_open(S, "/f", O_RDWR, 0, &f));
    check_pattern(f, 0, 65536);
    srv_pause(&V);
    unsigned char b[4096];
    memset(b, 0x5a, sizeof b);
    struct stat st;
    ufuse_dir_t *d;
    long long worst = 0, t;
    int calls = 0;
#define TIMED(e)                                                                         \
    do {                                                                                 \
        hang_guard(GUARD_S, #e);                                                         \
        t = now_ms();                                                                    \
        ERR(e, ETIMEDOUT);                                                               \
        t = now_ms() - t;                                                                \
        hang_guard_off();                                                                \
        assert_true(t < TIMEOUT_BOUND_MS);                                               \
        worst = t > worst ? t : worst;                                                   \
        calls++;                                                                         \
    } while (0)
    TIMED(ufuse_stat(S, "/f", &st));
    TIMED(ufuse_pread(f, b, sizeof b, 512 * 1024));
    TIMED(ufuse_pwrite(f, b, sizeof b, 0));
    TIMED(ufuse_mkdir(S, "/d", 0755));
    TIMED(ufuse_opendir(S, "/", &d));
#undef TIMED
    /* Four at once. */
    struct call c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (struct call){.kind = C_STAT, .path = "/f"};
        call_start(&c[i]);
    }
    t = now_ms();
    for (int i = 0; i < 4; i++) {
        ERR(call_join(&c[i], TIMEOUT_BOUND_MS, "stat"), ETIMEDOUT);
        assert_true(c[i].done_ms - t < TIMEOUT_BOUND_MS);
        calls++;
    }
    /* The server goes on: new calls work, with the right data. */
    srv_signal(&V, SIGCONT);
    hang_guard(GUARD_S, "calls after SIGCONT");
    check_pattern(f, 512 * 1024, 65536);
    OK(ufuse_stat(S, "/f", &st));
    assert_int_equal(st.st_size, MIB);
    OK(ufuse_mkdir(S, "/d2", 0755));
    unsigned char w[4096];
    for (int i = 0; i < 4096; i++)
        w[i] = (unsigned char)(i * 7 + 1);
    assert_int_equal(ufuse_pwrite(f, w, sizeof w, 0), (ssize_t)sizeof w);
    ufuse_file_t *g;
    OK(ufuse_open(S, "/f", O_RDONLY | O_DIRECT, 0, &g));
    assert_int_equal(ufuse_pread(g, b, sizeof b, 0), (ssize_t)sizeof b);
    assert_memory_equal(b, w, sizeof w);
    OK(ufuse_close(g));
    OK(ufuse_close(f));
    hang_guard_off();
    unmount_and_reap(5000);
    reliability("SIGSTOP with timeout=2 (ufuse-memfs)",
                "%d calls (stat, pread, pwrite, mkdir, opendir, 4 parallel stats) all "
                "ETIMEDOUT, slowest after %lld ms; after SIGCONT new calls succeed with "
                "correct data", calls, worst);
}

/* SIGSTOP without timeout=: ufuse_interrupt ends the waiting call (the
 * server honours interrupts: memfs delays every answer by 2 s but answers
 * an interrupted request EINTR at once). */
static void stop_interrupt(void **state)
{
    (void)state;
    S = srv_mount(&V, SRV_MEMFS, "delay_ms=2000,seed_file=/f:1m", "cache=writethrough");
    ufuse_file_t *f;
    OK(ufuse_open(S, "/f", O_RDONLY, 0, &f));
    unsigned char *buf = malloc(65536);
    long long worst = 0;
    for (int stopped = 1; stopped >= 0; stopped--) {
        if (stopped)
            srv_pause(&V);
        uint64_t base = requests_sent();
        struct call c = {.kind = C_PREAD, .f = f, .off = 256 * 1024 * (stopped + 1),
                         .len = 65536, .buf = buf};
        call_start(&c);
        /* a GETATTR (the size) or the READ */
        wait_requests(base + 1);
        assert_true(wait_until(thread_waiting_interrupted, &c, 30000));
        long long t = now_ms();
        if (stopped)
            srv_signal(&V, SIGCONT);
        ERR(call_join(&c, PROMPT_MS, "interrupted pread"), EINTR);
        t = c.done_ms - t;
        assert_true(t < PROMPT_MS);
        worst = t > worst ? t : worst;
    }
    /* The session goes on. */
    hang_guard(GUARD_S, "pread after the interrupts");
    check_pattern(f, 256 * 1024, 65536);
    hang_guard_off();
    OK(ufuse_close(f));
    free(buf);
    unmount_and_reap(5000);
    reliability("SIGSTOP without timeout, ufuse_interrupt (ufuse-memfs, delay_ms=2000)",
                "READ interrupted while the server was stopped and while it was running: "
                "EINTR within %lld ms; then a pread returns correct data", worst);
}

/* ---- one node that never answers ------------------------------------------ */

struct opener {
    pthread_t t;
    const char *path;
    ufuse_t *s;
    int rc;
    atomic_int done;
};

static void *opener_main(void *arg)
{
    struct opener *o = arg;
    ufuse_file_t *f = NULL;
    o->rc = ufuse_open(o->s, o->path, O_RDONLY, 0, &f);
    if (o->rc == 0)
        ufuse_close(f);
    atomic_store(&o->done, 1);
    return NULL;
}

static bool opener_interrupted(void *arg)
{
    struct opener *o = arg;
    return ufuse_interrupt(S, o->t) >= 1;
}

/* Requests on /hang (node 2: the first seeded file) are never answered
 * (memfs hang_ino=2); everything else must go on. */
static void hung_node(void **state)
{
    (void)state;
    const char *sopts = "hang_ino=2,seed_file=/hang:64k,seed_file=/ok:1m,attr_timeout=0";
    S = srv_mount(&V, SRV_MEMFS, sopts, "cache=writethrough");
    enum { N = 4 };
    struct opener o[N];
    uint64_t base = op_count(S, "OPEN");
    for (int i = 0; i < N; i++) {
        o[i] = (struct opener){.path = "/hang", .s = S};
        assert_int_equal(pthread_create(&o[i].t, NULL, opener_main, &o[i]), 0);
    }
    wait_sent("OPEN", base, N);
    /* Other nodes work meanwhile. */
    hang_guard(GUARD_S, "calls on other nodes while /hang hangs");
    ufuse_file_t *f;
    OK(ufuse_open(S, "/ok", O_RDWR, 0, &f));
    check_pattern(f, 0, MIB);
    struct stat st;
    OK(ufuse_stat(S, "/ok", &st));
    OK(ufuse_mkdir(S, "/dir", 0755));
    ufuse_dir_t *d;
    struct ufuse_dirent e;
    int n = 0, rc;
    OK(ufuse_opendir(S, "/", &d));
    while ((rc = ufuse_readdir(d, &e)) > 0)
        n++;
    assert_int_equal(rc, 0);
    assert_int_equal(n, 5);   /* . .. hang ok dir */
    OK(ufuse_closedir(d));
    OK(ufuse_close(f));
    hang_guard_off();
    for (int i = 0; i < N; i++)
        assert_false(atomic_load(&o[i].done));
    /* ufuse_interrupt ends each. */
    for (int i = 0; i < N; i++) {
        assert_true(wait_until(opener_interrupted, &o[i], 30000));
        hang_guard(GUARD_S, "interrupted open");
        pthread_join(o[i].t, NULL);
        hang_guard_off();
        ERR(o[i].rc, EINTR);
    }
    unmount_and_reap(5000);

    /* With timeout=2: ETIMEDOUT (the OPEN is interrupted at expiry, memfs
     * answers EINTR, a late reply for an abandoned ticket). */
    memset(&V, 0, sizeof V);
    S = srv_mount(&V, SRV_MEMFS, sopts, "cache=writethrough,timeout=2");
    ufuse_file_t *g;
    hang_guard(GUARD_S, "open of /hang with timeout=2");
    long long t = now_ms();
    ERR(ufuse_open(S, "/hang", O_RDONLY, 0, &g), ETIMEDOUT);
    t = now_ms() - t;
    assert_true(t < TIMEOUT_BOUND_MS);
    OK(ufuse_open(S, "/ok", O_RDONLY, 0, &f));
    check_pattern(f, 4096, 8192);
    OK(ufuse_close(f));
    hang_guard_off();
    unmount_and_reap(5000);
    reliability("requests on one node never answered (ufuse-memfs hang_ino)",
                "%d OPENs of the hung node waiting while open/read/stat/mkdir/readdir of "
                "other nodes succeed; ufuse_interrupt ends each with EINTR; with timeout=2 "
                "ETIMEDOUT after %lld ms; unmount completes", N, t);
}

/* ---- write-back errors ------------------------------------------------------ */

static unsigned char genbyte(uint64_t o, unsigned gen)
{
    return (unsigned char)(((o * 131 + gen * 7) >> 3) ^ gen);
}

static void write_gen(ufuse_file_t *f, off_t off, size_t len, unsigned gen)
{
    unsigned char *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = genbyte((uint64_t)off + i, gen);
    assert_int_equal(ufuse_pwrite(f, b, len, off), (ssize_t)len);
    free(b);
}

static void check_gen_buf(const unsigned char *b, off_t off, size_t len, unsigned gen,
                          const char *what)
{
    for (size_t i = 0; i < len; i++)
        if (b[i] != genbyte((uint64_t)off + i, gen))
            fail_msg("%s: byte at %lld is %02x, expected %02x", what, (long long)off + (long long)i,
                     b[i], genbyte((uint64_t)off + i, gen));
}

/*
 * The common part of the EIO and ENOSPC rows: 1 MiB written and fsynced
 * (acknowledged), then 8 MiB more cached dirty whose write-back fails
 * with @err.  Handles h1 (writes), h2 (fsyncs), h3 (only closes), h4
 * opened after the failure.  @return the WRITEs that failed.
 */
static uint64_t wb_error_row(int err, const char *backing_file)
{
    ufuse_file_t *h1, *h2, *h3, *h4;
    OK(ufuse_open(S, "/f", O_CREAT | O_RDWR, 0644, &h1));
    OK(ufuse_open(S, "/f", O_RDWR, 0, &h2));
    OK(ufuse_open(S, "/f", O_RDWR, 0, &h3));
    write_gen(h1, 0, MIB, 1);
    OK(ufuse_fsync(h1));
    uint64_t acked_writes = op_count(S, "WRITE");
    write_gen(h1, MIB, 8 * MIB, 2);
    hang_guard(GUARD_S, "fsync with failing write-back");
    ERR(ufuse_fsync(h1), err);
    hang_guard_off();
    uint64_t writes = op_count(S, "WRITE"), failed = op_errors(S, "WRITE");
    assert_true(failed >= 1);
    /* Once per handle: h1 has seen it. */
    OK(ufuse_fsync(h1));
    ERR(ufuse_fsync(h2), err);
    OK(ufuse_fsync(h2));
    ERR(ufuse_close(h3), err);
    OK(ufuse_open(S, "/f", O_RDWR, 0, &h4));
    OK(ufuse_fsync(h4));
    OK(ufuse_sync(S));
    /* Not retried forever: nothing more was sent. */
    assert_int_equal(op_count(S, "WRITE"), writes);
    OK(ufuse_close(h4));
    OK(ufuse_close(h2));
    OK(ufuse_close(h1));
    assert_int_equal(op_count(S, "WRITE"), writes);
    /* What the first fsync acknowledged is on the server. */
    unsigned char *b = malloc(MIB);
    if (backing_file) {
        int fd = open(backing_file, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, b, MIB, 0), MIB);
        close(fd);
    } else {
        ufuse_file_t *g;
        OK(ufuse_open(S, "/f", O_RDONLY | O_DIRECT, 0, &g));
        assert_int_equal(ufuse_pread(g, b, MIB, 0), MIB);
        OK(ufuse_close(g));
    }
    check_gen_buf(b, 0, MIB, 1, "data acknowledged by fsync");
    free(b);
    fprintf(stderr, "wb %s: %" PRIu64 " WRITEs before, %" PRIu64 " after, %" PRIu64 " failed\n",
            strerror(err), acked_writes, writes, failed);
    return failed;
}

static void wb_eio(void **state)
{
    (void)state;
    S = srv_mount(&V, SRV_MEMFS, "eio_at=5m", "cache=writeback");
    uint64_t failed = wb_error_row(EIO, NULL);
    uint64_t writes = op_count(S, "WRITE");
    unmount_and_reap(5000);
    reliability("EIO from WRITE during write-back (ufuse-memfs eio_at=5m, cache=writeback)",
                "9 MiB written, %" PRIu64 " WRITEs, %" PRIu64 " failed: EIO once at fsync of "
                "h1, once at fsync of h2, once at close of h3, not at a later open's fsync; no "
                "retry; the fsynced 1 MiB intact on the server", writes, failed);
}

static void wb_enospc(void **state)
{
    (void)state;
    srv_prepare(&V);
    if (mount("tmpfs", V.src, "tmpfs", 0, "size=4m,mode=0755") != 0) {
        fprintf(stderr, "wb_enospc: cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        skip();
    }
    S = srv_mount(&V, SRV_PTLL, NULL, "cache=writeback");
    char back[256];
    snprintf(back, sizeof back, "%s/f", V.src);
    uint64_t failed = wb_error_row(ENOSPC, back);
    uint64_t writes = op_count(S, "WRITE");
    unmount_and_reap(5000);
    reliability("ENOSPC from WRITE during write-back (passthrough_ll on a 4 MiB tmpfs, "
                "cache=writeback)",
                "9 MiB written, %" PRIu64 " WRITEs, %" PRIu64 " failed: ENOSPC once per "
                "handle at fsync or close; no retry; the fsynced 1 MiB read back from the "
                "backing directory intact", writes, failed);
}

/* ---- malformed replies through a proxy ---------------------------------- */

/*
 * The proxy sits between ufuse and the server on two socketpairs and
 * forwards every datagram, except that it corrupts the target-th reply
 * (1 = INIT's) in one of these ways.  It never touches a READ's data
 * bytes or a field's value (a wrong byte of data or a wrong nodeid is not
 * malformed: no client can tell); only the framing and the error field.
 */
enum corrupt {
    CUT_KEEP,      /* datagram cut short, header's len unchanged */
    CUT_FIX,       /* cut short, len says so (too short for its struct) */
    LONG_FIX,      /* bytes appended, len says so (over-long reply) */
    LONG_KEEP,     /* bytes appended, len unchanged (trailing garbage) */
    BAD_ERROR,     /* error field positive or out of range */
    ERR_PAYLOAD,   /* a valid error with the payload kept */
    BAD_LEN,       /* len field any wrong value */
    DUPLICATE,     /* the reply sent twice */
    NCORRUPT
};
static const char *const corrupt_names[NCORRUPT] = {
    "cut", "cut+len", "over-long", "trailing", "bad error", "error+payload", "bad len",
    "duplicate",
};

#define PROXY_BUF (8u << 20)
#define PROXY_OPS 1024

struct proxy {
    int up, down;               /* to ufuse, to the server */
    pthread_t t;
    long target;
    enum corrupt kind;
    uint64_t rng;
    long replies;               /* proxy thread only, then read after join */
    int done;                   /* the corruption was made */
    uint32_t opcode;            /* of the corrupted reply */
    struct { uint64_t unique; uint32_t opcode; } ops[PROXY_OPS];
};

struct hdr_in { uint32_t len, opcode; uint64_t unique; };
struct hdr_out { uint32_t len; int32_t error; uint64_t unique; };

static void sndbuf(int fd)
{
    int v = (int)PROXY_BUF;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
}

static void proxy_corrupt(struct proxy *p, unsigned char *b, ssize_t *n)
{
    struct hdr_out h;
    memcpy(&h, b, sizeof h);
    for (int i = 0; i < PROXY_OPS; i++)
        if (p->ops[i].unique == h.unique)
            p->opcode = p->ops[i].opcode;
    ssize_t len = *n;
    switch (p->kind) {
    case CUT_KEEP:
        *n = (ssize_t)(rnd64(&p->rng) % (uint64_t)len);
        break;
    case CUT_FIX:
        if (len > 16) {
            *n = 16 + (ssize_t)(rnd64(&p->rng) % (uint64_t)(len - 16));
            h.len = (uint32_t)*n;
        }
        break;
    case LONG_FIX:
    case LONG_KEEP: {
        size_t k = 1 + rnd64(&p->rng) % 8192;
        for (size_t i = 0; i < k; i++)
            b[len + (ssize_t)i] = (unsigned char)rnd64(&p->rng);
        *n = len + (ssize_t)k;
        if (p->kind == LONG_FIX)
            h.len += (uint32_t)k;
        break;
    }
    case BAD_ERROR: {
        static const int32_t bad[] = {1, 5, 4096, -4096, -5000, INT32_MIN, INT32_MAX};
        h.error = bad[rnd64(&p->rng) % (sizeof bad / sizeof bad[0])];
        break;
    }
    case ERR_PAYLOAD:
        if (len > 16)
            h.error = -EIO;
        else
            h.len += 8, *n = len + 8;
        break;
    case BAD_LEN:
        do
            h.len = (uint32_t)rnd64(&p->rng) % ((uint32_t)len * 2 + 64);
        while (h.len == (uint32_t)len);
        break;
    default:
        break;
    }
    if (*n >= (ssize_t)sizeof h)
        memcpy(b, &h, sizeof h);
    else
        memcpy(b, &h, (size_t)*n);
}

static void *proxy_main(void *arg)
{
    struct proxy *p = arg;
    unsigned char *b = malloc(PROXY_BUF + 16384);
    struct pollfd pf[2] = {{p->up, POLLIN, 0}, {p->down, POLLIN, 0}};
    unsigned slot = 0;
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[0].revents) {        /* a request */
            ssize_t n = recv(p->up, b, PROXY_BUF, 0);
            if (n <= 0)
                break;
            if (n >= (ssize_t)sizeof(struct hdr_in)) {
                struct hdr_in h;
                memcpy(&h, b, sizeof h);
                p->ops[slot % PROXY_OPS].unique = h.unique;
                p->ops[slot % PROXY_OPS].opcode = h.opcode;
                slot++;
            }
            if (send(p->down, b, (size_t)n, MSG_NOSIGNAL) < 0)
                break;
        }
        if (pf[1].revents) {        /* a reply (or a notification) */
            ssize_t n = recv(p->down, b, PROXY_BUF, 0);
            if (n <= 0)
                break;
            int twice = 0;
            if (++p->replies == p->target && n >= 16) {
                p->done = 1;
                if (p->kind == DUPLICATE)
                    twice = 1;
                else
                    proxy_corrupt(p, b, &n);
            }
            if (send(p->up, b, (size_t)n, MSG_NOSIGNAL) < 0)
                break;
            if (twice && send(p->up, b, (size_t)n, MSG_NOSIGNAL) < 0)
                break;
        }
    }
    /* Either side gone: so is the other (ufuse sees the server's EOF,
     * the server ufuse's). */
    shutdown(p->up, SHUT_RDWR);
    shutdown(p->down, SHUT_RDWR);
    free(b);
    return NULL;
}

/* Spawn passthrough_ll behind a proxy; @return ufuse's end. */
static int proxy_start(struct proxy *p)
{
    int down = srv_spawn(&V, SRV_PTLL, NULL, false);
    assert_true(down >= 0);
    close(V.sock);
    V.sock = -1;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    sndbuf(sv[1]);
    sndbuf(down);
    p->up = sv[1];
    p->down = down;
    assert_int_equal(pthread_create(&p->t, NULL, proxy_main, p), 0);
    return sv[0];
}

static void proxy_stop(struct proxy *p)
{
    hang_guard(GUARD_S, "proxy");
    shutdown(p->up, SHUT_RDWR);
    pthread_join(p->t, NULL);
    hang_guard_off();
    close(p->up);
    close(p->down);
}

enum outcome { O_COMPLETE, O_FAILED, O_SHORT, NOUTCOME };

#define COPY_SIZE (4 * MIB)
#define COPY_CHUNK (128 * 1024)

/* One copy of /src to /dst through @s; @return the outcome, *@err the
 * first error. */
static enum outcome copy_once(ufuse_t *s, const unsigned char *orig, int *err)
{
    ufuse_file_t *in = NULL, *out = NULL;
    unsigned char *b = malloc(COPY_CHUNK), *back = malloc(COPY_SIZE);
    enum outcome o = O_COMPLETE;
    long long rc;
    *err = 0;
    if ((rc = ufuse_open(s, "/src", O_RDONLY, 0, &in)) != 0 ||
        (rc = ufuse_open(s, "/dst", O_CREAT | O_TRUNC | O_WRONLY, 0644, &out)) != 0) {
        *err = (int)rc;
        o = O_FAILED;
        goto out;
    }
    for (off_t off = 0; off < COPY_SIZE;) {
        rc = ufuse_pread(in, b, COPY_CHUNK, off);
        if (rc <= 0) {
            *err = (int)rc;
            o = rc < 0 ? O_FAILED : O_SHORT;
            goto out;
        }
        /* Bytes read are the source's, whatever happened. */
        if (memcmp(b, orig + off, (size_t)rc) != 0) {
            long long i = 0, bad = 0;
            while (b[i] == orig[off + i])
                i++;
            for (long long j = i; j < rc; j++)
                bad += b[j] != orig[off + j];
            fail_msg("WRONG BYTES read at %lld..%lld: %lld differ, the first at %lld "
                     "(%02x, expected %02x)", (long long)off, (long long)(off + rc), bad,
                     (long long)off + i, b[i], orig[off + i]);
        }
        ssize_t w = ufuse_pwrite(out, b, (size_t)rc, off);
        if (w != rc) {
            *err = w < 0 ? (int)w : 0;
            o = w < 0 ? O_FAILED : O_SHORT;
            goto out;
        }
        off += rc;
    }
    if ((rc = ufuse_fsync(out)) != 0) {
        *err = (int)rc;
        o = O_FAILED;
    }
out:
    if (out) {
        rc = ufuse_close(out);
        if (rc && o == O_COMPLETE) {
            *err = (int)rc;
            o = O_FAILED;
        }
    }
    if (in) {
        /* The cache holds no wrong byte: the whole source again, through
         * the same handle (its cached pages). */
        ssize_t got = 0;
        for (int tries = 0; tries < 3 && got != COPY_SIZE; tries++)
            got = ufuse_pread(in, back, COPY_SIZE, 0);
        if (got > 0 && memcmp(back, orig, (size_t)got) != 0)
            fail_msg("WRONG BYTES in the source re-read through the session");
        if (got != COPY_SIZE)
            fail_msg("the source re-read after the fault: %zd (%s)", got, errstr(got));
        ufuse_close(in);
    }
    free(b);
    free(back);
    return o;
}

static void bad_replies(void **state)
{
    (void)state;
    long rounds = amount("UFUSE_FAULT_ROUNDS", 12, 600);
    uint64_t rng = seed ^ 0xbad;
    unsigned char *orig = malloc(COPY_SIZE), *dst = malloc(COPY_SIZE + 1);
    for (size_t i = 0; i < COPY_SIZE; i++)
        orig[i] = (unsigned char)rnd64(&rng);
    long injected = 0, by_outcome[NOUTCOME] = {0}, by_kind[NCORRUPT] = {0}, mount_failed = 0;
    static const char *const modes[] = {"cache=writethrough", "cache=writeback",
                                        "cache=direct"};
    for (long r = 0; r < rounds; r++) {
        memset(&V, 0, sizeof V);
        srv_prepare(&V);
        char path[256];
        snprintf(path, sizeof path, "%s/src", V.src);
        int fd = open(path, O_CREAT | O_WRONLY, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, orig, COPY_SIZE), COPY_SIZE);
        close(fd);
        struct proxy *p = calloc(1, sizeof *p);
        p->rng = rnd64(&rng);
        p->kind = (enum corrupt)(rnd64(&rng) % NCORRUPT);
        p->target = 1 + (long)(rnd64(&rng) % 90);
        const char *mode = modes[r % 3];
        char copts[128];
        snprintf(copts, sizeof copts, "%s,timeout=1", mode);
        if (getenv("UFUSE_FAULT_VERBOSE"))
            fprintf(stderr, "round %ld: %s, %s at reply %ld ...\n", r, mode,
                    corrupt_names[p->kind], p->target);
        int ufd = proxy_start(p);
        hang_guard(GUARD_S, "a copy through the corrupting proxy");
        int rc = ufuse_mount_fd(&S, ufd, copts);
        enum outcome o = O_FAILED;
        int err = rc;
        if (rc == 0) {
            o = copy_once(S, orig, &err);
            ufuse_unmount(S);
            S = NULL;
        } else {
            mount_failed++;
            assert_true(rc < 0);
        }
        hang_guard_off();
        proxy_stop(p);
        /* Never a wrong byte on the server: each is the source's, or was
         * never written (zero); all of it after a complete copy. */
        snprintf(path, sizeof path, "%s/dst", V.src);
        fd = open(path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, dst, COPY_SIZE + 1) : 0;
        if (fd >= 0)
            close(fd);
        assert_true(n >= 0 && n <= COPY_SIZE);
        if (o == O_COMPLETE && (n != COPY_SIZE || memcmp(dst, orig, COPY_SIZE) != 0))
            fail_msg("round %ld: the copy completed but the server's copy differs", r);
        for (ssize_t i = 0; i < n; i++)
            if (dst[i] != orig[i] && dst[i] != 0)
                fail_msg("round %ld: WRONG BYTE on the server at %zd", r, i);
        srv_stop(&V, 5000);
        memset(&V, 0, sizeof V);
        if (p->done) {
            injected++;
            by_kind[p->kind]++;
        }
        by_outcome[o]++;
        if (getenv("UFUSE_FAULT_VERBOSE"))
            fprintf(stderr, "round %ld: %s, %s at reply %ld (op %u)%s: %s %s\n", r, mode,
                    corrupt_names[p->kind], p->target, p->opcode, p->done ? "" : " (not reached)",
                    o == O_COMPLETE ? "complete" : o == O_SHORT ? "short" : "failed",
                    err ? strerror(-err) : "");
        free(p);
    }
    free(orig);
    free(dst);
    char kinds[512] = "";
    for (int k = 0; k < NCORRUPT; k++)
        snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s %ld",
                 k ? ", " : "", corrupt_names[k], by_kind[k]);
    reliability("short, over-long and malformed replies during a 4 MiB copy "
                "(passthrough_ll behind a corrupting proxy)",
                "%ld copies, %ld faults injected (%s): %ld completed with correct data, %ld "
                "failed cleanly (%ld of them at mount), %ld ended short; never a wrong byte",
                rounds, injected, kinds, by_outcome[O_COMPLETE], by_outcome[O_FAILED],
                mount_failed, by_outcome[O_SHORT]);
}

/* ---- memory pressure ------------------------------------------------------ */

/*
 * 8 threads, each owning 1/8 of a 256 MiB file in blocks of 12289 bytes
 * (not page-aligned: neighbouring blocks share pages), read and write
 * through a 1 MiB cache.  A block's bytes are a function of its offset and
 * the generation last written to it (0: memfs's seed pattern), so reads
 * are checked without a 256 MiB shadow.
 */
#define MP_SIZE (256 * (uint64_t)MIB)
#define MP_BLOCK 12289
#define MP_NBLOCKS (MP_SIZE / MP_BLOCK)
#define MP_THREADS 8
#define MP_PER (MP_NBLOCKS / MP_THREADS)
#define MP_MAXREAD (256 * 1024)
#define MP_BUDGET MIB
#define MP_SLACK (32 * (int64_t)MIB)

static unsigned *mp_gen;            /* per block; each thread writes only its own */
static atomic_int mp_stop;
static _Atomic uint64_t mp_pages_over, mp_pages_peak;
static _Atomic int64_t mp_rss_peak;
static int64_t mp_rss_base;

static unsigned char mp_byte(uint64_t o)
{
    unsigned g = mp_gen[o / MP_BLOCK < MP_NBLOCKS ? o / MP_BLOCK : MP_NBLOCKS - 1];
    if (o >= MP_NBLOCKS * MP_BLOCK || g == 0) {
        unsigned char c;
        pattern_fill(&c, 1, o);
        return c;
    }
    return genbyte(o, g);
}

struct mp_thread {
    int id;
    pthread_t t;
    long ops, reads, writes, fsyncs;
    uint64_t rng;
    char err[256];
};

static void *mp_main(void *arg)
{
    struct mp_thread *m = arg;
    unsigned char *b = malloc(MP_MAXREAD + 8 * MP_BLOCK);
    ufuse_file_t *f;
    int rc = ufuse_open(S, "/big", O_RDWR, 0, &f);
    if (rc) {
        snprintf(m->err, sizeof m->err, "open: %s", strerror(-rc));
        goto out;
    }
    uint64_t lo = (uint64_t)m->id * MP_PER * MP_BLOCK, hi = lo + MP_PER * MP_BLOCK;
    unsigned next_gen = ((unsigned)m->id << 24) + 1;
    for (long i = 0; i < m->ops && !atomic_load(&mp_stop); i++) {
        uint64_t r = rnd64(&m->rng) % 100;
        if (r < 47) {
            uint64_t len = 1 + rnd64(&m->rng) % MP_MAXREAD;
            uint64_t off = lo + rnd64(&m->rng) % (hi - lo);
            if (off + len > hi)
                len = hi - off;
            ssize_t n = ufuse_pread(f, b, len, (off_t)off);
            if (n != (ssize_t)len) {
                snprintf(m->err, sizeof m->err, "pread %" PRIu64 "@%" PRIu64 " = %zd", len,
                         off, n);
                break;
            }
            for (uint64_t k = 0; k < len; k++)
                if (b[k] != mp_byte(off + k)) {
                    snprintf(m->err, sizeof m->err,
                             "WRONG BYTE at %" PRIu64 ": %02x, expected %02x", off + k, b[k],
                             mp_byte(off + k));
                    goto closef;
                }
            m->reads++;
        } else if (r < 96) {
            uint64_t nb = 1 + rnd64(&m->rng) % 8;
            uint64_t first = (uint64_t)m->id * MP_PER + rnd64(&m->rng) % (MP_PER - nb);
            unsigned g = next_gen++;
            uint64_t off = first * MP_BLOCK, len = nb * MP_BLOCK;
            for (uint64_t k = 0; k < len; k++)
                b[k] = genbyte(off + k, g);
            ssize_t n = ufuse_pwrite(f, b, len, (off_t)off);
            if (n != (ssize_t)len) {
                snprintf(m->err, sizeof m->err, "pwrite %" PRIu64 "@%" PRIu64 " = %zd", len,
                         off, n);
                break;
            }
            for (uint64_t k = 0; k < nb; k++)
                mp_gen[first + k] = g;
            m->writes++;
        } else {
            rc = ufuse_fsync(f);
            if (rc) {
                snprintf(m->err, sizeof m->err, "fsync: %s", strerror(-rc));
                break;
            }
            m->fsyncs++;
        }
    }
closef:
    rc = ufuse_close(f);
    if (rc && !m->err[0])
        snprintf(m->err, sizeof m->err, "close: %s", strerror(-rc));
out:
    free(b);
    return NULL;
}

static void *mp_sampler(void *arg)
{
    (void)arg;
    while (!atomic_load(&mp_stop)) {
        struct ufuse_cacheinfo ci;
        if (ufuse_cacheinfo(S, &ci) == 0) {
            uint64_t bytes = ci.pages * ci.page_size;
            if (bytes > MP_BUDGET + MP_BUDGET / 20)
                atomic_store(&mp_pages_over, bytes);
            if (bytes > atomic_load(&mp_pages_peak))
                atomic_store(&mp_pages_peak, bytes);
        }
        int64_t g = rss_bytes() - mp_rss_base;
        if (g > atomic_load(&mp_rss_peak))
            atomic_store(&mp_rss_peak, g);
        msleep(20);
    }
    return NULL;
}

static void mem_pressure(void **state)
{
    (void)state;
    long ops = amount("UFUSE_FAULT_OPS", 200, 40000);
    S = srv_mount(&V, SRV_MEMFS, "seed_file=/big:256m", "cache=writeback,cache_size=1m");
    mp_gen = calloc(MP_NBLOCKS, sizeof *mp_gen);
    struct mp_thread m[MP_THREADS];
    atomic_store(&mp_stop, 0);
    atomic_store(&mp_pages_over, 0);
    atomic_store(&mp_pages_peak, 0);
    atomic_store(&mp_rss_peak, 0);
    mp_rss_base = rss_bytes();
    pthread_t sampler;
    assert_int_equal(pthread_create(&sampler, NULL, mp_sampler, NULL), 0);
    long long t0 = now_ms();
    for (int i = 0; i < MP_THREADS; i++) {
        m[i] = (struct mp_thread){.id = i, .ops = ops, .rng = seed * 31 + (uint64_t)i};
        assert_int_equal(pthread_create(&m[i].t, NULL, mp_main, &m[i]), 0);
    }
    hang_guard(ops / 10 + GUARD_S * 5, "8 threads under memory pressure");
    for (int i = 0; i < MP_THREADS; i++)
        pthread_join(m[i].t, NULL);
    hang_guard_off();
    long long secs = (now_ms() - t0 + 999) / 1000;
    atomic_store(&mp_stop, 1);
    pthread_join(sampler, NULL);
    long total = 0, reads = 0, writes = 0;
    for (int i = 0; i < MP_THREADS; i++) {
        if (m[i].err[0])
            fail_msg("thread %d: %s (seed %" PRIu64 ")", i, m[i].err, seed);
        total += m[i].reads + m[i].writes + m[i].fsyncs;
        reads += m[i].reads;
        writes += m[i].writes;
    }
    /* Everything, as the server holds it. */
    ufuse_file_t *f;
    OK(ufuse_open(S, "/big", O_RDONLY | O_DIRECT, 0, &f));
    unsigned char *b = malloc(MIB);
    for (uint64_t off = 0; off < MP_SIZE; off += MIB) {
        assert_int_equal(ufuse_pread(f, b, MIB, (off_t)off), MIB);
        for (uint64_t k = 0; k < MIB; k++)
            if (b[k] != mp_byte(off + k))
                fail_msg("server copy: WRONG BYTE at %" PRIu64, off + k);
    }
    free(b);
    OK(ufuse_close(f));
    struct ufuse_cacheinfo ci;
    OK(ufuse_cacheinfo(S, &ci));
    if (atomic_load(&mp_pages_over))
        fail_msg("the cache held %" PRIu64 " bytes (budget 1 MiB + 5 %%)",
                 atomic_load(&mp_pages_over));
    assert_true(ci.pages_max * ci.page_size <= MP_BUDGET + MP_BUDGET / 20);
    assert_true(ci.evictions > 0);
    int64_t rss = atomic_load(&mp_rss_peak);
#ifndef SAN_ASAN    /* RSS says little under ASan (its quarantine of freed memory) */
    assert_true(rss <= MP_BUDGET + MP_BUDGET / 20 + MP_SLACK);
#endif
    unmount_and_reap(5000);
    free(mp_gen);
    reliability("memory pressure: 1 MiB cache, 8 threads, 256 MiB file (ufuse-memfs, "
                "cache=writeback)",
                "%ld operations (%ld reads checked, %ld writes) in %lld s; the server's copy "
                "verified; pages_max %" PRIu64 " KiB of 1024, %" PRIu64 " evictions, %" PRIu64
                " write-back WRITEs, %" PRIu64 " throttled; RSS growth peak %.1f MiB (%s)",
                total, reads, writes, secs, ci.pages_max * ci.page_size / 1024, ci.evictions,
                ci.writebacks, ci.throttled, rss / (double)MIB, SANITIZER);
}

/* ---- the size changes on the server under cached data --------------------- */

static void fill_file(const char *path, off_t off, size_t len, unsigned gen)
{
    unsigned char *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = genbyte((uint64_t)off + i, gen);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, len, off), (ssize_t)len);
    close(fd);
    free(b);
}

static void size_change(void **state)
{
    (void)state;
    srv_prepare(&V);
    char back[256];
    snprintf(back, sizeof back, "%s/f", V.src);
    fill_file(back, 0, 256 * 1024, 1);
    S = srv_mount(&V, SRV_PTLL, "timeout=0", "cache=writethrough");
    ufuse_file_t *f;
    OK(ufuse_open(S, "/f", O_RDONLY, 0, &f));
    unsigned char *b = malloc(512 * 1024);
    assert_int_equal(ufuse_pread(f, b, 256 * 1024, 0), 256 * 1024);
    check_gen_buf(b, 0, 256 * 1024, 1, "first read");
    struct ufuse_cacheinfo ci;
    OK(ufuse_cacheinfo(S, &ci));
    assert_true(ci.pages >= 64);
    /* Shrink behind the cache: once the attributes are refreshed (stat;
     * the server gives them a validity of 0), no byte past the new size. */
    assert_int_equal(truncate(back, 100000), 0);
    struct stat st;
    OK(ufuse_fstat(f, &st));
    assert_int_equal(st.st_size, 100000);
    memset(b, 0xee, 512 * 1024);
    assert_int_equal(ufuse_pread(f, b, 256 * 1024, 0), 100000);
    check_gen_buf(b, 0, 100000, 1, "after the shrink");
    assert_int_equal(ufuse_pread(f, b, 4096, 150000), 0);
    /* Grow with new data past the old cached range. */
    fill_file(back, 100000, 300000, 2);
    OK(ufuse_fstat(f, &st));
    assert_int_equal(st.st_size, 400000);
    assert_int_equal(ufuse_pread(f, b, 512 * 1024, 0), 400000);
    check_gen_buf(b, 0, 100000, 1, "after the growth, old part");
    check_gen_buf(b + 100000, 100000, 300000, 2, "after the growth, new part");
    OK(ufuse_close(f));
    free(b);
    unmount_and_reap(5000);
    reliability("the size changes on the server under cached data (passthrough_ll, "
                "timeout=0)",
                "256 KiB cached, the backing file cut to 100000 bytes: 100000 bytes read, "
                "none stale; then grown to 400000 with new data: the new data read");
}

int main(void)
{
    const char *e = getenv("UFUSE_FAULT_SEED");
    seed = e && *e ? strtoull(e, NULL, 0) : (uint64_t)now_ms() ^ ((uint64_t)getpid() << 20);
    fprintf(stderr, "faults: seed %" PRIu64 " (UFUSE_FAULT_SEED replays it)\n", seed);
    signal(SIGPIPE, SIG_IGN);
    e = getenv("UFUSE_FAULT_ONLY");     /* one row (a cmocka name pattern) */
    if (e && *e)
        cmocka_set_test_filter(e);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kill_init, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_readahead, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_fsync, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_flusher, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_readdir, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(hung_node, setup, teardown),
        cmocka_unit_test_setup_teardown(wb_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(wb_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(mem_pressure, setup, teardown),
        cmocka_unit_test_setup_teardown(size_change, setup, teardown),
    };
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
