/*
 * chan.c - the socket to the server, and the server process itself.
 *
 * A session owns one socketpair(AF_UNIX, SOCK_SEQPACKET): one request per
 * datagram, one reply per datagram, boundaries kept even when libfuse
 * reads with splice.  The server gets the other end:
 *  - devfd: libfuse >= 3.3 and go-fuse take the mountpoint "/dev/fd/N" and
 *    use fd N as their /dev/fuse (libfuse only checks fcntl(N, F_GETFD)).
 *  - hook:  libfuse 2 has no such path; it opens /dev/fuse and mounts
 *    itself (or runs fusermount).  We preload libufuse-fusehook.so into it,
 *    which turns that open into our fd and that mount into a no-op (see
 *    fusehook.c for why LD_PRELOAD and not seccomp), and pass an empty
 *    private directory as the mountpoint, since libfuse 2 and its servers
 *    check that the mountpoint is a directory.
 * auto picks hook when the server's executable needs libfuse.so.2
 * (DT_NEEDED, read with libelf).
 *
 * Locks: none.  A struct chan is set up before any other thread sees it;
 * afterwards chan_send and chan_recv may run concurrently from any threads
 * (one datagram per system call is atomic on SEQPACKET), and chan_close
 * runs alone at unmount.
 *
 * Invariants:
 *  1. c->fd is our end, close-on-exec, until chan_close.
 *  2. c->max_send is below the sending socket's SO_SNDBUF limit, so a
 *     datagram we accept to send is never refused for size by the kernel.
 *  3. c->pid != 0 implies the server has not been reaped yet.
 */
#include "chan/chan.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Socket buffer we ask for: large enough for 1 MiB READ replies. */
#define CHAN_SOCKBUF (8u << 20)
/* Bytes the kernel keeps for itself out of SO_SNDBUF for one datagram. */
#define CHAN_SKB_SLACK 512

static size_t chan_set_sndbuf(int fd)
{
    int want = (int)CHAN_SOCKBUF;
    /* SO_SNDBUFFORCE works for root (CAP_NET_ADMIN); else wmem_max caps it. */
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) != 0 || got < 65536)
        got = 65536;
    return (size_t)got - CHAN_SKB_SLACK;
}

static void chan_reset(struct chan *c)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->pidfd = -1;
}

int chan_attach_fd(struct chan *c, int fd)
{
    chan_reset(c);
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_SEQPACKET) {
        close(fd);
        return -ENOTSOCK;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    c->fd = fd;
    c->max_send = chan_set_sndbuf(fd);
    /* We cannot see the peer's SO_SNDBUF; assume the unprivileged default. */
    c->max_recv = 212992 - CHAN_SKB_SLACK;
    return 0;
}

/* @dir/@sub@name if readable: a new string, else NULL. */
static char *chan_try(const char *dir, const char *sub, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s%s", dir, sub, name);
    return access(path, R_OK) == 0 ? strdup(path) : NULL;
}

/* The directory of @file (a path), in @dir. */
static int chan_dirname(const char *file, char dir[PATH_MAX])
{
    const char *slash = strrchr(file, '/');
    if (!slash || slash - file >= PATH_MAX)
        return 0;
    snprintf(dir, PATH_MAX, "%.*s", (int)(slash - file), file);
    return 1;
}

/*
 * Look for @name beside our own code, so that a relocated or staged
 * install finds its own helpers: next to the object holding this function
 * (libufuse.so, or the program linking ufuse statically) and in its
 * ufuse/ subdirectory (where libdir/ufuse/ keeps the hook); next to
 * /proc/self/exe; then in @installdir, fixed at build time.
 */
static char *chan_find_near(const char *name, const char *installdir)
{
    char dir[PATH_MAX], exe[PATH_MAX];
    char *found = NULL;
    Dl_info info;
    if (dladdr((void *)chan_find_near, &info) && info.dli_fname &&
        chan_dirname(info.dli_fname, dir) &&
        ((found = chan_try(dir, "", name)) || (found = chan_try(dir, "ufuse/", name))))
        return found;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        if (chan_dirname(exe, dir) && (found = chan_try(dir, "", name)))
            return found;
    }
    return chan_try(installdir, "", name);
}

/* Resolve a command name through PATH, as execvp would. */
static char *chan_which(const char *cmd)
{
    if (strchr(cmd, '/'))
        return access(cmd, X_OK) == 0 ? strdup(cmd) : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char buf[PATH_MAX];
    while (*path) {
        const char *colon = strchrnul(path, ':');
        int dlen = (int)(colon - path);
        snprintf(buf, sizeof buf, "%.*s/%s", dlen ? dlen : 1, dlen ? path : ".", cmd);
        if (access(buf, X_OK) == 0)
            return strdup(buf);
        path = *colon ? colon + 1 : colon;
    }
    return NULL;
}

char *chan_find_helper(const char *name, int is_library)
{
    const char *env = getenv(is_library ? "UFUSE_FUSEHOOK" : "UFUSE_MEMFS");
    if (env && *env)
        return strdup(env);
    char *p = chan_find_near(name, is_library ? UFUSE_INSTALL_PKGLIBDIR
                                              : UFUSE_INSTALL_BINDIR);
    if (p || is_library)
        return p;
    return chan_which(name);
}

/* Does the ELF executable @path need libfuse.so.2? */
static int chan_needs_libfuse2(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int found = 0;
    if (elf_version(EV_CURRENT) != EV_NONE) {
        Elf *e = elf_begin(fd, ELF_C_READ, NULL);
        Elf_Scn *scn = NULL;
        while (e && !found && (scn = elf_nextscn(e, scn)) != NULL) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC)
                continue;
            Elf_Data *d = elf_getdata(scn, NULL);
            for (size_t i = 0; d && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
                GElf_Dyn dyn;
                if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag != DT_NEEDED)
                    continue;
                const char *lib = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
                if (lib && strcmp(lib, "libfuse.so.2") == 0)
                    found = 1;
            }
        }
        if (e)
            elf_end(e);
    }
    close(fd);
    return found;
}

/* environ with @n NAME=value strings from @set replacing or added. */
static char **chan_make_env(char *const set[], int n)
{
    size_t cnt = 0;
    while (environ[cnt])
        cnt++;
    char **env = calloc(cnt + (size_t)n + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < cnt; i++) {
        int replaced = 0;
        for (int j = 0; j < n; j++) {
            size_t nl = (size_t)(strchr(set[j], '=') - set[j]) + 1;
            if (strncmp(environ[i], set[j], nl) == 0)
                replaced = 1;
        }
        if (!replaced)
            env[k++] = environ[i];
    }
    for (int j = 0; j < n; j++)
        env[k++] = set[j];
    env[k] = NULL;
    return env;
}

int chan_spawn(struct chan *c, char *const argv[],
               const struct chan_spawn_opts *o)
{
    chan_reset(c);
    char *exe = NULL, *hook = NULL, *envbuf[3] = {0}, **env = NULL;
    char **args = NULL;
    char mountarg[PATH_MAX];
    int sv[2] = {-1, -1};
    int rc;
    int builtin = !argv || !argv[0];

    exe = builtin ? chan_find_helper("ufuse-memfs", 0) : chan_which(argv[0]);
    if (!exe) {
        rc = -ENOENT;
        goto out;
    }
    const char *base = strrchr(builtin ? exe : argv[0], '/');
    snprintf(c->name, sizeof c->name, "%s", base ? base + 1 : (builtin ? exe : argv[0]));

    enum chan_attach how = o->attach;
    if (how == CHAN_ATTACH_AUTO)
        how = chan_needs_libfuse2(exe) ? CHAN_ATTACH_HOOK : CHAN_ATTACH_DEVFD;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        rc = -errno;
        goto out;
    }
    c->fd = sv[0];
    c->max_send = chan_set_sndbuf(sv[0]);
    c->max_recv = chan_set_sndbuf(sv[1]);

    int nenv = 0;
    if (how == CHAN_ATTACH_HOOK) {
        hook = chan_find_helper("libufuse-fusehook.so", 1);
        if (!hook) {
            rc = -ENOENT;
            goto out;
        }
        const char *rt = getenv("XDG_RUNTIME_DIR");
        char tmpl[PATH_MAX];
        snprintf(tmpl, sizeof tmpl, "%s/ufuse-mnt-XXXXXX",
                 rt && *rt && access(rt, W_OK) == 0 ? rt : "/tmp");
        if (!mkdtemp(tmpl)) {
            rc = -errno;
            goto out;
        }
        c->mountdir = strdup(tmpl);
        snprintf(mountarg, sizeof mountarg, "%s", tmpl);
        const char *old = getenv("LD_PRELOAD");
        if (asprintf(&envbuf[0], "LD_PRELOAD=%s%s%s", hook, old && *old ? ":" : "",
                     old ? old : "") < 0 ||
            asprintf(&envbuf[1], "UFUSE_FUSE_FD=%d", sv[1]) < 0 ||
            asprintf(&envbuf[2], "UFUSE_MOUNTPOINT=%s", tmpl) < 0) {
            rc = -ENOMEM;
            goto out;
        }
        nenv = 3;
    } else {
        snprintf(mountarg, sizeof mountarg, "/dev/fd/%d", sv[1]);
    }
    env = chan_make_env(envbuf, nenv);

    /* argv: the user's, with "{}" replaced by the mountpoint, or it appended. */
    size_t argc = 0;
    while (!builtin && argv[argc])
        argc++;
    args = calloc(argc + 3, sizeof *args);
    if (!args || !env) {
        rc = -ENOMEM;
        goto out;
    }
    int placed = 0;
    args[0] = exe;
    for (size_t i = 1; i < argc; i++) {
        if (strcmp(argv[i], "{}") == 0 && !placed) {
            args[i] = mountarg;
            placed = 1;
        } else {
            args[i] = argv[i];
        }
    }
    if (!placed)
        args[argc ? argc : 1] = mountarg;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* dup2 onto itself clears FD_CLOEXEC: the server inherits its end. */
    posix_spawn_file_actions_adddup2(&fa, sv[1], sv[1]);
    if (o->log_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, o->log_fd, 2);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    /* Own process group: a ^C meant for the client must not kill the
     * server before the client has written back and unmounted. */
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int err = posix_spawn(&pid, exe, &fa, &at, args, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (err) {
        rc = -err;
        goto out;
    }
    c->pid = pid;
    c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    struct stat st;
    if (fstat(sv[1], &st) == 0)
        c->srv_ino = st.st_ino;
    rc = 0;
out:
    if (sv[1] >= 0)
        close(sv[1]);
    if (rc != 0) {
        if (c->fd >= 0)
            close(c->fd);
        if (c->mountdir) {
            rmdir(c->mountdir);
            free(c->mountdir);
        }
        chan_reset(c);
    }
    for (int i = 0; i < 3; i++)
        free(envbuf[i]);
    free(env);
    free(args);
    free(exe);
    free(hook);
    return rc;
}

int chan_send(struct chan *c, const struct iovec *iov, int cnt)
{
    size_t len = iov_total(iov, cnt);
    if (len > c->max_send)
        return -EMSGSIZE;
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt};
    for (;;) {
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ||
            errno == EBADF)
            return -ENOTCONN;
        return -errno;
    }
}

ssize_t chan_recv(struct chan *c, struct iovec *iov, int cnt, int timeout_ms,
                  int wake_fd, int *truncated)
{
    *truncated = 0;
    for (;;) {
        if (timeout_ms >= 0 || wake_fd >= 0) {
            struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                                  {.fd = wake_fd, .events = POLLIN}};
            int r = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return -errno;
            if (r == 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
                return -EAGAIN;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t n = recvmsg(c->fd, &m, MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET || errno == ENOTCONN || errno == EBADF)
                return -ENOTCONN;
            return -errno;
        }
        if (n == 0) {
            /* EOF, or a zero-length datagram: only a hang-up is EOF. */
            struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
            if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP)))
                return 0;
            continue;
        }
        if ((size_t)n > iov_total(iov, cnt) || (m.msg_flags & MSG_TRUNC))
            *truncated = 1;
        return n;
    }
}

/* Wait up to @ms for the server to exit; its wait status, or -1. */
static int chan_wait_exit(struct chan *c, int ms)
{
    if (c->pidfd >= 0) {
        struct pollfd p = {.fd = c->pidfd, .events = POLLIN};
        while (poll(&p, 1, ms) < 0 && errno == EINTR)
            ;
    }
    int status;
    uint64_t deadline = ufuse_now_ns() + (uint64_t)ms * 1000000u;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid)
            return status;
        if (r < 0 && errno != EINTR)
            return 0; /* reaped elsewhere: nothing more to learn */
        if (ufuse_now_ns() >= deadline)
            return -1;
        usleep(2000);
    }
}

int chan_holders(ino_t ino, pid_t *pids, int max)
{
    char want[64], path[64], link[64];
    snprintf(want, sizeof want, "socket:[%llu]", (unsigned long long)ino);
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int n = 0;
    pid_t self = getpid();
    struct dirent *p;
    while (n < max && (p = readdir(proc)) != NULL) {
        pid_t pid = (pid_t)atoi(p->d_name);
        if (pid <= 0 || pid == self)
            continue;
        snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
        DIR *fds = opendir(path);
        if (!fds)
            continue;
        struct dirent *f;
        while ((f = readdir(fds)) != NULL) {
            char fdpath[64 + sizeof f->d_name];
            snprintf(fdpath, sizeof fdpath, "%s/%s", path, f->d_name);
            ssize_t l = readlink(fdpath, link, sizeof link - 1);
            if (l > 0) {
                link[l] = 0;
                if (strcmp(link, want) == 0) {
                    pids[n++] = pid;
                    break;
                }
            }
        }
        closedir(fds);
    }
    closedir(proc);
    return n;
}

/*
 * After the socket closed: wait until no process holds the server's end
 * (a daemonized server is not our child, so waitpid cannot see it), up to
 * @ms; then terminate the holders.  Returns 0 when they let go in time.
 */
static int chan_wait_holders(struct chan *c, int ms, struct ulog *lg)
{
    pid_t pids[16];
    uint64_t deadline = ufuse_now_ns() + (uint64_t)ms * 1000000u;
    int n;
    while ((n = chan_holders(c->srv_ino, pids, 16)) > 0 && ufuse_now_ns() < deadline)
        usleep(10000);
    if (n == 0)
        return 0;
    ulog_msg(lg, "server process %d still holds its socket after unmount; terminating it",
             (int)pids[0]);
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    deadline = ufuse_now_ns() + 1000000000ull;
    while ((n = chan_holders(c->srv_ino, pids, 16)) > 0 && ufuse_now_ns() < deadline)
        usleep(10000);
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    return -EIO;
}

int chan_close(struct chan *c, int timeout_ms, struct ulog *lg)
{
    int rc = 0;
    if (c->fd >= 0) {
        shutdown(c->fd, SHUT_RDWR);
        close(c->fd);
        c->fd = -1;
    }
    if (c->pid > 0) {
        int st = chan_wait_exit(c, timeout_ms);
        if (st < 0) {
            ulog_msg(lg, "server %d did not exit after the socket closed; terminating it",
                     (int)c->pid);
            kill(c->pid, SIGTERM);
            st = chan_wait_exit(c, 1000);
            if (st < 0) {
                kill(c->pid, SIGKILL);
                st = chan_wait_exit(c, 5000);
            }
            rc = -EIO;
        } else if (WIFEXITED(st)) {
            int code = WEXITSTATUS(st);
            /* libfuse: "short read on fuse device" -> exit 1 (or 8): normal. */
            if (code != 0 && code != 1 && code != 8) {
                ulog_msg(lg, "server exited with status %d", code);
                rc = -EIO;
            }
        } else if (WIFSIGNALED(st)) {
            ulog_msg(lg, "server killed by signal %d", WTERMSIG(st));
            rc = -EIO;
        }
        c->pid = 0;
        /* A server that daemonized lives on in a process we did not start. */
        if (c->srv_ino && chan_wait_holders(c, timeout_ms, lg) != 0)
            rc = -EIO;
    }
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
    if (c->mountdir) {
        rmdir(c->mountdir);
        free(c->mountdir);
        c->mountdir = NULL;
    }
    return rc;
}
