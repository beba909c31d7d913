/*
 * supervise.c - the broker's seccomp supervisor: serves the file system
 * calls of programs that bypass libufuse-preload.so (statically linked
 * programs such as busybox-static and Go binaries, and raw system calls
 * in the subtree of such a program).  docs/run.md says when the filter is
 * installed, what is served and what it costs.
 *
 * A preloaded process about to exec a static program installs a seccomp
 * filter (preload_seccomp.c) that turns the file system calls listed
 * there into user notifications, and hands the listener fd to the broker
 * (RUN_SUPERVISE).  Each listener gets a thread here that receives the
 * notifications of every process of that subtree and answers each:
 *  - a call on a mount path, or on a description's fd (the read end of an
 *    identity pipe, known by its inode), is served by sending the broker
 *    the request the preload library would send (broker_call: the same
 *    handlers, the same description table), copying arguments from and
 *    results into the caller's memory (process_vm_readv/writev); an open
 *    installs the description's identity pipe in the caller
 *    (SECCOMP_IOCTL_NOTIF_ADDFD), so the fd is a description like any other
 *    (inherited, dup'ed, adopted after exec by a preloaded program);
 *  - every other call is let through (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
 *
 * Locks: sv->mu guards the thread count; stopping is signalled by an
 * eventfd every thread polls.  The threads share nothing else (the traps
 * counter is atomic); each owns its listener and buffers.  broker_call
 * takes the broker's locks (broker.c) as a connection thread does.
 *
 * Invariants:
 *  1. Every notification received is answered exactly once: with a
 *     result, with CONTINUE, or by NOTIF_ADDFD with the SEND flag.
 *  2. A call is acted on only after its arguments are read and
 *     SECCOMP_IOCTL_NOTIF_ID_VALID has said the caller is still the process
 *     waiting in that call (its pid was not reused meanwhile).
 *  3. A listener thread lives until its filter has no process left
 *     (POLLHUP) or the supervisor stops; it closes its listener.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broker.h"
#include "runpath.h"
#include "runproto.h"

struct supervisor {
    struct broker *b;
    char mnt[PATH_MAX];     /* the mount path, normalised */
    size_t mlen;
    dev_t pipe_dev;         /* the pipe file system's device */
    int stopfd;             /* eventfd: readable once stopping */
    pthread_mutex_t mu;
    pthread_cond_t idle;    /* nthreads reached 0 */
    unsigned nthreads;      /* mu */
    _Atomic uint64_t traps;
};

struct listener {
    struct supervisor *sv;
    int fd;
};

/* What handle() returns besides a result. */
#define SV_CONTINUE LONG_MIN        /* let the kernel run the call */
#define SV_ANSWERED (LONG_MIN + 1)  /* answered already (an fd was installed) */

/* One trapped call being served. */
struct trap {
    struct supervisor *sv;
    int lfd;
    struct seccomp_notif *n;
    pid_t pid;
    bool have_ids;
    uid_t uid;
    gid_t gid;
    char *req;              /* request buffer, RUN_MAX_MSG */
    char *out;              /* reply payload, RUN_MAX_DATA */
};

/* A description's fd in the caller. */
struct vfd {
    uint64_t desc;
    bool is_dir;
    char path[PATH_MAX];    /* relative to the mount root */
};

/* ---- the caller's memory and identity ---------------------------------- */

static int mem_read(const struct trap *t, uint64_t addr, void *buf, size_t len)
{
    struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };
    return process_vm_readv(t->pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

static int mem_write(const struct trap *t, uint64_t addr, const void *buf, size_t len)
{
    struct iovec l = { (void *)buf, len }, r = { (void *)(uintptr_t)addr, len };
    return process_vm_writev(t->pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* A NUL-terminated string of the caller into @out (PATH_MAX bytes), read a
 * page at a time so that a string ending before an unmapped page reads. */
static int mem_string(const struct trap *t, uint64_t addr, char *out)
{
    size_t got = 0;
    if (!addr)
        return -EFAULT;
    while (got < PATH_MAX) {
        size_t room = 4096 - ((addr + got) & 4095);
        if (room > PATH_MAX - got)
            room = PATH_MAX - got;
        struct iovec l = { out + got, room }, r = { (void *)(uintptr_t)(addr + got), room };
        ssize_t n = process_vm_readv(t->pid, &l, 1, &r, 1, 0);
        if (n <= 0)
            return -EFAULT;
        if (memchr(out + got, '\0', (size_t)n))
            return 0;
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}

/* Invariant 2: the caller still waits in this call. */
static int still_waiting(const struct trap *t)
{
    uint64_t id = t->n->id;
    return ioctl(t->lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 ? 0 : -ESRCH;
}

/* The caller's effective ids (the owner of /proc/PID, as for the kernel's
 * FUSE requests) and, for @umask_out non-NULL, its umask. */
static int caller_ids(struct trap *t, mode_t *umask_out)
{
    char p[64];
    if (!t->have_ids) {
        struct stat st;
        snprintf(p, sizeof p, "/proc/%d", (int)t->pid);
        if (stat(p, &st) != 0)
            return -ESRCH;
        t->uid = st.st_uid;
        t->gid = st.st_gid;
        t->have_ids = true;
    }
    if (umask_out) {
        *umask_out = 022;
        snprintf(p, sizeof p, "/proc/%d/status", (int)t->pid);
        FILE *f = fopen(p, "re");
        char line[256];
        while (f && fgets(line, sizeof line, f)) {
            unsigned m;
            if (sscanf(line, "Umask: %o", &m) == 1) {
                *umask_out = (mode_t)(m & 0777);
                break;
            }
        }
        if (f)
            fclose(f);
    }
    return 0;
}

/* ---- requests to the broker ------------------------------------------- */

struct rq {
    struct run_req q;
    const char *path, *path2;
    const void *data;
    size_t data_len;
    size_t out_len;         /* set: reply payload bytes in t->out */
    int fd;                 /* set: fd received, or -1 */
};

static int64_t call(struct trap *t, struct rq *r)
{
    size_t p1 = r->path ? strlen(r->path) + 1 : 0, p2 = r->path2 ? strlen(r->path2) + 1 : 0;
    r->fd = -1;
    r->out_len = 0;
    if (sizeof r->q + p1 + p2 + r->data_len > RUN_MAX_MSG || p1 > UINT16_MAX || p2 > UINT16_MAX)
        return -ENAMETOOLONG;
    int rc = caller_ids(t, NULL);
    if (rc < 0)
        return rc;
    r->q.path_len = (uint16_t)p1;
    r->q.path2_len = (uint16_t)p2;
    char *w = t->req;
    memcpy(w, &r->q, sizeof r->q);
    w += sizeof r->q;
    if (p1)
        memcpy(w, r->path, p1);
    w += p1;
    if (p2)
        memcpy(w, r->path2, p2);
    w += p2;
    if (r->data_len)
        memcpy(w, r->data, r->data_len);
    w += r->data_len;
    return broker_call(t->sv->b, t->pid, t->uid, t->gid, t->req, (size_t)(w - t->req), t->out,
                       &r->out_len, &r->fd);
}

/* Is the caller's @fd a description?  1 (and *v filled), 0, or -errno. */
static int vfd_of(struct trap *t, int64_t fd, struct vfd *v)
{
    char p[64];
    struct stat st;
    int32_t n = (int32_t)fd;        /* the kernel takes an int */
    if (n < 0)
        return 0;
    snprintf(p, sizeof p, "/proc/%d/fd/%d", (int)t->pid, (int)n);
    if (stat(p, &st) != 0 || !S_ISFIFO(st.st_mode) || st.st_dev != t->sv->pipe_dev)
        return 0;
    uint64_t ino = st.st_ino;
    struct rq r = { .q = { .op = RUN_HELLO }, .data = &ino, .data_len = sizeof ino };
    int64_t found = call(t, &r);
    struct run_adopt a;
    if (found != 1 || r.out_len < sizeof a)
        return 0;
    memcpy(&a, t->out, sizeof a);
    if (a.ino != ino || a.path_len == 0 || a.path_len > PATH_MAX ||
        sizeof a + a.path_len > r.out_len || t->out[sizeof a + a.path_len - 1] != '\0')
        return 0;
    v->desc = a.desc;
    v->is_dir = a.is_dir;
    memcpy(v->path, t->out + sizeof a, a.path_len);
    return 1;
}

/* ---- paths ------------------------------------------------------------ */

/* The caller's working directory as the programs of the tree see it: the
 * real one (0), or the mount directory in $UFUSE_CWD when the real one is
 * the preload library's deleted placeholder (see pl_set_cwd): 1. */
static int caller_cwd(struct trap *t, char *out)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/cwd", (int)t->pid);
    ssize_t n = readlink(p, out, PATH_MAX - 1);
    if (n <= 0)
        return -ENOENT;
    out[n] = '\0';
    if (!strstr(out, "/.ufuse-cwd-") || !strstr(out, " (deleted)"))
        return 0;
    /* The environment the caller was started with. */
    snprintf(p, sizeof p, "/proc/%d/environ", (int)t->pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    static const char key[] = RUN_ENV_CWD "=";
    char buf[8192];
    size_t have = 0;
    int rc = -ENOENT;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *s = buf, *end = buf + have;
        while (s < end) {
            char *z = memchr(s, '\0', (size_t)(end - s));
            if (!z || z == end)
                break;          /* incomplete entry: read more */
            if (strncmp(s, key, sizeof key - 1) == 0 && strlen(s + sizeof key - 1) < PATH_MAX) {
                snprintf(out, PATH_MAX, "%s", s + sizeof key - 1);
                rc = 1;
                goto done;
            }
            s = z + 1;
        }
        memmove(buf, s, (size_t)(end - s));
        have = (size_t)(end - s);
        if (have == sizeof buf - 1)
            have = 0;           /* an entry longer than we care for */
    }
done:
    close(fd);
    return rc;
}

/*
 * Where path @addr (a pointer in the caller) relative to @dirfd lies: 1 if
 * on the mount (@rel set), 0 if not (let the kernel have it), or -errno.
 * A relative path from a directory on the mount that leaves the mount by
 * ".." cannot be handed to the kernel (it would resolve it from elsewhere):
 * -EOPNOTSUPP.
 * @empty_ok: an empty path names @dirfd itself (AT_EMPTY_PATH): then 2 and
 * *v is @dirfd's description (0 if @dirfd is a real fd).
 */
static int locate(struct trap *t, int64_t dirfd, uint64_t addr, char *rel, bool empty_ok,
                  struct vfd *v)
{
    char path[PATH_MAX], base[PATH_MAX], joined[2 * PATH_MAX + 2], norm[PATH_MAX];
    int rc = mem_string(t, addr, path);
    if (rc < 0)
        return rc;
    int32_t dfd = (int32_t)dirfd;
    if (path[0] == '\0') {
        if (!empty_ok)
            return 0;
        rc = vfd_of(t, dfd, v);
        return rc <= 0 ? rc : 2;
    }
    /* /proc/self/fd/N and /dev/fd/N of a description: that file. */
    const char *num = !strncmp(path, "/proc/self/fd/", 14) ? path + 14
                      : !strncmp(path, "/dev/fd/", 8)      ? path + 8 : NULL;
    if (num && *num) {
        char *end;
        long fd = strtol(num, &end, 10);
        if (!*end && vfd_of(t, fd, v) == 1) {
            snprintf(rel, PATH_MAX, "%s", v->path);
            return 1;
        }
    }
    bool from_mount = false;
    if (path[0] == '/') {
        snprintf(joined, sizeof joined, "%s", path);
    } else {
        if (dfd == AT_FDCWD) {
            rc = caller_cwd(t, base);
            if (rc < 0)
                return 0;
            from_mount = rc == 1;
        } else if ((rc = vfd_of(t, dfd, v)) == 1) {
            from_mount = true;
            if (!v->is_dir)
                return -ENOTDIR;
            /* The mount's path, then the directory's (joined below). */
            if (t->sv->mlen + strlen(v->path) >= sizeof base)
                return -ENAMETOOLONG;
            memcpy(base, t->sv->mnt, t->sv->mlen);
            strcpy(base + t->sv->mlen, strcmp(v->path, "/") ? v->path : "");
        } else {
            char p[64];
            snprintf(p, sizeof p, "/proc/%d/fd/%d", (int)t->pid, (int)dfd);
            ssize_t n = readlink(p, base, sizeof base - 1);
            if (n <= 0 || base[0] != '/')
                return 0;
            base[n] = '\0';
        }
        snprintf(joined, sizeof joined, "%s/%s", base, path);
    }
    if (strlen(joined) >= PATH_MAX || run_normalise(joined, norm) < 0)
        return from_mount ? -ENAMETOOLONG : 0;
    if (!run_under(norm, t->sv->mnt, t->sv->mlen, rel))
        return from_mount ? -EOPNOTSUPP : 0;
    return 1;
}

/* ---- serving ---------------------------------------------------------- */

/* A path call with one path: @op on @rel (already located). */
static long path_op(struct trap *t, uint32_t op, const char *rel, struct rq *r)
{
    r->q.op = op;
    r->path = rel;
    int rc = still_waiting(t);
    return rc < 0 ? rc : call(t, r);
}

static long desc_op(struct trap *t, uint32_t op, const struct vfd *v, struct rq *r)
{
    r->q.op = op;
    r->q.desc = v->desc;
    int rc = still_waiting(t);
    return rc < 0 ? rc : call(t, r);
}

/* Copy a struct stat reply into the caller (@statx: as struct statx). */
static long put_stat(struct trap *t, long r, uint64_t addr, size_t out_len, bool statx)
{
    struct stat st;
    if (r < 0)
        return r;
    if (out_len != sizeof st)
        return -EIO;
    memcpy(&st, t->out, sizeof st);
    if (!statx)
        return mem_write(t, addr, &st, sizeof st);
    struct statx sx;
    memset(&sx, 0, sizeof sx);
    sx.stx_mask = STATX_BASIC_STATS;
    sx.stx_blksize = (uint32_t)st.st_blksize;
    sx.stx_nlink = (uint32_t)st.st_nlink;
    sx.stx_uid = st.st_uid;
    sx.stx_gid = st.st_gid;
    sx.stx_mode = (uint16_t)st.st_mode;
    sx.stx_ino = st.st_ino;
    sx.stx_size = (uint64_t)st.st_size;
    sx.stx_blocks = (uint64_t)st.st_blocks;
    sx.stx_atime.tv_sec = st.st_atim.tv_sec;
    sx.stx_atime.tv_nsec = (uint32_t)st.st_atim.tv_nsec;
    sx.stx_mtime.tv_sec = st.st_mtim.tv_sec;
    sx.stx_mtime.tv_nsec = (uint32_t)st.st_mtim.tv_nsec;
    sx.stx_ctime.tv_sec = st.st_ctim.tv_sec;
    sx.stx_ctime.tv_nsec = (uint32_t)st.st_ctim.tv_nsec;
    sx.stx_rdev_major = major(st.st_rdev);
    sx.stx_rdev_minor = minor(st.st_rdev);
    sx.stx_dev_major = major(st.st_dev);
    sx.stx_dev_minor = minor(st.st_dev);
    return mem_write(t, addr, &sx, sizeof sx);
}

static long do_open(struct trap *t, int64_t dirfd, uint64_t addr, int flags, mode_t mode)
{
    char rel[PATH_MAX];
    struct vfd v;
    int k = locate(t, dirfd, addr, rel, false, &v);
    if (k <= 0)
        return k == 0 ? SV_CONTINUE : k;
    mode_t um = 022;
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
        int rc = caller_ids(t, &um);
        if (rc < 0)
            return rc;
    }
    bool dir = (flags & O_DIRECTORY) != 0;
    struct rq r = { .q = { .umask = um } };
    if (flags & O_PATH) {
        /* As the preload library does: a read handle or a directory stream. */
        r.q.flags = (flags & O_NOFOLLOW) ? RUN_NOFOLLOW : 0;
        long s = path_op(t, RUN_STAT, rel, &r);
        struct stat st;
        if (s < 0)
            return s;
        if (r.out_len != sizeof st)
            return -EIO;
        memcpy(&st, t->out, sizeof st);
        dir = S_ISDIR(st.st_mode);
        if (!dir && (flags & O_DIRECTORY))
            return -ENOTDIR;
        flags = O_RDONLY | (flags & O_CLOEXEC);
        r = (struct rq){ .q = { .umask = um } };
    }
    r.q.flags = (uint32_t)flags;
    r.q.mode = (uint32_t)mode;
    long res = path_op(t, dir ? RUN_OPENDIR : RUN_OPEN, rel, &r);
    if (res < 0)
        return res;
    if (r.fd < 0)
        return -EIO;
    /* Install the identity pipe in the caller and answer with its number. */
    struct seccomp_notif_addfd add = {
        .id = t->n->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (uint32_t)r.fd,
        .newfd_flags = (flags & O_CLOEXEC) ? O_CLOEXEC : 0,
    };
    int fd = ioctl(t->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    close(r.fd);            /* the description goes if the caller is gone */
    return fd >= 0 ? SV_ANSWERED : -errno;
}

/* stat/lstat/newfstatat/statx: @sx for statx's layout. */
static long do_stat(struct trap *t, int64_t dirfd, uint64_t addr, int flags, uint64_t buf, bool sx)
{
    char rel[PATH_MAX];
    struct vfd v;
    int k = locate(t, dirfd, addr, rel, (flags & AT_EMPTY_PATH) != 0, &v);
    if (k <= 0)
        return k == 0 ? SV_CONTINUE : k;
    struct rq r = { .q = { .flags = (flags & AT_SYMLINK_NOFOLLOW) ? RUN_NOFOLLOW : 0 } };
    long res = k == 2 ? desc_op(t, RUN_FSTAT, &v, &r) : path_op(t, RUN_STAT, rel, &r);
    return put_stat(t, res, buf, r.out_len, sx);
}

/* read/pread64 (@off >= 0) into the caller's [addr, addr + n). */
static long read_into(struct trap *t, const struct vfd *v, uint64_t addr, uint64_t n, int64_t off)
{
    uint64_t done = 0;
    while (done < n) {
        uint64_t chunk = n - done < RUN_MAX_DATA ? n - done : RUN_MAX_DATA;
        struct rq r = { .q = { .a = off < 0 ? -1 : off + (int64_t)done, .b = (int64_t)chunk } };
        long got = desc_op(t, RUN_READ, v, &r);
        if (got < 0)
            return done ? (long)done : got;
        if ((uint64_t)got > chunk || (size_t)got != r.out_len)
            return -EIO;
        if (got && mem_write(t, addr + done, t->out, (size_t)got) < 0)
            return done ? (long)done : -EFAULT;
        done += (uint64_t)got;
        if ((uint64_t)got < chunk)
            break;
    }
    return (long)done;
}

static long write_from(struct trap *t, const struct vfd *v, uint64_t addr, uint64_t n, int64_t off)
{
    static_assert(RUN_MAX_DATA <= RUN_MAX_MSG - sizeof(struct run_req), "data fits");
    char *data = t->out;    /* free until the reply */
    uint64_t done = 0;
    while (done < n) {
        uint64_t chunk = n - done < RUN_MAX_DATA ? n - done : RUN_MAX_DATA;
        if (mem_read(t, addr + done, data, (size_t)chunk) < 0)
            return done ? (long)done : -EFAULT;
        struct rq r = { .q = { .a = off < 0 ? -1 : off + (int64_t)done }, .data = data,
                        .data_len = (size_t)chunk };
        long put = desc_op(t, RUN_WRITE, v, &r);
        if (put < 0)
            return done ? (long)done : put;
        done += (uint64_t)put;
        if ((uint64_t)put < chunk)
            break;
    }
    return (long)done;
}

/* readv/writev and the p-forms: piece by piece. */
static long vector_io(struct trap *t, const struct vfd *v, uint64_t iov_addr, uint64_t cnt,
                      int64_t off, bool wr)
{
    if (cnt > IOV_MAX)
        return -EINVAL;
    struct iovec iov[64];
    long total = 0;
    for (uint64_t i = 0; i < cnt;) {
        size_t take = cnt - i < 64 ? (size_t)(cnt - i) : 64;
        if (mem_read(t, iov_addr + i * sizeof(struct iovec), iov, take * sizeof *iov) < 0)
            return total ? total : -EFAULT;
        for (size_t j = 0; j < take; j++, i++) {
            uint64_t base = (uint64_t)(uintptr_t)iov[j].iov_base, len = iov[j].iov_len;
            int64_t at = off < 0 ? -1 : off + total;
            long r = wr ? write_from(t, v, base, len, at) : read_into(t, v, base, len, at);
            if (r < 0)
                return total ? total : r;
            total += r;
            if ((uint64_t)r < len)
                return total;
        }
    }
    return total;
}

/* A call with one path and nothing to copy back: @op on it. */
static long simple_path(struct trap *t, int64_t dirfd, uint64_t addr, struct rq *r, uint32_t op)
{
    char rel[PATH_MAX];
    struct vfd v;
    int k = locate(t, dirfd, addr, rel, false, &v);
    if (k <= 0)
        return k == 0 ? SV_CONTINUE : k;
    if (op == RUN_MKDIR || op == RUN_MKNOD) {
        mode_t um;
        int rc = caller_ids(t, &um);
        if (rc < 0)
            return rc;
        r->q.umask = um;
    }
    return path_op(t, op, rel, r);
}

/* rename and link: both paths on the mount, or neither (EXDEV between). */
static long two_paths(struct trap *t, int64_t d1, uint64_t a1, int64_t d2, uint64_t a2,
                      uint32_t op, uint32_t flags)
{
    char rel1[PATH_MAX], rel2[PATH_MAX];
    struct vfd v;
    int k1 = locate(t, d1, a1, rel1, false, &v);
    if (k1 < 0)
        return k1;
    int k2 = locate(t, d2, a2, rel2, false, &v);
    if (k2 < 0)
        return k2;
    if (!k1 && !k2)
        return SV_CONTINUE;
    if (!k1 || !k2)
        return -EXDEV;
    struct rq r = { .q = { .flags = flags }, .path2 = rel2 };
    return path_op(t, op, rel1, &r);
}

static long do_symlink(struct trap *t, uint64_t target, int64_t dirfd, uint64_t addr)
{
    char rel[PATH_MAX], text[PATH_MAX];
    struct vfd v;
    int k = locate(t, dirfd, addr, rel, false, &v);
    if (k <= 0)
        return k == 0 ? SV_CONTINUE : k;
    int rc = mem_string(t, target, text);
    if (rc < 0)
        return rc;
    struct rq r = { .path2 = rel };
    r.q.op = RUN_SYMLINK;
    r.path = text;
    rc = still_waiting(t);
    return rc < 0 ? rc : call(t, &r);
}

static long do_readlink(struct trap *t, int64_t dirfd, uint64_t addr, uint64_t buf, uint64_t size)
{
    char rel[PATH_MAX];
    struct vfd v;
    int k = locate(t, dirfd, addr, rel, false, &v);
    if (k <= 0)
        return k == 0 ? SV_CONTINUE : k;
    if ((int64_t)size <= 0)
        return -EINVAL;
    struct rq r = { 0 };
    long res = path_op(t, RUN_READLINK, rel, &r);
    if (res < 0)
        return res;
    size_t n = r.out_len < size ? r.out_len : (size_t)size;
    return mem_write(t, buf, t->out, n) < 0 ? -EFAULT : (long)n;
}

static long do_utimensat(struct trap *t, int64_t dirfd, uint64_t addr, uint64_t times, int flags)
{
    struct timespec ts[2];
    struct rq r = { .q = { .flags = (flags & AT_SYMLINK_NOFOLLOW) ? RUN_NOFOLLOW : 0 } };
    if (times) {
        if (mem_read(t, times, ts, sizeof ts) < 0)
            return -EFAULT;
        r.data = ts;
        r.data_len = sizeof ts;
    }
    struct vfd v;
    if (!addr) {
        int k = vfd_of(t, dirfd, &v);
        return k <= 0 ? (k == 0 ? SV_CONTINUE : k) : desc_op(t, RUN_FUTIMENS, &v, &r);
    }
    char rel[PATH_MAX];
    int k = locate(t, dirfd, addr, rel, (flags & AT_EMPTY_PATH) != 0, &v);
    if (k <= 0)
        return k == 0 ? SV_CONTINUE : k;
    return k == 2 ? desc_op(t, RUN_FUTIMENS, &v, &r) : path_op(t, RUN_UTIMENS, rel, &r);
}

/* statfs/fstatfs: the broker answers a struct statvfs. */
static long put_statfs(struct trap *t, long res, size_t out_len, uint64_t buf)
{
    struct statvfs sv;
    if (res < 0)
        return res;
    if (out_len != sizeof sv)
        return -EIO;
    memcpy(&sv, t->out, sizeof sv);
    struct statfs sf = {
        .f_type = 0x65735546 /* FUSE_SUPER_MAGIC */, .f_bsize = (long)sv.f_bsize,
        .f_blocks = sv.f_blocks, .f_bfree = sv.f_bfree, .f_bavail = sv.f_bavail,
        .f_files = sv.f_files, .f_ffree = sv.f_ffree, .f_namelen = (long)sv.f_namemax,
        .f_frsize = (long)sv.f_frsize, .f_flags = (long)sv.f_flag,
    };
    return mem_write(t, buf, &sf, sizeof sf);
}

/* A call whose first argument is an fd: a description's, or let through. */
static long fd_call(struct trap *t, long nr, const uint64_t *a)
{
    struct vfd v;
    int k = vfd_of(t, (int64_t)a[0], &v);
    if (k <= 0)
        return k == 0 ? SV_CONTINUE : k;
    struct rq r = { 0 };
    switch (nr) {
    case SYS_read:
        return read_into(t, &v, a[1], a[2], -1);
    case SYS_pread64:
        return (int64_t)a[3] < 0 ? -EINVAL : read_into(t, &v, a[1], a[2], (int64_t)a[3]);
    case SYS_write:
        return write_from(t, &v, a[1], a[2], -1);
    case SYS_pwrite64:
        return (int64_t)a[3] < 0 ? -EINVAL : write_from(t, &v, a[1], a[2], (int64_t)a[3]);
    case SYS_readv:
    case SYS_writev:
        return vector_io(t, &v, a[1], a[2], -1, nr == SYS_writev);
    case SYS_preadv:
    case SYS_pwritev:
        return (int64_t)a[3] < 0 ? -EINVAL
                                 : vector_io(t, &v, a[1], a[2], (int64_t)a[3], nr == SYS_pwritev);
    case SYS_preadv2:
    case SYS_pwritev2:
        return (int64_t)a[3] < -1 ? -EINVAL
                                  : vector_io(t, &v, a[1], a[2], (int64_t)a[3], nr == SYS_pwritev2);
    case SYS_lseek:
        r.q.a = (int64_t)a[1];
        r.q.flags = (uint32_t)a[2];
        return desc_op(t, RUN_LSEEK, &v, &r);
    case SYS_fstat: {
        long res = desc_op(t, RUN_FSTAT, &v, &r);
        return put_stat(t, res, a[1], r.out_len, false);
    }
    case SYS_getdents64: {
        if (a[2] == 0)
            return -EINVAL;
        r.q.b = a[2] < RUN_MAX_DATA ? (int64_t)a[2] : RUN_MAX_DATA;
        long res = desc_op(t, RUN_GETDENTS, &v, &r);
        if (res < 0)
            return res;
        if ((size_t)res != r.out_len || r.out_len > a[2])
            return -EIO;
        return mem_write(t, a[1], t->out, r.out_len) < 0 ? -EFAULT : res;
    }
    case SYS_ftruncate:
        r.q.a = (int64_t)a[1];
        return desc_op(t, RUN_FTRUNCATE, &v, &r);
    case SYS_fsync:
    case SYS_fdatasync:
        r.q.flags = nr == SYS_fdatasync;
        return desc_op(t, RUN_FSYNC, &v, &r);
    case SYS_fchmod:
        r.q.mode = (uint32_t)a[1];
        return desc_op(t, RUN_FCHMOD, &v, &r);
    case SYS_fchown:
        r.q.a = (int64_t)(uint32_t)a[1];
        r.q.b = (int64_t)(uint32_t)a[2];
        return desc_op(t, RUN_FCHOWN, &v, &r);
    case SYS_fcntl:
        switch ((int)a[1]) {
        case F_GETFL:
            return desc_op(t, RUN_GETFL, &v, &r);
        case F_SETFL:
            /* The pipe itself stays O_NONBLOCK: only the description's
             * flags change. */
            r.q.flags = (uint32_t)a[2];
            return desc_op(t, RUN_SETFL, &v, &r);
        case F_GETLK:
        case F_SETLK:
        case F_SETLKW:
        case F_OFD_GETLK:
        case F_OFD_SETLK:
        case F_OFD_SETLKW:
            /* Not served (a waiting lock would hold up this listener's
             * thread): refused rather than taken on the pipe. */
            return -ENOLCK;
        default:
            return SV_CONTINUE;     /* dup, close-on-exec: the real fd's */
        }
    case SYS_flock:
        return -ENOLCK;
    case SYS_fstatfs: {
        long res = path_op(t, RUN_STATFS, v.path, &r);
        return put_statfs(t, res, r.out_len, a[1]);
    }
    default:
        /* fchdir, and the copies between fds (sendfile, splice,
         * copy_file_range): not served; programs fall back to read and
         * write on EINVAL. */
        return nr == SYS_fchdir ? -EOPNOTSUPP : -EINVAL;
    }
}

/* sendfile(out, in, ...), splice(in, _, out, ...), copy_file_range(in, _,
 * out, ...): refused when either end is a description, else let through. */
static long copy_call(struct trap *t, int64_t fd1, int64_t fd2)
{
    struct vfd v;
    int k1 = vfd_of(t, fd1, &v), k2 = vfd_of(t, fd2, &v);
    return k1 == 1 || k2 == 1 ? -EINVAL : SV_CONTINUE;
}

static long handle(struct trap *t)
{
    uint64_t a[6];
    for (int i = 0; i < 6; i++)
        a[i] = t->n->data.args[i];
    int64_t cwd = AT_FDCWD;
    struct rq r = { 0 };
    switch (t->n->data.nr) {
    case SYS_open:
        return do_open(t, cwd, a[0], (int)a[1], (mode_t)a[2]);
    case SYS_creat:
        return do_open(t, cwd, a[0], O_CREAT | O_WRONLY | O_TRUNC, (mode_t)a[1]);
    case SYS_openat:
        return do_open(t, (int64_t)a[0], a[1], (int)a[2], (mode_t)a[3]);
    case SYS_openat2: {
        struct open_how how;
        if (a[3] < sizeof how)
            return -EINVAL;
        if (mem_read(t, a[2], &how, sizeof how) < 0)
            return -EFAULT;
        if (how.resolve) {
            /* RESOLVE_* constraints are not served: refuse on the mount. */
            char rel[PATH_MAX];
            struct vfd v;
            int k = locate(t, (int64_t)a[0], a[1], rel, false, &v);
            return k == 0 ? SV_CONTINUE : k < 0 ? k : -EOPNOTSUPP;
        }
        return do_open(t, (int64_t)a[0], a[1], (int)how.flags, (mode_t)how.mode);
    }
    case SYS_stat:
        return do_stat(t, cwd, a[0], 0, a[1], false);
    case SYS_lstat:
        return do_stat(t, cwd, a[0], AT_SYMLINK_NOFOLLOW, a[1], false);
    case SYS_newfstatat:
        return do_stat(t, (int64_t)a[0], a[1], (int)a[3], a[2], false);
    case SYS_statx:
        return do_stat(t, (int64_t)a[0], a[1], (int)a[2], a[4], true);
    case SYS_access:
        r.q.mode = (uint32_t)a[1];
        return simple_path(t, cwd, a[0], &r, RUN_ACCESS);
    case SYS_faccessat:
    case SYS_faccessat2:
        r.q.mode = (uint32_t)a[2];
        return simple_path(t, (int64_t)a[0], a[1], &r, RUN_ACCESS);
    case SYS_readlink:
        return do_readlink(t, cwd, a[0], a[1], a[2]);
    case SYS_readlinkat:
        return do_readlink(t, (int64_t)a[0], a[1], a[2], a[3]);
    case SYS_mkdir:
        r.q.mode = (uint32_t)a[1];
        return simple_path(t, cwd, a[0], &r, RUN_MKDIR);
    case SYS_mkdirat:
        r.q.mode = (uint32_t)a[2];
        return simple_path(t, (int64_t)a[0], a[1], &r, RUN_MKDIR);
    case SYS_rmdir:
        return simple_path(t, cwd, a[0], &r, RUN_RMDIR);
    case SYS_unlink:
        return simple_path(t, cwd, a[0], &r, RUN_UNLINK);
    case SYS_unlinkat:
        return simple_path(t, (int64_t)a[0], a[1], &r, (a[2] & AT_REMOVEDIR) ? RUN_RMDIR : RUN_UNLINK);
    case SYS_rename:
        return two_paths(t, cwd, a[0], cwd, a[1], RUN_RENAME, 0);
    case SYS_renameat:
        return two_paths(t, (int64_t)a[0], a[1], (int64_t)a[2], a[3], RUN_RENAME, 0);
    case SYS_renameat2:
        return two_paths(t, (int64_t)a[0], a[1], (int64_t)a[2], a[3], RUN_RENAME, (uint32_t)a[4]);
    case SYS_link:
        return two_paths(t, cwd, a[0], cwd, a[1], RUN_LINK, 0);
    case SYS_linkat:
        return two_paths(t, (int64_t)a[0], a[1], (int64_t)a[2], a[3], RUN_LINK, 0);
    case SYS_symlink:
        return do_symlink(t, a[0], cwd, a[1]);
    case SYS_symlinkat:
        return do_symlink(t, a[0], (int64_t)a[1], a[2]);
    case SYS_chmod:
        r.q.mode = (uint32_t)a[1];
        return simple_path(t, cwd, a[0], &r, RUN_CHMOD);
    case SYS_fchmodat:
        r.q.mode = (uint32_t)a[2];
        return simple_path(t, (int64_t)a[0], a[1], &r, RUN_CHMOD);
    case SYS_chown:
    case SYS_lchown:
        r.q.a = (int64_t)(uint32_t)a[1];
        r.q.b = (int64_t)(uint32_t)a[2];
        r.q.flags = t->n->data.nr == SYS_lchown ? RUN_NOFOLLOW : 0;
        return simple_path(t, cwd, a[0], &r, RUN_CHOWN);
    case SYS_fchownat:
        r.q.a = (int64_t)(uint32_t)a[2];
        r.q.b = (int64_t)(uint32_t)a[3];
        r.q.flags = (a[4] & AT_SYMLINK_NOFOLLOW) ? RUN_NOFOLLOW : 0;
        return simple_path(t, (int64_t)a[0], a[1], &r, RUN_CHOWN);
    case SYS_utimensat:
        return do_utimensat(t, (int64_t)a[0], a[1], a[2], (int)a[3]);
    case SYS_truncate:
        r.q.a = (int64_t)a[1];
        return simple_path(t, cwd, a[0], &r, RUN_TRUNCATE);
    case SYS_statfs: {
        char rel[PATH_MAX];
        struct vfd v;
        int k = locate(t, cwd, a[0], rel, false, &v);
        if (k <= 0)
            return k == 0 ? SV_CONTINUE : k;
        long res = path_op(t, RUN_STATFS, rel, &r);
        return put_statfs(t, res, r.out_len, a[1]);
    }
    case SYS_chdir: {
        /* Not served: the caller's working directory cannot be moved into
         * a mount from here (docs/run.md). */
        char rel[PATH_MAX];
        struct vfd v;
        int k = locate(t, cwd, a[0], rel, false, &v);
        return k == 0 ? SV_CONTINUE : k < 0 ? k : -EOPNOTSUPP;
    }
    case SYS_sendfile:
        return copy_call(t, (int64_t)a[0], (int64_t)a[1]);
    case SYS_splice:
    case SYS_copy_file_range:
        return copy_call(t, (int64_t)a[0], (int64_t)a[2]);
    default:
        return fd_call(t, t->n->data.nr, a);
    }
}

/* ---- the listener threads --------------------------------------------- */

static void serve_listener(struct listener *l)
{
    struct supervisor *sv = l->sv;
    struct seccomp_notif_sizes sz;
    struct trap t = { .sv = sv, .lfd = l->fd };
    struct seccomp_notif_resp *resp = NULL;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) != 0)
        return;
    t.n = calloc(1, sz.seccomp_notif > sizeof *t.n ? sz.seccomp_notif : sizeof *t.n);
    resp = calloc(1, sz.seccomp_notif_resp > sizeof *resp ? sz.seccomp_notif_resp : sizeof *resp);
    t.req = malloc(RUN_MAX_MSG);
    t.out = malloc(RUN_MAX_DATA);
    while (t.n && resp && t.req && t.out) {
        struct pollfd p[2] = { { .fd = l->fd, .events = POLLIN }, { .fd = sv->stopfd, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN)) {
            if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))
                break;          /* no process left under the filter */
            continue;
        }
        memset(t.n, 0, sz.seccomp_notif);
        if (ioctl(l->fd, SECCOMP_IOCTL_NOTIF_RECV, t.n) != 0) {
            if (errno == EINTR || errno == ENOENT)
                continue;       /* the caller went away first */
            break;
        }
        atomic_fetch_add(&sv->traps, 1);
        t.pid = (pid_t)t.n->pid;
        t.have_ids = false;
        long res = t.n->data.arch == AUDIT_ARCH_X86_64 ? handle(&t) : SV_CONTINUE;
        if (res == SV_ANSWERED)
            continue;
        memset(resp, 0, sz.seccomp_notif_resp);
        resp->id = t.n->id;
        if (res == SV_CONTINUE)
            resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        else if (res < 0)
            resp->error = (int32_t)res;
        else
            resp->val = res;
        /* ENOENT: the caller was killed or its call interrupted meanwhile. */
        (void)ioctl(l->fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
    free(t.n);
    free(resp);
    free(t.req);
    free(t.out);
}

static void *listener_main(void *arg)
{
    struct listener *l = arg;
    struct supervisor *sv = l->sv;
    serve_listener(l);
    close(l->fd);
    free(l);
    pthread_mutex_lock(&sv->mu);
    if (--sv->nthreads == 0)
        pthread_cond_broadcast(&sv->idle);
    pthread_mutex_unlock(&sv->mu);
    return NULL;
}

/* Is @fd a seccomp listener?  (Anything else would make a thread spin.) */
static bool is_listener(int fd)
{
    char p[64], link[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, link, sizeof link - 1);
    if (n <= 0)
        return false;
    link[n] = '\0';
    return strcmp(link, "anon_inode:seccomp notify") == 0;
}

int supervise_add(struct supervisor *sv, int fd)
{
    struct listener *l = NULL;
    pthread_t th;
    pthread_attr_t at;
    int err = 0;
    if (!is_listener(fd))
        err = -EINVAL;
    else if (!(l = malloc(sizeof *l)))
        err = -ENOMEM;
    if (err) {
        close(fd);
        return err;
    }
    l->sv = sv;
    l->fd = fd;
    pthread_mutex_lock(&sv->mu);
    sv->nthreads++;
    pthread_mutex_unlock(&sv->mu);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 << 10);
    err = pthread_create(&th, &at, listener_main, l);
    pthread_attr_destroy(&at);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        close(fd);
        free(l);
        pthread_mutex_lock(&sv->mu);
        sv->nthreads--;
        pthread_mutex_unlock(&sv->mu);
        return -err;
    }
    return 0;
}

struct supervisor *supervise_start(struct broker *b, const char *mnt)
{
    struct supervisor *sv = calloc(1, sizeof *sv);
    int p[2];
    struct stat st;
    if (!sv || run_normalise(mnt, sv->mnt) < 0 || pipe2(p, O_CLOEXEC) != 0) {
        free(sv);
        return NULL;
    }
    int r = fstat(p[0], &st);
    close(p[0]);
    close(p[1]);
    sv->stopfd = eventfd(0, EFD_CLOEXEC);
    if (r != 0 || sv->stopfd < 0) {
        if (sv->stopfd >= 0)
            close(sv->stopfd);
        free(sv);
        return NULL;
    }
    sv->b = b;
    sv->mlen = strlen(sv->mnt);
    sv->pipe_dev = st.st_dev;
    pthread_mutex_init(&sv->mu, NULL);
    pthread_cond_init(&sv->idle, NULL);
    return sv;
}

void supervise_counts(struct supervisor *sv, uint32_t *listeners, uint64_t *traps)
{
    pthread_mutex_lock(&sv->mu);
    *listeners = sv->nthreads;
    pthread_mutex_unlock(&sv->mu);
    *traps = atomic_load(&sv->traps);
}

void supervise_stop(struct supervisor *sv)
{
    uint64_t one = 1;
    (void)!write(sv->stopfd, &one, sizeof one);
    pthread_mutex_lock(&sv->mu);
    while (sv->nthreads > 0)
        pthread_cond_wait(&sv->idle, &sv->mu);
    pthread_mutex_unlock(&sv->mu);
    close(sv->stopfd);
    pthread_mutex_destroy(&sv->mu);
    pthread_cond_destroy(&sv->idle);
    free(sv);
}
