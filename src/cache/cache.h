/*
 * cache.h - the page cache: 4 KiB pages of file data per node, one memory
 * budget per session, CLOCK eviction, clustered page-in (getpages) with
 * asynchronous readahead, clustered write-back (putpages) with a flusher.
 *
 * Seed counterpart: NetBSD genfs_io.c and the UVM page machinery under it
 * (genfs_getpages, genfs_getpages_read, genfs_do_putpages, genfs_do_io),
 * and FreeBSD's buffer cache as fuse_io.c uses it (bread/bwrite, b_dirtyoff
 * / b_dirtyend).  The FUSE-specific half (what a READ or WRITE looks like,
 * which file handle carries it) stays in src/io/: the cache reaches the
 * server only through struct cache_pager_ops, as genfs calls GOP_WRITE and
 * VOP_STRATEGY, so dependencies keep pointing down.
 *
 * See cache.c for the page state diagram, the locks and the invariants.
 */
#ifndef UFUSE_CACHE_H
#define UFUSE_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "node/node.h"
#include "ufuse.h"
#include "util/share.h"

#define CACHE_PAGE_SHIFT 12
#define CACHE_PAGE_SIZE (1u << CACHE_PAGE_SHIFT)
/* Most pages one getpages / write call holds at once. */
#define CACHE_MAX_HOLD 64
/* Most pages one READ fills (1 MiB). */
#define CACHE_MAX_RUN 256

/* Page flags (see the state diagram in cache.c). */
#define PG_VALID 0x01u     /* contents are the file's (zeros past EOF) */
#define PG_BUSY 0x02u      /* being filled by its owner; contents not valid yet */
#define PG_DIRTY 0x04u     /* [doff, dend) differs from the server's copy */
#define PG_WRITEBACK 0x08u /* a WRITE of it is in flight */
#define PG_MADEUP 0x10u    /* holds a short READ's EOF: zeros past it made up, its
                              reader's only (freed at that reader's release) */
#define PG_WRITING 0x20u   /* a writer holds it and is copying into it */

struct cache_obj;
struct cache_cluster;

struct cache_page {
    struct cache_obj *obj;       /* NULL while free */
    uint64_t index;              /* page number within the file */
    /* The frame's identity as lock-free readers see it, in the region
     * (include/ufuse_share.h): seq is odd while the page is published
     * (VALID, not BUSY, its identity fixed); every publish and retire adds
     * one; key and index are the object's key and index while bound. */
    struct ufuse_share_frame *sf;
    _Atomic unsigned char *referenced; /* hit since the clock hand last passed
                                          (in the region: readers set it) */
    struct cache_page *hnext;    /* obj hash chain, or the free list */
    struct cache_page *dnext, *dprev; /* the obj's dirty list */
    uint32_t flags;
    uint32_t pins;               /* holders copying to or from it */
    uint16_t doff, dend;         /* dirty bytes, when PG_DIRTY */
    char *data;                  /* CACHE_PAGE_SIZE bytes */
};

/* Which open file carries a transfer (the io layer's file handle). */
struct cache_handle {
    uint64_t fh;
    uint32_t oflags;
    int writable;                /* may carry write-back WRITEs */
    unsigned users;              /* transfers using it now (under obj->mu) */
    unsigned err_seen;           /* write-back error sequence seen by this handle */
    struct cache_handle *next;   /* the obj's handle list */
};

struct cache_obj {
    struct cache *c;
    struct node *node;           /* referenced while the obj lives */
    uint64_t key;                /* the pages' key in the region, never reused */
    unsigned refs;               /* under c->mu: users (handles, jobs, calls) */
    struct cache_obj *hnext;     /* c's hash by nodeid (under c->mu) */
    struct cache_obj *prev, *next; /* c's list of objects (under c->mu) */

    pthread_mutex_t mu;          /* everything below */
    pthread_cond_t cv;           /* a page state, pin, handle or count changed */
    pthread_cond_t pass_cv;      /* putting or nowrite was cleared (their waiters
                                    sleep here, not woken per written cluster) */
    struct cache_page **hash;    /* resident pages by index */
    unsigned hmask;
    unsigned npages;             /* resident pages */
    unsigned ndirty, nwriteback; /* pages in those states */
    struct cache_page *dirty;    /* dirty pages, unordered */
    unsigned reads_async;        /* readahead READs in flight */
    int nowrite;                 /* a truncate is in progress: no write-back */
    int putting;                 /* a putpages pass owns the dirty list */
    struct conn_group wb_group;  /* the pass's WRITEs in flight (under the conn's lock) */
    int pass_err;                /* the pass's first write-back error */
    int pass_short;              /* a WRITE of the pass was cut short: pages left dirty */
    uint64_t dirtied_ns;         /* when the obj went from clean to dirty */
    struct cache_handle *handles;
    int err;                     /* last write-back error (-errno) */
    unsigned err_seq;            /* bumped per failed write-back */
    unsigned wb_seq;             /* bumped per completed write-back WRITE */
    /* The attributes the cached data was read under (cache_attr_check);
     * after a change of ours the size it made, the server's mtime unknown. */
    int snap_size_valid, snap_mtime_valid;
    uint64_t snap_size, snap_mtime;
    uint32_t snap_mtimensec;
    /* What reads learned of the server's holes (cache.c, invariant 11). */
    struct cache_extent *ext;    /* sorted, disjoint; NULL until one is learned */
    unsigned ext_n;              /* extents in ext */
    unsigned ext_gen;            /* bumped whenever any of it is forgotten */
    unsigned ext_futile;         /* LSEEK rounds in a row that found no hole to use */
    int ext_asking;              /* a thread is asking the server (others wait) */
    int clean_attrs_due;         /* went clean while wlock was held: the
                                    holder hands the size back at cache_wlock_end */

    /* The serialization of writers and truncates (like the inode lock):
     * taken with cache_wlock_begin, released with cache_wlock_end. */
    pthread_mutex_t wlock;
};

/*
 * How the cache reaches the server (implemented by src/io/), called with
 * no cache lock held.
 *  - read: the bytes read or -errno; may come back short (EOF).
 *  - write_start: send one write-back WRITE of @iov (@cnt pieces, at most
 *    max_write bytes) at @off through @h as a background request of @g
 *    (genfs's GOP_WRITE with async I/O).  Returns 0, and cache_io_done(@cl,
 *    bytes written or -errno) is then called exactly once, on whichever
 *    thread receives the reply (possibly before write_start returns); or
 *    -errno, and it is not.
 *  - write_wait: wait until at most @max requests of @g are pending,
 *    receiving replies meanwhile.
 *  - seek: where the next hole (SEEK_HOLE) or data (SEEK_DATA) at or
 *    after @off is: 0 and the server's answer, unchecked, in *@res, or
 *    -errno (-ENXIO: none before EOF; -ENOSYS: the server has no LSEEK).
 */
struct cache_pager_ops {
    ssize_t (*read)(struct cache *c, struct cache_obj *o, const struct cache_handle *h,
                    const struct iovec *iov, int cnt, uint64_t off);
    int (*write_start)(struct cache *c, struct cache_obj *o, const struct cache_handle *h,
                       const struct iovec *iov, int cnt, uint64_t off, struct conn_group *g,
                       struct cache_cluster *cl);
    void (*write_wait)(struct cache *c, struct conn_group *g, unsigned max);
    int (*seek)(struct cache *c, struct cache_obj *o, const struct cache_handle *h,
                uint64_t off, int whence, uint64_t *res);
};

/* A write-back WRITE started by write_start ended: @written bytes (from
 * its start; fewer than sent leaves the rest dirty) or -errno.  Takes the
 * object's lock; the pager calls it with no cache lock held. */
void cache_io_done(struct cache_cluster *cl, ssize_t written);

struct cache_params {
    uint64_t budget;             /* bytes of page data at most */
    uint32_t block_size;         /* a miss reads whole blocks */
    uint32_t max_read, max_write;/* transfer limits */
    uint64_t dirty_expire_ns;    /* flusher writes dirty data older than this */
    struct share_region *region; /* frames and data (budget pages), or NULL:
                                    the cache makes a private one */
};

struct cache_stats {
    _Atomic uint64_t hits, misses, readahead, evictions, written_back, writebacks,
        throttled;
};

struct cache {
    struct cache_params p;
    const struct cache_pager_ops *ops;
    void *ctx;                   /* for the ops' owner */
    struct node_table *nodes;
    struct share_region *region; /* frames, index and data (util/share.h) */
    struct share_region own_region; /* the region when the caller gave none */
    struct ufuse_share_view view; /* the region as lock-free readers see it */
    struct cache_page *pages;    /* one descriptor per frame */
    size_t nframes;
    /* The lock-free page index (in the region): (key, index) -> frame
     * number + 1, open addressing with linear probing, at most half full;
     * written under mu, read by cache_read_fast and other processes with
     * no lock. */
    _Atomic uint32_t *lf_slots;
    uint32_t lf_mask;
    uint64_t next_key;           /* under mu */

    pthread_mutex_t mu;          /* frames (free list, hand), objects, jobs */
    pthread_cond_t cv;           /* frames freed, dirty data written */
    struct cache_page *free_list;
    size_t nfree, hand;          /* nfree: the free list and the fresh frames */
    size_t fresh;                /* frames [fresh, nframes) never used yet */
    size_t prefaulted;           /* frames [0, prefaulted) faulted in or claimed */
    size_t pages_max;
    struct cache_obj **ohash;
    unsigned ohash_mask;
    unsigned nobjs;
    struct cache_obj *objs;
    _Atomic uint64_t ndirty, nwriteback;
    uint64_t dirty_limit;        /* pages: writers write back above it */
    uint64_t dirty_background;   /* pages: the flusher starts above it */

    /* Readahead workers and the flusher. */
    struct cache_job *jobs, *jobs_tail;
    unsigned njobs;              /* jobs queued, not yet taken */
    unsigned idle_workers;       /* workers waiting for a job */
    pthread_cond_t jobs_cv;
    pthread_cond_t flusher_cv;
    int flusher_kick;
    int stopping;
    pthread_t *workers;          /* CACHE_WORKERS slots */
    int nworkers;                /* started (grows, under mu, until stopping) */
    pthread_t flusher;
    int flusher_running;

    struct cache_stats st;
};

int cache_init(struct cache *c, const struct cache_params *p,
               const struct cache_pager_ops *ops, void *ctx, struct node_table *nodes);
/* Write everything back (best effort), stop the threads, free.  No other
 * call may be in progress. */
void cache_destroy(struct cache *c);

/* The object of @n, made if needed, referenced; NULL for -ENOMEM. */
struct cache_obj *cache_obj_get(struct cache *c, struct node *n);
/* The object of nodeid, referenced, if one exists. */
struct cache_obj *cache_obj_find(struct cache *c, uint64_t nodeid);
void cache_obj_put(struct cache_obj *o);

/* Open files: register @h (embedded in the caller's file) on @o; unregister
 * waits until no transfer uses it. */
void cache_handle_add(struct cache_obj *o, struct cache_handle *h);
void cache_handle_remove(struct cache_obj *o, struct cache_handle *h);
/* The write-back error @h has not seen yet (0 if none); marks it seen. */
int cache_handle_check_error(struct cache_obj *o, struct cache_handle *h);

/*
 * genfs_getpages: hold the pages covering [@off, @off + @len) (at most
 * CACHE_MAX_HOLD pages) valid in @pages, reading what is missing through
 * @h in whole blocks, one READ per contiguous missing run, nothing past
 * @fsize.  Returns the number of pages held from the first (fewer if the
 * server's file ended early: *@eof receives where, else UINT64_MAX), or
 * -errno.  -ENOBUFS: no page could be had (the budget is held by busy and
 * dirty pages); read directly instead.
 */
int cache_getpages(struct cache_obj *o, const struct cache_handle *h, uint64_t off,
                   size_t len, uint64_t fsize, struct cache_page **pages, uint64_t *eof);
/*
 * The hit path, with no lock and no pin: copy [@off, @off + @len) out of
 * @o's published pages into @iov (@cnt pieces) from byte @at, page after
 * page, each copy validated by the page's seq afterwards.  Stops at the
 * first page not published or changed under the copy (its bytes in @iov
 * are then garbage, to be overwritten by the caller's locked path).
 * Returns the bytes copied and validated.  The caller clips @len at the
 * file's size; a read racing a write of the same bytes may see part of
 * each, as with the locked path.
 */
size_t cache_read_fast(struct cache_obj *o, uint64_t off, size_t len, const struct iovec *iov,
                       int cnt, size_t at);
/*
 * The write side of getpages: hold the pages covering [@off, @off + @len)
 * for a writer (who holds o->wlock).  A page the write covers entirely, or
 * that lies wholly at or past @fsize, is not read (it comes back PG_BUSY
 * and zeroed; cache_write_done makes it valid).  With @rmw 0 (write-through)
 * missing partial pages are skipped: pages[i] is NULL for them.  Returns
 * the number of pages held from the first, or -errno (-ENOBUFS as above).
 */
int cache_getpages_write(struct cache_obj *o, const struct cache_handle *h, uint64_t off,
                         size_t len, uint64_t fsize, int rmw, struct cache_page **pages);
/* A writer meant to copy [@off, @off + @len) into the @n held pages and
 * copied the first @done bytes: mark them valid, and dirty (@dirty) or
 * clean; a new page the copy did not complete is dropped; unpin. */
void cache_write_done(struct cache_obj *o, struct cache_page **pages, int n, uint64_t off,
                      size_t len, size_t done, int dirty);
/* Unpin held pages. */
void cache_release(struct cache_obj *o, struct cache_page **pages, int n);

/* Asynchronous readahead of [@off, @off + @len) through @h (clipped at
 * @fsize); pages already resident are skipped.  Never waits for the I/O. */
void cache_readahead(struct cache_obj *o, const struct cache_handle *h, uint64_t off,
                     size_t len, uint64_t fsize);

/*
 * genfs_do_putpages: write back the dirty pages of [@off, @off + @len)
 * (@len 0: to the end) in clusters of contiguous dirty pages up to
 * max_write, with FUSE_WRITE_CACHE.  @sync: also wait for busy pages and
 * for write-backs others started, until the range is clean (fsync);
 * otherwise skip what is busy.  Returns 0 or the first error.
 */
int cache_putpages(struct cache_obj *o, uint64_t off, uint64_t len, int sync);
/*
 * Drop the pages of [@off, @off + @len) (@len 0: to the end), waiting for
 * pins and I/O on them.  Dirty pages are written back first unless
 * @discard.  Returns 0 or the write-back error.
 */
int cache_invalidate(struct cache_obj *o, uint64_t off, uint64_t len, int discard);
/* Drop the clean pages of the range nobody is using (no I/O, no wait). */
void cache_drop_clean(struct cache_obj *o, uint64_t off, uint64_t len);
/* Fresh attributes say @size / @mtime: if the size (or, with @by_mtime,
 * AUTO_INVAL_DATA, the mtime) differs from the one the cached data was
 * read under, drop the clean data (not dirty data).  Returns 1 if so. */
int cache_attr_check(struct cache_obj *o, uint64_t size, uint64_t mtime, uint32_t mtimensec,
                     int by_mtime);
/* A change of ours left the file @size bytes long (mtime: the server's). */
void cache_attr_local(struct cache_obj *o, uint64_t size);
/* Our own write changed size/mtime: take the next attributes as the new
 * reference instead of a sign of a change by someone else. */
void cache_attr_forget(struct cache_obj *o);
/* Truncate: the file is now @size bytes: drop pages past it, zero the tail
 * of the last one, clip its dirty range.  Call between
 * cache_nowrite_begin/end around the SETATTR. */
void cache_truncate(struct cache_obj *o, uint64_t size);
/* Take / release @o's wlock (writers, truncates).  The release finishes
 * what write-back could not do while it was held: when the file went clean
 * meanwhile, its size and times become the server's again. */
void cache_wlock_begin(struct cache_obj *o);
void cache_wlock_end(struct cache_obj *o);
void cache_nowrite_begin(struct cache_obj *o);
void cache_nowrite_end(struct cache_obj *o);
/* Throttle a writer when the session has too much dirty data. */
void cache_balance_dirty(struct cache_obj *o);
/* Is @o dirty (dirty or under write-back pages)? */
int cache_obj_dirty(struct cache_obj *o);
/* A READ's short answer is the server's EOF only if the file was clean
 * and no write-back completed while it ran: take cache_wb_mark before
 * it, ask cache_wb_unsettled after. */
unsigned cache_wb_mark(struct cache_obj *o);
int cache_wb_unsettled(struct cache_obj *o, unsigned mark);
/* Wait until no readahead READ of @o is in flight. */
void cache_wait_reads(struct cache_obj *o);

/* Notifications: STORE (data into the cache; 0 or -errno) and RETRIEVE
 * (copy the resident valid pages from @off up to the first missing one,
 * at most @size bytes, into @buf; bytes copied). */
int cache_store(struct cache_obj *o, uint64_t off, const void *data, size_t len,
                uint64_t fsize);
size_t cache_retrieve(struct cache_obj *o, uint64_t off, size_t size, uint64_t fsize,
                      void *buf);
/* Queue an invalidation with write-back for a worker (notifications
 * arrive on the receiving thread, which must not wait for replies). */
void cache_invalidate_async(struct cache_obj *o, uint64_t off, uint64_t len);

/* Write back every object (ufuse_sync); 0 or the first error. */
int cache_sync_all(struct cache *c);
/* Counters for ufuse_cacheinfo. */
void cache_info(struct cache *c, struct ufuse_cacheinfo *out);
/* The sanity checker: every invariant of cache.c, for assert(). */
int cache_obj_sane(struct cache_obj *o);
/* Test hook (tests/fuzz, tests/unit): the lock-free index (under c->mu),
 * then cache_obj_sane of every object, each under its lock.  1 when all
 * hold. */
int cache_sane_all(struct cache *c);

#endif
