/*
 * common.c - servers as children of the test, bounded waits, counters,
 * resident memory and result lines for the fault-matrix and long-run
 * tests (see common.h).
 *
 * State: none shared between threads except the hang guard's (an atomic
 * deadline read by its own thread).
 */
#include "faults/common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

bool wait_until(bool (*cond)(void *), void *arg, int ms)
{
    long long end = now_ms() + ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (now_ms() > end)
            return false;
        msleep(5);
    }
}

static const char *ptll_bin(void)
{
    static char path[512];
    const char *dir = getenv("UFUSE_BUILD_DIR");
    snprintf(path, sizeof path, "%s/passthrough_ll", dir && *dir ? dir : ".");
    return path;
}

void srv_prepare(struct srv *v)
{
    if (v->tmp[0])
        return;
    snprintf(v->tmp, sizeof v->tmp, "/tmp/ufuse-faults.XXXXXX");
    if (!mkdtemp(v->tmp)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(v->src, sizeof v->src, "%s/src", v->tmp);
    if (mkdir(v->src, 0755) != 0) {
        perror("mkdir");
        abort();
    }
}

int srv_spawn(struct srv *v, enum srv_kind kind, const char *sopts, bool stopped)
{
    srv_prepare(v);
    v->kind = kind;
    v->sock = -1;
    const char *exe = kind == SRV_MEMFS ? memfs_bin() : ptll_bin();
    if (access(exe, X_OK) != 0) {
        fprintf(stderr, "%s not built (%s)\n", exe,
                kind == SRV_PTLL ? "needs /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c"
                                 : "ufuse-memfs");
        exit(77);
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    char opt[1024], mnt[32];
    if (kind == SRV_PTLL)
        snprintf(opt, sizeof opt, "source=%s%s%s", v->src, sopts && *sopts ? "," : "",
                 sopts ? sopts : "");
    else
        snprintf(opt, sizeof opt, "%s", sopts && *sopts ? sopts : "attr_timeout=1");
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The server's end at a fixed number, inherited across exec. */
        if (dup2(sv[1], 3) != 3)
            _exit(127);
        for (int fd = 4; fd < 1024; fd++)
            close(fd);
        if (stopped)
            raise(SIGSTOP);
        snprintf(mnt, sizeof mnt, "/dev/fd/3");
        const char *argv[] = {exe, "-f", "-o", opt, mnt, NULL};
        if (kind == SRV_MEMFS) {
            /* memfs is always in the foreground: no -f */
            argv[1] = "-o";
            argv[2] = opt;
            argv[3] = mnt;
            argv[4] = NULL;
        }
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    v->pid = pid;
    v->sock = sv[1];
    if (stopped) {
        int st;
        if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st)) {
            fprintf(stderr, "srv_spawn: the child did not stop\n");
            abort();
        }
    }
    return sv[0];
}

ufuse_t *srv_mount(struct srv *v, enum srv_kind kind, const char *sopts, const char *copts)
{
    int fd = srv_spawn(v, kind, sopts, false);
    if (fd < 0) {
        perror("srv_spawn");
        abort();
    }
    ufuse_t *s = NULL;
    int rc = ufuse_mount_fd(&s, fd, copts);
    if (rc != 0) {
        fprintf(stderr, "ufuse_mount_fd(%s -o %s; -o %s) = %d (%s)\n",
                kind == SRV_MEMFS ? "ufuse-memfs" : "passthrough_ll", sopts ? sopts : "",
                copts ? copts : "", rc, strerror(-rc));
        abort();
    }
    /* The session is up: the server's own end is all it needs. */
    close(v->sock);
    v->sock = -1;
    return s;
}

void srv_signal(struct srv *v, int sig)
{
    if (v->pid > 0)
        kill(v->pid, sig);
}

/* Every thread of the server is stopped (state T in /proc). */
static bool all_stopped(void *arg)
{
    struct srv *v = arg;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)v->pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool all = true;
    int n = 0;
    struct dirent *e;
    while (all && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sp[384], buf[512];
        snprintf(sp, sizeof sp, "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(sp, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        const char *p = strrchr(buf, ')');    /* "pid (comm) S ..." */
        all = p && (p[2] == 'T' || p[2] == 't');
        n++;
    }
    closedir(d);
    return all && n > 0;
}

void srv_pause(struct srv *v)
{
    srv_signal(v, SIGSTOP);
    /* kill() only queues the stop: a thread on its way to answer a request
     * could still do so.  Wait until every thread has stopped. */
    if (!wait_until(all_stopped, v, 30000)) {
        fprintf(stderr, "srv_pause: the server did not stop\n");
        abort();
    }
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

int srv_stop(struct srv *v, int grace_ms)
{
    if (v->sock >= 0) {
        close(v->sock);
        v->sock = -1;
    }
    if (v->pid > 0) {
        long long end = now_ms() + grace_ms;
        int st = 0;
        for (;;) {
            pid_t r = waitpid(v->pid, &st, WNOHANG);
            if (r == v->pid)
                break;
            if (now_ms() > end) {
                kill(v->pid, SIGCONT);
                kill(v->pid, SIGKILL);
                waitpid(v->pid, &st, 0);
                break;
            }
            msleep(5);
        }
        v->status = st;
        v->pid = 0;
    }
    if (v->tmp[0]) {
        umount2(v->src, MNT_DETACH);   /* a tmpfs some tests put there */
        nftw(v->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        v->tmp[0] = 0;
    }
    return v->status;
}

void srv_unmount(ufuse_t *s, struct srv *v, int grace_ms)
{
    hang_guard(120, "ufuse_unmount");
    ufuse_unmount(s);
    hang_guard_off();
    srv_stop(v, grace_ms);
}

static uint64_t op_field(ufuse_t *s, const char *name, int errors)
{
    struct ufuse_opstat st[64];
    int n = ufuse_stats(s, st, 64);
    for (int i = 0; i < n; i++)
        if (strcmp(st[i].name, name) == 0)
            return errors ? st[i].errors : st[i].count;
    return 0;
}

uint64_t op_count(ufuse_t *s, const char *name)
{
    return op_field(s, name, 0);
}

uint64_t op_errors(ufuse_t *s, const char *name)
{
    return op_field(s, name, 1);
}

int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long long vsz, res;
    int n = fscanf(f, "%lld %lld", &vsz, &res);
    fclose(f);
    return n == 2 ? res * (int64_t)sysconf(_SC_PAGESIZE) : -1;
}

/* ---- the hang guard ---------------------------------------------------- */

static _Atomic long long guard_deadline;   /* ms, 0: disarmed */
static char guard_what[256];
static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;

static void *guard_main(void *arg)
{
    (void)arg;
    for (;;) {
        msleep(100);
        long long d = atomic_load(&guard_deadline);
        if (d && now_ms() > d) {
            pthread_mutex_lock(&guard_mu);
            fprintf(stderr, "HANG: %s did not complete in time\n", guard_what);
            pthread_mutex_unlock(&guard_mu);
            fflush(NULL);
            _exit(1);
        }
    }
    return NULL;
}

static void guard_start(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, guard_main, NULL) == 0)
        pthread_detach(t);
}

void hang_guard(int seconds, const char *what)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, guard_start);
    pthread_mutex_lock(&guard_mu);
    snprintf(guard_what, sizeof guard_what, "%s", what);
    pthread_mutex_unlock(&guard_mu);
    atomic_store(&guard_deadline, now_ms() + seconds * 1000LL);
}

void hang_guard_off(void)
{
    atomic_store(&guard_deadline, 0);
}

/* ---- figures ------------------------------------------------------------ */

void reliability(const char *row, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    printf("reliability: %s | %s\n", row, what);
    fflush(stdout);
}

long amount(const char *env, long check, long soak)
{
    const char *e = getenv(env);
    if (e && *e)
        return strtol(e, NULL, 0);
    e = getenv("UFUSE_SOAK");
    return e && *e && *e != '0' ? soak : check;
}

uint64_t rnd64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
