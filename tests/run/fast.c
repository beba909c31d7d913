/*
 * fast.c - the fast path of `ufuse run` (tools/run/preload_fast.c): reads
 * and fstat of cached files answered in the program's own process.  Run
 * inside a tree by tests/run/fast.sh:
 *
 *   run-fast DIR WORKER EXPECT   EXPECT "fast": 2,000 preads, 200 reads at
 *                                the position, 200 fstats and 300 lseeks of
 *                                a cached file cost the broker fewer than
 *                                20 requests; "slow": at least 2,400 (the
 *                                same program with the fast path off, so
 *                                the count can fail).  Either way:
 *   - the bytes are the file's, EOF and short reads where the size says;
 *   - a write, an append and a truncate by another process are seen by
 *     the next read and fstat here as soon as they return;
 *   - a position shared across fork moves for both processes (a child's
 *     read(2) at it, then the parent's continues after it);
 *   - closing a read-only copy costs no request (fast), and still drops
 *     the process's record locks once it has taken one;
 *   - reading a small directory to its end is two requests (OPENDIR, one
 *     GETDENTS whose reply says the stream ended), fast path or not.
 * Prints "fast: all checks passed" or the failures.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (1u << 20)

static int failures;

#define CHECK(c, ...)                                  \
    do {                                               \
        if (!(c)) {                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                       \
            printf("\n");                              \
            failures++;                                \
        }                                              \
    } while (0)

static unsigned char pattern(uint64_t off)
{
    return (unsigned char)(off * 13 + (off >> 12) * 7 + 3);
}

/* The broker's request count (run-worker stats). */
static unsigned long long requests(const char *worker)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s stats", worker);
    FILE *p = popen(cmd, "r");
    char line[512] = "";
    if (!p || !fgets(line, sizeof line, p)) {
        if (p)
            pclose(p);
        return 0;
    }
    pclose(p);
    const char *r = strstr(line, "requests ");
    return r ? strtoull(r + 9, NULL, 10) : 0;
}

/* Run @fn in a child process; its exit status. */
static int in_child(void (*fn)(const char *), const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        fn(path);
        _exit(failures ? 1 : 0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static void child_write(const char *path)
{
    int fd = open(path, O_WRONLY);
    CHECK(pwrite(fd, "hello", 5, 5000) == 5, "child pwrite");
    close(fd);
    fd = open(path, O_WRONLY | O_APPEND);
    char tail[100];
    memset(tail, 'T', sizeof tail);
    CHECK(write(fd, tail, sizeof tail) == (ssize_t)sizeof tail, "child append");
    close(fd);
}

static void child_truncate(const char *path)
{
    CHECK(truncate(path, 10000) == 0, "child truncate");
}

/* Exit status 1 if [0, 10) of the file is write-locked by another process. */
static void child_lock_state(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
    int r = fcntl(fd, F_GETLK, &fl);
    close(fd);
    _exit(r == 0 && fl.l_type == F_WRLCK ? 1 : 0);
}

static int shared_fd = -1;
static void child_read_at_position(const char *path)
{
    char buf[4096];
    CHECK(read(shared_fd, buf, sizeof buf) == (ssize_t)sizeof buf, "child read");
    CHECK(buf[0] == (char)pattern(0) && buf[4095] == (char)pattern(4095), "child read bytes");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: run-fast DIR WORKER fast|slow\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/file", argv[1]);
    const char *worker = argv[2];
    int expect_fast = strcmp(argv[3], "fast") == 0;

    static unsigned char buf[SIZE], got[SIZE];
    for (uint32_t i = 0; i < SIZE; i++)
        buf[i] = pattern(i);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, buf, SIZE) == SIZE, "make the file");
    close(fd);

    fd = open(path, O_RDONLY);
    CHECK(pread(fd, got, SIZE, 0) == SIZE && memcmp(got, buf, SIZE) == 0, "warm read");

    unsigned long long r0 = requests(worker);
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        uint32_t off = (uint32_t)(i * 7919) % (SIZE - 4096);
        if (pread(fd, got, 4096, off) != 4096 || memcmp(got, buf + off, 4096) != 0)
            bad++;
    }
    CHECK(bad == 0, "%d cached preads wrong", bad);
    CHECK(lseek(fd, 0, SEEK_SET) == 0, "rewind");
    for (int i = 0; i < 200; i++) {
        if (read(fd, got, 4096) != 4096 || memcmp(got, buf + (size_t)i * 4096, 4096) != 0)
            bad++;
    }
    CHECK(bad == 0, "%d reads at the position wrong", bad);
    struct stat st;
    for (int i = 0; i < 200; i++)
        if (fstat(fd, &st) != 0 || st.st_size != SIZE)
            bad++;
    CHECK(bad == 0, "%d fstats wrong", bad);
    for (int i = 0; i < 100; i++)
        if (lseek(fd, 0, SEEK_CUR) != 200 * 4096 || lseek(fd, i, SEEK_SET) != i ||
            lseek(fd, 200 * 4096 - i, SEEK_CUR) != 200 * 4096)
            bad++;
    CHECK(bad == 0, "%d lseeks wrong", bad);
    CHECK(lseek(fd, -100, SEEK_END) == SIZE - 100, "SEEK_END");
    CHECK(lseek(fd, -1, SEEK_SET) == -1 && errno == EINVAL, "a negative position: EINVAL");
    CHECK(lseek(fd, 200 * 4096, SEEK_SET) == 200 * 4096, "back");
    unsigned long long r1 = requests(worker);
    if (expect_fast)
        CHECK(r1 - r0 < 20, "%llu broker requests for 2,400 cached calls", r1 - r0);
    else
        CHECK(r1 - r0 >= 2400, "only %llu broker requests with the fast path off", r1 - r0);

    /* EOF and short reads where the size says. */
    CHECK(pread(fd, got, 4096, SIZE) == 0, "pread at EOF");
    CHECK(pread(fd, got, 4096, SIZE - 100) == 100, "short pread before EOF");
    CHECK(lseek(fd, SIZE - 10, SEEK_SET) == SIZE - 10 && read(fd, got, 4096) == 10 &&
              read(fd, got, 4096) == 0,
          "reads at the position up to EOF");

    /* Another process writes, appends, truncates: seen at once. */
    CHECK(in_child(child_write, path) == 0, "child wrote");
    CHECK(pread(fd, got, 5, 5000) == 5 && memcmp(got, "hello", 5) == 0,
          "another process's write seen");
    CHECK(fstat(fd, &st) == 0 && st.st_size == SIZE + 100, "appended size seen: %lld",
          (long long)st.st_size);
    CHECK(pread(fd, got, 200, SIZE - 50) == 150 && got[60] == 'T', "appended bytes seen");
    CHECK(in_child(child_truncate, path) == 0, "child truncated");
    CHECK(fstat(fd, &st) == 0 && st.st_size == 10000, "truncated size seen: %lld",
          (long long)st.st_size);
    CHECK(pread(fd, got, 4096, 8192) == 10000 - 8192, "read clipped at the new size");
    CHECK(pread(fd, got, 4096, 20000) == 0, "nothing past the new size");
    close(fd);

    /* A position shared across fork: the child's read moves it for us. */
    fd = open(path, O_RDONLY);
    shared_fd = fd;
    char b2[4096];
    CHECK(pread(fd, b2, 1, 0) == 1, "warm");
    CHECK(in_child(child_read_at_position, path) == 0, "child read at the shared position");
    CHECK(lseek(fd, 0, SEEK_CUR) == 4096, "position after the child's read: %lld",
          (long long)lseek(fd, 0, SEEK_CUR));
    CHECK(read(fd, b2, 100) == 100 && b2[0] == (char)pattern(4096), "parent continues after it");
    close(fd);

    /* Closing a read-only copy asks the broker nothing, unless the
     * process may hold record locks: then it drops them (POSIX: any
     * close of the file). */
    unsigned long long d0 = requests(worker);
    unsigned long long base = requests(worker) - d0; /* what asking costs */
    d0 = requests(worker);
    DIR *dir = opendir(argv[1]);
    int names = 0;
    while (dir && readdir(dir))
        names++;
    CHECK(dir && names > 2, "readdir of the test directory: %d names", names);
    if (dir)
        closedir(dir);
    unsigned long long d1 = requests(worker);
    CHECK(d1 - d0 - base == 2, "%llu requests to read a directory (want 2)", d1 - d0 - base);

    unsigned long long c0 = requests(worker);
    for (int i = 0; i < 50; i++)
        close(open(path, O_RDONLY));
    unsigned long long c1 = requests(worker);
    if (expect_fast)
        CHECK(c1 - c0 < 60, "%llu requests for 50 read-only open+close", c1 - c0);
    int wfd = open(path, O_RDWR);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
    CHECK(fcntl(wfd, F_SETLK, &fl) == 0, "lock");
    CHECK(in_child(child_lock_state, path) == 1, "the child sees the lock");
    close(open(path, O_RDONLY));
    CHECK(in_child(child_lock_state, path) == 0, "a read-only close dropped the lock");
    close(wfd);

    if (failures)
        return 1;
    printf("fast: all checks passed\n");
    return 0;
}
