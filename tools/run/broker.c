/*
 * broker.c - the process that owns one FUSE session for a tree of
 * unmodified programs: `ufuse run`, `ufuse mount` and `ufuse umount`.
 *
 * The broker attaches the server with the public API (include/ufuse.h),
 * listens on an abstract AF_UNIX SOCK_SEQPACKET address and serves the
 * requests of libufuse-preload.so (tools/run/runproto.h) from every
 * program of the tree.  docs/run.md has the design and its measurements.
 *
 * Threads: the acceptor (the main thread's loop) starts one thread per
 * connection; one reaper thread waits on an epoll set holding the write
 * end of every description's identity pipe and releases a description
 * when the programs have closed the last copy of its read end, and a
 * pidfd per process holding record locks, whose locks it drops when the
 * process exits (locks.c keeps the locks).  The seccomp supervisor
 * (supervise.c) has a thread per listener; it serves programs that bypass
 * the preload library through broker_call, the same dispatch.
 *
 * Locks: b->life is held shared by every call into the session (request
 * dispatch, releasing a description) and exclusively by broker_stop, which
 * closes the session under it (then b->closed is set and calls fail with
 * ENOTCONN).  b->mu guards the description table (both indexes) and every
 * desc's refs/dead; d->mu serializes the calls that use or move a
 * description's file position or directory stream (read/write at the
 * position, lseek, getdents, seekdir), as Linux's f_pos_lock does.
 * Order: b->life, then d->mu, then b->mu.  b->sv (the supervisor) is set
 * before any program runs and stopped once b->closed is set; only
 * dispatch (under b->life, session open) reaches it.
 *
 * Invariants:
 *  1. A desc is in both indexes (by id, by pipe inode) from its creation
 *     until its pipe reports EPOLLERR; then it is marked dead and leaves
 *     them.
 *  2. A desc's FUSE handle is released, and the desc freed, exactly once:
 *     by whoever drops refs to 0 while dead is set.
 *  3. d->wfd is open, and in the epoll set, until the desc is freed.
 *  4. A request only reaches a desc through desc_get (refs held) and
 *     releases it with desc_put.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "cli.h"
#include "locks.h"
#include "runproto.h"

/* What the reaper's epoll events point at: a desc or a proc. */
enum watch_kind { WATCH_DESC = 1, WATCH_PROC, WATCH_STOP };

struct desc {
    enum watch_kind kind;   /* WATCH_DESC */
    uint64_t id;
    uint64_t file;          /* the file's inode number (the lock table's key),
                               0 until desc_file first needs it (d->mu) */
    uint64_t ino;           /* the identity pipe's inode */
    int wfd;                /* its write end (ours alone) */
    bool is_dir;
    ufuse_file_t *f;        /* files */
    ufuse_dir_t *d;         /* directories */
    char *path;             /* as opened, relative to the mount root */
    int flags;              /* status flags (O_ACCMODE | O_APPEND ...) */
    /* The release owes the server a FLUSH: no FLUSH was sent since the
     * open or since the last change through the description (a program
     * that exits or is killed never closes its copies itself). */
    atomic_bool flush_owed;
    /* Files: the position, a word of the shared position table that
     * programs may move with a compare-and-swap (runproto.h), or own_pos
     * when the description has no slot; fast says how programs find it. */
    _Atomic uint64_t *pos;
    _Atomic uint64_t own_pos;
    struct run_fast fast;
    pthread_mutex_t mu;     /* the position and the directory stream */
    uint64_t dir_index;     /* entries handed out since the last rewind */
    struct ufuse_dirent pending; /* read from the server, not yet handed out */
    bool has_pending;
    int refs;               /* b->mu */
    bool dead;              /* b->mu */
    struct desc *next_id, *next_ino; /* hash chains, b->mu */
};

/* A process that holds record locks: its pidfd is in the epoll set. */
struct proc {
    enum watch_kind kind;   /* WATCH_PROC */
    pid_t pid;
    int pidfd;
    struct proc *next;
};

#define DESC_BUCKETS 4096

struct broker {
    ufuse_t *s;
    const char *mnt;        /* the mount path programs see */
    char addr[64];          /* abstract socket name, without the leading NUL */
    int lfd;                /* listening socket */
    int epfd;               /* the reaper's epoll set */
    pthread_rwlock_t life;
    bool closed;            /* the session is gone (b->life held exclusively to set) */
    pthread_mutex_t mu;
    uint64_t next_id;
    struct desc *by_id[DESC_BUCKETS], *by_ino[DESC_BUCKETS];
    unsigned ndesc;
    struct proc *procs;     /* b->mu */
    unsigned nconns;        /* b->mu */
    volatile sig_atomic_t stop;
    uid_t uid;
    struct supervisor *sv;  /* the seccomp supervisor, NULL if none */
    /* The fast path (runproto.h, "Shared memory"): the session's cache
     * region, and the position table programs map, or -1 / NULL. */
    _Atomic uint64_t requests; /* served, for RUN_STATS */
    int share_fd;
    int pos_fd;
    _Atomic uint64_t *pos;  /* POS_SLOTS words, slot 0 unused */
    uint32_t *pos_free;     /* free slots (b->mu) */
    uint32_t npos_free;
};

#define POS_SLOTS 65536u

static struct desc **id_slot(struct broker *b, uint64_t id)
{
    return &b->by_id[id % DESC_BUCKETS];
}

static struct desc **ino_slot(struct broker *b, uint64_t ino)
{
    return &b->by_ino[(ino * 0x9E3779B97F4A7C15ull) >> 52];
}

/* Look a live description up and take a reference.  NULL if unknown. */
static struct desc *desc_get(struct broker *b, uint64_t id)
{
    pthread_mutex_lock(&b->mu);
    struct desc *d = *id_slot(b, id);
    while (d && d->id != id)
        d = d->next_id;
    if (d)
        d->refs++;
    pthread_mutex_unlock(&b->mu);
    return d;
}

/* Called with b->life held (shared), or exclusively by broker_stop. */
static void desc_free(struct broker *b, struct desc *d)
{
    /* Its OFD and flock locks (description ids are never reused). */
    struct lock_owner ofd = { .is_desc = true, .id = d->id };
    lock_release(LOCK_POSIX, 0, &ofd);
    lock_release(LOCK_FLOCK, 0, &ofd);
    if (d->f)
        (void)(atomic_load(&d->flush_owed) ? ufuse_close(d->f) : ufuse_release(d->f));
    if (d->d)
        (void)ufuse_closedir(d->d);
    if (d->fast.pos_slot) {
        atomic_store(d->pos, 0);
        pthread_mutex_lock(&b->mu);
        b->pos_free[b->npos_free++] = d->fast.pos_slot;
        pthread_mutex_unlock(&b->mu);
    }
    (void)epoll_ctl(b->epfd, EPOLL_CTL_DEL, d->wfd, NULL);
    close(d->wfd);
    pthread_mutex_destroy(&d->mu);
    free(d->path);
    free(d);
}

static void desc_put(struct broker *b, struct desc *d)
{
    pthread_mutex_lock(&b->mu);
    bool last = --d->refs == 0 && d->dead;
    pthread_mutex_unlock(&b->mu);
    if (last)
        desc_free(b, d);
}

static void unlink_chain(struct desc **slot, struct desc *d, bool by_id)
{
    for (; *slot; slot = by_id ? &(*slot)->next_id : &(*slot)->next_ino) {
        if (*slot == d) {
            *slot = by_id ? d->next_id : d->next_ino;
            return;
        }
    }
}

/* The programs closed the last copy of @d's pipe: retire it (invariant 1). */
static void desc_retire(struct broker *b, struct desc *d)
{
    pthread_mutex_lock(&b->mu);
    unlink_chain(id_slot(b, d->id), d, true);
    unlink_chain(ino_slot(b, d->ino), d, false);
    b->ndesc--;
    d->dead = true;
    bool last = d->refs == 0;
    pthread_mutex_unlock(&b->mu);
    if (last)
        desc_free(b, d);
}

/*
 * Make a description for an opened file or directory and its identity
 * pipe.  Returns the read end for the program (the caller sends and closes
 * it), or -errno; on failure the handles are closed.
 */
static int desc_new(struct broker *b, ufuse_file_t *f, ufuse_dir_t *dir, const char *path,
                    int flags, struct desc **out)
{
    int p[2] = { -1, -1 };
    struct desc *d = calloc(1, sizeof *d);
    char *pcopy = strdup(path);
    int err = 0;
    struct stat st;
    if (!d || !pcopy)
        err = -ENOMEM;
    else if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        err = -errno;
    else if (fstat(p[0], &st) != 0)
        err = -errno;
    else if (fcntl(p[0], F_SETPIPE_SZ, RUN_ID_PIPE_SIZE) != RUN_ID_PIPE_SIZE)
        err = -EIO; /* (a page is the smallest a pipe gets: 4 KiB pages only) */
    if (err && p[0] >= 0) {
        close(p[0]);
        close(p[1]);
    }
    if (err) {
        free(d);
        free(pcopy);
        if (f)
            (void)ufuse_close(f);
        if (dir)
            (void)ufuse_closedir(dir);
        return err;
    }
    d->kind = WATCH_DESC;
    d->ino = st.st_ino;
    d->wfd = p[1];
    d->f = f;
    d->d = dir;
    d->is_dir = dir != NULL;
    d->path = pcopy;
    d->flags = flags;
    d->refs = 1;
    atomic_init(&d->flush_owed, true);
    d->pos = &d->own_pos;
    pthread_mutex_init(&d->mu, NULL);
    struct ufuse_share_ids ids;
    bool fast = f && b->pos && (flags & O_ACCMODE) != O_WRONLY && ufuse_file_share(f, &ids) == 0;
    pthread_mutex_lock(&b->mu);
    if (fast && b->npos_free) {
        d->fast = (struct run_fast){ .key = ids.key, .nodeid = ids.nodeid,
                                     .generation = ids.generation, .attr_slot = ids.attr_slot,
                                     .pos_slot = b->pos_free[--b->npos_free] };
        d->pos = &b->pos[d->fast.pos_slot];
        atomic_store(d->pos, 0);
    }
    d->id = ++b->next_id;
    d->next_id = *id_slot(b, d->id);
    *id_slot(b, d->id) = d;
    d->next_ino = *ino_slot(b, d->ino);
    *ino_slot(b, d->ino) = d;
    b->ndesc++;
    pthread_mutex_unlock(&b->mu);
    /* EPOLLERR comes without asking once no reader is left. */
    struct epoll_event ev = { .events = 0, .data.ptr = d };
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, d->wfd, &ev) != 0)
        abort(); /* only ENOMEM/ENOSPC: the broker cannot track lifetimes */
    *out = d;
    return p[0];
}

/* Watch @pid (it holds record locks) so its locks go when it exits. */
static void proc_watch(struct broker *b, pid_t pid)
{
    pthread_mutex_lock(&b->mu);
    struct proc *p = b->procs;
    while (p && p->pid != pid)
        p = p->next;
    if (!p && (p = calloc(1, sizeof *p))) {
        p->kind = WATCH_PROC;
        p->pid = pid;
        p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
        if (p->pidfd < 0 || epoll_ctl(b->epfd, EPOLL_CTL_ADD, p->pidfd, &ev) != 0) {
            /* Gone already (or no pidfds): its locks go now. */
            if (p->pidfd >= 0)
                close(p->pidfd);
            free(p);
            pthread_mutex_unlock(&b->mu);
            lock_release(LOCK_POSIX, 0, &(struct lock_owner){ .id = (uint64_t)pid });
            return;
        }
        p->next = b->procs;
        b->procs = p;
    }
    pthread_mutex_unlock(&b->mu);
}

static void proc_exited(struct broker *b, struct proc *p)
{
    pthread_mutex_lock(&b->mu);
    for (struct proc **pp = &b->procs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    (void)epoll_ctl(b->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
    close(p->pidfd);
    lock_release(LOCK_POSIX, 0, &(struct lock_owner){ .id = (uint64_t)p->pid });
    free(p);
}

static void *reaper_main(void *arg)
{
    struct broker *b = arg;
    struct epoll_event ev[64];
    for (;;) {
        int n = epoll_wait(b->epfd, ev, 64, -1);
        for (int i = 0; i < n; i++) {
            enum watch_kind *w = ev[i].data.ptr;
            if (*w == WATCH_STOP)
                return NULL;
            if (*w == WATCH_PROC) {
                proc_exited(b, (struct proc *)w);
                continue;
            }
            struct desc *d = (struct desc *)w;
            (void)epoll_ctl(b->epfd, EPOLL_CTL_DEL, d->wfd, NULL);
            pthread_rwlock_rdlock(&b->life);
            desc_retire(b, d);
            pthread_rwlock_unlock(&b->life);
        }
    }
}

/* ---- one connection ------------------------------------------------- */

struct conn {
    struct broker *b;
    int fd;
    pid_t pid;              /* the peer process and its effective ids at */
    uid_t uid;              /* connect time (SO_PEERCRED): the preload */
    gid_t gid;              /* library reconnects when they change */
    gid_t *groups;          /* its supplementary groups then (SO_PEERGROUPS) */
    int ngroups;
    char *in;               /* request buffer, RUN_MAX_MSG */
    char *out;              /* reply payload, RUN_MAX_DATA */
};

struct call {
    const struct run_req *q;
    const char *path, *path2;
    const char *data;
    size_t data_len;
    char *out;              /* reply payload buffer */
    size_t out_len;         /* bytes of it to send */
    int send_fd;            /* fd to pass with the reply, or -1 */
    int recv_fd;            /* fd that came with the request, or -1 */
    uint32_t rep_flags;     /* RUN_REP_* */
};

static int reply(int fd, int64_t res, const void *body, size_t len, int pass_fd, uint32_t flags)
{
    struct run_rep rep = { .res = res, .len = (uint32_t)len, .flags = flags };
    struct iovec iov[2] = { { &rep, sizeof rep }, { (void *)body, len } };
    char cbuf[RUN_FD_SPACE];
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
    if (pass_fd >= 0)
        run_msg_pass_fd(&m, cbuf, pass_fd);
    return sendmsg(fd, &m, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Apply the caller's umask to a creation mode, as the kernel does. */
static mode_t masked(const struct run_req *q)
{
    return (mode_t)(q->mode & ~q->umask & 07777);
}

static int64_t do_open(struct conn *k, struct call *c)
{
    struct broker *b = k->b;
    const struct run_req *q = c->q;
    struct desc *d = NULL;
    ufuse_file_t *f = NULL;
    ufuse_dir_t *dir = NULL;
    int flags = (int)q->flags;
    int r;
    if (q->op == RUN_OPENDIR) {
        r = ufuse_opendir(b->s, c->path, &dir);
        flags = O_RDONLY | O_DIRECTORY;
    } else {
        r = ufuse_open(b->s, c->path, flags & ~(O_CLOEXEC | O_NOCTTY | O_NONBLOCK),
                       masked(q), &f);
        if (r == -EISDIR && (flags & O_ACCMODE) == O_RDONLY && !(flags & O_CREAT)) {
            /* open(dir, O_RDONLY) is how programs get a directory fd. */
            r = ufuse_opendir(b->s, c->path, &dir);
            flags |= O_DIRECTORY;
        }
    }
    if (r < 0)
        return r;
    int rfd = desc_new(b, f, dir, c->path, flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC),
                       &d);
    if (rfd < 0)
        return rfd;
    struct run_open *o = (struct run_open *)c->out;
    o->desc = d->id;
    o->flags = (uint32_t)d->flags;
    o->is_dir = d->is_dir;
    o->fast = d->fast;
    c->out_len = sizeof *o;
    c->send_fd = rfd;
    desc_put(b, d);
    return 0;
}

/* HELLO: say which of the presented pipe inodes are descriptions. */
static int64_t do_hello(struct conn *k, struct call *c)
{
    struct broker *b = k->b;
    size_t n = c->data_len / sizeof(uint64_t), used = 0;
    int64_t found = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t ino;
        memcpy(&ino, c->data + i * sizeof ino, sizeof ino);
        pthread_mutex_lock(&b->mu);
        struct desc *d = *ino_slot(b, ino);
        while (d && d->ino != ino)
            d = d->next_ino;
        size_t plen = d ? strlen(d->path) + 1 : 0;
        if (d && used + sizeof(struct run_adopt) + plen <= RUN_MAX_DATA) {
            struct run_adopt a = { .ino = ino, .desc = d->id, .is_dir = d->is_dir,
                                   .path_len = (uint32_t)plen, .flags = (uint32_t)d->flags,
                                   .fast = d->fast };
            memcpy(c->out + used, &a, sizeof a);
            memcpy(c->out + used + sizeof a, d->path, plen);
            used += sizeof a + plen;
            found++;
        }
        pthread_mutex_unlock(&b->mu);
    }
    c->out_len = used;
    return found;
}

/* Fill @c->out with linux_dirent64 records from @d's stream. */
static int64_t do_getdents(struct desc *d, struct call *c, size_t room)
{
    size_t used = 0;
    for (;;) {
        if (!d->has_pending) {
            int r = ufuse_readdir(d->d, &d->pending);
            if (r < 0)
                return used ? (int64_t)used : r;
            if (r == 0) {
                c->rep_flags |= RUN_REP_END;
                break;
            }
            d->has_pending = true;
        }
        size_t nlen = strlen(d->pending.name);
        size_t reclen = (offsetof(struct dirent64, d_name) + nlen + 1 + 7) & ~(size_t)7;
        if (used + reclen > room) {
            if (used == 0)
                return -EINVAL;
            break;
        }
        struct dirent64 *e = (struct dirent64 *)(c->out + used);
        memset(e, 0, reclen);
        e->d_ino = d->pending.ino ? d->pending.ino : 1;
        e->d_off = (int64_t)(d->dir_index + 1);
        e->d_reclen = (unsigned short)reclen;
        e->d_type = (unsigned char)d->pending.type;
        memcpy(e->d_name, d->pending.name, nlen + 1);
        used += reclen;
        d->dir_index++;
        d->has_pending = false;
    }
    c->out_len = used;
    return (int64_t)used;
}

static int64_t do_seekdir(struct desc *d, int64_t index)
{
    if (index < 0)
        return -EINVAL;
    int r = ufuse_rewinddir(d->d);
    if (r < 0)
        return r;
    d->dir_index = 0;
    d->has_pending = false;
    while (d->dir_index < (uint64_t)index) {
        r = ufuse_readdir(d->d, &d->pending);
        if (r <= 0)
            return r;
        d->dir_index++;
    }
    return 0;
}

/*
 * The lock table's key for @d's file, asked of the server only when locks
 * are in play (not on every open).  0 if it cannot be had.
 */
static uint64_t desc_file(struct broker *b, struct desc *d)
{
    pthread_mutex_lock(&d->mu);
    if (!d->file) {
        struct stat st;
        int r = d->f ? ufuse_fstat(d->f, &st) : ufuse_stat(b->s, d->path, &st);
        if (r == 0)
            d->file = st.st_ino;
    }
    uint64_t file = d->file;
    pthread_mutex_unlock(&d->mu);
    return file;
}

/* The caller's connection is still open (a waiting lock gives up if not). */
static bool conn_alive(void *arg)
{
    struct pollfd p = { .fd = ((struct conn *)arg)->fd, .events = 0 };
    return poll(&p, 1, 0) == 0;
}

/* struct flock's range (whence resolved against @d) as a lock_range. */
static int flock_range(struct desc *d, const struct flock *fl, struct lock_range *r)
{
    int64_t base = 0;
    if (fl->l_whence == SEEK_CUR || fl->l_whence == SEEK_END) {
        if (!d->f)
            return -EINVAL;
        struct stat st;
        off_t pos = (off_t)(atomic_load(d->pos) & ~RUN_POS_LOCK);
        int rc = fl->l_whence == SEEK_END ? ufuse_fstat(d->f, &st) : 0;
        if (rc < 0)
            return rc;
        base = fl->l_whence == SEEK_END ? st.st_size : pos;
    } else if (fl->l_whence != SEEK_SET) {
        return -EINVAL;
    }
    int64_t start = base + fl->l_start;
    int64_t len = fl->l_len;
    if (len < 0) {
        start += len;
        len = -len;
    }
    if (start < 0)
        return -EINVAL;
    if (fl->l_type != F_RDLCK && fl->l_type != F_WRLCK && fl->l_type != F_UNLCK)
        return -EINVAL;
    r->type = fl->l_type;
    r->start = (uint64_t)start;
    r->end = len == 0 ? UINT64_MAX : (uint64_t)start + (uint64_t)len - 1;
    return 0;
}

/*
 * Record locks and flock, kept by the broker (locks.c): process-owned
 * record locks by the caller's pid, OFD locks and flock by description.
 */
static int64_t do_lock(struct conn *k, struct call *c, struct desc *d)
{
    const struct run_req *q = c->q;
    uint32_t kind = q->flags;
    uint64_t file = desc_file(k->b, d);
    if (!file)
        return -ENOLCK;
    if (kind == RUN_LK_FLOCK) {
        int op = (int)q->a;
        struct lock_range r = { .start = 0, .end = UINT64_MAX };
        switch (op & ~LOCK_NB) {
        case LOCK_SH: r.type = F_RDLCK; break;
        case LOCK_EX: r.type = F_WRLCK; break;
        case LOCK_UN: r.type = F_UNLCK; break;
        default: return -EINVAL;
        }
        struct lock_owner who = { .is_desc = true, .id = d->id };
        return lock_set(LOCK_FLOCK, file, &who, &r, !(op & LOCK_NB), conn_alive, k);
    }
    struct flock fl;
    struct lock_range r;
    if (c->data_len != sizeof fl)
        return -EINVAL;
    memcpy(&fl, c->data, sizeof fl);
    bool ofd = kind >= RUN_LK_OFD_GET && kind <= RUN_LK_OFD_SETW;
    if (kind < RUN_LK_GET || kind > RUN_LK_OFD_SETW || (ofd && fl.l_pid != 0))
        return -EINVAL;
    int rc = flock_range(d, &fl, &r);
    if (rc < 0)
        return rc;
    if (!ofd && (fl.l_type == F_RDLCK || fl.l_type == F_WRLCK) &&
        ((fl.l_type == F_RDLCK && (d->flags & O_ACCMODE) == O_WRONLY) ||
         (fl.l_type == F_WRLCK && (d->flags & O_ACCMODE) == O_RDONLY)))
        return -EBADF;
    struct lock_owner who = { .is_desc = ofd, .id = ofd ? d->id : (uint64_t)k->pid };
    if (kind == RUN_LK_GET || kind == RUN_LK_OFD_GET) {
        if (r.type == F_UNLCK)
            return -EINVAL;
        lock_test(LOCK_POSIX, file, &who, &r);
        fl.l_type = r.type;
        if (r.type != F_UNLCK) {
            fl.l_whence = SEEK_SET;
            fl.l_start = (off_t)r.start;
            fl.l_len = r.end == UINT64_MAX ? 0 : (off_t)(r.end - r.start + 1);
            fl.l_pid = r.owner.is_desc ? -1 : (pid_t)r.owner.id;
        }
        memcpy(c->out, &fl, sizeof fl);
        c->out_len = sizeof fl;
        return 0;
    }
    bool wait = kind == RUN_LK_SETW || kind == RUN_LK_OFD_SETW;
    rc = lock_set(LOCK_POSIX, file, &who, &r, wait, conn_alive, k);
    /* Watched once it holds the lock: a process killed while it waited
     * may be granted it after its exit was seen, and a watch made then
     * finds it gone (or exited: its pidfd fires) and drops the lock. */
    if (rc == 0 && !ofd && r.type != F_UNLCK)
        proc_watch(k->b, k->pid);
    return rc;
}

/*
 * A call that uses or moves @d's position: take d->mu, set RUN_POS_LOCK in
 * the position word (programs' fast reads then leave it alone) and give
 * the handle that position; desc_pos_give stores where the handle's
 * position ended and lets go.
 */
static void desc_pos_take(struct desc *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t v = atomic_load(d->pos);
    while (!atomic_compare_exchange_weak(d->pos, &v, v | RUN_POS_LOCK))
        ;
    (void)ufuse_lseek(d->f, (off_t)(v & ~RUN_POS_LOCK), SEEK_SET);
}

static void desc_pos_give(struct desc *d)
{
    off_t p = ufuse_lseek(d->f, 0, SEEK_CUR);
    atomic_store(d->pos, (uint64_t)(p < 0 ? 0 : p));
    pthread_mutex_unlock(&d->mu);
}

/* RUN_SHARE: a memfd of the fast path (@which 0: the cache region, 1: the
 * position table, 2: the cache's referenced bytes) to pass; its size. */
static int64_t do_share(struct broker *b, struct call *c, int64_t which)
{
    if (!b->pos || which < 0 || which > 2)
        return -EOPNOTSUPP;
    int fd = which == 0 ? ufuse_share_fd(b->s)
             : which == 2 ? ufuse_share_refs_fd(b->s)
                          : fcntl(b->pos_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return which == 1 ? -errno : fd;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    c->send_fd = fd;
    return st.st_size;
}

/* The fast path's position table, if the session shares its cache. */
static void broker_share_init(struct broker *b)
{
    b->share_fd = -1;
    b->pos_fd = -1;
    int fd = ufuse_share_fd(b->s);
    if (fd < 0)
        return;
    close(fd);
    size_t size = POS_SLOTS * sizeof(uint64_t);
    b->pos_fd = memfd_create("ufuse-run-positions", MFD_CLOEXEC);
    b->pos_free = malloc((POS_SLOTS - 1) * sizeof *b->pos_free);
    if (b->pos_fd < 0 || !b->pos_free || ftruncate(b->pos_fd, (off_t)size) != 0 ||
        (b->pos = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->pos_fd, 0)) ==
            MAP_FAILED) {
        b->pos = NULL; /* no fast path: every call comes here */
        return;
    }
    for (uint32_t i = POS_SLOTS - 1; i >= 1; i--)
        b->pos_free[b->npos_free++] = i;
}

/* A stat call's result @r into the reply: the struct stat on success. */
static int64_t stat_reply(struct call *c, int r, const struct stat *st)
{
    if (r < 0)
        return r;
    memcpy(c->out, st, sizeof *st);
    c->out_len = sizeof *st;
    return 0;
}

/* A change through @d ended with @r: its release owes a FLUSH (set once
 * the change is done, so a FLUSH racing it cannot clear it). */
static int64_t desc_changed(struct desc *d, int64_t r)
{
    atomic_store(&d->flush_owed, true);
    return r;
}

static int64_t do_desc_call(struct conn *k, struct call *c, struct desc *d)
{
    const struct run_req *q = c->q;
    struct stat st;
    if (q->op == RUN_LOCK)
        return do_lock(k, c, d);
    if (q->op == RUN_FLUSH && lock_count() > 0) {
        /* close(2) of any fd drops the process's record locks on the file. */
        uint64_t file = desc_file(k->b, d);
        if (file)
            lock_release(LOCK_POSIX, file, &(struct lock_owner){ .id = (uint64_t)k->pid });
    }
    /* No handle calls for these in the API: by the path opened (a rename
     * since then is not followed). */
    if (q->op == RUN_FCHOWN)
        return ufuse_chown(k->b->s, d->path, (uid_t)q->a, (gid_t)q->b);
    if (q->op == RUN_FUTIMENS)
        return ufuse_utimens(k->b->s, d->path, c->data_len == 2 * sizeof(struct timespec)
                                                   ? (const struct timespec *)c->data : NULL);
    if (d->is_dir) {
        switch (q->op) {
        case RUN_GETDENTS:
        case RUN_SEEKDIR: {
            pthread_mutex_lock(&d->mu);
            int64_t r = q->op == RUN_SEEKDIR ? do_seekdir(d, q->a)
                        : do_getdents(d, c, q->b > 0 && q->b < RUN_MAX_DATA ? (size_t)q->b
                                                                           : RUN_MAX_DATA);
            pthread_mutex_unlock(&d->mu);
            return r;
        }
        case RUN_FSTAT:
            return stat_reply(c, ufuse_stat(k->b->s, d->path, &st), &st);
        case RUN_FSYNC:
            return ufuse_fsyncdir(d->d, q->flags & 1);
        case RUN_FLUSH:
            return 0;
        case RUN_GETFL:
            return d->flags;
        case RUN_FCHMOD:
            return ufuse_chmod(k->b->s, d->path, q->mode & 07777);
        case RUN_READ:
        case RUN_WRITE:
            return -EISDIR;
        default:
            return -EBADF;
        }
    }
    switch (q->op) {
    case RUN_READ: {
        size_t n = q->b < 0 ? 0 : q->b > RUN_MAX_DATA ? RUN_MAX_DATA : (size_t)q->b;
        if ((d->flags & O_ACCMODE) == O_WRONLY)
            return -EBADF;
        ssize_t r;
        if (q->a >= 0) {
            r = ufuse_pread(d->f, c->out, n, q->a);
        } else {
            desc_pos_take(d);
            r = ufuse_read(d->f, c->out, n);
            desc_pos_give(d);
        }
        if (r > 0)
            c->out_len = (size_t)r;
        return r;
    }
    case RUN_WRITE: {
        if ((d->flags & O_ACCMODE) == O_RDONLY)
            return -EBADF;
        ssize_t r;
        /* pwrite on an O_APPEND fd appends on Linux: the library does that. */
        if (q->a >= 0) {
            r = ufuse_pwrite(d->f, c->data, c->data_len, q->a);
        } else {
            desc_pos_take(d);
            r = ufuse_write(d->f, c->data, c->data_len);
            desc_pos_give(d);
        }
        return desc_changed(d, r);
    }
    case RUN_LSEEK: {
        desc_pos_take(d);
        off_t r = ufuse_lseek(d->f, q->a, (int)q->flags);
        desc_pos_give(d);
        return r;
    }
    case RUN_FSTAT:
        return stat_reply(c, ufuse_fstat(d->f, &st), &st);
    case RUN_FTRUNCATE:
        if ((d->flags & O_ACCMODE) == O_RDONLY)
            return -EINVAL;
        return desc_changed(d, ufuse_ftruncate(d->f, q->a));
    case RUN_FSYNC:
        return q->flags & 1 ? ufuse_fdatasync(d->f) : ufuse_fsync(d->f);
    case RUN_FALLOCATE:
        if ((d->flags & O_ACCMODE) == O_RDONLY)
            return -EBADF;
        return desc_changed(d, ufuse_fallocate(d->f, (int)q->flags, q->a, q->b));
    case RUN_FLUSH: {
        /* close(2) of one copy: write back, FLUSH and report the file's
         * error, as the kernel's fuse_flush does on every close.  A read-
         * only description's FLUSH is left to its release. */
        if ((d->flags & O_ACCMODE) == O_RDONLY)
            return 0;
        atomic_store(&d->flush_owed, false);
        int r = ufuse_flush(d->f);
        if (r)
            atomic_store(&d->flush_owed, true);
        return r;
    }
    case RUN_GETFL:
        return d->flags;
    case RUN_SETFL: {
        /* The handle's O_APPEND is fixed at open: refuse to flip it rather
         * than write in the wrong place.  The rest is recorded (it changes
         * nothing for a FUSE file). */
        const int settable = O_APPEND | O_NONBLOCK | O_ASYNC | O_NOATIME | O_DIRECT;
        int want = (int)q->flags & settable;
        if ((want ^ d->flags) & O_APPEND)
            return -EINVAL;
        pthread_mutex_lock(&d->mu);
        d->flags = (d->flags & ~settable) | want;
        pthread_mutex_unlock(&d->mu);
        return 0;
    }
    case RUN_FCHMOD:
        return ufuse_fchmod(d->f, q->mode & 07777);
    case RUN_GETDENTS:
    case RUN_SEEKDIR:
        return -ENOTDIR;
    default:
        return -EINVAL;
    }
}

static int64_t do_path_call(struct conn *k, struct call *c)
{
    ufuse_t *s = k->b->s;
    const struct run_req *q = c->q;
    const char *p = c->path, *p2 = c->path2;
    switch (q->op) {
    case RUN_STAT: {
        struct stat st;
        return stat_reply(c, q->flags & RUN_NOFOLLOW ? ufuse_lstat(s, p, &st) : ufuse_stat(s, p, &st),
                          &st);
    }
    case RUN_ACCESS:
        return ufuse_access(s, p, (int)q->mode);
    case RUN_MKDIR:
        return ufuse_mkdir(s, p, masked(q));
    case RUN_MKNOD:
        return ufuse_mknod(s, p, (q->mode & S_IFMT) | masked(q), (dev_t)q->a);
    case RUN_RMDIR:
        return ufuse_rmdir(s, p);
    case RUN_UNLINK:
        return ufuse_unlink(s, p);
    case RUN_RENAME:
        return p2 ? ufuse_rename(s, p, p2, q->flags) : -EINVAL;
    case RUN_LINK:
        return p2 ? ufuse_link(s, p, p2) : -EINVAL;
    case RUN_SYMLINK:
        return p2 ? ufuse_symlink(s, p, p2) : -EINVAL;
    case RUN_READLINK: {
        ssize_t r = ufuse_readlink(s, p, c->out, RUN_MAX_DATA);
        if (r > 0)
            c->out_len = (size_t)(r > RUN_MAX_DATA ? RUN_MAX_DATA : r);
        return r;
    }
    case RUN_CHMOD:
        return ufuse_chmod(s, p, q->mode & 07777);
    case RUN_CHOWN:
        return (q->flags & RUN_NOFOLLOW ? ufuse_lchown : ufuse_chown)(s, p, (uid_t)q->a,
                                                                       (gid_t)q->b);
    case RUN_UTIMENS: {
        const struct timespec *ts = c->data_len == 2 * sizeof(struct timespec)
                                        ? (const struct timespec *)c->data : NULL;
        return (q->flags & RUN_NOFOLLOW ? ufuse_lutimens : ufuse_utimens)(s, p, ts);
    }
    case RUN_TRUNCATE:
        return ufuse_truncate(s, p, q->a);
    case RUN_STATFS: {
        struct statvfs sv;
        int r = ufuse_statfs(s, p, &sv);
        if (r < 0)
            return r;
        memcpy(c->out, &sv, sizeof sv);
        c->out_len = sizeof sv;
        return 0;
    }
    case RUN_GETXATTR: {
        size_t n = q->b < 0 ? 0 : q->b > RUN_MAX_DATA ? RUN_MAX_DATA : (size_t)q->b;
        ssize_t r = p2 ? ufuse_getxattr(s, p, p2, c->out, n) : -EINVAL;
        if (r > 0 && n)
            c->out_len = (size_t)r;
        return r;
    }
    case RUN_SETXATTR:
        return p2 ? ufuse_setxattr(s, p, p2, c->data, c->data_len, (int)q->flags) : -EINVAL;
    case RUN_LISTXATTR: {
        size_t n = q->b < 0 ? 0 : q->b > RUN_MAX_DATA ? RUN_MAX_DATA : (size_t)q->b;
        ssize_t r = ufuse_listxattr(s, p, c->out, n);
        if (r > 0 && n)
            c->out_len = (size_t)r;
        return r;
    }
    case RUN_REMOVEXATTR:
        return p2 ? ufuse_removexattr(s, p, p2) : -EINVAL;
    default:
        return -EINVAL;
    }
}

/* Check a request's framing; set c's views of its strings and data. */
static int parse_req(const char *buf, size_t len, struct call *c)
{
    if (len < sizeof(struct run_req))
        return -EPROTO;
    const struct run_req *q = (const struct run_req *)buf;
    size_t off = sizeof *q;
    if (q->op == 0 || q->op >= RUN_OP_MAX)
        return -EPROTO;
    if ((size_t)q->path_len + q->path2_len > len - off)
        return -EPROTO;
    c->q = q;
    c->path = c->path2 = NULL;
    if (q->path_len) {
        c->path = buf + off;
        if (c->path[q->path_len - 1] != '\0' || strlen(c->path) + 1 != q->path_len)
            return -EPROTO;
        off += q->path_len;
    }
    if (q->path2_len) {
        c->path2 = buf + off;
        if (c->path2[q->path2_len - 1] != '\0' || strlen(c->path2) + 1 != q->path2_len)
            return -EPROTO;
        off += q->path2_len;
    }
    c->data = buf + off;
    c->data_len = len - off;
    return 0;
}

static bool path_op(uint32_t op)
{
    return op == RUN_OPEN || op == RUN_OPENDIR || (op >= RUN_STAT && op <= RUN_REMOVEXATTR);
}

static int64_t dispatch(struct conn *k, struct call *c)
{
    const struct run_req *q = c->q;
    atomic_fetch_add(&k->b->requests, 1);
    if (path_op(q->op) && !c->path)
        return -EINVAL;
    switch (q->op) {
    case RUN_HELLO:
        return do_hello(k, c);
    case RUN_OPEN:
    case RUN_OPENDIR:
        return do_open(k, c);
    case RUN_SHARE:
        return do_share(k->b, c, q->a);
    case RUN_STATS: {
        struct run_stats *st = (struct run_stats *)c->out;
        struct broker *b = k->b;
        memset(st, 0, sizeof *st);
        pthread_mutex_lock(&b->mu);
        st->descs = b->ndesc;
        for (struct proc *p = b->procs; p; p = p->next)
            st->procs++;
        st->conns = b->nconns;
        pthread_mutex_unlock(&b->mu);
        if (b->sv)
            supervise_counts(b->sv, &st->listeners, &st->traps);
        st->locks = lock_count();
        st->requests = atomic_load(&b->requests);
        c->out_len = sizeof *st;
        return 0;
    }
    case RUN_SUPERVISE: {
        int fd = c->recv_fd;
        c->recv_fd = -1;
        if (fd < 0)
            return -EINVAL;
        if (!k->b->sv) {
            close(fd);
            return -ENOSYS;
        }
        return supervise_add(k->b->sv, fd);
    }
    case RUN_UMOUNT:
        k->b->stop = 1;
        (void)shutdown(k->b->lfd, SHUT_RDWR);
        return 0;
    default:
        break;
    }
    if (!path_op(q->op)) {
        struct desc *d = desc_get(k->b, q->desc);
        if (!d)
            return -EBADF;
        int64_t r = do_desc_call(k, c, d);
        desc_put(k->b, d);
        return r;
    }
    return do_path_call(k, c);
}

/* The peer's supplementary groups as the kernel gave them at connect
 * time (checked under -o default_permissions); none if it would not. */
static void conn_peer_groups(struct conn *k)
{
    socklen_t len = 0;
    if (getsockopt(k->fd, SOL_SOCKET, SO_PEERGROUPS, NULL, &len) != 0 && errno != ERANGE)
        return;
    if (len == 0 || !(k->groups = malloc(len)))
        return;
    if (getsockopt(k->fd, SOL_SOCKET, SO_PEERGROUPS, k->groups, &len) != 0) {
        free(k->groups);
        k->groups = NULL;
        return;
    }
    k->ngroups = (int)(len / sizeof(gid_t));
}

/* Serve parsed request @c for connection @k (takes the session's life). */
/*
 * A path call's walk left the mount (-o outside_links: a symbolic link to
 * an absolute path, or ".." above the root): the program is told where to
 * (RUN_LEFT_MOUNT, the absolute path as reply data) and resolves it itself,
 * as the kernel goes on walking past a mount.  -EXDEV that came from
 * elsewhere stays.
 */
static int64_t left_mount(struct broker *b, struct call *c)
{
    char where[PATH_MAX];
    if (ufuse_outside_path(b->s, where, sizeof where) <= 0)
        return -EXDEV;
    int n;
    if (where[0] == '/') {
        n = snprintf(c->out, RUN_MAX_DATA, "%s", where);
    } else {
        /* "..[/rest]": from the mount point's parent (the mount path is
         * absolute and normal: its parent is lexical). */
        const char *rest = where + 2 + (where[2] == '/');
        int plen = (int)(strrchr(b->mnt, '/') - b->mnt);
        n = snprintf(c->out, RUN_MAX_DATA, "%.*s/%s", plen, b->mnt, rest);
    }
    if (n < 0 || n >= PATH_MAX)
        return -ENAMETOOLONG;
    c->out_len = (size_t)n + 1;
    return RUN_LEFT_MOUNT;
}

static int64_t serve(struct conn *k, struct call *c)
{
    pthread_rwlock_rdlock(&k->b->life);
    if (!k->b->closed) {
        /* The server sees the program's identity, as from the kernel. */
        struct ufuse_caller who = { .uid = k->uid, .gid = k->gid, .pid = k->pid,
                                    .ngroups = k->ngroups, .groups = k->groups };
        (void)ufuse_set_caller(k->b->s, &who);
    }
    int64_t res = k->b->closed ? -ENOTCONN : dispatch(k, c);
    if (res == -EXDEV && c->path)
        res = left_mount(k->b, c);
    pthread_rwlock_unlock(&k->b->life);
    return res;
}

int64_t broker_call(struct broker *b, pid_t pid, uid_t uid, gid_t gid, const void *req,
                    size_t len, void *out, size_t *out_len, int *fd)
{
    /* No connection behind it: fd -1 (a lock wait, never sent from here,
     * would see it as alive). */
    struct conn k = { .b = b, .fd = -1, .pid = pid, .uid = uid, .gid = gid, .out = out };
    struct call c = { .out = out, .send_fd = -1, .recv_fd = -1 };
    int64_t res = parse_req(req, len, &c);
    if (res == 0) {
        uint32_t op = c.q->op;
        res = op == RUN_SUPERVISE || op == RUN_UMOUNT || op == RUN_LOCK ? -EINVAL
                                                                       : serve(&k, &c);
        if (res == RUN_LEFT_MOUNT)
            res = -EOPNOTSUPP; /* the caller's path cannot be rewritten (docs/run.md) */
    }
    *out_len = res < 0 ? 0 : c.out_len;
    *fd = c.send_fd;
    if (res < 0 && c.send_fd >= 0) {
        close(c.send_fd);
        *fd = -1;
    }
    return res;
}

/* Receive one request datagram into k->in; the first fd that comes with
 * it goes to *fd (else -1; others are closed).  The byte count, or <= 0. */
static ssize_t recv_req(struct conn *k, int *fd)
{
    char cbuf[CMSG_SPACE(4 * sizeof(int))];
    struct iovec iov = { k->in, RUN_MAX_MSG };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf };
    ssize_t n = recvmsg(k->fd, &m, MSG_CMSG_CLOEXEC);
    *fd = -1;
    if (n < 0)
        return n;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int f;
            memcpy(&f, CMSG_DATA(h) + i * sizeof f, sizeof f);
            if (*fd < 0)
                *fd = f;
            else
                close(f);
        }
    }
    return n;
}

static void *conn_main(void *arg)
{
    struct conn *k = arg;
    for (;;) {
        int rfd;
        ssize_t n = recv_req(k, &rfd);
        if (n <= 0)
            break;
        struct call c = { .out = k->out, .send_fd = -1, .recv_fd = rfd };
        int64_t res = parse_req(k->in, (size_t)n, &c);
        if (res == 0)
            res = serve(k, &c);
        if (c.recv_fd >= 0)
            close(c.recv_fd);
        int sent = reply(k->fd, res, c.out, res < 0 && res != RUN_LEFT_MOUNT ? 0 : c.out_len,
                         c.send_fd, c.rep_flags);
        if (c.send_fd >= 0)
            close(c.send_fd);
        if (sent < 0 || (res == -EPROTO && c.q == NULL))
            break;
    }
    close(k->fd);
    pthread_mutex_lock(&k->b->mu);
    k->b->nconns--;
    pthread_mutex_unlock(&k->b->mu);
    free(k->in);
    free(k->out);
    free(k->groups);
    free(k);
    return NULL;
}

/* ---- the session and the process tree -------------------------------- */

static int broker_listen(struct broker *b)
{
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        return -EIO;
    snprintf(b->addr, sizeof b->addr, "ufuse-run-%d-%02x%02x%02x%02x%02x%02x%02x%02x",
             (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t alen = strlen(b->addr);
    memcpy(sa.sun_path + 1, b->addr, alen);
    b->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (b->lfd < 0)
        return -errno;
    if (bind(b->lfd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + alen)) != 0 ||
        listen(b->lfd, 128) != 0) {
        int e = -errno;
        close(b->lfd);
        return e;
    }
    return 0;
}

/* Accept connections until the session is to end. */
static void *acceptor_main(void *arg)
{
    struct broker *b = arg;
    while (!b->stop) {
        int fd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        /* Abstract sockets have no permissions: serve our own user, or any
         * user when we are root (a program of the tree that dropped its
         * ids; the server then sees and checks those ids). */
        struct ucred cr;
        socklen_t cl = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 ||
            (cr.uid != b->uid && cr.uid != 0 && b->uid != 0)) {
            close(fd);
            continue;
        }
        struct conn *k = calloc(1, sizeof *k);
        pthread_t t;
        pthread_attr_t at;
        if (!k || !(k->in = malloc(RUN_MAX_MSG)) || !(k->out = malloc(RUN_MAX_DATA))) {
            if (k) {
                free(k->in);
                free(k);
            }
            close(fd);
            continue;
        }
        k->b = b;
        k->fd = fd;
        k->pid = cr.pid;
        k->uid = cr.uid;
        k->gid = cr.gid;
        conn_peer_groups(k);
        pthread_mutex_lock(&b->mu);
        b->nconns++;
        pthread_mutex_unlock(&b->mu);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 << 10);
        if (pthread_create(&t, &at, conn_main, k) != 0) {
            pthread_mutex_lock(&b->mu);
            b->nconns--;
            pthread_mutex_unlock(&b->mu);
            close(fd);
            free(k->in);
            free(k->out);
            free(k->groups);
            free(k);
        }
        pthread_attr_destroy(&at);
    }
    return NULL;
}

/* The environment programs of the tree get: the preload library and the
 * mount table.  Returns 0 or -errno. */
static int broker_export(const struct broker *b, const char *preload)
{
    char *val;
    const char *old = getenv(RUN_ENV);
    if (asprintf(&val, "%s%s%s=%s", old ? old : "", old ? ":" : "", b->mnt, b->addr) < 0)
        return -ENOMEM;
    setenv(RUN_ENV, val, 1);
    free(val);
    const char *lp = getenv("LD_PRELOAD");
    if (!lp || !strstr(lp, preload)) {
        if (asprintf(&val, "%s%s%s", preload, lp && *lp ? ":" : "", lp ? lp : "") < 0)
            return -ENOMEM;
        setenv("LD_PRELOAD", val, 1);
        free(val);
    }
    return 0;
}

/* Where libufuse-preload.so is: $UFUSE_PRELOAD, beside this executable
 * (the build tree), or the installed helper directory. */
static char *find_preload(void)
{
    const char *env = getenv("UFUSE_PRELOAD");
    if (env && *env)
        return strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char *p;
            if (asprintf(&p, "%s/libufuse-preload.so", exe) >= 0) {
                if (access(p, R_OK) == 0)
                    return p;
                free(p);
            }
        }
    }
    char *p;
    if (asprintf(&p, "%s/libufuse-preload.so", UFUSE_RUN_PKGLIBDIR) < 0)
        return NULL;
    return p;
}

struct mountopt {
    const char *mnt;
    const char *server;
    const char *opts;
};

/*
 * Attach the server and listen.  @made_dir non-NULL: create the mount
 * point if we may, so that `ls` of its parent shows it (`run`, where every
 * program of the tree is served).  `mount` does not: the shell that evals
 * its output is not served itself, and its redirections would then land
 * in that directory instead of failing.
 */
static int broker_start(struct broker *b, const struct mountopt *m, bool *made_dir)
{
    memset(b, 0, sizeof *b);
    b->mnt = m->mnt;
    b->uid = geteuid();
    locks_init();
    pthread_mutex_init(&b->mu, NULL);
    pthread_rwlock_init(&b->life, NULL);
    char **sargv = NULL;
    int sargc = 0, r;
    if (m->server) {
        const char *err = split_words(m->server, &sargv, &sargc);
        if (err) {
            fprintf(stderr, "ufuse: -s: %s: %s\n", m->server, err);
            return -EINVAL;
        }
    }
    /* -o share: programs read cached pages and attributes themselves
     * (UFUSE_RUN_NOSHARE=1 turns it off, to compare); -o outside_links:
     * links lead out of the mount as on a kernel mount (left_mount). */
    const char *noshare = getenv("UFUSE_RUN_NOSHARE");
    char *opts = NULL;
    if (asprintf(&opts, "outside_links%s%s%s", noshare && *noshare == '1' ? "" : ",share",
                 m->opts ? "," : "", m->opts ? m->opts : "") < 0)
        opts = NULL;
    r = cli_mount(&b->s, sargc ? sargv : NULL, opts ? opts : m->opts);
    free(opts);
    words_free(sargv);
    if (r < 0)
        return r;
    broker_share_init(b);
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0 || (r = broker_listen(b)) < 0) {
        fprintf(stderr, "ufuse: run: cannot listen: %s\n", strerror(r < 0 ? -r : errno));
        (void)ufuse_unmount(b->s);
        return r < 0 ? r : -errno;
    }
    if (made_dir)
        *made_dir = mkdir(m->mnt, 0755) == 0;
    b->sv = supervise_start(b, m->mnt);
    return 0;
}

/*
 * End the session.  Under `run` every program has exited, so the reaper
 * has retired (or is retiring) every description; under `mount` programs
 * may still hold some: their handles are closed here and their later calls
 * get ENOTCONN.
 */
static int broker_stop(struct broker *b, bool made_dir)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&b->mu);
        unsigned left = b->ndesc;
        pthread_mutex_unlock(&b->mu);
        if (left == 0)
            break;
        usleep(1000);
    }
    pthread_rwlock_wrlock(&b->life);
    b->closed = true;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < DESC_BUCKETS; i++) {
        for (struct desc *d = b->by_id[i]; d; d = d->next_id) {
            if (d->f)
                (void)ufuse_close(d->f);
            if (d->d)
                (void)ufuse_closedir(d->d);
            d->f = NULL;
            d->d = NULL;
        }
    }
    pthread_mutex_unlock(&b->mu);
    int r = ufuse_unmount(b->s);
    b->s = NULL;
    pthread_rwlock_unlock(&b->life);
    /* b->closed keeps RUN_SUPERVISE away from here on, and the listener
     * threads' calls now end with ENOTCONN: stop them. */
    if (b->sv)
        supervise_stop(b->sv);
    b->sv = NULL;
    if (made_dir)
        (void)rmdir(b->mnt);
    close(b->lfd);
    return r;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: ufuse run [-s SERVER] [-o OPT,...] [-m PATH] -- CMD [ARG...]\n"
            "       ufuse mount -m PATH [-s SERVER] [-o OPT,...]\n"
            "       ufuse umount PATH\n"
            "Programs started by `run` (and, after `eval \"$(ufuse mount ...)\"`, by\n"
            "the shell) see the server's file system at PATH (default /ufuse).\n");
}

static int parse_mount_args(int argc, char **argv, struct mountopt *m, char **joined)
{
    int opt;
    optind = 1;
    m->mnt = "/ufuse";
    while ((opt = getopt(argc, argv, "+s:o:m:h")) != -1) {
        switch (opt) {
        case 's':
            m->server = optarg;
            break;
        case 'o': {
            char *j;
            if (asprintf(&j, "%s%s%s", *joined ? *joined : "", *joined ? "," : "", optarg) < 0)
                return -ENOMEM;
            free(*joined);
            *joined = j;
            m->opts = j;
            break;
        }
        case 'm':
            m->mnt = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -EINVAL;
        }
    }
    if (m->mnt[0] != '/' || strcmp(m->mnt, "/") == 0) {
        fprintf(stderr, "ufuse: -m %s: the mount path must be absolute and not /\n", m->mnt);
        return -EINVAL;
    }
    return 0;
}

static void start_threads(struct broker *b, pthread_t *acc, pthread_t *rea)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_create(acc, NULL, acceptor_main, b);
    pthread_create(rea, NULL, reaper_main, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void join_threads(struct broker *b, pthread_t acc, pthread_t rea)
{
    b->stop = 1;
    (void)shutdown(b->lfd, SHUT_RDWR);
    pthread_join(acc, NULL);
    /* Wake the reaper with a NULL event and let it return. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) == 0) {
        static enum watch_kind stop = WATCH_STOP;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &stop };
        (void)write(pfd[1], "x", 1);
        (void)epoll_ctl(b->epfd, EPOLL_CTL_ADD, pfd[0], &ev);
    }
    pthread_join(rea, NULL);
    close(pfd[0]);
    close(pfd[1]);
}

/*
 * The tree keeper: a child of the broker that runs CMD and, as a child
 * subreaper, inherits every descendant that daemonizes; so "the tree has
 * exited" is "wait() finds no child left".  (The broker itself cannot be
 * the subreaper: the FUSE server is its child too.)  Returns CMD's status.
 */
static int keep_tree(char **cmdv)
{
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t cmd = fork();
    if (cmd == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        /* Through a preloaded shell's exec, as every later exec of the
         * tree goes: a statically linked CMD is then put under the seccomp
         * filter too (preload_exec.c). */
        size_t n = 0;
        while (cmdv[n])
            n++;
        char **shv = calloc(n + 5, sizeof *shv);
        if (shv) {
            shv[0] = "sh";
            shv[1] = "-c";
            shv[2] = "exec \"$@\"";
            shv[3] = "ufuse run";
            memcpy(shv + 4, cmdv, (n + 1) * sizeof *shv);
            execv("/bin/sh", shv);
        }
        execvp(cmdv[0], cmdv);
        fprintf(stderr, "ufuse: run: %s: %s\n", cmdv[0], strerror(errno));
        _exit(127);
    }
    int status = 127;
    for (;;) {
        int st;
        pid_t p = wait(&st);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p == cmd)
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return status;
}

static int cmd_run(int argc, char **argv)
{
    struct mountopt m = { 0 };
    char *joined = NULL;
    if (parse_mount_args(argc, argv, &m, &joined) < 0 || optind >= argc) {
        usage(stderr);
        free(joined);
        return 2;
    }
    char *preload = find_preload();
    struct broker b;
    bool made_dir = false;
    if (!preload || broker_start(&b, &m, &made_dir) < 0) {
        free(preload);
        free(joined);
        return 1;
    }
    broker_export(&b, preload);
    signal(SIGPIPE, SIG_IGN);
    pthread_t acc, rea;
    start_threads(&b, &acc, &rea);
    int status = 127;
    pid_t keeper = fork();
    if (keeper == 0)
        _exit(keep_tree(argv + optind));
    /* Ctrl-C and friends go to the programs (the terminal's process group);
     * the broker waits for them to exit. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int st;
    while (keeper > 0 && waitpid(keeper, &st, 0) < 0 && errno == EINTR)
        ;
    if (keeper > 0)
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    join_threads(&b, acc, rea);
    int r = broker_stop(&b, made_dir);
    if (r < 0) {
        fprintf(stderr, "ufuse: unmount: %s\n", strerror(-r));
        if (status == 0)
            status = 1;
    }
    free(preload);
    free(joined);
    return status;
}

static int cmd_mount(int argc, char **argv)
{
    struct mountopt m = { 0 };
    char *joined = NULL;
    if (parse_mount_args(argc, argv, &m, &joined) < 0 || optind != argc) {
        usage(stderr);
        free(joined);
        return 2;
    }
    char *preload = find_preload();
    int ready[2];
    if (!preload || pipe2(ready, O_CLOEXEC) != 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid > 0) {
        /* Print what the broker sends once it is serving; nothing means it
         * failed (and said why on stderr). */
        close(ready[1]);
        char line[4 * PATH_MAX];
        size_t used = 0;
        ssize_t n;
        while (used < sizeof line - 1 && (n = read(ready[0], line + used, sizeof line - 1 - used)) > 0)
            used += (size_t)n;
        if (used == 0)
            return 1;
        fwrite(line, 1, used, stdout);
        return 0;
    }
    close(ready[0]);
    setsid();
    if (chdir("/") != 0)
        _exit(1);
    /* Off the caller's stdin and stdout (and so is the server we start),
     * so that $(ufuse mount ...) sees EOF once the lines below are sent.
     * stderr stays: messages of the session go there, or to log=. */
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        if (nul > 1)
            close(nul);
    }
    struct broker b;
    if (broker_start(&b, &m, NULL) < 0)
        _exit(1);
    broker_export(&b, preload);
    signal(SIGPIPE, SIG_IGN);
    dprintf(ready[1], "export LD_PRELOAD='%s'\nexport %s='%s'\n", getenv("LD_PRELOAD"), RUN_ENV,
            getenv(RUN_ENV));
    close(ready[1]);
    pthread_t rea;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_create(&rea, NULL, reaper_main, &b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    acceptor_main(&b);            /* until RUN_UMOUNT */
    /* Programs may still hold descriptions: they are released at unmount. */
    int r = broker_stop(&b, false);
    _exit(r < 0 ? 1 : 0);
}

/*
 * For `eval "$(ufuse umount PATH)"`: shell lines that take PATH out of
 * $UFUSE_RUN (and the preload library out of LD_PRELOAD when no mount is
 * left), so the shell's later programs see the real file system there.
 */
static void print_unmounted_env(const char *tab, const char *gone)
{
    char rest[4096] = "";
    size_t used = 0;
    for (const char *p = tab; p && *p;) {
        const char *end = strchrnul(p, ':');
        const char *eq = memchr(p, '=', (size_t)(end - p));
        bool drop = eq && (size_t)(eq - p) == strlen(gone) && strncmp(p, gone, (size_t)(eq - p)) == 0;
        if (!drop && used + (size_t)(end - p) + 2 < sizeof rest) {
            used += (size_t)snprintf(rest + used, sizeof rest - used, "%s%.*s", used ? ":" : "",
                                     (int)(end - p), p);
        }
        p = *end ? end + 1 : end;
    }
    if (used) {
        printf("export %s='%s'\n", RUN_ENV, rest);
        return;
    }
    printf("unset %s\n", RUN_ENV);
    /* LD_PRELOAD without our library (the rest of it kept). */
    const char *lp = getenv("LD_PRELOAD");
    char keep[4096] = "";
    size_t k = 0;
    for (const char *p = lp; p && *p;) {
        size_t n = strcspn(p, ": ");
        bool ours = n >= 19 && memcmp(p + n - 19, "libufuse-preload.so", 19) == 0;
        if (!ours && n && k + n + 2 < sizeof keep)
            k += (size_t)snprintf(keep + k, sizeof keep - k, "%s%.*s", k ? ":" : "", (int)n, p);
        p += n;
        if (*p)
            p++;
    }
    if (k)
        printf("export LD_PRELOAD='%s'\n", keep);
    else
        printf("unset LD_PRELOAD\n");
}

static int cmd_umount(int argc, char **argv)
{
    if (argc != 2) {
        usage(stderr);
        return 2;
    }
    const char *want = argv[1];
    const char *tab = getenv(RUN_ENV);
    char addr[64] = "";
    for (const char *p = tab; p && *p;) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ':');
        if (!end)
            end = p + strlen(p);
        if (eq && eq < end && (size_t)(eq - p) == strlen(want) && strncmp(p, want, (size_t)(eq - p)) == 0 &&
            (size_t)(end - eq - 1) < sizeof addr) {
            memcpy(addr, eq + 1, (size_t)(end - eq - 1));
            addr[end - eq - 1] = '\0';
        }
        p = *end ? end + 1 : end;
    }
    if (!addr[0]) {
        fprintf(stderr, "ufuse: umount: %s: not mounted here (no entry in $%s)\n", want, RUN_ENV);
        return 1;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path + 1, addr, strlen(addr));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr))) != 0) {
        fprintf(stderr, "ufuse: umount: %s: %s\n", want, strerror(errno));
        return 1;
    }
    struct run_req q = { .op = RUN_UMOUNT };
    struct run_rep rep;
    if (send(fd, &q, sizeof q, 0) != sizeof q || recv(fd, &rep, sizeof rep, 0) != sizeof rep) {
        fprintf(stderr, "ufuse: umount: %s: the broker did not answer\n", want);
        return 1;
    }
    /* The connection closes when the broker has unmounted and exited. */
    while (recv(fd, &rep, sizeof rep, 0) > 0)
        ;
    close(fd);
    print_unmounted_env(tab, want);
    return 0;
}

int run_main(int argc, char **argv)
{
    if (strcmp(argv[0], "run") == 0)
        return cmd_run(argc, argv);
    if (strcmp(argv[0], "mount") == 0)
        return cmd_mount(argc, argv);
    return cmd_umount(argc, argv);
}
