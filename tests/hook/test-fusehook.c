/*
 * test-fusehook.c - libufuse-fusehook.so on its own, without the ufuse
 * client: libc, <linux/fuse.h> and cmocka only.
 *
 * Part A (hook-probe): a small program is run with the hook preloaded and
 * reports what it sees: the environment the constructor left, every route
 * to open("/dev/fuse"), mount/umount of the mountpoint and of other
 * targets, and what happens once the socket is closed.  Also with the hook
 * inert (no UFUSE_FUSE_FD) and with a bad UFUSE_FUSE_FD.
 *
 * Part B (bindfs, an unmodified libfuse-2.9 server): bindfs SRC MNT -f is
 * started with the hook, the socket and the contract's environment, as
 * root and as uid/gid 65534, and the test speaks the raw protocol to it:
 * INIT, LOOKUP, GETATTR, OPEN, READ (compared with the source file),
 * RELEASE; then it closes the socket and reaps bindfs.
 *
 * How "fusermount never ran" is made checkable: when root, every bindfs
 * runs in a private mount namespace where /bin/fusermount's real file is
 * covered by a script that records its arguments in a marker file and
 * fails, and /dev/fuse is covered by an ordinary 0666 file.  The control
 * test runs bindfs as 65534 WITHOUT the hook and requires that the attach
 * fails and that the marker shows fusermount was run: the same check on the
 * hooked runs would fail if the hook were missing or broken.  Nothing is
 * ever mounted for real (the hooked runs are also checked through
 * /proc/PID/mountinfo).
 *
 * State: one fixture (a temporary tree) shared by the tests of the group,
 * created in the group setup and removed in its teardown.  No threads, no
 * locks.  Waits are bounded generously (a dead or stuck server fails the
 * test with a message, never hangs it); nothing asserts on timing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/fuse.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define NOBODY 65534
#define REPLY_WAIT_MS 30000     /* a reply or EOF within this, or fail */
#define EXIT_WAIT_MS 30000      /* server exit after EOF within this */
#define DATA_SIZE (100 * 1024 + 3)
#define READ_CHUNK 32768

/* ------------------------------------------------------------------ */
/* Fixture                                                             */

struct fixture {
    char base[PATH_MAX];        /* /tmp/ufuse-hook-XXXXXX, 0755 */
    char src[PATH_MAX];         /* bindfs source, files below */
    char mnt[PATH_MAX];         /* the empty mountpoint */
    char other[PATH_MAX];       /* an unrelated directory */
    char fakebin[PATH_MAX];     /* holds the fake fusermount, put in PATH */
    char fakefm[PATH_MAX];      /* fake fusermount script */
    char fakedev[PATH_MAX];     /* plain 0666 file shown as /dev/fuse */
    char marker[PATH_MAX];      /* written by the fake fusermount */
    char hook[PATH_MAX];        /* libufuse-fusehook.so */
    char probe[PATH_MAX];       /* hook-probe */
    char bindfs[PATH_MAX];      /* bindfs in PATH, or "" */
    char realfm[PATH_MAX];      /* realpath of /bin/fusermount, or "" */
    int root;                   /* running as root: namespaces, setuid */
    unsigned char *data;        /* contents of src/data.bin */
};

static const char hello_txt[] = "hello, ufuse\n";

static void pathcat(char *dst, const char *a, const char *b)
{
    int n = snprintf(dst, PATH_MAX, "%s/%s", a, b);
    assert_true(n > 0 && n < PATH_MAX);
}

static void write_file(const char *path, const void *buf, size_t n,
                       mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);     /* despite the umask */
}

/* Copy @from to @to (small files: the hook and the probe). */
static void copy_file(const char *from, const char *to, mode_t mode)
{
    int fd = open(from, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
    close(fd);
    write_file(to, buf, (size_t)st.st_size, mode);
    free(buf);
}

static int find_in_path(const char *name, char *out)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = strdup(path), *save = NULL;
    int found = 0;
    for (char *d = strtok_r(copy, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(out, PATH_MAX, "%s/%s", *d ? d : ".", name);
        found = access(out, X_OK) == 0;
    }
    free(copy);
    if (!found)
        out[0] = '\0';
    return found;
}

static int group_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->root = geteuid() == 0;

    const char *bd = getenv("UFUSE_BUILD_DIR");
    char exe[PATH_MAX];
    if (!bd) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        assert_true(n > 0);
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        bd = exe;
    }
    pathcat(fx->hook, bd, "libufuse-fusehook.so");
    pathcat(fx->probe, bd, "hook-probe");
    if (access(fx->hook, R_OK) != 0 || access(fx->probe, X_OK) != 0) {
        fprintf(stderr, "test-fusehook: %s or %s is missing (build the "
                "ufuse-fusehook and hook-probe targets)\n", fx->hook,
                fx->probe);
        free(fx);
        return -1;
    }
    find_in_path("bindfs", fx->bindfs);
    if (!realpath("/bin/fusermount", fx->realfm))
        fx->realfm[0] = '\0';

    strcpy(fx->base, "/tmp/ufuse-hook-XXXXXX");
    assert_non_null(mkdtemp(fx->base));
    assert_int_equal(chmod(fx->base, 0755), 0);
    pathcat(fx->src, fx->base, "src");
    pathcat(fx->mnt, fx->base, "mnt");
    pathcat(fx->other, fx->base, "other");
    pathcat(fx->fakebin, fx->base, "fakebin");
    pathcat(fx->fakefm, fx->fakebin, "fusermount");
    pathcat(fx->fakedev, fx->base, "fake-dev-fuse");
    pathcat(fx->marker, fx->base, "marker/fusermount-ran");
    /* The hook and the probe run as 65534 too: copies in the 0755 base
     * directory, since the build tree may not be reachable by that user
     * (a clone in root's 0700 home on a fresh machine). */
    char copy[PATH_MAX];
    pathcat(copy, fx->base, "libufuse-fusehook.so");
    copy_file(fx->hook, copy, 0644);
    strcpy(fx->hook, copy);
    pathcat(copy, fx->base, "hook-probe");
    copy_file(fx->probe, copy, 0755);
    strcpy(fx->probe, copy);
    char markdir[PATH_MAX];
    pathcat(markdir, fx->base, "marker");
    assert_int_equal(mkdir(fx->src, 0755), 0);
    assert_int_equal(mkdir(fx->mnt, 0755), 0);
    assert_int_equal(mkdir(fx->other, 0755), 0);
    assert_int_equal(mkdir(fx->fakebin, 0755), 0);
    assert_int_equal(mkdir(markdir, 0777), 0);
    assert_int_equal(chmod(markdir, 0777), 0);

    /* The fake fusermount: records that it ran (with its arguments) and
     * fails, so libfuse's fallback can never succeed behind our back. */
    char script[PATH_MAX * 2];
    int n = snprintf(script, sizeof(script),
                     "#!/bin/sh\necho \"fusermount $*\" >> '%s'\nexit 1\n",
                     fx->marker);
    write_file(fx->fakefm, script, (size_t)n, 0755);
    write_file(fx->fakedev, "", 0, 0666);

    char path[PATH_MAX];
    pathcat(path, fx->src, "hello.txt");
    write_file(path, hello_txt, sizeof(hello_txt) - 1, 0604);
    fx->data = malloc(DATA_SIZE);
    assert_non_null(fx->data);
    for (size_t i = 0; i < DATA_SIZE; i++)
        fx->data[i] = (unsigned char)(i * 131u + i / 7u);
    pathcat(path, fx->src, "data.bin");
    write_file(path, fx->data, DATA_SIZE, 0644);

    *state = fx;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *fx = *state;
    if (!fx)
        return 0;
    nftw(fx->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx->data);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Spawning                                                            */

enum {
    SP_HOOK = 1,        /* preload the hook */
    SP_NOBODY = 2,      /* drop to uid/gid 65534 before exec */
    SP_FAKES = 4,       /* private mount ns with the fake fusermount/dev */
    SP_NO_FD = 8,       /* do not set UFUSE_FUSE_FD */
};

/* Child side: never returns. */
static void child_exec(const struct fixture *fx, char *const argv[],
                       int sock, const char *fdval, int flags, int outfd)
{
    char buf[PATH_MAX * 2];
    if (outfd >= 0 && dup2(outfd, 1) < 0)
        _exit(120);
    if (sock >= 0 && fcntl(sock, F_SETFD, 0) != 0)     /* inherited */
        _exit(121);
    if (flags & SP_FAKES) {
        if (unshare(CLONE_NEWNS) != 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
            perror("test-fusehook: private mount namespace");
            _exit(122);
        }
        if (fx->realfm[0] &&
            mount(fx->fakefm, fx->realfm, NULL, MS_BIND, NULL) != 0) {
            perror("test-fusehook: bind fake fusermount");
            _exit(123);
        }
        if (access("/dev/fuse", F_OK) == 0 &&
            mount(fx->fakedev, "/dev/fuse", NULL, MS_BIND, NULL) != 0) {
            perror("test-fusehook: bind fake /dev/fuse");
            _exit(124);
        }
    }
    /* The contract's environment. */
    snprintf(buf, sizeof(buf), "%s:%s", fx->fakebin,
             getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", buf, 1);
    if (!(flags & SP_NO_FD))
        setenv("UFUSE_FUSE_FD", fdval, 1);
    setenv("UFUSE_MOUNTPOINT", fx->mnt, 1);
    setenv("UFUSE_EXTRA", "1", 1);
    unsetenv("LD_PRELOAD");
    if (flags & SP_HOOK) {
        /* a second, harmless entry that must survive the stripping */
        snprintf(buf, sizeof(buf), "%s:libc.so.6", fx->hook);
        setenv("LD_PRELOAD", buf, 1);
    }
    if (flags & SP_NOBODY) {
        if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
            setuid(NOBODY) != 0 || getuid() != NOBODY) {
            perror("test-fusehook: dropping to 65534");
            _exit(125);
        }
    }
    execv(argv[0], argv);
    fprintf(stderr, "test-fusehook: cannot exec %s as uid %d: %s\n",
            argv[0], (int)getuid(), strerror(errno));
    _exit(126);
}

static pid_t spawn(const struct fixture *fx, char *const argv[], int sock,
                   const char *fdval, int flags, int outfd)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_exec(fx, argv, sock, fdval, flags, outfd);
    return pid;
}

/* Reap @pid within EXIT_WAIT_MS (then kill it and fail).  @return the
 * wait status. */
static int reap(pid_t pid)
{
    int status = 0;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        assert_true(r >= 0);
        if (r == pid)
            return status;
        if (waited >= EXIT_WAIT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("server %d did not exit after its socket was closed",
                     (int)pid);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int marker_exists(const struct fixture *fx)
{
    return access(fx->marker, F_OK) == 0;
}

/* ------------------------------------------------------------------ */
/* Part A: the probe                                                   */

struct probe_out {
    char text[8192];
    int status;
};

static void run_probe(const struct fixture *fx, int flags, const char *fdval,
                      int sock, struct probe_out *out)
{
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    char *argv[] = {(char *)fx->probe, (char *)fx->mnt, (char *)fx->other,
                    NULL};
    pid_t pid = spawn(fx, argv, sock, fdval, flags, pfd[1]);
    close(pfd[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(pfd[0], out->text + len, sizeof(out->text) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
        assert_true(len < sizeof(out->text) - 1);
    }
    out->text[len] = '\0';
    close(pfd[0]);
    out->status = reap(pid);
    if (!WIFEXITED(out->status) || WEXITSTATUS(out->status) != 0)
        fail_msg("hook-probe failed (status %#x), output:\n%s", out->status,
                 out->text);
}

/* The rest of the line that starts with @key followed by a space. */
static const char *line_of(const struct probe_out *o, const char *key)
{
    size_t kl = strlen(key);
    const char *p = o->text;
    while (p && *p) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return p + kl + 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    fail_msg("hook-probe printed no \"%s\" line:\n%s", key, o->text);
    return NULL;
}

static void expect_env(const struct probe_out *o, const char *name,
                       const char *want)
{
    char key[64];
    snprintf(key, sizeof(key), "env %s", name);
    const char *v = line_of(o, key);
    size_t n = strcspn(v, "\n");
    if (strlen(want) != n || strncmp(v, want, n) != 0)
        fail_msg("%s is \"%.*s\", expected \"%s\"", name, (int)n, v, want);
}

struct open_res {
    int fd, cloexec, is_sock, err;
    unsigned long long ino;
};

static struct open_res get_open(const struct probe_out *o, const char *name)
{
    char key[64];
    struct open_res r;
    snprintf(key, sizeof(key), "open %s", name);
    assert_int_equal(sscanf(line_of(o, key), "%d %d %llu %d %d", &r.fd,
                            &r.cloexec, &r.ino, &r.is_sock, &r.err), 5);
    return r;
}

static void get_call(const struct probe_out *o, const char *name, int *rc,
                     int *err)
{
    char key[64];
    snprintf(key, sizeof(key), "call %s", name);
    assert_int_equal(sscanf(line_of(o, key), "%d %d", rc, err), 2);
}

static void expect_call_ok(const struct probe_out *o, const char *name)
{
    int rc, err;
    get_call(o, name, &rc, &err);
    if (rc != 0)
        fail_msg("%s returned %d (errno %d), expected 0", name, rc, err);
}

static void expect_call_fails(const struct probe_out *o, const char *name)
{
    int rc, err;
    get_call(o, name, &rc, &err);
    if (rc != -1 || err == 0)
        fail_msg("%s returned %d (errno %d): it should have reached the "
                 "kernel and failed", name, rc, err);
}

static void probe_active(void **state, int flags)
{
    struct fixture *fx = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                                sv), 0);
    struct stat st;
    assert_int_equal(fstat(sv[1], &st), 0);
    unsigned long long ino = (unsigned long long)st.st_ino;
    char fdval[16];
    snprintf(fdval, sizeof(fdval), "%d", sv[1]);

    struct probe_out o;
    run_probe(fx, SP_HOOK | flags, fdval, sv[1], &o);
    close(sv[1]);

    /* B1: the hook left the other preload, no UFUSE_* at all. */
    expect_env(&o, "LD_PRELOAD", "libc.so.6");
    expect_env(&o, "UFUSE_FUSE_FD", "(unset)");
    expect_env(&o, "UFUSE_MOUNTPOINT", "(unset)");
    expect_env(&o, "UFUSE_EXTRA", "(unset)");

    /* B2: the first open gets fd N itself, CLOEXEC as asked. */
    struct open_res r = get_open(&o, "open");
    assert_int_equal(r.fd, sv[1]);
    assert_int_equal(r.cloexec, 1);
    assert_int_equal(r.is_sock, 1);
    assert_true(r.ino == ino);
    /* later ones: other descriptors of the same socket */
    const char *later[] = {"open64", "openat", "openat64", "__open_2"};
    const int cloexec[] = {0, 1, 0, 0};
    int seen[8] = {sv[1]};
    for (int i = 0; i < 4; i++) {
        r = get_open(&o, later[i]);
        if (r.fd < 0)
            fail_msg("%s(\"/dev/fuse\") failed with errno %d", later[i],
                     r.err);
        for (int j = 0; j <= i; j++)
            assert_int_not_equal(r.fd, seen[j]);
        seen[i + 1] = r.fd;
        assert_int_equal(r.is_sock, 1);
        assert_true(r.ino == ino);
        assert_int_equal(r.cloexec, cloexec[i]);
    }
    /* Other files are not affected. */
    const char *nul = line_of(&o, "open /dev/null");
    assert_int_equal(strncmp(nul, "1 1", 3), 0);

    /* B3, B4 */
    expect_call_ok(&o, "mount_fuse");
    expect_call_ok(&o, "mount_fuse_subtype");
    expect_call_ok(&o, "mount_fuse_slash");
    expect_call_fails(&o, "mount_other_fstype");
    expect_call_fails(&o, "mount_other_dir");
    expect_call_ok(&o, "umount2_mnt");
    expect_call_ok(&o, "umount_mnt");
    expect_call_fails(&o, "umount2_other");

    /* Once the socket is gone, /dev/fuse does not open. */
    r = get_open(&o, "after_close");
    assert_int_equal(r.fd, -1);
    assert_int_equal(r.err, ENODEV);
    close(sv[0]);
}

static void t_probe_root(void **state)
{
    probe_active(state, 0);
}

static void t_probe_nobody(void **state)
{
    struct fixture *fx = *state;
    if (!fx->root) {
        fprintf(stderr, "test-fusehook: not root, cannot run as 65534\n");
        skip();
    }
    probe_active(state, SP_NOBODY);
}

/* Without UFUSE_FUSE_FD the hook changes nothing. */
static void t_probe_inert(void **state)
{
    struct fixture *fx = *state;
    struct probe_out o;
    run_probe(fx, SP_HOOK | SP_NO_FD, "", -1, &o);

    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "%s:libc.so.6", fx->hook);
    expect_env(&o, "LD_PRELOAD", want);
    expect_env(&o, "UFUSE_MOUNTPOINT", fx->mnt);
    expect_env(&o, "UFUSE_EXTRA", "1");
    /* /dev/fuse is the real device (or refused), never a socket */
    struct open_res r = get_open(&o, "open");
    assert_int_equal(r.is_sock, 0);
    if (r.fd < 0)
        assert_int_not_equal(r.err, 0);
    expect_call_fails(&o, "mount_fuse");
    expect_call_fails(&o, "umount2_mnt");
}

/* UFUSE_FUSE_FD that is no descriptor: /dev/fuse fails, nothing leaks. */
static void t_probe_bad_fd(void **state)
{
    struct fixture *fx = *state;
    struct probe_out o;
    run_probe(fx, SP_HOOK, "1000000", -1, &o);
    expect_env(&o, "LD_PRELOAD", "libc.so.6");
    expect_env(&o, "UFUSE_FUSE_FD", "(unset)");
    struct open_res r = get_open(&o, "open");
    assert_int_equal(r.fd, -1);
    assert_int_equal(r.err, EBADF);
    r = get_open(&o, "openat");
    assert_int_equal(r.fd, -1);
    assert_int_equal(r.err, EBADF);
    expect_call_ok(&o, "mount_fuse");
}

/* ------------------------------------------------------------------ */
/* Part B: bindfs and the raw protocol                                 */

struct conn {
    int fd;
    uint64_t unique;
    uint32_t minor;             /* what the server answered at INIT */
    unsigned char buf[256 * 1024] __attribute__((aligned(8)));
    int error;                  /* of the last reply */
    size_t plen;                /* payload length of the last reply */
};

static void send_req(struct conn *c, uint32_t opcode, uint64_t nodeid,
                     const void *arg, size_t arglen, const char *name)
{
    unsigned char msg[4096];
    size_t nlen = name ? strlen(name) + 1 : 0;
    struct fuse_in_header h = {0};
    h.len = (uint32_t)(sizeof(h) + arglen + nlen);
    assert_true(h.len <= sizeof(msg));
    h.opcode = opcode;
    h.unique = ++c->unique;
    h.nodeid = nodeid;
    h.uid = getuid();
    h.gid = getgid();
    h.pid = (uint32_t)getpid();
    memcpy(msg, &h, sizeof(h));
    if (arglen)
        memcpy(msg + sizeof(h), arg, arglen);
    if (nlen)
        memcpy(msg + sizeof(h) + arglen, name, nlen);
    ssize_t n = send(c->fd, msg, h.len, MSG_NOSIGNAL);
    if (n != (ssize_t)h.len)
        fail_msg("send of opcode %u: %zd (%s)", opcode, n, strerror(errno));
}

/* Wait for the reply to the last request.  @return its payload; sets
 * c->error and c->plen.  Returns NULL at EOF (the server went away). */
static void *recv_reply(struct conn *c)
{
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, REPLY_WAIT_MS);
        if (r == 0)
            fail_msg("no reply to request %llu within %d ms",
                     (unsigned long long)c->unique, REPLY_WAIT_MS);
        assert_true(r == 1);
        ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return NULL;
        assert_true(n >= (ssize_t)sizeof(struct fuse_out_header));
        struct fuse_out_header *h = (void *)c->buf;
        assert_int_equal(h->len, (uint32_t)n);
        if (h->unique == 0)
            continue;           /* a notification: not ours */
        assert_int_equal(h->unique, c->unique);
        c->error = h->error;
        c->plen = (size_t)n - sizeof(*h);
        return c->buf + sizeof(*h);
    }
}

static void *expect_reply(struct conn *c, const char *what, size_t minlen)
{
    void *p = recv_reply(c);
    if (!p)
        fail_msg("%s: the server closed the connection", what);
    if (c->error != 0)
        fail_msg("%s: error %d (%s)", what, c->error, strerror(-c->error));
    if (c->plen < minlen)
        fail_msg("%s: payload of %zu bytes, expected at least %zu", what,
                 c->plen, minlen);
    return p;
}

/* INIT as the kernel sends it at 7.38.  @return 1 if answered. */
static int do_init(struct conn *c)
{
    struct fuse_init_in in = {0};
    in.major = FUSE_KERNEL_VERSION;
    in.minor = FUSE_KERNEL_MINOR_VERSION;
    in.max_readahead = 128 * 1024;
    in.flags = FUSE_ASYNC_READ | FUSE_BIG_WRITES;
    send_req(c, FUSE_INIT, 0, &in, sizeof(in), NULL);
    void *p = recv_reply(c);
    if (!p)
        return 0;
    assert_int_equal(c->error, 0);
    /* An old server answers with its own, shorter fuse_init_out (24 bytes
     * up to 7.22). */
    assert_true(c->plen >= 24);
    struct fuse_init_out out = {0};
    memcpy(&out, p, c->plen < sizeof(out) ? c->plen : sizeof(out));
    assert_int_equal(out.major, 7);
    /* The structures used below have these sizes from 7.9 on. */
    assert_true(out.minor >= 9 && out.minor <= FUSE_KERNEL_MINOR_VERSION);
    assert_true(out.max_write >= 4096);
    c->minor = out.minor;
    return 1;
}

static void check_attr(const struct fuse_attr *a, const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(a->size == (uint64_t)st.st_size);
    assert_int_equal(a->mode, st.st_mode);
    assert_true(a->mtime == (uint64_t)st.st_mtim.tv_sec);
    assert_int_equal(a->mtimensec, (uint32_t)st.st_mtim.tv_nsec);
    assert_int_equal(a->nlink, st.st_nlink);
}

/* LOOKUP, GETATTR, OPEN, READ all of it, RELEASE: compare with @want. */
static void read_whole_file(struct conn *c, const struct fixture *fx,
                            const char *name, const unsigned char *want,
                            size_t wantlen)
{
    char path[PATH_MAX];
    pathcat(path, fx->src, name);

    send_req(c, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, name);
    struct fuse_entry_out e;
    memcpy(&e, expect_reply(c, "LOOKUP", sizeof(e)), sizeof(e));
    assert_true(e.nodeid != 0 && e.nodeid != FUSE_ROOT_ID);
    check_attr(&e.attr, path);

    struct fuse_getattr_in gi = {0};
    send_req(c, FUSE_GETATTR, e.nodeid, &gi, sizeof(gi), NULL);
    struct fuse_attr_out ao;
    memcpy(&ao, expect_reply(c, "GETATTR", sizeof(ao)), sizeof(ao));
    check_attr(&ao.attr, path);

    struct fuse_open_in oi = {.flags = O_RDONLY};
    send_req(c, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL);
    struct fuse_open_out oo;
    memcpy(&oo, expect_reply(c, "OPEN", sizeof(oo)), sizeof(oo));

    size_t off = 0;
    for (;;) {
        struct fuse_read_in ri = {0};
        ri.fh = oo.fh;
        ri.offset = off;
        ri.size = READ_CHUNK;
        ri.flags = O_RDONLY;
        send_req(c, FUSE_READ, e.nodeid, &ri, sizeof(ri), NULL);
        unsigned char *p = expect_reply(c, "READ", 0);
        assert_true(c->plen <= READ_CHUNK);
        if (c->plen == 0)
            break;
        assert_true(off + c->plen <= wantlen);
        if (memcmp(p, want + off, c->plen) != 0)
            fail_msg("%s: READ at %zu differs from the source", name, off);
        off += c->plen;
    }
    assert_true(off == wantlen);

    struct fuse_release_in rel = {0};
    rel.fh = oo.fh;
    rel.flags = O_RDONLY;
    send_req(c, FUSE_RELEASE, e.nodeid, &rel, sizeof(rel), NULL);
    expect_reply(c, "RELEASE", 0);
}

/* Is @dir a mount point in @pid's mount namespace? */
static int mounted_in(pid_t pid, const char *dir)
{
    char path[64], line[8192];
    snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        /* "id parent major:minor root mountpoint ..." */
        char mp[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 &&
            strcmp(mp, dir) == 0)
            found = 1;
    }
    fclose(f);
    return found;
}

static void need_bindfs(const struct fixture *fx)
{
    if (!fx->bindfs[0])
        fail_msg("bindfs is not installed (scripts/deps.sh installs it)");
}

static void bindfs_attach(void **state, int flags)
{
    struct fixture *fx = *state;
    need_bindfs(fx);
    unlink(fx->marker);
    if (fx->root)
        flags |= SP_FAKES;

    struct conn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                                sv), 0);
    char fdval[16];
    snprintf(fdval, sizeof(fdval), "%d", sv[1]);
    char *argv[] = {fx->bindfs, fx->src, fx->mnt, "-f", NULL};
    pid_t pid = spawn(fx, argv, sv[1], fdval, SP_HOOK | flags, -1);
    close(sv[1]);
    c->fd = sv[0];

    if (!do_init(c))
        fail_msg("bindfs closed the socket instead of answering INIT");
    /* libfuse 2.9 speaks 7.19 */
    assert_true(c->minor < FUSE_KERNEL_MINOR_VERSION);
    /* mount(2) was swallowed: nothing is mounted on MNT, for bindfs */
    assert_false(mounted_in(pid, fx->mnt));

    /* A name that is not there. */
    send_req(c, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "no-such-file");
    assert_non_null(recv_reply(c));
    assert_int_equal(c->error, -ENOENT);

    read_whole_file(c, fx, "hello.txt", (const unsigned char *)hello_txt,
                    sizeof(hello_txt) - 1);
    read_whole_file(c, fx, "data.bin", fx->data, DATA_SIZE);

    /* Close: libfuse sees EOF ("short read on fuse device") and exits. */
    close(c->fd);
    int status = reap(pid);
    if (!WIFEXITED(status))
        fail_msg("bindfs died of signal %d", WTERMSIG(status));
    int code = WEXITSTATUS(status);
    if (code != 0 && code != 1 && code != 8)
        fail_msg("bindfs exited with %d", code);
    /* Neither the mount nor the unmount went to fusermount. */
    if (marker_exists(fx))
        fail_msg("fusermount was run (see %s)", fx->marker);
    free(c);
}

static void t_bindfs_root(void **state)
{
    bindfs_attach(state, 0);
}

static void t_bindfs_nobody(void **state)
{
    struct fixture *fx = *state;
    if (!fx->root) {
        fprintf(stderr, "test-fusehook: not root, cannot run as 65534\n");
        skip();
    }
    bindfs_attach(state, SP_NOBODY);
}

/*
 * The control: the same non-root start without the hook must fail, and the
 * fake fusermount must have run.  This is what proves the checks above can
 * fail: were the hook not doing its job, the hooked runs would look like
 * this one.
 */
static void t_bindfs_nobody_without_hook(void **state)
{
    struct fixture *fx = *state;
    if (!fx->root) {
        fprintf(stderr, "test-fusehook: not root, no private mount "
                "namespace for the fake fusermount\n");
        skip();
    }
    need_bindfs(fx);
    unlink(fx->marker);

    struct conn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                                sv), 0);
    char fdval[16];
    snprintf(fdval, sizeof(fdval), "%d", sv[1]);
    char *argv[] = {fx->bindfs, fx->src, fx->mnt, "-f", NULL};
    pid_t pid = spawn(fx, argv, sv[1], fdval, SP_NOBODY | SP_FAKES, -1);
    close(sv[1]);
    c->fd = sv[0];

    /* The socket is never used: bindfs fails and exits, we see EOF. */
    struct fuse_init_in in = {.major = 7, .minor = FUSE_KERNEL_MINOR_VERSION};
    struct fuse_in_header h = {.len = sizeof(h) + sizeof(in),
                               .opcode = FUSE_INIT, .unique = 1};
    unsigned char msg[sizeof(h) + sizeof(in)];
    memcpy(msg, &h, sizeof(h));
    memcpy(msg + sizeof(h), &in, sizeof(in));
    (void)send(c->fd, msg, sizeof(msg), MSG_NOSIGNAL);
    c->unique = 1;
    if (recv_reply(c) != NULL)
        fail_msg("bindfs answered INIT on the socket without the hook");
    close(c->fd);
    int status = reap(pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    if (!marker_exists(fx))
        fail_msg("without the hook, bindfs as 65534 did not run "
                 "fusermount: the fusermount check cannot fail");
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_probe_root),
        cmocka_unit_test(t_probe_nobody),
        cmocka_unit_test(t_probe_inert),
        cmocka_unit_test(t_probe_bad_fd),
        cmocka_unit_test(t_bindfs_root),
        cmocka_unit_test(t_bindfs_nobody),
        cmocka_unit_test(t_bindfs_nobody_without_hook),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
