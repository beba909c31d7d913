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
 * attach=auto (the default) finds the mode that works, by this rule:
 *  A1. An executable that needs libfuse.so.2 (DT_NEEDED, read with libelf)
 *      gets the hook: libfuse 2 cannot take /dev/fd/N.
 *  A2. Anything else gets devfd first: libfuse 3 programs and go-fuse take
 *      it, and it passes through launchers (env, nice, ip netns exec,
 *      sh -c) that the hook does not survive (its constructor strips it
 *      from the environment of the first program it is loaded into).
 *  A3. If that server ends before answering INIT -- it refused /dev/fd/N:
 *      mfsmount checks that its mountpoint is a directory, glusterfs has
 *      its own FUSE code that wants a directory and opens /dev/fuse itself
 *      -- the session layer spawns it once more with the hook (vfs_spawn,
 *      which logs the retry), after chan_discard has ended whatever the
 *      first attempt left running.  Not for Go programs (they open
 *      /dev/fuse with raw system calls) nor static ones (no LD_PRELOAD):
 *      the hook cannot serve them, and their first failure stands.
 *  The cost of A3: a server that fails before INIT for another reason
 *  (a bad option, an unreachable host) is started twice, and its error
 *  shows twice, the retry's log line between them.
 *
 * The server's stderr is a pipe.  A relay thread copies what comes out of
 * it to our stderr (or the log= file) for the server's whole life, so the
 * server never blocks on it, and until INIT completes it also keeps the
 * last bytes, so that a server that dies at start-up can be quoted in the
 * mount's error message.
 *
 * Locks: none.  A struct chan is set up before any other thread sees it;
 * afterwards chan_send and chan_recv may run concurrently from any threads
 * (one datagram per system call is atomic on SEQPACKET), and chan_close
 * runs alone at unmount.  The relay shares only its "keeping" flag (an
 * atomic) with other threads; its tail is read after it is joined.
 *
 * Invariants:
 *  1. c->fd is our end, close-on-exec, until chan_close.
 *  2. c->max_send is below the sending socket's SO_SNDBUF limit, so a
 *     datagram we accept to send is never refused for size by the kernel.
 *  3. c->pid != 0 implies the server has not been reaped yet.
 *  4. c->relay is non-NULL from a successful spawn to chan_close, which
 *     stops and joins it only after the server was reaped (so everything
 *     it wrote before exiting has been relayed and, if kept, is quoted).
 */
#include "chan/chan.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <dlfcn.h>
#include <sys/eventfd.h>
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
    c->wstatus = -1;
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

/* Is @path a file we can execute?  1, or 0 with the reason in *err. */
static int chan_executable(const char *path, int *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        *err = errno;
    else if (S_ISDIR(st.st_mode))
        *err = EISDIR;
    else if (access(path, X_OK) != 0)
        *err = errno;
    else
        return 1;
    return 0;
}

/*
 * Resolve a command name as execvp would: a name with a '/' is taken as it
 * is, a bare name is looked for in each PATH directory.  Returns the path
 * (caller frees), or NULL with -errno in *err and, if @why, the reason for
 * a message ("not found in PATH", "/bin/x is not executable").
 */
static char *chan_which(const char *cmd, int *err, char *why, size_t whysize)
{
    int e = ENOENT;
    char buf[PATH_MAX];
    if (strchr(cmd, '/')) {
        if (chan_executable(cmd, &e))
            return strdup(cmd);
        if (why)
            snprintf(why, whysize, "%s", e == ENOENT ? "no such file"
                                         : e == EISDIR ? "is a directory"
                                         : e == EACCES ? "not executable (permission denied)"
                                                       : strerror(e));
        *err = -e;
        return NULL;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    /* Like execvp, a match that cannot be run does not end the search,
     * but is what we report if nothing else is found. */
    int seen = 0;
    while (*path) {
        const char *colon = strchrnul(path, ':');
        int dlen = (int)(colon - path);
        snprintf(buf, sizeof buf, "%.*s/%s", dlen ? dlen : 1, dlen ? path : ".", cmd);
        int e1;
        if (chan_executable(buf, &e1))
            return strdup(buf);
        if (e1 != ENOENT && e1 != ENOTDIR && !seen) {
            seen = 1;
            e = e1;
            if (why)
                snprintf(why, whysize, "%s %s", buf, e1 == EISDIR ? "is a directory"
                                                     : e1 == EACCES ? "is not executable"
                                                                    : strerror(e1));
        }
        path = *colon ? colon + 1 : colon;
    }
    if (!seen && why)
        snprintf(why, whysize, "not found in PATH");
    *err = -e;
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
    int err;
    return chan_which(name, &err, NULL, 0);
}

/* What attach=auto needs to know about an executable (A1-A3). */
struct chan_exe {
    int libfuse2;       /* DT_NEEDED libfuse.so.2 */
    int no_preload;     /* Go, or static: LD_PRELOAD cannot hook it */
};

/* Read @path's ELF headers into @x (all zero when it is no ELF file,
 * e.g. a script). */
static void chan_probe(const char *path, struct chan_exe *x)
{
    memset(x, 0, sizeof *x);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    Elf *e = elf_version(EV_CURRENT) != EV_NONE ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    size_t nph = 0, shstr = 0;
    if (e && elf_kind(e) == ELF_K_ELF && elf_getphdrnum(e, &nph) == 0) {
        int interp = 0;
        for (size_t i = 0; i < nph; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP)
                interp = 1;
        }
        int go = 0;
        int have_names = elf_getshdrstrndx(e, &shstr) == 0;
        Elf_Scn *scn = NULL;
        while ((scn = elf_nextscn(e, scn)) != NULL) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh))
                continue;
            const char *sname = have_names ? elf_strptr(e, shstr, sh.sh_name) : NULL;
            if (sname && (strcmp(sname, ".go.buildinfo") == 0 ||
                          strcmp(sname, ".note.go.buildid") == 0))
                go = 1;
            if (sh.sh_type != SHT_DYNAMIC)
                continue;
            Elf_Data *d = elf_getdata(scn, NULL);
            for (size_t i = 0; d && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
                GElf_Dyn dyn;
                if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag != DT_NEEDED)
                    continue;
                const char *lib = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
                if (lib && strcmp(lib, "libfuse.so.2") == 0)
                    x->libfuse2 = 1;
            }
        }
        x->no_preload = go || !interp;
    }
    if (e)
        elf_end(e);
    close(fd);
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

/*
 * @fd moved above 0-2 if it is one of them (a caller that runs with its
 * stdio closed): an fd the server inherits must not be its stdin, stdout
 * or stderr, which the spawn sets.  Returns the fd to use.
 */
static int chan_above_stdio(int fd)
{
    if (fd > STDERR_FILENO)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (moved < 0)
        return fd;
    close(fd);
    return moved;
}

/* ---- the server's stderr ---------------------------------------------- */

#define CHAN_KEEP_BYTES 2048

struct chan_relay {
    pthread_t thread;
    int running;             /* thread started (to be joined) */
    int rfd;                 /* read end of the server's stderr pipe */
    int sink;                /* where its bytes go (our own dup), or -1: dropped */
    int stop_fd;             /* eventfd: chan_close asks for the end */
    atomic_int keeping;      /* 1 until chan_started() */
    size_t kept;             /* bytes in keep[]: relay thread only, until joined */
    char keep[CHAN_KEEP_BYTES]; /* the last bytes read while keeping */
};

/* Write all of @buf to @fd, waiting a bounded time when it is a full
 * non-blocking file.  Errors drop the rest: the server must never wait on
 * a broken sink. */
static void chan_write_all(int fd, const char *buf, size_t n)
{
    while (fd >= 0 && n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 1000) <= 0)
                return;
        } else if (!(w < 0 && errno == EINTR)) {
            return;
        }
    }
}

static void chan_relay_take(struct chan_relay *r, const char *buf, size_t n)
{
    chan_write_all(r->sink, buf, n);
    if (!atomic_load_explicit(&r->keeping, memory_order_relaxed))
        return;
    if (n >= CHAN_KEEP_BYTES) {
        memcpy(r->keep, buf + n - CHAN_KEEP_BYTES, CHAN_KEEP_BYTES);
        r->kept = CHAN_KEEP_BYTES;
        return;
    }
    if (r->kept + n > CHAN_KEEP_BYTES) {
        size_t drop = r->kept + n - CHAN_KEEP_BYTES;
        memmove(r->keep, r->keep + drop, r->kept - drop);
        r->kept -= drop;
    }
    memcpy(r->keep + r->kept, buf, n);
    r->kept += n;
}

/* Relay until every writer has closed the pipe, or until asked to stop;
 * then what the pipe already holds is relayed first. */
static void *chan_relay_main(void *arg)
{
    struct chan_relay *r = arg;
    char buf[4096];
    int stopping = 0;
    for (;;) {
        if (!stopping) {
            struct pollfd p[2] = {{.fd = r->rfd, .events = POLLIN},
                                  {.fd = r->stop_fd, .events = POLLIN}};
            if (poll(p, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                stopping = 1;
                (void)fcntl(r->rfd, F_SETFL, O_NONBLOCK);
            }
        }
        ssize_t n = read(r->rfd, buf, sizeof buf);
        if (n > 0)
            chan_relay_take(r, buf, (size_t)n);
        else if (n == 0 || errno != EINTR)
            break;
    }
    return NULL;
}

/*
 * Into @out (size @n, @n > 2): the last @max non-empty lines of @buf
 * (@len bytes), each '\n'-terminated, control characters shown as '?'; if
 * they do not fit, their end.
 */
static void chan_last_lines(const char *buf, size_t len, int max, char *out, size_t n)
{
    size_t start = len, i = len;
    for (int lines = 0; lines < max; lines++) {
        while (i > 0 && buf[i - 1] == '\n')
            i--;
        if (i == 0)
            break;
        while (i > 0 && buf[i - 1] != '\n')
            i--;
        start = i;
    }
    if (len - start > n - 2)
        start = len - (n - 2);
    size_t o = 0;
    for (i = start; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n' && (o == 0 || out[o - 1] == '\n'))
            continue;
        out[o++] = ch == '\n' || ch == '\t' || ch >= 0x20 ? (char)ch : '?';
    }
    if (o > 0 && out[o - 1] != '\n')
        out[o++] = '\n';
    out[o] = 0;
}

/* Stop and join the relay (after the server was reaped), keep the last
 * lines it kept in c->last_lines, free it. */
static void chan_relay_end(struct chan *c)
{
    struct chan_relay *r = c->relay;
    if (!r)
        return;
    c->relay = NULL;
    if (r->running) {
        uint64_t one = 1;
        ssize_t w = write(r->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(r->thread, NULL);
    }
    c->last_lines[0] = 0;
    if (atomic_load(&r->keeping))
        chan_last_lines(r->keep, r->kept, CHAN_LAST_LINES, c->last_lines,
                        sizeof c->last_lines);
    if (r->rfd >= 0)
        close(r->rfd);
    if (r->stop_fd >= 0)
        close(r->stop_fd);
    if (r->sink >= 0)
        close(r->sink);
    free(r);
}

/* A pipe for the server's stderr and the thread relaying it to @sink_fd
 * (-1: our stderr).  0, or -errno; *@wfd is then the server's end. */
static int chan_relay_start(struct chan *c, int sink_fd, int *wfd)
{
    struct chan_relay *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    c->relay = r;
    atomic_init(&r->keeping, 1);
    /* Our own sink: the caller may close or move its stderr (or the log
     * file) while the server runs.  Without one, the bytes are dropped. */
    r->sink = fcntl(sink_fd >= 0 ? sink_fd : STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        r->rfd = r->stop_fd = -1;
        return -errno;
    }
    r->rfd = p[0];
    *wfd = chan_above_stdio(p[1]);
    r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->stop_fd < 0)
        return -errno;
    /* No signals in this thread: a broken sink gives it EPIPE (the pending
     * SIGPIPE goes with the thread), and the caller's signals go to the
     * caller's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&r->thread, NULL, chan_relay_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return -err;
    r->running = 1;
    return 0;
}

void chan_started(struct chan *c)
{
    if (c->relay)
        atomic_store(&c->relay->keeping, 0);
}

int chan_spawn(struct chan *c, char *const argv[],
               const struct chan_spawn_opts *o, char *msg, size_t msgsize)
{
    chan_reset(c);
    char *exe = NULL, *hook = NULL, *envbuf[3] = {0}, **env = NULL;
    char **args = NULL;
    char mountarg[PATH_MAX];
    int sv[2] = {-1, -1}, errfd = -1;
    int rc;
    int builtin = !argv || !argv[0];
    char why[PATH_MAX + 64] = "";  /* why it could not be started, if known */

    if (builtin) {
        exe = chan_find_helper("ufuse-memfs", 0);
        rc = -ENOENT;
        if (!exe)
            snprintf(why, sizeof why, "not found beside this program, in %s or in PATH "
                     "(UFUSE_MEMFS may name it)", UFUSE_INSTALL_BINDIR);
    } else {
        exe = chan_which(argv[0], &rc, why, sizeof why);
    }
    if (!exe)
        goto out;
    const char *base = strrchr(builtin ? exe : argv[0], '/');
    snprintf(c->name, sizeof c->name, "%s", base ? base + 1 : (builtin ? exe : argv[0]));

    enum chan_attach how = o->attach;
    if (how == CHAN_ATTACH_AUTO) {
        struct chan_exe x;
        chan_probe(exe, &x);
        how = x.libfuse2 ? CHAN_ATTACH_HOOK : CHAN_ATTACH_DEVFD;   /* A1, A2 */
        c->hook_fallback = !x.libfuse2 && !x.no_preload;          /* A3 */
    }
    c->attach = how;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        rc = -errno;
        goto out;
    }
    sv[1] = chan_above_stdio(sv[1]);
    c->fd = sv[0];
    c->max_send = chan_set_sndbuf(sv[0]);
    c->max_recv = chan_set_sndbuf(sv[1]);

    int nenv = 0;
    if (how == CHAN_ATTACH_HOOK) {
        hook = chan_find_helper("libufuse-fusehook.so", 1);
        if (!hook) {
            rc = -ENOENT;
            snprintf(why, sizeof why, "attach=hook needs libufuse-fusehook.so, not found "
                     "beside this program or in %s (UFUSE_FUSEHOOK may name it)",
                     UFUSE_INSTALL_PKGLIBDIR);
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

    rc = chan_relay_start(c, o->log_fd, &errfd);
    if (rc)
        goto out;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* dup2 onto itself clears FD_CLOEXEC: the server inherits its end. */
    posix_spawn_file_actions_adddup2(&fa, sv[1], sv[1]);
    posix_spawn_file_actions_adddup2(&fa, errfd, 2);
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
        /* ENOENT for a file that exists: its #! interpreter or ELF loader. */
        snprintf(why, sizeof why, "exec failed: %s%s", strerror(err),
                 err == ENOENT ? " (a missing #! interpreter or ELF loader?)" : "");
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
    if (errfd >= 0)
        close(errfd);
    if (rc != 0) {
        if (msg && msgsize)
            snprintf(msg, msgsize, "cannot start server '%s': %s",
                     builtin ? "ufuse-memfs" : argv[0], why[0] ? why : strerror(-rc));
        chan_relay_end(c);
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

/* recvmsg of one datagram into @iov; sets *@truncated when it did not fit. */
static ssize_t chan_recvmsg(struct chan *c, struct iovec *iov, int cnt, int flags,
                            int *truncated)
{
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    ssize_t n = recvmsg(c->fd, &m, MSG_TRUNC | flags);
    if (n > 0 && ((size_t)n > iov_total(iov, cnt) || (m.msg_flags & MSG_TRUNC)))
        *truncated = 1;
    return n;
}

ssize_t chan_recv_spin(struct chan *c, struct iovec *iov, int cnt, uint64_t spin_ns,
                       int *truncated)
{
    *truncated = 0;
    uint64_t until = ufuse_now_ns() + spin_ns;
    do {
        ssize_t n = chan_recvmsg(c, iov, cnt, MSG_DONTWAIT, truncated);
        if (n > 0)
            return n;
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            break; /* EOF, a zero-length datagram or an error: chan_recv says which */
    } while (ufuse_now_ns() < until);
    return -EAGAIN;
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
        ssize_t n = chan_recvmsg(c, iov, cnt, 0, truncated);
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
    ulog_msg(lg, "server process %d still holds its socket after it closed; terminating it",
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

/* Close our end (the server sees EOF). */
static void chan_shut(struct chan *c)
{
    if (c->fd >= 0) {
        shutdown(c->fd, SHUT_RDWR);
        close(c->fd);
        c->fd = -1;
    }
}

/* The rest of a close: the stderr relay, the pidfd and the hook's directory. */
static void chan_release(struct chan *c)
{
    chan_relay_end(c);
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
    if (c->mountdir) {
        rmdir(c->mountdir);
        free(c->mountdir);
        c->mountdir = NULL;
    }
}

int chan_close(struct chan *c, int timeout_ms, int clean, struct ulog *lg)
{
    int rc = 0;
    chan_shut(c);
    if (c->pid > 0) {
        int st = chan_wait_exit(c, timeout_ms);
        c->wstatus = st;
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
            /* After a clean end any status is how the server says "the
             * device went away" (libfuse 1 or 8, glusterfs 15). */
            int code = WEXITSTATUS(st);
            if (code != 0 && !clean) {
                ulog_msg(lg, "server exited with status %d while requests were "
                         "unanswered", code);
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
    chan_release(c);
    return rc;
}

void chan_discard(struct chan *c, int timeout_ms, struct ulog *lg)
{
    chan_shut(c);
    c->wstatus = -1;
    if (c->pid > 0) {
        /* Wait for the exit without reaping: while the server is unreaped
         * its pid, and so its process group id, cannot be reused. */
        siginfo_t si;
        uint64_t deadline = ufuse_now_ns() + (uint64_t)timeout_ms * 1000000u;
        for (;;) {
            memset(&si, 0, sizeof si);
            if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
                si.si_pid == c->pid || ufuse_now_ns() >= deadline)
                break;
            usleep(2000);
        }
        /* How it ended by itself, for the caller's message (chan_describe_end). */
        if (si.si_pid == c->pid)
            c->wstatus = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8
                                                  : (si.si_status & 0x7f);
        kill(-c->pid, SIGTERM); /* its group: the server is its leader */
        if (chan_wait_exit(c, 1000) < 0) {
            kill(-c->pid, SIGKILL);
            (void)chan_wait_exit(c, 5000);
        }
        c->pid = 0;
        if (c->srv_ino)
            (void)chan_wait_holders(c, 1000, lg);
    }
    chan_release(c);
}

void chan_describe_end(const struct chan *c, char *buf, size_t n)
{
    int st = c->wstatus;
    if (st >= 0 && WIFEXITED(st))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
    else if (st >= 0 && WIFSIGNALED(st))
        snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(buf, n, "closed its socket");
}
