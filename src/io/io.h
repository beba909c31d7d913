/*
 * io.h - the data path: read/write dispatch to a backend.
 *
 * Seed counterpart: FreeBSD fuse_io.c.  fuse_io_dispatch chooses between
 * the direct backend (fuse_read_directbackend / fuse_write_directbackend:
 * every byte goes to the server) and the buffer-cache backend
 * (fuse_read_biobackend / fuse_write_biobackend).  io_dispatch_read/write
 * are that choice here; today every file takes the direct backend, and
 * the page-cache backend (src/cache/, issue 3) slots in beside it.
 */
#ifndef UFUSE_IO_H
#define UFUSE_IO_H

#include <sys/types.h>
#include <sys/uio.h>

#include "node/node.h"

/* What the data path needs to know of an open file. */
struct io_file {
    struct conn *conn;
    struct node_table *nodes;
    struct node *node;       /* referenced by the handle */
    uint64_t fh;             /* the server's file handle */
    uint32_t fopen_flags;    /* FOPEN_* the server answered */
    int oflags;              /* open(2) flags */
    uint64_t lock_owner;
};

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
