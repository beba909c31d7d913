/*
 * harness.c - mount ufuse-memfs through the Linux kernel for the tests.
 *
 * State: a registry of the mounts started and not yet stopped, so that a
 * test that fails half-way (cmocka longjmps out of it) can be cleaned up by
 * mnt_cleanup_all() from its teardown.  Single-threaded use only.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ACTIVE 8
static struct mnt *active[MAX_ACTIVE];     /* copies, see registry_find() */

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

const char *memfs_bin(void)
{
    static char path[512];
    const char *dir = getenv("UFUSE_BUILD_DIR");
    snprintf(path, sizeof(path), "%s/ufuse-memfs", dir && *dir ? dir : ".");
    return path;
}

void pattern_fill(unsigned char *buf, size_t len, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(((off + i) * UINT64_C(2654435761)) >> 13);
}

const char *P(struct mnt *m, const char *rel)
{
    static __thread char bufs[8][512];
    static __thread int next;
    char *b = bufs[next++ & 7];
    snprintf(b, 512, "%s/%s", m->dir, rel);
    return b;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
        }
        buf = nb;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static void dump_log(struct mnt *m)
{
    char *s = slurp(m->log);
    if (s) {
        fprintf(stderr, "---- ufuse-memfs log (%s) ----\n%s---- end ----\n", m->log, s);
        free(s);
    }
}

/* Does @line (ended by '\n' or NUL) end with " pid=<our pid>"?  Other
 * processes (anything walking /tmp) may touch the mount: their requests
 * must not count. */
static bool line_is_ours(const char *line)
{
    const char *end = strchr(line, '\n');
    if (!end)
        end = line + strlen(line);
    char want[32];
    int n = snprintf(want, sizeof(want), " pid=%ld", (long)getpid());
    return end - line >= n && memcmp(end - n, want, (size_t)n) == 0;
}

int log_count(struct mnt *m, const char *prefix)
{
    char *s = slurp(m->log);
    if (!s)
        return -1;
    int n = 0;
    size_t plen = strlen(prefix);
    for (char *line = s; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, prefix, plen) == 0 && line_is_ours(line))
            n++;
        line = nl ? nl + 1 : NULL;
    }
    free(s);
    return n;
}

long long log_max(struct mnt *m, const char *prefix, const char *key)
{
    char *s = slurp(m->log);
    if (!s)
        return -1;
    long long best = -1;
    size_t plen = strlen(prefix);
    char pat[64];
    snprintf(pat, sizeof(pat), " %s=", key);
    for (char *line = s; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, prefix, plen) == 0) {
            char *k = strstr(line, pat);
            if (k) {
                long long v = strtoll(k + strlen(pat), NULL, 0);
                if (v > best)
                    best = v;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(s);
    return best;
}

bool log_has(struct mnt *m, const char *needle)
{
    char *s = slurp(m->log);
    bool r = s && strstr(s, needle);
    free(s);
    return r;
}

static bool is_mounted(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        /* id parent maj:min root mountpoint opts ... - fstype source ... */
        char mp[1024];
        if (sscanf(line, "%*s %*s %*s %*s %1023s", mp) == 1 && strcmp(mp, dir) == 0 &&
            strstr(line, " - fuse"))
            found = true;
    }
    fclose(f);
    return found;
}

/* The registry keeps copies: a failed test's struct mnt lived in a stack
 * frame that is gone by the time its teardown runs. */
static struct mnt *registry_find(const struct mnt *m)
{
    for (int i = 0; i < MAX_ACTIVE; i++)
        if (active[i] && strcmp(active[i]->tmp, m->tmp) == 0)
            return active[i];
    return NULL;
}

static void registry_sync(const struct mnt *m)
{
    struct mnt *r = registry_find(m);
    if (r)
        *r = *m;
}

static void registry_add(const struct mnt *m)
{
    for (int i = 0; i < MAX_ACTIVE; i++)
        if (!active[i]) {
            active[i] = malloc(sizeof(*m));
            if (active[i])
                *active[i] = *m;
            return;
        }
}

static void registry_del(const struct mnt *m)
{
    for (int i = 0; i < MAX_ACTIVE; i++)
        if (active[i] && strcmp(active[i]->tmp, m->tmp) == 0) {
            free(active[i]);
            active[i] = NULL;
        }
}

int mnt_start(struct mnt *m, const char *opts, bool debug)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->tmp, sizeof(m->tmp), "/tmp/memfs-test.XXXXXX");
    if (!mkdtemp(m->tmp)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(m->dir, sizeof(m->dir), "%s/mnt", m->tmp);
    snprintf(m->log, sizeof(m->log), "%s/server.log", m->tmp);
    /* Let unprivileged test children reach the mountpoint. */
    if (chmod(m->tmp, 0755) != 0 || mkdir(m->dir, 0755) != 0) {
        perror("mkdir");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(m->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        const char *argv[8];
        int n = 0;
        argv[n++] = memfs_bin();
        if (debug)
            argv[n++] = "-d";
        if (opts && *opts) {
            argv[n++] = "-o";
            argv[n++] = opts;
        }
        argv[n++] = m->dir;
        argv[n] = NULL;
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    m->pid = pid;
    registry_add(m);
    long long deadline = now_ms() + 20000;
    while (!is_mounted(m->dir)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            m->pid = 0;
            m->status = st;
            registry_sync(m);
            fprintf(stderr, "ufuse-memfs -o '%s' exited before mounting (status 0x%x)\n",
                    opts ? opts : "", st);
            dump_log(m);
            return -1;
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "ufuse-memfs -o '%s': no mount after 20 s\n", opts ? opts : "");
            dump_log(m);
            return -1;
        }
        sleep_ms(5);
    }
    /* mount(2) returns before the server has answered INIT: a first
     * request waits for that, so the trace of INIT is complete after it. */
    struct statfs sfs;
    statfs(m->dir, &sfs);
    return 0;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int mnt_wait_exit(struct mnt *m, int seconds)
{
    if (!m->pid)
        return decode_status(m->status);
    long long deadline = now_ms() + seconds * 1000LL;
    for (;;) {
        int st;
        pid_t r = waitpid(m->pid, &st, WNOHANG);
        if (r == m->pid) {
            m->pid = 0;
            m->status = st;
            registry_sync(m);
            return decode_status(st);
        }
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "waitpid(%d): %s\n", (int)m->pid, strerror(errno));
            return -1;
        }
        if (now_ms() > deadline)
            return -1;
        sleep_ms(5);
    }
}

int mnt_stop(struct mnt *m)
{
    if (!m->tmp[0])
        return -1;
    if (is_mounted(m->dir)) {
        int tries = 0;
        while (umount2(m->dir, 0) != 0) {
            if (errno != EBUSY || ++tries > 50) {
                /* Something is still open (a failed test): abort the
                 * connection, which ends the server, then detach. */
                umount2(m->dir, MNT_FORCE);
                umount2(m->dir, MNT_DETACH);
                break;
            }
            sleep_ms(20);
        }
    }
    int rc = mnt_wait_exit(m, 20);
    if (rc < 0 && m->pid) {
        fprintf(stderr, "ufuse-memfs did not exit after the unmount: killing it\n");
        kill(m->pid, SIGKILL);
        int st;
        waitpid(m->pid, &st, 0);
        m->pid = 0;
        m->status = st;
        rc = -1;
    }
    if (rc != 0 && !m->quiet)
        dump_log(m);
    unlink(m->log);
    rmdir(m->dir);
    rmdir(m->tmp);
    registry_del(m);
    m->tmp[0] = '\0';
    return rc;
}

void mnt_cleanup_all(void)
{
    for (int i = 0; i < MAX_ACTIVE; i++) {
        if (active[i]) {
            struct mnt m = *active[i];
            mnt_stop(&m);
        }
    }
}

void require_fuse_mount(void)
{
    int fd = open("/dev/fuse", O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "SKIP: cannot open /dev/fuse (%s): no kernel FUSE here\n",
                strerror(errno));
        exit(77);
    }
    close(fd);
    if (access(memfs_bin(), X_OK) != 0) {
        fprintf(stderr, "FAIL: %s is not there (set UFUSE_BUILD_DIR)\n", memfs_bin());
        exit(1);
    }
    struct mnt m;
    if (mnt_start(&m, NULL, false) == 0) {
        mnt_stop(&m);
        return;
    }
    bool eperm = log_has(&m, "Operation not permitted") || log_has(&m, "EPERM");
    mnt_stop(&m);
    if (eperm) {
        fprintf(stderr, "SKIP: mounting a FUSE file system is not permitted here\n");
        exit(77);
    }
    fprintf(stderr, "FAIL: ufuse-memfs could not be mounted\n");
    exit(1);
}
