/*
 * ops.c - the FUSE request handlers of ufuse-memfs (libfuse 3 low-level
 * API), with POSIX semantics and errno, and the fault injection of the
 * command-line options (enosys, short_read, short_write, eio_at, delay_ms,
 * hang_ino, die_after, splice_read).  Requests delayed or left hanging end
 * with EINTR when the client interrupts them (FUSE_INTERRUPT), as a server
 * that honours interrupts does.
 *
 * Every handler starts with trace() (with -d, a "memfs: OP args pid=N" line
 * on stderr, N being the requesting process; the tests count them) and
 * op_begin() (die_after, hang_ino, delay_ms, enosys), and answers through one of the
 * r_*() wrappers, which count replies for die_after.  A nodeid the table does not know is answered ESTALE; a file
 * handle that is unknown, of another inode, or opened without the access a
 * READ/WRITE needs, EBADF.
 *
 * Locks (order and meaning in memfs.h): name-space operations take
 * memfs.ns_lock exclusively and then one inode lock at a time to update
 * attributes; lookups and readdir take it shared.  Data operations take
 * only the inode's lock (shared to read, exclusive to modify); read
 * replies are sent while the shared lock is held, pointing into the
 * chunks (no copy).
 *
 * Invariants (beyond those of fs.c and store.c):
 *  1. Each successful entry reply (lookup, mknod, mkdir, symlink, link,
 *     create, and each readdirplus entry other than "." and "..") adds one
 *     to the inode's nlookup, and it is taken back if the reply cannot be
 *     sent; FORGET takes them back later.
 *  2. Each successful open/opendir/create reply leaves exactly one handle;
 *     if the reply cannot be sent the handle is released at once.
 *  3. memfs.answered counts the replies sent, INIT included (FORGETs have
 *     none); when it reaches die_after the process _exit()s with status 3.
 */
#include "memfs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* copy_file_range moves at most this much per request. */
#define COPY_MAX ((size_t)1 << 30)
/* readdir replies are built in a buffer of at most this size. */
#define READDIR_MAX ((size_t)1 << 20)

const char *const memfs_op_names[OP_COUNT] = {
    [OP_LOOKUP] = "lookup", [OP_FORGET] = "forget", [OP_GETATTR] = "getattr",
    [OP_SETATTR] = "setattr", [OP_READLINK] = "readlink", [OP_MKNOD] = "mknod",
    [OP_MKDIR] = "mkdir", [OP_UNLINK] = "unlink", [OP_RMDIR] = "rmdir",
    [OP_SYMLINK] = "symlink", [OP_RENAME] = "rename", [OP_LINK] = "link",
    [OP_OPEN] = "open", [OP_READ] = "read", [OP_WRITE] = "write",
    [OP_FLUSH] = "flush", [OP_RELEASE] = "release", [OP_FSYNC] = "fsync",
    [OP_OPENDIR] = "opendir", [OP_READDIR] = "readdir",
    [OP_RELEASEDIR] = "releasedir", [OP_FSYNCDIR] = "fsyncdir",
    [OP_STATFS] = "statfs", [OP_SETXATTR] = "setxattr",
    [OP_GETXATTR] = "getxattr", [OP_LISTXATTR] = "listxattr",
    [OP_REMOVEXATTR] = "removexattr", [OP_ACCESS] = "access",
    [OP_CREATE] = "create", [OP_FALLOCATE] = "fallocate",
    [OP_READDIRPLUS] = "readdirplus", [OP_COPY_FILE_RANGE] = "copy_file_range",
    [OP_LSEEK] = "lseek",
};

/* ------------------------------------------------------------------ */
/* Tracing, fault injection, replies                                    */
/* ------------------------------------------------------------------ */

/* Write "memfs: <fmt...>[ pid=N]\n" to stderr; @pid < 0: no pid. */
static void vline(long pid, const char *fmt, va_list ap)
{
    char buf[1024];
    size_t cap = sizeof(buf) - 32;      /* room for " pid=N\n" */
    int n = snprintf(buf, cap, "memfs: ");
    int m = vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > cap - 1)
        len = cap - 1;
    if (pid >= 0)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, " pid=%ld", pid);
    buf[len++] = '\n';
    /* One write per line keeps lines whole between threads. */
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}

void memfs_trace(const char *fmt, ...)
{
    if (!memfs.o.debug)
        return;
    va_list ap;
    va_start(ap, fmt);
    vline(-1, fmt, ap);
    va_end(ap);
}

/* A request's trace line ends with the pid of the process that caused it
 * (tests count only their own requests). */
static void trace_req(fuse_req_t req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void trace_req(fuse_req_t req, const char *fmt, ...)
{
    if (!memfs.o.debug)
        return;
    va_list ap;
    va_start(ap, fmt);
    vline((long)fuse_req_ctx(req)->pid, fmt, ap);
    va_end(ap);
}

void memfs_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(-1, fmt, ap);
    va_end(ap);
}

#define trace(req, ...) trace_req(req, __VA_ARGS__)

static void die_now(void)
{
    static const char msg[] = "ufuse-memfs: die_after reached, exiting\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    _exit(3);
}

static void count_answer(void)
{
    uint64_t n = atomic_fetch_add(&memfs.answered, 1) + 1;
    if (memfs.o.die_after && n >= memfs.o.die_after)
        die_now();
}

static int r_err(fuse_req_t req, int err);

/* hang_ino: the interrupt that ends a request left unanswered. */
static void hang_interrupted(fuse_req_t req, void *data)
{
    (void)data;
    r_err(req, EINTR);
}

/* Sleep delay_ms, in slices, unless the request is interrupted first.
 * @return true if it was (the caller answers EINTR). */
static bool delay_interrupted(fuse_req_t req)
{
    long left = memfs.o.delay_ms;
    bool heed = !memfs.o.ignore_interrupts;
    while (left > 0) {
        if (heed && fuse_req_interrupted(req))
            return true;
        long ms = left < 10 ? left : 10;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
        left -= ms;
    }
    return heed && fuse_req_interrupted(req);
}

/* Common prologue of a request on node @ino (0 for FORGETs): @return
 * false if the request was answered already, or is left unanswered. */
static bool op_begin(fuse_req_t req, enum memfs_op op, fuse_ino_t ino)
{
    if (memfs.o.die_after && atomic_load(&memfs.answered) >= memfs.o.die_after)
        die_now();
    if (op == OP_FORGET)
        return true;
    if (memfs.o.hang_ino && ino == memfs.o.hang_ino) {
        /* Never answered, unless interrupted (libfuse calls the function
         * at once if the INTERRUPT came first). */
        if (!memfs.o.ignore_interrupts)
            fuse_req_interrupt_func(req, hang_interrupted, NULL);
        return false;
    }
    if (memfs.o.delay_ms && delay_interrupted(req)) {
        r_err(req, EINTR);
        return false;
    }
    if (memfs.o.enosys & (UINT64_C(1) << op)) {
        fuse_reply_err(req, ENOSYS);
        count_answer();
        return false;
    }
    return true;
}

static int r_err(fuse_req_t req, int err)
{
    int rc = fuse_reply_err(req, err < 0 ? -err : err);
    count_answer();
    return rc;
}

static int r_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
    int rc = fuse_reply_entry(req, e);
    count_answer();
    return rc;
}

static int r_create(fuse_req_t req, const struct fuse_entry_param *e,
                    const struct fuse_file_info *fi)
{
    int rc = fuse_reply_create(req, e, fi);
    count_answer();
    return rc;
}

static int r_attr(fuse_req_t req, const struct stat *st)
{
    int rc = fuse_reply_attr(req, st, memfs.o.attr_timeout);
    count_answer();
    return rc;
}

static int r_open(fuse_req_t req, const struct fuse_file_info *fi)
{
    int rc = fuse_reply_open(req, fi);
    count_answer();
    return rc;
}

static int r_write(fuse_req_t req, size_t n)
{
    int rc = fuse_reply_write(req, n);
    count_answer();
    return rc;
}

static int r_buf(fuse_req_t req, const void *buf, size_t n)
{
    int rc = fuse_reply_buf(req, buf, n);
    count_answer();
    return rc;
}

static int r_iov(fuse_req_t req, const struct iovec *iov, int n)
{
    int rc = fuse_reply_iov(req, iov, n);
    count_answer();
    return rc;
}

static int r_data(fuse_req_t req, struct fuse_bufvec *bv,
                  enum fuse_buf_copy_flags flags)
{
    int rc = fuse_reply_data(req, bv, flags);
    count_answer();
    return rc;
}

static int r_xattr(fuse_req_t req, size_t n)
{
    int rc = fuse_reply_xattr(req, n);
    count_answer();
    return rc;
}

static int r_lseek(fuse_req_t req, off_t off)
{
    int rc = fuse_reply_lseek(req, off);
    count_answer();
    return rc;
}

static bool eio_covers(off_t off, size_t len)
{
    off_t at = memfs.o.eio_at;
    return at >= 0 && off <= at && (uint64_t)(at - off) < (uint64_t)len;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static uid_t caller_uid(fuse_req_t req)
{
    return fuse_req_ctx(req)->uid;
}

/* Permission check against @ip's current attributes (takes ip->lock). */
static int may(fuse_req_t req, struct inode *ip, int mask)
{
    pthread_rwlock_rdlock(&ip->lock);
    mode_t mode = ip->mode;
    uid_t uid = ip->uid;
    gid_t gid = ip->gid;
    pthread_rwlock_unlock(&ip->lock);
    return perm_check(req, mode, uid, gid, mask);
}

/* Sticky-directory rule for removing/renaming @victim out of @dir. */
static int sticky_ok(fuse_req_t req, struct inode *dir, struct inode *victim)
{
    uid_t uid = caller_uid(req);
    if (uid == 0)
        return 0;
    pthread_rwlock_rdlock(&dir->lock);
    bool sticky = (dir->mode & S_ISVTX) != 0;
    uid_t downer = dir->uid;
    pthread_rwlock_unlock(&dir->lock);
    if (!sticky || downer == uid)
        return 0;
    pthread_rwlock_rdlock(&victim->lock);
    uid_t vowner = victim->uid;
    pthread_rwlock_unlock(&victim->lock);
    return vowner == uid ? 0 : -EPERM;
}

static int check_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return -ENOENT;
    if (len > MEMFS_NAME_MAX)
        return -ENAMETOOLONG;
    if (memchr(name, '/', len))
        return -EINVAL;
    return 0;
}

static bool is_dot(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* Fill an entry; the caller holds ip->lock shared. */
static void fill_entry(struct inode *ip, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = ip->ino;
    e->generation = ip->generation;
    inode_stat(ip, &e->attr);
    e->attr_timeout = memfs.o.attr_timeout;
    e->entry_timeout = memfs.o.entry_timeout;
}

/* Reply with an entry for @ip, which already carries the nlookup this
 * reply hands out; take it back if the reply cannot be sent. */
static void reply_entry_for(fuse_req_t req, struct inode *ip)
{
    struct fuse_entry_param e;
    pthread_rwlock_rdlock(&ip->lock);
    fill_entry(ip, &e);
    pthread_rwlock_unlock(&ip->lock);
    if (r_entry(req, &e) != 0)
        inode_forget_ptr(ip, 1);
}

/* A directory's mtime/ctime/size after its entries changed.  ns_lock is
 * held exclusively by the caller. */
static void dir_touch(struct inode *dir, const struct timespec *now)
{
    pthread_rwlock_wrlock(&dir->lock);
    dir->mtime = *now;
    dir->ctime = *now;
    dir->size = (off_t)(20 * (dir->dir.nlive + 2));
    pthread_rwlock_unlock(&dir->lock);
}

static void ctime_touch(struct inode *ip, const struct timespec *now)
{
    pthread_rwlock_wrlock(&ip->lock);
    ip->ctime = *now;
    pthread_rwlock_unlock(&ip->lock);
}

static uint32_t nlink_of(struct inode *ip)
{
    return atomic_load_explicit(&ip->nlink, memory_order_relaxed);
}

/* Clear set-user-ID, set-group-ID (when group-executable) and file
 * capabilities after an unprivileged caller modified the file
 * (FUSE_CAP_HANDLE_KILLPRIV makes that the server's job).  ip->lock is
 * held exclusively. */
static void kill_priv(fuse_req_t req, struct inode *ip)
{
    if (!atomic_load(&memfs.killpriv) || caller_uid(req) == 0 || ip->type != S_IFREG)
        return;
    if (ip->mode & S_ISUID)
        ip->mode &= ~(mode_t)S_ISUID;
    if ((ip->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        ip->mode &= ~(mode_t)S_ISGID;
    xattr_remove(ip, "security.capability");
}

/* The inode of an open file handle, checked against @ino and the access
 * @need (R_OK, W_OK or 0).  On failure, answers EBADF and returns NULL. */
static struct inode *file_of(fuse_req_t req, fuse_ino_t ino,
                             const struct fuse_file_info *fi, int need)
{
    int flags = 0;
    struct inode *ip = fi ? handle_get(fi->fh, ino, false, &flags) : NULL;
    if (ip) {
        int acc = flags & O_ACCMODE;
        if (((need & R_OK) && acc == O_WRONLY) ||
            ((need & W_OK) && acc == O_RDONLY)) {
            inode_put(ip);
            ip = NULL;
        }
    }
    if (!ip)
        r_err(req, EBADF);
    return ip;
}

/* The inode @ino, or NULL after answering ESTALE. */
static struct inode *inode_of(fuse_req_t req, fuse_ino_t ino)
{
    struct inode *ip = inode_get(ino);
    if (!ip)
        r_err(req, ESTALE);
    return ip;
}

/* ------------------------------------------------------------------ */
/* INIT / DESTROY                                                       */
/* ------------------------------------------------------------------ */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    const struct memfs_opts *o = &memfs.o;
    /* libfuse has already capped conn->max_write to its buffer. */
    if (o->max_write && o->max_write < conn->max_write)
        conn->max_write = o->max_write;
    if (o->atomic_trunc)
        conn->want |= conn->capable & FUSE_CAP_ATOMIC_O_TRUNC;
    else
        conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
    if (o->writeback) {
        if (conn->capable & FUSE_CAP_WRITEBACK_CACHE)
            conn->want |= FUSE_CAP_WRITEBACK_CACHE;
        else
            memfs_warn("writeback: the client does not offer FUSE_WRITEBACK_CACHE");
    }
    if (o->no_readdirplus)
        conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
    if (o->splice_read)
        conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    conn->want |= conn->capable & FUSE_CAP_ASYNC_READ;
    /* Let a client keep more asynchronous requests (readahead, writeback)
     * in flight than the kernel's default of 12. */
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    atomic_store(&memfs.killpriv, (conn->want & FUSE_CAP_HANDLE_KILLPRIV) != 0);
    memfs_trace("INIT proto=%u.%u capable=0x%x want=0x%x max_write=%u max_background=%u",
          conn->proto_major, conn->proto_minor, conn->capable, conn->want,
          conn->max_write, conn->max_background);
    atomic_store(&memfs.answered, 1);
    atomic_store(&memfs.initialized, true);
}

static void op_destroy(void *userdata)
{
    (void)userdata;
    memfs_trace("DESTROY");
}

/* ------------------------------------------------------------------ */
/* Names                                                                */
/* ------------------------------------------------------------------ */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    trace(req, "LOOKUP parent=%" PRIu64 " name=%s", (uint64_t)parent, name);
    if (!op_begin(req, OP_LOOKUP, parent))
        return;
    int err = check_name(name);
    if (err) {
        r_err(req, err);
        return;
    }
    struct inode *dir = inode_of(req, parent);
    if (!dir)
        return;
    struct inode *child = NULL;
    pthread_rwlock_rdlock(&memfs.ns_lock);
    if (dir->type != S_IFDIR) {
        err = -ENOTDIR;
    } else if ((err = may(req, dir, X_OK)) == 0) {
        if (strcmp(name, ".") == 0) {
            child = dir;
            inode_hold(child);
        } else if (strcmp(name, "..") == 0) {
            child = inode_get(dir->parent);     /* takes the ref */
        } else {
            struct dirent_m *de = dir_find(dir, name);
            if (de) {
                child = de->child;
                inode_hold(child);
            }
        }
        if (child)
            inode_lookup_inc(child);
    }
    pthread_rwlock_unlock(&memfs.ns_lock);
    inode_put(dir);
    if (err) {
        r_err(req, err);
        return;
    }
    if (!child) {
        if (memfs.o.negative_timeout > 0) {
            struct fuse_entry_param e;
            memset(&e, 0, sizeof(e));
            e.entry_timeout = memfs.o.negative_timeout;
            r_entry(req, &e);
        } else {
            r_err(req, ENOENT);
        }
        return;
    }
    reply_entry_for(req, child);
    inode_put(child);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    trace(req, "FORGET ino=%" PRIu64 " nlookup=%" PRIu64, (uint64_t)ino, nlookup);
    op_begin(req, OP_FORGET, 0);
    inode_forget(ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    trace(req, "BATCH_FORGET count=%zu", count);
    op_begin(req, OP_FORGET, 0);
    for (size_t i = 0; i < count; i++) {
        trace(req, "FORGET ino=%" PRIu64 " nlookup=%" PRIu64,
              (uint64_t)forgets[i].ino, forgets[i].nlookup);
        inode_forget(forgets[i].ino, forgets[i].nlookup);
    }
    fuse_reply_none(req);
}

/* Create a node named @name in @parent: a regular file, fifo, socket or
 * device (mknod), a directory, or a symlink to @target.  On success *out
 * holds the new inode with one ref and one nlookup.  If @existing is not
 * NULL and the name exists, *existing receives that inode (ref + nlookup)
 * and -EEXIST is returned (create without O_EXCL opens it). */
static int make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev, const char *target,
                     struct inode **out, struct inode **existing)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    *out = NULL;
    int err = check_name(name);
    if (err)
        return err;
    if (is_dot(name))
        return -EEXIST;
    struct inode *dir = inode_get(parent);
    if (!dir)
        return -ESTALE;
    pthread_rwlock_wrlock(&memfs.ns_lock);
    if (dir->type != S_IFDIR) {
        err = -ENOTDIR;
        goto out;
    }
    if (nlink_of(dir) == 0) {
        err = -ENOENT;
        goto out;
    }
    struct dirent_m *de = dir_find(dir, name);
    if (de) {
        if (existing) {
            /* An existing name is no permission matter of the directory. */
            if ((err = may(req, dir, X_OK)) != 0)
                goto out;
            *existing = de->child;
            inode_hold(de->child);
            inode_lookup_inc(de->child);
        }
        err = -EEXIST;
        goto out;
    }
    if ((err = may(req, dir, W_OK | X_OK)) != 0)
        goto out;
    if (S_ISDIR(mode) && nlink_of(dir) >= MEMFS_LINK_MAX) {
        err = -EMLINK;
        goto out;
    }
    pthread_rwlock_rdlock(&dir->lock);
    bool setgid_dir = (dir->mode & S_ISGID) != 0;
    gid_t dgid = dir->gid;
    pthread_rwlock_unlock(&dir->lock);
    gid_t gid = setgid_dir ? dgid : ctx->gid;
    if (setgid_dir && S_ISDIR(mode))
        mode |= S_ISGID;
    else if (!S_ISDIR(mode) && (mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
             ctx->uid != 0 && !caller_in_group(req, gid))
        mode &= ~(mode_t)S_ISGID;
    struct inode *ip = inode_new(mode, ctx->uid, gid, rdev);
    if (!ip) {
        err = -ENOSPC;
        goto out;
    }
    /* The number is in the table already: initialize under the lock. */
    pthread_rwlock_wrlock(&ip->lock);
    struct timespec now = ip->mtime;
    if (target) {
        ip->target = strdup(target);
        ip->size = (off_t)strlen(target);
    }
    if (S_ISDIR(mode))
        ip->size = 40;
    pthread_rwlock_unlock(&ip->lock);
    if (target && !ip->target) {
        inode_put(ip);
        err = -ENOSPC;
        goto out;
    }
    if (S_ISDIR(mode))
        ip->parent = dir->ino;      /* ns_lock */
    if ((err = dir_add(dir, name, ip)) != 0) {
        inode_put(ip);
        goto out;
    }
    inode_nlink_set(ip, S_ISDIR(mode) ? 2 : 1);
    if (S_ISDIR(mode))
        inode_nlink_set(dir, nlink_of(dir) + 1);
    inode_lookup_inc(ip);
    dir_touch(dir, &now);
    *out = ip;
out:
    pthread_rwlock_unlock(&memfs.ns_lock);
    inode_put(dir);
    return err;
}

static void reply_made(fuse_req_t req, int err, struct inode *ip)
{
    if (err) {
        r_err(req, err);
        return;
    }
    reply_entry_for(req, ip);
    inode_put(ip);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
    trace(req, "MKNOD parent=%" PRIu64 " name=%s mode=0%o rdev=0x%llx",
          (uint64_t)parent, name, (unsigned)mode, (unsigned long long)rdev);
    if (!op_begin(req, OP_MKNOD, parent))
        return;
    if ((mode & S_IFMT) == 0)
        mode |= S_IFREG;
    switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
        rdev = 0;
        break;
    case S_IFCHR:
    case S_IFBLK:
        break;
    case S_IFDIR:
        r_err(req, EPERM);
        return;
    default:
        r_err(req, EINVAL);
        return;
    }
    struct inode *ip;
    int err = make_node(req, parent, name, mode, rdev, NULL, &ip, NULL);
    reply_made(req, err, ip);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
    trace(req, "MKDIR parent=%" PRIu64 " name=%s mode=0%o", (uint64_t)parent, name,
          (unsigned)mode);
    if (!op_begin(req, OP_MKDIR, parent))
        return;
    struct inode *ip;
    int err = make_node(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, &ip, NULL);
    reply_made(req, err, ip);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
    trace(req, "SYMLINK parent=%" PRIu64 " name=%s target=%s", (uint64_t)parent, name, link);
    if (!op_begin(req, OP_SYMLINK, parent))
        return;
    size_t len = strlen(link);
    if (len == 0) {
        r_err(req, ENOENT);
        return;
    }
    if (len > MEMFS_SYMLINK_MAX) {
        r_err(req, ENAMETOOLONG);
        return;
    }
    struct inode *ip;
    int err = make_node(req, parent, name, S_IFLNK | 0777, 0, link, &ip, NULL);
    reply_made(req, err, ip);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    trace(req, "UNLINK parent=%" PRIu64 " name=%s", (uint64_t)parent, name);
    if (!op_begin(req, OP_UNLINK, parent))
        return;
    int err = check_name(name);
    if (!err && is_dot(name))
        err = -EISDIR;
    if (err) {
        r_err(req, err);
        return;
    }
    struct inode *dir = inode_of(req, parent);
    if (!dir)
        return;
    struct inode *child = NULL;
    pthread_rwlock_wrlock(&memfs.ns_lock);
    struct dirent_m *de = NULL;
    if (dir->type != S_IFDIR)
        err = -ENOTDIR;
    else if ((err = may(req, dir, W_OK | X_OK)) == 0 && !(de = dir_find(dir, name)))
        err = -ENOENT;
    if (!err && de->child->type == S_IFDIR)
        err = -EISDIR;
    if (!err)
        err = sticky_ok(req, dir, de->child);
    if (!err) {
        struct timespec now;
        fs_now(&now);
        child = de->child;
        inode_hold(child);
        dir_remove(de);
        inode_nlink_set(child, nlink_of(child) - 1);
        ctime_touch(child, &now);
        dir_touch(dir, &now);
    }
    pthread_rwlock_unlock(&memfs.ns_lock);
    inode_put(child);
    inode_put(dir);
    r_err(req, err);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    trace(req, "RMDIR parent=%" PRIu64 " name=%s", (uint64_t)parent, name);
    if (!op_begin(req, OP_RMDIR, parent))
        return;
    int err = check_name(name);
    if (!err && strcmp(name, ".") == 0)
        err = -EINVAL;
    if (!err && strcmp(name, "..") == 0)
        err = -ENOTEMPTY;
    if (err) {
        r_err(req, err);
        return;
    }
    struct inode *dir = inode_of(req, parent);
    if (!dir)
        return;
    struct inode *child = NULL;
    struct dirent_m *de = NULL;
    pthread_rwlock_wrlock(&memfs.ns_lock);
    if (dir->type != S_IFDIR)
        err = -ENOTDIR;
    else if ((err = may(req, dir, W_OK | X_OK)) == 0 && !(de = dir_find(dir, name)))
        err = -ENOENT;
    if (!err && de->child->type != S_IFDIR)
        err = -ENOTDIR;
    if (!err && de->child->dir.nlive != 0)
        err = -ENOTEMPTY;
    if (!err)
        err = sticky_ok(req, dir, de->child);
    if (!err) {
        struct timespec now;
        fs_now(&now);
        child = de->child;
        inode_hold(child);
        dir_remove(de);
        inode_nlink_set(child, 0);
        inode_nlink_set(dir, nlink_of(dir) - 1);
        ctime_touch(child, &now);
        dir_touch(dir, &now);
    }
    pthread_rwlock_unlock(&memfs.ns_lock);
    inode_put(child);
    inode_put(dir);
    r_err(req, err);
}

/* Is @dir @anc or below it?  ns_lock held. */
static bool is_under(struct inode *dir, struct inode *anc)
{
    uint64_t ino = dir->ino;
    for (int depth = 0; depth < 1 << 20; depth++) {
        if (ino == anc->ino)
            return true;
        if (ino == MEMFS_ROOT_INO)
            return false;
        struct inode *ip = inode_get(ino);
        if (!ip)
            return false;
        uint64_t up = ip->parent;
        inode_put(ip);
        if (up == ino)
            return false;
        ino = up;
    }
    return false;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
    trace(req, "RENAME parent=%" PRIu64 " name=%s newparent=%" PRIu64 " newname=%s flags=0x%x",
          (uint64_t)parent, name, (uint64_t)newparent, newname, flags);
    if (!op_begin(req, OP_RENAME, parent))
        return;
    int err = 0;
    if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
        ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)))
        err = -EINVAL;
    if (!err)
        err = check_name(name);
    if (!err)
        err = check_name(newname);
    if (!err && (is_dot(name) || is_dot(newname)))
        err = -EBUSY;
    if (err) {
        r_err(req, err);
        return;
    }
    struct inode *odir = inode_of(req, parent);
    if (!odir)
        return;
    struct inode *ndir = inode_get(newparent);
    if (!ndir) {
        inode_put(odir);
        r_err(req, ESTALE);
        return;
    }
    struct inode *src = NULL, *dst = NULL;
    pthread_rwlock_wrlock(&memfs.ns_lock);
    struct dirent_m *od = NULL, *nd = NULL;
    if (odir->type != S_IFDIR || ndir->type != S_IFDIR) {
        err = -ENOTDIR;
        goto out;
    }
    if (nlink_of(ndir) == 0) {
        err = -ENOENT;
        goto out;
    }
    if ((err = may(req, odir, W_OK | X_OK)) || (err = may(req, ndir, W_OK | X_OK)))
        goto out;
    od = dir_find(odir, name);
    if (!od) {
        err = -ENOENT;
        goto out;
    }
    nd = dir_find(ndir, newname);
    src = od->child;
    inode_hold(src);
    if (nd) {
        dst = nd->child;
        inode_hold(dst);
    }
    if ((flags & RENAME_EXCHANGE) && !nd) {
        err = -ENOENT;
        goto out;
    }
    if ((flags & RENAME_NOREPLACE) && nd) {
        err = -EEXIST;
        goto out;
    }
    if ((err = sticky_ok(req, odir, src)))
        goto out;
    if (dst && (err = sticky_ok(req, ndir, dst)))
        goto out;
    if (dst == src)
        goto out;           /* two links of one inode: nothing to do */
    bool sdir = src->type == S_IFDIR;
    bool ddir = dst && dst->type == S_IFDIR;
    if (sdir && odir != ndir) {
        if ((err = may(req, src, W_OK)))
            goto out;
        if (is_under(ndir, src)) {
            err = -EINVAL;
            goto out;
        }
    }
    struct timespec now;
    fs_now(&now);
    if (flags & RENAME_EXCHANGE) {
        if (ddir && odir != ndir) {
            if ((err = may(req, dst, W_OK)))
                goto out;
            if (is_under(odir, dst)) {
                err = -EINVAL;
                goto out;
            }
        }
        od->child = dst;
        nd->child = src;
        if (sdir)
            src->parent = ndir->ino;
        if (ddir)
            dst->parent = odir->ino;
        if (sdir != ddir && odir != ndir) {
            struct inode *from = sdir ? odir : ndir, *to = sdir ? ndir : odir;
            inode_nlink_set(from, nlink_of(from) - 1);
            inode_nlink_set(to, nlink_of(to) + 1);
        }
        ctime_touch(src, &now);
        ctime_touch(dst, &now);
    } else {
        if (dst) {
            if (sdir && !ddir) {
                err = -ENOTDIR;
                goto out;
            }
            if (!sdir && ddir) {
                err = -EISDIR;
                goto out;
            }
            if (ddir && dst->dir.nlive != 0) {
                err = -ENOTEMPTY;
                goto out;
            }
        } else if (sdir && odir != ndir && nlink_of(ndir) >= MEMFS_LINK_MAX) {
            err = -EMLINK;
            goto out;
        }
        /* Add the new name first: the only step that can fail. */
        if (nd) {
            dir_remove(nd);
            nd = NULL;
        }
        if ((err = dir_add(ndir, newname, src))) {
            if (dst)        /* put the victim back where it was */
                dir_add(ndir, newname, dst);
            goto out;
        }
        dir_remove(od);
        if (dst) {
            if (ddir) {
                inode_nlink_set(dst, 0);
                inode_nlink_set(ndir, nlink_of(ndir) - 1);
            } else {
                inode_nlink_set(dst, nlink_of(dst) - 1);
            }
            ctime_touch(dst, &now);
        }
        if (sdir && odir != ndir) {
            src->parent = ndir->ino;
            inode_nlink_set(odir, nlink_of(odir) - 1);
            inode_nlink_set(ndir, nlink_of(ndir) + 1);
        }
        ctime_touch(src, &now);
    }
    dir_touch(odir, &now);
    if (ndir != odir)
        dir_touch(ndir, &now);
out:
    pthread_rwlock_unlock(&memfs.ns_lock);
    inode_put(src);
    inode_put(dst);
    inode_put(odir);
    inode_put(ndir);
    r_err(req, err);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
    trace(req, "LINK ino=%" PRIu64 " newparent=%" PRIu64 " newname=%s",
          (uint64_t)ino, (uint64_t)newparent, newname);
    if (!op_begin(req, OP_LINK, ino))
        return;
    int err = check_name(newname);
    if (!err && is_dot(newname))
        err = -EEXIST;
    if (err) {
        r_err(req, err);
        return;
    }
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    struct inode *dir = inode_get(newparent);
    if (!dir) {
        inode_put(ip);
        r_err(req, ESTALE);
        return;
    }
    pthread_rwlock_wrlock(&memfs.ns_lock);
    if (ip->type == S_IFDIR)
        err = -EPERM;
    else if (dir->type != S_IFDIR)
        err = -ENOTDIR;
    else if (nlink_of(dir) == 0 || nlink_of(ip) == 0)
        err = -ENOENT;
    else if ((err = may(req, dir, W_OK | X_OK)) == 0) {
        if (dir_find(dir, newname))
            err = -EEXIST;
        else if (nlink_of(ip) >= MEMFS_LINK_MAX)
            err = -EMLINK;
        else if ((err = dir_add(dir, newname, ip)) == 0) {
            struct timespec now;
            fs_now(&now);
            inode_nlink_set(ip, nlink_of(ip) + 1);
            inode_lookup_inc(ip);
            ctime_touch(ip, &now);
            dir_touch(dir, &now);
        }
    }
    pthread_rwlock_unlock(&memfs.ns_lock);
    inode_put(dir);
    if (err)
        r_err(req, err);
    else
        reply_entry_for(req, ip);
    inode_put(ip);
}

/* ------------------------------------------------------------------ */
/* Attributes                                                           */
/* ------------------------------------------------------------------ */

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    trace(req, "GETATTR ino=%" PRIu64 "%s", (uint64_t)ino, fi ? " fh" : "");
    if (!op_begin(req, OP_GETATTR, ino))
        return;
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    if (fi) {
        struct inode *h = handle_get(fi->fh, ino, ip->type == S_IFDIR, NULL);
        if (!h) {
            inode_put(ip);
            r_err(req, EBADF);
            return;
        }
        inode_put(h);
    }
    struct stat st;
    pthread_rwlock_rdlock(&ip->lock);
    inode_stat(ip, &st);
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
    r_attr(req, &st);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int valid, struct fuse_file_info *fi)
{
    trace(req, "SETATTR ino=%" PRIu64 " valid=0x%x%s size=%lld mode=0%o",
          (uint64_t)ino, valid, fi ? " fh" : "",
          (valid & FUSE_SET_ATTR_SIZE) ? (long long)attr->st_size : -1LL,
          (valid & FUSE_SET_ATTR_MODE) ? (unsigned)attr->st_mode : 0u);
    if (!op_begin(req, OP_SETATTR, ino))
        return;
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    if (fi) {
        struct inode *h = handle_get(fi->fh, ino, ip->type == S_IFDIR, NULL);
        if (!h) {
            inode_put(ip);
            r_err(req, EBADF);
            return;
        }
        inode_put(h);
    }
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    int err = 0;
    pthread_rwlock_wrlock(&ip->lock);
    bool root = ctx->uid == 0;
    bool owner = root || ctx->uid == ip->uid;
    /* chmod is for the owner, except that anyone may drop set-user-ID /
     * set-group-ID: that is how a client without FUSE_HANDLE_KILLPRIV (the
     * Linux kernel even with it, v1) clears them after an unprivileged
     * write, a SETATTR sent with the writer's credentials. */
    if ((valid & FUSE_SET_ATTR_MODE) && !owner) {
        mode_t oldm = ip->mode & 07777, newm = attr->st_mode & 07777;
        if ((newm & ~oldm) || ((oldm ^ newm) & ~(mode_t)(S_ISUID | S_ISGID)))
            err = -EPERM;
    }
    if (!err && (valid & FUSE_SET_ATTR_UID) && !root &&
        !(ctx->uid == ip->uid && attr->st_uid == ip->uid))
        err = -EPERM;
    if (!err && (valid & FUSE_SET_ATTR_GID) && !root &&
        !(ctx->uid == ip->uid &&
          (attr->st_gid == ip->gid || caller_in_group(req, attr->st_gid))))
        err = -EPERM;
    if (!err && (valid & FUSE_SET_ATTR_SIZE)) {
        if (ip->type == S_IFDIR)
            err = -EISDIR;
        else if (ip->type != S_IFREG)
            err = -EINVAL;
        else if (attr->st_size < 0)
            err = -EINVAL;
        else if (attr->st_size > MEMFS_MAX_SIZE)
            err = -EFBIG;
        else if (!fi)
            err = perm_check(req, ip->mode, ip->uid, ip->gid, W_OK);
    }
    bool explicit_times =
        ((valid & FUSE_SET_ATTR_ATIME) && !(valid & FUSE_SET_ATTR_ATIME_NOW)) ||
        ((valid & FUSE_SET_ATTR_MTIME) && !(valid & FUSE_SET_ATTR_MTIME_NOW));
    bool now_times = (valid & (FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) != 0;
    if (!err && explicit_times && !owner)
        err = -EPERM;
    if (!err && !explicit_times && now_times && !owner)
        err = perm_check(req, ip->mode, ip->uid, ip->gid, W_OK);
    if (err) {
        pthread_rwlock_unlock(&ip->lock);
        inode_put(ip);
        r_err(req, err);
        return;
    }
    struct timespec now;
    fs_now(&now);
    bool changed = false;
    if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        if (valid & FUSE_SET_ATTR_UID)
            ip->uid = attr->st_uid;
        if (valid & FUSE_SET_ATTR_GID)
            ip->gid = attr->st_gid;
        /* chown clears set-user-ID and (group-executable) set-group-ID of
         * non-directories, as Linux does for everyone. */
        if (ip->type != S_IFDIR) {
            ip->mode &= ~(mode_t)S_ISUID;
            if (ip->mode & S_IXGRP)
                ip->mode &= ~(mode_t)S_ISGID;
        }
        changed = true;
    }
    if (valid & FUSE_SET_ATTR_MODE) {
        ip->mode = ip->type | (attr->st_mode & 07777);
        if (!root && !caller_in_group(req, ip->gid))
            ip->mode &= ~(mode_t)S_ISGID;
        changed = true;
    }
    if (valid & FUSE_SET_ATTR_SIZE) {
        if (attr->st_size < ip->size)
            store_truncate(&ip->data, attr->st_size);
        ip->size = attr->st_size;
        ip->mtime = now;
        kill_priv(req, ip);
        changed = true;
    }
    if (valid & FUSE_SET_ATTR_ATIME) {
        pthread_mutex_lock(&ip->amu);
        ip->atime = (valid & FUSE_SET_ATTR_ATIME_NOW) ? now : attr->st_atim;
        pthread_mutex_unlock(&ip->amu);
        changed = true;
    }
    if (valid & FUSE_SET_ATTR_MTIME) {
        ip->mtime = (valid & FUSE_SET_ATTR_MTIME_NOW) ? now : attr->st_mtim;
        changed = true;
    }
    if (valid & FUSE_SET_ATTR_CTIME)
        ip->ctime = attr->st_ctim;
    else if (changed)
        ip->ctime = now;
    struct stat st;
    inode_stat(ip, &st);
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
    r_attr(req, &st);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    trace(req, "READLINK ino=%" PRIu64, (uint64_t)ino);
    if (!op_begin(req, OP_READLINK, ino))
        return;
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    if (ip->type != S_IFLNK) {
        inode_put(ip);
        r_err(req, EINVAL);
        return;
    }
    pthread_rwlock_rdlock(&ip->lock);
    inode_touch_atime(ip);
    int rc = fuse_reply_readlink(req, ip->target);
    pthread_rwlock_unlock(&ip->lock);
    count_answer();
    (void)rc;
    inode_put(ip);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    trace(req, "ACCESS ino=%" PRIu64 " mask=0%o", (uint64_t)ino, (unsigned)mask);
    if (!op_begin(req, OP_ACCESS, ino))
        return;
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    int err = mask == F_OK ? 0 : may(req, ip, mask);
    inode_put(ip);
    r_err(req, err);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    trace(req, "STATFS ino=%" PRIu64, (uint64_t)ino);
    if (!op_begin(req, OP_STATFS, ino))
        return;
    struct statvfs sv;
    memset(&sv, 0, sizeof(sv));
    long pages = sysconf(_SC_PHYS_PAGES);
    long psize = sysconf(_SC_PAGESIZE);
    uint64_t total = (pages > 0 && psize > 0) ? (uint64_t)pages * (uint64_t)psize
                                              : (UINT64_C(1) << 34);
    uint64_t used = atomic_load_explicit(&memfs_chunks_total, memory_order_relaxed) *
                    MEMFS_CHUNK;
    sv.f_bsize = 4096;
    sv.f_frsize = 4096;
    sv.f_blocks = total / 4096;
    sv.f_bfree = used / 4096 < sv.f_blocks ? sv.f_blocks - used / 4096 : 0;
    sv.f_bavail = sv.f_bfree;
    sv.f_files = UINT64_C(1) << 32;
    sv.f_ffree = sv.f_files - inode_count();
    sv.f_favail = sv.f_ffree;
    sv.f_namemax = MEMFS_NAME_MAX;
    int rc = fuse_reply_statfs(req, &sv);
    count_answer();
    (void)rc;
}

/* ------------------------------------------------------------------ */
/* Files                                                                */
/* ------------------------------------------------------------------ */

static int open_mask(int flags)
{
    int acc = flags & O_ACCMODE;
    int mask = acc == O_RDONLY ? R_OK : acc == O_WRONLY ? W_OK : (R_OK | W_OK);
    if (flags & O_TRUNC)
        mask |= W_OK;
    return mask;
}

/* Truncate on open (FUSE_ATOMIC_O_TRUNC).  ip->lock not held. */
static void open_truncate(fuse_req_t req, struct inode *ip)
{
    struct timespec now;
    fs_now(&now);
    pthread_rwlock_wrlock(&ip->lock);
    store_truncate(&ip->data, 0);
    ip->size = 0;
    ip->mtime = now;
    ip->ctime = now;
    kill_priv(req, ip);
    pthread_rwlock_unlock(&ip->lock);
}

static void set_open_flags(struct fuse_file_info *fi)
{
    fi->direct_io = memfs.o.direct_io;
    fi->keep_cache = memfs.o.keep_cache;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    trace(req, "OPEN ino=%" PRIu64 " flags=0x%x", (uint64_t)ino, (unsigned)fi->flags);
    if (!op_begin(req, OP_OPEN, ino))
        return;
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    int err = 0;
    if (ip->type == S_IFDIR)
        err = -EISDIR;
    else if (ip->type == S_IFLNK)
        err = -ELOOP;
    else if (ip->type != S_IFREG)
        err = -ENXIO;
    else
        err = may(req, ip, open_mask(fi->flags));
    if (err) {
        inode_put(ip);
        r_err(req, err);
        return;
    }
    if ((fi->flags & O_TRUNC) && memfs.o.atomic_trunc)
        open_truncate(req, ip);
    fi->fh = handle_new(ip, fi->flags, false);
    if (!fi->fh) {
        inode_put(ip);
        r_err(req, ENOMEM);
        return;
    }
    set_open_flags(fi);
    if (r_open(req, fi) != 0)
        handle_release(fi->fh, ino, false);
    inode_put(ip);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
    trace(req, "CREATE parent=%" PRIu64 " name=%s mode=0%o flags=0x%x",
          (uint64_t)parent, name, (unsigned)mode, (unsigned)fi->flags);
    if (!op_begin(req, OP_CREATE, parent))
        return;
    if ((mode & S_IFMT) == 0)
        mode |= S_IFREG;
    if (!S_ISREG(mode)) {
        r_err(req, EINVAL);
        return;
    }
    struct inode *ip = NULL, *old = NULL;
    int err = make_node(req, parent, name, mode, 0, NULL, &ip,
                        (fi->flags & O_EXCL) ? NULL : &old);
    if (err == -EEXIST && old) {
        /* The name appeared since the client's lookup: open it. */
        if (old->type == S_IFDIR)
            err = -EISDIR;
        else if (old->type != S_IFREG)
            err = -ENXIO;
        else
            err = may(req, old, open_mask(fi->flags));
        if (err) {
            inode_forget_ptr(old, 1);
            inode_put(old);
            r_err(req, err);
            return;
        }
        if ((fi->flags & O_TRUNC) && memfs.o.atomic_trunc)
            open_truncate(req, old);
        ip = old;
    } else if (err) {
        r_err(req, err);
        return;
    }
    fi->fh = handle_new(ip, fi->flags, false);
    if (!fi->fh) {
        inode_forget_ptr(ip, 1);
        inode_put(ip);
        r_err(req, ENOMEM);
        return;
    }
    set_open_flags(fi);
    struct fuse_entry_param e;
    pthread_rwlock_rdlock(&ip->lock);
    fill_entry(ip, &e);
    pthread_rwlock_unlock(&ip->lock);
    if (r_create(req, &e, fi) != 0) {
        handle_release(fi->fh, ip->ino, false);
        inode_forget_ptr(ip, 1);
    }
    inode_put(ip);
}

/* One memfd per thread for splice_read replies. */
static pthread_key_t memfd_key;
static pthread_once_t memfd_once = PTHREAD_ONCE_INIT;

static void memfd_close(void *p)
{
    close((int)(intptr_t)p - 1);
}

static void memfd_key_init(void)
{
    pthread_key_create(&memfd_key, memfd_close);
}

static int thread_memfd(void)
{
    pthread_once(&memfd_once, memfd_key_init);
    void *p = pthread_getspecific(memfd_key);
    if (p)
        return (int)(intptr_t)p - 1;
    int fd = memfd_create("ufuse-memfs-splice", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    pthread_setspecific(memfd_key, (void *)(intptr_t)(fd + 1));
    return fd;
}

/* Stage @iov into this thread's memfd; @return the fd or -1. */
static int stage_memfd(const struct iovec *iov, int cnt)
{
    int fd = thread_memfd();
    if (fd < 0)
        return -1;
    off_t pos = 0;
    for (int i = 0; i < cnt; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left > 0) {
            ssize_t w = pwrite(fd, p, left, pos);
            if (w <= 0) {
                if (w < 0 && errno == EINTR)
                    continue;
                return -1;
            }
            p += w;
            left -= (size_t)w;
            pos += w;
        }
    }
    return fd;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    trace(req, "READ ino=%" PRIu64 " off=%lld size=%zu", (uint64_t)ino, (long long)off, size);
    if (!op_begin(req, OP_READ, ino))
        return;
    struct inode *ip = file_of(req, ino, fi, R_OK);
    if (!ip)
        return;
    if (off < 0) {
        inode_put(ip);
        r_err(req, EINVAL);
        return;
    }
    if (eio_covers(off, size)) {
        inode_put(ip);
        r_err(req, EIO);
        return;
    }
    pthread_rwlock_rdlock(&ip->lock);
    size_t n = off >= ip->size ? 0 : (size_t)(ip->size - off) < size ? (size_t)(ip->size - off) : size;
    if (memfs.o.short_read && n > memfs.o.short_read)
        n = memfs.o.short_read;
    if (n == 0) {
        pthread_rwlock_unlock(&ip->lock);
        inode_put(ip);
        r_buf(req, NULL, 0);
        return;
    }
    inode_touch_atime(ip);
    int max = (int)(n / MEMFS_CHUNK) + 2;
    struct iovec small[20];
    struct iovec *iov = max <= 20 ? small : malloc((size_t)max * sizeof(*iov));
    if (!iov) {
        pthread_rwlock_unlock(&ip->lock);
        inode_put(ip);
        r_err(req, ENOMEM);
        return;
    }
    int cnt = store_read_iov(&ip->data, off, n, iov, max);
    int fd = memfs.o.splice_read ? stage_memfd(iov, cnt) : -1;
    if (fd >= 0) {
        /* libfuse splices the memfd's pages into its pipe and the pipe
         * into the channel; our lock is not needed past the copy. */
        pthread_rwlock_unlock(&ip->lock);
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT(n);
        bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        bv.buf[0].fd = fd;
        bv.buf[0].pos = 0;
        r_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
        /* Drop the pages: a later read must not rewrite pages a pipe or
         * socket may still reference. */
        if (ftruncate(fd, 0) != 0)
            memfs_warn("ftruncate of the splice memfd: %s", strerror(errno));
    } else {
        r_iov(req, iov, cnt);
        pthread_rwlock_unlock(&ip->lock);
    }
    if (iov != small)
        free(iov);
    inode_put(ip);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    trace(req, "WRITE ino=%" PRIu64 " off=%lld size=%zu cache=%d", (uint64_t)ino, (long long)off,
          size, fi->writepage ? 1 : 0);
    if (!op_begin(req, OP_WRITE, ino))
        return;
    struct inode *ip = file_of(req, ino, fi, W_OK);
    if (!ip)
        return;
    int err = 0;
    size_t n = size;
    if (memfs.o.short_write && n > memfs.o.short_write)
        n = memfs.o.short_write;
    if (off < 0)
        err = -EINVAL;
    else if (eio_covers(off, size))
        err = -EIO;
    else if (off >= MEMFS_MAX_SIZE || (off_t)n > MEMFS_MAX_SIZE - off)
        err = -EFBIG;
    if (err) {
        inode_put(ip);
        r_err(req, err);
        return;
    }
    pthread_rwlock_wrlock(&ip->lock);
    err = store_write(&ip->data, off, buf, n);
    if (err) {
        /* Keep bytes past EOF zero (store.c invariant 4). */
        if (off + (off_t)n > ip->size)
            store_zero(&ip->data, off > ip->size ? off : ip->size,
                       off + (off_t)n - (off > ip->size ? off : ip->size), true);
    } else if (n > 0) {
        if (off + (off_t)n > ip->size)
            ip->size = off + (off_t)n;
        fs_now(&ip->mtime);
        ip->ctime = ip->mtime;
        kill_priv(req, ip);
    }
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
    if (err)
        r_err(req, err);
    else
        r_write(req, n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    trace(req, "FLUSH ino=%" PRIu64, (uint64_t)ino);
    if (!op_begin(req, OP_FLUSH, ino))
        return;
    struct inode *ip = file_of(req, ino, fi, 0);
    if (!ip)
        return;
    inode_put(ip);
    r_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    trace(req, "RELEASE ino=%" PRIu64, (uint64_t)ino);
    if (!op_begin(req, OP_RELEASE, ino))
        return;
    r_err(req, handle_release(fi->fh, ino, false));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
    trace(req, "FSYNC ino=%" PRIu64 " datasync=%d", (uint64_t)ino, datasync);
    if (!op_begin(req, OP_FSYNC, ino))
        return;
    struct inode *ip = file_of(req, ino, fi, 0);
    if (!ip)
        return;
    inode_put(ip);
    r_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
                         off_t len, struct fuse_file_info *fi)
{
    trace(req, "FALLOCATE ino=%" PRIu64 " mode=0x%x off=%lld len=%lld", (uint64_t)ino,
          (unsigned)mode, (long long)off, (long long)len);
    if (!op_begin(req, OP_FALLOCATE, ino))
        return;
    struct inode *ip = file_of(req, ino, fi, W_OK);
    if (!ip)
        return;
    int err = 0;
    bool keep = mode & FALLOC_FL_KEEP_SIZE;
    bool punch = mode & FALLOC_FL_PUNCH_HOLE;
    bool zero = mode & FALLOC_FL_ZERO_RANGE;
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
        err = -EOPNOTSUPP;
    else if (punch && zero)
        err = -EINVAL;
    else if (punch && !keep)
        err = -EOPNOTSUPP;
    else if (off < 0 || len <= 0)
        err = -EINVAL;
    else if (off > MEMFS_MAX_SIZE || len > MEMFS_MAX_SIZE - off)
        err = -EFBIG;
    if (err) {
        inode_put(ip);
        r_err(req, err);
        return;
    }
    off_t end = off + len;
    pthread_rwlock_wrlock(&ip->lock);
    bool changed = false;
    if (punch) {
        err = store_zero(&ip->data, off, len, true);
        changed = true;
    } else {
        err = zero ? store_zero(&ip->data, off, len, false) : store_alloc(&ip->data, off, len);
        changed = zero;
        if (!err && !keep && end > ip->size) {
            ip->size = end;
            changed = true;
        }
    }
    if (!err && changed) {
        fs_now(&ip->mtime);
        ip->ctime = ip->mtime;
        kill_priv(req, ip);
    }
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
    r_err(req, err);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
    trace(req, "LSEEK ino=%" PRIu64 " off=%lld whence=%d", (uint64_t)ino, (long long)off, whence);
    if (!op_begin(req, OP_LSEEK, ino))
        return;
    struct inode *ip = file_of(req, ino, fi, 0);
    if (!ip)
        return;
    int err = 0;
    off_t res = 0;
    pthread_rwlock_rdlock(&ip->lock);
    off_t size = ip->size;
    switch (whence) {
    case SEEK_SET:
        res = off;
        if (off < 0)
            err = -EINVAL;
        break;
    case SEEK_END:
        res = size + off;
        if (res < 0)
            err = -EINVAL;
        break;
    case SEEK_DATA:
        if (off < 0 || off >= size) {
            err = -ENXIO;
            break;
        }
        res = store_next_data(&ip->data, off);
        if (res < 0 || res >= size)
            err = -ENXIO;
        break;
    case SEEK_HOLE:
        if (off < 0 || off >= size) {
            err = -ENXIO;
            break;
        }
        res = store_next_hole(&ip->data, off);
        if (res > size)
            res = size;
        break;
    default:    /* SEEK_CUR: the position is the client's business */
        err = -EINVAL;
        break;
    }
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
    if (err)
        r_err(req, err);
    else
        r_lseek(req, res);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out,
                               off_t off_out, struct fuse_file_info *fi_out,
                               size_t len, int flags)
{
    trace(req, "COPY_FILE_RANGE in=%" PRIu64 " off_in=%lld out=%" PRIu64
          " off_out=%lld len=%zu flags=0x%x", (uint64_t)ino_in, (long long)off_in,
          (uint64_t)ino_out, (long long)off_out, len, (unsigned)flags);
    if (!op_begin(req, OP_COPY_FILE_RANGE, ino_in))
        return;
    if (flags != 0) {
        r_err(req, EINVAL);
        return;
    }
    struct inode *in = file_of(req, ino_in, fi_in, R_OK);
    if (!in)
        return;
    struct inode *out = file_of(req, ino_out, fi_out, W_OK);
    if (!out) {
        inode_put(in);
        return;
    }
    int err = 0;
    if (off_in < 0 || off_out < 0)
        err = -EINVAL;
    if (len > COPY_MAX)
        len = COPY_MAX;
    bool same = in == out;
    if (!err) {
        /* Two inode locks: in inode-number order (memfs.h). */
        if (same) {
            pthread_rwlock_wrlock(&out->lock);
        } else if (in->ino < out->ino) {
            pthread_rwlock_rdlock(&in->lock);
            pthread_rwlock_wrlock(&out->lock);
        } else {
            pthread_rwlock_wrlock(&out->lock);
            pthread_rwlock_rdlock(&in->lock);
        }
    }
    size_t n = 0;
    if (!err) {
        n = off_in >= in->size ? 0 : (size_t)(in->size - off_in) < len ? (size_t)(in->size - off_in) : len;
        if (same && n > 0 && off_in < off_out + (off_t)n && off_out < off_in + (off_t)n)
            err = -EINVAL;
        else if (off_out >= MEMFS_MAX_SIZE || (off_t)n > MEMFS_MAX_SIZE - off_out)
            err = -EFBIG;
        size_t done = 0;
        while (!err && done < n) {
            off_t src = off_in + (off_t)done;
            size_t inoff = (size_t)src & (MEMFS_CHUNK - 1);
            size_t piece = MEMFS_CHUNK - inoff;
            if (piece > n - done)
                piece = n - done;
            const char *c = store_get(&in->data, (uint64_t)src >> MEMFS_CHUNK_SHIFT);
            off_t dst = off_out + (off_t)done;
            if (c) {
                err = store_write(&out->data, dst, c + inoff, piece);
            } else {
                /* a hole stays a hole where whole chunks line up */
                err = store_zero(&out->data, dst, (off_t)piece, true);
            }
            if (!err)
                done += piece;
        }
        if (err == -ENOSPC && done > 0)
            err = 0;
        n = done;
        if (err && off_out + (off_t)n > out->size)
            store_zero(&out->data, out->size, off_out + (off_t)n - out->size, true);
        if (!err && n > 0) {
            if (off_out + (off_t)n > out->size)
                out->size = off_out + (off_t)n;
            fs_now(&out->mtime);
            out->ctime = out->mtime;
            kill_priv(req, out);
            inode_touch_atime(in);
        }
        if (!same)
            pthread_rwlock_unlock(&in->lock);
        pthread_rwlock_unlock(&out->lock);
    }
    inode_put(in);
    inode_put(out);
    if (err)
        r_err(req, err);
    else
        r_write(req, n);
}

/* ------------------------------------------------------------------ */
/* Directories                                                          */
/* ------------------------------------------------------------------ */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    trace(req, "OPENDIR ino=%" PRIu64 " flags=0x%x", (uint64_t)ino, (unsigned)fi->flags);
    if (!op_begin(req, OP_OPENDIR, ino))
        return;
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    int err = 0;
    if (ip->type != S_IFDIR)
        err = -ENOTDIR;
    else if ((fi->flags & O_ACCMODE) != O_RDONLY)
        err = -EISDIR;
    else
        err = may(req, ip, R_OK);
    if (!err) {
        fi->fh = handle_new(ip, fi->flags, true);
        if (!fi->fh)
            err = -ENOMEM;
    }
    if (err)
        r_err(req, err);
    else if (r_open(req, fi) != 0)
        handle_release(fi->fh, ino, true);
    inode_put(ip);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
    trace(req, "%s ino=%" PRIu64 " off=%lld size=%zu", plus ? "READDIRPLUS" : "READDIR",
          (uint64_t)ino, (long long)off, size);
    if (!op_begin(req, plus ? OP_READDIRPLUS : OP_READDIR, ino))
        return;
    if (plus && memfs.o.no_readdirplus) {
        r_err(req, ENOSYS);
        return;
    }
    int flags;
    struct inode *dir = handle_get(fi->fh, ino, true, &flags);
    if (!dir) {
        r_err(req, EBADF);
        return;
    }
    if (size > READDIR_MAX)
        size = READDIR_MAX;
    char *buf = malloc(size ? size : 1);
    struct inode **given = NULL;    /* readdirplus entries that took an nlookup */
    size_t ngiven = 0, capgiven = 0;
    int err = buf ? 0 : -ENOMEM;
    size_t pos = 0;
    uint64_t cookie = (uint64_t)off;
    pthread_rwlock_rdlock(&memfs.ns_lock);
    if (!err && nlink_of(dir) == 0)
        err = -ENOENT;      /* removed: like Linux's IS_DEADDIR */
    for (uint64_t c = 1; !err && c <= 2; c++) {
        if (cookie >= c)
            continue;
        const char *name = c == 1 ? "." : "..";
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.attr.st_ino = c == 1 ? dir->ino : dir->parent;
        e.attr.st_mode = S_IFDIR;
        size_t room = size - pos;
        size_t len = plus ? fuse_add_direntry_plus(req, buf + pos, room, name, &e, (off_t)c)
                          : fuse_add_direntry(req, buf + pos, room, name, &e.attr, (off_t)c);
        if (len > room)
            goto full;
        pos += len;
    }
    for (size_t i = err ? dir->dir.nslots : dir_seek(dir, cookie < 2 ? 2 : cookie);
         i < dir->dir.nslots; i++) {
        struct dirent_m *de = dir->dir.slots[i].de;
        if (!de)
            continue;
        struct inode *child = de->child;
        size_t room = size - pos;
        size_t len;
        if (plus) {
            if (ngiven == capgiven) {
                size_t ncap = capgiven ? capgiven * 2 : 32;
                struct inode **ng = realloc(given, ncap * sizeof(*ng));
                if (!ng)
                    break;
                given = ng;
                capgiven = ncap;
            }
            struct fuse_entry_param e;
            pthread_rwlock_rdlock(&child->lock);
            fill_entry(child, &e);
            pthread_rwlock_unlock(&child->lock);
            len = fuse_add_direntry_plus(req, buf + pos, room, de->name, &e,
                                         (off_t)de->cookie);
            if (len > room)
                break;
            inode_lookup_inc(child);
            given[ngiven++] = child;
        } else {
            struct stat st;
            memset(&st, 0, sizeof(st));
            st.st_ino = child->ino;
            st.st_mode = child->type;
            len = fuse_add_direntry(req, buf + pos, room, de->name, &st, (off_t)de->cookie);
            if (len > room)
                break;
        }
        pos += len;
    }
full:
    pthread_rwlock_unlock(&memfs.ns_lock);
    if (!err) {
        pthread_rwlock_rdlock(&dir->lock);
        inode_touch_atime(dir);
        pthread_rwlock_unlock(&dir->lock);
        if (r_buf(req, buf, pos) != 0)
            for (size_t i = 0; i < ngiven; i++)
                inode_forget_ptr(given[i], 1);
    } else {
        r_err(req, err);
    }
    free(given);
    free(buf);
    inode_put(dir);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    trace(req, "RELEASEDIR ino=%" PRIu64, (uint64_t)ino);
    if (!op_begin(req, OP_RELEASEDIR, ino))
        return;
    r_err(req, handle_release(fi->fh, ino, true));
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
    trace(req, "FSYNCDIR ino=%" PRIu64 " datasync=%d", (uint64_t)ino, datasync);
    if (!op_begin(req, OP_FSYNCDIR, ino))
        return;
    struct inode *ip = handle_get(fi->fh, ino, true, NULL);
    if (!ip) {
        r_err(req, EBADF);
        return;
    }
    inode_put(ip);
    r_err(req, 0);
}

/* ------------------------------------------------------------------ */
/* Extended attributes                                                  */
/* ------------------------------------------------------------------ */

/* Namespace rules of Linux's xattr_permission(); ip->lock held. */
static int xattr_allowed(fuse_req_t req, struct inode *ip, const char *name,
                         bool write)
{
    uid_t uid = caller_uid(req);
    const char *dot = strchr(name, '.');
    if (!dot || dot[1] == '\0')
        return strncmp(name, "user.", 5) == 0 || strncmp(name, "trusted.", 8) == 0 ||
               strncmp(name, "security.", 9) == 0 ? -EINVAL : -EOPNOTSUPP;
    if (strncmp(name, "user.", 5) == 0) {
        if (ip->type != S_IFREG && ip->type != S_IFDIR)
            return write ? -EPERM : -ENODATA;
        if (write && ip->type == S_IFDIR && (ip->mode & S_ISVTX) && uid != 0 &&
            uid != ip->uid)
            return -EPERM;
        return perm_check(req, ip->mode, ip->uid, ip->gid, write ? W_OK : R_OK);
    }
    if (strncmp(name, "trusted.", 8) == 0) {
        if (uid != 0)
            return write ? -EPERM : -ENODATA;
        return 0;
    }
    if (strncmp(name, "security.", 9) == 0) {
        if (write && uid != 0 && uid != ip->uid)
            return -EPERM;
        return 0;
    }
    return -EOPNOTSUPP;     /* system.* (no POSIX ACLs here) and others */
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        const char *value, size_t size, int flags)
{
    trace(req, "SETXATTR ino=%" PRIu64 " name=%s size=%zu flags=0x%x", (uint64_t)ino,
          name, size, (unsigned)flags);
    if (!op_begin(req, OP_SETXATTR, ino))
        return;
    int err = 0;
    size_t nlen = strlen(name);
    if (nlen == 0 || (flags & ~(XATTR_CREATE | XATTR_REPLACE)))
        err = -EINVAL;
    else if (nlen > XATTR_NAME_MAX)
        err = -ERANGE;
    else if (size > MEMFS_XATTR_SIZE_MAX)
        err = -E2BIG;
    if (err) {
        r_err(req, err);
        return;
    }
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    pthread_rwlock_wrlock(&ip->lock);
    err = xattr_allowed(req, ip, name, true);
    if (!err)
        err = xattr_set(ip, name, value, size, flags);
    if (!err)
        fs_now(&ip->ctime);
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
    r_err(req, err);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    trace(req, "GETXATTR ino=%" PRIu64 " name=%s size=%zu", (uint64_t)ino, name, size);
    if (!op_begin(req, OP_GETXATTR, ino))
        return;
    if (strlen(name) > XATTR_NAME_MAX) {
        r_err(req, ERANGE);
        return;
    }
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    pthread_rwlock_rdlock(&ip->lock);
    int err = xattr_allowed(req, ip, name, false);
    struct xattr *x = err ? NULL : xattr_find(ip, name);
    if (!err && !x)
        err = -ENODATA;
    if (!err && size != 0 && size < x->size)
        err = -ERANGE;
    if (err)
        r_err(req, err);
    else if (size == 0)
        r_xattr(req, x->size);
    else
        r_buf(req, x->value, x->size);
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    trace(req, "LISTXATTR ino=%" PRIu64 " size=%zu", (uint64_t)ino, size);
    if (!op_begin(req, OP_LISTXATTR, ino))
        return;
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    bool root = caller_uid(req) == 0;
    pthread_rwlock_rdlock(&ip->lock);
    size_t total = 0;
    for (struct xattr *x = ip->xattrs; x; x = x->next)
        if (root || strncmp(x->name, "trusted.", 8) != 0)
            total += strlen(x->name) + 1;
    char *buf = NULL;
    int err = 0;
    if (size != 0 && size < total)
        err = -ERANGE;
    else if (size != 0 && total > 0 && !(buf = malloc(total)))
        err = -ENOMEM;
    if (buf) {
        size_t pos = 0;
        for (struct xattr *x = ip->xattrs; x; x = x->next) {
            if (!root && strncmp(x->name, "trusted.", 8) == 0)
                continue;
            size_t l = strlen(x->name) + 1;
            memcpy(buf + pos, x->name, l);
            pos += l;
        }
    }
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
    if (err)
        r_err(req, err);
    else if (size == 0)
        r_xattr(req, total);
    else
        r_buf(req, buf, total);
    free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    trace(req, "REMOVEXATTR ino=%" PRIu64 " name=%s", (uint64_t)ino, name);
    if (!op_begin(req, OP_REMOVEXATTR, ino))
        return;
    struct inode *ip = inode_of(req, ino);
    if (!ip)
        return;
    pthread_rwlock_wrlock(&ip->lock);
    int err = strlen(name) > XATTR_NAME_MAX ? -ERANGE : xattr_allowed(req, ip, name, true);
    if (!err)
        err = xattr_remove(ip, name);
    if (!err)
        fs_now(&ip->ctime);
    pthread_rwlock_unlock(&ip->lock);
    inode_put(ip);
    r_err(req, err);
}

/* ------------------------------------------------------------------ */
/* Seeding                                                              */
/* ------------------------------------------------------------------ */

int memfs_seed(const char *path, off_t size, uint64_t extents, uint64_t extent_len)
{
    if (size < 0 || size > MEMFS_MAX_SIZE)
        return -EFBIG;
    if (extents == 0 || extent_len > (uint64_t)size / extents)
        return -EINVAL;
    struct inode *dir = inode_get(MEMFS_ROOT_INO);
    char *copy = strdup(path);
    if (!dir || !copy) {
        inode_put(dir);
        free(copy);
        return -ENOMEM;
    }
    int err = 0;
    char *save = NULL;
    char *comp = strtok_r(copy, "/", &save);
    if (!comp)
        err = -EINVAL;
    pthread_rwlock_wrlock(&memfs.ns_lock);
    while (!err) {
        char *next = strtok_r(NULL, "/", &save);
        if ((err = check_name(comp)) || is_dot(comp)) {
            err = err ? err : -EINVAL;
            break;
        }
        struct dirent_m *de = dir_find(dir, comp);
        if (next) {
            if (!de) {
                err = -ENOENT;
            } else if (de->child->type != S_IFDIR) {
                err = -ENOTDIR;
            } else {
                inode_hold(de->child);
                inode_put(dir);
                dir = de->child;
                comp = next;
            }
            continue;
        }
        if (de) {
            err = -EEXIST;
            break;
        }
        struct inode *ip = inode_new(S_IFREG | 0644, getuid(), getgid(), 0);
        if (!ip) {
            err = -ENOMEM;
            break;
        }
        /* The pattern depends only on the low 21 bits of o * 2654435761,
         * hence of o: it repeats every 2 MiB.  Build one period and copy. */
        const size_t period = (size_t)1 << 21;
        unsigned char *pat = malloc(period);
        for (size_t i = 0; pat && i < period; i++)
            pat[i] = memfs_pattern(i);
        for (uint64_t i = 0; pat && i < extents && !err; i++) {
            off_t o = (off_t)(i * ((uint64_t)size / extents));
            off_t end = o + (off_t)extent_len;
            while (o < end && !err) {
                size_t in = (size_t)o & (period - 1);
                size_t n = period - in;
                if ((off_t)n > end - o)
                    n = (size_t)(end - o);
                err = store_write(&ip->data, o, pat + in, n);
                o += (off_t)n;
            }
        }
        if (!pat)
            err = -ENOMEM;
        free(pat);
        ip->size = size;
        if (!err)
            err = dir_add(dir, comp, ip);
        if (!err) {
            inode_nlink_set(ip, 1);
            dir_touch(dir, &ip->mtime);
        }
        inode_put(ip);
        break;
    }
    pthread_rwlock_unlock(&memfs.ns_lock);
    inode_put(dir);
    free(copy);
    return err;
}

const struct fuse_lowlevel_ops memfs_ops = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
    .create = op_create,
    .fallocate = op_fallocate,
    .copy_file_range = op_copy_file_range,
    .lseek = op_lseek,
};
