/*
 * api.c - the public API (include/ufuse.h): argument checks, handles,
 * -errno returns.  Every function here validates what the caller passed
 * and calls the vfs or io layer; none touches errno.
 * Locks: none of its own (see vfs.h and io.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ufuse.h"
#include "vfs/vfs.h"

#define CHECK_PATH(s, p)                      \
    do {                                      \
        if (!(s) || !(p))                     \
            return -EINVAL;                   \
        if (!*(p))                            \
            return -ENOENT;                   \
    } while (0)

/* ---- sessions ----------------------------------------------------------------------- */

static int api_session_new(ufuse_t **out, const char *options, ufuse_t **sp, char *msg,
                           size_t msgsize)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    ufuse_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = vfs_parse_opts(options, &s->opts, msg, msgsize);
    if (rc) {
        free(s);
        return rc;
    }
    *sp = s;
    return 0;
}

static void api_session_free(ufuse_t *s)
{
    if (s->logfp)
        fclose(s->logfp);
    vfs_free_opts(&s->opts);
    free(s);
}

static int api_mount(ufuse_t **out, char *const argv[], const char *options, char *msg,
                     size_t msgsize)
{
    ufuse_t *s;
    int rc = api_session_new(out, options, &s, msg, msgsize);
    if (rc)
        return rc;
    int logfd = -1;
    if (s->opts.log_path) {
        logfd = open(s->opts.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (logfd < 0 || !(s->logfp = fdopen(logfd, "a"))) {
            rc = -errno;
            snprintf(msg, msgsize, "option log=%s: cannot open it: %s", s->opts.log_path,
                     strerror(-rc));
            if (logfd >= 0)
                close(logfd);
            api_session_free(s);
            return rc;
        }
        setvbuf(s->logfp, NULL, _IOLBF, 0);
    }
    rc = vfs_spawn(s, argv, logfd, msg, msgsize);
    if (rc) {
        api_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int api_mount_fd(ufuse_t **out, int fd, const char *options, char *msg,
                        size_t msgsize)
{
    ufuse_t *s;
    int rc = api_session_new(out, options, &s, msg, msgsize);
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    struct chan ch;
    rc = chan_attach_fd(&ch, fd);
    if (rc)
        snprintf(msg, msgsize, "fd %d is not a connected SOCK_SEQPACKET socket", fd);
    else
        rc = vfs_start(s, &ch, msg, msgsize);
    if (rc) {
        api_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* The caller's copy of a mount's message: the layers' own, else the
 * error's name; "" on success. */
static int api_report(int rc, const char *msg, char *err, size_t errsize)
{
    if (err && errsize)
        snprintf(err, errsize, "%s", rc == 0 ? "" : msg[0] ? msg : strerror(-rc));
    return rc;
}

int ufuse_mount_err(ufuse_t **out, char *const argv[], const char *options, char *err,
                    size_t errsize)
{
    char msg[UFUSE_MOUNT_ERR_MAX] = "";
    return api_report(api_mount(out, argv, options, msg, sizeof msg), msg, err, errsize);
}

int ufuse_mount(ufuse_t **out, char *const argv[], const char *options)
{
    return ufuse_mount_err(out, argv, options, NULL, 0);
}

int ufuse_mount_fd_err(ufuse_t **out, int fd, const char *options, char *err,
                       size_t errsize)
{
    char msg[UFUSE_MOUNT_ERR_MAX] = "";
    return api_report(api_mount_fd(out, fd, options, msg, sizeof msg), msg, err, errsize);
}

int ufuse_mount_fd(ufuse_t **out, int fd, const char *options)
{
    return ufuse_mount_fd_err(out, fd, options, NULL, 0);
}

int ufuse_unmount(ufuse_t *s)
{
    if (!s)
        return -EINVAL;
    int rc = vfs_unmount(s);
    api_session_free(s);
    return rc;
}

int ufuse_sync(ufuse_t *s)
{
    return s ? io_mount_sync(&s->io) : -EINVAL;
}

int ufuse_cacheinfo(ufuse_t *s, struct ufuse_cacheinfo *out)
{
    if (!s || !out)
        return -EINVAL;
    if (s->io.cache_on)
        cache_info(&s->io.cache, out);
    else
        memset(out, 0, sizeof *out);
    return 0;
}

int ufuse_interrupt(ufuse_t *s, pthread_t thread)
{
    return s ? conn_interrupt(&s->conn, thread) : -EINVAL;
}

int ufuse_stats(ufuse_t *s, struct ufuse_opstat *out, size_t n)
{
    if (!s || (!out && n))
        return -EINVAL;
    struct conn_opstat st[PROTO_MAX_OPCODE];
    conn_get_stats(&s->conn, st, NULL);
    size_t k = 0;
    for (uint32_t op = 0; op < PROTO_MAX_OPCODE && k < n; op++) {
        if (!st[op].count)
            continue;
        out[k++] = (struct ufuse_opstat){
            .name = proto_opname(op), .opcode = op, .count = st[op].count,
            .errors = st[op].errors, .bytes = st[op].bytes,
            .total_ns = st[op].total_ns, .max_ns = st[op].max_ns,
            .p99_ns = conn_lat_percentile(&st[op], 99.0)};
    }
    return (int)k;
}

int ufuse_last_failure(ufuse_t *s, struct ufuse_failure *out)
{
    if (!s || !out)
        return -EINVAL;
    struct conn_failure f;
    int rc = conn_last_failure(&s->conn, &f);
    if (rc)
        return rc;
    *out = (struct ufuse_failure){.server = s->log.name, .request = proto_opname(f.opcode),
                                  .error = f.error, .server_fault = f.server_fault};
    return 0;
}

int ufuse_set_caller(ufuse_t *s, const struct ufuse_caller *who)
{
    if (!s)
        return -EINVAL;
    if (who && (who->ngroups < 0 || (who->ngroups && !who->groups)))
        return -EINVAL;
    if (who) {
        uint32_t groups[CONN_CALLER_GROUPS];
        uint32_t n = (uint32_t)UFUSE_MIN(who->ngroups, CONN_CALLER_GROUPS);
        for (uint32_t i = 0; i < n; i++)
            groups[i] = (uint32_t)who->groups[i];
        conn_set_caller(&s->conn, 1, (uint32_t)who->uid, (uint32_t)who->gid, (uint32_t)who->pid,
                        groups, n);
    } else {
        conn_set_caller(&s->conn, 0, 0, 0, 0, NULL, 0);
    }
    return 0;
}

int ufuse_conninfo(ufuse_t *s, struct ufuse_conninfo *out)
{
    if (!s || !out)
        return -EINVAL;
    const struct conn_params *p = &s->conn.p;
    struct conn_opstat st[PROTO_MAX_OPCODE];
    struct conn_counts counts;
    uint64_t requests = 0;
    conn_get_stats(&s->conn, st, &counts);
    for (int op = 0; op < PROTO_MAX_OPCODE; op++)
        requests += st[op].count;
    *out = (struct ufuse_conninfo){
        .proto_major = p->major, .proto_minor = p->minor, .flags = p->flags,
        .max_read = p->max_read, .max_write = p->max_write,
        .max_readahead = p->max_readahead, .max_pages = p->max_pages,
        .time_gran = p->time_gran, .requests = requests, .wakeups = counts.wakeups,
        .polled = counts.polled, .poll_misses = counts.poll_misses};
    return 0;
}

/* ---- files ------------------------------------------------------------------------- */

int ufuse_open(ufuse_t *s, const char *path, int flags, mode_t mode, ufuse_file_t **out)
{
    CHECK_PATH(s, path);
    if (!out)
        return -EINVAL;
    *out = NULL;
    if ((flags & O_ACCMODE) == O_ACCMODE)
        return -EINVAL;
    return vfs_open(s, path, flags, mode, out);
}

int ufuse_close(ufuse_file_t *f)
{
    return f ? vfs_close(f, 1) : -EBADF;
}

ssize_t ufuse_outside_path(ufuse_t *s, char *buf, size_t size)
{
    if (!s || !buf)
        return -EINVAL;
    return vfs_outside_path(buf, size);
}

int ufuse_release(ufuse_file_t *f)
{
    return f ? vfs_close(f, 0) : -EBADF;
}

static int api_can_read(ufuse_file_t *f)
{
    return f && (f->io.oflags & O_ACCMODE) != O_WRONLY;
}

static int api_can_write(ufuse_file_t *f)
{
    return f && (f->io.oflags & O_ACCMODE) != O_RDONLY;
}

/* FOPEN_NONSEEKABLE: positioned I/O and seeking are ESPIPE (Linux's
 * nonseekable_open); read/write at the handle's position still work. */
static int api_seekable(ufuse_file_t *f)
{
    return !(f->io.fopen_flags & FOPEN_NONSEEKABLE);
}

static int api_iov_ok(const struct iovec *iov, int cnt)
{
    if (cnt < 0 || cnt > IOV_MAX || (cnt && !iov))
        return 0;
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len && !iov[i].iov_base)
            return 0;
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return 0;
        total += iov[i].iov_len;
    }
    return 1;
}

ssize_t ufuse_preadv(ufuse_file_t *f, const struct iovec *iov, int iovcnt, off_t off)
{
    if (!api_can_read(f))
        return -EBADF;
    if (!api_seekable(f))
        return -ESPIPE;
    if (!api_iov_ok(iov, iovcnt) || off < 0)
        return -EINVAL;
    return io_dispatch_read(&f->io, iov, iovcnt, off);
}

ssize_t ufuse_pread(ufuse_file_t *f, void *buf, size_t n, off_t off)
{
    struct iovec v = {buf, n};
    return ufuse_preadv(f, &v, 1, off);
}

ssize_t ufuse_pwritev(ufuse_file_t *f, const struct iovec *iov, int iovcnt, off_t off)
{
    if (!api_can_write(f))
        return -EBADF;
    if (!api_seekable(f))
        return -ESPIPE;
    if (!api_iov_ok(iov, iovcnt) || off < 0)
        return -EINVAL;
    off_t where;
    return io_dispatch_write(&f->io, iov, iovcnt, off, &where);
}

ssize_t ufuse_pwrite(ufuse_file_t *f, const void *buf, size_t n, off_t off)
{
    struct iovec v = {(void *)buf, n};
    return ufuse_pwritev(f, &v, 1, off);
}

ssize_t ufuse_read(ufuse_file_t *f, void *buf, size_t n)
{
    if (!api_can_read(f))
        return -EBADF;
    struct iovec v = {buf, n};
    if (!api_iov_ok(&v, 1))
        return -EINVAL;
    pthread_mutex_lock(&f->pos_mu);
    ssize_t r = io_dispatch_read(&f->io, &v, 1, f->pos);
    if (r > 0)
        f->pos += r;
    pthread_mutex_unlock(&f->pos_mu);
    return r;
}

ssize_t ufuse_write(ufuse_file_t *f, const void *buf, size_t n)
{
    if (!api_can_write(f))
        return -EBADF;
    struct iovec v = {(void *)buf, n};
    if (!api_iov_ok(&v, 1))
        return -EINVAL;
    pthread_mutex_lock(&f->pos_mu);
    off_t where = f->pos;
    ssize_t r = io_dispatch_write(&f->io, &v, 1, f->pos, &where);
    if (r > 0)
        f->pos = where + r;
    pthread_mutex_unlock(&f->pos_mu);
    return r;
}

off_t ufuse_lseek(ufuse_file_t *f, off_t off, int whence)
{
    if (!f)
        return -EBADF;
    return api_seekable(f) ? vfs_lseek(f, off, whence) : -ESPIPE;
}

int ufuse_fsync(ufuse_file_t *f)
{
    return f ? vfs_fsync(f, 0) : -EBADF;
}

int ufuse_fdatasync(ufuse_file_t *f)
{
    return f ? vfs_fsync(f, 1) : -EBADF;
}

int ufuse_ftruncate(ufuse_file_t *f, off_t size)
{
    if (!api_can_write(f))
        return f ? -EINVAL : -EBADF;
    if (size < 0)
        return -EINVAL;
    struct fuse_setattr_in in = {.valid = FATTR_SIZE, .size = (uint64_t)size};
    return vfs_setattr(f->s, NULL, f, 0, &in);
}

int ufuse_fstat(ufuse_file_t *f, struct stat *st)
{
    if (!f)
        return -EBADF;
    if (!st)
        return -EINVAL;
    return vfs_fstat(f, st);
}

int ufuse_flush(ufuse_file_t *f)
{
    return f ? vfs_flush(f) : -EBADF;
}

int ufuse_share_fd(ufuse_t *s)
{
    return s ? vfs_share_fd(s) : -EINVAL;
}

int ufuse_share_refs_fd(ufuse_t *s)
{
    return s ? vfs_share_refs_fd(s) : -EINVAL;
}

int ufuse_file_share(ufuse_file_t *f, struct ufuse_share_ids *ids)
{
    if (!f)
        return -EBADF;
    return ids ? vfs_file_share(f, ids) : -EINVAL;
}

int ufuse_fchmod(ufuse_file_t *f, mode_t mode)
{
    if (!f)
        return -EBADF;
    struct fuse_setattr_in in = {.valid = FATTR_MODE, .mode = mode & 07777};
    return vfs_setattr(f->s, NULL, f, 0, &in);
}

int ufuse_fallocate(ufuse_file_t *f, int mode, off_t off, off_t len)
{
    return f ? vfs_fallocate(f, mode, off, len) : -EBADF;
}

ssize_t ufuse_copy_file_range(ufuse_file_t *in, off_t *off_in, ufuse_file_t *out,
                              off_t *off_out, size_t len, unsigned flags)
{
    if (!in || !out)
        return -EBADF;
    if (in->s != out->s)
        return -EXDEV;
    if (len > (size_t)SSIZE_MAX)
        len = (size_t)SSIZE_MAX;
    /* Positions: given, or the handles' own (advanced afterwards). */
    if (!off_in)
        pthread_mutex_lock(&in->pos_mu);
    if (!off_out && out != in)
        pthread_mutex_lock(&out->pos_mu);
    off_t oi = off_in ? *off_in : in->pos;
    off_t oo = off_out ? *off_out : out->pos;
    ssize_t r = vfs_copy_file_range(in, oi, out, oo, len, flags);
    if (r > 0) {
        if (off_in)
            *off_in += r;
        else
            in->pos += r;
        if (off_out)
            *off_out += r;
        else
            out->pos += r;
    }
    if (!off_out && out != in)
        pthread_mutex_unlock(&out->pos_mu);
    if (!off_in)
        pthread_mutex_unlock(&in->pos_mu);
    return r;
}

/* ---- paths ------------------------------------------------------------------------- */

int ufuse_stat(ufuse_t *s, const char *path, struct stat *st)
{
    CHECK_PATH(s, path);
    return st ? vfs_getattr_path(s, path, 1, st) : -EINVAL;
}

int ufuse_lstat(ufuse_t *s, const char *path, struct stat *st)
{
    CHECK_PATH(s, path);
    return st ? vfs_getattr_path(s, path, 0, st) : -EINVAL;
}

int ufuse_access(ufuse_t *s, const char *path, int mode)
{
    CHECK_PATH(s, path);
    if (mode & ~(R_OK | W_OK | X_OK))
        return -EINVAL;
    return vfs_access(s, path, mode);
}

int ufuse_mkdir(ufuse_t *s, const char *path, mode_t mode)
{
    CHECK_PATH(s, path);
    return vfs_mkdir(s, path, mode);
}

int ufuse_mknod(ufuse_t *s, const char *path, mode_t mode, dev_t dev)
{
    CHECK_PATH(s, path);
    if ((mode & S_IFMT) == 0)
        mode |= S_IFREG;
    return vfs_mknod(s, path, mode, dev);
}

int ufuse_rmdir(ufuse_t *s, const char *path)
{
    CHECK_PATH(s, path);
    return vfs_remove(s, path, 1);
}

int ufuse_unlink(ufuse_t *s, const char *path)
{
    CHECK_PATH(s, path);
    int rc = vfs_remove(s, path, 0);
    return rc == -EBUSY ? -EISDIR : rc;
}

int ufuse_rename(ufuse_t *s, const char *from, const char *to, unsigned flags)
{
    CHECK_PATH(s, from);
    CHECK_PATH(s, to);
    return vfs_rename(s, from, to, flags);
}

int ufuse_link(ufuse_t *s, const char *existing, const char *newpath)
{
    CHECK_PATH(s, existing);
    CHECK_PATH(s, newpath);
    return vfs_link(s, existing, newpath);
}

int ufuse_symlink(ufuse_t *s, const char *target, const char *linkpath)
{
    CHECK_PATH(s, linkpath);
    if (!target)
        return -EINVAL;
    return vfs_symlink(s, target, linkpath);
}

ssize_t ufuse_readlink(ufuse_t *s, const char *path, char *buf, size_t size)
{
    CHECK_PATH(s, path);
    if (!buf && size)
        return -EINVAL;
    return vfs_readlink(s, path, buf, size);
}

int ufuse_chmod(ufuse_t *s, const char *path, mode_t mode)
{
    CHECK_PATH(s, path);
    struct fuse_setattr_in in = {.valid = FATTR_MODE, .mode = mode & 07777};
    return vfs_setattr(s, path, NULL, 1, &in);
}

static int api_chown(ufuse_t *s, const char *path, uid_t uid, gid_t gid, int follow)
{
    CHECK_PATH(s, path);
    struct fuse_setattr_in in = {0};
    if (uid != (uid_t)-1) {
        in.valid |= FATTR_UID;
        in.uid = uid;
    }
    if (gid != (gid_t)-1) {
        in.valid |= FATTR_GID;
        in.gid = gid;
    }
    if (!in.valid)
        return follow ? ufuse_access(s, path, F_OK) : ufuse_lstat(s, path, &(struct stat){0});
    return vfs_setattr(s, path, NULL, follow, &in);
}

int ufuse_chown(ufuse_t *s, const char *path, uid_t uid, gid_t gid)
{
    return api_chown(s, path, uid, gid, 1);
}

int ufuse_lchown(ufuse_t *s, const char *path, uid_t uid, gid_t gid)
{
    return api_chown(s, path, uid, gid, 0);
}

/*
 * One utimens time into SETATTR fields; -EINVAL for a bad nsec.  For
 * UTIME_NOW, as Linux does, both the current time and FATTR_*_NOW are
 * sent: servers on libfuse 2's high-level API use the time fields.
 */
static int api_time(const struct timespec *ts, uint32_t set, uint32_t now, uint32_t *valid,
                    uint64_t *sec, uint32_t *nsec)
{
    if (!ts || ts->tv_nsec == UTIME_NOW) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        *valid |= set | now;
        *sec = (uint64_t)t.tv_sec;
        *nsec = (uint32_t)t.tv_nsec;
        return 0;
    }
    if (ts->tv_nsec == UTIME_OMIT)
        return 0;
    if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
        return -EINVAL;
    *valid |= set;
    *sec = (uint64_t)ts->tv_sec;
    *nsec = (uint32_t)ts->tv_nsec;
    return 0;
}

static int api_utimens(ufuse_t *s, const char *path, const struct timespec ts[2], int follow)
{
    CHECK_PATH(s, path);
    struct fuse_setattr_in in = {0};
    int rc = api_time(ts ? &ts[0] : NULL, FATTR_ATIME, FATTR_ATIME_NOW, &in.valid, &in.atime,
                      &in.atimensec);
    if (rc == 0)
        rc = api_time(ts ? &ts[1] : NULL, FATTR_MTIME, FATTR_MTIME_NOW, &in.valid,
                      &in.mtime, &in.mtimensec);
    if (rc)
        return rc;
    if (!in.valid)
        return follow ? ufuse_access(s, path, F_OK) : ufuse_lstat(s, path, &(struct stat){0});
    return vfs_setattr(s, path, NULL, follow, &in);
}

int ufuse_utimens(ufuse_t *s, const char *path, const struct timespec ts[2])
{
    return api_utimens(s, path, ts, 1);
}

int ufuse_lutimens(ufuse_t *s, const char *path, const struct timespec ts[2])
{
    return api_utimens(s, path, ts, 0);
}

int ufuse_truncate(ufuse_t *s, const char *path, off_t size)
{
    CHECK_PATH(s, path);
    if (size < 0)
        return -EINVAL;
    struct fuse_setattr_in in = {.valid = FATTR_SIZE, .size = (uint64_t)size};
    return vfs_setattr(s, path, NULL, 1, &in);
}

int ufuse_statfs(ufuse_t *s, const char *path, struct statvfs *st)
{
    CHECK_PATH(s, path);
    return st ? vfs_statfs(s, path, st) : -EINVAL;
}

ssize_t ufuse_getxattr(ufuse_t *s, const char *path, const char *name, void *value,
                       size_t size)
{
    CHECK_PATH(s, path);
    if (!name || (!value && size))
        return -EINVAL;
    return vfs_getxattr(s, path, name, value, size);
}

int ufuse_setxattr(ufuse_t *s, const char *path, const char *name, const void *value,
                   size_t size, int flags)
{
    CHECK_PATH(s, path);
    if (!name || (!value && size))
        return -EINVAL;
    return vfs_setxattr(s, path, name, value, size, flags);
}

ssize_t ufuse_listxattr(ufuse_t *s, const char *path, char *list, size_t size)
{
    CHECK_PATH(s, path);
    if (!list && size)
        return -EINVAL;
    return vfs_listxattr(s, path, list, size);
}

int ufuse_removexattr(ufuse_t *s, const char *path, const char *name)
{
    CHECK_PATH(s, path);
    return name ? vfs_removexattr(s, path, name) : -EINVAL;
}

/* ---- directories --------------------------------------------------------------------- */

int ufuse_opendir(ufuse_t *s, const char *path, ufuse_dir_t **out)
{
    CHECK_PATH(s, path);
    if (!out)
        return -EINVAL;
    *out = NULL;
    return vfs_opendir(s, path, out);
}

int ufuse_readdir(ufuse_dir_t *d, struct ufuse_dirent *ent)
{
    if (!d)
        return -EBADF;
    return ent ? vfs_readdir(d, ent) : -EINVAL;
}

int ufuse_rewinddir(ufuse_dir_t *d)
{
    return d ? vfs_rewinddir(d) : -EBADF;
}

int ufuse_fsyncdir(ufuse_dir_t *d, int datasync)
{
    return d ? vfs_fsyncdir(d, datasync) : -EBADF;
}

int ufuse_closedir(ufuse_dir_t *d)
{
    return d ? vfs_closedir(d) : -EBADF;
}
