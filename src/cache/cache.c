/*
 * cache.c - the page cache (see cache.h for the interface).
 *
 * Pages.  File data lives in 4 KiB frames carved out of one arena of
 * budget bytes (mmap'd, touched on first use), so the cache can never hold
 * more than its budget: a page is had by taking a free frame or evicting a
 * clean one.  Each object (one per node with cached data or open files)
 * indexes its resident pages in a hash by page number.
 *
 * Page states (flags in cache.h):
 *
 *             alloc (owner fills)         fill done
 *    FREE ----------------------> BUSY ---------------> VALID <----------+
 *     ^                            |  read failed /        |  write       |
 *     |                            |  past the server EOF  v              |
 *     +----------------------------+                     DIRTY            |
 *     |   evict (clean, unpinned, no I/O) / invalidate     | putpages     |
 *     +<-----------------------------------------------  WRITEBACK -------+
 *                                                  done (or error: clean)
 *   A writer waits for a WRITEBACK page to come back before copying into
 *   it, so a WRITE never carries a half-written page.  EINTR / ETIMEDOUT /
 *   EAGAIN put a written-back page back to DIRTY.  The page holding a
 *   short READ's EOF fills as VALID|MADEUP (zeros made up past the EOF):
 *   its reader copies out of it, and its release frees it (invariant 2).
 *
 * Copies out of a valid page (readers, write-back) and into it (a writer,
 * who holds the file's wlock) take no lock: like the Linux page cache, a
 * read racing a write of the same bytes may see part of each, never bytes
 * of another page (pins keep the frame, or the page's seq tells).
 *
 * Hits take no lock at all (cache_read_fast), as vmcache and LeanStore
 * validate optimistic page reads: a session-wide open-addressing index
 * maps (object, page number) to a frame; readers probe it with atomic
 * loads, check the frame's identity, copy, then check that the frame's
 * seq did not move.  A page is published (seq odd) when it becomes valid
 * and retired (seq even again) before its frame leaves its object; frames
 * are never unmapped, so a reader racing an eviction copies stale bytes it
 * then throws away, never faults.  Anything else (a miss, a busy page, a
 * seq that moved, a probe longer than CACHE_LF_PROBES) takes the locked
 * path below.  The index is written under c->mu, where frames change hands
 * already, with backward-shift deletion (no tombstones): a reader racing a
 * shift may miss an entry and take the locked path, nothing worse.  4
 * threads reading hot pages of one file took the file's mutex twice per
 * read before; they now share only read-mostly cache lines.
 *
 * Eviction: CLOCK with a second chance over all frames.  A hit sets the
 * page's referenced byte with a relaxed store, only when clear (no lock,
 * no cache-line write on a hot page), a new page enters without it, so a
 * page read once by a scan is the first to go, and a page
 * hit since the hand last passed gets another round: scan resistance for
 * the price of one bit, where LRU would let one big sequential read flush
 * the hot set.  (2Q/ARC resist better but need a global list touched on
 * every hit.)  Dirty, busy, pinned and written-back pages are skipped;
 * dirty data is cleaned by the flusher and by throttled writers, then
 * evicted on a later pass.
 *
 * Readahead runs in worker threads (readahead READs, invalidations
 * asked by notifications; one worker is started with the cache, more,
 * up to CACHE_WORKERS, when a job is queued while every worker is busy,
 * so a session starts only the threads its load uses).  Write-back is
 * done by whoever runs the putpages pass (fsync, close, a throttled
 * writer, the flusher thread: dirty data older than dirty_expire, more
 * than a quarter of the budget dirty, or memory pressure), with up to
 * CACHE_WB_INFLIGHT WRITEs in flight as background requests whose ends
 * (cache_io_done) run on the thread that receives their replies.
 * Writers are throttled above half the budget dirty.
 *
 * Locks, in order: o->wlock (writers, truncate) -> o->mu (the object's
 * pages) -> c->mu (frames, objects, jobs) -> the node table's.  The clock
 * hand, holding c->mu, only trylocks an object's mu (it runs against the
 * order).  Nothing here holds a lock across a request to the server.
 *
 * Invariants (cache_obj_sane checks 1-6 and 11 of an object under o->mu):
 *  1. A frame is either free (obj NULL, on the free list) or in exactly
 *     one object's hash under its index; page->obj changes only with both
 *     c->mu and that object's mu held.
 *  2. PG_BUSY pages belong to the one thread or job filling them: they are
 *     neither VALID nor DIRTY, and nobody else removes or evicts them.
 *     PG_MADEUP pages (the page holding a short READ's EOF, zeros made up
 *     past it) belong to the reader whose READ it was: VALID, never DIRTY
 *     nor published, never evicted; every other reader and writer waits
 *     for them to go, and they go when that reader releases them, or
 *     before its getpages returns if it does not hold them (one per
 *     getpages; a writer's read-modify-write keeps it as a plain VALID
 *     page, to write into: enum cache_eof_page).
 *  3. PG_DIRTY implies PG_VALID and doff < dend <= page size; a page is on
 *     its object's dirty list exactly when dirty; o->ndirty counts them.
 *  4. o->nwriteback counts PG_WRITEBACK pages; they are never removed.
 *  5. Pinned pages (pins > 0) are never evicted or removed.  PG_WRITING
 *     pages are pinned by the writer copying into them; putpages leaves
 *     them for its next pass (the WRITE must not read a half-copied page).
 *  6. o->npages counts the object's resident pages.
 *  7. Bytes of a valid page past the file's size are zero.
 *  8. An object with dirty pages has a writable handle registered (the
 *     last close writes back first).
 *  9. An object lives while refs > 0 or it has pages.
 * 10. A page is in c's lock-free index exactly while it has an object
 *     (under c->mu); its seq is odd only while it is VALID and not BUSY,
 *     and it is retired (seq even) before obj or index change.
 * 11. Holes (below): o->ext holds at most CACHE_HOLE_EXTENTS sorted,
 *     disjoint, non-empty extents of pages, each data or hole as the
 *     server's LSEEK said while the file was clean.  Whatever drops or
 *     changes cached data of a range forgets the extents over it and bumps
 *     o->ext_gen (cache_ext_forget): invalidation (open without
 *     KEEP_CACHE, notifications, direct writes, fallocate), attributes
 *     that drop the cache, truncate (from the new EOF on), NOTIFY_STORE,
 *     and every write through the cache (at getpages_write and again at
 *     write_done).  A round's answer is taken only if ext_gen and the
 *     write-back sequence (cache_wb_seq: clean, nothing written back) are
 *     what they were when it was asked.  Eviction keeps them: they are
 *     what the zero pages would say.  The object's death frees them.
 *
 * Holes without I/O (genfs_getpages_read maps each run through bmap and
 * zero-fills holes): cache_read_run, for the sync reader and readahead
 * alike, asks cache_ext_next for the first hole of a missing run; pages
 * before it are READ, the hole's pages are zeroed, no READ sent.  What is
 * not known is learned with one round: LSEEK SEEK_HOLE at the unknown
 * page, and SEEK_DATA at the hole it names (if before EOF): a data extent
 * and a hole extent, kept in the map (whole pages only; holes shorter than
 * CACHE_HOLE_MIN pages are not kept: reading through them costs less than
 * the round).  An answer out of range (a hole before the offset asked, or
 * past the size; data at or before the hole, or at or past EOF) or an
 * error teaches nothing: those pages are READ.  A round is asked only
 *  - for a run of at least CACHE_HOLE_MIN pages (64 KiB) where the map
 *    knows nothing: a small random read never pays a round trip;
 *  - of a clean file whose attributes show fewer blocks than its size
 *    (st_blocks, as cp --sparse=auto): a dense file never asks;
 *  - while rounds help: CACHE_HOLE_FUTILE rounds in a row that found no
 *    hole to use and data ending inside the run (a file of small holes)
 *    stop the asking until the object's data is dropped; ENOSYS stops it
 *    at once (and the connection never sends LSEEK again);
 *  - by one thread of the file at a time (readahead workers would all ask
 *    about the same region); the others wait and look at the map again.
 * Measured on ufuse-memfs, a 1 GiB file holding 16 MiB in 16 extents of
 * 1 MiB read whole: 128 READs (16 MiB) and 33-46 LSEEKs instead of 8192
 * READs; docs/architecture.md (page cache) has the times.  Why these
 * bounds: on memfs an LSEEK took 20-23 us, a READ of 64 KiB 27-28 us, of
 * 4 KiB 19-23 us (direct, one at a time): a round of two LSEEKs costs what
 * READing 64-128 KiB does, so a shorter run or hole cannot win (a server
 * across a network pays more per byte: the bound is conservative there);
 * 64 extents (1.5 KiB, only for files that learned something) hold 32
 * data/hole pairs, the layout of the file above with room to spare; 4
 * futile rounds cost 8 LSEEKs once per file before it counts as dense.
 */
#include "cache/cache.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CACHE_WORKERS 8
#define CACHE_OHASH_INIT 64
#define CACHE_FLUSH_PERIOD_MS 1000
#define CACHE_FRAME_WAIT_MS 50
#define CACHE_FRAME_TRIES 4
#define CACHE_SYNC_PASSES 8
#define CACHE_WB_INFLIGHT 12      /* write-back WRITEs of one pass in flight */
#define CACHE_LF_PROBES 32        /* longest probe of a lock-free lookup */
#define CACHE_PREFAULT 512        /* frames faulted in at a time ahead of first use (2 MiB) */

enum cache_job_kind { JOB_READ, JOB_INVALIDATE };

#define CACHE_HOLE_MIN 16         /* pages: shortest run worth an LSEEK, shortest hole used */
#define CACHE_HOLE_EXTENTS 64     /* extents remembered per object */
#define CACHE_HOLE_FUTILE 4       /* futile LSEEK rounds in a row before a file is dense */

/* Pages [first, end) the server said are data (hole 0) or a hole (1). */
struct cache_extent {
    uint64_t first, end;
    int hole;
};

/* One clustered write-back WRITE: contiguous pages, PG_WRITEBACK. */
struct cache_cluster {
    int n;
    struct cache_obj *o;
    struct cache_handle *h;      /* in use (users counted), or NULL */
    uint64_t start;              /* the WRITE's first byte */
    struct cache_page **pages;
    uint16_t *doff, *dend;       /* the pages' dirty ranges */
};

struct cache_job {
    enum cache_job_kind kind;
    struct cache_obj *o;         /* referenced */
    struct cache_handle h;       /* a copy: fh and flags to read with */
    uint64_t off, len;           /* JOB_INVALIDATE */
    int n;                       /* JOB_READ: pages, busy, owned by the job */
    unsigned wb_seq;             /* cache_wb_seq when the READ was queued */
    struct cache_page **pages;
    struct cache_job *next;
};

static void cache_deadline(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void cache_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

static int cache_transient(int err)
{
    return err == -EINTR || err == -ETIMEDOUT || err == -EAGAIN || err == -ENOMEM;
}

/* ---- the object's page index (o->mu held) ----------------------------------------------- */

static unsigned cache_slot(const struct cache_obj *o, uint64_t index)
{
    return (unsigned)((index * 0x9E3779B97F4A7C15ull) >> 40) & o->hmask;
}

static struct cache_page *cache_lookup(const struct cache_obj *o, uint64_t index)
{
    for (struct cache_page *p = o->hash[cache_slot(o, index)]; p; p = p->hnext)
        if (p->index == index)
            return p;
    return NULL;
}

static void cache_index_grow(struct cache_obj *o)
{
    unsigned ncap = (o->hmask + 1) * 2;
    struct cache_page **nh = calloc(ncap, sizeof *nh);
    if (!nh)
        return; /* longer chains, still correct */
    struct cache_page **old = o->hash;
    unsigned ocap = o->hmask + 1;
    o->hash = nh;
    o->hmask = ncap - 1;
    for (unsigned i = 0; i < ocap; i++)
        for (struct cache_page *p = old[i], *next; p; p = next) {
            next = p->hnext;
            unsigned s = cache_slot(o, p->index);
            p->hnext = nh[s];
            nh[s] = p;
        }
    free(old);
}

static void cache_index_insert(struct cache_obj *o, struct cache_page *p)
{
    unsigned s = cache_slot(o, p->index);
    p->hnext = o->hash[s];
    o->hash[s] = p;
    o->npages++;
}

static void cache_index_remove(struct cache_obj *o, struct cache_page *p)
{
    struct cache_page **pp = &o->hash[cache_slot(o, p->index)];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
    o->npages--;
}

/* ---- the lock-free index (c->mu held to write) ------------------------------------------- */

static uint32_t cache_lf_slot(const struct cache *c, const struct cache_obj *o, uint64_t index)
{
    return ufuse_share_slot(o->key, index, c->lf_mask);
}

static void cache_lf_insert(struct cache *c, struct cache_page *p)
{
    uint32_t i = cache_lf_slot(c, p->obj, p->index);
    while (atomic_load_explicit(&c->lf_slots[i], memory_order_relaxed))
        i = (i + 1) & c->lf_mask;
    atomic_store_explicit(&c->lf_slots[i], (uint32_t)(p - c->pages) + 1, memory_order_release);
}

/* Remove @p (identity still set), shifting back the entries after it
 * that would otherwise be cut off from their home slot. */
static void cache_lf_remove(struct cache *c, struct cache_page *p)
{
    uint32_t frame = (uint32_t)(p - c->pages) + 1;
    uint32_t hole = cache_lf_slot(c, p->obj, p->index);
    while (atomic_load_explicit(&c->lf_slots[hole], memory_order_relaxed) != frame)
        hole = (hole + 1) & c->lf_mask;
    for (uint32_t j = hole;;) {
        j = (j + 1) & c->lf_mask;
        uint32_t e = atomic_load_explicit(&c->lf_slots[j], memory_order_relaxed);
        if (!e)
            break;
        const struct cache_page *q = &c->pages[e - 1];
        uint32_t home = cache_lf_slot(c, q->obj, q->index);
        /* q stays if its home lies cyclically in (hole, j]. */
        int stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
        if (stays)
            continue;
        atomic_store_explicit(&c->lf_slots[hole], e, memory_order_release);
        hole = j;
    }
    atomic_store_explicit(&c->lf_slots[hole], 0, memory_order_release);
}

/* Give a free frame its identity (c->mu and o->mu held). */
static void cache_page_bind(struct cache *c, struct cache_page *p, struct cache_obj *o,
                            uint64_t index)
{
    p->obj = o;
    p->index = index;
    atomic_store_explicit(&p->sf->key, o->key, memory_order_relaxed);
    atomic_store_explicit(&p->sf->index, index, memory_order_relaxed);
    cache_lf_insert(c, p);
}

/* Take a page's identity away (c->mu and its object's mu held). */
static void cache_page_unbind(struct cache *c, struct cache_page *p)
{
    uint32_t seq = atomic_load_explicit(&p->sf->seq, memory_order_relaxed);
    if (seq & 1) {
        /* Retire: a reader that saw it published and copies now fails
         * its check; the fence orders the seq before what follows. */
        atomic_store_explicit(&p->sf->seq, seq + 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
    }
    cache_lf_remove(c, p);
    atomic_store_explicit(&p->sf->key, 0, memory_order_relaxed);
    p->obj = NULL;
}

/* The page is valid and its data in place: let lock-free readers in
 * (o->mu held). */
static void cache_page_publish(struct cache_page *p)
{
    uint32_t seq = atomic_load_explicit(&p->sf->seq, memory_order_relaxed);
    if (!(seq & 1))
        atomic_store_explicit(&p->sf->seq, seq + 1, memory_order_release);
}

size_t cache_read_fast(struct cache_obj *o, uint64_t off, size_t len, const struct iovec *iov,
                       int cnt, size_t at)
{
    struct cache *c = o->c;
    size_t done = 0;
    uint64_t hits = 0;
    while (done < len) {
        uint64_t pos = off + done;
        size_t from = (size_t)(pos & (CACHE_PAGE_SIZE - 1));
        size_t take = UFUSE_MIN(CACHE_PAGE_SIZE - from, len - done);
        uint32_t seq;
        int64_t frame = ufuse_share_find(&c->view, o->key, pos >> CACHE_PAGE_SHIFT, &seq);
        if (frame < 0)
            break;
        iov_copy_in(iov, cnt, at + done, ufuse_share_page(&c->view, frame) + from, take);
        if (!ufuse_share_still(&c->view, frame, seq))
            break;
        ufuse_share_touch(&c->view, frame);
        done += take;
        hits++;
    }
    if (hits) {
        atomic_fetch_add_explicit(&c->st.hits, hits, memory_order_relaxed);
        UFUSE_PROBE3(cache_hit, o->node->nodeid, off, hits);
    }
    return done;
}

static void cache_dirty_add(struct cache_obj *o, struct cache_page *p, unsigned from,
                            unsigned to)
{
    if (p->flags & PG_DIRTY) {
        p->doff = (uint16_t)UFUSE_MIN(p->doff, from);
        p->dend = (uint16_t)UFUSE_MAX(p->dend, to);
        return;
    }
    /*
     * One range per page, the hull of what was written: the page is wholly
     * valid (read first if it was not), so the bytes between two ranges
     * are the file's current contents and writing them back is harmless,
     * as the Linux client writes whole pages.
     */
    p->flags |= PG_DIRTY;
    p->doff = (uint16_t)from;
    p->dend = (uint16_t)to;
    p->dprev = NULL;
    p->dnext = o->dirty;
    if (o->dirty)
        o->dirty->dprev = p;
    o->dirty = p;
    if (o->ndirty++ == 0 && o->nwriteback == 0)
        o->dirtied_ns = ufuse_now_ns();
    atomic_fetch_add(&o->c->ndirty, 1);
}

static void cache_dirty_remove(struct cache_obj *o, struct cache_page *p)
{
    if (p->dprev)
        p->dprev->dnext = p->dnext;
    else
        o->dirty = p->dnext;
    if (p->dnext)
        p->dnext->dprev = p->dprev;
    p->dnext = p->dprev = NULL;
    p->flags &= ~PG_DIRTY;
    o->ndirty--;
    atomic_fetch_sub(&o->c->ndirty, 1);
}

int cache_obj_sane(struct cache_obj *o)
{
    unsigned n = 0, nd = 0, nwb = 0;
    for (unsigned i = 0; i <= o->hmask; i++)
        for (struct cache_page *p = o->hash[i]; p; p = p->hnext) {
            n++;
            if (p->obj != o || cache_slot(o, p->index) != i)
                return 0;                                         /* 1 */
            if ((p->flags & PG_BUSY) && (p->flags & (PG_VALID | PG_DIRTY)))
                return 0;                                         /* 2 */
            if ((p->flags & PG_MADEUP) &&
                ((p->flags & (PG_VALID | PG_DIRTY | PG_WRITEBACK)) != PG_VALID ||
                 (atomic_load(&p->sf->seq) & 1)))
                return 0;                                         /* 2 */
            if ((p->flags & PG_WRITING) && !p->pins)
                return 0;                                         /* 5 */
            if ((atomic_load(&p->sf->seq) & 1) &&
                (p->flags & (PG_VALID | PG_BUSY)) != PG_VALID)
                return 0;                                         /* 10 */
            if (p->flags & PG_DIRTY) {
                nd++;
                if (!(p->flags & PG_VALID) || p->doff >= p->dend ||
                    p->dend > CACHE_PAGE_SIZE)
                    return 0;                                     /* 3 */
            }
            if (p->flags & PG_WRITEBACK)
                nwb++;
        }
    if (o->ext_n > (o->ext ? CACHE_HOLE_EXTENTS : 0))
        return 0;                                                 /* 11 */
    for (unsigned i = 0; i < o->ext_n; i++)
        if (o->ext[i].first >= o->ext[i].end ||
            (i > 0 && o->ext[i - 1].end > o->ext[i].first))
            return 0;                                             /* 11 */
    unsigned listed = 0;
    for (struct cache_page *p = o->dirty; p; p = p->dnext, listed++)
        if (!(p->flags & PG_DIRTY) || p->obj != o)
            return 0;                                             /* 3 */
    return n == o->npages && nd == o->ndirty && listed == nd &&   /* 3, 6 */
           nwb == o->nwriteback;                                  /* 4 */
}

/*
 * The file is clean: its size and times are the server's again (o->mu
 * held).  Not while a writer is between extending the size and marking
 * its pages dirty (it holds wlock; trylock, against the lock order, only
 * tests that): a GETATTR answered then would shrink the file under it.
 * Then the holder does it as it lets wlock go (cache_wlock_end): without
 * that, a truncate that dropped the last dirty pages (it holds wlock) left
 * the size ours for good, and every later answer's size was ignored.
 */
static void cache_clean_attrs(struct cache_obj *o)
{
    if (o->ndirty || o->nwriteback)
        return;
    if (pthread_mutex_trylock(&o->wlock) != 0) {
        o->clean_attrs_due = 1;
        return;
    }
    o->clean_attrs_due = 0;
    node_attr_local(o->c->nodes, o->node, 0);
    pthread_mutex_unlock(&o->wlock);
}

void cache_wlock_begin(struct cache_obj *o)
{
    pthread_mutex_lock(&o->wlock);
}

void cache_wlock_end(struct cache_obj *o)
{
    pthread_mutex_unlock(&o->wlock);
    pthread_mutex_lock(&o->mu);
    if (o->clean_attrs_due)
        cache_clean_attrs(o);
    pthread_mutex_unlock(&o->mu);
}

/* ---- frames: allocation, CLOCK eviction --------------------------------------------------- */

static void cache_obj_free(struct cache_obj *o);

/* Unlink @v from the object table (c->mu held; v unreferenced, empty). */
static void cache_obj_unlink(struct cache *c, struct cache_obj *v)
{
    struct cache_obj **pp = &c->ohash[v->node->nodeid & c->ohash_mask];
    while (*pp != v)
        pp = &(*pp)->hnext;
    *pp = v->hnext;
    if (v->prev)
        v->prev->next = v->next;
    else
        c->objs = v->next;
    if (v->next)
        v->next->prev = v->prev;
    c->nobjs--;
}

/* Double the object table (c->mu held).  Objects of one nodeid (a
 * retired node's still draining, then the new one's) keep their order. */
static void cache_ohash_grow(struct cache *c)
{
    unsigned ncap = (c->ohash_mask + 1) * 2;
    struct cache_obj **nh = calloc(ncap, sizeof *nh);
    if (!nh)
        return; /* longer chains, still correct */
    for (unsigned i = 0; i <= c->ohash_mask; i++) {
        struct cache_obj *rev = NULL;
        for (struct cache_obj *o = c->ohash[i], *next; o; o = next) {
            next = o->hnext;
            o->hnext = rev;
            rev = o;
        }
        for (struct cache_obj *o = rev, *next; o; o = next) {
            next = o->hnext;
            unsigned b = (unsigned)(o->node->nodeid & (ncap - 1));
            o->hnext = nh[b];
            nh[b] = o;
        }
    }
    free(c->ohash);
    c->ohash = nh;
    c->ohash_mask = ncap - 1;
}

/*
 * Evict one clean page (c->mu held; @self's mu held by the caller).  An
 * object left empty and unreferenced is unlinked and put on *@dead for
 * the caller to free after dropping the locks.
 */
static struct cache_page *cache_clock_evict(struct cache *c, struct cache_obj *self,
                                            struct cache_obj **dead)
{
    for (size_t step = 0; step < 2 * c->nframes; step++) {
        struct cache_page *p = &c->pages[c->hand];
        c->hand = (c->hand + 1) % c->nframes;
        struct cache_obj *v = p->obj;
        if (!v)
            continue;
        if (v != self && pthread_mutex_trylock(&v->mu) != 0)
            continue;
        int victim = 0;
        if (p->flags & (PG_BUSY | PG_DIRTY | PG_WRITEBACK | PG_MADEUP) || p->pins)
            ;
        else if (atomic_load_explicit(p->referenced, memory_order_relaxed))
            atomic_store_explicit(p->referenced, 0, memory_order_relaxed);
        else
            victim = 1;
        if (victim) {
            cache_index_remove(v, p);
            cache_page_unbind(c, p);
            atomic_fetch_add(&c->st.evictions, 1);
            if (v != self && v->refs == 0 && v->npages == 0) {
                cache_obj_unlink(c, v);
                v->hnext = *dead;
                *dead = v;
            }
        }
        if (v != self)
            pthread_mutex_unlock(&v->mu);
        if (victim)
            return p;
    }
    return NULL;
}

static void cache_free_dead(struct cache_obj *dead)
{
    while (dead) {
        struct cache_obj *next = dead->hnext;
        cache_obj_free(dead);
        dead = next;
    }
}

/* Kick the flusher: memory pressure or dirty data over the background mark. */
static void cache_kick_flusher(struct cache *c)
{
    c->flusher_kick = 1;
    pthread_cond_signal(&c->flusher_cv);
}

/*
 * The next frame never used (c->mu held, c->fresh < c->nframes).  Frames
 * are first used in order, so the arena is touched from its start; when
 * the frames faulted in ahead run short, the next CACHE_PREFAULT are
 * claimed in [*@from, *@from + *@n) for the caller to fault in once it
 * dropped c->mu (share_region_prefault).
 */
static struct cache_page *cache_frame_fresh(struct cache *c, size_t *from, size_t *n)
{
    size_t i = c->fresh++;
    struct cache_page *p = &c->pages[i];
    p->data = c->region->data + (i << CACHE_PAGE_SHIFT);
    p->sf = &c->region->frames[i];
    p->referenced = &c->region->refs[i];
    c->nfree--;
    if (i + CACHE_PREFAULT / 2 >= c->prefaulted && c->prefaulted < c->nframes) {
        *from = c->prefaulted;
        *n = UFUSE_MIN(CACHE_PREFAULT, c->nframes - c->prefaulted);
        c->prefaulted += *n;
    }
    return p;
}

/*
 * A page for @index in @o (o->mu held), PG_BUSY and owned by the caller,
 * or NULL when every frame is busy, dirty or pinned.
 */
static struct cache_page *cache_page_alloc(struct cache_obj *o, uint64_t index)
{
    struct cache *c = o->c;
    struct cache_obj *dead = NULL;
    size_t prefault_from = 0, prefault_n = 0;
    pthread_mutex_lock(&c->mu);
    struct cache_page *p = c->free_list;
    if (p) {
        c->free_list = p->hnext;
        c->nfree--;
    } else if (c->fresh < c->nframes) {
        p = cache_frame_fresh(c, &prefault_from, &prefault_n);
    } else {
        p = cache_clock_evict(c, o, &dead);
    }
    if (p) {
        cache_page_bind(c, p, o, index);
        p->flags = PG_BUSY;
        p->pins = 0;
        p->doff = p->dend = 0;
        atomic_store_explicit(p->referenced, 0, memory_order_relaxed);
        if (o->npages + 1 > 2 * (o->hmask + 1))
            cache_index_grow(o);
        cache_index_insert(o, p);
        size_t used = c->nframes - c->nfree;
        if (used > c->pages_max)
            c->pages_max = used;
    } else {
        cache_kick_flusher(c);
    }
    pthread_mutex_unlock(&c->mu);
    cache_free_dead(dead);
    if (prefault_n)
        share_region_prefault(c->region, prefault_from, prefault_n);
    return p;
}

/* Remove @p from @o and free its frame (o->mu held; p not pinned, no I/O). */
static void cache_page_free(struct cache_obj *o, struct cache_page *p)
{
    struct cache *c = o->c;
    if (p->flags & PG_DIRTY)
        cache_dirty_remove(o, p);
    cache_index_remove(o, p);
    pthread_mutex_lock(&c->mu);
    cache_page_unbind(c, p);
    p->flags = 0;
    p->hnext = c->free_list;
    c->free_list = p;
    c->nfree++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Wait a little for frames to be freed (no object lock held). */
static void cache_wait_frames(struct cache *c)
{
    struct timespec ts;
    cache_deadline(&ts, CACHE_FRAME_WAIT_MS);
    pthread_mutex_lock(&c->mu);
    cache_kick_flusher(c);
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    pthread_mutex_unlock(&c->mu);
}

/* ---- objects ------------------------------------------------------------------------------- */

static void cache_obj_free(struct cache_obj *o)
{
    node_put(o->c->nodes, o->node);
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->wlock);
    pthread_cond_destroy(&o->cv);
    pthread_cond_destroy(&o->pass_cv);
    free(o->hash);
    free(o->ext);
    free(o);
}

struct cache_obj *cache_obj_find(struct cache *c, uint64_t nodeid)
{
    pthread_mutex_lock(&c->mu);
    struct cache_obj *o = c->ohash[nodeid & c->ohash_mask];
    while (o && o->node->nodeid != nodeid)
        o = o->hnext;
    if (o)
        o->refs++;
    pthread_mutex_unlock(&c->mu);
    return o;
}

struct cache_obj *cache_obj_get(struct cache *c, struct node *n)
{
    struct cache_obj *o = cache_obj_find(c, n->nodeid);
    if (o && o->node == n)
        return o;
    if (o) {
        /* A retired node of the same id still has pages: they are the
         * old file's.  Drop them; the new node gets its own object. */
        cache_invalidate(o, 0, 0, 1);
        cache_obj_put(o);
    }
    struct cache_obj *no = calloc(1, sizeof *no);
    if (!no)
        return NULL;
    no->c = c;
    no->hmask = 15;
    no->hash = calloc(no->hmask + 1, sizeof *no->hash);
    if (!no->hash) {
        free(no);
        return NULL;
    }
    pthread_mutex_init(&no->mu, NULL);
    pthread_mutex_init(&no->wlock, NULL);
    cache_cond_init(&no->cv);
    cache_cond_init(&no->pass_cv);
    node_get(c->nodes, n);
    no->node = n;
    no->refs = 1;
    pthread_mutex_lock(&c->mu);
    /* Raced with another opener, or with the old object leaving? */
    struct cache_obj **head = &c->ohash[n->nodeid & c->ohash_mask];
    for (o = *head; o; o = o->hnext)
        if (o->node == n) {
            o->refs++;
            pthread_mutex_unlock(&c->mu);
            cache_obj_free(no);
            return o;
        }
    if (c->nobjs >= 2 * (c->ohash_mask + 1)) {
        cache_ohash_grow(c);
        head = &c->ohash[n->nodeid & c->ohash_mask];
    }
    c->nobjs++;
    no->key = ++c->next_key;
    /* Ahead of a retired node's object still draining: lookups by id
     * find the newest first. */
    no->hnext = *head;
    *head = no;
    no->next = c->objs;
    if (c->objs)
        c->objs->prev = no;
    c->objs = no;
    pthread_mutex_unlock(&c->mu);
    return no;
}

void cache_obj_put(struct cache_obj *o)
{
    struct cache *c = o->c;
    /* Lock order: o->mu before c->mu (npages is the object's). */
    pthread_mutex_lock(&o->mu);
    pthread_mutex_lock(&c->mu);
    int last = --o->refs == 0 && o->npages == 0;
    if (last)
        cache_obj_unlink(c, o);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&o->mu);
    if (last)
        cache_obj_free(o);
}

void cache_handle_add(struct cache_obj *o, struct cache_handle *h)
{
    pthread_mutex_lock(&o->mu);
    h->users = 0;
    h->err_seen = o->err_seq;
    h->next = o->handles;
    o->handles = h;
    pthread_mutex_unlock(&o->mu);
}

void cache_handle_remove(struct cache_obj *o, struct cache_handle *h)
{
    pthread_mutex_lock(&o->mu);
    while (h->users)
        pthread_cond_wait(&o->cv, &o->mu);
    struct cache_handle **pp = &o->handles;
    while (*pp != h)
        pp = &(*pp)->next;
    *pp = h->next;
    pthread_mutex_unlock(&o->mu);
}

int cache_handle_check_error(struct cache_obj *o, struct cache_handle *h)
{
    pthread_mutex_lock(&o->mu);
    int err = h->err_seen != o->err_seq ? o->err : 0;
    h->err_seen = o->err_seq;
    pthread_mutex_unlock(&o->mu);
    return err;
}

int cache_obj_dirty(struct cache_obj *o)
{
    pthread_mutex_lock(&o->mu);
    int d = o->ndirty || o->nwriteback;
    pthread_mutex_unlock(&o->mu);
    return d;
}

void cache_wait_reads(struct cache_obj *o)
{
    pthread_mutex_lock(&o->mu);
    while (o->reads_async)
        pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

/* ---- page-in: getpages ---------------------------------------------------------------------- */

/* Pages one READ fills at most. */
static unsigned cache_run_pages(const struct cache *c)
{
    return UFUSE_MIN(CACHE_MAX_RUN, UFUSE_MAX(1u, c->p.max_read >> CACHE_PAGE_SHIFT));
}

/* Describe @n pages as an iovec, the first from byte @skip, @len bytes in all. */
static int cache_iov(struct cache_page **pages, int n, size_t skip, size_t len,
                     struct iovec *iov)
{
    int k = 0;
    for (int i = 0; i < n && len; i++) {
        size_t from = i == 0 ? skip : 0;
        size_t take = UFUSE_MIN(CACHE_PAGE_SIZE - from, len);
        iov[k++] = (struct iovec){pages[i]->data + from, take};
        len -= take;
    }
    return k;
}

/* The write-back sequence, its top bit set if the file is dirty now
 * (o->mu held): a READ's short answer is trusted only if this is
 * unchanged and unmarked from before the READ to after it. */
static unsigned cache_wb_seq(const struct cache_obj *o)
{
    return (o->wb_seq & 0x7fffffffu) | (o->ndirty || o->nwriteback ? 0x80000000u : 0);
}

unsigned cache_wb_mark(struct cache_obj *o)
{
    pthread_mutex_lock(&o->mu);
    unsigned m = cache_wb_seq(o);
    pthread_mutex_unlock(&o->mu);
    return m;
}

int cache_wb_unsettled(struct cache_obj *o, unsigned mark)
{
    return (mark & 0x80000000u) || cache_wb_mark(o) != mark;
}

/* ---- holes: what LSEEK told of the server's file (o->mu unless said) ------------------------ */

/* The extent holding page @idx, or NULL. */
static const struct cache_extent *cache_ext_at(const struct cache_obj *o, uint64_t idx)
{
    for (unsigned i = 0; i < o->ext_n && o->ext[i].first <= idx; i++)
        if (idx < o->ext[i].end)
            return &o->ext[i];
    return NULL;
}

/* Take pages [first, end) out of the extents (a split that finds no slot
 * keeps the left part only: knowing less is always safe). */
static void cache_ext_cut(struct cache_obj *o, uint64_t first, uint64_t end)
{
    for (unsigned i = 0; i < o->ext_n;) {
        struct cache_extent *e = &o->ext[i];
        if (e->end <= first || e->first >= end) {
            i++;
            continue;
        }
        if (e->first < first && e->end > end && o->ext_n < CACHE_HOLE_EXTENTS) {
            memmove(e + 1, e, (o->ext_n - i) * sizeof *e);
            o->ext_n++;
            e[0].end = first;
            e[1].first = end;
            i += 2;
        } else if (e->first < first) {
            e->end = first;
            i++;
        } else if (e->end > end) {
            e->first = end;
            i++;
        } else {
            memmove(e, e + 1, (o->ext_n - i - 1) * sizeof *e);
            o->ext_n--;
        }
    }
}

/*
 * Invariant 11: data of pages [first, end) dropped or changed: forget what
 * was learned of them, and make the answers of rounds in flight void.  The
 * whole file (end UINT64_MAX from 0): forget everything, the count of
 * futile rounds too.
 */
static void cache_ext_forget(struct cache_obj *o, uint64_t first, uint64_t end)
{
    o->ext_gen++;
    if (first == 0 && end == UINT64_MAX) {
        free(o->ext);
        o->ext = NULL;
        o->ext_n = 0;
        o->ext_futile = 0;
        return;
    }
    if (o->ext)
        cache_ext_cut(o, first, end);
}

/* Remember pages [first, end) as data or hole; merge with neighbours of
 * the same kind; when full, forget the shortest extent (data first: it
 * costs one LSEEK to learn again, a hole many READs). */
static void cache_ext_add(struct cache_obj *o, uint64_t first, uint64_t end, int hole)
{
    if (first >= end)
        return;
    if (!o->ext && !(o->ext = calloc(CACHE_HOLE_EXTENTS, sizeof *o->ext)))
        return;
    cache_ext_cut(o, first, end);
    if (o->ext_n == CACHE_HOLE_EXTENTS) {
        unsigned v = 0;
        for (unsigned i = 1; i < o->ext_n; i++) {
            const struct cache_extent *a = &o->ext[i], *b = &o->ext[v];
            if (a->hole < b->hole || (a->hole == b->hole && a->end - a->first < b->end - b->first))
                v = i;
        }
        memmove(&o->ext[v], &o->ext[v + 1], (o->ext_n - v - 1) * sizeof *o->ext);
        o->ext_n--;
    }
    unsigned i = 0;
    while (i < o->ext_n && o->ext[i].first < first)
        i++;
    memmove(&o->ext[i + 1], &o->ext[i], (o->ext_n - i) * sizeof *o->ext);
    o->ext[i] = (struct cache_extent){first, end, hole};
    o->ext_n++;
    if (i + 1 < o->ext_n && o->ext[i + 1].hole == hole && o->ext[i + 1].first == end) {
        o->ext[i].end = o->ext[i + 1].end;
        memmove(&o->ext[i + 1], &o->ext[i + 2], (o->ext_n - i - 2) * sizeof *o->ext);
        o->ext_n--;
    }
    if (i > 0 && o->ext[i - 1].hole == hole && o->ext[i - 1].end == first) {
        o->ext[i - 1].end = o->ext[i].end;
        memmove(&o->ext[i], &o->ext[i + 1], (o->ext_n - i - 1) * sizeof *o->ext);
        o->ext_n--;
    }
}

/* What one round of LSEEKs learned (bytes, as the server answered). */
struct cache_round {
    uint64_t data_end;   /* [asked, data_end) is data (data_end == asked: a hole at asked) */
    uint64_t hole_end;   /* [data_end, hole_end) is a hole (hole_end == data_end: none known) */
};

/*
 * Ask the server about byte @pos (< @fsize, a page's start): SEEK_HOLE,
 * then SEEK_DATA at the hole it names, if it names one before @fsize.
 * Every answer is checked against what the question and @fsize allow: on
 * any doubt what it implies is not taken (the pages are READ).  Returns 0,
 * or -ENOSYS when the server has no LSEEK.  No lock held.
 */
static int cache_ext_ask(struct cache_obj *o, const struct cache_handle *h, uint64_t pos,
                         uint64_t fsize, struct cache_round *r)
{
    struct cache *c = o->c;
    uint64_t hs = 0, ds = 0;
    r->data_end = r->hole_end = pos;
    int rc = c->ops->seek(c, o, h, pos, SEEK_HOLE, &hs);
    if (rc == -ENOSYS)
        return rc;
    if (rc || hs < pos || hs > fsize)
        return 0; /* a hole before the offset asked, or past EOF: doubt */
    r->data_end = r->hole_end = hs;
    if (hs == fsize)
        return 0; /* data up to EOF */
    rc = c->ops->seek(c, o, h, hs, SEEK_DATA, &ds);
    if (rc == -ENXIO)
        ds = fsize; /* the hole runs to EOF */
    else if (rc || ds <= hs || ds >= fsize)
        return rc == -ENOSYS ? rc : 0; /* no hole at hs after all, or data past EOF */
    r->hole_end = ds;
    return 0;
}

/*
 * Where the missing run of pages [@idx, @end) is to be zero-filled next:
 * the first known hole in it, pages [*@hfirst, *@hend), or both @end if
 * none; pages before *@hfirst are READ.  Learns what is not known, when
 * worth it (see the header comment).  No lock held.
 */
static void cache_ext_next(struct cache_obj *o, const struct cache_handle *h, uint64_t idx,
                           uint64_t end, uint64_t fsize, uint64_t *hfirst, uint64_t *hend)
{
    struct cache *c = o->c;
    int asked = 0;
    *hfirst = *hend = end;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        const struct cache_extent *e = NULL;
        uint64_t q = idx;
        while (q < end && (e = cache_ext_at(o, q)) && !e->hole)
            q = e->end;
        if (q < end && e && e->hole) {
            *hfirst = q;
            *hend = UFUSE_MIN(e->end, end);
            break;
        }
        unsigned seq = cache_wb_seq(o);
        /* Worth a round trip?  A long run of a clean file that reports
         * fewer blocks than its size, while rounds keep finding holes. */
        if (asked || q >= end || !c->ops->seek || end - q < CACHE_HOLE_MIN ||
            o->ext_futile >= CACHE_HOLE_FUTILE || (seq & 0x80000000u))
            break;
        if (o->ext_asking) {
            /* One round at a time per file: the readahead workers would
             * all ask about the same region.  Then look again. */
            pthread_cond_wait(&o->cv, &o->mu);
            continue;
        }
        struct fuse_attr a;
        node_attr_get(c->nodes, o->node, &a);
        if (a.blocks >= (fsize + 511) / 512)
            break; /* the server says no byte is missing */
        unsigned gen = o->ext_gen;
        o->ext_asking = 1;
        pthread_mutex_unlock(&o->mu);
        struct cache_round r;
        int rc = cache_ext_ask(o, h, q << CACHE_PAGE_SHIFT, fsize, &r);
        pthread_mutex_lock(&o->mu);
        o->ext_asking = 0;
        pthread_cond_broadcast(&o->cv);
        if (rc == -ENOSYS) {
            o->ext_futile = CACHE_HOLE_FUTILE;
            break;
        }
        if (gen != o->ext_gen || seq != cache_wb_seq(o))
            break; /* data changed or dropped meanwhile: the answer may be stale */
        /* Whole pages only: a hole's partial pages hold data, and the page
         * holding EOF is all hole past the data (invariant 7). */
        uint64_t dend = (r.data_end + CACHE_PAGE_SIZE - 1) >> CACHE_PAGE_SHIFT;
        uint64_t hlast = r.hole_end == fsize
                             ? (fsize + CACHE_PAGE_SIZE - 1) >> CACHE_PAGE_SHIFT
                             : r.hole_end >> CACHE_PAGE_SHIFT;
        int usable = hlast >= dend + CACHE_HOLE_MIN;
        cache_ext_add(o, q, dend, 0);
        if (usable)
            cache_ext_add(o, dend, hlast, 1);
        /* Futile: no hole to use, and the data seen ends inside this run
         * (a file of small holes: each run would ask again). */
        if (usable || dend >= end)
            o->ext_futile = 0;
        else
            o->ext_futile++;
        asked = 1; /* what it learned is in the map now (or lost: READ) */
    }
    pthread_mutex_unlock(&o->mu);
}

/*
 * Read @n busy pages (contiguous, owned by the caller) through @h, no lock
 * held, nothing past @fsize; pages in a known hole are zero-filled instead
 * (genfs_getpages_read's bmap).  Returns the bytes made valid from the
 * first (read or zero-filled) or -errno; the bytes of the pages not read
 * are zeroed.
 */
static ssize_t cache_read_run(struct cache_obj *o, const struct cache_handle *h,
                              struct cache_page **pages, int n, uint64_t fsize)
{
    struct cache *c = o->c;
    uint64_t first = pages[0]->index, stop = first + (uint64_t)n;
    uint64_t start = first << CACHE_PAGE_SHIFT;
    uint64_t end = UFUSE_MIN(stop << CACHE_PAGE_SHIFT, fsize);
    size_t want = end > start ? (size_t)(end - start) : 0;
    struct iovec iov[CACHE_MAX_RUN];
    size_t got = 0;
    ssize_t rc = 0;
    uint64_t hfirst = first, hend = first;
    /* One READ per max_read bytes (the caller's runs are bounded already)
     * between the holes. */
    while (got < want) {
        uint64_t idx = first + (got >> CACHE_PAGE_SHIFT);
        if (idx >= hend)
            cache_ext_next(o, h, idx, stop, fsize, &hfirst, &hend);
        if (idx >= hfirst) {
            size_t z = UFUSE_MIN(want - got, (size_t)(hend - idx) << CACHE_PAGE_SHIFT);
            for (uint64_t i = idx; i < hend; i++)
                memset(pages[i - first]->data, 0, CACHE_PAGE_SIZE);
            got += z;
            continue;
        }
        size_t chunk = UFUSE_MIN(want - got, (size_t)c->p.max_read);
        chunk = UFUSE_MIN(chunk, (size_t)(hfirst - idx) << CACHE_PAGE_SHIFT);
        int k = (int)(idx - first);
        int cnt = cache_iov(pages + k, n - k, 0, chunk, iov);
        rc = c->ops->read(c, o, h, iov, cnt, start + got);
        if (rc < 0)
            break;
        got += (size_t)rc;
        if ((size_t)rc < chunk)
            break;
        rc = 0;
    }
    for (int i = 0; i < n; i++) {
        size_t ps = (size_t)i << CACHE_PAGE_SHIFT;
        if (got < ps + CACHE_PAGE_SIZE) {
            size_t from = got > ps ? got - ps : 0;
            memset(pages[i]->data + from, 0, CACHE_PAGE_SIZE - from);
        }
    }
    return rc < 0 && got == 0 ? rc : (ssize_t)got;
}

/* What becomes of the page holding a short READ's EOF (zeros made up past
 * the EOF, not the file's bytes if the file turns out longer: a cut reply,
 * a file growing on the server). */
enum cache_eof_page {
    EOF_PAGE_DROP,    /* it goes (readahead: nobody copies out of it) */
    EOF_PAGE_READER,  /* PG_MADEUP: its reader's only (invariant 2) */
    EOF_PAGE_WRITER,  /* a plain unpublished page its writer writes into
                         (read-modify-write: past the EOF a write sees zeros) */
};

/*
 * Settle @n busy pages after a read of @got bytes (o->mu held): on error
 * they go; on a short read of a clean file, pages wholly past the server's
 * EOF go (it truncated the file), and the page holding that EOF as
 * @eof_page says.  A dirty file's holes are zeros.  Returns the server's
 * EOF if it ended early, else UINT64_MAX.
 */
static uint64_t cache_read_done(struct cache_obj *o, struct cache_page **pages, int n,
                                ssize_t got, uint64_t fsize, unsigned wb_seq,
                                enum cache_eof_page eof_page)
{
    uint64_t start = pages[0]->index << CACHE_PAGE_SHIFT;
    uint64_t end = UFUSE_MIN((pages[n - 1]->index + 1) << CACHE_PAGE_SHIFT, fsize);
    uint64_t eof = UINT64_MAX;
    /* Dirty data when the READ left or now, or written back since (see
     * cache_wb_seq): the server's EOF may be behind ours, and what it
     * lacks is a hole. */
    int local_hole = (wb_seq & 0x80000000u) || cache_wb_seq(o) != wb_seq;
    if (got >= 0 && start + (uint64_t)got < end && !local_hole)
        eof = start + (uint64_t)got;
    uint64_t keep_below = eof;
    if (eof_page == EOF_PAGE_DROP && eof != UINT64_MAX)
        keep_below = eof & ~(uint64_t)(CACHE_PAGE_SIZE - 1);
    for (int i = 0; i < n; i++) {
        struct cache_page *p = pages[i];
        p->flags &= ~PG_BUSY;
        if (got < 0 || (p->index << CACHE_PAGE_SHIFT) >= keep_below) {
            cache_page_free(o, p);
            continue;
        }
        p->flags |= PG_VALID;
        /* The page holding a short READ's EOF is never published: it
         * holds zeros we made up. */
        if (((p->index + 1) << CACHE_PAGE_SHIFT) <= eof)
            cache_page_publish(p);
        else if (eof_page == EOF_PAGE_READER)
            p->flags |= PG_MADEUP;
    }
    pthread_cond_broadcast(&o->cv);
    return eof;
}

/* Collect the busy pages this caller owns in @own into runs and read them
 * (o->mu held on entry and exit, dropped during I/O). */
static int cache_getpages_read(struct cache_obj *o, const struct cache_handle *h,
                               struct cache_page **own, int nown, uint64_t fsize,
                               uint64_t *eof, enum cache_eof_page eof_page)
{
    struct cache *c = o->c;
    int rc = 0;
    unsigned max_pages = cache_run_pages(c);
    for (int i = 0; i < nown;) {
        int k = 1;
        while (i + k < nown && own[i + k]->index == own[i + k - 1]->index + 1 &&
               (unsigned)k < max_pages)
            k++;
        unsigned seq = cache_wb_seq(o);
        pthread_mutex_unlock(&o->mu);
        ssize_t got = rc ? rc : cache_read_run(o, h, own + i, k, fsize);
        pthread_mutex_lock(&o->mu);
        if (got < 0)
            rc = (int)got;
        /* Only the first short run keeps the page holding its EOF (one
         * PG_MADEUP page per getpages: the one cache_madeup_drop knows). */
        uint64_t e = cache_read_done(o, own + i, k, got, fsize, seq,
                                     *eof == UINT64_MAX ? eof_page : EOF_PAGE_DROP);
        if (e < *eof)
            *eof = e;
        i += k;
    }
    assert(cache_obj_sane(o));
    return rc;
}

/* The page a short READ ending at @eof made up zeros in (PG_MADEUP), or
 * UINT64_MAX when none: no short READ, or one ending at a page's end. */
static uint64_t cache_madeup_index(uint64_t eof)
{
    return eof == UINT64_MAX || !(eof & (CACHE_PAGE_SIZE - 1)) ? UINT64_MAX
                                                             : eof >> CACHE_PAGE_SHIFT;
}

/* A getpages whose READ ended at @eof leaves (o->mu held): the page it
 * made up zeros in goes now unless it holds it (then at its release). */
static void cache_madeup_drop(struct cache_obj *o, uint64_t eof)
{
    uint64_t idx = cache_madeup_index(eof);
    struct cache_page *p = idx == UINT64_MAX ? NULL : cache_lookup(o, idx);
    if (p && (p->flags & PG_MADEUP) && !p->pins) {
        cache_page_free(o, p);
        pthread_cond_broadcast(&o->cv);
    }
}

/* Wait until no page of [@first, @first + @n) has a flag of @mask
 * (o->mu held), but for page @mine (the caller's PG_MADEUP page, or
 * UINT64_MAX).  Every wait drops the lock, and a page seen idle before
 * it may have been evicted and busied again since: scan again from the
 * start. */
static void cache_wait_unbusy(struct cache_obj *o, uint64_t first, int n, uint32_t mask,
                              uint64_t mine)
{
    for (int i = 0; i < n; i++) {
        struct cache_page *p = cache_lookup(o, first + (uint64_t)i);
        if (p && (p->flags & mask) && p->index != mine) {
            pthread_cond_wait(&o->cv, &o->mu);
            i = -1;
        }
    }
}

int cache_getpages(struct cache_obj *o, const struct cache_handle *h, uint64_t off,
                   size_t len, uint64_t fsize, struct cache_page **pages, uint64_t *eof)
{
    struct cache *c = o->c;
    uint64_t first = off >> CACHE_PAGE_SHIFT;
    uint64_t last = (off + len - 1) >> CACHE_PAGE_SHIFT;
    int n = (int)UFUSE_MIN(last - first + 1, (uint64_t)CACHE_MAX_HOLD);
    uint64_t eof_page = fsize ? (fsize - 1) >> CACHE_PAGE_SHIFT : 0;
    uint64_t bpages = c->p.block_size >> CACHE_PAGE_SHIFT;
    struct cache_page *own[CACHE_MAX_HOLD * 2];
    int tries = 0, rc = 0;
    uint64_t missed = 0;
    *eof = UINT64_MAX;
    pthread_mutex_lock(&o->mu);
again:
    cache_wait_unbusy(o, first, n, PG_BUSY | PG_MADEUP, cache_madeup_index(*eof));
    int missing = -1;
    for (int i = 0; i < n && missing < 0; i++)
        if (!cache_lookup(o, first + (uint64_t)i))
            missing = i;
    if (missing >= 0) {
        /* genfs_getpages: grow to whole blocks, busy the missing pages of
         * them (and no page past EOF), read those. */
        uint64_t gfirst = (first + (uint64_t)missing) / bpages * bpages;
        uint64_t glast = ((first + (uint64_t)n - 1) / bpages + 1) * bpages - 1;
        glast = UFUSE_MIN(glast, eof_page);
        if (glast - gfirst + 1 > (uint64_t)CACHE_MAX_HOLD * 2) {
            /* A block larger than we hold at once: start at the miss. */
            gfirst = first + (uint64_t)missing;
            glast = UFUSE_MIN(glast, gfirst + CACHE_MAX_HOLD * 2 - 1);
        }
        int nown = 0, starved = 0;
        for (uint64_t idx = gfirst; idx <= glast; idx++) {
            if (cache_lookup(o, idx))
                continue;
            struct cache_page *p = cache_page_alloc(o, idx);
            if (!p) {
                /* Read what we got; the pages we asked for that found no
                 * frame are tried again after it. */
                starved = idx < first + (uint64_t)n;
                break;
            }
            own[nown++] = p;
            if (idx >= first && idx < first + (uint64_t)n)
                missed++;
        }
        rc = nown ? cache_getpages_read(o, h, own, nown, fsize, eof, EOF_PAGE_READER) : 0;
        if (rc)
            goto out;
        if (*eof != UINT64_MAX) {
            uint64_t lim = (*eof + CACHE_PAGE_SIZE - 1) >> CACHE_PAGE_SHIFT;
            n = lim > first ? (int)UFUSE_MIN((uint64_t)n, lim - first) : 0;
            if (n == 0)
                goto out;
        }
        if (starved) {
            /* Everything is busy, dirty or pinned: give the flusher and
             * the other readers a moment, then let the caller go direct. */
            if (++tries > CACHE_FRAME_TRIES) {
                rc = -ENOBUFS;
                goto out;
            }
            pthread_mutex_unlock(&o->mu);
            cache_wait_frames(c);
            pthread_mutex_lock(&o->mu);
        }
        goto again;
    }
    for (int i = 0; i < n; i++) {
        struct cache_page *p = cache_lookup(o, first + (uint64_t)i);
        p->pins++;
        atomic_store_explicit(p->referenced, 1, memory_order_relaxed);
        pages[i] = p;
    }
    cache_madeup_drop(o, *eof);
    pthread_mutex_unlock(&o->mu);
    atomic_fetch_add(&c->st.misses, missed);
    atomic_fetch_add(&c->st.hits, (uint64_t)n > missed ? (uint64_t)n - missed : 0);
    UFUSE_PROBE3(cache_hit, o->node->nodeid, off, (uint64_t)n - UFUSE_MIN((uint64_t)n, missed));
    UFUSE_PROBE3(cache_miss, o->node->nodeid, off, missed);
    return n;
out:
    cache_madeup_drop(o, *eof);
    pthread_mutex_unlock(&o->mu);
    return rc;
}

int cache_getpages_write(struct cache_obj *o, const struct cache_handle *h, uint64_t off,
                         size_t len, uint64_t fsize, int rmw, struct cache_page **pages)
{
    uint64_t first = off >> CACHE_PAGE_SHIFT;
    uint64_t last = (off + len - 1) >> CACHE_PAGE_SHIFT;
    int n = (int)UFUSE_MIN(last - first + 1, (uint64_t)CACHE_MAX_HOLD);
    int tries = 0;
    pthread_mutex_lock(&o->mu);
    cache_ext_forget(o, first, first + (uint64_t)n);
again:
    /* A writer also waits for write-backs of its pages (as Linux's
     * fuse_wait_on_page_writeback): the WRITE in flight sends the page as
     * it was, never a mix. */
    cache_wait_unbusy(o, first, n, PG_BUSY | PG_WRITEBACK | PG_MADEUP, UINT64_MAX);
    /* Read-modify-write first: only the write's edge pages can be partial.
     * fuse_write_biobackend reads a block that is neither cached nor
     * wholly overwritten, unless it lies at or past EOF. */
    for (int e = 0; rmw && e < 2; e++) {
        uint64_t idx = e ? first + (uint64_t)n - 1 : first;
        uint64_t ps = idx << CACHE_PAGE_SHIFT;
        int whole = off <= ps && off + len >= ps + CACHE_PAGE_SIZE;
        if (whole || ps >= fsize || cache_lookup(o, idx))
            continue;
        struct cache_page *p = cache_page_alloc(o, idx);
        if (!p)
            break; /* the main loop below deals with it */
        uint64_t eof = UINT64_MAX;
        struct cache_page *one[1] = {p};
        int rc = cache_getpages_read(o, h, one, 1, fsize, &eof, EOF_PAGE_WRITER);
        if (rc) {
            pthread_mutex_unlock(&o->mu);
            return rc;
        }
        if (eof != UINT64_MAX) {
            /* A short read during RMW: the server's file is shorter than
             * we knew.  Take its size and retry (fuse_write_biobackend);
             * the page holding the EOF is this writer's to write into. */
            fsize = UFUSE_MIN(fsize, eof);
            node_attr_invalidate(o->c->nodes, o->node);
        }
        goto again;
    }
    for (int i = 0; i < n; i++) {
        uint64_t idx = first + (uint64_t)i;
        uint64_t ps = idx << CACHE_PAGE_SHIFT;
        struct cache_page *p = cache_lookup(o, idx);
        if (p) {
            p->pins++;
            p->flags |= PG_WRITING;
            atomic_store_explicit(p->referenced, 1, memory_order_relaxed);
            pages[i] = p;
            continue;
        }
        int whole = off <= ps && off + len >= ps + CACHE_PAGE_SIZE;
        if (!whole && ps < fsize) {
            /* Write-through does not read: the page is left uncached. */
            pages[i] = NULL;
            if (!rmw)
                continue;
        }
        p = whole || ps >= fsize ? cache_page_alloc(o, idx) : NULL;
        if (!p) {
            if (i == 0) {
                pthread_mutex_unlock(&o->mu);
                if (++tries > CACHE_FRAME_TRIES)
                    return -ENOBUFS;
                cache_wait_frames(o->c);
                pthread_mutex_lock(&o->mu);
                goto again;
            }
            n = i;
            break;
        }
        /* Wholly overwritten, or a hole past EOF: no read, zeros. */
        memset(p->data, 0, CACHE_PAGE_SIZE);
        p->pins++;
        p->flags |= PG_WRITING;
        pages[i] = p; /* stays busy until cache_write_done */
    }
    pthread_mutex_unlock(&o->mu);
    return n;
}

void cache_write_done(struct cache_obj *o, struct cache_page **pages, int n, uint64_t off,
                      size_t len, size_t done, int dirty)
{
    pthread_mutex_lock(&o->mu);
    /* Again: a round that began while the writer waited learned the file
     * as it was before this write (invariant 11). */
    cache_ext_forget(o, off >> CACHE_PAGE_SHIFT,
                     (off + len + CACHE_PAGE_SIZE - 1) >> CACHE_PAGE_SHIFT);
    for (int i = 0; i < n; i++) {
        struct cache_page *p = pages[i];
        if (!p)
            continue;
        uint64_t ps = p->index << CACHE_PAGE_SHIFT, pe = ps + CACHE_PAGE_SIZE;
        uint64_t want = UFUSE_MIN(off + len, pe);
        uint64_t from = UFUSE_MAX(off, ps), to = UFUSE_MIN(off + done, pe);
        p->pins--;
        p->flags &= ~PG_WRITING;
        if (p->flags & PG_BUSY) {
            p->flags &= ~PG_BUSY;
            if (to < want) {
                /* The copy did not reach all it meant to fill. */
                cache_page_free(o, p);
                continue;
            }
            p->flags |= PG_VALID;
        }
        cache_page_publish(p);
        if (dirty && from < to)
            cache_dirty_add(o, p, (unsigned)(from - ps), (unsigned)(to - ps));
    }
    pthread_cond_broadcast(&o->cv);
    assert(cache_obj_sane(o));
    pthread_mutex_unlock(&o->mu);
}

void cache_release(struct cache_obj *o, struct cache_page **pages, int n)
{
    pthread_mutex_lock(&o->mu);
    int wake = 0;
    for (int i = 0; i < n; i++)
        if (pages[i] && --pages[i]->pins == 0) {
            wake = 1;
            if (pages[i]->flags & PG_MADEUP)
                cache_page_free(o, pages[i]);
        }
    if (wake)
        pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* ---- readahead ------------------------------------------------------------------------------ */

static void *cache_worker_main(void *arg);

static void cache_job_queue(struct cache *c, struct cache_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&c->mu);
    j->o->refs++;
    if (c->jobs_tail)
        c->jobs_tail->next = j;
    else
        c->jobs = j;
    c->jobs_tail = j;
    c->njobs++;
    pthread_cond_signal(&c->jobs_cv);
    /* More jobs than idle workers: another worker, if the pool may grow. */
    if (c->njobs > c->idle_workers && c->nworkers < CACHE_WORKERS && !c->stopping &&
        pthread_create(&c->workers[c->nworkers], NULL, cache_worker_main, c) == 0)
        c->nworkers++;
    pthread_mutex_unlock(&c->mu);
}

void cache_readahead(struct cache_obj *o, const struct cache_handle *h, uint64_t off,
                     size_t len, uint64_t fsize)
{
    struct cache *c = o->c;
    if (off >= fsize || len == 0)
        return;
    len = (size_t)UFUSE_MIN((uint64_t)len, fsize - off);
    uint64_t first = off >> CACHE_PAGE_SHIFT;
    uint64_t last = (off + len - 1) >> CACHE_PAGE_SHIFT;
    unsigned max_pages = cache_run_pages(c);
    pthread_mutex_lock(&o->mu);
    struct cache_job *j = NULL;
    for (uint64_t idx = first; idx <= last; idx++) {
        if (cache_lookup(o, idx)) {
            if (j)
                cache_job_queue(c, j); /* c->mu nests inside o->mu */
            j = NULL;
            continue;
        }
        if (!j) {
            j = calloc(1, sizeof *j);
            if (j)
                j->pages = calloc(max_pages, sizeof *j->pages);
            if (!j || !j->pages) {
                free(j);
                j = NULL;
                break;
            }
            j->kind = JOB_READ;
            j->o = o;
            j->h = *h;
            j->wb_seq = cache_wb_seq(o);
            o->reads_async++;
        }
        struct cache_page *p = cache_page_alloc(o, idx);
        if (!p)
            break;
        j->pages[j->n++] = p;
        if ((unsigned)j->n == max_pages) {
            cache_job_queue(c, j);
            j = NULL;
        }
    }
    if (j && j->n == 0) {
        o->reads_async--;
        free(j->pages);
        free(j);
        j = NULL;
    }
    if (j)
        cache_job_queue(c, j);
    pthread_mutex_unlock(&o->mu);
}

static void cache_job_read(struct cache *c, struct cache_job *j)
{
    struct cache_obj *o = j->o;
    uint64_t fsize = node_size(c->nodes, o->node);
    ssize_t got = cache_read_run(o, &j->h, j->pages, j->n, fsize);
    pthread_mutex_lock(&o->mu);
    uint64_t eof = cache_read_done(o, j->pages, j->n, got, fsize, j->wb_seq, EOF_PAGE_DROP);
    o->reads_async--;
    pthread_cond_broadcast(&o->cv);
    assert(cache_obj_sane(o));
    pthread_mutex_unlock(&o->mu);
    if (eof != UINT64_MAX)
        node_attr_invalidate(c->nodes, o->node);
    if (got > 0)
        atomic_fetch_add(&c->st.readahead, (uint64_t)j->n);
}

static void *cache_worker_main(void *arg)
{
    struct cache *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->jobs && !c->stopping) {
            c->idle_workers++;
            pthread_cond_wait(&c->jobs_cv, &c->mu);
            c->idle_workers--;
        }
        struct cache_job *j = c->jobs;
        if (!j)
            break;
        c->njobs--;
        c->jobs = j->next;
        if (!c->jobs)
            c->jobs_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        if (j->kind == JOB_READ) {
            cache_job_read(c, j);
        } else {
            cache_invalidate(j->o, j->off, j->len, 0);
        }
        cache_obj_put(j->o);
        free(j->pages);
        free(j);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

void cache_invalidate_async(struct cache_obj *o, uint64_t off, uint64_t len)
{
    struct cache_job *j = calloc(1, sizeof *j);
    if (!j)
        return; /* the dirty pages stay; they go out at the next sync */
    j->kind = JOB_INVALIDATE;
    j->o = o;
    j->off = off;
    j->len = len;
    cache_job_queue(o->c, j);
}

/* ---- write-back: putpages ------------------------------------------------------------------- */

/* A writable handle for write-back, in use (o->mu held); NULL if none. */
static struct cache_handle *cache_writer(struct cache_obj *o)
{
    for (struct cache_handle *h = o->handles; h; h = h->next)
        if (h->writable) {
            h->users++;
            return h;
        }
    return NULL;
}

static int cache_index_cmp(const void *a, const void *b)
{
    const struct cache_page *x = *(struct cache_page *const *)a;
    const struct cache_page *y = *(struct cache_page *const *)b;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * genfs_do_io: start one cluster's WRITE (no lock held), from the first
 * page's dirty start to the last page's dirty end, clipped at the size
 * (fuse_io_strategy), as a background request of the pass; it ends in
 * cache_io_done, here when it could not be sent.
 */
static void cache_do_io(struct cache_cluster *cl)
{
    struct cache_obj *o = cl->o;
    struct cache *c = o->c;
    int n = cl->n;
    struct cache_page **pages = cl->pages;
    cl->start = (pages[0]->index << CACHE_PAGE_SHIFT) + cl->doff[0];
    uint64_t end = (pages[n - 1]->index << CACHE_PAGE_SHIFT) + cl->dend[n - 1];
    end = UFUSE_MIN(end, node_size(c->nodes, o->node));
    UFUSE_PROBE4(writeback_cluster, o->node->nodeid, cl->start, n,
                 end > cl->start ? end - cl->start : 0);
    int rc = 0;
    if (!cl->h) {
        rc = -EBADF;
    } else if (end > cl->start) {
        struct iovec *iov = malloc((size_t)n * sizeof *iov);
        if (!iov) {
            rc = -ENOMEM;
        } else {
            int cnt = cache_iov(pages, n, cl->doff[0], (size_t)(end - cl->start), iov);
            rc = c->ops->write_start(c, o, cl->h, iov, cnt, cl->start, &o->wb_group, cl);
            free(iov);
            if (rc == 0)
                return; /* cl may be gone already */
        }
    }
    cache_io_done(cl, rc ? rc : (ssize_t)(end > cl->start ? end - cl->start : 0));
}

void cache_io_done(struct cache_cluster *cl, ssize_t written)
{
    struct cache_obj *o = cl->o;
    struct cache *c = o->c;
    int n = cl->n;
    int transient = written < 0 && cache_transient((int)written);
    pthread_mutex_lock(&o->mu);
    if (cl->h)
        cl->h->users--;
    for (int i = 0; i < n; i++) {
        struct cache_page *p = cl->pages[i];
        uint64_t ps = p->index << CACHE_PAGE_SHIFT;
        p->flags &= ~PG_WRITEBACK;
        o->nwriteback--;
        atomic_fetch_sub(&c->nwriteback, 1);
        if (transient) {
            cache_dirty_add(o, p, cl->doff[i], cl->dend[i]);
        } else if (written >= 0 && ps + cl->dend[i] > cl->start + (uint64_t)written) {
            /* Past what a short WRITE took: dirty still, from where it
             * stopped (the next pass writes it). */
            uint64_t from = UFUSE_MAX(ps + cl->doff[i], cl->start + (uint64_t)written);
            if (from - ps < cl->dend[i] && from < node_size(c->nodes, o->node)) {
                cache_dirty_add(o, p, (unsigned)(from - ps), cl->dend[i]);
                o->pass_short = 1;
            }
        }
    }
    if (written < 0 && !transient) {
        /* Like Linux: the pages stay valid but clean, the error is kept
         * for the next fsync and close of every handle (errseq). */
        o->err = (int)written;
        o->err_seq++;
    }
    if (written < 0 && !o->pass_err)
        o->pass_err = (int)written;
    o->wb_seq++;
    if (written >= 0) {
        atomic_fetch_add(&c->st.written_back, (uint64_t)n);
        atomic_fetch_add(&c->st.writebacks, 1);
    }
    cache_clean_attrs(o);
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    free(cl);
}

/* Any dirty page of [first, last] a writer is copying into? (o->mu held) */
static int cache_range_writing(struct cache_obj *o, uint64_t first, uint64_t last)
{
    for (struct cache_page *p = o->dirty; p; p = p->dnext)
        if ((p->flags & PG_WRITING) && p->index >= first && p->index <= last)
            return 1;
    return 0;
}

/* Any page of [first, last] under write-back? (o->mu held) */
static int cache_range_writeback(struct cache_obj *o, uint64_t first, uint64_t last)
{
    if (!o->nwriteback)
        return 0;
    for (unsigned i = 0; i <= o->hmask; i++)
        for (struct cache_page *p = o->hash[i]; p; p = p->hnext)
            if ((p->flags & PG_WRITEBACK) && p->index >= first && p->index <= last)
                return 1;
    return 0;
}

/*
 * One pass over the dirty pages of [first, last] (o->mu held, dropped
 * while WRITEs are sent): each cluster's WRITE is started as a background
 * request, up to CACHE_WB_INFLIGHT in flight, then the pass waits for them
 * all, receiving their replies itself when nobody else does (no thread per
 * WRITE).  *@skipped counts the dirty pages left because a writer was
 * copying into them.
 */
static int cache_putpages_pass(struct cache_obj *o, uint64_t first, uint64_t last,
                               int *skipped)
{
    struct cache *c = o->c;
    unsigned k = 0;
    struct cache_page **d = malloc((size_t)o->ndirty * sizeof *d + 1);
    if (!d)
        return -ENOMEM;
    for (struct cache_page *p = o->dirty; p; p = p->dnext)
        if (p->index >= first && p->index <= last)
            d[k++] = p;
    qsort(d, k, sizeof *d, cache_index_cmp);
    unsigned max_pages = UFUSE_MAX(1u, c->p.max_write >> CACHE_PAGE_SHIFT);
    o->pass_err = 0;
    o->pass_short = 0;
    *skipped = 0;
    for (unsigned i = 0; i < k;) {
        struct cache_page *p = d[i];
        if (p->flags & (PG_WRITEBACK | PG_BUSY | PG_WRITING)) {
            (*skipped)++;
            i++;
            continue;
        }
        /* genfs_do_putpages: gather the contiguous dirty neighbours (the
         * list is sorted, so backward neighbours came first). */
        unsigned n = 0;
        while (i + n < k && n < max_pages) {
            struct cache_page *q = d[i + n];
            if (q->flags & (PG_WRITEBACK | PG_BUSY | PG_WRITING))
                break;
            if (n && (q->index != d[i + n - 1]->index + 1 ||
                      d[i + n - 1]->dend != CACHE_PAGE_SIZE || q->doff != 0))
                break;
            n++;
        }
        struct cache_cluster *cl =
            malloc(sizeof *cl + n * (sizeof *cl->pages + 2 * sizeof(uint16_t)));
        if (!cl) {
            o->pass_err = -ENOMEM;
            break;
        }
        cl->n = (int)n;
        cl->pages = (struct cache_page **)(cl + 1);
        cl->doff = (uint16_t *)(cl->pages + n);
        cl->dend = cl->doff + n;
        for (unsigned j = 0; j < n; j++) {
            struct cache_page *q = d[i + j];
            cl->pages[j] = q;
            cl->doff[j] = q->doff;
            cl->dend[j] = q->dend;
            cache_dirty_remove(o, q);
            q->flags |= PG_WRITEBACK;
            o->nwriteback++;
            atomic_fetch_add(&c->nwriteback, 1);
        }
        i += n;
        cl->o = o;
        cl->h = cache_writer(o);
        pthread_mutex_unlock(&o->mu);
        cache_do_io(cl);
        c->ops->write_wait(c, &o->wb_group, CACHE_WB_INFLIGHT - 1);
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    c->ops->write_wait(c, &o->wb_group, 0);
    pthread_mutex_lock(&o->mu);
    free(d);
    return o->pass_err;
}

int cache_putpages(struct cache_obj *o, uint64_t off, uint64_t len, int sync)
{
    uint64_t first = off >> CACHE_PAGE_SHIFT;
    uint64_t last = len ? (off + len - 1) >> CACHE_PAGE_SHIFT : UINT64_MAX;
    int rc = 0;
    pthread_mutex_lock(&o->mu);
    /* One pass at a time owns the dirty list (the pages it collected stay
     * dirty and resident while it writes, unlocked); a truncate in
     * progress (nowrite) holds write-back off. */
    while (sync && (o->putting || o->nowrite))
        pthread_cond_wait(&o->pass_cv, &o->mu);
    if (o->putting || o->nowrite) {
        pthread_mutex_unlock(&o->mu);
        return 0;
    }
    o->putting = 1;
    for (int pass = 0; pass < CACHE_SYNC_PASSES; pass++) {
        int skipped = 0;
        int e = o->ndirty ? cache_putpages_pass(o, first, last, &skipped) : 0;
        if (e && !rc)
            rc = e;
        if (!sync || e)
            break;
        /* An integrity sync also waits for write-backs others started. */
        while (cache_range_writeback(o, first, last))
            pthread_cond_wait(&o->cv, &o->mu);
        if (!skipped && !o->pass_short)
            break;
        /* Pages a writer was copying into: wait until it is done. */
        while (cache_range_writing(o, first, last))
            pthread_cond_wait(&o->cv, &o->mu);
    }
    o->putting = 0;
    pthread_cond_broadcast(&o->cv);
    pthread_cond_broadcast(&o->pass_cv);
    pthread_mutex_unlock(&o->mu);
    return rc;
}

/* ---- invalidation and truncation ------------------------------------------------------------ */

enum cache_drop {
    DROP_IDLE,   /* clean pages nobody uses; no waiting */
    DROP_CLEAN,  /* clean pages, waiting for those in use or under I/O */
    DROP_ALL,    /* every page, dirty ones too, waiting likewise */
};

/*
 * One pass over the pages of [first, last] (o->mu held): drop what @how
 * allows.  Returns 1 if a page had to be left because it was in use.
 */
static int cache_drop_pass(struct cache_obj *o, uint64_t first, uint64_t last,
                           enum cache_drop how)
{
    int busy = 0;
    int by_index = last - first < 4 * (uint64_t)(o->hmask + 1);
    unsigned nb = by_index ? 0 : o->hmask + 1;
    uint64_t idx = first;
    for (unsigned b = 0;;) {
        struct cache_page *p, *next;
        if (by_index) {
            p = cache_lookup(o, idx);
            next = NULL;
        } else {
            if (b >= nb)
                break;
            p = o->hash[b++];
        }
        for (; p; p = next) {
            if (!by_index)
                next = p->hnext;
            if (p->index < first || p->index > last)
                continue;
            if ((p->flags & PG_DIRTY) && how != DROP_ALL)
                continue;
            if ((p->flags & (PG_BUSY | PG_WRITEBACK)) || p->pins) {
                busy = 1;
                continue;
            }
            cache_page_free(o, p);
        }
        if (by_index && (idx++ == last))
            break;
    }
    return busy;
}

/* Drop the pages of [first, last] as @how says (o->mu held).  A putpages
 * pass owns the dirty pages it collected: wait for it, at every round. */
static void cache_drop_range(struct cache_obj *o, uint64_t first, uint64_t last,
                             enum cache_drop how)
{
    cache_ext_forget(o, first, last == UINT64_MAX ? UINT64_MAX : last + 1);
    for (;;) {
        while (how != DROP_IDLE && o->putting)
            pthread_cond_wait(&o->pass_cv, &o->mu);
        if (!cache_drop_pass(o, first, last, how) || how == DROP_IDLE)
            break;
        pthread_cond_wait(&o->cv, &o->mu);
    }
}

void cache_drop_clean(struct cache_obj *o, uint64_t off, uint64_t len)
{
    pthread_mutex_lock(&o->mu);
    cache_drop_range(o, off >> CACHE_PAGE_SHIFT,
                     len ? (off + len - 1) >> CACHE_PAGE_SHIFT : UINT64_MAX, DROP_IDLE);
    pthread_mutex_unlock(&o->mu);
}

int cache_attr_check(struct cache_obj *o, uint64_t size, uint64_t mtime, uint32_t mtimensec,
                     int by_mtime)
{
    pthread_mutex_lock(&o->mu);
    int changed = (o->snap_size_valid && o->snap_size != size) ||
                  (by_mtime && o->snap_mtime_valid &&
                   (o->snap_mtime != mtime || o->snap_mtimensec != mtimensec));
    o->snap_size_valid = o->snap_mtime_valid = 1;
    o->snap_size = size;
    o->snap_mtime = mtime;
    o->snap_mtimensec = mtimensec;
    if (changed)
        cache_drop_range(o, 0, UINT64_MAX, DROP_IDLE);
    pthread_mutex_unlock(&o->mu);
    return changed;
}

void cache_attr_forget(struct cache_obj *o)
{
    pthread_mutex_lock(&o->mu);
    o->snap_size_valid = o->snap_mtime_valid = 0;
    pthread_mutex_unlock(&o->mu);
}

void cache_attr_local(struct cache_obj *o, uint64_t size)
{
    pthread_mutex_lock(&o->mu);
    o->snap_size_valid = 1;
    o->snap_size = size;
    o->snap_mtime_valid = 0;
    pthread_mutex_unlock(&o->mu);
}

int cache_invalidate(struct cache_obj *o, uint64_t off, uint64_t len, int discard)
{
    uint64_t first = off >> CACHE_PAGE_SHIFT;
    uint64_t last = len ? (off + len - 1) >> CACHE_PAGE_SHIFT : UINT64_MAX;
    UFUSE_PROBE4(invalidate, o->node->nodeid, off, len, discard);
    int rc = discard ? 0 : cache_putpages(o, off, len, 1);
    pthread_mutex_lock(&o->mu);
    /* Pages dirtied again since (or whose write-back failed) stay. */
    cache_drop_range(o, first, last, discard ? DROP_ALL : DROP_CLEAN);
    cache_clean_attrs(o);
    assert(cache_obj_sane(o));
    pthread_mutex_unlock(&o->mu);
    return rc;
}

void cache_nowrite_begin(struct cache_obj *o)
{
    pthread_mutex_lock(&o->mu);
    while (o->nowrite || o->putting)
        pthread_cond_wait(&o->pass_cv, &o->mu);
    o->nowrite = 1;
    while (o->nwriteback)
        pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

void cache_nowrite_end(struct cache_obj *o)
{
    pthread_mutex_lock(&o->mu);
    o->nowrite = 0;
    pthread_cond_broadcast(&o->cv);
    pthread_cond_broadcast(&o->pass_cv);
    pthread_mutex_unlock(&o->mu);
}

void cache_truncate(struct cache_obj *o, uint64_t size)
{
    uint64_t keep = (size + CACHE_PAGE_SIZE - 1) >> CACHE_PAGE_SHIFT;
    pthread_mutex_lock(&o->mu);
    cache_drop_range(o, keep, UINT64_MAX, DROP_ALL);
    unsigned tail = (unsigned)(size & (CACHE_PAGE_SIZE - 1));
    struct cache_page *p;
    if (tail) {
        while ((p = cache_lookup(o, size >> CACHE_PAGE_SHIFT)) && (p->flags & PG_BUSY))
            pthread_cond_wait(&o->cv, &o->mu);
        if (p) {
            memset(p->data + tail, 0, CACHE_PAGE_SIZE - tail);
            if (p->flags & PG_DIRTY) {
                if (p->dend > tail)
                    p->dend = (uint16_t)tail;
                if (p->doff >= p->dend)
                    cache_dirty_remove(o, p);
            }
        }
    }
    cache_clean_attrs(o);
    assert(cache_obj_sane(o));
    pthread_mutex_unlock(&o->mu);
}

/* ---- throttling, the flusher, sync ---------------------------------------------------------- */

void cache_balance_dirty(struct cache_obj *o)
{
    struct cache *c = o->c;
    if (atomic_load(&c->ndirty) > c->dirty_background) {
        pthread_mutex_lock(&c->mu);
        cache_kick_flusher(c);
        pthread_mutex_unlock(&c->mu);
    }
    if (atomic_load(&c->ndirty) <= c->dirty_limit)
        return;
    /* Over the limit: this writer cleans its own file first (Linux's
     * balance_dirty_pages makes the dirtier pay), then waits for the
     * flusher if others' dirty data still holds the session over. */
    atomic_fetch_add(&c->st.throttled, 1);
    cache_putpages(o, 0, 0, 0);
    for (int i = 0; i < CACHE_FRAME_TRIES && atomic_load(&c->ndirty) > c->dirty_limit; i++)
        cache_wait_frames(c);
}

/* Referenced snapshot of the objects (NULL-terminated), or NULL. */
static struct cache_obj **cache_objs_snapshot(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = 0;
    for (struct cache_obj *o = c->objs; o; o = o->next)
        n++;
    struct cache_obj **v = malloc((n + 1) * sizeof *v);
    if (v) {
        n = 0;
        for (struct cache_obj *o = c->objs; o; o = o->next) {
            o->refs++;
            v[n++] = o;
        }
        v[n] = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    return v;
}

/* Invariant 10, the index's half (c->mu held): every bound frame is
 * reached from its home slot, and the index holds nothing else. */
static int cache_lf_sane(struct cache *c)
{
    size_t used = 0, bound = 0;
    for (size_t i = 0; i <= c->lf_mask; i++)
        used += atomic_load_explicit(&c->lf_slots[i], memory_order_relaxed) != 0;
    for (size_t f = 0; f < c->nframes; f++) {
        const struct cache_page *p = &c->pages[f];
        if (!p->obj)
            continue;
        bound++;
        uint32_t i = cache_lf_slot(c, p->obj, p->index), e;
        while ((e = atomic_load_explicit(&c->lf_slots[i], memory_order_relaxed)) != f + 1) {
            if (!e)
                return 0;
            i = (i + 1) & c->lf_mask;
        }
    }
    return used == bound && bound == c->nframes - c->nfree;
}

int cache_sane_all(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    int ok = cache_lf_sane(c);
    pthread_mutex_unlock(&c->mu);
    struct cache_obj **v = cache_objs_snapshot(c);
    for (size_t i = 0; v && v[i]; i++) {
        pthread_mutex_lock(&v[i]->mu);
        ok &= cache_obj_sane(v[i]);
        pthread_mutex_unlock(&v[i]->mu);
        cache_obj_put(v[i]);
    }
    free(v);
    return ok;
}

static void *cache_flusher_main(void *arg)
{
    struct cache *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        if (!c->flusher_kick) {
            struct timespec ts;
            cache_deadline(&ts, CACHE_FLUSH_PERIOD_MS);
            pthread_cond_timedwait(&c->flusher_cv, &c->mu, &ts);
        }
        if (c->stopping)
            break;
        int kicked = c->flusher_kick;
        c->flusher_kick = 0;
        pthread_mutex_unlock(&c->mu);
        struct cache_obj **v = cache_objs_snapshot(c);
        uint64_t now = ufuse_now_ns();
        for (size_t i = 0; v && v[i]; i++) {
            struct cache_obj *o = v[i];
            pthread_mutex_lock(&o->mu);
            int due = o->ndirty &&
                      (kicked || now - o->dirtied_ns >= c->p.dirty_expire_ns ||
                       atomic_load(&c->ndirty) > c->dirty_background);
            pthread_mutex_unlock(&o->mu);
            if (due)
                cache_putpages(o, 0, 0, 0);
            cache_obj_put(o);
        }
        free(v);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int cache_sync_all(struct cache *c)
{
    struct cache_obj **v = cache_objs_snapshot(c);
    if (!v)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; v[i]; i++) {
        int e = cache_putpages(v[i], 0, 0, 1);
        if (e && !rc)
            rc = e;
        cache_obj_put(v[i]);
    }
    free(v);
    return rc;
}

void cache_info(struct cache *c, struct ufuse_cacheinfo *out)
{
    memset(out, 0, sizeof *out);
    out->budget = c->nframes * CACHE_PAGE_SIZE;
    out->page_size = CACHE_PAGE_SIZE;
    out->block_size = c->p.block_size;
    pthread_mutex_lock(&c->mu);
    out->pages = c->nframes - c->nfree;
    out->pages_max = c->pages_max;
    pthread_mutex_unlock(&c->mu);
    out->dirty = atomic_load(&c->ndirty);
    out->writeback = atomic_load(&c->nwriteback);
    out->hits = atomic_load(&c->st.hits);
    out->misses = atomic_load(&c->st.misses);
    out->readahead = atomic_load(&c->st.readahead);
    out->evictions = atomic_load(&c->st.evictions);
    out->written_back = atomic_load(&c->st.written_back);
    out->writebacks = atomic_load(&c->st.writebacks);
    out->throttled = atomic_load(&c->st.throttled);
}

/* ---- notifications -------------------------------------------------------------------------- */

int cache_store(struct cache_obj *o, uint64_t off, const void *data, size_t len,
                uint64_t fsize)
{
    const char *src = data;
    uint64_t end = off + len;
    pthread_mutex_lock(&o->mu);
    cache_ext_forget(o, off >> CACHE_PAGE_SHIFT,
                     (end + CACHE_PAGE_SIZE - 1) >> CACHE_PAGE_SHIFT);
    for (uint64_t pos = off; pos < end;) {
        uint64_t idx = pos >> CACHE_PAGE_SHIFT;
        uint64_t ps = idx << CACHE_PAGE_SHIFT;
        size_t from = (size_t)(pos - ps);
        size_t take = (size_t)UFUSE_MIN(end - pos, (uint64_t)(CACHE_PAGE_SIZE - from));
        struct cache_page *p = cache_lookup(o, idx);
        if (p && (p->flags & (PG_BUSY | PG_WRITEBACK | PG_MADEUP))) {
            pos += take; /* being read or written: leave it be */
            continue;
        }
        if (!p) {
            /* A new page is valid only if the data covers all of it that
             * lies inside the file (as Linux's fuse_notify_store). */
            if (from != 0 || (take < CACHE_PAGE_SIZE && ps + take < fsize)) {
                pos += take;
                continue;
            }
            p = cache_page_alloc(o, idx);
            if (!p)
                break;
            memset(p->data, 0, CACHE_PAGE_SIZE);
            p->flags = PG_VALID;
        }
        memcpy(p->data + from, src + (pos - off), take);
        cache_page_publish(p);
        pos += take;
    }
    pthread_cond_broadcast(&o->cv);
    assert(cache_obj_sane(o));
    pthread_mutex_unlock(&o->mu);
    return 0;
}

size_t cache_retrieve(struct cache_obj *o, uint64_t off, size_t size, uint64_t fsize,
                      void *buf)
{
    size_t done = 0;
    if (off >= fsize)
        return 0;
    size = (size_t)UFUSE_MIN((uint64_t)size, fsize - off);
    pthread_mutex_lock(&o->mu);
    while (done < size) {
        uint64_t pos = off + done;
        struct cache_page *p = cache_lookup(o, pos >> CACHE_PAGE_SHIFT);
        if (!p || (p->flags & (PG_VALID | PG_MADEUP)) != PG_VALID)
            break;
        size_t from = (size_t)(pos & (CACHE_PAGE_SIZE - 1));
        size_t take = UFUSE_MIN(size - done, CACHE_PAGE_SIZE - from);
        memcpy((char *)buf + done, p->data + from, take);
        done += take;
    }
    pthread_mutex_unlock(&o->mu);
    return done;
}

/* ---- life ----------------------------------------------------------------------------------- */

int cache_init(struct cache *c, const struct cache_params *p,
               const struct cache_pager_ops *ops, void *ctx, struct node_table *nodes)
{
    memset(c, 0, sizeof *c);
    c->p = *p;
    c->ops = ops;
    c->ctx = ctx;
    c->nodes = nodes;
    c->nframes = (size_t)(p->budget >> CACHE_PAGE_SHIFT);
    if (c->nframes < 16)
        return -EINVAL;
    if (p->region) {
        c->region = p->region;
        if (c->region->nframes != c->nframes)
            return -EINVAL;
    } else {
        int rc = share_region_init(&c->own_region, c->nframes, 0, 0, 0);
        if (rc)
            return rc;
        c->region = &c->own_region;
    }
    share_region_view(c->region, &c->view);
    c->lf_slots = c->region->index;
    c->lf_mask = c->region->index_mask;
    c->pages = calloc(c->nframes, sizeof *c->pages);
    c->ohash_mask = CACHE_OHASH_INIT - 1;
    c->ohash = calloc(c->ohash_mask + 1, sizeof *c->ohash);
    c->workers = calloc(CACHE_WORKERS, sizeof *c->workers);
    if (!c->pages || !c->ohash || !c->workers) {
        free(c->pages);
        free(c->ohash);
        free(c->workers);
        share_region_destroy(&c->own_region);
        return -ENOMEM;
    }
    /* Frames are set up at first use (cache_frame_fresh), so RSS grows
     * only as far as the cache fills, descriptors included. */
    c->nfree = c->nframes;
    c->dirty_limit = c->nframes / 2;
    c->dirty_background = c->nframes / 4;
    pthread_mutex_init(&c->mu, NULL);
    cache_cond_init(&c->cv);
    cache_cond_init(&c->jobs_cv);
    cache_cond_init(&c->flusher_cv);
    if (pthread_create(&c->workers[0], NULL, cache_worker_main, c) == 0)
        c->nworkers = 1;
    c->flusher_running = pthread_create(&c->flusher, NULL, cache_flusher_main, c) == 0;
    if (!c->nworkers || !c->flusher_running) {
        c->stopping = 1;
        cache_destroy(c);
        return -EAGAIN;
    }
    return 0;
}

void cache_destroy(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->jobs_cv);
    pthread_cond_broadcast(&c->flusher_cv);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nworkers; i++)
        pthread_join(c->workers[i], NULL);
    if (c->flusher_running)
        pthread_join(c->flusher, NULL);
    /* Every handle is closed: objects hold only clean (or failed) pages. */
    while (c->objs) {
        struct cache_obj *o = c->objs;
        c->objs = o->next;
        cache_obj_free(o);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->jobs_cv);
    pthread_cond_destroy(&c->flusher_cv);
    free(c->pages);
    free(c->ohash);
    free(c->workers);
    share_region_destroy(&c->own_region);
}
