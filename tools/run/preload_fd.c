/*
 * preload_fd.c - calls on file descriptors.  A call on an fd of a mount
 * (preload.h invariant 1) becomes a request to its broker; any other fd
 * goes to libc untouched.  Locks and invariants: preload.h.
 *
 * read/write larger than RUN_MAX_DATA are sent in pieces; a short piece
 * ends the call, as a short read(2) does.  dup, dup2, dup3 and
 * F_DUPFD(_CLOEXEC) duplicate the real fd (the kernel shares the identity
 * pipe's description) and copy the table entry.  F_GETFD/F_SETFD act on
 * the real fd, so close-on-exec is the kernel's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload.h"

/* ---- data ------------------------------------------------------------- */

/* Read up to @n bytes at @off (-1: the position) into @buf. */
static ssize_t fd_read(const struct pl_fd *f, void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        size_t piece = n - done > RUN_MAX_DATA ? RUN_MAX_DATA : n - done;
        struct pl_call c = { .q = { .a = off < 0 ? -1 : off + (off_t)done, .b = (int64_t)piece },
                             .out = (char *)buf + done, .out_cap = piece };
        int64_t r = pl_fd_call(f, RUN_READ, &c);
        if (r < 0)
            return done ? (ssize_t)done : r;
        if ((size_t)r > piece || c.out_len != (size_t)r)
            return done ? (ssize_t)done : -EIO;
        done += (size_t)r;
        if ((size_t)r < piece)
            break;
    }
    return (ssize_t)done;
}

static ssize_t fd_write(const struct pl_fd *f, const void *buf, size_t n, off_t off)
{
    size_t done = 0;
    do {
        size_t piece = n - done > RUN_MAX_DATA ? RUN_MAX_DATA : n - done;
        struct pl_call c = { .q = { .a = off < 0 ? -1 : off + (off_t)done },
                             .data = (const char *)buf + done, .data_len = piece };
        int64_t r = pl_fd_call(f, RUN_WRITE, &c);
        if (r < 0)
            return done ? (ssize_t)done : r;
        if ((size_t)r > piece)
            return -EIO;
        done += (size_t)r;
        if ((size_t)r < piece)
            break;
    } while (done < n);
    return (ssize_t)done;
}

static ssize_t fd_readv(const struct pl_fd *f, const struct iovec *iov, int cnt, off_t off)
{
    ssize_t total = 0;
    for (int i = 0; i < cnt; i++) {
        ssize_t r = fd_read(f, iov[i].iov_base, iov[i].iov_len, off < 0 ? -1 : off + total);
        if (r < 0)
            return total ? total : r;
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

static ssize_t fd_writev(const struct pl_fd *f, const struct iovec *iov, int cnt, off_t off)
{
    /* One request when it fits, so an O_APPEND writev stays one append. */
    size_t len = 0;
    for (int i = 0; i < cnt; i++)
        len += iov[i].iov_len;
    if (len <= RUN_MAX_DATA) {
        char *buf = malloc(len ? len : 1);
        if (!buf)
            return -ENOMEM;
        size_t o = 0;
        for (int i = 0; i < cnt; i++) {
            memcpy(buf + o, iov[i].iov_base, iov[i].iov_len);
            o += iov[i].iov_len;
        }
        ssize_t r = fd_write(f, buf, len, off);
        free(buf);
        return r;
    }
    ssize_t total = 0;
    for (int i = 0; i < cnt; i++) {
        ssize_t r = fd_write(f, iov[i].iov_base, iov[i].iov_len, off < 0 ? -1 : off + total);
        if (r < 0)
            return total ? total : r;
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

PL_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(read)(fd, buf, n);
    return pl_ret(fd_read(&f, buf, n, -1));
}

PL_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(write)(fd, buf, n);
    return pl_ret(fd_write(&f, buf, n, -1));
}

PL_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(pread)(fd, buf, n, off);
    return pl_ret(off < 0 ? -EINVAL : fd_read(&f, buf, n, off));
}

PL_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(pwrite)(fd, buf, n, off);
    return pl_ret(off < 0 ? -EINVAL : fd_write(&f, buf, n, off));
}

PL_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(readv)(fd, iov, cnt);
    return pl_ret(fd_readv(&f, iov, cnt, -1));
}

PL_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(writev)(fd, iov, cnt);
    return pl_ret(fd_writev(&f, iov, cnt, -1));
}

PL_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(preadv)(fd, iov, cnt, off);
    return pl_ret(off < 0 ? -EINVAL : fd_readv(&f, iov, cnt, off));
}

PL_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(pwritev)(fd, iov, cnt, off);
    return pl_ret(off < 0 ? -EINVAL : fd_writev(&f, iov, cnt, off));
}

PL_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(preadv2)(fd, iov, cnt, off, flags);
    return pl_ret(fd_readv(&f, iov, cnt, off));
}

PL_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(pwritev2)(fd, iov, cnt, off, flags);
    return pl_ret(fd_writev(&f, iov, cnt, off));
}

/* 64-bit aliases: off_t is 64 bits on the platforms we build for. */
PL_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off) { return pread(fd, buf, n, off); }
PL_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }
PL_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off) { return preadv(fd, iov, cnt, off); }
PL_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) { return pwritev(fd, iov, cnt, off); }
PL_EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) { return preadv2(fd, iov, cnt, off, flags); }
PL_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) { return pwritev2(fd, iov, cnt, off, flags); }

PL_EXPORT off_t lseek(int fd, off_t off, int whence)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(lseek)(fd, off, whence);
    struct pl_call c = { .q = { .a = off, .flags = (uint32_t)whence } };
    if (f.is_dir) {
        /* Directories: position 0 rewinds (seekdir handles the rest). */
        if (whence != SEEK_SET || off < 0)
            return pl_ret(-EINVAL);
        c.q.a = off;
        return pl_ret(pl_fd_call(&f, RUN_SEEKDIR, &c) < 0 ? -EINVAL : off);
    }
    return pl_ret(pl_fd_call(&f, RUN_LSEEK, &c));
}
PL_EXPORT off_t lseek64(int fd, off_t off, int whence) { return lseek(fd, off, whence); }

/* ---- attributes --------------------------------------------------------- */

int pl_fstat_mount(const struct pl_fd *f, struct stat *st)
{
    struct pl_call c = { .out = st, .out_cap = sizeof *st };
    int64_t r = pl_fd_call(f, RUN_FSTAT, &c);
    if (r == 0 && c.out_len != sizeof *st)
        r = -EIO;
    return (int)r;
}

PL_EXPORT int fstat(int fd, struct stat *st)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(fstat)(fd, st);
    return (int)pl_ret(pl_fstat_mount(&f, st));
}
PL_EXPORT int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }

PL_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(__fxstat)(ver, fd, st);
    return (int)pl_ret(pl_fstat_mount(&f, st));
}
PL_EXPORT int __fxstat64(int ver, int fd, struct stat64 *st) { return __fxstat(ver, fd, (struct stat *)st); }

PL_EXPORT int ftruncate(int fd, off_t len)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(ftruncate)(fd, len);
    if (f.is_dir)
        return (int)pl_ret(-EINVAL);
    struct pl_call c = { .q = { .a = len } };
    return (int)pl_ret(pl_fd_call(&f, RUN_FTRUNCATE, &c));
}
PL_EXPORT int ftruncate64(int fd, off_t len) { return ftruncate(fd, len); }

static int fd_sync(int fd, int (*real)(int), unsigned datasync)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return real(fd);
    struct pl_call c = { .q = { .flags = datasync } };
    return (int)pl_ret(pl_fd_call(&f, RUN_FSYNC, &c));
}

PL_EXPORT int fsync(int fd) { return fd_sync(fd, REAL(fsync), 0); }
PL_EXPORT int fdatasync(int fd) { return fd_sync(fd, REAL(fdatasync), 1); }

PL_EXPORT int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(sync_file_range)(fd, off, n, flags);
    struct pl_call c = { .q = { .flags = 1 } };
    return (int)pl_ret(flags & SYNC_FILE_RANGE_WRITE ? pl_fd_call(&f, RUN_FSYNC, &c) : 0);
}

PL_EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(fallocate)(fd, mode, off, len);
    struct pl_call c = { .q = { .flags = (uint32_t)mode, .a = off, .b = len } };
    return (int)pl_ret(pl_fd_call(&f, RUN_FALLOCATE, &c));
}
PL_EXPORT int fallocate64(int fd, int mode, off_t off, off_t len) { return fallocate(fd, mode, off, len); }

/* posix_fallocate returns the error number instead of setting errno. */
PL_EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(posix_fallocate)(fd, off, len);
    if (off < 0 || len <= 0)
        return EINVAL;
    struct pl_call c = { .q = { .a = off, .b = len } };
    int64_t r = pl_fd_call(&f, RUN_FALLOCATE, &c);
    if (r == -EOPNOTSUPP) {
        /* As glibc's fallback: make sure the range exists by extending. */
        struct stat st;
        r = pl_fstat_mount(&f, &st);
        if (r == 0 && st.st_size < off + len) {
            struct pl_call t = { .q = { .a = off + len } };
            r = pl_fd_call(&f, RUN_FTRUNCATE, &t);
        }
    }
    return r < 0 ? (int)-r : 0;
}
PL_EXPORT int posix_fallocate64(int fd, off_t off, off_t len) { return posix_fallocate(fd, off, len); }

PL_EXPORT int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
    if (!pl_is_mount_fd(fd))
        return REAL(posix_fadvise)(fd, off, len, advice);
    return advice < 0 || advice > POSIX_FADV_NOREUSE ? EINVAL : 0;
}
PL_EXPORT int posix_fadvise64(int fd, off_t off, off_t len, int advice) { return posix_fadvise(fd, off, len, advice); }

PL_EXPORT int fchmod(int fd, mode_t mode)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(fchmod)(fd, mode);
    struct pl_call c = { .q = { .mode = mode } };
    return (int)pl_ret(pl_fd_call(&f, RUN_FCHMOD, &c));
}

PL_EXPORT int fchown(int fd, uid_t uid, gid_t gid)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(fchown)(fd, uid, gid);
    struct pl_call c = { .q = { .a = uid, .b = gid } };  /* -1 stays (uid_t)-1 */
    return (int)pl_ret(pl_fd_call(&f, RUN_FCHOWN, &c));
}

PL_EXPORT int futimens(int fd, const struct timespec ts[2])
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(futimens)(fd, ts);
    struct pl_call c = { .data = ts, .data_len = ts ? 2 * sizeof *ts : 0 };
    return (int)pl_ret(pl_fd_call(&f, RUN_FUTIMENS, &c));
}

static void statvfs_to_statfs(const struct statvfs *v, struct statfs *s)
{
    memset(s, 0, sizeof *s);
    s->f_type = 0x65735546; /* FUSE_SUPER_MAGIC */
    s->f_bsize = (long)v->f_bsize;
    s->f_frsize = (long)v->f_frsize;
    s->f_blocks = v->f_blocks;
    s->f_bfree = v->f_bfree;
    s->f_bavail = v->f_bavail;
    s->f_files = v->f_files;
    s->f_ffree = v->f_ffree;
    s->f_namelen = (long)v->f_namemax;
}

int pl_statvfs_mount(int mnt, const char *rel, struct statvfs *v)
{
    struct pl_call c = { .q = { .op = RUN_STATFS }, .path = rel, .out = v, .out_cap = sizeof *v };
    int64_t r = pl_call(mnt, &c);
    if (r == 0 && c.out_len != sizeof *v)
        r = -EIO;
    return (int)r;
}

int pl_statfs_mount(int mnt, const char *rel, struct statfs *s)
{
    struct statvfs v;
    int r = pl_statvfs_mount(mnt, rel, &v);
    if (r == 0)
        statvfs_to_statfs(&v, s);
    return r;
}

PL_EXPORT int fstatvfs(int fd, struct statvfs *v)
{
    struct pl_fd f;
    char path[PATH_MAX];
    if (!pl_fd_get(fd, &f, path))
        return REAL(fstatvfs)(fd, v);
    return (int)pl_ret(pl_statvfs_mount(f.mnt, path, v));
}
PL_EXPORT int fstatvfs64(int fd, struct statvfs64 *v) { return fstatvfs(fd, (struct statvfs *)v); }

PL_EXPORT int fstatfs(int fd, struct statfs *s)
{
    struct pl_fd f;
    char path[PATH_MAX];
    if (!pl_fd_get(fd, &f, path))
        return REAL(fstatfs)(fd, s);
    return (int)pl_ret(pl_statfs_mount(f.mnt, path, s));
}
PL_EXPORT int fstatfs64(int fd, struct statfs64 *s) { return fstatfs(fd, (struct statfs *)s); }

/* ---- the fd itself -------------------------------------------------------- */

PL_EXPORT int close(int fd)
{
    if (!pl_is_mount_fd(fd))
        return REAL(close)(fd);
    int r = pl_close_mount_fd(fd);
    pl_std_sync(fd);
    return (int)pl_ret(r);
}

PL_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    /* Flush and forget our fds in the range first; then let the kernel
     * close (or mark close-on-exec) the rest. */
    if (!(flags & CLOSE_RANGE_CLOEXEC)) {
        for (unsigned fd = first; fd <= last && fd < 1u << 20; fd++) {
            if (pl_is_mount_fd((int)fd))
                (void)pl_close_mount_fd((int)fd);
        }
    }
    return REAL(close_range)(first, last, flags);
}

/* After the kernel made @nfd a copy of @fd: copy the table entry (or drop
 * a stale one if @nfd was one of ours and @fd is not). */
static void dup_entry(int fd, int nfd)
{
    struct pl_fd f;
    char path[PATH_MAX];
    if (pl_fd_get(fd, &f, path))
        pl_fd_set(nfd, f.desc, f.mnt, f.is_dir, path);
    else
        pl_fd_clear(nfd);
}

PL_EXPORT int dup(int fd)
{
    int nfd = REAL(dup)(fd);
    if (nfd >= 0)
        dup_entry(fd, nfd);
    return nfd;
}

/* dup2/dup3 close @nfd first: flush it if it is one of ours. */
static void before_replace(int fd, int nfd)
{
    if (fd != nfd && pl_is_mount_fd(nfd)) {
        struct pl_fd f;
        if (pl_fd_get(nfd, &f, NULL)) {
            struct pl_call c = { 0 };
            (void)pl_fd_call(&f, RUN_FLUSH, &c);
        }
    }
}

PL_EXPORT int dup2(int fd, int nfd)
{
    before_replace(fd, nfd);
    int r = REAL(dup2)(fd, nfd);
    if (r >= 0 && fd != nfd) {
        dup_entry(fd, r);
        pl_std_sync(r);
    }
    return r;
}

PL_EXPORT int dup3(int fd, int nfd, int flags)
{
    before_replace(fd, nfd);
    int r = REAL(dup3)(fd, nfd, flags);
    if (r >= 0) {
        dup_entry(fd, r);
        pl_std_sync(r);
    }
    return r;
}

/* Record locks and flock on mount fds are not served yet: fail loudly. */
static int fd_fcntl(int fd, const struct pl_fd *f, int cmd, long arg)
{
    switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int nfd = REAL(fcntl)(fd, cmd, arg);
        if (nfd >= 0)
            dup_entry(fd, nfd);
        return nfd;
    }
    case F_GETFD:
    case F_SETFD:
        return REAL(fcntl)(fd, cmd, arg);
    case F_GETFL: {
        struct pl_call c = { 0 };
        return (int)pl_ret(pl_fd_call(f, RUN_GETFL, &c));
    }
    case F_SETFL: {
        struct pl_call c = { .q = { .flags = (uint32_t)arg } };
        int64_t r = pl_fd_call(f, RUN_SETFL, &c);
        return (int)pl_ret(r);
    }
    default:
        return (int)pl_ret(-ENOLCK);
    }
}

PL_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(fcntl)(fd, cmd, arg);
    return fd_fcntl(fd, &f, cmd, arg);
}

PL_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(fcntl64)(fd, cmd, arg);
    return fd_fcntl(fd, &f, cmd, arg);
}

PL_EXPORT int flock(int fd, int op)
{
    if (!pl_is_mount_fd(fd))
        return REAL(flock)(fd, op);
    return (int)pl_ret(-ENOLCK);
}

/* ---- copies between fds ---------------------------------------------------- */

/* Copy @n bytes from @in to @out through the library's own read/write, at
 * the offsets given (NULL: the positions). */
static ssize_t copy_loop(int in, off_t *in_off, int out, off_t *out_off, size_t n)
{
    char *buf = malloc(RUN_MAX_DATA);
    if (!buf)
        return -ENOMEM;
    ssize_t total = 0;
    while ((size_t)total < n) {
        size_t want = n - (size_t)total > RUN_MAX_DATA ? RUN_MAX_DATA : n - (size_t)total;
        ssize_t r = in_off ? pread(in, buf, want, *in_off) : read(in, buf, want);
        if (r <= 0) {
            if (r < 0 && total == 0)
                total = -errno;
            break;
        }
        ssize_t w = out_off ? pwrite(out, buf, (size_t)r, *out_off) : write(out, buf, (size_t)r);
        if (w < 0) {
            if (total == 0)
                total = -errno;
            break;
        }
        if (in_off)
            *in_off += w;
        if (out_off)
            *out_off += w;
        total += w;
        if (w < r)
            break;
    }
    free(buf);
    return total;
}

PL_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
    if (!pl_is_mount_fd(in) && !pl_is_mount_fd(out))
        return REAL(sendfile)(out, in, off, n);
    return pl_ret(copy_loop(in, off, out, NULL, n));
}
PL_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t n) { return sendfile(out, in, off, n); }

PL_EXPORT ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t n,
                                  unsigned int flags)
{
    if (!pl_is_mount_fd(in) && !pl_is_mount_fd(out))
        return REAL(copy_file_range)(in, in_off, out, out_off, n, flags);
    if (flags)
        return pl_ret(-EINVAL);
    return pl_ret(copy_loop(in, in_off, out, out_off, n));
}

PL_EXPORT ssize_t splice(int in, loff_t *in_off, int out, loff_t *out_off, size_t n,
                         unsigned int flags)
{
    if (!pl_is_mount_fd(in) && !pl_is_mount_fd(out))
        return REAL(splice)(in, in_off, out, out_off, n, flags);
    return pl_ret(copy_loop(in, in_off, out, out_off, n));
}

/* ---- mappings ---------------------------------------------------------------- */

/*
 * mmap of a mount fd: the pages are read into an anonymous mapping.  That
 * is MAP_PRIVATE exactly, up to later writes by others (which Linux would
 * show until the first own write to a page).  MAP_SHARED is served only
 * read-only, as a snapshot; a writable shared mapping fails with ENODEV
 * until the fault path of docs/run.md serves it.
 */
PL_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    struct pl_fd f;
    if ((flags & MAP_ANONYMOUS) || !pl_fd_get(fd, &f, NULL))
        return REAL(mmap)(addr, len, prot, flags, fd, off);
    if (f.is_dir)
        return (void *)pl_ret(-ENODEV);
    if ((flags & MAP_SHARED) && (prot & PROT_WRITE))
        return (void *)pl_ret(-ENODEV);
    if (off < 0 || (off & 4095) || len == 0)
        return (void *)pl_ret(-EINVAL);
    int mflags = (flags & ~(MAP_SHARED | MAP_SHARED_VALIDATE)) | MAP_PRIVATE | MAP_ANONYMOUS;
    void *p = REAL(mmap)(addr, len, PROT_READ | PROT_WRITE, mflags, -1, 0);
    if (p == MAP_FAILED)
        return p;
    ssize_t r = fd_read(&f, p, len, off);
    if (r < 0) {
        munmap(p, len);
        return (void *)pl_ret(r);
    }
    if (prot != (PROT_READ | PROT_WRITE))
        (void)mprotect(p, len, prot);
    return p;
}
PL_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

/* ---- directory entries ----------------------------------------------------- */

ssize_t pl_getdents(const struct pl_fd *f, void *buf, size_t n)
{
    if (!f->is_dir)
        return -ENOTDIR;
    size_t cap = n > RUN_MAX_DATA ? RUN_MAX_DATA : n;
    struct pl_call c = { .q = { .b = (int64_t)cap }, .out = buf, .out_cap = cap };
    int64_t r = pl_fd_call(f, RUN_GETDENTS, &c);
    if (r >= 0 && (size_t)r != c.out_len)
        return -EIO;
    return r;
}

PL_EXPORT ssize_t getdents64(int fd, void *buf, size_t n)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(getdents64)(fd, buf, n);
    return pl_ret(pl_getdents(&f, buf, n));
}
