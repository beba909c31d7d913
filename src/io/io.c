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
 * direct write drops the cached range after (genfs_directio).
 *
 * Locks: m->append_mu[nodeid % IO_APPEND_STRIPES] around an O_APPEND
 * write-through/direct write (GETATTR to WRITE), taken before obj->wlock;
 * node and conn locks through their APIs.
 */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* At most this many pieces of a caller's iovec go into one request; more
 * are gathered through a bounce buffer. */
#define IO_MAX_PIECES 7

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

ssize_t io_transfer_read(const struct io_target *t, const struct iovec *iov, int cnt,
                         off_t off)
{
    struct conn *c = t->conn;
    size_t want = iov_total(iov, cnt), done = 0;
    char *bounce = NULL;
    int rc = 0;
    while (done < want) {
        size_t chunk = UFUSE_MIN(want - done, (size_t)c->p.max_read);
        struct fuse_read_in ri = {
            .fh = t->fh,
            .offset = (uint64_t)off + done,
            .size = (uint32_t)chunk,
            .flags = t->oflags,
        };
        struct iovec in = {&ri, sizeof ri};
        struct iovec out[IO_MAX_PIECES];
        int k = io_slice(iov, cnt, done, chunk, out, IO_MAX_PIECES);
        int bounced = k < 0;
        if (bounced) {
            if (!bounce && !(bounce = malloc(c->p.max_read))) {
                rc = -ENOMEM;
                break;
            }
            out[0] = (struct iovec){bounce, chunk};
            k = 1;
        }
        struct conn_req r = {.opcode = FUSE_READ, .nodeid = t->node->nodeid,
                             .in = &in, .incnt = 1, .out = out, .outcnt = k};
        rc = conn_call(c, &r);
        if (rc)
            break;
        if (bounced)
            iov_copy_in(iov, cnt, done, bounce, r.outlen);
        done += r.outlen;
        if (r.outlen < chunk) {
            UFUSE_PROBE4(short_read, t->node->nodeid, ri.offset, chunk, r.outlen);
            break; /* short read: EOF, or a direct_io server */
        }
    }
    free(bounce);
    return done ? (ssize_t)done : rc;
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
        if (wo.size > chunk) {
            /* The server claims to have written more than we sent. */
            ulog_once(c->log, 30, "WRITE acknowledged %u bytes of %zu sent", wo.size, chunk);
            node_attr_changed(t->nodes, t->node);
            rc = -EINVAL;
            break;
        }
        done += wo.size;
        if (wo.size && !(t->write_flags & FUSE_WRITE_CACHE))
            node_size_extend(t->nodes, t->node, (uint64_t)off + done);
        if (wo.size < chunk) {
            UFUSE_PROBE4(short_write, t->node->nodeid, wi.offset, chunk, wo.size);
            if (t->short_ok)
                break; /* direct_io: a short write is the answer */
            if (wo.size == 0) {
                /* Resending would loop forever. */
                ulog_once(c->log, 31, "WRITE acknowledged 0 bytes; giving up");
                rc = -EIO;
                break;
            }
            ulog_once(c->log, 32, "short WRITE without direct_io; resending the rest");
        }
    }
    free(bounce);
    return done ? (ssize_t)done : rc;
}

struct io_target io_target_of(const struct io_file *f)
{
    return (struct io_target){.conn = f->conn, .nodes = f->nodes, .node = f->node,
                              .fh = f->fh, .oflags = (uint32_t)f->oflags,
                              .short_ok = !!(f->fopen_flags & FOPEN_DIRECT_IO)};
}

/*
 * genfs_directio beside the cache: a direct transfer first writes back the
 * cached dirty pages it overlaps (others stay dirty); a direct write then
 * drops the cached pages it covers.
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
    pthread_mutex_lock(&f->obj->wlock);
    ssize_t rc = io_directio_write(f, iov, cnt, off);
    pthread_mutex_unlock(&f->obj->wlock);
    return rc;
}

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
    if (f->buffered && f->m->writeback) {
        /* Write-back: O_APPEND offsets are ours (the size is local). */
        pthread_mutex_lock(&f->obj->wlock);
        if (f->oflags & O_APPEND)
            off = (off_t)node_size(f->nodes, f->node);
        ssize_t rc = (uint64_t)off + len > (uint64_t)INT64_MAX
                         ? -EFBIG
                         : io_write_biobackend(f, iov, cnt, off);
        pthread_mutex_unlock(&f->obj->wlock);
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
    } else if (f->buffered) {
        pthread_mutex_lock(&f->obj->wlock);
        rc = io_write_biobackend(f, iov, cnt, off);
        pthread_mutex_unlock(&f->obj->wlock);
    } else {
        rc = io_write_directbackend(f, iov, cnt, off);
    }
    if (append)
        pthread_mutex_unlock(append);
    *where = off;
    return rc;
}
