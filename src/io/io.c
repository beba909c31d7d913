/*
 * io.c - read/write dispatch and the direct backend (see io.h).
 *
 * Behaviour, after fuse_read_directbackend / fuse_write_directbackend:
 *  - transfers go in chunks of min(resid, max_read / max_write);
 *  - a READ answered short ends the read (EOF, or a direct_io server);
 *  - O_APPEND writes go at the file's size;
 *  - a WRITE acknowledged short is resent from the acknowledged offset,
 *    except for FOPEN_DIRECT_IO files, where the short count is returned;
 *  - a WRITE acknowledged with more bytes than were sent is EINVAL and
 *    drops the cached attributes;
 *  - a write past the cached size extends it;
 *  - zero-length transfers send nothing.
 * io_transfer_read / io_transfer_write are those loops; the strategy
 * (bio.c) uses them too, with FUSE_WRITE_CACHE on write-back WRITEs (then
 * the size is the cache's to keep, not extended here).  On a cached node
 * the direct backends first write back the overlapped dirty pages, and a
 * direct write drops the cached range after (genfs_do_directio).
 *
 * Which transfers go direct, and how much of them:
 *  - cache=direct: every transfer, whole (there is no cache).
 *  - FOPEN_DIRECT_IO (the server's answer to OPEN): every transfer, whole,
 *    with the caller's exact offset and length.  Linux's read and write
 *    of such files never use the page cache (fuse_direct_read_iter /
 *    fuse_direct_write_iter: no clip at the cached size, a short READ or
 *    WRITE is the answer), and
 *    servers rely on it: a /proc-style file whose size says 0 or 4096 but
 *    whose READ returns the text it has, a stream or control file that
 *    answers each request as it comes.  Page-sized READs at page offsets,
 *    a clip at the size, or writes merged and deferred would break them:
 *    the alignment rule below does not apply.
 *  - O_DIRECT on a cached session (a regular, cached file; the caller's
 *    hint): genfs_directio's rule at page granularity.  Only the
 *    page-aligned middle goes direct: for a read the whole pages inside
 *    EOF (the size the client knows: io_cached_size, GETATTR if expired),
 *    for a write the whole pages it covers (a write extending the file
 *    sends its middle direct and its tail through the cache; each extends
 *    the size as it lands).  The unaligned head and tail go through the
 *    buffered backends, as whole cached pages: write-through WRITEs the
 *    caller's bytes, write-back leaves dirty pages for putpages.  NetBSD
 *    goes direct for DEV_BSIZE-aligned chunks inside EOF and leaves the
 *    rest to the buffered path; Linux sends the whole O_DIRECT range to
 *    the server (fuse_direct_IO: exact offsets; a read at or past i_size
 *    returns 0) after writing back, and for writes invalidating, the pages
 *    it covers.
 *    What the rule buys here: unaligned O_DIRECT heads and tails hit whole
 *    cached pages the next time (a log or database reading and rewriting
 *    partial pages), and the server sees page-aligned direct transfers.
 *    Its price: up to three requests for an unaligned transfer.
 *
 * Locks: m->append_mu[nodeid % IO_APPEND_STRIPES] around an O_APPEND
 * write-through/direct write (GETATTR to WRITE), taken before obj->wlock;
 * obj->wlock around every write of a cached node (an O_DIRECT write's
 * head, middle and tail under one hold); node and conn locks through
 * their APIs.
 *
 * Invariants (on a cached node, whichever backend):
 *  1. A direct READ never misses data the cache holds dirty: the dirty
 *     pages it covers are written back first (heads and tails read them
 *     in the cache).
 *  2. After a direct WRITE no cached page holds bytes older than it: the
 *     pages it covers are written back before and dropped after, under
 *     wlock; the heads and tails of O_DIRECT writes update the pages they
 *     touch like any buffered write.
 *  3. FOPEN_DIRECT_IO and cache=direct transfers reach the server as the
 *     caller made them (chunked by max_read / max_write only).
 */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* At most this many pieces of a caller's iovec go into one request; more
 * are gathered through a bounce buffer. */
#define IO_MAX_PIECES 7
/* Most READs of one direct transfer in flight together (io_target's
 * read_depth): a batch is sent, then collected in order. */
#define IO_READ_DEPTH 8

/*
 * Describe bytes [@off, @off + @len) of @iov as at most @max pieces in
 * @out.  Returns the number of pieces, or -1 if more would be needed.
 */
static int io_slice(const struct iovec *iov, int cnt, size_t off, size_t len,
                    struct iovec *out, int max)
{
    int k = 0;
    for (int i = 0; i < cnt && len; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        if (k == max)
            return -1;
        size_t n = UFUSE_MIN(iov[i].iov_len - off, len);
        out[k++] = (struct iovec){(char *)iov[i].iov_base + off, n};
        len -= n;
        off = 0;
    }
    return k;
}

int io_fetch_attr(struct conn *c, struct node_table *t, struct node *n,
                  int use_fh, uint64_t fh, struct fuse_attr *a)
{
    struct fuse_getattr_in gi = {0};
    if (use_fh && c->p.minor >= 9) {
        gi.getattr_flags = FUSE_GETATTR_FH;
        gi.fh = fh;
    }
    struct fuse_attr_out ao;
    memset(&ao, 0, sizeof ao);
    struct iovec iv = {&gi, sizeof gi};
    struct iovec ov = {&ao, proto_attr_out_size(c->p.minor)};
    struct conn_req r = {.opcode = FUSE_GETATTR, .nodeid = n->nodeid,
                         .in = &iv, .incnt = c->p.minor >= 9 ? 1 : 0,
                         .out = &ov, .outcnt = 1, .out_exact = 1};
    uint64_t seq = node_attr_seq(t);
    int rc = conn_call(c, &r);
    if (rc)
        return rc;
    rc = node_attr_store(t, n, &ao.attr, ao.attr_valid, ao.attr_valid_nsec, seq);
    if (rc)
        return rc;
    /* The node's, not the reply's: a local size (dirty data) or a newer
     * local change wins over what the server said. */
    node_attr_get(t, n, a);
    return 0;
}

int io_getattr(struct io_file *f, struct fuse_attr *a)
{
    if (node_attr_cached(f->nodes, f->node, a))
        return 0;
    return io_fetch_attr(f->conn, f->nodes, f->node, 1, f->fh, a);
}

/* One READ of a transfer (io_transfer_read). */
struct io_read_piece {
    struct fuse_read_in in;
    struct iovec out[IO_MAX_PIECES]; /* in use until the READ ends */
    int outcnt;
    char *bounce;                    /* the caller's iovec was too fragmented */
    size_t at, len;                  /* its place in the transfer */
    ssize_t got;                     /* bytes or -errno, once it ended */
};

/* Describe the READ of [@at, @at + @len) of the transfer in @p. */
static int io_read_piece_init(const struct io_target *t, struct io_read_piece *p,
                              const struct iovec *iov, int cnt, off_t off, size_t at,
                              size_t len)
{
    *p = (struct io_read_piece){
        .in = {.fh = t->fh, .offset = (uint64_t)off + at, .size = (uint32_t)len,
               .flags = t->oflags},
        .at = at, .len = len};
    p->outcnt = io_slice(iov, cnt, at, len, p->out, IO_MAX_PIECES);
    if (p->outcnt < 0) {
        if (!(p->bounce = malloc(len)))
            return -ENOMEM;
        p->out[0] = (struct iovec){p->bounce, len};
        p->outcnt = 1;
    }
    return 0;
}

/* conn_done_fn of a READ sent as part of a batch. */
static void io_read_piece_done(void *ctx, int error, size_t outlen)
{
    struct io_read_piece *p = ctx;
    p->got = error ? error : (ssize_t)outlen;
}

/* Send @n prepared READs; they have all ended when this returns. */
static void io_read_pieces(const struct io_target *t, struct io_read_piece *p, int n)
{
    struct conn *c = t->conn;
    struct iovec in[IO_READ_DEPTH];
    struct conn_req r[IO_READ_DEPTH];
    for (int i = 0; i < n; i++) {
        in[i] = (struct iovec){&p[i].in, sizeof p[i].in};
        r[i] = (struct conn_req){.opcode = FUSE_READ, .nodeid = t->node->nodeid,
                                 .in = &in[i], .incnt = 1, .out = p[i].out,
                                 .outcnt = p[i].outcnt};
    }
    if (n == 1) { /* one at a time: received in place, no callback */
        int rc = conn_call(c, &r[0]);
        p[0].got = rc ? rc : (ssize_t)r[0].outlen;
        return;
    }
    struct conn_group g = {0};
    for (int i = 0; i < n; i++) {
        int rc = conn_submit(c, &r[i], &g, io_read_piece_done, &p[i]);
        if (rc) /* never sent: neither are the rest */
            for (int k = i; k < n; k++)
                p[k].got = rc;
        if (rc)
            break;
    }
    conn_group_wait(c, &g, 0);
}

ssize_t io_transfer_read(const struct io_target *t, const struct iovec *iov, int cnt,
                         off_t off)
{
    struct conn *c = t->conn;
    size_t want = iov_total(iov, cnt), done = 0;
    unsigned depth = UFUSE_MAX(1u, UFUSE_MIN(t->read_depth, (unsigned)IO_READ_DEPTH));
    struct io_read_piece p[IO_READ_DEPTH];
    int rc = 0, more = 1;
    while (more && done < want) {
        int n = 0;
        for (size_t at = done; n < (int)depth && at < want; n++) {
            size_t len = UFUSE_MIN(want - at, (size_t)c->p.max_read);
            rc = io_read_piece_init(t, &p[n], iov, cnt, off, at, len);
            if (rc)
                break;
            at += len;
        }
        if (n == 0)
            break;
        io_read_pieces(t, p, n);
        /* In order: the transfer is what the READs returned up to the
         * first error or short one (what later ones stored past it is
         * not part of the result). */
        for (int i = 0; i < n; i++) {
            if (more && p[i].got < 0) {
                rc = (int)p[i].got;
                more = 0;
            } else if (more) {
                if (p[i].bounce)
                    iov_copy_in(iov, cnt, p[i].at, p[i].bounce, (size_t)p[i].got);
                done += (size_t)p[i].got;
                if ((size_t)p[i].got < p[i].len) {
                    UFUSE_PROBE4(short_read, t->node->nodeid, p[i].in.offset, p[i].len,
                                 (size_t)p[i].got);
                    more = 0; /* short read: EOF, or a direct_io server */
                }
            }
            free(p[i].bounce);
        }
        if (rc)
            more = 0;
    }
    return done ? (ssize_t)done : rc;
}

/*
 * What a WRITE of @sent bytes at @off the server acknowledged with @size
 * means: the bytes it took, or -EINVAL (more than sent: it lies) or -EIO
 * (none, outside direct_io: resending would loop forever).
 */
static ssize_t io_write_acked(const struct io_target *t, uint64_t off, uint32_t size,
                              size_t sent)
{
    struct conn *c = t->conn;
    if (size > sent) {
        ulog_once(c->log, 30, "WRITE acknowledged %u bytes of %zu sent", size, sent);
        node_attr_changed(t->nodes, t->node);
        return -EINVAL;
    }
    if (size == 0 && sent && !t->short_ok) {
        ulog_once(c->log, 31, "WRITE acknowledged 0 bytes; giving up");
        return -EIO;
    }
    if (size && !(t->write_flags & FUSE_WRITE_CACHE))
        node_size_extend(t->nodes, t->node, off + size);
    return size;
}

ssize_t io_transfer_write(const struct io_target *t, const struct iovec *iov, int cnt,
                          off_t off)
{
    struct conn *c = t->conn;
    size_t want = iov_total(iov, cnt), done = 0;
    char *bounce = NULL;
    int rc = 0;
    while (done < want) {
        size_t chunk = UFUSE_MIN(want - done, (size_t)c->p.max_write);
        struct fuse_write_in wi = {
            .fh = t->fh,
            .offset = (uint64_t)off + done,
            .size = (uint32_t)chunk,
            .write_flags = t->write_flags,
            .flags = t->oflags,
        };
        struct iovec in[1 + IO_MAX_PIECES];
        in[0] = (struct iovec){&wi, proto_write_in_size(c->p.minor)};
        int k = io_slice(iov, cnt, done, chunk, in + 1, IO_MAX_PIECES);
        if (k < 0) {
            if (!bounce && !(bounce = malloc(c->p.max_write))) {
                rc = -ENOMEM;
                break;
            }
            iov_copy_out(bounce, iov, cnt, done, chunk);
            in[1] = (struct iovec){bounce, chunk};
            k = 1;
        }
        struct fuse_write_out wo = {0};
        struct iovec out = {&wo, sizeof wo};
        struct conn_req r = {.opcode = FUSE_WRITE, .nodeid = t->node->nodeid,
                             .in = in, .incnt = 1 + k, .out = &out, .outcnt = 1,
                             .out_exact = 1};
        rc = conn_call(c, &r);
        if (rc)
            break;
        ssize_t took = io_write_acked(t, (uint64_t)off + done, wo.size, chunk);
        if (took < 0) {
            rc = (int)took;
            break;
        }
        done += (size_t)took;
        if ((size_t)took < chunk) {
            UFUSE_PROBE4(short_write, t->node->nodeid, wi.offset, chunk, took);
            if (t->short_ok)
                break; /* direct_io: a short write is the answer */
            ulog_once(c->log, 32, "short WRITE without direct_io; resending the rest");
        }
    }
    free(bounce);
    return done ? (ssize_t)done : rc;
}

/* A WRITE sent as a background request (io_transfer_write_start): what
 * its end needs.  The request's own bytes stay the sender's, since the
 * end may come before sendmsg has returned. */
struct io_write_async {
    struct io_target t;
    uint64_t off;
    size_t len;
    struct fuse_write_out wo;
    struct iovec out;
    void (*done)(void *ctx, ssize_t written);
    void *ctx;
};

static void io_write_async_done(void *arg, int error, size_t outlen)
{
    (void)outlen; /* out_exact: a success filled wo */
    struct io_write_async *w = arg;
    ssize_t rc = error ? error : io_write_acked(&w->t, w->off, w->wo.size, w->len);
    if (rc >= 0 && (size_t)rc < w->len)
        UFUSE_PROBE4(short_write, w->t.node->nodeid, w->off, w->len, rc);
    void (*done)(void *, ssize_t) = w->done;
    void *ctx = w->ctx;
    free(w);
    done(ctx, rc);
}

int io_transfer_write_start(const struct io_target *t, const struct iovec *iov, int cnt,
                            off_t off, struct conn_group *g,
                            void (*done)(void *ctx, ssize_t written), void *ctx)
{
    struct conn *c = t->conn;
    size_t len = iov_total(iov, cnt);
    if (len > c->p.max_write)
        return -EINVAL;
    struct io_write_async *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->t = *t;
    w->off = (uint64_t)off;
    w->len = len;
    w->out = (struct iovec){&w->wo, sizeof w->wo};
    w->done = done;
    w->ctx = ctx;
    struct fuse_write_in wi = {.fh = t->fh, .offset = (uint64_t)off, .size = (uint32_t)len,
                               .write_flags = t->write_flags, .flags = t->oflags};
    struct iovec in[1 + IO_MAX_PIECES];
    in[0] = (struct iovec){&wi, proto_write_in_size(c->p.minor)};
    char *bounce = NULL;
    int k = io_slice(iov, cnt, 0, len, in + 1, IO_MAX_PIECES);
    if (k < 0) {
        if (!(bounce = malloc(len ? len : 1))) {
            free(w);
            return -ENOMEM;
        }
        iov_copy_out(bounce, iov, cnt, 0, len);
        in[1] = (struct iovec){bounce, len};
        k = 1;
    }
    struct conn_req r = {.opcode = FUSE_WRITE, .nodeid = t->node->nodeid, .in = in,
                         .incnt = 1 + k, .out = &w->out, .outcnt = 1, .out_exact = 1};
    int rc = conn_submit(c, &r, g, io_write_async_done, w);
    free(bounce);
    if (rc)
        free(w);
    return rc;
}

struct io_target io_target_of(const struct io_file *f)
{
    /* A stream's READs each take what comes next: one at a time. */
    int stream = !!(f->fopen_flags & (FOPEN_STREAM | FOPEN_NONSEEKABLE));
    return (struct io_target){.conn = f->conn, .nodes = f->nodes, .node = f->node,
                              .fh = f->fh, .oflags = (uint32_t)f->oflags,
                              .short_ok = !!(f->fopen_flags & FOPEN_DIRECT_IO),
                              .read_depth = stream ? 1 : f->m->direct_read_depth};
}

/*
 * genfs_do_directio beside the cache: a direct transfer first writes back
 * the cached dirty pages it overlaps (others stay dirty); a direct write
 * then drops the cached pages it covers.
 */
ssize_t io_read_directbackend(struct io_file *f, const struct iovec *iov, int cnt, off_t off)
{
    struct io_target t = io_target_of(f);
    if (!f->obj)
        return io_transfer_read(&t, iov, cnt, off);
    size_t want = iov_total(iov, cnt);
    int rc = cache_putpages(f->obj, (uint64_t)off, want, 1);
    if (rc)
        return rc;
    unsigned seq = cache_wb_mark(f->obj);
    ssize_t got = io_transfer_read(&t, iov, cnt, off);
    if (got >= 0 && (size_t)got < want && cache_wb_unsettled(f->obj, seq)) {
        /* Dirty data past the server's EOF (now, or written back while
         * the READ ran): what it lacks up to our size is a hole, as in
         * the buffered path. */
        uint64_t size = node_size(f->nodes, f->node), end = (uint64_t)off + (uint64_t)got;
        if (size > end) {
            size_t zeros = (size_t)UFUSE_MIN(size - end, (uint64_t)(want - (size_t)got));
            iov_copy_in(iov, cnt, (size_t)got, NULL, zeros);
            got += (ssize_t)zeros;
        }
    }
    return got;
}

ssize_t io_directio_write(struct io_file *f, const struct iovec *iov, int cnt, off_t off)
{
    struct io_target t = io_target_of(f);
    size_t len = iov_total(iov, cnt);
    ssize_t rc = cache_putpages(f->obj, (uint64_t)off, len, 1);
    if (rc == 0)
        rc = io_transfer_write(&t, iov, cnt, off);
    cache_attr_forget(f->obj);
    cache_invalidate(f->obj, (uint64_t)off, len, 0);
    return rc;
}

ssize_t io_write_directbackend(struct io_file *f, const struct iovec *iov, int cnt, off_t off)
{
    if (!f->obj) {
        struct io_target t = io_target_of(f);
        return io_transfer_write(&t, iov, cnt, off);
    }
    cache_wlock_begin(f->obj);
    ssize_t rc = io_directio_write(f, iov, cnt, off);
    cache_wlock_end(f->obj);
    return rc;
}

/* ---- genfs_directio's alignment rule (O_DIRECT beside the cache) ------------------------- */

/* An O_DIRECT file on a cached session, not FOPEN_DIRECT_IO (see above). */
static int io_aligned(const struct io_file *f)
{
    return f->obj && !f->buffered && !(f->fopen_flags & FOPEN_DIRECT_IO);
}

static uint64_t io_page_down(uint64_t x)
{
    return x & ~(uint64_t)(CACHE_PAGE_SIZE - 1);
}

static uint64_t io_page_up(uint64_t x)
{
    return io_page_down(x + CACHE_PAGE_SIZE - 1);
}

/*
 * An O_DIRECT transfer of @iov at @off on a cached node (a write holds
 * wlock): its whole pages (for a read, those inside EOF) go direct, the
 * unaligned head and the tail through the buffered backend, in file
 * order, up to the first short or failed piece.  Bytes transferred, or
 * -errno if none.
 */
static ssize_t io_aligned_transfer(struct io_file *f, const struct iovec *iov, int cnt, off_t off,
                                   int write)
{
    uint64_t pos = (uint64_t)off, end = pos + iov_total(iov, cnt), lim = end;
    if (!write) {
        uint64_t fsize;
        int err = io_cached_size(f, &fsize);
        if (err)
            return err;
        if (pos >= fsize)
            return 0;
        lim = UFUSE_MIN(end, fsize);
    }
    /* The pieces are [cut[i], cut[i + 1]): head, middle (direct), tail. */
    uint64_t cut[4] = {pos, io_page_up(pos), io_page_down(lim), end};
    if (cut[1] >= cut[2]) /* not one whole page: all through the cache */
        return write ? io_write_biobackend(f, iov, cnt, off) : io_read_biobackend(f, iov, cnt, off);
    struct iovec small[8];
    struct iovec *sub = cnt <= 8 ? small : malloc((size_t)cnt * sizeof *sub);
    if (!sub)
        return -ENOMEM;
    size_t done = 0;
    ssize_t rc = 0;
    for (int i = 0; i < 3; i++) {
        size_t len = (size_t)(cut[i + 1] - cut[i]);
        if (!len)
            continue;
        int k = io_slice(iov, cnt, done, len, sub, cnt);
        off_t at = (off_t)cut[i];
        if (write)
            rc = i == 1 ? io_directio_write(f, sub, k, at) : io_write_biobackend(f, sub, k, at);
        else
            rc = i == 1 ? io_read_directbackend(f, sub, k, at) : io_read_biobackend(f, sub, k, at);
        if (rc < 0)
            break;
        done += (size_t)rc;
        if ((size_t)rc < len)
            break;
    }
    if (sub != small)
        free(sub);
    return done ? (ssize_t)done : rc;
}

/* A write through the page cache (buffered, or O_DIRECT's rule); wlock held. */
static ssize_t io_write_cached(struct io_file *f, const struct iovec *iov, int cnt, off_t off)
{
    return f->buffered ? io_write_biobackend(f, iov, cnt, off)
                       : io_aligned_transfer(f, iov, cnt, off, 1);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

ssize_t io_dispatch_read(struct io_file *f, const struct iovec *iov, int cnt,
                         off_t off)
{
    if (off < 0)
        return -EINVAL;
    size_t len = iov_total(iov, cnt);
    if (len == 0)
        return 0;
    UFUSE_PROBE4(read_backend, f->node->nodeid, off, len, f->buffered);
    if (f->buffered)
        return io_read_biobackend(f, iov, cnt, off);
    if (io_aligned(f))
        return io_aligned_transfer(f, iov, cnt, off, 0);
    return io_read_directbackend(f, iov, cnt, off);
}

ssize_t io_dispatch_write(struct io_file *f, const struct iovec *iov, int cnt,
                          off_t off, off_t *where)
{
    if (off < 0)
        return -EINVAL;
    size_t len = iov_total(iov, cnt);
    if (len == 0) {
        *where = off;
        return 0;
    }
    UFUSE_PROBE4(write_backend, f->node->nodeid, off, len,
                 f->buffered ? 1 + f->m->writeback : 0);
    int cached = f->buffered || io_aligned(f);
    if (cached && f->m->writeback) {
        /* Write-back: O_APPEND offsets are ours (the size is local). */
        cache_wlock_begin(f->obj);
        if (f->oflags & O_APPEND)
            off = (off_t)node_size(f->nodes, f->node);
        ssize_t rc = (uint64_t)off + len > (uint64_t)INT64_MAX
                         ? -EFBIG
                         : io_write_cached(f, iov, cnt, off);
        cache_wlock_end(f->obj);
        *where = off;
        if (rc > 0)
            cache_balance_dirty(f->obj);
        return rc;
    }
    pthread_mutex_t *append = NULL;
    if (f->oflags & O_APPEND) {
        append = &f->m->append_mu[f->node->nodeid % IO_APPEND_STRIPES];
        pthread_mutex_lock(append);
        struct fuse_attr a;
        int rc = io_getattr(f, &a);
        if (rc) {
            pthread_mutex_unlock(append);
            return rc;
        }
        off = (off_t)a.size;
    }
    ssize_t rc;
    if ((uint64_t)off + len > (uint64_t)INT64_MAX) {
        rc = -EFBIG;
    } else if (cached) {
        cache_wlock_begin(f->obj);
        rc = io_write_cached(f, iov, cnt, off);
        cache_wlock_end(f->obj);
    } else {
        rc = io_write_directbackend(f, iov, cnt, off);
    }
    if (append)
        pthread_mutex_unlock(append);
    *where = off;
    return rc;
}
