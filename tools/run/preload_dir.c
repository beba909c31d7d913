/*
 * preload_dir.c - directory streams and stdio on mount files.
 *
 * glibc's opendir, fopen and friends open their files with internal calls
 * that no preloaded library sees, so the outer functions are interposed:
 * opendir/fdopendir return a stream of our own (struct pl_dir, told apart
 * from glibc's DIR by its first word, which no real fd can equal) filled
 * by RUN_GETDENTS; fopen/fdopen/freopen on a mount build a FILE with
 * fopencookie whose hooks are this library's read/write/lseek/close, and
 * whose fileno is the mount fd.  Everything else goes to libc.
 *
 * Locks: a stream is not shared between threads without the program's own
 * locking (POSIX leaves that to the program for readdir), except that
 * closing is safe.  Invariants: preload.h, and
 *  1. A pl_dir's magic is PL_DIR_MAGIC until closedir clears it.
 *  2. pos <= len <= sizeof buf; buf[pos..len) are whole records.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

#define PL_DIR_MAGIC 0x7ffe5e5e /* above any fd number Linux hands out */

struct pl_dir {
    int magic;
    int fd;                 /* the mount fd (dirfd) */
    size_t pos, len;
    bool end;               /* the broker said buf holds the stream's last entries */
    long loc;               /* entries consumed since the start: telldir */
    struct dirent64 ent;    /* what readdir returned last */
    char buf[32768];
};

static struct pl_dir *as_ours(DIR *d)
{
    struct pl_dir *p = (struct pl_dir *)d;
    return p && p->magic == PL_DIR_MAGIC ? p : NULL;
}

static DIR *dir_wrap(int fd)
{
    struct pl_dir *p = calloc(1, sizeof *p);
    if (!p) {
        (void)pl_close_mount_fd(fd);
        return pl_fail(-ENOMEM);
    }
    p->magic = PL_DIR_MAGIC;
    p->fd = fd;
    return (DIR *)p;
}

PL_EXPORT DIR *opendir(const char *path)
{
    int mnt;
    char rel[PATH_MAX];
    int k = pl_classify(AT_FDCWD, path, &mnt, rel);
    if (k < 0)
        return pl_fail(k);
    if (k != 1)
        return REAL(opendir)(k == 2 ? rel : path);
    int fd = pl_open_at_mount(mnt, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, true);
    if (fd == RUN_LEFT_MOUNT) {
        /* The path left the mount: openat follows it (preload_path.c),
         * fdopendir takes the fd wherever it landed. */
        fd = openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd < 0 ? NULL : fdopendir(fd);
        if (fd >= 0 && !d) {
            int e = errno;
            close(fd);
            errno = e;
        }
        return d;
    }
    if (fd < 0)
        return pl_fail(fd);
    return dir_wrap(fd);
}

PL_EXPORT DIR *fdopendir(int fd)
{
    struct pl_fd f;
    if (!pl_fd_get(fd, &f, NULL))
        return REAL(fdopendir)(fd);
    if (!f.is_dir)
        return pl_fail(-ENOTDIR);
    struct pl_dir *p = calloc(1, sizeof *p);
    if (!p)
        return pl_fail(-ENOMEM);
    p->magic = PL_DIR_MAGIC;
    p->fd = fd;
    return (DIR *)p;
}

static struct dirent64 *dir_next(struct pl_dir *p)
{
    if (p->pos >= p->len) {
        if (p->end)
            return NULL; /* the end, no need to ask (errno untouched) */
        struct pl_fd f;
        if (!pl_fd_get(p->fd, &f, NULL))
            return pl_fail(-EBADF);
        ssize_t n = pl_getdents(&f, p->buf, sizeof p->buf, &p->end);
        if (n <= 0) {
            return n < 0 ? pl_fail(n) : NULL;    /* the end: errno untouched */
        }
        p->len = (size_t)n;
        p->pos = 0;
    }
    struct dirent64 *e = (struct dirent64 *)(p->buf + p->pos);
    if (e->d_reclen == 0 || p->pos + e->d_reclen > p->len) {
        p->pos = p->len;
        return pl_fail(-EIO);
    }
    p->pos += e->d_reclen;
    p->loc++;
    memcpy(&p->ent, e, e->d_reclen < sizeof p->ent ? e->d_reclen : sizeof p->ent);
    return &p->ent;
}

PL_EXPORT struct dirent *readdir(DIR *d)
{
    struct pl_dir *p = as_ours(d);
    if (!p)
        return REAL(readdir)(d);
    return (struct dirent *)dir_next(p);
}

PL_EXPORT struct dirent64 *readdir64(DIR *d)
{
    struct pl_dir *p = as_ours(d);
    if (!p)
        return REAL(readdir64)(d);
    return dir_next(p);
}

PL_EXPORT int readdir_r(DIR *d, struct dirent *entry, struct dirent **result)
{
    struct pl_dir *p = as_ours(d);
    if (!p)
        return REAL(readdir_r)(d, entry, result);
    int saved = errno;
    errno = 0;
    struct dirent64 *e = dir_next(p);
    int err = errno;
    errno = saved;
    if (!e) {
        *result = NULL;
        return err;
    }
    memcpy(entry, e, sizeof *entry);
    *result = entry;
    return 0;
}

PL_EXPORT int readdir64_r(DIR *d, struct dirent64 *entry, struct dirent64 **result)
{
    struct pl_dir *p = as_ours(d);
    if (!p)
        return REAL(readdir64_r)(d, entry, result);
    return readdir_r(d, (struct dirent *)entry, (struct dirent **)result);
}

PL_EXPORT void seekdir(DIR *d, long loc)
{
    struct pl_dir *p = as_ours(d);
    if (!p) {
        REAL(seekdir)(d, loc);
        return;
    }
    struct pl_fd f;
    if (loc < 0 || !pl_fd_get(p->fd, &f, NULL))
        return;
    struct pl_call c = { .q = { .a = loc } };
    if (pl_fd_call(&f, RUN_SEEKDIR, &c) == 0) {
        p->pos = p->len = 0;
        p->end = false;
        p->loc = loc;
    }
}

PL_EXPORT void rewinddir(DIR *d)
{
    if (!as_ours(d)) {
        REAL(rewinddir)(d);
        return;
    }
    seekdir(d, 0);
}

PL_EXPORT long telldir(DIR *d)
{
    struct pl_dir *p = as_ours(d);
    return p ? p->loc : REAL(telldir)(d);
}

PL_EXPORT int dirfd(DIR *d)
{
    struct pl_dir *p = as_ours(d);
    return p ? p->fd : REAL(dirfd)(d);
}

PL_EXPORT int closedir(DIR *d)
{
    struct pl_dir *p = as_ours(d);
    if (!p)
        return REAL(closedir)(d);
    int fd = p->fd;
    p->magic = 0;
    free(p);
    return (int)pl_ret(pl_close_mount_fd(fd));
}

/* ---- stdio ---------------------------------------------------------------- */

static ssize_t cookie_read(void *cookie, char *buf, size_t n)
{
    return read((int)(intptr_t)cookie, buf, n);
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t n)
{
    ssize_t w = write((int)(intptr_t)cookie, buf, n);
    return w < 0 ? 0 : w;   /* fopencookie: 0 means error */
}

static int cookie_seek(void *cookie, off64_t *off, int whence)
{
    off_t r = lseek((int)(intptr_t)cookie, *off, whence);
    if (r < 0)
        return -1;
    *off = r;
    return 0;
}

static int cookie_close(void *cookie)
{
    return close((int)(intptr_t)cookie);
}

/* fopen's mode string to open(2) flags (glibc's letters: r w a + x e). */
static int mode_flags(const char *mode, int *flags)
{
    int acc, extra = 0;
    switch (mode[0]) {
    case 'r': acc = O_RDONLY; break;
    case 'w': acc = O_WRONLY; extra = O_CREAT | O_TRUNC; break;
    case 'a': acc = O_WRONLY; extra = O_CREAT | O_APPEND; break;
    default: return -EINVAL;
    }
    for (const char *m = mode + 1; *m && *m != ','; m++) {
        if (*m == '+')
            acc = O_RDWR;
        else if (*m == 'x')
            extra |= O_EXCL;
        else if (*m == 'e')
            extra |= O_CLOEXEC;
    }
    *flags = acc | extra;
    return 0;
}

static FILE *file_wrap(int fd, const char *mode)
{
    cookie_io_functions_t io = { cookie_read, cookie_write, cookie_seek, cookie_close };
    FILE *fp = fopencookie((void *)(intptr_t)fd, mode, io);
    if (!fp) {
        int e = errno;
        (void)pl_close_mount_fd(fd);
        errno = e;
        return NULL;
    }
    /* fileno(fp) must name the fd, as for a FILE of fopen. */
    fp->_fileno = fd;
    if (mode[0] == 'a')
        (void)fseeko(fp, 0, SEEK_END);
    return fp;
}

PL_EXPORT FILE *fopen(const char *path, const char *mode)
{
    int mnt, flags;
    char rel[PATH_MAX];
    int k = pl_classify(AT_FDCWD, path, &mnt, rel);
    if (k < 0)
        return pl_fail(k);
    if (k != 1)
        return REAL(fopen)(k == 2 ? rel : path, mode);
    if (mode_flags(mode, &flags) < 0)
        return pl_fail(-EINVAL);
    int fd = pl_open_at_mount(mnt, rel, flags, 0666, false);
    if (fd == RUN_LEFT_MOUNT) {
        /* As opendir: open follows the path, fdopen takes the fd. */
        fd = openat(AT_FDCWD, path, flags, 0666);
        FILE *f = fd < 0 ? NULL : fdopen(fd, mode);
        if (fd >= 0 && !f) {
            int e = errno;
            close(fd);
            errno = e;
        }
        return f;
    }
    if (fd < 0)
        return pl_fail(fd);
    return file_wrap(fd, mode);
}
PL_EXPORT FILE *fopen64(const char *path, const char *mode) { return fopen(path, mode); }

PL_EXPORT FILE *fdopen(int fd, const char *mode)
{
    if (!pl_is_mount_fd(fd))
        return REAL(fdopen)(fd, mode);
    return file_wrap(fd, mode);
}

PL_EXPORT FILE *freopen(const char *path, const char *mode, FILE *fp)
{
    int mnt, flags;
    char rel[PATH_MAX];
    int k = path ? pl_classify(AT_FDCWD, path, &mnt, rel) : 0;
    if (k < 0)
        return pl_fail(k);
    if (k != 1)
        return REAL(freopen)(k == 2 ? rel : path, mode, fp);
    /* A FILE's insides cannot be swapped for a cookie stream: emulate the
     * common use (redirecting stdin/stdout/stderr) by putting the new file
     * on the stream's fd number. */
    if (mode_flags(mode, &flags) < 0)
        return pl_fail(-EINVAL);
    int target = fileno(fp);
    fflush(fp);
    int fd = pl_open_at_mount(mnt, rel, flags, 0666, false);
    if (fd < 0)
        return pl_fail(fd);
    if (target >= 0 && dup2(fd, target) >= 0) {
        (void)pl_close_mount_fd(fd);
        clearerr(fp);
        return fp;
    }
    (void)pl_close_mount_fd(fd);
    return pl_fail(-EBADF);
}
PL_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *fp) { return freopen(path, mode, fp); }

/*
 * The standard streams.  glibc's stdin/stdout/stderr write with internal
 * calls that do not reach this library, so when fd 0, 1 or 2 is a mount
 * fd (a shell redirected it, or the program dup2'd one there) the stream
 * variable is pointed at a cookie stream on that fd, and back at the
 * original when the fd stops being one of ours.
 */
static FILE *orig_std[3];
static FILE *ours_std[3];

static FILE **std_slot(int fd)
{
    return fd == 0 ? &stdin : fd == 1 ? &stdout : &stderr;
}

void pl_std_sync(int fd)
{
    if (fd < 0 || fd > 2)
        return;
    FILE **slot = std_slot(fd);
    bool mount = pl_is_mount_fd(fd);
    if (mount && *slot != ours_std[fd]) {
        if (!orig_std[fd])
            orig_std[fd] = *slot;
        fflush(*slot);
        cookie_io_functions_t io = { cookie_read, cookie_write, cookie_seek, cookie_close };
        FILE *fp = fopencookie((void *)(intptr_t)fd, fd == 0 ? "r" : "w", io);
        if (!fp)
            return;
        fp->_fileno = fd;
        if (fd == 2)
            setvbuf(fp, NULL, _IONBF, 0);
        ours_std[fd] = fp;
        *slot = fp;
    } else if (!mount && ours_std[fd] && *slot == ours_std[fd]) {
        fflush(*slot);
        *slot = orig_std[fd];
        /* The cookie stream is left allocated: closing it would close fd. */
        ours_std[fd] = NULL;
    }
}
