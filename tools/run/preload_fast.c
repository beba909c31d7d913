/*
 * preload_fast.c - reads and fstat of mount files answered in the
 * program's own process, from the broker's shared cache (runproto.h,
 * "Shared memory"; include/ufuse_share.h), with no round trip: the cure
 * for the broker round trip (two thread wake-ups, 30-100 us here) that
 * every call paid before.  docs/run.md has the design and the figures.
 *
 * Per mount, the first fast call maps the cache region read-only (the
 * memfd is sealed against writers: nothing here can change the cache),
 * its referenced bytes read-write (so the pages this process reads are
 * not the first evicted) and the position table read-write, asking the
 * broker for them once
 * (RUN_SHARE); a forked child inherits the mappings, an exec'd image asks
 * again.  Stat of a path walks the shared entry records from the root
 * (ufuse_share_walk): each name cached, none but a last one not followed
 * a symbolic link, the last one's attributes valid.  Whatever cannot be served here goes to the broker as before: a
 * description without a fast slot, attributes not cached or expired, a
 * page not cached, a position the broker is moving.
 *
 * Locks: map_lock guards the setup of the mount states; after it a state
 * is read-only.  Reads take no lock: the region's seq numbers validate
 * each copy, and a read at the position moves it with a compare-and-swap
 * from where it read.
 *
 * Invariants:
 *  1. Bytes are returned only from a page whose frame seq was odd and
 *     unchanged across the copy, of the key the broker gave for this
 *     description, clipped at a size from a valid attribute record of its
 *     node: never another file's bytes, never bytes past the size.
 *  2. A read at the position returns its bytes only if the word moved
 *     from the position read at to the position after, with RUN_POS_LOCK
 *     clear: the broker's position calls and other readers stay atomic
 *     with it, as Linux's f_pos_lock keeps them.
 *  3. Nothing here writes the region (it cannot: sealed) or its
 *     referenced bytes but to mark a hit, and nothing writes the position
 *     table but compare-and-swaps from an unlocked word: a read's
 *     (invariant 2) and lseek's (SEEK_SET, SEEK_CUR, and SEEK_END from a
 *     valid attribute record; the rest asks the broker).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"
#include "ufuse_share.h"

#define FAST_POS_RETRIES 4

struct fast_mount {
    _Atomic int state;          /* 0 not tried, 1 mapped, -1 not available */
    struct ufuse_share_view v;
    _Atomic uint64_t *pos;      /* the position table */
    uint64_t npos;              /* its words */
};

static struct fast_mount fast[PL_MAX_MOUNTS];
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

/* Ask @mnt's broker for fast memfd @which; the fd (size in *@size) or -1. */
static int fast_fd(int mnt, int which, size_t *size)
{
    struct pl_call c = { .q = { .op = RUN_SHARE, .a = which } };
    int64_t r = pl_call(mnt, &c);
    if (r <= 0 || c.fd < 0) {
        if (c.fd >= 0)
            syscall(SYS_close, c.fd);
        return -1;
    }
    *size = (size_t)r;
    return c.fd;
}

static void fast_map(int mnt, struct fast_mount *m)
{
    size_t size = 0, psize = 0;
    int fd = fast_fd(mnt, 0, &size);
    int pfd = fd >= 0 ? fast_fd(mnt, 1, &psize) : -1;
    size_t rsize = 0;
    int rfd = pfd >= 0 ? fast_fd(mnt, 2, &rsize) : -1;
    void *base = MAP_FAILED, *pos = MAP_FAILED, *refs = MAP_FAILED;
    if (pfd >= 0) {
        base = REAL(mmap)(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        pos = REAL(mmap)(NULL, psize, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
    }
    if (rfd >= 0)
        refs = REAL(mmap)(NULL, rsize, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
    int ok = base != MAP_FAILED && pos != MAP_FAILED &&
             ufuse_share_view_init(&m->v, base, size, NULL) == 0;
    if (ok) {
        /* Hits mark their pages only if the bytes cover every frame. */
        if (refs != MAP_FAILED && rsize >= m->v.h->nframes)
            m->v.refs = refs;
        else if (refs != MAP_FAILED)
            munmap(refs, rsize);
        m->pos = pos;
        m->npos = psize / sizeof(uint64_t);
    } else {
        if (base != MAP_FAILED)
            munmap(base, size);
        if (pos != MAP_FAILED)
            munmap(pos, psize);
    }
    if (!ok && refs != MAP_FAILED)
        munmap(refs, rsize);
    if (fd >= 0)
        syscall(SYS_close, fd);
    if (pfd >= 0)
        syscall(SYS_close, pfd);
    if (rfd >= 0)
        syscall(SYS_close, rfd);
    atomic_store_explicit(&m->state, ok ? 1 : -1, memory_order_release);
}

/* Mount @mnt's state, mapped on first use, or NULL if it has none. */
static struct fast_mount *fast_mount_at(int mnt)
{
    if (mnt < 0 || mnt >= PL_MAX_MOUNTS)
        return NULL;
    struct fast_mount *m = &fast[mnt];
    int st = atomic_load_explicit(&m->state, memory_order_acquire);
    if (st == 0) {
        pthread_mutex_lock(&map_lock);
        if (atomic_load_explicit(&m->state, memory_order_relaxed) == 0)
            fast_map(mnt, m);
        pthread_mutex_unlock(&map_lock);
        st = atomic_load_explicit(&m->state, memory_order_acquire);
    }
    return st == 1 ? m : NULL;
}

/* @f's mount state if this process may read @f itself, else NULL. */
static struct fast_mount *fast_mount(const struct pl_fd *f)
{
    if (!f->fast.pos_slot)
        return NULL;
    struct fast_mount *m = fast_mount_at(f->mnt);
    return m && f->fast.pos_slot < m->npos ? m : NULL;
}

static uint64_t coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool fast_attr(const struct fast_mount *m, const struct pl_fd *f, struct fuse_attr *a)
{
    return ufuse_share_attr_get(&m->v, f->fast.attr_slot, f->fast.nodeid, f->fast.generation,
                                coarse_now(), a);
}

/* Copy [off, off + n) clipped at the record's size into @buf, up to the
 * first page not cached: the bytes copied, with *@want the clipped length
 * (0 at EOF); -1 when the record is not valid. */
static ssize_t fast_copy(const struct fast_mount *m, const struct pl_fd *f, void *buf, size_t n,
                         uint64_t off, size_t *want)
{
    struct fuse_attr a;
    if (!fast_attr(m, f, &a))
        return -1;
    *want = off >= a.size ? 0 : a.size - off < n ? (size_t)(a.size - off) : n;
    return *want ? (ssize_t)ufuse_share_read(&m->v, f->fast.key, off, *want, buf) : 0;
}

ssize_t pl_fast_read(const struct pl_fd *f, void *buf, size_t n, off_t off)
{
    struct fast_mount *m = fast_mount(f);
    if (!m)
        return -1;
    size_t want;
    if (off >= 0) {
        /* A prefix will do (the caller asks the broker for the rest), not
         * nothing before EOF. */
        ssize_t got = fast_copy(m, f, buf, n, (uint64_t)off, &want);
        return got > 0 || (got == 0 && want == 0) ? got : -1;
    }
    _Atomic uint64_t *word = &m->pos[f->fast.pos_slot];
    for (int i = 0; i < FAST_POS_RETRIES; i++) {
        uint64_t at = atomic_load_explicit(word, memory_order_acquire);
        if (at & RUN_POS_LOCK)
            return -1;
        ssize_t got = fast_copy(m, f, buf, n, at, &want);
        if (got < 0 || (size_t)got < want)
            return -1;
        if (atomic_compare_exchange_strong(word, &at, at + (uint64_t)got))
            return got;
    }
    return -1;
}

bool pl_fast_fstat(const struct pl_fd *f, struct stat *st)
{
    struct fast_mount *m = fast_mount(f);
    struct fuse_attr a;
    if (!m || !fast_attr(m, f, &a))
        return false;
    ufuse_share_attr_stat(&a, st);
    return true;
}

int pl_fast_stat(int mnt, const char *rel, bool nofollow, struct stat *st)
{
    struct fast_mount *m = fast_mount_at(mnt);
    struct fuse_attr a;
    int r = m ? ufuse_share_walk(&m->v, rel, !nofollow, coarse_now(), &a) : 0;
    if (r == 1) {
        ufuse_share_attr_stat(&a, st);
        return 0;
    }
    return r < 0 ? r : 1;
}

off_t pl_fast_lseek(const struct pl_fd *f, off_t off, int whence)
{
    struct fast_mount *m = fast_mount(f);
    if (!m || (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END))
        return -1;
    _Atomic uint64_t *word = &m->pos[f->fast.pos_slot];
    for (int i = 0; i < FAST_POS_RETRIES; i++) {
        uint64_t at = atomic_load_explicit(word, memory_order_acquire);
        if (at & RUN_POS_LOCK)
            return -1;
        int64_t base = 0;
        if (whence == SEEK_CUR) {
            base = (int64_t)at;
        } else if (whence == SEEK_END) {
            struct fuse_attr a;
            if (!fast_attr(m, f, &a))
                return -1;
            base = (int64_t)a.size;
        }
        /* Negative or overflowing: the broker says EINVAL / EOVERFLOW. */
        if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
            return -1;
        uint64_t to = (uint64_t)(base + off);
        if (atomic_compare_exchange_strong(word, &at, to))
            return (off_t)to;
    }
    return -1;
}
