/*
 * sysloop.c - a system call in a loop, built twice: statically linked
 * (run-sysloop: the preload library cannot reach it, the broker's seccomp
 * supervisor serves it) and dynamically linked (run-sysloop-dyn: served by
 * the preload library).  tests/run/static.sh runs both.
 *
 *   run-sysloop fstat N FILE   open FILE, fstat it N times
 *   run-sysloop stat N PATH    stat PATH N times
 *   run-sysloop pread N FILE   read FILE once, then N 4 KiB preads of its pages
 *                              (hits), spread over it; pread4: the same N by
 *                              4 threads
 *   run-sysloop getpid N       getpid N times (a call the filter does not list)
 *   run-sysloop raw FILE       open, write, lseek, read, fstat, F_GETFL, statx and
 *                              unlink FILE
 *                              with raw system calls, printing what they gave
 *
 * The loops print "CALL N: X ns/call" (for docs/run.md; tests assert no time).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int raw(const char *path)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("raw openat");
        return 1;
    }
    char buf[64] = "";
    long w = syscall(SYS_write, fd, "raw bytes\n", 10);
    long s = syscall(SYS_lseek, fd, 4, SEEK_SET);
    long r = syscall(SYS_read, fd, buf, sizeof buf - 1);
    struct stat st;
    long f = syscall(SYS_fstat, fd, &st);
    long fl = syscall(SYS_fcntl, fd, F_GETFL);
    syscall(SYS_close, fd);
    struct statx sx = { 0 };
    long x = syscall(SYS_statx, AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx);
    long u = syscall(SYS_unlink, path);
    printf("write %ld lseek %ld read %ld '%.*s' fstat %ld size %lld getfl %s statx %ld size %llu "
           "mode %o unlink %ld\n", w, s, r, r > 0 ? (int)r - 1 : 0, buf, f, (long long)st.st_size,
           fl >= 0 && (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" : "other", x,
           (unsigned long long)sx.stx_size, (unsigned)sx.stx_mode, u);
    return 0;
}

/* What one loop does: the call, its arguments. */
enum call { CALL_FSTAT, CALL_STAT, CALL_PREAD, CALL_GETPID };
struct loop {
    enum call call;
    long n;
    int fd;
    const char *path;
    uint64_t pages;     /* CALL_PREAD: pages of the file */
    unsigned seed;      /* CALL_PREAD: where this thread starts */
    int failed;
};

static void *run_loop(void *arg)
{
    struct loop *l = arg;
    char page[4096];
    struct stat st;
    for (long i = 0; i < l->n; i++) {
        int r;
        switch (l->call) {
        case CALL_PREAD:
            r = pread(l->fd, page, sizeof page,
                      (off_t)((((uint64_t)i + l->seed) * 7919 % l->pages) * sizeof page)) ==
                        (ssize_t)sizeof page ? 0 : -1;
            break;
        case CALL_FSTAT:
            r = fstat(l->fd, &st);
            break;
        case CALL_STAT:
            r = stat(l->path, &st);
            break;
        default:
            r = (int)syscall(SYS_getpid);
        }
        if (r < 0) {
            perror("call");
            l->failed = 1;
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "raw") == 0)
        return raw(argv[2]);
    if (argc < 3)
        goto usage;
    struct loop l = { .n = atol(argv[2]), .fd = -1, .path = argc == 4 ? argv[3] : NULL };
    int threads = 1;
    if (strcmp(argv[1], "pread") == 0 || strcmp(argv[1], "pread4") == 0)
        l.call = CALL_PREAD, threads = argv[1][5] == '4' ? 4 : 1;
    else if (strcmp(argv[1], "fstat") == 0)
        l.call = CALL_FSTAT;
    else if (strcmp(argv[1], "stat") == 0)
        l.call = CALL_STAT;
    else if (strcmp(argv[1], "getpid") == 0 && argc == 3)
        l.call = CALL_GETPID;
    else
        goto usage;
    if (l.call != CALL_GETPID && argc != 4)
        goto usage;
    if (l.call == CALL_PREAD || l.call == CALL_FSTAT) {
        struct stat st;
        l.fd = open(argv[3], O_RDONLY);
        if (l.fd < 0 || fstat(l.fd, &st) != 0) {
            perror(argv[3]);
            return 1;
        }
        /* pread: 4 KiB at page offsets spread over the file, read once
         * first so that every timed read is a hit. */
        l.pages = (uint64_t)st.st_size / 4096;
        if (l.call == CALL_PREAD && !l.pages) {
            fprintf(stderr, "%s: smaller than a page\n", argv[3]);
            return 1;
        }
        char page[4096];
        for (uint64_t p = 0; l.call == CALL_PREAD && p < l.pages; p++)
            (void)!pread(l.fd, page, sizeof page, (off_t)(p * sizeof page));
    }
    /* N calls in all, shared by the threads. */
    struct loop each[4];
    pthread_t tid[4];
    double t0 = now_ns();
    for (int t = 0; t < threads; t++) {
        each[t] = l;
        each[t].n = l.n / threads;
        each[t].seed = (unsigned)t * 1000003u;
        if (threads == 1)
            run_loop(&each[t]);
        else if (pthread_create(&tid[t], NULL, run_loop, &each[t]) != 0)
            return 1;
    }
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        if (threads > 1)
            pthread_join(tid[t], NULL);
        failed |= each[t].failed;
    }
    double t = now_ns() - t0;
    if (failed)
        return 1;
    printf("%s %ld: %.0f ns/call\n", argv[1], l.n, l.n ? t / (double)l.n : 0.0);
    return 0;
usage:
    fprintf(stderr, "usage: run-sysloop fstat N FILE | stat N PATH | pread[4] N FILE | getpid N "
                    "| raw FILE\n");
    return 2;
}
