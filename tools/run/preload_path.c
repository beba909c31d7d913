/*
 * preload_path.c - calls on paths.  pl_classify decides, per call, whether
 * the path lies on a mount (then the call becomes a broker request with
 * the path relative to the mount root) or not (libc is called with the
 * caller's arguments, or with the absolute path when a relative path left
 * a mount through "..").  Locks and invariants: preload.h.
 *
 * Calls naming two paths (rename, link) on two different mounts, or on a
 * mount and the real file system, fail with EXDEV as between two kernel
 * mounts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include "preload.h"

/*
 * The resolution of one path argument.  kind: 1 on mount @mnt at @rel;
 * 0 real, use the caller's path (and dirfd); 2 real, use @rel (absolute);
 * < 0 an error to return.
 */
struct where {
    int kind;
    int mnt;
    int hops;       /* times the walk left a mount (relocate) */
    char rel[PATH_MAX];
};

static void locate(int dirfd, const char *path, struct where *w)
{
    w->mnt = -1;
    w->hops = 0;
    w->kind = pl_classify(dirfd, path, &w->mnt, w->rel);
}

/*
 * A mount call answered @r.  When its walk left the mount (RUN_LEFT_MOUNT:
 * a symbolic link to an absolute path, ".." above the root), resolve the
 * path it named into @w, as the kernel walks on past a mount point, and
 * return true: the caller goes again, to another mount or to the real file
 * system at w->rel.  Past PL_MAX_HOPS of them, -ELOOP.
 */
static bool relocate(struct where *w, int64_t r)
{
    if (r != RUN_LEFT_MOUNT)
        return false;
    if (++w->hops > PL_MAX_HOPS) {
        w->kind = -ELOOP;
        return true;
    }
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s", pl_left_mount_path());
    w->mnt = -1;
    w->kind = pl_classify(AT_FDCWD, target, &w->mnt, w->rel);
    if (w->kind == 0) {
        w->kind = 2;
        snprintf(w->rel, sizeof w->rel, "%s", target);
    }
    return true;
}

/* The real path and dirfd to give libc for a non-mount resolution. */
#define REAL_PATH(w, p) ((w)->kind == 2 ? (w)->rel : (p))
#define REAL_DIRFD(w, d) ((w)->kind == 2 ? AT_FDCWD : (d))

static int64_t path_call(const struct where *w, uint32_t op, struct pl_call *c)
{
    c->q.op = op;
    c->path = w->rel;
    return pl_call(w->mnt, c);
}

/* ---- open ------------------------------------------------------------- */

static int open_mount(const struct where *w, int flags, mode_t mode)
{
    bool dir = (flags & O_DIRECTORY) != 0;
    if (flags & O_PATH) {
        /* No FUSE request opens a path only: take a read handle (or a
         * directory stream), which is what the fd will be used for. */
        struct stat st;
        struct pl_call c = { .out = &st, .out_cap = sizeof st,
                             .q = { .flags = (flags & O_NOFOLLOW) ? RUN_NOFOLLOW : 0 } };
        int64_t r = path_call(w, RUN_STAT, &c);
        if (r < 0)
            return (int)r;
        dir = S_ISDIR(st.st_mode);
        if (!dir && (flags & O_DIRECTORY))
            return -ENOTDIR;
        flags = O_RDONLY | (flags & O_CLOEXEC);
    }
    return pl_open_at_mount(w->mnt, w->rel, flags, mode, dir);
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode,
                     int (*real)(int, const char *, int, ...))
{
    struct where w;
    locate(dirfd, path, &w);
    for (;;) {
        if (w.kind < 0)
            return (int)pl_ret(w.kind);
        if (w.kind != 1)
            return real(REAL_DIRFD(&w, dirfd), REAL_PATH(&w, path), flags, mode);
        int r = open_mount(&w, flags, mode);
        if (!relocate(&w, r))
            return (int)pl_ret(r);
    }
}

static mode_t open_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

PL_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    return do_openat(dirfd, path, flags, mode, REAL(openat));
}

PL_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    return do_openat(dirfd, path, flags, mode, REAL(openat64));
}

PL_EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, path, flags, mode, REAL(openat));
}

PL_EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, path, flags, mode, REAL(openat64));
}

/* The _FORTIFY_SOURCE entry points (no mode: O_CREAT is refused there). */
PL_EXPORT int __open_2(const char *path, int flags) { return open(path, flags); }
PL_EXPORT int __open64_2(const char *path, int flags) { return open64(path, flags); }
PL_EXPORT int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
PL_EXPORT int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }

PL_EXPORT int creat(const char *path, mode_t mode)
{
    return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}
PL_EXPORT int creat64(const char *path, mode_t mode) { return creat(path, mode); }

/* ---- status ------------------------------------------------------------ */

static int stat_mount(const struct where *w, struct stat *st, bool nofollow)
{
    int fast = pl_fast_stat(w->mnt, w->rel, nofollow, st);
    if (fast <= 0)
        return fast;
    struct pl_call c = { .q = { .flags = nofollow ? RUN_NOFOLLOW : 0 }, .out = st,
                         .out_cap = sizeof *st };
    int64_t r = path_call(w, RUN_STAT, &c);
    if (r == 0 && c.out_len != sizeof *st)
        r = -EIO;
    return (int)r;
}

/* fstatat semantics for every stat entry point. */
static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    if (path && path[0] == '\0' && (flags & AT_EMPTY_PATH)) {
        struct pl_fd f;
        if (dirfd != AT_FDCWD && pl_fd_get(dirfd, &f, NULL))
            return (int)pl_ret(pl_fstat_mount(&f, st));
        return REAL(fstatat)(dirfd, path, st, flags);
    }
    struct where w;
    locate(dirfd, path, &w);
    for (;;) {
        if (w.kind < 0)
            return (int)pl_ret(w.kind);
        if (w.kind != 1)
            return REAL(fstatat)(REAL_DIRFD(&w, dirfd), REAL_PATH(&w, path), st, flags);
        int r = stat_mount(&w, st, flags & AT_SYMLINK_NOFOLLOW);
        if (!relocate(&w, r))
            return (int)pl_ret(r);
    }
}

PL_EXPORT int stat(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, 0); }
PL_EXPORT int lstat(const char *path, struct stat *st)
{
    return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}
PL_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    return do_fstatat(dirfd, path, st, flags);
}
PL_EXPORT int stat64(const char *path, struct stat64 *st) { return stat(path, (struct stat *)st); }
PL_EXPORT int lstat64(const char *path, struct stat64 *st) { return lstat(path, (struct stat *)st); }
PL_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
    return do_fstatat(dirfd, path, (struct stat *)st, flags);
}
/* What binaries built against glibc < 2.33 call. */
PL_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, st, 0);
}
PL_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}
PL_EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
    (void)ver;
    return do_fstatat(dirfd, path, st, flags);
}
PL_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st) { return __xstat(ver, path, (struct stat *)st); }
PL_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st) { return __lxstat(ver, path, (struct stat *)st); }
PL_EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
    return __fxstatat(ver, dirfd, path, (struct stat *)st, flags);
}

static void stat_to_statx(const struct stat *st, struct statx *sx)
{
    memset(sx, 0, sizeof *sx);
    sx->stx_mask = STATX_BASIC_STATS;
    sx->stx_blksize = (uint32_t)st->st_blksize;
    sx->stx_nlink = (uint32_t)st->st_nlink;
    sx->stx_uid = st->st_uid;
    sx->stx_gid = st->st_gid;
    sx->stx_mode = (uint16_t)st->st_mode;
    sx->stx_ino = st->st_ino;
    sx->stx_size = (uint64_t)st->st_size;
    sx->stx_blocks = (uint64_t)st->st_blocks;
    sx->stx_atime = (struct statx_timestamp){ st->st_atim.tv_sec, (uint32_t)st->st_atim.tv_nsec, 0 };
    sx->stx_mtime = (struct statx_timestamp){ st->st_mtim.tv_sec, (uint32_t)st->st_mtim.tv_nsec, 0 };
    sx->stx_ctime = (struct statx_timestamp){ st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec, 0 };
    sx->stx_rdev_major = major(st->st_rdev);
    sx->stx_rdev_minor = minor(st->st_rdev);
    sx->stx_dev_major = major(st->st_dev);
    sx->stx_dev_minor = minor(st->st_dev);
}

PL_EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *sx)
{
    struct stat st;
    struct pl_fd f;
    int r;
    if (path && path[0] == '\0' && (flags & AT_EMPTY_PATH)) {
        if (dirfd == AT_FDCWD || !pl_fd_get(dirfd, &f, NULL))
            return REAL(statx)(dirfd, path, flags, mask, sx);
        r = pl_fstat_mount(&f, &st);
    } else {
        struct where w;
        locate(dirfd, path, &w);
        do {
            if (w.kind < 0)
                return (int)pl_ret(w.kind);
            if (w.kind != 1)
                return REAL(statx)(REAL_DIRFD(&w, dirfd), REAL_PATH(&w, path), flags, mask, sx);
            r = stat_mount(&w, &st, flags & AT_SYMLINK_NOFOLLOW);
        } while (relocate(&w, r));
    }
    if (r == 0)
        stat_to_statx(&st, sx);
    return (int)pl_ret(r);
}

PL_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
    struct where w;
    locate(dirfd, path, &w);
    for (;;) {
        if (w.kind < 0)
            return (int)pl_ret(w.kind);
        if (w.kind != 1)
            return REAL(faccessat)(REAL_DIRFD(&w, dirfd), REAL_PATH(&w, path), mode, flags);
        struct pl_call c = { .q = { .mode = (uint32_t)mode } };
        int64_t r = path_call(&w, RUN_ACCESS, &c);
        if (!relocate(&w, r))
            return (int)pl_ret(r);
    }
}
PL_EXPORT int access(const char *path, int mode) { return faccessat(AT_FDCWD, path, mode, 0); }
PL_EXPORT int euidaccess(const char *path, int mode) { return faccessat(AT_FDCWD, path, mode, AT_EACCESS); }
PL_EXPORT int eaccess(const char *path, int mode) { return euidaccess(path, mode); }

/* ---- one-path namespace calls ------------------------------------------------ */

/* Resolve; on a mount evaluate @mount_expr (ONE_PATH: send @op), else
 * call the real function on the (possibly rewritten) path rp_ and dirfd
 * rd_; again where the walk left the mount. */
#define FOLLOW_PATH(dirfd, path, real_expr, mount_expr)                              \
    do {                                                                             \
        struct where w_;                                                             \
        locate((dirfd), (path), &w_);                                                \
        for (;;) {                                                                   \
            if (w_.kind < 0)                                                         \
                return (int)pl_ret(w_.kind);                                         \
            if (w_.kind != 1) {                                                      \
                const char *rp_ = REAL_PATH(&w_, (path));                            \
                int rd_ = REAL_DIRFD(&w_, (dirfd));                                  \
                (void)rp_;                                                           \
                (void)rd_;                                                           \
                return real_expr;                                                    \
            }                                                                        \
            int64_t r_ = (mount_expr);                                               \
            if (!relocate(&w_, r_))                                                  \
                return (int)pl_ret(r_);                                              \
        }                                                                            \
    } while (0)
#define ONE_PATH(dirfd, path, op, call, real_expr)                                   \
    FOLLOW_PATH(dirfd, path, real_expr, path_call(&w_, (op), (call)))

PL_EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
    struct pl_call c = { .q = { .mode = mode } };
    ONE_PATH(dirfd, path, RUN_MKDIR, &c, REAL(mkdirat)(rd_, rp_, mode));
}
PL_EXPORT int mkdir(const char *path, mode_t mode) { return mkdirat(AT_FDCWD, path, mode); }

PL_EXPORT int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
    struct pl_call c = { .q = { .mode = mode, .a = (int64_t)dev } };
    ONE_PATH(dirfd, path, RUN_MKNOD, &c, REAL(mknodat)(rd_, rp_, mode, dev));
}
PL_EXPORT int mknod(const char *path, mode_t mode, dev_t dev) { return mknodat(AT_FDCWD, path, mode, dev); }
PL_EXPORT int mkfifo(const char *path, mode_t mode) { return mknodat(AT_FDCWD, path, S_IFIFO | mode, 0); }
PL_EXPORT int mkfifoat(int dirfd, const char *path, mode_t mode) { return mknodat(dirfd, path, S_IFIFO | mode, 0); }

PL_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
    struct pl_call c = { 0 };
    ONE_PATH(dirfd, path, (flags & AT_REMOVEDIR) ? RUN_RMDIR : RUN_UNLINK, &c,
             REAL(unlinkat)(rd_, rp_, flags));
}
PL_EXPORT int unlink(const char *path) { return unlinkat(AT_FDCWD, path, 0); }
PL_EXPORT int rmdir(const char *path) { return unlinkat(AT_FDCWD, path, AT_REMOVEDIR); }

PL_EXPORT int remove(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    return S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path);
}

PL_EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
    /* Modes of symbolic links do not matter on Linux: NOFOLLOW is moot. */
    struct pl_call c = { .q = { .mode = mode } };
    ONE_PATH(dirfd, path, RUN_CHMOD, &c, REAL(fchmodat)(rd_, rp_, mode, flags));
}
PL_EXPORT int chmod(const char *path, mode_t mode) { return fchmodat(AT_FDCWD, path, mode, 0); }

PL_EXPORT int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
    if (path && path[0] == '\0' && (flags & AT_EMPTY_PATH))
        return fchown(dirfd, uid, gid);
    struct pl_call c = { .q = { .a = uid, .b = gid,
                                .flags = (flags & AT_SYMLINK_NOFOLLOW) ? RUN_NOFOLLOW : 0 } };
    ONE_PATH(dirfd, path, RUN_CHOWN, &c, REAL(fchownat)(rd_, rp_, uid, gid, flags));
}
PL_EXPORT int chown(const char *path, uid_t uid, gid_t gid) { return fchownat(AT_FDCWD, path, uid, gid, 0); }
PL_EXPORT int lchown(const char *path, uid_t uid, gid_t gid)
{
    return fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}

PL_EXPORT int utimensat(int dirfd, const char *path, const struct timespec ts[2], int flags)
{
    if (path == NULL)                       /* the futimens form */
        return futimens(dirfd, ts);
    struct pl_call c = { .q = { .flags = (flags & AT_SYMLINK_NOFOLLOW) ? RUN_NOFOLLOW : 0 },
                         .data = ts, .data_len = ts ? 2 * sizeof *ts : 0 };
    ONE_PATH(dirfd, path, RUN_UTIMENS, &c, REAL(utimensat)(rd_, rp_, ts, flags));
}

static int utimes_common(int dirfd, const char *path, const struct timeval tv[2], int flags)
{
    if (!tv)
        return utimensat(dirfd, path, NULL, flags);
    struct timespec ts[2] = { { tv[0].tv_sec, tv[0].tv_usec * 1000 },
                              { tv[1].tv_sec, tv[1].tv_usec * 1000 } };
    return utimensat(dirfd, path, ts, flags);
}
PL_EXPORT int utimes(const char *path, const struct timeval tv[2]) { return utimes_common(AT_FDCWD, path, tv, 0); }
PL_EXPORT int lutimes(const char *path, const struct timeval tv[2])
{
    return utimes_common(AT_FDCWD, path, tv, AT_SYMLINK_NOFOLLOW);
}
PL_EXPORT int futimesat(int dirfd, const char *path, const struct timeval tv[2])
{
    return utimes_common(dirfd, path, tv, 0);
}
PL_EXPORT int utime(const char *path, const struct utimbuf *t)
{
    if (!t)
        return utimensat(AT_FDCWD, path, NULL, 0);
    struct timespec ts[2] = { { t->actime, 0 }, { t->modtime, 0 } };
    return utimensat(AT_FDCWD, path, ts, 0);
}
PL_EXPORT int futimes(int fd, const struct timeval tv[2])
{
    if (!tv)
        return futimens(fd, NULL);
    struct timespec ts[2] = { { tv[0].tv_sec, tv[0].tv_usec * 1000 },
                              { tv[1].tv_sec, tv[1].tv_usec * 1000 } };
    return futimens(fd, ts);
}

PL_EXPORT int truncate(const char *path, off_t len)
{
    struct pl_call c = { .q = { .a = len } };
    ONE_PATH(AT_FDCWD, path, RUN_TRUNCATE, &c, REAL(truncate)(rp_, len));
}
PL_EXPORT int truncate64(const char *path, off_t len) { return truncate(path, len); }

PL_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    struct where w;
    char target[PATH_MAX];
    struct pl_call c;
    int64_t r;
    locate(dirfd, path, &w);
    do {
        if (w.kind < 0)
            return pl_ret(w.kind);
        if (w.kind != 1)
            return REAL(readlinkat)(REAL_DIRFD(&w, dirfd), REAL_PATH(&w, path), buf, size);
        c = (struct pl_call){ .out = target, .out_cap = sizeof target };
        r = path_call(&w, RUN_READLINK, &c);
    } while (relocate(&w, r));
    if (r < 0)
        return pl_ret(r);
    size_t n = c.out_len < size ? c.out_len : size;
    memcpy(buf, target, n);
    return (ssize_t)n;
}
PL_EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
    return readlinkat(AT_FDCWD, path, buf, size);
}

PL_EXPORT int symlinkat(const char *target, int dirfd, const char *linkpath)
{
    struct where w;
    locate(dirfd, linkpath, &w);
    for (;;) {
        if (w.kind < 0)
            return (int)pl_ret(w.kind);
        if (w.kind != 1)
            return REAL(symlinkat)(target, REAL_DIRFD(&w, dirfd), REAL_PATH(&w, linkpath));
        struct pl_call c = { .q = { .op = RUN_SYMLINK }, .path = target, .path2 = w.rel };
        int64_t r = pl_call(w.mnt, &c);
        if (!relocate(&w, r))
            return (int)pl_ret(r);
    }
}
PL_EXPORT int symlink(const char *target, const char *linkpath)
{
    return symlinkat(target, AT_FDCWD, linkpath);
}

PL_EXPORT int statvfs(const char *path, struct statvfs *v)
{
    FOLLOW_PATH(AT_FDCWD, path, REAL(statvfs)(rp_, v), pl_statvfs_mount(w_.mnt, w_.rel, v));
}
PL_EXPORT int statvfs64(const char *path, struct statvfs64 *v) { return statvfs(path, (struct statvfs *)v); }

PL_EXPORT int statfs(const char *path, struct statfs *s)
{
    FOLLOW_PATH(AT_FDCWD, path, REAL(statfs)(rp_, s), pl_statfs_mount(w_.mnt, w_.rel, s));
}
PL_EXPORT int statfs64(const char *path, struct statfs64 *s) { return statfs(path, (struct statfs *)s); }

/* ---- two-path calls ------------------------------------------------------- */

/* Both on one mount: 1; both real: 0; else -EXDEV or the error. */
static int locate_pair(int d1, const char *p1, int d2, const char *p2, struct where *w1,
                       struct where *w2)
{
    locate(d1, p1, w1);
    locate(d2, p2, w2);
    if (w1->kind < 0)
        return w1->kind;
    if (w2->kind < 0)
        return w2->kind;
    if (w1->kind == 1 && w2->kind == 1)
        return w1->mnt == w2->mnt ? 1 : -EXDEV;
    if (w1->kind == 1 || w2->kind == 1)
        return -EXDEV;
    return 0;
}

PL_EXPORT int renameat2(int d1, const char *p1, int d2, const char *p2, unsigned int flags)
{
    struct where w1, w2;
    int k = locate_pair(d1, p1, d2, p2, &w1, &w2);
    if (k < 0)
        return (int)pl_ret(k);
    if (k == 0)
        return REAL(renameat2)(REAL_DIRFD(&w1, d1), REAL_PATH(&w1, p1), REAL_DIRFD(&w2, d2),
                               REAL_PATH(&w2, p2), flags);
    struct pl_call c = { .q = { .op = RUN_RENAME, .flags = flags }, .path = w1.rel, .path2 = w2.rel };
    return (int)pl_ret(pl_call(w1.mnt, &c));
}
PL_EXPORT int renameat(int d1, const char *p1, int d2, const char *p2)
{
    struct where w1, w2;
    int k = locate_pair(d1, p1, d2, p2, &w1, &w2);
    if (k == 0)
        return REAL(renameat)(REAL_DIRFD(&w1, d1), REAL_PATH(&w1, p1), REAL_DIRFD(&w2, d2),
                              REAL_PATH(&w2, p2));
    return renameat2(d1, p1, d2, p2, 0);
}
PL_EXPORT int rename(const char *p1, const char *p2) { return renameat(AT_FDCWD, p1, AT_FDCWD, p2); }

PL_EXPORT int linkat(int d1, const char *p1, int d2, const char *p2, int flags)
{
    struct where w1, w2;
    int k = locate_pair(d1, p1, d2, p2, &w1, &w2);
    if (k < 0)
        return (int)pl_ret(k);
    if (k == 0)
        return REAL(linkat)(REAL_DIRFD(&w1, d1), REAL_PATH(&w1, p1), REAL_DIRFD(&w2, d2),
                            REAL_PATH(&w2, p2), flags);
    struct pl_call c = { .q = { .op = RUN_LINK }, .path = w1.rel, .path2 = w2.rel };
    return (int)pl_ret(pl_call(w1.mnt, &c));
}
PL_EXPORT int link(const char *p1, const char *p2) { return linkat(AT_FDCWD, p1, AT_FDCWD, p2, 0); }

/* ---- extended attributes ----------------------------------------------------- */

static ssize_t xattr_get(const struct where *w, const char *name, void *value, size_t size,
                         uint32_t op)
{
    char *buf = size ? malloc(size > RUN_MAX_DATA ? RUN_MAX_DATA : size) : NULL;
    size_t cap = size > RUN_MAX_DATA ? RUN_MAX_DATA : size;
    struct pl_call c = { .q = { .b = (int64_t)cap }, .path2 = name, .out = buf, .out_cap = cap };
    int64_t r = path_call(w, op, &c);
    if (r > 0 && size) {
        if ((size_t)r > size)
            r = -ERANGE;
        else if (c.out_len != (size_t)r)
            r = -EIO;
        else
            memcpy(value, buf, (size_t)r);
    }
    free(buf);
    return r;
}

/* fd forms: the fd's path on its mount. */
static int fd_where(int fd, struct where *w)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, w->rel))
        return 0;
    w->kind = 1;
    w->mnt = f.mnt;
    return 1;
}

/* The path forms follow a path that leaves the mount (relocate); real_expr
 * takes the path to use as rp_. */
#define XATTR_PATH(pathexpr, fdexpr, real_expr, mount_expr)                      \
    do {                                                                         \
        struct where w_;                                                         \
        const char *rp_ = (pathexpr);                                            \
        (void)rp_;                                                               \
        if (fdexpr >= 0) {                                                       \
            if (!fd_where(fdexpr, &w_))                                          \
                return real_expr;                                                \
            return pl_ret(mount_expr);                                           \
        }                                                                        \
        locate(AT_FDCWD, (pathexpr), &w_);                                       \
        for (;;) {                                                               \
            if (w_.kind < 0)                                                     \
                return pl_ret(w_.kind);                                          \
            if (w_.kind != 1) {                                                  \
                rp_ = REAL_PATH(&w_, (pathexpr));                                \
                return real_expr;                                                \
            }                                                                    \
            int64_t r_ = (mount_expr);                                           \
            if (!relocate(&w_, r_))                                              \
                return pl_ret(r_);                                               \
        }                                                                        \
    } while (0)

PL_EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
    XATTR_PATH(path, -1, REAL(getxattr)(rp_, name, value, size),
               xattr_get(&w_, name, value, size, RUN_GETXATTR));
}
PL_EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
    XATTR_PATH(path, -1, REAL(lgetxattr)(rp_, name, value, size),
               xattr_get(&w_, name, value, size, RUN_GETXATTR));
}
PL_EXPORT ssize_t fgetxattr(int fd, const char *name, void *value, size_t size)
{
    XATTR_PATH(NULL, fd, REAL(fgetxattr)(fd, name, value, size),
               xattr_get(&w_, name, value, size, RUN_GETXATTR));
}
PL_EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
    XATTR_PATH(path, -1, REAL(listxattr)(rp_, list, size),
               xattr_get(&w_, NULL, list, size, RUN_LISTXATTR));
}
PL_EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
    XATTR_PATH(path, -1, REAL(llistxattr)(rp_, list, size),
               xattr_get(&w_, NULL, list, size, RUN_LISTXATTR));
}
PL_EXPORT ssize_t flistxattr(int fd, char *list, size_t size)
{
    XATTR_PATH(NULL, fd, REAL(flistxattr)(fd, list, size),
               xattr_get(&w_, NULL, list, size, RUN_LISTXATTR));
}

static int64_t xattr_set(const struct where *w, const char *name, const void *value, size_t size,
                         int flags)
{
    if (size > RUN_MAX_DATA)
        return -E2BIG;
    struct pl_call c = { .q = { .flags = (uint32_t)flags }, .path2 = name, .data = value,
                         .data_len = size };
    return path_call(w, RUN_SETXATTR, &c);
}
PL_EXPORT int setxattr(const char *path, const char *name, const void *v, size_t n, int flags)
{
    XATTR_PATH(path, -1, REAL(setxattr)(rp_, name, v, n, flags), xattr_set(&w_, name, v, n, flags));
}
PL_EXPORT int lsetxattr(const char *path, const char *name, const void *v, size_t n, int flags)
{
    XATTR_PATH(path, -1, REAL(lsetxattr)(rp_, name, v, n, flags), xattr_set(&w_, name, v, n, flags));
}
PL_EXPORT int fsetxattr(int fd, const char *name, const void *v, size_t n, int flags)
{
    XATTR_PATH(NULL, fd, REAL(fsetxattr)(fd, name, v, n, flags), xattr_set(&w_, name, v, n, flags));
}

static int64_t xattr_remove(const struct where *w, const char *name)
{
    struct pl_call c = { .path2 = name };
    return path_call(w, RUN_REMOVEXATTR, &c);
}
PL_EXPORT int removexattr(const char *path, const char *name)
{
    XATTR_PATH(path, -1, REAL(removexattr)(rp_, name), xattr_remove(&w_, name));
}
PL_EXPORT int lremovexattr(const char *path, const char *name)
{
    XATTR_PATH(path, -1, REAL(lremovexattr)(rp_, name), xattr_remove(&w_, name));
}
PL_EXPORT int fremovexattr(int fd, const char *name)
{
    XATTR_PATH(NULL, fd, REAL(fremovexattr)(fd, name), xattr_remove(&w_, name));
}

/* ---- working directory ---------------------------------------------------------- */

PL_EXPORT int chdir(const char *path)
{
    struct where w;
    struct stat st;
    int r;
    locate(AT_FDCWD, path, &w);
    do {
        if (w.kind < 0)
            return (int)pl_ret(w.kind);
        if (w.kind != 1) {
            r = REAL(chdir)(REAL_PATH(&w, path));
            if (r == 0)
                pl_set_cwd(-1, NULL);
            return r;
        }
        r = stat_mount(&w, &st, false);
    } while (relocate(&w, r));
    if (r == 0 && !S_ISDIR(st.st_mode))
        r = -ENOTDIR;
    if (r == 0) {
        /* A directory reached through a symbolic link on the mount: keep
         * the lexical path, as the shell's logical cd does. */
        pl_set_cwd(w.mnt, w.rel);
    }
    return (int)pl_ret(r);
}

PL_EXPORT int fchdir(int fd)
{
    struct pl_fd f;
    char path[PATH_MAX];
    if (!pl_fd_get(fd, &f, path)) {
        int r = REAL(fchdir)(fd);
        if (r == 0)
            pl_set_cwd(-1, NULL);
        return r;
    }
    if (!f.is_dir)
        return (int)pl_ret(-ENOTDIR);
    pl_set_cwd(f.mnt, path);
    return 0;
}

PL_EXPORT char *getcwd(char *buf, size_t size)
{
    char rel[PATH_MAX], abs[PATH_MAX];
    int m = pl_cwd(rel);
    if (m < 0)
        return REAL(getcwd)(buf, size);
    pl_abs_path(m, rel, abs);
    size_t n = strlen(abs) + 1;
    if (!buf) {
        buf = malloc(size > n ? size : n);
        if (!buf)
            return pl_fail(-ENOMEM);
    } else if (size < n) {
        return pl_fail(size == 0 ? -EINVAL : -ERANGE);
    }
    memcpy(buf, abs, n);
    return buf;
}

PL_EXPORT char *get_current_dir_name(void)
{
    return getcwd(NULL, 0);
}

/*
 * realpath on a mount: resolve symbolic links component by component with
 * lstat and readlink (ELOOP after 40), as glibc does with its own calls.
 */
static int resolve_mount(const char *abs_in, char *out)
{
    char todo[PATH_MAX], done[PATH_MAX];
    int links = 0;
    snprintf(todo, sizeof todo, "%s", abs_in);
    for (;;) {
        /* done grows from "/" one component at a time */
        strcpy(done, "");
        char *p = todo, *next;
        bool restarted = false;
        while (*p) {
            while (*p == '/')
                p++;
            if (!*p)
                break;
            next = strchrnul(p, '/');
            char comp[NAME_MAX + 1];
            size_t n = (size_t)(next - p);
            if (n > NAME_MAX)
                return -ENAMETOOLONG;
            memcpy(comp, p, n);
            comp[n] = '\0';
            p = next;
            if (strcmp(comp, ".") == 0)
                continue;
            if (strcmp(comp, "..") == 0) {
                char *s = strrchr(done, '/');
                if (s)
                    *s = '\0';
                continue;
            }
            if (strlen(done) + 1 + n >= PATH_MAX)
                return -ENAMETOOLONG;
            strcat(done, "/");
            strcat(done, comp);
            struct stat st;
            if (lstat(done, &st) != 0)
                return -errno;
            if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t t = readlink(done, target, sizeof target - 1);
                if (t < 0)
                    return -errno;
                target[t] = '\0';
                if (++links > 40)
                    return -ELOOP;
                char rest[PATH_MAX];
                snprintf(rest, sizeof rest, "%s", p);
                char *s = strrchr(done, '/');
                *s = '\0';
                if (target[0] == '/')
                    snprintf(todo, sizeof todo, "%s%s", target, rest);
                else
                    snprintf(todo, sizeof todo, "%s/%s%s", done, target, rest);
                restarted = true;
                break;
            }
            if (*p && !S_ISDIR(st.st_mode))
                return -ENOTDIR;
        }
        if (!restarted) {
            snprintf(out, PATH_MAX, "%s", done[0] ? done : "/");
            return 0;
        }
    }
}

PL_EXPORT char *realpath(const char *path, char *resolved)
{
    struct where w;
    if (!path)
        return pl_fail(-EINVAL);
    locate(AT_FDCWD, path, &w);
    if (w.kind < 0)
        return pl_fail(w.kind);
    if (w.kind != 1)
        return REAL(realpath)(REAL_PATH(&w, path), resolved);
    char abs[PATH_MAX], out[PATH_MAX];
    pl_abs_path(w.mnt, w.rel, abs);
    int r = resolve_mount(abs, out);
    if (r < 0)
        return pl_fail(r);
    if (!resolved) {
        resolved = strdup(out);
        if (!resolved)
            return pl_fail(-ENOMEM);
        return resolved;
    }
    memcpy(resolved, out, strlen(out) + 1);
    return resolved;
}

PL_EXPORT char *canonicalize_file_name(const char *path)
{
    return realpath(path, NULL);
}

/* ---- temporary files ---------------------------------------------------------- */

/*
 * mkstemp and friends open with glibc's internal open: on a mount the
 * name is made here, with the same rule (six X's before @suffixlen
 * trailing bytes, replaced until O_CREAT|O_EXCL succeeds).
 */
static int make_temp(char *tmpl, int suffixlen, int flags, bool dir)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t n = strlen(tmpl);
    if (suffixlen < 0 || n < 6 + (size_t)suffixlen ||
        memcmp(tmpl + n - suffixlen - 6, "XXXXXX", 6) != 0)
        return -EINVAL;
    char *x = tmpl + n - suffixlen - 6;
    for (int attempt = 0; attempt < 1000; attempt++) {
        unsigned char rnd[6];
        if (getentropy(rnd, sizeof rnd) != 0)
            return -errno;
        for (int i = 0; i < 6; i++)
            x[i] = letters[rnd[i] % (sizeof letters - 1)];
        int r = dir ? mkdir(tmpl, 0700) : open(tmpl, O_RDWR | O_CREAT | O_EXCL | flags, 0600);
        if (r >= 0)
            return r;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* Is the template on a mount?  (Then make_temp serves it.) */
static bool temp_on_mount(const char *tmpl)
{
    int mnt;
    char rel[PATH_MAX];
    return pl_classify(AT_FDCWD, tmpl, &mnt, rel) == 1;
}

PL_EXPORT int mkostemps(char *tmpl, int suffixlen, int flags)
{
    if (!temp_on_mount(tmpl))
        return REAL(mkostemps)(tmpl, suffixlen, flags);
    return (int)pl_ret(make_temp(tmpl, suffixlen, flags & ~O_ACCMODE, false));
}
PL_EXPORT int mkstemp(char *tmpl) { return mkostemps(tmpl, 0, 0); }
PL_EXPORT int mkostemp(char *tmpl, int flags) { return mkostemps(tmpl, 0, flags); }
PL_EXPORT int mkstemps(char *tmpl, int suffixlen) { return mkostemps(tmpl, suffixlen, 0); }
PL_EXPORT int mkstemp64(char *tmpl) { return mkstemp(tmpl); }
PL_EXPORT int mkostemp64(char *tmpl, int flags) { return mkostemp(tmpl, flags); }
PL_EXPORT int mkstemps64(char *tmpl, int suffixlen) { return mkstemps(tmpl, suffixlen); }
PL_EXPORT int mkostemps64(char *tmpl, int suffixlen, int flags) { return mkostemps(tmpl, suffixlen, flags); }

PL_EXPORT char *mkdtemp(char *tmpl)
{
    if (!temp_on_mount(tmpl))
        return REAL(mkdtemp)(tmpl);
    int r = make_temp(tmpl, 0, 0, true);
    return r < 0 ? pl_fail(r) : tmpl;
}
