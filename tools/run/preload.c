/*
 * preload.c - libufuse-preload.so's core: the mount table (from
 * $UFUSE_RUN), the fd table, path classification, the virtual working
 * directory and the connections to the brokers.  preload.h states the
 * locks and invariants of the whole library; docs/run.md the design.
 *
 * Start-up: the mount table is read from the environment; fds this image
 * inherited through exec are found by scanning /proc/self/fd for pipes and
 * asking each broker which of them are its descriptions (RUN_HELLO).  A
 * working directory on a mount is inherited through $UFUSE_CWD, trusted
 * only when the real working directory is the deleted placeholder that
 * pl_set_cwd leaves the process in (so a program that left the mount by a
 * path we did not see is not pulled back into it).
 *
 * Fork: the child's connections are the parent's sockets; an atfork
 * handler drops them so the child connects on its own.  A child made
 * without atfork handlers (vfork, raw clone) is detected by its pid and
 * uses a connection for the one call, leaving the parent's alone.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "preload.h"
#include "runpath.h"

struct pl_mount pl_mounts[PL_MAX_MOUNTS];
int pl_nmounts;

static pthread_rwlock_t fd_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct pl_fd **fds;
static int nfds;

static pthread_mutex_t cwd_lock = PTHREAD_MUTEX_INITIALIZER;
static int cwd_mnt = -1;
static char cwd_rel[PATH_MAX];

static mode_t cur_umask;

/* Per-thread connections, valid in the process whose pid is conn_pid;
 * closed when the thread exits (conn_key's destructor). */
static __thread int conn_fd[PL_MAX_MOUNTS] = { -1, -1, -1, -1, -1, -1, -1, -1 };
static __thread pid_t conn_pid;
static __thread unsigned conn_gen;      /* cred_gen when connected */
static _Atomic unsigned cred_gen;       /* bumped when the process's ids change */
static pthread_key_t conn_key;

static void conn_thread_exit(void *unused)
{
    (void)unused;
    for (int m = 0; m < PL_MAX_MOUNTS; m++) {
        if (conn_fd[m] >= 0 && conn_pid == (pid_t)syscall(SYS_getpid))
            syscall(SYS_close, conn_fd[m]);
        conn_fd[m] = -1;
    }
}

void *pl_real(const char *name)
{
    void *p = pl_tramp_wrapper(name);
    if (p)
        return p;
    p = dlsym(RTLD_NEXT, name);
    if (!p) {
        static const char msg[] = "ufuse-preload: a libc function is missing\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    return p;
}

/* ---- fd table -------------------------------------------------------- */

bool pl_fd_get(int fd, struct pl_fd *out, char *path)
{
    bool ok = false;
    if (fd < 0)
        return false;
    pthread_rwlock_rdlock(&fd_lock);
    if (fd < nfds && fds[fd]) {
        *out = *fds[fd];
        out->path = NULL;
        if (path) {
            snprintf(path, PATH_MAX, "%s", fds[fd]->path);
            out->path = path;
        }
        ok = true;
    }
    pthread_rwlock_unlock(&fd_lock);
    return ok;
}

bool pl_is_mount_fd(int fd)
{
    struct pl_fd f;
    return pl_fd_get(fd, &f, NULL);
}

void pl_fd_set(int fd, const struct pl_fd *tmpl, const char *path)
{
    struct pl_fd *e = malloc(sizeof *e);
    char *p = strdup(path);
    if (!e || !p || fd < 0) {
        free(e);
        free(p);
        return;
    }
    *e = *tmpl;
    e->path = p;
    pthread_rwlock_wrlock(&fd_lock);
    if (fd >= nfds) {
        int n = nfds ? nfds : 64;
        while (n <= fd)
            n *= 2;
        struct pl_fd **g = realloc(fds, (size_t)n * sizeof *g);
        if (!g) {
            pthread_rwlock_unlock(&fd_lock);
            free(e);
            free(p);
            return;
        }
        memset(g + nfds, 0, (size_t)(n - nfds) * sizeof *g);
        fds = g;
        nfds = n;
    }
    struct pl_fd *old = fds[fd];
    fds[fd] = e;
    pthread_rwlock_unlock(&fd_lock);
    if (old) {
        free(old->path);
        free(old);
    }
}

void pl_fd_clear(int fd)
{
    struct pl_fd *old = NULL;
    pthread_rwlock_wrlock(&fd_lock);
    if (fd >= 0 && fd < nfds) {
        old = fds[fd];
        fds[fd] = NULL;
    }
    pthread_rwlock_unlock(&fd_lock);
    if (old) {
        free(old->path);
        free(old);
    }
}

/* ---- paths ------------------------------------------------------------ */

void pl_abs_path(int mnt, const char *rel, char *out)
{
    snprintf(out, PATH_MAX, "%s%s", pl_mounts[mnt].prefix, strcmp(rel, "/") == 0 ? "" : rel);
}

/* Which mount an absolute normalised path is on (its rel path into @out). */
static int mount_of(const char *abs, char *out)
{
    for (int i = 0; i < pl_nmounts; i++) {
        if (run_under(abs, pl_mounts[i].prefix, pl_mounts[i].len, out))
            return i;
    }
    return -1;
}

/* "/proc/self/fd/N" or "/dev/fd/N" naming a mount fd: that fd's file
 * (the kernel would reopen our identity pipe instead).  -1 if not. */
static int fd_alias(const char *path, char *out)
{
    const char *num = NULL;
    if (strncmp(path, "/proc/self/fd/", 14) == 0)
        num = path + 14;
    else if (strncmp(path, "/dev/fd/", 8) == 0)
        num = path + 8;
    if (!num || !*num)
        return -1;
    char *end;
    long fd = strtol(num, &end, 10);
    struct pl_fd f;
    if (*end || fd < 0 || fd > INT32_MAX || !pl_fd_get((int)fd, &f, out))
        return -1;
    return f.mnt;
}

int pl_classify(int dirfd, const char *path, int *mnt, char *out)
{
    char joined[2 * PATH_MAX + 2], norm[PATH_MAX];
    if (!path)
        return -EFAULT;
    if (pl_nmounts == 0)
        return 0;
    if (path[0] == '/' && (path[1] == 'p' || path[1] == 'd')) {
        int m = fd_alias(path, out);
        if (m >= 0) {
            *mnt = m;
            return 1;
        }
    }
    if (path[0] == '/') {
        snprintf(joined, sizeof joined, "%s", path);
    } else {
        char base[PATH_MAX];
        struct pl_fd f;
        int m;
        if (dirfd == AT_FDCWD) {
            char rel[PATH_MAX];
            m = pl_cwd(rel);
            if (m < 0)
                return 0;
            pl_abs_path(m, rel, base);
        } else if (pl_fd_get(dirfd, &f, base)) {
            if (!f.is_dir)
                return -ENOTDIR;
            char rel[PATH_MAX];
            snprintf(rel, sizeof rel, "%s", base);
            pl_abs_path(f.mnt, rel, base);
        } else {
            return 0;
        }
        if (path[0] == '\0')
            return -ENOENT;
        snprintf(joined, sizeof joined, "%s/%s", base, path);
    }
    if (strlen(joined) >= PATH_MAX)
        return -ENAMETOOLONG;
    int r = run_normalise(joined, norm);
    if (r < 0)
        return r;
    int m = mount_of(norm, out);
    if (m < 0) {
        /* A relative path that left the mount by "..": give the caller the
         * real absolute path. */
        if (path[0] != '/') {
            snprintf(out, PATH_MAX, "%s", norm);
            *mnt = -1;
            return 2;
        }
        return 0;
    }
    *mnt = m;
    return 1;
}

/* ---- working directory ----------------------------------------------- */

int pl_cwd(char *out)
{
    pthread_mutex_lock(&cwd_lock);
    int m = cwd_mnt;
    if (m >= 0 && out)
        snprintf(out, PATH_MAX, "%s", cwd_rel);
    pthread_mutex_unlock(&cwd_lock);
    return m;
}

/*
 * Enter directory @rel of mount @mnt (or leave the mounts, @mnt < 0).  The
 * real working directory becomes a fresh directory that is removed at
 * once: nothing can be created in it, so a relative path that reaches the
 * kernel without us fails instead of touching an unrelated directory.
 */
void pl_set_cwd(int mnt, const char *rel)
{
    char abs[PATH_MAX];
    pthread_mutex_lock(&cwd_lock);
    if (mnt >= 0) {
        if (cwd_mnt < 0) {
            char tmpl[] = "/tmp/.ufuse-cwd-XXXXXX";
            if (mkdtemp(tmpl) && pl_syscall(SYS_chdir, (long)tmpl, 0, 0) == 0)
                (void)pl_syscall(SYS_rmdir, (long)tmpl, 0, 0);
        }
        cwd_mnt = mnt;
        snprintf(cwd_rel, sizeof cwd_rel, "%s", rel);
        pl_abs_path(mnt, rel, abs);
        setenv(RUN_ENV_CWD, abs, 1);
    } else {
        cwd_mnt = -1;
        unsetenv(RUN_ENV_CWD);
    }
    pthread_mutex_unlock(&cwd_lock);
}

/* ---- the broker ------------------------------------------------------- */

/* Where a connection's fd goes: high, out of the way of the numbers
 * programs pick themselves (a shell's `exec 3>file` moves whatever holds
 * fd 3 and then writes to it), below the usual 1024 of select(). */
static int conn_fd_base(void)
{
    struct rlimit rl;
    if (syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl) != 0)
        return 0;
    return rl.rlim_cur >= 1024 ? 768 : (int)(rl.rlim_cur * 3 / 4);
}

static int connect_mount(int mnt)
{
    int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int base = conn_fd_base();
    /* (Not between a static program's filter and its exec, which lists
     * fcntl: that connection is closed by the exec anyway.) */
    if (fd < base && !pl_syscall_traps()) {
        int high = (int)pl_syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, base);
        if (high >= 0) {
            syscall(SYS_close, fd);
            fd = high;
        }
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t alen = strlen(pl_mounts[mnt].addr);
    memcpy(sa.sun_path + 1, pl_mounts[mnt].addr, alen);
    if (syscall(SYS_connect, fd, (struct sockaddr *)&sa,
                (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + alen)) != 0) {
        int e = errno;
        syscall(SYS_close, fd);
        return e == ECONNREFUSED || e == ENOENT ? -ENOTCONN : -e;
    }
    return fd;
}

/* The path the last RUN_LEFT_MOUNT answer of this thread named. */
static __thread char left_path[PATH_MAX];

static int64_t transact(int fd, struct pl_call *c, int pass_fd)
{
    struct iovec iov[4];
    int n = 0;
    iov[n++] = (struct iovec){ &c->q, sizeof c->q };
    if (c->path)
        iov[n++] = (struct iovec){ (void *)c->path, c->q.path_len };
    if (c->path2)
        iov[n++] = (struct iovec){ (void *)c->path2, c->q.path2_len };
    if (c->data_len)
        iov[n++] = (struct iovec){ (void *)c->data, c->data_len };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
    char pbuf[RUN_FD_SPACE];
    if (pass_fd >= 0)
        run_msg_pass_fd(&m, pbuf, pass_fd);
    ssize_t s;
    do
        s = sendmsg(fd, &m, MSG_NOSIGNAL);
    while (s < 0 && errno == EINTR);
    if (s < 0)
        return -ENOTCONN;
    struct run_rep rep;
    char cbuf[RUN_FD_SPACE];
    /* A RUN_LEFT_MOUNT path lands in c->out and what does not fit in
     * left_path, where it is put back together. */
    iov[0] = (struct iovec){ &rep, sizeof rep };
    iov[1] = (struct iovec){ c->out, c->out_cap };
    iov[2] = (struct iovec){ left_path, sizeof left_path };
    m = (struct msghdr){ .msg_iov = c->out_cap ? iov : (struct iovec[]){ iov[0], iov[2] },
                         .msg_iovlen = c->out_cap ? 3 : 2,
                         .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    do
        s = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    while (s < 0 && errno == EINTR);
    c->fd = -1;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
            memcpy(&c->fd, CMSG_DATA(h), sizeof(int));
    if (s < (ssize_t)sizeof rep || (m.msg_flags & MSG_TRUNC) ||
        (size_t)s - sizeof rep != rep.len) {
        if (c->fd >= 0)
            syscall(SYS_close, c->fd);
        c->fd = -1;
        return s <= 0 ? -ENOTCONN : -EIO;
    }
    c->rep_flags = rep.flags;
    if (rep.res == RUN_LEFT_MOUNT) {
        size_t head = rep.len < c->out_cap ? rep.len : c->out_cap;
        if (rep.len == 0 || rep.len > sizeof left_path)
            return -EIO;
        memmove(left_path + head, left_path, rep.len - head);
        memcpy(left_path, c->out, head);
        left_path[rep.len - 1] = 0;
        c->out_len = 0;
        return rep.res;
    }
    if (rep.len > c->out_cap)
        return -EIO; /* data past the caller's buffer */
    c->out_len = rep.len;
    return rep.res;
}

const char *pl_left_mount_path(void)
{
    return left_path;
}

static int64_t say_hello(int fd)
{
    struct pl_call c = { .q = { .op = RUN_HELLO } };
    return transact(fd, &c, -1);
}

int64_t pl_call(int mnt, struct pl_call *c)
{
    return pl_call_passing(mnt, c, -1);
}

/* This thread's connection to mount @mnt's broker, made (and greeted) if
 * it has none: the fd, or -errno.  *@borrowed: a vfork child's, of its
 * own, for one call (the caller closes it). */
static int conn_get(int mnt, bool *borrowed)
{
    pid_t me = (pid_t)syscall(SYS_getpid);
    *borrowed = conn_pid != 0 && conn_pid != me;  /* vfork child */
    unsigned gen = atomic_load(&cred_gen);
    if (!*borrowed && conn_fd[mnt] >= 0 && conn_gen != gen) {
        /* The ids changed since we connected: the broker reads them from
         * the connection, so make a new one. */
        syscall(SYS_close, conn_fd[mnt]);
        conn_fd[mnt] = -1;
    }
    int fd = *borrowed ? -1 : conn_fd[mnt];
    if (fd >= 0)
        return fd;
    fd = connect_mount(mnt);
    if (fd < 0)
        return fd;
    if (say_hello(fd) < 0) {
        syscall(SYS_close, fd);
        return -ENOTCONN;
    }
    if (!*borrowed) {
        conn_fd[mnt] = fd;
        conn_pid = me;
        conn_gen = gen;
        (void)pthread_setspecific(conn_key, (void *)1);
    }
    return fd;
}

int64_t pl_call_passing(int mnt, struct pl_call *c, int pass_fd)
{
    if (c->path)
        c->q.path_len = (uint16_t)(strlen(c->path) + 1);
    if (c->path2)
        c->q.path2_len = (uint16_t)(strlen(c->path2) + 1);
    c->q.umask = (uint32_t)cur_umask;
    c->out_len = 0;
    bool borrowed;
    int fd = conn_get(mnt, &borrowed);
    if (fd < 0)
        return fd;
    int64_t r = transact(fd, c, pass_fd);
    if (borrowed) {
        syscall(SYS_close, fd);
    } else if (r == -ENOTCONN) {
        syscall(SYS_close, fd);
        conn_fd[mnt] = -1;
    }
    return r;
}

int64_t pl_fd_call(const struct pl_fd *f, uint32_t op, struct pl_call *c)
{
    c->q.op = op;
    c->q.desc = f->desc;
    return pl_call(f->mnt, c);
}

int pl_open_at_mount(int mnt, const char *rel, int flags, mode_t mode, bool dir)
{
    struct run_open o;
    struct pl_call c = { .q = { .op = dir ? RUN_OPENDIR : RUN_OPEN, .flags = (uint32_t)flags,
                                .mode = (uint32_t)mode },
                         .path = rel, .out = &o, .out_cap = sizeof o };
    int64_t r = pl_call(mnt, &c);
    if (r < 0) {
        if (c.fd >= 0)
            syscall(SYS_close, c.fd);
        return (int)r;
    }
    if (c.fd < 0 || c.out_len != sizeof o)
        return -EIO;
    /* The fd came close-on-exec; keep it across exec unless asked. */
    if (!(flags & O_CLOEXEC))
        (void)fcntl(c.fd, F_SETFD, 0);
    pl_fd_set(c.fd, &(struct pl_fd){ .desc = o.desc, .mnt = mnt, .is_dir = o.is_dir,
                                     .flags = (int)o.flags, .fast = o.fast }, rel);
    return c.fd;
}

/* Set once this process may hold record locks; a forked child inherits
 * it (the flag, not the locks: conservative). */
static _Atomic bool record_locks;

void pl_note_record_locks(void)
{
    atomic_store_explicit(&record_locks, true, memory_order_relaxed);
}

bool pl_flush_needed(const struct pl_fd *f)
{
    if (atomic_load_explicit(&record_locks, memory_order_relaxed))
        return true;
    return !f->is_dir && (f->flags & O_ACCMODE) != O_RDONLY;
}

int pl_close_mount_fd(int fd)
{
    struct pl_fd f;
    int64_t r = 0;
    if (pl_fd_get(fd, &f, NULL)) {
        struct pl_call c = { 0 };
        if (pl_flush_needed(&f))
            r = pl_fd_call(&f, RUN_FLUSH, &c);
        pl_fd_clear(fd);
    }
    if (syscall(SYS_close, fd) != 0 && r == 0)
        r = -errno;
    return (int)r;
}

/* ---- start-up and fork ------------------------------------------------ */

static void parse_mounts(const char *tab)
{
    /* "PATH=ADDR[:PATH=ADDR...]" */
    for (const char *p = tab; p && *p && pl_nmounts < PL_MAX_MOUNTS;) {
        const char *end = strchrnul(p, ':');
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && eq > p && (size_t)(eq - p) < PATH_MAX &&
            (size_t)(end - eq - 1) < sizeof pl_mounts[0].addr) {
            struct pl_mount *m = &pl_mounts[pl_nmounts];
            char raw[PATH_MAX];
            memcpy(raw, p, (size_t)(eq - p));
            raw[eq - p] = '\0';
            if (raw[0] == '/' && run_normalise(raw, m->prefix) == 0 && strcmp(m->prefix, "/") != 0) {
                m->len = strlen(m->prefix);
                memcpy(m->addr, eq + 1, (size_t)(end - eq - 1));
                m->addr[end - eq - 1] = '\0';
                pl_nmounts++;
            }
        }
        p = *end ? end + 1 : end;
    }
}

/* Find the descriptions this image inherited (exec keeps fds).  The
 * directory is read with system call wrappers (REAL), not opendir, so that
 * under a seccomp filter start-up makes no call that traps. */
static void adopt_inherited(void)
{
    uint64_t inos[256];
    int fdnums[256], n = 0;
    int self = REAL(openat)(AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self < 0)
        return;
    union {
        char b[4096];
        struct dirent64 align;
    } ents;
    ssize_t got;
    while (n < 256 && (got = REAL(getdents64)(self, ents.b, sizeof ents.b)) > 0) {
        for (ssize_t off = 0; off < got && n < 256;) {
            const struct dirent64 *e = (const struct dirent64 *)(ents.b + off);
            off += e->d_reclen;
            int fd = atoi(e->d_name);
            struct stat st;
            if (e->d_name[0] == '.' || fd == self)
                continue;
            if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
                pl_syscall(SYS_fcntl, fd, F_GETPIPE_SZ, 0) == RUN_ID_PIPE_SIZE) {
                inos[n] = st.st_ino;
                fdnums[n++] = fd;
            }
        }
    }
    syscall(SYS_close, self);
    if (n == 0)
        return;
    static char buf[RUN_MAX_DATA];
    for (int m = 0; m < pl_nmounts; m++) {
        struct pl_call c = { .q = { .op = RUN_HELLO }, .data = inos,
                             .data_len = (size_t)n * sizeof inos[0], .out = buf,
                             .out_cap = sizeof buf };
        int64_t found = pl_call(m, &c);
        size_t off = 0;
        for (int64_t i = 0; i < found && off + sizeof(struct run_adopt) <= c.out_len; i++) {
            struct run_adopt a;
            memcpy(&a, buf + off, sizeof a);
            off += sizeof a;
            if (a.path_len == 0 || off + a.path_len > c.out_len || buf[off + a.path_len - 1])
                break;
            for (int j = 0; j < n; j++)
                if (inos[j] == a.ino)
                    pl_fd_set(fdnums[j], &(struct pl_fd){ .desc = a.desc, .mnt = m,
                                                         .is_dir = a.is_dir,
                                                         .flags = (int)a.flags,
                                                         .fast = a.fast },
                              buf + off);
            /* Record locks survive exec: those of the image before may be
             * held on any file this one inherited. */
            pl_note_record_locks();
            off += a.path_len;
        }
    }
}

static void inherit_cwd(void)
{
    const char *cwd = getenv(RUN_ENV_CWD);
    char link[PATH_MAX], rel[PATH_MAX], norm[PATH_MAX];
    if (!cwd || cwd[0] != '/')
        return;
    ssize_t n = readlink("/proc/self/cwd", link, sizeof link - 1);
    if (n <= 0)
        return;
    link[n] = '\0';
    /* The kernel's directory must be a placeholder of ours (deleted, or
     * about to be: posix_spawn's parent removes its own after the spawn). */
    if (!strstr(link, "/.ufuse-cwd-") || run_normalise(cwd, norm) != 0) {
        unsetenv(RUN_ENV_CWD);
        return;
    }
    int m = mount_of(norm, rel);
    if (m >= 0) {
        cwd_mnt = m;
        snprintf(cwd_rel, sizeof cwd_rel, "%s", rel);
    }
}

static void atfork_child(void)
{
    /* The parent's connections are not ours: forget them, unsent. */
    for (int m = 0; m < PL_MAX_MOUNTS; m++) {
        if (conn_fd[m] >= 0)
            syscall(SYS_close, conn_fd[m]);
        conn_fd[m] = -1;
    }
    conn_pid = 0;
}

/* The id-changing calls: connections made before carry the old ids. */
#define ID_CALL(name, params, args)                        \
    PL_EXPORT int name params                              \
    {                                                      \
        int rc_ = REAL(name) args;                         \
        if (rc_ == 0)                                      \
            atomic_fetch_add(&cred_gen, 1);                \
        return rc_;                                        \
    }
ID_CALL(setuid, (uid_t u), (u))
ID_CALL(seteuid, (uid_t u), (u))
ID_CALL(setreuid, (uid_t r, uid_t e), (r, e))
ID_CALL(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
ID_CALL(setgid, (gid_t g), (g))
ID_CALL(setegid, (gid_t g), (g))
ID_CALL(setregid, (gid_t r, gid_t e), (r, e))
ID_CALL(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
ID_CALL(setgroups, (size_t n, const gid_t *list), (n, list))
ID_CALL(initgroups, (const char *user, gid_t group), (user, group))

PL_EXPORT mode_t umask(mode_t mask)
{
    mode_t old = REAL(umask)(mask);
    cur_umask = mask & 0777;
    return old;
}

__attribute__((constructor)) static void pl_init(void)
{
    mode_t m = REAL(umask)(022);
    REAL(umask)(m);
    cur_umask = m;
    parse_mounts(getenv(RUN_ENV));
    if (pl_nmounts == 0)
        return;
    pthread_atfork(NULL, NULL, atfork_child);
    (void)pthread_key_create(&conn_key, conn_thread_exit);
    inherit_cwd();
    adopt_inherited();
    for (int fd = 0; fd <= 2; fd++)
        pl_std_sync(fd);
    pl_exec_init();
}
