/*
 * sysloop.c - a system call in a loop, built twice: statically linked
 * (run-sysloop: the preload library cannot reach it, the broker's seccomp
 * supervisor serves it) and dynamically linked (run-sysloop-dyn: served by
 * the preload library).  tests/run/static.sh runs both.
 *
 *   run-sysloop fstat N FILE   open FILE, fstat it N times
 *   run-sysloop stat N PATH    stat PATH N times
 *   run-sysloop pread N FILE   read FILE once, then N 4 KiB preads of its pages
 *                              (hits), spread over it
 *   run-sysloop getpid N       getpid N times (a call the filter does not list)
 *   run-sysloop raw FILE       open, write, lseek, read, fstat, F_GETFL, statx and
 *                              unlink FILE
 *                              with raw system calls, printing what they gave
 *
 * The loops print "CALL N: X ns/call" (for docs/run.md; tests assert no time).
 */
#include <fcntl.h>
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

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "raw") == 0)
        return raw(argv[2]);
    if (argc < 3)
        goto usage;
    long n = atol(argv[2]);
    struct stat st;
    int fd = -1;
    bool pread_loop = strcmp(argv[1], "pread") == 0 && argc == 4;
    if ((strcmp(argv[1], "fstat") == 0 || pread_loop) && argc == 4) {
        fd = open(argv[3], O_RDONLY);
        if (fd < 0 || fstat(fd, &st) != 0) {
            perror(argv[3]);
            return 1;
        }
    } else if (!(strcmp(argv[1], "stat") == 0 && argc == 4) &&
               !(strcmp(argv[1], "getpid") == 0 && argc == 3)) {
        goto usage;
    }
    /* pread: 4 KiB at page offsets spread over the file, read once first
     * so that every timed read is a hit. */
    static char page[4096];
    uint64_t pages = pread_loop ? (uint64_t)st.st_size / sizeof page : 0;
    if (pread_loop && !pages) {
        fprintf(stderr, "%s: smaller than a page\n", argv[3]);
        return 1;
    }
    for (uint64_t p = 0; p < pages; p++)
        (void)!pread(fd, page, sizeof page, (off_t)(p * sizeof page));
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int r = pread_loop ? (pread(fd, page, sizeof page,
                                    (off_t)(((uint64_t)i * 7919 % pages) * sizeof page)) ==
                                      (ssize_t)sizeof page
                                  ? 0 : -1)
                : fd >= 0 ? fstat(fd, &st) : argc == 4 ? stat(argv[3], &st)
                          : (int)syscall(SYS_getpid);
        if (r < 0) {
            perror(argv[1]);
            return 1;
        }
    }
    double t = now_ns() - t0;
    printf("%s %ld: %.0f ns/call\n", argv[1], n, n ? t / (double)n : 0.0);
    return 0;
usage:
    fprintf(stderr, "usage: run-sysloop fstat N FILE | stat N PATH | pread N FILE | getpid N | "
                    "raw FILE\n");
    return 2;
}
