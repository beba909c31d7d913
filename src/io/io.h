/*
 * io.h - the data path: read/write dispatch to a backend.
 *
 * Seed counterpart: FreeBSD fuse_io.c.  fuse_io_dispatch chooses between
 * the direct backend (fuse_read_directbackend / fuse_write_directbackend:
 * every byte goes to the server) and the buffer-cache backend
 * (fuse_read_biobackend / fuse_write_biobackend).  io_dispatch_read/write
 * are that choice here: cache=direct and FOPEN_DIRECT_IO take the direct
 * backend; O_DIRECT on a cached session takes it for the page-aligned
 * middle only, heads and tails going through the cache (genfs_directio's
 * rule: see io.c); every other file takes the buffered one (bio.c) over
 * the page cache (src/cache/).
 */
#ifndef UFUSE_IO_H
#define UFUSE_IO_H

#include <sys/types.h>
#include <sys/uio.h>

#include "cache/cache.h"
#include "node/node.h"

/* The session's data path: which backend, and the page cache. */
#define IO_APPEND_STRIPES 16

struct io_mount {
    struct conn *conn;
    struct node_table *nodes;
    int cache_on;            /* files use the page cache (not cache=direct) */
    int writeback;           /* write-back (else write-through) */
    int size_inval;          /* EXPLICIT_INVAL_DATA not granted: a size we did
                                not make drops the cached data (as Linux) */
    int auto_inval;          /* AUTO_INVAL_DATA granted, EXPLICIT not: so
                                does an mtime we did not make */
    uint32_t readahead;      /* largest readahead window, bytes */
    unsigned direct_read_depth; /* READs of one direct transfer in flight at
                                   once (io_transfer_read): 1 unless the
                                   server granted FUSE_ASYNC_DIO */
    /* O_APPEND writes that ask the server for the size (write-through,
     * direct) hold the stripe of their node from that GETATTR to the end
     * of the WRITE, so concurrent appenders of one file never write at the
     * same size (the kernel holds the inode lock there). */
    pthread_mutex_t append_mu[IO_APPEND_STRIPES];
    struct cache cache;
};

/* What the data path needs to know of an open file. */
struct io_file {
    struct io_mount *m;
    struct conn *conn;
    struct node_table *nodes;
    struct node *node;       /* referenced by the handle */
    uint64_t fh;             /* the server's file handle */
    uint32_t fopen_flags;    /* FOPEN_* the server answered */
    int oflags;              /* open(2) flags (as the caller gave them) */
    uint64_t lock_owner;
    /* Page cache (obj NULL under cache=direct or for non-regular files). */
    struct cache_obj *obj;   /* referenced */
    struct cache_handle ch;  /* this file as a carrier of page I/O */
    int buffered;            /* transfers go through the cache */
    /* Sequential detection: read and, for a random read, set without a
     * lock (a heuristic, as Linux's file_ra_state); a sequential read
     * takes ra_mu to move the readahead window. */
    pthread_mutex_t ra_mu;   /* ra_next, and writers of the size copy */
    _Atomic uint64_t seq_next; /* where a sequential read would start */
    _Atomic unsigned seqcount; /* consecutive sequential reads */
    uint64_t ra_next;        /* readahead issued up to here */
    /* A copy of the node's valid size, so that a cache hit takes no lock:
     * good while the node's attr_gen is unchanged and before size_until.
     * A seqlock: size_seq is odd while ra_mu's holder rewrites it. */
    _Atomic unsigned size_seq;
    _Atomic uint64_t size_copy, size_gen, size_until;
};

/* Set up / tear down the session's data path (cache per @m's fields). */
int io_mount_init(struct io_mount *m, const struct cache_params *p);
/* Write back everything; 0 or the first error. */
int io_mount_sync(struct io_mount *m);
void io_mount_destroy(struct io_mount *m);

/* Open flags as the server is to see them (write-back: O_WRONLY is sent
 * as O_RDWR so read-modify-write can read; O_APPEND stays ours). */
int io_open_flags(struct io_mount *m, int flags);
/* A file was opened: attach it to the page cache (drops the cached data
 * unless FOPEN_KEEP_CACHE).  0 or -errno. */
int io_file_open(struct io_file *f);
/* After FLUSH, before RELEASE: detach from the cache. */
void io_file_close(struct io_file *f);
/* fsync, and close before its FLUSH: write back the file's dirty data
 * and wait; the write-back error this handle has not seen, if any. */
int io_file_sync(struct io_file *f);

/* Write back @n's dirty pages now (write-back mode): before a SETATTR that
 * sets its times, so no later WRITE moves the server's mtime past them. */
void io_writeback_node(struct io_mount *m, struct node *n);

/*
 * Changing the size of @n (SETATTR with FATTR_SIZE): io_setsize_begin
 * serializes with writers and holds write-back off; io_setsize_end
 * (with the SETATTR's result) truncates the cache.  Also used around
 * operations that change data behind the cache (fallocate, copy_file_range).
 */
struct cache_obj *io_setsize_begin(struct io_mount *m, struct node *n);
void io_setsize_end(struct io_mount *m, struct cache_obj *o, int rc, int size_set,
                    uint64_t size);
/* @n lost a name: if nobody has it open, drop its cached data (and so
 * the cache's reference on it). */
void io_drop_unused(struct io_mount *m, struct node *n);
/* Write back and drop the cached pages of [@off, @off + @len) of @n
 * (@len 0: to the end): data is about to change on the server. */
int io_range_changed(struct io_mount *m, struct node *n, uint64_t off, uint64_t len,
                     int drop);

/* Read up to iov's length at @off: bytes read, or -errno. */
ssize_t io_dispatch_read(struct io_file *f, const struct iovec *iov, int cnt,
                         off_t off);
/* Write iov at @off (O_APPEND: at the size): bytes written, or -errno.
 * *@where receives the offset actually written at (for O_APPEND). */
ssize_t io_dispatch_write(struct io_file *f, const struct iovec *iov, int cnt,
                          off_t off, off_t *where);

ssize_t io_read_directbackend(struct io_file *f, const struct iovec *iov,
                              int cnt, off_t off);
ssize_t io_write_directbackend(struct io_file *f, const struct iovec *iov,
                               int cnt, off_t off);
/* genfs_directio's write on a cached node (its wlock held): write back
 * the dirty pages the range overlaps, WRITE, drop the cached range. */
ssize_t io_directio_write(struct io_file *f, const struct iovec *iov, int cnt, off_t off);
/* The file's size for a cached transfer (what the client knows: the
 * cached attributes, a GETATTR when they expired).  0 or -errno. */
int io_cached_size(struct io_file *f, uint64_t *size);
/* fuse_read_biobackend / fuse_write_biobackend: through the page cache. */
ssize_t io_read_biobackend(struct io_file *f, const struct iovec *iov, int cnt, off_t off);
ssize_t io_write_biobackend(struct io_file *f, const struct iovec *iov, int cnt, off_t off);

/* READ / WRITE of @node through handle @fh (the direct backends' and the
 * strategy's transfer loops).  @write_flags: FUSE_WRITE_CACHE for
 * write-back.  @short_ok: a short WRITE is the answer (direct_io).
 * @read_depth: a read larger than max_read sends up to that many READs
 * before collecting them (FUSE_ASYNC_DIO: the server takes the READs of one
 * direct transfer in parallel, as Linux's async direct I/O sends them). */
struct io_target {
    struct conn *conn;
    struct node_table *nodes;
    struct node *node;
    uint64_t fh;
    uint32_t oflags;
    uint32_t write_flags;
    int short_ok;
    unsigned read_depth;     /* READs of one transfer in flight at once (0: 1) */
};
/* The target of @f's own handle. */
struct io_target io_target_of(const struct io_file *f);
ssize_t io_transfer_read(const struct io_target *t, const struct iovec *iov, int cnt,
                         off_t off);
/*
 * One WRITE of @iov (at most max_write bytes) at @off as a background
 * request of @g: 0, then @done(@ctx, bytes taken or -errno) runs once when
 * it ends, on whichever thread receives the reply; or -errno, and it does
 * not.  @t's node must live until then.
 */
int io_transfer_write_start(const struct io_target *t, const struct iovec *iov, int cnt,
                            off_t off, struct conn_group *g,
                            void (*done)(void *ctx, ssize_t written), void *ctx);
ssize_t io_transfer_write(const struct io_target *t, const struct iovec *iov, int cnt,
                          off_t off);

/*
 * Current attributes of the file: the cached ones if valid, else a
 * GETATTR (with FUSE_GETATTR_FH when the server speaks 7.9+).
 */
int io_getattr(struct io_file *f, struct fuse_attr *a);

/*
 * GETATTR of @n (with @fh when @use_fh) and store the result.
 * Shared by the path and handle calls.
 */
int io_fetch_attr(struct conn *c, struct node_table *t, struct node *n,
                  int use_fh, uint64_t fh, struct fuse_attr *a);

#endif
