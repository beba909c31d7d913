/*
 * side.c - the remote file system (a ufuse session) and the local one
 * behind one interface, struct side, so that get and put are one tree walk
 * and one data pump (stream_copy) run in either direction.
 *
 * Every operation returns 0 (or a count) or -errno, like the ufuse API.
 * Handles are opaque void pointers: a ufuse_file_t * on the remote side, a
 * file descriptor (cast through intptr_t) on the local side.
 *
 * Locks: none (single-threaded tool).
 *
 * Invariants:
 *   1. list() returns entries sorted by name (strcmp order) without "." and
 *      "..", each name malloc'd; entries_free() releases them.
 *   2. pwrite() writes all @n bytes or fails: short writes are retried, a
 *      write that makes no progress is -EIO.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static bool dot_or_dotdot(const char *n)
{
    return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

/* Append one entry to a growing array (invariant 1: sorted later). */
static void entry_push(struct entry **v, size_t *n, size_t *cap,
                       const char *name, unsigned type, const struct stat *st)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *v = xrealloc(*v, *cap * sizeof(**v));
    }
    struct entry *e = &(*v)[(*n)++];
    memset(e, 0, sizeof(*e));
    e->name = xstrdup(name);
    e->type = type;
    if (st) {
        e->has_stat = true;
        e->st = *st;
    }
}

void entries_free(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

/* ---- remote ------------------------------------------------------------ */

int remote_list(struct cli *c, const char *path, struct entry **out,
                size_t *n)
{
    ufuse_dir_t *d;
    struct ufuse_dirent de;
    struct entry *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = ufuse_opendir(c->fs, path, &d);

    if (r < 0)
        return r;
    while ((r = ufuse_readdir(d, &de)) > 0) {
        if (dot_or_dotdot(de.name))
            continue;
        entry_push(&v, &cnt, &cap, de.name, de.type,
                   de.has_stat ? &de.st : NULL);
    }
    int rc = ufuse_closedir(d);
    if (r == 0)
        r = rc;
    if (r < 0) {
        entries_free(v, cnt);
        return r;
    }
    if (cnt)
        qsort(v, cnt, sizeof(*v), cmp_entry);
    *out = v;
    *n = cnt;
    return 0;
}

int remote_readlink(struct cli *c, const char *path, char **out)
{
    size_t size = 256;
    for (;;) {
        char *buf = xmalloc(size + 1);
        ssize_t r = ufuse_readlink(c->fs, path, buf, size);
        if (r < 0) {
            free(buf);
            return (int)r;
        }
        if ((size_t)r <= size) {
            buf[r] = '\0';
            *out = buf;
            return 0;
        }
        free(buf);
        size = (size_t)r;
    }
}

static int r_lstat(struct cli *c, const char *p, struct stat *st)
{
    return ufuse_lstat(c->fs, p, st);
}

static int r_stat(struct cli *c, const char *p, struct stat *st)
{
    return ufuse_stat(c->fs, p, st);
}

static int r_mkdir(struct cli *c, const char *p, mode_t m)
{
    return ufuse_mkdir(c->fs, p, m);
}

static int r_symlink(struct cli *c, const char *t, const char *p)
{
    return ufuse_symlink(c->fs, t, p);
}

static int r_unlink(struct cli *c, const char *p)
{
    return ufuse_unlink(c->fs, p);
}

static int r_chmod(struct cli *c, const char *p, mode_t m)
{
    return ufuse_chmod(c->fs, p, m);
}

static int r_open(struct cli *c, const char *p, int flags, mode_t m, void **h)
{
    ufuse_file_t *f;
    int r = ufuse_open(c->fs, p, flags, m, &f);
    if (r == 0)
        *h = f;
    return r;
}

static ssize_t r_pread(void *h, void *buf, size_t n, off_t off)
{
    return ufuse_pread(h, buf, n, off);
}

static int r_pwrite(void *h, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {                          /* invariant 2 */
        ssize_t w = ufuse_pwrite(h, p, n, off);
        if (w < 0)
            return (int)w;
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int r_fchmod(void *h, mode_t m)
{
    return ufuse_fchmod(h, m);
}

static int r_close(void *h)
{
    return ufuse_close(h);
}

const struct side side_remote = {
    .name = "remote",
    .lstat = r_lstat,
    .stat = r_stat,
    .list = remote_list,
    .readlink = remote_readlink,
    .mkdir = r_mkdir,
    .symlink = r_symlink,
    .unlink = r_unlink,
    .chmod = r_chmod,
    .open = r_open,
    .pread = r_pread,
    .pwrite = r_pwrite,
    .fchmod = r_fchmod,
    .close = r_close,
};

/* ---- local ------------------------------------------------------------- */

static int neg_errno(int r)
{
    return r < 0 ? -errno : r;
}

static int fd_of(void *h)
{
    return (int)(intptr_t)h;
}

static int l_lstat(struct cli *c, const char *p, struct stat *st)
{
    return neg_errno(lstat(p, st));
}

static int l_stat(struct cli *c, const char *p, struct stat *st)
{
    return neg_errno(stat(p, st));
}

static int l_list(struct cli *c, const char *path, struct entry **out,
                  size_t *n)
{
    DIR *d = opendir(path);
    struct entry *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;

    if (!d)
        return -errno;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de)
            break;
        if (!dot_or_dotdot(de->d_name))
            entry_push(&v, &cnt, &cap, de->d_name, de->d_type, NULL);
    }
    int err = errno;
    closedir(d);
    if (err) {
        entries_free(v, cnt);
        return -err;
    }
    if (cnt)
        qsort(v, cnt, sizeof(*v), cmp_entry);
    *out = v;
    *n = cnt;
    return 0;
}

static int l_readlink(struct cli *c, const char *path, char **out)
{
    size_t size = 256;
    for (;;) {
        char *buf = xmalloc(size + 1);
        ssize_t r = readlink(path, buf, size);
        if (r < 0) {
            int err = -errno;
            free(buf);
            return err;
        }
        if ((size_t)r < size) {              /* == size may be truncated */
            buf[r] = '\0';
            *out = buf;
            return 0;
        }
        free(buf);
        size *= 2;
    }
}

static int l_mkdir(struct cli *c, const char *p, mode_t m)
{
    return neg_errno(mkdir(p, m));
}

static int l_symlink(struct cli *c, const char *t, const char *p)
{
    return neg_errno(symlink(t, p));
}

static int l_unlink(struct cli *c, const char *p)
{
    return neg_errno(unlink(p));
}

static int l_chmod(struct cli *c, const char *p, mode_t m)
{
    return neg_errno(chmod(p, m));
}

static int l_open(struct cli *c, const char *p, int flags, mode_t m, void **h)
{
    int fd = open(p, flags | O_CLOEXEC, m);
    if (fd < 0)
        return -errno;
    *h = (void *)(intptr_t)fd;
    return 0;
}

static ssize_t l_pread(void *h, void *buf, size_t n, off_t off)
{
    for (;;) {
        ssize_t r = pread(fd_of(h), buf, n, off);
        if (r >= 0 || errno != EINTR)
            return r < 0 ? -errno : r;
    }
}

/* Write all of @buf at @off, or sequentially when @off < 0. */
static int fd_write_all(int fd, const char *p, size_t n, off_t off)
{
    while (n > 0) {                          /* invariant 2 */
        ssize_t w = off < 0 ? write(fd, p, n) : pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        if (off >= 0)
            off += w;
    }
    return 0;
}

static int l_pwrite(void *h, const void *buf, size_t n, off_t off)
{
    return fd_write_all(fd_of(h), buf, n, off);
}

static int l_fchmod(void *h, mode_t m)
{
    return neg_errno(fchmod(fd_of(h), m));
}

static int l_close(void *h)
{
    return neg_errno(close(fd_of(h)));
}

const struct side side_local = {
    .name = "local",
    .lstat = l_lstat,
    .stat = l_stat,
    .list = l_list,
    .readlink = l_readlink,
    .mkdir = l_mkdir,
    .symlink = l_symlink,
    .unlink = l_unlink,
    .chmod = l_chmod,
    .open = l_open,
    .pread = l_pread,
    .pwrite = l_pwrite,
    .fchmod = l_fchmod,
    .close = l_close,
};

/* ---- standard output: a write-only sink -------------------------------- */

static int out_pwrite(void *h, const void *buf, size_t n, off_t off)
{
    return fd_write_all(STDOUT_FILENO, buf, n, -1);
}

const struct side side_stdout = {
    .name = "stdout",
    .pwrite = out_pwrite,
};

/* ---- the data pump ----------------------------------------------------- */

int stream_copy(struct cli *c, const struct side *from, void *fh,
                const struct side *to, void *th, uint64_t size,
                const char *label, bool *src_err)
{
    char *buf = xmalloc(CLI_CHUNK);
    struct progress pb;
    off_t off = 0;
    int r = 0;

    progress_start(&pb, c, label, size);
    for (;;) {
        ssize_t n = from->pread(fh, buf, CLI_CHUNK, off);
        if (n < 0) {
            *src_err = true;
            r = (int)n;
            break;
        }
        if (n == 0)
            break;
        r = to->pwrite(th, buf, (size_t)n, off);
        if (r < 0) {
            *src_err = false;
            break;
        }
        off += n;
        progress_add(&pb, (uint64_t)n);
    }
    progress_end(&pb);
    free(buf);
    return r;
}
