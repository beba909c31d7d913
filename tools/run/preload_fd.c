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
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/select.h>
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
static ssize_t fd_read_raw(const struct pl_fd *f, void *buf, size_t n, off_t off)
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

static ssize_t fd_write_raw(const struct pl_fd *f, const void *buf, size_t n, off_t off)
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

/* The shared-mapping coherence hooks (see "mappings" below). */
static void maps_before_read(const struct pl_fd *f);
static void maps_after_write(const struct pl_fd *f, const void *buf, size_t n, off_t off);
static _Atomic int nshared;

static ssize_t fd_read(const struct pl_fd *f, void *buf, size_t n, off_t off)
{
    if (atomic_load(&nshared) > 0)
        maps_before_read(f);
    ssize_t r = pl_fast_read(f, buf, n, off);
    if (r < 0)
        return fd_read_raw(f, buf, n, off);
    if ((size_t)r == n || off < 0)
        return r;
    /* A pread served in part from the cache: the broker reads the rest. */
    ssize_t rest = fd_read_raw(f, (char *)buf + r, n - (size_t)r, off + r);
    return rest > 0 ? r + rest : r;
}

static ssize_t fd_write(const struct pl_fd *f, const void *buf, size_t n, off_t off)
{
    if (atomic_load(&nshared) == 0)
        return fd_write_raw(f, buf, n, off);
    off_t at = off;
    if (at < 0) {
        struct pl_call c = { .q = { .a = 0, .flags = SEEK_CUR } };
        at = (off_t)pl_fd_call(f, RUN_LSEEK, &c);
    }
    ssize_t r = fd_write_raw(f, buf, n, off);
    if (r > 0 && at >= 0)
        maps_after_write(f, buf, (size_t)r, at);
    return r;
}

/* An iovec piece by piece (@write: fd_write, else fd_read), up to the first
 * short piece; the count so far, or the first piece's error. */
static ssize_t fd_iov(const struct pl_fd *f, const struct iovec *iov, int cnt, off_t off,
                      bool write)
{
    ssize_t total = 0;
    for (int i = 0; i < cnt; i++) {
        off_t at = off < 0 ? -1 : off + total;
        ssize_t r = write ? fd_write(f, iov[i].iov_base, iov[i].iov_len, at)
                          : fd_read(f, iov[i].iov_base, iov[i].iov_len, at);
        if (r < 0)
            return total ? total : r;
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

static ssize_t fd_readv(const struct pl_fd *f, const struct iovec *iov, int cnt, off_t off)
{
    return fd_iov(f, iov, cnt, off, false);
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
    return fd_iov(f, iov, cnt, off, true);
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
    off_t fast = pl_fast_lseek(&f, off, whence);
    if (fast >= 0)
        return fast;
    return pl_ret(pl_fd_call(&f, RUN_LSEEK, &c));
}
PL_EXPORT off_t lseek64(int fd, off_t off, int whence) { return lseek(fd, off, whence); }

/* ---- attributes --------------------------------------------------------- */

int pl_fstat_mount(const struct pl_fd *f, struct stat *st)
{
    if (pl_fast_fstat(f, st))
        return 0;
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
        pl_fd_set(nfd, &f, path);
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
        if (pl_fd_get(nfd, &f, NULL) && pl_flush_needed(&f)) {
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

/* Record locks: the broker keeps them (F_GETLK64 and friends have the
 * same values on 64-bit Linux). */
static int fd_lock(const struct pl_fd *f, uint32_t kind, struct flock *fl)
{
    bool get = kind == RUN_LK_GET || kind == RUN_LK_OFD_GET;
    if (kind == RUN_LK_SET || kind == RUN_LK_SETW)
        pl_note_record_locks();
    struct pl_call c = { .q = { .flags = kind }, .data = fl, .data_len = sizeof *fl,
                         .out = get ? fl : NULL, .out_cap = get ? sizeof *fl : 0 };
    int64_t r = pl_fd_call(f, RUN_LOCK, &c);
    if (r == 0 && get && c.out_len != sizeof *fl)
        r = -EIO;
    return (int)pl_ret(r);
}

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
    case F_GETLK:
        return fd_lock(f, RUN_LK_GET, (struct flock *)arg);
    case F_SETLK:
        return fd_lock(f, RUN_LK_SET, (struct flock *)arg);
    case F_SETLKW:
        return fd_lock(f, RUN_LK_SETW, (struct flock *)arg);
    case F_OFD_GETLK:
        return fd_lock(f, RUN_LK_OFD_GET, (struct flock *)arg);
    case F_OFD_SETLK:
        return fd_lock(f, RUN_LK_OFD_SET, (struct flock *)arg);
    case F_OFD_SETLKW:
        return fd_lock(f, RUN_LK_OFD_SETW, (struct flock *)arg);
    default:
        /* Leases, notifications, seals, pipe sizes: not for FUSE files. */
        return (int)pl_ret(-EINVAL);
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

/* On 64-bit Linux fcntl64 is fcntl. */
PL_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return fcntl(fd, cmd, arg);
}

PL_EXPORT int flock(int fd, int op)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(flock)(fd, op);
    struct pl_call c = { .q = { .flags = RUN_LK_FLOCK, .a = op } };
    return (int)pl_ret(pl_fd_call(&f, RUN_LOCK, &c));
}

/* lockf(3): glibc's calls fcntl internally; the same on a mount fd. */
PL_EXPORT int lockf(int fd, int cmd, off_t len)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(lockf)(fd, cmd, len);
    struct flock fl = { .l_whence = SEEK_CUR, .l_start = 0, .l_len = len };
    switch (cmd) {
    case F_ULOCK:
        fl.l_type = F_UNLCK;
        return fd_lock(&f, RUN_LK_SET, &fl);
    case F_LOCK:
        fl.l_type = F_WRLCK;
        return fd_lock(&f, RUN_LK_SETW, &fl);
    case F_TLOCK:
        fl.l_type = F_WRLCK;
        return fd_lock(&f, RUN_LK_SET, &fl);
    case F_TEST:
        fl.l_type = F_RDLCK;
        if (fd_lock(&f, RUN_LK_GET, &fl) != 0)
            return -1;
        return fl.l_type == F_UNLCK || fl.l_pid == getpid() ? 0 : (int)pl_ret(-EACCES);
    default:
        return (int)pl_ret(-EINVAL);
    }
}
PL_EXPORT int lockf64(int fd, int cmd, off_t len) { return lockf(fd, cmd, len); }

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
 * mmap of a mount fd is emulated with anonymous memory filled by reads:
 *  - MAP_PRIVATE: exactly Linux's semantics up to later writes by others
 *    (Linux shows them until the first own write to a page).
 *  - MAP_SHARED: shared anonymous memory (so a forked child shares it), kept
 *    coherent with this process's read and write: a write(2) to the file
 *    also updates the mapped bytes; a read(2) of the file first writes the
 *    mapping back; msync, munmap and exit write it back.  Other processes
 *    see the stores at those points (the fault path of docs/run.md will
 *    make it immediate).  The mapping holds a duplicate of the fd, as a
 *    mapping holds its file open.
 * Locks: map_lock guards the list.  Invariant: every shmap's range is
 * mapped; nshared is the length of the list.
 */
struct shmap {
    char *addr;
    size_t len;
    off_t off;              /* file offset of addr */
    int fd;                 /* our duplicate of the mount fd */
    uint64_t file;          /* st_ino: which file */
    struct shmap *next;
};

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shmap *shmaps;

/* Write @m's bytes back to its file, up to the file's size (stores past
 * EOF do not extend a file, as on Linux). */
static int shmap_writeback(const struct shmap *m)
{
    struct pl_fd f;
    struct stat st;
    if (!pl_fd_get(m->fd, &f, NULL))
        return -EBADF;
    int rc = pl_fstat_mount(&f, &st);
    if (rc < 0 || st.st_size <= m->off)
        return rc;
    size_t n = st.st_size - m->off < (off_t)m->len ? (size_t)(st.st_size - m->off) : m->len;
    ssize_t w = fd_write_raw(&f, m->addr, n, m->off);
    return w < 0 ? (int)w : 0;
}

/* The file identity of a mount fd (a round trip: only with mappings). */
static uint64_t fd_file(const struct pl_fd *f)
{
    struct stat st;
    return pl_fstat_mount(f, &st) == 0 ? st.st_ino : 0;
}

/* Before reading [off, off+n) of @f's file: write its mapped bytes back. */
static void maps_before_read(const struct pl_fd *f)
{
    if (atomic_load(&nshared) == 0)
        return;
    uint64_t file = fd_file(f);
    pthread_mutex_lock(&map_lock);
    for (struct shmap *m = shmaps; m; m = m->next)
        if (m->file == file)
            (void)shmap_writeback(m);
    pthread_mutex_unlock(&map_lock);
}

/* After writing @buf at @off of @f's file: update the mapped bytes. */
static void maps_after_write(const struct pl_fd *f, const void *buf, size_t n, off_t off)
{
    uint64_t file = fd_file(f);
    pthread_mutex_lock(&map_lock);
    for (struct shmap *m = shmaps; m; m = m->next) {
        if (m->file != file || off >= m->off + (off_t)m->len || off + (off_t)n <= m->off)
            continue;
        off_t s = off > m->off ? off : m->off;
        off_t e = off + (off_t)n < m->off + (off_t)m->len ? off + (off_t)n : m->off + (off_t)m->len;
        memcpy(m->addr + (s - m->off), (const char *)buf + (s - off), (size_t)(e - s));
    }
    pthread_mutex_unlock(&map_lock);
}

PL_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    struct pl_fd f;
    if ((flags & MAP_ANONYMOUS) || !pl_fd_get(fd, &f, NULL))
        return REAL(mmap)(addr, len, prot, flags, fd, off);
    if (f.is_dir)
        return (void *)pl_ret(-ENODEV);
    if (off < 0 || (off & 4095) || len == 0)
        return (void *)pl_ret(-EINVAL);
    bool shared = (flags & MAP_TYPE) != MAP_PRIVATE;
    int mflags = (flags & ~MAP_TYPE) | MAP_ANONYMOUS | (shared ? MAP_SHARED : MAP_PRIVATE);
    struct shmap *m = NULL;
    if (atomic_load(&nshared) > 0)
        maps_before_read(&f);
    if (shared) {
        m = malloc(sizeof *m);
        int dupfd = m ? REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 0) : -1;
        if (dupfd < 0) {
            free(m);
            return (void *)pl_ret(-ENOMEM);
        }
        char path[PATH_MAX];
        pl_fd_get(fd, &f, path);
        pl_fd_set(dupfd, &f, path);
        *m = (struct shmap){ .len = len, .off = off, .fd = dupfd, .file = fd_file(&f) };
    }
    void *p = REAL(mmap)(addr, len, PROT_READ | PROT_WRITE, mflags, -1, 0);
    ssize_t r = p == MAP_FAILED ? -errno : fd_read_raw(&f, p, len, off);
    if (r < 0) {
        if (p != MAP_FAILED)
            REAL(munmap)(p, len);
        if (m) {
            (void)pl_close_mount_fd(m->fd);
            free(m);
        }
        return (void *)pl_ret(r);
    }
    if (prot != (PROT_READ | PROT_WRITE))
        (void)mprotect(p, len, prot);
    if (m) {
        m->addr = p;
        pthread_mutex_lock(&map_lock);
        m->next = shmaps;
        shmaps = m;
        atomic_fetch_add(&nshared, 1);
        pthread_mutex_unlock(&map_lock);
    }
    return p;
}
PL_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

PL_EXPORT int msync(void *addr, size_t len, int flags)
{
    int rc = 0;
    if (atomic_load(&nshared) > 0) {
        pthread_mutex_lock(&map_lock);
        for (struct shmap *m = shmaps; m; m = m->next)
            if ((char *)addr < m->addr + m->len && (char *)addr + len > m->addr && rc == 0)
                rc = shmap_writeback(m);
        pthread_mutex_unlock(&map_lock);
    }
    if (rc < 0)
        return (int)pl_ret(rc);
    return REAL(msync)(addr, len, flags);
}

/*
 * munmap: mappings of ours that the range touches are written back; a
 * mapping wholly inside the range is forgotten, one cut at an end shrinks,
 * one cut in the middle becomes two.
 */
PL_EXPORT int munmap(void *addr, size_t len)
{
    if (atomic_load(&nshared) == 0)
        return REAL(munmap)(addr, len);
    char *s = addr, *e = (char *)addr + ((len + 4095) & ~(size_t)4095);
    struct shmap *gone = NULL;
    pthread_mutex_lock(&map_lock);
    for (struct shmap **pp = &shmaps; *pp;) {
        struct shmap *m = *pp;
        char *ms = m->addr, *me = m->addr + m->len;
        if (e <= ms || s >= me) {
            pp = &m->next;
            continue;
        }
        (void)shmap_writeback(m);
        if (s <= ms && e >= me) {
            *pp = m->next;
            m->next = gone;
            gone = m;
            atomic_fetch_sub(&nshared, 1);
            continue;
        }
        if (s > ms && e < me) {
            struct shmap *tail = malloc(sizeof *tail);
            int dupfd = tail ? REAL(fcntl)(m->fd, F_DUPFD_CLOEXEC, 0) : -1;
            if (dupfd >= 0) {
                struct pl_fd f;
                char path[PATH_MAX];
                if (pl_fd_get(m->fd, &f, path))
                    pl_fd_set(dupfd, &f, path);
                *tail = (struct shmap){ .addr = e, .len = (size_t)(me - e),
                                        .off = m->off + (e - ms), .fd = dupfd, .file = m->file,
                                        .next = m->next };
                m->next = tail;
                atomic_fetch_add(&nshared, 1);
            } else {
                free(tail);
            }
            m->len = (size_t)(s - ms);
        } else if (s <= ms) {
            m->off += e - ms;
            m->len = (size_t)(me - e);
            m->addr = e;
        } else {
            m->len = (size_t)(s - ms);
        }
        pp = &m->next;
    }
    pthread_mutex_unlock(&map_lock);
    while (gone) {
        struct shmap *n = gone->next;
        (void)pl_close_mount_fd(gone->fd);
        free(gone);
        gone = n;
    }
    return REAL(munmap)(addr, len);
}

/* At exit, shared mappings still in place are written back (Linux keeps a
 * shared mapping's stores in the page cache). */
__attribute__((destructor)) static void maps_at_exit(void)
{
    if (atomic_load(&nshared) == 0)
        return;
    pthread_mutex_lock(&map_lock);
    for (struct shmap *m = shmaps; m; m = m->next)
        (void)shmap_writeback(m);
    pthread_mutex_unlock(&map_lock);
}

/* ---- directory entries ----------------------------------------------------- */

ssize_t pl_getdents(const struct pl_fd *f, void *buf, size_t n, bool *end)
{
    if (!f->is_dir)
        return -ENOTDIR;
    size_t cap = n > RUN_MAX_DATA ? RUN_MAX_DATA : n;
    struct pl_call c = { .q = { .b = (int64_t)cap }, .out = buf, .out_cap = cap };
    int64_t r = pl_fd_call(f, RUN_GETDENTS, &c);
    if (r >= 0 && (size_t)r != c.out_len)
        return -EIO;
    if (end)
        *end = r >= 0 && (c.rep_flags & RUN_REP_END);
    return r;
}

PL_EXPORT ssize_t getdents64(int fd, void *buf, size_t n)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(getdents64)(fd, buf, n);
    return pl_ret(pl_getdents(&f, buf, n, NULL));
}

/* ---- readiness ---------------------------------------------------------- */

/*
 * A regular file or directory is always ready on Linux: poll and select
 * say so at once for mount fds (whose identity pipe never is), and ask
 * the kernel about the others, with no wait when a mount fd is ready.
 * epoll refuses regular files and directories (EPERM), so it refuses
 * mount fds too.
 */
static int poll_mount_fds(struct pollfd *fds, nfds_t n, int timeout_ms,
                          int (*real_wait)(struct pollfd *, nfds_t, int, void *), void *arg)
{
    int ready = 0, saved_any = 0;
    int *saved = NULL;
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd < 0 || !pl_is_mount_fd(fds[i].fd))
            continue;
        if (!saved && !(saved = calloc(n, sizeof *saved)))
            return (int)pl_ret(-ENOMEM);
        saved_any = 1;
        saved[i] = fds[i].fd + 1;
        fds[i].revents = (short)(fds[i].events & (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM));
        ready += fds[i].revents != 0;
        fds[i].fd = -1; /* the kernel skips it */
    }
    if (!saved_any)
        return real_wait(fds, n, timeout_ms, arg);
    short *keep = malloc(n * sizeof *keep);
    for (nfds_t i = 0; keep && i < n; i++)
        keep[i] = fds[i].revents;
    int r = real_wait(fds, n, ready ? 0 : timeout_ms, arg);
    for (nfds_t i = 0; i < n; i++) {
        if (saved[i]) {
            fds[i].fd = saved[i] - 1;
            fds[i].revents = keep ? keep[i] : (short)(fds[i].events & (POLLIN | POLLOUT));
        }
    }
    free(keep);
    free(saved);
    return r < 0 ? r : r + ready;
}

static int real_poll_wait(struct pollfd *fds, nfds_t n, int timeout_ms, void *arg)
{
    (void)arg;
    return REAL(poll)(fds, n, timeout_ms);
}

PL_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    return poll_mount_fds(fds, n, timeout_ms, real_poll_wait, NULL);
}
PL_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout_ms, size_t len)
{
    (void)len;
    return poll(fds, n, timeout_ms);
}

struct ppoll_args {
    const struct timespec *tmo;
    const sigset_t *mask;
};

static int real_ppoll_wait(struct pollfd *fds, nfds_t n, int timeout_ms, void *arg)
{
    const struct ppoll_args *a = arg;
    static const struct timespec zero = { 0, 0 };
    return REAL(ppoll)(fds, n, timeout_ms == 0 ? &zero : a->tmo, a->mask);
}

PL_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                    const sigset_t *mask)
{
    struct ppoll_args a = { tmo, mask };
    return poll_mount_fds(fds, n, tmo && !tmo->tv_sec && !tmo->tv_nsec ? 0 : -1,
                          real_ppoll_wait, &a);
}
PL_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                          const sigset_t *mask, size_t len)
{
    (void)len;
    return ppoll(fds, n, tmo, mask);
}

/* select/pselect: mount fds in the read or write set are ready; the rest
 * go to the kernel (with no wait when a mount fd is ready). */
static int select_mount_fds(int nfds, fd_set *r, fd_set *w, fd_set *e, bool *any_ready,
                            fd_set *mr, fd_set *mw)
{
    int ready = 0;
    FD_ZERO(mr);
    FD_ZERO(mw);
    *any_ready = false;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
        bool inr = r && FD_ISSET(fd, r), inw = w && FD_ISSET(fd, w);
        if (!(inr || inw || (e && FD_ISSET(fd, e))) || !pl_is_mount_fd(fd))
            continue;
        if (inr) {
            FD_SET(fd, mr);
            FD_CLR(fd, r);
            ready++;
        }
        if (inw) {
            FD_SET(fd, mw);
            FD_CLR(fd, w);
            ready++;
        }
        if (e)
            FD_CLR(fd, e);
    }
    *any_ready = ready > 0;
    return ready;
}

static int select_merge(int nfds, int r, int ready, fd_set *rs, fd_set *ws, const fd_set *mr,
                        const fd_set *mw)
{
    if (r < 0)
        return r;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
        if (FD_ISSET(fd, mr))
            FD_SET(fd, rs);
        if (FD_ISSET(fd, mw))
            FD_SET(fd, ws);
    }
    return r + ready;
}

PL_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    fd_set mr, mw;
    bool any;
    int ready = select_mount_fds(nfds, r, w, e, &any, &mr, &mw);
    struct timeval zero = { 0, 0 };
    int res = REAL(select)(nfds, r, w, e, any ? &zero : tv);
    return select_merge(nfds, res, ready, r, w, &mr, &mw);
}

PL_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
                      const sigset_t *mask)
{
    fd_set mr, mw;
    bool any;
    int ready = select_mount_fds(nfds, r, w, e, &any, &mr, &mw);
    static const struct timespec zero = { 0, 0 };
    int res = REAL(pselect)(nfds, r, w, e, any ? &zero : tmo, mask);
    return select_merge(nfds, res, ready, r, w, &mr, &mw);
}

PL_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && pl_is_mount_fd(fd))
        return (int)pl_ret(-EPERM);
    return REAL(epoll_ctl)(epfd, op, fd, ev);
}
