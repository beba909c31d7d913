/*
 * bio.c - the buffered backends over the page cache, and the strategy the
 * cache calls to reach the server.
 *
 * Seed counterparts (FreeBSD fuse_io.c):
 *  - io_read_biobackend  = fuse_read_biobackend: clip at EOF, page in
 *    through the cache (cache_getpages = genfs_getpages), sequential
 *    detection drives readahead (cache_readahead), a short read of a clean
 *    file means the server truncated it (attributes dropped).
 *  - io_write_biobackend = fuse_write_biobackend: write-through sends the
 *    caller's bytes at once and keeps them cached; write-back copies into
 *    pages (read-modify-write for a partial page that has file data, none
 *    for whole pages or pages at/past EOF), extends the size at once and
 *    leaves the WRITE to putpages.
 *  - io_strategy_read / io_strategy_write = fuse_io_strategy: page I/O
 *    as READ / WRITE (FUSE_WRITE_CACHE) through a handle the cache chose.
 *  - io_strategy_seek = the bmap genfs_getpages_read maps a run through:
 *    FUSE_LSEEK SEEK_HOLE / SEEK_DATA, for the cache's map of holes.
 *  - io_file_open (drop unless KEEP_CACHE) and io_range_changed are
 *    fuse_io_invalbuf's uses.
 *
 * Sequential detection: FreeBSD's seqcount idea, per open file: a read
 * that starts where the last one ended counts up (a first read at 0
 * counts), anything else resets to 0.  The readahead window starts at
 * 128 KiB and doubles per sequential read up to the readahead option
 * (capped by INIT's max_readahead and an eighth of the budget); it is
 * refilled when less than half of it is left ahead of the reader, so
 * several READs (one per max_read) stay in flight and the reader waits
 * only for pages it asked for.  A read larger than max_read also
 * hands its own pages past the first max_read to the workers, so they are read
 * in parallel (measured on memfs, 1 GiB in 1 MiB reads: 841 -> 1106
 * MiB/s; a 4 MiB window: 1471).  Random reads read their own blocks only.
 *
 * Locks: f->ra_mu (sequential state); the cache's and node table's
 * through their APIs; writers hold obj->wlock (taken by io_dispatch_write).
 */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define IO_RA_INITIAL (128u * 1024)

/* ---- the strategy (cache_pager_ops) -------------------------------------------------------- */

static struct io_target io_target_handle(struct cache *c, struct cache_obj *o,
                                         const struct cache_handle *h)
{
    struct io_mount *m = c->ctx;
    return (struct io_target){.conn = m->conn, .nodes = m->nodes, .node = o->node,
                              .fh = h->fh, .oflags = h->oflags};
}

static ssize_t io_strategy_read(struct cache *c, struct cache_obj *o,
                                const struct cache_handle *h, const struct iovec *iov,
                                int cnt, uint64_t off)
{
    struct io_target t = io_target_handle(c, o, h);
    return io_transfer_read(&t, iov, cnt, (off_t)off);
}

static void io_strategy_write_done(void *cl, ssize_t written)
{
    cache_io_done(cl, written);
}

static int io_strategy_write_start(struct cache *c, struct cache_obj *o,
                                   const struct cache_handle *h, const struct iovec *iov,
                                   int cnt, uint64_t off, struct conn_group *g,
                                   struct cache_cluster *cl)
{
    struct io_target t = io_target_handle(c, o, h);
    t.write_flags = FUSE_WRITE_CACHE;
    return io_transfer_write_start(&t, iov, cnt, (off_t)off, g, io_strategy_write_done, cl);
}

static void io_strategy_write_wait(struct cache *c, struct conn_group *g, unsigned max)
{
    struct io_mount *m = c->ctx;
    conn_group_wait(m->conn, g, max);
}

/* FUSE_LSEEK (protocol 7.24) for the cache's hole map: the answer as
 * the server gave it; the cache checks it against what it knows. */
static int io_strategy_seek(struct cache *c, struct cache_obj *o, const struct cache_handle *h,
                            uint64_t off, int whence, uint64_t *res)
{
    struct io_mount *m = c->ctx;
    if (m->conn->p.minor < 24)
        return -ENOSYS;
    struct fuse_lseek_in li = {.fh = h->fh, .offset = off, .whence = (uint32_t)whence};
    struct fuse_lseek_out lo = {0};
    struct iovec in = {&li, sizeof li}, out = {&lo, sizeof lo};
    struct conn_req r = {.opcode = FUSE_LSEEK, .nodeid = o->node->nodeid, .in = &in,
                         .incnt = 1, .out = &out, .outcnt = 1, .out_exact = 1};
    int rc = conn_call(m->conn, &r);
    if (rc == 0)
        *res = lo.offset;
    return rc;
}

static const struct cache_pager_ops io_pager_ops = {
    .read = io_strategy_read,
    .write_start = io_strategy_write_start,
    .write_wait = io_strategy_write_wait,
    .seek = io_strategy_seek,
};

/* ---- the session --------------------------------------------------------------------------- */

int io_mount_init(struct io_mount *m, const struct cache_params *p)
{
    for (int i = 0; i < IO_APPEND_STRIPES; i++)
        pthread_mutex_init(&m->append_mu[i], NULL);
    if (!m->cache_on)
        return 0;
    return cache_init(&m->cache, p, &io_pager_ops, m, m->nodes);
}

int io_mount_sync(struct io_mount *m)
{
    return m->cache_on ? cache_sync_all(&m->cache) : 0;
}

void io_mount_destroy(struct io_mount *m)
{
    for (int i = 0; i < IO_APPEND_STRIPES; i++)
        pthread_mutex_destroy(&m->append_mu[i]);
    if (m->cache_on)
        cache_destroy(&m->cache);
}

int io_open_flags(struct io_mount *m, int flags)
{
    /* O_DIRECT too: its unaligned heads and tails go through the cache
     * (io.c), and any writable handle may carry write-back WRITEs. */
    if (m->cache_on && m->writeback) {
        if ((flags & O_ACCMODE) == O_WRONLY)
            flags = (flags & ~O_ACCMODE) | O_RDWR;
        flags &= ~O_APPEND;
    }
    return flags;
}

/* ---- open files ---------------------------------------------------------------------------- */

int io_file_open(struct io_file *f)
{
    struct io_mount *m = f->m;
    pthread_mutex_init(&f->ra_mu, NULL);
    if (!m->cache_on || f->node->type != S_IFREG)
        return 0;
    f->obj = cache_obj_get(&m->cache, f->node);
    if (!f->obj)
        return -ENOMEM;
    f->buffered = !(f->fopen_flags & FOPEN_DIRECT_IO) && !(f->oflags & O_DIRECT);
    f->ch.fh = f->fh;
    f->ch.oflags = (uint32_t)io_open_flags(m, f->oflags);
    f->ch.writable = (f->ch.oflags & O_ACCMODE) != O_RDONLY;
    cache_handle_add(f->obj, &f->ch);
    if (!(f->fopen_flags & FOPEN_KEEP_CACHE)) {
        /* Linux and FreeBSD drop a file's cached data at open unless the
         * server says to keep it (dirty data is written first). */
        int rc = cache_invalidate(f->obj, 0, 0, 0);
        cache_attr_forget(f->obj);
        if (rc)
            return rc;
        /* The size belongs with the data, close-to-open, for a file
         * written through us (its times and blocks are stale).  Other
         * files keep their attributes while valid, as Linux does (its
         * fuse_open drops pages only): a read asks again once they expire
         * (io_cached_size).  A file just created has them fresh. */
        if (!(f->oflags & O_CREAT))
            node_attr_invalidate_written(f->nodes, f->node);
    }
    return 0;
}

int io_file_sync(struct io_file *f)
{
    if (!f->obj)
        return 0;
    int rc = cache_putpages(f->obj, 0, 0, 1);
    int err = cache_handle_check_error(f->obj, &f->ch);
    return err ? err : rc;
}

void io_file_close(struct io_file *f)
{
    pthread_mutex_destroy(&f->ra_mu);
    if (!f->obj)
        return;
    /* Readahead READs carry some handle's fh: let them finish before the
     * server may reuse it. */
    cache_wait_reads(f->obj);
    cache_handle_remove(f->obj, &f->ch);
    pthread_mutex_lock(&f->obj->mu);
    int writers = 0;
    for (struct cache_handle *h = f->obj->handles; h; h = h->next)
        writers += h->writable;
    pthread_mutex_unlock(&f->obj->mu);
    /* Invariant 8 of cache.c: no writer left, no dirty data.  What the
     * flush could not write was reported by it (close's return). */
    if (!writers && cache_obj_dirty(f->obj))
        cache_invalidate(f->obj, 0, 0, 1);
    cache_obj_put(f->obj);
    f->obj = NULL;
}

/* ---- size changes and data changed behind the cache ---------------------------------------- */

struct cache_obj *io_setsize_begin(struct io_mount *m, struct node *n)
{
    if (!m->cache_on || n->type != S_IFREG)
        return NULL;
    struct cache_obj *o = cache_obj_find(&m->cache, n->nodeid);
    if (!o)
        return NULL;
    if (o->node != n) {
        cache_obj_put(o);
        return NULL;
    }
    cache_wlock_begin(o);
    cache_nowrite_begin(o);
    return o;
}

void io_setsize_end(struct io_mount *m, struct cache_obj *o, int rc, int size_set,
                    uint64_t size)
{
    if (!o)
        return;
    if (rc == 0 && size_set) {
        cache_truncate(o, size);
        node_size_set(m->nodes, o->node, size);
        cache_attr_local(o, size);
    } else {
        cache_attr_forget(o);
    }
    cache_nowrite_end(o);
    cache_wlock_end(o);
    cache_obj_put(o);
}

void io_writeback_node(struct io_mount *m, struct node *n)
{
    if (!m->cache_on || !m->writeback || n->type != S_IFREG)
        return;
    struct cache_obj *o = cache_obj_find(&m->cache, n->nodeid);
    if (!o)
        return;
    /* A failure stays the file's error, reported at its next fsync/close. */
    if (o->node == n)
        (void)cache_putpages(o, 0, UINT64_MAX, 1);
    cache_obj_put(o);
}

void io_drop_unused(struct io_mount *m, struct node *n)
{
    if (!m->cache_on || n->type != S_IFREG)
        return;
    struct cache_obj *o = cache_obj_find(&m->cache, n->nodeid);
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    int open = o->handles != NULL;
    pthread_mutex_unlock(&o->mu);
    if (!open && o->node == n)
        cache_invalidate(o, 0, 0, 0);
    cache_obj_put(o);
}

int io_range_changed(struct io_mount *m, struct node *n, uint64_t off, uint64_t len, int drop)
{
    if (!m->cache_on || n->type != S_IFREG)
        return 0;
    struct cache_obj *o = cache_obj_find(&m->cache, n->nodeid);
    if (!o)
        return 0;
    int rc = drop ? cache_invalidate(o, off, len, 0) : cache_putpages(o, off, len, 1);
    if (drop)
        cache_attr_forget(o);
    cache_obj_put(o);
    return rc;
}

/* ---- the buffered backends ----------------------------------------------------------------- */

/* The handle's copy of the size, if still good for attribute generation
 * @gen: 1 and *@size, else 0.  Takes no lock (the size_seq seqlock). */
static int io_size_copy(struct io_file *f, uint64_t gen, uint64_t *size)
{
    unsigned seq = atomic_load_explicit(&f->size_seq, memory_order_acquire);
    if (seq & 1)
        return 0;
    uint64_t copy = atomic_load_explicit(&f->size_copy, memory_order_relaxed);
    uint64_t copy_gen = atomic_load_explicit(&f->size_gen, memory_order_relaxed);
    uint64_t until = atomic_load_explicit(&f->size_until, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&f->size_seq, memory_order_relaxed) != seq)
        return 0;
    if (copy_gen != gen || !until || ufuse_valid_now_ns() >= until)
        return 0;
    *size = copy;
    return 1;
}

/*
 * The file's size for a buffered transfer: the cached attributes, or a
 * GETATTR when they expired.  Attributes showing a size we did not make
 * drop the clean cached data (Linux does so unless EXPLICIT_INVAL_DATA: a
 * server that keeps the cache on open relies on it), and so, with
 * AUTO_INVAL_DATA, does an mtime we did not make.
 */
int io_cached_size(struct io_file *f, uint64_t *size)
{
    uint64_t gen = node_attr_gen(f->node), until;
    if (io_size_copy(f, gen, size))
        return 0;
    struct fuse_attr a;
    if (!node_attr_cached_gen(f->nodes, f->node, &a, &gen, &until)) {
        int rc = io_fetch_attr(f->conn, f->nodes, f->node, 1, f->fh, &a);
        if (rc)
            return rc;
        if (!node_attr_cached_gen(f->nodes, f->node, &a, &gen, &until))
            until = 0; /* valid for this call only (attr_valid 0) */
    }
    /* Whoever fetched these attributes (this read, a stat, a LOOKUP),
     * compare them with those the data was read under. */
    if (f->m->size_inval)
        cache_attr_check(f->obj, a.size, a.mtime, a.mtimensec, f->m->auto_inval);
    pthread_mutex_lock(&f->ra_mu);
    unsigned seq = atomic_load_explicit(&f->size_seq, memory_order_relaxed);
    atomic_store_explicit(&f->size_seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    /* The size is ours while dirty (node.c keeps it). */
    atomic_store_explicit(&f->size_copy, a.size, memory_order_relaxed);
    atomic_store_explicit(&f->size_gen, gen, memory_order_relaxed);
    atomic_store_explicit(&f->size_until, until, memory_order_relaxed);
    atomic_store_explicit(&f->size_seq, seq + 2, memory_order_release);
    pthread_mutex_unlock(&f->ra_mu);
    *size = a.size;
    return 0;
}

/* Copy @len bytes at byte @skip of the held pages out to iov at @at. */
static void io_copy_out(struct cache_page **pages, size_t skip, size_t len,
                        const struct iovec *iov, int cnt, size_t at)
{
    for (int i = 0; len; i++) {
        size_t from = i == 0 ? skip : 0;
        size_t take = UFUSE_MIN(CACHE_PAGE_SIZE - from, len);
        iov_copy_in(iov, cnt, at, pages[i]->data + from, take);
        at += take;
        len -= take;
    }
}

static void io_copy_in(struct cache_page **pages, size_t skip, size_t len,
                       const struct iovec *iov, int cnt, size_t at)
{
    for (int i = 0; len; i++) {
        size_t from = i == 0 ? skip : 0;
        size_t take = UFUSE_MIN(CACHE_PAGE_SIZE - from, len);
        if (pages[i])
            iov_copy_out(pages[i]->data + from, iov, cnt, at, take);
        at += take;
        len -= take;
    }
}

/* A piece of @iov as its own iovec array (for a direct fallback). */
static int io_subiov(const struct iovec *iov, int cnt, size_t at, size_t len,
                     struct iovec *out, int max)
{
    int k = 0;
    for (int i = 0; i < cnt && len && k < max; i++) {
        if (at >= iov[i].iov_len) {
            at -= iov[i].iov_len;
            continue;
        }
        size_t n = UFUSE_MIN(iov[i].iov_len - at, len);
        out[k++] = (struct iovec){(char *)iov[i].iov_base + at, n};
        len -= n;
        at = 0;
    }
    return len ? -1 : k;
}

/* Start readahead after a read of [off, end) if the stream is sequential. */
static void io_readahead(struct io_file *f, uint64_t off, uint64_t end, uint64_t fsize)
{
    uint32_t ra_max = f->m->readahead;
    uint64_t seq_next = atomic_load_explicit(&f->seq_next, memory_order_relaxed);
    int elsewhere = off != seq_next;
    if (elsewhere && !atomic_load_explicit(&f->seqcount, memory_order_relaxed)) {
        /* Random: no window to move, no lock (threads reading one file
         * at random must not serialize on it). */
        atomic_store_explicit(&f->seq_next, end, memory_order_relaxed);
        return;
    }
    pthread_mutex_lock(&f->ra_mu);
    /* Sequential: where the last read ended, or, in a running stream,
     * inside what readahead brought in: the reads between were served
     * elsewhere (other threads, or a process reading the shared cache
     * itself, runproto.h), so nobody here passed the window's half-way
     * mark, and a second window is kept ahead instead. */
    if (elsewhere && !(off > seq_next && off <= f->ra_next)) {
        atomic_store_explicit(&f->seqcount, 0, memory_order_relaxed);
        atomic_store_explicit(&f->seq_next, end, memory_order_relaxed);
        pthread_mutex_unlock(&f->ra_mu);
        return;
    }
    unsigned seqcount = UFUSE_MIN(atomic_load_explicit(&f->seqcount, memory_order_relaxed) + 1,
                                  32u);
    atomic_store_explicit(&f->seqcount, seqcount, memory_order_relaxed);
    atomic_store_explicit(&f->seq_next, end, memory_order_relaxed);
    uint64_t from = 0, len = 0;
    if (ra_max && end < fsize) {
        uint64_t window = IO_RA_INITIAL;
        for (unsigned i = 1; i < seqcount && window < ra_max; i++)
            window *= 2;
        window = UFUSE_MIN(window, (uint64_t)ra_max);
        uint64_t ahead = elsewhere ? 2 * window : window;
        if (f->ra_next < end)
            f->ra_next = end;
        if (f->ra_next - end < ahead / 2 && f->ra_next < fsize) {
            from = f->ra_next;
            len = end + ahead - from;
            f->ra_next = end + ahead;
            UFUSE_PROBE4(readahead, f->node->nodeid, from, len, window);
        }
    }
    pthread_mutex_unlock(&f->ra_mu);
    if (len)
        cache_readahead(f->obj, &f->ch, from, (size_t)len, fsize);
}

ssize_t io_read_biobackend(struct io_file *f, const struct iovec *iov, int cnt, off_t off)
{
    uint64_t fsize;
    int rc = io_cached_size(f, &fsize);
    if (rc)
        return rc;
    uint64_t pos = (uint64_t)off;
    if (pos >= fsize)
        return 0;
    size_t want = (size_t)UFUSE_MIN((uint64_t)iov_total(iov, cnt), fsize - pos);
    /* Hits first, with no lock; the locked path takes over at the first
     * page that is not there (or changed under the copy). */
    size_t done = cache_read_fast(f->obj, pos, want, iov, cnt, 0);
    int short_read = 0;
    struct cache_page *pages[CACHE_MAX_HOLD];
    /* A read larger than one READ: its pages past the first max_read go
     * to the workers now, so their READs run in parallel while this
     * thread reads the first run itself. */
    uint64_t second = (pos & ~(uint64_t)(CACHE_PAGE_SIZE - 1)) + f->conn->p.max_read;
    if (done < want && f->m->readahead && pos + want > second)
        cache_readahead(f->obj, &f->ch, second, (size_t)(pos + want - second), fsize);
    while (done < want) {
        uint64_t at = pos + done;
        uint64_t eof;
        int n = cache_getpages(f->obj, &f->ch, at, want - done, fsize, pages, &eof);
        if (n == -ENOBUFS) {
            /* The budget is all busy or dirty: read this piece directly
             * (after writing back what it overlaps). */
            size_t piece = UFUSE_MIN(want - done, (size_t)CACHE_MAX_HOLD * CACHE_PAGE_SIZE);
            struct iovec sub[64];
            int k = io_subiov(iov, cnt, done, piece, sub, 64);
            ssize_t r = k < 0 ? -ENOMEM : io_read_directbackend(f, sub, k, (off_t)at);
            if (r <= 0) {
                rc = (int)r;
                break;
            }
            done += (size_t)r;
            if ((size_t)r < piece)
                break;
            continue;
        }
        if (n <= 0) {
            rc = n;
            break;
        }
        uint64_t span_end = ((at >> CACHE_PAGE_SHIFT) + (uint64_t)n) << CACHE_PAGE_SHIFT;
        span_end = UFUSE_MIN(span_end, UFUSE_MIN(eof, pos + want));
        size_t take = span_end > at ? (size_t)(span_end - at) : 0;
        io_copy_out(pages, (size_t)(at & (CACHE_PAGE_SIZE - 1)), take, iov, cnt, done);
        cache_release(f->obj, pages, n);
        done += take;
        if (eof != UINT64_MAX) {
            /* A short READ of a clean file: the server truncated it.  The
             * page holding its EOF (zeros made up past it) was this
             * read's only and went at cache_release (PG_MADEUP). */
            node_attr_invalidate(f->nodes, f->node);
            short_read = 1;
            break;
        }
    }
    /* No readahead past an EOF just met, nor after an O_DIRECT file's
     * head or tail (what follows them is read directly). */
    if (done && !short_read && f->buffered)
        io_readahead(f, pos, pos + done, fsize);
    return done ? (ssize_t)done : rc;
}

/* Write-through: send the caller's bytes now, then keep them cached. */
static ssize_t io_write_through(struct io_file *f, const struct iovec *iov, int cnt,
                                uint64_t pos, uint64_t fsize)
{
    struct io_target t = io_target_of(f);
    ssize_t w = io_transfer_write(&t, iov, cnt, (off_t)pos);
    if (w <= 0) {
        cache_attr_forget(f->obj);
        return w;
    }
    cache_attr_local(f->obj, UFUSE_MAX(fsize, pos + (uint64_t)w));
    size_t done = 0, wrote = (size_t)w;
    struct cache_page *pages[CACHE_MAX_HOLD];
    while (done < wrote) {
        uint64_t at = pos + done;
        int n = cache_getpages_write(f->obj, &f->ch, at, wrote - done, fsize, 0, pages);
        if (n <= 0) {
            /* No room: what is cached of the rest must not go stale. */
            cache_invalidate(f->obj, at, wrote - done, 0);
            break;
        }
        uint64_t span_end = ((at >> CACHE_PAGE_SHIFT) + (uint64_t)n) << CACHE_PAGE_SHIFT;
        size_t take = (size_t)UFUSE_MIN(span_end - at, (uint64_t)(wrote - done));
        io_copy_in(pages, (size_t)(at & (CACHE_PAGE_SIZE - 1)), take, iov, cnt, done);
        cache_write_done(f->obj, pages, n, at, take, take, 0);
        done += take;
    }
    return w;
}

ssize_t io_write_biobackend(struct io_file *f, const struct iovec *iov, int cnt, off_t off)
{
    uint64_t fsize;
    int rc = io_cached_size(f, &fsize);
    if (rc)
        return rc;
    uint64_t pos = (uint64_t)off;
    if (!f->m->writeback)
        return io_write_through(f, iov, cnt, pos, fsize);
    size_t len = iov_total(iov, cnt);
    size_t done = 0;
    struct cache_page *pages[CACHE_MAX_HOLD];
    while (done < len) {
        uint64_t at = pos + done;
        int n = cache_getpages_write(f->obj, &f->ch, at, len - done, fsize, 1, pages);
        if (n == -ENOBUFS) {
            /* No page to be had: write this piece through, directly. */
            size_t piece = UFUSE_MIN(len - done, (size_t)CACHE_MAX_HOLD * CACHE_PAGE_SIZE);
            struct iovec sub[64];
            int k = io_subiov(iov, cnt, done, piece, sub, 64);
            ssize_t r = k < 0 ? -ENOMEM : io_directio_write(f, sub, k, (off_t)at);
            if (r <= 0) {
                rc = (int)r;
                break;
            }
            done += (size_t)r;
            fsize = UFUSE_MAX(fsize, at + (uint64_t)r);
            continue;
        }
        if (n <= 0) {
            rc = n;
            break;
        }
        uint64_t span_end = ((at >> CACHE_PAGE_SHIFT) + (uint64_t)n) << CACHE_PAGE_SHIFT;
        size_t take = (size_t)UFUSE_MIN(span_end - at, (uint64_t)(len - done));
        io_copy_in(pages, (size_t)(at & (CACHE_PAGE_SIZE - 1)), take, iov, cnt, done);
        /* Size, mtime and ctime are ours now (Linux write-back mode). */
        node_local_write(f->nodes, f->node, at + take);
        cache_attr_local(f->obj, UFUSE_MAX(fsize, at + take));
        cache_write_done(f->obj, pages, n, at, take, take, 1);
        done += take;
        fsize = UFUSE_MAX(fsize, at + take);
    }
    return done ? (ssize_t)done : rc;
}
